"""The birthday-paradox support estimate (Arora & Zhang 2017, "Do GANs actually learn the distribution?
An empirical study", §2): how many distinct images does a generator really produce?

For a distribution uniform on N items, a batch of s independent draws holds a repeated item with
probability 1 − Π_{i<s}(1 − i/N) ≈ 1 − exp(−s(s − 1)/(2N)), which is ½ at s(s − 1) = 2N ln 2. So the
batch size s_½ at which duplicates appear with probability ½ estimates the support::

    N̂ = s_½ (s_½ − 1) / (2 ln 2)            (uniform on N̂ items; this module's ``support``)

Arora & Zhang state the rule as "support ≈ s²" (``support_s2`` here, s_½², which is 2 ln 2 ≈ 1.39
times N̂); for a non-uniform distribution duplicates come sooner, so either is an estimate of an
effective support size, small when the generator has collapsed.

A *duplicate* is a near-duplicate: two images of a batch whose Euclidean pixel distance is at most a
threshold τ, found with gancore's exact nearest-neighbor kernel (:func:`gancore.nearest_neighbors`,
each batch against itself, k = 2). Arora & Zhang judged the closest pairs by eye; here τ is
calibrated on real data (:func:`threshold_from_real`): the ``quantile`` (default 0.1 %) of the
distances from each of N real training images to its nearest other one. Real pairs closer than τ
are that rare, so a generator whose batches keep producing them repeats itself.

s_½ is found by doubling s until the measured duplicate rate over ``trials`` batches reaches ½, then
bisecting between the last two sizes (:func:`birthday_test`). When no size up to ``max_size``
reaches ½, the result is a lower bound (``reached = False``).

Run ``python -m gancore.evaluate.birthday RUN_DIR`` for a trained generator (writes
``RUN_DIR/birthday.json``), or ``python -m gancore.evaluate.birthday --calibrate`` for the two
calibrations: MNIST test images (no duplicates expected: a large estimate, or a lower bound) and a
constructed collapsed generator that draws one of K test images plus a little pixel noise (estimate
near K).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Callable

import numpy as np

from ..common.atomic import write_atomic

log = logging.getLogger(__name__)

DEFAULT_QUANTILE = 1e-3


def nearest_other_distances(x: np.ndarray, *, n_threads: int = 0) -> np.ndarray:
    """For each row of ``x`` (n ≥ 2, d), the Euclidean distance to its nearest *other* row."""
    from ..neighbors import nearest_neighbors

    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need at least 2 rows of shape (n, d); got {x.shape}")
    idx, d2 = nearest_neighbors(x, x, 2, n_threads=n_threads)
    # Column 0 is the row itself (distance 0), unless an exact copy with a lower index ties with it
    # (equal distances go to the lower index): then column 0 is that copy, at distance 0.
    self_first = idx[:, 0] == np.arange(len(x))
    return np.sqrt(np.where(self_first, d2[:, 1], d2[:, 0]))


def threshold_from_real(real: np.ndarray, *, quantile: float = DEFAULT_QUANTILE, n_threads: int = 0) -> float:
    """τ: the ``quantile`` of the real rows' nearest-other-row distances."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1); got {quantile}")
    return float(np.quantile(nearest_other_distances(real, n_threads=n_threads), quantile))


def has_near_duplicate(batch: np.ndarray, threshold: float, *, n_threads: int = 0) -> bool:
    """Whether two rows of ``batch`` lie within ``threshold`` of each other."""
    return bool(nearest_other_distances(batch, n_threads=n_threads).min() <= threshold)


def birthday_test(
    draw: Callable[[int, np.random.Generator], np.ndarray],
    threshold: float,
    *,
    trials: int = 20,
    start: int = 8,
    max_size: int = 4096,
    bisections: int = 4,
    seed: int = 0,
    n_threads: int = 0,
) -> dict:
    """Estimate s_½ and the support of the distribution ``draw(s, rng)`` samples batches (s, d) from.

    Returns ``s_half``, ``support`` = s(s − 1)/(2 ln 2), ``support_s2`` = s², ``reached`` (False: no
    batch size up to ``max_size`` gave duplicates half the time, so s_half and the supports are lower
    bounds) and the measured ``curve`` [(s, duplicate rate)].
    """
    if threshold < 0 or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite distance >= 0; got {threshold}")
    if trials < 1:
        raise ValueError(f"trials must be >= 1; got {trials}")
    if not 2 <= start <= max_size:
        raise ValueError(f"need 2 <= start <= max_size; got start={start}, max_size={max_size}")
    rng = np.random.default_rng(seed)
    curve: dict[int, float] = {}

    def rate(s: int) -> float:
        if s not in curve:
            hits = sum(has_near_duplicate(draw(s, rng), threshold, n_threads=n_threads) for _ in range(trials))
            curve[s] = hits / trials
            log.info("s = %d: duplicates in %d/%d batches", s, hits, trials)
        return curve[s]

    lo, s = 1, start
    while rate(s) < 0.5:
        if s == max_size:
            return _result(s, False, curve, threshold, trials)
        lo, s = s, min(2 * s, max_size)
    hi = s
    for _ in range(bisections):  # the duplicate rate first reaches ½ in (lo, hi]
        if hi - lo <= 1:
            break
        mid = (lo + hi) // 2
        if rate(mid) >= 0.5:
            hi = mid
        else:
            lo = mid
    return _result(hi, True, curve, threshold, trials)


def _result(s: int, reached: bool, curve: dict, threshold: float, trials: int) -> dict:
    return dict(
        s_half=s,
        support=s * (s - 1) / (2.0 * math.log(2.0)),
        support_s2=s * s,
        reached=reached,
        threshold=threshold,
        trials=trials,
        curve=sorted(curve.items()),
    )


def describe(name: str, r: dict) -> str:
    bound = "" if r["reached"] else "> "
    return (
        f"{name}: s_½ {bound}{r['s_half']}, support ≈ {bound}{r['support']:,.0f} "
        f"(s² rule: {bound}{r['support_s2']:,}); τ = {r['threshold']:.4f}, {r['trials']} batches per size"
    )


# ---------------------------------------------------------------------------------------------


def collapsed_generator(base: np.ndarray, noise: float) -> Callable[[int, np.random.Generator], np.ndarray]:
    """A constructed collapsed generator: each sample is one of the rows of ``base`` (uniformly) plus
    N(0, noise²) pixel noise, clipped to [0, 1]."""

    def draw(s: int, rng: np.random.Generator) -> np.ndarray:
        rows = base[rng.integers(0, len(base), size=s)]
        return np.clip(rows + noise * rng.standard_normal(rows.shape), 0.0, 1.0).astype(np.float32)

    return draw


def real_pool(images: np.ndarray) -> Callable[[int, np.random.Generator], np.ndarray]:
    """Batches of distinct rows of ``images`` (drawn without replacement: an index drawn twice would be a
    duplicate of the sampling, not of the data)."""

    def draw(s: int, rng: np.random.Generator) -> np.ndarray:
        if s > len(images):
            raise ValueError(f"batch size {s} exceeds the {len(images)} real images")
        return images[rng.choice(len(images), size=s, replace=False)]

    return draw


def generator_draw(gen, noise_dim: int, prior: str, *, seed: int = 0):
    import torch

    from ..train.models import sample_noise

    g = torch.Generator().manual_seed(seed)

    def draw(s: int, rng: np.random.Generator) -> np.ndarray:
        out = []
        with torch.no_grad():
            for lo in range(0, s, 1000):
                z = sample_noise(min(1000, s - lo), noise_dim, prior, generator=g)
                out.append(gen(z).float().cpu().numpy())
        return np.concatenate(out)

    return draw


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m gancore.evaluate.birthday",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("run_dir", nargs="?", help="a gancore run directory (its latest checkpoint's G)")
    ap.add_argument(
        "--samples",
        metavar="FILE",
        help="score stored samples instead: a .npz with 'samples' (as gancore.evaluate writes) or a .npy (n, D) in "
        "[0, 1]; batches are drawn from them without replacement (writes FILE's name + .birthday.json)",
    )
    ap.add_argument("--dataset", default="mnist", help="with --samples: the dataset tau is calibrated on (mnist)")
    ap.add_argument("--calibrate", action="store_true", help="run the real-data and collapsed-generator checks")
    ap.add_argument("--quantile", type=float, default=DEFAULT_QUANTILE, help="τ's quantile (default 0.001)")
    ap.add_argument("--calibration-rows", type=int, default=10000, help="training images τ is calibrated on")
    ap.add_argument("--trials", type=int, default=20, help="batches per batch size (default 20)")
    ap.add_argument("--max-size", type=int, default=4096, help="largest batch size tried (default 4096)")
    ap.add_argument("--collapsed", type=int, nargs="+", default=[100, 1000], metavar="K", help="K of the checks")
    ap.add_argument("--noise", type=float, default=0.01, help="pixel noise of the collapsed generator")
    ap.add_argument("--data-dir", default=None, help="where datasets live")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="threads of the nearest-neighbor kernel (default 1)")
    args = ap.parse_args(argv)
    if sum([args.run_dir is not None, args.calibrate, args.samples is not None]) != 1:
        ap.error("give RUN_DIR, --samples FILE or --calibrate (one of them)")
    if not 0.0 < args.quantile < 1.0:
        ap.error(f"--quantile must be in (0, 1); got {args.quantile}")
    for name in ("calibration_rows", "trials", "max_size"):
        if getattr(args, name) < 2:
            ap.error(f"--{name.replace('_', '-')} must be >= 2; got {getattr(args, name)}")
    if args.noise < 0 or any(k < 1 for k in args.collapsed):
        ap.error("--noise must be >= 0 and every --collapsed K >= 1")
    if args.threads < 0:
        ap.error(f"--threads must be >= 0; got {args.threads}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from ..data import load_split

    opts = dict(trials=args.trials, max_size=args.max_size, seed=args.seed, n_threads=args.threads)
    pool = None
    if args.calibrate:
        dataset = "mnist"
    elif args.samples is not None:
        dataset, pool = args.dataset, _read_samples(Path(args.samples), ap)
    else:
        from ..train.checkpoints import load_generator

        gen, cfg = load_generator(args.run_dir)
        dataset = cfg["dataset"]
    train = load_split(dataset, "train", data_dir=args.data_dir)[: args.calibration_rows]
    tau = threshold_from_real(train, quantile=args.quantile, n_threads=args.threads)
    print(f"τ = {tau:.4f}: the {args.quantile:g} quantile of {len(train)} {dataset} training images' nearest-other")
    if args.calibrate:
        test = load_split("mnist", "test", data_dir=args.data_dir)
        r = birthday_test(real_pool(test), tau, **{**opts, "max_size": min(args.max_size, len(test))})
        print(describe(f"MNIST test images ({len(test)})", r))
        for k in args.collapsed:
            base = test[np.random.default_rng(args.seed).choice(len(test), size=k, replace=False)]
            r = birthday_test(collapsed_generator(base, args.noise), tau, **opts)
            print(describe(f"collapsed generator, K = {k} images + N(0, {args.noise:g}²) noise", r))
        return 0
    if pool is not None:
        r = birthday_test(real_pool(pool), tau, **{**opts, "max_size": min(args.max_size, len(pool))})
        r.update(quantile=args.quantile, calibration_rows=len(train), pool=len(pool))
        target = Path(args.samples).with_name(Path(args.samples).name + ".birthday.json")
        name = f"{len(pool)} samples of {args.samples}"
    else:
        import torch

        torch.set_num_threads(max(1, args.threads))
        r = birthday_test(generator_draw(gen, cfg["noise_dim"], cfg["noise_prior"], seed=args.seed), tau, **opts)
        r["quantile"], r["calibration_rows"] = args.quantile, len(train)
        target, name = Path(args.run_dir) / "birthday.json", f"G of {args.run_dir}"
    write_atomic(target, json.dumps(r, indent=1))
    print(describe(name, r))
    print(f"→ {target}")
    return 0


def _read_samples(path: Path, ap) -> np.ndarray:
    """Stored samples (n, D) in [0, 1]: the ``samples`` array of a .npz, or a .npy; ``ap.error`` otherwise."""
    try:
        if path.suffix == ".npz":
            with np.load(path) as z:
                if "samples" not in z.files:
                    ap.error(f"--samples {path}: no 'samples' array (has {', '.join(z.files)})")
                x = z["samples"]
        else:
            x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        ap.error(f"--samples {path}: cannot be read ({exc})")
    x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    if x.shape[0] < 2 or not np.isfinite(x).all():
        ap.error(f"--samples {path}: need at least 2 finite samples; got shape {x.shape}")
    return x


if __name__ == "__main__":
    raise SystemExit(main())
