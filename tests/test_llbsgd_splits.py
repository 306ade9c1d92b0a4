"""k-fold splits over train + validation: seeded, disjoint, covering; applied to a prepared set."""
import numpy as np
import pytest

from trainrepro.data.prepared import load_prepared
from trainrepro.data.splits import kfold_folds, kfold_split, with_fold
from trainrepro.registry import ConfigError


def test_folds_are_disjoint_covering_balanced_and_seeded():
    folds = kfold_folds(103, 5, seed=3)
    allidx = np.concatenate(folds)
    assert sorted(allidx.tolist()) == list(range(103))           # covering and disjoint
    assert {len(f) for f in folds} == {20, 21}
    again = kfold_folds(103, 5, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(folds, again))
    other = kfold_folds(103, 5, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(folds, other))


def test_each_fold_is_a_train_validation_pair_and_validation_parts_partition_the_pool():
    vals = []
    for f in range(5):
        tr, va = kfold_split(50, 5, f, seed=0)
        assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == 50
        vals.append(va)
    assert sorted(np.concatenate(vals).tolist()) == list(range(50))


def test_bad_k_or_fold_is_refused():
    with pytest.raises(ConfigError, match="folds"):
        kfold_folds(10, 1, 0)
    with pytest.raises(ConfigError, match="fold: 5"):
        kfold_split(10, 5, 5, 0)


def test_with_fold_keeps_the_test_split_and_repartitions_the_pool(prepared_digits):
    ds = load_prepared(prepared_digits)
    pool = set(ds.train_idx.tolist()) | set(ds.val_idx.tolist())
    seen = set()
    for f in range(5):
        d = with_fold(ds, 5, f, seed=0)
        assert set(d.train_idx.tolist()) | set(d.val_idx.tolist()) == pool
        assert not set(d.train_idx.tolist()) & set(d.val_idx.tolist())
        assert set(d.clean_idx.tolist()) <= set(d.train_idx.tolist())
        assert d.x_test is ds.x_test
        seen |= set(d.val_idx.tolist())
    assert seen == pool


def test_train_kfold_gives_each_seed_its_fold_as_validation(prepared_digits):
    import torch

    from trainrepro.config import validate_train
    from trainrepro.runner import run_data

    cfg = {"noise": ["symmetric_incl", 0.0, 0], "augment": "none", "val_labels": "noisy",
           "dataset_cfg": {"data_seed": 0}, "kfold": 5}
    ds = load_prepared(prepared_digits)
    pool = len(ds.train_idx) + len(ds.val_idx)
    vals = [set(run_data(prepared_digits, {**cfg, "seed": s}, torch.device("cpu")).val_idx.tolist())
            for s in range(5)]
    assert all(abs(len(v) - pool / 5) <= 1 for v in vals) and len(set().union(*vals)) == pool
    assert vals[0] == set(run_data(prepared_digits, {**cfg, "seed": 5}, torch.device("cpu")).val_idx.tolist())
    fixed = run_data(prepared_digits, {**cfg, "kfold": 0, "seed": 0}, torch.device("cpu"))
    assert set(fixed.val_idx.tolist()) == set(ds.val_idx.tolist())
    with pytest.raises(ConfigError, match="kfold: 1 is not allowed"):
        validate_train("train", {"kfold": 1})
