"""Verifying files against expected checksums, and the error raised when one does not match
(the hashing itself is `io.file_hash`)."""
from __future__ import annotations

import os
import re
from typing import Any

from ..io import file_hash
from ..registry import ConfigError, DataIntegrityError

HEX_LENGTH = {"md5": 32, "sha1": 40, "sha256": 64}


class ChecksumError(ValueError):
    """A file's hash differs from the expected one (corrupt, truncated or a different version)."""

    def __init__(self, path: str | os.PathLike, expected: str, actual: str,
                 algorithm: str = "sha256", hint: str = ""):
        self.path, self.expected, self.actual, self.algorithm = os.fspath(path), expected, actual, algorithm
        msg = (f"{algorithm} checksum mismatch for {self.path}: expected {expected}, got {actual} "
               f"(file corrupt, truncated or a different version)")
        super().__init__(msg + (f"; {hint}" if hint else ""))


def normalize_hash(value: Any, algorithm: str, key: str = "checksum") -> str:
    """Lower-case hex digest; a value that is not one is a ConfigError naming `key`."""
    text = str(value).strip().lower()
    if text.startswith(f"{algorithm}:"):
        text = text[len(algorithm) + 1:]
    n = HEX_LENGTH[algorithm]
    if not re.fullmatch(f"[0-9a-f]{{{n}}}", text):
        raise ConfigError(f"{key}: {value!r} is not a {algorithm} hex digest ({n} hex digits)")
    return text


def verify_file(path: str | os.PathLike, expected: str, algorithm: str = "sha256", hint: str = "") -> str:
    """Return the file's digest if it equals `expected`; raise ChecksumError (FileNotFoundError if absent)."""
    if not os.path.isfile(path):
        raise DataIntegrityError(f"{os.fspath(path)}: file not found (expected {algorithm} {expected})")
    expected = normalize_hash(expected, algorithm)
    actual = file_hash(path, algorithm)
    if actual != expected:
        raise ChecksumError(path, expected, actual, algorithm, hint)
    return actual


def verify_sha256(path: str | os.PathLike, expected: str, hint: str = "") -> str:
    return verify_file(path, expected, "sha256", hint)


def verify_md5(path: str | os.PathLike, expected: str, hint: str = "") -> str:
    return verify_file(path, expected, "md5", hint)
