"""The prepared dataset on disk, written by the `prepare` stage and read by every later stage.

Layout of data/prepared/<name>/:
  x_pool.npy, y_pool.npy   the training pool (train + validation), inputs and TRUE labels
  x_test.npy, y_test.npy   the test split
  splits.npz               train_idx, val_idx, clean_idx (indices into the pool)
  noise/<id>.npy           noisy labels of the whole pool for one noise variant
  manifest.json            config, classes, shapes, normalisation, sha256 of every file,
                           and per noise variant: realised wrong-label rate and the
                           empirical transition matrix.
Images are uint8 (N, C, H, W); the toy Gaussians are float32 (N, D).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..io import read_json, save_npy, sha256_file, write_json
from ..registry import ConfigError, DataIntegrityError
from .base import RawDataset, load_raw
from .noise import empirical_transition, make_noise, noise_id


def split_pool(raw: RawDataset, cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """Carve test (if the source has none), validation and clean subset with the data seed."""
    rng = np.random.default_rng(int(cfg.get("data_seed", 0)))
    x, y = raw.train_x, raw.train_y
    if raw.test_x is None:
        perm = rng.permutation(len(y))
        n_test = int(round(float(cfg.get("test_fraction", 0.2)) * len(y)))
        test, pool = np.sort(perm[:n_test]), np.sort(perm[n_test:])
        x_test, y_test, x, y = x[test], y[test], x[pool], y[pool]
    else:
        x_test, y_test = raw.test_x, raw.test_y
    perm = rng.permutation(len(y))
    n_val = int(round(float(cfg.get("val_fraction", 0.1)) * len(y)))
    val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    n_clean = int(round(float(cfg.get("clean_fraction", 0.1)) * len(train_idx)))
    clean_idx = np.sort(rng.choice(train_idx, size=n_clean, replace=False))
    return dict(x_pool=x, y_pool=y, x_test=x_test, y_test=y_test,
                train_idx=train_idx, val_idx=val_idx, clean_idx=clean_idx)


def normalisation(x: np.ndarray, idx: np.ndarray) -> dict[str, list[float]]:
    """Per-channel mean/std of the training split (images scaled to [0, 1]; features as-is)."""
    sub = x[idx].astype(np.float64)
    if x.dtype == np.uint8:
        sub /= 255.0
        axes = (0, 2, 3)
    else:
        axes = (0,)
    return {"mean": sub.mean(axis=axes).tolist(), "std": (sub.std(axis=axes) + 1e-8).tolist()}


def prepare_dataset(name: str, cfg: dict[str, Any], noise_variants: list[tuple[str, float, int]],
                    out_dir: str | Path, raw_root: str = "data/raw") -> dict[str, Any]:
    """Build, split, noise-corrupt and store one dataset; returns its manifest."""
    out = Path(out_dir)
    raw = load_raw(cfg, raw_root)
    parts = split_pool(raw, cfg)
    k = len(raw.classes)
    files: dict[str, str] = {}
    for key in ("x_pool", "y_pool", "x_test", "y_test"):
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
        "name": name, "config": cfg, "classes": raw.classes, "num_classes": k,
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


def _checked(root: Path, rel: str, manifest: dict[str, Any], verify: bool) -> Path:
    path = root / rel
    expected = manifest["files"].get(rel)
    if expected is None:
        raise DataIntegrityError(f"{path}: not listed in {root / 'manifest.json'}")
    if not path.exists():
        raise DataIntegrityError(f"{path}: missing (expected sha256 {expected}); re-run prepare")
    if verify:
        actual = sha256_file(path)
        if actual != expected:
            raise DataIntegrityError(
                f"{path}: checksum mismatch (expected sha256 {expected}, got {actual}); "
                "the file is corrupt or truncated: re-run `dvc repro prepare`")
    return path


def load_prepared(root: str | Path, noise: tuple[str, float, int] = ("symmetric_incl", 0.0, 0),
                  verify: bool = True) -> PreparedDataset:
    """Load a prepared dataset with one noise variant, checking every file's sha256."""
    root = Path(root)
    if not (root / "manifest.json").exists():
        raise DataIntegrityError(f"{root / 'manifest.json'}: missing; run the prepare stage first")
    manifest = read_json(root / "manifest.json")
    nid = noise_id(*noise)
    if nid not in manifest["noise"]:
        raise ConfigError(f"noise variant {nid!r} was not prepared for {manifest['name']}; "
                          f"prepared: {', '.join(manifest['noise'])}")

    def arr(rel: str) -> np.ndarray:
        path = _checked(root, rel, manifest, verify)
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise DataIntegrityError(f"{path}: unreadable ({e}); expected sha256 "
                                     f"{manifest['files'][rel]}") from e

    splits = np.load(_checked(root, "splits.npz", manifest, verify))
    return PreparedDataset(
        name=manifest["name"], manifest=manifest, x_pool=arr("x_pool.npy"),
        y_pool=arr("y_pool.npy"), x_test=arr("x_test.npy"), y_test=arr("y_test.npy"),
        train_idx=splits["train_idx"], val_idx=splits["val_idx"], clean_idx=splits["clean_idx"],
        noisy_pool=arr(f"noise/{nid}.npy"), noise=manifest["noise"][nid])
