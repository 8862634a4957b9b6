import gzip
import shutil

import pytest
import torch

from kdlib import data, dataset, fashion_mnist


@pytest.fixture
def no_debian(monkeypatch, tmp_path):
    """Hide the system copy so the search path is only what the test builds."""
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FASHION_DIR", tmp_path / "no-debian")
    fashion_mnist.read_arrays.cache_clear()
    yield
    fashion_mnist.read_arrays.cache_clear()


def _real_folder():
    fashion_mnist.read_arrays.cache_clear()
    folder, _ = fashion_mnist.locate_fashion_mnist()
    return folder


def test_fashion_mnist_full_split():
    ds = data.load("fashion_mnist", smoke=False)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (55000, 5000, 10000)
    assert ds.input_shape == (1, 28, 28) and ds.X_train.dtype == torch.float32
    assert ds.classes[0] == "T-shirt/top" and ds.num_classes == 10
    # normalised with the training split's statistics
    assert abs(float(ds.X_train.mean())) < 1e-4 and abs(float(ds.X_train.std()) - 1) < 1e-3
    assert 0.28 < ds.mean < 0.29
    # every class present in each split
    for y in (ds.y_train, ds.y_val, ds.y_test):
        assert torch.bincount(y, minlength=10).min() > 0


def test_validation_comes_from_train_never_test():
    ds = data.load("fashion_mnist", smoke=False)
    arrays, _ = fashion_mnist.read_arrays()
    original_train = torch.bincount(torch.from_numpy(arrays["train_labels"].astype("int64")), minlength=10)
    original_test = torch.from_numpy(arrays["t10k_labels"].astype("int64"))
    # train + val together are exactly the 60k training examples; test is the untouched t10k file
    assert torch.equal(torch.bincount(ds.y_train, minlength=10) + torch.bincount(ds.y_val, minlength=10), original_train)
    assert torch.equal(ds.y_test, original_test)
    # the first validation image, un-normalised, is one of the original training images
    raw_train = torch.from_numpy(arrays["train_images"].reshape(60000, -1).astype("int64"))
    first_val = torch.round((ds.X_val[0].flatten() * ds.std + ds.mean) * 255).long()
    assert (raw_train == first_val).all(1).any()


def test_split_is_seeded():
    a = data.load("digits", split_seed=1)
    b = data.load("digits", split_seed=1)
    c = data.load("digits", split_seed=2)
    assert torch.equal(a.y_val, b.y_val) and not torch.equal(a.y_val, c.y_val)
    assert torch.equal(a.y_test, c.y_test)  # the test split never moves


def test_smoke_size_slices(monkeypatch):
    monkeypatch.setenv("KDLIB_SMOKE", "1")
    ds = data.load("fashion_mnist")
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == dataset.SMOKE_SIZES
    assert "smoke" in ds.source


@pytest.mark.parametrize("name,shape,n_test", [("digits", (1, 8, 8), 359), ("mnist1d", (1, 40), 1000)])
def test_small_datasets(name, shape, n_test):
    ds = data.load(name, smoke=False)
    assert ds.input_shape == shape and len(ds.y_test) == n_test and ds.num_classes == 10


def test_mnist1d_is_generated_deterministically():
    a, b = data.load("mnist1d", smoke=False), data.load("mnist1d", smoke=False)
    assert torch.equal(a.X_test, b.X_test)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="Unknown dataset 'cifar'.*fashion_mnist"):
        data.load("cifar")


def test_bad_val_size():
    with pytest.raises(ValueError, match="val_size"):
        data.load("digits", val_size=0)


def test_missing_data_names_all_three_ways(data_home, no_debian):
    with pytest.raises(data.DataNotFoundError) as err:
        data.load("fashion_mnist")
    message = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "kdlib data fetch" in message
    assert "fashion-mnist" in message


def test_files_in_cache_are_used_first():
    real = _real_folder()
    spec = fashion_mnist.FASHION_FILES[1]
    assert fashion_mnist.verify_file(real / spec.name, spec)[:4] == b"\x00\x00\x08\x01"


@pytest.fixture
def fashion_cache(data_home, monkeypatch, tmp_path):
    """The real Fashion-MNIST files copied into an empty kdlib cache, the system copy hidden."""
    real = _real_folder()
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FASHION_DIR", tmp_path / "no-debian")
    target = data_home / "fashion-mnist"
    target.mkdir(parents=True)
    for spec in fashion_mnist.FASHION_FILES:
        shutil.copy(real / spec.name, target / spec.name)
    fashion_mnist.read_arrays.cache_clear()
    yield target
    fashion_mnist.read_arrays.cache_clear()


@pytest.mark.parametrize("damage", ["truncate", "flip", "not-gzip", "other-content"])
def test_corrupted_file_is_named(damage, fashion_cache):
    victim = fashion_cache / "train-labels-idx1-ubyte.gz"
    blob = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        victim.write_bytes(blob[:100] + bytes([blob[100] ^ 0xFF]) + blob[101:])
    elif damage == "not-gzip":
        victim.write_bytes(b"<html>404 not found</html>")
    else:
        victim.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (60000).to_bytes(4, "big") + bytes(60000)))
    with pytest.raises(data.CorruptDataError, match="train-labels-idx1-ubyte.gz"):
        data.load("fashion_mnist")


def test_recompressed_copy_is_accepted(fashion_cache):
    """A .gz whose bytes differ but whose content is the published data (Debian's case)."""
    victim = fashion_cache / "t10k-labels-idx1-ubyte.gz"
    victim.write_bytes(gzip.compress(gzip.decompress(victim.read_bytes()), compresslevel=1, mtime=1))
    ds = data.load("fashion_mnist", smoke=True)
    assert "kdlib data cache" in ds.source


def test_batches_cover_every_example_once():
    X = torch.arange(10).float()[:, None]
    y = torch.arange(10)
    seen = torch.cat([yb for _, yb in data.batches(X, y, batch_size=3, generator=torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(10))
    sizes = [len(b[1]) for b in data.batches(X, y, batch_size=3, drop_last=True)]
    assert sizes == [3, 3, 3]


def test_batches_keep_tensors_aligned():
    X = torch.arange(20).float()
    logits = torch.arange(20).float() * 10
    for xb, lb in data.batches(X, logits, batch_size=4):
        assert torch.equal(lb, xb * 10)


def test_batches_split_ranks_disjointly():
    y = torch.arange(100)
    shares = [torch.cat([b[0] for b in data.batches(y, batch_size=5, generator=torch.Generator().manual_seed(3),
                                                    rank=r, world_size=2)]) for r in (0, 1)]
    assert len(shares[0]) == len(shares[1]) == 50
    assert not set(shares[0].tolist()) & set(shares[1].tolist())


@pytest.mark.parametrize("bad", [0, -1, 2.5, None, True])
def test_batches_bad_batch_size(bad):
    with pytest.raises(ValueError, match="batch_size"):
        list(data.batches(torch.zeros(4), batch_size=bad))


def test_batches_empty_and_mismatched():
    with pytest.raises(ValueError, match="empty"):
        list(data.batches(torch.zeros(0, 3), torch.zeros(0), batch_size=2))
    with pytest.raises(ValueError, match="same length"):
        list(data.batches(torch.zeros(4, 3), torch.zeros(5), batch_size=2))
