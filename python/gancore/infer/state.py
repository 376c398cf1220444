"""Checkpoints of the encoder: :mod:`gancore.common.checkpoint_folder` under ``RUN_DIR/inference/checkpoints/``::

step_00001500/
    encoder.safetensors     E's weights
    state.safetensors       Adam's buffers and the state of the z generator
    state.json              step, the inference config, the SHA-256 of both files
"""

from __future__ import annotations

from pathlib import Path

from ..common import checkpoint_folder

FORMAT = "gancore-encoder-checkpoint-1"
GROUPS = ("encoder", "state")


def save(root: Path, step: int, encoder, tensors: dict, config: dict, keep: int = 2) -> Path:
    """Write checkpoint ``step`` under ``root`` atomically; keep the newest ``keep``."""
    groups = {"encoder": encoder.state_dict(), "state": tensors}
    return checkpoint_folder.save(root, step, groups, config, fmt=FORMAT, keep=keep)


latest = checkpoint_folder.latest


def load(path: Path, config: dict, resumable) -> tuple[int, dict, dict]:
    """Verify and read a checkpoint: (step, E's state, other tensors); see :func:`checkpoint_folder.load`."""
    step, groups = checkpoint_folder.load(path, config, resumable, fmt=FORMAT, groups=GROUPS)
    return step, groups["encoder"], groups["state"]
