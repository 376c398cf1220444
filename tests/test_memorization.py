"""Memorization tests (gancore.evaluate.memorization): Mann–Whitney Z, C_T on constructed cases, 1-NN test."""

import math

import numpy as np
import pytest

from gancore.evaluate.kmeans import kmeans
from gancore.evaluate.memorization import (
    copying_verdict,
    data_copying_test,
    mann_whitney_z,
    nn_distances,
    one_nn_two_sample,
)

from _eval_helpers import blobs


def _scipy_z(g, t):
    stats = pytest.importorskip("scipy.stats")
    res = stats.mannwhitneyu(g, t, alternative="two-sided", use_continuity=False, method="asymptotic")
    m, n = len(g), len(t)
    z = stats.norm.isf(res.pvalue / 2) * np.sign(res.statistic - m * n / 2)
    return res.statistic, z


@pytest.mark.parametrize("ties", [False, True])
def test_mann_whitney_matches_scipy(ties):
    rng = np.random.default_rng(0)
    g, t = rng.normal(0.2, 1, 70), rng.normal(0, 1, 50)
    if ties:
        g, t = np.round(g), np.round(t)
    u, z = mann_whitney_z(g, t, convention="tie-corrected")
    su, sz = _scipy_z(g, t)
    assert u == pytest.approx(su)
    assert z == pytest.approx(sz, rel=1e-6)


def test_mann_whitney_signs_and_degenerate():
    assert mann_whitney_z([0.0, 0.1], [1.0, 2.0, 3.0])[1] < 0  # generated smaller → negative
    assert mann_whitney_z([5.0, 6.0], [1.0, 2.0, 3.0])[1] > 0
    u, z = mann_whitney_z([1.0, 1.0], [1.0, 1.0], convention="tie-corrected")
    assert u == 2.0 and z == 0.0
    # the authors' convention keeps its +0.5 shift and tie-free variance even here
    assert mann_whitney_z([1.0, 1.0], [1.0, 1.0])[1] == pytest.approx(0.5 / math.sqrt(2 * 2 * 5 / 12))
    with pytest.raises(ValueError, match="convention"):
        mann_whitney_z([1.0], [2.0], convention="scipy")
    with pytest.raises(ValueError, match="non-empty"):
        mann_whitney_z([], [1.0])
    with pytest.raises(ValueError, match="finite"):
        mann_whitney_z([np.nan], [1.0])


def test_nn_distances_are_euclidean():
    rng = np.random.default_rng(1)
    q, r = rng.random((20, 4)), rng.random((30, 4))
    dist, idx = nn_distances(q, r)
    full = np.sqrt(((q[:, None] - r[None]) ** 2).sum(-1))
    np.testing.assert_allclose(dist, full.min(1), rtol=1e-12)
    np.testing.assert_array_equal(idx, full.argmin(1))


def _split(seed=0):
    data = blobs(700, 16, spread=0.05, seed=seed)
    return data[:400], data[400:550], data[550:]  # train, test (held out), fresh "generated"


def test_copying_generator_is_flagged():
    train, test, _ = _split()
    copies = train[np.random.default_rng(1).choice(400, 150, replace=False)]
    r = data_copying_test(copies, test, train, n_cells=3, seed=0)
    assert r.c_t < -5 and r.z_global < -5
    assert r.n_cells_kept >= 1 and 0 < r.weight_kept <= 1
    assert copying_verdict(r.c_t, r.z_global).startswith("DATA COPYING")


def test_fresh_held_out_images_are_not_flagged():
    train, test, fresh = _split()
    r = data_copying_test(fresh, test, train, n_cells=3, seed=0)
    assert abs(r.c_t) < 3 and abs(r.z_global) < 3
    assert copying_verdict(r.c_t, r.z_global).startswith("no evidence")


def test_underfitting_is_positive():
    train, test, fresh = _split()
    noisy = np.clip(fresh + 0.2 * np.random.default_rng(2).standard_normal(fresh.shape), 0, 1)
    r = data_copying_test(noisy, test, train, n_cells=3, seed=0)
    assert r.c_t > 5
    assert "under-fitting" in copying_verdict(r.c_t, r.z_global)


def test_cell_rule_and_weights():
    train, test, fresh = _split(3)
    cells = kmeans(train, 4, seed=0)
    tau = 0.2  # keep only cells with more than 20 % of the generated samples
    r = data_copying_test(fresh, test, train, cells=cells, tau=tau)
    g = np.array(r.cell_n_generated)
    p = np.array(r.cell_n_test)
    keep = g / g.sum() > tau
    assert r.n_cells_kept == keep.sum()
    z = np.array(r.cell_z)
    assert np.isnan(z[~keep]).all() and np.isfinite(z[keep]).all()
    w = p[keep] / p.sum()
    assert r.c_t == pytest.approx(np.dot(w, z[keep]) / w.sum())
    assert r.weight_kept == pytest.approx(w.sum())
    assert r.to_dict()["cell_z"].count(None) == (~keep).sum()


def test_no_cell_kept_is_nan():
    train, test, fresh = _split(4)
    r = data_copying_test(fresh[:10], test, train, n_cells=3, seed=0)  # 10 samples < 20 per cell
    assert r.n_cells_kept == 0 and math.isnan(r.c_t)
    assert copying_verdict(r.c_t, r.z_global).startswith("inconclusive")


def test_one_nn_two_sample():
    rng = np.random.default_rng(5)
    real = rng.random((100, 8))
    same = rng.random((100, 8))
    far = rng.random((100, 8)) + 3.0
    assert abs(one_nn_two_sample(same, real)["accuracy"] - 0.5) < 0.15
    assert one_nn_two_sample(far, real)["accuracy"] == 1.0
    # Exact copies of the real points: each one's nearest other point is its twin → accuracy 0.
    r = one_nn_two_sample(real.copy(), real)
    assert r["accuracy"] == 0.0 and r["n_generated"] == r["n_real"] == 100


def test_argument_errors():
    train, test, fresh = _split()
    with pytest.raises(ValueError, match="generated must have the same width"):
        data_copying_test(fresh[:, :3], test, train)
    with pytest.raises(ValueError, match="tau"):
        data_copying_test(fresh, test, train, tau=-0.5)
    with pytest.raises(ValueError, match="same width"):
        one_nn_two_sample(fresh[:, :3], test)


def test_verdict_notes_mode_collapse():
    assert "mode collapse" in copying_verdict(8.0, 10.0, weight_kept=0.02)
    assert "mode collapse" not in copying_verdict(0.5, 0.2, weight_kept=0.9)


def test_memorization_report_flags_copies():
    from gancore.evaluate.memorization import memorization_report

    train, test, fresh = _split(5)
    rep = memorization_report(train[:150], test, train, n_cells=3)
    assert rep["data_copying"]["c_t"] < -5 and rep["verdict"].startswith("DATA COPYING")
    assert rep["n_generated_closer_than_any_test"] == 150  # every copy is at distance 0
    assert rep["generated_nn_distance"]["median"] == 0.0
    ok = memorization_report(fresh, test, train, n_cells=3)
    assert ok["verdict"].startswith("no evidence") and abs(ok["one_nn_two_sample"]["accuracy"] - 0.5) < 0.15


def test_mann_whitney_property_against_scipy():
    hyp = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")

    @hyp.given(
        st.lists(st.integers(0, 6), min_size=1, max_size=30), st.lists(st.integers(0, 6), min_size=1, max_size=30)
    )
    def check(g, t):
        g, t = np.array(g, float), np.array(t, float)
        u, z = mann_whitney_z(g, t, convention="tie-corrected")
        # U by its definition: pairs with g > t, ties counting one half.
        assert u == pytest.approx(np.sum(g[:, None] > t[None]) + 0.5 * np.sum(g[:, None] == t[None]))
        if np.unique(np.r_[g, t]).size > 1:
            assert z == pytest.approx(_scipy_z(g, t)[1], rel=1e-6, abs=1e-9)

    check()


def _authors_z(generated, test):
    """NumPy twin of the authors' ``Zu`` (Meehan et al. 2020, casey-meehan/data-copying): U from the
    pairs by definition, null mean m·n/2 − 0.5 (their fixed continuity correction), variance
    m·n·(m + n + 1)/12 with no tie correction."""
    g, t = np.asarray(generated, float), np.asarray(test, float)
    m, n = g.size, t.size
    u = np.sum(g[:, None] > t[None]) + 0.5 * np.sum(g[:, None] == t[None])
    return (u - (n * m / 2 - 0.5)) / np.sqrt(n * m * (n + m + 1) / 12)


def test_default_z_is_the_authors_definition():
    hyp = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")

    @hyp.given(
        st.lists(st.integers(0, 6), min_size=1, max_size=40), st.lists(st.integers(0, 6), min_size=1, max_size=40)
    )
    def check(g, t):
        assert mann_whitney_z(g, t)[1] == pytest.approx(_authors_z(g, t), rel=1e-12, abs=1e-12)

    check()


def test_exact_copies_differ_between_the_conventions():
    """The case the statistic exists for: copies have nearest-training distance 0, so they tie."""
    rng = np.random.default_rng(3)
    copies, test = np.zeros(200), rng.random(200) + 0.1
    authors, corrected = mann_whitney_z(copies, test)[1], mann_whitney_z(copies, test, convention="tie-corrected")[1]
    assert authors == pytest.approx(_authors_z(copies, test)) and authors > corrected  # ties shrink the variance


def test_report_has_both_one_nn_comparisons():
    from gancore.evaluate.memorization import memorization_report

    rng = np.random.default_rng(7)
    train, test = rng.random((150, 6)), rng.random((150, 6))
    copies = memorization_report(train.copy(), test, train, n_cells=2)
    # against the (whole, here) training set, copies sit on their originals: accuracy 0
    assert copies["one_nn_two_sample_train"]["accuracy"] == 0.0
    assert "training" in copies["one_nn_two_sample_train"]["compared_with"]
    assert "test" in copies["one_nn_two_sample"]["compared_with"]
    fresh = memorization_report(rng.random((150, 6)), test, train, n_cells=2)
    assert abs(fresh["one_nn_two_sample_train"]["accuracy"] - 0.5) < 0.15
