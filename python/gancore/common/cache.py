"""The per-user cache root of gancore: ``$XDG_CACHE_HOME/gancore`` (default ``~/.cache/gancore``).

Downloaded datasets go to ``datasets/``, the evaluation's model-independent reference rows to
``eval/``. Everything in it can be deleted at any time; it is recomputed or downloaded again.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root"]


def cache_root(*parts: str) -> Path:
    """``$XDG_CACHE_HOME/gancore/<parts...>``, with ``~/.cache`` when the variable is unset."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).joinpath("gancore", *parts)
