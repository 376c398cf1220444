"""Reliability suite, item 1a: every bad input to the public kernels is refused with the documented
exception and a message naming the argument; every valid-but-unusual input gives the reference
answer (gancore._reference, the NumPy twins).

Documented exceptions: TypeError for a wrong type or dtype, ValueError for a wrong shape or value.
"""

import numpy as np
import pytest

import gancore
from gancore import _reference as ref

GOOD = np.random.default_rng(0).random((4, 3))
P = gancore.parzen_loglik
N = gancore.nearest_neighbors

# (description, call, exception type, text the message must contain)
PARZEN_CASES = [
    ("NaN in x", lambda: P(np.array([[np.nan, 0, 0]]), GOOD, 1.0), ValueError, "x"),
    ("NaN in centers", lambda: P(GOOD, np.array([[0, 0, np.nan]]), 1.0), ValueError, "centers"),
    ("inf in centers", lambda: P(GOOD, np.array([[0, np.inf, 0]]), 1.0), ValueError, "centers"),
    ("-inf in x", lambda: P(np.array([[0, 0, -np.inf]]), GOOD, 1.0), ValueError, "x"),
    ("inf in a float32 x", lambda: P(np.array([[0, np.inf, 0]], np.float32), GOOD, 1.0), ValueError, "x"),
    ("0-D x", lambda: P(np.float64(1.0), GOOD, 1.0), ValueError, "x must be 2-D"),
    ("1-D x", lambda: P(np.zeros(3), GOOD, 1.0), ValueError, "x must be 2-D"),
    ("3-D centers", lambda: P(GOOD, np.zeros((2, 2, 3)), 1.0), ValueError, "centers must be 2-D"),
    ("mismatched d", lambda: P(np.zeros((2, 4)), GOOD, 1.0), ValueError, "same number of columns"),
    ("zero centers", lambda: P(GOOD, np.zeros((0, 3)), 1.0), ValueError, "centers"),
    ("zero columns", lambda: P(np.zeros((2, 0)), np.zeros((2, 0)), 1.0), ValueError, "column"),
    ("values that overflow float64 distances", lambda: P(GOOD * 1e200, GOOD, 1.0), ValueError, "x has a value"),
    ("sigma zero", lambda: P(GOOD, GOOD, 0.0), ValueError, "sigma"),
    ("sigma negative", lambda: P(GOOD, GOOD, -1.0), ValueError, "sigma"),
    ("sigma NaN", lambda: P(GOOD, GOOD, float("nan")), ValueError, "sigma"),
    ("sigma inf", lambda: P(GOOD, GOOD, float("inf")), ValueError, "sigma"),
    ("sigma 1e-300 (1/(2σ²) overflows)", lambda: P(GOOD, GOOD, 1e-300), ValueError, "sigma must be between"),
    ("sigma 1e300 (2σ² overflows)", lambda: P(GOOD, GOOD, 1e300), ValueError, "sigma must be between"),
    ("sigma empty", lambda: P(GOOD, GOOD, []), ValueError, "sigma"),
    ("sigma 2-D", lambda: P(GOOD, GOOD, [[1.0]]), ValueError, "sigma"),
    ("sigma bad entry", lambda: P(GOOD, GOOD, [1.0, 0.0]), ValueError, "sigma[1]"),
    ("sigma string", lambda: P(GOOD, GOOD, "0.2"), TypeError, "sigma"),
    ("sigma bool", lambda: P(GOOD, GOOD, True), TypeError, "sigma"),
    ("sigma complex", lambda: P(GOOD, GOOD, 1 + 0j), TypeError, "sigma"),
    ("int x", lambda: P(np.zeros((2, 3), np.uint8), GOOD, 1.0), TypeError, "x must be a float"),
    ("bool centers", lambda: P(GOOD, GOOD > 0.5, 1.0), TypeError, "centers"),
    ("complex x", lambda: P(GOOD + 1j, GOOD, 1.0), TypeError, "x must be real"),
    ("object x", lambda: P(np.array([[None, 1, 2]], dtype=object), GOOD, 1.0), TypeError, "x"),
    ("ragged x", lambda: P([[1.0, 2.0], [1.0]], GOOD, 1.0), TypeError, "x"),
    ("string x", lambda: P(np.array([["a", "b", "c"]]), GOOD, 1.0), TypeError, "x"),
    ("datetime centers", lambda: P(GOOD, np.zeros((2, 3), "datetime64[s]"), 1.0), TypeError, "centers"),
    ("n_threads negative", lambda: P(GOOD, GOOD, 1.0, n_threads=-1), ValueError, "n_threads"),
    ("n_threads float", lambda: P(GOOD, GOOD, 1.0, n_threads=1.5), TypeError, "n_threads"),
]

KNN_CASES = [
    ("NaN in queries", lambda: N(np.array([[np.nan, 0, 0]]), GOOD), ValueError, "queries"),
    ("NaN in reference", lambda: N(GOOD, np.array([[0, np.nan, 0]])), ValueError, "reference"),
    ("inf in reference", lambda: N(GOOD, np.array([[np.inf, 0, 0]])), ValueError, "reference"),
    ("-inf in float32 queries", lambda: N(np.array([[0, -np.inf, 0]], np.float32), GOOD), ValueError, "queries"),
    ("0-D queries", lambda: N(np.float32(2.0), GOOD), ValueError, "queries must be 2-D"),
    ("1-D queries", lambda: N(np.zeros(3), GOOD), ValueError, "queries must be 2-D"),
    ("1-D reference", lambda: N(GOOD, np.zeros(3)), ValueError, "reference must be 2-D"),
    ("3-D reference", lambda: N(GOOD, np.zeros((1, 2, 3))), ValueError, "reference must be 2-D"),
    ("mismatched d", lambda: N(np.zeros((2, 5)), GOOD), ValueError, "same number of columns"),
    ("empty reference", lambda: N(GOOD, np.zeros((0, 3))), ValueError, "reference"),
    ("zero columns", lambda: N(np.zeros((1, 0)), np.zeros((1, 0))), ValueError, "column"),
    ("values that overflow float64 distances", lambda: N(GOOD, GOOD * -1e200), ValueError, "reference has a value"),
    ("k zero", lambda: N(GOOD, GOOD, 0), ValueError, "k must be between 1"),
    ("k negative", lambda: N(GOOD, GOOD, -2), ValueError, "k must be between 1"),
    ("k above n", lambda: N(GOOD, GOOD, 5), ValueError, "k must be between 1"),
    ("k beyond int64", lambda: N(GOOD, GOOD, 2**70), ValueError, "k must be between 1"),
    ("k float", lambda: N(GOOD, GOOD, 1.0), TypeError, "k must be an int"),
    ("k bool", lambda: N(GOOD, GOOD, True), TypeError, "k must be an int"),
    ("k None", lambda: N(GOOD, GOOD, None), TypeError, "k must be an int"),
    ("k string", lambda: N(GOOD, GOOD, "1"), TypeError, "k must be an int"),
    ("int queries", lambda: N(np.ones((2, 3), np.int64), GOOD), TypeError, "queries"),
    ("uint8 reference", lambda: N(GOOD, np.ones((2, 3), np.uint8)), TypeError, "/ 255"),
    ("bool reference", lambda: N(GOOD, GOOD > 0.5), TypeError, "reference"),
    ("complex reference", lambda: N(GOOD, GOOD * 1j), TypeError, "reference"),
    ("object reference", lambda: N(GOOD, np.array([[1, 2, None]], dtype=object)), TypeError, "reference"),
    ("ragged reference", lambda: N(GOOD, [[1.0, 2.0, 3.0], [1.0]]), TypeError, "reference"),
    ("string queries", lambda: N(np.array([["a", "b", "c"]]), GOOD), TypeError, "queries"),
    ("n_threads negative", lambda: N(GOOD, GOOD, n_threads=-3), ValueError, "n_threads"),
    ("n_threads string", lambda: N(GOOD, GOOD, n_threads="2"), TypeError, "n_threads"),
]


@pytest.mark.parametrize(
    "desc, call, exc, text", PARZEN_CASES + KNN_CASES, ids=[c[0] for c in PARZEN_CASES + KNN_CASES]
)
def test_bad_input_is_rejected_with_a_named_argument(desc, call, exc, text):
    with pytest.raises(exc) as info:
        call()
    assert text in str(info.value), f"{desc}: message {str(info.value)!r} does not mention {text!r}"
    _REJECTED.add(desc)


_REJECTED: set[str] = set()


def test_bad_input_tables_cover_at_least_20_cases_per_kernel(record):
    if not _REJECTED:
        pytest.skip("run the whole file: this test reports the cases that passed above")
    assert len(PARZEN_CASES) >= 20 and len(KNN_CASES) >= 20
    assert _REJECTED == {c[0] for c in PARZEN_CASES + KNN_CASES}
    record(
        f"bad inputs rejected with the documented exception naming the argument: "
        f"{len(PARZEN_CASES)}/{len(PARZEN_CASES)} for parzen_loglik, "
        f"{len(KNN_CASES)}/{len(KNN_CASES)} for nearest_neighbors"
    )


def test_bad_env_thread_count(monkeypatch):
    monkeypatch.setenv("GANCORE_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="GANCORE_NUM_THREADS"):
        gancore.parzen_loglik(GOOD, GOOD, 1.0)


def test_native_module_rechecks_what_python_would_catch():
    """The private native module re-validates too: misuse is an exception, never a panic."""
    from gancore import _core

    with pytest.raises(ValueError, match="same number of columns"):
        _core.parzen_loglik(np.zeros((2, 3)), np.zeros((2, 4)), np.array([1.0]), 0)
    with pytest.raises(ValueError, match="sigma"):
        _core.parzen_loglik(GOOD, GOOD, np.array([-1.0]), 0)
    with pytest.raises(ValueError, match="sigma must be between"):
        _core.parzen_loglik(GOOD, GOOD, np.array([1e-200]), 0)
    with pytest.raises(ValueError, match="k must be between"):
        _core.nearest_neighbors(GOOD, GOOD, 9, 0)
    with pytest.raises(ValueError, match="non-finite"):
        _core.nearest_neighbors(np.array([[np.nan, 0.0, 0.0]]), GOOD, 1, 0)
    with pytest.raises(ValueError, match="overflow float32"):
        _core.nearest_neighbors(np.full((1, 3), 1e19, np.float32), GOOD.astype(np.float32), 1, 0)
    with pytest.raises(TypeError):
        _core.parzen_loglik(GOOD.astype(np.float32), GOOD, np.array([1.0]), 0)
    with pytest.raises(TypeError):
        _core.parzen_loglik(GOOD.astype(">f8"), GOOD, np.array([1.0]), 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.parzen_loglik(np.asfortranarray(GOOD), GOOD, np.array([1.0]), 0)


# ---- valid but unusual inputs: the reference answer ----------------------------------------------
_rng = np.random.default_rng(5)
BASE = _rng.random((6, 4))
_READONLY = BASE.copy()
_READONLY.setflags(write=False)
_WIDE = np.zeros((6, 9))
_WIDE[:, 1::2] = BASE


def _memmap(tmp_path):
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float64, shape=BASE.shape)
    mm[:] = BASE
    return mm


# (description, x as passed, the float64 values it stands for)
UNUSUAL = [
    ("Fortran order", lambda t: np.asfortranarray(BASE), lambda: BASE),
    ("negative row stride", lambda t: BASE[::-1], lambda: BASE[::-1]),
    ("negative strides in both axes", lambda t: BASE[::-1, ::-1], lambda: BASE[::-1, ::-1]),
    ("every other column of a wider array", lambda t: _WIDE[:, 1::2], lambda: BASE),
    ("read-only buffer", lambda t: _READONLY, lambda: BASE),
    ("big-endian float64", lambda t: BASE.astype(">f8"), lambda: BASE),
    ("big-endian float32", lambda t: BASE.astype(">f4"), lambda: BASE.astype(np.float32).astype(np.float64)),
    ("float16", lambda t: BASE.astype(np.float16), lambda: BASE.astype(np.float16).astype(np.float64)),
    ("long double", lambda t: BASE.astype(np.longdouble), lambda: BASE),
    ("numpy.matrix", lambda t: np.asmatrix(BASE), lambda: BASE),
    ("memory-mapped .npy", _memmap, lambda: BASE),
    ("nested Python lists", lambda t: BASE.tolist(), lambda: BASE),
    (
        "float32 values near 1e20 (computed in float64)",
        lambda t: (BASE * 1e20).astype(np.float32),
        lambda: (BASE * 1e20).astype(np.float32).astype(np.float64),
    ),
    (
        "float32 subnormals near 1e-41",
        lambda t: (BASE * 1e-41).astype(np.float32),
        lambda: (BASE * 1e-41).astype(np.float32).astype(np.float64),
    ),
]


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # numpy.matrix is deprecated, still valid
@pytest.mark.parametrize("desc, make, values", UNUSUAL, ids=[u[0] for u in UNUSUAL])
def test_valid_but_unusual_inputs_give_the_reference_answer(desc, make, values, tmp_path):
    x, want_x = make(tmp_path), values()
    centers = want_x[::-1] + 0.25 * np.abs(want_x).max()  # same scale, not identical rows
    scale = float(np.abs(want_x).max())
    sigma = 0.3 * scale
    single = np.asarray(x).dtype in (np.float32, np.float16) or str(np.asarray(x).dtype) in (">f4",)
    # float32 inputs: dominant terms exact, the rest from a float32 tile (1e-3 nats documented).
    tol = dict(rtol=1e-6, atol=1e-3) if single else dict(rtol=1e-12, atol=1e-9)
    got = gancore.parzen_loglik(x, centers, sigma)
    np.testing.assert_allclose(got, ref.parzen_loglik(want_x, centers, sigma), **tol)
    idx, dist = gancore.nearest_neighbors(x, centers, 2)
    want_idx, want_dist = ref.nearest_neighbors(want_x, centers, 2)
    assert (idx == want_idx).all(), desc
    np.testing.assert_allclose(dist, want_dist, rtol=1e-12, atol=0)
    _MATCHED.add(desc)


_MATCHED: set[str] = set()


def test_unusual_inputs_table_is_complete(record):
    if not _MATCHED:
        pytest.skip("run the whole file: this test reports the cases that passed above")
    assert _MATCHED == {u[0] for u in UNUSUAL}
    record(
        f"{len(UNUSUAL)}/{len(UNUSUAL)} valid-but-unusual inputs give the NumPy twin's answer: "
        + ", ".join(u[0] for u in UNUSUAL)
        + " (plus aliasing, overlapping views, d = 300,000 with n = 3, empty queries)"
    )


def test_aliasing_and_overlapping_views():
    a = np.random.default_rng(6).random((9, 5))
    # The same array as both arguments.
    idx, dist = gancore.nearest_neighbors(a, a, 1)
    assert (idx[:, 0] == np.arange(9)).all() and (dist == 0).all()
    np.testing.assert_allclose(gancore.parzen_loglik(a, a, 0.4), ref.parzen_loglik(a, a, 0.4), rtol=1e-12)
    # Overlapping views of one buffer: rows 0..7 against rows 1..8.
    x, c = a[:-1], a[1:]
    np.testing.assert_allclose(gancore.parzen_loglik(x, c, 0.4), ref.parzen_loglik(x, c, 0.4), rtol=1e-12)
    assert (gancore.nearest_neighbors(x, c, 3)[0] == ref.nearest_neighbors(x, c, 3)[0]).all()
    # The inputs are never written to.
    before = a.copy()
    gancore.parzen_loglik(a, a, [0.1, 1.0])
    assert np.array_equal(a, before)


def test_huge_d_with_tiny_n_and_empty_queries():
    rng = np.random.default_rng(7)
    x, c = rng.random((2, 300_000)), rng.random((3, 300_000))
    np.testing.assert_allclose(gancore.parzen_loglik(x, c, 20.0), ref.parzen_loglik(x, c, 20.0), rtol=1e-12)
    idx, dist = gancore.nearest_neighbors(x, c, 3)
    want_idx, want_dist = ref.nearest_neighbors(x, c, 3)
    assert (idx == want_idx).all()
    np.testing.assert_allclose(dist, want_dist, rtol=1e-12)
    assert gancore.parzen_loglik(np.zeros((0, 4)), BASE, [0.1, 0.2]).shape == (2, 0)
    idx, dist = gancore.nearest_neighbors(np.zeros((0, 4)), BASE, 2)
    assert idx.shape == dist.shape == (0, 2)


def test_extreme_but_valid_scales_match_closed_forms():
    """Closed forms where the NumPy twin itself would overflow: no silent inf/NaN."""
    import math

    a = np.random.default_rng(8).random((5, 3))
    for sigma in (1.01e-150, 0.99e150):
        # x equal to its center and every other center far away (or, for huge σ, all at ~0):
        got = gancore.parzen_loglik(a[:1], a[:1], sigma)
        want = -1.5 * (math.log(2 * math.pi) + 2 * math.log(sigma))
        assert np.isfinite(got).all() and abs(got[0] - want) <= 1e-12 * abs(want)
    # Data at 1e150 in float64: just inside the limit, distances ~1e300 stay finite.
    big = a * 1e150
    idx, dist = gancore.nearest_neighbors(big, big, 1)
    assert (idx[:, 0] == np.arange(5)).all() and (dist == 0).all()
