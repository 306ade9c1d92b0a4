"""What every stage script shares: refuse bad input with one line, before any work."""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from .config import Params, load_params
from .data.checksums import ChecksumError
from .registry import ConfigError, DataIntegrityError


def guarded(main: Callable[[], None]) -> None:
    """Run a stage; a bad param or a corrupt input exits 2 with one line naming it."""
    try:
        main()
    except (ConfigError, DataIntegrityError, ChecksumError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def analysis_args(doc: str | None) -> tuple[argparse.Namespace, Params]:
    """A study's analysis step: its arguments (--params, --results, --prepared: the prepared
    datasets, for an analysis that rebuilds runs) and the loaded params."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--results", default="results")
    ap.add_argument("--prepared", default="data/prepared")
    args = ap.parse_args()
    return args, load_params(args.params)
