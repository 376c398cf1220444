"""Reliability suite, item 6: a run forced to diverge stops with a clear message and keeps its last
good checkpoint.

With the tiny model, lr = 30 (300× the recipe's 0.1) trains through the first epoch's checkpoint
(step 8) and blows up a few iterations later; lr = 1e30 blows up in the first iterations, before any
checkpoint exists. Either way: exit code 3, a message saying when and what to do, no checkpoint
holding NaN/inf, and the last good checkpoint resumable.
"""

import logging

import pytest

torch = pytest.importorskip("torch")

from gancore.train import checkpoints as checkpoint  # noqa: E402
from gancore.train import cli as train  # noqa: E402
from gancore.train import config  # noqa: E402

from _train_helpers import TINY  # noqa: E402


def _all_finite(state: dict) -> bool:
    return all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_absurd_learning_rate_stops_cleanly_and_keeps_the_last_good_checkpoint(tmp_path, caplog, record):
    run = tmp_path / "run"
    with caplog.at_level(logging.ERROR):
        code = train.main([*TINY, "--out", str(run), "--epochs", "8", "--lr", "30", "--threads", "1"])
    assert code == 3, caplog.text
    assert "NaN/inf" in caplog.text and "Try a smaller --lr" in caplog.text
    good = checkpoint.latest(run)
    assert good is not None and good.name in caplog.text
    cfg = config.from_dict(__import__("json").loads((run / "config.json").read_text()))
    meta, g, d, _ = checkpoint.load(good, cfg=cfg)
    assert _all_finite(g) and _all_finite(d)
    # Every checkpoint left on disk is finite, not only the newest.
    for ckpt in (run / "checkpoints").glob("step_*"):
        _, g2, d2, _ = checkpoint.load(ckpt, cfg=cfg)
        assert _all_finite(g2) and _all_finite(d2), ckpt
    diverged_at = caplog.text.split("between steps ")[1].split(" (")[0]
    record(f"lr = 30: stopped with exit 3 at steps {diverged_at}; last good checkpoint {good.name} loads, all finite")

    caplog.clear()
    run2 = tmp_path / "run2"
    with caplog.at_level(logging.ERROR):
        assert train.main([*TINY, "--out", str(run2), "--epochs", "2", "--lr", "1e30", "--threads", "1"]) == 3
    assert "(none yet)" in caplog.text and checkpoint.latest(run2) is None
    record("lr = 1e30: stopped with exit 3 in the first iterations; no checkpoint written (none was good)")


def test_weights_that_blow_up_between_log_lines_are_never_checkpointed(tmp_path, monkeypatch):
    """The losses of the last interval were finite, but the update made G's weights NaN: the
    epoch-end checkpoint must not be written over the last good one."""
    from gancore.train import trainer as trainer_mod

    real_step = trainer_mod.Game.step
    calls = {"n": 0}

    def step_then_poison(self, lr, mom):
        out = real_step(self, lr, mom)
        calls["n"] += 1
        if calls["n"] == 16:  # last iteration of epoch 2, after the losses were computed
            with torch.no_grad():
                next(self.gen.parameters()).view(-1)[0] = float("nan")
        return out

    monkeypatch.setattr(trainer_mod.Game, "step", step_then_poison)
    run = tmp_path / "run"
    assert train.main([*TINY, "--out", str(run), "--epochs", "3", "--threads", "1"]) == 3
    assert checkpoint.latest(run).name == "step_00000008"
