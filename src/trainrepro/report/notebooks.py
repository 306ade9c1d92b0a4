"""Execute the report notebooks with papermill and render self-contained HTML.

The HTML is for reviewers: it shows text, tables and figures, no code (the executed notebooks
in reports/executed/ keep the code). Executed notebooks and HTML are made byte-stable: papermill timestamps and durations are
removed, cell ids are renumbered, and the HTML carries no script or stylesheet from a CDN
(it opens offline); figures are embedded as base64 PNG by the notebooks themselves.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat

from ..io import atomic_write_text

_VOLATILE_CELL_META = ("papermill", "execution", "ExecuteTime")


def normalise(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Strip run-dependent metadata so identical inputs give identical bytes."""
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
        for k in _VOLATILE_CELL_META:
            cell.metadata.pop(k, None)
        if cell.cell_type == "code":
            cell.execution_count = None
            for out in cell.get("outputs", []):
                if "execution_count" in out:
                    out["execution_count"] = None
                out.get("metadata", {}).pop("papermill", None)
    return nb


_REMOTE = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*\"[^>]*>\s*</script>\s*"
                     r"|<link[^>]*\bhref=\"https?://[^\"]*\"[^>]*>\s*", re.I)


def offline_html(nb: nbformat.NotebookNode) -> str:
    """nbconvert HTML (lab template) for reviewers: code cells' inputs and prompts hidden (the
    executed notebook keeps them), no remote resource."""
    from nbconvert import (
        HTMLExporter,  # heavy optional import: only the report stage renders
    )

    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    for url in ("require_js_url", "mathjax_url", "mermaid_js_url", "mermaid_layout_elk_js_url",
                "jquery_url", "widget_renderer_url"):
        if exporter.has_trait(url):
            setattr(exporter, url, "")
    body, _ = exporter.from_notebook_node(nb)
    body = _REMOTE.sub("", body)
    # The lab template imports mermaid.js from a CDN in an inline module script: drop it.
    body = re.sub(r"<script type=\"module\">(?:(?!</script>).)*?mermaid(?:(?!</script>).)*?</script>\s*",
                  "", body, flags=re.S)
    # MathJax config scripts point at a CDN through JS; drop the whole MathJax block.
    body = re.sub(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", "", body, flags=re.S)
    return body


def run_notebook(template: Path, executed: Path, html: Path, parameters: dict[str, Any],
                 cwd: str = ".") -> None:
    import papermill as pm  # heavy optional import: only the report stage executes notebooks

    tmp = executed.with_name(f".{executed.name}.tmp.ipynb")
    executed.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(str(template), str(tmp), parameters=parameters, kernel_name="python3",
                            cwd=cwd, progress_bar=False, report_mode=False)
        nb = normalise(nbformat.read(str(tmp), as_version=4))
    finally:
        if tmp.exists():
            tmp.unlink()
    atomic_write_text(executed, nbformat.writes(nb) + "\n")
    atomic_write_text(html, offline_html(nb))


def run_notebook_job(job: tuple[Path, Path, Path, dict[str, Any]]) -> None:
    """`run_notebook` on one (template, executed, html, parameters) tuple (a pool job)."""
    run_notebook(*job)
