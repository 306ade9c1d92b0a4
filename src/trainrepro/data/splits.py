"""Split options over the training pool (train + validation) beyond the fixed split of `prepare`.

`kfold_folds` assigns every pool index to one of k folds (seeded, disjoint, covering, sizes
differ by at most one); `kfold_split` gives fold f's (train, validation) pair: validation = fold
f, train = the other k - 1 folds. `with_fold` applies it to a prepared dataset (the LLb-SGD
paper's five-fold cross-validation); the test split is never touched.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..registry import ConfigError
from .prepared import PreparedDataset


def kfold_folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    """k disjoint sorted index arrays covering range(n), from a permutation seeded by `seed`."""
    if not isinstance(k, int) or k < 2 or k > n:
        raise ConfigError(f"folds: {k!r} is out of range (allowed: [2, {n}])")
    perm = np.random.default_rng(seed).permutation(n)
    return [np.sort(part) for part in np.array_split(perm, k)]


def kfold_split(n: int, k: int, fold: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices of fold `fold` of a k-fold partition of range(n)."""
    if not isinstance(fold, int) or not 0 <= fold < k:
        raise ConfigError(f"fold: {fold!r} is out of range (allowed: [0, {k - 1}])")
    folds = kfold_folds(n, k, seed)
    train = np.sort(np.concatenate([f for i, f in enumerate(folds) if i != fold]))
    return train, folds[fold]


def with_fold(ds: PreparedDataset, k: int, fold: int, seed: int) -> PreparedDataset:
    """A copy of `ds` whose train/validation split is fold `fold` of a k-fold partition of the
    whole pool (train + validation of the fixed split); the clean subset keeps its members that
    fall in the new training part."""
    pool = np.sort(np.concatenate([ds.train_idx, ds.val_idx]))
    tr, va = kfold_split(len(pool), k, fold, seed)
    train_idx, val_idx = pool[tr], pool[va]
    clean = ds.clean_idx[np.isin(ds.clean_idx, train_idx)]
    return dataclasses.replace(ds, train_idx=train_idx, val_idx=val_idx, clean_idx=clean)
