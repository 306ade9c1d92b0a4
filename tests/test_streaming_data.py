"""Memmap storage and host streaming (the paper-scale ImageNet path), checked on a tiny
ImageFolder tree: same prepared files as in-memory storage, lazy loading, and HostData batches
bit-identical to DeviceData's."""
from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pytest
import torch
from conftest import train_cfg
from fakedata import imagefolder_files, write_targz, write_tree

from trainrepro.config import validate_dataset
from trainrepro.data.imagefolder import load_imagefolder
from trainrepro.data.loader import DeviceData, HostData
from trainrepro.data.prepared import load_prepared, prepare_dataset
from trainrepro.engine import Trainer
from trainrepro.methods import METHODS
from trainrepro.registry import ConfigError
from trainrepro.runner import run_data

NOISE = ("symmetric_incl", 0.2, 0)
CLASSES = ["ant", "bee", "cat", "dog"]


def tree_cfg(path, **over) -> dict:
    return {"source": "imagefolder", "path": str(path), "val_fraction": 0.2,
            "clean_fraction": 0.25, "data_seed": 0, **over}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """4 classes x (8 train + 3 test) random 12x12 RGB PNGs (44 images)."""
    files, _ = imagefolder_files(CLASSES, n_train=8, n_test=3, size=(12, 12), seed=3)
    return write_tree(tmp_path_factory.mktemp("tree") / "imgs", files)


@pytest.fixture(scope="module")
def prepared(tree, tmp_path_factory):
    """The tree prepared twice: storage memory and storage memmap."""
    root = tmp_path_factory.mktemp("prepared")
    out = {}
    for storage in ("memory", "memmap"):
        t = time.perf_counter()
        prepare_dataset("tiny", tree_cfg(tree, storage=storage), [NOISE, ("symmetric_incl", 0.0, 0)],
                        root / storage)
        print(f"prepare storage={storage}: {time.perf_counter() - t:.3f} s")
        out[storage] = root / storage
    return out


def manifest(path):
    return json.loads((path / "manifest.json").read_text())


def test_memmap_storage_prepares_the_same_files_and_manifest(prepared):
    mem, mm = manifest(prepared["memory"]), manifest(prepared["memmap"])
    assert (mem.pop("storage"), mm.pop("storage")) == ("memory", "memmap")
    assert mem.pop("config")["storage"] == "memory" and mm.pop("config")["storage"] == "memmap"
    # Same file names and sha256 (byte-identical .npy files), same everything else; the
    # normalisation of a memmap is summed in chunks: equal up to float64 rounding.
    n_mem, n_mm = mem.pop("normalisation"), mm.pop("normalisation")
    for k in ("mean", "std"):
        np.testing.assert_allclose(n_mm[k], n_mem[k], rtol=1e-12)
    assert mm == mem
    assert not (prepared["memmap"] / ".scratch").exists()


def test_load_prepared_returns_memmaps_for_memmap_storage(prepared):
    mem = load_prepared(prepared["memory"], NOISE)
    mm = load_prepared(prepared["memmap"], NOISE)
    assert isinstance(mm.x_pool, np.memmap) and isinstance(mm.x_test, np.memmap)
    assert not isinstance(mem.x_pool, np.memmap) and mm.storage == "memmap" and mem.storage == "memory"
    assert not mm.x_pool.flags.writeable
    np.testing.assert_array_equal(mm.x_pool, mem.x_pool)
    np.testing.assert_array_equal(mm.x_test, mem.x_test)


@pytest.mark.parametrize("archive", [False, True])
def test_memmap_decode_equals_memory_decode_for_grey_trees_and_carved_test_splits(tmp_path, archive):
    # greyscale (cut to one channel at the end), no test folder (the test split is carved out
    # of train_x: chunked row writes), read from a shuffled tar.gz (two passes over it).
    files, _ = imagefolder_files(["a", "b"], n_train=5, channels=1, size=(6, 7), splits=("",))
    src = (write_targz(tmp_path / "g.tar.gz", files, shuffle_seed=1) if archive
           else write_tree(tmp_path / "g", files))
    raw_mm = load_imagefolder(src, storage="memmap", scratch=tmp_path / "scratch")
    raw_mem = load_imagefolder(src)
    assert isinstance(raw_mm.train_x, np.memmap) and raw_mm.train_x.shape == (10, 1, 6, 7)
    np.testing.assert_array_equal(raw_mm.train_x, raw_mem.train_x)
    np.testing.assert_array_equal(raw_mm.train_y, raw_mem.train_y)
    assert raw_mm.meta == raw_mem.meta and raw_mm.test_x is None
    for storage in ("memory", "memmap"):
        prepare_dataset("g", tree_cfg(src, storage=storage, test_fraction=0.3), [NOISE],
                        tmp_path / storage)
    assert manifest(tmp_path / "memmap")["files"] == manifest(tmp_path / "memory")["files"]


def data_pair(prepared, **kw):
    """DeviceData on the in-memory dataset and HostData on the memmap one (the same arrays)."""
    return (DeviceData(load_prepared(prepared["memory"], NOISE), "cpu", **kw),
            HostData(load_prepared(prepared["memmap"], NOISE), "cpu", **kw))


def assert_same_batches(a, b):
    a, b = list(a), list(b)
    assert len(a) == len(b) > 1
    for x, y in zip(a, b):
        assert torch.equal(x.x, y.x) and torch.equal(x.y, y.y) and torch.equal(x.idx, y.idx)


def test_host_streaming_yields_the_same_batches_as_device_data(prepared):
    dev, host = data_pair(prepared, augment="crop_flip")
    for name in ("noisy", "true", "train_idx", "val_idx", "clean_idx", "mean", "std"):
        assert torch.equal(getattr(dev, name), getattr(host, name))
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    for _ in range(2):  # two epochs: the generators must stay in step
        assert_same_batches(dev.train_batches(dev.train_idx, 5, g1), host.train_batches(host.train_idx, 5, g2))
    assert torch.equal(g1.get_state(), g2.get_state())
    for split in ("train", "val", "test"):
        assert_same_batches(dev.eval_batches(split, 4), host.eval_batches(split, 4))
    subset = torch.tensor([9, 2, 30, 2, 17, 0, 25])
    assert_same_batches(dev.subset_batches(subset, 3), host.subset_batches(subset, 3))
    # direct indexing (used by methods that read data.x_pool[idx]) gives the same rows too
    assert torch.equal(host.x_pool[subset], dev.x_pool[subset])
    assert host.x_pool.shape == tuple(dev.x_pool.shape) and len(host.x_pool) == len(dev.x_pool)
    t = time.perf_counter()
    for _ in range(20):
        host.x_pool.gather(subset.numpy())
    print(f"HostRows.gather of 7 rows: {(time.perf_counter() - t) / 20 * 1e6:.0f} us")


def test_a_training_run_gives_identical_records_with_both_placements(prepared):
    cfg = {**train_cfg(model="small_cnn", model_args={}, epochs=2, batch_size=8, augment="crop_flip",
                       optimizer_args={"momentum": 0.9}),
           "noise": list(NOISE), "kfold": 0, "dataset_cfg": {}}
    host = run_data(prepared["memmap"], cfg, torch.device("cpu"))  # the runner picks the placement
    assert isinstance(host, HostData)
    ds = load_prepared(prepared["memmap"], NOISE)
    ds = dataclasses.replace(ds, x_pool=np.array(ds.x_pool), x_test=np.array(ds.x_test))
    dev = DeviceData(ds, "cpu", augment="crop_flip")  # the same arrays, moved to the device
    trainers = [Trainer(cfg, d, METHODS["fullmodel"], {}) for d in (dev, host)]
    recs = [t.fit() for t in trainers]
    assert recs[0]["status"] == recs[1]["status"] == "ok" and recs[0]["reported"] == recs[1]["reported"]
    untimed = [[{k: v for k, v in row.items() if not k.endswith("_s")} for row in t.history] for t in trainers]
    assert len(untimed[0]) == 2 and untimed[0] == untimed[1]
    for p, q in zip(trainers[0].model.state_dict().values(), trainers[1].model.state_dict().values()):
        assert torch.equal(p, q)


def test_bad_storage_values_are_config_errors_naming_the_key(tree, tmp_path):
    with pytest.raises(ConfigError, match=r"datasets\.x\.storage"):
        validate_dataset("datasets.x", tree_cfg(tree, storage="disk"))
    with pytest.raises(ConfigError, match=r"storage: 'disk' is not allowed; allowed: auto, memory, memmap"):
        load_imagefolder(tree, storage="disk")
    with pytest.raises(ConfigError, match=r"storage: memmap needs a scratch folder"):
        load_imagefolder(tree, storage="memmap")
    with pytest.raises(ConfigError, match=r"datasets\.x\.storage"):
        validate_dataset("datasets.x", {"source": "digits", "storage": "memmap"})


def test_a_verified_file_is_hashed_once_per_process_and_again_when_rewritten(prepared, tmp_path,
                                                                              monkeypatch):
    import shutil

    from trainrepro.data import prepared as prep
    from trainrepro.registry import DataIntegrityError

    root = tmp_path / "copy"
    shutil.copytree(prepared["memmap"], root)
    calls = []
    real = prep.sha256_file
    monkeypatch.setattr(prep, "sha256_file", lambda p: calls.append(p.name) or real(p))
    load_prepared(root)
    first = calls.count("x_pool.npy")
    load_prepared(root)  # another run of the same worker: no second hash of the big file
    assert first == 1 and calls.count("x_pool.npy") == 1
    x = root / "x_pool.npy"
    raw = bytearray(x.read_bytes())
    raw[-1] ^= 0xFF  # same size, new content and mtime: hashed again and rejected
    time.sleep(0.01)
    x.write_bytes(bytes(raw))
    with pytest.raises(DataIntegrityError, match="checksum mismatch"):
        load_prepared(root)
