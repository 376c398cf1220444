"""Sample grids as PNG files, with NumPy and Pillow only (no torchvision).

    save_grid("samples/epoch_0001.png", samples, (1, 28, 28), rows=10, cols=10)

``samples`` is a flat (n, C*H*W) array in [0, 1] (the generator contract); images are placed row by
row with a 2-pixel grey border, and each is upscaled ×2 for small images so a grid is legible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_grid(samples: np.ndarray, image_shape, rows: int, cols: int, pad: int = 2) -> np.ndarray:
    """Tile ``rows*cols`` flat images into one uint8 array (H', W') or (H', W', 3)."""
    c, h, w = image_shape
    n = rows * cols
    if samples.shape[0] < n:
        raise ValueError(f"a {rows}x{cols} grid needs {n} samples; got {samples.shape[0]}")
    # NaN pixels (a diverging run's last grid) are drawn black instead of warning in the uint8 cast.
    imgs = np.clip(np.nan_to_num(np.asarray(samples[:n], dtype=np.float32), nan=0.0), 0.0, 1.0).reshape(n, c, h, w)
    imgs = (imgs * 255.0 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)  # (n, H, W, C)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 128, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        grid[y : y + h, x : x + w] = imgs[i]
    return grid[..., 0] if c == 1 else grid


def save_grid(path, samples: np.ndarray, image_shape, rows: int, cols: int, scale: int | None = None) -> Path:
    """Write the grid as a PNG (atomically enough for a picture: temp name, then rename)."""
    from PIL import Image

    grid = make_grid(samples, image_shape, rows, cols)
    img = Image.fromarray(grid)
    scale = scale if scale is not None else (2 if image_shape[1] <= 32 else 1)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    img.save(tmp, format="PNG")
    tmp.replace(path)
    return path
