"""Datasets as float32 arrays in [0, 1] with the splits of Goodfellow et al. (2014), checksum-verified.

    from gancore.data import load_split
    load_split("mnist", "train")          # (50000, 784): train[0:50000], as the 2014 mnist.yaml
    load_labels("mnist", "train")         # (50000,) int64, the digit of each of those rows

* :mod:`.loaders` — the splits, the search path, the bundled MNIST copy, checksum verification;
* :mod:`.formats` — decoders of the raw formats (IDX, CIFAR-10 binary, TFD ``.mat``);
* :mod:`.download` — verified, atomic downloads of the public datasets;
* :mod:`.stacked` — Stacked MNIST (three MNIST digits as R, G, B; 1,000 modes), built from the bundled MNIST;
* ``bundled/`` — MNIST shipped inside the package, with its SHA-256 sums.

Needs NumPy only.
"""

from .loaders import (
    DATASETS,
    IMAGE_SHAPES,
    SPLITS,
    bundled_dir,
    cache_dir,
    checksums,
    load_labels,
    load_split,
    search_roots,
)

__all__ = [
    "DATASETS",
    "IMAGE_SHAPES",
    "SPLITS",
    "bundled_dir",
    "cache_dir",
    "checksums",
    "load_labels",
    "load_split",
    "search_roots",
]
