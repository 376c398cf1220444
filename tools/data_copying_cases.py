"""C_T and global Z_U of the data-copying test on constructed MNIST cases, in both Z_U conventions.

    python tools/data_copying_cases.py        # about 2 minutes on 2 cores

2,000 "generated" rows against 2,000 random test images, 50 k-means cells of MNIST train[0:50000]:
training images (a generator that copies), validation images (fresh data), and training images plus
N(0, 0.3²) pixel noise clipped to [0, 1] (under-fitting). The README quotes what this prints.
"""

import numpy as np

from gancore.data import load_split
from gancore.evaluate.memorization import data_copying_test

train = load_split("mnist", "train")
valid = load_split("mnist", "valid")
test = load_split("mnist", "test")
rng = np.random.default_rng(0)
t = test[np.sort(rng.choice(test.shape[0], 2000, replace=False))]
cases = {
    "training images": train[np.sort(rng.choice(train.shape[0], 2000, replace=False))],
    "validation images": valid[:2000],
    "training + N(0, 0.3²)": np.clip(train[:2000] + rng.normal(0, 0.3, (2000, 784)).astype(np.float32), 0, 1),
}
for name, g in cases.items():
    for conv in ("authors", "tie-corrected"):
        r = data_copying_test(g, t, train, n_cells=50, seed=0, convention=conv)
        print(f"{name:24s} {conv:14s} C_T = {r.c_t:+.2f}  global Z_U = {r.z_global:+.1f}", flush=True)
