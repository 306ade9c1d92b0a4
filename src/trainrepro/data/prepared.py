"""The prepared dataset on disk, written by the `prepare` stage and read by every later stage.

Layout of data/prepared/<name>/:
  x_pool.npy, y_pool.npy   the training pool (train + validation), inputs and TRUE labels
  x_test.npy, y_test.npy   the test split
  splits.npz               train_idx, val_idx, clean_idx (indices into the pool)
  noise/<id>.npy           noisy labels of the whole pool for one noise variant
  manifest.json            config, storage, classes, shapes, normalisation, sha256 of every
                           file, and per noise variant: realised wrong-label rate and the
                           empirical transition matrix.
Images are uint8 (N, C, H, W); the toy Gaussians are float32 (N, D). `storage` is `memory`, or
`memmap` for an imagefolder source decoded to disk (`storage:` in its cfg, e.g. ImageNet): the
same files, byte for byte, but written without the dataset in memory (x_pool.npy is the decoded
training file moved into place, or written a chunk of rows at a time) and loaded as read-only
memmaps, which the host-streaming loader (loader.HostData) reads batch by batch.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io import read_json, save_npy, sha256_file, write_json, write_rows
from ..registry import ConfigError, DataIntegrityError
from .base import RawDataset, load_raw
from .noise import empirical_transition, make_noise, noise_id

SCRATCH = ".scratch"  # prepare's folder for a memmap-stored source's decoded arrays (moved or removed)


def split_rows(raw: RawDataset, cfg: dict[str, Any]) -> dict[str, np.ndarray | None]:
    """The split as index arrays, drawn with the data seed: pool_rows / test_rows, the rows of
    raw.train_x that form the pool and the test split when the source has none (both None when
    it has one: the pool is all of train_x), and train_idx, val_idx, clean_idx into the pool."""
    rng = np.random.default_rng(int(cfg.get("data_seed", 0)))
    n = len(raw.train_y)
    pool_rows = test_rows = None
    if raw.test_x is None:
        perm = rng.permutation(n)
        n_test = int(round(float(cfg.get("test_fraction", 0.2)) * n))
        test_rows, pool_rows = np.sort(perm[:n_test]), np.sort(perm[n_test:])
        n = len(pool_rows)
    perm = rng.permutation(n)
    n_val = int(round(float(cfg.get("val_fraction", 0.1)) * n))
    val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    n_clean = int(round(float(cfg.get("clean_fraction", 0.1)) * len(train_idx)))
    clean_idx = np.sort(rng.choice(train_idx, size=n_clean, replace=False))
    return dict(pool_rows=pool_rows, test_rows=test_rows, train_idx=train_idx, val_idx=val_idx,
                clean_idx=clean_idx)


def split_parts(raw: RawDataset, rows: dict[str, np.ndarray | None], with_x: bool = True
                ) -> dict[str, np.ndarray]:
    """The split's arrays (x_pool, y_pool, x_test, y_test; x only `with_x`) and index arrays."""
    out = {k: rows[k] for k in ("train_idx", "val_idx", "clean_idx")}
    for v in ("x", "y") if with_x else ("y",):
        train = getattr(raw, f"train_{v}")
        if rows["test_rows"] is None:
            out[f"{v}_pool"], out[f"{v}_test"] = train, getattr(raw, f"test_{v}")
        else:
            out[f"{v}_pool"], out[f"{v}_test"] = train[rows["pool_rows"]], train[rows["test_rows"]]
    return out


def split_pool(raw: RawDataset, cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """Carve test (if the source has none), validation and clean subset with the data seed."""
    return split_parts(raw, split_rows(raw, cfg))


def store_on_disk(out: Path, raw: RawDataset, rows: dict[str, np.ndarray | None]) -> dict[str, np.ndarray]:
    """x_pool.npy and x_test.npy of a memmap-stored source (its arrays: whole .npy files in the
    scratch folder), without the dataset in memory: a split that is all of a source file is
    that file, moved (no copy, no second ~193 GB for ImageNet); one carved out of train_x is
    written a chunk of rows at a time. Returns them as read-only memmaps."""
    carved = rows["test_rows"] is not None
    for key, x, r in (("x_pool", raw.train_x, rows["pool_rows"]),
                      ("x_test", raw.train_x if carved else raw.test_x, rows["test_rows"])):
        if r is None:
            os.replace(x.filename, out / f"{key}.npy")
        else:
            write_rows(out / f"{key}.npy", x, r)
    return {key: np.load(out / f"{key}.npy", mmap_mode="r") for key in ("x_pool", "x_test")}


def normalisation(x: np.ndarray, idx: np.ndarray, chunk: int = 4096) -> dict[str, list[float]]:
    """Per-channel mean/std of the training split (images scaled to [0, 1]; features as-is).
    A memmap's split, which need not fit in memory, is summed `chunk` rows at a time (float64
    sums of x and x^2: equal to the in-memory numbers up to rounding, ~1e-12 relative)."""
    axes = (0, 2, 3) if x.dtype == np.uint8 else (0,)
    scale = 255.0 if x.dtype == np.uint8 else 1.0
    if isinstance(x, np.memmap):
        s = s2 = 0.0
        for i in range(0, len(idx), chunk):
            sub = x[idx[i:i + chunk]].astype(np.float64) / scale
            s, s2 = s + sub.sum(axis=axes), s2 + np.square(sub).sum(axis=axes)
        n = len(idx) * int(np.prod(x.shape[2:]))  # values per channel
        mean = s / n
        std = np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))
        return {"mean": mean.tolist(), "std": (std + 1e-8).tolist()}
    sub = x[idx].astype(np.float64)
    if x.dtype == np.uint8:
        sub /= 255.0
    return {"mean": sub.mean(axis=axes).tolist(), "std": (sub.std(axis=axes) + 1e-8).tolist()}


def prepare_dataset(name: str, cfg: dict[str, Any], noise_variants: list[tuple[str, float, int]],
                    out_dir: str | Path, raw_root: str = "data/raw") -> dict[str, Any]:
    """Build, split, noise-corrupt and store one dataset; returns its manifest."""
    out = Path(out_dir)
    raw = load_raw(cfg, raw_root, scratch=out / SCRATCH)
    storage = "memmap" if isinstance(raw.train_x, np.memmap) else "memory"
    rows = split_rows(raw, cfg)
    parts = split_parts(raw, rows, with_x=storage == "memory")
    if storage == "memmap":
        parts.update(store_on_disk(out, raw, rows))
        shutil.rmtree(out / SCRATCH)
    k = len(raw.classes)
    files: dict[str, str] = {}
    for key in ("x_pool", "y_pool", "x_test", "y_test"):
        if storage == "memory" or key.startswith("y_"):  # memmap-stored x files are written already
            save_npy(out / f"{key}.npy", parts[key])
    split_path = out / "splits.npz"
    tmp = out / ".splits.tmp.npz"
    np.savez(tmp, train_idx=parts["train_idx"], val_idx=parts["val_idx"],
             clean_idx=parts["clean_idx"])
    tmp.replace(split_path)
    noise_stats: dict[str, Any] = {}
    for kind, rate, seed in sorted(set(noise_variants)):
        nid = noise_id(kind, rate, seed)
        if nid in noise_stats:
            continue
        model = make_noise(kind, rate)
        noisy = model.apply(parts["y_pool"], k, seed)
        save_npy(out / "noise" / f"{nid}.npy", noisy)
        tr = parts["train_idx"]
        noise_stats[nid] = {
            "kind": kind if rate > 0 else "none", "rate": rate, "seed": seed,
            "expected_wrong_rate": model.expected_wrong_rate(k),
            "realised_wrong_rate": float((noisy[tr] != parts["y_pool"][tr]).mean()),
            "transition_matrix": np.round(empirical_transition(parts["y_pool"][tr], noisy[tr], k),
                                          4).tolist(),
        }
    for p in sorted(out.rglob("*.np[yz]")):
        files[str(p.relative_to(out))] = sha256_file(p)
    manifest = {
        "name": name, "config": cfg, "storage": storage, "classes": raw.classes, "num_classes": k,
        "input_shape": list(parts["x_pool"].shape[1:]), "dtype": str(parts["x_pool"].dtype),
        "sizes": {"train": len(parts["train_idx"]), "val": len(parts["val_idx"]),
                  "test": len(parts["y_test"]), "clean": len(parts["clean_idx"])},
        "normalisation": normalisation(parts["x_pool"], parts["train_idx"]),
        "noise": noise_stats, "files": files, "meta": raw.meta,
    }
    write_json(out / "manifest.json", manifest)
    return manifest


@dataclass
class PreparedDataset:
    name: str
    manifest: dict[str, Any]
    x_pool: np.ndarray
    y_pool: np.ndarray  # true labels
    x_test: np.ndarray
    y_test: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    clean_idx: np.ndarray
    noisy_pool: np.ndarray  # labels the learner sees (noisy for train and val)
    noise: dict[str, Any]

    @property
    def num_classes(self) -> int:
        return int(self.manifest["num_classes"])

    @property
    def is_image(self) -> bool:
        return self.x_pool.dtype == np.uint8

    @property
    def storage(self) -> str:
        """`memory` or `memmap` (x_pool / x_test memmaps of their files; manifests written before
        the key existed are memory)."""
        return self.manifest.get("storage", "memory")


# sha256 of the files this process has verified, keyed by (path, size, mtime): a worker that
# loads the same prepared file again (another run, another k-fold fold) does not re-hash it
# (ImageNet's x_pool.npy is ~193 GB); a rewritten file has a new mtime and is hashed again.
_VERIFIED: dict[tuple[str, int, int], str] = {}


def _sha256_once(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        _VERIFIED[key] = sha256_file(path)
    return _VERIFIED[key]


def _checked(root: Path, rel: str, manifest: dict[str, Any], verify: bool) -> Path:
    path = root / rel
    expected = manifest["files"].get(rel)
    if expected is None:
        raise DataIntegrityError(f"{path}: not listed in {root / 'manifest.json'}")
    if not path.exists():
        raise DataIntegrityError(f"{path}: missing (expected sha256 {expected}); re-run prepare")
    if verify:
        actual = _sha256_once(path)
        if actual != expected:
            raise DataIntegrityError(
                f"{path}: checksum mismatch (expected sha256 {expected}, got {actual}); "
                "the file is corrupt or truncated: re-run `dvc repro prepare`")
    return path


def load_prepared(root: str | Path, noise: tuple[str, float, int] = ("symmetric_incl", 0.0, 0),
                  verify: bool = True) -> PreparedDataset:
    """Load a prepared dataset with one noise variant, checking every file's sha256 (streamed,
    1 MiB at a time). A memmap-stored dataset's x_pool / x_test are read-only memmaps: pages
    are read from disk as batches touch them (the page cache, not the process, holds them)."""
    root = Path(root)
    if not (root / "manifest.json").exists():
        raise DataIntegrityError(f"{root / 'manifest.json'}: missing; run the prepare stage first")
    manifest = read_json(root / "manifest.json")
    nid = noise_id(*noise)
    if nid not in manifest["noise"]:
        raise ConfigError(f"noise variant {nid!r} was not prepared for {manifest['name']}; "
                          f"prepared: {', '.join(manifest['noise'])}")

    lazy = manifest.get("storage", "memory") == "memmap"

    def arr(rel: str) -> np.ndarray:
        path = _checked(root, rel, manifest, verify)
        try:
            return np.load(path, allow_pickle=False, mmap_mode="r" if lazy and rel.startswith("x_") else None)
        except (ValueError, OSError, EOFError) as e:
            raise DataIntegrityError(f"{path}: unreadable ({e}); expected sha256 "
                                     f"{manifest['files'][rel]}") from e

    splits = np.load(_checked(root, "splits.npz", manifest, verify))
    return PreparedDataset(
        name=manifest["name"], manifest=manifest, x_pool=arr("x_pool.npy"),
        y_pool=arr("y_pool.npy"), x_test=arr("x_test.npy"), y_test=arr("y_test.npy"),
        train_idx=splits["train_idx"], val_idx=splits["val_idx"], clean_idx=splits["clean_idx"],
        noisy_pool=arr(f"noise/{nid}.npy"), noise=manifest["noise"][nid])
