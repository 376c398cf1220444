"""The loss / D-output curve figure of a run (``curves.png``), drawn from ``metrics.jsonl``."""

from __future__ import annotations

import json
from pathlib import Path


def read_metrics(path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(metrics_path, out_path) -> Path | None:
    """Two panels against the step: loss_d and loss_g; mean D(x) and mean D(G(z)) (with the 1/2 of
    the game's equilibrium marked). Returns None when there is nothing to plot yet."""
    rows = read_metrics(metrics_path)
    if not rows:
        return None
    from ..common.grid import pyplot, save_plot

    plt = pyplot()

    steps = [r["step"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(steps, [r["loss_d"] for r in rows], label="loss_d")
    ax1.plot(steps, [r["loss_g"] for r in rows], label="loss_g")
    ax1.set_xlabel("step")
    ax1.set_title("losses")
    ax1.legend()
    ax2.plot(steps, [r["d_real"] for r in rows], label="mean D(x)")
    ax2.plot(steps, [r["d_fake"] for r in rows], label="mean D(G(z))")
    ax2.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("step")
    ax2.set_title("discriminator outputs")
    ax2.legend()
    fig.tight_layout()
    return save_plot(fig, out_path, dpi=100)
