"""Checksummed, atomic downloads of the public datasets.

A download goes to a temporary file next to its destination; its *content* is verified by the
caller-supplied ``verify`` function (the SHA-256 of the uncompressed data, see
:mod:`gancore.data`), and only then is the file fsync'ed and renamed into place. A failed or
interrupted download therefore never leaves a file that a later load could mistake for the data.
"""

from __future__ import annotations

import logging
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Callable

from ._fsutil import fsync_dir

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0
_CHUNK = 1 << 20


def download_verified(url: str, dest: Path, verify: Callable[[Path], None]) -> Path:
    """Fetch ``url`` to ``dest`` atomically; ``verify(tmp_path)`` must raise on bad content.

    Raises ``OSError`` (network or file-system trouble) or whatever ``verify`` raises; in both
    cases ``dest`` is left untouched and the temporary file is removed.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    # The temp name keeps the real suffix (".gz") so the verifier decodes it like the final file.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.stem}.part.", suffix=dest.suffix, dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        log.info("downloading %s -> %s", url, dest)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        verify(tmp)
        os.replace(tmp, dest)
        fsync_dir(dest.parent)
        return dest
    finally:
        if tmp.exists():
            tmp.unlink()


