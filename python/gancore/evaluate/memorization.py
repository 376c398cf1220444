"""Memorization tests, beyond the paper's single nearest neighbor (Figure 2).

Three numbers, all built on the exact nearest-neighbor kernel (``gancore.nearest_neighbors``):

1. **Nearest-training distances** of generated samples and of held-out test images. A model that
   copies its training set has generated distances far *below* the test images' distances.
2. **Data-copying test** of Meehan, Chaudhuri & Dasgupta (AISTATS 2020, "A Non-Parametric Test to
   Detect Data-Copying in Generative Models", §3–4). With L(x) the distance from x to its nearest
   training point, compare L over generated points Q_m with L over test points P_n by the
   Mann–Whitney U statistic, standardised to Z_U (≈ N(0,1) when the two samples are exchangeable).
   ``Z_U ≪ 0``: generated samples lie closer to the training set than fresh data do — *data copying*.
   ``Z_U ≫ 0``: they lie farther — *under-fitting*. Because copying can be local, the training set is
   partitioned by k-means into cells π and

       C_T = Σ_{π ∈ Π_τ} P_n(π) · Z_U(π) / Σ_{π ∈ Π_τ} P_n(π),

   where within a cell L is measured to the training points *of that cell*, P_n(π) is the fraction of
   test points in π, and Π_τ keeps the cells holding more than τ·m generated samples (the authors'
   code: ``Qm_of_pi > tau``; their default τ = 20/m, i.e. more than 20 samples). Cells without test
   points have weight P_n(π) = 0 and are skipped (the authors' code raises instead). Z_U is the
   authors' definition by default (``convention="authors"``, their ``Zu``: the null mean shifted by
   a fixed 0.5 continuity correction and the tie-free variance m·n·(m+n+1)/12), so published C_T values
   compare with ours. ``convention="tie-corrected"`` uses the tie-corrected variance and no shift
   instead; the two agree on continuous data but not on exact copies (many distances of 0 tie),
   where they can differ by several tenths in C_T: exactly the case the test exists to catch.
3. **1-nearest-neighbor two-sample tests** (Lopez-Paz & Oquab 2017): leave-one-out 1-NN
   classification of generated vs real points; accuracy ≈ 0.5 when the two are indistinguishable,
   → 1 when they are easy to tell apart. Run twice, and the report says which is which: against
   held-out **test** images (how well the model generalizes; copies of the training set look like
   fresh data here, ≈ 0.5) and against a **training** subsample of the same size (memorization, as
   Meehan et al.'s ``NN_test`` baseline: copies of the compared training images score well below 0.5).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np

from .._checks import as_matrix, as_n_threads
from .kernels import LOCAL, Kernels

__all__ = [
    "DataCopyingResult",
    "copying_verdict",
    "data_copying_test",
    "mann_whitney_z",
    "memorization_report",
    "nn_distances",
    "one_nn_two_sample",
]

logger = logging.getLogger(__name__)


def nn_distances(queries, train, *, n_threads: int = 0, kernels: Kernels = LOCAL) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance (not squared) from each query to its nearest training row, and its index.

    Returns (distances float64 (m,), indices int64 (m,)).
    """
    queries = as_matrix(queries, "queries")
    train = as_matrix(train, "train")
    idx, d2 = kernels.nearest_neighbors(queries, train, 1, n_threads=n_threads)
    return np.sqrt(np.maximum(d2[:, 0], 0.0)), idx[:, 0]


def _rank_average(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based ranks with ties given their average rank, and the sizes of the tie groups."""
    order = np.argsort(values, kind="mergesort")
    sorted_v = values[order]
    # Start of each run of equal values.
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])
    sizes = np.diff(np.r_[starts, len(values)])
    avg = starts + (sizes + 1) / 2.0  # average of ranks start+1 .. start+size
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(avg, sizes)
    return ranks, sizes


CONVENTIONS = ("authors", "tie-corrected")


def mann_whitney_z(generated, test, *, convention: str = "authors") -> tuple[float, float]:
    """Mann–Whitney U of ``generated`` vs ``test`` and its standardised Z_U (Meehan et al. 2020, §3).

    U counts the pairs (i, j) with generated[i] > test[j], ties counting ½; under the null
    hypothesis that the two samples are exchangeable E[U] = m·n/2. ``convention``:

    * ``"authors"`` (default) — the authors' code (``Zu`` in casey-meehan/data-copying):
      Z_U = (U − (m·n/2 − 0.5)) / √(m·n·(N + 1)/12), a fixed +0.5 continuity shift, no tie correction;
    * ``"tie-corrected"`` — Z_U = (U − m·n/2) / √Var[U] with
      Var[U] = m·n/12 · ((N + 1) − Σ(t³ − t) / (N(N − 1))), N = m + n, t = tie-group sizes
      (SciPy's variance, no continuity correction); Z_U is 0 when that variance is 0.

    Returns (U, Z_U); Z_U < 0 means generated values are *smaller* (closer to the training set).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}; got {convention!r}")
    g = np.asarray(generated, dtype=np.float64).ravel()
    t = np.asarray(test, dtype=np.float64).ravel()
    if g.size == 0 or t.size == 0:
        raise ValueError(f"generated and test must be non-empty; got sizes {g.size} and {t.size}")
    if not (np.isfinite(g).all() and np.isfinite(t).all()):
        raise ValueError("generated and test must be finite")
    m, n = g.size, t.size
    N = m + n
    ranks, ties = _rank_average(np.concatenate([g, t]))
    u = float(ranks[:m].sum() - m * (m + 1) / 2.0)
    if convention == "authors":
        return u, (u - (m * n / 2.0 - 0.5)) / math.sqrt(m * n * (N + 1) / 12.0)
    tie_term = float(np.sum(ties.astype(np.float64) ** 3 - ties)) / (N * (N - 1)) if N > 1 else 0.0
    var = m * n / 12.0 * ((N + 1) - tie_term)
    z = 0.0 if var <= 0 else (u - m * n / 2.0) / math.sqrt(var)
    return u, z


@dataclass
class DataCopyingResult:
    """Outcome of :func:`data_copying_test` (numbers in the report's memorization section)."""

    c_t: float  # weighted mean of per-cell Z_U over the kept cells
    z_global: float  # Z_U over all points with distances to the whole training set
    n_cells: int
    n_cells_kept: int
    tau: float
    weight_kept: float  # Σ P_n(π) over kept cells: the fraction of test data C_T speaks for
    cell_z: list  # Z_U per cell (NaN where not kept)
    cell_n_generated: list
    cell_n_test: list
    convention: str = "authors"  # of Z_U (see mann_whitney_z)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cell_z"] = [None if (z is None or math.isnan(z)) else z for z in self.cell_z]
        return d


def data_copying_test(
    generated,
    test,
    train,
    *,
    n_cells: int = 50,
    tau: float | None = None,
    cells=None,
    seed: int = 0,
    kmeans_iters: int = 20,
    n_threads: int = 0,
    kernels: Kernels = LOCAL,
    convention: str = "authors",
) -> DataCopyingResult:
    """Meehan, Chaudhuri & Dasgupta's C_T statistic and the global Z_U (see the module docstring).

    Parameters
    ----------
    generated : (m, d) generator samples Q_m
    test : (n, d) held-out real points P_n, never seen in training
    train : (l, d) the training set T
    n_cells : k of the k-means partition of ``train`` (their experiments: 50 on MNIST)
    tau : keep cells with more than τ·m generated samples; default 20/m (their setting)
    cells : optional precomputed partition as a KMeansResult-like object with ``centroids`` and
        ``labels`` (cells of the training rows); skips k-means
    seed, kmeans_iters : for the k-means partition
    convention : of Z_U, "authors" (default, so published C_T values compare) or "tie-corrected"

    Interpretation: C_T ≈ 0 no evidence of copying; C_T ≪ 0 (say < −3) generated samples sit closer
    to training points than fresh data do (copying); C_T ≫ 0 under-fitting (samples far from data).
    """
    from .kmeans import assign, kmeans

    generated = as_matrix(generated, "generated")
    test = as_matrix(test, "test")
    train = as_matrix(train, "train")
    n_threads = as_n_threads(n_threads)
    for name, arr in (("generated", generated), ("test", test)):
        if arr.shape[1] != train.shape[1]:
            raise ValueError(f"{name} must have the same width as train ({train.shape[1]}); got {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError(f"{name} must have at least one row")
    m = generated.shape[0]
    if tau is None:
        tau = 20.0 / m
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating, np.integer)) or not (0 <= tau < math.inf):
        raise ValueError(f"tau must be a finite fraction >= 0 of the generated samples; got {tau!r}")

    if cells is None:
        cells = kmeans(train, n_cells, max_iter=kmeans_iters, seed=seed, n_threads=n_threads, kernels=kernels)
    centroids = np.asarray(cells.centroids)
    k = centroids.shape[0]
    t_cells = np.asarray(cells.labels, dtype=np.int64)
    if t_cells.shape != (train.shape[0],):
        raise ValueError(f"cells.labels must give one cell per training row; got shape {t_cells.shape}")
    g_cells, _ = assign(generated, centroids, n_threads=n_threads, kernels=kernels)
    p_cells, _ = assign(test, centroids, n_threads=n_threads, kernels=kernels)

    g_counts = np.bincount(g_cells, minlength=k)
    p_counts = np.bincount(p_cells, minlength=k)
    t_counts = np.bincount(t_cells, minlength=k)
    pn_of_pi = p_counts / test.shape[0]
    keep = (g_counts / m > tau) & (p_counts > 0) & (t_counts > 0)

    cell_z = np.full(k, np.nan)
    for c in np.flatnonzero(keep):
        # Within a cell, L(x) is the distance to the nearest training point *of that cell*.
        t_c = train[t_cells == c]
        lq, _ = nn_distances(generated[g_cells == c], t_c, n_threads=n_threads, kernels=kernels)
        lp, _ = nn_distances(test[p_cells == c], t_c, n_threads=n_threads, kernels=kernels)
        cell_z[c] = mann_whitney_z(lq, lp, convention=convention)[1]

    weight = float(pn_of_pi[keep].sum())
    c_t = float(np.dot(pn_of_pi[keep], cell_z[keep]) / weight) if weight > 0 else float("nan")
    if not keep.any():
        logger.warning("data-copying test: no cell holds more than τ·m = %.1f generated samples", tau * m)

    lq_all, _ = nn_distances(generated, train, n_threads=n_threads, kernels=kernels)
    lp_all, _ = nn_distances(test, train, n_threads=n_threads, kernels=kernels)
    z_global = mann_whitney_z(lq_all, lp_all, convention=convention)[1]
    result = DataCopyingResult(
        c_t=c_t,
        z_global=float(z_global),
        n_cells=int(k),
        n_cells_kept=int(keep.sum()),
        tau=float(tau),
        weight_kept=weight,
        cell_z=cell_z.tolist(),
        cell_n_generated=g_counts.tolist(),
        cell_n_test=p_counts.tolist(),
        convention=convention,
    )
    logger.info("data-copying test: C_T = %.2f over %d/%d cells, global Z_U = %.2f", c_t, keep.sum(), k, z_global)
    return result


def one_nn_two_sample(generated, real, *, n_threads: int = 0, kernels: Kernels = LOCAL) -> dict:
    """Leave-one-out 1-nearest-neighbor two-sample test accuracy (Lopez-Paz & Oquab, ICLR 2017).

    Pool the generated and real points, label them, and classify every point by the label of its
    nearest *other* point. Returns ``accuracy`` (overall), ``accuracy_generated``,
    ``accuracy_real``. ≈ 0.5 with both parts ≈ 0.5: indistinguishable; → 1: easily told apart (poor
    samples or mode collapse); well below 0.5: generated points sit on top of the real ones (copies
    of them). Read the two parts too: samples spread *more* than the data (e.g. noisy images) have
    real points as nearest neighbors, giving ≈ 0 for generated and ≈ 1 for real, 0.5 overall.
    Use equal sizes for a balanced test.
    """
    generated = as_matrix(generated, "generated")
    real = as_matrix(real, "real")
    if generated.shape[1] != real.shape[1]:
        raise ValueError(f"generated and real must have the same width; got {generated.shape} and {real.shape}")
    if generated.shape[0] == 0 or real.shape[0] == 0:
        raise ValueError("generated and real must both have at least one row")
    pool = np.concatenate([generated.astype(np.float64), real.astype(np.float64)])
    labels = np.r_[np.zeros(generated.shape[0], bool), np.ones(real.shape[0], bool)]
    if pool.shape[0] < 2:
        raise ValueError("need at least two points in total")
    idx, _ = kernels.nearest_neighbors(pool, pool, 2, n_threads=n_threads)
    # Leave one out: the nearest point other than itself. With exact duplicates the point itself may
    # come second (ties go to the lower index), so pick whichever of the two is not i.
    own = np.arange(pool.shape[0])
    nn = np.where(idx[:, 0] == own, idx[:, 1], idx[:, 0])
    correct = labels[nn] == labels
    return {
        "accuracy": float(correct.mean()),
        "accuracy_generated": float(correct[~labels].mean()),
        "accuracy_real": float(correct[labels].mean()),
        "n_generated": int(generated.shape[0]),
        "n_real": int(real.shape[0]),
    }


def copying_verdict(c_t: float, z_global: float, *, threshold: float = 3.0, weight_kept: float = 1.0) -> str:
    """One sentence a user can act on, from C_T (the primary statistic) and the global Z_U.

    ``weight_kept`` (the fraction of test data in the cells C_T could use) adds a mode-collapse note
    when it is below one half: the generator then covers few regions of the data at all.
    """
    if math.isnan(c_t):
        return "inconclusive: no k-means cell held enough generated samples to compute C_T"
    if c_t < -threshold:
        text = (
            f"DATA COPYING: C_T = {c_t:.2f} < −{threshold:g}: generated samples lie closer to the "
            f"training images than held-out test images do"
        )
    elif c_t > threshold:
        text = (
            f"no copying, but under-fitting: C_T = {c_t:.2f} > {threshold:g}: generated samples lie "
            f"farther from the training images than held-out test images do"
        )
    else:
        text = f"no evidence of data copying: |C_T| = {abs(c_t):.2f} ≤ {threshold:g} (global Z_U = {z_global:.2f})"
    if weight_kept < 0.5:
        text += (
            f"; the generated samples fill only cells holding {weight_kept:.0%} of the test data "
            f"(few modes covered: mode collapse?)"
        )
    return text


def memorization_report(
    generated, test, train, *, n_cells: int = 50, seed: int = 0, n_threads: int = 0, kernels: Kernels = LOCAL
) -> dict:
    """All memorization numbers for one generator, as the evaluation report stores them: summaries
    of both nearest-training distance samples, C_T and global Z_U, the 1-NN two-sample test and a
    verdict. Use as many generated samples as test images. The raw distances are kept under
    ``"_distances"`` (generated, test) for the histogram; keys starting with "_" are not saved."""
    d_gen, _ = nn_distances(generated, train, n_threads=n_threads, kernels=kernels)
    d_test, _ = nn_distances(test, train, n_threads=n_threads, kernels=kernels)
    dc = data_copying_test(generated, test, train, n_cells=n_cells, seed=seed, n_threads=n_threads, kernels=kernels)
    one_nn = one_nn_two_sample(generated, test, n_threads=n_threads, kernels=kernels)
    one_nn["compared_with"] = "held-out test images (generalization; copies of training images look like fresh data)"
    # The memorization version: the same test against as many training images (Meehan et al.'s NN_test),
    # drawn with the seed; here copies of the training set score well below 0.5.
    rng = np.random.default_rng(seed)
    n_train = min(generated.shape[0], train.shape[0])
    train_sub = np.asarray(train)[np.sort(rng.choice(train.shape[0], size=n_train, replace=False))]
    one_nn_train = one_nn_two_sample(generated, train_sub, n_threads=n_threads, kernels=kernels)
    one_nn_train["compared_with"] = "a random training subsample (memorization; well below 0.5: copies)"

    def summary(d):
        q = np.quantile(d, [0.0, 0.01, 0.1, 0.5, 0.9])
        return {
            "mean": float(d.mean()),
            "min": float(q[0]),
            "q01": float(q[1]),
            "q10": float(q[2]),
            "median": float(q[3]),
            "q90": float(q[4]),
        }

    return {
        "n_generated": int(d_gen.size),
        "n_test": int(d_test.size),
        "generated_nn_distance": summary(d_gen),
        "test_nn_distance": summary(d_test),
        # Near-copies: generated samples closer to the training set than any fresh test image is.
        "n_generated_closer_than_any_test": int(np.sum(d_gen < d_test.min())),
        "data_copying": dc.to_dict(),
        "one_nn_two_sample": one_nn,
        "one_nn_two_sample_train": one_nn_train,
        "verdict": copying_verdict(dc.c_t, dc.z_global, weight_kept=dc.weight_kept),
        "_distances": (d_gen, d_test),
    }
