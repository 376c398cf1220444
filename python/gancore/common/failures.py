"""Exit codes of gancore's commands, and one-line descriptions of the failures a user can fix.

    0    done
    2    bad arguments, missing or damaged data, or a checkpoint that cannot be trusted
    3    training diverged (NaN/inf losses); the last good checkpoint is kept
    4    another process of a torchrun job failed or stopped answering
    5    a file-system error: no space left, read-only or vanished directory, permission denied
    6    the run directory is in use by another process (see :mod:`gancore.common.lock`)
    130  interrupted (Ctrl-C, SIGTERM); a checkpoint was written when training

Every one of these ends in one line naming the path and the cause, never a traceback.
"""

from __future__ import annotations

import errno
import os

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_DIVERGED = 3
EXIT_DIST = 4
EXIT_IO = 5
EXIT_LOCKED = 6
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\
Exit codes: 0 done, 2 bad arguments/data/checkpoint, 3 training diverged (NaN/inf), 4 another process
of a torchrun job failed or stopped answering, 5 file-system error (disk full, read-only, permission),
6 the run directory is in use by another process, 130 interrupted."""

_HINTS = {
    errno.ENOSPC: "free some space",
    errno.EDQUOT: "free some space (disk quota exceeded)",
    errno.EROFS: "the filesystem is read-only: choose a writable directory",
    errno.EACCES: "check the permissions",
    errno.EPERM: "check the permissions",
    errno.ENOENT: "the directory vanished: check the path",
}


def describe_os_error(exc: OSError) -> str:
    """``"No space left on device: /runs/r/checkpoints/.tmp-step_00001000 (free some space)"``."""
    cause = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))
    where = exc.filename if exc.filename is not None else ""
    hint = _HINTS.get(exc.errno or -1)
    text = f"{cause}: {where}" if where else str(cause)
    return f"{text} ({hint})" if hint else text


def find_os_error(exc: BaseException) -> OSError | None:
    """The ``OSError`` behind ``exc`` (itself, or a cause in its chain), if there is one."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
