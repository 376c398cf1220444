"""Metrics that ask the bundled classifier "which digit is this?" (plain NumPy; no torch here).

* **class histogram** of the predicted digits, the number of **digits covered** (a class counts when it
  gets at least 1% of the samples) and **KL(histogram ‖ uniform)** in nats: mode collapse in the
  sense of Goodfellow's tutorial §5.1.1 shows up as few digits covered and a large KL (log 10 = 2.303
  nats when every sample is one digit, 0 for a perfectly balanced set);
* the **classifier score** exp(E_x KL(p(y|x) ‖ p(y))), with p(y) the mean of p(y|x) over the samples: the
  Inception score of Salimans et al. (2016, §4) with the MNIST classifier in place of Inception, as
  TF-GAN's ``mnist_score``. It lies in [1, 10]: high when each sample is one confident digit and the
  digits are balanced;
* the **Fréchet distance** ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½) between Gaussians fitted to the
  classifier's penultimate features of two sets (Heusel et al., 2017, the FID, with the MNIST classifier
  as TF-GAN's ``mnist_frechet_distance``; the formula is Dowson & Landau, 1982).

:func:`mnist_class_report` puts them together for a set of samples and a reference set of real images.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "COVERAGE_THRESHOLD",
    "class_histogram",
    "classifier_score",
    "digits_covered",
    "frechet_distance",
    "gaussian_fit",
    "kl_to_uniform",
    "markdown_section",
    "mnist_class_report",
    "reference_stats",
    "sqrtm_trace",
]

COVERAGE_THRESHOLD = 0.01  # a class is covered when it gets at least this share of the samples


def class_histogram(labels, n_classes: int = 10) -> np.ndarray:
    """Counts of each class 0..n_classes-1 among integer ``labels`` (int64 (n_classes,))."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0 or y.dtype.kind not in "ui":
        raise ValueError(f"labels must be a non-empty 1-D integer array; got dtype {y.dtype}, shape {y.shape}")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}; got values in [{y.min()}, {y.max()}]")
    return np.bincount(y, minlength=n_classes).astype(np.int64)


def _shares(hist) -> np.ndarray:
    h = np.asarray(hist, dtype=np.float64)
    if h.ndim != 1 or h.size == 0 or not np.all(np.isfinite(h)) or np.any(h < 0) or h.sum() <= 0:
        raise ValueError(f"hist must be a 1-D array of non-negative counts with a positive sum; got {hist!r}")
    return h / h.sum()


def digits_covered(hist, threshold: float = COVERAGE_THRESHOLD) -> int:
    """How many classes get at least ``threshold`` of the samples."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1]; got {threshold!r}")
    return int(np.sum(_shares(hist) >= threshold))


def kl_to_uniform(hist) -> float:
    """KL(p ‖ uniform) = Σ_k p_k log(K p_k) in nats, with 0 log 0 = 0; 0 for a balanced histogram."""
    p = _shares(hist)
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p.size * p[nz])))


def classifier_score(probs) -> float:
    """exp(mean_i KL(p(y|x_i) ‖ p(y))), p(y) = mean_i p(y|x_i) (Salimans et al., 2016, §4), in [1, K].

    ``probs`` (n, K): rows of class probabilities (non-negative, summing to 1 within 1e-6)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"probs must be a non-empty 2-D array (n, classes); got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-6):
        raise ValueError("probs must hold finite non-negative rows that sum to 1")
    marginal = p.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(marginal)), 0.0)  # p > 0 implies marginal > 0
    return float(np.exp(terms.sum(axis=1).mean()))


def gaussian_fit(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (ddof 1, as the FID reference code) of feature rows (n ≥ 2, k)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2 or not np.all(np.isfinite(f)):
        raise ValueError(f"features must be a finite 2-D array with at least 2 rows; got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False, ddof=1).reshape(f.shape[1], f.shape[1])


def _sym_sqrt(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def sqrtm_trace(cov1: np.ndarray, cov2: np.ndarray) -> float:
    """tr((Σ₁Σ₂)^½) for symmetric positive semi-definite Σ₁, Σ₂, without a general matrix square root.

    Σ₁Σ₂ is similar to the symmetric PSD matrix Σ₁^½ Σ₂ Σ₁^½ (conjugate by Σ₁^½), so both have the same
    non-negative eigenvalues λ and tr((Σ₁Σ₂)^½) = Σ √λ: two symmetric eigendecompositions."""
    s1 = _sym_sqrt(cov1)
    m = s1 @ cov2 @ s1
    return float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None))))


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Fréchet (2-Wasserstein²) distance between N(μ₁, Σ₁) and N(μ₂, Σ₂):
    ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr((Σ₁Σ₂)^½)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    k = mu1.shape[0] if mu1.ndim == 1 else -1
    if mu2.shape != (k,) or cov1.shape != (k, k) or cov2.shape != (k, k):
        raise ValueError(
            "means must be (k,) and covariances (k, k) of one k; "
            f"got {mu1.shape}, {cov1.shape}, {mu2.shape}, {cov2.shape}"
        )
    d = float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * sqrtm_trace(cov1, cov2))
    return max(d, 0.0)  # rounding can leave −1e-12 for identical inputs


def _set_summary(probs: np.ndarray) -> dict:
    hist = class_histogram(np.argmax(probs, axis=1).astype(np.int64))
    return {
        "n": int(probs.shape[0]),
        "histogram": [int(c) for c in hist],
        "digits_covered": digits_covered(hist),
        "kl_to_uniform": kl_to_uniform(hist),
        "classifier_score": classifier_score(probs),
    }


def reference_stats(test, real=None, *, device="cpu") -> dict:
    """The real-data side of :func:`mnist_class_report`: the summary of ``test`` (the images the Fréchet
    distance is measured to) and its Gaussian fit, plus the distance of ``real`` — other real images, as
    many as the samples — to ``test``: what a perfect generator would score with that many samples (the
    Fréchet distance of finite sets is biased upwards, more so for small n). JSON-ready: it is cached."""
    from .classifier import probabilities_and_features

    test_probs, test_feats = probabilities_and_features(test, device=device)
    mu, cov = gaussian_fit(test_feats)
    summary = _set_summary(test_probs)
    summary["frechet_distance"] = None
    if real is not None:
        summary["frechet_distance"] = frechet_distance(
            *gaussian_fit(probabilities_and_features(real, device=device)[1]), mu, cov
        )
        summary["frechet_n"] = int(np.asarray(real).shape[0])
    return {"summary": summary, "mu": mu.tolist(), "cov": cov.tolist()}


def mnist_class_report(samples, test=None, real=None, *, reference: dict | None = None, device="cpu") -> dict:
    """The classifier metrics of ``samples`` beside those of real data.

    Give ``test`` (and optionally ``real``) as in :func:`reference_stats`, or its result as ``reference``.
    Returns {"samples": {...}, "reference": {...}}: n, histogram, digits_covered, kl_to_uniform,
    classifier_score and frechet_distance (to ``test``), for the samples and for the real images
    (the score and histogram of ``test``; the distance of ``real`` to ``test``, None without ``real``)."""
    from .classifier import probabilities_and_features

    if reference is None:
        if test is None:
            raise ValueError("mnist_class_report needs the test images or their reference statistics")
        reference = reference_stats(test, real, device=device)
    probs, feats = probabilities_and_features(samples, device=device)
    out = _set_summary(probs)
    out["frechet_distance"] = frechet_distance(
        *gaussian_fit(feats), np.asarray(reference["mu"]), np.asarray(reference["cov"])
    )
    out["frechet_n"] = out["n"]
    return {"samples": out, "reference": reference["summary"]}


def markdown_section(c: dict) -> list[str]:
    """The report.md lines for the "classifier" entry of report.json."""
    out = ["## Classifier metrics (the bundled MNIST classifier)", ""]
    if "skipped" in c:
        return out + [f"Not computed: {c['skipped']}", ""]
    s, r = c["samples"], c["reference"]
    fd_real = "n/a" if r.get("frechet_distance") is None else f"{r['frechet_distance']:.3f}"
    out += [
        "| set | n | digits covered (≥ 1 %) | KL(histogram ‖ uniform) | classifier score | Fréchet distance to test |",
        "|---|---|---|---|---|---|",
        f"| **generator samples** | {s['n']} | {s['digits_covered']} | {s['kl_to_uniform']:.4f} | "
        f"{s['classifier_score']:.3f} | {s['frechet_distance']:.3f} |",
        f"| real: test images (distance: {r.get('frechet_n', 'n/a')} validation images) | {r['n']} | "
        f"{r['digits_covered']} | {r['kl_to_uniform']:.4f} | {r['classifier_score']:.3f} | {fd_real} |",
        "",
        "Predicted digits of the samples (0–9): " + ", ".join(str(v) for v in s["histogram"]) + ".",
        "Classifier score: exp(E KL(p(y|x) ‖ p(y))), 1..10, higher is better (Salimans et al. 2016); Fréchet distance "
        "of Gaussian fits of the 64 penultimate features (Heusel et al. 2017), lower is better; mode collapse shows as "
        "few digits covered and a KL far above the real row's (log 10 = 2.30 for one digit).",
        "",
    ]
    return out
