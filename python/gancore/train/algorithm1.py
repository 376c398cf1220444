"""One training iteration of Algorithm 1 (Goodfellow et al. 2014, §4), in its two forms.

``alternating`` is Algorithm 1 as printed in the paper::

    for k steps:   sample {z_1..z_m} ~ p_z and {x_1..x_m} ~ p_data          (fresh for every step)
                   ascend  ∇θd 1/m Σ [log D(x_i) + log(1 − D(G(z_i)))]
    then           sample fresh {z_1..z_m} ~ p_z
                   descend ∇θg 1/m Σ log(1 − D(G(z_i)))    (or the chosen G loss, tutorial §3.2)

``simultaneous`` is what the 2014 code (pylearn2 ``AdversaryCost2`` with plain ``SGD``) actually ran:
one minibatch of data and one of noise, D's and G's gradients both taken from that same forward pass
(with the same dropout masks), then one SGD update of all parameters at once. k is 1 by construction.

**Feature matching** (``g_loss = feature_matching``, Salimans et al. 2016 §3.1) replaces G's objective
by ‖E_x f(x) − E_z f(G(z))‖²₂, f being D's last hidden features, so the G step needs a real
minibatch too. ``simultaneous``: the iteration's one real minibatch, whose features come from the same
pass of D (same dropout masks) that gives D's loss its logits. ``alternating``: a fresh data
minibatch drawn after the k D steps (as the authors' code draws G's real batch separately from D's),
so an iteration takes k + 1 data minibatches and an epoch has N // ((k + 1)·m) iterations
(:func:`data_batches_per_step`). Either way G's update uses only G's gradient; D is never updated by
the G loss.

Every function returns a detached tensor ``[loss_d, loss_g, mean D(x), mean D(G(z))]`` and never
synchronises with the device, so a GPU runs ahead while the host queues the next step.

**Data parallel** (``torchrun``, :mod:`gancore.distributed.group`). With W processes, process r computes
rows ``[r·m/W, (r+1)·m/W)`` of each global minibatch: its slice of the epoch permutation, of the global
noise draw and of D's global dropout masks (every rank draws them whole from the same generator and
keeps its rows). Its losses are means over its m/W rows, and DistributedDataParallel averages the
gradients over the ranks, which gives the gradient of the mean over all m rows: the same update as
one process, up to the order of float summation. Gradients are taken with
``loss.backward(inputs=params)``, so one backward pass reaches exactly one player's DDP wrapper:

* J_D's backward stops at D's parameters (G's wrapper does not fire: no G reduction from D's loss);
* J_G's backward flows *through* D to G's parameters only (D's wrapper does not fire a second time
  in the step, so no double reduction and no "marked ready twice" error);
* where D only has to be differentiated through (the alternating G step) or G only evaluated
  (under ``no_grad`` in the D steps), the plain modules are called, not the wrappers.

Every parameter is used in every backward pass, so DDP needs no ``find_unused_parameters``.
Unrolling (``unroll`` K > 0, :mod:`gancore.train.unrolled`) is refused too: its K inner D steps would
need the gradient of J_D over the whole global minibatch inside G's loss, which DDP's hooks do not give.
Feature matching and minibatch discrimination are refused under data parallelism: both depend on the
whole minibatch at once (its feature mean; the distances between its examples), which one rank's
m/W rows would change, so the run would no longer be the one-process run.
A one-process run takes the gradients with ``torch.autograd.grad`` and never touches ``.grad``.
"""

from __future__ import annotations

import contextlib

import torch

from .losses import discriminator_loss, feature_matching_loss, generator_loss
from .models import apply_max_col_norm_, sample_noise
from .unrolled import unrolled_generator_loss


def data_batches_per_step(cfg) -> int:
    """Data minibatches one iteration draws: 1 (simultaneous), k (alternating), k + 1 (alternating
    with feature matching: its G step takes a fresh real minibatch)."""
    if cfg.update == "simultaneous":
        return 1
    return cfg.k + (1 if cfg.g_loss == "feature_matching" else 0)


class MinibatchStream:
    """Minibatches drawn by index from one on-device tensor, reshuffled every epoch (without
    replacement, like pylearn2's ``shuffled_sequential``). Its state is (permutation, position)."""

    def __init__(self, data: torch.Tensor, batch_size: int, generator: torch.Generator, rows=None, labels=None):
        # rows=(lo, hi): this process's rows of each global minibatch (data parallel); all by default.
        # labels (N, K) one-hot, for a conditional net: every take() also sets ``last_labels`` to the
        # labels of the rows it returned (the same permutation, so resume stays bit for bit).
        self.data, self.batch_size, self.generator, self.labels = data, batch_size, generator, labels
        self.lo, self.hi = rows if rows is not None else (0, batch_size)
        self.perm = torch.arange(data.shape[0])
        self.pos = 0
        self.last_labels: torch.Tensor | None = None

    def new_epoch(self) -> None:
        # The permutation is drawn on the CPU so it is the same on every device.
        self.perm = torch.randperm(self.data.shape[0], generator=self.generator)
        self._perm_dev = self.perm.to(self.data.device)
        self.pos = 0

    def restore(self, perm: torch.Tensor, pos: int) -> None:
        self.perm, self.pos = perm.clone(), pos
        self._perm_dev = self.perm.to(self.data.device)

    def take(self) -> torch.Tensor:
        idx = self.next_indices()
        if self.labels is not None:
            self.last_labels = self.labels.index_select(0, idx)  # (m, K) one-hot y of those rows
        return self.data.index_select(0, idx)  # (m, D), or this process's (m/W, D)

    def next_indices(self) -> torch.Tensor:
        """The rows of ``data`` that the next minibatch takes (m, or this process's m/W), and move on."""
        idx = self._perm_dev[self.pos + self.lo : self.pos + self.hi]
        self.pos += self.batch_size
        return idx


class Game:
    """G, D, their optimizers and the randomness one iteration needs.

    Data parallel: ``shard=(rank, world)``, then :meth:`attach_ddp` with the players wrapped in
    DistributedDataParallel (see the module docstring); ``gen``/``disc`` stay the plain modules.
    """

    def __init__(
        self,
        cfg,
        gen,
        disc,
        opt_g,
        opt_d,
        stream: MinibatchStream,
        rng: torch.Generator,
        *,
        shard: tuple[int, int] | None = None,
    ):
        self.cfg, self.gen, self.disc, self.opt_g, self.opt_d = cfg, gen, disc, opt_g, opt_d
        self.stream, self.rng = stream, rng
        self.g_params = [p for p in gen.parameters()]
        self.d_params = [p for p in disc.parameters()]
        self.rows = None
        if shard is not None:
            whole_batch = []  # features that couple the examples of a minibatch (module docstring)
            if cfg.g_loss == "feature_matching":
                whole_batch.append("--g-loss feature_matching")
            if cfg.minibatch_features:
                whole_batch.append("--minibatch-features")
            if whole_batch:
                raise ValueError(
                    f"{' and '.join(whole_batch)} cannot run data parallel: it depends on the whole minibatch "
                    "at once, and each process sees only its rows of it; train with one process"
                )
            if cfg.unroll:
                raise ValueError(
                    "--unroll cannot run data parallel: its unrolled D steps need the whole minibatch's "
                    "gradient inside G's loss; train with one process"
                )
            rank, world = shard
            b = cfg.batch_size // world
            self.rows = (rank * b, (rank + 1) * b)
        # The modules whose backward passes must reach the other ranks: the players, or their DDP wrappers.
        self.sync_gen, self.sync_disc, self.ddp = gen, disc, False
        # (z, G(z)) of the iteration's last generated batch, detached: what a jointly trained inference
        # net learns from (gancore.infer.encoder.JointInferer), so it draws no random numbers of its own.
        self.last_pair: tuple[torch.Tensor, torch.Tensor] | None = None

    # Conditional nets (Mirza & Osindero 2014): y is the one-hot label of the last real minibatch taken;
    # G's fakes get those labels too (the empirical class distribution), so D sees real and fake
    # examples of the same classes and no extra random numbers are drawn.
    def take(self) -> torch.Tensor:
        return self.stream.take()

    def G(self, net, z: torch.Tensor) -> torch.Tensor:
        return net(z) if self.stream.labels is None else net(z, self.stream.last_labels)

    def D(self, net, x: torch.Tensor) -> torch.Tensor:
        return net(x) if self.stream.labels is None else net(x, self.stream.last_labels)

    def attach_ddp(self, gen_ddp, disc_ddp) -> None:
        """Route the gradient-carrying forward passes through the players' DDP wrappers."""
        self.sync_gen, self.sync_disc, self.ddp = gen_ddp, disc_ddp, True

    def noise(self) -> torch.Tensor:
        z = sample_noise(
            self.cfg.batch_size,
            self.cfg.noise_dim,
            self.cfg.noise_prior,
            generator=self.rng,
            device=self.stream.data.device,
        )  # (m, noise_dim): the global draw, so every rank's generator stays in step
        return z if self.rows is None else z[self.rows[0] : self.rows[1]]  # (m/W, noise_dim)

    def grads(self, loss: torch.Tensor, params: list, retain_graph: bool = False):
        """d loss / d params; under DDP averaged over the ranks by the wrapper's backward hooks."""
        if not self.ddp:
            return torch.autograd.grad(loss, params, retain_graph=retain_graph)
        for p in params:
            p.grad = None
        loss.backward(inputs=params, retain_graph=retain_graph)
        return [p.grad for p in params]

    def autocast(self):
        """bf16 autocast of the forward passes when asked for; the losses are taken in fp32."""
        if self.cfg.precision == "bf16":
            return torch.autocast(self.stream.data.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def d_logits(self, x: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Two passes, as pylearn2's dropout_fprop(X) and dropout_fprop(S): each example gets its own
        # dropout mask either way, G's backward then only traverses the fake half, and batch norm
        # (DCGAN) keeps real and fake statistics apart as in the DCGAN reference code.
        with self.autocast():
            real_logits, fake_logits = self.D(self.sync_disc, x), self.D(self.sync_disc, fake)  # (m,), (m,)
        return real_logits.float(), fake_logits.float()

    def d_features_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass of D giving (f(x), logits): the same dropout masks and batch-norm statistics as D(x)."""
        with self.autocast():
            features = self.disc.features(x)  # (m, A)
            logits = self.disc.head(features)  # (m,)
        return features, logits.float()

    def constrain(self, net) -> None:
        if self.cfg.max_col_norm:
            apply_max_col_norm_(net, self.cfg.max_col_norm)

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return discriminator_loss(real, fake, label_smoothing=self.cfg.label_smoothing, halved=self.cfg.d_loss_halved)

    def unrolled_g_loss(self, x: torch.Tensor, fake: torch.Tensor, lr: float, momentum: float) -> torch.Tensor:
        """G's loss against D after ``cfg.unroll`` differentiated steps of D's optimizer (Metz et al. 2016)."""
        cfg = self.cfg
        return unrolled_generator_loss(
            self.disc,
            self.opt_d,
            x,
            fake,
            steps=cfg.unroll,
            lr=lr,
            momentum=momentum,
            g_loss=cfg.g_loss,
            label_smoothing=cfg.label_smoothing,
            halved=cfg.d_loss_halved,
            autocast=self.autocast if cfg.precision == "bf16" else None,
        )

    def simultaneous_step(self, lr: float, momentum: float) -> torch.Tensor:
        """The 2014 code's update: both players step on gradients from one shared minibatch."""
        x = self.take()  # (m, D)
        z = self.noise()
        with self.autocast():
            fake = self.G(self.sync_gen, z)  # (m, D)
        self.last_pair = (z, fake.detach())
        if self.cfg.g_loss == "feature_matching":
            # f(x) and f(G(z)) from the very passes that give D its logits: E_x f(x) from this real batch.
            real_features, real_logits = self.d_features_logits(x)
            fake_features, fake_logits = self.d_features_logits(fake)
            loss_g = feature_matching_loss(real_features, fake_features)
        else:
            real_logits, fake_logits = self.d_logits(x, fake)
            loss_g = generator_loss(fake_logits, self.cfg.g_loss)  # same logits, same dropout masks
        loss_d = self.d_loss(real_logits, fake_logits)
        if self.cfg.unroll:
            # Metz et al. Eqs. 5-6: G's gradient from D unrolled K steps ahead on this very pair of batches.
            loss_g = self.unrolled_g_loss(x, fake, lr, momentum)
        grads_d = self.grads(loss_d, self.d_params, retain_graph=True)
        grads_g = self.grads(loss_g, self.g_params)  # through D, to G's parameters only
        self.opt_d.step(grads_d, lr, momentum)
        self.opt_g.step(grads_g, lr, momentum)
        self.constrain(self.disc)
        self.constrain(self.gen)
        return _stats(loss_d, loss_g, real_logits, fake_logits)

    def alternating_step(self, lr: float, momentum: float) -> torch.Tensor:
        """Algorithm 1 as printed: k discriminator updates, then one generator update."""
        loss_d_sum = real_mean = None
        # ---- (1) for k steps: update D by ascending  1/m Σ [log D(x) + log(1 − D(G(z)))] ----
        for _ in range(self.cfg.k):
            x = self.take()  # fresh data minibatch (m, D); the last one also feeds an unroll
            z = self.noise()  # fresh noise
            with torch.no_grad(), self.autocast():  # G is not updated here: no graph through it
                fake = self.G(self.gen, z)  # (m, D)
            self.last_pair = (z, fake)
            real_logits, fake_logits = self.d_logits(x, fake)
            loss_d = self.d_loss(real_logits, fake_logits)
            grads_d = self.grads(loss_d, self.d_params)
            self.opt_d.step(grads_d, lr, momentum)
            self.constrain(self.disc)
            loss_d = loss_d.detach()
            d_real = torch.sigmoid(real_logits.detach()).mean()
            loss_d_sum = loss_d if loss_d_sum is None else loss_d_sum + loss_d
            real_mean = d_real if real_mean is None else real_mean + d_real
        # ---- (2) update G by descending  1/m Σ log(1 − D(G(z)))  (or the chosen G loss) ----------
        if self.cfg.g_loss == "feature_matching":
            x = self.take()  # a fresh data minibatch (m, D) for E_x f(x)
            with self.autocast():
                with torch.no_grad():  # the target: no graph through the real batch
                    real_features = self.disc.features(x)  # (m, A)
                fake_features = self.disc.features(self.sync_gen(self.noise()))  # fresh noise -> (m, A)
            loss_g = feature_matching_loss(real_features, fake_features)
            with torch.no_grad(), self.autocast():
                fake_logits = self.disc.head(fake_features).float()  # D(G(z)) for the metrics line only
        elif self.cfg.unroll:
            with self.autocast():
                fake = self.sync_gen(self.noise())  # fresh noise -> (m, D)
            loss_g = self.unrolled_g_loss(x, fake, lr, momentum)  # D unrolled from where its k steps left it
            with torch.no_grad(), self.autocast():
                fake_logits = self.disc(fake.detach()).float()  # D(G(z)) for the metrics line only
        else:
            with self.autocast():
                # fresh noise; D keeps its dropout (as in the 2014 AdversaryCost2). Plain D: it is only
                # differentiated through.
                # (conditional: the labels of the last D step's real minibatch)
                fake_logits = self.D(self.disc, self.G(self.sync_gen, self.noise())).float()
            loss_g = generator_loss(fake_logits, self.cfg.g_loss)
        grads_g = self.grads(loss_g, self.g_params)
        self.opt_g.step(grads_g, lr, momentum)
        self.constrain(self.gen)
        k = float(self.cfg.k)
        return torch.stack([loss_d_sum / k, loss_g.detach(), real_mean / k, torch.sigmoid(fake_logits.detach()).mean()])

    def step(self, lr: float, momentum: float) -> torch.Tensor:
        if self.cfg.update == "simultaneous":
            return self.simultaneous_step(lr, momentum)
        return self.alternating_step(lr, momentum)


def _stats(loss_d, loss_g, real_logits, fake_logits) -> torch.Tensor:
    with torch.no_grad():
        return torch.stack(
            [loss_d.detach(), loss_g.detach(), torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean()]
        )
