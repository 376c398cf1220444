"""Data-parallel training and sharded evaluation on ``torch.distributed``, launched by ``torchrun``.

    torchrun --standalone --nproc_per_node 2 -m gancore.train --out runs/ddp          # 2 processes
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
             --rdzv-id run1 -m gancore.train --out /shared/runs/ddp                     # 2 machines
    torchrun --standalone --nproc_per_node 2 -m gancore.evaluate RUN_DIR               # sharded evaluation

This module's one job is the process group and the few collectives training and evaluation need.
:func:`setup` reads torchrun's ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE``
(``init_process_group`` reads ``MASTER_ADDR``/``MASTER_PORT`` itself), starts NCCL for CUDA (with
Gloo beside it for CPU tensors) or Gloo on the CPU, and sets a timeout: a collective whose peer died,
hangs or lost its network fails with an error after ``timeout_s`` instead of blocking for ever.
Without torchrun, or with a single process, it returns :data:`SINGLE`, whose helpers do nothing, so a
plain ``python -m gancore.train`` runs exactly the single-process code.

**Training** (see :mod:`gancore.train.algorithm1`). Every rank runs the run's seeded generators in lockstep
and keeps its own rows of every draw: rank r of W takes rows ``[r·m/W, (r+1)·m/W)`` of the global
data minibatch (a slice of the same epoch permutation), of the global noise batch and of every
dropout mask. The ranks therefore see different data, noise and masks, reproducibly from the seed
and without a per-rank seed; their shards concatenate to the one-process run's minibatch; and every
rank's generator state equals rank 0's, so rank 0's checkpoint resumes every rank. The losses are
means over the shard and DDP averages gradients over equal shards, which is the mean over the global
minibatch: the effective batch size and the learning rate stay the recipe's.

**Evaluation** shards the Rust kernels by query rows: :mod:`gancore.distributed.sharding`.
"""

from __future__ import annotations

import datetime
import inspect
import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Dist:
    """Where this process stands in the job. ``SINGLE`` (world size 1) is the plain, single-process run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that writes files (config, metrics, samples, checkpoints, reports)."""
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int] | None:
        """``(rank, world_size)`` for the training code, ``None`` in a single-process run."""
        return (self.rank, self.world_size) if self.enabled else None

    def rows(self, n: int) -> tuple[int, int]:
        """This rank's contiguous rows ``[lo, hi)`` of ``n``; slice sizes differ by at most one."""
        return self.rank * n // self.world_size, (self.rank + 1) * n // self.world_size

    # -- collectives (no-ops in a single-process run) ---------------------------------------------
    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank."""
        if not self.enabled:
            return bool(flag)
        t = torch.tensor([1.0 if flag else 0.0])
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def mean_(self, t: torch.Tensor) -> torch.Tensor:
        """Average ``t`` over the ranks in place (equal-sized shards: the mean over the global batch)."""
        if self.enabled:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            t.div_(self.world_size)
        return t

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank (pickled; for small control values only)."""
        if not self.enabled:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def broadcast_array(self, a: np.ndarray | None) -> np.ndarray:
        """Rank 0's array on every rank (other ranks may pass None)."""
        if not self.enabled:
            return a
        shape, dtype = self.broadcast((a.shape, a.dtype.str) if self.is_main else None)
        t = torch.from_numpy(np.ascontiguousarray(a)) if self.is_main else torch.empty(shape, dtype=_torch_dtype(dtype))
        dist.broadcast(t, src=0)
        return t.numpy()

    def barrier(self) -> None:
        """Wait for every rank (a CPU all-reduce, so it needs no device guess under NCCL)."""
        if self.enabled:
            dist.all_reduce(torch.zeros(1))


SINGLE = Dist()
_current = SINGLE


def current() -> Dist:
    """The job this process belongs to (:data:`SINGLE` unless :func:`setup` started a group)."""
    return _current


def launched() -> bool:
    """True when torchrun (or a launcher setting the same variables) started more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and "RANK" in os.environ


def setup(device_type: str = "cpu", timeout_s: float = DEFAULT_TIMEOUT_S) -> Dist:
    """Join the process group torchrun's environment describes; :data:`SINGLE` without torchrun.

    ``device_type`` "cuda" picks NCCL for CUDA tensors plus Gloo for CPU tensors (control values,
    sharded evaluation) and binds this process to GPU ``LOCAL_RANK``; anything else picks Gloo.
    Every collective of the group fails after ``timeout_s`` seconds without its peers.
    """
    global _current
    if not launched():
        return SINGLE
    if timeout_s <= 0:
        raise ValueError(f"--dist-timeout must be > 0 seconds; got {timeout_s}")
    env = {k: os.environ.get(k) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")}
    try:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
        local_rank = int(env["LOCAL_RANK"] or 0)
        local_world = int(env["LOCAL_WORLD_SIZE"] or world)
    except (TypeError, ValueError):
        raise ValueError(f"bad torchrun environment {env}: RANK and WORLD_SIZE must be integers") from None
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is outside WORLD_SIZE={world}")
    if dist.is_initialized():  # already joined (e.g. training, then its end-of-run evaluation)
        _current = Dist(rank, world, local_rank, local_world, dist.get_backend(), timeout_s)
        return _current
    if not dist.is_available():
        raise ValueError("this PyTorch build has no torch.distributed: run without torchrun")
    if device_type == "cuda":
        if not dist.is_nccl_available():
            raise ValueError("--device cuda under torchrun needs NCCL, which this PyTorch build lacks")
        torch.cuda.set_device(local_rank)
        backend = "cpu:gloo,cuda:nccl"
    else:
        if not dist.is_gloo_available():
            raise ValueError("CPU training under torchrun needs the Gloo backend, which this PyTorch build lacks")
        backend = "gloo"
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    _current = Dist(rank, world, local_rank, local_world, backend, timeout_s)
    log.info(
        "rank %d of %d (local %d of %d): process group %s, timeout %.0f s",
        rank,
        world,
        local_rank,
        local_world,
        backend,
        timeout_s,
    )
    return _current


def teardown() -> None:
    """Leave the process group (safe to call when there is none)."""
    global _current
    if _current.enabled and dist.is_initialized():
        dist.destroy_process_group()
    _current = SINGLE


def failure_hint(d: Dist, exc: BaseException) -> str:
    """A message for a collective that failed: what probably happened and what to do."""
    return (
        f"rank {d.rank} of {d.world_size}: a collective operation with the other processes failed ({exc}). "
        f"The usual cause is that another rank died or was killed (see its log and torchrun's summary), "
        f"or that the network between machines failed; a peer that stops answering makes this error "
        f"appear after --dist-timeout ({d.timeout_s:.0f} s)"
    )


def wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` under DistributedDataParallel: gradients reach every rank averaged.

    Buffers (batch-norm running statistics) are not re-broadcast before each forward pass: D runs
    twice (real, fake) before one backward pass, and the statistics only matter in eval mode, where
    rank 0's are the ones written and used. Every parameter takes part in every backward pass, so
    ``find_unused_parameters`` stays off.
    """
    kw: dict = dict(find_unused_parameters=False)
    params = inspect.signature(torch.nn.parallel.DistributedDataParallel).parameters
    kw["forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"] = False
    if device.type == "cuda":
        kw["device_ids"] = [device.index if device.index is not None else torch.cuda.current_device()]
    return torch.nn.parallel.DistributedDataParallel(module, **kw)


def check_batch_size(batch_size: int, d: Dist) -> None:
    if batch_size % d.world_size:
        raise ValueError(
            f"--batch-size {batch_size} is not divisible by the {d.world_size} processes: each process "
            f"computes batch_size / world_size examples of the global minibatch; choose a multiple of "
            f"{d.world_size}"
        )


# ------------------------------------------------------------------------------------------------
def _torch_dtype(numpy_str: str) -> torch.dtype:
    return torch.from_numpy(np.zeros(0, dtype=np.dtype(numpy_str))).dtype
