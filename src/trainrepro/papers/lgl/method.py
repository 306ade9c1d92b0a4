"""Local-to-Global Learning (Cheng et al., CVPR 2019), Algorithm 1, and its compute-matched baseline.

    G <- the first ceil(K/m) classes (chosen at random, Sec. 4.1)
    for step k = 1 .. m:
        train the network on the classes in G until convergence        (Alg. 1, Sec. 4.2)
        choose the next ceil(K/m) classes with the selection strategy f  (Sec. 4.4, Eq. 7-9)
        re-initialise the classifier rows of the untrained classes      (Sec. 4.2, deep nets)
        G <- G + new classes;  lr <- lr_initial                          (Alg. 1)

The classifier keeps all K outputs with a fixed class-to-unit mapping throughout (labels are
never re-indexed) and is trained at every step. Convergence is a parameter: a fixed number of
epochs per step (the paper's time analysis, Sec. 4.3) or a validation-loss plateau on the
active classes with a cap. Selection: r = random (seeded), d = highest conditional entropy
H_w(T|X_i) of the softmax restricted to the trained classes (most dissimilar), s = lowest.

Official-code behaviours that are choices, not defects, are switches (defaults = paper):
`reset_momentum` (the official code keeps momentum buffers), `epochs_per_step` (the official
code trains 99 epochs per step). Its defects (untrained classifier, shifting label indices,
selection on the test set) are not reproduced.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from ...methods.base import Method, TrainerView, register
from ...methods.common import class_conditional_entropy, train_indices_of_classes
from ...registry import ConfigError


def group_sizes(num_classes: int, steps: int, grouping: str = "ceil") -> list[int]:
    """Classes added per step. "ceil" (paper, Sec. 4.3): ceil(K/m) per step, the last step takes
    the remainder (so fewer than m steps when ceil(K/m)*(m-1) >= K); "balanced": exactly m
    steps whose sizes differ by at most one."""
    if not 1 <= steps <= num_classes:
        raise ConfigError(f"steps: {steps} must lie in [1, {num_classes}] (the number of classes)")
    if grouping == "balanced":
        base, extra = divmod(num_classes, steps)
        return [base + (1 if i < extra else 0) for i in range(steps)]
    per = math.ceil(num_classes / steps)
    sizes = [per] * (num_classes // per)
    if num_classes % per:
        sizes.append(num_classes % per)
    return sizes


def class_order(num_classes: int, seed: int) -> list[int]:
    """A seeded random permutation of the classes (the learning sequence of strategy r)."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(num_classes, generator=g).tolist()


def random_groups(order: list[int], sizes: list[int]) -> list[list[int]]:
    """Strategy r's groups: the class order cut into consecutive groups of `sizes`."""
    ends = [sum(sizes[:i + 1]) for i in range(len(sizes))]
    return [sorted(order[e - n:e]) for e, n in zip(ends, sizes)]


def lgl_sample_visits(class_counts: list[int], groups: list[list[int]], step_len: int) -> int:
    """Sample visits of a fixed-epoch LGL run: step k trains `step_len` epochs on every training
    sample of the classes in groups[0..k]."""
    visits, active = 0, 0
    for g in groups:
        active += sum(class_counts[c] for c in g)
        visits += step_len * active
    return visits


def select_by_entropy(entropy: dict[int, float], size: int, strategy: str) -> list[int]:
    """d: the `size` classes with the highest H_w(T|X_i) (Eq. 9); s: the lowest. Ties by index."""
    if strategy not in ("d", "s"):
        raise ValueError(f"entropy selection needs strategy d or s, got {strategy!r}")
    sign = -1.0 if strategy == "d" else 1.0
    ranked = sorted(entropy, key=lambda c: (sign * entropy[c], c))
    return sorted(ranked[:size])


@torch.no_grad()
def reinit_classifier_rows(layer: torch.nn.Module, rows: list[int], generator: torch.Generator,
                           optimizer: torch.optim.Optimizer | None = None) -> None:
    """Re-draw the output rows `rows` (weight and bias) with PyTorch's default Linear init,
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)); other rows are untouched. Optimizer state rows
    (momentum) of those outputs are zeroed so the fresh rows start without stale momentum."""
    if not rows:
        return
    w = layer.weight
    fan_in = int(w[0].numel())
    bound = 1.0 / math.sqrt(fan_in)
    idx = torch.as_tensor(rows, dtype=torch.long, device=w.device)
    new_w = torch.empty((len(rows),) + tuple(w.shape[1:])).uniform_(-bound, bound, generator=generator)
    w[idx] = new_w.to(w.device, w.dtype)
    params = [w]
    if getattr(layer, "bias", None) is not None:
        new_b = torch.empty(len(rows)).uniform_(-bound, bound, generator=generator)
        layer.bias[idx] = new_b.to(layer.bias.device, layer.bias.dtype)
        params.append(layer.bias)
    if optimizer is not None:
        for p in params:
            for v in optimizer.state.get(p, {}).values():
                if torch.is_tensor(v) and v.shape == p.shape:
                    v[idx] = 0


@register
class LGL(Method):
    """LGL(strategy, m): train on a growing set of classes, ceil(K/m) more per step."""

    family = "lgl"
    defaults = {
        "strategy": "r",            # Sec. 4.4: r random | d most dissimilar | s most similar
        "steps": 3,                 # m (Sec. 4.3): ceil(K/m) classes added per step
        "grouping": "ceil",         # ceil (paper) | balanced (m steps, sizes differ by <= 1)
        "convergence": "fixed",     # fixed epochs per step (Sec. 4.3) | plateau of active val loss
        "epochs_per_step": 0,       # 0 = train.epochs (Sec. 5.2: same settings as the baseline)
        "max_epochs_per_step": 0,   # plateau cap; 0 = train.epochs
        "patience": 3,              # plateau: epochs without improvement that end a step
        "min_delta": 0.0,           # plateau: improvement smaller than this does not count
        "reset_momentum": False,    # Alg. 1 resets only the lr; True drops momentum per step
        "reinit_untrained": True,   # Sec. 4.2: re-initialise untrained classes' classifier rows
        "order_seed": -1,           # seed of the class order; -1 = the run seed
    }
    ranges = {"steps": (1, None), "epochs_per_step": (0, None), "max_epochs_per_step": (0, None),
              "patience": (1, None), "min_delta": (0.0, None), "order_seed": (-1, None)}
    choices = {"strategy": ["r", "d", "s"], "grouping": ["ceil", "balanced"],
               "convergence": ["fixed", "plateau"]}

    def __init__(self, params: dict[str, Any], trainer: TrainerView):
        super().__init__(params, trainer)
        p = self.p
        self.K = trainer.data.num_classes
        self.sizes = group_sizes(self.K, int(p["steps"]), p["grouping"])
        seed = int(trainer.cfg["seed"]) if p["order_seed"] < 0 else int(p["order_seed"])
        self.seed = seed
        self.order = class_order(self.K, seed)   # r: the whole sequence; d/s: its first group
        base = int(trainer.cfg["epochs"])
        self.step_len = int(p["epochs_per_step"]) or base
        if p["convergence"] == "plateau":
            self.step_len = int(p["max_epochs_per_step"]) or base
        # Method state (saved in checkpoints).
        self.step = 0
        self.step_start = 0
        self.groups: list[list[int]] = [sorted(self.order[:self.sizes[0]])]
        self.best = math.inf
        self.bad = 0
        self.step_epochs: list[int] = []
        self.selections: list[dict[str, Any]] = []
        self._active: tuple[int, torch.Tensor] | None = None
        self._val_loss_active = math.nan

    # --- schedule of classes -----------------------------------------------------------------
    @property
    def trained_classes(self) -> list[int]:
        return sorted(c for g in self.groups[:self.step + 1] for c in g)

    def planned_epochs(self, epochs: int) -> int:
        return len(self.sizes) * self.step_len

    def phase(self, epoch: int) -> int:
        return self.step

    def active_subset(self, epoch: int) -> torch.Tensor:
        if len(self.groups) <= self.step:      # a new step: choose its classes first
            self.select_classes(self.step)
        if self._active is None or self._active[0] != self.step:
            self._active = (self.step, train_indices_of_classes(self.trainer, self.trained_classes))
        return self._active[1]

    def select_classes(self, phase: int) -> None:
        """Choose step `phase`'s classes with strategy f. Called from `active_subset`, so that the
        selection (d / s: a forward pass over every untrained class) lies in the engine's timed
        region, as SPL's scoring does (Sec. 4.3 compares the training time of both). Untrained
        rows may already be re-initialised: H_w(T|X_i) uses only the trained classes' outputs."""
        trained = sorted(c for g in self.groups[:phase] for c in g)
        untrained = [c for c in range(self.K) if c not in trained]
        entropy = class_conditional_entropy(self.trainer, untrained, trained)
        if self.p["strategy"] == "r":
            chosen = random_groups(self.order, self.sizes)[phase]
        else:
            chosen = select_by_entropy(entropy, self.sizes[phase], self.p["strategy"])
        self.groups.append(chosen)
        self.selections.append({"step": phase, "trained": trained, "chosen": chosen,
                                "entropy": {str(c): h for c, h in entropy.items()}})

    def on_epoch_start(self, epoch: int) -> None:
        # Idempotent: the lr schedule of every step starts at step_start and spans one step.
        self.trainer.restart_schedule(self.step_start, self.step_len)

    def on_phase_change(self, phase: int) -> None:
        """Step `phase` begins: re-init untrained rows, reset the lr (its classes are chosen by
        `select_classes` at the step's first `active_subset`)."""
        tr = self.trainer
        trained = sorted(c for g in self.groups[:phase] for c in g)
        untrained = [c for c in range(self.K) if c not in trained]
        if self.p["reinit_untrained"]:
            g = torch.Generator().manual_seed(self.seed * 1000 + phase)
            reinit_classifier_rows(tr.model.classifier, untrained, g,
                                   None if self.p["reset_momentum"] else tr.optimizer)
        if self.p["reset_momentum"]:
            tr.reset_optimizer_state()
        tr.restart_schedule(self.step_start, self.step_len)
        self.best, self.bad = math.inf, 0

    # --- convergence ---------------------------------------------------------------------------
    @torch.no_grad()
    def _active_val_loss(self) -> float:
        data = self.trainer.data
        cls = torch.as_tensor(self.trained_classes, device=data.val_idx.device)
        idx = data.val_idx[torch.isin(data.val_y[data.val_idx], cls)]
        if len(idx) == 0:
            return math.nan
        logits = self.trainer.predict(idx)
        return float(torch.nn.functional.cross_entropy(logits, data.val_y[idx]))

    def epoch_metrics(self) -> dict[str, float]:
        row = {"lgl_step": self.step, "n_classes": len(self.trained_classes)}
        if self.p["convergence"] == "plateau":
            self._val_loss_active = self._active_val_loss()
            row["val_loss_active"] = self._val_loss_active
        return row

    def step_converged(self, epoch: int) -> bool:
        n = epoch - self.step_start + 1
        if self.p["convergence"] == "fixed":
            return n >= self.step_len
        loss = self._val_loss_active
        if math.isfinite(loss) and loss < self.best - self.p["min_delta"]:
            self.best, self.bad = loss, 0
        else:
            self.bad += 1
        return self.bad >= self.p["patience"] or n >= self.step_len

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> bool:
        if not self.step_converged(epoch):
            return False
        self.step_epochs.append(epoch - self.step_start + 1)
        if self.step == len(self.sizes) - 1:
            return True                      # all K classes trained to convergence
        self.step += 1
        self.step_start = epoch + 1
        return False

    # --- records -----------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        return {"strategy": self.p["strategy"], "steps": len(self.sizes), "sizes": self.sizes,
                "order": self.order, "groups": self.groups, "step_epochs": self.step_epochs,
                "selections": self.selections}

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "step_start": self.step_start, "groups": self.groups,
                "best": self.best, "bad": self.bad, "step_epochs": self.step_epochs,
                "selections": self.selections}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
        self._active = None


@register
class ComputeMatchedBaseline(Method):
    """Plain training (the Baseline) given the compute of an LGL(r, m) run of the same seed.

    match = sample_visits (default): as many sample visits (forward + backward passes of one
    training sample) as that LGL run makes over all its steps, sum_k step_len x |samples of the
    classes trained at step k| for the run seed's class order -- about (m + 1)/2 epochs' worth per
    baseline epoch (Sec. 4.3), not m; whole epochs, then a last epoch on a seeded random subset of
    the remainder, so the count is exact. epochs: m x train.epochs epochs (as many epochs as LGL,
    i.e. about 2m/(m + 1) times its sample visits); formula: ceil(train.epochs (m + 1) / 2)
    epochs (Sec. 4.3's 1/2 t (m + 1) for equal class sizes). `steps`, `grouping`,
    `epochs_per_step` and `order_seed` mean what they mean for the LGL run matched (fixed-epoch
    convergence). The lr schedule spans the whole (longer) run: a schedule that ignores the run
    length (exponential without decay_epochs) leaves the extra epochs at a near-zero lr."""

    family = "baseline_matched"
    defaults = {"steps": 4, "match": "sample_visits", "grouping": "ceil", "epochs_per_step": 0,
                "order_seed": -1}
    ranges = {"steps": (1, None), "epochs_per_step": (0, None), "order_seed": (-1, None)}
    choices = {"match": ["sample_visits", "epochs", "formula"], "grouping": ["ceil", "balanced"]}

    def __init__(self, params: dict[str, Any], trainer: TrainerView):
        super().__init__(params, trainer)
        p = self.p
        self.seed = int(trainer.cfg["seed"])
        base = int(trainer.cfg["epochs"])
        k = trainer.data.num_classes
        labels = trainer.data.noisy[trainer.data.train_idx]
        counts = torch.bincount(labels, minlength=k).tolist()
        order_seed = self.seed if p["order_seed"] < 0 else int(p["order_seed"])
        groups = random_groups(class_order(k, order_seed), group_sizes(k, int(p["steps"]), p["grouping"]))
        self.lgl_visits = lgl_sample_visits(counts, groups, int(p["epochs_per_step"]) or base)
        self.n_train = len(trainer.data.train_idx)
        m = len(groups)
        if p["match"] == "sample_visits":
            self.full_epochs, self.remainder = divmod(self.lgl_visits, self.n_train)
        elif p["match"] == "epochs":
            self.full_epochs, self.remainder = m * base, 0
        else:
            self.full_epochs, self.remainder = math.ceil(base * (m + 1) / 2), 0

    def planned_epochs(self, epochs: int) -> int:
        return self.full_epochs + (1 if self.remainder else 0)

    def active_subset(self, epoch: int) -> torch.Tensor | None:
        if epoch < self.full_epochs or not self.remainder:
            return None                                   # a whole epoch
        g = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        idx = self.trainer.data.train_idx
        pick = torch.randperm(len(idx), generator=g)[:self.remainder].to(idx.device)
        return idx[torch.sort(pick).values]

    def summary(self) -> dict[str, Any]:
        visits = self.full_epochs * self.n_train + self.remainder
        return {"match": self.p["match"], "steps": int(self.p["steps"]),
                "lgl_sample_visits": self.lgl_visits, "sample_visits": visits,
                "full_epochs": self.full_epochs, "last_epoch_samples": self.remainder}
