"""gancore — Generative Adversarial Nets (Goodfellow et al., 2014), reproduced, with a Rust core.

This is the public API and nothing else. Importing it needs only NumPy and the native module
``gancore._core``; PyTorch is imported by the training and evaluation modules, never here, so other
projects can use the evaluation kernels without it.

    gancore.parzen_loglik(x, centers, sigma)        # Table 1's Gaussian Parzen-window estimator
    gancore.nearest_neighbors(queries, reference)   # Figure 2's exact nearest training example
"""

from .neighbours import nearest_neighbors
from .parzen import parzen_loglik

__version__ = "0.1.0"
__all__ = ["parzen_loglik", "nearest_neighbors", "__version__"]
