"""Reading sensitivity (issue 9 item 20): the readings registry, the runs it expands into, and the
per-paper table (result and verdict under each reading)."""
import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

from trainrepro.config import Params, expand_study, validate
from trainrepro.io import write_json
from trainrepro.registry import PAPERS, ConfigError
from trainrepro.report.aggregate import load_claims
from trainrepro.report.sensitivity import sensitivity_table, write_sensitivity_tables
from trainrepro.sensitivity import (
    SENSITIVITY_STUDY,
    load_readings,
    plan,
    sensitivity_runs,
)

REPO = Path(__file__).resolve().parent.parent
RAW = yaml.safe_load((REPO / "params.yaml").read_text())


def params(profile: str = "sensitivity", raw: dict | None = None) -> Params:
    raw = copy.deepcopy(raw or RAW)
    raw["profile"] = profile
    validate(raw)
    return Params(raw)


def test_every_paper_declares_readings_and_each_switch_has_one_default_reading():
    planned = plan(params())
    assert {p.reading.paper for p in planned} == set(PAPERS)
    by_switch: dict = {}
    for p in planned:
        by_switch.setdefault((p.reading.paper, p.reading.switch), []).append(p)
    for key, readings in by_switch.items():
        if readings[0].status.startswith("not run"):   # a stage setting, listed with what it needs
            assert all(r.status == readings[0].status for r in readings), key
            continue
        assert [r.status for r in readings].count("default") == 1, key
        assert all(r.default_cell for r in readings), key


def test_a_method_switch_changes_only_that_param_and_names_its_cell():
    p = params()
    planned = {(x.reading.switch, x.label): x for x in plan(p, ["mentornet"])}
    code = planned[("ema_decay", "code")]
    assert code.status == "run" and len(code.runs) == 3
    run = code.runs[0]
    assert run.study == SENSITIVITY_STUDY
    assert run.cell == "digits-small_cnn-n0.4-mentornet_dd~ema_decay-code"
    assert run.method == "mentornet_dd" and run.noise[1] == 0.4
    assert run.method_params["ema_decay"] == 0.5
    base = p.raw["methods"]["mentornet_dd"]
    assert {k: v for k, v in run.method_params.items() if k != "ema_decay"} == \
        {k: v for k, v in base.items() if k not in ("family", "train")}
    assert planned[("ema_decay", "paper")].status == "default"


def test_a_train_switch_sets_the_optimizer_argument_of_the_cell():
    planned = {(x.reading.switch, x.label): x for x in plan(params(), ["llbsgd"])}
    run = planned[("kernel", "filter")].runs[0]
    assert run.train["optimizer"] == "llbsgd" and run.train["optimizer_args"]["kernel"] == "3d"
    assert run.train["lr"] == 0.1 and run.cell.endswith("grid_0.1~kernel-filter")


def test_a_reading_equal_to_another_method_instance_reuses_its_cell():
    planned = {(x.reading.switch, x.label): x for x in plan(params(), ["alternation"])}
    gate = planned[("b_apply", "gate")]
    assert gate.status == "reuses b_alt_gate" and not gate.runs
    assert gate.cell == "digits-allcnn_small_c-n0-b_alt_gate"
    assert planned[("maskt", "nearest")].status == "measured" and not planned[("maskt", "nearest")].runs


def test_stage_switches_are_listed_as_not_run_with_what_they_need():
    planned = {(x.reading.switch, x.label): x for x in plan(params(), ["mentornet"])}
    st = planned[("pd_schedule", "code")].status
    assert st.startswith("not run: needs the mentor stage")


def test_the_quick_profile_runs_no_readings_and_the_sensitivity_profile_runs_them():
    assert sensitivity_runs(params("quick")) == []
    runs = sensitivity_runs(params())
    assert runs and len({(r.cell, r.seed) for r in runs}) == len(runs)
    mentornet_cells = {r.cell for r in expand_study(params(), "mentornet")}
    derived = sensitivity_runs(params(), "mentornet")  # the readings of the MentorNet study's cells
    assert {r.method_family for r in derived} >= {"mentornet", "focal", "self_paced", "goldberger"}
    assert all(r.cell.split("~")[0] in mentornet_cells for r in derived)


def test_the_mentor_stage_assigns_mentors_to_the_sensitivity_cells():
    from trainrepro.papers.mentornet.stage import plan as mentor_plan

    assign = mentor_plan(params())["assignments"]
    for seed in (0, 1, 2):  # the reading's run of seed s uses seed s's own DD mentor
        assert assign[f"digits-small_cnn-n0.4-mentornet_dd~ema_decay-code/seed{seed}"] \
            == assign[f"digits-small_cnn-n0.4-mentornet_dd/seed{seed}"] == f"dd-digits-small_cnn-n0.4-s{seed}"


def test_the_profile_key_is_validated_naming_it():
    raw = copy.deepcopy(RAW)
    raw["profiles"]["sensitivity"]["sensitivity"] = {"papers": ["mentornett"]}
    with pytest.raises(ConfigError, match=r"profiles\.sensitivity\.sensitivity\.papers: unknown paper 'mentornett'"):
        validate(raw)
    raw["profiles"]["sensitivity"]["sensitivity"] = {"papers": [], "seed": [0]}
    with pytest.raises(ConfigError, match=r"sensitivity\.seed: unknown key"):
        validate(raw)


@pytest.fixture
def fake_paper_yaml(monkeypatch, tmp_path):
    """Replace lgl's paper.yaml by one whose `readings:` the test writes."""
    paper = PAPERS["lgl"]
    path = tmp_path / "paper.yaml"
    monkeypatch.setattr(type(paper), "reported_path", property(
        lambda self: path if self.name == "lgl" else self.package / "paper.yaml"))

    def write(readings):
        path.write_text(yaml.safe_dump({"paper": "lgl", "readings": readings}))
    return write


GOOD = {"switch": "grouping", "kind": "text", "method": "lgl_r4", "param": "method.grouping",
        "values": {"paper": "ceil", "balanced": "balanced"}, "claims": ["L1"], "source": "Sec. 4.3"}


@pytest.mark.parametrize("edit,pattern", [
    ({"kind": "guess"}, r"readings\[0\]\.kind: 'guess' is not allowed; allowed: code, text, ours"),
    ({"method": "lgl_r44"}, r"readings\[0\] \(grouping\)\.method: unknown method 'lgl_r44'"),
    ({"values": {"paper": "ceil", "odd": "odd"}}, r"grouping.*'odd' is not allowed; allowed: ceil, balanced"),
    ({"values": {"paper": "ceil", False: "balanced"}}, r"reading label False is not a name"),
    ({"values": {"paper": "ceil"}}, r"values: expected a mapping of at least two readings"),
    ({"colour": 1}, r"readings\[0\]\.colour: unknown key"),
    ({"claims": ["L99"]}, r"readings\[0\]\.claims: unknown claim 'L99' of lgl"),
    ({"where": {"noize": 0.4}}, r"readings\[0\]\.where\.noize: unknown key; allowed: dataset, model, noise, tag"),
    ({"switch": "group ing"}, r"readings\[0\]\.switch: 'group ing' is not a name"),
    ({"param": "train.optimizer_args.kernal"}, r"optimizer_args\.kernal: unknown argument"),
])
def test_bad_reading_entries_are_refused_naming_the_entry(fake_paper_yaml, edit, pattern):
    fake_paper_yaml([{**GOOD, **edit}])
    with pytest.raises(ConfigError, match=pattern):
        plan(params(), ["lgl"])


def test_adding_a_reading_is_one_entry(fake_paper_yaml):
    fake_paper_yaml([GOOD, {**GOOD, "switch": "momentum", "param": "method.reset_momentum",
                            "values": {"paper": False, "reset": True}}])
    assert [r.switch for r in load_readings("lgl")] == ["grouping", "momentum"]
    assert len(sensitivity_runs(params(), "lgl")) == 6


def _record(root: Path, study: str, cell: str, method: str, seed: int, acc: float, model: str = "small_cnn",
            summary: dict | None = None, status: str = "ok") -> dict:
    run_dir = root / study / cell / f"seed{seed}"
    write_json(run_dir / "metrics.json", {"status": status, "diverged_epoch": 0 if status == "diverged" else None,
                                          "reported": {"test_acc": acc, "val_acc": acc},
                                          "method_summary": summary or {}, "final": {"train_loss": 1 - acc}})
    return {"cell": cell, "seed": seed, "dataset": "digits", "noise": 0.0, "method": method,
            "model": model, "tag": "", "run_dir": str(run_dir), "config_hash": "h"}


def _index(root: Path, study: str, runs: list[dict]) -> None:
    write_json(root / study / "index.json", {"study": study, "runs": runs})


def test_the_table_shows_the_difference_and_a_verdict_that_changes_under_a_reading(fake_paper_yaml, tmp_path):
    fake_paper_yaml([GOOD])
    res = tmp_path / "results"
    base = {0: 0.90, 1: 0.91, 2: 0.92}
    _index(res, "lgl", [_record(res, "lgl", "digits-small_cnn-n0-baseline", "baseline", s, a)
                        for s, a in base.items()]
           + [_record(res, "lgl", "digits-small_cnn-n0-lgl_r4", "lgl_r4", s, a + 0.05) for s, a in base.items()])
    cell = "digits-small_cnn-n0-lgl_r4~grouping-balanced"
    _index(res, SENSITIVITY_STUDY, [_record(res, SENSITIVITY_STUDY, cell, "lgl_r4", s, a - 0.05)
                                    for s, a in base.items()])
    t = sensitivity_table(params(), "lgl", load_claims(), res).set_index("reading")
    assert t.loc["paper", "default"] == "yes" and t.loc["paper", "verdict (default)"] == "L1: holds"
    assert t.loc["balanced", "n"] == 3
    assert t.loc["balanced", "mean"] == pytest.approx(0.86)
    assert t.loc["balanced", "diff vs default"] == pytest.approx(-0.10)
    assert t.loc["balanced", "verdict (this reading)"] == "L1: does not hold"
    assert t.loc["balanced", "verdict changes"] == "L1"
    written = write_sensitivity_tables(params(), res, tmp_path / "tables", load_claims(), ["lgl"])
    md = (tmp_path / "tables" / "lgl_sensitivity.md").read_text()
    assert "lgl" in written and "1 change a claim's verdict: grouping=balanced (L1)" in md


def test_an_unrun_reading_is_not_run_and_a_measured_reading_is_paired(fake_paper_yaml, tmp_path):
    fake_paper_yaml([GOOD])
    res = tmp_path / "results"
    _index(res, "lgl", [_record(res, "lgl", "digits-small_cnn-n0-lgl_r4", "lgl_r4", s, 0.9) for s in range(3)])
    _index(res, SENSITIVITY_STUDY, [])
    t = sensitivity_table(params(), "lgl", load_claims(), res).set_index("reading")
    assert t.loc["balanced", "n"] == 0 and t.loc["balanced", "verdict (this reading)"] == "not run"
    cell = "digits-small_cnn-n0-lgl_r4~grouping-balanced"  # a reading whose runs all diverge says so
    _index(res, SENSITIVITY_STUDY, [_record(res, SENSITIVITY_STUDY, cell, "lgl_r4", s, 0.1, status="diverged")
                                    for s in range(3)])
    t = sensitivity_table(params(), "lgl", load_claims(), res).set_index("reading")
    assert t.loc["balanced", "status"] == "run; 3 of 3 runs diverged (3), first diverged at epoch 0"
    # MaskT: every reading measured on the default runs, differences paired by seed
    alt = [_record(res, "alternation", "digits-allcnn_small_c-n0-i_alt", "i_alt", s, 0.9, "allcnn_small_c",
                   {"maskt": {"standard": 0.9, "snapshot": 0.9 + 0.01 * s, "nearest": 0.8 + 0.01 * s, "batch": 0.3,
                              "majority": 0.4}, "maskt_reading": "snapshot"})
           for s in range(3)]
    _index(res, "alternation", alt)
    t = sensitivity_table(params(), "alternation", load_claims(), res).set_index(["switch", "reading"])
    near = t.loc[("maskt", "nearest")]
    assert near["mean"] == pytest.approx(0.81) and near["diff vs default"] == pytest.approx(-0.1)
    assert near["diff 95% CI"] == "[-0.1000, -0.1000]"   # paired: the constant offset has no spread
    assert "A3: not re-evaluated" in near["verdict (this reading)"]
    assert np.isnan(t.loc[("mask_rule", "eq38"), "mean"])


def test_outside_the_sensitivity_profile_runs_are_not_run_but_reused_cells_still_show(tmp_path):
    res = tmp_path / "results"
    stale = "digits-allcnn_small_c-n0-i_alt~mask_rule-eq38"  # a sensitivity run left in the tree
    _index(res, SENSITIVITY_STUDY, [_record(res, SENSITIVITY_STUDY, stale, "i_alt", 0, 0.5, "allcnn_small_c")])
    _index(res, "alternation", [_record(res, "alternation", f"digits-allcnn_small_c-n0-{m}", m, s, acc,
                                        "allcnn_small_c")
                                for m, acc in (("b_alt", 0.80), ("b_alt_gate", 0.90)) for s in range(3)])
    t = sensitivity_table(params("quick"), "alternation", load_claims(), res).set_index(["switch", "reading"])
    gate = t.loc[("b_apply", "gate")]
    assert gate["status"] == "reuses b_alt_gate" and gate["n"] == 3
    assert gate["diff vs default"] == pytest.approx(0.10)
    assert t.loc[("mask_rule", "eq38"), "status"] == "not run in profile 'quick' (run profile `sensitivity`)"
    assert t.loc[("mask_rule", "eq38"), "n"] == 0


def test_a_scalar_claim_is_re_derived_with_the_readings_runs_by_the_papers_hook(fake_paper_yaml, tmp_path,
                                                                                 monkeypatch):
    from trainrepro.results import load_runs

    def hook(results_root, params):  # a stand-in analysis: the scalar is lgl_r4's mean accuracy
        runs = load_runs(results_root, "lgl")
        return {"entropy": {"score": float(runs[runs["method"] == "lgl_r4"]["test_acc"].mean())}}

    claims = [{"id": "L6", "paper": "lgl", "statement": "a scalar claim", "source": "",
               "rule": {"type": "scalar", "file": "results/lgl/entropy.json", "key": "score", "op": ">", "value": 0.5}}]

    monkeypatch.setattr(PAPERS["lgl"], "claim_scalars", hook)
    fake_paper_yaml([{**GOOD, "claims": ["L6"]}])
    res = tmp_path / "results"
    _index(res, "lgl", [_record(res, "lgl", "digits-small_cnn-n0-lgl_r4", "lgl_r4", s, 0.9) for s in range(3)])
    cell = "digits-small_cnn-n0-lgl_r4~grouping-balanced"
    _index(res, SENSITIVITY_STUDY, [_record(res, SENSITIVITY_STUDY, cell, "lgl_r4", s, 0.4) for s in range(3)])
    t = sensitivity_table(params(), "lgl", claims, res).set_index("reading")
    assert t.loc["paper", "verdict (default)"] == "L6: holds"
    assert t.loc["balanced", "verdict (this reading)"] == "L6: does not hold"
    assert t.loc["balanced", "verdict changes"] == "L6"
    monkeypatch.setattr(PAPERS["lgl"], "claim_scalars", None)   # no hook: not re-evaluated
    t = sensitivity_table(params(), "lgl", claims, res).set_index("reading")
    assert t.loc["balanced", "verdict (this reading)"].startswith("L6: not re-evaluated")


def test_more_seeds_for_the_readings_each_draw_their_own_noise():
    from trainrepro.config import expand_study

    raw = copy.deepcopy(RAW)
    raw["profiles"]["sensitivity"]["sensitivity"]["seeds"] = [0, 1, 2, 3, 4]
    p = params(raw=raw)
    runs = [r for r in sensitivity_runs(p, "mentornet") if r.cell.endswith("~ema_decay-code")]
    assert [r.seed for r in runs] == [0, 1, 2, 3, 4]
    assert len({r.noise for r in runs}) == 5
    default = {r.seed: r.noise for r in expand_study(p, "mentornet") if r.cell == "digits-small_cnn-n0.4-mentornet_dd"}
    assert all(r.noise == default[r.seed] for r in runs if r.seed in default)  # same draw as the default cell
