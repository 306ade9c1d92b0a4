"""The shape of the code: the core never imports a paper package, no module imports form a
cycle, every registry is filled by decorators, a run's code hash covers every module the run
loads, and every DVC stage depends on the code it runs."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "src" / "trainrepro"


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def top_level_imports(path: Path) -> set[str]:
    """trainrepro modules imported at module level (not under TYPE_CHECKING, not in functions)."""
    tree = ast.parse(path.read_text())
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("trainrepro")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("trainrepro"):
                continue
            for a in node.names:   # `from pkg import submodule` imports the submodule
                sub = f"{target}.{a.name}"
                out.add(sub if (PKG.parent / sub.replace(".", "/")).with_suffix(".py").exists()
                        or (PKG.parent / sub.replace(".", "/")).is_dir() else target)
    return out


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PKG.rglob("*.py")}


def test_the_core_never_imports_a_paper_package():
    for name, path in all_modules().items():
        if name.startswith("trainrepro.papers"):
            continue
        src = path.read_text()
        bad = [i for i in top_level_imports(path) if i.startswith("trainrepro.papers")]
        assert not bad and "papers." not in "".join(
            l for l in src.splitlines() if l.lstrip().startswith(("from ", "import "))), name


def test_module_imports_form_no_cycle():
    mods = all_modules()
    graph = {m: {i for i in top_level_imports(p) if i in mods and i != m} for m, p in mods.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            # a package's __init__ importing its own submodules is how registries are filled;
            # a submodule importing its package back would be the cycle
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_registries_are_filled_by_decorators_in_the_defining_modules():
    from trainrepro.data import SOURCES
    from trainrepro.methods import METHODS
    from trainrepro.models import MODELS
    from trainrepro.optim import SCHEDULES

    for reg in (SOURCES, METHODS, MODELS, SCHEDULES):
        for name, obj in reg.items():
            assert not obj.__module__.endswith("__init__"), (reg.kind, name)
            assert name in (PKG.parent / obj.__module__.replace(".", "/")).with_suffix(".py") \
                .read_text(), (reg.kind, name)


def test_every_paper_is_registered_with_its_yaml():
    from trainrepro.papers import NAMES
    from trainrepro.registry import PAPERS

    assert list(PAPERS) == list(NAMES)
    for paper in PAPERS.values():
        assert paper.reported_path.exists() and paper.claims_path.exists()
        claims = yaml.safe_load(paper.claims_path.read_text())["claims"]
        assert all(c["paper"] == paper.name for c in claims)


PROBE = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from trainrepro.config import code_files
    from trainrepro.runner import execute
    jobs = json.loads(sys.argv[1])
    for job in jobs:
        rec = execute(job)
        assert rec["status"] == "ok", rec
    loaded = sorted(m.__file__ for n, m in sys.modules.items()
                    if n.startswith("trainrepro") and getattr(m, "__file__", None))
    hashed = sorted(str(f) for f in code_files(jobs[0]["method_module"]))
    print(json.dumps({{"loaded": loaded, "hashed": hashed}}))
""")


def probe_jobs(tmp_path: Path, prepared: Path, families: list[tuple[str, dict]]) -> list[dict]:
    from conftest import train_cfg

    from trainrepro.methods import METHODS

    jobs = []
    for i, (family, params) in enumerate(families):
        cfg = train_cfg(epochs=2, noise=["symmetric_incl", 0.4, 0], method_family=family,
                        method_params=params, dataset="digits", config_hash=f"h{i}")
        jobs.append({"cfg": cfg, "run_dir": str(tmp_path / f"run{i}"), "device": "cpu",
                     "threads": 1, "prepared": str(prepared),
                     "method_module": METHODS[family].__module__})
    return jobs


def mentor_file(tmp_path: Path) -> str:
    from trainrepro.papers.mentornet.net import build_mentor, save_mentor

    path = tmp_path / "mentor.pt"
    save_mentor(path, build_mentor({}), {"kind": "pd"})
    return str(path)


@pytest.mark.parametrize("group", ["core", "mentornet", "lgl", "alternation"])
def test_a_runs_code_hash_covers_every_module_it_loads(group, tmp_path, prepared_digits):
    """Per method family: train in a fresh interpreter, then every trainrepro module that the
    interpreter loaded must be among the files the run's code hash covers."""
    families = {
        "core": [("fullmodel", {}), ("spl", {}), ("spl_inv", {}), ("spld", {})],
        "mentornet": [("mentornet", {"mentor_path": mentor_file(tmp_path)}),
                      ("mentornet_record", {}), ("forgetting", {"dropout": 0.3}),
                      ("self_paced", {}), ("self_paced", {"threshold": "moving_percentile"}),
                      ("focal", {}), ("reed", {}), ("goldberger", {})],
        "lgl": [("lgl", {"steps": 2}), ("baseline_matched", {"steps": 2})],
        "alternation": [("i_alt", {"warmup_epochs": 1}), ("b_alt", {"warmup_epochs": 1}),
                        ("ht_sgd", {}), ("dsd", {"sparse": "b_alt"})],
    }[group]
    jobs = probe_jobs(tmp_path, prepared_digits, families)
    out = subprocess.run([sys.executable, "-c", PROBE.format(tests=str(REPO / "tests")),
                          json.dumps(jobs)], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    missing = sorted(set(res["loaded"]) - set(res["hashed"]))
    assert not missing, f"loaded while training but not in the code hash: {missing}"
    if group == "core":
        assert not any("/papers/mentornet/" in f or "/papers/lgl/" in f for f in res["hashed"])


def test_the_moving_average_percentile_is_part_of_every_mentornet_runs_hash():
    from trainrepro.config import code_files
    from trainrepro.methods import METHODS

    files = code_files(METHODS["mentornet"].__module__)
    assert PKG / "papers" / "mentornet" / "curriculum.py" in files
    assert PKG / "engine.py" in files and PKG / "optim" / "schedules.py" in files
    assert not any("report" in f.relative_to(PKG).parts[0] for f in files)


def test_every_stage_depends_on_its_script_and_the_package():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, st in stages.items():
        deps = [d if isinstance(d, str) else next(iter(d)) for d in st.get("deps", [])]
        for script in [w for w in st["cmd"].split() if w.startswith("stages/")]:
            assert script in deps, (name, script)
        assert "src/trainrepro" in deps, name


def test_methods_use_only_the_documented_trainer_view():
    """Every `trainer.<name>` a method module uses is declared by TrainerView."""
    import re

    from trainrepro.methods.base import TrainerView

    allowed = set(TrainerView.__annotations__) | {n for n in vars(TrainerView) if not n.startswith("_")}
    files = list((PKG / "methods").glob("*.py")) + list((PKG / "papers").rglob("*.py"))
    used = {(f.name, m) for f in files for m in re.findall(r"\btrainer\.([A-Za-z_]\w*)", f.read_text())}
    bad = sorted((f, m) for f, m in used if m not in allowed)
    assert not bad, f"trainer attributes outside TrainerView: {bad}"
