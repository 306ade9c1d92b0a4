"""Prepare stage output: splits, clean subset, manifest, checksums, load speed, loader."""
import json
import time

import numpy as np
import pytest
import torch
from conftest import DIGITS_CFG

from trainrepro.data import load_raw
from trainrepro.data.loader import DeviceData, random_crop_flip
from trainrepro.data.prepared import (
    DataIntegrityError,
    load_prepared,
    prepare_dataset,
    split_pool,
)
from trainrepro.data.sources import gaussian_blobs
from trainrepro.registry import ConfigError


def test_splits_are_disjoint_cover_the_pool_and_are_fixed_by_the_data_seed():
    raw = load_raw(DIGITS_CFG)
    a = split_pool(raw, DIGITS_CFG)
    b = split_pool(raw, DIGITS_CFG)
    c = split_pool(raw, {**DIGITS_CFG, "data_seed": 1})
    tr, va = set(a["train_idx"]), set(a["val_idx"])
    assert not tr & va and len(tr | va) == len(a["y_pool"])
    assert len(a["y_test"]) + len(a["y_pool"]) == 1797
    assert set(a["clean_idx"]) <= tr and len(a["clean_idx"]) == round(0.1 * len(tr))
    for k in ("train_idx", "val_idx", "clean_idx"):
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["val_idx"], c["val_idx"])


def test_manifest_records_checksums_and_noise_statistics(prepared_digits):
    m = json.loads((prepared_digits / "manifest.json").read_text())
    assert {"x_pool.npy", "y_pool.npy", "x_test.npy", "splits.npz", "noise/clean.npy"} <= set(m["files"])
    st = m["noise"]["symmetric_incl-0.4-s0"]
    assert st["expected_wrong_rate"] == pytest.approx(0.36)
    assert abs(st["realised_wrong_rate"] - 0.36) < 0.06
    t = np.array(st["transition_matrix"])
    assert t.shape == (10, 10) and np.allclose(t.sum(1), 1, atol=1e-3)
    assert m["sizes"]["train"] + m["sizes"]["val"] + m["sizes"]["test"] == 1797


def test_prepared_digits_loads_in_well_under_a_second_as_uint8(prepared_digits):
    load_prepared(prepared_digits, ("symmetric_incl", 0.4, 0))  # warm the page cache
    t = time.perf_counter()
    ds = load_prepared(prepared_digits, ("symmetric_incl", 0.4, 0))
    assert time.perf_counter() - t < 0.5
    assert ds.x_pool.dtype == np.uint8 and ds.x_pool.shape[1:] == (1, 8, 8)
    assert (ds.noisy_pool != ds.y_pool).mean() > 0.25


def test_truncated_file_error_names_the_file_and_expected_checksum(prepared_digits, tmp_path):
    import shutil

    copy = tmp_path / "digits"
    shutil.copytree(prepared_digits, copy)
    expected = json.loads((copy / "manifest.json").read_text())["files"]["x_pool.npy"]
    data = (copy / "x_pool.npy").read_bytes()
    (copy / "x_pool.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataIntegrityError) as e:
        load_prepared(copy)
    assert "x_pool.npy" in str(e.value) and expected in str(e.value)


def test_unprepared_noise_variant_is_refused(prepared_digits):
    with pytest.raises(ConfigError, match="not prepared"):
        load_prepared(prepared_digits, ("pair_flip", 0.2, 0))


def test_gaussian_toy_data_has_identity_covariance_and_layout_centres():
    from trainrepro.data.sources import GAUSSIAN_LAYOUTS

    x, y = gaussian_blobs("overlapping", 20000, seed=0)
    for c in range(3):
        xc = x[y == c]
        np.testing.assert_allclose(xc.mean(0), GAUSSIAN_LAYOUTS["overlapping"][c], atol=0.05)
        np.testing.assert_allclose(np.cov(xc.T), np.eye(2), atol=0.05)


def test_device_loader_batches_carry_indices_and_the_noisy_labels(prepared_digits):
    ds = load_prepared(prepared_digits, ("symmetric_incl", 0.4, 0))
    data = DeviceData(ds, "cpu")
    g = torch.Generator().manual_seed(0)
    seen = []
    for b in data.train_batches(data.train_idx, 100, g):
        assert b.x.dtype == torch.float32 and b.x.shape[1:] == (1, 8, 8)
        assert torch.equal(b.y, data.noisy[b.idx])
        seen.append(b.idx)
    assert sorted(torch.cat(seen).tolist()) == sorted(ds.train_idx.tolist())
    test_y = torch.cat([b.y for b in data.eval_batches("test", 128)])
    assert torch.equal(test_y, torch.from_numpy(ds.y_test))


def test_random_crop_flip_shifts_with_zero_padding_and_mirrors():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6) + 1
    g = torch.Generator().manual_seed(0)
    out = random_crop_flip(x, 2, g, flip=False)
    assert out.shape == x.shape
    for i in range(2):  # every crop is a window of the zero-padded image
        padded = torch.nn.functional.pad(x[i], (2, 2, 2, 2))
        windows = [padded[:, r:r + 6, c:c + 6] for r in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)
    flipped = random_crop_flip(x, 0, torch.Generator().manual_seed(1), flip=True)
    for i in range(2):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2))


def test_prepare_refuses_unknown_source_without_writing(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset source 'digitz'"):
        prepare_dataset("x", {"source": "digitz"}, [], tmp_path / "x")
    assert not (tmp_path / "x").exists()
