"""``python -m gancore.infer RUN_DIR``: train an encoder E(x) ≈ z for a run's frozen generator, then report.

    python -m gancore.infer RUN_DIR                  # 2,000 Adam steps on fresh (G(z), z) pairs, then the report
    python -m gancore.infer RUN_DIR --steps 5000     # continue the same encoder to 5,000 steps
    python -m gancore.infer RUN_DIR --restart        # discard the encoder's checkpoints and start over
    python -m gancore.infer RUN_DIR --mode joint     # report the E of a `gancore.train --joint-inferer` run

Goodfellow et al. (2014), §7 item 2: "Learned approximate inference can be performed by training an
auxiliary network to predict z given x ... for a fixed generator net after the generator net has
finished training." What E is and what the report measures: :mod:`gancore.infer.encoder`.

Writes ``RUN_DIR/inference/``: ``config.json``, ``checkpoints/`` (:mod:`gancore.infer.state`; a run killed
at any moment resumes from the last one, bit for bit, when the same command is run again),
``metrics.jsonl``, ``report.json``, ``report.md`` and ``reconstructions.png`` (test images, G(E(x)), and
their nearest training images). The run directory's lock is held throughout, as training holds it.
``--mode joint`` trains nothing: it writes the same report, into ``RUN_DIR/inference_joint/``, for the E
that ``python -m gancore.train --joint-inferer`` trained alongside the game
(:class:`gancore.infer.encoder.JointInferer`).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import signal
import time
from pathlib import Path

from ..common.allocator import keep_freed_memory
from ..common.failures import (
    EXIT_CODES_HELP,
    EXIT_INTERRUPTED,
    EXIT_IO,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_USAGE,
    describe_os_error,
)
from ..common.lock import RunLocked, hold_run_lock, release_run_lock
from ..common.options import add_options, given_options
from ..common.signals import install_stop_handlers, restore_handlers
from . import config as infer_config
from .config import InferConfig

log = logging.getLogger("gancore.infer")

RUN_CONTROL = ("run_dir", "--restart", "--quiet")
METHODS = {
    "after": "after training (paper §7 item 2): E trained on fresh (G(z), z) pairs with G frozen",
    "joint": "jointly with the game (the 2014 code's AdversaryPair(inferer=...)): one E step per training "
    "iteration on that iteration's (G(z), z), no gradient to G",
}
KILL_ENV = "GANCORE_TEST_KILL_AT_STEP"  # test hook, as training's: SIGKILL right after this step


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gancore.infer",
        description=__doc__,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", help="a training run directory (config.json + checkpoints/)")
    p.add_argument("--restart", action="store_true", help="discard the encoder's checkpoints and train from step 0")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and the final result")
    add_options(p, InferConfig)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    run_dir = Path(args.run_dir)
    try:
        cfg = infer_config.from_options(**given_options(args, InferConfig))
        if not run_dir.is_dir():
            raise FileNotFoundError(f"run_dir {run_dir} is not a directory")
        hold_run_lock(run_dir, purpose="inference")
    except (ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except RunLocked as exc:
        log.error("%s", exc)
        return EXIT_LOCKED
    try:
        return _run(cfg, run_dir, args.restart)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.warning("interrupted; run the same command again to continue from the last checkpoint")
        return EXIT_INTERRUPTED
    except OSError as exc:
        log.error("%s; the last encoder checkpoint is intact, run the command again once fixed", describe_os_error(exc))
        return EXIT_IO
    finally:
        release_run_lock(run_dir)


def _run(cfg: InferConfig, run_dir: Path, restart: bool) -> int:
    import torch

    from ..common.atomic import remove_temporaries, truncate_jsonl, write_atomic
    from ..train.checkpoints import load_generator
    from . import state
    from .encoder import EncoderTraining, build_encoder

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = torch.device(
        "cuda"
        if cfg.device == "auto" and torch.cuda.is_available()
        else ("cpu" if cfg.device == "auto" else cfg.device)
    )
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but CUDA is not available (use --device cpu or auto)")
    if device.type == "cpu":
        keep_freed_memory()
    G, gcfg = load_generator(run_dir, device=device)
    if cfg.mode == "joint":  # E was trained with the game: nothing to train, only the report
        from .encoder import load_joint_encoder

        E, step = load_joint_encoder(run_dir, device=device)
        out = run_dir / "inference_joint"
        out.mkdir(parents=True, exist_ok=True)
        report = _report(G, E, gcfg, cfg, out, device, step)
        _print_summary(report, out)
        return EXIT_OK
    out = run_dir / "inference"
    ckpts = out / "checkpoints"
    if restart and out.exists():
        shutil.rmtree(ckpts, ignore_errors=True)
        (out / "metrics.jsonl").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    for stale in remove_temporaries(out):
        log.info("removed %s, left by an interrupted write", stale)
    d = math.prod(gcfg["image_shape"])
    E = build_encoder(d, list(cfg.hidden), gcfg["noise_dim"], cfg.seed).to(device)
    training = EncoderTraining(
        G, E, gcfg["noise_dim"], gcfg["noise_prior"], lr=cfg.lr, batch_size=cfg.batch_size, seed=cfg.seed, device=device
    )
    saved = cfg.to_dict()
    if (ckpt := state.latest(ckpts)) is not None:
        step, e_state, tensors = state.load(ckpt, saved, InferConfig.RESUMABLE)
        E.load_state_dict(e_state)
        training.load_state_tensors(tensors, step)
        log.info("resumed %s at step %d of %d", ckpt, step, cfg.steps)
        truncate_jsonl(out / "metrics.jsonl", step)
    write_atomic(out / "config.json", (json.dumps({"inference": saved, "run": gcfg}, indent=2) + "\n").encode())
    log.info(
        "encoder for %s | G %s, z %d-d %s | %d steps of %d pairs | device %s",
        run_dir,
        gcfg["preset"],
        gcfg["noise_dim"],
        gcfg["noise_prior"],
        cfg.steps,
        cfg.batch_size,
        device,
    )
    _train(training, cfg, out, saved)
    report = _report(G, E, gcfg, cfg, out, device, training.step)
    _print_summary(report, out)
    return EXIT_OK


def _print_summary(report: dict, out: Path) -> None:
    r, z = report["reconstruction"], report["z_recovery"]
    print(
        f"z recovery: MSE/dim {z['mse_per_dim']:.4f} vs {z['trivial_mse_per_dim']:.4f} for E[z] "
        f"(ratio {z['ratio']:.3f}); "
        f"reconstruction ||G(E(x)) - x||^2 {r['reconstruction_sq_error']['mean']:.2f} vs nearest training image "
        f"{r['nearest_training_sq_distance']['mean']:.2f} ({r['n_test']} test images); report: {out / 'report.md'}"
    )


def _train(training, cfg: InferConfig, out: Path, saved: dict) -> None:
    from . import state

    kill_at = int(os.environ.get(KILL_ENV, "0") or 0)

    stop, old = install_stop_handlers()
    acc, n_acc, t0 = 0.0, 0, time.perf_counter()
    try:
        while training.step < cfg.steps:
            loss = training.train_step()
            if not math.isfinite(loss):
                raise ValueError(f"the encoder's loss became {loss} at step {training.step}; try a smaller --lr")
            acc, n_acc = acc + loss, n_acc + 1
            if kill_at and training.step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            if training.step % cfg.log_every == 0 or training.step == cfg.steps:
                dt = time.perf_counter() - t0
                row = {"step": training.step, "loss": acc / n_acc, "pairs_per_s": n_acc * cfg.batch_size / dt}
                with open(out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(row) + "\n")
                log.info(
                    "step %d/%d | loss (MSE/dim of z) %.4f | %.0f pairs/s",
                    training.step,
                    cfg.steps,
                    row["loss"],
                    row["pairs_per_s"],
                )
                acc, n_acc, t0 = 0.0, 0, time.perf_counter()
            if training.step % cfg.checkpoint_every == 0 or training.step == cfg.steps or stop["sig"]:
                state.save(out / "checkpoints", training.step, training.E, training.state_tensors(), saved)
            if stop["sig"]:
                log.warning("signal %d: checkpoint written at step %d", stop["sig"], training.step)
                raise KeyboardInterrupt
    finally:
        restore_handlers(old)


def _report(G, E, gcfg: dict, cfg: InferConfig, out: Path, device, step: int) -> dict:
    from ..common.atomic import write_atomic
    from ..common.grid import image_grid, save_png, to_uint8
    from ..data import load_split
    from .encoder import reconstruction, z_recovery

    E.eval()
    data_dir = cfg.data_dir if cfg.data_dir is not None else gcfg.get("data_dir")
    t = time.perf_counter()
    zr = z_recovery(G, E, gcfg["noise_dim"], gcfg["noise_prior"], cfg.n_recovery, seed=cfg.seed + 2, device=device)
    test = load_split(gcfg["dataset"], "test", data_dir=data_dir)[: cfg.n_test]
    train = load_split(gcfg["dataset"], gcfg.get("train_split", "train"), data_dir=data_dir)
    labels = None
    if gcfg.get("conditional"):  # G(E(x) | y) with the test images' own labels
        from ..data import load_labels

        labels = load_labels(gcfg["dataset"], "test", data_dir=data_dir)[: cfg.n_test]
    rec = reconstruction(G, E, test, train, device=device, labels=labels, n_threads=cfg.threads)
    k = min(cfg.figure_cols, test.shape[0])
    rows = [test[:k], rec["_reconstructions"][:k], rec["_nearest"][:k]]  # test | G(E(x)) | nearest training
    import numpy as np

    grid = image_grid(to_uint8(np.concatenate(rows), gcfg["image_shape"]), 3, k, scale=2)
    save_png(grid, out / "reconstructions.png")
    report = {
        "method": METHODS[cfg.mode],
        "steps": step,
        "inference": cfg.to_dict(),
        "run": {k2: gcfg[k2] for k2 in ("preset", "dataset", "noise_dim", "noise_prior", "seed")},
        "z_recovery": zr,
        "reconstruction": {k2: v for k2, v in rec.items() if not k2.startswith("_")},
        "figure": "reconstructions.png",
        "report_seconds": round(time.perf_counter() - t, 2),
    }
    write_atomic(out / "report.json", json.dumps(report, indent=2) + "\n")
    write_atomic(out / "report.md", _markdown(report))
    return report


def _markdown(rep: dict) -> str:
    z, r = rep["z_recovery"], rep["reconstruction"]
    rs, nn = r["reconstruction_sq_error"], r["nearest_training_sq_distance"]
    return "\n".join(
        [
            "# gancore learned approximate inference",
            "",
            f"Encoder E(x) ≈ z, {rep['method']}; {rep['steps']} steps. Run: preset {rep['run']['preset']}, "
            f"dataset {rep['run']['dataset']}, z {rep['run']['noise_dim']}-d {rep['run']['noise_prior']}.",
            "",
            "| measure | value | reference |",
            "|---|---|---|",
            f"| z recovery: MSE per dimension of E(G(z)) vs z ({z['n']} fresh z) | {z['mse_per_dim']:.4f} | "
            f"{z['trivial_mse_per_dim']:.4f} for the trivial predictor E[z] (ratio {z['ratio']:.3f}) |",
            f"| reconstruction ‖G(E(x)) − x‖² on {r['n_test']} test images, mean ± se (median) | "
            f"{rs['mean']:.2f} ± {rs['se']:.2f} ({rs['median']:.2f}) | nearest training image: {nn['mean']:.2f} ± "
            f"{nn['se']:.2f} ({nn['median']:.2f}) |",
            f"| test images reconstructed closer than their nearest training image | "
            f"{r['fraction_closer_than_nearest_training']:.1%} | |",
            "",
            "**Test images (top), G(E(x)) (middle), nearest training images (bottom)**",
            "",
            f"![reconstructions]({rep['figure']})",
            "",
        ]
    )
