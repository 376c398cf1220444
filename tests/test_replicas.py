"""Seed replicas batched into one set of kernels (gancore.train.replicas, ``sweep --batched``): replica r is
the separate run of seed r, resumes bit for bit, catches up when left behind, and keeps a diverged replica
from touching the others."""

import json
import math
import signal

import pytest
import torch

from gancore.distributed.group import SINGLE
from gancore.train import checkpoints, cli, replicas, sweep
from gancore.train.trainer import Trainer

from _train_helpers import TINY


def _separate(tmp_path, seed, flags, epochs=2):
    run = tmp_path / "separate" / f"seed_{seed}"
    assert cli.main([*TINY, *flags, "--seed", str(seed), "--out", str(run), "--epochs", str(epochs)]) == 0
    return run


def _state(run):
    _, g, d, t = checkpoints.load(checkpoints.latest(run), device="cpu")
    return g, d, t


def _losses(run):
    return [
        (r["step"], r["loss_d"], r["loss_g"])
        for r in map(json.loads, (run / "metrics.jsonl").read_text().split("\n")[:-1])
    ]


def _close(a: dict, b: dict, rtol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=rtol, atol=1e-7), k


@pytest.mark.parametrize(
    "flags",
    [
        [],  # mnist_2014's scheme: simultaneous, SGD with momentum
        ["--update", "alternating", "--k", "2"],
        ["--optimizer", "adam", "--lr", "2e-4", "--max-col-norm", "0.5", "--label-smoothing", "0.1"],
        ["--update", "alternating", "--g-loss", "minimax"],
    ],
    ids=["simultaneous", "alternating-k2", "adam-maxnorm-smoothing", "alternating-minimax"],
)
def test_each_replica_computes_the_separate_run_of_its_seed(tmp_path, flags):
    """The defining property: batching changes how the products are launched, not what a replica computes.
    Same random draws (the generators end in the same state), losses and weights equal to float rounding."""
    seeds = [0, 1, 2]
    dirs = {s: tmp_path / "batched" / f"seed_{s}" for s in seeds}
    assert replicas.train_together(seeds, dirs, [*TINY, *flags], 2) == {0: 0, 1: 0, 2: 0}
    for s in seeds:
        alone = _separate(tmp_path, s, flags)
        (ga, da, ta), (gb, db, tb) = _state(alone), _state(dirs[s])
        assert torch.equal(ta["rng.device"], tb["rng.device"]) and torch.equal(ta["rng.perm"], tb["rng.perm"])
        _close(ga, gb, 1e-5)
        _close(da, db, 1e-5)
        for (sa, lda, lga), (sb, ldb, lgb) in zip(_losses(alone), _losses(dirs[s]), strict=True):
            assert sa == sb and lda == pytest.approx(ldb, rel=1e-5) and lga == pytest.approx(lgb, rel=1e-5)
    assert not torch.allclose(_state(dirs[0])[0]["net.0.weight"], _state(dirs[1])[0]["net.0.weight"])


def test_batched_resume_is_bit_identical_and_runs_resume_as_ordinary_runs(tmp_path):
    straight = {s: tmp_path / "straight" / f"seed_{s}" for s in (0, 1)}
    chunked = {s: tmp_path / "chunked" / f"seed_{s}" for s in (0, 1)}
    replicas.train_together([0, 1], straight, TINY, 2)
    replicas.train_together([0, 1], chunked, TINY, 1)
    replicas.train_together([0, 1], chunked, TINY, 2)  # resumes both from their epoch-1 checkpoints
    for s in (0, 1):
        for a, b in zip(_state(straight[s]), _state(chunked[s]), strict=True):
            for k in a:
                if not k.startswith("rng.torch"):  # the global generator: each Trainer reseeds it on start
                    assert torch.equal(a[k], b[k]), k
        assert _losses(straight[s]) == _losses(chunked[s])
        # A replica's directory is an ordinary run: python -m gancore.train continues it.
        assert cli.main([*TINY, "--resume", str(chunked[s]), "--epochs", "3"]) == 0


def test_a_replica_left_behind_catches_up_before_the_others_move(tmp_path):
    """A sweep killed between two replicas' checkpoints leaves them at different steps: the one behind
    trains alone to the others' step, then all go on together, and each is still its seed's run."""
    dirs = {s: tmp_path / "batched" / f"seed_{s}" for s in (0, 1)}
    replicas.train_together([0], dirs, TINY, 1)  # seed 0 at step 8, seed 1 not started
    assert replicas.train_together([0, 1], dirs, TINY, 2) == {0: 0, 1: 0}
    for s in (0, 1):
        g, d, _ = _state(dirs[s])
        ga, da, _ = _state(_separate(tmp_path, s, []))
        _close(g, ga, 1e-5)
        _close(d, da, 1e-5)


def test_a_diverged_replica_is_set_aside_and_does_not_touch_the_others(tmp_path):
    flags = [*TINY, "--epochs", "2"]
    trainers = []
    for s in (0, 1):
        args = cli.build_parser().parse_args([*flags, "--seed", str(s), "--out", str(tmp_path / f"seed_{s}")])
        cfg, run_dir, _ = cli.resolve(args)
        trainers.append(cli.start(cfg, run_dir, torch.device("cpu"), SINGLE, False))
    with torch.no_grad():
        next(trainers[1].gen.parameters()).fill_(math.nan)  # seed 1's G is poisoned from the first step
    group = replicas.ReplicaTrainer(trainers)
    group.run()
    assert group.diverged == [1]
    assert checkpoints.latest(tmp_path / "seed_1") is None  # no NaN checkpoint was written
    g, d, _ = _state(tmp_path / "seed_0")
    ga, da, _ = _state(_separate(tmp_path, 0, []))
    _close(g, ga, 1e-5)
    _close(d, da, 1e-5)


@pytest.mark.parametrize(
    "flags,named",
    [
        (["--preset", "dcgan"], "--arch dcgan"),
        (["--conditional"], "--conditional"),
        (["--g-loss", "feature_matching"], "--g-loss feature_matching"),
        (["--minibatch-features", "4"], "--minibatch-features"),
        (["--update", "alternating", "--unroll", "2"], "--unroll"),
    ],
)
def test_what_is_not_batched_is_a_one_line_error_before_anything_runs(tmp_path, caplog, flags, named):
    out, train_flags = tmp_path / "sweep", [f for f in TINY if f != "--no-eval"]  # the sweep sets --no-eval
    assert (
        sweep.main(["--seeds", "0-1", "--eval-epochs", "1", "--batched", "--out", str(out), "--", *train_flags, *flags])
        == 2
    )
    assert named in caplog.text
    assert not any(out.glob("seed_*/checkpoints"))


def test_replicas_must_be_one_recipe(tmp_path):
    a = Trainer(_cfg(seed=0), tmp_path / "a", torch.device("cpu"))
    b = Trainer(_cfg(seed=1, lr=0.01), tmp_path / "b", torch.device("cpu"))
    with pytest.raises(ValueError, match="differ only in their seed; seed 1 differs in lr"):
        replicas.ReplicaTrainer([a, b])


def _cfg(**overrides):
    from _train_helpers import tiny_config

    return tiny_config(**overrides)


def test_a_signal_checkpoints_every_replica_and_the_sweep_continues_bit_for_bit(tmp_path, monkeypatch):
    straight = {s: tmp_path / "straight" / f"seed_{s}" for s in (0, 1)}
    stopped = {s: tmp_path / "stopped" / f"seed_{s}" for s in (0, 1)}
    replicas.train_together([0, 1], straight, TINY, 2)

    def signalled_at_once(self):
        self._stop_signal = signal.SIGTERM  # as if SIGTERM arrived during the first step
        return {}

    monkeypatch.setattr(replicas.ReplicaTrainer, "_install_signal_handlers", signalled_at_once)
    with pytest.raises(KeyboardInterrupt):
        replicas.train_together([0, 1], stopped, TINY, 2)
    assert [checkpoints.latest(stopped[s]).name for s in (0, 1)] == ["step_00000001"] * 2
    monkeypatch.undo()
    replicas.train_together([0, 1], stopped, TINY, 2)  # the locks were released: it continues
    for s in (0, 1):
        a, b = _state(straight[s]), _state(stopped[s])
        for x, y in zip(a, b, strict=True):
            assert all(torch.equal(x[k], y[k]) for k in x if not k.startswith("rng.torch"))


def _products(step) -> int:
    """Matrix products one call of ``step`` launches (aten mm/addmm/bmm/baddbmm, forward and backward)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    names = {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}
    return sum(e.count for e in prof.key_averages() if e.key in names)


@pytest.mark.parametrize("update", ["simultaneous", "alternating"])
def test_a_batched_step_launches_the_products_of_one_separate_step(tmp_path, update):
    """Batching R seeds must not add work: a backward pass that asks for G's parameters only (or D's
    only) skips the gradients it does not need, as ``nn.Linear``'s backward does in a separate run, so
    one batched step of R replicas launches as many products as one replica's separate step."""
    separate = Trainer(_cfg(seed=0, update=update), tmp_path / "a", torch.device("cpu"))
    together = [Trainer(_cfg(seed=s, update=update), tmp_path / f"b{s}", torch.device("cpu")) for s in (0, 1, 2)]
    for t in [separate, *together]:
        t.stream.new_epoch()
    batched = replicas.ReplicaGame([t.game for t in together])
    n_separate = _products(lambda: separate.game.step(0.1, 0.5))
    n_batched = _products(lambda: batched.step(0.1, 0.5))
    assert n_separate > 0 and n_batched == n_separate


def _ops(step, prefixes) -> dict[str, int]:
    """For each of ``prefixes``, how many aten ops whose names start with it one call of ``step`` launches."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return {p: sum(e.count for e in prof.key_averages() if e.key.startswith(p)) for p in prefixes}


# the optimizer's updates, the losses, max-norm and the gather of the minibatch rows: none of them
# draws random numbers
SHARED_OPS = ("aten::_foreach_", "aten::softplus", "aten::renorm", "aten::index_select")


def _replicas(tmp_path, seeds, name="r", **overrides):
    """Trainers of ``seeds`` sharing one training set (as ``sweep --batched`` makes them), at a new epoch."""
    trainers = [Trainer(_cfg(seed=s, **overrides), tmp_path / f"{name}{s}", torch.device("cpu")) for s in seeds]
    for t in trainers[1:]:
        t.data = t.stream.data = trainers[0].data  # a dry run's data depend on the seed: share seed 0's
    for t in trainers:
        t.stream.new_epoch()
    return trainers


@pytest.mark.parametrize("update", ["simultaneous", "alternating"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_updates_losses_and_max_norm_run_once_for_all_replicas(tmp_path, update, optimizer):
    """One set of kernels for R seeds: what a replica does not draw from its own generators (the
    optimizer's update, the losses, the max-norm constraint, the gather of the minibatch rows) launches
    as many ops for 4 replicas as for one, the count a GPU pays in launches. Only the draws stay per
    replica: row indices, noise and dropout masks."""
    overrides = dict(update=update, optimizer=optimizer, max_col_norm=0.5, label_smoothing=0.1)
    counts = []
    for n in (1, 4):
        game = replicas.ReplicaGame([t.game for t in _replicas(tmp_path, range(n), f"{n}_", **overrides)])
        counts.append(_ops(lambda: game.step(0.1, 0.5), SHARED_OPS))  # noqa: B023 (called here, at once)
    assert all(c > 0 for c in counts[0].values()), counts[0]
    assert counts[1] == counts[0]


def test_replicas_sharing_a_training_set_take_their_own_rows_and_noise(tmp_path):
    """The batched minibatch (one gather from the shared training set) and noise (each replica's row
    from its own generator, scaled in one pass) are what each replica's own stream and game draw."""
    trainers = _replicas(tmp_path, (0, 1, 2), noise_prior="uniform")
    twins = _replicas(tmp_path, (0, 1, 2), "twin", noise_prior="uniform")
    game = replicas.ReplicaGame([t.game for t in trainers])
    for _ in range(3):
        x, z = game.take(), game.noise()
        for r, t in enumerate(twins):
            assert torch.equal(x[r], t.game.take()) and torch.equal(z[r], t.game.noise())
    for a, b in zip(trainers, twins, strict=True):
        assert a.stream.pos == b.stream.pos and torch.equal(a.rng.get_state(), b.rng.get_state())


def test_a_replica_checkpoint_holds_its_own_optimizer_state(tmp_path):
    """The replicas' optimizer states are rows of the stacked optimizer's: after batched steps, each
    replica's velocity (what its checkpoint saves) is the row the stacked update wrote, not a stale copy."""
    trainers = [Trainer(_cfg(seed=s), tmp_path / str(s), torch.device("cpu")) for s in (0, 1)]
    for t in trainers:
        t.stream.new_epoch()
    game = replicas.ReplicaGame([t.game for t in trainers])
    for _ in range(3):
        game.step(0.1, 0.5)
    for r, t in enumerate(trainers):
        for own, stacked in zip(t.opt_d.velocity, game.D.optimizer.velocity, strict=True):
            assert own.abs().sum() > 0 and torch.equal(own, stacked[r])
            assert own.data_ptr() == stacked[r].data_ptr()  # a view, so a resume's copy_ lands in the stack


def test_the_allocator_setting_applies_where_glibc_is_and_is_a_no_op_elsewhere(monkeypatch):
    """Batched CPU steps keep freed memory in the heap (gancore.common.allocator); on glibc Linux mallopt
    takes the thresholds, elsewhere (or where the user set them) nothing happens and nothing breaks."""
    import ctypes
    import platform

    from gancore.common import allocator

    for name in allocator.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        pytest.skip(f"glibc's mallopt is what is tested; this is {platform.system()} {platform.libc_ver()}")
    assert allocator.keep_freed_memory() is True
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")  # the user's own setting stands
    assert allocator.keep_freed_memory() is False
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")

    def no_libc(_name):
        raise OSError("no such library")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert allocator.keep_freed_memory() is False
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False


def test_batched_linear_is_x_w_transposed_plus_b_with_its_gradients_for_each_input():
    """The two-node split gives every input the gradient of one product, replica by replica, and a
    pass that asks for x only, or for W and b only, gets exactly those."""
    gen = torch.Generator().manual_seed(0)
    x, w, b = (torch.randn(*s, generator=gen, dtype=torch.float64) for s in [(3, 4, 5), (3, 6, 5), (3, 6)])
    x, w, b = (t.requires_grad_() for t in (x, w, b))
    y = replicas.batched_linear(x, w, b)
    plain = torch.stack([torch.nn.functional.linear(x[r], w[r], b[r]) for r in range(3)])
    assert y.shape == (3, 4, 6) and y.is_contiguous() and torch.allclose(y, plain)
    g = torch.randn(3, 4, 6, generator=gen, dtype=torch.float64)
    for inputs in [(x, w, b), (x,), (w, b)]:
        got = torch.autograd.grad(replicas.batched_linear(x, w, b), inputs, g)
        want = torch.autograd.grad(plain, inputs, g, retain_graph=True)
        assert all(torch.allclose(a, e) for a, e in zip(got, want, strict=True))
    assert replicas.batched_linear(x.bfloat16(), w.bfloat16(), b.bfloat16()).dtype == torch.bfloat16
