"""The project's one process pool: run independent jobs side by side on CPU.

Each worker is a fresh `spawn` process with its torch thread count set, so results do not depend
on the number of workers (every job seeds itself). Results come back in submission order."""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def run_jobs(fn: Callable[[Any], Any], jobs: Sequence[Any], workers: int = 1, threads: int = 1,
             desc: str = "", progress: bool = True, unit: str = "run",
             label: Callable[[Any], str] | None = None) -> list[Any]:
    """[fn(job) for job in jobs], in `workers` processes when workers > 1 (fn must be a
    module-level function); a progress bar on stderr counts finished jobs (done/total) and
    names the last one finished (`label(job)`)."""
    bar = tqdm(total=len(jobs), desc=desc, disable=not progress or not jobs, unit=unit)
    results: list[Any] = [None] * len(jobs)
    workers = min(int(workers), max(len(jobs), 1))
    try:
        if workers <= 1:
            for i, job in enumerate(jobs):
                if label is not None:
                    bar.set_postfix_str(label(job), refresh=False)
                results[i] = fn(job)
                bar.update(1)
        else:
            os.environ.setdefault("OMP_NUM_THREADS", str(threads))
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                     initializer=_init_worker, initargs=(int(threads),)) as pool:
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
