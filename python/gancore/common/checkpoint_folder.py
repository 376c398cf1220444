"""Checkpoint folders for the auxiliary trainers (the encoder of :mod:`gancore.infer`, the semi-supervised
GAN of :mod:`gancore.semisupervised`), written as training's (:mod:`gancore.train.checkpoints`)::

    ROOT/
        LATEST                      name of the newest complete checkpoint, e.g. "step_00001500"
        step_00001500/
            <name>.safetensors      one file per tensor group (weights, optimizer buffers, RNG states)
            state.json              format, step, the configuration, the SHA-256 of every file

Each checkpoint is written into a hidden temporary folder, fsync'ed and renamed, and ``LATEST`` is
replaced atomically afterwards, so ``kill -9`` at any moment leaves ``LATEST`` naming a complete
checkpoint. Loading re-hashes every file and compares the configuration field by field.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from .atomic import fsync_dir, fsync_file, write_atomic

__all__ = ["CheckpointError", "latest", "load", "save", "sha256_file"]


class CheckpointError(ValueError):
    """A checkpoint that cannot be trusted: missing, truncated, corrupted, of another format or for
    another config."""


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save(root: Path, step: int, groups: dict[str, dict], config: dict, *, fmt: str, keep: int = 2) -> Path:
    """Write checkpoint ``step`` under ``root`` atomically, one ``<name>.safetensors`` per entry of
    ``groups`` ({name: {key: tensor}}); keep the newest ``keep``."""
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:08d}"
    tmp = root / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    files = [f"{g}.safetensors" for g in groups]
    try:
        tmp.mkdir()
        for f, tensors in zip(files, groups.values()):
            save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp / f))
            fsync_file(tmp / f)
        meta = {"format": fmt, "step": step, "config": config, "files": {f: sha256_file(tmp / f) for f in files}}
        write_atomic(tmp / "state.json", json.dumps(meta, indent=1, sort_keys=True).encode())
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # never leave a half-written folder taking space
        raise
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    fsync_dir(root)
    write_atomic(root / "LATEST", name.encode())
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("step_"))
    for old in names[:-keep]:
        if old != name:
            shutil.rmtree(root / old, ignore_errors=True)
    for stale in root.glob(".tmp-*"):  # left by a process killed mid-save
        shutil.rmtree(stale, ignore_errors=True)
    return final


def latest(root: Path) -> Path | None:
    """The checkpoint ``root/LATEST`` names, or None when there is none yet."""
    pointer = root / "LATEST"
    if not pointer.is_file():
        return None
    path = root / pointer.read_text().strip()
    if not path.is_dir():
        raise CheckpointError(f"{pointer} names {path.name!r}, which is not a checkpoint folder in {root}")
    return path


def load(path: Path, config: dict, resumable, *, fmt: str, groups) -> tuple[int, dict[str, dict]]:
    """Verify and read a checkpoint: (step, {group: tensors}). ``CheckpointError`` when a file is
    missing or corrupted, or ``config`` differs from the saved one outside ``resumable``."""
    try:
        meta = json.loads((path / "state.json").read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path / 'state.json'} cannot be read ({exc}): the checkpoint is damaged") from None
    if meta.get("format") != fmt:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format')!r}, expected {fmt!r}")
    for g in groups:
        f = path / f"{g}.safetensors"
        if not f.is_file() or sha256_file(f) != meta["files"].get(f.name):
            raise CheckpointError(f"{f} is missing or does not match its SHA-256: the checkpoint is damaged")
    saved = meta.get("config", {})
    diff = sorted(k for k in set(saved) | set(config) if k not in resumable and saved.get(k) != config.get(k))
    if diff:
        changes = ", ".join(f"{k}: {saved.get(k)!r} -> {config.get(k)!r}" for k in diff)
        raise CheckpointError(
            f"{path} was made with other settings ({changes}); pass the same flags, or --restart to start over"
        )
    return int(meta["step"]), {g: load_file(str(path / f"{g}.safetensors")) for g in groups}
