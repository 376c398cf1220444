"""Numerical checks of §4 of the paper on 1-D densities (gancore.evaluate.theory1d), and Figure 1."""

import math

import numpy as np
import pytest

from gancore.evaluate.theory1d import Mixture1D, jsd, optimal_discriminator, virtual_criterion

X = np.linspace(-12, 12, 20001)


def test_d_star_formula_and_half_at_optimum():
    p, q = Mixture1D((0.0,), (1.0,)).pdf(X), Mixture1D((1.0,), (2.0,)).pdf(X)
    d = optimal_discriminator(p, q)
    np.testing.assert_allclose(d, p / (p + q))
    np.testing.assert_allclose(optimal_discriminator(p, p), 0.5)
    assert optimal_discriminator(np.zeros(3), np.zeros(3)).tolist() == [0.5] * 3
    with pytest.raises(ValueError, match="same shape"):
        optimal_discriminator(p, q[:-1])
    with pytest.raises(ValueError, match="non-negative"):
        optimal_discriminator(-p, q)


@pytest.mark.parametrize(
    "p_g",
    [Mixture1D((0.0,), (1.0,)), Mixture1D((1.5,), (0.7,)), Mixture1D((-2.0, 2.0), (0.5, 1.0), (0.3, 0.7))],
)
def test_c_of_g_equals_minus_log4_plus_2_jsd(p_g):
    p = Mixture1D((0.0,), (1.0,)).pdf(X)
    q = p_g.pdf(X)
    c = virtual_criterion(p, q, X)
    assert c == pytest.approx(-math.log(4) + 2 * jsd(p, q, X), abs=1e-9)
    assert c >= -math.log(4) - 1e-9  # Theorem 1: the global minimum is −log 4 ...
    assert 0 <= jsd(p, q, X) <= math.log(2) + 1e-12


def test_global_minimum_only_at_p_g_equal_p_data():
    p = Mixture1D((0.0,), (1.0,)).pdf(X)
    assert virtual_criterion(p, p, X) == pytest.approx(-math.log(4), abs=1e-9)
    # ... and C(G) grows as p_g moves away; disjoint supports give C = 0 (JSD = log 2).
    cs = [virtual_criterion(p, Mixture1D((m,), (1.0,)).pdf(X), X) for m in (0.0, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(cs, cs[1:]))
    far = Mixture1D((11.0,), (0.05,)).pdf(X)
    assert virtual_criterion(Mixture1D((-11.0,), (0.05,)).pdf(X), far, X) == pytest.approx(0.0, abs=1e-6)


def test_jsd_known_value_and_errors():
    # Two disjoint uniform densities: JSD = log 2.
    x = np.linspace(0, 2, 2001)
    p = np.where(x < 1, 1.0, 0.0)
    q = np.where(x >= 1, 1.0, 0.0)
    assert jsd(p, q, x) == pytest.approx(math.log(2), rel=2e-3)
    with pytest.raises(ValueError, match="same length"):
        jsd(p, q[:5], x)


def test_mixture_sampling_matches_pdf():
    m = Mixture1D((-1.0, 2.0), (0.5, 0.3), (0.25, 0.75))
    s = m.sample(50_000, np.random.default_rng(0))
    assert s.mean() == pytest.approx(0.25 * -1 + 0.75 * 2, abs=0.02)
    assert np.trapezoid(m.pdf(X), X) == pytest.approx(1.0, abs=1e-9) if hasattr(np, "trapezoid") else True
    with pytest.raises(ValueError, match="stds"):
        Mixture1D((0.0,), (0.0,))


def test_trained_discriminator_approaches_d_star():
    pytest.importorskip("torch")
    from gancore.evaluate.theory1d import check_optimal_discriminator

    r = check_optimal_discriminator(steps=600, seed=0)
    assert r["max_abs_err"] < 0.08
    assert r["mean_abs_err"] < 0.02
    # V(D) of a learned D can only approach C(G) = max_D V from below (up to sampling noise).
    assert r["value_learned_D"] == pytest.approx(r["C_G"], abs=0.01)
    assert r["C_G"] == pytest.approx(r["C_G_from_jsd"], abs=1e-3)


def test_gan_1d_and_figure1(tmp_path):
    pytest.importorskip("torch")
    from gancore.evaluate.theory1d import figure1, train_gan_1d

    snaps = train_gan_1d(steps=400, snapshots=(0, 100, None), seed=0, k=1)
    assert [s.step for s in snaps] == [0, 100, 400]
    last = snaps[-1].extra
    # The generator moved from ~0 to the data (N(2, 0.5²)) and D is close to 1/2 under p_data.
    assert abs(last["g_mean"] - 2.0) < 0.3 and 0.2 < last["g_std"] < 0.8
    assert last["mean_abs_d_minus_half"] < 0.1
    info = figure1(tmp_path / "fig1.png", snapshots=snaps)
    assert (tmp_path / "fig1.png").stat().st_size > 5000 and info["steps"] == [0, 100, 400]


def test_figure1_snapshots_are_trained_once_then_read_from_the_cache(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from gancore.evaluate import theory1d

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    real, calls = theory1d.train_gan_1d, []

    def short_training(**kw):  # the defaults' 3,600 steps are not what this test is about
        calls.append(kw)
        return real(steps=40, snapshots=(0, 20, None), **kw)

    monkeypatch.setattr(theory1d, "train_gan_1d", short_training)
    first = theory1d.figure1_snapshots(3)
    (entry,) = (tmp_path / "gancore" / "eval").glob("figure1_*seed3_*.npz")
    again = theory1d.figure1_snapshots(3)
    assert len(calls) == 1  # the second call trained nothing
    assert [s.step for s in again] == [s.step for s in first] == [0, 20, 40]
    for a, b in zip(first, again):
        for field in ("x", "p_data", "p_g", "d"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        assert a.extra == b.extra
    theory1d.figure1_snapshots(4)  # another seed is another entry
    assert len(calls) == 2 and len(list(entry.parent.glob("figure1_*.npz"))) == 2

    entry.write_bytes(b"not an npz")  # damaged: retrained and rewritten, with a warning
    repaired = theory1d.figure1_snapshots(3)
    assert len(calls) == 3 and [s.step for s in repaired] == [0, 20, 40]
    theory1d.figure1_snapshots(3)
    assert len(calls) == 3
    theory1d.figure1_snapshots(3, use_cache=False)  # --no-reference-cache: always trains
    assert len(calls) == 4
