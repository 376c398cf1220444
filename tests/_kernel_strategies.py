"""Hypothesis strategies shared by the kernel tests: shapes, dtypes, layouts and value scales."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

LAYOUTS = ("C", "F", "strided", "reversed")


def with_layout(a: np.ndarray, layout: str) -> np.ndarray:
    """The same values as ``a`` in another memory layout (copying into a differently shaped buffer)."""
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided":
        big = np.zeros((a.shape[0], 2 * a.shape[1] + 1), dtype=a.dtype)
        big[:, 1::2] = a
        return big[:, 1::2]
    if layout == "reversed":
        return np.ascontiguousarray(a[::-1])[::-1]
    return np.ascontiguousarray(a)


@st.composite
def matrix_pairs(draw, min_rows_b: int = 1, max_rows: int = 40, max_d: int = 24):
    """(a, b, dtype) with a: m×d (m may be 0), b: n×d (n ≥ min_rows_b), drawn scales and layouts."""
    m = draw(st.integers(0, max_rows))
    n = draw(st.integers(min_rows_b, max_rows))
    d = draw(st.integers(1, max_d))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    scale = 10.0 ** draw(st.integers(-3, 3))
    offset = draw(st.sampled_from([0.0, 0.0, 1.0, -5.0])) * scale
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal((m, d)) * scale + offset).astype(dtype)
    b = (rng.standard_normal((n, d)) * scale + offset).astype(dtype)
    if m and draw(st.booleans()):
        # Exact duplicates and near-duplicates of b's rows among a's: ties and cancellation.
        k = draw(st.integers(1, m))
        rows = rng.integers(0, n, size=k)
        a[:k] = b[rows]
        if draw(st.booleans()):
            a[:k] += (rng.standard_normal((k, d)) * scale * 1e-4).astype(dtype)
    if draw(st.booleans()):
        b = np.concatenate([b, b[: draw(st.integers(0, n))]])  # duplicated reference rows
    la, lb = draw(st.sampled_from(LAYOUTS)), draw(st.sampled_from(LAYOUTS))
    return with_layout(a, la), with_layout(b, lb), dtype, scale
