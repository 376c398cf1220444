"""``python -m gancore.semisupervised``: train the semi-supervised GAN (Salimans et al. 2016, §5) and report
its test error.

    python -m gancore.semisupervised --out runs/ssl --labels 100 --epochs 10           # one run (seed 0)
    python -m gancore.semisupervised --out runs/ssl --labels 100 --epochs 10 --seeds 0-2   # OUT/seed_<s>, summary
    python -m gancore.semisupervised --out runs/ssl --labels 100 --epochs 20 --seeds 0-2   # again: continues

A run directory holds ``config.json``, ``checkpoints/`` (:mod:`gancore.common.checkpoint_folder`; killed
at any moment, the same command resumes from the last one bit for bit, and ``--epochs`` may grow),
``metrics.jsonl`` (progress lines and, after each epoch, the test errors), ``report.json``/``report.md``
and ``samples.png``. With ``--seeds`` each seed is a run directory ``OUT/seed_<s>`` and ``OUT/summary.json``
/ ``summary.md`` give the mean ± sd of the final test errors. The test error is the number of MNIST test
images (of 10,000) the Polyak-averaged, noiseless D misclassifies, the figure of Salimans et al.'s Table 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shutil
import signal
import sys
import time
from pathlib import Path

from ..common.allocator import keep_freed_memory
from ..common.failures import (
    EXIT_CODES_HELP,
    EXIT_DIVERGED,
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
from . import config as ssl_config
from .config import SemiSupervisedConfig

log = logging.getLogger("gancore.semisupervised")

FORMAT = "gancore-semisupervised-checkpoint-1"
GROUPS = ("generator", "discriminator", "state")
KILL_ENV = "GANCORE_TEST_KILL_AT_STEP"  # test hook, as training's: SIGKILL right after this update
# Salimans et al. 2016, Table 1 (permutation-invariant MNIST, test errors of 10,000, mean ± sd over 10 seeds).
PUBLISHED = {100: (93, 6.5)}


class Diverged(RuntimeError):
    pass


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gancore.semisupervised",
        description=__doc__,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    p.add_argument("--out", required=True, metavar="DIR", help="run directory (with --seeds: one per seed under it)")
    p.add_argument("--seeds", metavar="LIST", help="several seeds, e.g. 0-2 or 0,3,7: one run each, then a summary")
    p.add_argument("--restart", action="store_true", help="discard existing checkpoints and train from update 0")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and the final result")
    add_options(p, SemiSupervisedConfig)
    return p


def main(argv=None) -> int:
    from ..train.sweep import parse_seeds

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    options = given_options(args, SemiSupervisedConfig)
    try:
        seeds = parse_seeds(args.seeds) if args.seeds is not None else None
        if seeds is not None and "seed" in options:
            raise ValueError("give either --seed or --seeds, not both")
        cfg = ssl_config.from_options(**options)
    except ValueError as exc:  # one line, no usage dump: the message names the flag
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    runs = (
        [(cfg, out)]
        if seeds is None
        else [(ssl_config.from_options(**{**options, "seed": s}), out / f"seed_{s}") for s in seeds]
    )
    reports = []
    for run_cfg, run_dir in runs:
        code, report = run_one(run_cfg, run_dir, restart=args.restart)
        if code != EXIT_OK:
            return code
        reports.append(report)
    if seeds is not None:
        summary = summarize(reports)
        _write(out / "summary.json", json.dumps(summary, indent=2) + "\n")
        _write(out / "summary.md", summary_markdown(summary))
        print(summary_markdown(summary), end="")
    return EXIT_OK


def _write(path: Path, text: str) -> None:
    from ..common.atomic import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text.encode())


def run_one(cfg: SemiSupervisedConfig, run_dir: Path, *, restart: bool = False) -> tuple[int, dict | None]:
    """Train (or continue) one run and write its report; (exit code, report)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        hold_run_lock(run_dir, purpose="semi-supervised GAN")
    except RunLocked as exc:
        log.error("%s", exc)
        return EXIT_LOCKED, None
    except OSError as exc:
        log.error("%s", describe_os_error(exc))
        return EXIT_IO, None
    try:
        return EXIT_OK, _run(cfg, run_dir, restart)
    except (ValueError, FileNotFoundError, ImportError) as exc:  # CheckpointError is a ValueError
        log.error("%s", exc)
        return EXIT_USAGE, None
    except Diverged as exc:
        log.error("%s", exc)
        return EXIT_DIVERGED, None
    except KeyboardInterrupt:
        log.warning("interrupted; run the same command again to continue from the last checkpoint")
        return EXIT_INTERRUPTED, None
    except OSError as exc:
        log.error("%s; the last checkpoint is intact, run the command again once fixed", describe_os_error(exc))
        return EXIT_IO, None
    finally:
        release_run_lock(run_dir)


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but CUDA is not available (use --device cpu or auto)")
    return torch.device(name)


def _run(cfg: SemiSupervisedConfig, run_dir: Path, restart: bool) -> dict:
    import torch

    from ..common import checkpoint_folder
    from ..common.atomic import remove_temporaries, truncate_jsonl
    from .training import SemiSupervisedTraining, load_data

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = _device(cfg.device)
    if device.type == "cpu":
        keep_freed_memory()
    ckpts = run_dir / "checkpoints"
    if restart:
        shutil.rmtree(ckpts, ignore_errors=True)
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    for stale in remove_temporaries(run_dir):
        log.info("removed %s, left by an interrupted write", stale)
    t_data = time.perf_counter()
    data = load_data(cfg)
    training = SemiSupervisedTraining(cfg, data, device)
    saved = cfg.to_dict()
    if (ckpt := checkpoint_folder.latest(ckpts)) is not None:
        step, groups = checkpoint_folder.load(ckpt, saved, SemiSupervisedConfig.RESUMABLE, fmt=FORMAT, groups=GROUPS)
        training.load_state(groups["generator"], groups["discriminator"], groups["state"])
        if training.step != step:
            raise checkpoint_folder.CheckpointError(f"{ckpt}: its state says update {training.step}, not {step}")
        truncate_jsonl(run_dir / "metrics.jsonl", step)
        log.info("resumed %s at update %d", ckpt, step)
    _write(run_dir / "config.json", json.dumps(saved, indent=2) + "\n")
    total = cfg.epochs * training.steps_per_epoch
    log.info(
        "semi-supervised GAN %s | %d labels (%d per class), %d unlabelled | %d epochs of %d updates | device %s | "
        "data in %.1f s",
        run_dir,
        cfg.labels,
        cfg.labels // 10,
        data.unlabeled.shape[0],
        cfg.epochs,
        training.steps_per_epoch,
        device,
        time.perf_counter() - t_data,
    )
    seconds = _train(training, cfg, run_dir, saved, total)
    return _report(training, cfg, run_dir, seconds)


def _train(training, cfg: SemiSupervisedConfig, run_dir: Path, saved: dict, total: int) -> float:
    """The update loop; returns the seconds it trained in this process."""
    from ..common import checkpoint_folder

    kill_at = int(os.environ.get(KILL_ENV, "0") or 0)

    def checkpoint():
        groups = {"generator": training.G.state_dict(), "discriminator": training.D.state_dict()}
        groups["state"] = training.state_tensors()
        checkpoint_folder.save(run_dir / "checkpoints", training.step, groups, saved, fmt=FORMAT)

    stop, old = install_stop_handlers()
    sums: dict[str, float] = {}
    n, t_log, t_start, start_step = 0, time.perf_counter(), time.perf_counter(), training.step
    try:
        while training.step < total:
            row = training.train_step()
            if not all(math.isfinite(v) for v in row.values()):
                raise Diverged(f"a loss became non-finite at update {training.step} ({row}); try a smaller --lr")
            for k, v in row.items():
                sums[k] = sums.get(k, 0.0) + v
            n += 1
            if kill_at and training.step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            epoch_end = training.step % training.steps_per_epoch == 0
            if training.step % cfg.log_every == 0 or epoch_end:
                dt = time.perf_counter() - t_log
                rate = (training.step - start_step) / max(time.perf_counter() - t_start, 1e-9)
                line = {"step": training.step, **{k: v / n for k, v in sums.items()}, "updates_per_s": n / dt}
                _append(run_dir / "metrics.jsonl", line)
                log.info(
                    "update %d/%d epoch %d | L_sup %.4f L_unsup %.4f L_G %.4f train err %.3f | %.1f updates/s | ETA %s",
                    training.step,
                    total,
                    (training.step - 1) // training.steps_per_epoch + 1,
                    line["loss_sup"],
                    line["loss_unsup"],
                    line["loss_g"],
                    line["train_error"],
                    line["updates_per_s"],
                    _eta((total - training.step) / max(rate, 1e-9)),
                )
                sums, n, t_log = {}, 0, time.perf_counter()
            if epoch_end:
                epoch = training.step // training.steps_per_epoch
                averaged = training.test_errors(training.data.test, training.data.test_y)
                raw = training.test_errors(training.data.test, training.data.test_y, averaged=False)
                uncorrected = training.test_errors(training.data.test, training.data.test_y, bias_corrected=False)
                row = {"step": training.step, "epoch": epoch, "test_errors": averaged, "test_errors_raw": raw}
                row["test_errors_uncorrected_average"] = uncorrected  # what the authors' test_batch prints
                _append(run_dir / "metrics.jsonl", row)
                log.info(
                    "epoch %d: %d test errors (Polyak-averaged D), %d (current D), %d (uncorrected average, as the "
                    "authors' code), of %d",
                    epoch,
                    averaged,
                    raw,
                    uncorrected,
                    training.data.test.shape[0],
                )
            if training.step % cfg.checkpoint_every == 0 or epoch_end or training.step == total or stop["sig"]:
                checkpoint()
            if stop["sig"]:
                log.warning("signal %d: checkpoint written at update %d", stop["sig"], training.step)
                raise KeyboardInterrupt
    finally:
        restore_handlers(old)
    return time.perf_counter() - t_start


def _append(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def _eta(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _curve(run_dir: Path) -> list[dict]:
    rows = []
    for ln in (run_dir / "metrics.jsonl").read_text().splitlines():
        try:
            r = json.loads(ln)
        except ValueError:
            continue
        if "test_errors" in r:
            keys = ("epoch", "test_errors", "test_errors_raw", "test_errors_uncorrected_average")
            rows.append({k: r.get(k) for k in keys})
    return rows


def _report(training, cfg: SemiSupervisedConfig, run_dir: Path, seconds: float) -> dict:
    import torch

    from ..common.grid import save_grid

    data = training.data
    errors = training.test_errors(data.test, data.test_y)
    raw = training.test_errors(data.test, data.test_y, averaged=False)
    save_grid(run_dir / "samples.png", training.samples(100, seed=cfg.seed), (1, 28, 28), 10, 10)
    published = PUBLISHED.get(cfg.labels) if cfg.dataset == "mnist" else None
    report = {
        "method": "semi-supervised GAN, K+1 classes, feature matching (Salimans et al. 2016, §5)",
        "labels": cfg.labels,
        "seed": cfg.seed,
        "epochs": training.step // training.steps_per_epoch,
        "updates": training.step,
        "test_errors": errors,
        "test_errors_raw": raw,
        "n_test": int(data.test.shape[0]),
        "test_error_rate": errors / data.test.shape[0],
        "curve": _curve(run_dir),
        "train_seconds_this_process": round(seconds, 1),
        "hardware": {
            "device": str(training.device),
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
        },
        "config": cfg.to_dict(),
        "published": None
        if published is None
        else {
            "test_errors_mean": published[0],
            "test_errors_sd": published[1],
            "source": "Salimans et al. 2016, Table 1",
        },
        "figure": "samples.png",
    }
    _write(run_dir / "report.json", json.dumps(report, indent=2) + "\n")
    _write(run_dir / "report.md", _markdown(report))
    print(
        f"{run_dir}: {errors} test errors of {report['n_test']} after {report['epochs']} epochs "
        f"({cfg.labels} labels, seed {cfg.seed}); current D: {raw}"
    )
    return report


def _markdown(rep: dict) -> str:
    pub = rep["published"]
    lines = [
        "# gancore semi-supervised GAN",
        "",
        f"{rep['method']}; {rep['labels']} labels, seed {rep['seed']}, {rep['epochs']} epochs "
        f"({rep['updates']} updates).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| test errors, Polyak-averaged D (of {rep['n_test']}) | {rep['test_errors']} |",
        f"| test errors, current D | {rep['test_errors_raw']} |",
    ]
    if pub:
        lines.append(f"| published, {pub['source']} | {pub['test_errors_mean']} ± {pub['test_errors_sd']} |")
    lines += ["", "| epoch | test errors (averaged) | (current D) | (uncorrected average) |", "|---:|---:|---:|---:|"]
    lines += [
        f"| {r['epoch']} | {r['test_errors']} | {r['test_errors_raw']} | {r['test_errors_uncorrected_average']} |"
        for r in rep["curve"]
    ]
    lines += ["", f"![samples]({rep['figure']})", ""]
    return "\n".join(lines)


def summarize(reports: list[dict]) -> dict:
    """Mean ± sample sd (ddof 1) of the runs' final test errors."""
    import numpy as np

    errs = np.array([r["test_errors"] for r in reports], dtype=float)
    raw = np.array([r["test_errors_raw"] for r in reports], dtype=float)

    def stats(v):
        return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n": int(v.size)}

    return {
        "labels": reports[0]["labels"],
        "epochs": [r["epochs"] for r in reports],
        "seeds": [r["seed"] for r in reports],
        "test_errors": [r["test_errors"] for r in reports],
        "test_errors_stats": stats(errs),
        "test_errors_raw_stats": stats(raw),
        "published": reports[0]["published"],
    }


def summary_markdown(s: dict) -> str:
    t, r = s["test_errors_stats"], s["test_errors_raw_stats"]
    lines = [
        f"# Semi-supervised GAN, {s['labels']} labels: test errors over seeds",
        "",
        "| seed | epochs | test errors |",
        "|---:|---:|---:|",
        *(f"| {sd} | {e} | {x} |" for sd, e, x in zip(s["seeds"], s["epochs"], s["test_errors"])),
        f"| **mean ± sd** | | **{t['mean']:.1f} ± {t['sd']:.1f}** (n = {t['n']}; "
        f"current D: {r['mean']:.1f} ± {r['sd']:.1f}) |",
    ]
    if s["published"]:
        p = s["published"]
        lines.append(f"| published ({p['source']}) | 300 | {p['test_errors_mean']} ± {p['test_errors_sd']} |")
    return "\n".join(lines) + "\n"
