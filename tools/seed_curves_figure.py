"""Draw each run's Parzen number against epochs, two codes in two colors (README "Seeds").

    python tools/seed_curves_figure.py OUT.png --sweep runs/sweep/summary.json --epochs 5,10,25 \
        --other "authors' mnist.yaml" A=-22.4,70.5,119.7 B=-276.4,-278.1,- ...

``--sweep``: the summary.json of ``python -m gancore.train.sweep`` (one curve per seed); ``--other``: a
label, then one ``NAME=v1,v2,...`` per run of the other code, a value for each of ``--epochs`` (``-`` where
the run was not scored at that epoch). The 2014 code's runs are scored outside gancore's sweep, hence
the values on the command line. Each curve's last point is labeled with its run's name.
"""

import argparse
import json
import math
import sys
from pathlib import Path

from gancore.common.grid import pyplot, save_plot


def parse_run(text: str, n_epochs: int) -> tuple[str, list[float]]:
    """``NAME=v1,v2,...`` → (name, values), ``-`` as NaN; a ``ValueError`` saying what is wrong."""
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise ValueError(f"a run is NAME=v1,v2,...; got {text!r}")
    values = [math.nan if v.strip() == "-" else float(v) for v in rest.split(",")]
    if len(values) != n_epochs:
        raise ValueError(f"run {name} has {len(values)} values for {n_epochs} epochs")
    return name, values


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--sweep", type=Path, required=True)
    p.add_argument("--epochs", required=True, help="the epochs of the curves, e.g. 5,10,25")
    p.add_argument("--other", nargs="+", required=True, metavar="LABEL_THEN_RUNS")
    a = p.parse_args(argv)
    try:
        epochs = [int(e) for e in a.epochs.split(",")]
        runs = [parse_run(r, len(epochs)) for r in a.other[1:]]
    except ValueError as exc:
        p.error(str(exc))
    if not runs:
        p.error("--other takes a label, then at least one NAME=v1,v2,... run")
    summary = json.loads(a.sweep.read_text())
    ours: dict[int, dict[int, float]] = {}
    for r in summary["runs"]:
        ours.setdefault(r["seed"], {})[r["epoch"]] = r["test"]
    if not any(e in v for v in ours.values() for e in epochs):
        p.error(f"--sweep {a.sweep} has no runs scored at epochs {a.epochs}")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    for i, (name, values) in enumerate(runs):
        ax.plot(epochs, values, "o-", color="tab:blue", alpha=0.75, label=a.other[0] if i == 0 else None)
        last = max((j for j, v in enumerate(values) if not math.isnan(v)), default=None)
        if last is not None:
            ax.annotate(name, (epochs[last], values[last]), xytext=(4, 0), textcoords="offset points", fontsize=7)
    for i, (seed, by_epoch) in enumerate(sorted(ours.items())):
        values = [by_epoch.get(e, math.nan) for e in epochs]
        ax.plot(epochs, values, "s--", color="tab:orange", alpha=0.75, label="gancore mnist_2014" if i == 0 else None)
        last = max((j for j, v in enumerate(values) if not math.isnan(v)), default=None)
        if last is not None:
            ax.annotate(
                f"s{seed}", (epochs[last], values[last]), xytext=(4, -8), textcoords="offset points", fontsize=7
            )
    ax.axhline(225, color="0.5", lw=0.8, ls=":")
    ax.annotate("Table 1: 225", (epochs[0], 225), xytext=(0, 3), textcoords="offset points", fontsize=7)
    ax.set_xticks(epochs)
    ax.set_xlabel("epoch")
    ax.set_ylabel("Parzen test log-likelihood (nats)")
    ax.set_title("MNIST, paper protocol: every run of both codes")
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    save_plot(fig, a.out)
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
