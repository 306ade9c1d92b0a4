"""Where the mentor stage writes (results/mentors) and how a train-stage run reads its entry."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ...io import read_json
from ...registry import ConfigError

MENTOR_ROOT = "mentors"  # under the results root: results/mentors (written by the mentor stage)


def stage_entry(results_root: str | Path, filename: str, cell: str) -> dict[str, Any]:
    """A cell's entry in one of the mentor stage's tables (assignments.json, keyed by run_dir
    `<cell>/seed<s>`: the run's mentor file and sha256; forgetting_selection.json, keyed by
    cell: its validated dropout rate)."""
    path = Path(results_root) / MENTOR_ROOT / filename
    if not path.exists():
        raise ConfigError(f"{path}: missing; run the mentor stage first (python stages/mentor.py)")
    table = read_json(path)
    if cell not in table:
        raise ConfigError(f"{path}: no entry for cell {cell!r}; re-run the mentor stage")
    return table[cell]
