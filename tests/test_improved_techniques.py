"""Feature matching and minibatch discrimination (Salimans et al. 2016, §3.1-3.2) inside Algorithm 1."""

import json
import math

import pytest

torch = pytest.importorskip("torch")

from gancore.train import cli as train  # noqa: E402
from gancore.train import config  # noqa: E402
from gancore.train.algorithm1 import Game, MinibatchStream, data_batches_per_step  # noqa: E402
from gancore.train.models import build_models  # noqa: E402
from gancore.train.optimizers import make_optimizer  # noqa: E402

from _train_helpers import TINY, assert_same_state, state_of, tiny_config  # noqa: E402

TINY1 = [*TINY, "--threads", "1"]


def _game(cfg, data, shard=None):
    """A Game over ``data`` built from ``cfg.seed`` alone, as the trainer builds it."""
    gen, disc = build_models(cfg, data.double().mean(0))
    rng = torch.Generator().manual_seed(cfg.seed + 1)
    disc.generator = rng
    stream = MinibatchStream(data, cfg.batch_size, torch.Generator().manual_seed(cfg.seed + 2))
    stream.new_epoch()
    opt_g, opt_d = make_optimizer(cfg, gen.parameters()), make_optimizer(cfg, disc.parameters())
    return Game(cfg, gen, disc, opt_g, opt_d, stream, rng, shard=shard)


def _params(net):
    return [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("update", ["simultaneous", "alternating"])
def test_feature_matching_gradient_reaches_g_and_not_d(update):
    """One iteration: D ends where it ends with the non-saturating loss (the G loss never reaches D's
    update), while G moves, and differently."""
    data = torch.rand(64, 784, generator=torch.Generator().manual_seed(5))
    after = {}
    for g_loss in ("nonsaturating", "feature_matching"):
        game = _game(tiny_config(g_loss=g_loss, update=update), data)
        g0 = _params(game.gen)
        stats = game.step(0.1, 0.5)
        assert all(math.isfinite(v) for v in stats.tolist())
        after[g_loss] = (_params(game.gen), _params(game.disc), g0, stats)
    g_ns, d_ns, g0, _ = after["nonsaturating"]
    g_fm, d_fm, g0_fm, stats = after["feature_matching"]
    assert all(torch.equal(a, b) for a, b in zip(g0, g0_fm))  # the same start
    assert all(torch.equal(a, b) for a, b in zip(d_ns, d_fm))  # D: only its own loss, bit for bit
    assert any(not torch.equal(a, b) for a, b in zip(g0, g_fm))  # G moved ...
    assert any(not torch.equal(a, b) for a, b in zip(g_ns, g_fm))  # ... by the feature-matching gradient
    assert stats[1].item() > 0  # ‖E f(x) − E f(G(z))‖² of two different batches


def test_feature_matching_batches_per_scheme():
    """Simultaneous: the iteration's one real batch; alternating: k D batches and a fresh one for G."""
    data = torch.rand(96, 784, generator=torch.Generator().manual_seed(6))
    for update, k, batches in (("simultaneous", 1, 1), ("alternating", 1, 2), ("alternating", 2, 3)):
        cfg = tiny_config(g_loss="feature_matching", update=update, k=k)
        assert data_batches_per_step(cfg) == batches
        game = _game(cfg, data)
        game.step(0.1, 0.5)
        assert game.stream.pos == batches * cfg.batch_size
    assert data_batches_per_step(tiny_config(update="alternating", k=2)) == 2  # other losses: k, as before


FM, MBD = ["--g-loss", "feature_matching"], ["--minibatch-features", "6", "--minibatch-kernel-dim", "3"]


@pytest.mark.parametrize(
    "extra,g_loss,kernels",
    [
        (FM, "feature_matching", 0),
        ([*FM, "--update", "alternating"], "feature_matching", 0),
        (MBD, "nonsaturating", 6),
        (["--preset", "dcgan", "--dcgan-width", "4", *FM, *MBD], "feature_matching", 6),
    ],
    ids=["fm-simultaneous", "fm-alternating", "minibatch", "dcgan-fm-minibatch"],
)
def test_dry_run_exits_0_with_finite_losses(tmp_path, extra, g_loss, kernels):
    """``python -m gancore.train --dry-run --no-eval --g-loss feature_matching`` and friends."""
    run = tmp_path / "run"
    assert train.main([*TINY1, *extra, "--out", str(run)]) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [4, 8, 12, 16]  # 8 iterations per epoch, also with k + 1 batches
    for r in rows:
        assert all(math.isfinite(r[k]) for k in ("loss_d", "loss_g", "d_real", "d_fake"))
    saved = json.loads((run / "config.json").read_text())
    assert (saved["g_loss"], saved["minibatch_features"]) == (g_loss, kernels)


@pytest.mark.parametrize(
    "extra",
    [[*FM, "--update", "alternating"], MBD],
    ids=["fm-alternating", "minibatch"],
)
def test_resume_mid_epoch_is_bitwise_identical(tmp_path, extra):
    ref, short = tmp_path / "ref", tmp_path / "short"
    args = [*TINY1, *extra, "--epochs", "3"]
    assert train.main([*args, "--out", str(ref)]) == 0
    assert train.main([*args, "--out", str(short), "--max-steps", "11"]) == 0  # stops in epoch 2
    assert train.main(["--resume", str(short), "--max-steps", "24", "-q", "--no-eval", "--threads", "1"]) == 0
    assert_same_state(state_of(ref), state_of(short))


def test_whole_batch_techniques_refuse_data_parallel_training():
    data = torch.rand(64, 784)
    _game(tiny_config(), data, shard=(0, 2))  # the paper's game splits fine
    for overrides, flag in (
        ({"g_loss": "feature_matching"}, "--g-loss feature_matching"),
        ({"minibatch_features": 3}, "--minibatch-features"),
    ):
        with pytest.raises(ValueError, match=f"{flag}.*data parallel"):
            _game(tiny_config(**overrides), data, shard=(0, 2))


def test_new_knobs_are_validated():
    assert config.from_preset("mnist_2014", minibatch_features=0).minibatch_kernel_dim == 5  # the defaults
    with pytest.raises(ValueError, match="minibatch_features"):
        config.from_preset("mnist_2014", minibatch_features=-1)
    with pytest.raises(ValueError, match="minibatch_kernel_dim"):
        config.from_preset("mnist_2014", minibatch_kernel_dim=0)
    with pytest.raises(ValueError, match="g_loss"):
        config.from_preset("mnist_2014", g_loss="feature-matching")
