"""gancore — Generative Adversarial Nets (Goodfellow et al., 2014), reproduced, with a Rust core.

This is the public API and nothing else. Importing it needs only NumPy and the native module
``gancore._core``; PyTorch is imported by the training and evaluation modules, never here, so other
projects can use the evaluation kernels without it.

    gancore.parzen_loglik(x, centers, sigma)        # Table 1's Gaussian Parzen-window estimator
    gancore.nearest_neighbors(queries, reference)   # Figure 2's exact nearest training example
"""

from ._core import __version__  # the one version: [workspace.package] in Cargo.toml
from .neighbors import nearest_neighbors
from .parzen import parzen_loglik

__all__ = ["parzen_loglik", "nearest_neighbors", "__version__"]
