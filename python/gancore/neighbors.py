"""Exact nearest-neighbor search (Figure 2's "nearest training example" and memorization checks).

Goodfellow et al. (2014), Figure 2: "The rightmost column shows the nearest training example of the
neighboring sample, in order to demonstrate that the model has not memorized the training set."
Nearness is squared Euclidean distance in raw pixel space, searched exhaustively over the training
set. This module checks arguments and calls the Rust kernel in ``gancore._core``.
"""

from __future__ import annotations

from . import _core
from ._checks import as_int, as_n_threads, check_same_width, checked_matrix, kernel_pair

__all__ = ["nearest_neighbors"]


def nearest_neighbors(queries, reference, k: int = 1, *, n_threads: int = 0):
    """Exact k nearest rows of ``reference`` for every row of ``queries``.

    Parameters
    ----------
    queries : array (m, d) of float32 or float64
    reference : array (n, d) of float32 or float64, n ≥ 1
    k : int, 1 ≤ k ≤ n
    n_threads : int, default 0 (``$GANCORE_NUM_THREADS`` if set, else all cores)

    Returns
    -------
    indices : numpy.ndarray of int64, shape (m, k)
    sq_distances : numpy.ndarray of float64, shape (m, k)
        Each row sorted ascending; equal distances are ordered by the lower reference index.

    Exactness
    ---------
    A fast float32/float64 GEMM pass (‖q‖² + ‖r‖² − 2q·r) only *screens* candidates, using a
    rigorous bound on its rounding error; every candidate that could still be among the k nearest is
    re-measured in float64 from explicit differences, and those exact values are what is returned.
    So the distances equal a float64 brute-force computation (to ~1e-15 relative), also for
    near-duplicates where the float32 shortcut alone can be off by tens of percent.

    The GIL is released for the whole computation; Ctrl-C interrupts it between tiles.
    """
    queries, queries_max = checked_matrix(queries, "queries")
    reference, reference_max = checked_matrix(reference, "reference")
    check_same_width(queries, "queries", reference, "reference")
    n = reference.shape[0]
    if n == 0:
        raise ValueError("reference must have at least one row")
    k = as_int(k, "k", low=1, high=n, note=" (the number of reference rows)")
    threads = as_n_threads(n_threads)
    queries, reference = kernel_pair(queries, queries_max, "queries", reference, reference_max, "reference")
    return _core.nearest_neighbors(queries, reference, k, threads)
