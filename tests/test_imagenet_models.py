"""The LLb-SGD paper's ImageNet networks (models/imagenet.py): torchvision AlexNet, VGG-16,
GoogLeNet and ResNet-152 behind the registry's conventions."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from trainrepro.models import build, model_kwargs
from trainrepro.registry import ConfigError

TORCHVISION = {  # registry name -> the torchvision constructor it must match (weights=None)
    "alexnet": lambda n: torchvision.models.alexnet(weights=None, num_classes=n),
    "vgg16_imagenet": lambda n: torchvision.models.vgg16(weights=None, num_classes=n),
    "googlenet": lambda n: torchvision.models.googlenet(weights=None, num_classes=n, aux_logits=False,
                                                        init_weights=False),
    "resnet152": lambda n: torchvision.models.resnet152(weights=None, num_classes=n),
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_parameter_count_equals_torchvision_s(name):
    for classes in (1000, 10):
        with torch.device("meta"):
            ours, theirs = build(name, num_classes=classes, in_channels=3, image_size=224), TORCHVISION[name](classes)
        assert n_params(ours) == n_params(theirs), (name, classes)
        assert ours.classifier.out_features == classes


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_forward_on_a_224px_batch_gives_one_logit_per_class(name):
    torch.manual_seed(0)
    model = build(name, num_classes=7, in_channels=3, image_size=224).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 224, 224))
    assert out.shape == (2, 7) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_trains_in_train_mode_and_every_relu_is_a_module_used_once(name):
    torch.manual_seed(0)
    model = build(name, num_classes=5, in_channels=3, image_size=64, dropout=0.1, init="msra").train()
    acts = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert acts and not any(m.inplace for m in acts)
    calls = {id(m): 0 for m in acts}
    hooks = [m.register_forward_hook(lambda mod, i, o: calls.__setitem__(id(mod), calls[id(mod)] + 1))
             for m in acts]
    x = torch.randn(2, 3, 64, 64)
    loss = nn.functional.cross_entropy(model(x), torch.tensor([0, 4]))   # one tensor, no aux outputs
    for h in hooks:
        h.remove()
    assert set(calls.values()) == {1}
    loss.backward()
    assert model.classifier.weight.grad.abs().sum() > 0
    assert model_kwargs(name)["dropout"] == 0.0


def test_bad_inputs_are_refused_naming_the_model():
    with pytest.raises(ConfigError, match="alexnet.*in_channels"):
        build("alexnet", num_classes=10, in_channels=1, image_size=224)
    with pytest.raises(ConfigError, match="resnet152.*image_size"):
        build("resnet152", num_classes=10, in_channels=3, image_size=32)
    with pytest.raises(ConfigError, match="googlenet.*dropout"):
        build("googlenet", num_classes=10, in_channels=3, image_size=224, dropout=1.5)


def test_the_paper_profile_runs_the_four_networks_on_the_local_imagenet_copy():
    import copy

    from conftest import REPO
    from trainrepro.config import Params, expand_study, load_params, validate

    raw = copy.deepcopy(load_params(REPO / "params.yaml").raw)
    raw["profile"] = "paper"
    validate(raw)
    assert raw["datasets"]["imagenet"]["source"] == "imagefolder"
    assert raw["datasets"]["imagenet"]["image_size"] == 224 and raw["datasets"]["imagenet"]["path"]
    specs = [s for s in expand_study(Params(raw), "llbsgd") if s.dataset == "imagenet"]
    assert {s.model for s in specs} == set(TORCHVISION)


def test_the_model_registry_does_not_import_torchvision():
    # importing torchvision.models costs seconds per process; only an ImageNet build needs it
    import subprocess
    import sys

    code = "import sys, trainrepro.models; print('torchvision' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
