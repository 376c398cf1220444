"""Replay an export of the authors' 2014 code through gancore's own training step, and compare.

    python benches/reference_2014/replay.py EXPORT.npz [--steps N] [--float64] [--nudge 1e-7]
    python benches/reference_2014/replay.py EXPORT.npz --at 999      # teacher-forced check at step 999

The export (made by running goodfeli/adversarial's ``mnist.yaml`` through pylearn2's SGD loop with the
noise z, and optionally D's dropout masks, replaced by values drawn with NumPy and saved; see
README "Does gancore train like the authors' code?") holds the initial parameters of G and D, the
indices of the training rows in each minibatch, the noise, the masks, J_D and J_G before every update,
every gradient at a few steps, and the parameters after some steps. This script starts gancore's
``mnist_2014`` models from those parameters (pylearn2 stores ``W`` as (in, out), torch as (out, in)),
feeds :class:`gancore.train.algorithm1.Game` the same minibatches, noise and masks, lets it take its
own simultaneous steps (``Game.simultaneous_step``, :class:`ClassicalMomentum`, ``lr_at``,
``momentum_at``), and prints ‖gancore − 2014‖ / ‖2014‖ for each recorded quantity. ``--at T`` instead
loads the 2014 code's parameters before update T and compares that one step's gradients, so rounding
differences that the game amplifies over hundreds of steps do not hide (or fake) a semantic one.

Only the randomness is fed in; the forward passes, the losses, the gradients and the updates are
gancore's, so any disagreement beyond float32 rounding is a difference of semantics.
"""

from __future__ import annotations

import argparse
import math
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from gancore.data import load_split
from gancore.train import algorithm1, models
from gancore.train.config import from_preset
from gancore.train.optimizers import ClassicalMomentum, lr_at, momentum_at

STEPS_PER_EPOCH = 500  # train[0:50000] in minibatches of 100

# pylearn2 parameter order of an AdversaryPair: G's MLP (h0 W, b, h1 W, b, y W, b), then D's.
G_KEYS = ["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias", "net.4.weight", "net.4.bias"]
D_KEYS = [
    "hidden.0.linear.weight",
    "hidden.0.linear.bias",
    "hidden.1.linear.weight",
    "hidden.1.linear.bias",
    "out.weight",
    "out.bias",
]


def load_export(path) -> dict:
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _pylearn2_names(export: dict) -> list[str]:
    # Written by Python 2 as a bytes array.
    return [n.decode() if isinstance(n, bytes) else str(n) for n in export["names"]]


def _to_torch(value: np.ndarray, key: str) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    return t.t().contiguous() if key.endswith("weight") else t.reshape(-1)


def build_players(export: dict, prefix: str = "init"):
    """gancore's mnist_2014 G and D (widths read off the export), loaded with its initial parameters
    (``prefix="after.T"``: with the 2014 code's parameters after T updates)."""
    names = _pylearn2_names(export)
    g_hidden = [int(export[f"init.{names[i]}"].shape[1]) for i in (0, 2)]
    d_units = [int(w) for w in export["widths"][1:]]
    pieces = int(export[f"init.{names[6]}"].shape[1]) // d_units[0]
    cfg = from_preset("mnist_2014", g_hidden=g_hidden, d_hidden=d_units, d_pieces=pieces)
    gen, disc = models.build_generator(cfg), models.build_discriminator(cfg)
    state = {"gen": {}, "disc": {}}
    for name, key in zip(names[:6], G_KEYS):
        state["gen"][key] = _to_torch(export[f"{prefix}.{name}"], key)
    for name, key in zip(names[6:], D_KEYS):
        state["disc"][key] = _to_torch(export[f"{prefix}.{name}"], key)
    gen.load_state_dict(state["gen"])
    disc.load_state_dict(state["disc"])
    return cfg, gen, disc


class ExportedStream:
    """The minibatches the authors' run drew, by training-row index, in its order (unconditional:
    no labels, as :class:`gancore.train.algorithm1.MinibatchStream` without ``labels``)."""

    labels = last_labels = None

    def __init__(self, train: torch.Tensor, batches: np.ndarray):
        self.data, self.batches, self.t = train, torch.from_numpy(batches), 0

    def take(self) -> torch.Tensor:
        rows = self.batches[self.t]
        self.t += 1
        return self.data.index_select(0, rows)


@contextmanager
def exported_dropout(export: dict, step_of, dtype=torch.float32):
    """Replace gancore's dropout with the export's masks (mask·scale, in pylearn2's graph order:
    real h0, h1, y; fake h0, h1, y), or with the identity when the export ran without dropout."""
    widths = [int(w) for w in export["widths"]]
    masks = export.get("masks")
    original = models.dropout
    calls = [0]

    def replayed(x, keep, generator=None, shard=None):
        if masks is None:
            return x
        k = calls[0] % 6
        calls[0] += 1
        n = x.shape[0]
        sizes = [n * w for w in widths] * 2
        start = sum(sizes[:k])
        m = masks[step_of()][start : start + sizes[k]].reshape(n, widths[k % 3])
        return x * torch.from_numpy(m).to(dtype)

    models.dropout = replayed
    try:
        yield
    finally:
        models.dropout = original


def build_game(export: dict, *, prefix: str = "init", train=None, dtype=torch.float32, nudge: float = 0.0):
    """A :class:`gancore.train.algorithm1.Game` of the export's players (parameters ``prefix``, scaled
    by 1 + ``nudge``), fed the export's minibatches and noise; returns (cfg, game, stream)."""
    cfg, gen, disc = build_players(export, prefix=prefix)
    gen.to(dtype), disc.to(dtype)
    if nudge:
        with torch.no_grad():
            for p in list(gen.parameters()) + list(disc.parameters()):
                p.mul_(1.0 + nudge)
    train = load_split("mnist", "train") if train is None else train
    stream = ExportedStream(torch.from_numpy(np.ascontiguousarray(train)).to(dtype), export["batches"])
    opt_g, opt_d = ClassicalMomentum(gen.parameters()), ClassicalMomentum(disc.parameters())
    game = algorithm1.Game(cfg, gen, disc, opt_g, opt_d, stream, torch.Generator())
    noise = torch.from_numpy(export["noise"]).to(dtype)
    game.noise = lambda: noise[stream.t - 1]  # the step's exported z (take() has already advanced)
    disc.train()
    return cfg, game, stream


def replay(
    export: dict, steps: int | None = None, train: np.ndarray | None = None, dtype=torch.float32, nudge: float = 0.0
) -> dict:
    """Run gancore on the export's randomness; return {quantity: ‖gancore − 2014‖ / ‖2014‖} and the
    losses of both codes.

    ``dtype=torch.float64`` runs gancore in double precision, and ``nudge`` multiplies every initial
    parameter by (1 + nudge): two controls that show how fast rounding-sized differences grow in this
    game, so a disagreement after many steps can be told from a difference of semantics.
    """
    steps = int(export["losses"].shape[0]) if steps is None else steps
    cfg, game, stream = build_game(export, train=train, dtype=dtype, nudge=nudge)
    gen, disc = game.gen, game.disc
    names = _pylearn2_names(export)
    keys = ["gen." + k for k in G_KEYS] + ["disc." + k for k in D_KEYS]
    params = dict(zip(keys, list(gen.parameters()) + list(disc.parameters())))
    by_name = dict(zip(names, keys))
    diffs: dict[str, list[float]] = {}  # label -> [sum of squared differences, sum of squares of theirs]
    ours = []

    def note(label, theirs, mine):
        """Accumulate ‖mine − theirs‖² and ‖theirs‖² under ``label`` (one label spans many tensors)."""
        theirs = np.asarray(theirs, dtype=np.float64)
        d = diffs.setdefault(label, [0.0, 0.0])
        d[0] += float(((np.asarray(mine, np.float64) - theirs) ** 2).sum())
        d[1] += float((theirs**2).sum())

    recorded_grads = sorted({int(k.split(".")[1]) for k in export if k.startswith("grad.")})
    recorded_after = sorted({int(k.split(".")[1]) for k in export if k.startswith("after.")})
    with exported_dropout(export, lambda: stream.t - 1, dtype):
        for t in range(steps):
            if t in recorded_grads:
                grads = _gradients(game, stream, t)
                stream.t = t  # the diagnostic pass drew the step's batch; draw it again for the update
                for name in names:
                    mine = grads[by_name[name]]
                    theirs = export[f"grad.{t}.{name}"]
                    note(
                        f"step {t}: gradient of {'G' if name.startswith('g.') else 'D'}",
                        theirs,
                        _from_torch(mine, by_name[name], theirs.shape),
                    )
            # lr_at is gancore's schedule; the export records the learning rate pylearn2 used.
            lr = lr_at(cfg, t)
            note("learning rate", export["lr"][t : t + 1], [lr])
            momentum = momentum_at(cfg, t // STEPS_PER_EPOCH)
            recorded = export["momentum"]
            if recorded.shape[0] == export["lr"].shape[0]:  # exports that record it per step
                note("momentum", recorded[t : t + 1], [momentum])
            stats = game.simultaneous_step(lr, momentum)
            ours.append([float(stats[0]), float(stats[1])])
            if t + 1 in recorded_after:
                for name in names:
                    # Compared as the change from the initial values: the parameters themselves barely
                    # move in a few steps, so their relative difference would hide a wrong update.
                    start = export[f"init.{name}"]
                    theirs = export[f"after.{t + 1}.{name}"] - start
                    mine = _from_torch(params[by_name[name]].detach(), by_name[name], start.shape) - start
                    net = "G" if name.startswith("g.") else "D"
                    note(f"after {t + 1} steps: change of {net}'s parameters", theirs, mine)
    theirs_losses = export["losses"][:steps]
    ours_arr = np.array(ours)
    note("J_D", theirs_losses[:, 0], ours_arr[:, 0])
    note("J_G", theirs_losses[:, 1], ours_arr[:, 1])
    relative = {label: math.sqrt(sq / max(ref, 1e-300)) for label, (sq, ref) in diffs.items()}
    return {"relative": relative, "ours": ours_arr, "theirs": theirs_losses, "steps": steps}


def gradients_at(export: dict, t: int, train: np.ndarray | None = None) -> dict:
    """Teacher-forced check at step ``t``: gancore's G and D set to the 2014 code's parameters before
    update ``t``, fed that step's minibatch, noise and masks; {"G", "D", "J_D", "J_G"} → relative
    difference of gancore's gradients and losses from the 2014 code's. Rounding does not accumulate
    here, so this checks the semantics anywhere in a run, however far the two trajectories have drifted."""
    prefix = f"after.{t}" if t else "init"
    if f"grad.{t}.{_pylearn2_names(export)[0]}" not in export or f"{prefix}.{_pylearn2_names(export)[0]}" not in export:
        recorded = sorted({int(k.split(".")[1]) for k in export if k.startswith("grad.")})
        raise ValueError(f"--at {t}: the export recorded the gradients and parameters of steps {recorded} only")
    _, game, stream = build_game(export, prefix=prefix, train=train)
    stream.t = t
    names = _pylearn2_names(export)
    keys = ["gen." + k for k in G_KEYS] + ["disc." + k for k in D_KEYS]
    by_name = dict(zip(names, keys))
    sums = {"G": [0.0, 0.0], "D": [0.0, 0.0]}
    with exported_dropout(export, lambda: stream.t - 1):
        grads, losses = _gradients(game, stream, t, with_losses=True)
    for name in names:
        theirs = np.asarray(export[f"grad.{t}.{name}"], np.float64)
        mine = _from_torch(grads[by_name[name]], by_name[name], theirs.shape).astype(np.float64)
        net = sums["G" if name.startswith("g.") else "D"]
        net[0] += float(((mine - theirs) ** 2).sum())
        net[1] += float((theirs**2).sum())
    out = {net: math.sqrt(a / max(b, 1e-300)) for net, (a, b) in sums.items()}
    for i, name in enumerate(("J_D", "J_G")):
        theirs = float(export["losses"][t, i])
        out[name] = abs(losses[i] - theirs) / abs(theirs)
        out[name + " (2014, gancore)"] = (theirs, losses[i])
    return out


def _gradients(game, stream, t, with_losses: bool = False):
    """J_D's gradient for D and J_G's for G on step ``t``'s batch, noise and masks, before the update."""
    x = stream.take()
    fake = game.gen(game.noise())
    real_logits, fake_logits = game.d_logits(x, fake)
    loss_d = game.d_loss(real_logits, fake_logits)
    loss_g = algorithm1.generator_loss(fake_logits, game.cfg.g_loss)
    gd = torch.autograd.grad(loss_d, game.d_params, retain_graph=True)
    gg = torch.autograd.grad(loss_g, game.g_params)
    keys = ["gen." + k for k in G_KEYS] + ["disc." + k for k in D_KEYS]
    grads = dict(zip(keys, list(gg) + list(gd)))
    return (grads, (float(loss_d.detach()), float(loss_g.detach()))) if with_losses else grads


def _from_torch(t: torch.Tensor, key: str, shape) -> np.ndarray:
    a = t.detach().numpy()
    return (a.T if key.endswith("weight") else a).reshape(shape)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("export", type=Path)
    p.add_argument("--steps", type=int, default=None, help="replay only the first N steps")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--float64", action="store_true", help="run gancore in double precision (a control)")
    p.add_argument("--nudge", type=float, default=0.0, help="scale gancore's initial parameters by 1 + NUDGE")
    p.add_argument("--trace", type=Path, help="write both codes' J_D and J_G of every step to this .npz")
    p.add_argument("--at", type=int, action="append", help="only the teacher-forced gradient check at step T")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.at:
        export = load_export(a.export)
        for t in a.at:
            r = gradients_at(export, t)
            (jd_theirs, jd_mine), (jg_theirs, jg_mine) = r["J_D (2014, gancore)"], r["J_G (2014, gancore)"]
            print(
                f"step {t} from the 2014 parameters: ‖Δ grad G‖/‖grad G‖ {r['G']:.3e}, ‖Δ grad D‖/‖grad D‖ "
                f"{r['D']:.3e}; J_D {jd_theirs:.6f} vs {jd_mine:.6f}, J_G {jg_theirs:.6f} vs {jg_mine:.6f}"
            )
        return 0
    result = replay(load_export(a.export), a.steps, dtype=torch.float64 if a.float64 else torch.float32, nudge=a.nudge)
    if a.trace:
        np.savez(a.trace, theirs=result["theirs"], ours=result["ours"])
    print(f"replayed {result['steps']} steps; ‖gancore − 2014‖ / ‖2014‖ for each quantity:")
    for label, d in result["relative"].items():
        print(f"  {label:<44} {d:.3e}")
    th, ou = result["theirs"], result["ours"]
    for t in sorted({0, 1, 2, min(9, len(th) - 1), len(th) - 1}):
        print(f"  step {t:>4}: J_D {th[t, 0]:.6f} vs {ou[t, 0]:.6f}   J_G {th[t, 1]:.6f} vs {ou[t, 1]:.6f}")
    return 0 if all(math.isfinite(d) for d in result["relative"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
