"""Evaluation of a conditional generator G(z | y) (paper §7 item 1; Mirza & Osindero 2014, arXiv 1411.1784).

* :func:`balanced_labels` — the labels Table 1's samples are drawn with. Mirza & Osindero §4.1: "1000
  samples were drawn from each 10 class and a Gaussian Parzen window was fitted to these samples",
  so n samples get n/K labels of every class (uniform over classes, not the empirical class
  frequencies), then the usual protocol of Goodfellow et al. (2014) runs on them (σ on validation,
  mean test log-likelihood ± std/√N).
* :func:`class_rows_figure` — their Figure 2: "each row is conditioned on one label and each column is
  a different generated sample"; here the noise is the same down each column, so a column shows one
  style through all the classes.
* :func:`conditional_accuracy` — the fraction of samples generated for class c that a classifier calls
  c, overall and per class (with a ``predict_labels`` callable, e.g. the bundled MNIST classifier).
* :class:`CycledLabels` — G(z | y) seen as an unconditional G(z) for figures that only pass z (Figure 3's
  interpolations): block i of ``every`` rows gets class i mod K.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from .._checks import as_int
from ..common.grid import image_grid, save_png, to_uint8

__all__ = ["CycledLabels", "balanced_labels", "class_rows_figure", "conditional_accuracy", "n_classes_of"]


def n_classes_of(G) -> int:
    """K for a conditional generator (its ``n_classes``), 0 for an unconditional one."""
    return int(getattr(G, "n_classes", 0) or 0)


def balanced_labels(n: int, n_classes: int) -> np.ndarray:
    """(n,) int64 labels with every class ⌊n/K⌋ or ⌈n/K⌉ times, in blocks: 0…0 1…1 … (K−1)…(K−1)."""
    n, k = as_int(n, "n"), as_int(n_classes, "n_classes")
    if n < 0 or k < 1:
        raise ValueError(f"balanced_labels needs n >= 0 and n_classes >= 1; got n={n}, n_classes={k}")
    return np.sort(np.arange(n, dtype=np.int64) % k)


def _one_hot(labels: np.ndarray, k: int, device):
    import torch

    from ..train.conditional import one_hot

    return one_hot(torch.as_tensor(np.asarray(labels, np.int64)), k).to(device)


class CycledLabels:
    """``G'(z) = G(z | y)`` with y = (row index // every) mod K: a conditional G where only z is passed."""

    def __init__(self, G, n_classes: int, every: int):
        self.G, self.k, self.every = G, int(n_classes), max(1, int(every))

    def __call__(self, z):
        import torch

        rows = (torch.arange(z.shape[0]) // self.every) % self.k
        return self.G(z, _one_hot(rows.numpy(), self.k, z.device))


def class_rows_figure(
    G, noise_dim: int, prior: str, image_shape, path, *, cols: int = 10, seed: int = 0, device: str = "cpu"
) -> dict:
    """One row per class, ``cols`` columns; column j uses the same z_j in every row (fixed noise)."""
    import torch

    from ..train.models import sample_noise

    k = n_classes_of(G)
    if k < 1:
        raise ValueError("class_rows_figure needs a conditional generator (one with n_classes)")
    cols = as_int(cols, "cols")
    if cols < 1:
        raise ValueError(f"cols must be >= 1; got {cols}")
    z = sample_noise(cols, int(noise_dim), prior, generator=torch.Generator().manual_seed(int(seed)))  # (cols, k)
    z = z.repeat(k, 1).to(device)  # (K·cols, noise_dim): row r, column j is z_j
    labels = np.repeat(np.arange(k), cols)  # row r is class r
    with torch.no_grad():
        x = G(z, _one_hot(labels, k, device)).detach().to("cpu", torch.float32).numpy()  # (K·cols, D)
    save_png(image_grid(to_uint8(x, image_shape), k, cols, scale=2), path)
    return {"path": os.fspath(Path(path)), "rows": k, "cols": cols, "seed": int(seed)}


def conditional_accuracy(
    samples: np.ndarray, labels: np.ndarray, predict_labels: Callable[[np.ndarray], np.ndarray]
) -> dict:
    """How often a classifier calls a sample generated for class c "c": overall and per class.

    ``samples`` (n, D) in [0, 1], ``labels`` (n,) the classes they were generated for,
    ``predict_labels`` maps (m, D) images to (m,) predicted classes."""
    samples = np.asarray(samples)
    labels = np.asarray(labels).astype(np.int64).ravel()
    if samples.ndim != 2 or samples.shape[0] != labels.shape[0] or labels.shape[0] == 0:
        raise ValueError(
            f"samples (n, D) and labels (n,) must have the same n >= 1; got {samples.shape} and {labels.shape}"
        )
    pred = np.asarray(predict_labels(samples)).astype(np.int64).ravel()
    if pred.shape != labels.shape:
        raise ValueError(f"predict_labels returned shape {pred.shape}; expected {labels.shape}")
    hit = pred == labels
    per_class = {int(c): float(hit[labels == c].mean()) for c in np.unique(labels)}
    return {"accuracy": float(hit.mean()), "per_class": per_class, "n": int(labels.shape[0])}
