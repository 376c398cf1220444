"""How good are a trained discriminator's features? A linear probe with few labels (paper §7 item 4).

    python -m gancore.evaluate.semisupervised RUN_DIR                   # N = 100, 600, 1000, 3000; 5 draws
    python -m gancore.evaluate.semisupervised RUN_DIR --labels 100 --draws 3

The paper's §7 item 4 proposes semi-supervised learning: "features from the discriminator or inference
net could improve performance of classifiers when limited labeled data is available" (the tutorial's
§5.4 describes the fuller semi-supervised GAN of Salimans et al., 2016, which this is not). The probe:

1. N labelled training images, N/10 per digit, drawn from MNIST train[0:50000] by ``(seed, draw)``;
2. features: the outputs of every maxout hidden layer of D, concatenated (dropout off), for
   - the run's trained D (its latest checkpoint),
   - raw pixels,
   - a randomly initialized D of the same configuration (the run's initialization at step 0);
3. each feature is standardized with its mean and standard deviation over the whole (unlabelled)
   training split, then a multinomial logistic regression with an L2 penalty ``--l2`` is fitted to the
   N labelled rows by full-batch L-BFGS;
4. the test error on the 10,000 MNIST test images, mean ± sample sd over ``--draws`` label draws.

Every finished (features, N, draw) cell is written atomically to ``RUN_DIR/semisupervised.json`` at
once, so a killed probe (``kill -9`` included) continues where it stopped when the same command is run
again; cells computed with other settings are discarded. The run directory's lock is held meanwhile.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common.atomic import write_atomic
from ..common.options import add_options, given_options, knob

__all__ = ["ProbeConfig", "balanced_draw", "fit_logistic", "main", "probe_error", "run_probe"]

logger = logging.getLogger("gancore.evaluate.semisupervised")  # also under python -m

FEATURE_SETS = ("discriminator", "pixels", "random_discriminator")
RESULTS_FILE = "semisupervised.json"


@dataclass
class ProbeConfig:
    """Every knob of the probe (defaults: the N of the issue, five draws)."""

    labels: list = knob(
        default_factory=lambda: [100, 600, 1000, 3000],
        group="probe",
        type=int,
        nargs="+",
        metavar="N",
        help="numbers of labelled training images, each a multiple of 10 (balanced per digit)",
    )
    draws: int = knob(5, group="probe", type=int, help="label draws per N (mean ± sd over them)")
    seed: int = knob(0, group="probe", type=int, help="seed of the label draws")
    l2: float = knob(1e-3, group="probe", type=float, help="L2 penalty λ/2·‖W‖² added to the mean cross-entropy")
    max_iter: int = knob(200, group="probe", type=int, help="L-BFGS iterations per fit")
    device: str = knob("cpu", group="resources", help="torch device for the features and the fits")
    threads: int = knob(1, group="resources", type=int, help="torch CPU threads")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def validate(cfg: ProbeConfig) -> None:
    """Raise ``ValueError`` naming the flag for any out-of-range value."""
    labels = cfg.labels
    if not labels or any(not isinstance(n, int) or n < 10 or n % 10 or n > 50000 for n in labels):
        raise ValueError(f"--labels must be multiples of 10 in 10..50000; got {labels!r}")
    for name, low in (("draws", 1), ("seed", 0), ("max_iter", 1), ("threads", 1)):
        v = getattr(cfg, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= {low}; got {v!r}")
    if not (isinstance(cfg.l2, (int, float)) and np.isfinite(cfg.l2) and cfg.l2 >= 0):
        raise ValueError(f"--l2 must be a finite number >= 0; got {cfg.l2!r}")


def balanced_draw(labels, n: int, seed, n_classes: int = 10) -> np.ndarray:
    """Indices of ``n`` rows, ``n // n_classes`` of each class, drawn without replacement by
    ``np.random.default_rng(seed)`` (``seed`` an int or a sequence of ints); sorted."""
    y = np.asarray(labels)
    if n <= 0 or n % n_classes:
        raise ValueError(f"n must be a positive multiple of {n_classes}; got {n}")
    per = n // n_classes
    rng = np.random.default_rng(seed)
    picked = []
    for c in range(n_classes):
        rows = np.flatnonzero(y == c)
        if rows.size < per:
            raise ValueError(f"class {c} has only {rows.size} rows; cannot draw {per} per class")
        picked.append(rng.choice(rows, size=per, replace=False))
    return np.sort(np.concatenate(picked))


def fit_logistic(x, y, *, n_classes: int = 10, l2: float = 1e-3, max_iter: int = 200, device="cpu"):
    """Multinomial logistic regression: minimize mean cross-entropy + λ/2·‖W‖² (bias unpenalized) by
    full-batch L-BFGS with a strong-Wolfe line search, from zero weights (a convex problem: the start
    does not matter). Returns (W (d, K), b (K,)) as float64 NumPy arrays."""
    import torch

    xt = torch.as_tensor(np.asarray(x), dtype=torch.float64, device=device)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.int64, device=device)
    w = torch.zeros(xt.shape[1], n_classes, dtype=torch.float64, device=device, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, device=device, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b], lr=1, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-14, line_search_fn="strong_wolfe"
    )

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().cpu().numpy(), b.detach().cpu().numpy()


def probe_error(train_x, train_y, test_x, test_y, **fit) -> float:
    """Test error of :func:`fit_logistic` fitted on (train_x, train_y)."""
    w, b = fit_logistic(train_x, train_y, **fit)
    return float(np.mean(np.argmax(np.asarray(test_x, np.float64) @ w + b, axis=1) != np.asarray(test_y)))


def discriminator_features(disc, x: np.ndarray, *, device="cpu", batch: int = 2000) -> np.ndarray:
    """Every maxout hidden layer's output of D, concatenated: float32 (n, Σ units); dropout off.
    Other discriminators (the conv ``dcgan`` D) give their ``features(x)``, flattened."""
    import torch

    from ..train.models import MaxoutDiscriminator

    disc = disc.to(device).eval()
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            h = torch.from_numpy(x[i : i + batch]).to(device)
            if isinstance(disc, MaxoutDiscriminator):
                parts = []
                for layer in disc.hidden:
                    h = layer(h)  # (b, units)
                    parts.append(h)
                f = torch.cat(parts, dim=1)
            else:
                f = disc.features(h).reshape(h.shape[0], -1)
            out.append(f.to("cpu", torch.float32).numpy())
    return np.concatenate(out)


def _load_discriminators(run_dir: Path):
    """(trained D from the latest checkpoint, D as initialized at step 0, the run's config dict)."""
    import torch

    from ..train import config as config_mod
    from ..train.checkpoints import CheckpointError, latest, load
    from ..train.models import build_discriminator, build_models

    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path} not found: {run_dir} is not a gancore run directory")
    cfg = config_mod.from_dict(json.loads(cfg_path.read_text()))
    ckpt = latest(run_dir)
    if ckpt is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint yet")
    _, _, d_state, _ = load(ckpt, cfg=cfg)
    trained = build_discriminator(cfg)
    try:
        trained.load_state_dict(d_state)
    except RuntimeError as exc:
        raise CheckpointError(f"{ckpt} does not fit the discriminator of {cfg_path}: {exc}") from None
    # build_models draws D's initial weights from cfg.seed alone: the run's own D at step 0.
    _, initial = build_models(cfg, pixel_mean=torch.full((int(np.prod(cfg.image_shape)),), 0.5))
    return trained, initial, cfg.to_dict()


def _standardizer(train_f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over the whole training split: they use no labels, so
    a semi-supervised learner has them too. Constant features (border pixels, dead units) keep sd 1."""
    mu = train_f.mean(axis=0, dtype=np.float64)
    sd = train_f.std(axis=0, dtype=np.float64)
    sd[sd < 1e-8] = 1.0
    return mu, sd


def run_probe(run_dir, *, data: dict | None = None, **options) -> dict:
    """Run the probe on ``run_dir`` (options: :class:`ProbeConfig` fields); returns the results dict
    also written to ``run_dir/semisupervised.json``. ``data`` = {"train", "train_labels", "test",
    "test_labels"} arrays replaces MNIST train[0:50000] and the test split (tests, notebooks)."""
    import torch

    from ..common.lock import hold_run_lock, release_run_lock
    from ..data import load_labels, load_split

    cfg = ProbeConfig(**options)
    validate(cfg)
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"RUN_DIR {run_dir} is not a directory")
    torch.set_num_threads(cfg.threads)
    trained, initial, run_config = _load_discriminators(run_dir)
    if run_config["dataset"] != "mnist":
        raise ValueError(f"the probe needs MNIST labels; {run_dir} was trained on {run_config['dataset']}")
    # Cells are keyed by (features, N, draw), so more N or draws extend a file; these settings change a cell.
    settings = {k: v for k, v in cfg.to_dict().items() if k not in ("device", "threads", "labels", "draws")}
    out_path = run_dir / RESULTS_FILE
    hold_run_lock(run_dir, purpose="semi-supervised probe")
    try:
        results = {"settings": settings, "cells": {}}
        if out_path.is_file():
            try:
                saved = json.loads(out_path.read_text())
                if saved.get("settings") == settings:
                    results["cells"] = saved.get("cells", {})
                    logger.info("continuing: %d cells already in %s", len(results["cells"]), out_path)
            except (OSError, ValueError) as exc:  # a damaged file is recomputed, never trusted
                logger.warning("ignoring unreadable %s (%s)", out_path, exc)
        if data is None:
            data = {"train": load_split("mnist", "train"), "train_labels": load_labels("mnist", "train")}
            data.update(test=load_split("mnist", "test"), test_labels=load_labels("mnist", "test"))
        x_train, y_train, x_test, y_test = (data[k] for k in ("train", "train_labels", "test", "test_labels"))
        fit = dict(l2=cfg.l2, max_iter=cfg.max_iter, device=cfg.device)
        for name in FEATURE_SETS:
            feats = None  # computed only if a cell of this set is missing
            for n in cfg.labels:
                for draw in range(cfg.draws):
                    key = f"{name}/{n}/{draw}"
                    if key in results["cells"]:
                        continue
                    if feats is None:
                        t = time.perf_counter()
                        if name == "pixels":
                            f_tr, f_te = x_train, x_test
                        else:
                            disc = trained if name == "discriminator" else initial
                            f_tr = discriminator_features(disc, x_train, device=cfg.device)
                            f_te = discriminator_features(disc, x_test, device=cfg.device)
                        mu, sd = _standardizer(f_tr)
                        feats = (f_tr, mu, sd, ((f_te - mu) / sd).astype(np.float32))
                        logger.info("%s features %s in %.1f s", name, f_tr.shape, time.perf_counter() - t)
                    f_tr, mu, sd, f_te = feats
                    idx = balanced_draw(y_train, n, (cfg.seed, n, draw))
                    t = time.perf_counter()
                    err = probe_error((f_tr[idx] - mu) / sd, y_train[idx], f_te, y_test, **fit)
                    results["cells"][key] = err
                    write_atomic(out_path, json.dumps(results, indent=1))
                    logger.info("%s N=%d draw %d: test error %.4f (%.1f s)", key, n, draw, err, time.perf_counter() - t)
        results["table"] = summarize(results["cells"], cfg.labels, cfg.draws)
        results["run_config"] = {k: run_config[k] for k in ("preset", "epochs", "seed", "d_hidden", "d_pieces")}
        write_atomic(out_path, json.dumps(results, indent=1))
        return results
    finally:
        release_run_lock(run_dir)


def summarize(cells: dict, labels, draws: int) -> dict:
    """{features: {N: [mean, sd (ddof 1; 0 for one draw), draws]}} of the test errors."""
    table: dict = {}
    for name in FEATURE_SETS:
        for n in labels:
            errs = np.array([cells[f"{name}/{n}/{d}"] for d in range(draws)])
            sd = float(errs.std(ddof=1)) if errs.size > 1 else 0.0
            table.setdefault(name, {})[str(n)] = [float(errs.mean()), sd, int(errs.size)]
    return table


def markdown_table(table: dict, labels) -> str:
    head = "| features | " + " | ".join(f"N = {n}" for n in labels) + " |"
    rows = [head, "|---|" + "---|" * len(labels)]
    for name in FEATURE_SETS:
        cells = [f"{100 * m:.2f} ± {100 * s:.2f} %" for m, s, _ in (table[name][str(n)] for n in labels)]
        rows.append(f"| {name.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gancore.evaluate.semisupervised",
        description=__doc__.split("\n\n")[0],
        epilog="Exit codes: 0 done, 2 bad arguments or run directory, 5 file-system error, 6 run directory in use.",
    )
    p.add_argument("run_dir", help="a training run directory (config.json + checkpoints/) of an MNIST run")
    add_options(p, ProbeConfig)
    return p


def main(argv=None) -> int:
    from ..common.failures import EXIT_IO, EXIT_LOCKED, EXIT_USAGE, describe_os_error
    from ..common.lock import RunLocked

    p = build_parser()
    args = p.parse_args(argv)
    cfg = ProbeConfig(**given_options(args, ProbeConfig))
    try:
        validate(cfg)
    except ValueError as exc:
        p.error(str(exc))  # exit 2 with the usage line
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        res = run_probe(args.run_dir, **cfg.to_dict())
    except (ValueError, FileNotFoundError) as exc:  # also CheckpointError, a ValueError
        logger.error("%s", exc)
        return EXIT_USAGE
    except RunLocked as exc:
        logger.error("%s", exc)
        return EXIT_LOCKED
    except OSError as exc:
        logger.error("%s", describe_os_error(exc))
        return EXIT_IO
    print(f"test error, mean ± sd over {cfg.draws} label draws ({Path(args.run_dir) / RESULTS_FILE}):")
    print(markdown_table(res["table"], cfg.labels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
