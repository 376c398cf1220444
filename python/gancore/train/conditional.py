"""Conditional adversarial nets p(x | y) (Goodfellow et al. 2014, §7 item 1; Mirza & Osindero 2014,
"Conditional Generative Adversarial Nets", arXiv 1411.1784): the class label y, one-hot, is an extra
input of both players, and the game becomes

    min_G max_D  E_x[log D(x | y)] + E_z[log(1 − D(G(z | y) | y))].

Two ways to feed y, both keeping the contracts of :mod:`gancore.train.models` (G maps (z, y) to a flat
[0, 1] batch, D maps (x, y) to logits, ``D(x, y) = D.head(D.features(x, y))``):

* ``--conditional`` with ``--arch mlp`` or ``dcgan``: y is concatenated to z at G's input, and to D's
  input — after the input-pixel dropout for the MLP (a label is not noisy data), as constant feature
  maps beside the image channels for the DCGAN;
* ``--arch cgan_2014`` (the ``mnist_cgan_2014`` preset): Mirza & Osindero's MNIST nets of their §4.1,
  where z and y first go through separate layers and are joined in a hidden layer:

  - G: z → ReLU 200 and y → ReLU 1000, concatenated → ReLU ``g_hidden`` (1200) → sigmoid 784;
  - D: x → maxout 240 × 5 and y → maxout 50 × 5, concatenated → maxout ``d_hidden`` (240) ×
    ``d_pieces`` (4) → sigmoid 1.

  Their text says "dropout with probability of 0.5 was applied to both the generator and
  discriminator" but not where; here it acts on the inputs of every layer after the branches (the
  joined layers and the output layer) in both nets, with keep-probabilities ``g_hidden_keep`` and
  ``d_hidden_keep``, and D's input pixels keep the 2014 ``mnist.yaml``'s 0.8 (``d_input_keep``).
  Neither y branch gets dropout.

Labels for the fake half of a minibatch are the labels of the real half (the empirical class
distribution, and no extra random numbers, so unconditional runs draw exactly what they always drew).
"""

from __future__ import annotations

import torch
from torch import nn

from .config import N_CLASSES
from .models import (
    DCGANDiscriminator,
    DCGANGenerator,
    Maxout,
    MaxoutDiscriminator,
    MLPGenerator,
    dropout,
)

# Mirza & Osindero (2014) §4.1: the branch layers before the joined ones.
CGAN_G_NOISE_UNITS = 200  # "z and y are mapped to hidden layers with ReLu ... sizes 200 and 1000"
CGAN_G_LABEL_UNITS = 1000
CGAN_D_X_UNITS, CGAN_D_X_PIECES = 240, 5  # "maps x to a maxout layer with 240 units and 5 pieces"
CGAN_D_Y_UNITS, CGAN_D_Y_PIECES = 50, 5  # "and y to a maxout layer with 50 units and 5 pieces"


def one_hot(labels: torch.Tensor, n_classes: int, dtype=torch.float32) -> torch.Tensor:
    """(n,) integer labels in [0, n_classes) → (n, n_classes) one-hot rows."""
    labels = torch.as_tensor(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D; got shape {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(
            f"labels must be in [0, {n_classes}); got values in [{int(labels.min())}, {int(labels.max())}]"
        )
    return nn.functional.one_hot(labels.long(), n_classes).to(dtype)


def _check_y(y, n: int, n_classes: int) -> None:
    if y is None:
        raise ValueError("a conditional model needs the one-hot labels y (n, n_classes)")
    if y.ndim != 2 or y.shape[0] != n or y.shape[1] != n_classes:
        raise ValueError(f"y must have shape ({n}, {n_classes}); got {tuple(y.shape)}")


class ConcatGenerator(nn.Module):
    """G(z, y) = base([z, y]): any generator of :mod:`.models` built for ``noise_dim + n_classes`` inputs."""

    def __init__(self, base: nn.Module, noise_dim: int, n_classes: int):
        super().__init__()
        self.base, self.noise_dim, self.n_classes = base, noise_dim, n_classes

    @property
    def output_layer(self) -> nn.Linear:
        return self.base.output_layer

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        _check_y(y, z.shape[0], self.n_classes)
        return self.base(torch.cat([z, y.to(z.dtype)], dim=1))  # (n, noise_dim + K) -> (n, D)


class ConcatMaxoutDiscriminator(MaxoutDiscriminator):
    """The paper's maxout D whose first layer reads [dropout(x), y] (n, D + K)."""

    def __init__(self, in_features: int, n_classes: int, *args, **kwargs):
        super().__init__(in_features + n_classes, *args, **kwargs)
        self.n_classes = n_classes

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        _check_y(y, x.shape[0], self.n_classes)
        drop = self.training
        x = dropout(x, self.keep[0], self.generator, self.shard) if drop else x
        h = torch.cat([x, y.to(x.dtype)], dim=1)  # (n, D + K)
        for i, layer in enumerate(self.hidden):
            h = layer(dropout(h, self.keep[i], self.generator, self.shard) if drop and i > 0 else h)
        return h  # (n, units)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, y))


class ConcatDCGANDiscriminator(DCGANDiscriminator):
    """The DCGAN D reading the image and K constant maps y_k (one per class) as C + K input channels."""

    def __init__(self, image_shape, n_classes: int, *args, **kwargs):
        c, h, w = image_shape
        super().__init__([c + n_classes, h, w], *args, **kwargs)
        self.image, self.n_classes = (c, h, w), n_classes

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        _check_y(y, x.shape[0], self.n_classes)
        n, (_, h, w) = x.shape[0], self.image
        img = x.view(n, *self.image).mul(2.0).sub(1.0)  # (n, C, H, W) in [-1, 1]
        maps = y.to(img.dtype)[:, :, None, None].expand(n, self.n_classes, h, w)  # (n, K, H, W)
        return self.net(torch.cat([img, maps], dim=1)).flatten(1)  # (n, C'·s·s)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, y))


class CGAN2014Generator(nn.Module):
    """Mirza & Osindero's MNIST G: z → ReLU 200, y → ReLU 1000, joined → ReLU ``hidden`` → sigmoid."""

    def __init__(self, noise_dim: int, n_classes: int, hidden: list[int], out_features: int, hidden_keep: float):
        super().__init__()
        self.noise_dim, self.n_classes, self.hidden_keep = noise_dim, n_classes, hidden_keep
        self.z_branch = nn.Linear(noise_dim, CGAN_G_NOISE_UNITS)
        self.y_branch = nn.Linear(n_classes, CGAN_G_LABEL_UNITS)
        widths = [CGAN_G_NOISE_UNITS + CGAN_G_LABEL_UNITS, *hidden]
        self.joint = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = nn.Linear(widths[-1], out_features)
        self.generator: torch.Generator | None = None  # set by the trainer for reproducible masks
        self.shard: tuple[int, int] | None = None

    @property
    def output_layer(self) -> nn.Linear:
        return self.out

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        _check_y(y, z.shape[0], self.n_classes)
        drop = self.training and self.hidden_keep < 1.0
        h = torch.cat([torch.relu(self.z_branch(z)), torch.relu(self.y_branch(y.to(z.dtype)))], dim=1)  # (n, 1200)
        for layer in self.joint:
            h = torch.relu(layer(dropout(h, self.hidden_keep, self.generator, self.shard) if drop else h))
        h = dropout(h, self.hidden_keep, self.generator, self.shard) if drop else h
        return torch.sigmoid(self.out(h))  # (n, D) in [0, 1]


class CGAN2014Discriminator(nn.Module):
    """Mirza & Osindero's MNIST D: x → maxout 240×5, y → maxout 50×5, joined → maxout ``hidden`` ×
    ``pieces`` → logit. ``features`` is the last joined maxout layer's output, ``head`` the output unit."""

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        hidden: list[int],
        pieces: int,
        input_keep: float,
        hidden_keep: float,
    ):
        super().__init__()
        self.n_classes, self.input_keep, self.hidden_keep = n_classes, input_keep, hidden_keep
        self.x_branch = Maxout(in_features, CGAN_D_X_UNITS, CGAN_D_X_PIECES)
        self.y_branch = Maxout(n_classes, CGAN_D_Y_UNITS, CGAN_D_Y_PIECES)
        widths = [CGAN_D_X_UNITS + CGAN_D_Y_UNITS, *hidden]
        self.joint = nn.ModuleList(Maxout(a, b, pieces) for a, b in zip(widths[:-1], widths[1:]))
        self.out = nn.Linear(widths[-1], 1)
        self.generator: torch.Generator | None = None
        self.shard: tuple[int, int] | None = None

    def _drop(self, h: torch.Tensor, keep: float) -> torch.Tensor:
        return dropout(h, keep, self.generator, self.shard) if self.training else h

    def features(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        _check_y(y, x.shape[0], self.n_classes)
        h = torch.cat([self.x_branch(self._drop(x, self.input_keep)), self.y_branch(y.to(x.dtype))], dim=1)  # (n, 290)
        for layer in self.joint:
            h = layer(self._drop(h, self.hidden_keep))
        return h  # (n, units)

    def head(self, f: torch.Tensor) -> torch.Tensor:
        return self.out(self._drop(f, self.hidden_keep)).squeeze(1)  # (n,) logits

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, y))


def build_conditional_generator(cfg) -> nn.Module:
    """The conditional G a config describes (uninitialized; :func:`.models.build_models` inits it)."""
    k, d = N_CLASSES[cfg.dataset], int(torch.tensor(cfg.image_shape).prod())
    if cfg.arch == "cgan_2014":
        return CGAN2014Generator(cfg.noise_dim, k, list(cfg.g_hidden), d, cfg.g_hidden_keep)
    if cfg.arch == "dcgan":
        return ConcatGenerator(
            DCGANGenerator(cfg.noise_dim + k, list(cfg.image_shape), cfg.dcgan_width), cfg.noise_dim, k
        )
    return ConcatGenerator(MLPGenerator(cfg.noise_dim + k, list(cfg.g_hidden), d, cfg.g_activation), cfg.noise_dim, k)


def build_conditional_discriminator(cfg) -> nn.Module:
    k, d = N_CLASSES[cfg.dataset], int(torch.tensor(cfg.image_shape).prod())
    mbd = dict(minibatch_features=cfg.minibatch_features, minibatch_kernel_dim=cfg.minibatch_kernel_dim)
    if cfg.arch == "cgan_2014":
        return CGAN2014Discriminator(d, k, list(cfg.d_hidden), cfg.d_pieces, cfg.d_input_keep, cfg.d_hidden_keep)
    if cfg.arch == "dcgan":
        return ConcatDCGANDiscriminator(list(cfg.image_shape), k, cfg.dcgan_width, **mbd)
    return ConcatMaxoutDiscriminator(d, k, list(cfg.d_hidden), cfg.d_pieces, cfg.d_input_keep, cfg.d_hidden_keep, **mbd)
