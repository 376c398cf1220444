"""Reliability suite: everyday file-system faults end in one line, leave no stray data, and resume.

* **Disk full while writing a checkpoint.** A fault-injecting writer (the real ``safetensors`` call,
  stopped half way with the ``SafetensorError`` it raises on ENOSPC) fails the epoch-2 checkpoint:
  exit 5, one line naming the path and the cause, the half-written ``.tmp-step_…`` folder removed,
  LATEST still naming the last good checkpoint; ``--resume`` then finishes bit-identical to a run that
  never failed. Also through the OS itself: ``RLIMIT_FSIZE`` makes every large write fail with EFBIG.
* **Two writers on one run.** While a training process runs, ``--resume RUN``, a fresh ``--out RUN``
  and ``python -m gancore.evaluate RUN`` are refused (exit 6) with the holder's PID and host; after
  ``kill -9`` of the holder, ``--resume`` succeeds (the kernel released the lock).
* **Temporaries from a dead process** are removed on the next start, before anything is written.
* **A damaged checkpoint in evaluation** is one line and exit 2, no traceback.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("safetensors")

from gancore.common.failures import EXIT_IO, EXIT_LOCKED, EXIT_USAGE  # noqa: E402
from gancore.train import checkpoints  # noqa: E402
from gancore.train import cli as train  # noqa: E402

from _train_helpers import PYTHON_DIR, TINY, assert_same_state, run_cli, state_of  # noqa: E402

ARGS = [*TINY, "--epochs", "3", "--threads", "1"]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PYTHON_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _stray_temporaries(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if ".tmp" in p.name)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


# Run ``gancore.train`` with a safetensors writer that fails on its Nth call the way a full disk does:
# half the bytes reach the file, then SafetensorError with the OS error inside.
FULL_DISK = """
import sys
import safetensors
from gancore.train import checkpoints, cli
fail_at, calls = int(sys.argv[1]), [0]
real = checkpoints.save_file
def full_disk(tensors, path, *a, **k):
    calls[0] += 1
    if calls[0] == fail_at:
        real(tensors, path, *a, **k)
        with open(path, "r+b") as f:
            f.truncate(max(1, f.seek(0, 2) // 2))
        raise safetensors.SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    return real(tensors, path, *a, **k)
checkpoints.save_file = full_disk
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.slow  # ~30 s: three training subprocesses; .ci/run runs it with -m slow
def test_disk_full_during_a_checkpoint_is_one_line_and_resumes_bit_identically(tmp_path, record):
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert run_cli([*ARGS, "--out", ref]).returncode == 0
    # 3 tensor files per checkpoint: call 4 is the first file of the epoch-2 checkpoint.
    r = subprocess.run(
        [sys.executable, "-c", FULL_DISK, "4", *ARGS, "--out", str(run)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = _error_lines(r.stderr)
    assert r.returncode == EXIT_IO, r.stderr
    assert "Traceback" not in r.stderr and len(lines) == 1, r.stderr
    assert "No space left on device" in lines[0] and ".tmp-step_00000016" in lines[0]
    assert "step_00000008" in lines[0] and "--resume" in lines[0]
    assert _stray_temporaries(run) == []
    assert checkpoints.latest(run).name == "step_00000008"
    resumed = run_cli(["--resume", run, "-q", "--no-eval", "--threads", "1"])
    assert resumed.returncode == 0, resumed.stderr
    assert_same_state(state_of(ref), state_of(run))
    record(
        f"disk full at the epoch-2 checkpoint: exit {r.returncode}, 1 line, 0 stray temporaries, "
        f"LATEST kept step_00000008, --resume bit-identical to an uninterrupted run"
    )


def test_a_real_write_failure_from_the_os_ends_in_one_line(tmp_path, record):
    """RLIMIT_FSIZE: the kernel refuses writes past 20 kB (EFBIG), as a quota would; no injection."""
    run = tmp_path / "run"

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    cmd = [sys.executable, "-m", "gancore.train", *ARGS, "--g-hidden", "256", "--out", str(run)]
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300, preexec_fn=limit)
    lines = _error_lines(r.stderr)
    assert r.returncode == EXIT_IO, r.stderr
    assert "Traceback" not in r.stderr and len(lines) == 1, r.stderr
    assert "File too large" in lines[0] and str(run) in lines[0]
    assert _stray_temporaries(run) == []
    record(f"OS write limit (EFBIG) during training: exit {r.returncode}, 1 line: {lines[0][9:120]}…")


def _wait_for_lock(run: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    lock = run / ".lock"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the holder exited early: {proc.stderr.read()}")
        if lock.exists() and f"PID {proc.pid}" in lock.read_text() and (run / "config.json").exists():
            return
        time.sleep(0.05)
    raise AssertionError("the holder never took the lock")


@pytest.mark.slow  # ~30 s: four subprocesses; .ci/run runs it with -m slow
def test_one_writer_per_run_directory_and_kill_9_releases_the_lock(tmp_path, record):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-m", "gancore.train", *TINY, "--epochs", "100000", "--threads", "1", "--out", str(run)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_lock(run, holder)
        who = f"PID {holder.pid} on host {socket.gethostname()}"
        second = run_cli(["--resume", run, "-q", "--no-eval", "--threads", "1"])
        assert second.returncode == EXIT_LOCKED and who in second.stderr, second.stderr
        evaluate = subprocess.run(
            [sys.executable, "-m", "gancore.evaluate", str(run), "--no-figures"],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert evaluate.returncode in (EXIT_LOCKED, EXIT_USAGE), evaluate.stderr
        assert "Traceback" not in evaluate.stderr and len(_error_lines(evaluate.stderr)) == 1, evaluate.stderr
        # (the dry run's synthetic data cannot be evaluated: exit 2 before the lock, or 6 at it)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    resumed = run_cli(["--resume", run, "-q", "--no-eval", "--threads", "1", "--epochs", "3"])
    # the resumed run may already be past epoch 3: it then stops at once, which is success too
    assert resumed.returncode == 0, resumed.stderr
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert steps == sorted(set(steps))  # one story: no step logged twice
    record(
        f"second writer while training ran: --resume refused with exit {second.returncode} naming {who}; "
        f"after kill -9 of the holder, --resume exit {resumed.returncode}"
    )


def test_fresh_start_on_a_locked_directory_is_refused(tmp_path):
    """Before the first process has written config.json, only the lock stops a second fresh start."""
    from gancore.common.lock import RunLocked, hold_run_lock, release_run_lock

    run = tmp_path / "run"
    code = (
        "import sys, time\nfrom gancore.common.lock import hold_run_lock\nhold_run_lock(sys.argv[1], purpose='test')\n"
    )
    code += "print('held', flush=True)\ntime.sleep(60)\n"
    holder = subprocess.Popen([sys.executable, "-c", code, str(run)], env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = run_cli([*ARGS, "--out", run])
        assert r.returncode == EXIT_LOCKED and f"PID {holder.pid}" in r.stderr, r.stderr
        assert not (run / "config.json").exists()  # refused before writing anything
        with pytest.raises(RunLocked, match=f"PID {holder.pid}"):
            hold_run_lock(run, purpose="test")
    finally:
        holder.kill()
        holder.wait()
    assert hold_run_lock(run, purpose="test")  # the kernel released the dead holder's lock
    release_run_lock(run)


def test_temporaries_left_by_a_dead_process_are_removed_on_resume(tmp_path):
    run = tmp_path / "run"
    assert train.main([*ARGS, "--out", str(run), "--epochs", "1"]) == 0
    junk = [
        run / "checkpoints" / ".tmp-step_00000099",
        run / ".config.json.tmp.json",
        run / "samples" / ".final.png.tmp.png",
    ]
    junk[0].mkdir()
    (junk[0] / "generator.safetensors").write_bytes(b"\0" * 1000)
    for j in junk[1:]:
        j.write_bytes(b"half")
    assert train.main(["--resume", str(run), "-q", "--no-eval", "--epochs", "2"]) == 0
    assert _stray_temporaries(run) == []


def test_damaged_checkpoint_in_evaluate_is_one_line_exit_2(tmp_path, record):
    run = tmp_path / "run"
    assert train.main([*ARGS, "--out", str(run), "--epochs", "1"]) == 0
    f = checkpoints.latest(run) / "discriminator.safetensors"
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))
    r = subprocess.run(
        [sys.executable, "-m", "gancore.evaluate", str(run)], env=_env(), capture_output=True, text=True, timeout=300
    )
    lines = _error_lines(r.stderr)
    assert r.returncode == EXIT_USAGE and "Traceback" not in r.stderr and len(lines) == 1, r.stderr
    assert "discriminator.safetensors" in lines[0] and "SHA-256" in lines[0]
    record(f"one flipped byte in discriminator.safetensors: gancore.evaluate exit {r.returncode}, 1 line")
