"""Evaluate a trained generator: Table 1, Figures 2–3, memorization tests, and a report.

    python -m gancore.evaluate RUN_DIR                       # the paper's protocol, everything
    python -m gancore.evaluate RUN_DIR --protocol full       # whole validation split, refined σ
    python -m gancore.evaluate RUN_DIR --references none --no-memorization --no-figures   # Parzen only

Steps (each timed in the report):

1. **Samples** — ``--n-samples`` (10,000, the paper's n) noise vectors from the run's prior, drawn
   once with a recorded seed, decoded by G and saved to ``RUN_DIR/samples.npz`` so anyone can
   recompute the number independently.
2. **Table 1** (``gancore.evaluate.table1``) — σ chosen on the validation set, mean test log-likelihood ±
   standard error; the whole σ curve; warnings for a σ on the grid's edge and for data off [0,1].
3. **Reference rows** by the same code: real training images as centers, and k-means centroids of the
   training set (cached per dataset/protocol under ``$XDG_CACHE_HOME/gancore/eval``: they do not
   depend on the model).
4. **Memorization** (``gancore.evaluate.memorization``) — nearest-training distances, the data-copying C_T of
   Meehan et al. (2020), the 1-NN two-sample test.
   **Classifier metrics** (MNIST only, :mod:`gancore.evaluate.class_metrics`) — the bundled MNIST classifier's
   class histogram, digits covered, KL to uniform, classifier score and Fréchet distance, beside real data.
5. **Figures** (``gancore.evaluate.figures``) — Figure 2 grid and 50-pair panel, Figure 3 interpolations,
   distance histograms, σ curves; Figure 1 from a 1-D GAN (``gancore.evaluate.theory1d``; trained once per
   seed and then read from the same cache, since it depends on neither the model nor the data).
6. **Report** (``gancore.evaluate.report``) — ``report.json`` and ``report.md`` in RUN_DIR.

``evaluate_run(run_dir)`` loads the generator with ``gancore.train.checkpoints.load_generator`` and calls
``evaluate_generator(G, config, ...)``, which also accepts in-memory data (tests, notebooks).

Under ``torchrun`` (``torchrun --standalone --nproc_per_node N -m gancore.evaluate RUN_DIR``, or the
evaluation at the end of a torchrun training run) steps 2–4 are sharded: each kernel call of the
Table 1 protocol, of the reference rows and of the memorization tests evaluates a slice of its query
rows on each rank and all-gathers the rows (:mod:`gancore.distributed.group`). Rank 0 draws the samples and
sends them to the others, and it alone writes ``samples.npz``, the figures, the reports and the cache.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from .._checks import as_int
from ..common.atomic import atomic_path, write_atomic
from ..common.cache import cache_root
from ..common.lock import hold_run_lock, release_run_lock
from . import config as eval_config
from . import table1
from .config import REFERENCE_CHOICES
from .kernels import LOCAL, Kernels
from .table1 import ParzenResult

__all__ = ["draw_samples", "evaluate_generator", "evaluate_run"]

logger = logging.getLogger(__name__)


def _noise(n, noise_dim, prior, generator, device):
    from ..train.models import sample_noise

    return sample_noise(n, noise_dim, prior, generator=generator, device=device)


def draw_samples(
    G,
    n: int,
    noise_dim: int,
    prior: str,
    *,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 2000,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` fair samples: z from the prior with ``torch.Generator().manual_seed(seed)`` (on the
    CPU, so the same seed gives the same z on any device), decoded by G in batches.
    A conditional G(z | y) (one with ``n_classes``) needs ``labels`` (n,): the class of each sample.
    Returns (samples float32 (n, D), z float32 (n, noise_dim))."""
    import torch

    n = as_int(n, "n (number of samples)")
    k = int(getattr(G, "n_classes", 0) or 0)
    if k and (labels is None or np.shape(labels) != (n,)):
        raise ValueError(f"a conditional generator needs labels of shape ({n},); got {np.shape(labels)}")
    gen = torch.Generator().manual_seed(int(seed))
    z = _noise(int(n), int(noise_dim), prior, gen, "cpu")  # (n, noise_dim)
    out = []
    with torch.no_grad():
        for i in range(0, int(n), batch_size):
            if k:
                from .conditional import _one_hot

                x = G(z[i : i + batch_size].to(device), _one_hot(labels[i : i + batch_size], k, device))  # (b, D)
            else:
                x = G(z[i : i + batch_size].to(device))  # (b, D)
            out.append(x.detach().to("cpu", torch.float32).reshape(x.shape[0], -1).numpy())
    return np.concatenate(out), z.numpy()


def _load_data(dataset: str, data_dir, fold: int) -> dict[str, np.ndarray]:
    from ..data import load_split

    return {s: load_split(dataset, s, data_dir=data_dir, fold=fold) for s in ("train", "valid", "test")}


# Bumped whenever the cached rows' JSON changes shape (v2: "centres" → "centers" in ParzenResult).
REFERENCE_CACHE_VERSION = 2


def _cache_path(dataset, protocol, n_centers, seed, kmeans_iters) -> Path:
    name = f"reference_rows_v{REFERENCE_CACHE_VERSION}_{dataset}_{protocol}_n{n_centers}_seed{seed}_km{kmeans_iters}"
    return cache_root("eval") / f"{name}.json"


def _reference_rows(
    data,
    dataset,
    protocol,
    include,
    n_centers,
    kmeans_iters,
    n_threads,
    use_cache,
    is_main=True,
    share=lambda rows: rows,
    kernels: Kernels = LOCAL,
):
    """Reference rows, cached on disk for real datasets: they depend on the data, not the model.
    Under torchrun rank 0 reads and writes the cache and ``share`` hands its rows to every rank, so all
    ranks compute the same missing rows together."""
    cache = _cache_path(dataset, protocol, n_centers, 0, kmeans_iters) if use_cache and dataset else None
    rows: dict[str, ParzenResult] = {}
    if cache is not None and cache.is_file() and is_main:
        try:
            saved = json.loads(cache.read_text())
            rows = {k: ParzenResult(**v) for k, v in saved.items() if k in include}
            logger.info("reference rows read from cache %s", cache)
        except (OSError, ValueError, TypeError) as exc:  # a stale or damaged cache is recomputed, never trusted
            logger.warning("ignoring unreadable reference-row cache %s (%s)", cache, exc)
            rows = {}
    rows = share(rows)
    missing = tuple(k for k in include if k not in rows)
    if missing:
        rows.update(
            table1.reference_rows(
                data["train"],
                data["valid"],
                data["test"],
                n_centers=n_centers,
                protocol=protocol,
                kmeans_iters=kmeans_iters,
                seed=0,
                n_threads=n_threads,
                include=missing,
                kernels=kernels,
            )
        )
        if cache is not None and is_main:
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                old = json.loads(cache.read_text()) if cache.is_file() else {}
                old.update({k: v.to_dict() for k, v in rows.items()})
                write_atomic(cache, json.dumps(old))
            except (OSError, ValueError, TypeError) as exc:  # read-only home etc.: the cache is only an optimization
                logger.warning("could not write the reference-row cache %s (%s)", cache, exc)
    return {k: rows[k] for k in include}


def _memorization(samples, data, n_memo, n_cells, seed, n_threads, kernels) -> dict:
    """Memorization tests on the first ``n_memo`` samples and as many random test images."""
    from .memorization import memorization_report

    rng = np.random.default_rng(seed)
    n = min(n_memo, samples.shape[0], data["test"].shape[0])
    test = data["test"][np.sort(rng.choice(data["test"].shape[0], size=n, replace=False))]
    return memorization_report(
        samples[:n], test, data["train"], n_cells=n_cells, seed=seed, n_threads=n_threads, kernels=kernels
    )


def _stacked_mnist_modes(samples, device) -> dict:
    """Modes covered of 1,000 and KL to uniform, the bundled classifier reading each channel (.stacked_mnist)."""
    from .stacked_mnist import stacked_mnist_report

    try:
        return stacked_mnist_report(samples, device=device)
    except ValueError as exc:  # e.g. toy in-memory data of another shape: the rest of the report stands
        logger.warning("stacked-mnist modes skipped: %s", exc)
        return {"skipped": str(exc)}


def _birthday(samples, data, seed, n_threads) -> dict:
    """s_½ and the support estimate of the samples (batches drawn without replacement from them, so each
    batch is i.i.d. from G), τ calibrated on the first 10,000 training images (see .birthday)."""
    from .birthday import DEFAULT_QUANTILE, birthday_test, real_pool, threshold_from_real

    calibration = data["train"][:10000]
    tau = threshold_from_real(calibration, quantile=DEFAULT_QUANTILE, n_threads=n_threads)
    r = birthday_test(real_pool(samples), tau, max_size=min(4096, samples.shape[0]), seed=seed, n_threads=n_threads)
    r.update(quantile=DEFAULT_QUANTILE, calibration_rows=int(calibration.shape[0]), pool=int(samples.shape[0]))
    return r


def _classifier_metrics(samples, data, device, use_cache) -> dict:
    """The bundled MNIST classifier's view of the samples, beside real data (see .class_metrics). The
    real-data side (10,000 test and as many validation images as samples) is cached like the reference
    rows, keyed by the classifier's SHA-256."""
    from .class_metrics import mnist_class_report, reference_stats
    from .classifier import expected_sha256

    if samples.shape[1] != 784:  # in-memory toy data named "mnist" (tests): nothing for a digit classifier
        return {"skipped": f"the classifier needs 28x28 images; the samples have {samples.shape[1]} pixels"}
    n_real = min(samples.shape[0], data["valid"].shape[0])
    cache = cache_root("eval") / f"classifier_reference_{expected_sha256()[:16]}_mnist_n{n_real}.json"
    try:
        reference = None
        if use_cache and cache.is_file():
            try:
                reference = json.loads(cache.read_text())
                if not {"summary", "mu", "cov"} <= set(reference):
                    raise ValueError("keys missing")
            except (OSError, ValueError, TypeError, KeyError) as exc:  # damaged: recomputed, never trusted
                logger.warning("ignoring unreadable classifier cache %s (%s)", cache, exc)
                reference = None
        if reference is None:
            reference = reference_stats(data["test"], data["valid"][:n_real], device=device)
            if use_cache:
                try:
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    write_atomic(cache, json.dumps(reference))
                except OSError as exc:  # read-only home etc.: the cache is only an optimization
                    logger.warning("could not write the classifier cache %s (%s)", cache, exc)
        return mnist_class_report(samples, reference=reference, device=device)
    except ValueError as exc:  # e.g. samples off [0, 1]: the classifier cannot judge them, the rest stands
        logger.warning("classifier metrics skipped: %s", exc)
        return {"skipped": str(exc)}


def _figures(
    G, config, samples, data, report, out_dir, seed, interpolation, device, n_threads, figure1=True, cache=True
) -> dict:
    from . import conditional as C
    from . import figures as F

    shape = tuple(config["image_shape"])
    out_dir = Path(out_dir)
    made = {}
    rows = min(4, samples.shape[0] // 5)  # 4 × (5 samples + 1 neighbor), fewer rows for tiny n
    if rows:
        made["figure2"] = F.figure2(
            samples, data["train"], shape, out_dir / "figure2_samples.png", rows=rows, n_threads=n_threads
        )
    made["figure2_pairs"] = F.nn_pairs_panel(
        samples, data["train"], shape, out_dir / "figure2_nn_pairs.png", n_threads=n_threads
    )
    z0, _ = _z_pairs(config, seed + 1)
    z1, _ = _z_pairs(config, seed + 2)
    k = C.n_classes_of(G)
    made["figure3"] = F.figure3(
        C.CycledLabels(G, k, every=10) if k else G,  # conditional: row i of the figure is class i mod K
        z0,
        z1,
        shape,
        out_dir / "figure3_interpolation.png",
        method=interpolation,
        device=device,
    )
    if k:  # Mirza & Osindero's Figure 2: one row per class, the same noise down each column
        made["class_rows"] = C.class_rows_figure(
            G, config["noise_dim"], config["noise_prior"], shape, out_dir / "conditional_class_rows.png", seed=seed
        )
    if "memorization" in report:
        d_gen, d_test = report["memorization"]["_distances"]
        made["nn_histogram"] = F.distance_histograms(d_gen, d_test, out_dir / "nn_distances.png")
    if figure1:
        from .theory1d import figure1 as draw_figure1
        from .theory1d import figure1_snapshots

        snapshots = figure1_snapshots(seed, use_cache=cache)
        made["figure1"] = draw_figure1(out_dir / "figure1_1d.png", snapshots)
        report["theory1d"] = made["figure1"]["final"]
    curves = {"model": report["_parzen"], **{f"ref: {k}": v for k, v in report["_references"].items()}}
    made["sigma_curve"] = F.sigma_curve(curves, out_dir / "sigma_curve.png")
    return {k: os.path.basename(v["path"]) for k, v in made.items()}


def _z_pairs(config, seed, rows=8):
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    z = _noise(rows, int(config["noise_dim"]), config["noise_prior"], gen, "cpu")
    return z.numpy(), seed


def evaluate_generator(G, config: dict, out_dir, *, data: dict | None = None, **options) -> dict:
    """Evaluate generator ``G`` (torch module, (n, noise_dim) → flat (n, D) on [0,1]) and write the
    report into ``out_dir``. ``config`` needs "dataset", "noise_dim", "noise_prior", "image_shape".

    ``options`` are the fields of :class:`~gancore.evaluate.config.EvalConfig` (the flags of
    ``python -m gancore.evaluate``: ``protocol``, ``n_samples``, ``seed``, ``references``,
    ``memorization``, ``figures``, ``threads``, …); the resolved configuration is recorded in the report
    under ``"evaluation"``. ``data`` = {"train", "valid", "test"} arrays overrides loading
    ``config["dataset"]`` with ``gancore.data.load_split``; ``fold`` picks the TFD fold (default:
    ``config["fold"]`` or 0). Returns the report dict (also in ``out_dir/report.json``).
    """
    from ..distributed.group import current
    from .report import headline, write_report

    opts = eval_config.from_options(**options)
    dist = current()  # torchrun: shard the kernels, rank 0 writes (see the module docstring)
    for key in ("dataset", "noise_dim", "noise_prior", "image_shape"):
        if key not in config:
            raise ValueError(f"config must contain {key!r}; got keys {sorted(config)}")
    protocol, n_samples, seed, device, n_threads = opts.protocol, opts.n_samples, opts.seed, opts.device, opts.threads
    references, kmeans_iters, figures, figure1 = opts.references, opts.kmeans_iters, opts.figures, opts.figure1
    memorization, memorization_samples, n_cells = opts.memorization, opts.memorization_samples, opts.cells
    interpolation, fold, data_dir = opts.interpolation, opts.fold, opts.data_dir
    if interpolation == "slerp" and config["noise_prior"] != "gaussian":
        logger.warning("slerp is meant for Gaussian priors; this run's prior is %s", config["noise_prior"])
    out_dir = Path(out_dir)
    if dist.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    dataset = config["dataset"]
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def tick(name, start):
        timings[name] = round(time.perf_counter() - start, 3)
        logger.info("%s: %.2f s", name, timings[name])
        return time.perf_counter()

    t = time.perf_counter()
    # The on-disk reference-row cache is keyed by dataset name, so it is only used for data loaded
    # here by name, never for arrays handed in (they could be anything).
    use_cache = opts.reference_cache and data is None
    if data is None:
        data = _load_data(dataset, data_dir, int(fold if fold is not None else config.get("fold", 0) or 0))
        t = tick("load_data", t)
    for key in ("train", "valid", "test"):
        if key not in data:
            raise ValueError(f"data must map 'train', 'valid' and 'test' to arrays; {key!r} is missing")
    samples = z = error = labels = None
    n_classes = int(getattr(G, "n_classes", 0) or 0)
    if n_classes:  # Mirza & Osindero (2014) §4.1: n/K samples of every class for the Parzen window
        from .conditional import balanced_labels

        labels = balanced_labels(n_samples, n_classes)
    if dist.is_main:  # one draw, sent to every rank: the same centers everywhere, whatever the devices
        try:
            samples, z = draw_samples(
                G, n_samples, config["noise_dim"], config["noise_prior"], seed=seed, device=device, labels=labels
            )
        except ValueError as exc:
            error = exc
    if dist.any(error is not None):
        raise error or ValueError("rank 0 could not draw the samples (its log says why)")
    samples = dist.broadcast_array(samples)
    if samples.shape[1] != data["test"].shape[1]:
        raise ValueError(
            f"G produces rows of width {samples.shape[1]} but the {dataset} data have {data['test'].shape[1]} columns"
        )
    if dist.is_main:
        with atomic_path(out_dir / "samples.npz") as tmp:
            np.savez(
                tmp,
                samples=samples,
                z=z,
                seed=np.int64(seed),
                noise_prior=np.str_(config["noise_prior"]),
                dataset=np.str_(dataset),
                **({} if labels is None else {"labels": labels}),
            )
    t = tick("sampling", t)

    # Under torchrun every rank runs the same protocols on kernels that split the query rows across
    # the ranks (rank r computes 1/W of each call, all get the whole answer); else the local kernels.
    if dist.enabled:
        from ..distributed.sharding import sharded_kernels

        kernels = sharded_kernels()
    else:
        kernels = LOCAL
    parzen = table1.parzen_protocol(
        samples,
        data["valid"],
        data["test"],
        protocol=protocol,
        n_threads=n_threads,
        label="generator samples",
        kernels=kernels,
    )
    t = tick("parzen_model", t)
    refs = _reference_rows(
        data,
        dataset,
        protocol,
        REFERENCE_CHOICES[references],
        min(n_samples, data["train"].shape[0]),
        kmeans_iters,
        n_threads,
        use_cache,
        is_main=dist.is_main,
        share=dist.broadcast,
        kernels=kernels,
    )
    t = tick("parzen_references", t)

    report: dict = {"_parzen": parzen, "_references": refs}
    if memorization:
        report["memorization"] = _memorization(samples, data, memorization_samples, n_cells, seed, n_threads, kernels)
        t = tick("memorization", t)
    if opts.classifier and dataset == "mnist" and dist.is_main:
        report["classifier"] = _classifier_metrics(samples, data, device, use_cache)
        t = tick("classifier", t)
    if opts.classifier and dataset == "stacked-mnist" and dist.is_main:
        report["stacked_mnist"] = _stacked_mnist_modes(samples, device)
        t = tick("stacked_mnist", t)
    if opts.birthday and dist.is_main:
        report["birthday"] = _birthday(samples, data, seed, n_threads)
        t = tick("birthday", t)
    fig_files = {}
    if figures and dist.is_main:
        # Figure 1's 1-D GAN depends on neither the model nor the data, so its cache needs no dataset name.
        fig_files = _figures(
            G,
            config,
            samples,
            data,
            report,
            out_dir,
            seed,
            interpolation,
            device,
            n_threads,
            figure1,
            cache=opts.reference_cache,
        )
        t = tick("figures", t)
    timings["total"] = round(time.perf_counter() - t0, 3)

    report.update(
        {
            "dataset": dataset,
            "protocol": protocol,
            "seed": int(seed),
            "n_samples": int(n_samples),
            "device": str(device),
            "config": config,
            "evaluation": opts.to_dict(),
            "parzen": parzen.to_dict(),
            "references": {k: v.to_dict() for k, v in refs.items()},
            "paper_table1": {k: v for k, v in table1.PAPER_TABLE1.items()},
            "figures": fig_files,
            "interpolation": interpolation if figures else None,
            "samples_file": "samples.npz",
            "timings_s": timings,
            "warnings": list(parzen.warnings)
            + [f"reference row {k}: {w}" for k, r in refs.items() for w in r.warnings],
        }
    )
    if n_classes:
        report["conditional"] = {
            "n_classes": n_classes,
            "sample_labels": (
                f"balanced: {n_samples // n_classes}"
                + ("" if n_samples % n_classes == 0 else f" or {n_samples // n_classes + 1}")
                + " samples per class (Mirza & Osindero 2014, §4.1: 1000 samples from each of the 10 classes)"
            ),
            "paper_mnist_parzen": {
                "conditional adversarial nets": list(table1.CGAN_MNIST_PARZEN),
                "adversarial nets": list(table1.PAPER_TABLE1["Adversarial nets"]["mnist"]),
            },
        }
        if opts.classifier and dataset == "mnist" and dist.is_main and samples.shape[1] == 784:
            from .classifier import predict_labels
            from .conditional import conditional_accuracy

            # The share of the samples generated for class c that the bundled classifier calls c.
            report["conditional"]["accuracy"] = conditional_accuracy(samples, labels, predict_labels)
    report["headline"] = headline(dataset, parzen, conditional=bool(n_classes))
    if dist.is_main:
        write_report(report, out_dir)
    return {k: v for k, v in report.items() if not k.startswith("_")}


def evaluate_run(run_dir, *, data: dict | None = None, **options) -> dict:
    """Evaluate the latest checkpoint of ``run_dir`` and write the report there (see module doc).
    ``data`` and ``options`` are those of :func:`evaluate_generator`; ``data_dir`` defaults to the run's."""
    opts = eval_config.from_options(**options)  # bad options fail before the checkpoint is read
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run_dir {run_dir} is not a directory")
    from ..distributed.group import current
    from ..train.checkpoints import load_generator  # torch: only once the arguments are known good

    G, config = load_generator(run_dir, device=opts.device)
    if opts.data_dir is None:
        opts.data_dir = config.get("data_dir")
    writer = current().is_main
    if writer:  # one writer per run directory: not while a training or another evaluation writes it
        hold_run_lock(run_dir, purpose="evaluation")
    try:
        return evaluate_generator(G, config, run_dir, data=data, **opts.to_dict())
    finally:
        if writer:
            release_run_lock(run_dir)
