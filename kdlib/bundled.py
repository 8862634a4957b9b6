"""The two data sets that need no files: scikit-learn's digits (bundled) and MNIST-1D (generated).

* ``digits`` — scikit-learn's 8×8 handwritten digits (1,797 images, shipped with sklearn); it
  has no official test split, so a fixed, seeded 20 % is held out as test.
* ``mnist1d`` — MNIST-1D (Greydanus 2020), generated locally and seeded by the ``mnist1d``
  package's ``make_dataset`` (its downloader is never used): 40-sample signals of ten classes.

Both come out through :func:`kdlib.dataset.from_arrays`, like every image data set.
"""
from __future__ import annotations

import numpy as np

from .dataset import Dataset, from_arrays, split_train_val

DIGIT_CLASSES = tuple(str(d) for d in range(10))


def load_digits(*, val_size: int | None = None, split_seed: int = 0, device=None,
                smoke: bool | None = None) -> Dataset:
    """scikit-learn's digits as ``(N, 1, 8, 8)`` images scaled by 1/16; 359 test, 200 validation by default.

    The test split is seeded separately (seed 12345) so ``split_seed`` moves only the validation split.
    The options are :func:`kdlib.data.load`'s.
    """
    from sklearn import datasets

    digits = datasets.load_digits()
    X, y = digits.images.astype(np.float32), digits.target
    order = np.random.default_rng(12345).permutation(len(y))
    n_test = len(y) // 5
    test, rest = order[:n_test], order[n_test:]
    X_tr, y_tr, X_va, y_va = split_train_val(X[rest], y[rest], 200 if val_size is None else val_size, split_seed)
    return from_arrays("digits", (X_tr[:, None], y_tr), (X_va[:, None], y_va), (X[test][:, None], y[test]),
                       DIGIT_CLASSES, "scikit-learn load_digits (bundled)", scale=16.0, smoke=smoke, device=device)


def load_mnist1d(*, val_size: int | None = None, split_seed: int = 0, device=None,
                 smoke: bool | None = None) -> Dataset:
    """MNIST-1D as ``(N, 1, 40)`` signals, generated with ``split_seed``; 500 validation by default.

    ``split_seed`` seeds both the generator and the train/validation split.  The options are
    :func:`kdlib.data.load`'s.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = split_seed
    made = make_dataset(args)
    X_tr, y_tr, X_va, y_va = split_train_val(np.asarray(made["x"]), np.asarray(made["y"]),
                                             500 if val_size is None else val_size, split_seed)
    return from_arrays("mnist1d", (X_tr[:, None], y_tr), (X_va[:, None], y_va),
                       (np.asarray(made["x_test"])[:, None], np.asarray(made["y_test"])),
                       DIGIT_CLASSES, f"mnist1d make_dataset (generated, seed {split_seed})",
                       scale=1.0, smoke=smoke, device=device)
