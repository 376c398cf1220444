"""One writer per run directory: an advisory lock held for the life of the process.

Training (a fresh start or ``--resume``) and evaluation (which writes ``report.json`` and the figures)
take ``RUN_DIR/.lock`` with ``flock(LOCK_EX | LOCK_NB)`` before they write anything and keep it until
the process ends. The kernel releases a ``flock`` when its holder dies, also by ``kill -9``, so a
stale lock never blocks ``--resume``. A second writer is refused at once with a message that names
the holder's PID and host, which the holder records in the lock file.

The lock is re-entrant within one process: training evaluates its own run at the end without
deadlocking on itself. On filesystems where ``flock`` is not supported (some network filesystems
answer ``ENOLCK`` or ``EOPNOTSUPP``), the run goes on without the lock and a warning says so; two
writers are then not prevented there.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
from pathlib import Path

__all__ = ["LOCK_NAME", "RunLocked", "hold_run_lock", "release_run_lock"]

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"

# Run directories this process holds: resolved path -> [file descriptor, hold count].
_HELD: dict[str, list[int]] = {}


class RunLocked(RuntimeError):
    """Another process holds the run directory's lock."""


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or "an unknown process"


def hold_run_lock(run_dir, *, purpose: str) -> bool:
    """Take ``run_dir``'s lock for this process (creating ``run_dir``), or raise :class:`RunLocked`.

    Returns whether a lock is held (False where the filesystem cannot lock). ``purpose`` ("training",
    "evaluation") goes into the lock file beside the PID and host, for the message a second writer gets.
    """
    import fcntl

    run_dir = Path(run_dir)
    key = str(run_dir.resolve())
    if key in _HELD:
        _HELD[key][1] += 1
        return True
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise RunLocked(
                f"{run_dir} is in use by {_holder(path)}; only one process may write a run directory. "
                f"Wait for it to finish (or stop it), then run the command again"
            ) from None
        log.warning(
            "cannot lock %s (%s): this filesystem does not support flock, so a second process "
            "writing the same run would not be stopped",
            path,
            exc.strerror or exc,
        )
        return False
    # Record the holder for the message a refused writer prints (after locking: never overwrite theirs).
    os.ftruncate(fd, 0)
    os.write(fd, f"PID {os.getpid()} on host {socket.gethostname()} ({purpose})\n".encode())
    _HELD[key] = [fd, 1]
    return True


def release_run_lock(run_dir) -> None:
    """Drop one hold of ``run_dir``'s lock; the last one closes it (the process's exit also does)."""
    key = str(Path(run_dir).resolve())
    held = _HELD.get(key)
    if held is None:
        return
    held[1] -= 1
    if held[1] == 0:
        del _HELD[key]
        os.close(held[0])
