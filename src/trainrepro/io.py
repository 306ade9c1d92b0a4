"""Atomic file writes and checksums: every output is written to a temp file and renamed."""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from .registry import DataIntegrityError


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; outputs are ordinary readable files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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
