"""The encoder E(x) ≈ z of a frozen generator G (Goodfellow et al. 2014, §7 item 2), and how well it inverts G.

Training (:class:`EncoderTraining`): every step draws fresh z ~ p_z from the run's own generator of
random numbers, decodes x = G(z) with G frozen (eval mode, no gradient), and takes one Adam step on

    L(E) = 1/(m·k) Σ_i ‖E(G(z_i)) − z_i‖²          (mean squared error per dimension of z).

E is an MLP: flat x (n, D) → ReLU hidden layers → linear (n, k). It sees only G's samples, never data.

A conditional G(z | y) (Mirza & Osindero 2014) is inverted the same way: E(x) ≈ z, the class y being
known; training draws y uniformly, z recovery uses every class equally often, and a test image is
reconstructed as G(E(x) | its label).

Measures (:func:`z_recovery`, :func:`reconstruction`):

* **z recovery** on fresh samples: the mean squared error per dimension of E(G(z)) against z, beside
  the same error of the trivial predictor E[z] (the prior's mean, i.e. the prior's variance: 1 for
  the 2014 uniform and the Gaussian prior, 1/12 for the unit hypercube); a ratio well below 1 means E
  has learned to invert G;
* **reconstruction** of real test images: ‖G(E(x)) − x‖² per image, beside ‖x − NN(x)‖², the squared
  distance to the nearest training image (exact, :func:`gancore.nearest_neighbors`): the reference a
  lookup of the training set achieves.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..train.models import sample_noise

STATISTICS_SAMPLES = 5000  # samples of G that set E's input standardization
PRIOR_MEAN = {"uniform": 0.0, "gaussian": 0.0, "hypercube": 0.5}  # E[z] per dimension, the trivial predictor


SCALE_FLOOR = 0.01  # pixels G hardly varies are not amplified more than 100×: real images differ there


class Encoder(nn.Module):
    """E: flat x (n, D) → standardized (x − μ)/s → ReLU ``hidden`` → linear z (n, noise_dim).

    μ and s (buffers, saved with the weights) are the per-pixel mean and standard deviation of G's
    samples (s floored at ``SCALE_FLOOR``), set once before training by :meth:`set_input_statistics`:
    a generator early in training varies its pixels by a few thousandths, which an MLP at its default
    initialization would barely see."""

    def __init__(self, in_features: int, hidden: list[int], noise_dim: int):
        super().__init__()
        self.register_buffer("shift", torch.zeros(in_features))
        self.register_buffer("scale", torch.ones(in_features))
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, noise_dim))
        self.net = nn.Sequential(*layers)

    @torch.no_grad()
    def set_input_statistics(self, x: torch.Tensor) -> None:
        self.shift.copy_(x.mean(0))
        self.scale.copy_(x.std(0).clamp_min(SCALE_FLOOR))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.shift) / self.scale)  # (n, D) -> (n, noise_dim)


def build_encoder(in_features: int, hidden: list[int], noise_dim: int, seed: int) -> Encoder:
    """E initialized from ``seed`` alone (PyTorch's default layer init, drawn from a seeded generator)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Encoder(in_features, hidden, noise_dim)


class EncoderTraining:
    """E, its Adam optimizer and the generator of the z it trains on; its state resumes bit for bit."""

    def __init__(self, G, E: Encoder, noise_dim: int, prior: str, *, lr: float, batch_size: int, seed: int, device):
        self.G, self.E, self.noise_dim, self.prior = G.eval(), E, noise_dim, prior
        for p in self.G.parameters():
            p.requires_grad_(False)  # G is frozen: the paper's after-training version
        self.batch_size, self.device = batch_size, device
        self.opt = torch.optim.Adam(E.parameters(), lr=lr)
        self.rng = torch.Generator().manual_seed(seed + 1)  # z on the CPU: the same pairs on every device
        self.step = 0
        x, _ = self.pairs(STATISTICS_SAMPLES, torch.Generator().manual_seed(seed + 3))
        E.set_input_statistics(x)  # resuming overwrites these with the saved (equal) buffers

    def pairs(self, n: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        z = sample_noise(n, self.noise_dim, self.prior, generator=rng).to(self.device)  # (n, k)
        y = None
        if _n_classes(self.G):  # a conditional G(z | y): classes uniform at random, from the same generator
            y = torch.randint(0, _n_classes(self.G), (n,), generator=rng)
        with torch.no_grad():
            x = _decode(self.G, z, y)  # (n, D)
        return x, z

    def train_step(self) -> float:
        x, z = self.pairs(self.batch_size, self.rng)
        loss = torch.mean((self.E(x) - z) ** 2)  # mean squared error per dimension of z
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        return float(loss.detach())

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Adam's buffers and the z generator's state, flat (for safetensors)."""
        return {"rng.z": self.rng.get_state(), **adam_state_tensors(self.opt, self.E, "adam")}

    def load_state_tensors(self, t: dict[str, torch.Tensor], step: int) -> None:
        self.rng.set_state(t["rng.z"])
        load_adam_state_tensors(self.opt, self.E, t, "adam")
        self.step = step


def adam_state_tensors(opt, module, prefix: str) -> dict[str, torch.Tensor]:
    """torch Adam's buffers for ``module``'s parameters, flat: ``{prefix}.{i}.{exp_avg|exp_avg_sq|step}``."""
    out = {}
    for i, p in enumerate(module.parameters()):
        st = opt.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq", "step"):
            if key in st:
                out[f"{prefix}.{i}.{key}"] = torch.as_tensor(st[key]).detach().cpu().clone()
    return out


def load_adam_state_tensors(opt, module, t: dict[str, torch.Tensor], prefix: str) -> None:
    for i, p in enumerate(module.parameters()):
        if f"{prefix}.{i}.step" in t:
            opt.state[p] = {
                "step": t[f"{prefix}.{i}.step"].clone(),
                "exp_avg": t[f"{prefix}.{i}.exp_avg"].to(p.device).clone(),
                "exp_avg_sq": t[f"{prefix}.{i}.exp_avg_sq"].to(p.device).clone(),
            }


JOINT_HIDDEN = [1200, 1200]  # E of the joint version: the after-training version's default shape
JOINT_LR = 1e-3


class JointInferer:
    """E trained *jointly* with the game, as the 2014 code's ``AdversaryPair(inferer=...)``: after each
    iteration, one Adam step on L(E) = 1/(m·k) Σ ‖E(G(z_i)) − z_i‖² over the (z, G(z)) batch that iteration
    generated (:attr:`gancore.train.algorithm1.Game.last_pair`), detached, so no gradient reaches G and the
    game draws exactly the random numbers it draws without E (the GAN trains bit for bit the same).

    G changes under E, so E's input is standardized with the *training data's* per-pixel mean and
    standard deviation (floored at ``SCALE_FLOOR``), the distribution G's samples move toward, rather than
    with a snapshot of G's. Shape and learning rate are fixed: ``JOINT_HIDDEN``, Adam ``JOINT_LR``."""

    def __init__(self, in_features: int, noise_dim: int, data_mean, data_std, *, seed: int, device):
        self.E = build_encoder(in_features, JOINT_HIDDEN, noise_dim, seed).to(device)
        with torch.no_grad():
            self.E.shift.copy_(torch.as_tensor(data_mean, dtype=torch.float32))
            self.E.scale.copy_(torch.as_tensor(data_std, dtype=torch.float32).clamp_min(SCALE_FLOOR))
        self.opt = torch.optim.Adam(self.E.parameters(), lr=JOINT_LR)

    def train_on(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """One Adam step on the pair; returns the batch's loss, detached (no device sync)."""
        loss = torch.mean((self.E(x.detach().float()) - z.detach()) ** 2)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def state_tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        out = {f"{prefix}.weights.{k}": v.detach().cpu().clone() for k, v in self.E.state_dict().items()}
        out.update(adam_state_tensors(self.opt, self.E, f"{prefix}.adam"))
        return out

    def load_state_tensors(self, t: dict[str, torch.Tensor], prefix: str) -> None:
        head = f"{prefix}.weights."
        weights = {k[len(head) :]: v for k, v in t.items() if k.startswith(head)}
        if not weights:
            raise ValueError(f"the checkpoint holds no jointly trained inference net ('{head}*')")
        self.E.load_state_dict(weights)
        load_adam_state_tensors(self.opt, self.E, t, f"{prefix}.adam")


def load_joint_encoder(run_dir, *, device="cpu") -> tuple[Encoder, int]:
    """The jointly trained E of a ``--joint-inferer`` run's latest checkpoint (eval mode) and its step."""
    from ..train import config as config_mod
    from ..train.checkpoints import CheckpointError, latest, load

    run_dir = Path(run_dir)
    cfg = config_mod.from_dict(json.loads((run_dir / "config.json").read_text()))
    if not cfg.joint_inferer:
        raise ValueError(f"{run_dir} was trained without --joint-inferer: it has no jointly trained E")
    ckpt = latest(run_dir)
    if ckpt is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint yet")
    meta, _, _, t = load(ckpt, cfg=cfg)
    d = math.prod(cfg.image_shape)
    inferer = JointInferer(d, cfg.noise_dim, torch.zeros(d), torch.ones(d), seed=0, device="cpu")
    try:
        inferer.load_state_tensors(t, "inferer")
    except (ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{ckpt}: {exc}") from None
    return inferer.E.to(device).eval(), int(meta["step"])


@torch.no_grad()
def z_recovery(G, E, noise_dim: int, prior: str, n: int, *, seed: int, device, batch_size: int = 2000) -> dict:
    """Mean squared error per dimension of E(G(z)) vs z on ``n`` fresh z, and of the trivial E[z]."""
    rng = torch.Generator().manual_seed(seed)
    se = se_trivial = 0.0
    labels = torch.arange(n) % max(_n_classes(G), 1)  # conditional G: every class equally often
    for i in range(0, n, batch_size):
        z = sample_noise(min(batch_size, n - i), noise_dim, prior, generator=rng).to(device)  # (b, k)
        x = _decode(G, z, labels[i : i + z.shape[0]] if _n_classes(G) else None)
        se += float(((E(x) - z) ** 2).sum())
        se_trivial += float(((z - PRIOR_MEAN[prior]) ** 2).sum())
    mse, trivial = se / (n * noise_dim), se_trivial / (n * noise_dim)
    return {"mse_per_dim": mse, "trivial_mse_per_dim": trivial, "ratio": mse / trivial, "n": int(n), "seed": seed}


def _n_classes(G) -> int:
    return int(getattr(G, "n_classes", 0) or 0)


def _decode(G, z: torch.Tensor, y) -> torch.Tensor:
    """G(z), or G(z | y) for a conditional G with integer labels ``y`` (n,)."""
    if not _n_classes(G):
        return G(z)
    from ..train.conditional import one_hot

    return G(z, one_hot(torch.as_tensor(y), _n_classes(G)).to(z.device))


@torch.no_grad()
def reconstruct(G, E, x: np.ndarray, *, device, labels=None, batch_size: int = 2000) -> np.ndarray:
    """G(E(x)) for flat images (n, D) in [0, 1] (a conditional G: G(E(x) | y), y the images' labels);
    float32 (n, D)."""
    if _n_classes(G) and (labels is None or len(labels) != x.shape[0]):
        raise ValueError("a conditional generator needs the labels of the images it reconstructs")
    out = []
    for i in range(0, x.shape[0], batch_size):
        xb = torch.as_tensor(x[i : i + batch_size], dtype=torch.float32, device=device)
        y = None if labels is None else labels[i : i + batch_size]
        out.append(_decode(G, E(xb), y).to("cpu", torch.float32).numpy())
    return np.concatenate(out)


def reconstruction(G, E, test: np.ndarray, train: np.ndarray, *, device, labels=None, n_threads: int = 0) -> dict:
    """‖G(E(x)) − x‖² per test image against ‖x − NN_train(x)‖²; returns the numbers and the arrays
    (under "_" keys, for the figure). ``labels``: the test images' classes, for a conditional G."""
    from .. import nearest_neighbors

    rec = reconstruct(G, E, test, device=device, labels=labels)  # (n, D)
    err = ((rec.astype(np.float64) - test) ** 2).sum(axis=1)  # (n,)
    nn_idx, nn_d2 = nearest_neighbors(test, train, k=1, n_threads=n_threads)  # (n, 1) each
    nn_d2 = nn_d2[:, 0]

    def summary(v):
        return {"mean": float(v.mean()), "median": float(np.median(v)), "se": float(v.std() / np.sqrt(v.size))}

    return {
        "n_test": int(test.shape[0]),
        "reconstruction_sq_error": summary(err),
        "nearest_training_sq_distance": summary(nn_d2),
        "fraction_closer_than_nearest_training": float((err < nn_d2).mean()),
        "_reconstructions": rec,
        "_nearest": train[nn_idx[:, 0]],
    }
