"""Checkpoints that survive ``kill -9``, refuse to load when damaged, and never unpickle anything.

Layout inside a run directory::

    checkpoints/
        LATEST                         name of the newest complete checkpoint, e.g. "step_00001500"
        step_00001500/
            generator.safetensors      G's weights (and batch-norm buffers)
            discriminator.safetensors  D's weights (and batch-norm buffers)
            state.safetensors          optimizer buffers, the epoch's permutation, RNG states as bytes
            state.json                 step, epoch, schedule values, the config (compared field by field on load), the
                                       Python/NumPy RNG states, and the SHA-256 of the three files above

Writing is atomic: everything goes to ``checkpoints/.tmp-step_…``, each file is fsync'ed, the folder
is renamed into place, and ``LATEST`` is replaced (temp file, fsync, rename) only afterwards. A run
killed at any moment therefore leaves ``LATEST`` naming a complete checkpoint. Loading re-hashes every
file against ``state.json`` and compares the saved configuration with the current one, so a truncated
or corrupted checkpoint, or one made for another configuration, is refused with a message saying which.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..common.atomic import fsync_dir, fsync_file, write_atomic
from ..common.checkpoint_folder import CheckpointError  # one class for every kind of checkpoint
from ..common.checkpoint_folder import sha256_file as _sha256
from . import config as config_mod
from .models import build_generator

log = logging.getLogger(__name__)

FORMAT = "gancore-checkpoint-1"
FILES = ("generator.safetensors", "discriminator.safetensors", "state.safetensors")

# Test hook (reliability suite): SIGKILL this process at a named point inside ``save`` — "mid-file"
# (a tensor file half written), "before-rename" (complete temp folder, not yet in place) or
# "before-latest" (folder in place, LATEST still naming the previous checkpoint).
KILL_IN_SAVE_ENV = "GANCORE_TEST_KILL_IN_SAVE"


def _test_kill_point(point: str, partial: Path | None = None) -> None:
    if os.environ.get(KILL_IN_SAVE_ENV) != point:
        return
    if partial is not None:  # leave the file as a crash mid-write would: cut short
        with open(partial, "r+b") as f:
            f.truncate(max(1, partial.stat().st_size // 2))
    os.kill(os.getpid(), signal.SIGKILL)


def checkpoint_dir(run_dir) -> Path:
    return Path(run_dir) / "checkpoints"


def save(run_dir, step: int, *, gen, disc, tensors: dict[str, torch.Tensor], meta: dict, keep: int = 2) -> Path:
    """Write checkpoint ``step_{step:08d}`` atomically and point ``LATEST`` at it.

    ``tensors`` are the non-weight tensors (optimizer state, RNG bytes…); ``meta`` is JSON-able.
    Older checkpoints beyond the newest ``keep`` are deleted afterwards.
    """
    root = checkpoint_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    tmp = root / f".tmp-{name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
        _save_tensors(gen.state_dict(), tmp / FILES[0])
        _test_kill_point("mid-file", partial=tmp / FILES[0])
        _save_tensors(disc.state_dict(), tmp / FILES[1])
        _save_tensors(tensors, tmp / FILES[2])
        for fname in FILES:
            fsync_file(tmp / fname)
        meta = dict(meta, format=FORMAT, step=step, files={f: _sha256(tmp / f) for f in FILES})
        write_atomic(tmp / "state.json", json.dumps(meta, indent=1, sort_keys=True).encode())
        _test_kill_point("before-rename")
    except BaseException:
        # A failed write (disk full, permission denied, Ctrl-C) must not leave its half-written folder
        # taking the space the next attempt needs; the previous checkpoint and LATEST are untouched.
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    final = root / name
    if final.exists():  # a re-save of the same step (e.g. Ctrl-C right after an epoch's checkpoint)
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_dir(root)
    _test_kill_point("before-latest")
    write_atomic(root / "LATEST", name.encode())
    _prune(root, keep, newest=name)
    return final


def _save_tensors(state: dict, path: Path) -> None:
    """``safetensors.save_file``, with its I/O failures (reported as ``SafetensorError`` wrapping the OS
    error, e.g. "No space left on device") raised as the ``OSError`` they are, naming ``path``."""
    try:
        save_file(_cpu_contiguous(state), str(path))
    except OSError:
        raise
    except Exception as exc:  # SafetensorError: the OS error survives only as text ("(os error 28)")
        code = re.search(r"(?:os error |code: )(\d+)", str(exc))
        if code is None:
            raise
        err = int(code.group(1))
        raise OSError(err, os.strerror(err), str(path)) from exc


def latest(run_dir) -> Path | None:
    """The directory ``LATEST`` names, or None when the run has no checkpoint yet."""
    pointer = checkpoint_dir(run_dir) / "LATEST"
    if not pointer.is_file():
        return None
    name = pointer.read_text().strip()
    path = checkpoint_dir(run_dir) / name
    if not name.startswith("step_") or not path.is_dir():
        raise CheckpointError(f"{pointer} names '{name}', which is not a checkpoint folder in {path.parent}")
    return path


def load(path: Path, *, cfg=None, device="cpu") -> tuple[dict, dict, dict, dict]:
    """Verify and read checkpoint ``path``: returns (meta, G state, D state, other tensors).

    Raises :class:`CheckpointError` when a file is missing, its hash differs from ``state.json``
    (truncated or corrupted), the format is unknown, or ``cfg`` (a TrainConfig) differs from the saved
    configuration in a field other than ``TrainConfig.RESUMABLE``.
    """
    path = Path(path)
    meta_path = path / "state.json"
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{meta_path} is missing: {path} is not a complete checkpoint") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{meta_path} is not valid JSON ({exc}): the checkpoint is corrupted") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {meta.get('format')!r} (expected {FORMAT})")
    for fname in FILES:
        f = path / fname
        if not f.is_file():
            raise CheckpointError(f"{f} is missing: the checkpoint is incomplete")
        if _sha256(f) != meta["files"].get(fname):
            raise CheckpointError(
                f"{f} does not match the SHA-256 recorded in state.json: the checkpoint is truncated or corrupted"
            )
    if cfg is not None:
        # Compare field by field (not by a hash of the config) so that a field added to TrainConfig later, whose
        # default keeps the old behavior, does not orphan older checkpoints.
        saved = {**config_mod.TrainConfig().to_dict(), **meta.get("config", {})}
        diff = _config_diff(saved, cfg.to_dict(), cfg.RESUMABLE)
        if diff:
            raise CheckpointError(f"{path} was made for another configuration; differing fields: {diff}")
    dev = str(device)
    tensors = []
    for fname in FILES:
        try:
            tensors.append(load_file(str(path / fname), device=dev))
        except Exception as exc:  # SafetensorError and friends: a file whose hash was rewritten too
            raise CheckpointError(f"{path / fname} is not a valid safetensors file ({exc})") from None
    return meta, tensors[0], tensors[1], tensors[2]


def load_generator(run_dir, *, device="cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild G from ``run_dir/config.json``, load the latest checkpoint's weights, return (G in eval
    mode on ``device``, the resolved config dict)."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path} not found: {run_dir} is not a gancore run directory")
    cfg_dict = json.loads(cfg_path.read_text())
    cfg = config_mod.from_dict(cfg_dict)
    ckpt = latest(run_dir)
    if ckpt is None:
        raise FileNotFoundError(f"{run_dir} has no checkpoint yet ({checkpoint_dir(run_dir)}/LATEST is missing)")
    _, g_state, _, _ = load(ckpt, cfg=cfg, device="cpu")
    gen = build_generator(cfg)
    try:
        gen.load_state_dict(g_state)
    except RuntimeError as exc:  # names or shapes that do not fit the configured G
        raise CheckpointError(f"{ckpt / FILES[0]} does not fit the generator of {cfg_path}: {exc}") from None
    return gen.to(device).eval(), cfg.to_dict()


# ---------------------------------------------------------------------------------------------


def _config_diff(saved: dict, current: dict, ignore) -> str:
    keys = sorted(k for k in set(saved) | set(current) if k not in ignore and saved.get(k) != current.get(k))
    return ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in keys)


def _cpu_contiguous(state: dict) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def _prune(root: Path, keep: int, newest: str) -> None:
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("step_"))
    for name in names[:-keep] if keep < len(names) else []:
        if name != newest:
            shutil.rmtree(root / name, ignore_errors=True)
    for stale in root.glob(".tmp-*"):  # left behind by a run killed mid-save
        if stale.name != f".tmp-{newest}":
            shutil.rmtree(stale, ignore_errors=True)
