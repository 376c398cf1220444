"""``python -m gancore.train.sweep``: one recipe over several seeds, scored at chosen epochs, summarized.

    python -m gancore.train.sweep --seeds 0-4 --eval-epochs 5,10,25 --out runs/sweep -- --threads 1
    python -m gancore.train.sweep --seeds 0-4 --eval-epochs 5,10,25 --out runs/sweep     # again: resumes

The 2014 recipe is seed-sensitive (in the authors' code too: some runs never take off), so a single
run says little about it; Table 1's number is one run the lab selected. This command trains seed s
in ``OUT/seed_<s>/`` (an ordinary run directory: ``python -m gancore.train --resume`` and
``python -m gancore.evaluate`` work on it), stops at each epoch of ``--eval-epochs``, scores that
checkpoint with the Parzen protocol of Table 1 (σ chosen on validation, the log-likelihood reported
on test; :func:`gancore.evaluate.table1.parzen_protocol`) into ``OUT/seed_<s>/epochs/epoch_NNNN/``,
and goes on. ``OUT/summary.json`` and ``OUT/summary.md`` then give, for every epoch, each seed's
test log-likelihood and validation score, their mean ± sd, median and range, and the **validation-
selected** result: the (seed, epoch) with the best validation score — the lab's practice of keeping
the best model on validation — with its test number, beside the selection per seed. On MNIST the
bundled classifier's numbers come too, as mean ± sd per epoch: digits covered, KL of the class
histogram to uniform, classifier score, Fréchet distance, and for ``--conditional`` runs the
conditional accuracy (how often the classifier calls a sample generated for class c a c).

Everything after ``--`` (or any flag this command does not know) goes to ``python -m gancore.train``
for every seed; ``--seed``, ``--out``, ``--epochs`` and ``--resume`` are set here. Killed at any point,
the same command continues: finished epochs are skipped and a seed's run resumes from its checkpoint.
Seeds run one after another in this process, so per seed it costs what a separate run costs.
With ``--batched`` they train together instead, as replicas batched into one set of kernels
(:mod:`gancore.train.replicas`: the same runs, one batched matrix product per layer for all seeds),
which is what a GPU wants; each seed still gets its own ordinary run directory and scores.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
from pathlib import Path

from ..common.atomic import write_atomic
from ..common.failures import EXIT_INTERRUPTED, EXIT_IO, EXIT_OK, EXIT_USAGE, describe_os_error
from ..common.lock import RunLocked, hold_run_lock, release_run_lock

log = logging.getLogger("gancore.train.sweep")

SET_HERE = ("--seed", "--out", "--epochs", "--resume", "--no-eval")


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` → [0, 1, 2, 3, 4]; ``"1,3,7"``; ``"0-2,10"``. Distinct non-negative integers."""
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            values = range(int(lo), int(hi) + 1) if sep else [int(part)]
        except ValueError:
            raise ValueError(f"--seeds: {part!r} is not an integer or a range like 0-4") from None
        if sep and int(hi) < int(lo):
            raise ValueError(f"--seeds: the range {part!r} is empty")
        seeds.extend(values)
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"--seeds must name distinct non-negative integers; got {text!r}")
    return seeds


def parse_epochs(text: str) -> list[int]:
    try:
        epochs = sorted({int(e) for e in str(text).split(",")})
    except ValueError:
        raise ValueError(f"--eval-epochs must be a comma-separated list of epochs; got {text!r}") from None
    if not epochs or epochs[0] < 1:
        raise ValueError(f"--eval-epochs must be positive epochs; got {text!r}")
    return epochs


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gancore.train.sweep",
        allow_abbrev=False,  # --seed (a training flag, refused here) must not pass for --seeds
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog="Any other flag is passed to python -m gancore.train for every seed (see its --help).",
    )
    p.add_argument("--seeds", required=True, help="seeds to train: a list and/or ranges, e.g. 0-4 or 1,3,7")
    p.add_argument("--eval-epochs", required=True, help="epochs at which each seed is scored, e.g. 5,10,25")
    p.add_argument("--out", required=True, metavar="SWEEP_DIR", help="one run directory per seed goes in here")
    p.add_argument("--eval-threads", type=int, default=0, help="threads of the Parzen kernels (0: all cores)")
    p.add_argument(
        "--batched",
        action="store_true",
        help="train the seeds together as replicas batched into one set of kernels (mnist_2014's MLP nets)",
    )
    return p


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    argv = list(sys.argv[1:] if argv is None else argv)
    args, train_args = build_parser().parse_known_args(argv)
    train_args = [a for a in train_args if a != "--"]
    try:
        seeds, epochs = parse_seeds(args.seeds), parse_epochs(args.eval_epochs)
        clash = sorted({a.split("=")[0] for a in train_args} & set(SET_HERE))
        if clash:
            raise ValueError(f"{', '.join(clash)} cannot be given to a sweep: it sets them for every seed")
        if args.eval_threads < 0:
            raise ValueError(f"--eval-threads must be >= 0; got {args.eval_threads}")
    except ValueError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    out = Path(args.out)
    try:
        if args.batched:
            code = run_batched(seeds, epochs, out, train_args, args.eval_threads)
            if code in (EXIT_USAGE, EXIT_INTERRUPTED):
                return code
        else:
            for seed in seeds:
                code = run_seed(seed, epochs, out / f"seed_{seed}", train_args, args.eval_threads)
                if code not in (EXIT_OK, None):
                    log.error("seed %d stopped with exit code %d; its epochs so far are in the summary", seed, code)
                    if code in (EXIT_USAGE, EXIT_INTERRUPTED):
                        return code  # a bad flag fails every seed alike; Ctrl-C or SIGTERM stops the sweep
        summary = summarize(out, seeds, epochs)
    except RunLocked as exc:
        log.error("%s", exc)
        return 6
    except OSError as exc:
        log.error("sweep stopped: %s; run the same command again to continue", describe_os_error(exc))
        return EXIT_IO
    print(render_markdown(summary))
    return EXIT_OK


def run_seed(seed: int, epochs: list[int], run_dir: Path, train_args: list[str], eval_threads: int):
    """Train ``seed`` up to each epoch in turn and score it there; skip what is already done."""
    from . import cli

    for epoch in epochs:
        report_path = run_dir / "epochs" / f"epoch_{epoch:04d}" / "report.json"
        if report_path.is_file():
            continue
        # The same flags on a resume: settings equal to the saved ones are accepted, and --epochs may change.
        where = ["--resume", str(run_dir)] if (run_dir / "config.json").is_file() else ["--out", str(run_dir)]
        flags = [*train_args, "--seed", str(seed), *where, "--epochs", str(epoch), "--no-eval"]
        log.info("seed %d: training to epoch %d", seed, epoch)
        code = cli.main(flags)
        if code != 0:
            return code
        score(run_dir, report_path.parent, eval_threads)
    return None


def run_batched(seeds: list[int], epochs: list[int], out: Path, train_args: list[str], eval_threads: int):
    """:func:`run_seed` for all seeds at once: at each epoch, the seeds not yet scored there train together
    as batched replicas (:func:`gancore.train.replicas.train_together`), then each is scored. A seed whose
    run diverges is left out of the later epochs, as a separate run that fails ends its seed's sweep."""
    from .replicas import train_together

    dirs = {seed: out / f"seed_{seed}" for seed in seeds}
    failed: dict[int, int] = {}
    for epoch in epochs:
        report = {seed: dirs[seed] / "epochs" / f"epoch_{epoch:04d}" / "report.json" for seed in seeds}
        todo = [seed for seed in seeds if seed not in failed and not report[seed].is_file()]
        if not todo:
            continue
        log.info("seeds %s: training to epoch %d as batched replicas", ", ".join(map(str, todo)), epoch)
        try:
            codes = train_together(todo, dirs, train_args, epoch)
        except KeyboardInterrupt:
            log.warning("interrupted; every replica is checkpointed: run the same command again to continue")
            return EXIT_INTERRUPTED
        except (ValueError, FileNotFoundError, ImportError) as exc:
            log.error("%s", exc)
            return EXIT_USAGE
        for seed in todo:
            if codes[seed] != EXIT_OK:
                log.error("seed %d stopped with exit code %d; its epochs so far are in the summary", seed, codes[seed])
                failed[seed] = codes[seed]
                continue
            score(dirs[seed], report[seed].parent, eval_threads)
    return next(iter(failed.values()), None)


def score(run_dir: Path, out_dir: Path, eval_threads: int) -> dict:
    """Table 1's protocol on the run's latest checkpoint, written to ``out_dir`` (report.json/md)."""
    from ..evaluate.pipeline import evaluate_generator
    from .checkpoints import load_generator

    hold_run_lock(run_dir, purpose="evaluation")
    try:
        G, config = load_generator(run_dir)
        report = evaluate_generator(
            G,
            config,
            out_dir,
            references="none",
            memorization=False,
            figures=False,
            threads=eval_threads,
            data_dir=config.get("data_dir"),
        )
    finally:
        release_run_lock(run_dir)
    log.info("%s: %s", out_dir, report["headline"])
    return report


# The bundled classifier's numbers of a report (issue 12 §1-2), summarized beside Parzen when a run has them:
# summary name → (where the report keeps it, decimals in summary.md), in the order the summary prints them.
CLASSIFIER_MEASURES = {
    "conditional_accuracy": (("conditional", "accuracy", "accuracy"), 3),
    "digits_covered": (("classifier", "samples", "digits_covered"), 1),
    "kl_to_uniform": (("classifier", "samples", "kl_to_uniform"), 3),
    "classifier_score": (("classifier", "samples", "classifier_score"), 2),
    "frechet_distance": (("classifier", "samples", "frechet_distance"), 1),
}


def _classifier_measures(report: dict) -> dict:
    """The measures of :data:`CLASSIFIER_MEASURES` that ``report`` has (none on a dataset without a classifier)."""
    found = {}
    for name, (keys, _) in CLASSIFIER_MEASURES.items():
        value = report
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            found[name] = float(value)
    return found


def _stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return {
        "n": len(values),
        "mean": statistics.fmean(values),
        "sd": sd,
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def summarize(out: Path, seeds: list[int], epochs: list[int]) -> dict:
    """Collect every scored (seed, epoch) of the sweep into ``summary.json`` / ``summary.md``."""
    rows = []  # seed, epoch, test mean and se, validation score, sigma, and the classifier's measures
    for seed in seeds:
        for epoch in epochs:
            path = out / f"seed_{seed}" / "epochs" / f"epoch_{epoch:04d}" / "report.json"
            if not path.is_file():
                continue
            report = json.loads(path.read_text())
            parzen = report["parzen"]
            valid = max(parzen["valid_ll"]) if parzen.get("valid_ll") else float("nan")
            rows.append(
                {
                    "seed": seed,
                    "epoch": epoch,
                    "test": parzen["mean"],
                    "test_se": parzen["se"],
                    "valid": valid,
                    "sigma": parzen["sigma"],
                    **_classifier_measures(report),
                }
            )
    by_epoch = {}
    for e in epochs:
        mine = [r for r in rows if r["epoch"] == e]
        by_epoch[str(e)] = {"test": _stats([r["test"] for r in mine]), "valid": _stats([r["valid"] for r in mine])}
        for key in CLASSIFIER_MEASURES:
            values = [r[key] for r in mine if key in r]
            if values:
                by_epoch[str(e)][key] = _stats(values)
    finite = [r for r in rows if math.isfinite(r["valid"])]
    best = max(finite, key=lambda r: r["valid"]) if finite else None
    per_seed = {}
    for seed in seeds:
        mine = [r for r in finite if r["seed"] == seed]
        if mine:
            per_seed[str(seed)] = max(mine, key=lambda r: r["valid"])
    summary = {
        "seeds": seeds,
        "epochs": epochs,
        "runs": rows,
        "by_epoch": by_epoch,
        "selected_on_validation": best,
        "selected_per_seed": per_seed,
        "selected_per_seed_test": _stats([r["test"] for r in per_seed.values()]),
        "protocol": "Parzen window, paper protocol: sigma chosen on validation, log-likelihood on test (nats); "
        "'valid' is the mean validation log-likelihood at the chosen sigma, the selection score",
    }
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_atomic(out / "summary.md", render_markdown(summary))
    return summary


def _fmt(stats: dict, digits: int = 1) -> str:
    if not stats.get("n"):
        return "—"
    d = digits
    sd = "" if not math.isfinite(stats["sd"]) else f" ± {stats['sd']:.{d}f}"
    spread = f"median {stats['median']:.{d}f}, {stats['min']:.{d}f} … {stats['max']:.{d}f}; n={stats['n']}"
    return f"{stats['mean']:.{d}f}{sd} ({spread})"


def render_markdown(summary: dict) -> str:
    seeds, epochs = summary["seeds"], summary["epochs"]
    cell = {(r["seed"], r["epoch"]): r for r in summary["runs"]}
    lines = [
        "# Seed sweep: Parzen test log-likelihood (nats), paper protocol",
        "",
        "| seed | " + " | ".join(f"epoch {e}" for e in epochs) + " |",
        "|---|" + "---|" * len(epochs),
    ]
    for s in seeds:
        vals = [f"{cell[(s, e)]['test']:.1f}" if (s, e) in cell else "—" for e in epochs]
        lines.append(f"| {s} | " + " | ".join(vals) + " |")
    lines.append("| **mean ± sd** | " + " | ".join(_fmt(summary["by_epoch"][str(e)]["test"]) for e in epochs) + " |")
    measured = [k for k in CLASSIFIER_MEASURES if any(k in r for r in summary["runs"])]
    if measured:
        lines += [
            "",
            "Measured with the bundled MNIST classifier, mean ± sd over seeds:",
            "",
            "| measure | " + " | ".join(f"epoch {e}" for e in epochs) + " |",
            "|---|" + "---|" * len(epochs),
        ]
        for key in measured:
            cells = [_fmt(summary["by_epoch"][str(e)].get(key, {}), digits=CLASSIFIER_MEASURES[key][1]) for e in epochs]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    best = summary["selected_on_validation"]
    lines.append("")
    if best:
        lines.append(
            f"Selected on validation over all seeds and epochs: seed {best['seed']}, epoch {best['epoch']}: "
            f"test {best['test']:.1f} ± {best['test_se']:.1f} nats (validation score {best['valid']:.1f}, "
            f"σ = {best['sigma']:.3g})."
        )
        lines.append(f"Selected on validation per seed (over epochs), test: {_fmt(summary['selected_per_seed_test'])}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
