"""Datasets as float32 arrays in [0, 1] with the splits of Goodfellow et al. (2014), checksum-verified.

    load_split("mnist", "train")          # (50000, 784): train[0:50000]          (paper §5 / mnist.yaml)
    load_split("mnist", "valid")          # (10000, 784): train[50000:60000]
    load_split("cifar10", "test")         # (10000, 3072), flattened channel-major (C, H, W)
    load_split("tfd", "train", fold=0)    # TFD 48x48, rows whose fold code is 1 in fold 0
    load_split("tfd", "unlabeled")        # TFD's unlabelled rows (code 0), what the 2014 code trained on
    load_labels("mnist", "train")         # (50000,) int64 class of each row of load_split("mnist", "train")
    load_split("stacked-mnist", "train")  # (50000, 2352): three MNIST digits as R, G, B (see .stacked)

Where the files are looked for, in order: ``data_dir``, ``$GANCORE_DATA_DIR``, the per-user cache
(``$XDG_CACHE_HOME/gancore/datasets`` or ``~/.cache/gancore/datasets``), and for MNIST the copy that
ships inside the package (so the main job runs offline with no set-up). In each directory a dataset
lives in its own folder (``mnist/``, ``fashion-mnist/``, ``cifar-10/``, ``tfd/``), the files named as
their publishers name them; IDX files may be gzipped or not, CIFAR-10 may be the extracted
``cifar-10-batches-bin/`` folder or the ``cifar-10-binary.tar.gz`` tarball.

When a public dataset is found nowhere, a download from its canonical location is attempted into the
cache (``$GANCORE_DATA_URL`` replaces the canonical base with a mirror laid out the
same way; ``GANCORE_NO_DOWNLOAD=1`` disables downloads). Every load verifies the SHA-256
of the *uncompressed* content against ``bundled/SHA256SUMS``: a truncated or corrupted file is a
``ValueError`` naming the file, never a silently wrong dataset.

TFD (Toronto Face Database) is not public. Put the standard ``TFD_48x48.mat`` in ``<data dir>/tfd/``.
No published checksum exists for it, so instead of a hash its variables and shapes are checked. The
loader is tested on a small synthetic file in the same layout; it has not been run on the real file.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
import os
import tarfile
from importlib import resources
from pathlib import Path

import numpy as np

from ..common.cache import cache_root
from . import download, formats, stacked

log = logging.getLogger(__name__)

IMAGE_SHAPES: dict[str, tuple[int, int, int]] = {
    "mnist": (1, 28, 28),
    "fashion-mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
    "tfd": (1, 48, 48),
    "stacked-mnist": (3, 28, 28),
}
DATASETS = tuple(IMAGE_SHAPES)
SPLITS = ("train", "valid", "test")

# The folder each dataset lives in, inside any data directory.
FOLDERS = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "cifar10": "cifar-10", "tfd": "tfd"}
IDX_MEMBERS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_DIR = "cifar-10-batches-bin"
CIFAR_TARBALL = "cifar-10-binary.tar.gz"
CIFAR_MEMBERS = tuple(f"{CIFAR_DIR}/data_batch_{i}.bin" for i in range(1, 6)) + (f"{CIFAR_DIR}/test_batch.bin",)
TFD_FILE = "TFD_48x48.mat"

CANONICAL_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
    "cifar10": "https://www.cs.toronto.edu/~kriz",
}

# The paper's splits (mnist.yaml: train start 0 stop 50000, valid 50000..60000; CIFAR-10 likewise
# holds out the last 10,000 training images). Slices index the official training file.
_TRAIN_VALID = {"mnist": 50000, "fashion-mnist": 50000, "cifar10": 40000}


def load_split(dataset: str, split: str, *, data_dir=None, fold: int = 0) -> np.ndarray:
    """Return ``split`` of ``dataset`` as a fresh float32 array (N, C*H*W) with pixels in [0, 1].

    Raises ``ValueError`` for unknown names or corrupted files, ``FileNotFoundError`` (naming the
    files and directories) when the data cannot be found or downloaded.
    """
    _check_names(dataset, split, fold)
    roots = tuple(str(r) for r in search_roots(data_dir))
    if dataset == "tfd":
        images, folds = _load_tfd(roots)
        code = {"unlabeled": 0, "train": 1, "valid": 2, "test": 3}[split]
        return images[folds[:, fold] == code].astype(np.float32) / np.float32(255.0)
    if dataset == "stacked-mnist":
        return _stacked(split, roots)[0].astype(np.float32) / np.float32(255.0)
    train, test = _load_images(dataset, roots)
    cut = _TRAIN_VALID[dataset]
    part = {"train": train[:cut], "valid": train[cut:], "test": test}[split]
    # uint8 / 255 in float32: exactly the values pylearn2 produced with scale=True.
    return part.astype(np.float32) / np.float32(255.0)


def load_labels(dataset: str, split: str, *, data_dir=None) -> np.ndarray:
    """Return the class labels of ``split`` of ``dataset`` as a fresh int64 array (N,), row for row
    the labels of ``load_split(dataset, split)`` (MNIST and Fashion-MNIST: 0..9 as published; CIFAR-10:
    0..9 in ``batches.meta.txt``'s order).

    Class-conditional models (the paper's §7 item 1) and the classifier metrics need them. TFD's
    expression labels cover only its labelled folds and are not read: ``ValueError`` for "tfd".
    """
    _check_names(dataset, split, 0)
    if dataset == "tfd":
        raise ValueError("labels are not loaded for TFD; use mnist, fashion-mnist or cifar10")
    if dataset == "stacked-mnist":  # the mode 100·d_R + 10·d_G + d_B of each row
        return _stacked(split, tuple(str(r) for r in search_roots(data_dir)))[1].copy()
    train, test = _load_labels(dataset, tuple(str(r) for r in search_roots(data_dir)))
    cut = _TRAIN_VALID[dataset]
    part = {"train": train[:cut], "valid": train[cut:], "test": test}[split]
    return part.astype(np.int64)


def _check_names(dataset: str, split: str, fold: int) -> None:
    if dataset not in IMAGE_SHAPES:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    if split == "unlabeled" and dataset != "tfd":
        raise ValueError(f"only TFD has an 'unlabeled' split; {dataset} has {', '.join(SPLITS)}")
    if split not in SPLITS + ("unlabeled",):
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if dataset == "tfd":
        if not isinstance(fold, (int, np.integer)) or not 0 <= fold < 5:
            raise ValueError(f"TFD fold must be an integer in 0..4; got {fold!r}")
    elif fold != 0:
        raise ValueError(f"fold={fold!r} only applies to TFD; {dataset} has a single split")


def search_roots(data_dir=None) -> list[Path]:
    """The directories searched for datasets, in order (the bundled MNIST copy is not listed)."""
    roots = []
    if data_dir is not None:
        roots.append(Path(data_dir).expanduser())
    env = os.environ.get("GANCORE_DATA_DIR")
    if env:
        roots.append(Path(env).expanduser())
    roots.append(cache_dir())
    return roots


def cache_dir() -> Path:
    """The per-user cache where downloads go: ``$XDG_CACHE_HOME/gancore/datasets``."""
    return cache_root("datasets")


def bundled_dir() -> Path:
    """The folder inside the installed package that holds the MNIST gzip files."""
    return Path(str(resources.files("gancore.data") / "bundled"))


@functools.lru_cache(maxsize=1)
def checksums() -> dict[str, str]:
    """SHA-256 of the uncompressed content of every known file, keyed ``folder/member``."""
    text = (bundled_dir() / "SHA256SUMS").read_text()
    sums = {}
    for line in text.splitlines():
        if line.strip():
            digest, name = line.split()
            sums[name] = digest
    return sums


def verify_bytes(raw: bytes, key: str, source) -> bytes:
    """Raise ``ValueError`` unless ``sha256(raw)`` is the known checksum of ``key``."""
    expected = checksums()[key]
    actual = hashlib.sha256(raw).hexdigest()
    if actual != expected:
        raise ValueError(
            f"{source}: content checksum mismatch for {key} (sha256 {actual[:16]}…, expected {expected[:16]}…); "
            "the file is truncated or corrupted. Delete it and fetch a fresh copy."
        )
    return raw


# ---------------------------------------------------------------------------------------------
# IDX datasets (MNIST, Fashion-MNIST)
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _load_arrays(dataset: str, roots: tuple[str, ...], kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Decoded, verified uint8 (train, test) arrays of ``kind`` "images" or "labels", read-only and
    cached per process."""
    if dataset == "cifar10":
        column = 0 if kind == "images" else 1  # decode_cifar_batch gives (images, labels)
        members = _cifar_members(roots)
        train = np.concatenate([formats.decode_cifar_batch(members[m], m)[column] for m in CIFAR_MEMBERS[:5]])
        test = formats.decode_cifar_batch(members[CIFAR_MEMBERS[5]], CIFAR_MEMBERS[5])[column]
    else:
        dims = 3 if kind == "images" else 1
        train, test = (
            formats.decode_idx(_idx_member(dataset, name, roots), name)
            for name in (f"train-{kind}-idx{dims}-ubyte", f"t10k-{kind}-idx{dims}-ubyte")
        )
    train.flags.writeable = False
    test.flags.writeable = False
    return train, test


def _load_images(dataset: str, roots: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    return _load_arrays(dataset, roots, "images")


def _load_labels(dataset: str, roots: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    return _load_arrays(dataset, roots, "labels")


@functools.lru_cache(maxsize=1)
def _stacked(split: str, roots: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Stacked MNIST ``split`` as uint8 images and int64 modes, built from the same split of MNIST."""
    cut = _TRAIN_VALID["mnist"]
    (train, test), (train_y, test_y) = _load_images("mnist", roots), _load_labels("mnist", roots)
    base = {"train": (train[:cut], train_y[:cut]), "valid": (train[cut:], train_y[cut:]), "test": (test, test_y)}
    x, y = stacked.stack(*base[split], split)
    x.flags.writeable = False
    return x, y


def _idx_member(dataset: str, member: str, roots: tuple[str, ...]) -> bytes:
    """Find, read, gunzip and verify one IDX file, downloading it when it is nowhere."""
    folder = FOLDERS[dataset]
    key = f"{folder}/{member}"
    dirs = [Path(r) / folder for r in roots] + [Path(r) for r in roots]
    if dataset == "mnist":
        dirs.append(bundled_dir() / folder)
    for d in dirs:
        for path in (d / f"{member}.gz", d / member):
            if path.is_file():
                return verify_bytes(_read_maybe_gzip(path), key, path)
    dest = cache_dir() / folder / f"{member}.gz"
    url = f"{_base_url(dataset)}/{member}.gz"
    err = _try_download(url, dest, lambda p: verify_bytes(_read_maybe_gzip(p), key, url))
    if err is None:
        return verify_bytes(_read_maybe_gzip(dest), key, dest)
    raise FileNotFoundError(_missing_message(dataset, [f"{m}.gz" for m in IDX_MEMBERS], roots, url, err))


def _read_maybe_gzip(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: not a valid gzip file ({exc}); truncated or corrupted?") from None
    return raw


# ---------------------------------------------------------------------------------------------
# CIFAR-10 (binary version)
# ---------------------------------------------------------------------------------------------


def _cifar_members(roots: tuple[str, ...]) -> dict[str, bytes]:
    """The six verified batch files, from an extracted folder or straight out of the tarball."""
    folder = FOLDERS["cifar10"]
    for root in roots:
        for d in (Path(root) / folder, Path(root)):
            if all((d / m).is_file() for m in CIFAR_MEMBERS):
                return {m: verify_bytes((d / m).read_bytes(), f"{folder}/{m}", d / m) for m in CIFAR_MEMBERS}
            if (d / CIFAR_TARBALL).is_file():
                return _read_cifar_tarball(d / CIFAR_TARBALL)
    dest = cache_dir() / folder / CIFAR_TARBALL
    url = f"{_base_url('cifar10')}/{CIFAR_TARBALL}"
    err = _try_download(url, dest, _read_cifar_tarball)
    if err is None:
        return _read_cifar_tarball(dest)
    raise FileNotFoundError(_missing_message("cifar10", [CIFAR_TARBALL + f" (or {CIFAR_DIR}/*.bin)"], roots, url, err))


def _read_cifar_tarball(path: Path) -> dict[str, bytes]:
    folder = FOLDERS["cifar10"]
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for info in tar:
                if info.isfile() and info.name in CIFAR_MEMBERS:
                    found[info.name] = tar.extractfile(info).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .tar.gz ({exc}); truncated or corrupted?") from None
    missing = [m for m in CIFAR_MEMBERS if m not in found]
    if missing:
        raise ValueError(
            f"{path}: the tarball lacks {', '.join(missing)}; truncated or not the CIFAR-10 binary version?"
        )
    return {m: verify_bytes(found[m], f"{folder}/{m}", f"{path}:{m}") for m in CIFAR_MEMBERS}


# ---------------------------------------------------------------------------------------------
# TFD (not public: never downloaded)
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _load_tfd(roots: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    for root in roots:
        for path in (Path(root) / FOLDERS["tfd"] / TFD_FILE, Path(root) / TFD_FILE):
            if path.is_file():
                images, folds = formats.load_tfd_mat(path)
                images.flags.writeable = False
                return images, folds
    where = "\n".join(f"  {Path(r) / FOLDERS['tfd'] / TFD_FILE}" for r in roots)
    raise FileNotFoundError(
        f"TFD needs the file {TFD_FILE} (the Toronto Face Database, 48x48 version). It is not public and "
        f"cannot be downloaded; obtain it from its authors and put it at one of:\n{where}\n"
        "(pass --data-dir or set GANCORE_DATA_DIR to choose the directory)."
    )


# ---------------------------------------------------------------------------------------------
# Downloads and error messages
# ---------------------------------------------------------------------------------------------


def _base_url(dataset: str) -> str:
    mirror = os.environ.get("GANCORE_DATA_URL")
    if mirror:
        return f"{mirror.rstrip('/')}/{FOLDERS[dataset]}"
    return CANONICAL_URLS[dataset]


def _try_download(url: str, dest: Path, verify) -> Exception | None:
    """Download ``url`` into ``dest``; return the exception instead of raising on network trouble.

    A download whose content fails verification is an error in its own right (``ValueError``) and
    is raised: a mirror serving the wrong bytes must not look like "no network".
    """
    if os.environ.get("GANCORE_NO_DOWNLOAD"):
        return RuntimeError("downloads disabled by GANCORE_NO_DOWNLOAD")
    try:
        download.download_verified(url, dest, verify)
    except OSError as exc:
        log.warning("download of %s failed: %s", url, exc)
        return exc
    return None


def _missing_message(dataset: str, files: list[str], roots, url: str, err: Exception) -> str:
    folder = FOLDERS[dataset]
    where = "\n".join(f"  {Path(r) / folder}/" for r in roots)
    return (
        f"{dataset} was not found and could not be downloaded from {url} ({err}).\n"
        f"It needs the files {', '.join(files)}; put them in one of:\n{where}\n"
        "(pass --data-dir / data_dir=, or set GANCORE_DATA_DIR, to choose the directory)."
    )
