"""``python -m gancore.evaluate RUN_DIR [RUN_DIR ...]``: score training runs and write their reports.

    python -m gancore.evaluate RUN_DIR                       # the paper's protocol, everything
    python -m gancore.evaluate RUN_DIR --protocol full       # whole validation split, refined σ
    python -m gancore.evaluate RUN_DIR --references none --no-memorization --no-figures   # Parzen only
    torchrun --standalone --nproc_per_node 2 -m gancore.evaluate RUN_DIR                   # sharded kernels

What each step computes is described in :mod:`gancore.evaluate.pipeline`.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from ..common.failures import EXIT_CODES_HELP, EXIT_IO, EXIT_LOCKED, EXIT_OK, EXIT_USAGE, describe_os_error
from ..common.lock import RunLocked
from ..common.options import add_dist_timeout, add_options, given_options
from . import config as eval_config
from . import table1
from .config import EvalConfig
from .pipeline import evaluate_run
from .table1 import ParzenResult

logger = logging.getLogger("gancore.evaluate")


# The flags that steer the command rather than set an EvalConfig field; every other flag is generated
# from an EvalConfig field (gancore.common.options).
RUN_CONTROL = ("run_dir", "--dist-timeout", "--verbose")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gancore.evaluate",
        description=__doc__,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "run_dir",
        nargs="+",
        help="training run directories (config.json + checkpoints/); for TFD give one run per "
        "fold (with --fold per run as in its config) to get the paper's mean ± SE across folds",
    )
    add_dist_timeout(p)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    add_options(p, EvalConfig)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from ..distributed import group as distributed

    # torchrun: the kernels run on the CPU, so the group is Gloo's; only rank 0 talks and writes.
    launched = distributed.launched()
    rank = int(os.environ.get("RANK", "0") or 0) if launched else 0
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO if rank == 0 else logging.WARNING,
        format="%(asctime)s %(levelname)s " + (f"[rank {rank}] " if launched else "") + "%(name)s: %(message)s",
    )
    dist = distributed.setup("cpu", args.dist_timeout)
    try:
        return _evaluate_runs(args, dist)
    except (ValueError, FileNotFoundError) as exc:  # bad options, a missing run, a damaged checkpoint
        logger.error("%s", exc)
        return EXIT_USAGE
    except RunLocked as exc:
        logger.error("%s", exc)
        return EXIT_LOCKED
    except OSError as exc:  # the report or figures cannot be written: no space, read-only, permission
        logger.error(
            "%s; the run's checkpoints are untouched, evaluate again once that is fixed", describe_os_error(exc)
        )
        return EXIT_IO
    finally:
        distributed.teardown()


def _evaluate_runs(args, dist) -> int:
    options = eval_config.from_options(**given_options(args, EvalConfig)).to_dict()
    reports = []
    for run_dir in args.run_dir:
        report = evaluate_run(run_dir, **options)
        reports.append(report)
        if not dist.is_main:
            continue
        print(report["headline"])
        for name, r in report["references"].items():
            print(f"  reference ({name}): {r['mean']:.1f} ± {r['se']:.1f} nats (σ = {r['sigma']:.3g})")
        if "memorization" in report:
            print(f"  memorization: {report['memorization']['verdict']}")
        for w in report["warnings"]:
            print(f"  WARNING: {w}")
        print(f"  report: {Path(run_dir) / 'report.md'}")
        logger.debug("evaluation options: %s", report["evaluation"])
    if dist.is_main and len(reports) > 1 and all(r["dataset"] == "tfd" for r in reports):
        # Table 1's TFD column: σ chosen per fold, mean over folds ± standard error across folds.
        combined = table1.combine_folds([ParzenResult(**r["parzen"]) for r in reports])
        m, s = table1.PAPER_TABLE1["Adversarial nets"]["tfd"]
        print(
            f"TFD Parzen log-likelihood over {len(reports)} folds ({options['protocol']} protocol): "
            f"{combined['mean']:.0f} ± {combined['se']:.0f} nats; paper: {m:g} ± {s:g}"
        )
    return EXIT_OK
