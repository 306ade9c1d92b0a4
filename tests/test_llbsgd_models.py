"""Models of the LLb-SGD study: CIFAR ResNet-34/50 parameter counts and the `init` choice."""
import pytest
import torch
from torch import nn

from trainrepro.models import MODELS, build, model_kwargs
from trainrepro.registry import ConfigError


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name,count", [("resnet34", 21_282_122), ("resnet50", 23_520_842)])
def test_cifar_resnet_parameter_counts(name, count):
    """kuangliu/pytorch-cifar counts at K = 10 (ResNet-50: Bottleneck, expansion 4)."""
    with torch.device("meta"):
        assert n_params(build(name, num_classes=10, in_channels=3, image_size=32)) == count


def test_resnet50_is_bottleneck_and_maps_to_logits():
    model = build("resnet50", num_classes=10, in_channels=3, image_size=32, width=4).eval()
    assert sum(type(m).__name__ == "Bottleneck" for m in model.modules()) == 16
    assert model.classifier.in_features == 4 * 8 * 4
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_every_model_takes_init():
    assert all(model_kwargs(name)["init"] == "default" for name in MODELS)


@pytest.mark.parametrize("init", ["uniform", "normal", "xavier", "msra"])
def test_init_schemes_set_the_weight_statistics(init):
    torch.manual_seed(0)
    model = build("mlp", num_classes=10, in_channels=1, image_size=16, hidden=[512], init=init)
    w = model.features[1].weight  # 512 x 256
    fan_in, fan_out = w.shape[1], w.shape[0]
    expected_std = {"uniform": 0.1 / 12 ** 0.5, "normal": 0.05,
                    "xavier": (2 / (fan_in + fan_out)) ** 0.5, "msra": (2 / fan_in) ** 0.5}[init]
    assert w.std().item() == pytest.approx(expected_std, rel=0.03)
    assert torch.all(model.features[1].bias == 0)
    if init == "uniform":
        assert w.abs().max() <= 0.05


def test_default_init_is_the_constructor_s_and_bad_init_is_refused():
    torch.manual_seed(0)
    a = build("small_cnn", num_classes=10, in_channels=1, image_size=8)
    torch.manual_seed(0)
    b = build("small_cnn", num_classes=10, in_channels=1, image_size=8, init="default")
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(ConfigError, match="init 'glorot' is not allowed"):
        build("mlp", num_classes=10, in_channels=1, image_size=8, init="glorot")
    bn = build("resnet18", num_classes=10, in_channels=3, image_size=32, width=4, init="msra").stem[1]
    assert isinstance(bn, nn.BatchNorm2d) and torch.all(bn.weight == 1)
