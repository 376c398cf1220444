"""Two figures of the NIPS 2016 GAN tutorial (Goodfellow 2016), computed by gancore's own code.

    python -m gancore.evaluate.tutorial_figures OUT_DIR      # writes the two PNGs, prints the checks

* ``tutorial_generator_costs.png`` — the tutorial's Figure 16 (§3.2.6, "Comparison of cost
  functions"): the generator's cost for one sample as a function of D(G(z)), for the three games of
  §3.2.2–3.2.4. The curves are **gancore's** :func:`gancore.train.losses.generator_loss` evaluated on
  logits l = σ⁻¹(D) = log(D / (1 − D)), one sample at a time, so the figure shows what training
  optimizes. The tutorial writes every cost with the ½ of its J^(D) = −½ E log D(x) − ½ E log(1 − D(G(z))):

  ==================  ==============================  ===============================  =====
  game                tutorial J^(G)                  ``generator_loss`` (one sample)  scale
  ==================  ==============================  ===============================  =====
  minimax             ½ log(1 − D)                    log(1 − D) = −softplus(l)        ½
  non-saturating      −½ log D                        −log D = softplus(−l)            ½
  maximum likelihood  −½ exp(σ⁻¹(D)) = −½ D/(1 − D)   −½ exp(l)                        1
  ==================  ==============================  ===============================  =====

  gancore's minimax and non-saturating losses leave the ½ out (a constant factor: the same
  minimizer, gradients twice the tutorial's); its maximum-likelihood loss keeps it. The figure
  multiplies by :data:`TUTORIAL_SCALE` so that it is drawn in the tutorial's units.
* ``tutorial_xy_game.png`` — exercise §7.2, gradient descent on V(x, y) = xy
  (:mod:`gancore.evaluate.game_dynamics`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

__all__ = ["TUTORIAL_SCALE", "figure_generator_costs", "generator_cost_curves", "main", "write_figures"]

logger = logging.getLogger(__name__)

# generator_loss(l, kind) × TUTORIAL_SCALE[kind] = the tutorial's J^(G) for one sample (module docstring).
TUTORIAL_SCALE = {"minimax": 0.5, "nonsaturating": 0.5, "maxlikelihood": 1.0}
LABELS = {"minimax": "Minimax", "nonsaturating": "Non-saturating heuristic", "maxlikelihood": "Maximum likelihood cost"}


def generator_cost_curves(d) -> dict[str, np.ndarray]:
    """The tutorial's J^(G) of one sample at every D(G(z)) in ``d`` (values in (0, 1)), per game,
    computed with gancore's ``generator_loss`` on the logit σ⁻¹(D) in float64."""
    import torch

    from ..train.losses import generator_loss

    d = np.asarray(d, np.float64)
    if d.ndim != 1 or d.size == 0 or not ((d > 0) & (d < 1)).all():
        raise ValueError("d must be a non-empty 1-D array of probabilities strictly between 0 and 1")
    logits = torch.from_numpy(np.log(d) - np.log1p(-d))  # σ⁻¹(D), shape (n,)
    out = {}
    for kind, scale in TUTORIAL_SCALE.items():
        # One sample per call: generator_loss averages over its batch, and a batch of one is that sample.
        per_sample = torch.stack([generator_loss(logit.reshape(1), kind) for logit in logits])
        out[kind] = scale * per_sample.numpy()
    return out


def figure_generator_costs(path, n: int = 999) -> dict:
    """The tutorial's Figure 16 from gancore's losses: J^(G) against D(G(z)) on (0, 1)."""
    from ..common.grid import pyplot, save_plot

    d = np.linspace(0.0, 1.0, n + 2)[1:-1]  # open interval: the costs are infinite at 0 or 1
    curves = generator_cost_curves(d)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    styles = {"minimax": ("tab:blue", "-"), "nonsaturating": ("tab:green", "--"), "maxlikelihood": ("tab:red", "-.")}
    for kind, j in curves.items():
        color, ls = styles[kind]
        ax.plot(d, j, color=color, ls=ls, lw=2.0, label=f"{LABELS[kind]} (×{TUTORIAL_SCALE[kind]:g} generator_loss)")
    ax.set(xlim=(0, 1), ylim=(-20, 5), xlabel="D(G(z))", ylabel="$J^{(G)}$")
    ax.axhline(0, color="0.85", lw=0.8, zorder=0)
    ax.set_title("Generator costs from gancore.train.losses (tutorial Figure 16)", fontsize=9)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    save_plot(fig, path)
    return {"path": str(path), "d": d, **curves}


def write_figures(out_dir) -> dict:
    """Write both figures into ``out_dir``; returns their paths and the §7.2 checks."""
    from .game_dynamics import figure as xy_figure

    out_dir = Path(out_dir)
    costs = figure_generator_costs(out_dir / "tutorial_generator_costs.png")
    game = xy_figure(out_dir / "tutorial_xy_game.png")
    return {"generator_costs": costs["path"], "xy_game": game}


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m gancore.evaluate.tutorial_figures",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("out_dir", help="folder for tutorial_generator_costs.png and tutorial_xy_game.png")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    info = write_figures(args.out_dir)
    g = info["xy_game"]
    print(f"Figure 16 → {info['generator_costs']}")
    print(f"§7.2 → {g['path']} (x0, y0 = {g['x0']:g}, {g['y0']:g}; η = {g['lr']:g}; {g['steps']} steps)")
    print(
        f"  continuous time (RK4, dt = {g['ct_dt']:g}): max |r − r0|/r0 = {g['ct_max_radius_dev']:.3e}, "
        f"max distance from the closed form = {g['ct_max_err_vs_exact']:.3e}"
    )
    print(
        f"  simultaneous: radius × {g['sim_growth_measured']:.15f} per step (mean), predicted √(1+η²) = "
        f"{g['sim_growth_predicted']:.15f}, worst step off by {g['sim_growth_max_dev']:.3e}; "
        f"final r = {g['sim_radius_final']:.12f} vs {g['sim_radius_final_predicted']:.12f}"
    )
    lo, hi = g["alt_radius_bounds"]
    print(
        f"  alternating: det B = {g['alt_det']:.15f}, max |Q − Q0|/Q0 = {g['alt_invariant_rel_dev']:.3e}, "
        f"r in [{g['alt_radius_min']:.6f}, {g['alt_radius_max']:.6f}] within the bounds [{lo:.6f}, {hi:.6f}]"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
