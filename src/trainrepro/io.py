"""Atomic file writes and checksums: every output is written to a temp file and renamed."""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

import numpy as np
import torch

from .registry import DataIntegrityError


@contextmanager
def atomic_target(path: str | Path) -> Iterator[Path]:
    """A temp file beside `path` to write; on success it is fsynced, made 0644 and renamed onto
    `path`, on any error removed (a kill never leaves half a file under the real name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are ordinary readable files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_target(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, float) and obj != obj:  # NaN is not JSON
        return None
    return obj


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def save_npy(path: str | Path, arr: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def write_rows(path: str | Path, x: np.ndarray, rows: np.ndarray | None = None,
               chunk_bytes: int = 1 << 28) -> None:
    """x[rows] (all of x when rows is None) as the .npy file `path`, written atomically a chunk
    of rows at a time through a memmap of the temp file: never more than `chunk_bytes` of it in
    memory, so x may be a memmap larger than memory. The file is byte for byte what
    `save_npy(path, x[rows])` writes."""
    n = len(x) if rows is None else len(rows)
    row_bytes = max(1, x.dtype.itemsize * int(np.prod(x.shape[1:])))
    step = max(1, chunk_bytes // row_bytes)
    with atomic_target(path) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=x.dtype, shape=(n, *x.shape[1:]))
        for s in range(0, n, step):
            out[s:s + step] = x[s:s + step] if rows is None else x[rows[s:s + step]]
        out.flush()
        del out


def torch_save(path: str | Path, obj: Any) -> None:

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def stream_hash(stream: IO[bytes], algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    """Hex digest of everything left in a binary stream (the project's one hashing helper)."""
    h = hashlib.new(algorithm, usedforsecurity=False) if algorithm == "md5" else hashlib.new(algorithm)
    while chunk := stream.read(chunk_size):
        h.update(chunk)
    return h.hexdigest()


def file_hash(path: str | Path, algorithm: str = "sha256") -> str:
    with open(path, "rb") as f:
        return stream_hash(f, algorithm)


def sha256_file(path: str | Path) -> str:
    return file_hash(path, "sha256")


def md5_file(path: str | Path) -> str:
    return file_hash(path, "md5")


def stable_hash(obj: Any, n: int = 16) -> str:
    """Hash of a JSON-able object, independent of dict order."""
    text = json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def load_torch_file(path: str | Path, device: torch.device | str, expected: str) -> Any:
    """torch.load(weights_only=True); a file that is not a valid torch file is a
    DataIntegrityError naming it and what was expected (outputs are written atomically, so
    a kill never leaves half a file behind)."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - unpickling raises many types; name the file either way
        raise DataIntegrityError(f"{path}: not a valid torch file ({type(e).__name__}: "
                                 f"{str(e).splitlines()[0] if str(e) else ''}); expected "
                                 f"{expected}") from e
