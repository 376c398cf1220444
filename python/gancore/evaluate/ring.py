"""Mode collapse on the ring of 8 Gaussians (Metz et al. 2016, "Unrolled Generative Adversarial
Networks", §3.1; also VEEGAN and PacGAN's 2-D ring), and the tutorial's remedies against it (§5.1.1).

The data: a uniform mixture of 8 isotropic Gaussians of standard deviation 0.02 whose means are
equally spaced on a circle of radius 2 (:func:`ring_centers`, :func:`sample_ring`). The nets follow
the shape of the unrolled-GAN authors' toy (poolio/unrolled_gan: two tanh layers each, orthogonal
initialization with gain 1.4, Adam with β1 = 0.5, both players stepped together on one pair of
batches, ``update = simultaneous``, as their loop runs both train ops at once), made smaller so a run
takes seconds on one CPU thread: G is z ∈ R^32 ~ N(0, I) → tanh 64 → tanh 64 → linear 2, D is
2 → tanh 64 → tanh 64 → logit, batch 256, lr 1e-3 for both (theirs: z ∈ R^256, 128 units, batch 512,
lr 1e-4 for D and 1e-3 for G, 25,000 steps; with their learning rates 2,000 of our steps leave G's
samples still spread between the modes).

One iteration is gancore's own :class:`gancore.train.algorithm1.Game` step, so each technique is the
option that ``python -m gancore.train`` has: ``unroll`` (K D steps differentiated through),
``minibatch_features`` (D's output layer also reads minibatch-discrimination features) and
``g_loss = feature_matching`` (G matches the mean of D's last hidden layer).

Metrics (:func:`mode_metrics`) on n = 2,500 generated points, as VEEGAN (Srivastava et al. 2017,
§5.1) counts them: a point is *high quality* when it lies within 3 standard deviations (0.06) of the
nearest mode's mean. VEEGAN counts a mode as captured when it is the nearest mode of at least one
high-quality point (``modes_any``); ``modes_covered`` asks for at least 1 % of the n points (25 of
2,500), so that a mode does not count on the strength of one stray point.

Run ``python -m gancore.evaluate.ring OUT_DIR`` (``--help`` for the options; ``--settings metz2016``
trains the unrolled-GAN authors' sizes, batch, learning rates and length instead of the small defaults,
``--settings veegan2017`` the ReLU nets of VEEGAN's ring script, whose one-layer D lets the plain game
collapse; see ``SETTINGS``). Every (technique,
seed) run is stored in ``OUT_DIR/runs/`` as soon as it ends, so an interrupted command, run again,
goes on with the runs it has not done. It writes ``ring_report.json``, ``ring_samples.png`` (the
last samples of seed 0 of each technique), ``ring_modes_over_time.png`` (which mode the
generator's high-quality samples fall in, step by step: the tutorial's picture of a generator moving
from mode to mode instead of covering them) and ``ring_nearest_modes_over_time.png`` (the same by
nearest mode, quality aside, for a generator that moves between modes without ever sharpening).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.allocator import keep_freed_memory
from ..common.atomic import atomic_path, write_atomic

log = logging.getLogger(__name__)

MODES, RADIUS, STD = 8, 2.0, 0.02
HIGH_QUALITY_STDS = 3.0
COVER_SHARE = 0.01

# Net sizes, batch, learning rates and length: ``small`` is RingConfig's defaults (seconds per run on one
# thread); ``metz2016`` the unrolled-GAN authors' toy (poolio/unrolled_gan), about 10 CPU minutes per
# plain run here; ``veegan2017`` the nets of VEEGAN's 2-D ring script (its params: batch 500, G's input
# 254 + 1 noise dimensions → ReLU 128 → ReLU 128 → 2, D one ReLU layer of 128, Adam lr 1e-3 and β1 0.5
# for both; the generator is what the script calls its inference network, and D reads only the point,
# not VEEGAN's (x, z) pair), 20,000 steps where the script runs 100,000, about 3 CPU minutes per plain run
# here. The data (8 modes, σ 0.02, radius 2; the script's are radius 4, σ 0.05) are the same for all three.
SETTINGS = {
    "small": {},
    "metz2016": dict(steps=25000, noise_dim=256, hidden=128, batch_size=512, lr_d=1e-4, lr_g=1e-3),
    "veegan2017": dict(
        steps=20000,
        noise_dim=255,
        hidden=128,
        batch_size=500,
        activation="relu",
        d_hidden_layers=1,
        lr_d=1e-3,
        lr_g=1e-3,
    ),
}

# RingConfig.activation → the torch.nn module of G's and D's hidden layers.
ACTIVATIONS = {"tanh": "Tanh", "relu": "ReLU"}

TECHNIQUES = {
    "plain": {},
    "unrolled": {"unroll": 5},
    "minibatch": {"minibatch_features": 5},
    "feature_matching": {"g_loss": "feature_matching"},
}


def ring_centers(modes: int = MODES, radius: float = RADIUS) -> np.ndarray:
    """(modes, 2) means equally spaced on a circle, the first at angle 0."""
    angles = 2.0 * np.pi * np.arange(modes) / modes
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def sample_ring(n: int, rng: np.random.Generator, *, modes: int = MODES, radius: float = RADIUS, std: float = STD):
    """n points of the mixture, float32 (n, 2)."""
    centers = ring_centers(modes, radius)
    which = rng.integers(0, modes, size=n)
    return (centers[which] + std * rng.standard_normal((n, 2))).astype(np.float32)


def nearest_modes(samples: np.ndarray, centers: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """For each point, the index of its nearest mode and the distance to that mode's mean."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise ValueError(f"samples must be (n, 2) points; got shape {samples.shape}")
    if not np.isfinite(samples).all():
        raise ValueError("samples contain NaN or inf")
    centers = ring_centers() if centers is None else centers
    dist = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=2)  # (n, modes)
    nearest = dist.argmin(1)
    return nearest, dist[np.arange(len(samples)), nearest]


def assign_modes(samples: np.ndarray, *, std: float = STD, centers: np.ndarray | None = None) -> np.ndarray:
    """For each point, the index of its nearest mode when within 3σ of it (high quality), else −1."""
    nearest, dist = nearest_modes(samples, centers)
    return np.where(dist <= HIGH_QUALITY_STDS * std, nearest, -1)


def mode_metrics(samples: np.ndarray, *, std: float = STD, centers: np.ndarray | None = None) -> dict:
    """``modes_covered`` (modes holding ≥ 1 % of the points as high-quality points), ``high_quality``
    (share of points within 3σ of a mode) and the per-mode counts.

    Quality aside, ``modes_nearest`` counts the modes that are the nearest mode of ≥ 1 % of the points
    and ``top_mode_share`` is the share of the points whose nearest mode is the most common one: a
    generator collapsed onto one mode's neighbourhood, but too spread to be within 3σ of it, has no
    high-quality points, ``modes_nearest`` 1 and ``top_mode_share`` near 1, where one spread evenly
    over the plane has 8 and about 1/8."""
    centers = ring_centers() if centers is None else centers
    nearest, dist = nearest_modes(samples, centers)
    n, modes = len(nearest), len(centers)
    if n == 0:
        raise ValueError("samples is empty")
    high = dist <= HIGH_QUALITY_STDS * std
    counts = np.bincount(nearest[high], minlength=modes)
    nearest_counts = np.bincount(nearest, minlength=modes)
    return dict(
        modes_covered=int((counts >= COVER_SHARE * n).sum()),
        modes_any=int((counts >= 1).sum()),
        high_quality=float(high.mean()),
        counts=counts.tolist(),
        modes_nearest=int((nearest_counts >= COVER_SHARE * n).sum()),
        top_mode_share=float(nearest_counts.max() / n),
        nearest_counts=nearest_counts.tolist(),
    )


# ---------------------------------------------------------------------------------------------
# The nets and one run


@dataclass
class RingConfig:
    """What :class:`gancore.train.algorithm1.Game` reads from a config, for the 2-D toy."""

    seed: int = 0
    steps: int = 1500
    batch_size: int = 256
    noise_dim: int = 32
    hidden: int = 64
    activation: str = "tanh"
    d_hidden_layers: int = 2
    lr_d: float = 1e-3
    lr_g: float = 1e-3
    adam_beta1: float = 0.5
    adam_beta2: float = 0.999
    g_loss: str = "nonsaturating"
    unroll: int = 0
    minibatch_features: int = 0
    minibatch_kernel_dim: int = 5
    update: str = "simultaneous"
    k: int = 1
    noise_prior: str = "gaussian"
    label_smoothing: float = 0.0
    d_loss_halved: bool = False
    precision: str = "fp32"
    max_col_norm: float | None = None
    track_every: int = 100
    track_samples: int = 512
    final_samples: int = 2500


def _nets(cfg: RingConfig):
    import torch
    from torch import nn

    from ..train.models import MinibatchDiscrimination

    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {cfg.activation!r}")
    if cfg.d_hidden_layers < 1:
        raise ValueError(f"d_hidden_layers must be >= 1; got {cfg.d_hidden_layers}")
    act = getattr(nn, ACTIVATIONS[cfg.activation])

    class RingGenerator(nn.Module):
        def __init__(self):
            super().__init__()
            h = cfg.hidden
            self.net = nn.Sequential(nn.Linear(cfg.noise_dim, h), act(), nn.Linear(h, h), act(), nn.Linear(h, 2))

        def forward(self, z):
            return self.net(z)  # (n, 2)

    class RingDiscriminator(nn.Module):
        """``features`` f(x) is the last hidden layer (after its activation); ``head`` the logit, reading
        [f, o] with minibatch features."""

        def __init__(self):
            super().__init__()
            h = cfg.hidden
            deeper = [layer for _ in range(cfg.d_hidden_layers - 1) for layer in (nn.Linear(h, h), act())]
            self.body = nn.Sequential(nn.Linear(2, h), act(), *deeper)
            self.out = nn.Linear(h + cfg.minibatch_features, 1)
            self.minibatch = (
                MinibatchDiscrimination(h, cfg.minibatch_features, cfg.minibatch_kernel_dim)
                if cfg.minibatch_features
                else None
            )

        def features(self, x):
            return self.body(x)

        def head(self, f):
            if self.minibatch is not None:
                f = torch.cat([f, self.minibatch(f)], dim=1)
            return self.out(f).squeeze(1)

        def forward(self, x):
            return self.head(self.features(x))

    g_init = torch.Generator().manual_seed(cfg.seed)
    gen, disc = RingGenerator(), RingDiscriminator()
    for m in [*gen.modules(), *disc.modules()]:
        if isinstance(m, nn.Linear):
            nn.init.orthogonal_(m.weight, gain=1.4, generator=g_init)
            nn.init.zeros_(m.bias)
        elif isinstance(m, MinibatchDiscrimination):
            nn.init.normal_(m.T, 0.0, 0.05, generator=g_init)
    return gen, disc


class _ScaledLr:
    """G's optimizer at ``factor`` × the step's learning rate: Game passes one lr to both players."""

    def __init__(self, opt, factor: float):
        self.opt, self.factor = opt, factor

    def step(self, grads, lr: float, momentum: float) -> None:
        self.opt.step(grads, lr * self.factor, momentum)


PROGRESS_LINES = 10  # a run logs its step, time and ETA this many times (runs take minutes to an hour)


def train_ring(cfg: RingConfig, label: str = "") -> dict:
    """Train one run; return its metrics, the mode occupancy over training and the final samples.
    With a ``label``, log progress (step, seconds, ETA) ``PROGRESS_LINES`` times over the run."""
    import torch

    from ..train.algorithm1 import Game, MinibatchStream
    from ..train.optimizers import Adam

    torch.manual_seed(cfg.seed)
    gen, disc = _nets(cfg)
    data = torch.from_numpy(sample_ring(64 * cfg.batch_size, np.random.default_rng(cfg.seed)))
    rng = torch.Generator().manual_seed(cfg.seed + 1)
    stream = MinibatchStream(data, cfg.batch_size, torch.Generator().manual_seed(cfg.seed + 2))
    opt_d = Adam(disc.parameters(), cfg.adam_beta1, cfg.adam_beta2)
    opt_g = _ScaledLr(Adam(gen.parameters(), cfg.adam_beta1, cfg.adam_beta2), cfg.lr_g / cfg.lr_d)
    game = Game(cfg, gen, disc, opt_g, opt_d, stream, rng)
    fixed = torch.randn(cfg.track_samples, cfg.noise_dim, generator=torch.Generator().manual_seed(cfg.seed + 3))
    per_epoch = data.shape[0] // cfg.batch_size
    occupancy, occupancy_nearest, tracked_steps = [], [], []
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        if step % per_epoch == 0:
            stream.new_epoch()
        stats = game.step(cfg.lr_d, 0.0)
        if (step + 1) % cfg.track_every == 0 or step + 1 == cfg.steps:
            if not all(math.isfinite(v) for v in stats.tolist()):
                raise FloatingPointError(f"ring run diverged at step {step + 1} (seed {cfg.seed})")
            with torch.no_grad():
                points = gen(fixed).numpy()
            nearest, dist = nearest_modes(points)  # once for both counts
            which = np.where(dist <= HIGH_QUALITY_STDS * STD, nearest, -1)  # assign_modes
            occupancy.append(np.bincount(which + 1, minlength=MODES + 1).tolist())  # [off-mode, mode 0..7]
            occupancy_nearest.append(np.bincount(nearest, minlength=MODES).tolist())  # quality aside
            tracked_steps.append(step + 1)
        if label and (step + 1) % max(cfg.steps // PROGRESS_LINES, 1) == 0 and step + 1 < cfg.steps:
            elapsed = time.perf_counter() - t0
            eta = elapsed / (step + 1) * (cfg.steps - step - 1)
            log.info("%s: step %d/%d, %.0f s, ETA %.0f s", label, step + 1, cfg.steps, elapsed, eta)
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        z = torch.randn(cfg.final_samples, cfg.noise_dim, generator=torch.Generator().manual_seed(cfg.seed + 5))
        samples = gen(z).numpy()
    return dict(
        **mode_metrics(samples),
        seconds=seconds,
        steps=tracked_steps,
        occupancy=occupancy,
        occupancy_nearest=occupancy_nearest,
        samples=samples,
    )


# ---------------------------------------------------------------------------------------------
# The experiment: techniques × seeds, resumable, with figures


def run_experiment(out_dir, techniques: dict[str, dict], seeds: int, base: RingConfig) -> dict:
    """Train every technique ``{name: RingConfig overrides}`` for seeds 0..seeds−1; runs already in
    ``out_dir/runs`` with the same settings are read back, not redone."""
    out_dir = Path(out_dir)
    runs_dir = out_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in base.__dict__.items() if k != "seed"}
    results: dict[str, list[dict]] = {}
    for name in techniques:
        results[name] = []
        for seed in range(seeds):
            path = runs_dir / f"{name}_seed{seed}.json"
            if path.is_file():
                rec = json.loads(path.read_text())
                if rec.get("settings") == {**settings, **techniques[name]}:
                    if "modes_nearest" not in rec:  # stored before the measure existed: from its samples
                        rec.update(mode_metrics(np.load(runs_dir / f"{name}_seed{seed}.npy")))
                    results[name].append(rec)
                    continue
            cfg = RingConfig(**{**base.__dict__, **techniques[name], "seed": seed})
            out = train_ring(cfg, label=f"{name} seed {seed}")
            with atomic_path(runs_dir / f"{name}_seed{seed}.npy") as tmp:
                np.save(tmp, out.pop("samples"))
            rec = dict(technique=name, seed=seed, settings={**settings, **techniques[name]}, **out)
            write_atomic(path, json.dumps(rec))
            print(
                f"{name:>16} seed {seed}: {rec['modes_covered']} modes, high quality {rec['high_quality']:.3f}, "
                f"nearest-mode modes {rec['modes_nearest']}, top mode's share {rec['top_mode_share']:.3f}, "
                f"{rec['seconds']:.1f} s",
                flush=True,
            )
            results[name].append(rec)
    summary = {name: _summary(recs) for name, recs in results.items()}
    report = dict(settings=settings, seeds=seeds, techniques=techniques, summary=summary)
    write_atomic(out_dir / "ring_report.json", json.dumps(report, indent=1))
    samples = {n: np.load(runs_dir / f"{n}_seed0.npy") for n in techniques}
    samples_figure(out_dir / "ring_samples.png", samples)
    firsts = {n: results[n][0] for n in techniques}
    modes_over_time_figure(out_dir / "ring_modes_over_time.png", firsts)
    if all("occupancy_nearest" in rec for rec in firsts.values()):  # runs stored before it was tracked lack it
        modes_over_time_figure(out_dir / "ring_nearest_modes_over_time.png", firsts, nearest=True)
    return report


def _summary(recs: list[dict]) -> dict:
    def ms(values):
        v = np.array(values, dtype=np.float64)
        return [float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0]

    return dict(
        modes_covered=ms([r["modes_covered"] for r in recs]),
        modes_any=ms([sum(c >= 1 for c in r["counts"]) for r in recs]),  # VEEGAN's count
        high_quality=ms([r["high_quality"] for r in recs]),
        modes_nearest=ms([r["modes_nearest"] for r in recs]),
        top_mode_share=ms([r["top_mode_share"] for r in recs]),
        seconds=ms([r["seconds"] for r in recs]),
    )


def samples_figure(path, samples: dict[str, np.ndarray]) -> Path:
    from ..common.grid import pyplot, save_plot

    plt = pyplot()
    fig, axes = plt.subplots(1, len(samples), figsize=(max(4.2, 3.0 * len(samples)), 3.2), squeeze=False)
    centers = ring_centers()
    for ax, (name, pts) in zip(axes[0], samples.items()):
        ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.4, color="tab:blue")
        ax.scatter(centers[:, 0], centers[:, 1], s=30, marker="x", color="tab:red")
        ax.set_xlim(-3, 3)
        ax.set_ylim(-3, 3)
        ax.set_aspect("equal")
        ax.set_title(name, fontsize=9)
    fig.suptitle("G's samples after training (seed 0; × = the 8 modes)", fontsize=9)
    fig.tight_layout()
    return save_plot(fig, path)


def modes_over_time_figure(path, runs: dict[str, dict], *, nearest: bool = False) -> Path:
    """Per run, the share of the tracked points in each mode at every tracked step: among the
    high-quality points, or with ``nearest`` among all points by their nearest mode (quality aside, so a
    collapsed but blurred generator shows which mode it sits at)."""
    from ..common.grid import pyplot, save_plot

    plt = pyplot()
    fig, axes = plt.subplots(len(runs), 1, figsize=(8, 1.6 * len(runs) + 0.6), squeeze=False, sharex=True)
    for ax, (name, rec) in zip(axes[:, 0], runs.items()):
        if nearest:
            occ = np.array(rec["occupancy_nearest"], dtype=np.float64)  # (T, modes): points per nearest mode
        else:
            occ = np.array(rec["occupancy"], dtype=np.float64)[:, 1:]  # (T, modes): high-quality points per mode
        on_mode = occ.sum(1, keepdims=True)
        share = np.divide(occ, on_mode, out=np.full_like(occ, np.nan), where=on_mode > 0).T  # (modes, T)
        steps = rec["steps"]
        half = 0.5 * (steps[1] - steps[0]) if len(steps) > 1 else 0.5
        image = ax.imshow(
            share, aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=0.5, interpolation="nearest",
            extent=(steps[0] - half, steps[-1] + half, -0.5, MODES - 0.5),
        )  # fmt: skip
        ax.set_ylabel(f"{name}\nmode", fontsize=8)
        ax.set_yticks(range(MODES))
        ax.tick_params(labelsize=7)
        fig.colorbar(image, ax=ax, pad=0.01, fraction=0.03)
    axes[-1, 0].set_xlabel("training step")
    if nearest:
        title = "Share of G's samples nearest to each mode over training\n(fixed noise, seed 0, quality aside; "
        title += "all covered: 0.125 each; one mode: 1)"
    else:
        title = "Share of G's within-3σ samples in each mode over training\n(fixed noise, seed 0; all covered: "
        title += "0.125 each; one mode: 1; blank: none within 3σ)"
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    return save_plot(fig, path)


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m gancore.evaluate.ring",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("out_dir", help="folder for runs/, ring_report.json and the two figures")
    ap.add_argument("--techniques", nargs="+", default=list(TECHNIQUES), metavar="NAME", help=", ".join(TECHNIQUES))
    ap.add_argument("--seeds", type=int, default=5, help="seeds 0..S-1 per technique (default 5)")
    ap.add_argument(
        "--settings",
        default="small",
        choices=list(SETTINGS),
        help="small: RingConfig's defaults (seconds per run); metz2016: the unrolled-GAN authors' nets, batch, "
        "learning rates and 25,000 steps (minutes per run); veegan2017: VEEGAN's ring nets (ReLU, D of one "
        "layer), batch 500, Adam 1e-3 for both, 20,000 steps (minutes per run)",
    )
    ap.add_argument("--steps", type=int, help=f"iterations per run (default: the settings', small {RingConfig.steps})")
    ap.add_argument("--unroll", type=int, default=5, help="K of the unrolled technique (default 5)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = ap.parse_args(argv)
    bad = [t for t in args.techniques if t not in TECHNIQUES]
    if bad:
        ap.error(f"--techniques: unknown {bad}; choose from {', '.join(TECHNIQUES)}")
    if args.seeds < 1:
        ap.error(f"--seeds must be >= 1; got {args.seeds}")
    settings = {**SETTINGS[args.settings], **({"steps": args.steps} if args.steps is not None else {})}
    steps = settings.setdefault("steps", RingConfig.steps)
    if steps < 2:
        ap.error(f"--steps must be >= 2; got {args.steps}")
    if args.unroll < 1:
        ap.error(f"--unroll must be >= 1; got {args.unroll}")
    if args.threads < 1:
        ap.error(f"--threads must be >= 1; got {args.threads}")
    import torch

    torch.set_num_threads(args.threads)
    keep_freed_memory()  # the minibatch-features runs' (B, n, n) tensors: about 20 % of a step
    techniques = {name: dict(TECHNIQUES[name]) for name in args.techniques}
    if "unrolled" in techniques:
        techniques["unrolled"]["unroll"] = args.unroll
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    base = RingConfig(**settings, track_every=max(1, steps // 60))
    report = run_experiment(args.out_dir, techniques, args.seeds, base)
    print(
        f"ring of {MODES} Gaussians (σ = {STD}, radius {RADIUS}), settings {args.settings}, {steps} steps, "
        f"{args.seeds} seeds:"
    )
    for name, s in report["summary"].items():
        (m, msd), (a, asd) = s["modes_covered"], s["modes_any"]
        (h, hsd), (t, tsd) = s["high_quality"], s["seconds"]
        (q, qsd), (top, topsd) = s["modes_nearest"], s["top_mode_share"]
        print(
            f"  {name:>16}: modes (≥ 1 %) {m:.1f} ± {msd:.1f}, modes (≥ 1 point) {a:.1f} ± {asd:.1f}, "
            f"high quality {h:.3f} ± {hsd:.3f}, nearest-mode modes {q:.1f} ± {qsd:.1f}, "
            f"top mode's share {top:.3f} ± {topsd:.3f}, {t:.1f} ± {tsd:.1f} s/run"
        )
    print(
        f"→ {Path(args.out_dir) / 'ring_report.json'}, ring_samples.png, ring_modes_over_time.png (and by nearest mode)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
