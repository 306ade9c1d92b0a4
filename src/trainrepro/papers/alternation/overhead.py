"""Fair cost ratios of the alternation steps against plain SGD (claim A9, and
benchmarks/alternation_overhead.py).

The run records' epoch times are not comparable across methods on a shared machine: each cell
ran at another time, under another load. Here the methods' trainers live in one process and
their training epochs are interleaved (the order reversed every other repeat, so a load drift
or a cache warm-up favours no method); repeat r gives the paired ratio t_method,r / t_sgd,r and
the ratio's 95% interval is the t-interval over the repeats (stats.mean_ci). On CPU the clock
is the process CPU time (robust to other processes), on CUDA the synchronised wall time.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ...engine import Trainer
from ...io import read_json
from ...methods import METHODS
from ...runner import run_data
from ...stats import mean_ci

Clock = Callable[[], float]


def clock_for(device: torch.device) -> Clock:
    """The clock a step is timed with on `device` (see the module doc)."""
    if device.type == "cuda":
        def wall() -> float:
            torch.cuda.synchronize(device)
            return time.perf_counter()
        return wall
    return time.process_time


def interleaved_epoch_times(trainers: dict[str, Any], repeats: int, epoch: int,
                            clock: Clock) -> dict[str, list[float]]:
    """`repeats` timed training epochs (number `epoch`) of every trainer, interleaved; one
    untimed epoch first (allocator and autotuning warm-up)."""
    for t in trainers.values():
        t.method.on_epoch_start(epoch)
        t.train_epoch(epoch)
    keys = list(trainers)
    times: dict[str, list[float]] = {k: [] for k in keys}
    for r in range(repeats):
        for k in (keys if r % 2 == 0 else keys[::-1]):
            s = clock()
            trainers[k].train_epoch(epoch)
            times[k].append(clock() - s)
    return times


def paired_ratio(num: list[float], den: list[float]) -> dict[str, float]:
    """Mean of the per-repeat ratios num_r / den_r with its 95% t-interval, and n."""
    ratios = [a / b for a, b in zip(num, den, strict=True) if b > 0]
    m, _, lo, hi = mean_ci(ratios)
    return {"value": m, "lo": lo, "hi": hi, "n": len(ratios)}


TIMED_METHODS = ("b_alt",)  # against "sgd" (ReLU); the other variants: the benchmark


def trainer_from_record(run_dir: str | Path, prepared_root: str | Path, device: torch.device,
                        max_examples: int) -> Trainer:
    """A fresh trainer (initial weights, no run directory) with a recorded run's config, its
    epochs limited to the first `max_examples` training examples."""
    cfg = read_json(Path(run_dir) / "metrics.json")["config"]
    data = run_data(Path(prepared_root) / cfg["dataset"], cfg, device)
    t = Trainer({**cfg, "checkpoint": False}, data, METHODS[cfg["method_family"]], cfg["method_params"])
    if len(data.train_idx) > max_examples:
        sub = data.train_idx[:max_examples]
        t.method.active_subset = lambda epoch: sub  # the same examples for every method
    return t


def study_time_ratios(runs: pd.DataFrame, prepared_root: str | Path, device: torch.device,
                      repeats: int = 10, max_examples: int = 4096,
                      methods: tuple[str, ...] = TIMED_METHODS) -> dict[str, Any]:
    """Claim A9's scalars: per method of `methods`, its epoch time over SGD's (ReLU) on the
    first (dataset, model) with an SGD and a B-alternation run, timed here (module doc);
    {value, lo, hi, n, setting} under `<method>_time_ratio`."""
    ok = runs[runs["status"] == "ok"]
    groups = [(k, g) for k, g in ok.groupby(["dataset", "model"], sort=True)
              if {"sgd", "b_alt"} <= set(g["method"])]
    if not groups:
        return {}
    (ds, model), g = groups[0]
    seed = int(g[g["method"] == "sgd"]["seed"].min())
    chosen = {m: g[(g["method"] == m) & (g["seed"] == seed)] for m in ("sgd", *methods)}
    trainers = {m: trainer_from_record(r.iloc[0]["run_dir"], prepared_root, device, max_examples)
                for m, r in chosen.items() if not r.empty}
    epoch = max(int(getattr(t.method, "warmup", 0)) for t in trainers.values())  # in the alternation
    times = interleaved_epoch_times(trainers, repeats, epoch, clock_for(device))
    setting = f"{ds} / {model}, seed {seed}, epoch {epoch}, {repeats} interleaved repeats"
    out: dict[str, Any] = {"time_ratio_definition": __doc__.split("\n\n", 1)[1].strip()}
    for m in trainers:
        if m != "sgd":
            out[f"{m}_time_ratio"] = {**paired_ratio(times[m], times["sgd"]), "setting": setting}
    return out
