"""Configuration of a semi-supervised GAN run: one dataclass whose fields are the flags of
``python -m gancore.semisupervised``. The defaults are the authors' MNIST settings (openai/improved-gan,
``train_mnist_feature_matching.py``: batch 100, Adam lr 0.003 and β₁ 0.5 for both nets, unlabelled
weight 1, 300 epochs of 60,000 unlabelled images, Polyak averaging of D at rate 10⁻⁴); each checkpoint
records the configuration, and a run resumes only with the same one (except ``RESUMABLE``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ..common.options import config_from_options, knob

DATASETS = ("mnist", "fashion-mnist")
UNLABELED = ("train+valid", "train")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class SemiSupervisedConfig:
    """Every knob of one run (one seed)."""

    labels: int = knob(100, group="data", type=int, help="labelled training images, N/10 per class (default 100)")
    dataset: str = knob("mnist", group="data", choices=DATASETS, help="dataset (default mnist)")
    unlabeled: str = knob(
        "train+valid",
        group="data",
        choices=UNLABELED,
        help="unlabelled images: train+valid, all 60,000 as the authors (default), or train[0:50000]",
    )
    data_dir: str | None = knob(None, group="data", metavar="DIR", help="where datasets live")
    epochs: int = knob(300, group="training", type=int, help="passes over the unlabelled images (default 300)")
    batch_size: int = knob(100, group="training", type=int, help="images of each kind per update (default 100)")
    lr: float = knob(0.003, group="training", type=float, help="Adam learning rate of G and D (default 0.003)")
    beta1: float = knob(0.5, group="training", type=float, help="Adam beta1 (default 0.5)")
    unlabeled_weight: float = knob(1.0, group="training", type=float, help="weight of L_unsup in D's loss")
    average_rate: float = knob(
        1e-4, group="training", type=float, help="Polyak averaging rate of D's weights for testing (default 1e-4)"
    )
    input_noise: float = knob(0.3, group="model", type=float, help="sd of D's Gaussian input noise (default 0.3)")
    hidden_noise: float = knob(0.5, group="model", type=float, help="sd of the noise after each hidden layer")
    d_hidden: list[int] = knob(
        group="model",
        default_factory=lambda: [1000, 500, 250, 250, 250],
        type=int,
        nargs="+",
        metavar="N",
        help="D's hidden layer sizes (default 1000 500 250 250 250)",
    )
    g_hidden: list[int] = knob(
        group="model", default_factory=lambda: [500, 500], type=int, nargs="+", metavar="N", help="G's hidden sizes"
    )
    noise_dim: int = knob(100, group="model", type=int, help="dimension of z ~ U(0, 1) (default 100)")
    init_batch: int = knob(500, group="model", type=int, help="images for D's data-dependent initialization")
    seed: int = knob(0, group="run", type=int, help="seed of the label draw, the weights, the noise, the batches")
    threads: int = knob(0, group="run", type=int, help="CPU threads for torch (default 0 = one per core)")
    device: str = knob("auto", group="run", choices=DEVICES, help="auto picks CUDA when available")
    log_every: int = knob(100, group="run", type=int, help="updates per progress line (default 100)")
    checkpoint_every: int = knob(600, group="run", type=int, help="updates between checkpoints (default 600)")

    # May differ between a checkpoint and the run resuming it: how long or where, not what a step computes.
    RESUMABLE = ("epochs", "data_dir", "threads", "device", "log_every", "checkpoint_every")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def validate(cfg: SemiSupervisedConfig) -> None:
    """Raise ``ValueError`` naming the flag for any out-of-range value."""

    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise ValueError(msg)

    need(cfg.labels >= 10 and cfg.labels % 10 == 0, f"--labels must be a positive multiple of 10; got {cfg.labels}")
    need(cfg.labels <= 50000, f"--labels must be at most 50000; got {cfg.labels}")
    for name in ("epochs", "batch_size", "noise_dim", "init_batch", "log_every", "checkpoint_every"):
        need(getattr(cfg, name) >= 1, f"--{name.replace('_', '-')} must be >= 1; got {getattr(cfg, name)}")
    for name in ("seed", "threads"):
        need(getattr(cfg, name) >= 0, f"--{name} must be >= 0; got {getattr(cfg, name)}")
    need(math.isfinite(cfg.lr) and cfg.lr > 0, f"--lr must be a positive number; got {cfg.lr}")
    need(0 <= cfg.beta1 < 1, f"--beta1 must be in [0, 1); got {cfg.beta1}")
    need(0 < cfg.average_rate <= 1, f"--average-rate must be in (0, 1]; got {cfg.average_rate}")
    need(
        math.isfinite(cfg.unlabeled_weight) and cfg.unlabeled_weight >= 0,
        f"--unlabeled-weight must be >= 0; got {cfg.unlabeled_weight}",
    )
    for name in ("input_noise", "hidden_noise"):
        v = getattr(cfg, name)
        need(math.isfinite(v) and v >= 0, f"--{name.replace('_', '-')} must be >= 0; got {v}")
    for name in ("d_hidden", "g_hidden"):
        v = getattr(cfg, name)
        need(len(v) >= 1 and all(h >= 1 for h in v), f"--{name.replace('_', '-')} must be positive sizes; got {v}")
    need(cfg.dataset in DATASETS, f"--dataset must be one of {', '.join(DATASETS)}; got {cfg.dataset!r}")
    need(cfg.unlabeled in UNLABELED, f"--unlabeled must be one of {', '.join(UNLABELED)}; got {cfg.unlabeled!r}")
    need(cfg.device in DEVICES, f"--device must be one of {', '.join(DEVICES)}; got {cfg.device!r}")


def from_options(**options) -> SemiSupervisedConfig:
    return config_from_options(SemiSupervisedConfig, options, validate, what="options")
