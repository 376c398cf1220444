"""Shared helpers for the training tests: a tiny model so every run takes well under a second."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The directory holding the gancore package the tests themselves imported (site-packages after
# `pip install .`, or python/ with a development build): subprocesses must use the same one, and a
# fresh checkout's python/ has no compiled gancore._core.
import gancore as _gancore  # noqa: E402

PYTHON_DIR = Path(_gancore.__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"

# 8 iterations per epoch on the dry-run data (8 * batch examples), tiny layers.
TINY = [
    "--dry-run",
    "--no-eval",
    "-q",
    "--batch-size",
    "16",
    "--g-hidden",
    "32",
    "--d-hidden",
    "16",
    "--d-pieces",
    "3",
    "--noise-dim",
    "8",
    "--log-every",
    "4",
    "--sample-rows",
    "2",
    "--sample-cols",
    "3",
]


def tiny_config(**overrides):
    from gancore.train import config

    base = dict(
        dry_run=True,
        batch_size=16,
        g_hidden=[32],
        d_hidden=[16],
        d_pieces=3,
        noise_dim=8,
        log_every=4,
        sample_rows=2,
        sample_cols=3,
        epochs=2,
        device="cpu",
    )
    base.update(overrides)
    preset = base.pop("preset", "mnist_2014")
    return config.from_preset(preset, **base)


def run_cli(args, env_extra=None, cwd=None) -> subprocess.CompletedProcess:
    """Run ``python -m gancore.train ARGS`` in a fresh interpreter (for kill -9 and exit codes)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PYTHON_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "gancore.train", *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def state_of(run_dir) -> dict:
    """G's and D's weights from the latest checkpoint of ``run_dir``, as NumPy arrays."""
    from safetensors.numpy import load_file

    from gancore.train import checkpoints as checkpoint

    ckpt = checkpoint.latest(run_dir)
    out = {f"g.{k}": v for k, v in load_file(str(ckpt / "generator.safetensors")).items()}
    out.update({f"d.{k}": v for k, v in load_file(str(ckpt / "discriminator.safetensors")).items()})
    return out


def assert_same_state(a: dict, b: dict) -> None:
    import numpy as np

    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs"
