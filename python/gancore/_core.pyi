"""Type information for the private native module ``gancore._core`` (Rust, PyO3).

Use the public wrappers ``gancore.parzen_loglik`` and ``gancore.nearest_neighbors``: they validate
and coerce arguments. These functions re-check everything and raise ``ValueError``/``TypeError``.
"""

import numpy as np
import numpy.typing as npt

__version__: str

def parzen_loglik(
    x: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    centers: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    sigmas: npt.NDArray[np.float64],
    n_threads: int,
) -> npt.NDArray[np.float64]:
    """Gaussian Parzen-window log-density of each row of ``x`` for each σ, shape (s, m).

    ``x`` (m×d) and ``centers`` (n×d, n ≥ 1) are C-contiguous arrays of one float dtype;
    ``sigmas`` a contiguous float64 1-D array of positive finite values; ``n_threads`` 0 = all cores.
    The GIL is released; Ctrl-C raises ``KeyboardInterrupt`` between tiles.
    """

def nearest_neighbors(
    queries: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    reference: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    k: int,
    n_threads: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Exact k nearest rows of ``reference`` per query row: (indices int64 (m, k), sq_distances float64 (m, k)).

    Ascending, ties broken by the lower index; 1 ≤ k ≤ n. The GIL is released; Ctrl-C raises
    ``KeyboardInterrupt`` between tiles.
    """

def knn_screen(m: int, n: int, d: int) -> str:
    """First pass ``nearest_neighbors`` uses for an m × n × d problem here: ``"amx-bf16"`` or ``"gemm"``.

    The answer is identical either way; ``GANCORE_KNN_SCREEN=gemm|amx|auto`` overrides the choice.
    """
