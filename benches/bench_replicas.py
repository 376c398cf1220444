"""Seeds as batched replicas (``sweep --batched``) against the same seeds as separate runs, per seed.

    python benches/bench_replicas.py                          # CPU, R = 5 seeds of mnist_2014
    python benches/bench_replicas.py --replicas 8 --device cuda
    python benches/bench_replicas.py --threads 1 --json out.json

Both sides train R seeds of ``mnist_2014`` (G 100-1200-1200-784, D maxout 240x5 x2 with dropout, SGD
with momentum) on the bundled MNIST training set, in one process, in alternating timed blocks so both
see the same machine load:

* ``separate``: R :class:`gancore.train.trainer.Trainer` games, each stepped on its own, as R runs of
  ``python -m gancore.train`` (or ``sweep`` without ``--batched``) would take their steps;
* ``batched``: R other trainers of the same seeds stepped together by
  :class:`gancore.train.replicas.ReplicaGame` (one ``baddbmm`` per layer for all seeds).

Both sides run in one process, so they share its allocator settings: as ``sweep`` and ``python -m
gancore.train`` do on a CPU, the bench raises glibc's mmap and trim thresholds
(:mod:`gancore.common.allocator`) for both; ``--glibc-defaults`` leaves them alone.

Printed: images/s of all seeds together (training examples consumed per second, summed over seeds:
for separate runs taken one after another, one run's images/s) for each, and the ratio batched /
separate, i.e. how much less time the R seeds take batched; and the top-level aten ops one step takes
on each side (R separate steps against one batched step, counted by ``torch.profiler``): a proxy for
the kernel launches that nets this small pay for on a GPU (most of those ops launch one; views count
too). On a GPU the separate side is what one
process does per seed; running R processes at once on one GPU is a third option this bench does not
measure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from gancore.common.allocator import keep_freed_memory
from gancore.train import config
from gancore.train.optimizers import lr_at, momentum_at
from gancore.train.replicas import ReplicaGame, _share_training_data
from gancore.train.trainer import Trainer


def _trainers(seeds, device, root: Path):
    trainers = [
        Trainer(config.from_preset("mnist_2014", seed=s, device=device.type), root / f"s{s}", device) for s in seeds
    ]
    _share_training_data(trainers)
    for t in trainers:
        t.stream.new_epoch()
    return trainers


def _ops_per_step(step) -> int:
    """Top-level aten ops (an op not called by another aten op) that one call of ``step`` launches."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return sum(
        1
        for e in prof.events()
        if e.name.startswith("aten::") and (e.cpu_parent is None or not e.cpu_parent.name.startswith("aten::"))
    )


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--replicas", type=int, default=5, help="seeds trained at once (default 5)")
    p.add_argument("--steps", type=int, default=20, help="iterations per timed block (default 20)")
    p.add_argument("--blocks", type=int, default=5, help="timed blocks per side, alternating (default 5)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--glibc-defaults", action="store_true", help="leave glibc's malloc thresholds as they are")
    p.add_argument("--json", help="write the numbers here too")
    a = p.parse_args(argv)
    if a.replicas < 1 or a.steps < 1 or a.blocks < 1:
        p.error("--replicas, --steps and --blocks must be >= 1")
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    if device.type == "cpu" and not a.glibc_defaults:
        keep_freed_memory()
    seeds = list(range(a.replicas))
    with tempfile.TemporaryDirectory() as tmp:
        separate = _trainers(seeds, device, Path(tmp) / "separate")
        batched_trainers = _trainers(seeds, device, Path(tmp) / "batched")
        batched = ReplicaGame([t.game for t in batched_trainers])
        cfg = separate[0].cfg
        lr, mom = lr_at(cfg, 0), momentum_at(cfg, 0)

        def run_separate(n):
            for t in separate:
                for _ in range(n):
                    t.game.step(lr, mom)

        def run_batched(n):
            for _ in range(n):
                batched.step(lr, mom)

        run_separate(2)  # warm-up: allocations, first kernels
        run_batched(2)
        _sync(device)
        ops = {"separate": _ops_per_step(lambda: run_separate(1)), "batched": _ops_per_step(lambda: run_batched(1))}
        rates = {"separate": [], "batched": []}
        for _ in range(a.blocks):
            for name, fn in (("separate", run_separate), ("batched", run_batched)):
                t0 = time.perf_counter()
                fn(a.steps)
                _sync(device)
                seconds = time.perf_counter() - t0
                # training examples of all seeds together per second: for separate runs taken one after
                # another this is also one run's images/s, so the ratio is the time R seeds take
                rates[name].append(a.replicas * a.steps * cfg.batch_size / seconds)
    med = {k: statistics.median(v) for k, v in rates.items()}
    ratio = med["batched"] / med["separate"]
    print(
        f"mnist_2014, {a.replicas} seeds, {a.device}, threads {torch.get_num_threads()}, "
        f"{a.blocks} blocks of {a.steps} steps"
    )
    for name in ("separate", "batched"):
        v = sorted(rates[name])
        print(f"  {name:9s} median {med[name]:8.0f} images/s, all seeds together (range {v[0]:.0f} … {v[-1]:.0f})")
    print(f"  batched / separate: {ratio:.2f}x (time for the {a.replicas} seeds: separate / batched)")
    print(
        f"  aten ops per step of the {a.replicas} seeds (top level; a proxy for GPU kernel launches): "
        f"separate {ops['separate']}, batched {ops['batched']}"
    )
    if a.json:
        out = {"images_per_s": rates, "median": med, "ratio": ratio, "ops_per_step": ops}
        Path(a.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
