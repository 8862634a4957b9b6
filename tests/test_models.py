import pytest
import torch

from kdlib import models


def test_mlp_params_and_flops_by_hand():
    net = models.mlp(784, (256,), 10)
    assert models.count_params(net) == 784 * 256 + 256 + 256 * 10 + 10 == 203_530
    # FLOPs = 2 × multiply-accumulates of the two Linear layers
    assert models.flops_per_example(net, (1, 28, 28)) == 2 * (784 * 256 + 256 * 10)


def test_cnn_flops_by_hand():
    net = models.cnn((4,), hidden=8, num_classes=10, image_size=8, batch_norm=False, dropout=0.0,
                     convs_per_block=2)
    conv = 2 * (1 * 4 * 9 * 64) + 2 * (4 * 4 * 9 * 64)
    dense = 2 * (4 * 4 * 4 * 8) + 2 * (8 * 10)
    assert models.flops_per_example(net, (1, 8, 8)) == conv + dense == 24_224
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_teacher_size():
    teacher = models.cnn((32, 64), 256)
    assert 0.8e6 < models.count_params(teacher) < 1.0e6
    assert teacher(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_flops_leave_training_mode_alone():
    net = models.cnn((8,), hidden=16)
    net.train()
    models.flops_per_example(net, (1, 28, 28))
    assert net.training


def test_trainable_only_count():
    net = models.mlp(10, (5,), 2)
    net[1].weight.requires_grad_(False)
    assert models.count_params(net, trainable_only=True) == models.count_params(net) - 50


@pytest.mark.parametrize("kwargs,match", [
    (dict(in_features=0), "in_features"),
    (dict(hidden=(0,)), "hidden width"),
    (dict(num_classes=-3), "num_classes"),
    (dict(dropout=1.0), "dropout"),
])
def test_mlp_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.mlp(**kwargs)


def test_cnn_bad_arguments():
    with pytest.raises(ValueError, match="at least one conv block"):
        models.cnn(())
    with pytest.raises(ValueError, match="fewer blocks"):
        models.cnn((8, 8, 8, 8, 8), image_size=28)


def test_flops_bad_shape():
    with pytest.raises(ValueError, match="input_shape"):
        models.flops_per_example(models.mlp(4, (2,), 2), (0,))


def test_human():
    assert models.human(2.5e6, "FLOPs") == "2.5 MFLOPs"
    assert models.human(870826) == "871 k"
