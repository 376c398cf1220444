"""Checksummed, atomic downloads of the public datasets.

A download goes to a temporary file next to its destination; its *content* is verified by the
caller-supplied ``verify`` function (the SHA-256 of the uncompressed data, see
:mod:`gancore.data`), and only then is the file fsync'ed and renamed into place. A failed or
interrupted download therefore never leaves a file that a later load could mistake for the data.
"""

from __future__ import annotations

import logging
import urllib.request
from pathlib import Path
from typing import Callable

from ..common.atomic import atomic_path

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0
_CHUNK = 1 << 20


def download_verified(url: str, dest: Path, verify: Callable[[Path], None]) -> Path:
    """Fetch ``url`` to ``dest`` atomically; ``verify(tmp_path)`` must raise on bad content.

    Raises ``OSError`` (network or file-system trouble) or whatever ``verify`` raises; in both
    cases ``dest`` is left untouched and the temporary file is removed.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s -> %s", url, dest)
    # The temporary name keeps the real suffix (".gz") so the verifier decodes it like the final file;
    # a failed fetch or verification removes it and leaves ``dest`` untouched.
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
        verify(tmp)
    return dest
