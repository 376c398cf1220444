"""Keep freed memory in the process's C heap instead of handing it back to the system (glibc).

Every training step frees and allocates again the same large tensors (activations, gradients). glibc
serves a request above its mmap threshold with a fresh ``mmap`` and gives the pages back on ``free``,
and trims the top of the heap above its trim threshold, so a step that reuses that memory takes a page
fault per 4 kB touched. The thresholds adapt to the sizes a process frees, which is enough for one
run's tensors; R seeds stacked into one tensor (:mod:`gancore.train.replicas`) are R times larger, and
there the faults cost about 6 % of a CPU step (``benches/bench_replicas.py``: 0.94x of separate runs
with glibc's defaults, 1.00-1.04x with ``MALLOC_MMAP_THRESHOLD_=33554432`` set, five seeds of
``mnist_2014``, one thread); so are the (B, n, n) distance tensors of minibatch features at batch 500
(the ring's ``veegan2017`` runs: 90-97 ms a step with the defaults, 68-83 ms with the thresholds raised)
and DCGAN's activations (40 steps: 11.6-12.3 s, and 10.0-11.1 s raised); one ``mnist_2014`` run's
tensors are not (no difference). :func:`keep_freed_memory` sets the same thresholds from inside the
process. The commands that train on a CPU call it (``python -m gancore.train``, ``sweep``,
``gancore.evaluate.ring``, ``gancore.semisupervised``, ``gancore.infer``), as they set the number of
threads: it is a setting of the process, so library calls leave it to their caller.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's upper limit for it on 64-bit systems: larger requests still mmap
TRIM_THRESHOLD = 256 * 1024 * 1024  # free memory kept at the top of the heap before it is returned
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process (a process-wide setting, idempotent).

    Returns True when they were set; False where there is no glibc ``mallopt`` (macOS, musl, Windows)
    or where the user set them already (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or
    ``GLIBC_TUNABLES`` in the environment: theirs stand). Then it does nothing, and nothing depends
    on it but speed."""
    if not sys.platform.startswith("linux") or any(v in os.environ for v in USER_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols: libc's, without a library search
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mmap_set = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)  # both calls, whatever the first returns
    trim_set = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return bool(mmap_set) and bool(trim_set)
