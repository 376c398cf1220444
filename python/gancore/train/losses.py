"""The game's losses, computed from D's logits (paper Eq. 1 and §3; tutorial §3.2).

With l = logit and D = sigmoid(l): log D = −softplus(−l) and log(1 − D) = −softplus(l). Writing the
losses with softplus never takes the log of a sigmoid that has rounded to 0 or 1, so they stay finite
and their gradients exact for any logit.

* discriminator: J_D = −E_x[log D(x)] − E_z[log(1 − D(G(z)))], i.e. maximize V(D, G) (Algorithm 1's
  ascent); with one-sided label smoothing the real target is 1 − α and fakes keep target 0;
* generator, ``minimax``: minimize E log(1 − D(G(z))) = −E softplus(l) (saturates when D wins);
* generator, ``nonsaturating``: maximize E log D(G(z)), i.e. minimize E softplus(−l) (paper §3);
* generator, ``maxlikelihood``: J_G = −½ E exp(σ⁻¹(D(G(z)))) = −½ E exp(l) (Goodfellow 2014b).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

G_LOSSES = ("nonsaturating", "minimax", "maxlikelihood")


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, *, label_smoothing: float = 0.0, halved: bool = False
) -> torch.Tensor:
    """J_D = E[BCE(l_real, 1 − α)] + E[BCE(l_fake, 0)], ×½ when ``halved`` (the 2014 AdversaryCost2)."""
    target = 1.0 - label_smoothing
    # BCE(l, t) = t·softplus(−l) + (1 − t)·softplus(l)
    real = (
        target * F.softplus(-real_logits) + (1.0 - target) * F.softplus(real_logits)
        if label_smoothing
        else F.softplus(-real_logits)
    )
    loss = real.mean() + F.softplus(fake_logits).mean()
    return 0.5 * loss if halved else loss


def generator_loss(fake_logits: torch.Tensor, kind: str) -> torch.Tensor:
    """J_G of the named kind, averaged over the batch (see the module docstring)."""
    if kind == "nonsaturating":
        return F.softplus(-fake_logits).mean()
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()
    if kind == "maxlikelihood":
        return -0.5 * torch.exp(fake_logits).mean()
    raise ValueError(f"unknown generator loss {kind!r}; expected one of {', '.join(G_LOSSES)}")
