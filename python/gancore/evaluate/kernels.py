"""The kernels the evaluation protocols call, passed in explicitly so that they may run sharded.

Every protocol of this package (Table 1's σ selection and test log-likelihood, the reference rows,
k-means, the memorization tests) computes through two functions with the signatures of
:func:`gancore.parzen_loglik` and :func:`gancore.nearest_neighbors`. They take them as a
:class:`Kernels` argument whose default, :data:`LOCAL`, is the plain in-process Rust kernels. Under
``torchrun``, :func:`gancore.distributed.sharding.sharded_kernels` supplies twins that split the
query rows across the ranks and all-gather the answers, so the same protocol code runs on W
processes and every rank sees the whole result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..neighbors import nearest_neighbors
from ..parzen import parzen_loglik

__all__ = ["LOCAL", "Kernels"]


@dataclass(frozen=True)
class Kernels:
    """``parzen_loglik(x, centers, sigma, *, n_threads)`` and ``nearest_neighbors(queries, reference, k,
    *, n_threads)``, with the meaning and return values of the public functions of the same names."""

    parzen_loglik: Callable = parzen_loglik
    nearest_neighbors: Callable = nearest_neighbors
    name: str = "local"


LOCAL = Kernels()
