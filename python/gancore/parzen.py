"""Gaussian Parzen-window log-likelihood (Goodfellow et al. 2014, §5 and Table 1).

The paper estimates the test log-likelihood of a generator by fitting an isotropic Gaussian Parzen
window to n samples μ_1..μ_n drawn from G and averaging, over test points x,

    log p(x) = logsumexp_j(−‖x − μ_j‖² / (2σ²)) − log n − (d/2)·log(2πσ²)     (nats)

This module is the friendly front of the Rust kernel: it checks arguments and hands C-contiguous
arrays to ``gancore._core``. The σ cross-validation protocol of the paper lives in
``gancore.evaluate.table1``.
"""

from __future__ import annotations

import numpy as np

from . import _core
from ._checks import as_n_threads, as_sigmas, check_same_width, checked_matrix, kernel_pair

__all__ = ["parzen_loglik"]


def parzen_loglik(x, centers, sigma, *, n_threads: int = 0) -> np.ndarray:
    """Log-density of each row of ``x`` under a Gaussian Parzen window on ``centers``, in nats.

    Parameters
    ----------
    x : array (m, d) of float32 or float64
        Points to evaluate (e.g. test images on the [0, 1] pixel scale). Any memory layout.
    centers : array (n, d) of float32 or float64, n ≥ 1
        Window centers (e.g. generator samples).
    sigma : positive float, or 1-D array of s positive floats
        Bandwidth(s). An array is served in a single pass over the data: each tile of distances is
        computed once and reused for every σ.
    n_threads : int, default 0
        Worker threads; 0 uses ``$GANCORE_NUM_THREADS`` if set, else all cores.

    Returns
    -------
    numpy.ndarray of float64
        Shape (m,) for a scalar ``sigma``; (s, m) for an array of s values, row i for ``sigma[i]``.

    Accuracy
    --------
    The log-sum-exp is accumulated in float64 around a running maximum, so it stays finite for any
    σ (a naive ``exp`` underflows to −inf below σ ≈ 0.05 on MNIST). Distances come from a float32
    (for float32 inputs) or float64 GEMM tile; the terms that dominate a row are recomputed exactly
    in float64 from explicit differences, so float64 inputs match a float64 reference to ~1e-12
    relative. For float32 inputs each σ decides on its own which terms are recomputed (its error
    estimate is held to 1e-7 nats per row), so a σ gives the same value whether it is asked for alone
    or inside a grid, and [0,1]-scaled MNIST matches float64 to better than 1e-6 nats per row (the
    documented bound, which the fuzzer checks) for any σ.

    The GIL is released for the whole computation; Ctrl-C interrupts it between tiles.

    Examples
    --------
    >>> import numpy as np, gancore
    >>> rng = np.random.default_rng(0)
    >>> samples, test = rng.random((500, 4)), rng.random((3, 4))
    >>> gancore.parzen_loglik(test, samples, 0.2).shape
    (3,)
    >>> gancore.parzen_loglik(test, samples, [0.1, 0.2, 0.5]).shape
    (3, 3)
    """
    x, x_max = checked_matrix(x, "x")
    centers, centers_max = checked_matrix(centers, "centers")
    check_same_width(x, "x", centers, "centers")
    if centers.shape[0] == 0:
        raise ValueError("centers must have at least one row: a Parzen window needs ≥ 1 center")
    sigmas, scalar = as_sigmas(sigma)
    threads = as_n_threads(n_threads)
    x, centers = kernel_pair(x, x_max, "x", centers, centers_max, "centers")
    out = _core.parzen_loglik(x, centers, sigmas, threads)
    return out[0] if scalar else out
