"""A σ asked for alone against the same σ inside the paper's grid, and both against float64.

    python tools/parzen_sigma_check.py      # MNIST test[:300] x train[:2000], float32; about a minute

The README quotes what this prints (float32 Parzen accuracy across logspace(-1, 0, 10)).
"""

import numpy as np

import gancore
from gancore import _reference as ref
from gancore.data import load_split

x = load_split("mnist", "test")[:300]
c = load_split("mnist", "train")[:2000]
grid = np.logspace(-1, 0, 10)
in_grid = gancore.parzen_loglik(x, c, grid, n_threads=1)
alone = np.stack([gancore.parzen_loglik(x, c, float(s), n_threads=1) for s in grid])
f64 = np.concatenate(
    [ref.parzen_loglik(x[i : i + 10].astype(np.float64), c.astype(np.float64), grid) for i in range(0, 300, 10)], axis=1
)
print("max |alone - grid| =", np.abs(alone - in_grid).max(), " bit-identical:", np.array_equal(alone, in_grid))
print("max |grid - float64| =", np.abs(in_grid - f64).max(), " max |alone - float64| =", np.abs(alone - f64).max())
