"""Tiny fake datasets written in the real on-disk formats (CIFAR pickles, MNIST idx, SVHN .mat, ImageFolder).

Each writer returns the arrays it wrote (NCHW uint8 images, int64 labels) so tests can compare.
Archives are written deterministically (fixed mtimes), so equal inputs give equal md5s.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def md5(path: str | Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _images(rng: np.random.Generator, n: int, c: int, h: int, w: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, c, h, w), dtype=np.uint8)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def _targz(path: Path, files: dict[str, bytes]) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
        for name, data in files.items():
            _add_bytes(tar, name, data)


# ---------------------------------------------------------------------------------------- CIFAR


def write_cifar10(folder: str | Path, per_batch: int = 4, n_test: int = 6, seed: int = 0) -> dict:
    """cifar-10-python.tar.gz: cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta."""
    rng = np.random.default_rng(seed)
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    files, xs, ys = {}, [], []
    for b in range(1, 7):
        n = per_batch if b <= 5 else n_test
        x, y = _images(rng, n, 3, 32, 32), rng.integers(0, 10, n)
        name = f"data_batch_{b}" if b <= 5 else "test_batch"
        files[f"cifar-10-batches-py/{name}"] = pickle.dumps({
            "batch_label": f"fake {name}", "labels": y.tolist(), "data": x.reshape(n, -1),
            "filenames": [f"img_{b}_{i}.png" for i in range(n)]}, protocol=2)
        xs.append(x), ys.append(y)
    files["cifar-10-batches-py/batches.meta"] = pickle.dumps(
        {"label_names": classes, "num_cases_per_batch": per_batch, "num_vis": 3072}, protocol=2)
    path = Path(folder) / "cifar-10-python.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    _targz(path, files)
    return {"path": path, "train_x": np.concatenate(xs[:5]), "train_y": np.concatenate(ys[:5]),
            "test_x": xs[5], "test_y": ys[5], "classes": classes}


def write_cifar100(folder: str | Path, n_train: int = 12, n_test: int = 6, seed: int = 0) -> dict:
    """cifar-100-python.tar.gz: cifar-100-python/train, test, meta (fine and coarse labels)."""
    rng = np.random.default_rng(seed)
    fine = [f"fine{i:02d}" for i in range(100)]
    files, out = {}, {}
    for split, n in (("train", n_train), ("test", n_test)):
        x, y = _images(rng, n, 3, 32, 32), rng.integers(0, 100, n)
        files[f"cifar-100-python/{split}"] = pickle.dumps({
            "filenames": [f"{split}_{i}.png" for i in range(n)], "batch_label": f"fake {split}",
            "fine_labels": y.tolist(), "coarse_labels": (y // 5).tolist(), "data": x.reshape(n, -1)},
            protocol=2)
        out[f"{split}_x"], out[f"{split}_y"] = x, y
    files["cifar-100-python/meta"] = pickle.dumps(
        {"fine_label_names": fine, "coarse_label_names": [f"coarse{i:02d}" for i in range(20)]}, protocol=2)
    path = Path(folder) / "cifar-100-python.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    _targz(path, files)
    return {"path": path, "classes": fine, **out}


# ---------------------------------------------------------------------------------------- MNIST


def _idx(arr: np.ndarray) -> bytes:
    """IDX (LeCun) encoding of a uint8 array: magic 0x08 + ndim, big-endian dimensions, data."""
    return struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()


def write_mnist(folder: str | Path, n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict:
    """train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images..., t10k-labels..."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict = {"paths": {}}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        x, y = _images(rng, n, 1, 28, 28), rng.integers(0, 10, n).astype(np.uint8)
        for kind, arr in (("images-idx3", x[:, 0]), ("labels-idx1", y)):
            name = f"{prefix}-{kind}-ubyte.gz"
            with open(folder / name, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
                gz.write(_idx(arr))
            out["paths"][name] = folder / name
        out[f"{split}_x"], out[f"{split}_y"] = x, y.astype(np.int64)
    return out


# ---------------------------------------------------------------------------------------- SVHN


def write_svhn(folder: str | Path, n_train: int = 10, n_test: int = 6, seed: int = 0) -> dict:
    """train_32x32.mat and test_32x32.mat: X (32, 32, 3, N) uint8, y (N, 1) with 10 for digit 0."""
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict = {"paths": {}}
    for split, n in (("train", n_train), ("test", n_test)):
        x = _images(rng, n, 3, 32, 32)
        digit = np.arange(n) % 10  # every digit, 0 included, so the 10 -> 0 mapping is exercised
        rng.shuffle(digit)
        path = folder / f"{split}_32x32.mat"
        savemat(path, {"X": x.transpose(2, 3, 1, 0), "y": np.where(digit == 0, 10, digit)[:, None].astype(np.uint8)})
        out["paths"][path.name] = path
        out[f"{split}_x"], out[f"{split}_y"] = x, digit.astype(np.int64)
    return out


# ---------------------------------------------------------------------------------------- ImageFolder


def png_bytes(img: np.ndarray) -> bytes:
    """PNG of a (C, H, W) uint8 array (C = 1 gives mode L, C = 3 gives RGB)."""
    pil = Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0))
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


def imagefolder_files(classes: list[str], n_train: int = 3, n_test: int = 2, channels: int = 3,
                      size: tuple[int, int] = (8, 6), top: str | None = None, seed: int = 0,
                      splits: tuple[str, ...] = ("train", "test")) -> tuple[dict[str, bytes], dict]:
    """{relative path: PNG bytes} for `[top/]<split>/<class>/<i>.png`, plus the expected arrays.

    A split named "" puts the class folders at the root. Expected arrays follow the loader's
    order (sorted by path); size is (H, W).
    """
    rng = np.random.default_rng(seed)
    files: dict[str, bytes] = {}
    expected: dict = {}
    for split in splits:
        n = n_train if split in ("train", "") else n_test
        xs, ys = [], []
        for label, cls in enumerate(sorted(classes)):
            for i in range(n):
                img = _images(rng, 1, channels, *size)[0]
                parts = [p for p in (top, split, cls, f"{i:03d}.png") if p]
                files["/".join(parts)] = png_bytes(img)
                xs.append(img), ys.append(label)
        key = "train" if split in ("train", "") else "test"
        expected[f"{key}_x"], expected[f"{key}_y"] = np.stack(xs), np.array(ys, dtype=np.int64)
    return files, expected


def write_tree(folder: str | Path, files: dict[str, bytes]) -> Path:
    folder = Path(folder)
    for rel, data in files.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return folder


def write_targz(path: str | Path, files: dict[str, bytes], shuffle_seed: int | None = None) -> Path:
    """tar.gz of the files (in shuffled member order if shuffle_seed is given)."""
    names = list(files)
    if shuffle_seed is not None:
        np.random.default_rng(shuffle_seed).shuffle(names)
    path = Path(path)
    _targz(path, {n: files[n] for n in names})
    return path


def write_zip(path: str | Path, files: dict[str, bytes]) -> Path:
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name in reversed(list(files)):  # reversed: the loader must sort, not trust archive order
            z.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), files[name])
    return path
