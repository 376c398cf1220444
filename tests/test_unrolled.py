"""Unrolled GANs (Metz et al. 2016): G's loss through K differentiated steps of D's optimizer."""

import json
import math

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from gancore.train import cli as train  # noqa: E402
from gancore.train import config  # noqa: E402
from gancore.train.losses import generator_loss  # noqa: E402
from gancore.train.unrolled import unrolled_generator_loss  # noqa: E402
from test_improved_techniques import _game  # noqa: E402

from _train_helpers import TINY, assert_same_state, state_of, tiny_config  # noqa: E402

TINY1 = [*TINY, "--threads", "1"]
DATA = torch.rand(64, 784, generator=torch.Generator().manual_seed(7))


def _setup(**overrides):
    torch.set_num_threads(1)
    cfg = tiny_config(d_hidden=[4], d_pieces=2, g_hidden=[8], noise_dim=3, **overrides)
    game = _game(cfg, DATA)
    x = DATA[:16]
    z = torch.randn(16, 3, generator=torch.Generator().manual_seed(8))
    return cfg, game, x, z


def _unrolled_grads(game, cfg, x, z, steps, lr=0.1, momentum=0.5):
    loss = unrolled_generator_loss(
        game.disc,
        game.opt_d,
        x,
        game.gen(z),
        steps=steps,
        lr=lr,
        momentum=momentum,
        g_loss=cfg.g_loss,
        halved=cfg.d_loss_halved,
    )
    return torch.autograd.grad(loss, list(game.gen.parameters()))


def test_k0_is_the_plain_loss_gradient_exactly():
    """With dropout on: the same masks (the generator reseeded), the same gradient, bit for bit."""
    cfg, game, x, z = _setup()
    game.rng.manual_seed(11)
    plain = torch.autograd.grad(generator_loss(game.disc(game.gen(z)), cfg.g_loss), list(game.gen.parameters()))
    game.rng.manual_seed(11)
    unrolled = _unrolled_grads(game, cfg, x, z, steps=0)
    assert all(torch.equal(a, b) for a, b in zip(plain, unrolled))


def _hand_d(params, x):
    """The tiny D (one maxout layer of 4 units × 2 pieces, then the logit), written out by hand."""
    w1, b1, wo, bo = params
    h = (x @ w1.t() + b1).view(x.shape[0], 4, 2).max(2).values
    return (h @ wo.t() + bo).squeeze(1)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_k_steps_equal_a_hand_unrolled_computation(optimizer):
    """K = 2 steps of D's optimizer, unrolled by hand with plain tensors, give the same G gradient; and
    it differs from the K = 0 gradient."""
    cfg, game, x, z = _setup(d_input_keep=1.0, d_hidden_keep=1.0, optimizer=optimizer)
    lr, mu = 0.1, 0.5
    # D's optimizer state as a few real steps leave it, so the unroll starts from non-zero buffers.
    for _ in range(2):
        game.step(lr, mu)
    d = game.disc
    params = [d.hidden[0].linear.weight, d.hidden[0].linear.bias, d.out.weight, d.out.bias]
    assert [p.data_ptr() for p in params] == [p.data_ptr() for p in d.parameters()]  # all of D, in order
    theta = [p.detach().clone().requires_grad_(True) for p in params]
    opt = game.opt_d
    fake = game.gen(z)
    if optimizer == "sgd":
        vel = [v.clone() for v in opt.velocity]
    else:
        m, v, t = [a.clone() for a in opt.m], [a.clone() for a in opt.v], opt.t
    for _ in range(2):
        j_d = 0.5 * (F.softplus(-_hand_d(theta, x)).mean() + F.softplus(_hand_d(theta, fake)).mean())
        g = torch.autograd.grad(j_d, theta, create_graph=True)
        if optimizer == "sgd":
            vel = [mu * a - lr * b for a, b in zip(vel, g)]
            theta = [p + a for p, a in zip(theta, vel)]
        else:
            t += 1
            m = [0.5 * a + 0.5 * b for a, b in zip(m, g)]  # β1 = 0.5
            v = [0.999 * a + 0.001 * b * b for a, b in zip(v, g)]
            theta = [
                p - lr / (1 - 0.5**t) * a / ((c + 1e-30).sqrt() / math.sqrt(1 - 0.999**t) + 1e-8)
                for p, a, c in zip(theta, m, v)
            ]
    hand = torch.autograd.grad(F.softplus(-_hand_d(theta, fake)).mean(), list(game.gen.parameters()))
    got = _unrolled_grads(game, cfg, x, z, steps=2, lr=lr, momentum=mu)
    for a, b in zip(hand, got):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-7), (a - b).abs().max()
    plain = _unrolled_grads(game, cfg, x, z, steps=0)
    assert any(not torch.allclose(a, b, rtol=1e-3, atol=1e-6) for a, b in zip(plain, got))
    d_before = [p.detach().clone() for p in d.parameters()]
    _unrolled_grads(game, cfg, x, z, steps=3)
    assert all(torch.equal(a, b) for a, b in zip(d_before, d.parameters()))  # D itself never moves


@pytest.mark.parametrize("update", ["simultaneous", "alternating"])
def test_d_keeps_its_plain_update(update):
    """One iteration with --unroll 3: D ends bit for bit where the plain game leaves it, G elsewhere."""
    after = {}
    for k in (0, 3):
        game = _game(tiny_config(unroll=k, update=update, d_input_keep=1.0, d_hidden_keep=1.0), DATA)
        game.step(0.1, 0.5)
        after[k] = ([p.detach().clone() for p in game.disc.parameters()], [p.detach() for p in game.gen.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(after[0][0], after[3][0]))
    assert any(not torch.equal(a, b) for a, b in zip(after[0][1], after[3][1]))


def test_dry_run_and_resume_are_bitwise_identical(tmp_path):
    ref, short = tmp_path / "ref", tmp_path / "short"
    args = [*TINY1, "--unroll", "2", "--update", "alternating", "--epochs", "2"]
    assert train.main([*args, "--out", str(ref)]) == 0
    rows = [json.loads(line) for line in (ref / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(r["loss_g"]) for r in rows)
    assert train.main([*args, "--out", str(short), "--max-steps", "11"]) == 0
    assert train.main(["--resume", str(short), "--max-steps", "16", "-q", "--no-eval", "--threads", "1"]) == 0
    assert_same_state(state_of(ref), state_of(short))


def test_flag_is_validated_and_refused_data_parallel():
    assert config.from_preset("mnist_2014").unroll == 0
    for bad, match in (
        (dict(unroll=-1), "unroll must be >= 0"),
        (dict(unroll=2, g_loss="feature_matching"), "unroll needs a G loss"),
        (dict(unroll=2, max_col_norm=1.9), "unroll cannot be combined with max_col_norm"),
    ):
        with pytest.raises(ValueError, match=match):
            config.from_preset("mnist_2014", **bad)
    with pytest.raises(ValueError, match="--unroll cannot run data parallel"):
        _game(tiny_config(unroll=2), DATA, shard=(0, 2))
    assert train.main([*TINY1, "--unroll", "-1", "--out", "unused"]) == 2
