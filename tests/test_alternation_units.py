"""Hard-threshold units (Eq. 9), their switches, the activation registry, bit packing, the
batch mask (Eq. 41) and the plateau rule."""
import pytest
import torch
import torch.nn as nn

import trainrepro.papers.alternation  # noqa: F401  (registers ht_relu and the methods)
from trainrepro.methods.common import Plateau
from trainrepro.models import MODELS, build
from trainrepro.papers.alternation.masks import (batch_mask, fixed_masks, pack_bits, recording,
                                                  unpack_bits)
from trainrepro.papers.alternation.units import HardThreshold, units_of
from trainrepro.registry import ConfigError


def unit(**kw):
    u = HardThreshold((3,), **kw)
    with torch.no_grad():
        u.beta.copy_(torch.tensor([0.5, -0.2, 1.0]))
    return u


def test_eta_star_forward_is_q_above_beta_else_zero():
    q = torch.tensor([[0.4, 0.0, 2.0], [0.6, -0.3, 0.9]])
    out = unit()(q)
    assert torch.equal(out, torch.tensor([[0.0, 0.0, 2.0], [0.6, 0.0, 0.0]]))


def test_eq2_output_is_relu_of_q_minus_beta_with_its_true_beta_gradient():
    q = torch.randn(5, 3, requires_grad=True)
    u = unit(output="q_minus_beta")
    out = u(q)
    ref = torch.relu(q - u.beta)
    assert torch.allclose(out, ref)
    g = torch.randn(5, 3)
    (out * g).sum().backward()
    m = (q > u.beta).float().detach()
    assert torch.allclose(u.beta.grad, -(m * g).sum(0))
    assert torch.allclose(q.grad, m * g)


def test_square_rule_keeps_large_negative_inputs():
    u = HardThreshold((2,), mask_rule="sq")
    with torch.no_grad():
        u.beta.fill_(1.0)
    q = torch.tensor([[-2.0, 0.5], [1.5, -0.9]])
    assert torch.equal(u(q), torch.tensor([[-2.0, 0.0], [1.5, 0.0]]))


def test_gradients_wrt_weights_input_and_beta_ste_vs_none():
    torch.manual_seed(0)
    lin = nn.Linear(4, 3)
    x = torch.randn(6, 4)
    g = torch.randn(6, 3)
    # ste: forward m * q; dz/dq = m (so dL/dW = (m * g)^T x); dz/dbeta = -m
    u = unit(beta_grad="ste")
    q = lin(x)
    (u(q) * g).sum().backward()
    m = (q > u.beta).float().detach()
    assert torch.allclose(lin.weight.grad, (m * g).t() @ x, atol=1e-6)
    assert torch.allclose(u.beta.grad, -(m * g).sum(0))
    # none: beta is not learnable and gets no gradient; the weight gradient is unchanged
    lin.zero_grad()
    u2 = unit(beta_grad="none")
    assert not u2.beta.requires_grad
    (u2(lin(x)) * g).sum().backward()
    assert u2.beta.grad is None
    assert torch.allclose(lin.weight.grad, (m * g).t() @ x, atol=1e-6)


def test_every_relu_model_accepts_activation_ht_relu():
    for name in sorted(MODELS):
        small = {"mlp": (64, 1), "small_cnn": (1, 8), "allcnn_small_c": (1, 8),
                 # torchvision's ImageNet nets: 64 px is their smallest input (224 in the papers)
                 "alexnet": (3, 64), "vgg16_imagenet": (3, 64), "googlenet": (3, 64), "resnet152": (3, 64)}
        cin, size = small.get(name, (3, 32))
        plain = build(name, num_classes=10, in_channels=cin, image_size=size)
        n_relu = sum(isinstance(m, nn.ReLU) for m in plain.modules())
        ht = build(name, num_classes=10, in_channels=cin, image_size=size, activation="ht_relu",
                   activation_args={"mask_rule": "sq"})
        if n_relu == 0:  # LeakyReLU nets (wide_resnet_mentornet): not a ReLU model
            continue
        assert len(units_of(ht)) == n_relu, name
        assert not any(isinstance(m, nn.ReLU) for m in ht.modules()), name
        assert all(u.mask_rule == "sq" for u in units_of(ht))
        if name == "googlenet":  # one unit per conv-BN-ReLU, inside the Inception blocks too
            assert n_relu == sum(isinstance(m, nn.Conv2d) for m in plain.modules()) == 57


def test_bad_activation_or_argument_is_a_config_error():
    with pytest.raises(ConfigError, match="activation"):
        build("mlp", num_classes=3, in_channels=4, image_size=1, activation="tanhh")
    with pytest.raises(ConfigError, match="mask_rule"):
        build("mlp", num_classes=3, in_channels=4, image_size=1, activation="ht_relu",
              activation_args={"mask_rule": "ge"})
    with pytest.raises(ConfigError, match="unknown argument"):
        build("mlp", num_classes=3, in_channels=4, image_size=1, activation="ht_relu",
              activation_args={"beta": 1})


def test_ht_with_beta_zero_equals_relu_network():
    torch.manual_seed(1)
    relu = build("allcnn_small_c", num_classes=10, in_channels=1, image_size=8)
    ht = build("allcnn_small_c", num_classes=10, in_channels=1, image_size=8, activation="ht_relu")
    ht.load_state_dict({**relu.state_dict(), **{k: v for k, v in ht.state_dict().items() if k.endswith("beta")}})
    x = torch.randn(4, 1, 8, 8)
    assert torch.allclose(relu(x), ht(x), atol=1e-6)


@pytest.mark.parametrize("model,args,shape", [("allcnn_small_c", {}, (1, 8)),
                                              ("mlp", {"hidden": [16, 16]}, (64, 1))])
def test_network_is_affine_in_its_input_when_all_masks_are_fixed(model, args, shape):
    torch.manual_seed(2)
    cin, size = shape
    net = build(model, num_classes=10, in_channels=cin, image_size=size, activation="ht_relu", **args).eval()
    with torch.no_grad():
        for u in units_of(net):
            u.beta.uniform_(-0.1, 0.1)
    xshape = (1, cin, size, size) if size > 1 else (1, cin)
    x0, x1, x2 = torch.randn(xshape), torch.randn(xshape), torch.randn(xshape)
    with torch.no_grad(), recording(units_of(net)) as rec:
        net(x0)
    masks = [r[0] for r in rec]
    with torch.no_grad():
        free = [net(a * x1 + (1 - a) * x2) - (a * net(x1) + (1 - a) * net(x2)) for a in (-1.5, 0.3, 2.0)]
        assert max(float(d.abs().max()) for d in free) > 1e-3  # free units: not affine
        with fixed_masks(units_of(net), masks):
            f1, f2 = net(x1), net(x2)
            for a in (-1.5, 0.3, 2.0):
                assert torch.allclose(net(a * x1 + (1 - a) * x2), a * f1 + (1 - a) * f2, atol=1e-5)


def test_pack_unpack_roundtrip():
    bits = torch.rand(7, 45) > 0.5
    packed = pack_bits(bits)
    assert packed.dtype == torch.uint8 and packed.shape == (7, 6)
    assert torch.equal(unpack_bits(packed, 45), bits)


def test_batch_mask_on_a_hand_example():
    u = HardThreshold((3,))  # beta = 0
    q = torch.tensor([[1.0, -2.0, 0.1], [0.5, 0.0, -0.3], [0.2, 1.0, 0.0]])
    # energy "q" (Eq. 41 literal): sum_n q^2 = [1.29, 5.0, 0.10]; beta_B = N t = 3 * 0.1 = 0.3
    assert torch.equal(batch_mask(q, u, "energy", "q", tau=0.1), torch.tensor([True, True, False]))
    # energy "ht": x = eta*(q) = [[1,0,.1],[.5,0,0],[.2,1,0]] -> sums [1.29, 1.0, 0.01]
    assert torch.equal(batch_mask(q, u, "energy", "ht", tau=0.1), torch.tensor([True, True, False]))
    assert torch.equal(batch_mask(q, u, "energy", "ht", tau=0.34), torch.tensor([True, False, False]))
    # tau = 0 with energy "ht": the union of the example-wise supports
    assert torch.equal(batch_mask(q, u, "energy", "ht", tau=0.0), torch.tensor([True, True, True]))
    # majority vote of example masks [[1,0,1],[1,0,0],[1,1,0]] -> [1, 1/3, 1/3] > 0.5
    assert torch.equal(batch_mask(q, u, "majority"), torch.tensor([True, False, False]))
    # relative threshold: mean energy of unit i vs tau * mean over units: [0.43, 1.67, .033] vs 0.5*0.713
    assert torch.equal(batch_mask(q, u, "energy", "q", tau=0.5, tau_mode="relative"),
                       torch.tensor([True, True, False]))


def test_batch_mask_threshold_scales_with_batch_size():
    u = HardThreshold((2,))
    q = torch.tensor([[1.0, 0.3]])
    big = q.repeat(50, 1)
    assert torch.equal(batch_mask(q, u, "energy", "q", tau=0.5), batch_mask(big, u, "energy", "q", tau=0.5))


def test_plateau_rule_on_a_synthetic_loss():
    p = Plateau(patience=2, min_gap=3, max_gap=10)
    losses = [1.0, 0.8, 0.85, 0.9, 0.7]
    assert [p.update(v) for v in losses] == [False, False, False, True, False]  # fires at epoch 4
    p.reset()
    assert [p.update(v) for v in [1.0, 2.0, 3.0]] == [False, False, True]     # min_gap 3 holds it
    p = Plateau(patience=100, min_gap=1, max_gap=4)
    assert [p.update(1.0 / (k + 1)) for k in range(4)] == [False, False, False, True]  # max_gap
    p = Plateau(patience=1, min_gap=1, max_gap=50, min_delta=0.1)
    assert [p.update(v) for v in [1.0, 0.95]] == [False, True]  # 5% < min_delta 10%
    q = Plateau(patience=1, min_gap=1, max_gap=50, min_delta=0.1)
    q.load_state_dict(p.state_dict())
    assert q.update(0.99) == p.update(0.99)
    with pytest.raises(ValueError):
        Plateau(patience=1, min_gap=5, max_gap=4)


@pytest.mark.parametrize("rule", ["gt", "sq"])
def test_float_mask_is_the_rule_and_the_forward_is_unchanged(rule):
    u = HardThreshold((4, 3, 3), mask_rule=rule)
    with torch.no_grad():
        u.beta.copy_(torch.tensor([0.0, 0.25, -0.5, 1e-30]))
    q = torch.randn(8, 4, 3, 3)
    q[0, 1] = 0.25      # ties: q == beta is outside the support
    q[1, 3] = 2e-30     # just above a tiny beta: still inside
    m = u.mask(q)
    assert m.dtype == q.dtype and torch.equal(m, u.rule(q).to(q.dtype))
    assert torch.equal(u(q), q * u.rule(q))  # bit for bit the bool formulation's output


def test_float_unpack_matches_the_bool_unpack():
    bits = torch.rand(7, 45) > 0.5
    packed = pack_bits(bits)
    assert torch.equal(unpack_bits(packed, 45, torch.float32), bits.float())


def test_alternation_base_kind_is_abstract():
    from trainrepro.papers.alternation.alternation import AlternationBase

    class NoKind(AlternationBase):
        family = "no_kind"

    with pytest.raises(TypeError, match="kind"):
        NoKind({}, None)
