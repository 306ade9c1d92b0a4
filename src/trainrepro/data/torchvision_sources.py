"""The torchvision downloads (mnist, cifar10, cifar100, svhn), checksum-verified, optionally from a mirror.

Each source keeps its files in `<root>/<name>/` in torchvision's own layout. We fetch and md5-verify
the downloaded files ourselves (official checksums = torchvision's constants, or cfg `md5`), so a
corrupt or truncated file is a `ChecksumError` naming it; torchvision then only extracts and parses,
through a per-call subclass whose URLs and checksums are ours (torchvision's globals stay untouched).

cfg keys (besides `source`):
  mirror  URL (http://host/path/, file:///path/) or local directory holding the dataset's files
          under their official names; a list tries each in turn. Replaces the official host.
  md5     mapping file name -> md5, replacing the official checksums (for a mirror holding other
          files). Files extracted from an archive whose md5 is overridden are checked against the
          hashes of the archive's own members unless named here too.
"""
from __future__ import annotations

import gzip
import http.client
import os
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

from ..io import file_hash, md5_file, stream_hash
from ..registry import ConfigError, DataIntegrityError
from .base import SOURCES, RawDataset
from .checksums import ChecksumError, normalize_hash

USER_AGENT = "pytorch/vision"


@dataclass
class FileSpec:
    """A file the dataset needs, as a path relative to `<root>/<name>/`, with its official md5."""

    rel: str
    md5: str | None  # None: no official checksum (then derived from the verified download)
    urls: list[str]  # official download locations; empty for files extracted from a download

    @property
    def name(self) -> str:
        return os.path.basename(self.rel)


# --------------------------------------------------------------------------------------------
# mirrors, checksums, downloads


def mirror_bases(cfg: dict[str, Any]) -> list[str] | None:
    """cfg `mirror` as a list of base URLs ending in '/' (local directories become file:// URLs)."""
    value = cfg.get("mirror")
    if value in (None, "", []):
        return None
    items = [value] if isinstance(value, (str, os.PathLike)) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(m, (str, os.PathLike)) for m in items):
        raise ConfigError(f"mirror: expected a URL or directory (or a list of them), got {value!r}")
    bases = []
    for m in map(os.fspath, items):
        if "://" not in m:
            m = Path(m).expanduser().resolve().as_uri()
        bases.append(m if m.endswith("/") else m + "/")
    return bases


def md5_overrides(cfg: dict[str, Any], allowed: list[str]) -> dict[str, str]:
    """cfg `md5` (file name -> md5), refusing unknown file names and malformed digests."""
    value = cfg.get("md5") or {}
    if not isinstance(value, dict):
        raise ConfigError(f"md5: expected a mapping file name -> md5, got {value!r}")
    out = {}
    for name, digest in value.items():
        if name not in allowed:
            raise ConfigError(f"md5: unknown file {name!r}; this dataset's files: {', '.join(allowed)}")
        out[name] = normalize_hash(digest, "md5", key=f"md5.{name}")
    return out


def fetch(url: str, dest: Path) -> Path:
    """Download url (http(s)://, file://) to `dest.part` with a progress bar; return that path."""
    tmp = dest.with_name(dest.name + ".part")
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=60) as r, open(tmp, "wb") as f:
            size = r.headers.get("Content-Length")
            with tqdm(total=int(size) if size else None, unit="B", unit_scale=True,
                      desc=dest.name, leave=False) as bar:
                while chunk := r.read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def download_verified(urls: list[str], dest: Path, md5: str) -> str:
    """Fetch dest from the first url that yields the expected md5; return the url used."""
    failures, mismatch = [], None
    for url in urls:
        try:
            tmp = fetch(url, dest)
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
            failures.append(f"  {url}: {e}")
            continue
        actual = md5_file(tmp)
        if actual == md5:
            os.replace(tmp, dest)
            return url
        tmp.unlink()
        mismatch = ChecksumError(dest, md5, actual, "md5", f"downloaded from {url} (discarded)")
        failures.append(f"  {url}: {mismatch}")
    if mismatch is not None and len(urls) == 1:
        raise mismatch
    if mismatch is not None:
        raise ChecksumError(dest, md5, mismatch.actual, "md5",
                            "no location gave the expected file:\n" + "\n".join(failures))
    raise DataIntegrityError(
        f"could not download {dest.name} (into {dest.parent}); tried:\n" + "\n".join(failures)
        + f"\nWithout network access, point the dataset's `mirror:` at a local copy: a directory "
        f"holding {dest.name}, a file:// or http(s):// URL, or a list of them, e.g. "
        f"`dvc exp run -S datasets.<name>.mirror=/srv/mirrors/<name>`")


def member_md5s(archive: Path) -> dict[str, str]:
    """md5 of what extracting `archive` produces, keyed by path relative to the archive's folder."""
    if archive.name.endswith((".tar.gz", ".tgz", ".tar")):
        out = {}
        with tarfile.open(archive, "r:*") as tar:
            for m in tar:
                if m.isfile():
                    out[os.path.normpath(m.name)] = stream_hash(tar.extractfile(m), "md5")
        return out
    if archive.suffix == ".gz":
        with gzip.open(archive, "rb") as f:
            return {archive.stem: stream_hash(f, "md5")}
    return {}


def prepare_files(name: str, downloads: list[FileSpec], extracted: list[FileSpec],
                  cfg: dict[str, Any], root: str) -> tuple[Path, dict[str, str], dict[str, Any]]:
    """Make the verified downloads present in `<root>/<name>/` and fix the extracted files' md5s.

    Returns the folder, the expected md5 of every file (relative path -> md5) and meta. Extracted
    files that exist but do not match are removed so that torchvision extracts them afresh.
    """
    folder = Path(root) / name
    overrides = md5_overrides(cfg, [f.name for f in downloads + extracted])
    mirrors = mirror_bases(cfg)
    official = not any(f.name in overrides for f in downloads)
    expected = {f.rel: overrides.get(f.name, f.md5) for f in downloads}
    for f in extracted:  # official member checksums only hold for the official archive
        expected[f.rel] = overrides.get(f.name, f.md5 if official else None)

    def ok(rel: str) -> bool:
        p = folder / rel
        return expected[rel] is not None and p.is_file() and md5_file(p) == expected[rel]

    meta: dict[str, Any] = {
        "origin": f"torchvision.datasets ({name})", "folder": str(folder),
        "mirror": mirrors, "md5_from": "official (torchvision)" if not overrides else "cfg md5",
        "checksum_verified": True, "downloads": {},
    }
    if extracted and all(ok(f.rel) for f in extracted):
        meta["downloads"] = "not needed: extracted files present and verified"
    else:
        for f in downloads:
            dest = folder / f.rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_file():
                actual = md5_file(dest)
                if actual != expected[f.rel]:
                    raise ChecksumError(dest, expected[f.rel], actual, "md5",
                                        "delete it to download it again")
                meta["downloads"][f.name] = "already present"
            else:
                urls = [m + f.name for m in mirrors] if mirrors else f.urls
                meta["downloads"][f.name] = download_verified(urls, dest, expected[f.rel])
        unknown = [f.rel for f in extracted if expected[f.rel] is None]
        if unknown:
            derived: dict[str, str] = {}
            for f in downloads:
                src = folder / f.rel
                derived.update({os.path.normpath(os.path.join(os.path.dirname(f.rel), k)): v
                                for k, v in member_md5s(src).items()})
            for rel in unknown:
                if rel not in derived:
                    raise DataIntegrityError(f"{folder / downloads[0].rel}: lacks {rel} (wrong file?)")
                expected[rel] = derived[rel]
        for f in extracted:
            p = folder / f.rel
            if p.is_file() and not ok(f.rel):
                p.unlink()
    meta["md5"] = {os.path.basename(rel): md5 for rel, md5 in expected.items()}
    return folder, expected, meta


def verify_all(folder: Path, expected: dict[str, str | None]) -> None:
    """After torchvision ran: every file it read must still match (the error is ours, not its own)."""
    for rel, md5 in expected.items():
        p = folder / rel
        if md5 is not None and p.is_file():
            actual = file_hash(p, "md5")
            if actual != md5:
                raise ChecksumError(p, md5, actual, "md5")


def run_torchvision(make: Callable[[], Any], folder: Path, expected: dict[str, str | None]) -> Any:
    """Call torchvision; turn its generic integrity errors into ours when a file is the cause."""
    try:
        out = make()
    except RuntimeError:
        verify_all(folder, expected)  # raises ChecksumError naming the file if one is bad
        raise
    verify_all(folder, expected)
    return out


def _urls(url_or_mirror_bases: list[str], name: str) -> list[str]:
    return [u + name for u in url_or_mirror_bases]


# --------------------------------------------------------------------------------------------
# the sources


@SOURCES.register("mnist")
def mnist_source(cfg: dict[str, Any], root: str, scratch: Path | None = None) -> RawDataset:
    """MNIST (60,000 train + 10,000 test, 1x28x28)."""
    from torchvision.datasets import MNIST  # heavy optional import: downloads only

    raw = "MNIST/raw"
    downloads = [FileSpec(f"{raw}/{f}", md5, _urls(MNIST.mirrors, f)) for f, md5 in MNIST.resources]
    extracted = [FileSpec(f"{raw}/{f[:-3]}", None, []) for f, _ in MNIST.resources]
    folder, expected, meta = prepare_files("mnist", downloads, extracted, cfg, root)
    bases = mirror_bases(cfg) or list(MNIST.mirrors)
    cls = type("MirroredMNIST", (MNIST,), {
        "mirrors": bases,
        "resources": [(f.name, expected[f.rel]) for f in downloads],
        "raw_folder": property(lambda self: os.path.join(self.root, "MNIST", "raw")),
        "processed_folder": property(lambda self: os.path.join(self.root, "MNIST", "processed")),
    })
    train, test = run_torchvision(
        lambda: (cls(str(folder), train=True, download=True), cls(str(folder), train=False, download=True)),
        folder, expected)
    return RawDataset(train.data.numpy()[:, None], train.targets.numpy().astype(np.int64),
                      test.data.numpy()[:, None], test.targets.numpy().astype(np.int64),
                      [str(d) for d in range(10)], meta)


def _cifar(name: str, base: Any, cfg: dict[str, Any], root: str) -> RawDataset:
    members = base.train_list + base.test_list + [[base.meta["filename"], base.meta["md5"]]]
    downloads = [FileSpec(base.filename, base.tgz_md5, [base.url])]
    extracted = [FileSpec(f"{base.base_folder}/{f}", md5, []) for f, md5 in members]
    folder, expected, meta = prepare_files(name, downloads, extracted, cfg, root)
    bases = mirror_bases(cfg)
    md5 = {f.name: expected[f.rel] for f in extracted}
    cls = type(f"Mirrored{base.__name__}", (base,), {
        "url": bases[0] + base.filename if bases else base.url,
        "tgz_md5": expected[base.filename],
        "train_list": [[f, md5[f]] for f, _ in base.train_list],
        "test_list": [[f, md5[f]] for f, _ in base.test_list],
        "meta": {**base.meta, "md5": md5[base.meta["filename"]]},
    })
    train, test = run_torchvision(
        lambda: (cls(str(folder), train=True, download=True), cls(str(folder), train=False, download=True)),
        folder, expected)
    as_nchw = lambda a: np.ascontiguousarray(np.asarray(a, dtype=np.uint8).transpose(0, 3, 1, 2))  # noqa: E731
    return RawDataset(as_nchw(train.data), np.asarray(train.targets, dtype=np.int64),
                      as_nchw(test.data), np.asarray(test.targets, dtype=np.int64),
                      list(train.classes), meta)


@SOURCES.register("cifar10")
def cifar10_source(cfg: dict[str, Any], root: str, scratch: Path | None = None) -> RawDataset:
    """CIFAR-10 (50,000 train + 10,000 test, 3x32x32), from the python pickle archive."""
    from torchvision.datasets import CIFAR10  # heavy optional import: downloads only

    return _cifar("cifar10", CIFAR10, cfg, root)


@SOURCES.register("cifar100")
def cifar100_source(cfg: dict[str, Any], root: str, scratch: Path | None = None) -> RawDataset:
    """CIFAR-100 with its 100 fine labels (50,000 train + 10,000 test, 3x32x32)."""
    from torchvision.datasets import CIFAR100  # heavy optional import: downloads only

    return _cifar("cifar100", CIFAR100, cfg, root)


@SOURCES.register("svhn")
def svhn_source(cfg: dict[str, Any], root: str, scratch: Path | None = None) -> RawDataset:
    """SVHN cropped digits, train + test splits (no extra), 3x32x32; label 10 is digit 0."""
    from torchvision.datasets import SVHN  # heavy optional import: downloads only

    splits = {s: SVHN.split_list[s] for s in ("train", "test")}
    downloads = [FileSpec(fname, md5, [url]) for url, fname, md5 in splits.values()]
    folder, expected, meta = prepare_files("svhn", downloads, [], cfg, root)
    bases = mirror_bases(cfg)
    cls = type("MirroredSVHN", (SVHN,), {"split_list": {
        s: [bases[0] + fname if bases else url, fname, expected[fname]]
        for s, (url, fname, _) in splits.items()}})
    train, test = run_torchvision(
        lambda: (cls(str(folder), split="train", download=True), cls(str(folder), split="test", download=True)),
        folder, expected)
    return RawDataset(np.ascontiguousarray(train.data, dtype=np.uint8), train.labels.astype(np.int64),
                      np.ascontiguousarray(test.data, dtype=np.uint8), test.labels.astype(np.int64),
                      [str(d) for d in range(10)], meta)
