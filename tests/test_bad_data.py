"""Bad data gets a clear error naming the file and what was expected, never a traceback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import train_cfg
from fakedata import imagefolder_files, png_bytes, write_targz, write_tree

from trainrepro.data.imagefolder import load_imagefolder
from trainrepro.data.loader import DeviceData
from trainrepro.data.prepared import load_prepared
from trainrepro.engine import Trainer
from trainrepro.methods import METHODS
from trainrepro.papers.mentornet.net import load_mentor
from trainrepro.registry import DataIntegrityError

REPO = Path(__file__).resolve().parent.parent


def good_files(**kw):
    return imagefolder_files(["cat", "dog"], n_train=3, n_test=2, **kw)[0]


def truncated_archive(tmp: Path) -> Path:
    p = write_targz(tmp / "data.tar.gz", good_files())
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return p


def corrupt_image(tmp: Path) -> Path:
    files = good_files()
    files["train/cat/001.png"] = b"\x89PNG not really"
    return write_tree(tmp / "tree", files)


def empty_class_folder(tmp: Path) -> Path:
    root = write_tree(tmp / "tree", good_files())
    (root / "train" / "bird").mkdir()
    return root


def missing_test_class(tmp: Path) -> Path:
    files = {k: v for k, v in good_files().items() if not k.startswith("test/dog/")}
    return write_tree(tmp / "tree", files)


def mixed_sizes(tmp: Path) -> Path:
    files = good_files()
    files["train/dog/000.png"] = png_bytes(torch.zeros(3, 5, 5, dtype=torch.uint8).numpy())
    return write_tree(tmp / "tree", files)


@pytest.mark.parametrize("make, pattern", [
    (truncated_archive, r"data\.tar\.gz: truncated or corrupt tar archive .*expected a complete archive"),
    (corrupt_image, r"train/cat/001\.png: cannot decode image .*expected a readable"),
    (lambda tmp: tmp / "nowhere.tar.gz", r"nowhere\.tar\.gz does not exist \(expected an ImageFolder"),
    (empty_class_folder, r"class folder train/bird/ has no images"),
    (missing_test_class, r"test/ has no folder for class\(es\) dog"),
    (mixed_sizes, r"train/dog/000\.png is 5x5 but .* is 6x8: all images"),
])
def test_bad_imagefolder_input_names_the_file_and_what_was_expected(tmp_path, make, pattern):
    with pytest.raises(DataIntegrityError, match=pattern):
        load_imagefolder(make(tmp_path))


def test_the_prepare_stage_reports_bad_data_in_one_line_without_a_traceback(tmp_path):
    archive = truncated_archive(tmp_path)
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["datasets"]["broken"] = {"source": "imagefolder", "path": str(archive)}
    raw["profiles"]["tiny"]["studies"] = {"foundation": [
        {"datasets": ["broken"], "noise": [0.0], "methods": ["fullmodel"], "seeds": [0]}]}
    raw["profile"] = "tiny"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    r = subprocess.run([sys.executable, str(REPO / "stages" / "prepare.py")], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert str(archive) in lines[0] and "truncated or corrupt" in lines[0]


@pytest.mark.parametrize("content", [b"", b"not a torch file at all", b"PK\x03\x04garbage"])
def test_a_mentor_file_that_is_not_a_torch_file_is_named(tmp_path, content):
    bad = tmp_path / "mentor.pt"
    bad.write_bytes(content)
    with pytest.raises(DataIntegrityError, match=r"mentor\.pt: not a valid torch file .*expected a MentorNet"):
        load_mentor(bad)


def test_a_torch_file_that_is_not_a_mentor_is_named(tmp_path):
    bad = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, bad)
    with pytest.raises(DataIntegrityError, match="not a MentorNet file"):
        load_mentor(bad)


def test_a_checkpoint_that_is_not_a_torch_file_is_named(tmp_path, prepared_digits):
    data = DeviceData(load_prepared(prepared_digits, ("symmetric_incl", 0.0, 0)), "cpu")
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    t = Trainer(train_cfg(epochs=1), data, METHODS["fullmodel"], {}, run_dir=tmp_path)
    with pytest.raises(DataIntegrityError, match=r"checkpoint\.pt: not a valid torch file .*delete it"):
        t.fit()


def test_checkpoints_load_with_weights_only(tmp_path, prepared_digits):
    data = DeviceData(load_prepared(prepared_digits, ("symmetric_incl", 0.4, 0)), "cpu")
    t = Trainer(train_cfg(epochs=1), data, METHODS["spld"], {}, run_dir=tmp_path)
    t.method.on_epoch_start(0)
    t.save_checkpoint(0, 1.0)
    ck = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 0 and "numpy" in ck["rng"]
