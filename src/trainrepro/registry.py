"""Name -> constructor registries (plain dicts) with errors that list the allowed names.

Every registry of the project is filled the same way: a decorator in the module that defines
the entry (`@MODELS.register("mlp")`, `@METHODS.register("fullmodel")`, `@register_paper(...)`),
and a package `__init__` that imports its modules by name. `PAPERS` is the registry of paper
packages (src/trainrepro/papers/<paper>/): the core iterates it and never imports a paper.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A parameter is unknown, has the wrong type or an out-of-range value."""


class DataIntegrityError(ValueError):
    """Input data that cannot be used as it is (missing, truncated, corrupt, mis-laid-out); the
    message names the file and what was expected. Stages report it in one line."""


class Registry(dict):
    """A dict of constructors; `register` is a decorator, `build` a checked lookup."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self:
                raise KeyError(f"{self.kind} {name!r} registered twice")
            self[name] = obj
            return obj

        return deco

    def get_checked(self, name: str, key: str | None = None) -> Any:
        if not isinstance(name, str) or name not in self:
            where = f"{key}: " if key else ""
            raise ConfigError(
                f"{where}unknown {self.kind} {name!r}; allowed: {', '.join(sorted(self))}"
            )
        return self[name]

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get_checked(name)(*args, **kwargs)


def check_value(key: str, value: Any, default: Any, rng: tuple | None = None,
                choices: list | None = None) -> None:
    """Raise ConfigError naming `key` if `value` does not fit the default's type/range/choices."""
    if choices is not None and value not in choices:
        raise ConfigError(f"{key}: {value!r} is not allowed; allowed: {', '.join(map(str, choices))}")
    if default is not None:
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, type(default))
        if not ok:
            raise ConfigError(f"{key}: expected {type(default).__name__}, got "
                              f"{type(value).__name__} {value!r}")
    if rng is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = rng
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bound = (f"[{lo}, {hi}]" if lo is not None and hi is not None
                     else f">= {lo}" if lo is not None else f"<= {hi}")
            raise ConfigError(f"{key}: {value!r} is out of range (allowed: {bound})")


# A params.yaml section owned by one paper: validate(section, whole params) raises ConfigError.
SectionValidator = Callable[[Any, dict[str, Any]], None]
# A paper's own tables: write_tables(results_root, tables_dir) (called by the aggregate stage).
TableWriter = Callable[[str, Path], None]
# The study-level scalars a paper's claims read, from a results tree: claim_scalars(results_root,
# params) -> {file stem: content} of results/<paper>/<stem>.json (reading sensitivity re-derives
# them with a reading's runs in the default cell's place).
ClaimScalars = Callable[[str, Any], dict[str, dict[str, Any]]]
RunSelector = Callable[[Any], Any]  # runs frame -> the runs its tables and claims see


@dataclass
class Paper:
    """One reproduced paper, as its package registers it.

    name      the paper's id; also the name of its study in params.yaml and of its notebook
    title     how reports name it
    package   the paper's package directory (its YAML files live there)
    sections  params.yaml top-level sections the paper owns, with their validators
    write_tables  the paper's tables in its own layout (None: only the generic ones)
    headline_cells  label -> cell selector (method, noise, dataset, model): the few test
              accuracies `dvc exp show` shows for the paper (the first matching cell counts)
    headline  headline(results_root) -> {label: number}: headline numbers the paper computes
              itself (e.g. from a cell selected on validation); replaces headline_cells
    claim_scalars  the study-level scalar files its claims read, recomputed from a results tree
              (None: those claims are not re-evaluated per reading)
    select_runs  runs frame -> the runs its paper tables, claims and headline see (None: all),
              e.g. of a learning-rate grid only the lr chosen on validation
    """

    name: str
    title: str
    package: Path
    sections: dict[str, SectionValidator] = field(default_factory=dict)
    write_tables: TableWriter | None = None
    headline_cells: dict[str, dict[str, Any]] = field(default_factory=dict)
    headline: Callable[[str], dict[str, Any]] | None = None
    claim_scalars: ClaimScalars | None = None
    select_runs: RunSelector | None = None

    @property
    def reported_path(self) -> Path:
        """The paper's reported numbers and tables (YAML, with sources)."""
        return self.package / "paper.yaml"

    @property
    def claims_path(self) -> Path:
        """The paper's checkable claims and their rules (YAML)."""
        return self.package / "claims.yaml"


PAPERS: Registry = Registry("paper")


def deferred(module: str, attr: str) -> Callable[..., Any]:
    """`module.attr(...)`, imported at the first call: a paper's report code (matplotlib) stays
    out of the training workers that import the paper for its methods."""
    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    return call


def register_paper(paper: Paper) -> Paper:
    """Called once by each paper package's __init__."""
    PAPERS.register(paper.name)(paper)
    return paper
