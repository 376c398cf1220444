"""The game's losses, computed from D's logits (paper Eq. 1 and §3; tutorial §3.2).

With l = logit and D = sigmoid(l): log D = −softplus(−l) and log(1 − D) = −softplus(l). Writing the
losses with softplus never takes the log of a sigmoid that has rounded to 0 or 1, so they stay finite
and their gradients exact for any logit.

* discriminator: J_D = −E_x[log D(x)] − E_z[log(1 − D(G(z)))], i.e. maximize V(D, G) (Algorithm 1's
  ascent); with one-sided label smoothing the real target is 1 − α and fakes keep target 0;
* generator, ``minimax``: minimize E log(1 − D(G(z))) = −E softplus(l) (saturates when D wins);
* generator, ``nonsaturating``: maximize E log D(G(z)), i.e. minimize E softplus(−l) (paper §3);
* generator, ``maxlikelihood``: J_G = −½ E exp(σ⁻¹(D(G(z)))) = −½ E exp(l) (Goodfellow 2014b);
* generator, ``feature_matching`` (Salimans et al. 2016, "Improved Techniques for Training GANs",
  §3.1; tutorial §5.4): J_G = ‖E_x f(x) − E_z f(G(z))‖²₂ with f(x) D's last hidden features, the
  expectations estimated by the two minibatches' means (:func:`feature_matching_loss`). It is computed
  from features, not logits, so :func:`generator_loss` does not take it.

The minimax and non-saturating losses have no ½ in front; the tutorial writes them with the ½ of its
J^(D) = −½ E log D(x) − ½ E log(1 − D(G(z))). A constant factor moves no minimizer; under SGD it
doubles the step compared with the tutorial's J^(G).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

G_LOSSES = ("nonsaturating", "minimax", "maxlikelihood", "feature_matching")


def discriminator_loss(
    real_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    *,
    label_smoothing: float = 0.0,
    halved: bool = False,
    dim: int | None = None,
) -> torch.Tensor:
    """J_D = E[BCE(l_real, 1 − α)] + E[BCE(l_fake, 0)], ×½ when ``halved`` (the 2014 AdversaryCost2).

    The expectations are means over every logit, or over ``dim`` only: (R, m) logits of R seed
    replicas with ``dim=1`` give the R losses in one pass (:mod:`gancore.train.replicas`)."""
    target = 1.0 - label_smoothing
    # BCE(l, t) = t·softplus(−l) + (1 − t)·softplus(l)
    real = (
        target * F.softplus(-real_logits) + (1.0 - target) * F.softplus(real_logits)
        if label_smoothing
        else F.softplus(-real_logits)
    )
    loss = _mean(real, dim) + _mean(F.softplus(fake_logits), dim)
    return 0.5 * loss if halved else loss


def generator_loss(fake_logits: torch.Tensor, kind: str, *, dim: int | None = None) -> torch.Tensor:
    """J_G of the named kind, averaged over the batch, or over ``dim`` only (as
    :func:`discriminator_loss`; see the module docstring)."""
    if kind == "nonsaturating":
        return _mean(F.softplus(-fake_logits), dim)
    if kind == "minimax":
        return -_mean(F.softplus(fake_logits), dim)
    if kind == "maxlikelihood":
        return -0.5 * _mean(torch.exp(fake_logits), dim)
    if kind == "feature_matching":
        raise ValueError("feature_matching is computed from D's features, not its logits: use feature_matching_loss")
    raise ValueError(f"unknown generator loss {kind!r}; expected one of {', '.join(G_LOSSES)}")


def feature_matching_loss(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """‖mean_i f(x_i) − mean_j f(G(z_j))‖²₂ for features (m, A) of a real and a generated minibatch.

    The real mean is a constant target (detached): the loss's gradient flows only through the generated
    batch's features, into G (and D's parameters, which G's update never touches). Computed in float32
    at least.
    The squared norm sums over the A features, as the paper's ‖·‖²₂; the authors' code
    (openai/improved-gan) takes the mean over them instead, which is the same loss divided by A.
    """
    if real_features.dim() != 2 or real_features.shape[1:] != fake_features.shape[1:] or fake_features.dim() != 2:
        raise ValueError(
            f"features must be (n, A) batches of the same width; got {tuple(real_features.shape)} and "
            f"{tuple(fake_features.shape)}"
        )
    dtype = torch.promote_types(fake_features.dtype, torch.float32)  # bf16 features: the loss in float32
    target = real_features.detach().to(dtype).mean(0)  # (A,): E_x f(x)
    return (target - fake_features.to(dtype).mean(0)).pow(2).sum()


def _mean(t: torch.Tensor, dim: int | None) -> torch.Tensor:
    return t.mean() if dim is None else t.mean(dim=dim)
