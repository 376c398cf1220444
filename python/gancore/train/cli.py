"""``python -m gancore.train``: Algorithm 1 of Goodfellow et al. (2014), as a command-line tool.

    python -m gancore.train                                  # mnist_2014, 5 epochs, bundled MNIST
    python -m gancore.train --epochs 300 --out runs/full     # a full-length 2014 reproduction
    python -m gancore.train --update alternating --k 1       # Algorithm 1 as printed in the paper
    python -m gancore.train --preset dcgan --dataset cifar10 --data-dir ~/data
    python -m gancore.train --resume runs/full               # continue a killed run, bit for bit
    python -m gancore.train --dry-run --no-eval              # smoke test: a few steps, synthetic data
    torchrun --standalone --nproc_per_node 2 -m gancore.train --threads 1   # 2 data-parallel processes

The run directory gets ``config.json`` (the resolved configuration, seed included), ``metrics.jsonl``,
``samples/epoch_NNNN.png`` and ``samples/final.png`` (G on a fixed noise batch), ``curves.png`` and
``checkpoints/`` (:mod:`gancore.train.checkpoints`). At the end, unless ``--no-eval``, the run is scored
with the paper's Parzen-window log-likelihood (:func:`gancore.evaluate.pipeline.evaluate_run`).
The models are in :mod:`gancore.train.models`, one iteration in :mod:`gancore.train.algorithm1`, the loop,
checkpoints and logging in :mod:`gancore.train.trainer`, the flags in :mod:`gancore.train.flags`, and the
multi-process set-up (torchrun, DDP) in :mod:`gancore.distributed.group`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from ..common.allocator import keep_freed_memory
from ..common.atomic import remove_temporaries
from ..common.failures import (
    EXIT_DIST,
    EXIT_DIVERGED,
    EXIT_INTERRUPTED,
    EXIT_IO,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_USAGE,
    describe_os_error,
)
from ..common.lock import RunLocked, hold_run_lock, release_run_lock
from . import config as C
from .flags import build_parser, config_overrides

log = logging.getLogger("gancore.train")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from ..distributed import group as distributed

    rank = int(os.environ.get("RANK", "0") or 0) if distributed.launched() else 0
    logging.basicConfig(
        level=logging.WARNING if args.quiet or rank != 0 else logging.INFO,  # under torchrun, rank 0 talks
        format="%(asctime)s %(levelname)s " + (f"[rank {rank}] " if distributed.launched() else "") + "%(message)s",
        datefmt="%H:%M:%S",
    )
    import torch  # after argument parsing, so --help is instant

    try:
        cfg, run_dir, resuming = resolve(args)
        device = prepare_process(cfg, torch)
        dist = distributed.setup(device.type, args.dist_timeout)
        if dist.enabled:
            device = _local_device(device, dist, torch)
            run_dir = dist.broadcast(run_dir)  # rank 0's: a default name holds the time of day
        trainer = start(cfg, run_dir, device, dist, resuming)
    except RunLocked as exc:
        log.error("%s", exc)
        distributed.teardown()
        return EXIT_LOCKED
    except (ValueError, FileNotFoundError, ImportError) as exc:
        log.error("%s", exc)
        distributed.teardown()
        return EXIT_USAGE
    except OSError as exc:  # the run directory cannot be created or written (read-only, permission, no space)
        log.error("cannot start the run: %s", describe_os_error(exc))
        distributed.teardown()
        return EXIT_IO
    except torch.distributed.DistError as exc:  # the group could not form (e.g. a rank never arrived)
        log.error("%s", distributed.failure_hint(distributed.current(), exc))
        return EXIT_DIST
    log.info(
        "run %s | preset %s | dataset %s | device %s | seed %d | %d steps (%d per epoch)",
        run_dir,
        cfg.preset,
        "synthetic (dry run)" if cfg.dry_run else cfg.dataset,
        device,
        cfg.seed,
        trainer.total_steps,
        trainer.steps_per_epoch,
    )
    if dist.enabled:
        log.info(
            "data parallel: %d processes (%s) x %d examples = global minibatch %d; lr and schedules as for one process",
            dist.world_size,
            dist.backend,
            cfg.batch_size // dist.world_size,
            cfg.batch_size,
        )
    try:
        return _train(args, cfg, run_dir, device, dist, trainer)
    finally:
        if dist.is_main:
            release_run_lock(run_dir)


def _train(args, cfg, run_dir: Path, device, dist, trainer) -> int:
    """Algorithm 1 to the end of the run, then the evaluation; the exit code."""
    from ..distributed import group as distributed
    from .trainer import TrainingDiverged

    t0 = time.perf_counter()
    try:
        trainer.run()
    except TrainingDiverged as exc:
        log.error("%s", exc)
        distributed.teardown()
        return EXIT_DIVERGED
    except KeyboardInterrupt:
        log.warning("interrupted at step %d; resume with: %s --resume %s", trainer.step, _command(dist), run_dir)
        distributed.teardown()
        return EXIT_INTERRUPTED
    except OSError as exc:  # disk full, read-only, permission, a vanished directory: the user can fix it
        last = _latest_or_none(run_dir)
        log.error(
            "%s. Training stopped at step %d; the last good checkpoint %s is intact. Fix that, then continue "
            "with: %s --resume %s",
            describe_os_error(exc),
            trainer.step,
            last or "(none yet)",
            _command(dist),
            run_dir,
        )
        distributed.teardown()
        return EXIT_IO
    except RuntimeError as exc:  # torch.distributed.DistError and the errors Gloo raises as plain RuntimeError
        if not dist.enabled:
            raise
        last = _latest_or_none(run_dir)
        log.error(
            "%s. Training stopped at step %d; the last checkpoint is %s. Continue with: %s --resume %s",
            distributed.failure_hint(dist, exc),
            trainer.step,
            last or "(none yet)",
            _command(dist),
            run_dir,
        )
        return EXIT_DIST
    log.info("done: %d steps in %.1f s; samples in %s", trainer.step, time.perf_counter() - t0, run_dir / "samples")
    code = EXIT_OK if args.no_eval else run_evaluation(cfg, run_dir, str(device))
    distributed.teardown()
    return code


def start(cfg, run_dir: Path, device, dist, resuming: bool):
    """Build the trainer, record the config (rank 0) and restore the latest checkpoint when resuming.

    Under torchrun the ranks then agree: if any of them failed (missing data, bad checkpoint…), all
    stop with a usage error instead of leaving the others waiting in the first collective.
    """
    from . import checkpoints
    from .trainer import Trainer

    error = None
    trainer = None
    try:
        trainer = Trainer(cfg, run_dir, device, dist)  # loads the data: may fail before anything is written
        if dist.is_main:
            # One writer per run directory, before anything is written; then the temporaries of an earlier
            # process that died or failed mid-write go, so they take no space and cannot pass for data.
            hold_run_lock(run_dir, purpose="training")
            for folder in (run_dir, run_dir / "checkpoints", run_dir / "samples"):
                for stale in remove_temporaries(folder):
                    log.info("removed %s, left by an interrupted write", stale)
            write_config(cfg, run_dir)
        if resuming and (ckpt := checkpoints.latest(run_dir)) is not None:
            trainer.restore(ckpt)
            log.info("resumed %s at step %d of %d", ckpt, trainer.step, trainer.total_steps)
        elif resuming:
            log.warning("%s has no checkpoint yet: starting it from step 0", run_dir)
    except (ValueError, OSError, ImportError, RunLocked) as exc:
        if dist.is_main and not isinstance(exc, RunLocked):
            release_run_lock(run_dir)
        if not dist.enabled:
            raise
        error = exc
    if dist.any(error is not None):
        raise error or ValueError("another process of this torchrun job failed to start (its message is in its log)")
    return trainer


def _local_device(device, dist, torch):
    """Under torchrun every process on a machine takes its own GPU: cuda:LOCAL_RANK."""
    return torch.device("cuda", dist.local_rank) if device.type == "cuda" else device


def _command(dist) -> str:
    return "torchrun ... -m gancore.train" if dist.enabled else "python -m gancore.train"


def _latest_or_none(run_dir: Path):
    from . import checkpoints

    try:
        return checkpoints.latest(run_dir)
    except ValueError:
        return None


def prepare_process(cfg, torch):
    """The process-wide settings a run needs before its trainer is built (this command's and
    ``sweep --batched``'s): its device, torch's threads, glibc's allocator on a CPU (10-25 % of a
    DCGAN or minibatch-features step, :mod:`gancore.common.allocator`) and determinism."""
    device = pick_device(cfg.device, torch)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device.type == "cpu":
        keep_freed_memory()
    _determinism(torch, device)
    return device


def resolve(args) -> tuple[C.TrainConfig, Path, bool]:
    """The run's config and directory, from a preset plus flags, or from a run being resumed."""
    overrides = config_overrides(args)
    if args.resume:
        run_dir = Path(args.resume if isinstance(args.resume, str) else (args.out or ""))
        if not str(run_dir):
            raise ValueError("--resume needs a run directory: --resume RUN_DIR (or --out RUN_DIR --resume)")
        if args.out and isinstance(args.resume, str) and Path(args.out) != run_dir:
            raise ValueError(f"--out {args.out} and --resume {args.resume} name different runs")
        cfg = _resumed_config(run_dir, args.preset, overrides)
    else:
        preset = args.preset or "mnist_2014"
        if args.dry_run and "epochs" not in overrides:
            overrides["epochs"] = 2
        cfg = C.from_preset(preset, **overrides)
        run_dir = Path(args.out) if args.out else Path("runs") / f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
        if run_dir.exists() and not run_dir.is_dir():
            raise ValueError(f"--out {run_dir} is an existing file, not a directory; choose another --out")
        if (run_dir / "checkpoints").exists() or (run_dir / "config.json").exists():
            raise ValueError(
                f"{run_dir} already holds a run; continue it with --resume {run_dir} or choose another --out"
            )
    return cfg, run_dir, bool(args.resume)


def write_config(cfg: C.TrainConfig, run_dir: Path) -> None:
    """Create the run directory and record the resolved configuration (seed included) in it."""
    from ..common.atomic import write_atomic

    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / "config.json", (json.dumps(cfg.to_dict(), indent=2) + "\n").encode())
    log.info("config: %s", json.dumps(cfg.to_dict(), sort_keys=True))


def _resumed_config(run_dir: Path, preset, overrides: dict) -> C.TrainConfig:
    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume: {path} not found ({run_dir} is not a gancore run directory)")
    saved = json.loads(path.read_text())
    if preset is not None:
        overrides["preset"] = preset
    changed = {k: v for k, v in overrides.items() if saved.get(k) != v and k not in C.TrainConfig.RESUMABLE}
    if changed:
        raise ValueError(
            f"cannot resume {run_dir} with different settings {changed}; only "
            f"{', '.join('--' + f.replace('_', '-') for f in C.TrainConfig.RESUMABLE)} may change"
        )
    saved.update(overrides)
    return C.from_dict(saved)


def pick_device(name: str, torch):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but CUDA is not available (use --device cpu or auto)")
    return torch.device(name)


def _determinism(torch, device) -> None:
    """Same seed, same device → same numbers. cuBLAS needs a fixed workspace for that."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def run_evaluation(cfg, run_dir: Path, device: str) -> int:
    """Score the run with the Parzen-window log-likelihood and print the headline; the exit code."""
    if cfg.dry_run:
        log.info("dry run: skipping the evaluation (synthetic data)")
        return EXIT_OK
    from ..distributed.group import current
    from ..evaluate.pipeline import evaluate_run

    again = f"training finished and is checkpointed; evaluate it again with: python -m gancore.evaluate {run_dir}"
    try:
        report = evaluate_run(run_dir, data_dir=cfg.data_dir, device=device)  # sharded under torchrun
    except (ValueError, FileNotFoundError) as exc:
        log.error("evaluation failed: %s; %s", exc, again)
        return EXIT_USAGE
    except OSError as exc:
        log.error("evaluation failed: %s; %s", describe_os_error(exc), again)
        return EXIT_IO
    if current().is_main:
        print(report["headline"])
    return EXIT_OK
