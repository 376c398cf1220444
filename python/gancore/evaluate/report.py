"""The reproduction report: ``report.json`` (every number) and ``report.md`` (readable Table 1).

``report.md`` puts our Parzen row beside the reference rows computed by the same code and the
paper's Table 1 (Goodfellow et al. 2014), lists every warning first, tabulates the σ curve, embeds
the figures and states the memorization verdict, so a reader can judge the headline number.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..common.atomic import write_atomic
from .table1 import CGAN_MNIST_PARZEN, PAPER_TABLE1, ParzenResult

__all__ = ["headline", "render_markdown", "write_report"]

_PAPER_COLUMN = {"mnist": "mnist", "tfd": "tfd"}
_NAMES = {
    "mnist": "MNIST",
    "fashion-mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
    "tfd": "TFD",
    "stacked-mnist": "Stacked MNIST",
}


def headline(dataset: str, parzen: ParzenResult, *, conditional: bool = False) -> str:
    """One line, e.g. "MNIST Parzen test log-likelihood (paper protocol): 231.4 ± 2.0 nats
    (σ = 0.17); paper: 225 ± 2". A conditional run is set beside the published conditional number
    (Mirza & Osindero 2014), not the unconditional Table 1 row."""
    name = _NAMES.get(dataset, dataset)
    line = (
        f"{name} Parzen test log-likelihood ({parzen.protocol} protocol): "
        f"{parzen.mean:.1f} ± {parzen.se:.1f} nats (σ = {parzen.sigma:.3g})"
    )
    col = _PAPER_COLUMN.get(dataset)
    if conditional and dataset == "mnist":
        m, s = CGAN_MNIST_PARZEN
        line += f"; Mirza & Osindero 2014 (conditional): {m:g} ± {s:g}"
    elif conditional:
        line += "; no published conditional Parzen number for this dataset"
    elif col:
        m, s = PAPER_TABLE1["Adversarial nets"][col]
        line += f"; paper: {m:g} ± {s:g}"
    else:
        line += "; the paper reports no Parzen number for this dataset"
    if parzen.warnings:
        line += f" [{len(parzen.warnings)} WARNING(S): see report.md]"
    return line


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if not math.isfinite(float(o)) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _clean(o):
    """NaN/inf are not JSON: write them as null."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items() if not str(k).startswith("_")}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def write_report(report: dict, out_dir) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir``; keys starting with "_" are in-memory
    only (arrays for figures). Returns the two paths."""
    from .. import __version__

    out_dir = Path(out_dir)
    report.setdefault("gancore_version", __version__)
    report.setdefault("created_utc", datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    clean = _clean(json.loads(json.dumps(_clean(report), default=_json_default)))
    pj = write_atomic(out_dir / "report.json", json.dumps(clean, indent=2, ensure_ascii=False) + "\n")
    pm = write_atomic(out_dir / "report.md", render_markdown(clean))
    return pj, pm


def _row(name: str, r: dict, note: str, *, bold: bool = False) -> str:
    value = f"{r['mean']:.1f} ± {r['se']:.1f}"
    if bold:
        value = f"**{value}**"
    return f"| {name} | {value} | {r['sigma']:.3g} | {r['n_centers']} | {note} |"


def render_markdown(rep: dict) -> str:
    """Markdown text of the report (from the JSON-clean dict)."""
    ds = rep["dataset"]
    name = _NAMES.get(ds, ds)
    p = rep["parzen"]
    out = [f"# gancore evaluation — {name}", ""]
    out += [f"**{rep['headline']}**", ""]
    if rep.get("warnings"):
        out += ["## ⚠ Warnings", ""] + [f"- **{w}**" for w in rep["warnings"]] + [""]

    out += ["## Table 1: Parzen window-based log-likelihood (nats)", ""]
    out += [
        (
            f"Protocol `{p['protocol']}`: {p['n_centers']} samples as centers, σ chosen on "
            f"{p['n_valid']} validation images, mean ± std/√N over {p['n_test']} test images; "
            f"d = {p['d']}; data range [{p['data_range'][0]:.3g}, {p['data_range'][1]:.3g}] "
            f"(the paper's scale is [0,1]). Seed {rep['seed']}; samples in `{rep['samples_file']}`."
        ),
        "",
    ]
    out += ["| model | log-likelihood | σ | centers | what it is |", "|---|---|---|---|---|"]
    out.append(_row("**this run (GAN)**", p, "generator samples", bold=True))
    notes = {
        "train": "real training images as centers: what a generator that reproduced the training set would get",
        "kmeans": "k-means centroids of the training set: not a sampler, yet it scores well (Theis et al. 2016)",
    }
    for k, r in rep.get("references", {}).items():
        out.append(_row(f"reference: {k}", r, notes.get(k, "")))  # same protocol, same code
    col = _PAPER_COLUMN.get(ds)
    if col:
        for model, vals in PAPER_TABLE1.items():
            m, s = vals[col]
            out.append(f"| paper (2014): {model} | {m:g} ± {s:g} | | | Goodfellow et al. 2014, Table 1 |")
    out += [
        "",
        (
            "A higher number is better, but the estimator is weak in high dimension: compare the model "
            "with the reference rows, not only with the paper."
        ),
        "",
    ]

    out += ["### σ → mean validation log-likelihood", "", "| σ | mean validation LL |", "|---|---|"]
    for s, v in zip(p["sigmas"], p["valid_ll"]):
        mark = " ← chosen" if math.isclose(s, p["sigma"]) else ""
        out.append(f"| {s:.4g} | {v:.2f}{mark} |")
    if p.get("grid_edge"):
        out.append("")
        out.append("**The best σ lies on the edge of the grid**: the optimum may lie outside it.")
    out.append("")

    cond = rep.get("conditional")
    if cond:  # a conditional G(z | y): how its Parzen samples were drawn, and the published row
        paper = cond["paper_mnist_parzen"]["conditional adversarial nets"]
        out += ["## Conditional net p(x | y)", "", f"Samples for Table 1: {cond['sample_labels']}."]
        if ds == "mnist":
            out.append(f"Mirza & Osindero (2014), Table 1: conditional adversarial nets {paper[0]} ± {paper[1]}.")
        acc = cond.get("accuracy")
        if acc:
            per = ", ".join(f"{c}: {v:.2f}" for c, v in acc["per_class"].items())
            out += [
                "",
                f"**Conditional accuracy** (samples for class c that the bundled classifier calls c): "
                f"{acc['accuracy']:.3f} over {acc['n']} samples; per class {per}.",
            ]
        out.append("")

    mem = rep.get("memorization")
    if mem:
        dc = mem["data_copying"]
        g, t = mem["generated_nn_distance"], mem["test_nn_distance"]
        nn = mem["one_nn_two_sample"]
        ct = "n/a" if dc["c_t"] is None else f"{dc['c_t']:.2f}"
        out += ["## Memorization", "", f"**Verdict: {mem['verdict']}**", ""]
        out += [
            f"Computed on {mem['n_generated']} generated samples and {mem['n_test']} held-out test images.",
            "",
            "| statistic | value | meaning |",
            "|---|---|---|",
            (
                f"| median distance to nearest training image: generated | {g['median']:.3f} | "
                f"(min {g['min']:.3f}, 1 % {g['q01']:.3f}) |"
            ),
            (
                f"| median distance to nearest training image: test | {t['median']:.3f} | "
                f"(min {t['min']:.3f}, 1 % {t['q01']:.3f}) |"
            ),
            (
                f"| generated samples closer than every test image | {mem['n_generated_closer_than_any_test']} | "
                "near-copies of training images |"
            ),
            (
                f"| data-copying C_T (Meehan et al. 2020) | {ct} | ≪ 0 copying, ≈ 0 fine, ≫ 0 under-fitting; "
                f"{dc['n_cells_kept']}/{dc['n_cells']} k-means cells kept (> τ·m = "
                f"{dc['tau'] * mem['n_generated']:.0f} samples), covering {dc['weight_kept']:.0%} of test data |"
            ),
            f"| global Z_U (all cells pooled) | {dc['z_global']:.2f} | same sign convention |",
            (
                f"| 1-NN two-sample accuracy vs **test** images | {nn['accuracy']:.3f} (generated "
                f"{nn['accuracy_generated']:.2f}, real {nn['accuracy_real']:.2f}) | generalization: ≈ 0.5 with both "
                "parts ≈ 0.5: indistinguishable from fresh data; → 1 easy to tell apart; a lopsided split also means "
                "distinguishable; copies of *training* images also give ≈ 0.5 here |"
            ),
        ]
        nt = mem.get("one_nn_two_sample_train")
        if nt:
            out.append(
                f"| 1-NN two-sample accuracy vs **training** images | {nt['accuracy']:.3f} (generated "
                f"{nt['accuracy_generated']:.2f}, real {nt['accuracy_real']:.2f}) | memorization: well below 0.5 "
                "means samples sit on top of training images (copies) |"
            )
        out.append("")

    if rep.get("classifier"):
        from .class_metrics import markdown_section

        out += markdown_section(rep["classifier"])
    if rep.get("stacked_mnist"):
        from .stacked_mnist import markdown_section as stacked_section

        out += stacked_section(rep["stacked_mnist"])

    if rep.get("birthday"):
        b = rep["birthday"]
        bound = "" if b["reached"] else "> "
        out += [
            "## Birthday-paradox support estimate (Arora & Zhang 2017)",
            "",
            f"Batches of s samples (drawn from the {b['pool']:,} above) hold a near-duplicate pair (distance ≤ τ = "
            f"{b['threshold']:.4f}, the {b['quantile']:g} quantile of {b['calibration_rows']:,} training images' "
            f"nearest-other distances) in half of {b['trials']} batches at s_½ = {bound}{b['s_half']}: support "
            f"≈ {bound}{b['support']:,.0f} (s² rule: {bound}{b['support_s2']:,})"
            + ("." if b["reached"] else "; no batch size up to the pool reached ½, so these are lower bounds."),
            "",
        ]
    figs = rep.get("figures") or {}
    if figs:
        captions = {
            "figure2": "Figure 2: fair random samples; the yellow-framed last column is the nearest training "
            "image of the sample beside it",
            "figure2_pairs": "50 samples beside their nearest training images, with Euclidean distances",
            "figure3": f"Figure 3: {rep.get('interpolation') or 'linear'} interpolations between random z pairs "
            "(each row: one pair)",
            "nn_histogram": "Nearest-training-image distances: generated vs held-out test",
            "sigma_curve": "σ selection curves",
            "class_rows": "Conditional samples: one row per class (0 at the top), the same z down each column",
            "figure1": "Figure 1 on real 1-D data: p_data (black dots), p_g (green), D (blue dashes), "
            "D* = p_data/(p_data + p_g) (grey), during training of a small 1-D GAN",
        }
        out += ["## Figures", ""]
        for k, f in figs.items():
            out += [f"**{captions.get(k, k)}**", "", f"![{k}]({f})", ""]

    tm = rep.get("timings_s") or {}
    if tm:
        out += ["## Timings (s)", "", " · ".join(f"{k} {v:.2f}" for k, v in tm.items()), ""]
    out += [
        "## Reproduce",
        "",
        "```",
        (
            f"python -m gancore.evaluate RUN_DIR --protocol {p['protocol']} "
            f"--seed {rep['seed']} --n-samples {rep['n_samples']}"
        ),
        "```",
        "",
        f"gancore {rep.get('gancore_version', '?')}, {rep.get('created_utc', '')}",
        "",
    ]
    return "\n".join(out)
