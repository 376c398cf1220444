"""Draw two codes' Parzen numbers over seeds side by side (README "Seeds: the two codes as distributions").

    python tools/seed_distribution_figure.py OUT.png --sweep runs/sweep/summary.json --epoch 5 \
        --other "authors' mnist.yaml" -22.4 -276.4 -69.0 -149.2 -124.8 -218.4

``--sweep``: the summary.json of ``python -m gancore.train.sweep``; ``--other``: a label and the other
code's values at the same epoch (the 2014 code's runs are scored outside gancore's sweep).
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

from gancore.common.grid import pyplot, save_plot


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--sweep", type=Path, required=True)
    p.add_argument("--epoch", type=int, required=True)
    p.add_argument("--other", nargs="+", required=True, metavar="LABEL_THEN_VALUES")
    a = p.parse_args(argv)
    summary = json.loads(a.sweep.read_text())
    ours = [r["test"] for r in summary["runs"] if r["epoch"] == a.epoch]
    if not ours:
        p.error(f"--sweep {a.sweep} has no runs scored at epoch {a.epoch}")
    try:
        label, other = a.other[0], [float(v) for v in a.other[1:]]
    except ValueError:
        p.error("--other takes a label, then numbers")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for x, values in enumerate([other, ours]):
        ax.scatter([x] * len(values), values, s=36, alpha=0.8)
        ax.hlines(statistics.median(values), x - 0.2, x + 0.2, color="k")
        ax.annotate(f"median {statistics.median(values):.1f}", (x + 0.22, statistics.median(values)), va="center")
    ax.set_xticks([0, 1], [f"{label}\n({len(other)} runs)", f"gancore mnist_2014\n({len(ours)} seeds)"])
    ax.set_xlim(-0.5, 1.9)
    ax.set_ylabel("Parzen test log-likelihood (nats)")
    ax.set_title(f"MNIST after {a.epoch} epochs, paper protocol")
    fig.tight_layout()
    save_plot(fig, a.out)
    print(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
