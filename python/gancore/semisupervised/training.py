"""One run of the semi-supervised GAN: data, the alternating updates, Polyak averaging, test error.

Each update (as the authors' ``train_batch_disc`` then ``train_batch_gen``):

1. D: one Adam step on L_sup(labelled batch) + w·L_unsup(unlabelled batch, G(z)), z fresh, G held;
   then the Polyak average of D's parameters moves toward them at rate r;
2. G: one Adam step on feature matching between G(z') (z' fresh) and a second unlabelled batch.

An epoch is ⌊N_unlabelled / m⌋ updates. Its batches are drawn from ``(seed, epoch)`` alone (the
unlabelled images in two independent random orders, the labelled ones as a stream of random orders of
the N labelled images, as their code repeats them), so a run resumed at any update draws what an
uninterrupted one would; every Gaussian noise and z comes from one torch generator saved in checkpoints.

Testing uses D without noise and with the averaged weights. The authors' average starts from zeros,
so after t updates it is biased toward 0 by a factor 1 − (1 − r)^t (0.45 after 10 epochs at r = 10⁻⁴,
≈ 0 after their 300 epochs); we divide by that factor (the bias correction Adam applies to its moments),
so early test errors are not those of shrunken weights. The raw (unaveraged) D's error is logged too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..evaluate.semisupervised import balanced_draw
from ..train.models import sample_noise
from ..train.optimizers import Adam
from .losses import generator_loss, supervised_loss, unsupervised_loss
from .models import build_models

__all__ = ["SemiSupervisedData", "SemiSupervisedTraining", "load_data"]

N_CLASSES = 10


@dataclass
class SemiSupervisedData:
    """Flat float32 images in [0, 1] (n, D) and int64 labels: the unlabelled pool, the N labelled
    images drawn from it, the test split."""

    unlabeled: np.ndarray
    labeled: np.ndarray
    labeled_y: np.ndarray
    labeled_index: np.ndarray  # rows of ``unlabeled`` that are labelled
    test: np.ndarray
    test_y: np.ndarray


def load_data(cfg) -> SemiSupervisedData:
    """The unlabelled pool (MNIST train[0:60000] or train[0:50000]), N labelled images of it, N/10 per
    class drawn by ``(seed, 0)``, and the test split."""
    from ..data import load_labels, load_split

    splits = ("train", "valid") if cfg.unlabeled == "train+valid" else ("train",)
    x = np.concatenate([load_split(cfg.dataset, s, data_dir=cfg.data_dir) for s in splits])
    y = np.concatenate([load_labels(cfg.dataset, s, data_dir=cfg.data_dir) for s in splits])
    idx = balanced_draw(y, cfg.labels, (cfg.seed, 0), n_classes=N_CLASSES)
    test = load_split(cfg.dataset, "test", data_dir=cfg.data_dir)
    test_y = load_labels(cfg.dataset, "test", data_dir=cfg.data_dir)
    return SemiSupervisedData(x, x[idx], y[idx], idx, test, test_y)


class SemiSupervisedTraining:
    """G, D, their Adam states, D's Polyak average and the noise generator; resumes bit for bit."""

    def __init__(self, cfg, data: SemiSupervisedData, device):
        self.cfg, self.data, self.device = cfg, data, torch.device(device)
        self.n_pixels = data.unlabeled.shape[1]
        self.G, self.D = (m.to(self.device) for m in build_models(cfg, self.n_pixels, N_CLASSES))
        self.g_params = list(self.G.parameters())
        self.d_params = list(self.D.parameters())
        # ε inside the square root, as the authors' adam_updates (see gancore.train.optimizers.Adam)
        self.opt_g = Adam(self.g_params, cfg.beta1, 0.999, eps_in_sqrt=True)
        self.opt_d = Adam(self.d_params, cfg.beta1, 0.999, eps_in_sqrt=True)
        self.noise = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.steps_per_epoch = data.unlabeled.shape[0] // cfg.batch_size
        if self.steps_per_epoch < 1:
            raise ValueError(f"--batch-size {cfg.batch_size} exceeds the {data.unlabeled.shape[0]} unlabelled images")
        self.step = 0
        self._order: tuple[int, dict] | None = None
        init_rows = np.random.default_rng((cfg.seed, 1)).permutation(data.unlabeled.shape[0])[: cfg.init_batch]
        self.D.initialize(self._tensor(data.unlabeled[init_rows]), self.noise)
        self.average = [torch.zeros_like(p) for p in self.d_params]  # the authors' average starts at 0

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x)).to(self.device)

    def epoch_order(self, epoch: int) -> dict[str, np.ndarray]:
        """Row indices of every batch of ``epoch``: {"unlabeled", "unlabeled_g", "labeled"} each
        (steps_per_epoch·m,), from ``(seed, 2, epoch)`` alone."""
        if self._order is None or self._order[0] != epoch:
            rng = np.random.default_rng((self.cfg.seed, 2, epoch))
            n_unl, n_lab = self.data.unlabeled.shape[0], self.data.labeled.shape[0]
            need = self.steps_per_epoch * self.cfg.batch_size
            repeats = -(-need // n_lab)
            order = {
                "unlabeled": rng.permutation(n_unl)[:need],
                "unlabeled_g": rng.permutation(n_unl)[:need],
                "labeled": np.concatenate([rng.permutation(n_lab) for _ in range(repeats)])[:need],
            }
            self._order = (epoch, order)
        return self._order[1]

    def train_step(self) -> dict[str, float]:
        cfg, m = self.cfg, self.cfg.batch_size
        epoch, t = divmod(self.step, self.steps_per_epoch)
        order = self.epoch_order(epoch)
        rows = slice(t * m, (t + 1) * m)
        x_lab = self._tensor(self.data.labeled[order["labeled"][rows]])
        y_lab = torch.from_numpy(self.data.labeled_y[order["labeled"][rows]]).to(self.device)
        x_unl = self._tensor(self.data.unlabeled[order["unlabeled"][rows]])
        x_unl_g = self._tensor(self.data.unlabeled[order["unlabeled_g"][rows]])

        # 1. D on labelled, unlabelled and generated images: one pass of D over all three (3m rows)
        z = sample_noise(m, cfg.noise_dim, "hypercube", generator=self.noise, device=self.device)
        with torch.no_grad():
            fake = self.G(z)
        logits, _ = self.D(torch.cat([x_lab, x_unl, fake]), self.noise)
        l_lab, l_unl, l_fake = logits.split(m)
        loss_sup = supervised_loss(l_lab, y_lab)
        loss_unsup = unsupervised_loss(l_unl, l_fake)
        grads = torch.autograd.grad(loss_sup + cfg.unlabeled_weight * loss_unsup, self.d_params)
        self.opt_d.step(grads, cfg.lr)
        with torch.no_grad():
            torch._foreach_lerp_(self.average, [p.detach() for p in self.d_params], cfg.average_rate)

        # 2. G by feature matching against a second unlabelled batch
        z = sample_noise(m, cfg.noise_dim, "hypercube", generator=self.noise, device=self.device)
        _, f = self.D(torch.cat([x_unl_g, self.G(z)]), self.noise)
        f_real, f_fake = f.split(m)
        loss_g = generator_loss(f_real, f_fake)
        self.opt_g.step(torch.autograd.grad(loss_g, self.g_params), cfg.lr)

        self.step += 1
        train_err = (l_lab.argmax(1) != y_lab).float().mean()
        return {
            "loss_sup": float(loss_sup.detach()),
            "loss_unsup": float(loss_unsup.detach()),
            "loss_g": float(loss_g.detach()),
            "train_error": float(train_err),
        }

    def averaged_parameters(self, *, bias_corrected: bool = True) -> dict[str, torch.Tensor]:
        """D's Polyak-averaged parameters, bias-corrected (see the module docstring); uncorrected, they are
        what the authors' ``test_batch`` evaluates."""
        correction = 1.0 - (1.0 - self.cfg.average_rate) ** max(self.step, 1) if bias_corrected else 1.0
        names = [n for n, _ in self.D.named_parameters()]
        return {n: a / correction for n, a in zip(names, self.average)}

    @torch.no_grad()
    def test_errors(
        self, x: np.ndarray, y: np.ndarray, *, averaged: bool = True, bias_corrected: bool = True, batch: int = 2000
    ) -> int:
        """Misclassified images of (x, y) by the noiseless D: Polyak-averaged weights (bias-corrected
        unless told otherwise) by default, the current weights with ``averaged=False``."""
        from torch.func import functional_call

        params = self.averaged_parameters(bias_corrected=bias_corrected) if averaged else None
        wrong = 0
        for i in range(0, x.shape[0], batch):
            xb = self._tensor(x[i : i + batch])
            logits, _ = self.D(xb) if params is None else functional_call(self.D, params, (xb,))
            wrong += int((logits.argmax(1).cpu().numpy() != y[i : i + batch]).sum())
        return wrong

    @torch.no_grad()
    def samples(self, n: int, seed: int) -> np.ndarray:
        """n samples of G from a fixed noise seed (batch statistics over the n), float32 (n, D)."""
        z = sample_noise(n, self.cfg.noise_dim, "hypercube", generator=torch.Generator().manual_seed(seed))
        return self.G(z.to(self.device)).cpu().numpy()

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {"rng.noise": self.noise.get_state(), "step": torch.tensor([self.step], dtype=torch.int64)}
        out.update(self.opt_d.state_tensors("adam_d"))
        out.update(self.opt_g.state_tensors("adam_g"))
        out.update({f"average.{i}": a for i, a in enumerate(self.average)})
        return out

    def load_state(self, g_state: dict, d_state: dict, tensors: dict) -> None:
        self.G.load_state_dict(g_state)
        self.D.load_state_dict(d_state)
        self.opt_d.load_state_tensors(tensors, "adam_d")
        self.opt_g.load_state_tensors(tensors, "adam_g")
        with torch.no_grad():
            for i, a in enumerate(self.average):
                a.copy_(tensors[f"average.{i}"])
        self.noise.set_state(tensors["rng.noise"])
        self.step = int(tensors["step"].item())
