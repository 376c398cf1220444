"""The tutorial's Figure 16 drawn from gancore's own generator losses, and the figures command."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gancore.evaluate import tutorial_figures as tf  # noqa: E402
from gancore.train.losses import generator_loss  # noqa: E402

D = np.unique(np.concatenate([np.logspace(-9, -1, 40), np.linspace(0.1, 0.9, 81), 1 - np.logspace(-1, -9, 40)]))


def test_drawn_curves_are_the_tutorial_costs_in_closed_form():
    c = tf.generator_cost_curves(D)
    np.testing.assert_allclose(c["minimax"], 0.5 * np.log1p(-D), rtol=1e-9, atol=1e-15)  # ½ log(1 − D)
    np.testing.assert_allclose(c["nonsaturating"], -0.5 * np.log(D), rtol=1e-9)  # −½ log D
    np.testing.assert_allclose(c["maxlikelihood"], -0.5 * D / (1 - D), rtol=1e-6)  # −½ exp(σ⁻¹(D))


def test_curves_are_generator_loss_times_the_stated_scale():
    """The curves are gancore's losses, one sample at a time, times TUTORIAL_SCALE (½, ½, 1)."""
    c = tf.generator_cost_curves(D)
    logits = torch.from_numpy(np.log(D) - np.log1p(-D))
    for kind, scale in tf.TUTORIAL_SCALE.items():
        assert c[kind].mean() == pytest.approx(scale * generator_loss(logits, kind).item(), rel=1e-12)
        assert c[kind][7] == scale * generator_loss(logits[7:8], kind).item()
    assert tf.TUTORIAL_SCALE == {"minimax": 0.5, "nonsaturating": 0.5, "maxlikelihood": 1.0}


def test_curve_shapes_are_those_of_figure_16():
    c = tf.generator_cost_curves(D)
    left = D < 1e-3
    # left end (D rejects the sample): minimax and maximum likelihood are flat, non-saturating is steep
    slope = {k: np.abs(np.gradient(v, D))[left].max() for k, v in c.items()}
    assert slope["minimax"] < 1 and slope["maxlikelihood"] < 1 and slope["nonsaturating"] > 100
    assert all(np.all(np.diff(v) < 0) for v in c.values())  # every cost falls as D(G(z)) rises
    with pytest.raises(ValueError, match="strictly between"):
        tf.generator_cost_curves([0.0, 0.5])


def test_command_writes_both_figures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert tf.main([str(tmp_path)]) == 0
    for name in ("tutorial_generator_costs.png", "tutorial_xy_game.png"):
        raw = (tmp_path / name).read_bytes()
        assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) < 150_000
    out = capsys.readouterr().out
    assert "predicted √(1+η²) = 1.019803902718557" in out
