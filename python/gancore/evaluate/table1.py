"""Table 1 of Goodfellow et al. (2014): the Parzen-window protocol, its warnings and reference rows.

§5 of the paper: "We estimate probability of the test set data under p_g by fitting a Gaussian
Parzen window to the samples generated with G and reporting the log-likelihood under this
distribution. The σ parameter of the Gaussians was obtained by cross validation on the validation
set." The per-point estimator (nats) is ``gancore.parzen_loglik``:

    log p(x) = logsumexp_j(−‖x − μ_j‖² / (2σ²)) − log n − (d/2)·log(2πσ²)

Protocols
---------
``paper`` — exactly the authors' ``parzen_ll.py``: n = 10,000 samples drawn once; σ = the value of
``logspace(−1, 0, 10)`` with the best mean validation LL; validation = the first 1,000 images of the
validation split; result = mean test LL ± std (ddof 0) / √N_test.

``full`` — the whole validation split, a denser grid ``logspace(−1.5, 0.5, 41)``, then a second
single pass over a fine grid between the best point's neighbors (σ refined to ~0.1 % in log σ).

TFD (5 folds): σ is chosen per fold and ± is the standard error across folds
(:func:`combine_folds`).

Every σ of a grid is served by one pass of the kernel (distances are σ-independent).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from .._checks import as_int, as_matrix, as_n_threads, as_sigmas
from .kernels import LOCAL, Kernels

__all__ = [
    "CGAN_MNIST_PARZEN",
    "FULL_SIGMAS",
    "PAPER_N_SAMPLES",
    "PAPER_N_VALID",
    "PAPER_SIGMAS",
    "PAPER_TABLE1",
    "DataScaleWarning",
    "GridEdgeWarning",
    "ParzenResult",
    "check_data_scale",
    "combine_folds",
    "parzen_protocol",
    "reference_rows",
    "select_sigma",
]

logger = logging.getLogger(__name__)

#: Table 1 of the paper: Parzen window-based log-likelihood estimates (nats), (mean, ±).
#: MNIST: mean LL of test samples; TFD: mean over folds, ± = standard error across folds.
PAPER_TABLE1: dict[str, dict[str, tuple[float, float]]] = {
    "DBN": {"mnist": (138.0, 2.0), "tfd": (1909.0, 66.0)},
    "Stacked CAE": {"mnist": (121.0, 1.6), "tfd": (2110.0, 50.0)},
    "Deep GSN": {"mnist": (214.0, 1.1), "tfd": (1890.0, 29.0)},
    "Adversarial nets": {"mnist": (225.0, 2.0), "tfd": (2057.0, 26.0)},
}
#: Mirza & Osindero (2014), Table 1: Parzen log-likelihood of conditional adversarial nets on MNIST.
CGAN_MNIST_PARZEN = (132.0, 1.8)

#: The σ grid of parzen_ll.py: ``numpy.logspace(sigma_start=-1, sigma_end=0, num=cross_val=10)``.
PAPER_SIGMAS = np.logspace(-1.0, 0.0, 10)
#: The ``full`` protocol's coarse grid: denser, and wide enough that its edges are rarely the best.
FULL_SIGMAS = np.logspace(-1.5, 0.5, 41)
PAPER_N_SAMPLES = 10_000
PAPER_N_VALID = 1_000
PROTOCOLS = ("paper", "full")


class GridEdgeWarning(UserWarning):
    """The best σ is the smallest or largest value of the grid: the true optimum may lie outside."""


class DataScaleWarning(UserWarning):
    """Data not on the paper's [0,1] pixel scale: Parzen numbers are not comparable to Table 1."""


def _warn(message: str, category: type[Warning]) -> str:
    """Warn the caller *and* log at WARNING level, loudly: these mistakes silently change the
    headline number by hundreds of nats, so they must be seen whether or not warnings are shown."""
    warnings.warn(message, category, stacklevel=3)
    logger.warning("!!! %s", message)
    return message


@dataclass
class ParzenResult:
    """One Parzen evaluation (one row of Table 1), with everything needed to judge it.

    ``mean`` ± ``se`` is the headline (nats); ``sigmas``/``valid_ll`` is the whole σ → mean
    validation LL curve that chose ``sigma``; ``data_range`` is (min, max) over the evaluated data
    and centers; ``warnings`` holds the text of every warning raised.
    """

    protocol: str
    mean: float
    se: float
    std: float
    sigma: float
    sigmas: list[float]
    valid_ll: list[float]
    n_centers: int
    n_valid: int
    n_test: int
    d: int
    data_range: tuple[float, float]
    grid_edge: bool
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.mean:.1f} ± {self.se:.1f} nats (σ = {self.sigma:.3g})"


def check_data_scale(named_arrays: dict, *, expected=(0.0, 1.0), tol: float = 1e-6) -> list[str]:
    """Warn (and return the messages) when any array has values outside ``expected``.

    Table 1 is on the [0,1] pixel scale. Data on [−1,1] (the tanh convention) doubles every
    distance unit: since log p scales by −d·log(scale), every value shifts by d·ln 2 (543.4 nats for
    MNIST's d = 784), which alone turns 225 into −318.
    """
    lo_ok, hi_ok = expected
    messages = []
    for name, arr in named_arrays.items():
        arr = np.asarray(arr)
        if arr.size == 0:
            continue
        lo, hi = float(arr.min()), float(arr.max())
        if lo < lo_ok - tol or hi > hi_ok + tol:
            d = arr.shape[-1] if arr.ndim > 1 else 1
            hint = ""
            if lo < -tol and hi <= 1 + tol:
                hint = (
                    f"; it looks like the [-1,1] scale: map it with (x + 1) / 2 — on [-1,1] every "
                    f"log-likelihood shifts by d·ln 2 = {d * math.log(2):.1f} nats (d = {d})"
                )
            elif hi > 1 + tol and hi <= 255 + tol:
                hint = "; it looks like 0..255 pixels: divide by 255"
            messages.append(
                _warn(
                    f"{name} is not on the paper's [0,1] pixel scale (min {lo:.4g}, max {hi:.4g}); "
                    f"Parzen log-likelihoods are not comparable to Table 1{hint}",
                    DataScaleWarning,
                )
            )
    return messages


def select_sigma(valid, centers, sigmas, *, n_threads: int = 0, kernels: Kernels = LOCAL) -> tuple[float, np.ndarray]:
    """σ of ``sigmas`` with the best mean validation log-likelihood, and the whole curve.

    All σ are served by one pass of the kernel. Ties go to the first (smallest-index) σ, as
    ``numpy.argmax`` in the 2014 script.
    """
    sigmas, _ = as_sigmas(sigmas)
    ll = kernels.parzen_loglik(valid, centers, sigmas, n_threads=n_threads)  # (s, n_valid)
    curve = ll.mean(axis=1)
    return float(sigmas[int(np.argmax(curve))]), curve


def _refine(valid, centers, sigmas, curve, n_threads, kernels) -> tuple[float, np.ndarray, np.ndarray]:
    """Second pass for the ``full`` protocol: a fine log-spaced grid between the best grid point's
    neighbors, merged into the curve. The validation curve is smooth and unimodal in log σ in
    practice, so this finds the optimum to the fine grid's resolution."""
    i = int(np.argmax(curve))
    lo = sigmas[max(i - 1, 0)]
    hi = sigmas[min(i + 1, len(sigmas) - 1)]
    fine = np.logspace(math.log10(lo), math.log10(hi), 41)
    fine_curve = kernels.parzen_loglik(valid, centers, fine, n_threads=n_threads).mean(axis=1)
    all_s = np.concatenate([sigmas, fine])
    all_c = np.concatenate([curve, fine_curve])
    order = np.argsort(all_s, kind="stable")
    all_s, all_c = all_s[order], all_c[order]
    return float(all_s[int(np.argmax(all_c))]), all_s, all_c


def parzen_protocol(
    centers,
    valid,
    test,
    *,
    protocol: str = "paper",
    sigmas=None,
    n_valid: int | None = None,
    n_threads: int = 0,
    label: str = "samples",
    kernels: Kernels = LOCAL,
) -> ParzenResult:
    """Run the Table 1 protocol: choose σ on ``valid``, report the mean test LL ± standard error.

    Parameters
    ----------
    centers : (n, d) generator samples (or real images / centroids for a reference row)
    valid : (n_v, d) the validation split. The ``paper`` protocol keeps its first ``n_valid``
        rows (default 1,000, as ``parzen_ll.py``'s ``limit_size``); ``full`` keeps them all.
    test : (n_t, d) test images; every row is used
    protocol : "paper" or "full"
    sigmas : override the σ grid (default PAPER_SIGMAS for paper, FULL_SIGMAS for full)
    n_valid : override how many validation rows are used (None = protocol default)
    label : what ``centers`` are, for warning messages
    kernels : the Parzen kernel to call (:mod:`gancore.evaluate.kernels`; sharded under torchrun)

    Warns (``GridEdgeWarning``) when the best σ lies on the edge of the grid and
    (``DataScaleWarning``) when any array is outside [0,1]; the messages are kept in the result.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}; got {protocol!r}")
    centers = as_matrix(centers, "centers")
    valid = as_matrix(valid, "valid")
    test = as_matrix(test, "test")
    n_threads = as_n_threads(n_threads)
    for name, arr in (("valid", valid), ("test", test)):
        if arr.shape[1] != centers.shape[1]:
            raise ValueError(
                f"{name} must have the same width as centers (d = {centers.shape[1]}); got {name}.shape={arr.shape}"
            )
        if arr.shape[0] == 0:
            raise ValueError(f"{name} must have at least one row")
    if centers.shape[0] == 0:
        raise ValueError("centers must have at least one row")
    if sigmas is None:
        sigmas = PAPER_SIGMAS if protocol == "paper" else FULL_SIGMAS
    sigmas, _ = as_sigmas(sigmas)
    sigmas = np.sort(sigmas)
    if n_valid is None:
        n_valid = PAPER_N_VALID if protocol == "paper" else valid.shape[0]
    valid = valid[: as_int(n_valid, "n_valid")]

    msgs = check_data_scale({label: centers, "valid": valid, "test": test})

    sigma, curve = select_sigma(valid, centers, sigmas, n_threads=n_threads, kernels=kernels)
    i = int(np.argmax(curve))
    edge = len(sigmas) > 1 and i in (0, len(sigmas) - 1)
    if edge:
        side = "smallest" if i == 0 else "largest"
        msgs.append(
            _warn(
                f"Parzen σ for {label}: the best σ = {sigma:.4g} is the {side} value of the grid "
                f"[{sigmas[0]:.4g}, {sigmas[-1]:.4g}]; the optimum may lie outside it and the "
                f"log-likelihood is then underestimated — widen the grid (--protocol full)",
                GridEdgeWarning,
            )
        )
    if protocol == "full" and len(sigmas) > 1:
        sigma, sigmas, curve = _refine(valid, centers, sigmas, curve, n_threads, kernels)

    ll = kernels.parzen_loglik(test, centers, sigma, n_threads=n_threads)
    std = float(ll.std())  # ddof 0, as numpy's default in parzen_ll.py
    se = std / math.sqrt(ll.shape[0])
    result = ParzenResult(
        protocol=protocol,
        mean=float(ll.mean()),
        se=se,
        std=std,
        sigma=sigma,
        sigmas=[float(s) for s in sigmas],
        valid_ll=[float(c) for c in curve],
        n_centers=int(centers.shape[0]),
        n_valid=int(valid.shape[0]),
        n_test=int(test.shape[0]),
        d=int(centers.shape[1]),
        data_range=(
            float(min(centers.min(), valid.min(), test.min())),
            float(max(centers.max(), valid.max(), test.max())),
        ),
        grid_edge=bool(edge),
        warnings=msgs,
    )
    logger.info("Parzen (%s, %s): %s", protocol, label, result)
    return result


def combine_folds(results: list[ParzenResult]) -> dict:
    """TFD's Table 1 entry: σ chosen per fold; mean over folds ± standard error across folds
    (std with ddof 0 / √n_folds, the convention of the paper's per-point ±)."""
    if not results:
        raise ValueError("results must hold at least one fold's ParzenResult")
    means = np.array([r.mean for r in results], dtype=np.float64)
    return {
        "mean": float(means.mean()),
        "se": float(means.std() / math.sqrt(len(means))),
        "fold_means": means.tolist(),
        "fold_sigmas": [r.sigma for r in results],
    }


def reference_rows(
    train,
    valid,
    test,
    *,
    n_centers: int = PAPER_N_SAMPLES,
    protocol: str = "paper",
    kmeans_iters: int = 10,
    seed: int = 0,
    n_threads: int = 0,
    include: tuple[str, ...] = ("train", "kmeans"),
    kernels: Kernels = LOCAL,
) -> dict[str, ParzenResult]:
    """Reference rows computed by the same protocol, so the model's number can be judged.

    ``"train"`` — ``n_centers`` random *real training images* as centers: what a generator that
    reproduced the training set would score. ``"kmeans"`` — ``n_centers`` k-means centroids of the
    training set (Lloyd from random distinct points, ``kmeans_iters`` iterations): not a sampler at
    all, yet it scores well, the known weakness of the estimator (Theis et al. 2016, §3.2).
    """
    from .kmeans import kmeans

    train = as_matrix(train, "train")
    n_centers = as_int(n_centers, "n_centers")
    unknown = set(include) - {"train", "kmeans"}
    if unknown:
        raise ValueError(f"include may only name 'train' and 'kmeans'; got {sorted(unknown)}")
    n = min(int(n_centers), train.shape[0])
    rng = np.random.default_rng(seed)
    rows: dict[str, ParzenResult] = {}
    if "train" in include:
        centers = train[np.sort(rng.choice(train.shape[0], size=n, replace=False))]
        rows["train"] = parzen_protocol(
            centers, valid, test, protocol=protocol, n_threads=n_threads, label="training images", kernels=kernels
        )
    if "kmeans" in include:
        km = kmeans(train, n, init="random", max_iter=kmeans_iters, seed=seed, n_threads=n_threads, kernels=kernels)
        rows["kmeans"] = parzen_protocol(
            km.centroids,
            valid,
            test,
            protocol=protocol,
            n_threads=n_threads,
            label="k-means centroids",
            kernels=kernels,
        )
    return rows
