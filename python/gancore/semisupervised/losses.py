"""The losses of the K+1-class semi-supervised GAN (Salimans et al. 2016, §5; tutorial §5.4).

D outputs K logits l(x); a (K+1)-th class "generated" with its logit fixed at 0 (the model is
over-parametrized, §5, so this loses nothing) makes

    p(y = k | x) = exp l_k / (Z(x) + 1),   Z(x) = Σ_k exp l_k(x),   D(x) = 1 − p(K+1 | x) = Z/(Z + 1) = σ(log Z).

With L = log Z = logsumexp(l):

* supervised (labelled x, class y): L_sup = −E log p(y | x, y ≤ K) = E[L(x) − l_y(x)], the K-class
  cross-entropy;
* unsupervised (unlabelled x, generated G(z)): L_unsup = −½ E log D(x) − ½ E log(1 − D(G(z)))
  = ½ E softplus(−L(x)) + ½ E softplus(L(G(z))): the ordinary GAN loss of D with logit L, halved
  as in the authors' code (openai/improved-gan, ``train_mnist_feature_matching.py``);
* G: feature matching (their §3.1), the mean over D's last hidden features of the squared gap between
  a generated and a real minibatch's means: :func:`gancore.train.losses.feature_matching_loss` (which
  sums over the features, as the paper writes ‖·‖²) divided by the number of features, as their code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..train.losses import feature_matching_loss

__all__ = ["generator_loss", "real_logit", "supervised_loss", "unsupervised_loss"]


def real_logit(logits: torch.Tensor) -> torch.Tensor:
    """log Z(x) = logsumexp_k l_k(x): the logit of D(x) = Z/(Z + 1) (n, K) → (n,)."""
    return torch.logsumexp(logits, dim=1)


def supervised_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_sup = E[log Z(x) − l_y(x)]: cross-entropy over the K real classes."""
    return F.cross_entropy(logits, labels)


def unsupervised_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """L_unsup = ½ E softplus(−log Z(x)) + ½ E softplus(log Z(G(z))) (= −½ E log D(x) − ½ E log(1 − D(G(z))))."""
    return 0.5 * F.softplus(-real_logit(real_logits)).mean() + 0.5 * F.softplus(real_logit(fake_logits)).mean()


def generator_loss(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """Feature matching, averaged over the A features: ‖E f(x) − E f(G(z))‖² / A."""
    return feature_matching_loss(real_features, fake_features) / real_features.shape[1]
