"""The `imagefolder` source: images in a directory or an archive laid out as torchvision's ImageFolder.

Layout: `[top/]train/<class>/<file>` and `[top/]test/<class>/<file>`. Without a test/ folder the
source returns test_x=None; without a train/ folder the class folders at the root are the training
set (a test/ folder beside them is still the test split). Class indices follow the sorted class
names (torchvision's convention) and are the same for both splits; samples are ordered by path.

cfg keys (besides `source`):
  path    a directory, or a .tar / .tar.gz / .tgz / .tar.bz2 / .tar.xz / .zip archive (read
          without extracting it); a relative path is taken from the working directory.
  sha256  expected sha256 of the archive; a mismatch is a ChecksumError. The archive's actual
          sha256 is recorded in meta either way.
  image_size  0 (default): every image must already have one size. N > 0: each image is resized
          so that its shorter side is N (bilinear, Pillow) and centre-cropped to N x N, as
          torchvision's Resize(N) + CenterCrop(N) (ImageNet: 224). No augmentation either way.
  test_folder  the name of the test split's folder (default `test`; ImageNet's is `val`).
  storage  where the decoded uint8 arrays live: `memory` (one pass, every image decoded into a
          list and stacked), `memmap` (a pass over the names, then every image decoded straight
          into its row of a preallocated .npy file in the prepare stage's output folder, opened
          as a numpy memmap: disk space, not memory, for ImageNet's 1.28 M training images at
          224 px, ~193 GB), or `auto` (the default: memmap when the image files total more than
          AUTO_MEMMAP_GB, so every small dataset stays in memory). Both give the same arrays.
"""
from __future__ import annotations

import io
import os
import posixpath
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image
from tqdm import tqdm

from ..io import sha256_file, write_rows
from ..registry import ConfigError, DataIntegrityError
from .base import SOURCES, RawDataset
from .checksums import normalize_hash, verify_sha256

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".gif", ".tif", ".tiff", ".webp")
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F"}
SPLITS = ("train", "test")
PROGRESS_MIN_BYTES = 4 << 20  # show a progress bar from this archive / folder size on
STORAGES = ("auto", "memory", "memmap")
AUTO_MEMMAP_GB = 16  # storage auto: decode to a memmap when the image files exceed this many GiB


def clean_path(name: str) -> str:
    """Archive member name as a plain relative path ('./train/a/0.png' -> 'train/a/0.png')."""
    return posixpath.normpath(name.replace("\\", "/")).lstrip("/")


def is_image(rel: str) -> bool:
    """Image files by extension, skipping hidden files and macOS resource forks."""
    parts = rel.split("/")
    return (not any(p.startswith(".") or p == "__MACOSX" for p in parts)
            and rel.lower().endswith(IMG_EXTENSIONS))


def archive_kind(path: Path) -> str:
    if path.is_dir():
        return "directory"
    name = path.name.lower()
    if name.endswith(TAR_SUFFIXES):
        return "tar"
    if name.endswith(".zip"):
        return "zip"
    raise ConfigError(f"path: {path} is neither a directory nor a .tar/.tar.gz/.tgz/.zip archive")


def _progress(total: int, unit: str, desc: str, show: bool):
    return tqdm(total=total, unit=unit, unit_scale=True, desc=desc, disable=not show, leave=False)


def iter_files(path: Path, kind: str, read: bool = True) -> Iterator[tuple[str, bytes | None]]:
    """Yield (path relative to the root, bytes) for every image file, without extracting archives,
    and (folder path + "/", None) for every folder; read=False yields b"" for the bytes (a pass
    over the names: free for a directory or a zip, one read through a tar archive)."""
    if kind == "directory":
        for d in sorted(p for p in path.rglob("*") if p.is_dir()):
            yield d.relative_to(path).as_posix() + "/", None
        rels = sorted(str(p.relative_to(path).as_posix()) for p in path.rglob("*") if p.is_file())
        rels = [r for r in rels if is_image(r)]
        size = sum((path / r).stat().st_size for r in rels)
        with _progress(len(rels), "img", path.name, size >= PROGRESS_MIN_BYTES) as bar:
            for rel in rels:
                yield rel, (path / rel).read_bytes() if read else b""
                bar.update(1)
    elif kind == "zip":
        with zipfile.ZipFile(path) as z:
            for i in z.infolist():
                if i.is_dir():
                    yield clean_path(i.filename) + "/", None
            infos = [i for i in z.infolist() if not i.is_dir() and is_image(clean_path(i.filename))]
            show = path.stat().st_size >= PROGRESS_MIN_BYTES
            with _progress(len(infos), "img", path.name, show) as bar:
                for info in infos:
                    yield clean_path(info.filename), z.read(info) if read else b""
                    bar.update(1)
    else:  # tar, streamed: members are read in archive order, progress in compressed bytes
        size = path.stat().st_size
        with open(path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|*") as tar, \
                _progress(size, "B", path.name, size >= PROGRESS_MIN_BYTES) as bar:
            for m in tar:
                if m.isdir():
                    yield clean_path(m.name) + "/", None
                if m.isfile() and is_image(clean_path(m.name)):
                    yield clean_path(m.name), tar.extractfile(m).read() if read else b""
                bar.update(raw.tell() - bar.n)


def read_members(path: Path, kind: str, read: bool = True) -> Iterator[tuple[str, bytes | None]]:
    """`iter_files`, with a truncated or corrupt archive reported as the file it is."""
    try:
        yield from iter_files(path, kind, read)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as e:
        raise DataIntegrityError(f"{path}: truncated or corrupt {kind} archive ({type(e).__name__}: "
                                 f"{e}); expected a complete archive (declare its `sha256:` to have "
                                 "it checked before reading)") from e


def check_class_folders(path: Path, dirs: list[str], splits: dict[str, list[tuple[str, int]]],
                        classes: list[str], top: str | None, folders: tuple[str, str] = SPLITS) -> None:
    """Every class folder holds images, and a test/ split has a folder for every class."""
    prefix = f"{top}/" if top else ""
    for d in dirs:
        parts = d[len(prefix):].rstrip("/").split("/") if d.startswith(prefix) else []
        if len(parts) == 2 and parts[0] in folders:
            split, cls = SPLITS[folders.index(parts[0])], parts[1]
            if not any(c == cls for c, _ in splits[split]):
                raise DataIntegrityError(f"{path}: class folder {d} has no images (expected at "
                                         f"least one {', '.join(IMG_EXTENSIONS)} file)")
    if splits["test"]:
        missing = sorted(set(classes) - {c for c, _ in splits["test"]})
        if missing:
            raise DataIntegrityError(f"{path}: {folders[1]}/ has no folder for class(es) "
                                     f"{', '.join(missing)} (training classes: {', '.join(classes)})")


def centre_square(im: Image.Image, size: int) -> Image.Image:
    """Shorter side resized to `size` (bilinear), then the central size x size crop."""
    w, h = im.size
    scale = size / min(w, h)
    im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    left, top = (im.width - size) // 2, (im.height - size) // 2
    return im.crop((left, top, left + size, top + size))


def decode(data: bytes, where: str, size: int = 0) -> np.ndarray:
    """Pillow-decoded uint8 array: (H, W) for greyscale images, (H, W, 3) for colour ones;
    size > 0: resized and centre-cropped to size x size (`centre_square`)."""
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except Exception as e:  # noqa: BLE001 - Pillow raises many types; name the file either way
        raise DataIntegrityError(f"{where}: cannot decode image ({e}); expected a readable "
                                 f"{', '.join(IMG_EXTENSIONS)} file") from e
    if im.mode not in ("L", "RGB"):
        im = im.convert("L" if im.mode in GREY_MODES else "RGB")
    return np.asarray(centre_square(im, size) if size else im)


def strip_top(parts: list[list[str]], folders: tuple[str, str] = SPLITS) -> str | None:
    """Remove leading folders shared by every file (the optional `top/`); return them."""
    top = []
    while (parts and all(len(p) >= 3 for p in parts) and parts[0][0] not in folders
           and all(p[0] == parts[0][0] for p in parts)):
        top.append(parts[0][0])
        for p in parts:
            del p[0]
    return "/".join(top) or None


def assign_splits(rels: list[str], origin: str, folders: tuple[str, str] = SPLITS
                  ) -> tuple[dict[str, list[tuple[str, int]]], str | None]:
    """Map each file to (split, class); returns {split: [(class, index into rels)]} and the top
    folder. `folders` = the (train, test) folder names."""
    parts = [r.split("/") for r in rels]
    top = strip_top(parts, folders)
    has_train = any(p[0] == folders[0] and len(p) >= 3 for p in parts)
    out: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    for i, p in enumerate(parts):
        if p[0] in folders and len(p) >= 3:
            out[SPLITS[folders.index(p[0])]].append((p[1], i))
        elif not has_train and len(p) >= 2:
            out["train"].append((p[0], i))
        else:
            where = f"outside {folders[0]}/ and {folders[1]}/" if has_train else "not inside a class folder"
            raise DataIntegrityError(f"{origin}: {rels[i]} is {where} (expected [top/]{folders[0]}/<class>/<file>, "
                             f"[top/]{folders[1]}/<class>/<file>)")
    return out, top


def put_image(out: np.ndarray, i: int, a: np.ndarray) -> None:
    """out[i] = the decoded image a as (C, H, W); a greyscale image is repeated over the channels
    of a colour set."""
    out[i] = a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def stack_images(arrays: list[np.ndarray], channels: int) -> np.ndarray:
    """(N, C, H, W) uint8 of the decoded images."""
    h, w = arrays[0].shape[:2]
    out = np.empty((len(arrays), channels, h, w), dtype=np.uint8)
    for i, a in enumerate(arrays):
        put_image(out, i, a)
    return out


def decoded(path: Path, kind: str, image_size: int) -> Iterator[tuple[str, np.ndarray | None]]:
    """(path, decoded image) for every image in the tree's or archive's order and (folder path
    + "/", None) for every folder; every image must have the first one's size."""
    ref: tuple[str, tuple[int, int]] | None = None
    for rel, data in read_members(path, kind):
        if data is None:
            yield rel, None
            continue
        where = f"{path}:{rel}" if kind != "directory" else str(path / rel)
        a = decode(data, where, image_size)
        if ref is None:
            ref = (where, a.shape[:2])
        elif a.shape[:2] != ref[1]:
            (h, w), (rh, rw) = a.shape[:2], ref[1]
            raise DataIntegrityError(f"{where} is {w}x{h} but {ref[0]} is {rw}x{rh}: "
                             f"all images of an imagefolder dataset must share one size (or set the "
                             "dataset's `image_size:` to resize them)")
        yield rel, a


@dataclass
class Layout:
    """Where the (path-sorted) images go: {split: [(class, index into rels)]}, the optional top
    folder, the sorted class names and their indices."""

    splits: dict[str, list[tuple[str, int]]]
    top: str | None
    classes: list[str]
    index: dict[str, int]


def layout(path: Path, rels: list[str], dirs: list[str], folders: tuple[str, str]) -> Layout:
    """The splits and classes of the image paths `rels` (sorted by path), checked: at least one
    image, training classes, no test class without training images, no empty class folder."""
    if not rels:
        raise DataIntegrityError(f"{path}: no image files found (expected {', '.join(IMG_EXTENSIONS)} "
                                 "files in [top/]train/<class>/)")
    splits, top = assign_splits(rels, str(path), folders)
    classes = sorted({c for c, _ in splits["train"]})
    if not classes:
        raise DataIntegrityError(f"{path}: no training images ({folders[1]}/ only; expected [top/]train/<class>/)")
    index = {c: k for k, c in enumerate(classes)}
    for c, i in splits["test"]:
        if c not in index:
            raise DataIntegrityError(f"{path}: test class {c!r} ({rels[i]}) has no training images; "
                                     f"training classes: {', '.join(classes)}")
    check_class_folders(path, dirs, splits, classes, top, folders)
    return Layout(splits, top, classes, index)


def path_key(rel: str) -> list[str]:
    return rel.split("/")


def decode_in_memory(path: Path, kind: str, image_size: int, folders: tuple[str, str]
                     ) -> tuple[Layout, dict[str, np.ndarray | None]]:
    """One pass: every image decoded into a list, then stacked per split ({split: array})."""
    rels, arrays, dirs = [], [], []
    for rel, a in decoded(path, kind, image_size):
        if a is None:
            dirs.append(rel)
        else:
            rels.append(rel)
            arrays.append(a)
    order = sorted(range(len(rels)), key=lambda i: path_key(rels[i]))
    rels, arrays = [rels[i] for i in order], [arrays[i] for i in order]
    lay = layout(path, rels, dirs, folders)
    channels = 3 if any(a.ndim == 3 for a in arrays) else 1
    return lay, {name: stack_images([arrays[i] for _, i in items], channels) if items else None
                 for name, items in lay.splits.items()}


def decode_to_memmap(path: Path, kind: str, image_size: int, folders: tuple[str, str],
                     scratch: Path) -> tuple[Layout, dict[str, np.ndarray | None]]:
    """Two passes, never the dataset in memory: the names (and their layout checks), then every
    image decoded straight into its row of scratch/<split>_x.npy (a preallocated .npy memmap,
    3 channels; an all-greyscale set is cut to its first channel at the end, chunk by chunk).
    Returns the splits as read-only memmaps of those files."""
    rels, dirs = [], []
    for rel, data in read_members(path, kind, read=False):
        (dirs if data is None else rels).append(rel)
    rels.sort(key=path_key)
    lay = layout(path, rels, dirs, folders)
    slot = {rels[i]: (name, r) for name, items in lay.splits.items() for r, (_, i) in enumerate(items)}
    files = {name: scratch / f"{name}_x.npy" for name, items in lay.splits.items() if items}
    scratch.mkdir(parents=True, exist_ok=True)
    out: dict[str, np.ndarray] = {}
    colour = False
    for rel, a in decoded(path, kind, image_size):
        if a is None:
            continue
        if not out:  # the first image fixes the size
            out = {name: np.lib.format.open_memmap(f, mode="w+", dtype=np.uint8,
                                                   shape=(len(lay.splits[name]), 3, *a.shape[:2]))
                   for name, f in files.items()}
        name, r = slot[rel]
        put_image(out[name], r, a)
        colour |= a.ndim == 3
    for name, x in out.items():
        x.flush()
        if not colour:
            write_rows(files[name], x[:, :1])
    return lay, {name: np.load(files[name], mmap_mode="r") if name in files else None
                 for name in lay.splits}


def resolve_storage(storage: str, path: Path, kind: str, scratch: Path | None) -> str:
    """`memory` or `memmap` for the cfg's `storage`; auto = memmap when the image files total
    more than AUTO_MEMMAP_GB (compressed images decode to at least about as much)."""
    if storage not in STORAGES:
        raise ConfigError(f"storage: {storage!r} is not allowed; allowed: {', '.join(STORAGES)}")
    if storage == "auto":
        files = path.rglob("*") if kind == "directory" else [path]
        size = sum(p.stat().st_size for p in files if p.is_file())
        storage = "memmap" if size > AUTO_MEMMAP_GB * 2**30 else "memory"
    if storage == "memmap" and scratch is None:
        raise ConfigError(f"storage: memmap needs a scratch folder to decode {path} into (the prepare "
                          "stage gives its output folder); call load_imagefolder(..., scratch=...)")
    return storage


def load_imagefolder(path: str | os.PathLike, sha256: str | None = None, image_size: int = 0,
                     test_folder: str = "test", storage: str = "memory",
                     scratch: str | os.PathLike | None = None) -> RawDataset:
    """Read an ImageFolder tree or archive into a RawDataset (see the module docstring); with
    storage memmap its arrays are read-only memmaps of .npy files under `scratch`."""
    path = Path(path).expanduser()
    folders = ("train", test_folder)
    if not path.exists():
        raise DataIntegrityError(f"path: {path} does not exist (expected an ImageFolder directory "
                                 "or a .tar/.tar.gz/.tgz/.zip archive; a local copy the pipeline never "
                                 "downloads, such as ImageNet, is named by the dataset's `path:`)")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 0:
        raise ConfigError(f"image_size: expected an int >= 0 (0 = keep the images' size), got {image_size!r}")
    if not test_folder or "/" in test_folder or test_folder == "train":
        raise ConfigError(f"test_folder: expected one folder name other than 'train', got {test_folder!r}")
    kind = archive_kind(path)
    storage = resolve_storage(storage, path, kind, None if scratch is None else Path(scratch))
    meta: dict[str, Any] = {"origin": str(path.resolve()), "format": kind}
    if kind == "directory":
        if sha256:
            raise ConfigError(f"sha256: only an archive can be checked, but {path} is a directory")
        meta["checksum_verified"] = False
    else:
        if sha256:
            meta["sha256"] = verify_sha256(path, normalize_hash(sha256, "sha256", key="sha256"))
        else:
            meta["sha256"] = sha256_file(path)
        meta["checksum_verified"] = bool(sha256)

    if storage == "memmap":
        lay, xs = decode_to_memmap(path, kind, image_size, folders, Path(scratch))
    else:
        lay, xs = decode_in_memory(path, kind, image_size, folders)
    ys = {name: np.array([lay.index[c] for c, _ in items], dtype=np.int64) if items else None
          for name, items in lay.splits.items()}
    channels, h, w = xs["train"].shape[1:]
    meta.update({"top": lay.top, "mode": "RGB" if channels == 3 else "L",
                 "image_size": [h, w], "n_train": len(lay.splits["train"]),
                 "n_test": len(lay.splits["test"])})
    return RawDataset(xs["train"], ys["train"], xs["test"], ys["test"], lay.classes, meta)


@SOURCES.register("imagefolder")
def imagefolder_source(cfg: dict[str, Any], root: str, scratch: Path | None = None) -> RawDataset:
    if not cfg.get("path"):
        raise ConfigError("path: the imagefolder source needs `path` (a directory or an archive)")
    return load_imagefolder(cfg["path"], cfg.get("sha256"), cfg.get("image_size", 0),
                            cfg.get("test_folder", "test"), cfg.get("storage", "auto"), scratch)
