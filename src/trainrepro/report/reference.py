"""Reference runs: small committed records of runs made at a larger scale than this machine runs
(a CIFAR-10 JPEG study on a GPU), read by the aggregate stage as their own scale.

Layout (it mirrors a results tree, so every reader that takes a `results_root` reads it):

    reference_runs/<profile>/provenance.json            who, where, when, from which code/params
    reference_runs/<profile>/<study>/index.json         the study's run index (run_dir relative
                                                        to reference_runs/)
    reference_runs/<profile>/<study>/<cell>/seed<k>/metrics.json, history.csv
    reference_runs/<profile>/<dir>/<analysis>.json      the small analysis JSONs of the studies
                                                        (compute.json, entropy.json, summary.json..)

Claims with a `scalar` rule read `results/<dir>/<file>.json`; at a reference scale the same
file is read from `reference_runs/<profile>/<dir>/<file>.json` (`rebase_scalar_files`).
Only those small records are ever copied: never checkpoints, models, masks or data.

    python -m trainrepro.report.reference export --profile cifar10_jpeg --results results --out reference_runs
    python -m trainrepro.report.reference check --root reference_runs

(This module lives under report/ so that it is not part of any run's code hash.)
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import io
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ..cli import guarded
from ..config import Params, load_params
from ..io import atomic_write_bytes, read_json, sha256_file, stable_hash, write_json
from ..registry import PAPERS, ConfigError, DataIntegrityError

PROVENANCE = "provenance.json"
FORMAT = 1
MAX_FILE_BYTES = 4 << 20     # a run record or an analysis JSON above this is not a "small record"
RUN_STATUSES = ("ok", "diverged", "failed")
DEFAULT_ROOT = "reference_runs"


@dataclass
class Scale:
    """One column of verdicts: the pipeline's own results or one profile's reference runs."""

    scale: str
    label: str
    profile: str
    results_root: Path
    kind: str = "pipeline"            # pipeline | reference
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """How a column names the scale: its profile label, prefixed by the scale's name."""
        label = self.label or self.scale
        return label if label.lower().startswith(self.scale.lower()) else f"{self.scale}: {label}"

    def studies(self) -> list[str]:
        return sorted(p.parent.name for p in self.results_root.glob("*/index.json"))


def pipeline_scale(params: Params, results_root: str | Path) -> Scale:
    return Scale(params.scale, str(params.profile.get("label", "")), params.profile_name,
                 Path(results_root))


# ----------------------------------------------------------------------------- export
PACKAGE_DIR = Path(__file__).resolve().parent


def git_state(cwd: str | Path = PACKAGE_DIR) -> dict[str, Any]:
    """The commit of the checkout this code runs from and whether it has uncommitted changes
    ('unknown' outside git)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30,
                                 check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit or "unknown", "dirty": bool(status) if status is not None else None}


def claim_files() -> dict[str, set[str]]:
    """results/<dir>/<file> read by the registered papers' `scalar` claim rules: dir -> names."""
    out: dict[str, set[str]] = {}
    for c in (c for p in PAPERS.values() for c in yaml.safe_load(p.claims_path.read_text())["claims"]):
        for r in c.get("rules") or [c["rule"]]:
            parts = Path(r.get("file", "")).parts
            if r["type"] == "scalar" and len(parts) == 3 and parts[0] == "results":
                out.setdefault(parts[1], set()).add(parts[2])
    return out


def _small_file(path: Path, what: str) -> bytes:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DataIntegrityError(f"{path}: {size} bytes; a reference record ({what}) must be at most "
                                 f"{MAX_FILE_BYTES} bytes (checkpoints, models and data are never exported)")
    return path.read_bytes()


def _checked_json(path: Path, what: str) -> tuple[bytes, Any]:
    data = _small_file(path, what)
    try:
        return data, json.loads(data)
    except ValueError as e:
        raise DataIntegrityError(f"{path}: not valid JSON ({e}); expected {what}") from e


def _checked_history(path: Path) -> bytes:
    data = _small_file(path, "a run's history.csv")
    try:
        h = pd.read_csv(io.BytesIO(data))
    except (ValueError, pd.errors.ParserError) as e:
        raise DataIntegrityError(f"{path}: not a readable CSV ({e}); expected a run's history") from e
    if "epoch" not in h.columns:
        raise DataIntegrityError(f"{path}: no `epoch` column; expected a history.csv written by the engine")
    return data


def collect_study(results: Path, study: str, profile: str) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The files to export of one study (relative path -> bytes) and its summary; refuses a study
    run under another profile, a run without its record, or a record of another config."""
    index_path = results / study / "index.json"
    _, index = _checked_json(index_path, "a study's run index")
    if index.get("profile") != profile:
        raise ConfigError(f"{index_path}: written by profile {index.get('profile')!r}, not {profile!r}; "
                          f"export the results of profile {profile!r}")
    files: dict[str, bytes] = {}
    runs, statuses, devices = [], {}, set()
    for r in index.get("runs", []):
        rel = Path(r["cell"]) / f"seed{r['seed']}"
        src = results / study / rel
        rec_path = src / "metrics.json"
        if not rec_path.exists():
            raise DataIntegrityError(f"{rec_path}: missing; the study {study!r} is incomplete "
                                     f"(finish it with `dvc repro train_{study}` before exporting)")
        data, rec = _checked_json(rec_path, "a run record written by the engine")
        status = rec.get("status")
        if status not in RUN_STATUSES:
            raise DataIntegrityError(f"{rec_path}: status {status!r}; expected one of {', '.join(RUN_STATUSES)}")
        got = (rec.get("config") or {}).get("config_hash")
        if got != r["config_hash"]:
            raise DataIntegrityError(f"{rec_path}: config hash {got!r} is not the index's {r['config_hash']!r} "
                                     f"(a stale record of another config); re-run the study first")
        files[f"{study}/{rel.as_posix()}/metrics.json"] = data
        if (src / "history.csv").exists():
            files[f"{study}/{rel.as_posix()}/history.csv"] = _checked_history(src / "history.csv")
        elif status != "failed":
            raise DataIntegrityError(f"{src / 'history.csv'}: missing for a run with status {status!r}")
        statuses[status] = statuses.get(status, 0) + 1
        devices.add(str(rec.get("device")))
        runs.append({**r, "run_dir": f"{profile}/{study}/{rel.as_posix()}"})
    files[f"{study}/index.json"] = (json.dumps({**index, "runs": runs}, indent=2, sort_keys=True)
                                    + "\n").encode()
    return files, {"runs": len(runs), "status": statuses, "devices": sorted(devices)}


def collect_analysis(results: Path, dirs: dict[str, set[str] | None], profile: str,
                     studies: list[str]) -> tuple[dict[str, bytes], list[str]]:
    """Small analysis JSONs (dir -> named files; None: every top-level *.json but index.json)
    and the files left out. Taken from an exported study's folder (a file there that records
    another `profile` is a stale analysis: refused) and from a stage folder without a run index
    (mentors/, lgl_toy/: left out when it records another profile); never from the folder of a
    study that is not exported."""
    files: dict[str, bytes] = {}
    skipped: list[str] = []
    for d, names in sorted(dirs.items()):
        own = d in studies
        paths = (sorted((results / d).glob("*.json")) if names is None
                 else [results / d / n for n in sorted(names)])
        for p in paths:
            if p.name == "index.json" or not p.is_file():
                continue
            data, obj = _checked_json(p, "an analysis JSON")
            recorded = obj.get("profile") if isinstance(obj, dict) else None
            if recorded is not None and recorded != profile and own:
                raise DataIntegrityError(f"{p}: written by profile {recorded!r}, not {profile!r} (a stale "
                                         f"analysis; re-run the {d} study's stages with profile {profile!r})")
            if (recorded is not None and recorded != profile) or (
                    not own and (results / d / "index.json").exists()):
                skipped.append(f"{d}/{p.name}")
                continue
            files[f"{d}/{p.name}"] = data
    return files, skipped


def export(params: Params, profile: str, results: str | Path = "results",
           out: str | Path = DEFAULT_ROOT, replace: bool = False,
           studies: list[str] | None = None) -> Path:
    """Write reference_runs/<profile>/ from a results tree of that profile; returns the folder.

    Every check runs before anything is written; an existing folder is replaced only with
    `replace` (the new one is complete before the old one goes)."""
    if profile not in params.raw["profiles"]:
        raise ConfigError(f"--profile: unknown profile {profile!r}; allowed: "
                          f"{', '.join(sorted(params.raw['profiles']))}")
    prof_params = Params({**params.raw, "profile": profile})
    results, out = Path(results), Path(out)
    target = out / profile
    if target.exists() and not replace:
        raise ConfigError(f"{target}: already exists; pass --replace to overwrite it")
    wanted = studies if studies is not None else prof_params.studies()
    unknown = [s for s in wanted if s not in prof_params.studies()]
    if unknown:
        raise ConfigError(f"--studies: {', '.join(unknown)} not in profile {profile!r}; it has: "
                          f"{', '.join(prof_params.studies())}")
    present = [s for s in wanted if (results / s / "index.json").exists()]
    absent = [s for s in wanted if s not in present]
    if studies is not None and absent:
        raise ConfigError(f"--studies: {', '.join(absent)} has no index.json under {results} "
                          f"(not run with profile {profile!r})")
    if not present:
        raise ConfigError(f"{results}: no study of profile {profile!r} has an index.json "
                          f"(looked for {', '.join(wanted)}); run the profile first")
    files: dict[str, bytes] = {}
    summary: dict[str, Any] = {}
    for s in present:
        f, summary[s] = collect_study(results, s, profile)
        files.update(f)
    dirs: dict[str, set[str] | None] = {s: None for s in present}
    for d, names in claim_files().items():
        if d not in dirs:
            dirs[d] = names
    analysis, skipped = collect_analysis(results, dirs, profile, present)
    files.update({k: v for k, v in analysis.items() if k not in files})
    mtimes = [(results / k).stat().st_mtime for k in files if k.endswith("metrics.json")]
    prov = {
        "format": FORMAT, "profile": profile, "scale": prof_params.scale,
        "label": str(prof_params.profile.get("label", "")),
        "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "runs_finished": {"first": _iso(min(mtimes)), "last": _iso(max(mtimes))} if mtimes else {},
        "git": git_state(), "params_hash": stable_hash(params.raw),
        "profile_hash": stable_hash(prof_params.profile),
        "devices": sorted({d for s in summary.values() for d in s["devices"]}),
        "code_hashes": sorted({json.loads(v)["config"].get("code_hash", "")
                               for k, v in files.items() if k.endswith("metrics.json")}),
        "studies": summary, "source": str(results), "left_out": skipped,
        "files": {k: hashlib.sha256(v).hexdigest() for k, v in sorted(files.items())},
    }
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=f".{profile}.", suffix=".tmp"))
    try:
        for rel, data in files.items():
            atomic_write_bytes(staging / rel, data)
        write_json(staging / PROVENANCE, prov)
        load_reference(staging, expect_profile=profile)     # what was written reads back
        old = out / f".{profile}.old.tmp"
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        try:
            staging.rename(target)
        except OSError:
            if old.exists():     # the previous reference stays in place
                old.rename(target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------- reading
def load_reference(folder: str | Path, expect_profile: str | None = None) -> Scale:
    """A reference folder as a Scale, after checking its provenance and every listed file's hash."""
    folder = Path(folder)
    path = folder / PROVENANCE
    if not path.exists():
        raise DataIntegrityError(f"{folder}: no {PROVENANCE}; a reference-run folder is written by "
                                 "`python -m trainrepro.report.reference export` (see reference_runs/README.md)")
    _, prov = _checked_json(path, "a reference-run provenance record")
    missing = [k for k in ("format", "profile", "scale", "label", "git", "devices", "exported_at",
                           "params_hash", "profile_hash", "files") if k not in prov]
    if missing or prov.get("format") != FORMAT:
        raise DataIntegrityError(f"{path}: not a format-{FORMAT} provenance record "
                                 f"(missing: {', '.join(missing) or 'none'}; format {prov.get('format')!r})")
    profile = expect_profile or folder.name
    if prov["profile"] != profile:
        raise DataIntegrityError(f"{path}: records profile {prov['profile']!r} but lies in folder {profile!r}")
    for rel, sha in prov["files"].items():
        f = folder / rel
        if not f.is_file():
            raise DataIntegrityError(f"{f}: listed in {path} but missing")
        if sha256_file(f) != sha:
            raise DataIntegrityError(f"{f}: sha256 {sha256_file(f)} differs from {sha} in {path} "
                                     "(edited after export? re-export with --replace)")
    return Scale(prov["scale"], prov["label"], prov["profile"], folder, "reference", prov)


def load_references(root: str | Path = DEFAULT_ROOT) -> list[Scale]:
    """Every reference folder under `root` (none when it is absent or holds only its README)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [load_reference(d) for d in sorted(root.iterdir())
            if d.is_dir() and not d.name.startswith(".")]


def scales_for(params: Params, results_root: str | Path, reference_root: str | Path) -> list[Scale]:
    """The pipeline's own scale first, then each reference scale (one of the pipeline's own scale
    is left out: this checkout's results take precedence)."""
    own = pipeline_scale(params, results_root)
    scales = [own] + [s for s in load_references(reference_root) if s.scale != own.scale]
    titles = [s.title for s in scales]
    twice = sorted({t for t in titles if titles.count(t) > 1})
    if twice:
        raise ConfigError(f"{reference_root}: two scales are both named {twice[0]!r} (profiles "
                          f"{', '.join(s.profile for s in scales if s.title == twice[0])}); "
                          "give their profiles distinct labels")
    return scales


def rebase_scalar_files(claims: list[dict[str, Any]], results_root: str | Path) -> list[dict[str, Any]]:
    """The claims with every `scalar` rule's `results/...` file read from `results_root` instead."""
    out = copy.deepcopy(claims)
    for c in out:
        for r in c.get("rules") or [c["rule"]]:
            parts = Path(r.get("file", "")).parts
            if r["type"] == "scalar" and parts and parts[0] == "results":
                r["file"] = Path(results_root, *parts[1:]).as_posix()
    return out


def column(kind: str, scale: Scale) -> str:
    """A per-scale column's name, e.g. `verdict, quick: scikit-learn digits ...`."""
    return f"{kind}, {scale.title}"


# ----------------------------------------------------------------------------- tables
ENTRY_KEYS = ["paper dataset", "paper model", "noise", "method", "reference", "source"]


def merge_paper_comparisons(by_scale: list[tuple[Scale, pd.DataFrame]]) -> pd.DataFrame:
    """Paper-vs-ours tables of every scale side by side: the first scale's rows with its columns
    named by the scale, then per further scale one `ours` and one `verdict` column (several of
    its cells matching one paper entry are joined with `; `)."""
    (first, base), rest = by_scale[0], by_scale[1:]
    out = base.rename(columns={"ours (mean ± std)": column("ours", first), "verdict": column("verdict", first),
                               **{c: f"{c}, {first.scale}" for c in ("our dataset", "our model", "95% CI", "n",
                                                                    "diff")}})
    for scale, t in rest:
        if t.empty:
            extra = pd.DataFrame(columns=ENTRY_KEYS + [column("ours", scale), column("verdict", scale)])
        else:
            t = t.assign(shown=[f"{o} (n={n}; {d} / {m})" if n else "—" for o, n, d, m in
                                zip(t["ours (mean ± std)"], t["n"], t["our dataset"], t["our model"])])
            extra = (t.groupby(ENTRY_KEYS, sort=False, dropna=False)
                     .agg(**{column("ours", scale): ("shown", "; ".join),
                             column("verdict", scale): ("verdict", lambda v: "; ".join(dict.fromkeys(v)))})
                     .reset_index())
        out = out.merge(extra, on=ENTRY_KEYS, how="left")
        out[column("verdict", scale)] = out[column("verdict", scale)].fillna("not run")
        out[column("ours", scale)] = out[column("ours", scale)].fillna("—")
    return out


def merge_verdicts(by_scale: list[tuple[Scale, pd.DataFrame]]) -> pd.DataFrame:
    """Claims with one verdict and one evidence column per scale (rows: the first scale's)."""
    out = by_scale[0][1][["id", "paper", "statement", "source"]].copy()
    for scale, v in by_scale:
        hit = v.set_index("id")
        out[column("verdict", scale)] = [hit["verdict"].get(i, "not run") for i in out["id"]]
        out[column("evidence", scale)] = [hit["evidence"].get(i, "") for i in out["id"]]
    return out


def scales_record(scales: list[Scale]) -> list[dict[str, Any]]:
    """What reports/tables/scales.json says of each scale (the notebooks read it)."""
    return [{"scale": s.scale, "label": s.label, "title": s.title, "profile": s.profile, "kind": s.kind,
             "claims_table": "claims.csv" if i == 0 else f"claims_{s.profile}.csv",
             "tables_dir": "." if i == 0 else f"reference/{s.profile}",
             "provenance": {k: v for k, v in s.provenance.items() if k != "files"}}
            for i, s in enumerate(scales)]


def read_scales(tables_root: str | Path) -> list[dict[str, Any]]:
    path = Path(tables_root) / "scales.json"
    return read_json(path) if path.exists() else []


def verdicts_by_scale(tables_root: str | Path) -> dict[str, pd.DataFrame]:
    """Scale title -> its claims table (id, paper, statement, verdict, evidence), as the
    aggregate stage wrote them: the dashboard's input, one column per scale."""
    t = Path(tables_root)
    scales = read_scales(t) or [{"title": "this run", "claims_table": "claims.csv"}]
    return {s["title"]: pd.read_csv(t / s["claims_table"]) for s in scales
            if (t / s["claims_table"]).exists()}


def claims_by_scale(tables_root: str | Path, paper: str | None = None) -> pd.DataFrame:
    """The aggregate's claims table with one verdict column per scale (the paper's claims only
    when `paper` is given); evidence columns left out (they are in claims.md)."""
    path = Path(tables_root) / "claims_by_scale.csv"
    if not path.exists():
        return pd.DataFrame()
    df = pd.read_csv(path)
    df = df[df["paper"] == paper] if paper else df
    return df[[c for c in df.columns if not c.startswith("evidence, ")]]


def provenance_table(tables_root: str | Path) -> pd.DataFrame:
    """One row per reference scale: profile, label, devices, dates, commit, hashes, runs."""
    rows = []
    for s in read_scales(tables_root):
        p = s["provenance"]
        if s["kind"] != "reference":
            continue
        rows.append({"scale": s["scale"], "profile": s["profile"], "label": s["label"],
                     "devices": ", ".join(p.get("devices", [])),
                     "runs finished": " — ".join((p.get("runs_finished") or {}).values()),
                     "exported": p.get("exported_at"), "commit": (p.get("git") or {}).get("commit"),
                     "dirty": (p.get("git") or {}).get("dirty"), "profile hash": p.get("profile_hash"),
                     "runs": sum(v["runs"] for v in (p.get("studies") or {}).values()),
                     "studies": ", ".join(p.get("studies") or {})})
    return pd.DataFrame(rows)


def reference_tables_markdown(tables_root: str | Path, paper: str) -> str:
    """Markdown of every reference scale's tables of `paper` (its claim verdicts are in the
    per-scale columns; here its paper-layout tables), or a line saying there are none."""
    t = Path(tables_root)
    refs = [s for s in read_scales(t) if s["kind"] == "reference"]
    if not refs:
        return ("_No reference runs (reference_runs/ holds none): only the pipeline's own scale is "
                "shown._")
    parts = []
    for s in refs:
        files = sorted((t / s["tables_dir"]).glob(f"{paper}_*.md"))
        p = s["provenance"]
        parts.append(f"### Reference runs: {s['title']}\n\nProfile `{s['profile']}`, devices "
                     f"{', '.join(p.get('devices', []))}, exported {p.get('exported_at')} from commit "
                     f"`{(p.get('git') or {}).get('commit')}`.\n")
        parts += [f.read_text() for f in files] or [f"_No {paper} runs among these reference runs._"]
    return "\n\n".join(parts)


# ----------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> None:
    # The core never imports a paper package at module level; the command, like a stage script,
    # registers every paper (params sections, claims) before it reads params.yaml.
    from ..papers import load_all

    ap = argparse.ArgumentParser(prog="python -m trainrepro.report.reference", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    ex = sub.add_parser("export", help="copy a profile's small run records into reference_runs/")
    ex.add_argument("--profile", required=True)
    ex.add_argument("--results", default="results")
    ex.add_argument("--out", default=DEFAULT_ROOT)
    ex.add_argument("--params", default="params.yaml")
    ex.add_argument("--studies", nargs="*", default=None, help="default: every study of the profile "
                    "that has results")
    ex.add_argument("--replace", action="store_true", help="overwrite an existing reference folder")
    ck = sub.add_parser("check", help="validate every reference folder (provenance, file hashes)")
    ck.add_argument("--root", default=DEFAULT_ROOT)
    args = ap.parse_args(argv)
    load_all()
    if args.cmd == "export":
        target = export(load_params(args.params), args.profile, args.results, args.out, args.replace,
                        args.studies)
        prov = read_json(target / PROVENANCE)
        print(f"reference: wrote {target} ({len(prov['files'])} files; studies "
              f"{', '.join(prov['studies'])}; devices {', '.join(prov['devices'])}; "
              f"commit {prov['git']['commit']})")
    else:
        scales = load_references(args.root)
        print(f"reference: {len(scales)} reference scale(s) valid"
              + "".join(f"\n  {s.profile}: {s.title} ({', '.join(s.studies())})" for s in scales))


if __name__ == "__main__":
    guarded(main)
