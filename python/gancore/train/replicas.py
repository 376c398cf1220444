"""Seed replicas batched into one set of kernels: R runs of one recipe, trained in lock-step.

The 2014 recipe has to be measured over seeds (issue 16; :mod:`gancore.train.sweep`), and its nets
are small: one seed's minibatch of 100 leaves a GPU mostly idle, launching kernels. Here R runs
that differ only in their seed take their steps together: every layer of every replica is one
batched matrix product (``torch.baddbmm`` over a leading replica axis), so R seeds cost about one
seed's kernel launches. Each replica stays an ordinary run: its own :class:`~.trainer.Trainer`
(run directory, config, lock, metrics, sample grids, checkpoints, resume), its own minibatch
order, noise and dropout masks drawn from its own generators **in the order a separate run draws
them**, its own optimizer. So replica r computes what ``python -m gancore.train --seed r`` computes,
up to the float rounding of a batched product against a single one (the test checks the losses and
parameters of the first steps against separate runs); as for every run, a seed fixes a run only on
one machine and one code path, and the game amplifies rounding (README, "Does gancore train like
the authors' code?").

How: every parameter of replica r becomes a view into row r of one stacked tensor (R, ...) per
parameter, and so does every tensor of its optimizer's state (momentum velocity; Adam's m and v).
The batched forward passes read the stacked tensors, the losses are R means in one pass, autograd
gives the stacked gradients, and one optimizer update and one max-norm constraint on the stacks
(elementwise, or row by row: no replica's numbers reach another's) write every replica's new values
in place. Checkpoints and ``load_state_dict`` act on each replica's own tensors, hence on the stack,
unchanged. What stays a loop over replicas is what each draws from its own generators: the noise
and dropout masks (each drawn into its row of one tensor) and the minibatch's row indices (the rows
themselves are gathered once).

Covered: the MLP nets of ``mnist_2014`` (MLP generator, maxout discriminator with dropout), either
update scheme (``simultaneous``, the 2014 code; ``alternating``, Algorithm 1 as printed), every G
loss but feature matching, label smoothing, the halved D loss, max-norm, SGD with momentum and Adam.
Refused with a one-line error: DCGAN, conditional nets, feature matching, minibatch features,
unrolling, the joint inferer, bf16 and torchrun (each would need its own batched path). CPU or one GPU.
"""

from __future__ import annotations

import copy
import logging
import os
import signal
import time

import torch
from torch import nn

from .losses import discriminator_loss, generator_loss
from .models import MaxoutDiscriminator, MLPGenerator, cap_row_norms_, draw_noise_, scale_noise_
from .optimizers import lr_at, momentum_at
from .progress import Progress
from .trainer import KILL_ENV, TrainingDiverged, _NoProgress, _restore_signal_handlers, install_stop_handlers

log = logging.getLogger("gancore.train")

# config field → (value the batched path needs, what to tell the user)
UNSUPPORTED = {
    "arch": ("mlp", "--arch {v}: replicas batch the MLP nets of mnist_2014 only"),
    "conditional": (False, "--conditional is not batched into replicas"),
    "g_loss": (None, "--g-loss feature_matching is not batched into replicas"),
    "minibatch_features": (0, "--minibatch-features is not batched into replicas"),
    "unroll": (0, "--unroll is not batched into replicas"),  # it differentiates twice: batched_linear cannot
    "joint_inferer": (False, "--joint-inferer is not batched into replicas"),
    "virtual_batch_norm": (False, "--virtual-batch-norm is not batched into replicas"),
    "precision": ("fp32", "--precision {v} is not batched into replicas (fp32 only)"),
}


def check_supported(cfg) -> None:
    """Raise ValueError (one line, naming the flag) when ``cfg`` needs what the batched path lacks."""
    for field, (needed, message) in UNSUPPORTED.items():
        if not hasattr(cfg, field):
            continue
        value = getattr(cfg, field)
        bad = value == "feature_matching" if field == "g_loss" else value != needed
        if bad:
            raise ValueError(message.format(v=value))


def _same_recipe(configs) -> None:
    """Every replica must be the same recipe: only the seed may differ (one schedule drives them all)."""
    first = {k: v for k, v in configs[0].to_dict().items() if k != "seed"}
    for cfg in configs[1:]:
        mine = {k: v for k, v in cfg.to_dict().items() if k != "seed"}
        diff = sorted(k for k in first.keys() | mine.keys() if first.get(k) != mine.get(k))
        if diff:
            raise ValueError(f"replicas must differ only in their seed; seed {cfg.seed} differs in {', '.join(diff)}")


class _Stacks:
    """The parameters of R modules of one architecture as views into R-row stacked tensors, and the
    R optimizers of those parameters as one optimizer of the stacks (:meth:`step`)."""

    def __init__(self, modules: list[nn.Module], optimizers: list):
        params = [list(m.parameters()) for m in modules]
        self.stacked: list[torch.Tensor] = []
        self._index: dict[int, int] = {}  # id(parameter of replica 0) → its position in ``stacked``
        for i, group in enumerate(zip(*params)):
            stack = torch.stack([p.detach() for p in group])  # (R, ...)
            for r, p in enumerate(group):
                p.data = stack[r]  # replica r's parameter now lives in row r: updates write into the stack
            self.stacked.append(stack.requires_grad_())
            self._index[id(group[0])] = i
        self.template = modules[0]  # the architecture the batched forward passes walk
        self.optimizers = optimizers
        self.optimizer = _stack_optimizers(optimizers, self.stacked)

    @torch.no_grad()
    def step(self, grads, lr: float, momentum: float) -> None:
        """Every replica's optimizer step at once: the stacked optimizer's elementwise update on the
        stacked gradients. Adam's step count is the replicas' own (they stand at the same step)."""
        if hasattr(self.optimizer, "t"):
            self.optimizer.t = self.optimizers[0].t
        self.optimizer.step(grads, lr, momentum)
        for opt in self.optimizers:
            if hasattr(opt, "t"):
                opt.t = self.optimizer.t

    @torch.no_grad()
    def cap_row_norms(self, max_norm: float | None) -> None:
        """:func:`~.models.apply_max_col_norm_` for every replica: each Linear's stacked weight, row by row."""
        if max_norm:
            for m in self.template.modules():
                if isinstance(m, nn.Linear):
                    cap_row_norms_(self.of(m.weight), max_norm)

    def of(self, p: torch.Tensor) -> torch.Tensor:
        """The stacked (R, ...) tensor of replica 0's parameter ``p``."""
        return self.stacked[self._index[id(p)]]

    def linear(self, layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        """x (R, n, in) → (R, n, out), every replica's own weights: one batched product."""
        return batched_linear(x, self.of(layer.weight), self.of(layer.bias))


def _stack_optimizers(optimizers: list, stacked: list[torch.Tensor]):
    """One optimizer of the stacked parameters whose state tensors are stacks of the replicas' own:
    each replica's state becomes a view into its row, as its parameters are, so a checkpoint saves
    (and a resume loads) a replica's state where the stacked step reads and writes it."""
    stacked_opt = copy.copy(optimizers[0])  # the hyperparameters (β1, β2, ε, ...) of every replica
    stacked_opt.params = stacked
    for name in stacked_opt.state_lists:
        stacks = [torch.stack(group) for group in zip(*(getattr(opt, name) for opt in optimizers))]
        for r, opt in enumerate(optimizers):
            setattr(opt, name, [stack[r] for stack in stacks])
        setattr(stacked_opt, name, stacks)
    return stacked_opt


def batched_linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """y_r = x_r W_rᵀ + b_r for every replica r: x (R, n, in), w (R, out, in), b (R, out) → (R, n, out).

    The product is one ``baddbmm``; its gradient is split over two autograd nodes, one towards x
    (the product with W held constant) and one towards W and b (:class:`_WeightGrad`, zero in value),
    summed. Why two: a backward pass asks for some inputs only (the simultaneous step's G pass wants
    G's parameters, not D's weights it runs through; its D pass does not want the gradient reaching G's
    samples), and the autograd engine skips a node whose outputs no requested input needs, where one
    custom node would compute every gradient its inputs could take. With one node a step of
    ``mnist_2014`` took 22 batched products where a separate run takes 18 (``nn.Linear``'s backward
    is pruned that way), about a tenth of a CPU step (``benches/bench_replicas.py``: 0.84-0.86x of
    separate runs before, 0.94-0.98x after; :mod:`gancore.common.allocator` made up the rest).

    Why not autograd's own backward of ``baddbmm(b, x, Wᵀ)``: it hands dL/dW back transposed
    (strided), on which the optimizers' elementwise updates run about 3x slower on a CPU;
    :class:`_WeightGrad` computes dL/dW = gᵀx in W's own layout, as ``nn.Linear``'s backward does.

    First-order only: each node holds the other's input constant, so a graph built for a second
    derivative (unrolling D, ``create_graph=True``) would lose the cross terms; ``UNSUPPORTED`` refuses
    ``--unroll`` for that reason too, and :class:`_WeightGrad` cannot be differentiated twice."""
    y = torch.baddbmm(b.detach().unsqueeze(1), x, w.detach().transpose(1, 2))  # gradient towards x only
    # + 0 in place, whose gradient goes to W and b: keeps y's dtype and allocates nothing (baddbmm's
    # backward does not read its output)
    return y.add_(_WeightGrad.apply(x.detach(), w, b))


class _WeightGrad(torch.autograd.Function):
    """Zero in value; backward gives W and b the gradient of x Wᵀ + b (see :func:`batched_linear`)."""

    @staticmethod
    def forward(ctx, x, w, b):  # x (R, n, in), w (R, out, in), b (R, out)
        ctx.save_for_backward(x)
        return x.new_zeros(()).expand(x.shape[0], x.shape[1], w.shape[1])  # (R, n, out), no storage

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):  # g (R, n, out)
        (x,) = ctx.saved_tensors
        grad_w = torch.bmm(g.transpose(1, 2), x) if ctx.needs_input_grad[1] else None  # (R, out, in), contiguous
        grad_b = g.sum(dim=1) if ctx.needs_input_grad[2] else None  # (R, out)
        return None, grad_w, grad_b


def _dropout(x: torch.Tensor, keep: float, generators: list[torch.Generator]) -> torch.Tensor:
    """:func:`gancore.train.models.dropout` for each replica's rows, each mask from its own generator:
    the same draws (shape, dtype, order) as a separate run, hence the same masks."""
    if keep >= 1.0:
        return x
    masks = torch.empty_like(x)
    for r, g in enumerate(generators):
        masks[r].bernoulli_(keep, generator=g)  # row r is contiguous: a separate run's draws, in place
    return x * masks.mul_(1.0 / keep)


class ReplicaGame:
    """One iteration of Algorithm 1 for R replicas at once (:mod:`gancore.train.algorithm1`'s two
    schemes, the same randomness per replica). ``step`` returns (R, 4): each replica's
    [loss_d, loss_g, mean D(x), mean D(G(z))], as ``Game.step`` returns them for one run."""

    def __init__(self, games):
        self.games, self.cfg = games, games[0].cfg
        for g in games:
            if not isinstance(g.gen, MLPGenerator) or not isinstance(g.disc, MaxoutDiscriminator):
                raise ValueError("replicas batch the MLP generator and maxout discriminator only")
            if g.disc.minibatch is not None:
                raise ValueError(UNSUPPORTED["minibatch_features"][1])
        self.G = _Stacks([g.gen for g in games], [g.opt_g for g in games])
        self.D = _Stacks([g.disc for g in games], [g.opt_d for g in games])
        self.rngs = [g.rng for g in games]  # noise and dropout masks, as in a separate run

    # ---- batched forward passes --------------------------------------------------------------
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z) for z (R, n, noise_dim): MLPGenerator's layers, batched → (R, n, D) in [0, 1]."""
        h = z
        for layer in self.G.template.net:
            h = self.G.linear(layer, h) if isinstance(layer, nn.Linear) else layer(h)
        return torch.sigmoid(h)

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """D's logits (R, n) for x (R, n, D): dropout (masks per replica) → maxout … → linear."""
        d = self.D.template
        for layer, keep in zip(d.hidden, d.keep):
            h = self.D.linear(layer.linear, _dropout(x, keep, self.rngs))  # (R, n, units*pieces)
            h = h.view(*h.shape[:2], layer.units, layer.pieces)  # (R, n, units, pieces), unit-major as Maxout
            x = h.amax(dim=3) if h.is_cuda else h.max(dim=3).values  # (R, n, units): Maxout.forward's reductions
        x = _dropout(x, d.keep[-1], self.rngs)
        return self.D.linear(d.out, x).squeeze(2)  # (R, n)

    # ---- the pieces every replica draws for itself, in a separate run's order ----------------
    def take(self) -> torch.Tensor:
        """Every replica's next minibatch (R, m, D): its own rows, gathered in one ``index_select``
        where the replicas share one training set (as ``sweep --batched`` makes them)."""
        streams = [g.stream for g in self.games]
        data = streams[0].data
        if any(s.data is not data for s in streams):
            return torch.stack([g.take() for g in self.games])  # (R, m, D): each its own data (dry runs)
        idx = torch.stack([s.next_indices() for s in streams])  # (R, m)
        return data.index_select(0, idx.view(-1)).view(*idx.shape, data.shape[1])

    def noise(self) -> torch.Tensor:
        """Every replica's noise batch (R, m, noise_dim): each row drawn from the replica's own
        generator as ``Game.noise`` draws it, then mapped onto the prior in one pass."""
        cfg = self.cfg
        z = torch.empty(len(self.games), cfg.batch_size, cfg.noise_dim, device=self.games[0].stream.data.device)
        for r, rng in enumerate(self.rngs):
            draw_noise_(z[r], cfg.noise_prior, rng)
        return scale_noise_(z, cfg.noise_prior)

    # ---- losses (R, m logits → R losses) and updates, one pass for all replicas ------------------
    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """J_D of every replica: (R,). The gradient of their sum w.r.t. replica r's rows is replica r's
        own gradient, as no parameter is shared between replicas."""
        cfg = self.cfg
        return discriminator_loss(real, fake, label_smoothing=cfg.label_smoothing, halved=cfg.d_loss_halved, dim=1)

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return generator_loss(fake_logits, self.cfg.g_loss, dim=1)  # (R,)

    def update(self, stacks: _Stacks, losses: torch.Tensor, lr: float, momentum: float) -> None:
        """Every replica's optimizer steps on its row of the gradient of Σ_r loss_r, then max-norm."""
        stacks.step(torch.autograd.grad(losses.sum(), stacks.stacked), lr, momentum)
        stacks.cap_row_norms(self.cfg.max_col_norm)

    # ---- Algorithm 1 -----------------------------------------------------------------------
    def step(self, lr: float, momentum: float) -> torch.Tensor:
        if self.cfg.update == "simultaneous":
            return self._simultaneous(lr, momentum)
        return self._alternating(lr, momentum)

    def _simultaneous(self, lr: float, momentum: float) -> torch.Tensor:
        """``Game.simultaneous_step`` for every replica: one minibatch and one noise batch each, D's
        and G's gradients from the same passes (same masks), then both updates."""
        x, z = self.take(), self.noise()
        fake = self.generate(z)
        real_logits, fake_logits = self.discriminate(x).float(), self.discriminate(fake).float()
        loss_g = self.g_loss(fake_logits)
        loss_d = self.d_loss(real_logits, fake_logits)
        grads_d = torch.autograd.grad(loss_d.sum(), self.D.stacked, retain_graph=True)
        grads_g = torch.autograd.grad(loss_g.sum(), self.G.stacked)  # through D, to G's rows only
        self.D.step(grads_d, lr, momentum)
        self.G.step(grads_g, lr, momentum)
        self.D.cap_row_norms(self.cfg.max_col_norm)
        self.G.cap_row_norms(self.cfg.max_col_norm)
        return _stats(loss_d, loss_g, real_logits, fake_logits)

    def _alternating(self, lr: float, momentum: float) -> torch.Tensor:
        """``Game.alternating_step`` for every replica: k D updates on fresh batches, then one G update
        on fresh noise through D with its dropout on."""
        loss_d_sum = real_mean = None
        for _ in range(self.cfg.k):
            x, z = self.take(), self.noise()
            with torch.no_grad():
                fake = self.generate(z)
            real_logits, fake_logits = self.discriminate(x).float(), self.discriminate(fake).float()
            loss_d = self.d_loss(real_logits, fake_logits)
            self.update(self.D, loss_d, lr, momentum)
            d_real = torch.sigmoid(real_logits.detach()).mean(dim=1)
            loss_d_sum = loss_d.detach() if loss_d_sum is None else loss_d_sum + loss_d.detach()
            real_mean = d_real if real_mean is None else real_mean + d_real
        fake_logits = self.discriminate(self.generate(self.noise())).float()
        loss_g = self.g_loss(fake_logits)
        self.update(self.G, loss_g, lr, momentum)
        k = float(self.cfg.k)
        return torch.stack(
            [loss_d_sum / k, loss_g.detach(), real_mean / k, torch.sigmoid(fake_logits.detach()).mean(dim=1)], dim=1
        )


def _stats(loss_d, loss_g, real_logits, fake_logits) -> torch.Tensor:
    with torch.no_grad():
        return torch.stack(
            [
                loss_d.detach(),
                loss_g.detach(),
                torch.sigmoid(real_logits).mean(dim=1),
                torch.sigmoid(fake_logits).mean(dim=1),
            ],
            dim=1,
        )  # (R, 4)


class ReplicaTrainer:
    """R :class:`~.trainer.Trainer` objects (one per seed, each set up and resumed as a separate run)
    trained in lock-step by one :class:`ReplicaGame`. They must stand at the same step.

    Each replica writes its own metrics, sample grids, curves and checkpoints exactly when a separate
    run would (its ``images_per_s`` counts its own examples per second of the batched run). A
    replica whose losses or weights turn NaN/inf is reported and left at its last good checkpoint
    while the others go on; ``diverged`` lists their seeds. Ctrl-C/SIGTERM: every replica
    finishes the step, checkpoints, and ``run`` raises KeyboardInterrupt.
    """

    def __init__(self, trainers):
        if not trainers:
            raise ValueError("no replicas to train")
        configs = [t.cfg for t in trainers]
        _same_recipe(configs)
        check_supported(configs[0])
        steps = {t.step for t in trainers}
        if len(steps) != 1:
            raise ValueError(f"replicas must stand at the same step to train together; they are at {sorted(steps)}")
        if any(t.dist.enabled for t in trainers):
            raise ValueError("replicas run in one process; train them without torchrun")
        self.trainers = trainers
        self.game = ReplicaGame([t.game for t in trainers])
        self.diverged: list[int] = []
        self._stop_signal: int | None = None

    @property
    def step(self) -> int:
        return self.trainers[0].step

    def _live(self):
        return [(r, t) for r, t in enumerate(self.trainers) if t.cfg.seed not in self.diverged]

    def run(self) -> None:
        first = self.trainers[0]
        cfg, total, per_epoch = first.cfg, first.total_steps, first.steps_per_epoch
        kill_at = int(os.environ.get(KILL_ENV, "0") or 0)
        progress = Progress(total, first.step)
        acc = torch.zeros(len(self.trainers), 4, dtype=torch.float64, device=first.device)
        n_acc, t_last, step_last = 0, time.perf_counter(), first.step
        old = self._install_signal_handlers()
        try:
            while first.step < total:
                if first.step % per_epoch == 0:
                    for t in self.trainers:
                        t.stream.new_epoch()
                lr, mom = lr_at(cfg, first.step), momentum_at(cfg, first.epoch)
                acc += self.game.step(lr, mom)
                n_acc += 1
                for t in self.trainers:
                    t.step += 1
                if kill_at and first.step == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                end_of_epoch = first.step % per_epoch == 0
                if first.step % cfg.log_every == 0 or end_of_epoch or first.step == total or self._stop_signal:
                    now = time.perf_counter()
                    ips = (first.step - step_last) * cfg.batch_size * cfg.k / (now - t_last)  # per replica
                    self._log(acc, n_acc, lr, mom, ips, progress)
                    acc.zero_()
                    n_acc, t_last, step_last = 0, time.perf_counter(), first.step
                if end_of_epoch:
                    progress.message(f"epoch {first.step // per_epoch} done (step {first.step})")
                    self._each(lambda t: t.save_samples(f"epoch_{t.step // per_epoch:04d}.png"))
                    self._each(lambda t: t.save_checkpoint())
                    self._each(lambda t: t._plot_curves())
                    t_last = time.perf_counter()
                if self._stop_signal:
                    progress.message(
                        f"signal {self._stop_signal}: saving checkpoints at step {first.step} and stopping"
                    )
                    self._each(lambda t: t.save_checkpoint())
                    raise KeyboardInterrupt
                if not self._live():
                    raise TrainingDiverged(f"every replica diverged (seeds {', '.join(map(str, self.diverged))})")
            self._each(lambda t: t.save_checkpoint() if t.saved_step != t.step else None)
            self._each(lambda t: t.save_samples("final.png"))
            self._each(lambda t: t._plot_curves())
        finally:
            progress.close()
            _restore_signal_handlers(old)

    def _each(self, action) -> None:
        """``action(trainer)`` for every live replica; one that diverged is set aside, not fatal."""
        for _, t in self._live():
            try:
                action(t)
            except TrainingDiverged as exc:
                self._set_aside(t, exc)

    def _set_aside(self, t, exc) -> None:
        log.error("seed %d: %s; the other replicas go on", t.cfg.seed, exc)
        self.diverged.append(t.cfg.seed)

    def _log(self, acc, n_acc, lr, mom, ips, progress) -> None:
        means = []
        for r, t in self._live():
            try:
                t._log_metrics(acc[r], n_acc, lr, mom, ips, _NoProgress())  # metrics.jsonl; NaN → TrainingDiverged
            except TrainingDiverged as exc:
                self._set_aside(t, exc)
                continue
            means.append(acc[r] / n_acc)
        if means:
            m = torch.stack(means).mean(dim=0).tolist()
            first = self.trainers[0]
            row = dict(loss_d=m[0], loss_g=m[1], d_real=m[2], d_fake=m[3], lr=lr, momentum=mom, images_per_s=ips)
            progress.update(first.step, (first.step - 1) // first.steps_per_epoch, row)  # the replicas' mean

    def _install_signal_handlers(self):
        return install_stop_handlers(self)


def train_together(seeds: list[int], run_dirs: dict, train_args: list[str], epochs: int) -> dict[int, int]:
    """``python -m gancore.train TRAIN_ARGS --seed s --out/--resume DIR --epochs E --no-eval`` for every
    seed, as batched replicas; the exit code per seed (0, or the code the separate run would give).

    Each seed's run is set up (or resumed) exactly as the command would do it, lock included. Seeds
    that stand at different steps (a sweep killed between two replicas' checkpoints) are brought level
    first: the ones behind train together up to the next one's step, and so on.
    """
    from ..common.failures import EXIT_DIVERGED, EXIT_OK
    from ..common.lock import release_run_lock
    from ..distributed.group import SINGLE
    from . import cli
    from .flags import build_parser

    trainers = []
    codes: dict[int, int] = {}
    try:
        for seed in seeds:
            run_dir = run_dirs[seed]
            where = ["--resume", str(run_dir)] if (run_dir / "config.json").is_file() else ["--out", str(run_dir)]
            args = build_parser().parse_args([*train_args, "--seed", str(seed), *where, "--epochs", str(epochs)])
            cfg, run_dir, resuming = cli.resolve(args)
            check_supported(cfg)
            device = cli.prepare_process(cfg, torch)  # on a CPU, glibc keeps freed memory: ~6 % of a batched step
            trainers.append(cli.start(cfg, run_dir, device, SINGLE, resuming))
        _share_training_data(trainers)
        target = trainers[0].total_steps
        while True:
            live = [t for t in trainers if t.cfg.seed not in codes and t.step < target]
            if not live:
                break
            lowest = min(t.step for t in live)
            group = [t for t in live if t.step == lowest]
            ahead = sorted({t.step for t in live if t.step > lowest})
            stop_at = ahead[0] if ahead else target
            for t in group:
                t.total_steps = stop_at  # bring the group up to the next replica's step (or the end)
            log.info(
                "replicas: seeds %s together, steps %d to %d (%d per epoch)",
                ", ".join(str(t.cfg.seed) for t in group),
                lowest,
                stop_at,
                group[0].steps_per_epoch,
            )
            replica_trainer = ReplicaTrainer(group)
            try:
                replica_trainer.run()
            except TrainingDiverged as exc:  # every replica of the group: each was reported as it went
                log.error("%s", exc)
            finally:
                for t in group:
                    t.total_steps = target
            for seed in replica_trainer.diverged:
                codes[seed] = EXIT_DIVERGED
        for t in trainers:
            codes.setdefault(t.cfg.seed, EXIT_OK)
        return codes
    finally:
        for t in trainers:
            release_run_lock(t.run_dir)


def _share_training_data(trainers) -> None:
    """One copy of the training set for all replicas (each Trainer loaded its own); a dry run's
    synthetic data depend on the seed, so they stay apart."""
    first = trainers[0]
    for t in trainers[1:]:
        if not t.cfg.dry_run and t.data.shape == first.data.shape and torch.equal(t.data, first.data):
            t.data = t.stream.data = first.data
