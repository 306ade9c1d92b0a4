"""Reading sensitivity: the headline cell of every switch that encodes a paper-vs-official-code
divergence or an ambiguity of a paper's text, run under each reading (issue 9, item 20).

The readings are declared, one entry a switch, in each paper's paper.yaml (`readings:`):

    - switch: ema_decay              # a short name (cells: <default cell>~<switch>-<label>)
      kind: code                     # code: paper vs official code | text: an ambiguity of the
                                     # paper's text | ours: a value neither source fixes
      method: mentornet_dd           # the method instance whose cell is varied ...
      where: {noise: 0.4}            # ... the first cell of the paper's study matching this
      param: method.ema_decay        # method.<param> | train.<key>[.<sub key>] | <section>.<path>
      values: {paper: 0.95, code: 0.5}   # reading label -> value (the first = the paper's)
      claims: [M1]                   # the claims whose verdict the reading may change
      source: "Sec. 5.1 vs google/mentornet (REFERENCE.md s.1)"
      # optional: metric (test_acc | val_acc | test_loss | a dotted path into metrics.json),
      # measured (a dotted path into metrics.json holding one value per reading: a test-time
      # reading measured on the default runs, no extra training), needs (why a <section>
      # switch is not run here)

`plan` resolves them against the active profile: the reading equal to the instance's own value
is the default (the paper study's cell, no extra run); a reading equal to another method
instance of the same study (b_alt with b_apply: gate = b_alt_gate) reuses that cell; the rest
become runs of the study `sensitivity` (stage train_sensitivity, ordinary runner, cached by
config hash). A profile opts in with `sensitivity: {papers: [...], seeds: [...]}` (seeds
optional: default the cell's own). Switches of a stage's own section (e.g. `mentor.pd.schedule`,
which changes a fitted mentor) are listed as not run, with what they need.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from .config import (
    TRAIN_DEFAULTS,
    Params,
    RunSpec,
    expand_study,
    run_noise_seed,
    validate_resolved,
    validate_train,
)
from .methods import METHODS
from .optim import OPTIMIZERS, schedule_args
from .registry import PAPERS, ConfigError

SENSITIVITY_STUDY = "sensitivity"
KINDS = ("code", "text", "ours")
ENTRY_KEYS = {"switch", "kind", "method", "where", "param", "values", "claims", "source", "metric",
              "measured", "needs"}
REQUIRED = ("switch", "kind", "method", "param", "values", "source")
WHERE_KEYS = ("dataset", "model", "noise", "tag")


@dataclass(frozen=True)
class Reading:
    """One switch of a paper (one entry of its paper.yaml `readings:`)."""

    paper: str
    switch: str
    kind: str
    method: str
    param: str
    values: dict[str, Any]
    source: str
    where: dict[str, Any] = field(default_factory=dict)
    claims: tuple[str, ...] = ()
    metric: str = "test_acc"
    measured: str = ""
    needs: str = ""

    @property
    def target(self) -> str:
        """What the param path addresses: `method` params, the run's `train` settings, or a
        top-level params `section` (a setting of some stage, not of the run)."""
        head = self.param.split(".", 1)[0]
        return head if head in ("method", "train") else "section"

    @property
    def key(self) -> list[str]:
        """The param path below its target (`method.ema_decay` -> ['ema_decay'])."""
        parts = self.param.split(".")
        return parts[1:] if self.target != "section" else parts


@dataclass
class Planned:
    """One reading of one switch resolved against the active profile."""

    reading: Reading
    label: str
    value: Any
    default_cell: str = ""      # the paper-study cell the switch varies ("" = not in this profile)
    default_value: Any = None   # the instance's own value of the switch
    study: str = ""             # where this reading's runs are: the paper's study or `sensitivity`
    cell: str = ""
    status: str = ""            # default | run | reuses <cell> | measured | not run: <why>
    runs: list[RunSpec] = field(default_factory=list)  # runs to train (study `sensitivity`)

    @property
    def is_default(self) -> bool:
        return self.status == "default"


def _is_name(x: Any) -> bool:
    return isinstance(x, str) and x.replace("_", "").isalnum()


def load_readings(paper: str) -> list[Reading]:
    """The `readings:` of a registered paper's paper.yaml, checked (ConfigError names the entry)."""
    p = PAPERS.get_checked(paper, "paper")
    entries = (yaml.safe_load(p.reported_path.read_text()) or {}).get("readings") or []
    claim_ids = {c["id"] for c in (yaml.safe_load(p.claims_path.read_text()) or {}).get("claims") or []}
    out = []
    for i, e in enumerate(entries):
        where = f"{p.reported_path.name} of {paper}: readings[{i}]"
        if not isinstance(e, dict):
            raise ConfigError(f"{where}: expected a mapping")
        unknown = sorted(set(e) - ENTRY_KEYS)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown key; allowed: {', '.join(sorted(ENTRY_KEYS))}")
        for k in REQUIRED:
            if k not in e:
                raise ConfigError(f"{where}.{k}: missing")
        if e["kind"] not in KINDS:
            raise ConfigError(f"{where}.kind: {e['kind']!r} is not allowed; allowed: {', '.join(KINDS)}")
        if not isinstance(e["values"], dict) or len(e["values"]) < 2:
            raise ConfigError(f"{where}.values: expected a mapping of at least two readings (label: value)")
        bad = [k for k in e["values"] if not _is_name(k)]
        if bad:  # YAML reads off / no / yes as booleans: labels name cells, so they must be names
            raise ConfigError(f"{where}.values: reading label {bad[0]!r} is not a name of letters, "
                              "digits and '_' (quote it, or avoid off / on / yes / no)")
        if not _is_name(e["switch"]):
            raise ConfigError(f"{where}.switch: {e['switch']!r} is not a name of letters, digits and '_'")
        for k in e.get("where") or {}:
            if k not in WHERE_KEYS:
                raise ConfigError(f"{where}.where.{k}: unknown key; allowed: {', '.join(WHERE_KEYS)}")
        for c in e.get("claims") or []:
            if c not in claim_ids:
                raise ConfigError(f"{where}.claims: unknown claim {c!r} of {paper}; allowed: "
                                  f"{', '.join(sorted(claim_ids))}")
        r = Reading(paper=paper, switch=str(e["switch"]), kind=e["kind"], method=str(e["method"]),
                    param=str(e["param"]), values=dict(e["values"]), source=str(e["source"]),
                    where=dict(e.get("where") or {}), claims=tuple(e.get("claims") or ()),
                    metric=str(e.get("metric", "test_acc")), measured=str(e.get("measured", "")),
                    needs=str(e.get("needs", "")))
        if len(r.key) < 1 or not all(r.key):
            raise ConfigError(f"{where}.param: {r.param!r}: expected method.<param>, train.<key> or "
                              "<section>.<path>")
        out.append(r)
    if len({(r.switch, r.method) for r in out}) != len(out):
        raise ConfigError(f"{p.reported_path.name} of {paper}: readings: a switch is declared twice "
                          "for the same method")
    return out


def _get(tree: dict[str, Any], path: list[str], default: Any = None) -> Any:
    for k in path:
        if not isinstance(tree, dict) or k not in tree:
            return default
        tree = tree[k]
    return tree


def _set(tree: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(tree)
    node = out
    for k in path[:-1]:
        node = node.setdefault(k, {})
    node[path[-1]] = value
    return out


def _train_value(train: dict[str, Any], path: list[str]) -> Any:
    """A run's train setting at `path`, with the defaults of its optimizer / schedule args."""
    got = _get(train, path, KeyError)
    if got is not KeyError:
        return got
    if path[0] == "optimizer_args" and len(path) == 2:
        return OPTIMIZERS[train["optimizer"]].args.get(path[1])
    if path[0] == "schedule_args" and len(path) == 2:
        return schedule_args(train["schedule"]).get(path[1])
    return _get(TRAIN_DEFAULTS, path)


def _matches(spec: RunSpec, where: dict[str, Any]) -> bool:
    for k, v in where.items():
        got = spec.noise[1] if k == "noise" else spec.extra.get("tag", "") if k == "tag" else getattr(spec, k, None)
        if (float(got) != float(v)) if k == "noise" else got != v:
            return False
    return True


def _resolved_params(spec: RunSpec, where: str) -> dict[str, Any]:
    return METHODS[spec.method_family].validate_params(dict(spec.method_params), where)


def _same_run(a: RunSpec, b: RunSpec) -> bool:
    """Same data, model, family, resolved method params and train settings (any name)."""
    return (a.dataset, a.noise, a.model, a.method_family, a.train) == \
        (b.dataset, b.noise, b.model, b.method_family, b.train) and \
        _resolved_params(a, "") == _resolved_params(b, "")


def enabled_papers(params: Params) -> list[str]:
    """Papers whose readings the active profile runs (profile key `sensitivity.papers`)."""
    return list((params.profile.get("sensitivity") or {}).get("papers") or [])


def _derive(reading: Reading, spec: RunSpec, value: Any, label: str, where: str) -> RunSpec:
    """The default cell's run `spec` with the switch set to `value` (checked like params.yaml)."""
    cell = f"{spec.cell}~{reading.switch}-{label}"
    if reading.target == "method":
        mp = _set(spec.method_params, reading.key, value)
        METHODS[spec.method_family].validate_params(mp, where)
        return replace(spec, study=SENSITIVITY_STUDY, cell=cell, method_params=mp)
    train = _set(spec.train, reading.key, value)
    validate_train(where, {k: train[k] for k in reading.key[:1]})
    validate_resolved(where, train)
    return replace(spec, study=SENSITIVITY_STUDY, cell=cell, train=train)


def plan(params: Params, papers: list[str] | None = None) -> list[Planned]:
    """Every reading of every enabled paper, resolved against the active profile."""
    papers = enabled_papers(params) if papers is None else papers
    seeds = (params.profile.get("sensitivity") or {}).get("seeds") or []
    out: list[Planned] = []
    for paper in papers:
        study = expand_study(params, paper) if paper in params.studies() else []
        for i, r in enumerate(load_readings(paper)):
            where = f"{paper} readings[{i}] ({r.switch})"
            if r.method not in params.raw["methods"]:
                raise ConfigError(f"{where}.method: unknown method {r.method!r}; allowed: "
                                  f"{', '.join(sorted(params.raw['methods']))}")
            cell_runs = [s for s in study if s.method == r.method and _matches(s, r.where)]
            first = cell_runs[0].cell if cell_runs else ""
            cell_runs = [s for s in cell_runs if s.cell == first]
            if seeds and cell_runs:  # each seed with its own noise draw, as expand_study gives it
                noise = params.raw["noise"]
                kind, rate = cell_runs[0].noise[:2]
                cell_runs = [replace(cell_runs[0], seed=int(s), noise=(kind, rate, run_noise_seed(
                    int(noise.get("seed", 0)), int(s), rate, bool(noise.get("per_seed", True)))))
                    for s in seeds]
            for label, value in r.values.items():
                out.append(_plan_one(r, label, value, cell_runs, study, f"{where}.values.{label}"))
    return out


def _plan_one(r: Reading, label: str, value: Any, cell_runs: list[RunSpec], study: list[RunSpec],
              where: str) -> Planned:
    p = Planned(reading=r, label=label, value=value)
    if not cell_runs:
        p.status = f"not run: no {r.method} cell matching {r.where or '{}'} in this profile"
        return p
    spec = cell_runs[0]
    p.default_cell = spec.cell
    if r.target == "method":
        p.default_value = _get(_resolved_params(spec, where), r.key)
    elif r.target == "train":
        p.default_value = _train_value(spec.train, r.key)
    else:
        p.status = "not run: needs " + (r.needs or f"the stage that reads `{r.param}` to run under "
                                        "each reading (this builder varies method and train params)")
        return p
    if r.measured:
        p.study, p.cell, p.status = spec.study, spec.cell, "default" if value == p.default_value else "measured"
        return p
    if value == p.default_value:
        p.study, p.cell, p.status = spec.study, spec.cell, "default"
        return p
    derived = [_derive(r, s, value, label, where) for s in cell_runs]
    same = next((s for s in study if s.cell != spec.cell and _same_run(s, derived[0])), None)
    if same is not None and {s.seed for s in study if s.cell == same.cell} >= {s.seed for s in cell_runs}:
        p.study, p.cell, p.status = same.study, same.cell, f"reuses {same.method}"
        return p
    p.study, p.cell, p.status, p.runs = SENSITIVITY_STUDY, derived[0].cell, "run", derived
    return p


def sensitivity_runs(params: Params, paper: str | None = None) -> list[RunSpec]:
    """The runs of the study `sensitivity` in the active profile (of one paper, if given)."""
    papers = [paper] if paper is not None else None
    if paper is not None and paper not in enabled_papers(params):
        return []
    return [s for p in plan(params, papers) for s in p.runs]

