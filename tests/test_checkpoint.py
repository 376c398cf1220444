"""Checkpoints: bitwise resume after kill -9 and Ctrl-C, refusal of damaged or foreign checkpoints."""

import json
import signal
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from gancore.train import checkpoints as checkpoint  # noqa: E402
from gancore.train import cli as train  # noqa: E402
from gancore.train.trainer import KILL_ENV  # noqa: E402

from _train_helpers import PYTHON_DIR, TINY, assert_same_state, run_cli, state_of, tiny_config  # noqa: E402

# 3 epochs of 8 iterations; the kill lands mid-epoch 2, after the epoch-1 checkpoint.
ARGS = [*TINY, "--epochs", "3", "--update", "alternating", "--k", "1"]


@pytest.mark.slow  # ~30 s: three training subprocesses; .ci/run runs it with -m slow
def test_resume_after_kill_9_is_bitwise_identical(tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    assert run_cli([*ARGS, "--out", ref]).returncode == 0
    proc = run_cli([*ARGS, "--out", killed], env_extra={KILL_ENV: "13"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert checkpoint.latest(killed).name == "step_00000008"
    proc = run_cli(["--resume", killed, "-q", "--no-eval"])
    assert proc.returncode == 0, proc.stderr
    assert checkpoint.latest(killed).name == "step_00000024"
    assert_same_state(state_of(ref), state_of(killed))
    steps = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert steps == [4, 8, 12, 16, 20, 24]  # lines logged after the checkpoint were dropped, then redone


def test_resume_after_ctrl_c_mid_epoch_is_bitwise_identical(tmp_path):
    ref, stopped = tmp_path / "ref", tmp_path / "stopped"
    simultaneous = [*TINY, "--epochs", "3"]  # the other update scheme than the kill -9 test
    assert train.main([*simultaneous, "--out", str(ref)]) == 0
    # A SIGINT delivered during iteration 11: the run finishes that iteration, checkpoints, exits 130.
    from gancore.train import trainer as trainer_mod

    real_step = trainer_mod.Game.step
    calls = {"n": 0}

    def step_then_interrupt(self, lr, mom):
        calls["n"] += 1
        if calls["n"] == 11:
            signal.raise_signal(signal.SIGINT)
        return real_step(self, lr, mom)

    trainer_mod.Game.step = step_then_interrupt
    try:
        assert train.main([*simultaneous, "--out", str(stopped)]) == 130
    finally:
        trainer_mod.Game.step = real_step
    assert checkpoint.latest(stopped).name == "step_00000011"
    assert train.main(["--resume", str(stopped), "-q", "--no-eval"]) == 0
    assert_same_state(state_of(ref), state_of(stopped))


def test_resume_may_extend_the_run(tmp_path):
    ref, short = tmp_path / "ref", tmp_path / "short"
    assert train.main([*ARGS, "--out", str(ref)]) == 0
    assert train.main([*ARGS, "--out", str(short), "--epochs", "1"]) == 0
    assert train.main(["--resume", str(short), "--epochs", "3", "-q", "--no-eval"]) == 0
    assert_same_state(state_of(ref), state_of(short))


@pytest.fixture
def finished_run(tmp_path):
    run = tmp_path / "run"
    assert train.main([*TINY, "--out", str(run), "--epochs", "1"]) == 0
    return run


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "bad_json"])
def test_damaged_checkpoint_is_refused(finished_run, damage, caplog):
    ckpt = checkpoint.latest(finished_run)
    target = ckpt / ("state.json" if damage == "bad_json" else "generator.safetensors")
    raw = bytearray(target.read_bytes())
    if damage == "flip":
        raw[-3] ^= 0x01
        target.write_bytes(bytes(raw))
    elif damage == "truncate":
        target.write_bytes(bytes(raw[: len(raw) // 2]))
    elif damage == "delete":
        target.unlink()
    else:
        target.write_bytes(bytes(raw[:20]))
    with pytest.raises(checkpoint.CheckpointError, match="corrupted|incomplete|missing"):
        checkpoint.load(ckpt)
    assert train.main(["--resume", str(finished_run), "-q", "--no-eval"]) == 2
    assert str(ckpt) in caplog.text
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.load_generator(finished_run)


def test_checkpoint_for_another_config_is_refused(finished_run, caplog):
    assert train.main(["--resume", str(finished_run), "--lr", "0.5", "-q"]) == 2
    assert "different settings" in caplog.text and "lr" in caplog.text
    other = tiny_config(g_hidden=[64])
    with pytest.raises(checkpoint.CheckpointError, match="another configuration.*g_hidden"):
        checkpoint.load(checkpoint.latest(finished_run), cfg=other)


def test_interrupted_save_leaves_latest_intact(finished_run):
    # a save killed half-way leaves only a .tmp folder, which loading ignores and the next save removes
    stale = checkpoint.checkpoint_dir(finished_run) / ".tmp-step_00000099"
    stale.mkdir()
    (stale / "generator.safetensors").write_bytes(b"half")
    assert checkpoint.latest(finished_run).name == "step_00000008"
    checkpoint.load(checkpoint.latest(finished_run))
    assert train.main(["--resume", str(finished_run), "--epochs", "2", "-q", "--no-eval"]) == 0
    assert not stale.exists()


def test_load_generator_contract(finished_run):
    gen, cfg = checkpoint.load_generator(finished_run)
    assert not gen.training
    for key in ("dataset", "preset", "noise_dim", "noise_prior", "image_shape", "seed"):
        assert key in cfg
    assert cfg["image_shape"] == [1, 28, 28] and cfg["noise_dim"] == 8
    from gancore.train.models import sample_noise

    x = gen(sample_noise(3, cfg["noise_dim"], cfg["noise_prior"]))
    assert x.shape == (3, 784) and 0 <= x.min() and x.max() <= 1
    with pytest.raises(FileNotFoundError, match="config.json"):
        checkpoint.load_generator(finished_run / "nope")


def test_loading_never_unpickles(finished_run):
    """Checkpoint files are safetensors and JSON only: nothing a pickle could hide in."""
    ckpt = checkpoint.latest(finished_run)
    assert sorted(p.name for p in ckpt.iterdir()) == sorted([*checkpoint.FILES, "state.json"])
    code = (
        "import pickle, sys\nfrom gancore.train import checkpoints as checkpoint\n"
        "def boom(*a, **k): raise AssertionError('unpickling')\n"
        "pickle.load = pickle.loads = boom\nimport torch\ntorch.load = boom\n"
        f"checkpoint.load_generator({str(finished_run)!r})\n"
    )
    subprocess.run(
        [sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(PYTHON_DIR), "PATH": "/usr/bin:/bin"}
    )


def test_checkpoint_from_before_a_new_config_field_still_loads(finished_run):
    """A field added to TrainConfig later (default = old behavior) must not orphan old checkpoints."""
    ckpt = checkpoint.latest(finished_run)
    meta = json.loads((ckpt / "state.json").read_text())
    del meta["config"]["precision"]
    (ckpt / "state.json").write_text(json.dumps(meta))
    cfg_path = finished_run / "config.json"
    cfg = json.loads(cfg_path.read_text())
    del cfg["precision"]
    cfg_path.write_text(json.dumps(cfg))
    gen, cfg_dict = checkpoint.load_generator(finished_run)
    assert cfg_dict["precision"] == "fp32"
