"""Stacked MNIST: three MNIST digits as the R, G, B channels of one 28×28 color image, 1,000 modes.

The mode-collapse benchmark of Metz et al. (2016, "Unrolled generative adversarial networks", §3.3),
as VEEGAN (Srivastava et al. 2017, §5) and PacGAN (Lin et al. 2018, §5) use it: each example takes
three digits drawn independently, with replacement, from one MNIST split, and its mode is the triple
(d_R, d_G, d_B), written as the label 100·d_R + 10·d_G + d_B ∈ 0..999.

    load_split("stacked-mnist", "train")    # (50000, 2352) float32, (3, 28, 28) channel-major
    load_labels("stacked-mnist", "train")   # (50000,) int64 in 0..999

Each split is built from the same split of MNIST (train from MNIST train[0:50000], valid from
train[50000:60000], test from the official test set) with its own fixed seed, so every machine gets
the same images. Sizes: 50,000 train, 10,000 valid, 10,000 test (PacGAN's code draws 128,000 training
triples; 50,000 keeps a training set at 470 MB of float32 and one epoch as long as MNIST's).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SIZES", "SEEDS", "stack_indices", "stack"]

SIZES = {"train": 50000, "valid": 10000, "test": 10000}
# One seed per split, fixed forever: changing one changes the dataset.
SEEDS = {"train": 20160, "valid": 20161, "test": 20162}


def stack_indices(n_base: int, split: str) -> np.ndarray:
    """(SIZES[split], 3) int64 rows of the base split that make each example's R, G and B channels."""
    if split not in SIZES:
        raise ValueError(f"unknown split {split!r} for stacked-mnist; expected one of {', '.join(SIZES)}")
    rng = np.random.default_rng(SEEDS[split])
    return rng.integers(0, n_base, size=(SIZES[split], 3), dtype=np.int64)


def stack(images: np.ndarray, labels: np.ndarray, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Stacked images (n, 3·784), same dtype as ``images`` (n_base, 784), and their int64 mode labels."""
    idx = stack_indices(images.shape[0], split)
    x = images[idx].reshape(idx.shape[0], 3 * images.shape[1])  # (n, 3, 784) → (n, 2352): C, H, W order
    d = labels[idx].astype(np.int64)
    return x, 100 * d[:, 0] + 10 * d[:, 1] + d[:, 2]
