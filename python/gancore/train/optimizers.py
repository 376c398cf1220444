"""Optimizers and schedules of the 2014 recipe, with state that saves as plain tensors (no pickles).

* :class:`ClassicalMomentum` is pylearn2's ``Momentum`` learning rule: ``v ← μ·v − ε·g; θ ← θ + v``.
  (``torch.optim.SGD`` uses ``b ← μ·b + g; θ ← θ − ε·b``, which differs once ε changes every step,
  as it does here.)
* :class:`Adam` is Kingma & Ba's Adam with bias correction, for the DCGAN preset.
* :func:`lr_at` is ``ExponentialDecay(decay_factor, min_lr)``: ε_t = max(ε_0 / decay^t, ε_min) after t
  updates; :func:`momentum_at` is ``MomentumAdjustor(start, saturate, final_momentum)``.

Both optimizers update with ``torch._foreach_*`` kernels: one launch per operation for all
parameters, instead of one per parameter.
"""

from __future__ import annotations

import torch


def lr_at(cfg, step: int) -> float:
    """Learning rate for update number ``step`` (0-based), computed in closed form so a resumed run
    gets bit-identical values without carrying a running product."""
    return max(cfg.lr / cfg.lr_decay**step, cfg.lr_min)


def momentum_at(cfg, epoch: int) -> float:
    """Momentum during 0-based epoch ``epoch``: ``momentum`` up to epoch ``momentum_start_epoch``
    (1-based), rising linearly to ``momentum_final`` at epoch ``momentum_saturate_epoch``.

    pylearn2 calls MomentumAdjustor once before training and after every epoch, so during the
    1-based epoch e it has counted e calls: alpha = (e − start) / (saturate − start), clipped.
    """
    alpha = (epoch + 1 - cfg.momentum_start_epoch) / (cfg.momentum_saturate_epoch - cfg.momentum_start_epoch)
    alpha = min(max(alpha, 0.0), 1.0)
    return cfg.momentum * (1.0 - alpha) + cfg.momentum_final * alpha


class ClassicalMomentum:
    """SGD with classical momentum on a fixed list of parameters."""

    kind = "sgd"
    state_lists = ("velocity",)  # per-parameter state, in ``params``' order (gancore.train.replicas stacks it)

    def __init__(self, params):
        self.params = [p for p in params]
        self.velocity = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self, grads, lr: float, momentum: float) -> None:
        torch._foreach_mul_(self.velocity, momentum)
        torch._foreach_add_(self.velocity, list(grads), alpha=-lr)
        torch._foreach_add_(self.params, self.velocity)

    def state_tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.velocity.{i}": v for i, v in enumerate(self.velocity)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], prefix: str) -> None:
        for i, v in enumerate(self.velocity):
            v.copy_(_take(tensors, f"{prefix}.velocity.{i}", v))


class Adam:
    """Adam (Kingma & Ba 2015) with bias correction; β1 = 0.5 in the DCGAN recipe.

    The step is lr·m̂/(√v̂ + ε), as the paper and torch write it; ``eps_in_sqrt`` makes it lr·m̂/√(v̂ + ε),
    as the openai/improved-gan code's ``adam_updates`` does (with ε = 10⁻⁸ the denominator is then at
    least 10⁻⁴, which damps the steps of parameters whose gradients are smaller than that)."""

    kind = "adam"
    state_lists = ("m", "v")

    def __init__(self, params, beta1: float, beta2: float, eps: float = 1e-8, *, eps_in_sqrt: bool = False):
        self.params = [p for p in params]
        self.beta1, self.beta2, self.eps, self.eps_in_sqrt = beta1, beta2, eps, eps_in_sqrt
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    @torch.no_grad()
    def step(self, grads, lr: float, momentum: float = 0.0) -> None:  # momentum unused (β1 plays its role)
        grads = list(grads)
        self.t += 1
        torch._foreach_lerp_(self.m, grads, 1.0 - self.beta1)
        torch._foreach_mul_(self.v, self.beta2)
        torch._foreach_addcmul_(self.v, grads, grads, value=1.0 - self.beta2)
        bc1 = 1.0 - self.beta1**self.t
        bc2 = 1.0 - self.beta2**self.t
        if self.eps_in_sqrt:
            denom = torch._foreach_div(self.v, bc2)
            torch._foreach_add_(denom, self.eps)
            torch._foreach_sqrt_(denom)
        else:
            denom = torch._foreach_sqrt(self.v)
            torch._foreach_div_(denom, bc2**0.5)
            torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(self.params, self.m, denom, value=-lr / bc1)

    def state_tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        out = {f"{prefix}.m.{i}": m for i, m in enumerate(self.m)}
        out.update({f"{prefix}.v.{i}": v for i, v in enumerate(self.v)})
        out[f"{prefix}.t"] = torch.tensor([self.t], dtype=torch.int64)
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], prefix: str) -> None:
        for i, m in enumerate(self.m):
            m.copy_(_take(tensors, f"{prefix}.m.{i}", m))
        for i, v in enumerate(self.v):
            v.copy_(_take(tensors, f"{prefix}.v.{i}", v))
        self.t = int(_take(tensors, f"{prefix}.t", None).item())


def make_optimizer(cfg, params):
    if cfg.optimizer == "sgd":
        return ClassicalMomentum(params)
    return Adam(params, cfg.adam_beta1, cfg.adam_beta2)


def _take(tensors: dict, key: str, like) -> torch.Tensor:
    if key not in tensors:
        raise ValueError(f"checkpoint optimizer state lacks '{key}' (made for another model or optimizer?)")
    t = tensors[key]
    if like is not None and t.shape != like.shape:
        raise ValueError(f"checkpoint tensor '{key}' has shape {tuple(t.shape)}, the model needs {tuple(like.shape)}")
    return t
