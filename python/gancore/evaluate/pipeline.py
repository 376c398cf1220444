"""Evaluate a trained generator: Table 1, Figures 2–3, memorisation tests, and a report.

    python -m gancore.evaluate RUN_DIR                       # the paper's protocol, everything
    python -m gancore.evaluate RUN_DIR --protocol full       # whole validation split, refined σ
    python -m gancore.evaluate RUN_DIR --references none --no-memorisation --no-figures   # Parzen only

Steps (each timed in the report):

1. **Samples** — ``--n-samples`` (10,000, the paper's n) noise vectors from the run's prior, drawn
   once with a recorded seed, decoded by G and saved to ``RUN_DIR/samples.npz`` so anyone can
   recompute the number independently.
2. **Table 1** (``gancore.table1``) — σ chosen on the validation set, mean test log-likelihood ±
   standard error; the whole σ curve; warnings for a σ on the grid's edge and for data off [0,1].
3. **Reference rows** by the same code: real training images as centres, and k-means centroids of the
   training set (cached per dataset/protocol under ``$XDG_CACHE_HOME/gancore/eval``: they do not
   depend on the model).
4. **Memorisation** (``gancore.memorisation``) — nearest-training distances, the data-copying C_T of
   Meehan et al. (2020), the 1-NN two-sample test.
5. **Figures** (``gancore.figures``) — Figure 2 grid and 50-pair panel, Figure 3 interpolations,
   distance histograms, σ curves; Figure 1 from a 1-D GAN (``gancore.theory1d``).
6. **Report** (``gancore.report``) — ``report.json`` and ``report.md`` in RUN_DIR.

``evaluate_run(run_dir)`` loads the generator with ``gancore.checkpoint.load_generator`` and calls
``evaluate_generator(G, config, ...)``, which also accepts in-memory data (tests, notebooks).

Under ``torchrun`` (``torchrun --standalone --nproc_per_node N -m gancore.evaluate RUN_DIR``, or the
evaluation at the end of a torchrun training run) steps 2–4 are sharded: each kernel call of the
Table 1 protocol, of the reference rows and of the memorisation tests evaluates a slice of its query
rows on each rank and all-gathers the rows (:mod:`gancore.distributed`). Rank 0 draws the samples and
sends them to the others, and it alone writes ``samples.npz``, the figures, the reports and the cache.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from . import table1
from .table1 import ParzenResult

__all__ = ["draw_samples", "evaluate_generator", "evaluate_run", "main"]

logger = logging.getLogger(__name__)

REFERENCE_CHOICES = {"all": ("train", "kmeans"), "train": ("train",), "none": ()}


def _noise(n, noise_dim, prior, generator, device):
    from .models import sample_noise

    return sample_noise(n, noise_dim, prior, generator=generator, device=device)


def draw_samples(G, n: int, noise_dim: int, prior: str, *, seed: int = 0, device: str = "cpu",
                 batch_size: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` fair samples: z from the prior with ``torch.Generator().manual_seed(seed)`` (on the
    CPU, so the same seed gives the same z on any device), decoded by G in batches.
    Returns (samples float32 (n, D), z float32 (n, noise_dim))."""
    import torch

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n (number of samples) must be a positive int; got {n!r}")
    gen = torch.Generator().manual_seed(int(seed))
    z = _noise(int(n), int(noise_dim), prior, gen, "cpu")  # (n, noise_dim)
    out = []
    with torch.no_grad():
        for i in range(0, int(n), batch_size):
            x = G(z[i : i + batch_size].to(device))  # (b, D)
            out.append(x.detach().to("cpu", torch.float32).reshape(x.shape[0], -1).numpy())
    return np.concatenate(out), z.numpy()


def _load_data(dataset: str, data_dir, fold: int) -> dict[str, np.ndarray]:
    from .data import load_split

    return {s: load_split(dataset, s, data_dir=data_dir, fold=fold) for s in ("train", "valid", "test")}


def _cache_path(dataset, protocol, n_centres, seed, kmeans_iters) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gancore" / "eval"
    return root / f"reference_rows_{dataset}_{protocol}_n{n_centres}_seed{seed}_km{kmeans_iters}.json"


def _reference_rows(data, dataset, protocol, include, n_centres, kmeans_iters, n_threads, use_cache, is_main=True,
                    share=lambda rows: rows):
    """Reference rows, cached on disk for real datasets: they depend on the data, not the model.
    Under torchrun rank 0 reads and writes the cache and ``share`` hands its rows to every rank, so all
    ranks compute the same missing rows together."""
    cache = _cache_path(dataset, protocol, n_centres, 0, kmeans_iters) if use_cache and dataset else None
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
        rows.update(table1.reference_rows(data["train"], data["valid"], data["test"], n_centres=n_centres,
                                          protocol=protocol, kmeans_iters=kmeans_iters, seed=0,
                                          n_threads=n_threads, include=missing))
        if cache is not None and is_main:
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                old = json.loads(cache.read_text()) if cache.is_file() else {}
                old.update({k: v.to_dict() for k, v in rows.items()})
                cache.write_text(json.dumps(old))
            except (OSError, ValueError, TypeError) as exc:  # read-only home etc.: the cache is only an optimisation
                logger.warning("could not write the reference-row cache %s (%s)", cache, exc)
    return {k: rows[k] for k in include}


@contextlib.contextmanager
def _sharded_kernels(dist):
    """The sharding hook. Under torchrun, the kernel calls that ``table1``, ``memorisation`` and
    ``kmeans`` make go to the sharded twins in :mod:`gancore.distributed`: every rank runs the same
    protocol and gets the same, whole results, having computed 1/W of each. Without torchrun it
    changes nothing. Figures are drawn outside it, by rank 0 alone, with the plain kernels."""
    if not dist.enabled:
        yield
        return
    from . import distributed, kmeans, memorisation

    patches = [
        (table1, "parzen_loglik", distributed.sharded_parzen_loglik),
        (memorisation, "nearest_neighbors", distributed.sharded_nearest_neighbors),
        (kmeans, "nearest_neighbors", distributed.sharded_nearest_neighbors),
    ]
    saved = [(module, name, getattr(module, name)) for module, name, _ in patches]
    for module, name, fn in patches:
        setattr(module, name, fn)
    try:
        yield
    finally:
        for module, name, fn in saved:
            setattr(module, name, fn)


def _memorisation(samples, data, n_memo, n_cells, seed, n_threads) -> dict:
    """Memorisation tests on the first ``n_memo`` samples and as many random test images."""
    from .memorisation import memorisation_report

    rng = np.random.default_rng(seed)
    n = min(n_memo, samples.shape[0], data["test"].shape[0])
    test = data["test"][np.sort(rng.choice(data["test"].shape[0], size=n, replace=False))]
    return memorisation_report(samples[:n], test, data["train"], n_cells=n_cells, seed=seed, n_threads=n_threads)


def _figures(G, config, samples, data, report, out_dir, seed, interpolation, device, n_threads,
             figure1=True) -> dict:
    from . import figures as F

    shape = tuple(config["image_shape"])
    out_dir = Path(out_dir)
    made = {}
    rows = min(4, samples.shape[0] // 5)  # 4 × (5 samples + 1 neighbour), fewer rows for tiny n
    if rows:
        made["figure2"] = F.figure2(samples, data["train"], shape, out_dir / "figure2_samples.png", rows=rows,
                                    n_threads=n_threads)
    made["figure2_pairs"] = F.nn_pairs_panel(samples, data["train"], shape, out_dir / "figure2_nn_pairs.png",
                                             n_threads=n_threads)
    z0, _ = _z_pairs(config, seed + 1)
    z1, _ = _z_pairs(config, seed + 2)
    made["figure3"] = F.figure3(G, z0, z1, shape, out_dir / "figure3_interpolation.png", method=interpolation,
                                device=device)
    if "memorisation" in report:
        d_gen, d_test = report["memorisation"]["_distances"]
        made["nn_histogram"] = F.distance_histograms(d_gen, d_test, out_dir / "nn_distances.png")
    if figure1:
        from .theory1d import figure1 as draw_figure1

        made["figure1"] = draw_figure1(out_dir / "figure1_1d.png", seed=seed)
        report["theory1d"] = made["figure1"]["final"]
    curves = {"model": report["_parzen"], **{f"ref: {k}": v for k, v in report["_references"].items()}}
    made["sigma_curve"] = F.sigma_curve(curves, out_dir / "sigma_curve.png")
    return {k: os.path.basename(v["path"]) for k, v in made.items()}


def _z_pairs(config, seed, rows=8):
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    z = _noise(rows, int(config["noise_dim"]), config["noise_prior"], gen, "cpu")
    return z.numpy(), seed


def evaluate_generator(
    G,
    config: dict,
    out_dir,
    *,
    data: dict | None = None,
    data_dir=None,
    protocol: str = "paper",
    n_samples: int = table1.PAPER_N_SAMPLES,
    seed: int = 0,
    device: str = "cpu",
    n_threads: int = 0,
    references: str = "all",
    kmeans_iters: int = 10,
    memorisation: bool = True,
    memorisation_samples: int = 2000,
    n_cells: int = 50,
    figures: bool = True,
    interpolation: str = "linear",
    reference_cache: bool = True,
    fold: int | None = None,
    figure1: bool = True,
) -> dict:
    """Evaluate generator ``G`` (torch module, (n, noise_dim) → flat (n, D) on [0,1]) and write the
    report into ``out_dir``. ``config`` needs "dataset", "noise_dim", "noise_prior", "image_shape".
    ``data`` = {"train", "valid", "test"} arrays overrides loading ``config["dataset"]`` with
    ``gancore.data.load_split``; ``fold`` picks the TFD fold (default: ``config["fold"]`` or 0).
    ``figure1`` also draws the paper's 1-D Figure 1 (``gancore.theory1d``, ~10 s; model-independent).
    Returns the report dict (also in ``out_dir/report.json``).
    """
    from .distributed import current
    from .report import headline, write_report

    dist = current()  # torchrun: shard the kernels, rank 0 writes (see the module docstring)
    for key in ("dataset", "noise_dim", "noise_prior", "image_shape"):
        if key not in config:
            raise ValueError(f"config must contain {key!r}; got keys {sorted(config)}")
    if protocol not in table1.PROTOCOLS:
        raise ValueError(f"protocol must be one of {table1.PROTOCOLS}; got {protocol!r}")
    if references not in REFERENCE_CHOICES:
        raise ValueError(f"references must be one of {sorted(REFERENCE_CHOICES)}; got {references!r}")
    if interpolation not in ("linear", "slerp"):
        raise ValueError(f"interpolation must be 'linear' or 'slerp'; got {interpolation!r}")
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
    use_cache = reference_cache and data is None
    if data is None:
        data = _load_data(dataset, data_dir, int(fold if fold is not None else config.get("fold", 0) or 0))
        t = tick("load_data", t)
    for key in ("train", "valid", "test"):
        if key not in data:
            raise ValueError(f"data must map 'train', 'valid' and 'test' to arrays; {key!r} is missing")
    samples = z = error = None
    if dist.is_main:  # one draw, sent to every rank: the same centres everywhere, whatever the devices
        try:
            samples, z = draw_samples(G, n_samples, config["noise_dim"], config["noise_prior"], seed=seed,
                                      device=device)
        except ValueError as exc:
            error = exc
    if dist.any(error is not None):
        raise error or ValueError("rank 0 could not draw the samples (its log says why)")
    samples = dist.broadcast_array(samples)
    if samples.shape[1] != data["test"].shape[1]:
        raise ValueError(f"G produces rows of width {samples.shape[1]} but the {dataset} data have "
                         f"{data['test'].shape[1]} columns")
    if dist.is_main:
        np.savez(out_dir / "samples.npz", samples=samples, z=z, seed=np.int64(seed),
                 noise_prior=np.str_(config["noise_prior"]), dataset=np.str_(dataset))
    t = tick("sampling", t)

    with _sharded_kernels(dist):
        parzen = table1.parzen_protocol(samples, data["valid"], data["test"], protocol=protocol,
                                        n_threads=n_threads, label="generator samples")
        t = tick("parzen_model", t)
        refs = _reference_rows(data, dataset, protocol, REFERENCE_CHOICES[references],
                               min(n_samples, data["train"].shape[0]), kmeans_iters, n_threads, use_cache,
                               is_main=dist.is_main, share=dist.broadcast)
        t = tick("parzen_references", t)

        report: dict = {"_parzen": parzen, "_references": refs}
        if memorisation:
            report["memorisation"] = _memorisation(samples, data, memorisation_samples, n_cells, seed, n_threads)
            t = tick("memorisation", t)
    fig_files = {}
    if figures and dist.is_main:
        fig_files = _figures(G, config, samples, data, report, out_dir, seed, interpolation, device, n_threads,
                             figure1)
        t = tick("figures", t)
    timings["total"] = round(time.perf_counter() - t0, 3)

    report.update({
        "dataset": dataset,
        "protocol": protocol,
        "seed": int(seed),
        "n_samples": int(n_samples),
        "device": str(device),
        "config": config,
        "parzen": parzen.to_dict(),
        "references": {k: v.to_dict() for k, v in refs.items()},
        "paper_table1": {k: v for k, v in table1.PAPER_TABLE1.items()},
        "figures": fig_files,
        "interpolation": interpolation if figures else None,
        "samples_file": "samples.npz",
        "timings_s": timings,
        "warnings": list(parzen.warnings) + [f"reference row {k}: {w}" for k, r in refs.items() for w in r.warnings],
    })
    report["headline"] = headline(dataset, parzen)
    if dist.is_main:
        write_report(report, out_dir)
    return {k: v for k, v in report.items() if not k.startswith("_")}


def evaluate_run(run_dir, *, data_dir=None, device: str = "cpu", **kwargs) -> dict:
    """Evaluate the latest checkpoint of ``run_dir`` and write the report there (see module doc).
    Keyword arguments are those of :func:`evaluate_generator`."""
    from .checkpoint import load_generator

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run_dir {run_dir} is not a directory")
    G, config = load_generator(run_dir, device=device)
    if data_dir is None:
        data_dir = config.get("data_dir")
    report = evaluate_generator(G, config, run_dir, data_dir=data_dir, device=device, **kwargs)
    return report


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gancore.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", nargs="+",
                   help="training run directories (config.json + checkpoints/); for TFD give one run per "
                        "fold (with --fold per run as in its config) to get the paper's mean ± SE across folds")
    p.add_argument("--protocol", choices=table1.PROTOCOLS, default="paper",
                   help="paper: the 2014 script exactly (σ over logspace(-1,0,10), first 1,000 validation "
                        "images); full: whole validation split, denser grid logspace(-1.5,0.5,41), refined σ")
    p.add_argument("--data-dir", default=None, help="where the datasets are (default: gancore.data's search path)")
    p.add_argument("--device", default="cpu", help="torch device for sampling (cpu, cuda)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise draw (recorded in the report)")
    p.add_argument("--n-samples", type=int, default=table1.PAPER_N_SAMPLES,
                   help="generator samples = Parzen centres (paper: 10000)")
    p.add_argument("--threads", type=int, default=0,
                   help="kernel threads (0 = all cores; under torchrun per process, 0 = the cores divided among "
                        "the processes on the machine)")
    p.add_argument("--references", choices=sorted(REFERENCE_CHOICES), default="all",
                   help="reference rows: real training images and k-means centroids (all), only the "
                        "training images (train), or none")
    p.add_argument("--kmeans-iters", type=int, default=10, help="Lloyd iterations for the k-means reference row")
    p.add_argument("--no-reference-cache", action="store_true", help="recompute the reference rows")
    p.add_argument("--no-memorisation", action="store_true", help="skip the memorisation tests")
    p.add_argument("--memorisation-samples", type=int, default=2000,
                   help="generated samples and test images used by the memorisation tests")
    p.add_argument("--cells", type=int, default=50, help="k-means cells of the data-copying test C_T")
    p.add_argument("--no-figures", action="store_true", help="write no PNG files")
    p.add_argument("--no-figure1", action="store_true",
                   help="skip Figure 1 (a 1-D GAN trained on the spot, ~10 s; independent of the run)")
    p.add_argument("--interpolation", choices=("linear", "slerp"), default="linear",
                   help="Figure 3 path in z space (slerp for Gaussian priors)")
    p.add_argument("--fold", type=int, default=None, help="TFD fold of the validation/test split (default: "
                   "the run's config, else 0)")
    p.add_argument("--dist-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="under torchrun: how long a rank waits for the others before it stops with an error "
                        "(default 300)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from . import distributed

    # torchrun: the kernels run on the CPU, so the group is Gloo's; only rank 0 talks and writes.
    launched = distributed.launched()
    rank = int(os.environ.get("RANK", "0") or 0) if launched else 0
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO if rank == 0 else logging.WARNING,
                        format="%(asctime)s %(levelname)s " + (f"[rank {rank}] " if launched else "")
                        + "%(name)s: %(message)s")
    dist = distributed.setup("cpu", args.dist_timeout)
    try:
        return _evaluate_runs(args, dist)
    finally:
        distributed.teardown()


def _evaluate_runs(args, dist) -> int:
    reports = []
    for run_dir in args.run_dir:
        logger.info("evaluating %s: protocol=%s seed=%d n_samples=%d", run_dir, args.protocol, args.seed,
                    args.n_samples)
        report = evaluate_run(
            run_dir, data_dir=args.data_dir, device=args.device, protocol=args.protocol,
            n_samples=args.n_samples, seed=args.seed, n_threads=args.threads, references=args.references,
            kmeans_iters=args.kmeans_iters, memorisation=not args.no_memorisation,
            memorisation_samples=args.memorisation_samples, n_cells=args.cells, figures=not args.no_figures,
            interpolation=args.interpolation, reference_cache=not args.no_reference_cache, fold=args.fold,
            figure1=not args.no_figure1,
        )
        reports.append(report)
        if not dist.is_main:
            continue
        print(report["headline"])
        for name, r in report["references"].items():
            print(f"  reference ({name}): {r['mean']:.1f} ± {r['se']:.1f} nats (σ = {r['sigma']:.3g})")
        if "memorisation" in report:
            print(f"  memorisation: {report['memorisation']['verdict']}")
        for w in report["warnings"]:
            print(f"  WARNING: {w}")
        print(f"  report: {Path(run_dir) / 'report.md'}")
    if dist.is_main and len(reports) > 1 and all(r["dataset"] == "tfd" for r in reports):
        # Table 1's TFD column: σ chosen per fold, mean over folds ± standard error across folds.
        combined = table1.combine_folds([ParzenResult(**r["parzen"]) for r in reports])
        m, s = table1.PAPER_TABLE1["Adversarial nets"]["tfd"]
        print(f"TFD Parzen log-likelihood over {len(reports)} folds ({args.protocol} protocol): "
              f"{combined['mean']:.0f} ± {combined['se']:.0f} nats; paper: {m:g} ± {s:g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
