"""What every stage script shares: refuse bad input with one line, before any work."""
from __future__ import annotations

import sys
from typing import Callable

from .data.checksums import ChecksumError
from .registry import ConfigError, DataIntegrityError


def guarded(main: Callable[[], None]) -> None:
    """Run a stage; a bad param or a corrupt input exits 2 with one line naming it."""
    try:
        main()
    except (ConfigError, DataIntegrityError, ChecksumError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
