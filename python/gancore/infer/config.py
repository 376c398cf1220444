"""Inference configuration: one dataclass, whose fields are the flags of ``python -m gancore.infer``.

Each knob is declared once (:func:`gancore.common.options.knob`); :func:`validate` is the one range
check; ``inference/config.json`` and every checkpoint record the resolved configuration, and a
checkpoint is resumed only by the same configuration (except the fields in ``RESUMABLE``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..common.options import config_from_options, knob

DEVICES = ("auto", "cpu", "cuda")
MODES = ("after", "joint")


@dataclass
class InferConfig:
    """Every knob of an encoder run (the defaults train for a few CPU minutes)."""

    steps: int = knob(2000, group="training", type=int, help="encoder updates, each on fresh (G(z), z) pairs")
    batch_size: int = knob(100, group="training", type=int, help="pairs per update (default 100)")
    lr: float = knob(1e-3, group="training", type=float, help="Adam learning rate (default 1e-3)")
    hidden: list[int] = knob(
        group="training",
        default_factory=lambda: [1200, 1200],
        type=int,
        nargs="+",
        metavar="N",
        help="E's ReLU hidden layer sizes (default 1200 1200, the width of the 2014 MNIST G)",
    )
    seed: int = knob(0, group="training", type=int, help="seed of E's initialization and of every z drawn")
    checkpoint_every: int = knob(500, group="training", type=int, help="steps between checkpoints (default 500)")
    log_every: int = knob(100, group="training", type=int, help="steps per progress line (default 100)")
    threads: int = knob(0, group="training", type=int, help="CPU threads for torch (default 0 = one per core)")
    device: str = knob("auto", group="training", choices=DEVICES, help="auto picks CUDA when available")
    n_recovery: int = knob(
        10000, group="report", type=int, help="fresh samples for the z-recovery error (default 10000)"
    )
    n_test: int = knob(1000, group="report", type=int, help="test images for the reconstruction error (default 1000)")
    figure_cols: int = knob(10, group="report", type=int, help="test images in the reconstruction figure")
    data_dir: str | None = knob(None, group="report", metavar="DIR", help="where datasets live (default: the run's)")
    mode: str = knob(
        "after",
        group="training",
        choices=MODES,
        help="after: train E for the finished, frozen G (the paper's §7 version); joint: report the E trained "
        "alongside the game by python -m gancore.train --joint-inferer (no further training)",
    )

    # May differ between a checkpoint and the run resuming it: how long or where, not what a step computes.
    RESUMABLE = ("steps", "log_every", "threads", "device", "n_recovery", "n_test", "figure_cols", "data_dir")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def validate(cfg: InferConfig) -> None:
    """Raise ``ValueError`` naming the flag for any out-of-range value."""

    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise ValueError(msg)

    need(math.isfinite(cfg.lr) and cfg.lr > 0, f"--lr must be a positive number; got {cfg.lr}")
    for name in ("steps", "batch_size", "checkpoint_every", "log_every", "n_recovery", "n_test", "figure_cols"):
        need(getattr(cfg, name) >= 1, f"--{name.replace('_', '-')} must be >= 1; got {getattr(cfg, name)}")
    need(cfg.threads >= 0, f"--threads must be >= 0; got {cfg.threads}")
    need(len(cfg.hidden) >= 1 and all(h >= 1 for h in cfg.hidden), f"--hidden must be positive sizes; got {cfg.hidden}")
    need(cfg.device in DEVICES, f"--device must be one of {', '.join(DEVICES)}; got {cfg.device!r}")
    need(cfg.mode in MODES, f"--mode must be one of {', '.join(MODES)}; got {cfg.mode!r}")


def from_options(**options) -> InferConfig:
    return config_from_options(InferConfig, options, validate, what="inference options")
