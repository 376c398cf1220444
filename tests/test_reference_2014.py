"""gancore's mnist_2014 step against the authors' 2014 code (goodfeli/adversarial + pylearn2 + Theano).

The fixture ``fixtures/reference_2014.npz`` was exported from the authors' ``mnist.yaml`` run through
pylearn2's own SGD loop (Python 2.7, Theano 0.7; README "Does gancore train like the authors' code?"),
with the noise and D's dropout masks drawn by the exporter and saved, at reduced widths (G 100-8-8-784,
D maxout 4x5 - 4x5 - 1) so the file stays small. It holds the initial parameters, the rows of each
minibatch, J_D and J_G, every gradient of step 0 and the parameters after 1 and 3 steps, plus the
learning rate and momentum pylearn2 used at every step of a full-width two-epoch run. The test needs
neither Python 2.7 nor the authors' sources.
"""

import sys

import numpy as np
import pytest

from _train_helpers import ROOT

sys.path.insert(0, str(ROOT / "benches" / "reference_2014"))
import replay  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "reference_2014.npz"


@pytest.fixture(scope="module")
def export():
    return replay.load_export(FIXTURE)


def _close(theirs, mine, rtol=1e-4, atol=5e-8):
    """float32 agreement: relative to the tensor's scale, plus an absolute floor of about one ulp of
    the 0.5-sized terms a near-cancelling sum (D's output bias gradient) adds up."""
    theirs, mine = np.asarray(theirs, np.float64), np.asarray(mine, np.float64)
    return np.abs(mine - theirs).max() <= rtol * np.abs(theirs).max() + atol


def _step0_gradients(export):
    _, game, stream = replay.build_game(export)
    with replay.exported_dropout(export, lambda: stream.t - 1):
        return game, replay._gradients(game, stream, 0, with_losses=True)


def test_every_gradient_of_a_step_matches_the_2014_code(export):
    _, (grads, losses) = _step0_gradients(export)
    keys = ["gen." + k for k in replay.G_KEYS] + ["disc." + k for k in replay.D_KEYS]
    for name, key in zip(replay._pylearn2_names(export), keys):
        theirs = export[f"grad.0.{name}"]
        assert _close(theirs, replay._from_torch(grads[key], key, theirs.shape)), name
    assert losses == pytest.approx(tuple(export["losses"][0]), rel=1e-6)


def test_three_updates_match_the_2014_code(export):
    result = replay.replay(export)
    assert np.allclose(result["ours"], result["theirs"], rtol=1e-6)
    for label, relative in result["relative"].items():
        assert relative < 2e-4, (label, relative)  # measured: at most 1.3e-4 (D's output bias, rounding)


def test_a_changed_semantic_is_caught(export, monkeypatch):
    """The comparison can fail: the un-halved J_D of the tutorial (not AdversaryCost2's ½) doubles
    D's gradients and is far outside the tolerance."""
    monkeypatch.setattr(replay.algorithm1.Game, "d_loss", lambda self, r, f: replay.algorithm1.discriminator_loss(r, f))
    result = replay.replay(export)
    assert result["relative"]["step 0: gradient of D"] > 0.5


def test_the_schedules_match_pylearn2_over_two_epochs(export):
    """lr_t = 0.1 / 1.000004^t per update (pylearn2 keeps it in float32) and the momentum that
    MomentumAdjustor sets at every epoch, read off a full-width run of 1,000 updates."""
    cfg = replay.from_preset("mnist_2014")
    lr, momentum = export["schedule_lr"], export["schedule_momentum"]
    ours_lr = np.array([replay.lr_at(cfg, t) for t in range(len(lr))])
    ours_mom = np.array([replay.momentum_at(cfg, t // replay.STEPS_PER_EPOCH) for t in range(len(lr))])
    assert np.allclose(ours_lr, lr, rtol=1e-7, atol=0)
    assert np.allclose(ours_mom, momentum, rtol=1e-7, atol=0)
    assert momentum[0] == 0.5 and momentum[-1] > 0.5  # the ramp starts in the second epoch
