"""All-or-nothing file writes: the one way gancore puts a file on disk.

A file is written under a temporary name beside its destination (``.NAME.tmp.EXT``, hidden, same
folder so the rename cannot cross filesystems), flushed and fsync'ed, renamed over the destination
with ``os.replace`` and the folder fsync'ed. A reader therefore sees the old file or the new one,
never a mix, also after ``kill -9`` or a power cut; a write that fails (disk full, permission denied)
removes its temporary file and leaves the old file as it was. Temporaries that a killed process
could not remove are recognised by :func:`is_temporary` and swept by :func:`remove_temporaries`.

Checkpoints, sample grids, curves, figures, reports, ``samples.npz``, the evaluation cache and
dataset downloads all write through here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "fsync_dir", "fsync_file", "is_temporary", "remove_temporaries", "write_atomic"]

TEMP_MARK = ".tmp"


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush ``path``'s data to the disk."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def temporary_name(path: Path) -> Path:
    """The temporary sibling a write of ``path`` goes through; it keeps the extension, because some
    writers (matplotlib, NumPy's ``savez``) choose the format from it."""
    return path.with_name(f".{path.name}{TEMP_MARK}{path.suffix}")


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is a temporary left by an interrupted :func:`atomic_path` or checkpoint write."""
    return path.name.startswith(".") and TEMP_MARK in path.name


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` through; on success it is fsync'ed and renamed into
    place, on any exception it is removed and ``path`` is left untouched.

        with atomic_path(out / "grid.png") as tmp:
            image.save(tmp, format="PNG")
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def write_atomic(path, data: bytes | str) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path``, all or nothing."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(raw)
        f.flush()
    return path


def remove_temporaries(folder) -> list[Path]:
    """Remove the temporaries (files and folders) that interrupted writes left directly in ``folder``.

    Returns what was removed. Call it only where no other process writes (a run directory holds the
    run lock first, see :mod:`gancore.common.lock`); a missing folder is not an error.
    """
    folder = Path(folder)
    removed = []
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not is_temporary(entry):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        removed.append(entry)
    return removed


def truncate_jsonl(path, step: int, key: str = "step") -> None:
    """Drop the lines of a JSON-lines log whose ``key`` is above ``step`` (logged after the checkpoint a
    resumed run restarts from), and unreadable lines (a line cut by a kill); rewritten atomically."""
    import json

    path = Path(path)
    if not path.is_file():
        return
    keep = []
    for ln in path.read_text().splitlines():
        try:
            if json.loads(ln)[key] <= step:
                keep.append(ln)
        except (ValueError, KeyError, TypeError):
            continue
    write_atomic(path, ("\n".join(keep) + "\n" if keep else "").encode())
