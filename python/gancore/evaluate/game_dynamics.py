"""Gradient descent on the game V(x, y) = x·y: the tutorial's exercise §7.2 and its solution §8.2.

Goodfellow (2016), "NIPS 2016 Tutorial: Generative Adversarial Networks", §7.2: one player controls the
scalar x and minimizes V, the other controls y and maximizes it; the only equilibrium is the saddle
point x = y = 0. With ∂V/∂x = y and ∂V/∂y = x, each player follows its own gradient:

* **continuous time** (simultaneous gradient descent with an infinitesimal learning rate, §8.2)::

      dx/dt = −∂V/∂x = −y,    dy/dt = +∂V/∂y = x
      x(t) = x(0) cos t − y(0) sin t,    y(t) = x(0) sin t + y(0) cos t

  a circle around the equilibrium (the tutorial's Figure 37): d(x² + y²)/dt = 2x(−y) + 2y(x) = 0, so
  the radius r = √(x² + y²) never changes. :func:`continuous_time` integrates the ODE with the classical
  fourth-order Runge–Kutta method (no closed form used), :func:`exact_solution` is the formula above.

* **simultaneous steps** with learning rate η (what §8.2 means by "with a larger learning rate, it is
  possible for simultaneous gradient descent to spiral outward forever")::

      x' = x − η·y,   y' = y + η·x,    i.e.  (x', y') = A (x, y),  A = [[1, −η], [η, 1]]

  AᵀA = (1 + η²)·I, so A = √(1 + η²)·(a rotation by atan η): every step multiplies the radius by
  exactly √(1 + η²) (:func:`simultaneous_growth`), for every η > 0 — an outward spiral.

* **alternating steps** (x first, then y with the new x, as Algorithm 1's k = 1 alternation)::

      x' = x − η·y,   y' = y + η·x' = η·x + (1 − η²)·y,    B = [[1, −η], [η, 1 − η²]]

  det B = 1 and trace B = 2 − η². For 0 < η < 2 the eigenvalues are e^{±iθ} with cos θ = 1 − η²/2:
  B neither grows nor shrinks the orbit. It conserves the quadratic form
  Q(x, y) = x² − η·x·y + y² exactly (:func:`alternating_invariant`; expand Q(x', y') to check), which is
  positive definite for η < 2, so the iterates stay on one ellipse for ever: bounded, never converging,
  with √(Q/(1 + η/2)) ≤ r ≤ √(Q/(1 − η/2)) (the form's eigenvalues are 1 ± η/2). For η ≥ 2 the form
  is indefinite and the orbit escapes.

:func:`check` measures the three claims and :func:`figure` draws the three trajectories in the
(x, y) plane; ``python -m gancore.evaluate.tutorial_figures OUT_DIR`` writes the figure. NumPy only.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "alternating_invariant",
    "alternating_steps",
    "check",
    "continuous_time",
    "exact_solution",
    "figure",
    "radius",
    "rk4",
    "simultaneous_growth",
    "simultaneous_steps",
    "velocity",
]


def velocity(state: np.ndarray) -> np.ndarray:
    """The gradient-flow field of the game: (dx/dt, dy/dt) = (−∂V/∂x, +∂V/∂y) = (−y, x)."""
    x, y = state
    return np.array([-y, x])


def rk4(f, state, dt: float, steps: int) -> np.ndarray:
    """Integrate ``d state/dt = f(state)`` with classical fourth-order Runge–Kutta; returns the
    (steps + 1, len(state)) trajectory, the initial state first."""
    if steps < 0 or not dt > 0:
        raise ValueError(f"need steps >= 0 and dt > 0; got steps={steps}, dt={dt}")
    s = np.asarray(state, np.float64).copy()
    out = np.empty((steps + 1, s.size))
    out[0] = s
    for i in range(steps):
        k1 = f(s)
        k2 = f(s + 0.5 * dt * k1)
        k3 = f(s + 0.5 * dt * k2)
        k4 = f(s + dt * k3)
        s = s + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        out[i + 1] = s
    return out


def continuous_time(x0: float, y0: float, t_end: float, dt: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """The continuous-time dynamics from (x0, y0) up to ``t_end``, by RK4 with step ``dt``.

    Returns (t, trajectory) with trajectory (n + 1, 2) of (x, y); n = round(t_end / dt).
    """
    n = max(int(round(t_end / dt)), 1)
    h = t_end / n
    return np.arange(n + 1) * h, rk4(velocity, (x0, y0), h, n)


def exact_solution(x0: float, y0: float, t) -> np.ndarray:
    """§8.2's solution: x(t) = x0 cos t − y0 sin t, y(t) = x0 sin t + y0 cos t; shape (len(t), 2)."""
    t = np.asarray(t, np.float64)
    return np.stack([x0 * np.cos(t) - y0 * np.sin(t), x0 * np.sin(t) + y0 * np.cos(t)], axis=-1)


def simultaneous_steps(x0: float, y0: float, lr: float, steps: int) -> np.ndarray:
    """Both players step at once from the same point: x' = x − η·y, y' = y + η·x. (steps + 1, 2)."""
    out = np.empty((steps + 1, 2))
    x, y = float(x0), float(y0)
    out[0] = x, y
    for i in range(steps):
        x, y = x - lr * y, y + lr * x  # both right-hand sides use the old (x, y)
        out[i + 1] = x, y
    return out


def alternating_steps(x0: float, y0: float, lr: float, steps: int) -> np.ndarray:
    """x steps first, then y steps against the new x: x' = x − η·y, y' = y + η·x'. (steps + 1, 2)."""
    out = np.empty((steps + 1, 2))
    x, y = float(x0), float(y0)
    out[0] = x, y
    for i in range(steps):
        x = x - lr * y
        y = y + lr * x  # the new x
        out[i + 1] = x, y
    return out


def radius(trajectory: np.ndarray) -> np.ndarray:
    """Distance √(x² + y²) of every point of a (n, 2) trajectory from the equilibrium (0, 0)."""
    t = np.asarray(trajectory, np.float64)
    return np.hypot(t[:, 0], t[:, 1])


def simultaneous_growth(lr: float) -> float:
    """The factor by which one simultaneous step scales the radius: √(1 + η²) (the norm of A's rows)."""
    return math.sqrt(1.0 + lr * lr)


def alternating_invariant(trajectory: np.ndarray, lr: float) -> np.ndarray:
    """Q = x² − η·x·y + y² at every point: constant along the alternating iterates."""
    t = np.asarray(trajectory, np.float64)
    x, y = t[:, 0], t[:, 1]
    return x * x - lr * x * y + y * y


def check(x0: float = 1.0, y0: float = 0.0, lr: float = 0.2, steps: int = 50, dt: float = 1e-3) -> dict:
    """Measure the three claims from (x0, y0) over ``steps`` steps of size η = ``lr`` (and the same
    time span t = η·steps in continuous time):

    * ``ct_max_radius_dev``: max |r(t) − r(0)| / r(0) of the RK4 solution; ``ct_max_err_vs_exact``:
      max distance from §8.2's closed form;
    * ``sim_growth_measured`` (r_{k+1}/r_k, mean and worst deviation over the steps) against
      ``sim_growth_predicted`` = √(1 + η²);
    * ``alt_invariant_rel_dev``: max |Q_k − Q_0| / Q_0; ``alt_radius_min``/``max`` against the bounds
      √(Q/(1 ± η/2)); ``alt_det`` = det B = 1.
    """
    if steps < 1 or not lr > 0:
        raise ValueError(f"need steps >= 1 and lr > 0; got steps={steps}, lr={lr}")
    r0 = math.hypot(x0, y0)
    t, ct = continuous_time(x0, y0, lr * steps, dt)
    sim = simultaneous_steps(x0, y0, lr, steps)
    alt = alternating_steps(x0, y0, lr, steps)
    ratios = radius(sim)[1:] / radius(sim)[:-1]
    q = alternating_invariant(alt, lr)
    r_alt = radius(alt)
    out = {
        "x0": x0,
        "y0": y0,
        "lr": lr,
        "steps": steps,
        "ct_dt": float(t[1] - t[0]),
        "ct_max_radius_dev": float(np.max(np.abs(radius(ct) - r0)) / r0),
        "ct_max_err_vs_exact": float(np.max(np.linalg.norm(ct - exact_solution(x0, y0, t), axis=1))),
        "sim_growth_predicted": simultaneous_growth(lr),
        "sim_growth_measured": float(np.mean(ratios)),
        "sim_growth_max_dev": float(np.max(np.abs(ratios - simultaneous_growth(lr)))),
        "sim_radius_final": float(radius(sim)[-1]),
        "sim_radius_final_predicted": r0 * simultaneous_growth(lr) ** steps,
        "alt_det": float(np.linalg.det(np.array([[1.0, -lr], [lr, 1.0 - lr * lr]]))),
        "alt_invariant_rel_dev": float(np.max(np.abs(q - q[0])) / q[0]),
        "alt_radius_min": float(r_alt.min()),
        "alt_radius_max": float(r_alt.max()),
        "alt_radius_bounds": (
            (math.sqrt(q[0] / (1 + lr / 2)), math.sqrt(q[0] / (1 - lr / 2))) if lr < 2 else (float("nan"),) * 2
        ),
    }
    return out


def figure(path, x0: float = 1.0, y0: float = 0.0, lr: float = 0.2, steps: int = 50) -> dict:
    """The three trajectories from (x0, y0) for η = ``lr`` and ``steps`` steps (continuous time over the
    same span t = η·steps): (a) in the (x, y) plane — the circle, the outward spiral and the ellipse —
    and (b) their radius against the step, with the predicted growth √(1 + η²)^k and the alternating
    bounds. Written as a PNG through :func:`gancore.common.grid.save_plot`; returns :func:`check`'s numbers."""
    from ..common.grid import pyplot, save_plot

    info = check(x0, y0, lr, steps)
    t, ct = continuous_time(x0, y0, lr * steps)
    sim = simultaneous_steps(x0, y0, lr, steps)
    alt = alternating_steps(x0, y0, lr, steps)
    q0 = x0 * x0 - lr * x0 * y0 + y0 * y0
    k = np.arange(steps + 1)
    plt = pyplot()
    fig, (ax, ax_r) = plt.subplots(1, 2, figsize=(10.0, 4.8), gridspec_kw=dict(width_ratios=(1.0, 1.05)))
    ax.plot(ct[:, 0], ct[:, 1], "k-", lw=1.8, label="continuous time (RK4)")
    ax.plot(sim[:, 0], sim[:, 1], "o-", color="tab:red", ms=2.5, lw=1.0, label=f"simultaneous steps, η = {lr:g}")
    ax.plot(alt[:, 0], alt[:, 1], "s--", color="tab:blue", ms=2.5, lw=0.9, label=f"alternating steps, η = {lr:g}")
    ax.plot([x0], [y0], "k*", ms=10, label=f"start ({x0:g}, {y0:g})")
    ax.plot([0], [0], "+", color="0.3", ms=12, mew=1.5, label="equilibrium (0, 0)")
    lim = 1.08 * float(max(np.abs(sim).max(), np.abs(alt).max(), np.abs(ct).max()))
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="x (minimizes V = xy)", ylabel="y (maximizes V)")
    ax.set_aspect("equal")
    ax.axhline(0, color="0.9", lw=0.8, zorder=0)
    ax.axvline(0, color="0.9", lw=0.8, zorder=0)
    ax.set_title(f"(a) the (x, y) plane, {steps} steps", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", framealpha=0.9)

    r0 = math.hypot(x0, y0)
    ax_r.plot(t[:: max(len(t) // 400, 1)] / lr, radius(ct)[:: max(len(t) // 400, 1)], "k-", lw=1.8, label="continuous")
    ax_r.plot(k, radius(sim), "o", color="tab:red", ms=3, label="simultaneous (measured)")
    ax_r.plot(
        k,
        r0 * simultaneous_growth(lr) ** k,
        "-",
        color="tab:red",
        lw=0.8,
        label=f"√(1+η²)^k = {simultaneous_growth(lr):.4f}^k",
    )
    ax_r.plot(k, radius(alt), "s", color="tab:blue", ms=3, label="alternating (measured)")
    lo, hi = info["alt_radius_bounds"]
    ax_r.axhline(lo, color="tab:blue", lw=0.8, ls=":")
    ax_r.axhline(hi, color="tab:blue", lw=0.8, ls=":", label=f"√(Q/(1 ± η/2)), Q = x² − ηxy + y² = {q0:g}")
    ax_r.set(xlabel="step k (continuous time: t / η)", ylabel="radius √(x² + y²)")
    ax_r.set_title(
        f"(b) radius: ×{info['sim_growth_measured']:.6f} per simultaneous step (predicted "
        f"{info['sim_growth_predicted']:.6f})",
        fontsize=9,
    )
    ax_r.legend(fontsize=7, loc="upper left", framealpha=0.9)
    fig.suptitle("Gradient descent on V(x, y) = xy (Goodfellow 2016, exercise §7.2)", fontsize=10)
    fig.tight_layout()
    save_plot(fig, path)
    return {"path": str(path), **info}
