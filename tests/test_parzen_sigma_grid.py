"""A bandwidth gets the same Parzen log-likelihood whether it is asked alone or inside a grid.

The paper's protocol (Goodfellow et al. 2014, Table 1) evaluates a grid of σ on validation data and
then the chosen σ alone on test data, so ``parzen_loglik(x, c, σ)`` and the same σ taken out of
``parzen_loglik(x, c, grid)`` must agree, and both must agree with the float64 reference.

float32 data on the [0, 1] pixel scale with d = 784 (like MNIST) is the hard case: the float32
distance tile is off by ~1e-4 in d², which at σ ≥ 0.36 is worth ~1e-4 nats per row unless the
dominant terms are re-measured in float64. The data are synthetic, so the test needs no dataset.
"""

import numpy as np
import pytest

import gancore
from gancore import _reference as ref

GRID = np.logspace(-1, 0, 10)  # the paper's bandwidth range, 0.1 to 1.0
TOL_NATS = 1e-6  # the README's promise for float32 inputs on [0, 1] data across this grid
D = 784


def clustered(rng, rows):
    """Ten 'digit' prototypes (20% of pixels on) plus noise, clipped to [0, 1]: clustered like MNIST."""
    protos = (np.random.default_rng(0).random((10, D)) < 0.2).astype(np.float64)
    noise = 0.5 * (rng.random((rows, D)) - 0.5)
    return np.clip(protos[rng.integers(0, 10, rows)] + noise, 0, 1).astype(np.float32)


def sparse(rng, rows):
    """80% zero pixels, the rest bright: the pixel statistics of MNIST without its structure."""
    on = rng.random((rows, D)) < 0.2
    return np.where(on, rng.random((rows, D)) ** 0.3, 0.0).astype(np.float32)


def uniform(rng, rows):
    """Uniform [0, 1) pixels: every centre at a similar distance, so wide σ have dense windows."""
    return rng.random((rows, D), dtype=np.float32)


def reference(x, c, sigmas):
    """The float64 NumPy twin, a few rows at a time (it holds an m × n × d array)."""
    c64 = c.astype(np.float64)
    return np.concatenate(
        [ref.parzen_loglik(x[i : i + 8].astype(np.float64), c64, sigmas) for i in range(0, len(x), 8)], axis=1
    )


@pytest.mark.parametrize("make", [clustered, sparse, uniform])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_one_sigma_alone_equals_the_same_sigma_in_the_grid(make, n_threads):
    rng = np.random.default_rng(7)
    x, c = make(rng, 40), make(rng, 400)
    grid = gancore.parzen_loglik(x, c, GRID, n_threads=n_threads)
    want = reference(x, c, GRID)
    assert grid.shape == want.shape == (len(GRID), len(x))
    for s, sigma in enumerate(GRID):
        alone = gancore.parzen_loglik(x, c, float(sigma), n_threads=n_threads)
        worst = {
            "alone vs grid": np.abs(alone - grid[s]).max(),
            "alone vs reference": np.abs(alone - want[s]).max(),
            "grid vs reference": np.abs(grid[s] - want[s]).max(),
        }
        assert max(worst.values()) <= TOL_NATS, f"σ={sigma:.4f}: " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items())


def test_a_sigma_does_not_depend_on_its_neighbours_in_the_grid():
    # The same σ beside narrower, wider or no other bandwidths: one value (to the tolerance).
    rng = np.random.default_rng(8)
    x, c = clustered(rng, 30), clustered(rng, 500)
    sigma = GRID[6]  # 0.46: the float32 tile error alone would be ~1e-4 nats here
    alone = gancore.parzen_loglik(x, c, sigma)
    for company in ([GRID[0], sigma], [sigma, GRID[-1]], [GRID[0], sigma, 3.0], list(GRID)):
        got = gancore.parzen_loglik(x, c, np.array(company))[company.index(sigma)]
        assert np.abs(got - alone).max() <= TOL_NATS, company
    np.testing.assert_allclose(alone, reference(x, c, np.array([sigma]))[0], rtol=0, atol=TOL_NATS)
