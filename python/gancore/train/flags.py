"""The ``python -m gancore.train`` command line: every TrainConfig field as a flag.

Flags default to ``None`` ("not given"), so a preset's value is kept unless the user overrides it, and
``--resume`` can tell which fields the user is trying to change.
"""

from __future__ import annotations

import argparse

from . import config as C

DESCRIPTION = """\
Train a GAN with Algorithm 1 of Goodfellow et al. (2014), "Generative Adversarial Nets".

With no flags this trains the mnist_2014 preset (the paper's MNIST recipe, from the 2014 code's
mnist.yaml) for 5 epochs on the MNIST copy bundled with gancore and writes runs/mnist_2014-<time>/.
Every preset value can be overridden by the flag of the same name."""

EPILOG = """\
presets:
  mnist_2014       the exact 2014 MNIST recipe: G 100-1200-1200-784 (ReLU, sigmoid), D maxout 240x5 x2,
                   dropout 0.8/0.5, uniform noise, SGD lr 0.1, momentum 0.5->0.7, lr/1.000004 per step
  cifar10_fc_2014  cifar10_fully_connected.yaml: G 100-8000-8000-3072 (ReLU, sigmoid), Gaussian z,
                   D maxout 1600x5 x2, lr 0.025
  tfd_2014         tfd_pretrain/pretrain.yaml: G 100-8000-8000-2304 (ReLU, sigmoid), Gaussian z,
                   D maxout 1200x5 x2, max column norm 1.9365, lr 0.05, TFD unlabelled rows, 50 epochs
  dcgan            conv G/D with batch norm, Adam lr 2e-4 beta1 0.5 (use --dataset mnist or cifar10)

update schemes:
  simultaneous     what the 2014 code ran (the *_2014 presets): D and G step together on gradients
                   of one shared minibatch of data and noise; k is 1
  alternating      Algorithm 1 as printed in the paper: k D steps (fresh data and noise each), then
                   one G step on fresh noise

multiple processes and machines (torchrun, DistributedDataParallel; NCCL on GPUs, Gloo on CPUs):
  torchrun --standalone --nproc_per_node 2 -m gancore.train --threads 1 [flags]
  torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 --rdzv-id RUN \
           -m gancore.train --out /shared/RUN_DIR [flags]
  --batch-size stays the GLOBAL minibatch m: each of the W processes computes m/W examples (m must be
  divisible by W), gradients are averaged, so the effective batch, --lr and every schedule are those of
  one process and the run matches a one-process run up to float summation order. Only rank 0 writes
  the run directory (a shared filesystem is assumed for multiple machines); --resume works the same
  way. A rank that dies stops the others (exit code 4) within --dist-timeout seconds at the latest.

run directory (--out): config.json, metrics.jsonl, samples/epoch_NNNN.png, samples/final.png,
curves.png, checkpoints/ (see gancore.checkpoint). Resume a killed run with --resume RUN_DIR.
Exit codes: 0 done, 2 bad arguments/data/checkpoint, 3 training diverged (NaN/inf), 4 another process
of a torchrun job failed or stopped answering, 130 interrupted.

data: MNIST ships with gancore. Other datasets are looked for in --data-dir, $GANCORE_DATA_DIR, then
~/.cache/gancore/datasets (one folder each: fashion-mnist/, cifar-10/, tfd/); a missing public one is
downloaded into the cache and kept only if its SHA-256 matches ($GANCORE_DATA_URL: a mirror laid out
the same way; GANCORE_NO_DOWNLOAD=1: never download). TFD (TFD_48x48.mat) is not public."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _nonneg_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


# (flag, TrainConfig field, argparse keyword arguments)
_FIELDS = [
    (
        "data",
        [
            (
                "--dataset",
                "dataset",
                dict(choices=tuple(C.IMAGE_SHAPES), help="dataset to train on (default: the preset's)"),
            ),
            (
                "--train-split",
                "train_split",
                dict(choices=("train", "unlabeled"), help="split trained on (TFD: unlabeled, as the 2014 code)"),
            ),
            (
                "--data-dir",
                "data_dir",
                dict(
                    metavar="DIR",
                    help="where datasets live (then $GANCORE_DATA_DIR, then the user cache; MNIST is bundled)",
                ),
            ),
        ],
    ),
    (
        "run",
        [
            ("--device", "device", dict(choices=C.DEVICES, help="auto picks CUDA when available (default auto)")),
            (
                "--threads",
                "threads",
                dict(
                    type=_nonneg_int,
                    help="CPU threads for torch (default 0 = one per core; 1 is faster on a busy machine)",
                ),
            ),
            ("--seed", "seed", dict(type=_nonneg_int, help="seed of every random number in the run (default 0)")),
            (
                "--epochs",
                "epochs",
                dict(type=_positive_int, help="passes over the training set (default 5; 2 with --dry-run)"),
            ),
            (
                "--max-steps",
                "max_steps",
                dict(type=_positive_int, help="stop after this many iterations (checkpointed)"),
            ),
            (
                "--batch-size",
                "batch_size",
                dict(
                    type=_positive_int,
                    help="minibatch size m (2014: 100); under torchrun the global one, m/W per process",
                ),
            ),
            ("--log-every", "log_every", dict(type=_positive_int, help="iterations per metrics line (default 50)")),
            (
                "--keep-checkpoints",
                "keep_checkpoints",
                dict(type=_positive_int, help="checkpoints kept on disk (default 2)"),
            ),
            (
                "--sample-rows",
                "sample_rows",
                dict(type=_positive_int, help="rows of the fixed-noise sample grid (default 10)"),
            ),
            ("--sample-cols", "sample_cols", dict(type=_positive_int, help="columns of the sample grid (default 10)")),
        ],
    ),
    (
        "model",
        [
            ("--arch", "arch", dict(choices=C.ARCHS, help="mlp (the paper's) or dcgan")),
            ("--noise-dim", "noise_dim", dict(type=_positive_int, help="dimension of z (2014: 100)")),
            (
                "--noise-prior",
                "noise_prior",
                dict(choices=C.PRIORS, help="uniform = U(-sqrt3, sqrt3) as the 2014 MNIST code; gaussian = N(0, I)"),
            ),
            (
                "--g-hidden",
                "g_hidden",
                dict(type=_positive_int, nargs="+", metavar="N", help="G hidden layer sizes (2014: 1200 1200)"),
            ),
            (
                "--g-activation",
                "g_activation",
                dict(
                    metavar="ACT[,ACT...]",
                    help="G hidden activation(s): relu, tanh or sigmoid, one for all layers or one per layer "
                    "(mnist_2014: relu; cifar10_fc_2014 and tfd_2014: relu,sigmoid)",
                ),
            ),
            (
                "--max-col-norm",
                "max_col_norm",
                dict(type=_finite_float, help="cap the norm of every unit's incoming weights (tfd_2014: 1.9365)"),
            ),
            ("--g-init-range", "g_init_range", dict(type=_finite_float, help="G weights ~ U(-r, r) (2014: 0.05)")),
            (
                "--g-output-bias-from-data",
                "g_output_bias_from_data",
                dict(
                    action=argparse.BooleanOptionalAction,
                    help="init G's output bias to logit(mean training pixel) (2014: yes)",
                ),
            ),
            (
                "--d-hidden",
                "d_hidden",
                dict(type=_positive_int, nargs="+", metavar="N", help="D maxout units per layer (2014: 240 240)"),
            ),
            ("--d-pieces", "d_pieces", dict(type=_positive_int, help="pieces per maxout unit (2014: 5)")),
            ("--d-init-range", "d_init_range", dict(type=_finite_float, help="D weights ~ U(-r, r) (2014: 0.005)")),
            (
                "--d-input-keep",
                "d_input_keep",
                dict(type=_finite_float, help="dropout keep-probability of D's input pixels (2014: 0.8)"),
            ),
            (
                "--d-hidden-keep",
                "d_hidden_keep",
                dict(type=_finite_float, help="keep-probability of D's hidden inputs (2014: 0.5)"),
            ),
            (
                "--dcgan-width",
                "dcgan_width",
                dict(type=_positive_int, help="base channel count of the DCGAN nets (default 64)"),
            ),
        ],
    ),
    (
        "game",
        [
            (
                "--update",
                "update",
                dict(choices=C.UPDATES, help="simultaneous (the 2014 code) or alternating (Algorithm 1 as printed)"),
            ),
            ("--k", "k", dict(type=_positive_int, help="D steps per G step, alternating only (paper: 1)")),
            ("--g-loss", "g_loss", dict(choices=C.G_LOSSES, help="generator loss (2014 code: nonsaturating)")),
            (
                "--label-smoothing",
                "label_smoothing",
                dict(type=_finite_float, help="one-sided: real target 1 - alpha (default 0)"),
            ),
            (
                "--d-loss-halved",
                "d_loss_halved",
                dict(action=argparse.BooleanOptionalAction, help="J_D = 1/2 (real + fake) as the 2014 AdversaryCost2"),
            ),
        ],
    ),
    (
        "optimiser",
        [
            ("--optimizer", "optimizer", dict(choices=C.OPTIMIZERS, help="sgd (classical momentum) or adam")),
            ("--lr", "lr", dict(type=_finite_float, help="initial learning rate (2014: 0.1)")),
            (
                "--lr-decay",
                "lr_decay",
                dict(type=_finite_float, help="lr divided by this after every update (2014: 1.000004; 1 = constant)"),
            ),
            ("--lr-min", "lr_min", dict(type=_finite_float, help="floor of the decayed lr (2014: 1e-6)")),
            ("--momentum", "momentum", dict(type=_finite_float, help="initial momentum (2014: 0.5)")),
            ("--momentum-final", "momentum_final", dict(type=_finite_float, help="final momentum (2014: 0.7)")),
            (
                "--momentum-start-epoch",
                "momentum_start_epoch",
                dict(type=_nonneg_int, help="1-based epoch where the ramp starts (2014: 1)"),
            ),
            (
                "--momentum-saturate-epoch",
                "momentum_saturate_epoch",
                dict(type=_positive_int, help="epoch where it reaches the final value (2014: 250)"),
            ),
            ("--adam-beta1", "adam_beta1", dict(type=_finite_float, help="Adam beta1 (DCGAN: 0.5)")),
            ("--adam-beta2", "adam_beta2", dict(type=_finite_float, help="Adam beta2 (default 0.999)")),
            (
                "--precision",
                "precision",
                dict(
                    choices=C.PRECISIONS,
                    help="fp32 (default, as the paper) or bf16 autocast of the forward passes "
                    "(faster on CPUs with AMX and on GPUs; not bit-comparable with fp32)",
                ),
            ),
        ],
    ),
]

CONFIG_FIELDS = [fld for _, group in _FIELDS for _, fld, _ in group]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gancore.train",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--preset", choices=tuple(C.PRESETS), default=None, help="recipe to start from (default mnist_2014)")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory (default runs/<preset>-<date>-<time>)")
    p.add_argument(
        "--resume",
        nargs="?",
        const=True,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR (or in --out) from its latest checkpoint, bit for bit",
    )
    p.add_argument("--no-eval", action="store_true", help="skip the Parzen-window evaluation at the end")
    p.add_argument("--dry-run", action="store_true", help="a few steps on a tiny synthetic dataset (smoke test)")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and the final result")
    p.add_argument(
        "--dist-timeout",
        type=_positive_float,
        default=300.0,
        metavar="SECONDS",
        help="under torchrun: how long a process waits for the others in a collective before it stops with "
        "an error, e.g. when another rank died or hangs (default 300)",
    )
    for title, group in _FIELDS:
        g = p.add_argument_group(title)
        for flag, fld, kw in group:
            g.add_argument(flag, dest=fld, default=None, **kw)
    return p


def config_overrides(args: argparse.Namespace) -> dict:
    """The TrainConfig fields the user gave on the command line."""
    out = {f: getattr(args, f) for f in CONFIG_FIELDS if getattr(args, f) is not None}
    if args.dry_run:
        out["dry_run"] = True
    return out
