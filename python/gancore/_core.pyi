"""Type information for the private native module ``gancore._core`` (Rust, PyO3).

Use the public wrappers ``gancore.parzen_loglik`` and ``gancore.nearest_neighbors``: they validate
and coerce arguments. These functions re-check everything and raise ``ValueError``/``TypeError``.
"""

import numpy as np
import numpy.typing as npt

# PyO3 lists every name it adds to the module in __all__.
__all__ = [
    "parzen_loglik",
    "nearest_neighbors",
    "knn_screen",
    "magnitude_limit",
    "MIN_SIGMA",
    "MAX_SIGMA",
    "PARZEN_QUERY_BLOCK",
    "__version__",
]

__version__: str

MIN_SIGMA: float
"""Smallest bandwidth the kernels accept (1e-150): below it 1/(2σ²) is not a normal float64."""
MAX_SIGMA: float
"""Largest bandwidth the kernels accept (1e150): above it 2σ² is not a normal float64."""
PARZEN_QUERY_BLOCK: int
"""Query rows per block of ``parzen_loglik`` (512). A row's value can depend, at the 1e-14 to 1e-8
nats level, on which rows share its block: shards of ``x`` cut at multiples of this reproduce the
one-process result bit for bit."""

def magnitude_limit(dtype: str, d: int) -> float:
    """Largest |value| the kernels accept in ``dtype`` (``"float32"`` or ``"float64"``) at dimension ``d``.

    Beyond it the distance expansion ‖q‖² + ‖c‖² + 2|q·c| could overflow, and the kernels refuse the
    input (``ValueError``). Computed by the same Rust function the kernels check inputs with.
    """

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

    The answer is identical either way; ``GANCORE_KNN_SCREEN=gemm|amx|auto`` overrides the choice,
    and ``GANCORE_NO_AMX`` or ``GANCORE_NO_SIMD`` (set before the first kernel call) rule AMX out.
    """
