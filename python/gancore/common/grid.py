"""The one image-grid renderer: training's sample grids and the paper's Figures 2 and 3.

    save_grid("samples/epoch_0001.png", samples, (1, 28, 28), rows=10, cols=10)   # training
    image_grid(to_uint8(samples, (1, 28, 28)), 4, 6, frames={5: YELLOW})          # Figure 2

Images are flat rows on the [0, 1] scale with an ``image_shape`` (C, H, W), channel-major as
``gancore.data`` returns them (the generator contract). Pillow draws the PNG, imported inside the
functions, so importing this module is cheap; files are written through :mod:`gancore.common.atomic`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._checks import as_matrix
from .atomic import atomic_path

__all__ = [
    "GREY",
    "WHITE",
    "YELLOW",
    "check_image_shape",
    "image_grid",
    "pyplot",
    "save_grid",
    "save_plot",
    "save_png",
    "to_uint8",
]

YELLOW = (255, 221, 0)  # the frame of Figure 2's nearest-training column
WHITE = (255, 255, 255)
GREY = (128, 128, 128)


def check_image_shape(image_shape, d: int) -> tuple[int, int, int]:
    """``image_shape`` as (C, H, W) with C 1 or 3 and C·H·W = ``d``, or a ``ValueError`` saying why."""
    try:
        c, h, w = (int(v) for v in image_shape)
    except (TypeError, ValueError):
        raise ValueError(f"image_shape must be (C, H, W); got {image_shape!r}") from None
    if c not in (1, 3) or h < 1 or w < 1:
        raise ValueError(f"image_shape must be (C, H, W) with C 1 or 3; got {image_shape!r}")
    if c * h * w != d:
        raise ValueError(f"image_shape {tuple(image_shape)} holds {c * h * w} values but the rows have {d}")
    return c, h, w


def to_uint8(flat, image_shape) -> np.ndarray:
    """Flat rows on [0, 1] → (N, H, W, 3) uint8 RGB (grey images repeated over the channels).

    Values are clipped to [0, 1]; NaN pixels (a diverging run's last samples) are drawn black rather
    than warning in the cast.
    """
    flat = np.asarray(flat)
    if flat.dtype.kind == "f" and np.isnan(flat).any():
        flat = np.nan_to_num(flat, nan=0.0)
    flat = as_matrix(flat, "images")
    c, h, w = check_image_shape(image_shape, flat.shape[1])
    img = np.clip(flat, 0.0, 1.0).reshape(-1, c, h, w).transpose(0, 2, 3, 1)
    if c == 1:
        img = np.repeat(img, 3, axis=3)
    return np.round(img * 255.0).astype(np.uint8)


def image_grid(
    images: np.ndarray,
    rows: int,
    cols: int,
    *,
    pad: int = 2,
    scale: int = 3,
    frames=None,
    frame_width: int = 2,
    background=WHITE,
):
    """Tile (rows·cols, H, W, 3) uint8 images into a Pillow image, row-major.

    Every cell has ``pad`` pixels of ``background`` around it. ``frames`` maps a cell index to an RGB
    color drawn as a ``frame_width``-pixel border inside that padding (the yellow frame of Figure 2).
    Images are enlarged ``scale`` times by pixel repetition, so nothing is smoothed.
    """
    from PIL import Image

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W, 3); got {images.dtype} {images.shape}")
    if rows < 1 or cols < 1 or images.shape[0] > rows * cols:
        raise ValueError(f"rows × cols ({rows} × {cols}) must hold all {images.shape[0]} images")
    if scale < 1 or pad < 0:
        raise ValueError(f"scale must be >= 1 and pad >= 0; got scale={scale}, pad={pad}")
    frames = frames or {}
    pad = max(pad, frame_width if frames else 0)
    h, w = images.shape[1] * scale, images.shape[2] * scale
    canvas = np.empty((rows * (h + 2 * pad), cols * (w + 2 * pad), 3), np.uint8)
    canvas[:] = np.asarray(background, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        y, x = r * (h + 2 * pad) + pad, c * (w + 2 * pad) + pad
        canvas[y : y + h, x : x + w] = np.kron(im, np.ones((scale, scale, 1), np.uint8))
        if i in frames:
            col = np.asarray(frames[i], np.uint8)
            fw = frame_width
            canvas[y - fw : y, x - fw : x + w + fw] = col
            canvas[y + h : y + h + fw, x - fw : x + w + fw] = col
            canvas[y - fw : y + h + fw, x - fw : x] = col
            canvas[y - fw : y + h + fw, x + w : x + w + fw] = col
    return Image.fromarray(canvas)


def save_png(image, path) -> Path:
    """Write a Pillow image as a PNG, all or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def save_grid(path, samples: np.ndarray, image_shape, rows: int, cols: int, scale: int | None = None) -> Path:
    """Training's sample grid: the first ``rows``·``cols`` samples on a grey background, enlarged ×2
    for images of 32 pixels or less so that a grid is legible."""
    n = rows * cols
    if samples.shape[0] < n:
        raise ValueError(f"a {rows}x{cols} grid needs {n} samples; got {samples.shape[0]}")
    scale = scale if scale is not None else (2 if image_shape[1] <= 32 else 1)
    grid = image_grid(to_uint8(samples[:n], image_shape), rows, cols, pad=1, scale=scale, background=GREY)
    return save_png(grid, path)


def pyplot():
    """matplotlib's pyplot on the Agg backend: files only, never a display."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_plot(fig, path, *, dpi: int = 110) -> Path:
    """Write a matplotlib figure as a PNG, all or nothing, and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return path
