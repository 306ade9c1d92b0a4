"""The project's one process pool: run independent jobs side by side, on CPU or pinned to GPUs.

Each worker is a fresh `spawn` process with its torch thread count set, so results do not depend
on the number of workers (every job seeds itself). Results come back in submission order.

Device slots: `device_slots` turns `runtime.gpus` and `runtime.runs_per_gpu` into one device per
worker (["cuda:0", "cuda:1", "cuda:0", "cuda:1"] for 2 GPUs x 2 runs each); each worker takes one
slot when it starts and keeps it for its life, so a run executes on the device of the worker
that picked it up (`current_slot()`), and at most `runs_per_gpu` runs share one GPU.

`submit_jobs` / `gather_jobs` are the same map through submitit (SLURM, or its local executor):
groups of jobs become cluster jobs, and each cluster job runs its group through `run_jobs` on the
slots of the GPUs it was given."""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from .registry import ConfigError

_SLOT: str | None = None  # the device this process is pinned to (None: not pinned)


def current_slot() -> str | None:
    """The device of this worker's slot, or None outside a slotted pool."""
    return _SLOT


def _set_slot(slot: str | None) -> None:
    global _SLOT
    _SLOT = slot
    if slot is not None and slot.startswith("cuda"):
        torch.cuda.set_device(torch.device(slot))


def _init_worker(threads: int, slots: Any = None) -> None:
    torch.set_num_threads(threads)
    if slots is not None:
        _set_slot(slots.get())  # one slot per worker process, for its whole life


def device_slots(device: torch.device | str, workers: int = 1, gpus: Any = "all",
                 runs_per_gpu: int = 1, visible: int | None = None) -> list[str]:
    """One device per worker. CUDA: the selected GPUs (indices among the visible ones, or
    "all"), each `runs_per_gpu` times, interleaved so that the first workers spread over the
    GPUs; `visible` defaults to torch.cuda.device_count(). CPU: `workers` x "cpu"."""
    device = torch.device(device)
    if device.type != "cuda":
        return [device.type] * max(int(workers), 1)
    visible = torch.cuda.device_count() if visible is None else int(visible)
    ids = list(range(visible)) if gpus == "all" else [int(g) for g in gpus]
    if device.index is not None and gpus == "all":
        ids = [device.index]
    missing = [i for i in ids if i >= visible]
    if missing or not ids:
        seen = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        raise ConfigError(f"runtime.gpus: {missing or ids} not among the {visible} visible GPUs; "
                          f"allowed: 'all' or indices 0..{visible - 1} (CUDA_VISIBLE_DEVICES={seen})")
    return [f"cuda:{i}" for _ in range(int(runs_per_gpu)) for i in ids]


def run_jobs(fn: Callable[[Any], Any], jobs: Sequence[Any], workers: int = 1, threads: int = 1,
             desc: str = "", progress: bool = True, unit: str = "run",
             slots: Sequence[str] | None = None,
             label: Callable[[Any], str] | None = None) -> list[Any]:
    """[fn(job) for job in jobs], in `workers` processes when workers > 1 (fn must be a
    module-level function), or in one process per entry of `slots`, each pinned to its device;
    a progress bar on stderr counts finished jobs (done/total) and names the last one finished
    (`label(job)`)."""
    bar = tqdm(total=len(jobs), desc=desc, disable=not progress or not jobs, unit=unit)
    results: list[Any] = [None] * len(jobs)
    if slots is not None:
        slots = list(slots)[:max(len(jobs), 1)]  # the first slots are spread over the devices
        workers = len(slots)
    workers = min(int(workers), max(len(jobs), 1))
    try:
        if workers <= 1:
            before = _SLOT
            if slots:
                _set_slot(slots[0])
            try:
                for i, job in enumerate(jobs):
                    if label is not None:
                        bar.set_postfix_str(label(job), refresh=False)
                    results[i] = fn(job)
                    bar.update(1)
            finally:
                if slots:
                    _set_slot(before)
        else:
            os.environ.setdefault("OMP_NUM_THREADS", str(threads))
            ctx = get_context("spawn")
            queue = None
            if slots is not None:
                queue = ctx.Queue()
                for s in slots:
                    queue.put(s)
            with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                     initargs=(int(threads), queue)) as pool:
                futures = {pool.submit(fn, job): i for i, job in enumerate(jobs)}
                for fut in as_completed(futures):
                    i = futures[fut]
                    results[i] = fut.result()
                    if label is not None:
                        bar.set_postfix_str(f"done: {label(jobs[i])}", refresh=False)
                    bar.update(1)
    finally:
        bar.close()
    return results


# --- submitit (SLURM) -------------------------------------------------------------------------

SLURM_DEFAULTS: dict[str, Any] = {
    "cluster": "auto", "partition": "", "gpus_per_job": 1, "cpus_per_job": 4, "mem_gb": 0,
    "time_min": 240, "array_parallelism": 64, "runs_per_job": 1, "folder": "logs/submitit",
    "max_requeues": 3,
}
SLURM_CHOICES = {"cluster": ["auto", "slurm", "local", "debug"]}


class JobGroup:
    """The callable a cluster job runs: its group of jobs through `run_jobs` on the slots of the
    GPUs the job was given (CPU workers otherwise). It has submitit's `checkpoint` hook: a job
    that is preempted or reaches its time limit is requeued with the same group, and each run
    resumes from its last epoch checkpoint (runs already finished are not re-run: fn skips them
    through their records)."""

    def __init__(self, fn: Callable[[Any], Any], device: str, workers: int, threads: int,
                 runs_per_gpu: int):
        self.fn, self.device, self.workers = fn, device, workers
        self.threads, self.runs_per_gpu = threads, runs_per_gpu

    def __call__(self, group: list[Any]) -> list[Any]:
        name = self.device
        if name == "auto":
            name = "cuda" if torch.cuda.is_available() else "cpu"
        slots = device_slots(name, self.workers, "all", self.runs_per_gpu)
        return run_jobs(self.fn, group, threads=self.threads, progress=False, slots=slots)

    def checkpoint(self, group: list[Any]) -> Any:
        import submitit  # optional heavy dependency, only on the submitit executor's path

        return submitit.helpers.DelayedSubmission(self, group)


def submit_jobs(fn: Callable[[Any], Any], jobs: Sequence[Any], slurm: dict[str, Any],
                device: str = "auto", workers: int = 1, threads: int = 1,
                runs_per_gpu: int = 1, name: str = "trainrepro") -> list[tuple[Any, list[int]]]:
    """Submit `jobs` in groups of `slurm.runs_per_job` (one SLURM array); returns
    [(submitit job, indices of its jobs)]. `device` is resolved on the compute node."""
    import submitit  # optional heavy dependency, only on the submitit executor's path

    s = {**SLURM_DEFAULTS, **slurm}
    folder = Path(s["folder"]) / "%j"
    ex = submitit.AutoExecutor(folder=folder, cluster=None if s["cluster"] == "auto" else s["cluster"],
                               slurm_max_num_timeout=int(s["max_requeues"]))
    on_gpu = device != "cpu" and s["gpus_per_job"] > 0
    params: dict[str, Any] = {"name": name, "timeout_min": int(s["time_min"]),
                              "cpus_per_task": int(s["cpus_per_job"]),
                              "gpus_per_node": int(s["gpus_per_job"]) if on_gpu else 0,
                              "slurm_array_parallelism": int(s["array_parallelism"])}
    if s["partition"]:
        params["slurm_partition"] = s["partition"]
    if s["mem_gb"]:
        params["mem_gb"] = int(s["mem_gb"])
    ex.update_parameters(**params)
    k = int(s["runs_per_job"])
    groups = [list(range(i, min(i + k, len(jobs)))) for i in range(0, len(jobs), k)]
    runner = JobGroup(fn, device, workers, threads, runs_per_gpu)
    with ex.batch():
        pending = [ex.submit(runner, [jobs[i] for i in g]) for g in groups]
    return list(zip(pending, groups))


def _log_tail(job: Any, lines: int = 20) -> str:
    text = ""
    for path in (job.paths.stderr, job.paths.stdout):
        if Path(path).exists():
            text = Path(path).read_text(errors="replace").strip()
            if text:
                break
    return "\n".join("    " + ln for ln in text.splitlines()[-lines:])


def gather_jobs(submitted: list[tuple[Any, list[int]]], n: int, desc: str = "",
                progress: bool = True, poll_s: float = 1.0) -> list[Any]:
    """Wait for the cluster jobs of `submit_jobs`; results in job order. A failed cluster job is
    reported with its id, its runs, its error and the tail of its log; RuntimeError lists them
    all after the others have finished."""
    results: list[Any] = [None] * n
    failures: list[str] = []
    bar = tqdm(total=n, desc=desc, disable=not progress or not n, unit="run")
    todo = list(submitted)
    try:
        while todo:
            still = []
            for job, idx in todo:
                if not job.done():
                    still.append((job, idx))
                    continue
                err = job.exception()
                if err is None:
                    for i, r in zip(idx, job.result()):
                        results[i] = r
                else:
                    first = str(err).strip().splitlines()
                    failures.append(f"cluster job {job.job_id} (jobs {idx[0]}..{idx[-1]}) failed: "
                                    f"{first[-1] if first else type(err).__name__}\n"
                                    f"  log: {job.paths.stderr}\n{_log_tail(job)}")
                bar.update(len(idx))
            todo = still
            if todo:
                time.sleep(poll_s)
    finally:
        bar.close()
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(submitted)} cluster jobs failed (re-run the "
                           "stage: finished runs are kept, interrupted ones resume from their "
                           "checkpoint):\n" + "\n".join(failures))
    return results
