import pytest
import torch

import kdlib as kd
from kdlib import shift


@pytest.fixture(scope="module")
def images():
    """Eight real Fashion-MNIST test images in [0, 1] pixel units."""
    data = kd.load("fashion_mnist", smoke=True)
    return data.X_test[:8] * data.std + data.mean


@pytest.mark.parametrize("name", shift.CORRUPTIONS)
def test_corruptions_are_deterministic_and_grow_with_severity(images, name):
    outs = [shift.corrupt_pixels(images, name, s, seed=0) for s in (1, 2, 3)]
    assert all(o.shape == images.shape and o.min() >= 0 and o.max() <= 1 for o in outs)
    assert torch.equal(outs[0], shift.corrupt_pixels(images, name, 1, seed=0))
    change = [float((o - images).abs().mean()) for o in outs]
    assert change[0] > 0 and change[0] <= change[1] <= change[2] + 1e-6


def test_seed_changes_random_corruptions(images):
    a = shift.corrupt_pixels(images, "gaussian_noise", 2, seed=0)
    b = shift.corrupt_pixels(images, "gaussian_noise", 2, seed=1)
    assert not torch.equal(a, b)


def test_rotation_draws_a_sign_per_image(images):
    out = shift.corrupt_pixels(images, "rotation", 3)
    plus = shift.TF.rotate(images, 35.0).clamp(0, 1)
    minus = shift.TF.rotate(images, -35.0).clamp(0, 1)
    is_plus = [bool(torch.allclose(o, p, atol=1e-5)) for o, p in zip(out, plus)]
    is_minus = [bool(torch.allclose(o, m, atol=1e-5)) for o, m in zip(out, minus)]
    assert all(a != b for a, b in zip(is_plus, is_minus))  # each image turned one way or the other
    assert any(is_plus) and any(is_minus)  # both directions occur


def test_contrast_by_hand():
    x = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2).expand(1, 1, 2, 2).contiguous()
    out = shift.corrupt_pixels(x, "contrast", 3)  # factor 0.2 towards the mean 0.5
    assert torch.allclose(out.flatten(), torch.tensor([0.4, 0.6, 0.4, 0.6]), atol=1e-4)


def test_bad_arguments(images):
    with pytest.raises(ValueError, match="Unknown corruption"):
        shift.corrupt_pixels(images, "snow", 1)
    with pytest.raises(ValueError, match="severity"):
        shift.corrupt_pixels(images, "blur", 4)
    with pytest.raises(ValueError, match="batch of images"):
        shift.corrupt_pixels(images[0], "blur", 1)


def test_corrupt_keeps_normalisation():
    data = kd.load("fashion_mnist", smoke=True)
    X = shift.corrupt(data, "blur", 1)
    assert X.shape == data.X_test.shape
    assert abs(float(X.mean()) - float(data.X_test.mean())) < 0.1
    sets = shift.shifted_test_sets(data, corruptions=("contrast",), severities=(1, 3))
    assert set(sets) == {("contrast", 1), ("contrast", 3)}


def test_without_class():
    X = torch.arange(6).float()
    y = torch.tensor([0, 1, 2, 1, 0, 2])
    Xk, yk = shift.without_class(X, y, labels=y, cls=1)
    assert yk.tolist() == [0, 2, 0, 2] and Xk.tolist() == [0.0, 2.0, 4.0, 5.0]
    with pytest.raises(ValueError):
        shift.without_class(X, labels=y, cls=7)


def test_class_bias_choice_and_shift():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[0].bias.zero_()
    X = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.8], [1.0, 0.6]])
    y = torch.tensor([0, 1, 1, 1])  # class 1 needs a bias between 0.4 and 1
    delta, accs = shift.choose_class_bias(net, X, y, cls=1, deltas=(0.0, 0.5, 2.0))
    assert delta == 0.5 and accs == [0.5, 1.0, 0.75]
    assert float(net[0].bias[1].detach()) == 0.0  # unchanged by the choice
    shift.shift_class_bias(net, 1, delta)
    assert float(net[0].bias[1].detach()) == 0.5
