"""Training configuration: one dataclass, and the presets that fill it.

A preset is a complete recipe; command-line flags override single fields (``--lr 0.05``). The
``*_2014`` presets follow the paper's released pylearn2 YAML files (github goodfeli/adversarial):

=================== ===================================================================================
``mnist_2014``      ``mnist.yaml``, exactly: G 100→ReLU 1200→ReLU 1200→sigmoid 784 (U(±0.05), output bias
                    from the pixel marginals), uniform z, D maxout 240×5 → 240×5 → 1 (U(±0.005)), dropout
                    0.8/0.5, SGD batch 100, lr 0.1 ÷1.000004 per step, momentum 0.5→0.7 over epochs 1–250
``cifar10_fc_2014`` ``cifar10_fully_connected.yaml``: G 100→ReLU 8000→sigmoid 8000→3072, Gaussian z, D maxout
                    1600×5 ×2, lr 0.025, same dropout and schedules
``tfd_2014``        ``tfd_pretrain/pretrain.yaml``: G 100→ReLU 8000→sigmoid 8000→sigmoid 2304, Gaussian z,
                    D maxout 1200×5 ×2, max column norm 1.9365 everywhere, lr 0.05, trained on TFD's
                    unlabelled rows, 50 epochs
``dcgan``           tutorial §3.3 (Radford et al. 2015): transposed-conv G, strided-conv D, batch norm, Adam
                    lr 2e-4, β1 0.5, non-saturating G loss, alternating updates; for MNIST or CIFAR-10
``mnist_cgan_2014`` the conditional net of Mirza & Osindero (2014) §4.1 (see :func:`_mnist_cgan_2014`)
=================== ===================================================================================

Known differences from the YAMLs, all forced by the project's [0, 1] pixel contract or by missing
pieces: the CIFAR-10 YAML trains on global-contrast-normalized pixels with a *linear* G output
(irange 0.5); here pixels are in [0, 1] and G ends in a sigmoid (irange 0.05, output bias from the
marginals). The TFD G's hidden sigmoid layer starts with bias −2 and its output layer with
``sparse_init: 100`` in the YAML; here they use zero biases and U(±0.05). The second TFD stage
(``tfd_pretrain/train.yaml``, which grafts new layers onto the pretrained G) is not reproduced.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..common.options import knob
from ..data import IMAGE_SHAPES

UPDATES = ("simultaneous", "alternating")
G_LOSSES = ("nonsaturating", "minimax", "maxlikelihood", "feature_matching")  # = losses.G_LOSSES (no torch here)
PRIORS = ("uniform", "gaussian", "hypercube")
ARCHS = ("mlp", "dcgan", "cgan_2014")
OPTIMIZERS = ("sgd", "adam")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16")
ACTIVATIONS = ("relu", "tanh", "sigmoid")
N_CLASSES = {"mnist": 10, "fashion-mnist": 10, "cifar10": 10}  # the datasets whose labels gancore.data loads


@dataclass
class TrainConfig:
    """Every knob of a run, each declared once: the field is the flag ``--field-name``, its help and its
    default (:mod:`gancore.common.options`). ``config.json`` in the run directory is ``asdict`` of this;
    :func:`validate` is the one range check. The defaults *are* the 2014 ``mnist.yaml``."""

    preset: str = "mnist_2014"  # chosen with the run-control flag --preset (a base, not an override)
    # -- data --------------------------------------------------------------------------------------
    dataset: str = knob(
        "mnist", group="data", choices=tuple(IMAGE_SHAPES), help="dataset to train on (default: the preset's)"
    )
    train_split: str = knob(
        "train",
        group="data",
        choices=("train", "unlabeled"),
        help="split trained on (TFD: unlabeled, as the 2014 code)",
    )
    data_dir: str | None = knob(
        None,
        group="data",
        metavar="DIR",
        help="where datasets live (then $GANCORE_DATA_DIR, then the user cache; MNIST is bundled)",
    )
    # -- run ---------------------------------------------------------------------------------------
    seed: int = knob(0, group="run", type=int, help="seed of every random number in the run (default 0)")
    device: str = knob("auto", group="run", choices=DEVICES, help="auto picks CUDA when available (default auto)")
    threads: int = knob(
        0, group="run", type=int, help="CPU threads for torch (default 0 = one per core; 1 is faster on a busy machine)"
    )
    epochs: int = knob(5, group="run", type=int, help="passes over the training set (default 5; 2 with --dry-run)")
    max_steps: int | None = knob(None, group="run", type=int, help="stop after this many iterations (checkpointed)")
    batch_size: int = knob(
        100, group="run", type=int, help="minibatch size m (2014: 100); under torchrun the global one, m/W per process"
    )
    # -- model -------------------------------------------------------------------------------------
    arch: str = knob(
        "mlp",
        group="model",
        choices=ARCHS,
        help="mlp (the paper's), dcgan, or cgan_2014 (Mirza & Osindero's branched conditional MLPs)",
    )
    noise_dim: int = knob(100, group="model", type=int, help="dimension of z (2014: 100)")
    noise_prior: str = knob(
        "uniform",
        group="model",
        choices=PRIORS,
        help="uniform = U(-sqrt3, sqrt3) (zero mean, unit variance) as the 2014 MNIST code; gaussian = N(0, I); "
        "hypercube = U(0, 1), the unit hypercube of Mirza & Osindero (2014)",
    )
    conditional: bool = knob(
        False,
        group="model",
        boolean=True,
        help="conditional adversarial net p(x | y) (paper §7 item 1; Mirza & Osindero 2014): the one-hot class "
        "label is fed to G and D (mnist, fashion-mnist, cifar10; arch mlp, dcgan, cgan_2014)",
    )
    g_hidden: list[int] = knob(
        group="model",
        default_factory=lambda: [1200, 1200],
        type=int,
        nargs="+",
        metavar="N",
        help="G hidden layer sizes (2014: 1200 1200)",
    )
    g_activation: str = knob(
        "relu",
        group="model",
        metavar="ACT[,ACT...]",
        help="G hidden activation(s): relu, tanh or sigmoid, one for all layers or one per "
        "layer (mnist_2014: relu; cifar10_fc_2014 and tfd_2014: relu,sigmoid)",
    )
    g_init_range: float = knob(
        0.05, group="model", type=float, help="G weights ~ U(-r, r), biases 0, as pylearn2's irange (2014: 0.05)"
    )
    g_output_bias_from_data: bool = knob(
        True,
        group="model",
        boolean=True,
        help="init G's output bias to logit(mean training pixel), as pylearn2's "
        "init_sigmoid_bias_from_marginals (2014: yes)",
    )
    g_hidden_keep: float = knob(
        1.0,
        group="model",
        type=float,
        help="dropout keep-probability of the inputs of G's joined layers, --arch cgan_2014 only (mnist_cgan_2014: "
        "0.5; default 1 = none)",
    )
    d_hidden: list[int] = knob(
        group="model",
        default_factory=lambda: [240, 240],
        type=int,
        nargs="+",
        metavar="N",
        help="D maxout units per layer (2014: 240 240)",
    )
    d_pieces: int = knob(5, group="model", type=int, help="pieces per maxout unit (2014: 5)")
    d_init_range: float = knob(0.005, group="model", type=float, help="D weights ~ U(-r, r) (2014: 0.005)")
    d_input_keep: float = knob(
        0.8, group="model", type=float, help="dropout keep-probability of D's input pixels, scaled by 1/p (2014: 0.8)"
    )
    d_hidden_keep: float = knob(
        0.5, group="model", type=float, help="keep-probability of the inputs of D's later layers (2014: 0.5)"
    )
    max_col_norm: float | None = knob(
        None,
        group="model",
        type=float,
        help="cap the norm of every unit's incoming weights, as pylearn2's max_col_norm (tfd_2014: 1.9365)",
    )
    dcgan_width: int = knob(64, group="model", type=int, help="base channel count of the DCGAN nets (default 64)")
    minibatch_features: int = knob(
        0,
        group="model",
        type=int,
        metavar="B",
        help="minibatch discrimination (Salimans et al. 2016 §3.2, tutorial §5.1.1): B kernels telling D how "
        "close each example is to the rest of its minibatch, fed to D's output layer (default 0 = off)",
    )
    minibatch_kernel_dim: int = knob(
        5,
        group="model",
        type=int,
        metavar="C",
        help="dimension C of each minibatch-discrimination kernel (default 5, as the authors' code)",
    )
    virtual_batch_norm: bool = knob(
        False,
        group="model",
        boolean=True,
        help="virtual batch norm in the DCGAN generator (Salimans et al. 2016 §3.4, tutorial §4.3): each example "
        "normalized with a fixed reference noise batch's statistics and its own, never with the rest of its batch",
    )
    # -- game --------------------------------------------------------------------------------------
    g_loss: str = knob(
        "nonsaturating",
        group="game",
        choices=G_LOSSES,
        help="generator loss, tutorial §3.2 (2014 code: nonsaturating), or feature_matching: match the mean of "
        "D's last hidden features on real and generated data (Salimans et al. 2016 §3.1)",
    )
    label_smoothing: float = knob(
        0.0,
        group="game",
        type=float,
        help="one-sided label smoothing, tutorial §4.2: real target 1 - alpha, fakes stay 0 (default 0)",
    )
    d_loss_halved: bool = knob(
        True, group="game", boolean=True, help="J_D = 1/2 (real + fake) as the 2014 AdversaryCost2"
    )
    update: str = knob(
        "simultaneous",
        group="game",
        choices=UPDATES,
        help="simultaneous (the 2014 code) or alternating (Algorithm 1 as printed)",
    )
    k: int = knob(1, group="game", type=int, help="D steps per G step, alternating only (paper: 1)")
    unroll: int = knob(
        0,
        group="game",
        type=int,
        metavar="K",
        help="unrolled GAN (Metz et al. 2016): G's loss taken through K differentiated steps of D's optimizer; "
        "D keeps its plain update (default 0 = off)",
    )
    joint_inferer: bool = knob(
        False,
        group="game",
        boolean=True,
        help="train an inference net E(x) ≈ z alongside the game on G's own samples, no gradient reaching G "
        "(the 2014 code's AdversaryPair(inferer=...)); report it with python -m gancore.infer RUN_DIR --mode joint",
    )
    # -- optimizer and schedules -------------------------------------------------------------------
    optimizer: str = knob("sgd", group="optimizer", choices=OPTIMIZERS, help="sgd (classical momentum) or adam")
    lr: float = knob(0.1, group="optimizer", type=float, help="initial learning rate (2014: 0.1)")
    lr_decay: float = knob(
        1.000004,
        group="optimizer",
        type=float,
        help="lr divided by this after every update, lr_t = max(lr / decay^t, lr_min), as "
        "pylearn2's ExponentialDecay (2014: 1.000004; 1 = constant)",
    )
    lr_min: float = knob(1e-6, group="optimizer", type=float, help="floor of the decayed lr (2014: 1e-6)")
    momentum: float = knob(
        0.5,
        group="optimizer",
        type=float,
        help="initial classical momentum: v <- mu v - lr g; theta <- theta + v (2014: 0.5)",
    )
    momentum_final: float = knob(0.7, group="optimizer", type=float, help="final momentum (2014: 0.7)")
    momentum_start_epoch: int = knob(
        1,
        group="optimizer",
        type=int,
        help="1-based epoch where the momentum ramp starts, as MomentumAdjustor (2014: 1)",
    )
    momentum_saturate_epoch: int = knob(
        250, group="optimizer", type=int, help="epoch where it reaches the final value (2014: 250)"
    )
    adam_beta1: float = knob(0.5, group="optimizer", type=float, help="Adam beta1 (DCGAN: 0.5)")
    adam_beta2: float = knob(0.999, group="optimizer", type=float, help="Adam beta2 (default 0.999)")
    precision: str = knob(
        "fp32",
        group="optimizer",
        choices=PRECISIONS,
        help="fp32 (default, as the paper) or bf16 autocast of the forward passes (weights and "
        "updates stay fp32; faster on CPUs with AMX and on GPUs; not bit-comparable with fp32)",
    )
    # -- bookkeeping -------------------------------------------------------------------------------
    log_every: int = knob(50, group="run", type=int, help="iterations per metrics line (default 50)")
    sample_rows: int = knob(10, group="run", type=int, help="rows of the fixed-noise sample grid (default 10)")
    sample_cols: int = knob(10, group="run", type=int, help="columns of the sample grid (default 10)")
    keep_checkpoints: int = knob(2, group="run", type=int, help="checkpoints kept on disk (default 2)")
    dry_run: bool = False  # set by the run-control flag --dry-run: a tiny synthetic dataset
    image_shape: list[int] = field(default_factory=lambda: list(IMAGE_SHAPES["mnist"]))  # derived from dataset

    # Fields that may differ between a checkpoint and the run resuming it: they change how long
    # or where a run goes, not what one step computes.
    RESUMABLE = ("epochs", "max_steps", "device", "threads", "log_every", "data_dir", "keep_checkpoints")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _mnist_2014() -> dict:
    return {}  # the dataclass defaults *are* mnist.yaml


def _cifar10_fc_2014() -> dict:
    return dict(
        dataset="cifar10",
        noise_prior="gaussian",  # adversarial.Generator's default: the YAML names no noise
        g_hidden=[8000, 8000],
        g_activation="relu,sigmoid",
        d_hidden=[1600, 1600],
        lr=0.025,
    )


def _tfd_2014() -> dict:
    return dict(
        dataset="tfd",
        train_split="unlabeled",
        noise_prior="gaussian",
        g_hidden=[8000, 8000],
        g_activation="relu,sigmoid",
        d_hidden=[1200, 1200],
        max_col_norm=1.9365,
        lr=0.05,
        epochs=50,
    )


def _dcgan() -> dict:
    return dict(
        arch="dcgan",
        noise_prior="gaussian",
        batch_size=64,
        optimizer="adam",
        lr=2e-4,
        lr_decay=1.0,
        lr_min=0.0,
        update="alternating",
        d_loss_halved=False,
        g_output_bias_from_data=False,
        epochs=5,
    )


def _mnist_cgan_2014() -> dict:
    """Mirza & Osindero (2014), "Conditional Generative Adversarial Nets", arXiv 1411.1784, §4.1
    ("Unimodal"), with where each value comes from:

    * z: "dimensionality 100 ... drawn from a uniform distribution within the unit hypercube" → 100-d
      U(0, 1) (``noise_prior="hypercube"``);
    * G: z → ReLU 200 and y → ReLU 1000, "both being mapped to second, combined hidden ReLu layer of
      dimensionality 1200", then "a final sigmoid unit layer" of 784 (``g_hidden=[1200]``; the branch
      sizes are fixed in :mod:`gancore.train.conditional`);
    * D: x → maxout 240 units × 5 pieces, y → maxout 50 × 5, "mapped to a joint maxout layer with 240
      units and 4 pieces before being fed to the sigmoid layer" (``d_hidden=[240]``, ``d_pieces=4``);
    * "stochastic gradient decent with mini-batches of size 100 and initial learning rate of 0.1 which
      was exponentially decreased down to .000001 with decay factor of 1.00004" (``lr_decay=1.00004``:
      ten times the 2014 ``mnist.yaml``'s 1.000004; the floor is reached after ~288,000 steps);
    * "momentum ... with initial value of .5 which was increased up to 0.7" (the epochs of the ramp are
      not given: the 2014 ``mnist.yaml``'s epochs 1–250 are kept);
    * "Dropout with probability of 0.5 was applied to both the generator and discriminator" (where is
      not said: keep 0.5 on the inputs of the joined and output layers of both nets,
      ``g_hidden_keep=d_hidden_keep=0.5``; D's input pixels keep the 2014 code's 0.8);
    * "best estimate of log-likelihood on the validation set was used as stopping point" (no epoch
      count is given; 5 epochs by default, as the other presets).

    Not stated in the paper, kept from the 2014 ``mnist.yaml`` (the adversarial code their experiment
    was written in): weight ranges U(±0.05) for G and U(±0.005) for D, G's output bias from the pixel
    marginals, the non-saturating G loss, J_D halved and simultaneous updates.

    Measured on this project's machines: G collapses to one image within the first epoch (and with no G
    dropout, or a wider G init; zero-mean z without G dropout avoids the collapse but ignores y), while
    ``--conditional`` on ``mnist_2014``'s nets learns the label by epoch 25 (README, "Conditional
    adversarial nets").
    """
    return dict(
        arch="cgan_2014",
        conditional=True,
        noise_prior="hypercube",
        g_hidden=[1200],
        g_hidden_keep=0.5,
        d_hidden=[240],
        d_pieces=4,
        d_hidden_keep=0.5,
        lr_decay=1.00004,
    )


PRESETS = {
    "mnist_2014": _mnist_2014(),
    "cifar10_fc_2014": _cifar10_fc_2014(),
    "tfd_2014": _tfd_2014(),
    "dcgan": _dcgan(),
    "mnist_cgan_2014": _mnist_cgan_2014(),
}


def from_preset(name: str, **overrides) -> TrainConfig:
    """Build a config from preset ``name`` with field ``overrides`` applied, then validate it."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
    values = {**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
    cfg = TrainConfig(preset=name, **values)
    cfg.image_shape = list(IMAGE_SHAPES[cfg.dataset]) if cfg.dataset in IMAGE_SHAPES else cfg.image_shape
    validate(cfg)
    return cfg


def from_dict(d: dict) -> TrainConfig:
    """Rebuild a config from ``config.json``; unknown keys are an error (a file from another version)."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ValueError(f"config has unknown fields {unknown}; was it written by another version of gancore?")
    cfg = TrainConfig(**d)
    validate(cfg)
    return cfg


def validate(cfg: TrainConfig) -> None:
    """Raise ``ValueError`` with the field name for any out-of-range value."""

    def need(ok: bool, msg: str) -> None:
        if not ok:
            raise ValueError(msg)

    def choice(name: str, options) -> None:
        need(getattr(cfg, name) in options, f"{name} must be one of {', '.join(options)}; got {getattr(cfg, name)!r}")

    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float):
            need(math.isfinite(value), f"{f.name} must be a finite number; got {value}")
    choice("dataset", tuple(IMAGE_SHAPES))
    choice("update", UPDATES)
    choice("g_loss", G_LOSSES)
    choice("noise_prior", PRIORS)
    choice("arch", ARCHS)
    choice("optimizer", OPTIMIZERS)
    choice("device", DEVICES)
    choice("precision", PRECISIONS)
    acts = cfg.g_activation.split(",")
    need(
        all(a in ACTIVATIONS for a in acts) and len(acts) in (1, len(cfg.g_hidden)),
        f"g_activation must be one of {', '.join(ACTIVATIONS)}, or one per hidden layer separated by commas "
        f"({len(cfg.g_hidden)} layers); got {cfg.g_activation!r}",
    )
    need(cfg.max_col_norm is None or cfg.max_col_norm > 0, f"max_col_norm must be > 0; got {cfg.max_col_norm}")
    need(
        cfg.train_split == "train" or (cfg.train_split == "unlabeled" and cfg.dataset == "tfd"),
        f"train_split must be 'train' (or 'unlabeled' for TFD); got {cfg.train_split!r} for {cfg.dataset}",
    )
    need(cfg.threads >= 0, f"threads must be >= 0; got {cfg.threads}")
    need(cfg.epochs >= 1, f"epochs must be >= 1; got {cfg.epochs}")
    need(cfg.max_steps is None or cfg.max_steps >= 1, f"max_steps must be >= 1; got {cfg.max_steps}")
    need(cfg.batch_size >= 1, f"batch_size must be >= 1; got {cfg.batch_size}")
    need(cfg.k >= 1, f"k must be >= 1; got {cfg.k}")
    need(
        cfg.update == "alternating" or cfg.k == 1,
        f"k={cfg.k} needs --update alternating (the simultaneous scheme has no inner loop)",
    )
    need(cfg.noise_dim >= 1, f"noise_dim must be >= 1; got {cfg.noise_dim}")
    need(
        len(cfg.g_hidden) >= 1 and all(h >= 1 for h in cfg.g_hidden),
        f"g_hidden must be positive sizes; got {cfg.g_hidden}",
    )
    need(
        len(cfg.d_hidden) >= 1 and all(h >= 1 for h in cfg.d_hidden),
        f"d_hidden must be positive sizes; got {cfg.d_hidden}",
    )
    for name in ("g_init_range", "d_init_range"):
        need(getattr(cfg, name) > 0, f"{name} must be > 0; got {getattr(cfg, name)}")
    need(cfg.d_pieces >= 1, f"d_pieces must be >= 1; got {cfg.d_pieces}")
    for name in ("d_input_keep", "d_hidden_keep", "g_hidden_keep"):
        need(0.0 < getattr(cfg, name) <= 1.0, f"{name} must be in (0, 1]; got {getattr(cfg, name)}")
    need(0.0 <= cfg.label_smoothing < 1.0, f"label_smoothing must be in [0, 1); got {cfg.label_smoothing}")
    need(cfg.lr > 0, f"lr must be > 0; got {cfg.lr}")
    need(cfg.lr_decay >= 1.0, f"lr_decay must be >= 1 (lr is divided by it every step); got {cfg.lr_decay}")
    need(cfg.lr_min >= 0, f"lr_min must be >= 0; got {cfg.lr_min}")
    for name in ("momentum", "momentum_final", "adam_beta1", "adam_beta2"):
        need(0.0 <= getattr(cfg, name) < 1.0, f"{name} must be in [0, 1); got {getattr(cfg, name)}")
    need(
        cfg.momentum_saturate_epoch > cfg.momentum_start_epoch >= 0,
        "momentum_saturate_epoch must be greater than momentum_start_epoch >= 0",
    )
    need(cfg.log_every >= 1, f"log_every must be >= 1; got {cfg.log_every}")
    need(cfg.keep_checkpoints >= 1, f"keep_checkpoints must be >= 1; got {cfg.keep_checkpoints}")
    need(cfg.sample_rows >= 1 and cfg.sample_cols >= 1, "sample grid needs at least one row and column")
    need(cfg.dcgan_width >= 1, f"dcgan_width must be >= 1; got {cfg.dcgan_width}")
    need(cfg.minibatch_features >= 0, f"minibatch_features must be >= 0 (0 = off); got {cfg.minibatch_features}")
    need(cfg.minibatch_kernel_dim >= 1, f"minibatch_kernel_dim must be >= 1; got {cfg.minibatch_kernel_dim}")
    need(
        not cfg.virtual_batch_norm or cfg.arch == "dcgan",
        "virtual_batch_norm needs --arch dcgan (the MLP generator has no batch norm to replace)",
    )
    need(cfg.unroll >= 0, f"unroll must be >= 0 (0 = off); got {cfg.unroll}")
    need(
        not cfg.unroll or cfg.g_loss != "feature_matching",
        "unroll needs a G loss of D's logits; --g-loss feature_matching is not unrolled",
    )
    need(
        not cfg.unroll or not cfg.max_col_norm,
        "unroll cannot be combined with max_col_norm (the unrolled D steps do not apply the projection)",
    )
    _validate_conditional(cfg, need)
    if cfg.arch == "dcgan":
        need(
            cfg.dataset in ("mnist", "fashion-mnist", "cifar10", "stacked-mnist"),
            f"the dcgan preset supports mnist, fashion-mnist, cifar10 and stacked-mnist; got {cfg.dataset}",
        )


def _validate_conditional(cfg: TrainConfig, need) -> None:
    """The conditional options (Mirza & Osindero 2014): labels must exist, the nets must take them."""
    if cfg.conditional:
        need(
            cfg.dataset in N_CLASSES,
            f"--conditional needs class labels: use --dataset {', '.join(N_CLASSES)}; got {cfg.dataset}",
        )
        need(
            cfg.g_loss != "feature_matching",
            "--conditional does not support --g-loss feature_matching (its features would need the labels too)",
        )
        need(not cfg.unroll, "--conditional does not support --unroll (the unrolled D steps do not see the labels)")
        need(
            not cfg.virtual_batch_norm,
            "--conditional does not support --virtual-batch-norm (its reference batch has no labels)",
        )
    need(cfg.arch != "cgan_2014" or cfg.conditional, "--arch cgan_2014 is a conditional net: add --conditional")
    need(
        cfg.arch != "cgan_2014" or cfg.minibatch_features == 0,
        "--arch cgan_2014 does not support --minibatch-features",
    )
    need(
        cfg.g_hidden_keep == 1.0 or cfg.arch == "cgan_2014",
        f"--g-hidden-keep applies to --arch cgan_2014 only; got {cfg.g_hidden_keep} with --arch {cfg.arch}",
    )
