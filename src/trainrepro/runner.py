"""Runs the runs of a study: skips those whose record matches their config hash, resumes
interrupted ones from their checkpoint, and runs the rest through the project's process pool
(`parallel.run_jobs`: CPU workers, or one worker per GPU slot, `runtime.gpus` x
`runtime.runs_per_gpu`), as SLURM jobs through submitit (`runtime.executor: submitit`), or one
at a time over all ranks under torchrun (DDP, `distributed`). A worker imports the module of its
run's method by the name the method registry records, so it loads only that method's paper
(core never imports a paper)."""
from __future__ import annotations

import importlib
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from . import distributed
from .config import Params, RunSpec, code_hash, expand_study
from .data.loader import RunData, make_data
from .data.prepared import load_prepared
from .data.splits import with_fold
from .engine import Trainer, resolve_device
from .io import read_json, sha256_file, stable_hash, write_json
from .methods import METHODS
from .parallel import current_slot, device_slots, gather_jobs, run_jobs, submit_jobs

_DATA_CACHE: dict[tuple, Any] = {}


def run_config(spec: RunSpec, prepared_root: str | Path, extra_inputs: dict[str, str]) -> dict[str, Any]:
    """The resolved config of a run (what the record stores and the hash covers)."""
    manifest = Path(prepared_root) / spec.dataset / "manifest.json"
    cfg = {
        **spec.train, "name": f"{spec.study}/{spec.run_dir}", "study": spec.study,
        "cell": spec.cell, "dataset": spec.dataset, "dataset_cfg": spec.dataset_cfg,
        "data_sha256": sha256_file(manifest), "noise": list(spec.noise), "method": spec.method,
        "method_family": spec.method_family, "method_params": spec.method_params,
        "seed": spec.seed, "code_hash": code_hash(METHODS[spec.method_family].__module__),
        "inputs": extra_inputs,
    }
    cfg["config_hash"] = stable_hash({k: v for k, v in cfg.items() if k != "name"})
    return cfg


def is_done(run_dir: Path, config_hash: str) -> bool:
    path = run_dir / "metrics.json"
    if not path.exists():
        return False
    try:
        rec = read_json(path)
    except (ValueError, OSError):
        return False
    return rec.get("config", {}).get("config_hash") == config_hash and rec.get("status") in ("ok", "diverged")


def run_data(prepared: str | Path, cfg: dict[str, Any], device: torch.device) -> RunData:
    """The run's data (cached per worker across runs that share it): on the device, or streamed
    from the host for a memmap-stored dataset (loader.make_data). With
    `train.kfold` = k >= 2 the train/validation split is fold (seed mod k) of a k-fold partition
    of train + validation (data/splits.py), the test split unchanged."""
    k = int(cfg.get("kfold", 0))
    fold = int(cfg["seed"]) % k if k else None
    key = (str(prepared), tuple(cfg["noise"]), str(device), cfg["augment"], cfg["val_labels"], k, fold)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()
        ds = load_prepared(prepared, tuple(cfg["noise"]))
        if k:
            ds = with_fold(ds, k, fold, int(cfg["dataset_cfg"].get("data_seed", 0)))
        _DATA_CACHE[key] = make_data(ds, device, augment=cfg["augment"],
                                     channels_last=device.type == "cuda", val_labels=cfg["val_labels"])
    return _DATA_CACHE[key]


def execute(job: dict[str, Any]) -> dict[str, Any]:
    """Worker entry point: train one run (in this process) and return a short summary."""
    importlib.import_module(job["method_module"])  # registers the family in this process
    cfg, device = job["cfg"], resolve_device(current_slot() or job["device"])
    if is_done(Path(job["run_dir"]), cfg["config_hash"]):  # a requeued cluster job's finished runs
        rec = read_json(Path(job["run_dir"]) / "metrics.json")
        return _summary(cfg, rec)
    if device.type == "cpu":
        torch.set_num_threads(int(job["threads"]))
    data = run_data(job["prepared"], cfg, device)
    try:
        trainer = Trainer(cfg, data, METHODS[cfg["method_family"]], cfg["method_params"],
                          run_dir=job["run_dir"], progress=job.get("progress_epochs", False))
        rec = trainer.fit()
    except Exception as e:  # recorded, and the stage fails at the end
        rec = {"status": "failed", "error": f"{type(e).__name__}: {e}",
               "traceback": traceback.format_exc(), "config": cfg}
        if distributed.is_main():
            write_json(Path(job["run_dir"]) / "metrics.json", rec)
    return _summary(cfg, rec)


def _summary(cfg: dict[str, Any], rec: dict[str, Any]) -> dict[str, Any]:
    return {"name": cfg["name"], "status": rec["status"], "error": rec.get("error"),
            "test_acc": rec.get("reported", {}).get("test_acc"), "wall": rec.get("wall_time_s")}


def run_study(params: Params, study: str, prepared_root: str = "data/prepared",
              results_root: str = "results", extra_inputs: dict[str, str] | None = None,
              runs: list[RunSpec] | None = None) -> list[dict[str, Any]]:
    """Run every pending run of `study`; write results/<study>/index.json; return summaries."""
    rt = params.runtime
    runs = runs if runs is not None else expand_study(params, study)
    runs = [replace(r, method_params={**r.method_params,
                                      **METHODS[r.method_family].resolve_run(r, results_root)})
            for r in runs]
    ddp = distributed.launched()
    device = distributed.init(rt["device"]) if ddp else resolve_device(rt["device"])
    jobs, index = [], []
    for spec in runs:
        cfg = run_config(spec, prepared_root, extra_inputs or {})
        run_dir = Path(results_root) / study / spec.run_dir
        done = is_done(run_dir, cfg["config_hash"])
        index.append({"cell": spec.cell, "seed": spec.seed, "dataset": spec.dataset,
                      "noise": spec.noise[1], "method": spec.method, "model": spec.model,
                      "tag": spec.extra.get("tag", ""), "run_dir": str(run_dir),
                      "config_hash": cfg["config_hash"]})
        if not done:
            jobs.append({"cfg": cfg, "run_dir": str(run_dir), "device": rt["device"],
                         "method_module": METHODS[spec.method_family].__module__,
                         "threads": rt["threads"], "prepared": str(Path(prepared_root) / spec.dataset)})
    progress = bool(rt["progress"]) and distributed.is_main()
    if ddp:  # every rank runs every run, one at a time, on its own device
        slots = [str(device)]
    else:
        slots = device_slots(device, int(rt["workers"]), rt["gpus"], int(rt["runs_per_gpu"]))
    for job in jobs:  # per-epoch bars only where one run at a time is slow enough to watch
        job["progress_epochs"] = progress and device.type == "cuda" and len(slots) == 1
    if rt["executor"] == "submitit" and not ddp and jobs:
        submitted = submit_jobs(execute, jobs, rt["slurm"], device=rt["device"],
                                workers=int(rt["workers"]), threads=int(rt["threads"]),
                                runs_per_gpu=int(rt["runs_per_gpu"]), name=f"train-{study}")
        summaries = gather_jobs(submitted, len(jobs), desc=f"train {study} (submitit)",
                                progress=progress)
    else:
        summaries = run_jobs(execute, jobs, threads=int(rt["threads"]), desc=f"train {study}",
                             progress=progress, slots=slots, label=lambda job: job["cfg"]["name"])
    if distributed.is_main():
        write_json(Path(results_root) / study / "index.json",
                   {"study": study, "profile": params.profile_name, "scale": params.scale, "runs": index})
    failed = [s for s in summaries if s["status"] == "failed"]
    if failed:
        lines = "; ".join(f"{s['name']}: {s['error']}" for s in failed[:5])
        raise RuntimeError(f"{len(failed)} of {len(jobs)} runs failed: {lines}")
    return summaries


__all__ = ["run_study", "run_config", "execute"]
