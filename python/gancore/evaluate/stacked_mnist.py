"""Stacked MNIST mode counting: how many of the 1,000 digit triples does a generator produce?

The measure of Metz et al. (2016, §3.3) as VEEGAN (Srivastava et al. 2017, Table 2) and PacGAN (Lin et
al. 2018, Table 2) report it: draw N = 26,000 samples (PacGAN's code, ``num_test_sample``), classify each
of the three channels with a pretrained MNIST classifier (here the bundled one,
:mod:`.classifier`), and call (d_R, d_G, d_B) the sample's mode. Then

* **modes covered**: how many of the 1,000 modes get at least one sample (PacGAN's code counts the
  distinct triples; no threshold);
* **KL(mode histogram ‖ uniform)** = Σ_m p_m log(1000 p_m) in nats (0 for a perfectly balanced set,
  log 1000 = 6.91 when every sample is one mode), the direction PacGAN's code computes.

Real data is the reference row: N real stacked images cover ≈ 1000·(1 − e^(−N/1000)) modes (all of them
at N = 26,000) with a small KL, less the classifier's few errors.

    python -m gancore.evaluate.stacked_mnist RUN_DIR          # G of a stacked-mnist run → RUN_DIR/stacked_mnist.json
    python -m gancore.evaluate.stacked_mnist --real           # the real-data row (stacked-mnist train[:N])
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from ..common.atomic import write_atomic
from .class_metrics import class_histogram, kl_to_uniform

__all__ = [
    "N_MODES",
    "N_SAMPLES",
    "channel_digits",
    "markdown_section",
    "modes_of",
    "stacked_mnist_report",
    "summarize_modes",
]

N_MODES = 1000
N_SAMPLES = 26000  # VEEGAN's and PacGAN's sample count
_PIXELS = 28 * 28


def channel_digits(images, *, device="cpu") -> np.ndarray:
    """(n, 3) int64: the bundled classifier's digit for the R, G and B channel of each (n, 3·784) image."""
    from .classifier import predict_labels

    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != 3 * _PIXELS or x.shape[0] == 0:
        raise ValueError(f"images must be a non-empty (n, {3 * _PIXELS}) array of (3, 28, 28) images; got {x.shape}")
    x = x.reshape(x.shape[0], 3, _PIXELS)  # channel-major, as gancore.data lays out (C, H, W)
    return np.stack([predict_labels(np.ascontiguousarray(x[:, c]), device=device) for c in range(3)], axis=1)


def modes_of(digits) -> np.ndarray:
    """Mode labels 100·d_R + 10·d_G + d_B (int64, 0..999) of (n, 3) channel digits."""
    d = np.asarray(digits)
    if d.ndim != 2 or d.shape[1] != 3 or d.dtype.kind not in "ui" or d.min() < 0 or d.max() > 9:
        raise ValueError(f"digits must be an (n, 3) integer array of digits 0..9; got shape {d.shape}")
    return (100 * d[:, 0] + 10 * d[:, 1] + d[:, 2]).astype(np.int64)


def summarize_modes(modes) -> dict:
    """Modes covered (≥ 1 sample), KL(histogram ‖ uniform over 1,000) and the histogram's largest modes."""
    hist = class_histogram(np.asarray(modes, dtype=np.int64), N_MODES)
    top = np.argsort(-hist, kind="stable")[:10]
    return {
        "n": int(hist.sum()),
        "modes_covered": int(np.count_nonzero(hist)),
        "kl_to_uniform": kl_to_uniform(hist),
        "top_modes": {f"{m:03d}": int(hist[m]) for m in top if hist[m] > 0},
    }


def stacked_mnist_report(images, *, device="cpu") -> dict:
    """:func:`summarize_modes` of the classifier's modes of ``images`` (n, 2352) in [0, 1]."""
    return summarize_modes(modes_of(channel_digits(images, device=device)))


def markdown_section(r: dict) -> list[str]:
    """The report.md lines for the "stacked_mnist" entry of report.json."""
    out = ["## Stacked MNIST modes (the bundled MNIST classifier, per channel)", ""]
    if "skipped" in r:
        return out + [f"Not computed: {r['skipped']}", ""]
    out += [
        "| set | n | modes covered (of 1,000) | KL(mode histogram ‖ uniform) |",
        "|---|---|---|---|",
        f"| **generator samples** | {r['n']} | {r['modes_covered']} | {r['kl_to_uniform']:.3f} |",
        "",
        "Largest modes (d_R d_G d_B: samples): " + ", ".join(f"{k}: {v}" for k, v in r["top_modes"].items()) + ".",
        "A mode counts when at least one sample lands in it (VEEGAN, PacGAN); KL is ln 1000 = 6.91 when every "
        f"sample is one mode. VEEGAN and PacGAN use {N_SAMPLES:,} samples; `python -m gancore.evaluate.stacked_mnist "
        "RUN_DIR` draws that many.",
        "",
    ]
    return out


def _generator_samples(run_dir, n: int, seed: int) -> tuple[np.ndarray, dict]:
    from ..train.checkpoints import load_generator
    from .pipeline import draw_samples

    gen, cfg = load_generator(run_dir)
    if cfg.get("dataset") != "stacked-mnist":
        raise ValueError(f"{run_dir} was trained on {cfg.get('dataset')!r}, not stacked-mnist")
    # Batches of 1,000, as the README's figures were drawn (the same z stream as one draw of n).
    samples, _ = draw_samples(gen, n, cfg["noise_dim"], cfg["noise_prior"], seed=seed, batch_size=1000)
    return samples, cfg


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m gancore.evaluate.stacked_mnist",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("run_dir", nargs="?", help="a gancore run directory trained with --dataset stacked-mnist")
    ap.add_argument("--real", action="store_true", help="score N real stacked-mnist images instead of a generator")
    ap.add_argument("--split", default="train", choices=("train", "valid", "test"), help="--real: the split")
    ap.add_argument("--n", type=int, default=N_SAMPLES, help=f"samples (default {N_SAMPLES}, as VEEGAN/PacGAN)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the noise the samples are drawn from")
    ap.add_argument("--data-dir", default=None, help="where datasets live")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args(argv)
    if (args.run_dir is None) == (not args.real):
        ap.error("give RUN_DIR or --real (one of them)")
    if args.n < 1:
        ap.error(f"--n must be >= 1; got {args.n}")
    if args.threads < 1:
        ap.error(f"--threads must be >= 1; got {args.threads}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.real:
        from ..data import load_split

        x = load_split("stacked-mnist", args.split, data_dir=args.data_dir)
        if args.n > x.shape[0]:
            ap.error(f"--n {args.n} exceeds the {x.shape[0]} images of stacked-mnist {args.split}")
        r = stacked_mnist_report(x[: args.n])
        name = f"real: stacked-mnist {args.split}[:{args.n}]"
    else:
        try:
            x, _ = _generator_samples(args.run_dir, args.n, args.seed)
        except (FileNotFoundError, ValueError) as exc:
            ap.exit(2, f"error: {exc}\n")
        r = stacked_mnist_report(x)
        name = f"G of {args.run_dir}"
    r["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"{name}: {r['modes_covered']} of {N_MODES} modes covered, KL(hist ‖ uniform) = {r['kl_to_uniform']:.4f}")
    print("largest modes: " + ", ".join(f"{k}: {v}" for k, v in r["top_modes"].items()) + f" ({r['seconds']} s)")
    if not args.real:
        r["seed"] = args.seed
        write_atomic(Path(args.run_dir) / "stacked_mnist.json", json.dumps(r, indent=1))
        print(f"→ {Path(args.run_dir) / 'stacked_mnist.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
