"""The losses of SPEC §2 against their closed forms, values and gradients."""

import math

import pytest

torch = pytest.importorskip("torch")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gancore.train.losses import discriminator_loss, generator_loss  # noqa: E402

logit_lists = st.lists(st.floats(-8, 8, allow_nan=False), min_size=1, max_size=16)


def _grad(fn, logits):
    logit = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    loss = fn(logit)
    (g,) = torch.autograd.grad(loss, logit)
    return loss.item(), g, logit.detach()


@given(logit_lists)
def test_nonsaturating_is_minus_log_d_and_its_gradient(logits):
    loss, g, logit = _grad(lambda x: generator_loss(x, "nonsaturating"), logits)
    d = torch.sigmoid(logit)
    assert loss == pytest.approx(-torch.log(d).mean().item(), rel=1e-9, abs=1e-12)
    assert torch.allclose(g, -(1 - d) / len(logits), rtol=1e-9, atol=1e-15)  # d/dl -log σ(logit) = σ(logit) - 1


@given(logit_lists)
def test_minimax_is_log_one_minus_d_and_its_gradient(logits):
    loss, g, logit = _grad(lambda x: generator_loss(x, "minimax"), logits)
    d = torch.sigmoid(logit)
    assert loss == pytest.approx(torch.log1p(-d).mean().item(), rel=1e-9, abs=1e-12)
    assert torch.allclose(g, -d / len(logits), rtol=1e-9, atol=1e-15)  # d/dl log(1-σ(logit)) = -σ(logit)


@given(logit_lists)
def test_maxlikelihood_is_minus_half_odds_and_its_gradient(logits):
    loss, g, logit = _grad(lambda x: generator_loss(x, "maxlikelihood"), logits)
    d = torch.sigmoid(logit)
    assert loss == pytest.approx((-0.5 * d / (1 - d)).mean().item(), rel=1e-9)  # exp(σ⁻¹(D)) = D/(1-D)
    assert torch.allclose(g, -0.5 * torch.exp(logit) / len(logits), rtol=1e-9)


@given(logit_lists, logit_lists, st.sampled_from([0.0, 0.1, 0.3]), st.booleans())
def test_discriminator_loss_is_minus_v_and_its_gradient(real, fake, alpha, halved):
    lr = torch.tensor(real, dtype=torch.float64, requires_grad=True)
    lf = torch.tensor(fake, dtype=torch.float64, requires_grad=True)
    loss = discriminator_loss(lr, lf, label_smoothing=alpha, halved=halved)
    gr, gf = torch.autograd.grad(loss, (lr, lf))
    dr, df = torch.sigmoid(lr.detach()), torch.sigmoid(lf.detach())
    t = 1 - alpha
    expected = -(t * torch.log(dr) + (1 - t) * torch.log1p(-dr)).mean() - torch.log1p(-df).mean()
    scale = 0.5 if halved else 1.0
    assert loss.item() == pytest.approx(scale * expected.item(), rel=1e-9, abs=1e-12)
    assert torch.allclose(gr, scale * (dr - t) / len(real), rtol=1e-9, atol=1e-15)
    assert torch.allclose(gf, scale * df / len(fake), rtol=1e-9, atol=1e-15)


def test_losses_stay_finite_for_extreme_logits():
    logit = torch.tensor([-200.0, -50.0, 0.0, 50.0, 200.0], requires_grad=True)
    for kind in ("nonsaturating", "minimax"):
        loss = generator_loss(logit, kind)
        (g,) = torch.autograd.grad(loss, logit)
        assert math.isfinite(loss.item()) and torch.isfinite(g).all()
    loss = discriminator_loss(logit, logit)
    (g,) = torch.autograd.grad(loss, logit)
    assert math.isfinite(loss.item()) and torch.isfinite(g).all()
    # the value a naive log(sigmoid) would get wrong: -log σ(-200) = 200
    assert generator_loss(torch.tensor([-200.0]), "nonsaturating").item() == pytest.approx(200.0)


def test_saturation_is_what_the_paper_describes():
    """Early in training D rejects fakes (logit ≪ 0): minimax's gradient vanishes, non-saturating's does not."""
    logit = torch.tensor([-10.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(generator_loss(logit, "minimax"), logit)
    (g_ns,) = torch.autograd.grad(generator_loss(logit, "nonsaturating"), logit)
    assert abs(g_mm.item()) < 1e-4 < 0.9 < abs(g_ns.item())


def test_unknown_generator_loss():
    with pytest.raises(ValueError, match="nonsaturating"):
        generator_loss(torch.zeros(2), "wasserstein")


def test_feature_matching_is_zero_for_the_same_batch_and_positive_otherwise():
    from gancore.train.losses import feature_matching_loss

    g = torch.Generator().manual_seed(0)
    real = torch.randn(32, 7, generator=g, dtype=torch.float64)
    assert feature_matching_loss(real, real.clone()).item() == 0.0
    assert feature_matching_loss(real, real.flip(0)).item() == pytest.approx(0.0, abs=1e-28)  # same mean
    fake = torch.randn(32, 7, generator=g, dtype=torch.float64)
    expected = ((real.mean(0) - fake.mean(0)) ** 2).sum()  # ‖E f(x) − E f(G(z))‖²₂
    assert feature_matching_loss(real, fake).item() == pytest.approx(expected.item(), rel=1e-12)
    assert expected.item() > 0


def test_feature_matching_gradient_flows_through_the_generated_batch_only():
    from gancore.train.losses import feature_matching_loss

    real = torch.randn(10, 4, requires_grad=True)
    fake = torch.randn(10, 4, requires_grad=True)
    loss = feature_matching_loss(real, fake)
    g_real, g_fake = torch.autograd.grad(loss, (real, fake), allow_unused=True)
    assert g_real is None  # E_x f(x) is a constant target
    expected = -2 * (real.detach().mean(0) - fake.detach().mean(0)) / 10  # d/df_j of ‖μ_r − μ_f‖²
    assert torch.allclose(g_fake, expected.expand(10, 4), atol=1e-6)
    with pytest.raises(ValueError, match="same width"):
        feature_matching_loss(real, fake[:, :3])
    with pytest.raises(ValueError, match="feature_matching_loss"):
        generator_loss(fake, "feature_matching")


def test_config_offers_exactly_the_losses_this_module_computes():
    # config.py keeps its own copy so that building the command line needs no torch
    from gancore.train import config, losses

    assert config.G_LOSSES == losses.G_LOSSES


@given(
    st.integers(1, 4).flatmap(
        lambda r: st.lists(st.lists(st.floats(-8, 8, allow_nan=False), min_size=6, max_size=6), min_size=r, max_size=r)
    ),
    st.sampled_from([0.0, 0.1]),
    st.booleans(),
)
def test_losses_over_dim_are_each_rows_loss(rows, smoothing, halved):
    """``dim=1`` on (R, m) logits (seed replicas' batched losses) gives, per row, that row's own loss."""
    real = torch.tensor(rows, dtype=torch.float64)
    fake = real.flip(1) - 1.0
    d = discriminator_loss(real, fake, label_smoothing=smoothing, halved=halved, dim=1)
    assert d.shape == (len(rows),)
    for r in range(len(rows)):
        one = discriminator_loss(real[r], fake[r], label_smoothing=smoothing, halved=halved)
        assert d[r].item() == pytest.approx(one.item(), rel=1e-12, abs=1e-12)
    for kind in ("nonsaturating", "minimax", "maxlikelihood"):
        g = generator_loss(fake, kind, dim=1)
        assert [x.item() for x in g] == pytest.approx([generator_loss(f, kind).item() for f in fake], rel=1e-12)
