"""Lloyd's k-means (gancore.evaluate.kmeans) on small synthetic data."""

import numpy as np
import pytest

from gancore.evaluate.kmeans import assign, kmeans


def _three_blobs(n=90, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 5.0]])
    lab = np.repeat(np.arange(3), n // 3)
    return centers[lab] + 0.1 * rng.standard_normal((n, 2)), lab, centers


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeanspp_recovers_separated_blobs(seed):
    x, lab, centers = _three_blobs(seed=seed)
    km = kmeans(x, 3, init="k-means++", seed=seed)
    # Same partition up to relabelling.
    for c in range(3):
        assert len(set(km.labels[lab == c])) == 1
    found = np.sort(km.centroids, axis=0)
    np.testing.assert_allclose(found, np.sort(centers, axis=0), atol=0.1)
    assert km.converged


def test_labels_are_nearest_centroid_and_inertia():
    rng = np.random.default_rng(2)
    x = rng.random((200, 5))
    km = kmeans(x, 7, init="random", seed=0)
    d2 = ((x[:, None, :] - km.centroids[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(km.labels, d2.argmin(1))
    assert km.inertia == pytest.approx(d2.min(1).sum())
    assert np.bincount(km.labels, minlength=7).min() >= 1


def test_no_empty_cells_with_duplicates():
    x = np.zeros((20, 3))
    x[10:] = 1.0
    km = kmeans(x, 5, seed=0)  # only two distinct points: cells must still be non-empty
    assert np.bincount(km.labels, minlength=5).min() >= 1


def test_k_equals_n_and_deterministic():
    x = np.random.default_rng(3).random((12, 4))
    a, b = kmeans(x, 12, seed=5), kmeans(x, 12, seed=5)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.inertia == pytest.approx(0.0, abs=1e-12)


def test_assign_matches_brute_force():
    rng = np.random.default_rng(4)
    x, c = rng.random((30, 3)), rng.random((4, 3))
    lab, d2 = assign(x, c)
    full = ((x[:, None] - c[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(lab, full.argmin(1))
    np.testing.assert_allclose(d2, full.min(1))


def test_errors_name_argument():
    x = np.random.default_rng(0).random((10, 2))
    with pytest.raises(ValueError, match="k must be <="):
        kmeans(x, 11)
    with pytest.raises(ValueError, match="k must be >= 1"):
        kmeans(x, 0)
    with pytest.raises(TypeError, match="k must be an int"):
        kmeans(x, 2.5)
    with pytest.raises(ValueError, match="init"):
        kmeans(x, 2, init="bogus")
    with pytest.raises(ValueError, match="max_iter"):
        kmeans(x, 2, max_iter=0)
    with pytest.raises(TypeError, match="x must be a float"):
        kmeans(np.ones((4, 2), dtype=np.uint8), 2)


def test_many_cells_path_matches_brute_force():
    # k > 512 takes the sort-and-slice update; the result must still be a Lloyd fixed point.
    x = np.random.default_rng(6).random((700, 2)).astype(np.float32)
    km = kmeans(x, 600, init="random", seed=0, max_iter=20)
    assert km.converged
    for c in range(600):
        np.testing.assert_allclose(km.centroids[c], x[km.labels == c].mean(0), atol=1e-6)
    assert np.bincount(km.labels, minlength=600).min() >= 1
