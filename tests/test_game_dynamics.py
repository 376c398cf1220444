"""Exercise §7.2 of the GAN tutorial: gradient descent on V(x, y) = xy (gancore.evaluate.game_dynamics)."""

import math

import numpy as np
import pytest

from gancore.evaluate import game_dynamics as gd

STARTS = [(1.0, 0.0), (0.3, -2.0), (-1.5, 0.7)]


@pytest.mark.parametrize("x0,y0", STARTS)
def test_continuous_time_orbits_at_constant_radius(x0, y0):
    t, traj = gd.continuous_time(x0, y0, t_end=20.0, dt=1e-3)  # ~3 orbits, 20,000 RK4 steps
    r0 = math.hypot(x0, y0)
    assert np.max(np.abs(gd.radius(traj) - r0)) / r0 < 1e-9  # stated tolerance: 1e-9 relative
    # the integrator (which never uses the closed form) agrees with the tutorial's solution
    assert np.max(np.abs(traj - gd.exact_solution(x0, y0, t))) < 1e-9
    # and it does orbit: it passes through the opposite point of the circle
    assert np.min(np.linalg.norm(traj + np.array([x0, y0]), axis=1)) < 1e-2 * r0


def test_rk4_is_fourth_order():
    # halving dt divides the error of one period by ~2^4 (with a step large enough to be above rounding)
    errs = []
    for dt in (0.2, 0.1):
        t, traj = gd.continuous_time(1.0, 0.0, 2 * math.pi, dt)
        errs.append(np.abs(traj[-1] - gd.exact_solution(1.0, 0.0, t[-1])).max())
    assert 12 < errs[0] / errs[1] < 20


@pytest.mark.parametrize("lr", [0.01, 0.1, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("x0,y0", STARTS)
def test_simultaneous_steps_grow_the_radius_by_sqrt_one_plus_lr_squared(lr, x0, y0):
    traj = gd.simultaneous_steps(x0, y0, lr, 40)
    r = gd.radius(traj)
    predicted = math.sqrt(1 + lr * lr)
    assert gd.simultaneous_growth(lr) == predicted
    np.testing.assert_allclose(r[1:] / r[:-1], predicted, rtol=1e-13)
    np.testing.assert_allclose(r, math.hypot(x0, y0) * predicted ** np.arange(41), rtol=1e-12)
    # the update matrix A = [[1, -η], [η, 1]] has AᵀA = (1 + η²) I: it scales every vector by √(1 + η²)
    a = np.array([[1.0, -lr], [lr, 1.0]])
    np.testing.assert_allclose(a.T @ a, (1 + lr * lr) * np.eye(2), rtol=1e-15)
    np.testing.assert_allclose(traj[1], a @ [x0, y0], rtol=1e-15)


@pytest.mark.parametrize("lr", [0.05, 0.5, 1.0, 1.9])
@pytest.mark.parametrize("x0,y0", STARTS)
def test_alternating_steps_stay_on_an_ellipse_for_lr_below_two(lr, x0, y0):
    traj = gd.alternating_steps(x0, y0, lr, 5000)
    q = gd.alternating_invariant(traj, lr)
    assert np.max(np.abs(q - q[0])) / q[0] < 1e-10  # Q = x² − ηxy + y² is conserved
    r = gd.radius(traj)
    lo, hi = math.sqrt(q[0] / (1 + lr / 2)), math.sqrt(q[0] / (1 - lr / 2))
    assert lo * (1 - 1e-9) <= r.min() and r.max() <= hi * (1 + 1e-9)  # bounded, and never converges to 0
    b = np.array([[1.0, -lr], [lr, 1.0 - lr * lr]])
    np.testing.assert_allclose(traj[1], b @ [x0, y0], rtol=1e-14, atol=1e-15)
    assert np.linalg.det(b) == pytest.approx(1.0, abs=1e-14)
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(b)), 1.0, rtol=1e-12)  # on the unit circle


def test_alternating_steps_escape_for_lr_above_two():
    r = gd.radius(gd.alternating_steps(1.0, 0.0, 2.1, 60))
    assert r[-1] > 1e3 * r[0]


def test_check_reports_the_three_claims():
    c = gd.check(lr=0.2, steps=50)
    assert c["ct_max_radius_dev"] < 1e-9
    assert c["sim_growth_measured"] == pytest.approx(c["sim_growth_predicted"], rel=1e-14)
    assert c["sim_radius_final"] == pytest.approx(c["sim_radius_final_predicted"], rel=1e-12)
    assert c["alt_det"] == pytest.approx(1.0) and c["alt_invariant_rel_dev"] < 1e-12
    lo, hi = c["alt_radius_bounds"]
    assert lo * (1 - 1e-9) <= c["alt_radius_min"] <= c["alt_radius_max"] <= hi * (1 + 1e-9)
    with pytest.raises(ValueError):
        gd.check(lr=0.0)


def test_figure_is_an_atomic_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = gd.figure(tmp_path / "xy.png", steps=20)
    assert (tmp_path / "xy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xy.png"]  # no temporary left behind
    assert out["steps"] == 20
