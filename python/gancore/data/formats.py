"""Decoders for the raw dataset formats: IDX (MNIST, Fashion-MNIST), CIFAR-10 binary, TFD ``.mat``.

Each decoder takes the *uncompressed* bytes (or a path for the ``.mat`` file) and returns uint8
arrays; scaling to [0, 1], splitting and checksum verification live in :mod:`gancore.data`.
Every decoder checks the header against the payload length, so a truncated file is an error here
even before its checksum is compared.
"""

from __future__ import annotations

import numpy as np

IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
CIFAR_RECORD = 1 + 3 * 32 * 32  # one label byte, then the R, G and B planes of 32x32


def decode_idx(raw: bytes, name: str) -> np.ndarray:
    """Decode an IDX file (big-endian magic, counts, dims, then uint8 data) into a uint8 array.

    Images come back as (N, rows*cols) flattened row-major, labels as (N,).
    """
    if len(raw) < 8:
        raise ValueError(f"{name}: {len(raw)} bytes is too short for an IDX header (truncated file?)")
    magic, count = np.frombuffer(raw[:8], dtype=">u4")
    if magic == IDX_IMAGES_MAGIC:
        rows, cols = np.frombuffer(raw[8:16], dtype=">u4")
        header, shape = 16, (int(count), int(rows) * int(cols))
    elif magic == IDX_LABELS_MAGIC:
        header, shape = 8, (int(count),)
    else:
        raise ValueError(f"{name}: bad IDX magic number {magic} (expected {IDX_IMAGES_MAGIC} or {IDX_LABELS_MAGIC})")
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise ValueError(
            f"{name}: IDX header announces {expected} bytes but the file has {len(raw)} (truncated or corrupted)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def decode_cifar_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode one CIFAR-10 binary batch into (images (N, 3072) uint8, labels (N,) uint8).

    The 3072 bytes of a record are the R, G, B planes of 32x32 in that order, which is exactly the
    channel-major (C, H, W) flattening that :data:`gancore.data.IMAGE_SHAPES` promises.
    """
    if len(raw) == 0 or len(raw) % CIFAR_RECORD:
        raise ValueError(
            f"{name}: {len(raw)} bytes is not a whole number of {CIFAR_RECORD}-byte CIFAR-10 records (truncated?)"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    return records[:, 1:], records[:, 0]


def load_tfd_mat(path) -> tuple[np.ndarray, np.ndarray]:
    """Read the standard ``TFD_48x48.mat``: ``images`` (N, 48, 48) uint8 and ``folds`` (N, 5).

    Fold codes follow the file's convention (as pylearn2's TFD class reads them): 0 unlabelled,
    1 train, 2 valid, 3 test. Needs SciPy (``scipy.io.loadmat``), imported here and only here.
    """
    try:
        from scipy.io import loadmat
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading the TFD .mat file needs SciPy: pip install scipy") from exc
    try:
        mat = loadmat(str(path))
    except Exception as exc:
        raise ValueError(f"{path}: could not read it as a MATLAB .mat file ({exc}); truncated or corrupted?") from None
    for key in ("images", "folds"):
        if key not in mat:
            keys = sorted(k for k in mat if not k.startswith("__"))
            raise ValueError(f"{path}: no '{key}' variable; this is not the 48x48 TFD file (it has {keys})")
    images = np.asarray(mat["images"])
    folds = np.asarray(mat["folds"])
    if images.ndim != 3 or images.shape[1:] != (48, 48):
        raise ValueError(f"{path}: 'images' has shape {images.shape}, expected (N, 48, 48)")
    if folds.shape != (images.shape[0], 5):
        raise ValueError(f"{path}: 'folds' has shape {folds.shape}, expected ({images.shape[0]}, 5)")
    return images.reshape(images.shape[0], 48 * 48).astype(np.uint8, copy=False), folds.astype(np.int64)
