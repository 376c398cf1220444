"""Shapes, initializations and the dropout/maxout semantics of the paper's models (SPEC §3)."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gancore.train import config  # noqa: E402
from gancore.train.models import (  # noqa: E402
    DCGANDiscriminator,
    DCGANGenerator,
    Maxout,
    MaxoutDiscriminator,
    build_models,
    dropout,
    sample_noise,
)

from _train_helpers import tiny_config  # noqa: E402


def test_uniform_noise_is_zero_mean_unit_variance_on_plus_minus_sqrt3():
    z = sample_noise(20000, 10, "uniform", generator=torch.Generator().manual_seed(0))
    assert z.shape == (20000, 10) and z.dtype == torch.float32
    assert z.min() >= -math.sqrt(3) and z.max() <= math.sqrt(3)
    assert abs(z.mean().item()) < 0.01 and abs(z.var().item() - 1) < 0.02
    assert z.max() > 1.7 and z.min() < -1.7  # fills the interval


def test_gaussian_noise_and_reproducibility():
    a = sample_noise(5000, 4, "gaussian", generator=torch.Generator().manual_seed(1))
    b = sample_noise(5000, 4, "gaussian", generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and abs(a.std().item() - 1) < 0.03
    with pytest.raises(ValueError, match="prior"):
        sample_noise(2, 2, "laplace")


@pytest.mark.parametrize("prior", ["uniform", "gaussian", "hypercube"])
@pytest.mark.parametrize("shape", [(100, 100), (7, 3), (1, 1)])
def test_noise_is_torch_rand_or_randn_and_rows_drawn_apart_match(prior, shape):
    """The draw is the numbers torch.rand/randn give (runs keep their noise across versions), and a
    row drawn into a bigger tensor with draw_noise_ and scaled with it is the same draw (seed replicas)."""
    from gancore.train.models import SQRT3, draw_noise_, scale_noise_

    g, g_ref, g_row = (torch.Generator().manual_seed(5) for _ in range(3))
    z = sample_noise(*shape, prior, generator=g)
    raw = torch.randn(*shape, generator=g_ref) if prior == "gaussian" else torch.rand(*shape, generator=g_ref)
    assert torch.equal(z, raw * (2 * SQRT3) - SQRT3 if prior == "uniform" else raw)
    rows = torch.empty(2, *shape)
    draw_noise_(rows[1], prior, g_row)
    assert torch.equal(scale_noise_(rows, prior)[1], z)
    assert torch.equal(g.get_state(), g_row.get_state())


def test_mnist_2014_shapes_and_initialization():
    cfg = config.from_preset("mnist_2014")
    mean = torch.rand(784, dtype=torch.float64)
    mean[:10] = 0.0  # always-black pixels: the clip keeps their bias finite
    gen, disc = build_models(cfg, mean)
    sizes = [(m.in_features, m.out_features) for m in gen.modules() if isinstance(m, torch.nn.Linear)]
    assert sizes == [(100, 1200), (1200, 1200), (1200, 784)]
    assert [(m.linear.in_features, m.units, m.pieces) for m in disc.hidden] == [(784, 240, 5), (240, 240, 5)]
    assert (disc.out.in_features, disc.out.out_features) == (240, 1)
    for m in gen.modules():
        if isinstance(m, torch.nn.Linear):
            assert m.weight.abs().max() <= 0.05 and m.weight.abs().max() > 0.049
    for m in disc.modules():
        if isinstance(m, torch.nn.Linear):
            assert m.weight.abs().max() <= 0.005 and m.weight.abs().max() > 0.0049
            assert torch.count_nonzero(m.bias) == 0
    bias = gen.output_layer.bias.double()
    p = mean.clamp(1e-7, 1 - 1e-7)
    assert torch.allclose(bias, torch.log(p / (1 - p)).float().double(), atol=1e-5)
    assert bias[:10].max().item() == pytest.approx(math.log(1e-7 / (1 - 1e-7)), rel=1e-5)
    assert all(
        torch.count_nonzero(m.bias) == 0
        for m in list(gen.modules())[:-1]
        if isinstance(m, torch.nn.Linear) and m is not gen.output_layer
    )
    assert disc.keep == [0.8, 0.5, 0.5]
    z = sample_noise(7, 100, "uniform")
    x = gen(z)
    assert x.shape == (7, 784) and x.min() >= 0 and x.max() <= 1
    assert disc(x).shape == (7,)


def test_same_seed_same_weights_other_seed_other_weights():
    a, _ = build_models(tiny_config(seed=3), torch.full((784,), 0.2))
    b, _ = build_models(tiny_config(seed=3), torch.full((784,), 0.2))
    c, _ = build_models(tiny_config(seed=4), torch.full((784,), 0.2))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_maxout_is_the_max_over_pieces():
    layer = Maxout(6, units=4, pieces=3)
    x = torch.randn(5, 6)
    z = x @ layer.linear.weight.T + layer.linear.bias  # (5, 12)
    expected = torch.stack(
        [z[:, [u * 3 + p for p in range(3)]].max(dim=1).values for u in range(4)], dim=1
    )  # pylearn2 grouping
    assert torch.allclose(layer(x), expected)


def test_dropout_keeps_with_p_scales_by_one_over_p_and_masks_per_example():
    x = torch.ones(2000, 50)
    y = dropout(x, 0.8, torch.Generator().manual_seed(0))
    kept = y != 0
    assert set(torch.unique(y).tolist()) == {0.0, 1.25}  # kept values scaled ×1.25
    assert abs(kept.float().mean().item() - 0.8) < 0.01
    assert abs(y.mean().item() - 1.0) < 0.01  # expectation preserved
    # identical examples get independent masks
    assert not torch.equal(kept[0], kept[1])
    assert dropout(x, 1.0) is x


def test_discriminator_dropout_in_train_mode_only_and_reproducible():
    disc = MaxoutDiscriminator(20, [8, 8], 3, 0.8, 0.5)
    for p in disc.parameters():
        torch.nn.init.normal_(p)
    x = torch.rand(4, 20).repeat(2, 1)  # rows i and i+4 are the same example
    disc.eval()
    out_eval = disc(x)
    assert torch.equal(out_eval[:4], out_eval[4:]) and torch.equal(out_eval, disc(x))
    disc.train()
    disc.generator = torch.Generator().manual_seed(0)
    a = disc(x)
    assert not torch.equal(a[:4], a[4:])  # per-example masks
    assert not torch.equal(a, disc(x))  # fresh masks every pass
    disc.generator = torch.Generator().manual_seed(0)
    assert torch.equal(a, disc(x))  # masks come from the given generator


def test_discriminator_dropout_matches_manual_computation():
    disc = MaxoutDiscriminator(6, [4], 2, 0.8, 0.5).train()
    x = torch.rand(3, 6)
    disc.generator = torch.Generator().manual_seed(5)
    out = disc(x)
    g = torch.Generator().manual_seed(5)
    m0 = torch.empty(3, 6).bernoulli_(0.8, generator=g)
    h = disc.hidden[0](x * m0 / 0.8)
    m1 = torch.empty(3, 4).bernoulli_(0.5, generator=g)
    expected = disc.out(h * m1 / 0.5).squeeze(1)
    assert torch.allclose(out, expected)


@pytest.mark.parametrize("dataset,shape", [("mnist", (1, 28, 28)), ("cifar10", (3, 32, 32))])
def test_dcgan_shapes(dataset, shape):
    cfg = config.from_preset("dcgan", dataset=dataset, dcgan_width=8, noise_dim=16)
    gen, disc = build_models(cfg)
    assert isinstance(gen, DCGANGenerator) and isinstance(disc, DCGANDiscriminator)
    x = gen(sample_noise(4, 16, "gaussian"))
    assert x.shape == (4, int(np.prod(shape))) and x.min() >= 0 and x.max() <= 1
    assert disc(x).shape == (4,)
    gen.eval()
    assert gen(sample_noise(1, 16, "gaussian")).shape == (1, int(np.prod(shape)))


def test_output_bias_init_needs_the_pixel_mean():
    with pytest.raises(ValueError, match="pixel mean"):
        build_models(tiny_config())


def test_per_layer_activations_and_max_col_norm():
    from gancore.train.models import MLPGenerator, apply_max_col_norm_

    gen = MLPGenerator(4, [6, 5], 3, "relu,sigmoid")
    assert [type(m).__name__ for m in gen.net] == ["Linear", "ReLU", "Linear", "Sigmoid", "Linear"]
    disc = MaxoutDiscriminator(10, [4], 3, 1.0, 1.0)
    with torch.no_grad():
        disc.hidden[0].linear.weight.mul_(1000)
    small = disc.out.weight.detach().clone()
    apply_max_col_norm_(disc, 1.9365)
    norms = disc.hidden[0].linear.weight.norm(dim=1)  # one row = one unit's (piece's) incoming weights
    assert torch.allclose(norms, torch.full_like(norms, 1.9365), rtol=1e-5)
    assert torch.equal(disc.out.weight, small)  # already inside the ball: untouched


def test_2014_presets_follow_the_yamls():
    cifar = config.from_preset("cifar10_fc_2014")
    assert (cifar.g_hidden, cifar.g_activation, cifar.d_hidden, cifar.lr) == (
        [8000, 8000],
        "relu,sigmoid",
        [1600, 1600],
        0.025,
    )
    assert cifar.noise_prior == "gaussian" and cifar.image_shape == [3, 32, 32] and cifar.update == "simultaneous"
    tfd = config.from_preset("tfd_2014")
    assert (tfd.d_hidden, tfd.max_col_norm, tfd.lr, tfd.train_split, tfd.epochs) == (
        [1200, 1200],
        1.9365,
        0.05,
        "unlabeled",
        50,
    )
    mnist = config.from_preset("mnist_2014")
    assert (mnist.noise_prior, mnist.update, mnist.g_loss, mnist.d_loss_halved, mnist.max_col_norm) == (
        "uniform",
        "simultaneous",
        "nonsaturating",
        True,
        None,
    )
    with pytest.raises(ValueError, match="g_activation"):
        config.from_preset("mnist_2014", g_activation="relu,relu,relu")
    with pytest.raises(ValueError, match="train_split"):
        config.from_preset("mnist_2014", train_split="unlabeled")


# ---- D's features, and minibatch discrimination (Salimans et al. 2016, §3.1-3.2) ---------------------


def _randomized(disc):
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in disc.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return disc


def test_forward_is_head_of_features_bit_for_bit():
    """forward() is unchanged: the same numbers (and dropout draws) as head(features(x))."""
    x = torch.rand(6, 784)
    for disc in (_randomized(MaxoutDiscriminator(784, [16, 8], 3, 0.8, 0.5)), DCGANDiscriminator((1, 28, 28), 4)):
        disc.train()
        disc.generator = torch.Generator().manual_seed(3) if hasattr(disc, "keep") else None
        a = disc(x)
        if disc.generator is not None:
            disc.generator.manual_seed(3)
        f = disc.features(x)
        assert torch.equal(a, disc.head(f))
    assert f.shape == (6, 8 * 7 * 7)  # DCGAN: the last conv block, flattened
    assert MaxoutDiscriminator(784, [16, 8], 3, 1, 1).features(x).shape == (6, 8)  # the last maxout layer


def test_default_discriminators_have_no_minibatch_parameters():
    """Off by default: the paper's D keeps exactly its parameters (same names, shapes, order)."""
    cfg = tiny_config()
    _, disc = build_models(cfg, torch.full((784,), 0.2))
    assert [(k, tuple(v.shape)) for k, v in disc.state_dict().items()] == [
        ("hidden.0.linear.weight", (48, 784)),
        ("hidden.0.linear.bias", (48,)),
        ("out.weight", (1, 16)),
        ("out.bias", (1,)),
    ]
    assert disc.minibatch is None
    _, on = build_models(tiny_config(minibatch_features=4, minibatch_kernel_dim=2), torch.full((784,), 0.2))
    assert on.minibatch.T.shape == (16, 4, 2) and on.out.weight.shape == (1, 20)
    assert 0.03 < on.minibatch.T.std().item() < 0.07  # N(0, 0.05²) from the seed
    _, again = build_models(tiny_config(minibatch_features=4, minibatch_kernel_dim=2), torch.full((784,), 0.2))
    assert torch.equal(on.minibatch.T, again.minibatch.T)


def test_minibatch_discrimination_matches_the_formula():
    from gancore.train.models import MinibatchDiscrimination

    layer = MinibatchDiscrimination(6, 4, 3).double()
    f = torch.randn(5, 6, dtype=torch.float64)
    m = torch.einsum("na,abc->nbc", f, layer.T.detach())  # M_i = f(x_i)·T, (n, B, C)
    expected = torch.zeros(5, 4, dtype=torch.float64)
    for i in range(5):
        for j in range(5):
            if j != i:
                expected[i] += torch.exp(-(m[i] - m[j]).abs().sum(1)) / 4  # c_b(x_i, x_j) / (n − 1)
    assert torch.allclose(layer(f), expected, rtol=1e-12, atol=1e-14)
    # identical examples: every c_b = 1, so o = 1 (the paper's sum would be n − 1 + 1)
    assert torch.allclose(layer(f[:1].repeat(3, 1)), torch.ones(3, 4, dtype=torch.float64))
    assert layer(f[:1]).tolist() == [[0.0] * 4]  # a batch of one has no other examples


# (DCGAN's D in training mode is left out: its batch norm already mixes the examples of a batch.)
@pytest.mark.parametrize("arch,mode", [("mlp", "eval"), ("mlp", "train"), ("dcgan", "eval")])
def test_minibatch_features_let_other_examples_change_d_of_x_i(arch, mode):
    """With minibatch discrimination D(x_i) depends on the rest of the batch; without it, it does not."""
    x = torch.rand(6, 784)
    changed = x.clone()
    changed[4] = torch.rand(784)  # another example j = 4 of the batch changes
    outputs = {}
    for kernels in (0, 5):
        torch.manual_seed(0)
        if arch == "mlp":
            disc = _randomized(MaxoutDiscriminator(784, [16, 8], 3, 0.8, 0.5, minibatch_features=kernels))
        else:
            disc = DCGANDiscriminator((1, 28, 28), 4, minibatch_features=kernels, minibatch_kernel_dim=3)
        if kernels:
            with torch.no_grad():  # scale T so that the L1 distances are O(1): c_b neither 0 nor 1
                m = torch.einsum("na,abc->nbc", disc.eval().features(x), disc.minibatch.T)
                disc.minibatch.T.div_((m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(3).mean())
        disc.train(mode == "train")
        runs = []
        for batch in (x, changed):
            if arch == "mlp":
                disc.generator = torch.Generator().manual_seed(7)  # the same dropout masks for both batches
            runs.append(disc(batch).detach())
        outputs[kernels] = runs
    a, b = outputs[0]
    assert torch.equal(a[:4], b[:4]) and torch.equal(a[5:], b[5:])  # off: D(x_i) untouched for i ≠ 4
    a, b = outputs[5]
    assert ((a - b).abs()[[0, 1, 2, 3, 5]] > 1e-4).all()  # on: every other example's output moved
