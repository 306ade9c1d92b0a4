"""Scale-out (issue 12) on CPU: device slots (fake GPU lists, a CPU pool pinned per slot),
the submitit executor (its local executor: gather, failed-job report, interrupted job resumes),
and torchrun DDP with gloo (2 processes vs 1 with the same global batch; kill and resume)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from trainrepro.config import RUNTIME_DEFAULTS, load_params, validate_runtime
from trainrepro.data.loader import DeviceData
from trainrepro.data.prepared import load_prepared
from trainrepro.parallel import current_slot, device_slots, gather_jobs, run_jobs, submit_jobs
from trainrepro.registry import ConfigError
from trainrepro import runner
from trainrepro.runner import execute, run_study

REPO = Path(__file__).resolve().parent.parent
# The DDP tolerance: 2 gloo ranks sum gradients in another order than one process does
# (measured: at most 4.3e-7 on any loss, over 6 and over 12 epochs; accuracies equal).
DDP_ATOL = 1e-5


def test_device_slots_spread_selected_gpus_and_share_each_runs_per_gpu_times():
    assert device_slots("cuda", gpus="all", runs_per_gpu=1, visible=4) == [f"cuda:{i}" for i in range(4)]
    assert device_slots("cuda", gpus=[1, 3], runs_per_gpu=3, visible=4) == ["cuda:1", "cuda:3"] * 3
    assert device_slots("cuda", gpus="all", runs_per_gpu=2, visible=2) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert device_slots("cuda:1", gpus="all", visible=2) == ["cuda:1"]
    assert device_slots("cpu", workers=3, gpus=[0, 1], runs_per_gpu=4) == ["cpu"] * 3
    with pytest.raises(ConfigError, match=r"runtime.gpus: \[2\] not among the 2 visible GPUs"):
        device_slots("cuda", gpus=[0, 2], visible=2)
    with pytest.raises(ConfigError, match="runtime.gpus"):
        device_slots("cuda", gpus="all", visible=0)


@pytest.mark.parametrize("key,value,msg", [
    ("gpus", [0, 0], "runtime.gpus: .*distinct"), ("gpus", "0,1", "runtime.gpus"), ("gpus", [], "runtime.gpus"),
    ("runs_per_gpu", 0, r"runtime.runs_per_gpu: 0 is out of range"),
    ("executor", "ray", "runtime.executor: 'ray' is not allowed; allowed: local, submitit"),
    ("slurm", {"cluster": "pbs"}, "runtime.slurm.cluster: 'pbs' is not allowed; allowed: auto, slurm, local, debug"),
    ("slurm", {"time_min": 0}, "runtime.slurm.time_min: 0 is out of range"),
    ("slurm", {"runs_per_job": 1.5}, "runtime.slurm.runs_per_job: expected int"),
    ("slurm", {"gpu": 1}, "runtime.slurm.gpu: unknown key"),
])
def test_runtime_scaleout_keys_are_validated_with_one_line_errors(key, value, msg):
    validate_runtime({"gpus": [0, 1], "runs_per_gpu": 2, "executor": "submitit",
                      "slurm": {"partition": "gpu", "gpus_per_job": 2, "runs_per_job": 8}})
    with pytest.raises(ConfigError, match=msg):
        validate_runtime({**RUNTIME_DEFAULTS, key: value})


def _where(job: tuple[int, str, int]) -> tuple[int, int, str | None]:
    """(job id, pid, slot); waits until `need` worker processes have checked in (so that every
    worker gets work however slowly the others start)."""
    i, folder, need = job
    (Path(folder) / str(os.getpid())).touch()
    deadline = time.time() + 120
    while len(list(Path(folder).iterdir())) < need and time.time() < deadline:
        time.sleep(0.01)
    return i, os.getpid(), current_slot()


def test_pool_pins_each_worker_to_one_slot_and_at_most_runs_per_gpu_workers_per_device(tmp_path):
    slots = device_slots("cuda", gpus=[0, 1], runs_per_gpu=2, visible=2)
    fake = [s.replace("cuda", "fake") for s in slots]  # no CUDA call for a fake device
    assert fake == ["fake:0", "fake:1", "fake:0", "fake:1"]
    out = run_jobs(_where, [(i, str(tmp_path), 2) for i in range(6)], threads=1, progress=False,
                   slots=fake[:2])
    assert [o[0] for o in out] == list(range(6))  # submission order
    slot_of: dict[int, str] = {}
    for _, pid, slot in out:
        assert slot_of.setdefault(pid, slot) == slot  # a worker never changes device
    assert sorted(slot_of.values()) == ["fake:0", "fake:1"]  # one worker per slot
    assert os.getpid() not in slot_of
    # One slot: in this process, pinned for the call only.
    one = run_jobs(_where, [(0, str(tmp_path), 1)], slots=["fake:1"], progress=False)
    assert one[0][1:] == (os.getpid(), "fake:1")
    assert current_slot() is None


# --- run matrices on the tiny profile's foundation study (4 runs, digits) ---------------------

def tiny_params(tmp: Path, **runtime) -> Path:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["profile"] = "tiny"
    raw["runtime"].update({"device": "cpu", "progress": False, **runtime})
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / f"params-{len(list(tmp.glob('params-*')))}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def records(results: Path, study: str = "foundation") -> dict[str, dict]:
    index = json.loads((results / study / "index.json").read_text())
    out = {}
    for run in index["runs"]:
        rd = Path(run["run_dir"])
        rec = json.loads((rd / "metrics.json").read_text())
        h = pd.read_csv(rd / "history.csv")
        h = h.drop(columns=[c for c in h.columns if c.endswith(("_time_s", "_cpu_s"))])
        out[str(rd.relative_to(results))] = {"reported": rec["reported"], "status": rec["status"],
                                             "resumed": rec["resumed"], "history": h, "rec": rec}
    return out


def same_runs(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys() and a
    for k in a:
        assert a[k]["status"] == b[k]["status"] == "ok", k
        pd.testing.assert_frame_equal(a[k]["history"], b[k]["history"], check_exact=atol == 0,
                                      atol=atol or None, rtol=0 if atol else None)


@pytest.fixture(scope="module")
def sequential(prepared_digits, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seq")
    params = load_params(tiny_params(tmp, workers=1))
    run_study(params, "foundation", str(prepared_digits.parent), str(tmp / "results"))
    return records(tmp / "results")


def test_slotted_cpu_pool_gives_the_sequential_results(sequential, prepared_digits, tmp_path):
    params = load_params(tiny_params(tmp_path, workers=2))
    run_study(params, "foundation", str(prepared_digits.parent), str(tmp_path / "results"))
    same_runs(records(tmp_path / "results"), sequential)


def test_submitit_executor_runs_pending_runs_as_jobs_and_gathers_their_records(sequential, prepared_digits,
                                                                               tmp_path):
    slurm = {"cluster": "local", "runs_per_job": 3, "folder": str(tmp_path / "logs"), "gpus_per_job": 0}
    params = load_params(tiny_params(tmp_path, workers=1, executor="submitit", slurm=slurm))
    summaries = run_study(params, "foundation", str(prepared_digits.parent), str(tmp_path / "results"))
    assert len(summaries) == 4 and all(s["status"] == "ok" for s in summaries)
    same_runs(records(tmp_path / "results"), sequential)
    jobs = [p for p in (tmp_path / "logs").iterdir() if p.name.isdigit()]
    assert len(jobs) == 2  # 4 runs in groups of 3
    # A second stage run submits nothing: every record matches its config hash.
    assert run_study(params, "foundation", str(prepared_digits.parent), str(tmp_path / "results")) == []


def _study_jobs(monkeypatch, prepared_digits, tmp_path, epochs: int = 3) -> list[dict]:
    """The pending jobs run_study would hand to the pool for the foundation study."""
    captured: list = []
    params = load_params(tiny_params(tmp_path))
    params.raw["profiles"]["tiny"]["train"]["epochs"] = epochs
    with monkeypatch.context() as m:
        m.setattr(runner, "run_jobs", lambda fn, jobs, **kw: captured.extend(jobs) or [
            {"status": "ok", "name": j["cfg"]["name"]} for j in jobs])
        run_study(params, "foundation", str(prepared_digits.parent), str(tmp_path / "results"))
    return captured


def test_failed_cluster_job_is_reported_with_its_error_and_log(monkeypatch, prepared_digits, tmp_path):
    jobs = _study_jobs(monkeypatch, prepared_digits, tmp_path)[:2]
    jobs[1] = {**jobs[1], "method_module": "trainrepro.no_such_module"}
    submitted = submit_jobs(execute, jobs, {"cluster": "local", "folder": str(tmp_path / "logs")},
                            device="cpu")
    with pytest.raises(RuntimeError) as err:
        gather_jobs(submitted, len(jobs), progress=False, poll_s=0.2)
    msg = str(err.value)
    bad = submitted[1][0]
    assert msg.startswith("1 of 2 cluster jobs failed")
    assert f"cluster job {bad.job_id} (jobs 1..1) failed" in msg
    assert "No module named 'trainrepro.no_such_module'" in msg  # the error and the log's tail
    assert str(bad.paths.stderr) in msg and Path(bad.paths.stderr).exists()
    assert json.loads((Path(jobs[0]["run_dir"]) / "metrics.json").read_text())["status"] == "ok"


def test_interrupted_cluster_job_is_requeued_and_resumes_from_its_checkpoint(monkeypatch, prepared_digits,
                                                                             tmp_path):
    ref = _study_jobs(monkeypatch, prepared_digits, tmp_path / "ref", epochs=15)[:1]
    ref_dir = Path(ref[0]["run_dir"])
    execute(ref[0])  # uninterrupted, in this process
    job = {**ref[0], "run_dir": str(tmp_path / "run")}
    submitted = submit_jobs(execute, [job], {"cluster": "local", "folder": str(tmp_path / "logs")},
                            device="cpu")
    ck = Path(job["run_dir"]) / "checkpoint.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not ck.exists():
        time.sleep(0.02)
    assert ck.exists(), "no checkpoint appeared"
    # What SLURM does at preemption or near the time limit: USR2 to the job's task process (the
    # child of submitit's local controller).
    os.kill(children(submitted[0][0]._process.pid)[0], signal.SIGUSR2)
    gather_jobs(submitted, 1, progress=False, poll_s=0.2)
    rec = json.loads((Path(job["run_dir"]) / "metrics.json").read_text())
    ref_rec = json.loads((ref_dir / "metrics.json").read_text())
    assert rec["resumed"] is True and rec["status"] == "ok"
    assert rec["reported"] == ref_rec["reported"]
    log = Path(submitted[0][0].paths.stderr).read_text() + Path(submitted[0][0].paths.stdout).read_text()
    assert "Requeued job" in log or "requeu" in log.lower()


# --- torchrun DDP with gloo -------------------------------------------------------------------

def test_ddp_shards_partition_each_global_batch_with_the_same_augmentation(prepared_digits):
    ds = load_prepared(prepared_digits, ("symmetric_incl", 0.4, 0))
    data = DeviceData(ds, "cpu", augment="crop_flip")
    assert ds.is_image
    idx = data.train_idx[:203]
    one = list(data.train_batches(idx, 50, torch.Generator().manual_seed(3)))
    for world in (2, 3):
        ranks = [list(data.train_batches(idx, 50, torch.Generator().manual_seed(3), r, world))
                 for r in range(world)]
        for step, full in enumerate(one):
            parts = [ranks[r][step] for r in range(world)]
            assert max(len(p.y) for p in parts) - min(len(p.y) for p in parts) <= 1
            for field in ("x", "y", "idx"):
                assert torch.equal(torch.cat([getattr(p, field) for p in parts]), getattr(full, field))


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants, parents first (no one is left to respawn)."""
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children(p)
    for p in seen:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _torchrun(nproc: int, params: Path, prepared: Path, results: Path, **popen):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           str(REPO / "stages/train.py"), "foundation", "--params", str(params),
           "--prepared", str(prepared), "--results", str(results)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    if popen:
        return subprocess.Popen(cmd, cwd=REPO, env=env, **popen)
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r


def ddp_params(tmp: Path, epochs: int) -> Path:
    path = tiny_params(tmp, workers=1)
    raw = yaml.safe_load(path.read_text())
    raw["profiles"]["tiny"]["train"].update({"epochs": epochs, "batch_size": 75})  # 37/38 shards
    raw["profiles"]["tiny"]["studies"]["foundation"][0].update({"noise": [0.4], "seeds": [0]})
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_torchrun_two_gloo_ranks_match_one_process_and_resume_after_a_kill(prepared_digits, tmp_path):
    params = ddp_params(tmp_path, epochs=6)
    run_study(load_params(params), "foundation", str(prepared_digits.parent), str(tmp_path / "one"))
    r = _torchrun(2, params, prepared_digits.parent, tmp_path / "two")
    assert "foundation: 1 runs, 1 trained now" in r.stdout
    one, two = records(tmp_path / "one"), records(tmp_path / "two")
    same_runs(two, one, atol=DDP_ATOL)
    rec = next(iter(two.values()))["rec"]
    assert rec["distributed"] == {"world_size": 2, "backend": "gloo", "global_batch_size": 75}
    assert "distributed" not in next(iter(one.values()))["rec"]
    # Killed mid-run (whole process group), then the same command: resumes from rank 0's checkpoint.
    proc = _torchrun(2, params, prepared_digits.parent, tmp_path / "killed",
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "killed").rglob("checkpoint.pt")):
        time.sleep(0.02)
    kill_tree(proc.pid)  # torchrun and its ranks (each rank is in a session of its own)
    proc.wait()
    assert list((tmp_path / "killed").rglob("checkpoint.pt")), "finished before the kill"
    _torchrun(2, params, prepared_digits.parent, tmp_path / "killed")
    resumed = records(tmp_path / "killed")
    assert next(iter(resumed.values()))["resumed"] is True
    same_runs(resumed, two)  # exact: gloo on CPU is deterministic
