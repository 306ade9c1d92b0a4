"""The single training loop. Every method of the four papers runs through `Trainer.fit`.

The engine owns device placement, the batch loop, mixed precision, evaluation, the
reported-epoch rule, logging, checkpoints/resume, divergence detection and seeding; methods
only implement the hooks of `methods.base.Method` and see the trainer through
`methods.base.TrainerView`. The engine never imports a method's module. Optimizers receive the
loss through `step(closure)` (contract: `optim/__init__.py`).
"""
from __future__ import annotations

import math
import os
import platform
import random
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from . import __version__, distributed
from .data.loader import RunData
from .io import atomic_write_text, load_torch_file, torch_save, write_json
from .methods.base import Method
from .models import build as build_model
from .optim import apply_schedule, build_optimizer, lr_factor

HISTORY_COLUMNS = ["epoch", "phase", "lr", "n_active", "train_loss", "train_acc", "val_loss",
                   "val_acc", "test_loss", "test_acc", "epoch_time_s"]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def versions() -> dict[str, str]:
    import torchvision  # heavy optional import (~0.5 s): only for the version record

    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__,
            "trainrepro": __version__}


def reported_metrics(history: list[dict[str, Any]], rule: str, k: int) -> dict[str, Any]:
    """Apply the reported-epoch rule; selection uses validation only, never the test set."""
    if not history:
        return {}
    if rule == "last":
        row = history[-1]
        return {"rule": "last", "epoch": row["epoch"], "test_acc": row["test_acc"],
                "test_loss": row["test_loss"], "val_acc": row["val_acc"]}
    if rule == "best_val":
        row = max(history, key=lambda r: (r["val_acc"], -r["val_loss"], -r["epoch"]))
        return {"rule": "best_val", "epoch": row["epoch"], "test_acc": row["test_acc"],
                "test_loss": row["test_loss"], "val_acc": row["val_acc"]}
    if rule == "mean_last_k":
        rows = history[-k:]
        return {"rule": f"mean_last_{len(rows)}", "epoch": rows[-1]["epoch"],
                "test_acc": float(np.mean([r["test_acc"] for r in rows])),
                "test_loss": float(np.mean([r["test_loss"] for r in rows])),
                "val_acc": float(np.mean([r["val_acc"] for r in rows]))}
    raise ValueError(f"unknown report_epoch rule {rule!r}")


def numpy_state_to_plain(state: tuple) -> dict[str, Any]:
    """numpy's legacy RNG state in types torch.load(weights_only=True) accepts."""
    kind, keys, pos, has_gauss, cached = state
    return {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def numpy_state_from_plain(d: dict[str, Any]) -> tuple:
    return (d["kind"], d["keys"].numpy().astype(np.uint32), d["pos"], d["has_gauss"],
            d["cached_gaussian"])


class Trainer:
    """Trains one model on one prepared dataset with one method and one seed."""

    def __init__(self, cfg: dict[str, Any], data: RunData, method_cls: type[Method],
                 method_params: dict[str, Any], run_dir: str | Path | None = None,
                 progress: bool = False):
        self.cfg = cfg
        self.data = data
        self.device = data.device
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.progress = progress
        self.cuda = self.device.type == "cuda"
        seed_everything(int(cfg["seed"]))
        self.generator = torch.Generator().manual_seed(int(cfg["seed"]))
        x = data.ds.x_pool
        in_channels = x.shape[1]
        image_size = x.shape[2] if x.ndim == 4 else 1
        model = build_model(cfg["model"], num_classes=data.num_classes, in_channels=in_channels,
                            image_size=image_size, **cfg.get("model_args", {}))
        self.method = method_cls(method_params, self)
        model = self.method.wrap_model(model).to(self.device)
        if self.cuda and data.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.forward = torch.compile(model) if (cfg.get("compile") and self.cuda) else model
        self.rank, self.world = distributed.world()
        self.train_forward = self.forward  # the training forward; DDP-wrapped under torchrun
        if self.world > 1:
            if type(self.method).sample_weights is not Method.sample_weights:
                raise ValueError(f"method family {type(self.method).family!r} is not supported under "
                                 "torchrun: its per-batch sample weights would differ across ranks; "
                                 "run it without torchrun")
            ddp = DistributedDataParallel(model, device_ids=[self.device] if self.cuda else None)
            self.train_forward = torch.compile(ddp) if (cfg.get("compile") and self.cuda) else ddp
        self.optimizer = self.build_optimizer()
        self.epochs = self.method.planned_epochs(int(cfg["epochs"]))
        self.phase_start = 0          # epoch at which the lr schedule (re)starts
        self.schedule_total = self.epochs
        self.current_phase: int | None = None
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 0
        self.status = "running"
        self.diverged_epoch: int | None = None
        self.elapsed_before = 0.0     # wall time of earlier (interrupted) attempts

    # --- pieces methods may call -------------------------------------------------------------
    def build_optimizer(self) -> torch.optim.Optimizer:
        return build_optimizer(self.cfg["optimizer"], self.model, lr=float(self.cfg["lr"]),
                               weight_decay=float(self.cfg["weight_decay"]),
                               args=self.cfg.get("optimizer_args", {}),
                               overrides=self.method.optimizer_overrides(self.model))

    def restart_schedule(self, epoch: int, total: int | None = None) -> None:
        """Restart the lr schedule at `epoch` (lr back to its initial value)."""
        self.phase_start = epoch
        if total is not None:
            self.schedule_total = total

    def reset_optimizer_state(self) -> None:
        """Drop momentum / adaptive statistics, keeping the parameter groups."""
        self.optimizer.state.clear()

    def autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda)

    @torch.no_grad()
    def predict(self, indices: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Logits (float32) for pool indices, eval mode, no augmentation, no gradient."""
        was_training = self.model.training
        self.model.eval()
        outs = []
        for b in self.data.subset_batches(indices, batch_size):
            with self.autocast():
                outs.append(self.forward(b.x).float())
        self.model.train(was_training)
        return torch.cat(outs) if outs else torch.empty(0, self.data.num_classes, device=self.device)

    @torch.no_grad()
    def evaluate(self, split: str, batch_size: int = 1024) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) on 'val' or 'test' (or 'train' with noisy labels)."""
        was_training = self.model.training
        self.model.eval()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        n = 0
        for b in self.data.eval_batches(split, batch_size):
            with self.autocast():
                logits = self.forward(b.x).float()
            loss_sum += F.cross_entropy(logits, b.y, reduction="sum")
            correct += (logits.argmax(1) == b.y).sum()
            n += len(b.y)
        self.model.train(was_training)
        if n == 0:
            return float("nan"), float("nan")
        return float(loss_sum) / n, float(correct) / n

    # --- checkpoints -------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path | None:
        return self.run_dir / "checkpoint.pt" if self.run_dir is not None else None

    def save_checkpoint(self, epoch: int, elapsed: float) -> None:
        if self.checkpoint_path is None or not self.cfg.get("checkpoint", True) or self.rank != 0:
            return
        torch_save(self.checkpoint_path, {
            "config_hash": self.cfg.get("config_hash"), "epoch": epoch,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "method": self.method.state_dict(), "history": self.history,
            "phase_start": self.phase_start, "schedule_total": self.schedule_total,
            "current_phase": self.current_phase, "elapsed": elapsed,
            "rng": {"torch": torch.get_rng_state(), "generator": self.generator.get_state(),
                    "numpy": numpy_state_to_plain(np.random.get_state()),
                    "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if self.cuda else None},
        })

    def try_resume(self) -> bool:
        path = self.checkpoint_path
        if path is None:
            return False
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # a write cut short by a kill
            stale.unlink()
        if not path.exists():
            return False
        ck = load_torch_file(path, self.device, "a checkpoint written by trainrepro's engine "
                             "(delete it to start this run over)")
        if ck.get("config_hash") != self.cfg.get("config_hash"):
            return False
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.method.load_state_dict(ck["method"])
        self.history = ck["history"]
        self.phase_start, self.schedule_total = ck["phase_start"], ck["schedule_total"]
        self.current_phase = ck["current_phase"]
        self.elapsed_before = ck["elapsed"]
        rng = ck["rng"]
        torch.set_rng_state(rng["torch"].cpu())
        self.generator.set_state(rng["generator"].cpu())
        np.random.set_state(numpy_state_from_plain(rng["numpy"]))
        random.setstate(rng["python"])
        if self.cuda and rng["cuda"] is not None:
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
        self.start_epoch = ck["epoch"] + 1
        return True

    # --- the loop ----------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict[str, Any]:
        self.model.train()
        active = self.method.active_subset(epoch)
        indices = self.data.train_idx if active is None else active.to(self.device)
        bs = int(self.cfg["batch_size"])
        steps = max(1, math.ceil(len(indices) / bs))
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        default_loss = type(self.method).loss is Method.loss
        create_graph = bool(getattr(self.optimizer, "create_graph", False))
        clip = float(self.cfg.get("grad_clip") or 0.0)
        batches = self.data.train_batches(indices, bs, self.generator, self.rank, self.world)
        for i, batch in enumerate(batches):
            progress = (epoch + i / steps) / self.epochs
            n_global = min(bs, len(indices) - i * bs)  # this step's global batch (all ranks)

            def closure(batch=batch, progress=progress) -> torch.Tensor:
                """Forward and backward of this batch (torch's optimizer closure contract)."""
                nonlocal loss_sum, correct
                self.optimizer.zero_grad(set_to_none=True)
                with self.autocast():
                    logits = self.method.forward(self.train_forward, batch)
                logits = logits.float()
                per_sample = self.method.loss(logits, batch.y, batch)
                v = self.method.sample_weights(batch, per_sample.detach(), progress)
                if self.world > 1:  # DDP averages gradients over ranks: scale to the global mean
                    loss = per_sample.sum() * (self.world / n_global)
                elif v is None:
                    loss = per_sample.mean()
                else:
                    v = v.detach()
                    denom = (v.sum().clamp_min(1e-12) if self.method.weight_normalisation == "weights"
                             else float(len(per_sample)))
                    loss = (v * per_sample).sum() / denom
                loss.backward(create_graph=create_graph)
                if clip:
                    nn.utils.clip_grad_norm_(self.model.parameters(), clip)
                with torch.no_grad():  # train loss on the noisy labels, accumulated on the device
                    ce = per_sample.detach() if default_loss else F.cross_entropy(
                        logits.detach(), batch.y, reduction="none")
                    loss_sum += ce.sum()
                    correct += (logits.detach().argmax(1) == batch.y).sum()
                return loss

            self.optimizer.step(closure)
        distributed.all_sum(loss_sum)
        distributed.all_sum(correct)
        n = max(len(indices), 1)
        return {"n_active": int(len(indices)), "train_loss": float(loss_sum) / n,
                "train_acc": float(correct) / n}

    def fit(self) -> dict[str, Any]:
        """Train (resuming from a checkpoint when one matches), write the run record."""
        resumed = self.try_resume()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        t0 = time.perf_counter()
        stop = False
        epoch = self.start_epoch
        bar = None
        if self.progress:
            bar = tqdm(total=self.epochs, initial=self.start_epoch, leave=False,
                       desc=str(self.cfg.get("name", "run")))
        while epoch < self.epochs and not stop:
            te = time.perf_counter()
            phase = self.method.phase(epoch)
            if phase != self.current_phase:
                if self.current_phase is not None:
                    self.method.on_phase_change(phase)
                self.current_phase = phase
            self.method.on_epoch_start(epoch)
            factor = lr_factor(self.cfg["schedule"], epoch - self.phase_start,
                               self.schedule_total, self.cfg.get("schedule_args", {}))
            apply_schedule(self.optimizer, factor)
            row: dict[str, Any] = {"epoch": epoch, "phase": phase,
                                   "lr": self.optimizer.param_groups[0]["lr"]}
            tt, tc = time.perf_counter(), time.process_time()
            row.update(self.train_epoch(epoch))
            row["train_time_s"] = time.perf_counter() - tt  # training only (no evaluation)
            row["train_cpu_s"] = time.process_time() - tc   # its CPU time (robust to contention)
            if not math.isfinite(row["train_loss"]):
                self.status, self.diverged_epoch = "diverged", epoch
                break
            ev = None
            if self.rank == 0:  # evaluation once, on rank 0; the other ranks get its numbers
                ev = dict(zip(("val_loss", "val_acc", "test_loss", "test_acc"),
                              (*self.evaluate("val"), *self.evaluate("test"))))
            row.update(distributed.from_main(ev))
            row.update(self.method.epoch_metrics())
            opt_metrics = getattr(self.optimizer, "epoch_metrics", None)  # optim/__init__.py contract
            if opt_metrics is not None:
                row.update(opt_metrics())
            row["epoch_time_s"] = time.perf_counter() - te
            self.history.append(row)
            stop = bool(self.method.on_epoch_end(epoch, row))
            self.save_checkpoint(epoch, self.elapsed_before + time.perf_counter() - t0)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(val=f"{row['val_acc']:.3f}")
            epoch += 1
        if bar is not None:
            bar.close()
        if self.status == "running":
            self.status = "ok"
        wall = self.elapsed_before + time.perf_counter() - t0
        record = self.finish(wall, resumed)
        distributed.barrier()  # rank 0 has written the record before any rank moves on
        return record

    def finish(self, wall: float, resumed: bool) -> dict[str, Any]:
        rule = self.cfg.get("report_epoch", "best_val")
        record = {
            "status": self.status, "diverged_epoch": self.diverged_epoch,
            "reported": reported_metrics(self.history, rule, int(self.cfg.get("report_k", 5)))
            if self.status == "ok" else {},
            "final": self.history[-1] if self.history else {},
            "epochs_run": len(self.history), "config": self.cfg, "seed": self.cfg["seed"],
            "noise": {k: v for k, v in self.data.ds.noise.items() if k != "transition_matrix"},
            "device": str(self.device) if not self.cuda else torch.cuda.get_device_name(self.device),
            "threads": torch.get_num_threads(),
            "wall_time_s": wall, "resumed": resumed, "versions": versions(),
            "peak_memory_mb": (torch.cuda.max_memory_allocated(self.device) / 2**20 if self.cuda
                               else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "peak_memory_kind": "cuda max allocated" if self.cuda else "process max RSS",
            "method_summary": self.method.summary(),
        }
        if self.world > 1:
            record["distributed"] = {"world_size": self.world, "backend": torch.distributed.get_backend(),
                                     "global_batch_size": int(self.cfg["batch_size"])}
        if self.run_dir is not None and self.rank == 0:
            self.write_record(record)
        return record

    def write_record(self, record: dict[str, Any]) -> None:

        assert self.run_dir is not None
        cols = HISTORY_COLUMNS + sorted({k for r in self.history for k in r} - set(HISTORY_COLUMNS))
        atomic_write_text(self.run_dir / "history.csv",
                          pd.DataFrame(self.history, columns=cols).to_csv(index=False))
        write_json(self.run_dir / "metrics.json", record)
        if self.checkpoint_path is not None and self.checkpoint_path.exists():
            os.unlink(self.checkpoint_path)
