"""The networks of the semi-supervised GAN, as the authors' MNIST code builds them (openai/improved-gan,
``mnist_svhn_cifar10/train_mnist_feature_matching.py`` and its ``nn.py``; Salimans et al. 2016 §5.1:
"on MNIST ... 5 hidden layers ... weight normalization ... Gaussian noise to the output of each layer").

* D (:class:`Classifier`): x + N(0, 0.3²) → [weight-normalized dense → ReLU → + N(0, 0.5²)] for
  1000, 500, 250, 250, 250 units → weight-normalized dense to K = 10 logits. A hidden layer's weight
  scale g is set once by the data-dependent initialization and then held (their ``train_scale=False``);
  the output layer's is trained. The features G matches are the last hidden layer's ReLU outputs,
  before its noise.
* G (:class:`Generator`): z ~ U(0, 1)¹⁰⁰ → [dense (Glorot-uniform) → batch norm (no scale, a
  learned shift) → softplus] × 2 of 500 units → dense with weight normalization (trained scale) →
  sigmoid, 784 pixels. Batch norm always uses the batch's own statistics, in training and sampling
  alike, as their code draws every sample in training mode.

Weight normalization (Salimans & Kingma 2016): W = g ⊙ v / ‖v‖ per output unit. The data-dependent
initialization (:meth:`Classifier.initialize`) runs one batch of real images through D, noise on, and
sets each layer's g and b so that its pre-activations have mean 0 and standard deviation 1 on it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Classifier", "Generator", "WeightNormDense", "build_models"]


class WeightNormDense(nn.Module):
    """y = x·W + b with W[:, j] = g_j · v[:, j] / ‖v[:, j]‖; ``train_scale`` makes g a parameter."""

    def __init__(self, n_in: int, n_out: int, *, train_scale: bool, generator: torch.Generator):
        super().__init__()
        self.v = nn.Parameter(torch.randn(n_in, n_out, generator=generator) * 0.1)  # their Normal(0.1)
        self.b = nn.Parameter(torch.zeros(n_out))
        if train_scale:
            self.g = nn.Parameter(torch.ones(n_out))
        else:
            self.register_buffer("g", torch.ones(n_out))

    def weight(self) -> torch.Tensor:
        return self.v * (self.g / self.v.norm(dim=0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight() + self.b

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> torch.Tensor:
        """Set g ← g/s and b ← −m/s from the pre-activations' mean m and sd s on ``x``; return the
        pre-activations so normalized (what the layer now outputs for ``x``)."""
        pre = x @ self.weight()
        m = pre.mean(0)
        s = (pre - m).pow(2).mean(0).sqrt()
        self.g.div_(s)
        self.b.copy_(-m / s)
        return (pre - m) / s


class Classifier(nn.Module):
    """D: K logits and the last hidden layer's features; Gaussian noise when given a generator."""

    def __init__(
        self, n_in: int, hidden: list[int], n_classes: int, *, input_noise: float, hidden_noise: float, seed: int
    ):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        widths = [n_in, *hidden]
        self.hidden = nn.ModuleList(
            WeightNormDense(a, b, train_scale=False, generator=gen) for a, b in zip(widths[:-1], widths[1:])
        )
        self.out = WeightNormDense(widths[-1], n_classes, train_scale=True, generator=gen)
        self.input_noise, self.hidden_noise = input_noise, hidden_noise

    @staticmethod
    def _noisy(h: torch.Tensor, sd: float, noise: torch.Generator | None) -> torch.Tensor:
        if noise is None or sd == 0:
            return h
        return h + sd * torch.randn(h.shape, generator=noise, device=h.device, dtype=h.dtype)

    def forward(self, x: torch.Tensor, noise: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (n, K), features (n, hidden[-1])); ``noise=None`` is the deterministic test-time D."""
        h = self._noisy(x, self.input_noise, noise)
        features = h
        for layer in self.hidden:
            features = F.relu(layer(h))
            h = self._noisy(features, self.hidden_noise, noise)
        return self.out(h), features

    @torch.no_grad()
    def initialize(self, x: torch.Tensor, noise: torch.Generator | None) -> None:
        """Data-dependent initialization on the batch ``x``, layer by layer, noise on (as their code)."""
        h = self._noisy(x, self.input_noise, noise)
        for layer in self.hidden:
            h = self._noisy(F.relu(layer.initialize(h)), self.hidden_noise, noise)
        self.out.initialize(h)


class ShiftOnlyBatchNorm(nn.Module):
    """(x − batch mean)/√(batch var + 10⁻⁶) + b: their ``batch_norm(..., g=None)``, always batch statistics."""

    def __init__(self, n: int):
        super().__init__()
        self.b = nn.Parameter(torch.zeros(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centered = x - x.mean(0)
        return centered / torch.sqrt(centered.pow(2).mean(0) + 1e-6) + self.b


class Generator(nn.Module):
    """G: z (n, noise_dim) in U(0, 1) → pixels (n, n_out) in (0, 1)."""

    def __init__(self, noise_dim: int, hidden: list[int], n_out: int, *, seed: int):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)

        def glorot(a: int, b: int) -> torch.Tensor:
            bound = math.sqrt(6.0 / (a + b))
            return (torch.rand(a, b, generator=gen) * 2 - 1) * bound

        widths = [noise_dim, *hidden]
        self.weights = nn.ParameterList(nn.Parameter(glorot(a, b)) for a, b in zip(widths[:-1], widths[1:]))
        self.norms = nn.ModuleList(ShiftOnlyBatchNorm(b) for b in hidden)
        self.v_out = nn.Parameter(glorot(widths[-1], n_out))
        self.g_out = nn.Parameter(torch.ones(n_out))
        self.b_out = nn.Parameter(torch.zeros(n_out))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = z
        for w, bn in zip(self.weights, self.norms):
            h = F.softplus(bn(h @ w))
        w_out = self.v_out * (self.g_out / torch.sqrt(self.v_out.pow(2).sum(0) + 1e-6))
        return torch.sigmoid(h @ w_out + self.b_out)


def build_models(cfg, n_pixels: int, n_classes: int) -> tuple[Generator, Classifier]:
    """G and D initialized from ``cfg.seed`` alone (G from seed·2 + 1, D from seed·2 + 2)."""
    gen = Generator(cfg.noise_dim, list(cfg.g_hidden), n_pixels, seed=2 * cfg.seed + 1)
    disc = Classifier(
        n_pixels,
        list(cfg.d_hidden),
        n_classes,
        input_noise=cfg.input_noise,
        hidden_noise=cfg.hidden_noise,
        seed=2 * cfg.seed + 2,
    )
    return gen, disc
