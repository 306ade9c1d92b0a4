"""Reference runs end to end: a small study run through the real runner under a profile of its
own, exported (only the small records, with provenance), validated, and aggregated beside the
pipeline's own results as a second verdict column; an empty reference_runs/ shows one column."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from trainrepro.cli import guarded
from trainrepro.config import Params, validate
from trainrepro.io import read_json, write_json
from trainrepro.registry import ConfigError, DataIntegrityError
from trainrepro.report import reference
from trainrepro.report.aggregate import aggregate
from trainrepro.report.dashboard import dashboard_html
from trainrepro.report.reference import (
    PROVENANCE,
    export,
    load_reference,
    load_references,
    rebase_scalar_files,
    scales_for,
    verdicts_by_scale,
)
from trainrepro.runner import run_study

REPO = Path(__file__).resolve().parent.parent
REF = "gpu_sim"
LABEL = "simulated GPU scale (test): digits, 2 seeds"


STUDY = {"lgl": [{"datasets": ["digits"], "noise": [0.0], "methods": ["baseline", "spl", "lgl_r2"],
                  "seeds": [0, 1]}]}


def sim_params(profile: str = REF) -> Params:
    """params.yaml plus a profile `gpu_sim` whose lgl study is small enough for a test; with
    profile quick: the quick profile cut to that study (the pipeline's own scale in the tests)."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["runtime"].update(workers=1, progress=False)
    raw["profiles"][REF] = {"scale": REF, "label": LABEL, "train": {"epochs": 2, "model_args": {"width": 8}},
                           "studies": STUDY}
    raw["profiles"]["quick"]["studies"] = STUDY
    raw["profile"] = profile
    validate(raw)
    return Params(raw)


@pytest.fixture(scope="module")
def gpu_results(tmp_path_factory, prepared_digits) -> tuple[Params, Path]:
    """A results tree of profile gpu_sim: real runs, an analysis JSON, files never to export."""
    tmp = tmp_path_factory.mktemp("gpu")
    params = sim_params()
    results = tmp / "results"
    run_study(params, "lgl", prepared_root=str(prepared_digits.parent), results_root=str(results))
    write_json(results / "lgl" / "compute.json", {"profile": REF, "time_ratio_vs_formula_error": 0.1})
    write_json(results / "lgl_toy" / "toy.json", {"spl_inv_faster_than_spl": 0.9})     # no profile key
    write_json(results / "llbsgd" / "index.json", {"study": "llbsgd", "profile": "quick", "runs": []})
    write_json(results / "llbsgd" / "convergence.json", {"profile": "quick", "speedup_vs_sgd": 4.0})
    write_json(results / "llbsgd" / "robustness.json", {"profile": REF, "init": {}})   # study not exported
    run = next((results / "lgl").glob("*/seed0"))
    (run / "checkpoint.pt").write_bytes(b"a checkpoint")
    write_json(results / "mentors" / "summary.json", {"profile": REF, "mentors": {}})
    (results / "mentors" / "pd.pt").write_bytes(b"a mentor")
    (results / "mentors" / "features.npz").write_bytes(b"features")
    return params, results


def exported_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_export_copies_only_small_records_with_provenance(gpu_results, tmp_path):
    params, results = gpu_results
    target = export(params, REF, results, tmp_path / "reference_runs")
    files = exported_files(target)
    runs = read_json(results / "lgl" / "index.json")["runs"]
    assert len(runs) == 6
    for r in runs:
        assert f"lgl/{r['cell']}/seed{r['seed']}/metrics.json" in files
        assert f"lgl/{r['cell']}/seed{r['seed']}/history.csv" in files
    assert {"lgl/index.json", "lgl/compute.json", "lgl_toy/toy.json", "mentors/summary.json", PROVENANCE} <= files
    assert not [f for f in files if f.startswith("llbsgd/")]    # another profile's leftovers stay out
    assert not [f for f in files if f.endswith((".pt", ".npz"))], files
    prov = read_json(target / PROVENANCE)
    assert prov["profile"] == REF and prov["scale"] == REF and prov["label"] == LABEL
    assert prov["devices"] == ["cpu"] and prov["studies"]["lgl"]["runs"] == 6
    assert len(prov["git"]["commit"]) == 40 and prov["exported_at"].endswith("+00:00")
    assert prov["params_hash"] and prov["profile_hash"] and prov["code_hashes"]
    assert set(prov["files"]) == files - {PROVENANCE} and prov["left_out"] == ["llbsgd/convergence.json",
                                                                         "llbsgd/robustness.json"]
    index = read_json(target / "lgl" / "index.json")
    assert all(r["run_dir"].startswith(f"{REF}/lgl/") for r in index["runs"])
    scale = load_reference(target)
    assert scale.kind == "reference" and scale.studies() == ["lgl"] and scale.title == f"{REF}: {LABEL}"


def test_export_refuses_to_overwrite_unless_replace_and_refuses_other_profiles(gpu_results, tmp_path):
    params, results = gpu_results
    out = tmp_path / "reference_runs"
    target = export(params, REF, results, out)
    before = (target / PROVENANCE).read_bytes()
    with pytest.raises(ConfigError, match="already exists; pass --replace"):
        export(params, REF, results, out)
    assert (target / PROVENANCE).read_bytes() == before
    export(params, REF, results, out, replace=True)
    assert load_reference(target).profile == REF
    assert sorted(p.name for p in out.iterdir()) == [REF]     # no staging or old folder left
    with pytest.raises(ConfigError, match="written by profile 'gpu_sim', not 'cifar10_jpeg'"):
        export(params, "cifar10_jpeg", results, out, studies=["lgl"])
    with pytest.raises(ConfigError, match="alternation has no index.json"):
        export(params, "cifar10_jpeg", results, out, studies=["lgl", "alternation"])
    with pytest.raises(ConfigError, match="unknown profile 'nope'"):
        export(params, "nope", results, out)
    assert not (out / "cifar10_jpeg").exists()


def test_export_refuses_an_incomplete_or_stale_study(gpu_results, tmp_path):
    params, results = gpu_results
    bad = tmp_path / "results"
    shutil.copytree(results, bad)
    run = next((bad / "lgl").glob("*/seed1"))
    rec = read_json(run / "metrics.json")
    rec["config"]["config_hash"] = "stale"
    write_json(run / "metrics.json", rec)
    with pytest.raises(DataIntegrityError, match="stale record"):
        export(params, REF, bad, tmp_path / "out")
    (run / "metrics.json").unlink()
    with pytest.raises(DataIntegrityError, match="incomplete"):
        export(params, REF, bad, tmp_path / "out")
    shutil.copytree(results / "lgl", bad / "lgl", dirs_exist_ok=True)
    write_json(bad / "lgl" / "entropy.json", {"profile": "quick", "similar_classes_ranked_low": 0.7})
    with pytest.raises(DataIntegrityError, match="entropy.json: written by profile 'quick'"):
        export(params, REF, bad, tmp_path / "out")
    assert not (tmp_path / "out" / REF).exists()


def test_a_reference_edited_after_export_is_refused(gpu_results, tmp_path):
    params, results = gpu_results
    target = export(params, REF, results, tmp_path / "reference_runs")
    (target / "lgl" / "compute.json").write_text('{"time_ratio_vs_formula_error": 0.9}')
    with pytest.raises(DataIntegrityError, match="compute.json: sha256"):
        load_references(tmp_path / "reference_runs")
    (target / PROVENANCE).unlink()
    with pytest.raises(DataIntegrityError, match="no provenance.json"):
        load_references(tmp_path / "reference_runs")


def test_scalar_claims_read_the_reference_copy_of_their_file():
    claims = [{"id": "L7", "rule": {"type": "scalar", "file": "results/lgl/compute.json", "key": "k"}},
              {"id": "X", "rules": [{"type": "greater", "a": {}, "b": {}}]}]
    out = rebase_scalar_files(claims, "reference_runs/cifar10_jpeg")
    assert out[0]["rule"]["file"] == "reference_runs/cifar10_jpeg/lgl/compute.json"
    assert claims[0]["rule"]["file"] == "results/lgl/compute.json"      # the input is untouched
    assert out[1] == claims[1]


def test_aggregate_shows_one_verdict_column_per_scale(gpu_results, tmp_path, monkeypatch):
    params, results = gpu_results
    export(params, REF, results, tmp_path / "reference_runs")
    (tmp_path / "reference_runs" / "README.md").write_text("layout")
    own = tmp_path / "own"
    shutil.copytree(results, own / "results")     # the pipeline's own results (same runs)
    (own / "results" / "lgl" / "compute.json").write_text('{"time_ratio_vs_formula_error": 0.9}')
    quick = sim_params("quick")
    monkeypatch.chdir(tmp_path)
    m = aggregate(quick, "own/results", "reports", "reference_runs")
    md = Path("reports/claims.md").read_text()
    quick_col, ref_col = f"verdict, {quick.profile['label']}", f"verdict, {REF}: {LABEL}"
    assert f"| {quick_col} | {ref_col} | evidence |" in md
    wide = pd.read_csv("reports/tables/claims_by_scale.csv").set_index("id")
    # L7 reads its scalar from each scale's own compute.json: 0.9 here, 0.1 in the reference
    assert wide.loc["L7", quick_col] == "does not hold" and wide.loc["L7", ref_col] == "holds"
    assert wide.loc["M1", ref_col] == "not run"        # no mentornet study among the reference runs
    assert wide.loc["L5", ref_col] == "holds"          # lgl_toy/toy.json of the reference tree
    assert m["reference"][REF]["claims"]["holds"] >= 1 and "L7:H" in m["reference"][REF]["lgl"]
    t1 = pd.read_csv("reports/tables/lgl_table1.csv")
    assert {quick_col, ref_col, f"ours, {REF}: {LABEL}"} <= set(t1.columns)
    assert Path("reports/tables/reference/gpu_sim/lgl_table1_layout.md").exists()
    assert list(verdicts_by_scale("reports/tables")) == [quick.profile["label"], f"{REF}: {LABEL}"]
    shown = notebook_scale_cells("reports/tables", quick)
    assert ref_col in shown["lgl"] and f"Reference runs: {REF}: {LABEL}" in shown["lgl"]
    assert "LGL Table 1 (paper layout)" in shown["lgl"] and "No mentornet runs among" in shown["mentornet"]
    assert f"<th>{REF}: {LABEL}</th>" in shown["overview"]          # the dashboard's second column
    assert read_json(f"reference_runs/{REF}/{PROVENANCE}")["profile_hash"] in shown["overview"]


def notebook_scale_cells(tables_root: str, params: Params) -> dict[str, str]:
    """Run each report notebook's per-scale cells (the dashboard's, the reference sections) on
    the aggregate's tables; what they display, as text, per notebook."""
    out = {}
    for nb in sorted((REPO / "reports").glob("*.ipynb")):
        shown: list[str] = []
        ns = {"tables_root": tables_root, "params": params, "Markdown": lambda t: t,
              "HTML": lambda t: t, "display": lambda x, shown=shown: shown.append(str(x)),
              "show": lambda df, shown=shown: shown.append(df.to_string()), **vars(reference)}
        ns["dashboard_html"] = dashboard_html
        for c in json.loads(nb.read_text())["cells"]:
            text = "".join(c["source"])
            if c["cell_type"] == "code" and ("_reference" in text or "provenance_table" in text
                                             or "reference_tables_markdown" in text
                                             or "verdicts_by_scale" in text) and "import" not in text:
                exec(text, ns)  # noqa: S102 - the notebook's own cell, as papermill would run it
        out[nb.stem] = "\n".join(shown)
    return out


def test_with_an_empty_reference_folder_only_the_own_column_is_shown(gpu_results, tmp_path, monkeypatch):
    _, results = gpu_results
    shutil.copytree(results, tmp_path / "results")
    (tmp_path / "reference_runs").mkdir()
    shutil.copy(REPO / "reference_runs" / "README.md", tmp_path / "reference_runs" / "README.md")
    quick = sim_params("quick")
    monkeypatch.chdir(tmp_path)
    m = aggregate(quick, "results", "reports", "reference_runs")
    assert "reference" not in m
    md = Path("reports/claims.md").read_text()
    assert f"| id | claim | source | verdict, {quick.profile['label']} | evidence |" in md
    assert json.loads(Path("reports/tables/scales.json").read_text())[0]["kind"] == "pipeline"
    assert len(read_json("reports/tables/scales.json")) == 1
    assert not Path("reports/tables/reference").exists()
    shown = notebook_scale_cells("reports/tables", quick)
    assert all("No reference runs" in shown[nb] for nb in ("overview", "lgl", "mentornet", "llbsgd"))
    assert "verdict, gpu_sim" not in shown["lgl"] and f"verdict, {quick.profile['label']}" in shown["lgl"]


def test_gitignore_keeps_reference_records_and_hides_checkpoints():
    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO, check=False).returncode == 0

    run = "reference_runs/cifar10_jpeg/lgl/cifar10_jpeg-vgg16-n0-baseline/seed0"
    for kept in (f"{run}/metrics.json", f"{run}/history.csv", "reference_runs/cifar10_jpeg/provenance.json",
                 "reference_runs/cifar10_jpeg/lgl/index.json", "reference_runs/cifar10_jpeg/lgl/compute.json",
                 "reference_runs/README.md"):
        assert not ignored(kept), kept
    for hidden in (f"{run}/checkpoint.pt", "reference_runs/cifar10_jpeg/mentors/pd.pt",
                   "reference_runs/cifar10_jpeg/mentors/pilots/x/features.npz",
                   "reference_runs/.cifar10_jpeg.abc.tmp/lgl/index.json"):
        assert ignored(hidden), hidden


def test_the_committed_reference_folder_is_valid_and_documented():
    assert "python -m trainrepro.report.reference export" in (REPO / "reference_runs" / "README.md").read_text()
    load_references(REPO / "reference_runs")      # every committed folder passes its checks
    deps = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["aggregate"]["deps"]
    assert "reference_runs" in deps


def test_the_command_exports_checks_and_refuses_with_one_line(gpu_results, tmp_path, capsys):
    params, results = gpu_results
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params.raw))
    args = ["export", "--profile", REF, "--params", str(tmp_path / "params.yaml"), "--results", str(results),
            "--out", str(tmp_path / "refs")]
    reference.main(args)
    assert f"wrote {tmp_path / 'refs' / REF}" in capsys.readouterr().out
    reference.main(["check", "--root", str(tmp_path / "refs")])
    assert "1 reference scale(s) valid" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        guarded(lambda: reference.main(args))
    assert e.value.code == 2 and "already exists; pass --replace" in capsys.readouterr().err


def test_two_reference_scales_of_one_name_are_refused(gpu_results, tmp_path):
    params, results = gpu_results
    target = export(params, REF, results, tmp_path / "refs")
    twin = tmp_path / "refs" / "gpu_sim_copy"
    shutil.copytree(target, twin)
    prov = read_json(twin / PROVENANCE)
    write_json(twin / PROVENANCE, {**prov, "profile": "gpu_sim_copy"})
    assert [s.profile for s in load_references(tmp_path / "refs")] == [REF, "gpu_sim_copy"]
    with pytest.raises(ConfigError, match="two scales are both named"):
        scales_for(sim_params("quick"), tmp_path / "results", tmp_path / "refs")
