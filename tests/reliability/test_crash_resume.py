"""Reliability suite, item 4: kill -9 at random moments, resume each time, lose nothing.

A tiny training run (30 epochs × 8 iterations; a checkpoint, a sample grid and a curves plot every
epoch, so a good share of the wall time is spent writing files) is killed with SIGKILL at random
moments (seeded; uniform over the first 60% of what is left of the run, start-up included) and also at
three points inside a checkpoint write (a tensor file half written; the complete temp folder not yet
renamed; the folder renamed but LATEST not yet updated). After every kill the latest checkpoint must
load (hashes verified), and after the final resume the weights must be bitwise identical to an
uninterrupted run with the same seed, with the metrics log holding each step exactly once.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

torch = pytest.importorskip("torch")

from gancore.train import checkpoints as checkpoint  # noqa: E402

from _train_helpers import PYTHON_DIR, TINY, assert_same_state, run_cli, state_of, tiny_config  # noqa: E402

EPOCHS, STEPS = 30, 240
ARGS = [*TINY, "--epochs", str(EPOCHS), "--threads", "1"]
RANDOM_KILLS = 6
KILL_POINTS = ("mid-file", "before-rename", "before-latest")


def _popen(args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update(env_extra or {})
    return subprocess.Popen(
        [sys.executable, "-m", "gancore.train", *map(str, args)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _latest_is_readable(run_dir, cfg) -> str:
    ckpt = checkpoint.latest(run_dir)  # raises if LATEST names something that is not a checkpoint
    if ckpt is None:
        return "none yet"
    checkpoint.load(ckpt, cfg=cfg)  # re-hashes every file against state.json
    return ckpt.name


@pytest.mark.slow  # ~90 s: kills a training subprocess at random points; .ci/run runs it with -m slow
def test_random_kill_9_and_resume_equals_an_uninterrupted_run(tmp_path, record):
    ref, run = tmp_path / "ref", tmp_path / "killed"
    t0 = time.perf_counter()
    done = run_cli([*ARGS, "--out", ref])
    wall = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr
    cfg = tiny_config(epochs=EPOCHS, batch_size=16, threads=1)

    rng = random.Random(20141)
    seen, kills = [], 0
    plan = [("random", None)] * RANDOM_KILLS + [("in-save", p) for p in KILL_POINTS]
    rng.shuffle(plan)
    for kind, point in plan:
        args = (
            ["--resume", run, "-q", "--no-eval", "--threads", "1"]
            if (run / "config.json").exists()
            else [*ARGS, "--out", run]
        )
        if kind == "random":
            proc = _popen(args)
            latest = checkpoint.latest(run)
            left = 1 - (int(latest.name[5:]) / STEPS if latest else 0)
            try:
                proc.wait(timeout=rng.uniform(0.3, 0.6 * (wall * left + 2.0)))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        else:
            proc = _popen(args, {checkpoint.KILL_IN_SAVE_ENV: point})
            proc.wait(timeout=120)
        if proc.returncode == 0:
            break  # the run finished before this kill: nothing left to interrupt
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
        kills += 1
        seen.append(f"{point or 'random'}→{_latest_is_readable(run, cfg)}")

    final = run_cli(["--resume", run, "-q", "--no-eval", "--threads", "1"])
    assert final.returncode == 0, final.stderr
    assert checkpoint.latest(run).name == f"step_{STEPS:08d}"
    assert_same_state(state_of(ref), state_of(run))
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    ref_steps = [json.loads(line)["step"] for line in (ref / "metrics.jsonl").read_text().splitlines()]
    assert steps == ref_steps
    assert kills >= 5
    record(
        f"{kills} SIGKILLs ({sum(1 for s in seen if not s.startswith('random'))} inside checkpoint writes) and "
        f"{kills} resumes: final weights bitwise identical to the uninterrupted run, every latest checkpoint "
        f"readable after each kill (kill→latest: {', '.join(seen)})"
    )
