"""End to end: `dvc repro` of the tiny profile in a temporary copy of the repository, a no-op
re-run, byte-identical reports, a shared DVC remote (a local directory) from which second clones
reproduce the pipeline without training anything, the run-cache for the stages it accepts, a
train stage killed mid-run that resumes under `dvc repro` and ends with the same metrics as an
uninterrupted run, and DVC's experiment queue running two variants without corrupting each
other."""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
DVC = [sys.executable, "-m", "dvc"]  # the dvc of this interpreter, whatever PATH says
pytestmark = pytest.mark.slow


def sh(cmd: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd / "src")}
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def set_params(repo: Path, **edits) -> None:
    raw = yaml.safe_load((repo / "params.yaml").read_text())
    for path, value in edits.items():
        node = raw
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A copy of the repository's files (tracked and untracked-not-ignored) as a fresh git repo."""
    dst = tmp_path_factory.mktemp("e2e") / "repo"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                           cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        src = REPO / f
        if src.is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f)
    # The shared datasets folder is referenced relative to the repository.
    if (REPO.parent / "shared").exists() and not (dst.parent / "shared").exists():
        (dst.parent / "shared").symlink_to(REPO.parent / "shared")
    set_params(dst, profile="tiny")
    sh(["git", "init", "-q"], dst)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A"], dst)
    sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"], dst)
    return dst


def test_dvc_repro_runs_the_whole_pipeline_on_the_tiny_profile(repo):
    sh([*DVC, "repro"], repo)
    for out in ("reports/claims.md", "reports/metrics.json", "reports/html/overview.html",
                "reports/executed/overview.ipynb", "reports/tables/cells_foundation.md",
                "reports/tables/cells_foundation.tex", "reports/tables/cells_foundation.csv",
                "results/foundation/index.json"):
        assert (repo / out).exists(), out
    cells = pd.read_csv(repo / "reports/tables/cells_foundation.csv")
    assert len(cells) == 2 and (cells["n"] == 2).all()
    html = (repo / "reports/html/overview.html").read_text()
    assert 'src="http' not in html and "cdnjs" not in html and "cdn.jsdelivr" not in html
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert metrics["scale"] == "tiny" and set(metrics["claims"]) >= {"holds", "does_not_hold"}
    assert "M1:" in metrics["mentornet"]["verdicts"] and "baseline" in metrics["lgl"]
    cells = json.loads((repo / "reports/tables/metrics_cells.json").read_text())
    assert "digits-small_cnn-n0.4-fullmodel" in cells["foundation"]


def test_html_reports_are_for_reviewers(repo):
    """No code in the HTML, the overview opens with the claims dashboard, tables hold text (no
    Python reprs), accuracy intervals stay inside [0, 1], and no issue-tracker wording."""
    pages = sorted((repo / "reports/html").glob("*.html"))
    assert {p.stem for p in pages} >= {"overview", "mentornet", "lgl"}
    for page in pages:
        text = page.read_text()
        assert "hl-ipython3" not in text and "from trainrepro" not in text, page.name  # no code input
        cells = re.findall(r"<td[^>]*>(.*?)</td>", text, flags=re.S)
        reprs = [c for c in cells if re.match(r"\s*[\[{(]['\"]|\s*np\.float|\s*\{\}", c)]
        assert not reprs, (page.name, reprs[:3])
        # accuracy intervals: unsigned bounds (a difference's interval has signed bounds,
        # tables.fmt_diff_ci, e.g. [-0.0341, +0.0192] or [-0.9456, -0.1160])
        # tables of mixed quantities (a `metric` or `quantity` column: losses, ratios) are not
        # accuracy tables
        acc_tables = [t for t in text.split("<table")[1:]
                      if not re.search(r"<th[^>]*>\s*(metric|quantity)\s*</th>", t.split("</table>")[0])]
        intervals = [(float(a), float(b)) for t in acc_tables for a, b in
                     re.findall(r"<td[^>]*>\s*\[(\d+\.\d+), (\d+\.\d+)\]\s*</td>", t.split("</table>")[0])]
        assert intervals or page.stem == "overview", page.name
        assert all(0.0 <= a <= b <= 1.0 for a, b in intervals), page.name
        assert not re.search(r"\bissue\b", text, flags=re.I), page.name
    overview = (repo / "reports/html/overview.html").read_text()
    dash = overview.find('id="claims-dashboard"')
    assert -1 < dash < overview.find("Prepared datasets")  # the dashboard opens the page
    assert 'href="mentornet.html"' in overview and 'href="lgl.html"' in overview
    executed = (repo / "reports/executed/overview.ipynb").read_text()
    assert "from trainrepro" in executed  # the executed notebooks keep their code


def test_no_op_repro_is_up_to_date_and_reports_are_byte_identical(repo):
    before = {p: p.read_bytes() for p in (repo / "reports").rglob("*")
              if p.is_file() and p.parent.name in ("executed", "html", "figures")}
    t = time.perf_counter()
    r = sh([*DVC, "repro"], repo)
    assert "up to date" in r.stdout
    assert time.perf_counter() - t < 30  # ~2 s on a quiet machine (benchmarks/pipeline_times.sh)
    # only the report stage: `--force` alone reruns every upstream stage, and the analysis
    # stages time steps (claim A9), which no two runs measure alike
    sh([*DVC, "repro", "--force", "--single-item", "report"], repo)  # identical inputs -> identical bytes
    after = {p: p.read_bytes() for p in before}
    assert before and not [str(p.relative_to(repo)) for p in before if before[p] != after[p]]


def edit(path: str, value):
    """An edit of the parsed params at a dotted path (list items by index)."""
    def apply(raw: dict) -> None:
        keys = path.split(".")
        node = raw
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        node[keys[-1]] = value
    return apply


# Mistakes a user makes in params.yaml; each must be refused by the validate stage in one line
# naming the key path (and the allowed values), before any stage touches an output.
BAD_PARAMS = [
    ("top-level typo", edit("profle", "paper"), r"params\.profle: unknown key; allowed: .*profile"),
    ("noise rate 1.3", edit("profiles.tiny.studies.foundation.0.noise", [0.0, 1.3]),
     r"foundation\[0\]\.noise: 1\.3 is out of range \(allowed: \[0\.0, 1\.0\]\)"),
    ("toy seeds not a list", edit("lgl_toy.seeds", "abc"), r"lgl_toy\.seeds: expected list, got str"),
    ("epochs as text", edit("train.epochs", "20"), r"train\.epochs: expected int, got str"),
    ("negative focal gamma", edit("methods.focal.gamma", -1.0), r"methods\.focal\.gamma: -1\.0 is out of range"),
    ("unknown model in a study", edit("profiles.tiny.studies.foundation.0.models", ["resnet1000"]),
     r"models: unknown model 'resnet1000'; allowed: .*small_cnn"),
    ("misspelled model argument", edit("profiles.tiny.train.model_args", {"widht": 16}),
     r"model_args\.widht: unknown argument of model 'small_cnn'; allowed: .*width"),
    ("fraction out of range", edit("datasets.digits.val_fraction", 2.0), r"datasets\.digits\.val_fraction: 2\.0 is out of range"),
    ("mentor fit steps 0", edit("mentor.fit.steps", 0), r"mentor\.fit\.steps: 0 is out of range"),
    ("unknown device", edit("runtime.device", "gpu"), r"runtime\.device: 'gpu' is not allowed; allowed: auto, cpu, cuda"),
    ("unknown profile", edit("profile", "tinyy"), r"profile: unknown profile 'tinyy'; allowed: .*tiny"),
    ("unknown dataset in an analysis", edit("lgl_analysis.similar_pairs.digitz", [["1", "7"]]),
     r"lgl_analysis\.similar_pairs\.digitz: unknown dataset"),
    ("unknown optimizer argument", edit("profiles.tiny.train.optimizer_args", {"momentun": 0.9}),
     r"optimizer_args\.momentun: unknown argument of 'sgd'; allowed: momentum"),
]


def output_hashes(repo: Path) -> dict[str, str]:
    return {str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
            for d in ("data", "results", "reports") for p in sorted((repo / d).rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name, mistake, pattern", BAD_PARAMS, ids=[b[0] for b in BAD_PARAMS])
def test_a_params_mistake_is_refused_before_any_output_changes(repo, name, mistake, pattern):
    original = (repo / "params.yaml").read_text()
    before = output_hashes(repo)
    raw = yaml.safe_load(original)
    mistake(raw)
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        env = {**os.environ, "PYTHONPATH": str(repo / "src")}
        r = subprocess.run([*DVC, "repro"], cwd=repo, capture_output=True, text=True, timeout=300, env=env)
    finally:
        (repo / "params.yaml").write_text(original)
    out = r.stdout + r.stderr
    errors = [ln for ln in out.splitlines() if ln.startswith("error: ")]
    assert r.returncode != 0 and len(errors) == 1, out[-2000:]
    assert re.search(pattern, errors[0]), errors[0]
    assert "Traceback" not in out
    assert output_hashes(repo) == before


def test_invalid_yaml_is_refused_before_any_output_changes(repo):
    original = (repo / "params.yaml").read_text()
    before = output_hashes(repo)
    (repo / "params.yaml").write_text(original + "\ntrain: [unclosed\n")
    try:
        env = {**os.environ, "PYTHONPATH": str(repo / "src")}
        r = subprocess.run([*DVC, "repro"], cwd=repo, capture_output=True, text=True, timeout=300, env=env)
    finally:
        (repo / "params.yaml").write_text(original)
    assert r.returncode != 0 and "params.yaml" in r.stdout + r.stderr
    assert output_hashes(repo) == before


GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


def shared_remote(repo: Path) -> None:
    """The first machine's side: dvc.lock committed, outputs and run-cache pushed to a shared
    directory remote (idempotent)."""
    sh([*DVC, "repro"], repo)  # a no-op after the tests above
    if "shared" not in sh([*DVC, "remote", "list"], repo).stdout:
        sh([*DVC, "remote", "add", "-d", "shared", str(repo.parent / "remote")], repo)
    sh([*GIT, "add", "-A"], repo)
    sh([*GIT, "commit", "-qm", "tiny results", "--allow-empty"], repo)
    sh([*DVC, "push", "--run-cache"], repo)


# aggregate's outputs reports/claims.md and reports/metrics.json are `cache: false` and ignored
# by git, so neither git nor the remote carries them: a clone re-runs aggregate (seconds).
NOT_SHARED = {"aggregate"}


def stages_run(r: subprocess.CompletedProcess) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", r.stdout + r.stderr))


def outputs(repo: Path) -> dict[str, bytes]:
    return {str(p.relative_to(repo)): p.read_bytes() for p in (repo / "results").rglob("metrics.json")}


def test_second_clone_pulls_and_reproduces_without_training(repo, tmp_path):
    shared_remote(repo)
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    assert not (clone / "results").exists()
    sh([*DVC, "pull"], clone)
    r = sh([*DVC, "repro"], clone)
    assert stages_run(r) <= NOT_SHARED  # nothing trained, nothing prepared
    assert outputs(clone) == outputs(repo) and outputs(clone)
    # Or in one command, pulling only what an unchanged stage needs.
    other = tmp_path / "other"
    sh(["git", "clone", "-q", str(repo), str(other)], tmp_path)
    r = sh([*DVC, "repro", "--pull", "--allow-missing"], other)
    assert stages_run(r) <= NOT_SHARED
    sh([*DVC, "pull"], other)
    assert outputs(other) == outputs(repo)


def test_run_cache_restores_stages_without_persistent_outputs_only(repo, tmp_path):
    """Without dvc.lock (another branch, the same code and params) the run-cache restores
    prepare; train stages keep their per-run cache in persist: true outputs, which DVC leaves out
    of the run-cache, so they would train again. (lgl_toy is not checked: its run-cache entry
    was seen pointing at outputs `dvc push --run-cache` had not pushed; README, shared remote.)"""
    shared_remote(repo)
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    (clone / "dvc.lock").unlink()
    sh([*DVC, "fetch", "--run-cache"], clone)  # run records; --pull fetches their outputs
    r = sh([*DVC, "repro", "--pull", "prepare"], clone)
    assert "Stage 'prepare' is cached - skipping run" in r.stdout + r.stderr
    assert stages_run(r) <= {"validate"}  # persist: true, so never from the run-cache (seconds)
    runs = list((repo / ".dvc" / "cache" / "runs").rglob("*"))
    assert runs and (clone / "data/prepared/digits/manifest.json").exists()
    r = sh([*DVC, "repro", "--dry", "train_foundation"], clone)
    assert "Running stage 'train_foundation'" in r.stdout  # not restorable from the run-cache


def test_a_variant_reruns_only_the_cells_of_the_changed_method(repo):
    r = sh([*DVC, "exp", "run", "-S", "methods.focal.gamma=1.0"], repo)
    out = r.stdout + r.stderr
    assert "mentornet: 18 runs, 2 trained now, 16 up to date" in out
    assert "foundation: 4 runs, 0 trained now" in out and "lgl: 16 runs, 0 trained now" in out
    shown = sh([*DVC, "exp", "show", "--csv"], repo).stdout
    header = shown.splitlines()[0]
    assert "methods.focal.gamma" in header and "mentornet.verdicts" in header
    assert "n0.4-focal" not in header  # per-cell numbers stay out of the default columns


def _history(run_dir: Path) -> list:
    h = pd.read_csv(run_dir / "history.csv")
    h = h.drop(columns=[c for c in h.columns if c.endswith(("_time_s", "_cpu_s"))])  # clocks differ
    return h.to_dict("records")


def test_killed_train_stage_resumes_under_dvc_repro_with_identical_metrics(repo):
    set_params(repo, profiles__tiny__train={"epochs": 25, "model_args": {"width": 16}})
    # Reference: the same runs uninterrupted, into another results folder.
    sh([*DVC, "repro", "prepare"], repo)
    sh([sys.executable, "stages/train.py", "foundation", "--results", "ref"], repo)
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    proc = subprocess.Popen([*DVC, "repro", "train_foundation"], cwd=repo, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((repo / "results").rglob("checkpoint.pt")):
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted = list((repo / "results").rglob("checkpoint.pt"))
    assert interrupted, "the stage finished before it could be killed"
    sh([*DVC, "repro", "train_foundation"], repo)
    index = json.loads((repo / "results/foundation/index.json").read_text())
    resumed = 0
    for run in index["runs"]:
        rec = json.loads((repo / run["run_dir"] / "metrics.json").read_text())
        ref = json.loads((repo / run["run_dir"].replace("results/", "ref/", 1) / "metrics.json").read_text())
        assert rec["status"] == ref["status"] == "ok"
        assert rec["reported"] == ref["reported"]
        assert _history(repo / run["run_dir"]) == _history(repo / run["run_dir"].replace("results/", "ref/", 1))
        resumed += rec["resumed"]
    assert resumed >= 1


def test_the_committed_lock_matches_the_committed_code_and_params(tmp_path):
    """`dvc status` on a fresh copy of the repository lists only missing outputs: every
    dependency and param hash in the committed dvc.lock is that of the committed files."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    dst = tmp_path / "clone"
    for f in filter(None, files):
        if (REPO / f).is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, dst / f)
    sh(["git", "init", "-q"], dst)
    status = json.loads(sh([*DVC, "status", "--json"], dst).stdout or "{}")

    def only_missing(entry) -> bool:  # missing outputs, or deps that are those missing outputs
        return (isinstance(entry, dict) and set(entry) <= {"changed outs", "changed deps"}
                and all(v in ("deleted", "not in cache") for part in entry.values() for v in part.values()))

    changed = {stage: [e for e in entries if not only_missing(e)] for stage, entries in status.items()}
    changed = {s: c for s, c in changed.items() if c}
    assert not changed, f"dvc.lock does not match the committed code/params: {changed}"


def test_experiment_queue_runs_two_variants_without_corrupting_each_other(repo):
    for epochs in (2, 4):
        sh([*DVC, "exp", "run", "--queue", "-n", f"ep{epochs}", "-S",
            f"profiles.tiny.train.epochs={epochs}", "train_foundation"], repo)
    sh([*DVC, "queue", "start", "-j", "1"], repo)
    deadline = time.time() + 600
    while time.time() < deadline:
        status = sh([*DVC, "queue", "status"], repo).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(2)
    assert "Failed" not in status, status
    shown = sh([*DVC, "exp", "show", "--csv"], repo).stdout
    rows = pd.read_csv(io.StringIO(shown))
    named = rows.set_index("Experiment").loc[["ep2", "ep4"]]
    assert named["profiles.tiny.train.epochs"].astype(int).tolist() == [2, 4]
    for epochs in (2, 4):  # each experiment's outputs are its own
        sh([*DVC, "exp", "apply", f"ep{epochs}"], repo)
        index = json.loads((repo / "results/foundation/index.json").read_text())
        assert len(index["runs"]) == 4
        for run in index["runs"]:
            rec = json.loads((repo / run["run_dir"] / "metrics.json").read_text())
            assert rec["status"] == "ok" and rec["config"]["epochs"] == epochs
            assert len(pd.read_csv(repo / run["run_dir"] / "history.csv")) == epochs
