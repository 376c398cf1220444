"""Argument checks shared by the public kernel wrappers.

Everything a user can pass is checked here, with messages that name the argument, before any data
reaches Rust. The Rust core re-checks (it never trusts its caller), but the messages users see come
from here. Arrays are coerced to C-contiguous float32/float64 copies only when needed, so any memory
layout (Fortran order, strided or negative-stride views, read-only buffers) gives the same answer.
"""

from __future__ import annotations

import os

import numpy as np

from . import _core

_FLOAT_DTYPES = (np.float32, np.float64)

# Bandwidth range the Rust core enforces (1/(2σ²) and 2σ² must be normal float64s), read from it.
MIN_SIGMA = _core.MIN_SIGMA
MAX_SIGMA = _core.MAX_SIGMA


def as_matrix(value, name: str) -> np.ndarray:
    """Return ``value`` as a 2-D C-contiguous float32/float64 array, or raise naming ``name``."""
    return checked_matrix(value, name)[0]


def checked_matrix(value, name: str) -> tuple[np.ndarray, float]:
    """``as_matrix`` plus the largest absolute value (0.0 for an empty array), found in the same pass."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a 2-D array of floats; could not convert it: {exc}") from None
    if arr.dtype == object:
        raise TypeError(f"{name} must be a numeric float array; got an object array")
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must be real-valued; got complex dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        hint = ""
        if arr.dtype.kind in "ui":
            hint = " (for 8-bit images use x.astype(np.float32) / 255 to get the paper's [0,1] scale)"
        raise TypeError(f"{name} must be a float32 or float64 array; got dtype {arr.dtype}{hint}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows × features); got {arr.ndim}-D array of shape {arr.shape}")
    if not arr.dtype.isnative:
        # Big-endian data (e.g. read from a file with '>f8'): same values in native byte order.
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype not in _FLOAT_DTYPES:  # float16, longdouble
        arr = arr.astype(np.float64 if arr.itemsize > 8 else np.float32)
    arr = np.ascontiguousarray(arr)
    # Scanned in row blocks so a 100,000 × 784 input does not need a 300 MB temporary. The block
    # maximum of |v| is NaN or inf exactly when the block holds a non-finite value.
    step = max(1, (1 << 18) // max(arr.shape[1], 1))
    largest = 0.0
    for start in range(0, arr.shape[0], step):
        block = arr[start : start + step]
        if block.size == 0:
            continue
        top = float(np.max(np.abs(block)))
        if not np.isfinite(top):
            bad = np.argwhere(~np.isfinite(block))[0]
            raise ValueError(
                f"{name} contains a non-finite value ({block[tuple(bad)]}) at row {start + bad[0]}, column {bad[1]}"
            )
        largest = max(largest, top)
    return arr, largest


def magnitude_limit(dtype, d: int) -> float:
    """Largest |value| the Rust core accepts in ``dtype`` at dimension ``d`` (its distance expansion
    cannot overflow below it): computed by the core's own function, so the two never disagree."""
    return _core.magnitude_limit(np.dtype(dtype).name, int(d))


def kernel_pair(a: np.ndarray, a_max: float, a_name: str, b: np.ndarray, b_max: float, b_name: str):
    """Cast two checked matrices to the dtype the kernel computes in.

    float32 only when both are float32 and their values are small enough for float32 distance
    tiles (|v| up to ~5e17 at d = 784); such rare large float32 data are computed in float64
    instead of overflowing. float64 data beyond the float64 limit (~2e152 at d = 784) are refused,
    naming the argument, rather than answered with overflowed distances.
    """
    a, b = common_dtype(a, b)
    d = a.shape[1]
    if a.dtype == np.float32 and max(a_max, b_max) > magnitude_limit(np.float32, d):
        a, b = a.astype(np.float64), b.astype(np.float64)
    limit = magnitude_limit(np.float64, d)
    for name, top in ((a_name, a_max), (b_name, b_max)):
        if top > limit:
            raise ValueError(
                f"{name} has a value of magnitude {top:.3g}, above {limit:.3g}: squared distances would "
                f"overflow float64; divide the data by a common scale first"
            )
    return a, b


def common_dtype(*arrays: np.ndarray) -> list[np.ndarray]:
    """Cast to one dtype: float32 only when every array is float32, else float64."""
    if all(a.dtype == np.float32 for a in arrays):
        return list(arrays)
    return [a.astype(np.float64, copy=False) for a in arrays]


def check_same_width(a: np.ndarray, a_name: str, b: np.ndarray, b_name: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{a_name} and {b_name} must have the same number of columns (dimension d); "
            f"got {a_name}.shape={a.shape} and {b_name}.shape={b.shape}"
        )


def as_sigmas(sigma) -> tuple[np.ndarray, bool]:
    """Return (σ values as a 1-D float64 array, whether ``sigma`` was a scalar)."""
    if isinstance(sigma, (bool, np.bool_)):
        raise TypeError("sigma must be a positive float or a 1-D array of positive floats; got a bool")
    try:
        arr = np.asarray(sigma)
    except Exception as exc:
        raise TypeError(f"sigma must be a positive float or a 1-D array of them: {exc}") from None
    if arr.dtype == object or arr.dtype.kind not in "fiu":
        raise TypeError(f"sigma must be a positive float or a 1-D array of them; got dtype {arr.dtype}")
    if arr.ndim > 1:
        raise ValueError(f"sigma must be a scalar or a 1-D array; got shape {arr.shape}")
    scalar = arr.ndim == 0
    arr = np.atleast_1d(arr).astype(np.float64)
    if arr.size == 0:
        raise ValueError("sigma must not be empty: give at least one bandwidth")
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        i = int(np.argmax(bad))
        where = "" if scalar else f" (sigma[{i}])"
        raise ValueError(f"sigma must be finite and > 0; got {arr[i]}{where}")
    out = ~((arr >= MIN_SIGMA) & (arr <= MAX_SIGMA))
    if out.any():
        i = int(np.argmax(out))
        where = "" if scalar else f" (sigma[{i}])"
        raise ValueError(
            f"sigma must be between {MIN_SIGMA:g} and {MAX_SIGMA:g} (so that 1/(2σ²) is a normal float64); "
            f"got {arr[i]:g}{where}"
        )
    return np.ascontiguousarray(arr), scalar


def as_int(value, name: str, *, low: int = 1, high: int | None = None, note: str = "") -> int:
    """``value`` as a Python int in [``low``, ``high``]: ``TypeError`` naming ``name`` for a non-integer
    (bools included), ``ValueError`` outside the range. ``note`` follows the bound in the message
    (e.g. " (0 = all cores)")."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int{note}; got {type(value).__name__}")
    if high is not None and not low <= int(value) <= high:
        raise ValueError(f"{name} must be between {low} and {high}{note}; got {value}")
    if int(value) < low:
        raise ValueError(f"{name} must be >= {low}{note}; got {value}")
    return int(value)


def as_n_threads(n_threads) -> int:
    """0 means the default: ``$GANCORE_NUM_THREADS`` if set, else every core."""
    n_threads = as_int(n_threads, "n_threads", low=0, note=" (0 = all cores)")
    if n_threads == 0:
        env = os.environ.get("GANCORE_NUM_THREADS", "").strip()
        if env:
            try:
                n_threads = int(env)
            except ValueError:
                raise ValueError(f"GANCORE_NUM_THREADS must be a whole number; got {env!r}") from None
            if n_threads < 0:
                raise ValueError(f"GANCORE_NUM_THREADS must be >= 0; got {env!r}")
    return n_threads
