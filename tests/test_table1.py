"""Table 1 protocol (gancore.evaluate.table1) against a NumPy twin of the 2014 parzen_ll.py, plus warnings."""

import math
import warnings

import numpy as np
import pytest

from gancore.evaluate import table1
from gancore.evaluate.table1 import (
    PAPER_SIGMAS,
    DataScaleWarning,
    GridEdgeWarning,
    check_data_scale,
    combine_folds,
    parzen_protocol,
    reference_rows,
)

from _eval_helpers import blobs, parzen_ll_2014


def _data(seed=0, n_s=300, n_v=60, n_t=80, d=16):
    return blobs(n_s, d, seed=seed), blobs(n_v, d, seed=seed + 1), blobs(n_t, d, seed=seed + 2)


def test_paper_grid_is_the_scripts():
    assert PAPER_SIGMAS.shape == (10,)
    np.testing.assert_allclose(PAPER_SIGMAS[[0, -1]], [0.1, 1.0])
    np.testing.assert_allclose(PAPER_SIGMAS, np.logspace(-1, 0, 10))


@pytest.mark.parametrize("seed", [0, 1])
def test_paper_protocol_matches_2014_script(seed):
    s, v, t = _uniform(seed)  # uniform data: the best σ lies inside the paper's grid
    want_mean, want_se, want_sigma = parzen_ll_2014(s, v, t, limit_size=40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = parzen_protocol(s, v, t, protocol="paper", n_valid=40)
    assert got.sigma == pytest.approx(want_sigma, rel=1e-12)
    assert got.mean == pytest.approx(want_mean, rel=1e-5, abs=1e-4)
    assert got.se == pytest.approx(want_se, rel=1e-4)
    assert got.n_valid == 40 and got.n_test == t.shape[0] and got.d == 16
    assert len(got.sigmas) == len(got.valid_ll) == 10


def test_paper_protocol_keeps_first_1000_validation_rows():
    rng = np.random.default_rng(0)
    s = rng.random((50, 4))
    v = rng.random((1200, 4))
    t = rng.random((10, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = parzen_protocol(s, v, t)
        want = parzen_ll_2014(s, v, t)
    assert r.n_valid == 1000
    assert r.mean == pytest.approx(want[0], rel=1e-6) and r.sigma == pytest.approx(want[2])


def test_grid_edge_warns_loudly(caplog):
    # Very tight data: the best σ is below 0.1, the smallest value of the paper grid.
    s, v, t = _data(0)
    with pytest.warns(GridEdgeWarning, match="smallest value of the grid"):
        r = parzen_protocol(s * 0.05, v * 0.05, t * 0.05)
    assert r.grid_edge and r.sigma == pytest.approx(0.1)
    assert any("smallest value" in m for m in r.warnings)
    assert any("!!!" in rec.message for rec in caplog.records)


def _uniform(seed, n_s=300, n_v=60, n_t=80, d=16):
    rng = np.random.default_rng(seed)
    return rng.random((n_s, d)), rng.random((n_v, d)), rng.random((n_t, d))


def test_no_grid_edge_warning_when_inside():
    s, v, t = _uniform(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = parzen_protocol(s, v, t)
    assert not r.grid_edge and not r.warnings


def test_full_protocol_refines_and_beats_grid():
    s, v, t = _data(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paper = parzen_protocol(s, v, t, protocol="paper", sigmas=np.logspace(-2, 0, 5))
        full = parzen_protocol(s, v, t, protocol="full")
    assert full.n_valid == v.shape[0]
    assert len(full.sigmas) > 41
    assert max(full.valid_ll) >= max(paper.valid_ll) - 1e-9
    assert np.all(np.diff(full.sigmas) >= 0)


def test_scale_warning_for_minus_one_one_data():
    s, _, t = _data(5)
    with pytest.warns(DataScaleWarning, match=r"\[-1,1\] scale.*d·ln 2 = 11.1 nats"):
        msgs = check_data_scale({"samples": s * 2 - 1})
    assert len(msgs) == 1
    with pytest.warns(DataScaleWarning, match="divide by 255"):
        check_data_scale({"test": t * 255})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_data_scale({"ok": s}) == []


def test_minus_one_one_shifts_by_d_ln2():
    # With σ scaled along with the data, every log-likelihood shifts by exactly d·ln 2.
    s, v, t = _data(6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = parzen_protocol(s, v, t, sigmas=[0.05])
        b = parzen_protocol(2 * s - 1, 2 * v - 1, 2 * t - 1, sigmas=[0.1])
    assert a.mean - b.mean == pytest.approx(16 * math.log(2), rel=1e-6)
    assert 784 * math.log(2) == pytest.approx(543.4, abs=0.05)


def test_combine_folds_standard_error():
    s, v, t = _uniform(7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folds = [parzen_protocol(s[i::3], v, t) for i in range(3)]
    c = combine_folds(folds)
    means = np.array([f.mean for f in folds])
    assert c["mean"] == pytest.approx(means.mean())
    assert c["se"] == pytest.approx(means.std() / math.sqrt(3))
    with pytest.raises(ValueError, match="results"):
        combine_folds([])


def test_reference_rows_same_protocol():
    train, v, t = _data(8, n_s=400)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = reference_rows(train, v, t, n_centers=100, kmeans_iters=3)
    assert set(rows) == {"train", "kmeans"}
    assert rows["train"].n_centers == rows["kmeans"].n_centers == 100
    # Real data from the same distribution beats uniform noise as centers.
    noise = np.random.default_rng(0).random((100, 16))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bad = parzen_protocol(noise, v, t)
    assert rows["train"].mean > bad.mean


def test_paper_table_constants():
    assert table1.PAPER_TABLE1["Adversarial nets"]["mnist"] == (225.0, 2.0)
    assert table1.PAPER_TABLE1["Adversarial nets"]["tfd"] == (2057.0, 26.0)
    assert len(table1.PAPER_TABLE1) == 4


def test_argument_errors_name_the_argument():
    s, v, t = _data(9)
    with pytest.raises(ValueError, match="protocol"):
        parzen_protocol(s, v, t, protocol="nope")
    with pytest.raises(ValueError, match="test must have the same width"):
        parzen_protocol(s, v, t[:, :3])
    with pytest.raises(ValueError, match="n_valid"):
        parzen_protocol(s, v, t, n_valid=0)
    with pytest.raises(ValueError, match="sigma"):
        parzen_protocol(s, v, t, sigmas=[0.1, -1.0])
    with pytest.raises(ValueError, match="valid must have at least one row"):
        parzen_protocol(s, v[:0], t)
    with pytest.raises(ValueError, match="include"):
        reference_rows(s, v, t, include=("bogus",))
