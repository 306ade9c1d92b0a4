"""Schema and content checks for the papers' reported numbers and claims.

src/trainrepro/papers/{mentornet,lgl,alternation,llbsgd}.yaml hold the transcribed
tables; claims.yaml holds the claims as rules. These tests check the schema, the
vocabulary, a few transcribed values against REFERENCE.md / the paper texts, and
that every comparative claim holds on the paper's own numbers.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

PAPERS_DIR = Path(__file__).resolve().parents[1] / "src" / "trainrepro" / "papers"
PAPERS = ["mentornet", "lgl", "alternation", "llbsgd"]

DATASETS = {"cifar10", "cifar100", "mnist", "svhn", "imagenet", "webvision", "digits"}
MODELS = {
    "wide_resnet_mentornet", "cifarnet", "inception_resnet_v2", "vgg16",
    "allcnn_a", "allcnn_b", "allcnn_c", "nin", "resnet34", "resnet50",
}
# Models that appear only in cited literature tables (alternation Table 8).
LITERATURE_MODELS = {"googlenet", "resnet18"}
CORE_METHODS = {
    "mentornet": {"fullmodel", "forgetting", "self_paced", "focal", "reed_soft", "reed_hard",
                  "goldberger", "azadi", "mentornet_pd", "mentornet_dd", "noreg"},
    "lgl": {"baseline", "spl", "spl_inv", "spld", "lgl_r2", "lgl_r3", "lgl_r4", "lgl_r20",
            "lgl_d3", "lgl_s3"},
    "alternation": {"sgd", "i_alt", "b_alt", "i_alt_maskt", "b_alt_maskt"},
    "llbsgd": {"llbsgd", "sgd", "nag", "adagrad", "adam", "adadelta", "rmsprop"},
}
# Extra rows of the papers' literature tables (ImageNet/WebVision variants in
# MentorNet; prior-art rows and DSD variants in alternation).
EXTRA_METHODS = {
    "mentornet": {"noreg_weight_decay", "noreg_dropout", "noreg_data_aug", "noreg_mentornet",
                  "mentornet", "li_2017", "lee_2017_star", "mentornet_star"},
    "lgl": set(),
    "alternation": {"dsd", "dsd_i_alt", "dsd_b_alt"},
    "llbsgd": set(),
}
CLAIM_ONLY_METHODS = {"mentornet": {"mentornet_dd_transfer"},
                      "alternation": {"sgd_ht", "b_alt_gate"}}  # our readings / Sec. 3.1's text
NOISES = {0, 0.2, 0.4, 0.8}
METRICS = {"test_accuracy", "test_error"}
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")

RULE_KEYS = {
    "greater": {"metric", "a", "b", "where", "margin"},
    "best": {"metric", "a", "others", "where"},
    "increasing": {"metric", "sequence", "where"},
    "within": {"metric", "a", "b", "where", "tol"},
    "at_most": {"metric", "each", "b", "where", "tol"},
    "scalar": {"file", "key", "op", "value"},
}
SELECTOR_KEYS = {"study", "dataset", "noise", "method", "model"}
OPTIONAL_RULE_KEYS = {"testable_at", "why_not_testable", "combine"}   # report/claims.py options
CLAIM_PREFIX = {"mentornet": "M", "lgl": "L", "alternation": "A", "llbsgd": "B"}


def load(name: str, kind: str = "paper"):
    """A paper package's paper.yaml or claims.yaml."""
    with open(PAPERS_DIR / name / f"{kind}.yaml") as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def papers():
    return {p: load(p) for p in PAPERS}


@pytest.fixture(scope="module")
def claims_doc():
    """Every paper's claims.yaml, concatenated (claim ids are unique across papers)."""
    docs = [load(p, "claims") for p in PAPERS]
    return {"claims": [c for d in docs for c in d["claims"]],
            "untested_claims": [c for d in docs for c in d.get("untested_claims", [])]}


def numeric_tables(doc):
    return [t for t in doc["tables"] if t.get("kind", "numeric") == "numeric"]


def all_entries(doc):
    for t in numeric_tables(doc):
        for e in t["entries"]:
            yield t, e


def find(doc, table_id, **sel):
    table = next(t for t in doc["tables"] if t["id"] == table_id)
    hits = [e for e in table["entries"] if all(e.get(k) == v for k, v in sel.items())]
    assert len(hits) == 1, (table_id, sel, hits)
    return hits[0]["value"]


# ---------------------------------------------------------------- paper files


@pytest.mark.parametrize("name", PAPERS)
def test_paper_header(papers, name):
    doc = papers[name]
    assert doc["paper"] == name
    for key in ("title", "citation", "scale"):
        assert isinstance(doc[key], str) and doc[key].strip(), key
    assert isinstance(doc["tables"], list)


@pytest.mark.parametrize("name", PAPERS)
def test_table_schema(papers, name):
    doc = papers[name]
    ids = [t["id"] for t in doc["tables"]]
    assert len(ids) == len(set(ids)), "table ids must be unique"
    methods = CORE_METHODS[name] | EXTRA_METHODS[name]
    for t in doc["tables"]:
        for key in ("id", "title", "source", "entries"):
            assert key in t, (t.get("id"), key)
        assert t["entries"], t["id"]
        if t.get("kind", "numeric") == "classes":
            for e in t["entries"]:
                assert e["dataset"] in DATASETS
                assert isinstance(e["rank"], int)
                for col in ("lowest", "highest"):
                    assert e[col] and all(SNAKE.match(c) for c in e[col]), (t["id"], col)
                check_source(e["source"])
            continue
        assert t["metric"] in METRICS, t["id"]
        for e in t["entries"]:
            where = (name, t["id"], e.get("method"), e.get("dataset"), e.get("noise"))
            for key in ("dataset", "model", "noise", "method", "value", "reference", "source"):
                assert key in e, (where, key)
            assert e["dataset"] in DATASETS, where
            if e["model"] is None:
                # only cited rows of networks that are not ours
                assert e.get("prior_art") or e.get("model_note"), where
            else:
                assert e["model"] in MODELS | LITERATURE_MODELS, where
            if e["noise"] is None:
                assert e["dataset"] == "webvision", where  # real-world noise, rate unknown
            else:
                assert e["noise"] in NOISES, where
            assert SNAKE.match(e["method"]), where
            if not e.get("prior_art"):
                assert e["method"] in methods, where
            v = e["value"]
            assert isinstance(v, (int, float)) and not isinstance(v, bool), where
            assert 0.0 <= v <= 1.0, where
            ref = e["reference"]
            assert ref in {"paper", "official_readme"}, where
            if ref == "official_readme":
                assert name == "mentornet" and t["id"] == "table2", where
                assert e["source"]["table"] == "official README", where
            check_source(e["source"])


def check_source(s):
    assert isinstance(s, dict), s
    for key in ("table", "row", "column"):
        assert isinstance(s.get(key), str) and s[key].strip(), (s, key)


def test_no_duplicate_cells(papers):
    for name, doc in papers.items():
        for t in numeric_tables(doc):
            seen = set()
            for e in t["entries"]:
                k = tuple(str(e.get(x)) for x in ("dataset", "model", "noise", "method", "reference",
                                                  "augmentation", "train_subset", "eval_set"))
                assert k not in seen, (name, t["id"], k)
                seen.add(k)


def test_required_tables_present(papers):
    ids = {p: {t["id"] for t in papers[p]["tables"]} for p in PAPERS}
    assert {"table2", "table3"} <= ids["mentornet"]
    assert {"table1", "table2", "table3"} <= ids["lgl"]
    assert {f"table{i}" for i in range(2, 8)} <= ids["alternation"]
    lgl_t2 = next(t for t in papers["lgl"]["tables"] if t["id"] == "table2")
    assert lgl_t2["kind"] == "classes"


def test_table_sizes(papers):
    def count(p, tid, **sel):
        t = next(t for t in papers[p]["tables"] if t["id"] == tid)
        return sum(all(e.get(k) == v for k, v in sel.items()) for e in t["entries"])

    # 7 methods x 2 StudentNets x 2 datasets x 3 noise levels, plus the README column
    assert count("mentornet", "table2", reference="paper") == 84
    assert count("mentornet", "table2", reference="official_readme") == 30
    assert count("mentornet", "table3") == 9
    assert count("lgl", "table1") == 15  # 7 methods x 2 datasets + LGL(r, 20)
    assert count("lgl", "table3") == 6
    assert count("alternation", "table2") == 9
    assert count("alternation", "table7") == 15


# ---------------------------------------------------------------- spot checks


def test_spot_values_mentornet(papers):
    d = papers["mentornet"]
    r = "wide_resnet_mentornet"
    assert find(d, "table2", dataset="cifar10", model=r, noise=0.4, method="fullmodel", reference="paper") == 0.69
    assert find(d, "table2", dataset="cifar10", model=r, noise=0.4, method="mentornet_dd", reference="paper") == 0.89
    assert find(d, "table2", dataset="cifar100", model=r, noise=0.8, method="mentornet_dd", reference="paper") == 0.35
    assert find(d, "table2", dataset="cifar10", model="cifarnet", noise=0.2, method="self_paced", reference="paper") == 0.80
    assert find(d, "table2", dataset="cifar100", model="cifarnet", noise=0.8, method="forgetting", reference="paper") == 0.17
    # official README (REFERENCE.md section 1)
    assert find(d, "table2", dataset="cifar10", model=r, noise=0.2, method="fullmodel", reference="official_readme") == 0.796
    assert find(d, "table2", dataset="cifar100", model=r, noise=0.4, method="mentornet_dd", reference="official_readme") == 0.675
    assert find(d, "table3", dataset="cifar10", method="goldberger") == 0.70
    assert find(d, "table3", dataset="cifar100", method="reed_hard") == 0.47
    # "on the CIFAR-10 of 40% noise, MentorNet DD (with resnet-101) yields an absolute 20% gain"
    gain = (find(d, "table2", dataset="cifar10", model=r, noise=0.4, method="mentornet_dd", reference="paper")
            - find(d, "table2", dataset="cifar10", model=r, noise=0.4, method="fullmodel", reference="paper"))
    assert math.isclose(gain, 0.20, abs_tol=1e-9)


def test_spot_values_lgl(papers):
    d = papers["lgl"]
    # REFERENCE.md section 2
    expected = {"baseline": (0.9303, 0.7111), "spl": (0.9260, 0.703), "spl_inv": (0.9296, 0.7050),
                "spld": (0.9285, 0.7025), "lgl_r2": (0.9311, 0.7267), "lgl_r3": (0.9359, 0.7342),
                "lgl_r4": (0.9397, 0.7417)}
    for m, (c10, c100) in expected.items():
        assert find(d, "table1", dataset="cifar10", method=m) == c10, m
        assert find(d, "table1", dataset="cifar100", method=m) == c100, m
    assert find(d, "table1", dataset="cifar100", method="lgl_r20") == 0.7491
    assert find(d, "table3", dataset="cifar10", method="lgl_d3") == 0.9373
    assert find(d, "table3", dataset="cifar100", method="lgl_s3") == 0.7323
    assert find(d, "table4", model="resnet50", method="lgl_r3") == 0.76166
    formula = next(f for f in d["formulas"] if f["id"] == "time_complexity")
    t, m = 10.0, 4
    assert math.isclose(eval(formula["expression"].split("=", 1)[1], {"t": t, "m": m}), 0.5 * t * (m + 1))
    t2 = next(t for t in d["tables"] if t["id"] == "table2")
    first = next(e for e in t2["entries"] if e["rank"] == 1)
    assert first["lowest"][0] == "oak_tree" and first["highest"][0] == "spider"
    assert "forest" in first["trained"]


def test_spot_values_alternation(papers):
    d = papers["alternation"]
    assert find(d, "table2", model="allcnn_a", method="i_alt") == 0.1026
    assert find(d, "table2", model="allcnn_c", method="i_alt_maskt") == 0.1373
    assert find(d, "table4", method="i_alt") == 0.3368
    assert find(d, "table5", method="i_alt") == 0.0047
    assert find(d, "table6", method="i_alt") == 0.0236
    assert find(d, "table7", dataset="cifar10", augmentation=True, method="b_alt") == 0.0722
    assert find(d, "table7", dataset="mnist", method="b_alt") == 0.0046
    assert find(d, "table8", model="vgg16", method="dsd_b_alt") == 0.264


def test_llbsgd_has_no_invented_numbers(papers):
    d = papers["llbsgd"]
    assert d["tables"] == []  # no table cell is readable in our copy
    assert {t["id"] for t in d["unreadable_tables"]} == {"table1", "table2", "table3", "table4"}
    tv = {t["id"]: t for t in d["text_values"]}
    assert tv["speedup_vs_sgd_cifar10"]["value"] == 4
    assert tv["initial_lr_range"]["value"] == [0.001, 0.1]
    assert tv["batch_size_range"]["value"] == [16, 256]
    for t in d["text_values"]:
        assert t["statement"] and t["source"]
        check_source(t["source"])


# ---------------------------------------------------------------- claims


def iter_rules(c):
    if "rule" in c:
        assert "rules" not in c, c["id"]
        return [c["rule"]]
    assert isinstance(c["rules"], list) and c["rules"], c["id"]
    return c["rules"]


def selectors(rule):
    t = rule["type"]
    out = [rule["where"]]
    if t in ("greater", "within"):
        out += [rule["a"], rule["b"]]
    elif t == "best":
        out += [rule["a"], *rule["others"]]
    elif t == "increasing":
        out += list(rule["sequence"])
    elif t == "at_most":
        out += [*rule["each"], rule["b"]]
    return out


def test_claims_schema(claims_doc):
    claims = claims_doc["claims"]
    untested = claims_doc.get("untested_claims", [])
    ids = [c["id"] for c in claims] + [c["id"] for c in untested]
    assert len(ids) == len(set(ids)), "claim ids must be unique"
    for c in claims + untested:
        for key in ("id", "paper", "statement", "source"):
            assert isinstance(c.get(key), str) and c[key].strip(), (c.get("id"), key)
        assert c["paper"] in PAPERS
        assert re.fullmatch(CLAIM_PREFIX[c["paper"]] + r"\d+", c["id"]), c["id"]
    for c in untested:
        assert c.get("why_untested"), c["id"]
        assert "rule" not in c and "rules" not in c, c["id"]
    for c in claims:
        methods = CORE_METHODS[c["paper"]] | EXTRA_METHODS[c["paper"]] | CLAIM_ONLY_METHODS.get(c["paper"], set())
        rules = iter_rules(c)
        for r in rules:
            assert r["type"] in RULE_KEYS, (c["id"], r["type"])
            missing = RULE_KEYS[r["type"]] - set(r)
            assert not missing, (c["id"], missing)
            extra = set(r) - RULE_KEYS[r["type"]] - {"type"} - OPTIONAL_RULE_KEYS
            assert not extra, (c["id"], extra)
            assert isinstance(r.get("testable_at", []), list), c["id"]
            if r["type"] == "scalar":
                assert r["op"] in {"<=", ">=", "<", ">"}
                assert isinstance(r["value"], (int, float))
                assert r["file"].startswith("results/") and r["file"].endswith(".json")
                assert r["key"] and " " not in r["key"]
                assert c.get("comment"), f"{c['id']}: scalar claims must explain their key"
                continue
            assert r["metric"] == "test_acc", c["id"]
            for s in selectors(r):
                assert isinstance(s, dict), c["id"]
                assert set(s) <= SELECTOR_KEYS, (c["id"], s)
                if "method" in s:
                    assert s["method"] in methods, (c["id"], s)
                if "dataset" in s:
                    assert s["dataset"] in DATASETS, (c["id"], s)
                if "model" in s:
                    assert s["model"] in MODELS, (c["id"], s)
                if "noise" in s:
                    assert s["noise"] in NOISES, (c["id"], s)
            for key in ("margin", "tol"):
                if key in r:
                    assert isinstance(r[key], (int, float)) and r[key] >= 0


def test_required_claims(claims_doc):
    by_id = {c["id"]: c for c in claims_doc["claims"]}
    required = [f"M{i}" for i in range(1, 6)] + [f"L{i}" for i in range(1, 8)] + \
               [f"A{i}" for i in range(1, 5)] + [f"B{i}" for i in range(1, 5)]
    for cid in required:
        assert cid in by_id, cid
    types = lambda cid: [r["type"] for r in iter_rules(by_id[cid])]  # noqa: E731
    assert types("M1") == ["greater"] and types("M13") == ["greater"]
    assert types("M2") == ["best"] * 4
    assert types("M3") == ["greater", "greater"]
    assert types("M5") == ["greater"] and by_id["M5"]["rule"]["a"] == {"method": "mentornet_dd_transfer"}
    assert types("L2") == ["increasing"]
    assert types("L3") == ["within"] * 3
    assert types("L4") == ["at_most"]
    assert types("A1") == ["within"] and types("A2") == ["within"]
    # MaskT is measured on i_alt's final weights: A3 decides on that drop's interval, both ways
    assert types("A3") == ["scalar", "scalar"] and {r["key"] for r in by_id["A3"]["rules"]} == {"maskt_drop"}
    for cid in ("M4", "L5", "L6", "L7", "A4", "A5", "A9", "B1", "B2", "B3", "B4"):
        assert types(cid) == ["scalar"], cid
    # the mentor stage's own DVC output (results/mentornet belongs to train_mentornet)
    assert by_id["M4"]["rule"]["file"] == "results/mentors/summary.json"
    assert by_id["M4"]["rule"]["key"] == "mentornet_dd.prop1_violations_fixed_lambda"
    assert by_id["L7"]["rule"] == {"type": "scalar", "file": "results/lgl/compute.json",
                                   "key": "time_ratio_vs_formula_error", "op": "<=", "value": 0.25}
    assert by_id["A4"]["rule"]["value"] == 0.7
    assert by_id["B1"]["rule"]["key"] == "speedup_vs_sgd" and by_id["B1"]["rule"]["value"] == 2.0
    assert {by_id[c]["rule"]["file"] for c in ("B2", "B3", "B4")} == {"results/llbsgd/robustness.json"}


# ------------------------------------- the paper's own numbers satisfy its claims


def paper_groups(doc, paper):
    """Cells grouped so that only like-for-like numbers are compared."""
    groups = defaultdict(list)
    for t, e in all_entries(doc):
        acc = e["value"] if t["metric"] == "test_accuracy" else 1.0 - e["value"]
        key = (e["reference"], e["dataset"], e["model"], e.get("augmentation"),
               e.get("train_subset"), e.get("eval_set"))
        groups[key].append({**e, "study": paper, "acc": acc})
        if paper == "mentornet" and e["dataset"] == "cifar100" and e.get("method") == "mentornet_dd":
            # Table 2's CIFAR-100 MentorNet DD is the CIFAR-10 mentor transferred (Sec. 5.1)
            groups[key].append({**e, "method": "mentornet_dd_transfer", "study": paper, "acc": acc})
    return groups


def matches(e, sel):
    for k, v in sel.items():
        ev = e.get(k)
        if isinstance(v, float) or isinstance(ev, float):
            if ev is None or v is None or not math.isclose(float(ev), float(v)):
                return False
        elif ev != v:
            return False
    return True


def mean_of(cells, where, sel):
    vals = [c["acc"] for c in cells if matches(c, where) and matches(c, sel)]
    return sum(vals) / len(vals) if vals else None


def evaluate(rule, cells):
    """True/False, or None when the cells lack a selector."""
    t, w = rule["type"], rule["where"]
    m = lambda s: mean_of(cells, w, s)  # noqa: E731
    if t == "greater":
        a, b = m(rule["a"]), m(rule["b"])
        return None if a is None or b is None else a - b > rule["margin"]
    if t == "within":
        a, b = m(rule["a"]), m(rule["b"])
        return None if a is None or b is None else abs(a - b) <= rule["tol"] + 1e-12
    if t == "best":
        a = m(rule["a"])
        others = [x for x in (m(s) for s in rule["others"]) if x is not None]
        return None if a is None or not others else all(a > o for o in others)
    if t == "increasing":
        seq = [m(s) for s in rule["sequence"]]
        return None if any(x is None for x in seq) else all(x < y for x, y in zip(seq, seq[1:]))
    if t == "at_most":
        b = m(rule["b"])
        each = [m(s) for s in rule["each"]]
        return None if b is None or any(x is None for x in each) else \
            all(x <= b + rule["tol"] + 1e-12 for x in each)
    raise AssertionError(t)


# Claims whose methods do not appear in any transcribed table.
NOT_IN_TABLES = {"A7", "A10"}


def test_claims_hold_on_paper_numbers(papers, claims_doc):
    for c in claims_doc["claims"]:
        rules = [r for r in iter_rules(c) if r["type"] != "scalar"]
        if not rules:
            continue
        groups = paper_groups(papers[c["paper"]], c["paper"])
        for r in rules:
            results = {k: evaluate(r, cells) for k, cells in groups.items()}
            checked = {k: v for k, v in results.items() if v is not None}
            if c["id"] in NOT_IN_TABLES:
                assert not checked, c["id"]
                continue
            assert checked, f"{c['id']}: no table has the cells this rule compares"
            failed = [k for k, v in checked.items() if not v]
            assert not failed, f"{c['id']} fails on the paper's own numbers in {failed}"
