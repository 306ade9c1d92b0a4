"""benchmarks/RESULTS.md sections: replace (or add) one `## <head>` section, leaving the others."""
from __future__ import annotations

from pathlib import Path


def replace_section(head: str, body: str, path: Path = Path("benchmarks/RESULTS.md")) -> None:
    """Write `head` + `body` as the section `head` of `path` (replacing an older one)."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if head in old:
        pre, rest = old.split(head, 1)
        nxt = rest.find("\n## ")
        old = pre.rstrip("\n") + "\n\n" + (rest[nxt + 1:] if nxt >= 0 else "")
    path.write_text(old.rstrip("\n") + "\n\n" + head + "\n\n" + body.rstrip("\n") + "\n")
