"""Figures 2 and 3 of Goodfellow et al. (2014), and the evaluation plots, as PNG files.

* **Figure 2** — "Visualization of samples from the model. Rightmost column shows the nearest training
  example of the neighboring sample, in order to demonstrate that the model has not memorized the
  training set. Samples are fair random draws, not cherry-picked." :func:`figure2` draws a 4 × 6 grid:
  five samples per row, then the nearest training image (squared Euclidean distance in raw pixel
  space, exact search by the Rust kernel) of the fifth, framed in yellow as in the paper.
  :func:`nn_pairs_panel` pairs 50 samples with their nearest training images and prints distances.
* **Figure 3** — "Digits obtained by linearly interpolating between coordinates in z space of the full
  model." :func:`figure3` (slerp offered for Gaussian priors, where linear paths pass through the
  low-density center of the prior).
* :func:`distance_histograms` (memorization) and :func:`sigma_curve` (Table 1's σ selection).

Image grids use Pillow; plots use matplotlib with the Agg backend. Both are imported inside the
functions, so importing this module is cheap. All images are flat rows on the [0, 1] scale with an
``image_shape`` (C, H, W), channel-major as ``gancore.data`` returns them.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from .._checks import as_int, as_matrix
from ..common.grid import YELLOW, image_grid, pyplot, save_plot, save_png, to_uint8
from ..common.grid import check_image_shape as _check_shape
from ..neighbors import nearest_neighbors

__all__ = [
    "distance_histograms",
    "figure2",
    "figure3",
    "image_grid",
    "interpolate_z",
    "nn_pairs_panel",
    "sigma_curve",
    "to_uint8",
]

logger = logging.getLogger(__name__)


def figure2(
    samples, train, image_shape, path, *, rows: int = 4, cols: int = 6, scale: int = 3, n_threads: int = 0
) -> dict:
    """Figure 2: ``rows`` × (``cols`` − 1) samples, the last column the nearest training image of
    the sample beside it, framed in yellow. Uses the *first* rows·(cols−1) samples, so the figure is
    a fair draw whenever ``samples`` are (evaluate.py draws them with a recorded seed).

    Returns the sample indices shown, the nearest-training indices and squared distances.
    """
    samples = as_matrix(samples, "samples")
    train = as_matrix(train, "train")
    _check_shape(image_shape, samples.shape[1])
    if cols < 2 or rows < 1:
        raise ValueError(f"figure2 needs rows >= 1 and cols >= 2; got rows={rows}, cols={cols}")
    per_row = cols - 1
    need = rows * per_row
    if samples.shape[0] < need:
        raise ValueError(f"samples must have at least rows·(cols−1) = {need} rows; got {samples.shape[0]}")
    last = np.arange(rows) * per_row + per_row - 1  # the sample next to the framed column
    idx, d2 = nearest_neighbors(samples[last], train, 1, n_threads=n_threads)
    cells = []
    for r in range(rows):
        cells.extend(range(r * per_row, (r + 1) * per_row))
        cells.append(-1 - r)  # placeholder for row r's nearest training image
    rows_img = [samples[i] if i >= 0 else train[idx[-1 - i, 0]] for i in cells]
    tiles = to_uint8(np.stack(rows_img), image_shape)
    frames = {r * cols + cols - 1: YELLOW for r in range(rows)}
    save_png(image_grid(tiles, rows, cols, scale=scale, frames=frames), path)
    logger.info("wrote %s", path)
    return {
        "path": os.fspath(path),
        "sample_indices": last.tolist(),
        "nearest_train_indices": idx[:, 0].tolist(),
        "sq_distances": d2[:, 0].tolist(),
    }


def nn_pairs_panel(
    samples,
    train,
    image_shape,
    path,
    *,
    n_pairs: int = 50,
    pairs_per_row: int = 5,
    scale: int = 3,
    n_threads: int = 0,
) -> dict:
    """A larger Figure 2: ``n_pairs`` samples, each beside its nearest training image (framed in
    yellow), with the Euclidean distance printed above each pair."""
    samples = as_matrix(samples, "samples")
    train = as_matrix(train, "train")
    _check_shape(image_shape, samples.shape[1])
    n = min(int(n_pairs), samples.shape[0])
    if n < 1:
        raise ValueError(f"n_pairs must be >= 1 and samples non-empty; got n_pairs={n_pairs}")
    per_row = as_int(pairs_per_row, "pairs_per_row", low=1)
    idx, d2 = nearest_neighbors(samples[:n], train, 1, n_threads=n_threads)
    dist = np.sqrt(d2[:, 0])
    # Sample i, then its neighbor: (n, 2, H, W, 3) read row-major as 2n tiles.
    pairs = np.stack([to_uint8(samples[:n], image_shape), to_uint8(train[idx[:, 0]], image_shape)], axis=1)
    tiles = pairs.reshape(2 * n, *pairs.shape[2:])
    # One Pillow image rather than 2·n matplotlib axes: with 100 axes, layout and drawing took
    # about 5 s of every evaluation on a 2-core machine; this takes a few milliseconds.
    labels = [f"d={d:.2f}" for d in dist]
    panel = _labelled_pair_rows(tiles, labels, per_row, scale)
    save_png(panel, path)
    logger.info("wrote %s", path)
    return {"path": os.fspath(path), "nearest_train_indices": idx[:, 0].tolist(), "distances": dist.tolist()}


def _labelled_pair_rows(tiles: np.ndarray, labels: list[str], per_row: int, scale: int):
    """Rows of (sample, framed neighbor) pairs, a text strip above each row with the pairs' labels,
    and a title line on top."""
    from PIL import Image, ImageDraw

    n = len(labels)
    n_rows = -(-n // per_row)
    cols = 2 * per_row
    row_images = [
        image_grid(
            tiles[2 * r * per_row : 2 * min(n, (r + 1) * per_row)],
            1,
            cols,
            scale=scale,
            frames={c: YELLOW for c in range(1, cols, 2)},
        )
        for r in range(n_rows)
    ]
    strip, title = 12, 16  # pixels of text above each row and above the panel
    width = row_images[0].width
    cell = width // cols
    canvas = Image.new("RGB", (width, title + n_rows * (strip + row_images[0].height)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((4, 2), "sample (left) | nearest training image (right, yellow); d = L2 pixel distance", fill=(0, 0, 0))
    for r, img in enumerate(row_images):
        y = title + r * (strip + img.height)
        canvas.paste(img, (0, y + strip))
        for c in range(min(per_row, n - r * per_row)):
            draw.text((2 * c * cell + 2, y), labels[r * per_row + c], fill=(0, 0, 0))
    return canvas


def interpolate_z(z0, z1, steps: int, *, method: str = "linear") -> np.ndarray:
    """Points from z0 to z1 (both (n, k)): (n, steps, k). ``linear`` is the paper's Figure 3;
    ``slerp`` follows the great circle (Shoemake 1985; White 2016, "Sampling generative networks"),
    keeping the norm typical of a Gaussian prior all along the path."""
    z0 = np.asarray(z0, np.float64)
    z1 = np.asarray(z1, np.float64)
    if z0.shape != z1.shape or z0.ndim != 2:
        raise ValueError(f"z0 and z1 must be 2-D arrays of the same shape; got {z0.shape} and {z1.shape}")
    steps = as_int(steps, "steps", low=2)
    t = np.linspace(0.0, 1.0, int(steps))[None, :, None]
    if method == "linear":
        return (1 - t) * z0[:, None, :] + t * z1[:, None, :]
    if method != "slerp":
        raise ValueError(f"method must be 'linear' or 'slerp'; got {method!r}")
    n0 = np.linalg.norm(z0, axis=1, keepdims=True)
    n1 = np.linalg.norm(z1, axis=1, keepdims=True)
    cos = np.clip(np.sum(z0 * z1, axis=1, keepdims=True) / np.maximum(n0 * n1, 1e-300), -1.0, 1.0)
    omega = np.arccos(cos)[:, None, :]  # (n, 1, 1)
    so = np.sin(omega)
    small = so < 1e-8  # nearly parallel: slerp degenerates to lerp
    a = np.where(small, 1 - t, np.sin((1 - t) * omega) / np.where(small, 1, so))
    b = np.where(small, t, np.sin(t * omega) / np.where(small, 1, so))
    return a * z0[:, None, :] + b * z1[:, None, :]


def figure3(
    generator,
    z0,
    z1,
    image_shape,
    path,
    *,
    steps: int = 10,
    method: str = "linear",
    scale: int = 3,
    device: str = "cpu",
) -> dict:
    """Figure 3: each row decodes ``steps`` points interpolated between a pair of noise vectors.

    ``generator`` is a torch module mapping (n, noise_dim) → flat (n, D) on [0, 1].
    """
    import torch

    path_z = interpolate_z(z0, z1, steps, method=method)  # (rows, steps, k)
    rows, _, k = path_z.shape
    with torch.no_grad():
        flat = torch.as_tensor(path_z.reshape(-1, k), dtype=torch.float32, device=device)
        x = generator(flat).detach().to("cpu", torch.float32).numpy()  # (rows·steps, D)
    save_png(image_grid(to_uint8(x, image_shape), rows, steps, scale=scale), path)
    logger.info("wrote %s", path)
    return {"path": os.fspath(path), "rows": int(rows), "steps": int(steps), "method": method}


def distance_histograms(generated_d, test_d, path, *, title: str = "") -> dict:
    """Histograms of nearest-training distances of generated samples and of held-out test images,
    on shared bins. Copying shows as generated mass piled up left of the test histogram."""
    g = np.asarray(generated_d, np.float64).ravel()
    t = np.asarray(test_d, np.float64).ravel()
    if g.size == 0 or t.size == 0:
        raise ValueError("generated_d and test_d must be non-empty")
    plt = pyplot()
    hi = float(max(g.max(), t.max()))
    bins = np.linspace(0.0, hi * 1.02 if hi > 0 else 1.0, 50)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.hist(t, bins=bins, alpha=0.55, density=True, label=f"held-out test images (n={t.size})", color="C0")
    ax.hist(g, bins=bins, alpha=0.55, density=True, label=f"generated samples (n={g.size})", color="C1")
    ax.axvline(np.median(t), color="C0", ls="--", lw=1)
    ax.axvline(np.median(g), color="C1", ls="--", lw=1)
    ax.set_xlabel("Euclidean distance to the nearest training image (pixel space)")
    ax.set_ylabel("density")
    ax.set_title(title or "Nearest-training-image distances (dashed: medians)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_plot(fig, path)
    logger.info("wrote %s", path)
    return {"path": os.fspath(path)}


def sigma_curve(curves: dict, path) -> dict:
    """Mean validation log-likelihood against σ (log axis) for each labelled ParzenResult, the chosen
    σ marked: shows whether the optimum is inside the grid."""
    if not curves:
        raise ValueError("curves must map at least one label to a ParzenResult")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, (label, r) in enumerate(curves.items()):
        ax.plot(r.sigmas, r.valid_ll, marker=".", ms=3, color=f"C{i}", label=f"{label} (σ*={r.sigma:.3g})")
        ax.axvline(r.sigma, color=f"C{i}", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("σ")
    ax.set_ylabel("mean validation log-likelihood (nats)")
    lows = [min(v for v in r.valid_ll) for r in curves.values()]
    highs = [max(r.valid_ll) for r in curves.values()]
    span = max(highs) - min(lows)
    # The curve plunges for small σ (−256,075 nats at σ = 0.01); keep the optimum region readable.
    ax.set_ylim(max(min(lows), max(highs) - max(span, 1.0) * 0.6 - 50), max(highs) + 0.05 * max(span, 1.0))
    ax.legend(fontsize=8)
    ax.set_title("Parzen σ selection on the validation set", fontsize=9)
    fig.tight_layout()
    save_plot(fig, path)
    logger.info("wrote %s", path)
    return {"path": os.fspath(path)}
