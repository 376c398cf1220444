"""Shared helpers for the evaluation tests (not a conftest: imported explicitly).

``parzen_ll_2014`` is a NumPy twin of the authors' ``parzen_ll.py`` (github goodfeli/adversarial):
Theano replaced by NumPy, the control flow kept — samples fixed, for each σ of
``logspace(sigma_start, sigma_end, cross_val)`` the mean validation LL, keep the best σ, then the
test mean and ``std / sqrt(N)`` (NumPy's ddof 0).
"""

from __future__ import annotations

import numpy as np


def _log_mean_exp(a):
    max_ = a.max(1)
    return max_ + np.log(np.exp(a - max_[:, None]).mean(1))


def _theano_parzen(mu, sigma):
    def f(x):
        a = (x[:, None, :] - mu[None, :, :]) / sigma
        e = _log_mean_exp(-0.5 * (a**2).sum(2))
        z = mu.shape[1] * np.log(sigma * np.sqrt(np.pi * 2))
        return e - z

    return f


def _get_nll(x, parzen, batch_size=10):
    inds = range(x.shape[0])
    n_batches = int(np.ceil(float(len(inds)) / batch_size))
    nlls = []
    for i in range(n_batches):
        nlls.extend(parzen(x[inds[i::n_batches]]))
    return np.array(nlls)


def parzen_ll_2014(samples, valid, test, *, sigma_start=-1.0, sigma_end=0.0, cross_val=10, limit_size=1000):
    """Return (mean, se, sigma) exactly as the 2014 script computes them."""
    samples = np.asarray(samples, np.float64)
    valid = np.asarray(valid, np.float64)[:limit_size]
    test = np.asarray(test, np.float64)
    sigma_range = np.logspace(sigma_start, sigma_end, num=cross_val)
    lls = []
    for sigma in sigma_range:
        parzen = _theano_parzen(samples, sigma)
        lls.append(np.asarray(_get_nll(valid, parzen)).mean())
    sigma = sigma_range[np.argmax(lls)]
    parzen = _theano_parzen(samples, sigma)
    ll = _get_nll(test, parzen)
    se = ll.std() / np.sqrt(test.shape[0])
    return float(ll.mean()), float(se), float(sigma)


def blobs(n, d=16, *, k=4, spread=0.04, seed=0):
    """n points in [0,1]^d from k tight Gaussian blobs (clipped), a cheap image-like stand-in."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(12345).uniform(0.2, 0.8, size=(k, d))
    lab = rng.integers(k, size=n)
    return np.clip(centers[lab] + spread * rng.standard_normal((n, d)), 0, 1).astype(np.float32)


class TinyGenerator:
    """Factory for a tiny torch generator z (n, noise_dim) → flat (n, d) in [0,1] (built lazily so
    importing this module does not import torch)."""

    @staticmethod
    def make(noise_dim=4, d=16, seed=0):
        import torch

        torch.manual_seed(seed)
        return torch.nn.Sequential(
            torch.nn.Linear(noise_dim, 32), torch.nn.ReLU(), torch.nn.Linear(32, d), torch.nn.Sigmoid()
        ).eval()
