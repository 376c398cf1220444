"""Slow, obviously correct NumPy twins of the Rust kernels.

These are the test oracle and the benchmark baseline. They favor clarity over speed: distances are
computed from explicit differences in float64 (never the ``‖x‖²+‖c‖²−2x·c`` shortcut), and the
log-sum-exp is SciPy's. Memory grows with ``m × n``, so keep inputs small.

Formulas (Goodfellow et al. 2014, §5 and Table 1; Breuleux et al. 2011 for the estimator):

    log p(x) = logsumexp_j(−‖x − c_j‖² / (2σ²)) − log n − (d/2)·log(2πσ²)

and the exact k nearest rows of ``reference`` by squared Euclidean distance, ties broken by the lower
index.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sq_distances", "parzen_loglik", "nearest_neighbors"]


def sq_distances(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """All squared Euclidean distances between rows of ``x`` (m×d) and ``c`` (n×d), float64 (m×n)."""
    x = np.asarray(x, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    out = np.empty((x.shape[0], c.shape[0]))
    # Rows of x a few at a time: the explicit differences of all m·n pairs at once would take
    # m·n·d·8 bytes (5.6 GB for 300 × 3,000 MNIST images), and page faults made that the slow part.
    step = max(1, 2_000_000 // max(1, c.shape[0] * c.shape[1]))
    for i in range(0, x.shape[0], step):
        diff = x[i : i + step, None, :] - c[None, :, :]
        out[i : i + step] = np.einsum("mnd,mnd->mn", diff, diff)
    return out


def parzen_loglik(x: np.ndarray, centers: np.ndarray, sigma) -> np.ndarray:
    """Per-row Gaussian Parzen-window log-density in nats; shape (m,) or (s, m) for an array of σ."""
    from scipy.special import logsumexp

    x = np.asarray(x, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    n, d = centers.shape
    d2 = sq_distances(x, centers)
    sigmas = np.atleast_1d(np.asarray(sigma, dtype=np.float64))
    out = np.empty((sigmas.size, x.shape[0]))
    for i, s in enumerate(sigmas):
        out[i] = logsumexp(-d2 / (2.0 * s * s), axis=1) - np.log(n) - 0.5 * d * np.log(2.0 * np.pi * s * s)
    return out[0] if np.ndim(sigma) == 0 else out


def nearest_neighbors(queries: np.ndarray, reference: np.ndarray, k: int = 1):
    """Exact k nearest rows: (indices int64 m×k, squared distances float64 m×k), ties → lower index."""
    d2 = sq_distances(queries, reference)
    # A stable sort on distance keeps equal distances in index order: the documented tie-break.
    order = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return order.astype(np.int64), np.take_along_axis(d2, order, axis=1)
