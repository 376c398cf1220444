"""A training run: data on the device, models, Algorithm 1 steps, metrics, samples and checkpoints.

:class:`Trainer` owns everything a run directory holds and everything needed to continue it bit for
bit: the step counter, the epoch's permutation and position in it, the optimizer buffers and every
random number generator. It draws randomness only from

* ``rng``   — a ``torch.Generator`` on the device: noise z and D's dropout masks;
* ``perm_rng`` — a CPU generator: the per-epoch shuffles (the same on every device);
* a separate generator, used once, for the fixed noise of the sample grids,

all seeded from ``cfg.seed``, so two runs with the same seed on the same device are identical, and a
resumed run continues exactly as the uninterrupted one would have.

Under ``torchrun`` (``dist``, :mod:`gancore.distributed.group`) every process runs this same loop on its
slice of each global minibatch (:mod:`gancore.train.algorithm1`). All ranks draw the same random numbers,
so their generators are always in the same state and rank 0's checkpoint resumes every rank. Only
rank 0 writes metrics, sample grids, curves and checkpoints. The ranks agree on stopping (a signal
seen by any of them) and average the logged numbers at each logging step, so they stop at the same step.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import torch

from ..common.atomic import truncate_jsonl
from ..common.grid import save_grid
from ..data import load_split
from ..distributed.group import SINGLE, Dist, check_batch_size, wrap
from . import checkpoints
from .algorithm1 import Game, MinibatchStream, data_batches_per_step
from .curves import plot_curves
from .models import build_models, sample_noise
from .optimizers import lr_at, make_optimizer, momentum_at
from .progress import Progress

log = logging.getLogger("gancore.train")

# Test hook: SIGKILL this process right after the given step (used to test resume after kill -9);
# under torchrun only the rank named by KILL_RANK_ENV, when it is set, and with the signal named by
# KILL_SIGNAL_ENV (e.g. SIGSTOP: a rank that hangs without closing its connections).
KILL_ENV = "GANCORE_TEST_KILL_AT_STEP"
KILL_RANK_ENV = "GANCORE_TEST_KILL_RANK"
KILL_SIGNAL_ENV = "GANCORE_TEST_KILL_SIGNAL"


class TrainingDiverged(RuntimeError):
    """The losses became NaN or infinite; the last good checkpoint is left untouched."""


class Trainer:
    def __init__(self, cfg, run_dir, device: torch.device, dist: Dist = SINGLE):
        self.cfg, self.run_dir, self.device, self.dist = cfg, Path(run_dir), device, dist
        check_batch_size(cfg.batch_size, dist)
        _seed_everything(cfg.seed)
        train = self._training_data()  # (N, D) float32 numpy
        pixel_mean = torch.from_numpy(train.mean(axis=0, dtype=np.float64))
        self.data = torch.from_numpy(train).to(device)  # the whole training set, once
        self.gen, self.disc = build_models(cfg, pixel_mean)
        self.gen.to(device).train()
        self.disc.to(device).train()
        self.rng = torch.Generator(device=device).manual_seed(cfg.seed + 1)
        self.perm_rng = torch.Generator().manual_seed(cfg.seed + 2)
        for net in (self.disc, self.gen):  # D's dropout, and G's where it has some (cgan_2014)
            if hasattr(net, "generator"):
                net.generator = self.rng  # dropout masks come from the run's generator
            if hasattr(net, "shard"):
                net.shard = dist.shard  # global masks, this rank's rows
        self.opt_g = make_optimizer(cfg, self.gen.parameters())
        self.opt_d = make_optimizer(cfg, self.disc.parameters())
        labels = self._training_labels(train.shape[0]) if cfg.conditional else None  # (N, K) one-hot or None
        self.stream = MinibatchStream(
            self.data, cfg.batch_size, self.perm_rng, rows=dist.rows(cfg.batch_size), labels=labels
        )
        self.game = Game(cfg, self.gen, self.disc, self.opt_g, self.opt_d, self.stream, self.rng, shard=dist.shard)
        self.inferer = None
        if cfg.joint_inferer:  # E(x) ≈ z trained on the game's own (z, G(z)) batches (gancore.infer.encoder)
            if dist.enabled:
                raise ValueError("--joint-inferer runs in one process; train it without torchrun")
            from ..infer.encoder import JointInferer

            std = torch.from_numpy(train.std(axis=0, dtype=np.float64))
            self.inferer = JointInferer(
                self.data.shape[1], cfg.noise_dim, pixel_mean, std, seed=cfg.seed + 5, device=device
            )
        per_step = cfg.batch_size * data_batches_per_step(cfg)
        self.steps_per_epoch = self.data.shape[0] // per_step
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"the training set has {self.data.shape[0]} examples, fewer than one iteration needs "
                f"(batch_size {cfg.batch_size} x {data_batches_per_step(cfg)} minibatches)"
            )
        total = cfg.epochs * self.steps_per_epoch
        self.total_steps = min(total, cfg.max_steps) if cfg.max_steps else total
        fixed = torch.Generator().manual_seed(cfg.seed + 3)
        self.fixed_noise = sample_noise(
            cfg.sample_rows * cfg.sample_cols, cfg.noise_dim, cfg.noise_prior, generator=fixed
        ).to(device)
        # Conditional: row r of the sample grid is class r mod K and the noise is the same down each
        # column, so a column holds one "style" through the classes (Mirza & Osindero 2014, Figure 2).
        self.fixed_labels = None
        if cfg.conditional:
            from .conditional import N_CLASSES, one_hot

            rows = torch.arange(cfg.sample_rows).repeat_interleave(cfg.sample_cols) % N_CLASSES[cfg.dataset]
            self.fixed_labels = one_hot(rows, N_CLASSES[cfg.dataset]).to(device)  # (rows*cols, K)
            self.fixed_noise = self.fixed_noise[: cfg.sample_cols].repeat(cfg.sample_rows, 1)
        self.step = 0
        self.saved_step = -1
        self._stop_signal: int | None = None

    # ------------------------------------------------------------------------------------------
    def _training_data(self) -> np.ndarray:
        cfg = self.cfg
        if cfg.dry_run:
            # A tiny synthetic set of the dataset's shape: 8 iterations per epoch, no files needed.
            n = 8 * cfg.batch_size * data_batches_per_step(cfg)
            g = torch.Generator().manual_seed(cfg.seed)
            return torch.rand(n, math.prod(cfg.image_shape), generator=g).numpy()
        return load_split(cfg.dataset, cfg.train_split, data_dir=cfg.data_dir)

    def _training_labels(self, n: int) -> torch.Tensor:
        """One-hot labels (N, K) row for row with the training data (dry run: synthetic labels)."""
        from ..data import load_labels
        from .conditional import N_CLASSES, one_hot

        k = N_CLASSES[self.cfg.dataset]
        if self.cfg.dry_run:
            y = torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(self.cfg.seed + 4))
        else:
            y = torch.from_numpy(load_labels(self.cfg.dataset, self.cfg.train_split, data_dir=self.cfg.data_dir))
        if y.shape[0] != n:
            raise ValueError(f"{self.cfg.dataset} has {y.shape[0]} labels for {n} training images")
        return one_hot(y, k).to(self.device)

    @property
    def epoch(self) -> int:
        """0-based epoch the next step belongs to."""
        return self.step // self.steps_per_epoch

    # ------------------------------------------------------------------------------------------
    def run(self) -> None:
        """Train until ``total_steps``; checkpoint every epoch, at the end and on Ctrl-C/SIGTERM."""
        cfg = self.cfg
        if self.dist.enabled and not self.game.ddp:
            # Collective (DDP checks every rank holds the same parameters), hence here and not in
            # __init__: main() first makes sure every rank built its trainer.
            self.game.attach_ddp(wrap(self.gen, self.device), wrap(self.disc, self.device))
        kill_at = int(os.environ.get(KILL_ENV, "0") or 0)
        if os.environ.get(KILL_RANK_ENV, "") not in ("", str(self.dist.rank)):
            kill_at = 0
        progress = Progress(self.total_steps, self.step) if self.dist.is_main else _NoProgress()
        acc = torch.zeros(5, dtype=torch.float64, device=self.device)  # the game's 4 numbers, E's loss
        n_acc, t_last, step_last = 0, time.perf_counter(), self.step
        old_handlers = self._install_signal_handlers()
        try:
            while self.step < self.total_steps:
                if self.step % self.steps_per_epoch == 0:
                    self.stream.new_epoch()
                lr, mom = lr_at(cfg, self.step), momentum_at(cfg, self.epoch)
                acc[:4] += self.game.step(lr, mom)
                if self.inferer is not None:
                    acc[4] += self.inferer.train_on(*self.game.last_pair)
                n_acc += 1
                self.step += 1
                if kill_at and self.step == kill_at:
                    os.kill(os.getpid(), getattr(signal, os.environ.get(KILL_SIGNAL_ENV) or "SIGKILL"))
                end_of_epoch = self.step % self.steps_per_epoch == 0
                sync_point = self.step % cfg.log_every == 0 or end_of_epoch or self.step == self.total_steps
                stop = self._stop_requested(sync_point)
                if sync_point or stop:
                    now = time.perf_counter()
                    self._log_metrics(
                        acc, n_acc, lr, mom, (self.step - step_last) * cfg.batch_size * cfg.k / (now - t_last), progress
                    )
                    acc.zero_()
                    n_acc, t_last, step_last = 0, time.perf_counter(), self.step
                if end_of_epoch:
                    progress.message(f"epoch {self.step // self.steps_per_epoch} done (step {self.step})")
                    self.save_samples(f"epoch_{self.step // self.steps_per_epoch:04d}.png")
                    self.save_checkpoint()
                    self._plot_curves()
                    t_last = time.perf_counter()  # do not charge the checkpoint to the next interval
                # One process also honours a signal that arrived while the epoch's checkpoint was written.
                if stop or (not self.dist.enabled and self._stop_signal):
                    why = f"signal {self._stop_signal}" if self._stop_signal else "another rank was signalled"
                    progress.message(f"{why}: saving a checkpoint at step {self.step} and stopping")
                    self.save_checkpoint()
                    raise KeyboardInterrupt
            if self.saved_step != self.step:
                self.save_checkpoint()
            self.save_samples("final.png")
            self._plot_curves()
            self.dist.barrier()  # the final checkpoint is on disk before any rank goes on to evaluate it
        finally:
            progress.close()
            _restore_signal_handlers(old_handlers)

    def _stop_requested(self, sync_point: bool) -> bool:
        """Stop after this step? One process: when signalled. Data parallel: when any rank was
        signalled, decided together at logging steps so that every rank stops after the same step."""
        if not self.dist.enabled:
            return bool(self._stop_signal)
        return sync_point and self.dist.any(bool(self._stop_signal))

    def _plot_curves(self) -> None:
        if self.dist.is_main:
            plot_curves(self.run_dir / "metrics.jsonl", self.run_dir / "curves.png")

    def _log_metrics(self, acc, n_acc, lr, mom, images_per_s, progress) -> None:
        self.dist.mean_(acc)  # every rank gets the global means, so every rank sees a NaN
        mean = (acc / n_acc).tolist()  # the one device sync per interval
        if not all(math.isfinite(v) for v in mean):
            last = checkpoints.latest(self.run_dir)
            raise TrainingDiverged(
                f"the losses became NaN/inf between steps {self.step - n_acc + 1} and {self.step} "
                f"(loss_d={mean[0]}, loss_g={mean[1]}); training stopped. The last good checkpoint, "
                f"{last if last else '(none yet)'}, is untouched. Try a smaller --lr or another --g-loss."
            )
        row = dict(
            step=self.step,
            epoch=self.step / self.steps_per_epoch,
            loss_d=mean[0],
            loss_g=mean[1],
            d_real=mean[2],
            d_fake=mean[3],
            lr=lr,
            momentum=mom,
            images_per_s=images_per_s,  # all ranks together: global batch size x steps / time
        )
        if self.inferer is not None:
            row["inferer_mse"] = mean[4]  # E's loss: mean squared error per dimension of z
        if not self.dist.is_main:
            return
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        progress.update(self.step, (self.step - 1) // self.steps_per_epoch, row)

    # ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def save_samples(self, name: str) -> Path | None:
        """G(fixed noise) as a grid; G in eval mode (batch norm uses running statistics). Rank 0 only."""
        if not self.dist.is_main:
            return None
        self.gen.eval()
        z = self.fixed_noise
        x = (self.gen(z) if self.fixed_labels is None else self.gen(z, self.fixed_labels)).float().cpu().numpy()
        self.gen.train()
        return save_grid(
            self.run_dir / "samples" / name, x, self.cfg.image_shape, self.cfg.sample_rows, self.cfg.sample_cols
        )

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint (rank 0; its state is every rank's, see the module docstring)."""
        if not self.dist.is_main:
            self.saved_step = self.step
            return None
        # An update can blow the weights up after the last finite loss was logged; a checkpoint
        # holding NaN/inf would replace the last good one, so refuse to write it.
        for name, model in (("G", self.gen), ("D", self.disc)):
            if not all(torch.isfinite(p).all() for p in model.parameters()):
                last = checkpoints.latest(self.run_dir)
                raise TrainingDiverged(
                    f"{name}'s weights became NaN/inf by step {self.step}; no checkpoint written. The last "
                    f"good checkpoint, {last if last else '(none yet)'}, is untouched. Try a smaller --lr."
                )
        tensors = {}
        tensors.update(self.opt_g.state_tensors("opt_g"))
        tensors.update(self.opt_d.state_tensors("opt_d"))
        if self.inferer is not None:
            tensors.update(self.inferer.state_tensors("inferer"))
        tensors["rng.device"] = self.rng.get_state()
        tensors["rng.perm"] = self.perm_rng.get_state()
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng.cuda.{i}"] = s
        np_state = np.random.get_state()
        tensors["rng.numpy.keys"] = torch.from_numpy(np_state[1].astype(np.int64))
        tensors["stream.perm"] = self.stream.perm
        py_state = random.getstate()
        meta = dict(
            epoch=self.epoch,
            stream_pos=self.stream.pos,
            device_type=self.device.type,
            lr=lr_at(self.cfg, self.step),
            momentum=momentum_at(self.cfg, self.epoch),
            config=self.cfg.to_dict(),
            torch_version=torch.__version__,
            world_size=self.dist.world_size,
            rng_numpy=dict(pos=int(np_state[2]), has_gauss=int(np_state[3]), cached_gaussian=float(np_state[4])),
            rng_python=dict(version=py_state[0], state=list(py_state[1]), gauss_next=py_state[2]),
        )
        path = checkpoints.save(
            self.run_dir,
            self.step,
            gen=self.gen,
            disc=self.disc,
            tensors=tensors,
            meta=meta,
            keep=self.cfg.keep_checkpoints,
        )
        self.saved_step = self.step
        log.debug("checkpoint %s", path)
        return path

    def restore(self, path: Path) -> None:
        """Load checkpoint ``path`` (verified; refused for another config) into this trainer."""
        meta, g_state, d_state, t = checkpoints.load(path, cfg=self.cfg, device="cpu")
        self.gen.load_state_dict(g_state)
        self.disc.load_state_dict(d_state)
        self.opt_g.load_state_tensors(t, "opt_g")
        self.opt_d.load_state_tensors(t, "opt_d")
        if self.inferer is not None:
            self.inferer.load_state_tensors(t, "inferer")
        if meta["device_type"] == self.device.type:
            self.rng.set_state(t["rng.device"])
        else:
            log.warning(
                "checkpoint made on %s, resuming on %s: the continuation is valid but not bit-identical "
                "to an uninterrupted run",
                meta["device_type"],
                self.device.type,
            )
            self.rng.manual_seed(self.cfg.seed + 1 + meta["step"])
        self.perm_rng.set_state(t["rng.perm"])
        torch.set_rng_state(t["rng.torch"])
        cuda_states = [t[k] for k in sorted(t) if k.startswith("rng.cuda.")]
        if cuda_states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda_states)
        npm = meta["rng_numpy"]
        np.random.set_state(
            (
                "MT19937",
                t["rng.numpy.keys"].numpy().astype(np.uint32),
                npm["pos"],
                npm["has_gauss"],
                npm["cached_gaussian"],
            )
        )
        pyr = meta["rng_python"]
        random.setstate((pyr["version"], tuple(pyr["state"]), pyr["gauss_next"]))
        self.step = self.saved_step = int(meta["step"])
        if self.step % self.steps_per_epoch:
            self.stream.restore(t["stream.perm"], int(meta["stream_pos"]))
        saved_world = int(meta.get("world_size", 1))
        if saved_world != self.dist.world_size:
            log.warning(
                "checkpoint made by %d process(es), resuming with %d: the minibatches and random numbers "
                "continue exactly, the float summation order differs, so the run is not bit-identical",
                saved_world,
                self.dist.world_size,
            )
        if self.dist.is_main:
            truncate_jsonl(self.run_dir / "metrics.jsonl", self.step)

    # ------------------------------------------------------------------------------------------
    def _install_signal_handlers(self):
        return install_stop_handlers(self)


class _NoProgress:
    """What ranks other than 0 report: nothing."""

    def update(self, *args) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def install_stop_handlers(owner):
    """First Ctrl-C / SIGTERM: set ``owner._stop_signal`` (finish the current step, checkpoint, stop).
    A second one: stop now. Returns the previous handlers for :func:`_restore_signal_handlers`."""

    def handler(signum, frame):
        if owner._stop_signal:
            raise KeyboardInterrupt
        owner._stop_signal = signum

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            pass
    return old


def _restore_signal_handlers(old) -> None:
    for sig, h in old.items():
        signal.signal(sig, h)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
