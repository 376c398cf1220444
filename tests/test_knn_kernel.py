"""gancore.nearest_neighbors against its NumPy twin (gancore._reference.nearest_neighbors)."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gancore
from gancore import _reference as ref
from _kernel_strategies import matrix_pairs

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
