"""Aggregation statistics, claim verdicts on constructed results, paper tables, notebook
normalisation."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from trainrepro.report.claims import evaluate_claims, evaluate_rule
from trainrepro.report.notebooks import normalise, offline_html
from trainrepro.report.tables import paper_comparison, write_table
from trainrepro.results import summarise
from trainrepro.stats import mean_ci


def runs(spec):
    """spec: {(method, noise): [accs]} -> a runs frame like results.load_runs."""
    rows = []
    for (method, noise), accs in spec.items():
        for seed, a in enumerate(accs):
            rows.append({"study": "s", "dataset": "digits", "model": "m", "noise": noise, "method": method,
                         "cell": f"{method}-{noise}", "seed": seed, "status": "ok", "test_acc": a,
                         "epochs_run": 10, "wall_time_s": 1.0})
    return pd.DataFrame(rows)


def test_mean_ci_is_the_t_interval():
    v = np.array([0.8, 0.82, 0.85, 0.79])
    m, sd, lo, hi = mean_ci(v)
    half = stats.t.ppf(0.975, 3) * v.std(ddof=1) / 2
    assert m == pytest.approx(v.mean()) and lo == pytest.approx(m - half) and hi == pytest.approx(m + half)
    assert np.isnan(mean_ci(np.array([0.5]))[1])


def test_summarise_counts_diverged_runs_apart_from_the_mean():
    r = runs({("a", 0.4): [0.8, 0.9, 0.7]})
    r.loc[2, "status"], r.loc[2, "test_acc"] = "diverged", None
    s = summarise(r).iloc[0]
    assert s["n"] == 2 and s["n_diverged"] == 1 and s["mean"] == pytest.approx(0.85)
    assert s["seeds"] == "0,1"


@pytest.mark.parametrize("a,b,verdict", [
    ([0.90, 0.91, 0.92], [0.70, 0.71, 0.72], "holds"),
    ([0.70, 0.71, 0.72], [0.90, 0.91, 0.92], "does not hold"),
    ([0.80, 0.90, 0.70], [0.78, 0.88, 0.72], "inconclusive"),
])
def test_greater_rule_uses_the_interval_of_the_difference(a, b, verdict):
    r = runs({("dd", 0.4): a, ("full", 0.4): b})
    rule = {"type": "greater", "a": {"method": "dd"}, "b": {"method": "full"}, "where": {"noise": 0.4}}
    assert evaluate_rule(rule, r, ".").verdict == verdict


def test_best_increasing_within_at_most_and_scalar_rules(tmp_path):
    r = runs({("r2", 0): [0.80, 0.81, 0.80], ("r3", 0): [0.85, 0.86, 0.85], ("r4", 0): [0.90, 0.91, 0.90],
              ("spl", 0): [0.70, 0.71, 0.70]})
    assert evaluate_rule({"type": "best", "a": {"method": "r4"}, "others": [{"method": "r2"}, {"method": "spl"}]},
                         r, ".").verdict == "holds"
    assert evaluate_rule({"type": "increasing", "sequence": [{"method": "r2"}, {"method": "r3"}, {"method": "r4"}]},
                         r, ".").verdict == "holds"
    assert evaluate_rule({"type": "increasing", "sequence": [{"method": "r4"}, {"method": "r2"}]},
                         r, ".").verdict == "does not hold"
    assert evaluate_rule({"type": "within", "a": {"method": "r2"}, "b": {"method": "r4"}, "tol": 0.01},
                         r, ".").verdict == "does not hold"
    assert evaluate_rule({"type": "at_most", "each": [{"method": "spl"}], "b": {"method": "r2"}, "tol": 0.0},
                         r, ".").verdict == "holds"
    (tmp_path / "x.json").write_text('{"a": {"b": 0.03}}')
    assert evaluate_rule({"type": "scalar", "file": "x.json", "key": "a.b", "op": "<=", "value": 0.05},
                         r, tmp_path).verdict == "holds"
    assert evaluate_rule({"type": "scalar", "file": "y.json", "key": "a", "op": "<=", "value": 1},
                         r, tmp_path).verdict == "not run"


def test_claims_about_paper_scale_datasets_are_not_comparable_and_absent_studies_not_run():
    r = runs({("dd", 0.4): [0.9, 0.9, 0.9], ("full", 0.4): [0.7, 0.7, 0.7]})
    claims = [{"id": "X1", "paper": "p", "statement": "s",
               "rule": {"type": "greater", "a": {"method": "dd"}, "b": {"method": "full"},
                        "where": {"dataset": "cifar100"}}},
              {"id": "X2", "paper": "q", "statement": "s",
               "rule": {"type": "greater", "a": {"method": "dd"}, "b": {"method": "full"}}}]
    v = evaluate_claims(claims, {"p": r}, ".").set_index("id")["verdict"]
    assert v["X1"] == "not comparable" and v["X2"] == "not run"


def test_paper_table_marks_other_scales_not_comparable_and_same_scale_reproduced():
    cells = summarise(runs({("fullmodel", 0.4): [0.45, 0.46, 0.44]}))
    table = {"metric": "test_accuracy", "entries": [
        {"dataset": "cifar10", "model": "wrn", "noise": 0.4, "method": "fullmodel", "value": 0.5,
         "source": {"table": "Table 2", "row": "FullModel", "column": "c"}},
        {"dataset": "digits", "model": "m", "noise": 0.4, "method": "fullmodel", "value": 0.45,
         "source": {"table": "Table 2", "row": "FullModel", "column": "c"}},
        {"dataset": "digits", "model": "m", "noise": 0.8, "method": "fullmodel", "value": 0.2,
         "source": {"table": "Table 2", "row": "FullModel", "column": "c"}}]}
    t = paper_comparison(table, cells)
    assert list(t["verdict"]) == ["not comparable", "reproduced", "not run"]
    assert t.loc[0, "diff"] == pytest.approx(-0.05)


def test_tables_are_written_in_three_formats(tmp_path):
    write_table(pd.DataFrame({"a": [1.0, 2.5], "b": ["x", "y"]}), tmp_path / "t", "caption")
    assert (tmp_path / "t.csv").read_text().startswith("a,b")
    md = (tmp_path / "t.md").read_text()
    assert md.startswith("caption") and "| 2.5000 |" in md
    assert "\\begin{tabular}" in (tmp_path / "t.tex").read_text()


def test_notebook_normalisation_removes_volatile_fields_and_html_has_no_remote_scripts():
    import nbformat

    nb = nbformat.v4.new_notebook()
    c = nbformat.v4.new_code_cell("1+1")
    c.metadata["papermill"] = {"start_time": "2026-01-01T00:00:00", "duration": 1.0}
    c.metadata["execution"] = {"iopub.status.busy": "x"}
    c.execution_count = 3
    nb.cells = [c, nbformat.v4.new_markdown_cell("$x^2$")]
    nb.metadata["papermill"] = {"start_time": "t"}
    out = normalise(nb)
    assert "papermill" not in out.metadata and out.cells[0].execution_count is None
    assert out.cells[0]["id"] == "cell-000" and "execution" not in out.cells[0].metadata
    html = offline_html(out)
    assert 'src="http' not in html and "cdn.jsdelivr" not in html and "cdnjs" not in html
    assert "import(\"http" not in html
