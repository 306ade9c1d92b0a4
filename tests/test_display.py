"""What reviewers read: values as text (no reprs), the claims dashboard, clipped intervals."""
import numpy as np
import pandas as pd

from trainrepro.report.dashboard import COLOURS, dashboard_html
from trainrepro.report.display import readable, readable_frame
from trainrepro.stats import mean_ci


def test_readable_turns_recipes_and_switches_into_text():
    assert readable({"width": 16, "dropout": 0.5}) == "width = 16; dropout = 0.5"
    assert readable([0.5, 0.64]) == "0.5, 0.64"
    assert readable({}) == "(defaults)" and readable([]) == "(none)"
    assert readable({"milestones": [50, 64], "gamma": 0.1}) == "milestones = 50, 64; gamma = 0.1"
    assert readable(True) == "yes" and readable(None) == "—" and readable(float("nan")) == "—"
    assert readable(0.123456) == "0.1235"


def test_readable_frame_leaves_no_python_repr_in_any_cell():
    df = pd.DataFrame({"params": [{"a": 1}, {"b": [1, 2]}], "acc": [0.5, 0.25], "name": ["x", "y"]})
    out = readable_frame(df)
    assert out["params"].tolist() == ["a = 1", "b = 1, 2"]
    assert out["acc"].tolist() == [0.5, 0.25] and out["name"].tolist() == ["x", "y"]
    assert not any(str(v).startswith(("{", "[")) for v in out.to_numpy().ravel())


def test_accuracy_intervals_are_clipped_to_the_unit_interval():
    m, sd, lo, hi = mean_ci(np.array([0.99, 1.0, 0.97]), bounds=(0.0, 1.0))
    assert lo >= 0.0 and hi == 1.0 and m < 1.0
    _, _, lo2, hi2 = mean_ci(np.array([0.99, 1.0, 0.97]))
    assert hi2 > 1.0  # unclipped, the t-interval leaves [0, 1]


def test_the_dashboard_colours_every_verdict_and_links_each_paper_report():
    v = pd.DataFrame({"id": ["M1", "M2", "L1"], "paper": ["mentornet", "mentornet", "lgl"],
                      "statement": ["a", "b", "c"], "verdict": ["holds", "does not hold", "inconclusive"],
                      "evidence": ["e1", "e2", "e3"]})
    page = dashboard_html({"quick": v, "cifar10_jpeg": v.assign(verdict="not run")}, {"mentornet"})
    assert 'id="claims-dashboard"' in page and page.count("<table") == 2
    for verdict in ("holds", "does not hold", "inconclusive", "not run"):
        assert f'background:{COLOURS[verdict]}" title=' in page
    assert 'href="mentornet.html"' in page and "no report at this scale" in page  # lgl: none
    assert "<th>quick</th><th>cifar10_jpeg</th>" in page
