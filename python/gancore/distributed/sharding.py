"""The Parzen and k-NN kernels with their query rows split across the ranks of a ``torchrun`` job.

:func:`sharded_parzen_loglik` and :func:`sharded_nearest_neighbors` run the Rust kernel on each rank's
contiguous slice of the query rows and all-gather the rows, so every rank holds the whole answer (the
next step of a protocol, e.g. the choice of σ, runs on every rank). A query row's result depends
only on that row and the reference set, with one caveat for the Parzen kernel, see
:func:`sharded_parzen_loglik`. :func:`sharded_kernels` packs both for the evaluation protocols
(:class:`gancore.evaluate.kernels.Kernels`).
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist

from .. import _core
from .group import Dist, current

# Query rows per block of the Rust Parzen kernel, read from the core: shards made of whole blocks put
# every row in the same block, beside the same rows, as one call would.
PARZEN_QUERY_BLOCK = _core.PARZEN_QUERY_BLOCK


def sharded_kernels():
    """The evaluation protocols' kernels (:class:`~gancore.evaluate.kernels.Kernels`), sharded over
    the current process group; without one they are the plain kernels."""
    from ..evaluate.kernels import Kernels

    return Kernels(sharded_parzen_loglik, sharded_nearest_neighbors, name="sharded")


def kernel_threads(n_threads: int, d: Dist | None = None) -> int:
    """Kernel threads per rank: ``n_threads`` when given, else ``$GANCORE_NUM_THREADS``, else this
    machine's cores divided among the ranks on it (so W ranks do not each start one thread per core)."""
    d = d or current()
    if n_threads or not d.enabled or os.environ.get("GANCORE_NUM_THREADS"):
        return n_threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(d.local_world_size, 1))


def _block_rows(n: int, block: int, d: Dist) -> tuple[int, int]:
    """This rank's rows ``[lo, hi)`` of ``n``, in whole blocks of ``block`` rows."""
    blocks = -(-n // block)
    b0, b1 = d.rows(blocks)
    return min(b0 * block, n), min(b1 * block, n)


def _all_gather_rows(part: np.ndarray, sizes: list[int], axis: int) -> np.ndarray:
    """Concatenate every rank's ``part`` along ``axis`` (rank order), on every rank."""
    width = max(sizes)
    pad = [(0, 0)] * part.ndim
    pad[axis] = (0, width - part.shape[axis])
    t = torch.from_numpy(np.ascontiguousarray(np.pad(part, pad)))
    out = [torch.empty_like(t) for _ in sizes]
    dist.all_gather(out, t)
    return np.concatenate([o.numpy().take(np.arange(s), axis=axis) for o, s in zip(out, sizes)], axis=axis)


def sharded_parzen_loglik(x, centers, sigma, *, n_threads: int = 0) -> np.ndarray:
    """:func:`gancore.parzen_loglik` with the rows of ``x`` split across the ranks; every rank returns
    the whole result. Without a process group it is the plain call.

    Rank r evaluates a contiguous run of whole 512-row query blocks of the kernel, so each row is
    computed in the same block as in a one-process call. The result equals the one-process call
    bit for bit when both split the centers between threads the same way. The kernel splits them
    only when a call has fewer than 2 × threads query blocks, and then the one-process result
    itself changes with ``n_threads`` (by up to ~1e-8 nats in float32). Giving each of W ranks
    1/W of the threads and of the blocks keeps the split identical. ``n_threads`` is per rank; 0
    divides the machine's cores among its ranks (:func:`kernel_threads`).
    """
    from .._checks import as_matrix, as_sigmas, check_same_width
    from ..parzen import parzen_loglik

    d = current()
    threads = kernel_threads(n_threads, d)
    if not d.enabled:
        return parzen_loglik(x, centers, sigma, n_threads=threads)
    # Check the whole input on every rank, so a bad argument raises everywhere, not only on the
    # ranks whose slice holds it (the others would wait in the gather until the timeout).
    x = as_matrix(x, "x")
    check_same_width(x, "x", as_matrix(centers, "centers"), "centers")
    as_sigmas(sigma)
    spans = [_block_rows(x.shape[0], PARZEN_QUERY_BLOCK, Dist(r, d.world_size)) for r in range(d.world_size)]
    lo, hi = spans[d.rank]
    part = parzen_loglik(x[lo:hi], centers, sigma, n_threads=threads)  # (hi-lo,) or (s, hi-lo)
    return _all_gather_rows(part, [b - a for a, b in spans], axis=part.ndim - 1)


def sharded_nearest_neighbors(queries, reference, k: int = 1, *, n_threads: int = 0):
    """:func:`gancore.nearest_neighbors` with the query rows split across the ranks; every rank returns
    the whole ``(indices, sq_distances)``. The kernel's answer is exact (float64 re-measured
    distances, ties to the lower index), so it equals the one-process call bit for bit for any split.
    """
    from .._checks import as_matrix, check_same_width
    from ..neighbors import nearest_neighbors

    d = current()
    threads = kernel_threads(n_threads, d)
    if not d.enabled:
        return nearest_neighbors(queries, reference, k, n_threads=threads)
    queries = as_matrix(queries, "queries")
    check_same_width(queries, "queries", as_matrix(reference, "reference"), "reference")
    spans = [Dist(r, d.world_size).rows(queries.shape[0]) for r in range(d.world_size)]
    lo, hi = spans[d.rank]
    idx, d2 = nearest_neighbors(queries[lo:hi], reference, k, n_threads=threads)  # (hi-lo, k) each
    sizes = [b - a for a, b in spans]
    return _all_gather_rows(idx, sizes, 0), _all_gather_rows(d2, sizes, 0)
