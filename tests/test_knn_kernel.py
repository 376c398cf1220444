"""gancore.nearest_neighbors against its NumPy twin (gancore._reference.nearest_neighbors)."""

import contextlib
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gancore
from gancore import _core
from gancore import _reference as ref
from gancore.data import load_split

from _kernel_strategies import matrix_pairs

SETTINGS = settings()  # the budget comes from the Hypothesis profile (tests/conftest.py)


def check_against_reference(q, r, k, idx, dist):
    q64, r64 = q.astype(np.float64), r.astype(np.float64)
    m = q.shape[0]
    assert idx.shape == dist.shape == (m, k)
    assert idx.dtype == np.int64 and dist.dtype == np.float64
    if m == 0:
        return
    all_d = ref.sq_distances(q64, r64)
    want_d = np.sort(all_d, axis=1)[:, :k]
    scale = (q64**2).sum(1, keepdims=True) + 1e-300
    # Exact: the k smallest float64 distances, to ~1e-12 relative (summation order only).
    np.testing.assert_allclose(dist, want_d, rtol=1e-12, atol=1e-14 * scale.max())
    # The indices are the rows those distances belong to, and each row is ascending.
    np.testing.assert_allclose(np.take_along_axis(all_d, idx, 1), dist, rtol=1e-12, atol=1e-14 * scale.max())
    assert (np.diff(dist, axis=1) >= 0).all()
    assert all(len(set(row)) == k for row in idx)
    # Ties: among exactly equal distances the lower index comes first.
    same = np.diff(dist, axis=1) == 0
    assert (np.diff(idx, axis=1)[same] > 0).all()


@SETTINGS
@given(pair=matrix_pairs(), data=st.data())
def test_matches_brute_force(pair, data):
    q, r, _, _ = pair
    k = data.draw(st.integers(1, r.shape[0]))
    idx, dist = gancore.nearest_neighbors(q, r, k)
    check_against_reference(q, r, k, idx, dist)


def test_near_duplicates_are_exact_where_the_float32_shortcut_fails():
    rng = np.random.default_rng(0)
    base = (rng.random(784) * 255).astype(np.float32)
    ref_rows = np.repeat(base[None], 20, axis=0)
    for i in range(20):
        ref_rows[i, i] += 0.5 + 0.01 * i  # distances 0.25 … 0.4 on norms of ~1.7e7
    idx, dist = gancore.nearest_neighbors(base[None], ref_rows, 20)
    want = np.sort(ref.sq_distances(base[None], ref_rows))
    np.testing.assert_allclose(dist, want, rtol=1e-12)
    assert list(idx[0]) == list(range(20))
    # The float32 expansion alone is badly wrong here, which is why the kernel re-measures.
    f32 = (base**2).sum() + (ref_rows**2).sum(1) - 2 * ref_rows @ base
    assert np.abs(f32 - want[0]).max() > 0.1 * want[0].max()


def test_ties_go_to_the_lower_index():
    r = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.0, 0.0]])
    idx, dist = gancore.nearest_neighbors(np.zeros((1, 2)), r, 5)
    assert idx.tolist() == [[4, 0, 1, 2, 3]]
    assert dist.tolist() == [[0.0, 1.0, 1.0, 1.0, 1.0]]


def test_k_equal_n_returns_everything_sorted():
    rng = np.random.default_rng(1)
    q, r = rng.random((7, 3)), rng.random((9, 3))
    idx, _ = gancore.nearest_neighbors(q, r, 9)
    assert (np.sort(idx, axis=1) == np.arange(9)).all()


def test_large_inputs_span_tiles_and_threads():
    rng = np.random.default_rng(2)
    q = rng.random((700, 50)).astype(np.float32)
    r = rng.random((5000, 50)).astype(np.float32)
    a = gancore.nearest_neighbors(q, r, 3, n_threads=1)
    b = gancore.nearest_neighbors(q, r, 3, n_threads=2)
    assert (a[0] == b[0]).all() and (a[1] == b[1]).all()
    check_against_reference(q[:100], r, 3, a[0][:100], a[1][:100])


def test_one_query_against_many_references_is_split_across_threads():
    rng = np.random.default_rng(3)
    r = rng.random((20000, 16)).astype(np.float32)
    q = r[[12345]] + 1e-4
    idx, dist = gancore.nearest_neighbors(q, r, 2, n_threads=2)
    assert idx[0, 0] == 12345
    check_against_reference(q, r, 2, idx, dist)


# --- The AMX bf16 screen (knn_bf16.rs) must give exactly what the GEMM screen gives. ---------


@contextlib.contextmanager
def knn_screen(name):
    """Force the first pass of nearest_neighbors (GANCORE_KNN_SCREEN is read at every call)."""
    old = os.environ.get("GANCORE_KNN_SCREEN")
    os.environ["GANCORE_KNN_SCREEN"] = name
    try:
        yield
    finally:
        if old is None:
            del os.environ["GANCORE_KNN_SCREEN"]
        else:
            os.environ["GANCORE_KNN_SCREEN"] = old


def require_amx():
    with knn_screen("amx"):
        if _core.knn_screen(64, 64, 64) != "amx-bf16":
            pytest.skip("this CPU (or OS) offers no AMX bf16 tiles, so only the GEMM screen exists here")


@SETTINGS
@given(pair=matrix_pairs(), data=st.data())
def test_amx_screen_matches_brute_force(pair, data):
    require_amx()
    q, r, _, _ = pair
    k = data.draw(st.integers(1, r.shape[0]))
    with knn_screen("amx"):
        idx, dist = gancore.nearest_neighbors(q, r, k)
    check_against_reference(q, r, k, idx, dist)


def test_amx_and_gemm_screens_agree_on_mnist_pixels_and_generator_like_rows():
    require_amx()
    train = load_split("mnist", "train")[:6000]
    test = load_split("mnist", "test")[:300]
    rng = np.random.default_rng(4)
    # Generator-like queries: continuous values, not representable in bf16 (rounding residuals).
    blurred = np.clip(test + rng.normal(0, 0.05, test.shape), 0, 1).astype(np.float32)
    # Near-duplicates of training images: the nearest neighbor must be the original row.
    copies = train[:50] + np.float32(1e-3) * rng.standard_normal((50, 784), dtype=np.float32)
    for q, k in [(test, 1), (blurred, 5), (copies, 2), (test.astype(np.float64), 3)]:
        r = train.astype(q.dtype)
        with knn_screen("amx"):
            got = gancore.nearest_neighbors(q, r, k)
        with knn_screen("gemm"):
            want = gancore.nearest_neighbors(q, r, k)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    check_against_reference(copies, train, 2, *gancore.nearest_neighbors(copies, train, 2))
    assert (gancore.nearest_neighbors(copies, train, 1)[0][:, 0] == np.arange(50)).all()


def test_auto_screen_uses_amx_only_for_large_problems():
    require_amx()
    with knn_screen("auto"):
        assert _core.knn_screen(10000, 60000, 784) == "amx-bf16"
        assert _core.knn_screen(10, 10, 784) == "gemm"
        assert _core.knn_screen(10000, 60000, 8) == "gemm"
    with knn_screen("gemm"):
        assert _core.knn_screen(10000, 60000, 784) == "gemm"
