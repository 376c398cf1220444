"""Every bad input to the public kernels raises ValueError/TypeError naming the argument."""

import numpy as np
import pytest

import gancore

GOOD = np.random.default_rng(0).random((4, 3))

# (description, call, exception type, text the message must contain)
PARZEN_CASES = [
    ("NaN in x", lambda: gancore.parzen_loglik(np.array([[np.nan, 0, 0]]), GOOD, 1.0), ValueError, "x"),
    ("inf in centers", lambda: gancore.parzen_loglik(GOOD, np.array([[0, np.inf, 0]]), 1.0), ValueError, "centers"),
    ("-inf in x", lambda: gancore.parzen_loglik(np.array([[0, 0, -np.inf]]), GOOD, 1.0), ValueError, "x"),
    ("1-D x", lambda: gancore.parzen_loglik(np.zeros(3), GOOD, 1.0), ValueError, "x must be 2-D"),
    ("3-D centers", lambda: gancore.parzen_loglik(GOOD, np.zeros((2, 2, 3)), 1.0), ValueError, "centers must be 2-D"),
    ("mismatched d", lambda: gancore.parzen_loglik(np.zeros((2, 4)), GOOD, 1.0), ValueError, "same number of columns"),
    ("zero centres", lambda: gancore.parzen_loglik(GOOD, np.zeros((0, 3)), 1.0), ValueError, "centers"),
    ("zero columns", lambda: gancore.parzen_loglik(np.zeros((2, 0)), np.zeros((2, 0)), 1.0), ValueError, "column"),
    ("sigma zero", lambda: gancore.parzen_loglik(GOOD, GOOD, 0.0), ValueError, "sigma"),
    ("sigma negative", lambda: gancore.parzen_loglik(GOOD, GOOD, -1.0), ValueError, "sigma"),
    ("sigma NaN", lambda: gancore.parzen_loglik(GOOD, GOOD, float("nan")), ValueError, "sigma"),
    ("sigma inf", lambda: gancore.parzen_loglik(GOOD, GOOD, float("inf")), ValueError, "sigma"),
    ("sigma empty", lambda: gancore.parzen_loglik(GOOD, GOOD, []), ValueError, "sigma"),
    ("sigma 2-D", lambda: gancore.parzen_loglik(GOOD, GOOD, [[1.0]]), ValueError, "sigma"),
    ("sigma bad entry", lambda: gancore.parzen_loglik(GOOD, GOOD, [1.0, 0.0]), ValueError, "sigma[1]"),
    ("sigma string", lambda: gancore.parzen_loglik(GOOD, GOOD, "0.2"), TypeError, "sigma"),
    ("sigma bool", lambda: gancore.parzen_loglik(GOOD, GOOD, True), TypeError, "sigma"),
    ("int x", lambda: gancore.parzen_loglik(np.zeros((2, 3), np.uint8), GOOD, 1.0), TypeError, "x must be a float"),
    ("bool centers", lambda: gancore.parzen_loglik(GOOD, GOOD > 0.5, 1.0), TypeError, "centers"),
    ("complex x", lambda: gancore.parzen_loglik(GOOD + 1j, GOOD, 1.0), TypeError, "x must be real"),
    ("object x", lambda: gancore.parzen_loglik(np.array([[None, 1, 2]], dtype=object), GOOD, 1.0), TypeError, "x"),
    ("ragged x", lambda: gancore.parzen_loglik([[1.0, 2.0], [1.0]], GOOD, 1.0), TypeError, "x"),
    ("string x", lambda: gancore.parzen_loglik(np.array([["a", "b", "c"]]), GOOD, 1.0), TypeError, "x"),
    ("n_threads negative", lambda: gancore.parzen_loglik(GOOD, GOOD, 1.0, n_threads=-1), ValueError, "n_threads"),
    ("n_threads float", lambda: gancore.parzen_loglik(GOOD, GOOD, 1.0, n_threads=1.5), TypeError, "n_threads"),
]

KNN_CASES = [
    ("NaN in queries", lambda: gancore.nearest_neighbors(np.array([[np.nan, 0, 0]]), GOOD), ValueError, "queries"),
    ("inf in reference", lambda: gancore.nearest_neighbors(GOOD, np.array([[np.inf, 0, 0]])), ValueError, "reference"),
    ("1-D queries", lambda: gancore.nearest_neighbors(np.zeros(3), GOOD), ValueError, "queries must be 2-D"),
    ("3-D reference", lambda: gancore.nearest_neighbors(GOOD, np.zeros((1, 2, 3))), ValueError, "reference must be 2-D"),
    ("mismatched d", lambda: gancore.nearest_neighbors(np.zeros((2, 5)), GOOD), ValueError, "same number of columns"),
    ("empty reference", lambda: gancore.nearest_neighbors(GOOD, np.zeros((0, 3))), ValueError, "reference"),
    ("zero columns", lambda: gancore.nearest_neighbors(np.zeros((1, 0)), np.zeros((1, 0))), ValueError, "column"),
    ("k zero", lambda: gancore.nearest_neighbors(GOOD, GOOD, 0), ValueError, "k must be between 1"),
    ("k negative", lambda: gancore.nearest_neighbors(GOOD, GOOD, -2), ValueError, "k must be between 1"),
    ("k above n", lambda: gancore.nearest_neighbors(GOOD, GOOD, 5), ValueError, "k must be between 1"),
    ("k float", lambda: gancore.nearest_neighbors(GOOD, GOOD, 1.0), TypeError, "k must be an int"),
    ("k bool", lambda: gancore.nearest_neighbors(GOOD, GOOD, True), TypeError, "k must be an int"),
    ("int queries", lambda: gancore.nearest_neighbors(np.ones((2, 3), np.int64), GOOD), TypeError, "queries"),
    ("complex reference", lambda: gancore.nearest_neighbors(GOOD, GOOD * 1j), TypeError, "reference"),
    ("object reference", lambda: gancore.nearest_neighbors(GOOD, np.array([[1, 2, None]], dtype=object)), TypeError, "reference"),
    ("n_threads negative", lambda: gancore.nearest_neighbors(GOOD, GOOD, n_threads=-3), ValueError, "n_threads"),
]


@pytest.mark.parametrize("desc, call, exc, text", PARZEN_CASES + KNN_CASES, ids=[c[0] for c in PARZEN_CASES + KNN_CASES])
def test_bad_input_is_rejected_with_a_named_argument(desc, call, exc, text):
    with pytest.raises(exc) as info:
        call()
    assert text in str(info.value), f"{desc}: message {str(info.value)!r} does not mention {text!r}"


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
    with pytest.raises(ValueError, match="k must be between"):
        _core.nearest_neighbors(GOOD, GOOD, 9, 0)
    with pytest.raises(ValueError, match="non-finite"):
        _core.nearest_neighbors(np.array([[np.nan, 0.0, 0.0]]), GOOD, 1, 0)
    with pytest.raises(TypeError):
        _core.parzen_loglik(GOOD.astype(np.float32), GOOD, np.array([1.0]), 0)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.parzen_loglik(np.asfortranarray(GOOD), GOOD, np.array([1.0]), 0)


def test_valid_but_unusual_layouts_give_the_reference_answer():
    rng = np.random.default_rng(5)
    base = rng.random((6, 4))
    readonly = base.copy()
    readonly.setflags(write=False)
    views = [base[::-1], np.asfortranarray(base), base[:, ::-1][:, ::-1], readonly, base.astype(np.float16)]
    want = gancore.parzen_loglik(base, base, 0.5)
    for v in views:
        got = gancore.parzen_loglik(v, base, 0.5)
        if v.dtype == np.float16:
            assert got.shape == want.shape and np.isfinite(got).all()
        elif v.base is not None and v[0, 0] != base[0, 0]:
            np.testing.assert_allclose(got, want[::-1], rtol=1e-12)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-12)
    # The same array passed as both arguments (aliasing) is fine.
    idx, dist = gancore.nearest_neighbors(base, base, 1)
    assert (idx[:, 0] == np.arange(6)).all() and (dist == 0).all()
