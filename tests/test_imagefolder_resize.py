"""The imagefolder source on an ImageNet-style tree: train/ and val/ class folders, images of
mixed sizes resized (shorter side) and centre-cropped to `image_size`, from a directory or a
tarball; a missing local copy is a clear error."""
from __future__ import annotations

import tarfile

import numpy as np
import pytest
from PIL import Image

from trainrepro.config import validate_dataset
from trainrepro.data.base import load_raw
from trainrepro.registry import ConfigError, DataIntegrityError

SIZES = [(448, 224), (300, 260), (224, 500)]  # (width, height): wide, near-square, tall


def striped(w: int, h: int) -> Image.Image:
    """Red left quarter, green middle half, blue right quarter (columns)."""
    a = np.zeros((h, w, 3), dtype=np.uint8)
    a[:, : w // 4, 0] = 255
    a[:, w // 4: w - w // 4, 1] = 255
    a[:, w - w // 4:, 2] = 255
    return Image.fromarray(a)


def imagenet_tree(root):
    for split in ("train", "val"):
        for cls in ("n01440764", "n01443537"):
            d = root / "imagenet" / split / cls
            d.mkdir(parents=True)
            for k, (w, h) in enumerate(SIZES[: 3 if split == "train" else 1]):
                striped(w, h).save(d / f"{cls}_{k}.png")   # lossless: exact colours
    return root / "imagenet"


def cfg(path, **over):
    return {"source": "imagefolder", "path": str(path), "image_size": 224, "test_folder": "val", **over}


def test_an_imagenet_style_tree_is_resized_and_centre_cropped_to_224(tmp_path):
    d = cfg(imagenet_tree(tmp_path))
    validate_dataset("datasets.imagenet", d)
    raw = load_raw(d, str(tmp_path))
    assert raw.train_x.shape == (6, 3, 224, 224) and raw.test_x.shape == (2, 3, 224, 224)
    assert raw.classes == ["n01440764", "n01443537"]
    assert list(raw.train_y) == [0, 0, 0, 1, 1, 1] and list(raw.test_y) == [0, 1]
    wide = raw.train_x[0]   # 448x224: height already 224, the centre 224 columns are all green
    assert (wide[1] == 255).all() and (wide[0] == 0).all() and (wide[2] == 0).all()
    tall = raw.train_x[2]   # 224x500: width 224 kept, a centre crop of rows keeps all the stripes
    assert tall[0, :, 0].min() == 255 and tall[2, :, -1].min() == 255


def test_the_same_tree_as_a_tarball_gives_the_same_arrays(tmp_path):
    tree = imagenet_tree(tmp_path)
    tar = tmp_path / "imagenet.tar"
    with tarfile.open(tar, "w") as t:
        t.add(tree, arcname="imagenet")
    a, b = load_raw(cfg(tree), str(tmp_path)), load_raw(cfg(tar), str(tmp_path))
    np.testing.assert_array_equal(a.train_x, b.train_x)
    np.testing.assert_array_equal(a.test_x, b.test_x)


def test_mixed_sizes_without_image_size_and_a_missing_copy_are_clear_errors(tmp_path):
    tree = imagenet_tree(tmp_path)
    with pytest.raises(DataIntegrityError, match="image_size"):
        load_raw(cfg(tree, image_size=0), str(tmp_path))
    with pytest.raises(DataIntegrityError, match="does not exist.*path:"):
        load_raw(cfg(tmp_path / "no_imagenet_here"), str(tmp_path))
    with pytest.raises(ConfigError, match="image_size"):
        validate_dataset("datasets.imagenet", cfg(tree, image_size=-1))
    with pytest.raises(DataIntegrityError, match="outside train/ and test/"):  # val/ is not the test split
        load_raw(cfg(tree, test_folder="test"), str(tmp_path))
