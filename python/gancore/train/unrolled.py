"""Unrolled GANs (Metz, Poole, Pfau & Sohl-Dickstein 2016, "Unrolled Generative Adversarial Networks", §2;
tutorial §5.1.1).

The generator's objective is the game's value after K steps of the discriminator's optimizer,
differentiated through those steps (Metz et al., Eqs. 4-6)::

    θ_D^0 = θ_D,   θ_D^{k+1} = θ_D^k + η^k · dJ/dθ_D^k          (one step of D's optimizer)
    f_K(θ_G, θ_D) = f(θ_G, θ_D^K(θ_G, θ_D))
    θ_G ← θ_G − η · df_K/dθ_G,   θ_D ← θ_D + η · df/dθ_D          (D keeps its plain update)

so G sees how D would answer its move. :func:`unrolled_generator_loss` returns G's loss of the
configured kind evaluated with θ_D^K, as a function of θ_G that autograd differentiates through all K
steps (``torch.func.functional_call`` on copies of D's parameters, every gradient taken with
``create_graph=True``). Its steps are the optimizer's own: classical momentum v ← μv − ηg, θ ← θ + v
or Adam with bias correction, starting from D's current optimizer state (velocity; m, v, t) and
using the iteration's learning rate and momentum. With K = 0 it is G's plain loss.

Every unrolled step uses the same two batches, as the authors' code does (one ``data`` and one
``samples`` tensor feed the whole unrolled graph): the real minibatch x and the generated batch G(z)
that G's loss is taken on. D's buffers (DCGAN batch-norm running statistics) are copied first, so the
unrolled passes leave D's state as it was; D's dropout masks are drawn from the run's generator, as in
every other pass.

Update schemes: Eqs. 5-6 take both gradients at the same (θ_G, θ_D), which is the ``simultaneous``
scheme: x and G(z) are the iteration's one pair of batches. Under ``alternating`` (k D steps, then G),
the unroll starts from D after its k updates, with the last D step's real minibatch and the G step's
fresh noise. Refused with max-column-norm (the projection is not part of the unrolled step), with
feature matching (not a loss of D's logits) and under data parallelism (see ``algorithm1``).
"""

from __future__ import annotations

import torch
from torch.func import functional_call

from .losses import discriminator_loss, generator_loss


def _optimizer_state(opt_d) -> tuple[str, list, list, int]:
    """(kind, first buffers, second buffers, t) of D's optimizer, detached copies."""
    if opt_d.kind == "sgd":
        return "sgd", [v.detach().clone() for v in opt_d.velocity], [], 0
    return "adam", [m.detach().clone() for m in opt_d.m], [v.detach().clone() for v in opt_d.v], opt_d.t


def unrolled_generator_loss(
    disc,
    opt_d,
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    steps: int,
    lr: float,
    momentum: float,
    g_loss: str,
    label_smoothing: float = 0.0,
    halved: bool = False,
    autocast=None,
) -> torch.Tensor:
    """G's loss ``g_loss`` on D(fake) with D's parameters after ``steps`` unrolled optimizer steps on
    J_D(real, fake) (see the module docstring); ``fake`` (m, D) must carry its graph to G."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0; got {steps}")
    names = [n for n, _ in disc.named_parameters()]
    theta = [p.detach().clone().requires_grad_(True) for _, p in disc.named_parameters()]  # θ_D^0
    buffers = {n: b.detach().clone() for n, b in disc.named_buffers()}  # unrolled passes leave D's alone
    kind, first, second, t = _optimizer_state(opt_d)

    def logits(params, x):
        state = {**dict(zip(names, params)), **buffers}
        if autocast is None:
            return functional_call(disc, state, (x,)).float()
        with autocast():
            return functional_call(disc, state, (x,)).float()

    for _ in range(steps):
        real_logits, fake_logits = logits(theta, real), logits(theta, fake)
        loss_d = discriminator_loss(real_logits, fake_logits, label_smoothing=label_smoothing, halved=halved)
        grads = torch.autograd.grad(loss_d, theta, create_graph=True)  # dJ_D/dθ_D^k, itself a function of θ_G
        if kind == "sgd":
            first = [momentum * v - lr * g for v, g in zip(first, grads)]  # v ← μv − ηg
            theta = [p + v for p, v in zip(theta, first)]  # θ ← θ + v
        else:
            b1, b2, eps = opt_d.beta1, opt_d.beta2, opt_d.eps
            t += 1
            first = [m + (1.0 - b1) * (g - m) for m, g in zip(first, grads)]  # lerp, as Adam.step
            second = [b2 * v + (1.0 - b2) * g * g for v, g in zip(second, grads)]
            bc1, bc2 = 1.0 - b1**t, 1.0 - b2**t
            # sqrt has an infinite derivative at 0; where v = 0 so is m (no gradient yet), and the step
            # is 0 either way, so clamping there changes no value, only keeps the backward pass finite.
            theta = [
                p - (lr / bc1) * m / (v.clamp_min(1e-30).sqrt() / bc2**0.5 + eps)
                for p, m, v in zip(theta, first, second)
            ]
    return generator_loss(logits(theta, fake), g_loss)
