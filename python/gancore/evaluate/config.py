"""Evaluation configuration: one dataclass, whose fields are the flags of ``python -m gancore.evaluate``.

Each knob is declared once (:func:`gancore.common.options.knob`): the field is the option, its help
and its default, :func:`validate` is the one range check, and ``report.json`` records the resolved
configuration under ``"evaluation"`` so a number can be traced to the settings that produced it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..common.options import knob
from .table1 import PAPER_N_SAMPLES, PROTOCOLS

REFERENCE_CHOICES = {"all": ("train", "kmeans"), "train": ("train",), "none": ()}
INTERPOLATIONS = ("linear", "slerp")


@dataclass
class EvalConfig:
    """Every knob of an evaluation (the defaults are the paper's protocol, everything on)."""

    protocol: str = knob(
        "paper",
        group="protocol",
        choices=PROTOCOLS,
        help="paper: the 2014 script exactly (σ over logspace(-1,0,10), first 1,000 validation "
        "images); full: whole validation split, denser grid logspace(-1.5,0.5,41), refined σ",
    )
    n_samples: int = knob(
        PAPER_N_SAMPLES, group="protocol", type=int, help="generator samples = Parzen centers (paper: 10000)"
    )
    seed: int = knob(0, group="protocol", type=int, help="seed of the noise draw (recorded in the report)")
    fold: int | None = knob(
        None,
        group="protocol",
        type=int,
        help="TFD fold of the validation/test split (default: the run's config, else 0)",
    )
    references: str = knob(
        "all",
        group="reference rows",
        choices=tuple(sorted(REFERENCE_CHOICES)),
        help="reference rows: real training images and k-means centroids (all), only the "
        "training images (train), or none",
    )
    kmeans_iters: int = knob(
        10, group="reference rows", type=int, help="Lloyd iterations for the k-means reference row (default 10)"
    )
    reference_cache: bool = knob(
        True,
        group="reference rows",
        boolean=True,
        help="read and write the reference rows and Figure 1's 1-D GAN in the user cache (neither depends on "
        "the model)",
    )
    memorization: bool = knob(
        True,
        group="memorization",
        boolean=True,
        aliases=("--no-memorisation",),
        help="the memorization tests: nearest-training distances, C_T, 1-NN two-sample",
    )
    memorization_samples: int = knob(
        2000,
        group="memorization",
        type=int,
        aliases=("--memorisation-samples",),
        help="generated samples and test images used by the memorization tests",
    )
    cells: int = knob(50, group="memorization", type=int, help="k-means cells of the data-copying test C_T")
    classifier: bool = knob(
        True,
        group="classifier metrics",
        boolean=True,
        help="MNIST only: digits covered, KL(class histogram || uniform), classifier score and Fréchet distance "
        "in the features of the bundled MNIST classifier (Stacked MNIST: modes covered of 1,000 and their KL)",
    )
    birthday: bool = knob(
        False,
        group="mode collapse",
        boolean=True,
        help="the birthday-paradox support estimate (Arora & Zhang 2017) on the samples; about a CPU minute",
    )
    figures: bool = knob(True, group="figures", boolean=True, help="write the PNG figures")
    figure1: bool = knob(
        True,
        group="figures",
        boolean=True,
        help="Figure 1 (a 1-D GAN trained on the spot, ~10 s; independent of the run)",
    )
    interpolation: str = knob(
        "linear", group="figures", choices=INTERPOLATIONS, help="Figure 3 path in z space (slerp for Gaussian priors)"
    )
    data_dir: str | None = knob(
        None,
        group="resources",
        metavar="DIR",
        help="where the datasets are (default: the run's, then gancore.data's search path)",
    )
    device: str = knob("cpu", group="resources", help="torch device for sampling (cpu, cuda)")
    threads: int = knob(
        0,
        group="resources",
        type=int,
        help="kernel threads (0 = all cores; under torchrun per process, 0 = the cores divided "
        "among the processes on the machine)",
    )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def from_options(**options) -> EvalConfig:
    """An :class:`EvalConfig` from keyword options (unknown names are an error), validated."""
    names = {f.name for f in dataclasses.fields(EvalConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise TypeError(f"unknown evaluation option(s) {unknown}; expected some of {sorted(names)}")
    cfg = EvalConfig(**{k: v for k, v in options.items() if v is not None or k in ("fold", "data_dir")})
    validate(cfg)
    return cfg


def validate(cfg: EvalConfig) -> None:
    """Raise ``ValueError`` naming the option for any out-of-range value."""

    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise ValueError(msg)

    def integer(name: str, low: int) -> None:
        v = getattr(cfg, name)
        need(
            isinstance(v, int) and not isinstance(v, bool) and v >= low,
            f"{name} must be an integer >= {low}; got {v!r}",
        )

    need(cfg.protocol in PROTOCOLS, f"protocol must be one of {PROTOCOLS}; got {cfg.protocol!r}")
    need(
        cfg.references in REFERENCE_CHOICES,
        f"references must be one of {sorted(REFERENCE_CHOICES)}; got {cfg.references!r}",
    )
    need(cfg.interpolation in INTERPOLATIONS, f"interpolation must be 'linear' or 'slerp'; got {cfg.interpolation!r}")
    integer("n_samples", 1)
    integer("seed", 0)
    integer("kmeans_iters", 1)
    integer("memorization_samples", 2)
    integer("cells", 1)
    integer("threads", 0)
    need(
        cfg.fold is None or (isinstance(cfg.fold, int) and 0 <= cfg.fold <= 4),
        f"fold must be a TFD fold 0..4; got {cfg.fold!r}",
    )
