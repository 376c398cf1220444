"""The ``python -m gancore.train`` command line: every TrainConfig field as a flag, plus the run-control flags.

The field flags are generated from :class:`~gancore.train.config.TrainConfig` (help, group and parsing in
each field's metadata); they default to ``None`` ("not given"), so a preset's value is kept unless the user
overrides it, and ``--resume`` can tell which fields the user is trying to change.
"""

from __future__ import annotations

import argparse

from ..common.failures import EXIT_CODES_HELP
from ..common.options import add_dist_timeout, add_options, given_options
from . import config as C

DESCRIPTION = """\
Train a GAN with Algorithm 1 of Goodfellow et al. (2014), "Generative Adversarial Nets".

With no flags this trains the mnist_2014 preset (the paper's MNIST recipe, from the 2014 code's
mnist.yaml) for 5 epochs on the MNIST copy bundled with gancore and writes runs/mnist_2014-<time>/.
Every preset value can be overridden by the flag of the same name."""

EPILOG = f"""\
presets:
  mnist_2014       the exact 2014 MNIST recipe: G 100-1200-1200-784 (ReLU, sigmoid), D maxout 240x5 x2,
                   dropout 0.8/0.5, uniform noise, SGD lr 0.1, momentum 0.5->0.7, lr/1.000004 per step
  cifar10_fc_2014  cifar10_fully_connected.yaml: G 100-8000-8000-3072 (ReLU, sigmoid), Gaussian z,
                   D maxout 1600x5 x2, lr 0.025
  tfd_2014         tfd_pretrain/pretrain.yaml: G 100-8000-8000-2304 (ReLU, sigmoid), Gaussian z,
                   D maxout 1200x5 x2, max column norm 1.9365, lr 0.05, TFD unlabelled rows, 50 epochs
  dcgan            conv G/D with batch norm, Adam lr 2e-4 beta1 0.5 (use --dataset mnist or cifar10)
  mnist_cgan_2014  Mirza & Osindero (2014) 4.1, conditional: G z->200, y->1000 (ReLU), joined 1200 -> 784;
                   D maxout x 240x5, y 50x5, joined 240x4; U(0,1) z, lr 0.1 / 1.00004 per step, dropout 0.5

conditional nets (--conditional; paper 7 item 1): the one-hot label is fed to G and D (mnist,
fashion-mnist, cifar10; --arch mlp, dcgan or cgan_2014); the sample grid's rows are the classes

update schemes:
  simultaneous     what the 2014 code ran (the *_2014 presets): D and G step together on gradients
                   of one shared minibatch of data and noise; k is 1
  alternating      Algorithm 1 as printed in the paper: k D steps (fresh data and noise each), then
                   one G step on fresh noise

techniques of Salimans et al. (2016), "Improved Techniques for Training GANs" (tutorial §5.1.1, §5.4):
  --g-loss feature_matching  G matches the mean of D's last hidden features on real and generated data
                             (simultaneous: the iteration's real minibatch; alternating: a fresh one)
  --minibatch-features B     D's output layer also sees how close each example is to the rest of its
                             minibatch (B kernels of dimension --minibatch-kernel-dim, default 5)
  both need the whole minibatch in one process: they are refused under torchrun

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
curves.png, checkpoints/ (see gancore.train.checkpoints). Resume a killed run with --resume RUN_DIR.
One process writes a run directory at a time (a lock, released when the process dies).
{EXIT_CODES_HELP}

data: MNIST ships with gancore. Other datasets are looked for in --data-dir, $GANCORE_DATA_DIR, then
~/.cache/gancore/datasets (one folder each: fashion-mnist/, cifar-10/, tfd/); a missing public one is
downloaded into the cache and kept only if its SHA-256 matches ($GANCORE_DATA_URL: a mirror laid out
the same way; GANCORE_NO_DOWNLOAD=1: never download). TFD (TFD_48x48.mat) is not public."""


# The flags that steer the command rather than set a TrainConfig field; every other flag is generated
# from a TrainConfig field (gancore.common.options).
RUN_CONTROL = ("--preset", "--out", "--resume", "--no-eval", "--dry-run", "--quiet", "--dist-timeout")

GROUP_TITLES = {"data": "data", "run": "run", "model": "model", "game": "game", "optimizer": "optimizer"}


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
    add_dist_timeout(p)
    add_options(p, C.TrainConfig, groups=GROUP_TITLES)
    return p


def config_overrides(args: argparse.Namespace) -> dict:
    """The TrainConfig fields the user gave on the command line."""
    out = given_options(args, C.TrainConfig)
    if args.dry_run:
        out["dry_run"] = True
    return out
