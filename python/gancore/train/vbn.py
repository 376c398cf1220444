"""Virtual batch normalization (Salimans et al. 2016, "Improved Techniques for Training GANs", §3.4;
tutorial §4.3).

Batch normalization makes each generated example depend on the others of its minibatch. VBN removes
that dependence: "each example x is normalized based on the statistics collected on a reference batch
of examples that are chosen once and fixed at the start of training, and on x itself". For the
generator the reference batch is a batch of noise vectors z_ref (n rows), drawn once from the run's
seed and kept in G's state dict (a buffer), so checkpoints carry it and a resumed run or a loaded G
normalizes exactly as before.

Every forward pass of G first runs z_ref through the net with the *current* parameters. At each VBN
layer the reference batch is normalized with its own statistics (ordinary batch norm), and its per
feature mean μ_ref and mean square ν_ref are kept. Each example x of the real batch is then normalized
with the statistics of the union of the reference batch and x itself, x weighted 1/(n + 1), as in
the authors' code (openai/improved-gan, ``VBN``: ``new_coeff = 1 / (n + 1)``)::

    μ(x) = 1/(n+1) · mean_s x + n/(n+1) · μ_ref         (mean_s: over x's spatial positions, if any)
    ν(x) = 1/(n+1) · mean_s x² + n/(n+1) · ν_ref
    VBN(x) = γ · (x − μ(x)) / sqrt(ν(x) − μ(x)² + ε) + β

The reference statistics are differentiated through, as the paper does ("the reference batch ... is
forward propagated on every update"), which doubles G's forward cost. There are no running
statistics: training and evaluation mode compute the same function, and an example's output depends
only on itself and z_ref, never on the rest of its batch.
"""

from __future__ import annotations

import torch
from torch import nn


class VirtualBatchNorm(nn.Module):
    """VBN over channel dimension 1 of (n, C) or (n, C, H, W) inputs; γ (``weight``) and β (``bias``)
    as :class:`torch.nn.BatchNorm1d`/``2d``. The owning net sets :attr:`recording` for the reference
    pass (see the module docstring), then clears it."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.num_features, self.eps = num_features, eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.recording = False
        self.ref_stats: tuple[torch.Tensor, torch.Tensor, int] | None = None  # (μ_ref, ν_ref, n)

    def _shape(self, x: torch.Tensor) -> tuple[int, ...]:
        return (1, self.num_features) + (1,) * (x.dim() - 2)  # broadcast over batch and space

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (2, 4) or x.shape[1] != self.num_features:
            raise ValueError(f"VirtualBatchNorm({self.num_features}) needs (n, C[, H, W]); got {tuple(x.shape)}")
        xf = x.float()
        space = tuple(range(2, x.dim()))  # spatial dims of one example
        if self.recording:
            dims = (0, *space)
            mean, meansq = xf.mean(dims), xf.pow(2).mean(dims)  # (C,), (C,): μ_ref, ν_ref
            self.ref_stats = (mean, meansq, x.shape[0])
            m, v = mean.view(self._shape(x)), (meansq - mean.pow(2)).view(self._shape(x))
        else:
            if self.ref_stats is None:
                raise RuntimeError("VirtualBatchNorm needs the reference batch's pass first (its net's forward)")
            ref_mean, ref_meansq, n = self.ref_stats
            new = 1.0 / (n + 1)  # the example's weight in the union {reference batch} ∪ {x}
            own_mean = xf.mean(space, keepdim=True) if space else xf  # (n, C[, 1, 1])
            own_meansq = xf.pow(2).mean(space, keepdim=True) if space else xf.pow(2)
            m = new * own_mean + (1.0 - new) * ref_mean.view(self._shape(x))
            v = new * own_meansq + (1.0 - new) * ref_meansq.view(self._shape(x)) - m.pow(2)
        y = (xf - m) * torch.rsqrt(v.clamp_min(0.0) + self.eps)
        return (y * self.weight.view(self._shape(x)) + self.bias.view(self._shape(x))).to(x.dtype)


def vbn_layers(net: nn.Module) -> list[VirtualBatchNorm]:
    return [m for m in net.modules() if isinstance(m, VirtualBatchNorm)]


def reference_pass(net: nn.Module, run, z_ref: torch.Tensor) -> None:
    """Run ``run(z_ref)`` with every VBN layer of ``net`` recording its reference statistics."""
    layers = vbn_layers(net)
    for layer in layers:
        layer.recording = True
    try:
        run(z_ref)
    finally:
        for layer in layers:
            layer.recording = False


def clear_reference(net: nn.Module) -> None:
    """Drop the stored statistics, so no graph outlives the forward pass that built it."""
    for layer in vbn_layers(net):
        layer.ref_stats = None
