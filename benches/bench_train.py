"""Training throughput of the ``mnist_2014`` model: gancore's loop vs a straightforward PyTorch loop.

    python benches/bench_train.py                      # CPU, both loops, interleaved blocks
    python benches/bench_train.py --device cuda        # on a GPU
    python benches/bench_train.py --threads 1 --json out.json

Both loops train the same model (G 100-1200-1200-784, D maxout 240x5 x2 with dropout 0.8/0.5, same
initialization, SGD lr 0.1 with momentum 0.5 and the per-step lr decay) on the bundled MNIST training
set, in the same process, in alternating timed blocks so that both see the same machine load.

* ``straightforward``: what one writes first, after pytorch/examples' dcgan: a ``DataLoader`` over a
  ``TensorDataset`` (shuffle, batch 100), ``nn.Dropout`` layers, ``torch.optim.SGD`` per network,
  D step on ``D(x)`` and ``D(G(z).detach())``, then a G step through a fresh ``D(G(z))`` pass, and
  ``.item()`` on the losses and D outputs every step for logging;
* ``gancore-<update>``: :class:`gancore.train.algorithm1.Game` as ``python -m gancore.train`` runs it: the
  training set as one tensor on the device indexed per minibatch, one D pass per batch whose logits
  serve both players, gradients only for what is updated (``autograd.grad``), foreach momentum updates,
  statistics accumulated on the device and read once per logging interval, deterministic algorithms on.

Images/s counts training examples consumed per second (batch size x D steps per iteration).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

# The installed gancore (pip install '.[bench]'), like bench_kernels.py: the source tree has no compiled _core.
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from gancore.data import load_split  # noqa: E402
from gancore.train import config  # noqa: E402
from gancore.train.algorithm1 import Game, MinibatchStream  # noqa: E402
from gancore.train.models import build_models  # noqa: E402
from gancore.train.optimizers import lr_at, make_optimizer  # noqa: E402

LOG_EVERY = 50


# ---------------------------------------------------------------------------------------------
# The straightforward loop
# ---------------------------------------------------------------------------------------------


class PlainMaxout(nn.Module):
    def __init__(self, pieces: int):
        super().__init__()
        self.pieces = pieces

    def forward(self, z):
        return z.view(z.shape[0], -1, self.pieces).max(dim=2).values


def plain_models(gen_ref, disc_ref):
    """nn.Sequential twins of the gancore models, with the same initial weights."""
    gen = nn.Sequential(
        nn.Linear(100, 1200), nn.ReLU(), nn.Linear(1200, 1200), nn.ReLU(), nn.Linear(1200, 784), nn.Sigmoid()
    )
    disc = nn.Sequential(
        nn.Dropout(0.2),
        nn.Linear(784, 1200),
        PlainMaxout(5),
        nn.Dropout(0.5),
        nn.Linear(240, 1200),
        PlainMaxout(5),
        nn.Dropout(0.5),
        nn.Linear(240, 1),
    )
    with torch.no_grad():
        for a, b in zip(gen.parameters(), gen_ref.parameters()):
            a.copy_(b)
        for a, b in zip(disc.parameters(), disc_ref.parameters()):
            a.copy_(b)
    return gen, disc


class StraightforwardLoop:
    def __init__(self, cfg, train_cpu, gen, disc, device):
        self.cfg, self.device = cfg, device
        self.gen, self.disc = gen.to(device).train(), disc.to(device).train()
        self.loader = DataLoader(TensorDataset(train_cpu), batch_size=cfg.batch_size, shuffle=True, drop_last=True)
        self.it = iter(self.loader)
        self.opt_g = torch.optim.SGD(self.gen.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        self.opt_d = torch.optim.SGD(self.disc.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        self.bce = nn.BCEWithLogitsLoss()
        self.step_count = 0
        self.log = []

    def steps(self, n: int) -> None:
        m = self.cfg.batch_size
        for _ in range(n):
            try:
                (x,) = next(self.it)
            except StopIteration:
                self.it = iter(self.loader)
                (x,) = next(self.it)
            x = x.to(self.device)
            lr = lr_at(self.cfg, self.step_count)
            for opt in (self.opt_g, self.opt_d):
                for group in opt.param_groups:
                    group["lr"] = lr
            ones = torch.ones(m, device=self.device)
            zeros = torch.zeros(m, device=self.device)
            # (1) update D: maximize log D(x) + log(1 - D(G(z)))
            self.opt_d.zero_grad()
            out_real = self.disc(x).view(-1)
            z = (torch.rand(m, 100, device=self.device) * 2 - 1) * math.sqrt(3)
            fake = self.gen(z)
            out_fake = self.disc(fake.detach()).view(-1)
            err_d = 0.5 * (self.bce(out_real, ones) + self.bce(out_fake, zeros))
            err_d.backward()
            self.opt_d.step()
            # (2) update G: maximize log D(G(z))
            self.opt_g.zero_grad()
            out = self.disc(fake).view(-1)
            err_g = self.bce(out, ones)
            err_g.backward()
            self.opt_g.step()
            self.log.append(
                (err_d.item(), err_g.item(), torch.sigmoid(out_real).mean().item(), torch.sigmoid(out).mean().item())
            )
            self.step_count += 1

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


# ---------------------------------------------------------------------------------------------
# gancore's loop (the body of gancore.train.trainer.Trainer.run, without the run directory)
# ---------------------------------------------------------------------------------------------


class GancoreLoop:
    def __init__(self, cfg, train_dev, gen, disc, device):
        self.cfg, self.device = cfg, device
        self.gen, self.disc = gen.to(device).train(), disc.to(device).train()
        rng = torch.Generator(device=device).manual_seed(1)
        self.disc.generator = rng
        self.stream = MinibatchStream(train_dev, cfg.batch_size, torch.Generator().manual_seed(2))
        self.steps_per_epoch = train_dev.shape[0] // (cfg.batch_size * cfg.k)
        self.game = Game(
            cfg,
            self.gen,
            self.disc,
            make_optimizer(cfg, self.gen.parameters()),
            make_optimizer(cfg, self.disc.parameters()),
            self.stream,
            rng,
        )
        self.acc = torch.zeros(4, dtype=torch.float64, device=device)
        self.step_count = 0
        self.log = []

    def steps(self, n: int) -> None:
        for _ in range(n):
            if self.step_count % self.steps_per_epoch == 0:
                self.stream.new_epoch()
            self.acc += self.game.step(lr_at(self.cfg, self.step_count), self.cfg.momentum)
            self.step_count += 1
            if self.step_count % LOG_EVERY == 0:
                self.log.append((self.acc / LOG_EVERY).tolist())
                self.acc.zero_()

    def sync(self) -> None:
        self.acc.tolist()


# ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--steps", type=int, default=50, help="iterations per timed block")
    p.add_argument("--repeats", type=int, default=5, help="timed blocks per loop (median reported)")
    p.add_argument("--bf16", action="store_true", help="also time gancore with --precision bf16")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # needed by deterministic cuBLAS
    device = torch.device(args.device)
    train = torch.from_numpy(load_split("mnist", "train"))
    base = config.from_preset("mnist_2014", device=args.device)
    gen0, disc0 = build_models(base, train.double().mean(0))

    def fresh(cls, **over):
        cfg = config.from_preset("mnist_2014", device=args.device, **over)
        gen, disc = build_models(cfg, train.double().mean(0))
        if cls is StraightforwardLoop:
            gen, disc = plain_models(gen, disc)
            return cls(cfg, train, gen, disc, device)
        return cls(cfg, train.to(device), gen, disc, device)

    loops = {
        "straightforward": fresh(StraightforwardLoop),
        "gancore-simultaneous": fresh(GancoreLoop, update="simultaneous"),
        "gancore-alternating": fresh(GancoreLoop, update="alternating"),
    }
    if args.bf16:
        loops["gancore-simultaneous-bf16"] = fresh(GancoreLoop, update="simultaneous", precision="bf16")
    del gen0, disc0
    for name, loop in loops.items():  # warm-up: allocator, kernels, first epoch's shuffle
        torch.use_deterministic_algorithms(name.startswith("gancore"), warn_only=True)
        loop.steps(3)
        loop.sync()
    times = {name: [] for name in loops}
    for _ in range(args.repeats):
        for name, loop in loops.items():
            # gancore runs with deterministic algorithms on, as ``python -m gancore.train`` does; the
            # straightforward loop runs as such loops usually do, without.
            torch.use_deterministic_algorithms(name.startswith("gancore"), warn_only=True)
            t0 = time.perf_counter()
            loop.steps(args.steps)
            loop.sync()
            times[name].append(time.perf_counter() - t0)
    m = base.batch_size
    result = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "steps_per_block": args.steps,
        "repeats": args.repeats,
        "images_per_s": {},
    }
    for name, ts in times.items():
        result["images_per_s"][name] = args.steps * m / statistics.median(ts)
    ref = result["images_per_s"]["straightforward"]
    print(
        f"mnist_2014 training throughput on {device} ({torch.get_num_threads()} threads, torch {torch.__version__}), "
        f"median of {args.repeats} blocks of {args.steps} iterations:"
    )
    for name, ips in result["images_per_s"].items():
        print(f"  {name:28s} {ips:9.0f} images/s   {ips / ref:5.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
