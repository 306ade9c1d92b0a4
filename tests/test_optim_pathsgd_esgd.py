"""Path-SGD and ESGD: one step on a tiny problem against hand-computed values; registry,
engine integration (create_graph) and resume state."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from trainrepro.optim import OPTIMIZERS, build_optimizer


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def step_once(model, opt, x, y):
    def closure():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward(create_graph=getattr(opt, "create_graph", False))
        return loss
    return opt.step(closure)


def test_both_are_registered():
    assert {"pathsgd", "esgd"} <= set(OPTIMIZERS)


def test_pathsgd_step_uses_the_path_scaling_computed_by_hand():
    model = mlp()
    w1, b1, w2, b2 = (p.detach().clone() for p in model.parameters())
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
    # hand: gamma_in(hidden j) = sum_i W1[j,i]^2 + b1[j]^2, gamma_out(hidden j) = sum_k W2[k,j]^2
    gamma_in = (w1 ** 2).sum(1) + b1 ** 2
    gamma_out = (w2 ** 2).sum(0)
    kappa = [gamma_out[:, None].expand(4, 3), gamma_out, gamma_in[None, :].expand(2, 4), torch.ones(2)]
    ref = mlp()
    loss = F.cross_entropy(ref(x), y)
    grads = torch.autograd.grad(loss, list(ref.parameters()))
    opt = build_optimizer("pathsgd", model, lr=0.1, weight_decay=0.0, args={})
    step_once(model, opt, x, y)
    for p, p0, g, k in zip(model.parameters(), (w1, b1, w2, b2), grads, kappa):
        torch.testing.assert_close(p.detach(), p0 - 0.1 * g / k, rtol=1e-5, atol=1e-7)


def test_pathsgd_kappa_is_invariant_to_node_rescaling():
    """Path-SGD's point: rescaling a hidden unit's in-weights by c and out-weights by 1/c keeps
    the function; the path-normalised update of the function keeps it too (checked on kappa)."""
    model = mlp()
    opt = build_optimizer("pathsgd", model, lr=0.1, weight_decay=0.0, args={})
    model(torch.randn(5, 3))
    k = opt.kappa()
    with torch.no_grad():
        model[0].weight[0] *= 3.0
        model[0].bias[0] *= 3.0
        model[2].weight[:, 0] /= 3.0
    k2 = opt.kappa()
    torch.testing.assert_close(k2[0][0], k[0][0] / 9.0)   # in-edges of the unit: gamma_out / 9
    torch.testing.assert_close(k2[2][:, 0], k[2][:, 0] * 9.0)  # out-edges: gamma_in x 9


def test_pathsgd_runs_on_a_conv_net():
    from trainrepro.models import build

    torch.manual_seed(0)
    model = build("small_cnn", num_classes=10, in_channels=1, image_size=8, width=4)
    opt = build_optimizer("pathsgd", model, lr=0.01, weight_decay=5e-4, args={"momentum": 0.9})
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    losses = [float(step_once(model, opt, x, y).detach()) for _ in range(5)]
    assert all(torch.isfinite(torch.tensor(losses))) and all(torch.isfinite(p).all() for p in model.parameters())


class Quadratic(nn.Module):
    def __init__(self, a, b, w0):
        super().__init__()
        self.a, self.b = a, b
        self.w = nn.Parameter(w0.clone())

    def loss(self):
        return 0.5 * self.w @ self.a @ self.w + self.b @ self.w


def test_esgd_step_against_hand_computed_equilibration():
    a = torch.tensor([[3.0, 1.0], [1.0, 2.0]])
    b = torch.tensor([0.5, -1.0])
    w0 = torch.tensor([1.0, -2.0])
    q = Quadratic(a, b, w0)
    opt = build_optimizer("esgd", q, lr=0.1, weight_decay=0.0, args={"seed": 7, "update_every": 2})
    assert opt.create_graph

    def closure():
        opt.zero_grad(set_to_none=True)
        loss = q.loss()
        loss.backward(create_graph=True)
        return loss

    gen = torch.Generator().manual_seed(7)
    v1 = torch.randn(2, generator=gen)
    d = (a @ v1) ** 2                              # H = A, one sample
    opt.step(closure)
    w1 = w0 - 0.1 * (a @ w0 + b) / (d.sqrt() + 1e-4)
    torch.testing.assert_close(q.w.detach(), w1)
    opt.step(closure)                              # step 2: no refresh, same D
    w2 = w1 - 0.1 * (a @ w1 + b) / (d.sqrt() + 1e-4)
    torch.testing.assert_close(q.w.detach(), w2)
    v2 = torch.randn(2, generator=gen)
    opt.step(closure)                              # step 3: refresh, D / 2 samples
    d = d + (a @ v2) ** 2
    w3 = w2 - 0.1 * (a @ w2 + b) / ((d / 2).sqrt() + 1e-4)
    torch.testing.assert_close(q.w.detach(), w3)
    assert q.w.grad.grad_fn is None                # the gradient's graph was released
    sd = opt.state_dict()
    q2 = Quadratic(a, b, q.w.detach())
    opt2 = build_optimizer("esgd", q2, lr=0.1, weight_decay=0.0, args={"seed": 0, "update_every": 2})
    opt2.load_state_dict(sd)
    assert opt2.n_hv == 2 and opt2.steps == 3
    assert torch.equal(opt2.generator.get_state(), opt.generator.get_state())


def test_esgd_and_pathsgd_train_through_the_engine(prepared_digits):
    from trainrepro.data.loader import DeviceData
    from trainrepro.data.prepared import load_prepared
    from trainrepro.engine import Trainer
    from trainrepro.methods import METHODS

    from conftest import train_cfg

    data = DeviceData(load_prepared(prepared_digits, ("symmetric_incl", 0.0, 0)), "cpu")
    for name, lr in (("esgd", 0.05), ("pathsgd", 0.05)):
        t = Trainer(train_cfg(epochs=2, optimizer=name, optimizer_args={}, lr=lr), data, METHODS["fullmodel"], {})
        t.fit()
        assert t.status == "ok" and t.history[-1]["train_loss"] < t.history[0]["train_loss"]
