"""Real-data sources: torchvision downloads from a fake mirror with checksums, and imagefolder."""
from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from trainrepro.data import SOURCES, load_raw
from trainrepro.data.checksums import ChecksumError, verify_md5
from trainrepro.io import md5_file
from trainrepro.registry import ConfigError, DataIntegrityError

try:
    from tests import fakedata
except ImportError:  # tests/ is not a package: pytest puts tests/ itself on sys.path
    import fakedata

# ------------------------------------------------------------------------------------ fixtures


def write_fake(name: str, mirror: Path) -> dict:
    """Fake files of dataset `name` in `mirror`; returns expected arrays and the md5 mapping for cfg."""
    if name == "mnist":
        d = fakedata.write_mnist(mirror)
        d["md5"] = {n: fakedata.md5(p) for n, p in d["paths"].items()}
        d["classes"] = [str(i) for i in range(10)]
    elif name == "svhn":
        d = fakedata.write_svhn(mirror)
        d["md5"] = {n: fakedata.md5(p) for n, p in d["paths"].items()}
        d["classes"] = [str(i) for i in range(10)]
    else:
        d = (fakedata.write_cifar10 if name == "cifar10" else fakedata.write_cifar100)(mirror)
        d["md5"] = {d["path"].name: fakedata.md5(d["path"])}
    return d


@pytest.fixture
def http_mirror(tmp_path):
    """Serve tmp_path/http over HTTP on localhost; yields (folder, base URL)."""
    folder = tmp_path / "http"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


# ----------------------------------------------------------------------------- checksums helpers


def test_checksum_error_names_file_expected_and_actual_hash(tmp_path):
    f = tmp_path / "blob.bin"
    f.write_bytes(b"hello")
    wrong = "0" * 32
    with pytest.raises(ChecksumError) as e:
        verify_md5(f, wrong)
    assert isinstance(e.value, ValueError)
    msg = str(e.value)
    assert str(f) in msg and wrong in msg and md5_file(f) in msg


def test_malformed_expected_hash_is_a_config_error(tmp_path):
    f = tmp_path / "blob.bin"
    f.write_bytes(b"x")
    with pytest.raises(ConfigError, match="md5"):
        verify_md5(f, "not-a-hash")


# ------------------------------------------------------------------------- torchvision sources

SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32), "cifar100": (3, 32, 32), "svhn": (3, 32, 32)}


@pytest.mark.parametrize("mirror_kind", ["directory", "file_url"])
@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100", "svhn"])
def test_torchvision_source_loads_from_mirror_with_cfg_md5(tmp_path, name, mirror_kind):
    mirror = tmp_path / "mirror"
    fake = write_fake(name, mirror)
    cfg = {"source": name, "md5": fake["md5"],
           "mirror": str(mirror) if mirror_kind == "directory" else mirror.as_uri() + "/"}
    d = load_raw(cfg, str(tmp_path / "raw"))
    for split in ("train", "test"):
        x, y = getattr(d, f"{split}_x"), getattr(d, f"{split}_y")
        assert x.dtype == np.uint8 and x.shape == (len(fake[f"{split}_y"]), *SHAPES[name])
        assert x.flags.c_contiguous
        assert y.dtype == np.int64
        np.testing.assert_array_equal(x, fake[f"{split}_x"])
        np.testing.assert_array_equal(y, fake[f"{split}_y"])
    assert d.classes == fake["classes"]
    assert d.meta["checksum_verified"] and d.meta["md5"][next(iter(fake["md5"]))] == next(iter(fake["md5"].values()))
    assert (tmp_path / "raw" / name).is_dir()


def test_svhn_digit_zero_is_label_zero(tmp_path):
    fake = write_fake("svhn", tmp_path / "mirror")
    d = SOURCES["svhn"]({"mirror": str(tmp_path / "mirror"), "md5": fake["md5"]}, str(tmp_path / "raw"))
    assert d.train_y.min() == 0 and d.train_y.max() == 9


def test_http_mirror(tmp_path, http_mirror):
    folder, url = http_mirror
    fake = write_fake("cifar10", folder)
    d = SOURCES["cifar10"]({"mirror": url, "md5": fake["md5"]}, str(tmp_path / "raw"))
    np.testing.assert_array_equal(d.train_x, fake["train_x"])
    assert d.meta["downloads"]["cifar-10-python.tar.gz"] == url + "cifar-10-python.tar.gz"


@pytest.mark.parametrize("name,filename,official_md5", [
    ("cifar10", "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
    ("mnist", "train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
])
def test_official_checksums_by_default_reject_other_files(tmp_path, name, filename, official_md5):
    write_fake(name, tmp_path / "mirror")
    with pytest.raises(ChecksumError) as e:
        SOURCES[name]({"mirror": str(tmp_path / "mirror")}, str(tmp_path / "raw"))
    assert filename in str(e.value) and official_md5 in str(e.value)
    assert not list((tmp_path / "raw").rglob(filename + "*"))  # the bad download was discarded


@pytest.mark.parametrize("name,rel", [
    ("cifar10", "cifar-10-python.tar.gz"),
    ("cifar100", "cifar-100-python.tar.gz"),
    ("mnist", "MNIST/raw/t10k-labels-idx1-ubyte.gz"),
    ("svhn", "test_32x32.mat"),
])
def test_truncated_file_in_root_raises_checksum_error(tmp_path, name, rel):
    fake = write_fake(name, tmp_path / "mirror")
    bad = tmp_path / "raw" / name / rel
    bad.parent.mkdir(parents=True)
    data = (tmp_path / "mirror" / bad.name).read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ChecksumError) as e:
        SOURCES[name]({"mirror": str(tmp_path / "mirror"), "md5": fake["md5"]}, str(tmp_path / "raw"))
    assert str(bad) in str(e.value) and fake["md5"][bad.name] in str(e.value)


def test_corrupt_archive_from_mirror_raises_checksum_error(tmp_path):
    fake = write_fake("cifar100", tmp_path / "mirror")
    path = fake["path"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=fake["md5"][path.name]):
        SOURCES["cifar100"]({"mirror": str(path.parent), "md5": fake["md5"]}, str(tmp_path / "raw"))


@pytest.mark.parametrize("name,extracted", [
    ("cifar10", "cifar-10-batches-py/data_batch_1"),
    ("mnist", "MNIST/raw/train-images-idx3-ubyte"),
])
def test_bad_extracted_file_is_rebuilt_from_verified_download(tmp_path, name, extracted):
    fake = write_fake(name, tmp_path / "mirror")
    cfg = {"mirror": str(tmp_path / "mirror"), "md5": fake["md5"]}
    first = SOURCES[name](cfg, str(tmp_path / "raw"))
    p = tmp_path / "raw" / name / extracted
    p.write_bytes(p.read_bytes()[:100])
    shutil.rmtree(tmp_path / "mirror")  # no download possible: the local archive must do
    again = SOURCES[name](cfg, str(tmp_path / "raw"))
    np.testing.assert_array_equal(first.train_x, again.train_x)
    assert again.meta["downloads"]


def test_md5_for_an_unknown_file_name_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="md5: unknown file 'cifar.tgz'"):
        SOURCES["cifar10"]({"mirror": str(tmp_path), "md5": {"cifar.tgz": "0" * 32}}, str(tmp_path))


def test_unreachable_mirror_names_the_file_the_urls_and_the_mirror_setting(tmp_path):
    with pytest.raises(DataIntegrityError) as e:
        SOURCES["svhn"]({"mirror": str(tmp_path / "empty")}, str(tmp_path / "raw"))
    msg = str(e.value)
    assert re.search("test_32x32.mat|train_32x32.mat", msg)
    assert (tmp_path / "empty").as_uri() in msg and "mirror:" in msg


def test_torchvision_globals_stay_untouched(tmp_path):
    from torchvision.datasets import CIFAR10, MNIST, SVHN

    before = (list(MNIST.mirrors), list(MNIST.resources), CIFAR10.url, CIFAR10.tgz_md5,
              [list(r) for r in CIFAR10.train_list], {k: list(v) for k, v in SVHN.split_list.items()})
    for name in ("mnist", "cifar10", "svhn"):
        fake = write_fake(name, tmp_path / name)
        SOURCES[name]({"mirror": str(tmp_path / name), "md5": fake["md5"]}, str(tmp_path / "raw"))
    after = (list(MNIST.mirrors), list(MNIST.resources), CIFAR10.url, CIFAR10.tgz_md5,
             [list(r) for r in CIFAR10.train_list], {k: list(v) for k, v in SVHN.split_list.items()})
    assert before == after


# ------------------------------------------------------------------------------- imagefolder

CLASSES = ["zebra", "ant", "ant-b", "cat"]  # "ant-b" sorts before "ant/" as a string: order by parts


def imagefolder(tmp_path, files: dict, kind: str) -> Path:
    if kind == "directory":
        return fakedata.write_tree(tmp_path / "tree", files)
    if kind == "tar.gz":
        return fakedata.write_targz(tmp_path / "set.tar.gz", files, shuffle_seed=1)
    return fakedata.write_zip(tmp_path / "set.zip", files)


def test_imagefolder_directory_targz_and_zip_agree(tmp_path):
    files, expected = fakedata.imagefolder_files(CLASSES)
    results = [load_raw({"source": "imagefolder", "path": str(imagefolder(tmp_path, files, k))})
               for k in ("directory", "tar.gz", "zip")]
    for d in results:
        assert d.classes == sorted(CLASSES)
        assert d.train_x.shape == (3 * len(CLASSES), 3, 8, 6) and d.train_x.dtype == np.uint8
        assert d.train_y.dtype == np.int64
        for split in ("train", "test"):
            np.testing.assert_array_equal(getattr(d, f"{split}_x"), expected[f"{split}_x"])
            np.testing.assert_array_equal(getattr(d, f"{split}_y"), expected[f"{split}_y"])
    assert results[1].meta["sha256"] == fakedata.sha256(tmp_path / "set.tar.gz")


def test_imagefolder_top_folder_and_greyscale(tmp_path):
    files, expected = fakedata.imagefolder_files(["1", "0"], channels=1, top="mnist-png")
    d = load_raw({"source": "imagefolder", "path": str(fakedata.write_targz(tmp_path / "g.tgz", files))})
    assert d.train_x.shape == (6, 1, 8, 6) and d.meta["mode"] == "L" and d.meta["top"] == "mnist-png"
    np.testing.assert_array_equal(d.test_x, expected["test_x"])


def test_imagefolder_archive_with_dot_slash_member_names(tmp_path):
    files, expected = fakedata.imagefolder_files(["b", "a"])
    path = fakedata.write_targz(tmp_path / "dot.tgz", {"./" + k: v for k, v in files.items()})
    d = load_raw({"source": "imagefolder", "path": str(path)})
    np.testing.assert_array_equal(d.train_x, expected["train_x"])
    np.testing.assert_array_equal(d.test_y, expected["test_y"])


def test_imagefolder_without_test_folder_returns_no_test_split(tmp_path):
    files, expected = fakedata.imagefolder_files(["b", "a"], splits=("train",))
    d = load_raw({"source": "imagefolder", "path": str(fakedata.write_zip(tmp_path / "t.zip", files))})
    assert d.test_x is None and d.test_y is None
    np.testing.assert_array_equal(d.train_y, expected["train_y"])


def test_imagefolder_without_train_folder_uses_root_classes(tmp_path):
    files, expected = fakedata.imagefolder_files(["b", "a"], splits=("",), top="top")
    d = load_raw({"source": "imagefolder", "path": str(fakedata.write_tree(tmp_path / "tree", files))})
    assert d.classes == ["a", "b"] and d.test_x is None
    np.testing.assert_array_equal(d.train_x, expected["train_x"])


def test_imagefolder_mixed_modes_become_rgb(tmp_path):
    grey, _ = fakedata.imagefolder_files(["a"], channels=1, n_test=0, splits=("train",))
    colour, _ = fakedata.imagefolder_files(["b"], channels=3, n_test=0, splits=("train",))
    d = load_raw({"source": "imagefolder", "path": str(fakedata.write_tree(tmp_path / "t", {**grey, **colour}))})
    assert d.train_x.shape == (6, 3, 8, 6)
    a = d.train_x[d.train_y == 0]
    assert (a[:, 0] == a[:, 1]).all() and (a[:, 0] == a[:, 2]).all()


def test_imagefolder_mixed_sizes_error_names_the_file(tmp_path):
    files, _ = fakedata.imagefolder_files(["a", "b"], size=(8, 6))
    odd, _ = fakedata.imagefolder_files(["b"], size=(9, 6), n_train=1, splits=("train",), seed=3)
    files["train/b/999.png"] = odd["train/b/000.png"]
    path = fakedata.write_targz(tmp_path / "mixed.tar.gz", files)
    with pytest.raises(ValueError, match=r"train/b/999\.png is 6x9 but .* is 6x8"):
        load_raw({"source": "imagefolder", "path": str(path)})


def test_imagefolder_wrong_sha256_raises_checksum_error(tmp_path):
    files, _ = fakedata.imagefolder_files(["a", "b"])
    path = fakedata.write_zip(tmp_path / "set.zip", files)
    with pytest.raises(ChecksumError) as e:
        load_raw({"source": "imagefolder", "path": str(path), "sha256": "ab" * 32})
    assert str(path) in str(e.value) and "ab" * 32 in str(e.value)
    ok = load_raw({"source": "imagefolder", "path": str(path), "sha256": fakedata.sha256(path).upper()})
    assert ok.meta["checksum_verified"]


def test_imagefolder_undecodable_file_is_named(tmp_path):
    files, _ = fakedata.imagefolder_files(["a"], splits=("train",))
    files["train/a/broken.png"] = b"not a png"
    with pytest.raises(ValueError, match=r"train/a/broken\.png: cannot decode"):
        load_raw({"source": "imagefolder", "path": str(fakedata.write_tree(tmp_path / "t", files))})


def test_imagefolder_test_class_unknown_to_train_is_refused(tmp_path):
    files, _ = fakedata.imagefolder_files(["a"])
    files["test/zz/000.png"] = files["test/a/000.png"]
    with pytest.raises(ValueError, match="test class 'zz'"):
        load_raw({"source": "imagefolder", "path": str(fakedata.write_tree(tmp_path / "t", files))})
