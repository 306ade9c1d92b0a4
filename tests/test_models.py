"""Tests for the model registry: shapes, classifier convention, parameter counts, errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from trainrepro.models import MODELS, build, model_kwargs
from trainrepro.registry import ConfigError

# Kwargs that keep the slow defaults small enough for a CPU test run.
FAST_KWARGS: dict[str, dict] = {
    "vgg16": {"width_divisor": 8},
    "resnet18": {"width": 8},
    "resnet34": {"width": 8},
    "resnet50": {"width": 4},
    "wide_resnet_mentornet": {"blocks_per_stage": 1, "widths": [8, 16, 32], "stem_width": 4},
}

EXPECTED_NAMES = {
    "mlp", "small_cnn", "allcnn_a", "allcnn_b", "allcnn_c", "nin", "vgg16",
    "resnet18", "resnet34", "resnet50", "wide_resnet_mentornet", "cifarnet",
    "allcnn_small_a", "allcnn_small_b", "allcnn_small_c",
}
# The ImageNet networks (224x224 RGB, >= 64 px): tested in test_imagenet_models.py; the 32x32 tests
# here cover EXPECTED_NAMES.
IMAGENET_NAMES = {"alexnet", "vgg16_imagenet", "googlenet", "resnet152"}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_on_meta(name: str, **kwargs) -> nn.Module:
    """Build without allocating or initialising real weights (for parameter counts)."""
    with torch.device("meta"):
        return build(name, **kwargs)


def test_registry_holds_exactly_the_documented_models():
    assert set(MODELS) == EXPECTED_NAMES | IMAGENET_NAMES


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_every_model_maps_rgb_32x32_batch_to_logits(name):
    torch.manual_seed(0)
    model = build(name, num_classes=10, in_channels=3, image_size=32, **FAST_KWARGS.get(name, {}))
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    assert model.classifier.weight.shape[0] == 10


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_every_model_trains_one_step_in_train_mode(name):
    torch.manual_seed(0)
    model = build(name, num_classes=7, in_channels=3, image_size=32, dropout=0.1, **FAST_KWARGS.get(name, {}))
    model.train()
    loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 6]))
    loss.backward()
    assert model.classifier.weight.grad is not None
    assert model.classifier.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["mlp", "small_cnn", "allcnn_c", "nin", "cifarnet", "vgg16", "resnet18"])
def test_grayscale_28x28_input(name):
    model = build(name, num_classes=10, in_channels=1, image_size=28, **FAST_KWARGS.get(name, {})).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("name", ["mlp", "small_cnn"])
def test_small_models_accept_8x8_digits(name):
    model = build(name, num_classes=10, in_channels=1, image_size=8).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("hidden", [[16], [16, 16, 16]])
def test_mlp_on_feature_vectors_with_one_and_three_hidden_layers(hidden):
    model = build("mlp", num_classes=3, in_channels=2, image_size=1, hidden=hidden)
    assert model(torch.randn(2, 2)).shape == (2, 3)
    assert sum(isinstance(m, nn.Linear) for m in model.modules()) == len(hidden) + 1
    assert model.classifier.weight.shape == (3, hidden[-1])


def test_allcnn_c_has_about_1_37m_parameters():
    assert n_params(build_on_meta("allcnn_c", num_classes=10, in_channels=3, image_size=32)) == pytest.approx(
        1.37e6, rel=0.01
    )


def test_allcnn_a_and_b_are_smaller_than_c():
    counts = [n_params(build_on_meta(f"allcnn_{v}", num_classes=10, in_channels=3, image_size=32)) for v in "abc"]
    assert counts[0] < counts[1] < counts[2]
    assert counts[0] == pytest.approx(1.28e6, rel=0.03)  # paper's own count (Table 2)
    assert counts[1] == pytest.approx(1.35e6, rel=0.04)


def test_allcnn_paper_dropouts_are_defaults_and_removable():
    model = build("allcnn_c", num_classes=10, in_channels=3, image_size=32)
    assert sorted(m.p for m in model.modules() if isinstance(m, nn.Dropout)) == [0.2, 0.5, 0.5]
    model = build("allcnn_c", num_classes=10, in_channels=3, image_size=32, input_dropout=0.0, hidden_dropout=0.0)
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())


def test_allcnn_batchnorm_option_adds_bn_after_each_hidden_conv():
    model = build("allcnn_c", num_classes=10, in_channels=3, image_size=32, batchnorm=True)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 8


def test_resnet18_cifar_has_about_11_17m_parameters():
    assert n_params(build_on_meta("resnet18", num_classes=10, in_channels=3, image_size=32)) == pytest.approx(
        11.17e6, rel=0.005
    )


def test_paper_scale_parameter_counts():
    def count(name):
        return n_params(build_on_meta(name, num_classes=10, in_channels=3, image_size=32))

    assert count("vgg16") == pytest.approx(14.73e6, rel=0.005)  # kuangliu VGG('VGG16')
    assert count("resnet34") == pytest.approx(21.28e6, rel=0.005)


def test_wide_resnet_defaults_follow_mentornet_code():
    model = build_on_meta("wide_resnet_mentornet", num_classes=10, in_channels=3, image_size=32)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 + 3 * 9 * 2  # stem + 27 blocks of two convs, parameter-free shortcuts
    assert convs[0].out_channels == 16
    assert {c.out_channels for c in convs[1:]} == {160, 320, 640}
    acts = [m for m in model.modules() if isinstance(m, nn.LeakyReLU)]
    assert acts and all(a.negative_slope == 0.1 for a in acts)
    assert model.classifier.in_features == 640


def test_every_activation_is_a_non_inplace_module_used_once_per_forward():
    for name in sorted(EXPECTED_NAMES):
        model = build(name, num_classes=10, in_channels=3, image_size=32, **FAST_KWARGS.get(name, {})).eval()
        acts = [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU))]
        assert acts, name
        assert all(not m.inplace for m in acts), name
        calls = {id(m): 0 for m in acts}
        hooks = [m.register_forward_hook(lambda mod, i, o: calls.__setitem__(id(mod), calls[id(mod)] + 1)) for m in acts]
        with torch.no_grad():
            model(torch.randn(1, 3, 32, 32))
        for h in hooks:
            h.remove()
        assert set(calls.values()) == {1}, name


def test_swapping_activation_modules_changes_the_function():
    model = build("allcnn_c", num_classes=10, in_channels=3, image_size=32).eval()
    x = torch.randn(2, 3, 32, 32)
    before = model(x)
    for parent in list(model.modules()):
        for child_name, child in parent.named_children():
            if isinstance(child, nn.ReLU):
                setattr(parent, child_name, nn.Identity())
    assert not torch.allclose(model(x), before)


def test_unknown_model_name_lists_allowed_names():
    with pytest.raises(ConfigError) as err:
        build("resnet1000", num_classes=10, in_channels=3, image_size=32)
    msg = str(err.value)
    assert "resnet1000" in msg
    for name in EXPECTED_NAMES:
        assert name in msg


def test_unknown_kwarg_names_the_kwarg_and_the_model():
    with pytest.raises(ConfigError) as err:
        build("allcnn_c", num_classes=10, in_channels=3, image_size=32, depth=3)
    assert "depth" in str(err.value) and "allcnn_c" in str(err.value)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("mlp", {"hidden": 128}),
        ("mlp", {"dropout": 1.5}),
        ("small_cnn", {"width": 0}),
        ("allcnn_c", {"hidden_dropout": -0.1}),
        ("wide_resnet_mentornet", {"widths": [16, "x"]}),
    ],
)
def test_bad_kwarg_values_raise_config_error(name, kwargs):
    with pytest.raises(ConfigError, match=name):
        build(name, num_classes=10, in_channels=3, image_size=32, **kwargs)


def test_too_small_image_for_allcnn_raises_config_error():
    with pytest.raises(ConfigError, match="image_size"):
        build("allcnn_c", num_classes=10, in_channels=1, image_size=8)


def test_every_model_documents_dropout_and_common_arguments():
    for name in EXPECTED_NAMES | IMAGENET_NAMES:
        assert model_kwargs(name)["dropout"] == 0.0
        assert MODELS[name].__doc__
