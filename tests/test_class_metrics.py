"""The classifier metrics' NumPy code against closed forms and hand-computed cases (no network here)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gancore.evaluate import class_metrics as cm


def test_histogram_coverage_and_kl_on_hand_made_labels():
    labels = np.repeat(np.arange(10), 100)
    hist = cm.class_histogram(labels)
    assert hist.tolist() == [100] * 10 and hist.dtype == np.int64
    assert cm.digits_covered(hist) == 10 and cm.kl_to_uniform(hist) == pytest.approx(0.0, abs=1e-15)
    one = cm.class_histogram(np.full(50, 7))
    assert cm.digits_covered(one) == 1 and cm.kl_to_uniform(one) == pytest.approx(math.log(10))
    # exactly 1% counts as covered, just under does not
    edge = np.array([99, 1] + [0] * 8)
    assert cm.digits_covered(edge) == 2 and cm.digits_covered(np.array([1000, 9] + [0] * 8)) == 1
    # two equal classes: KL = log(10/2)
    assert cm.kl_to_uniform(np.array([5, 5] + [0] * 8)) == pytest.approx(math.log(5))


@pytest.mark.parametrize(
    "bad", [np.array([0.5, 1.0]), np.array([], dtype=np.int64), np.array([[1, 2]]), np.array([0, 10]), np.array([-1])]
)
def test_class_histogram_rejects_bad_labels(bad):
    with pytest.raises(ValueError, match="labels"):
        cm.class_histogram(bad)


def test_classifier_score_hand_cases():
    eye = np.eye(10)
    assert cm.classifier_score(eye) == pytest.approx(10.0)  # confident and balanced: K
    assert cm.classifier_score(np.tile(eye[3], (5, 1))) == pytest.approx(1.0)  # one digit: 1
    assert cm.classifier_score(np.full((4, 10), 0.1)) == pytest.approx(1.0)  # no confidence: 1
    # two samples, two classes: p(y) = (0.75, 0.25)
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    kl1 = math.log(1 / 0.75)
    kl2 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert cm.classifier_score(p) == pytest.approx(math.exp((kl1 + kl2) / 2), rel=1e-12)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40), st.integers(2, 10), st.integers(0, 2**32 - 1))
def test_classifier_score_lies_in_1_to_k_and_ignores_class_order(n, k, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 0.3), size=n)
    s = cm.classifier_score(p)
    assert 1.0 - 1e-9 <= s <= k + 1e-9
    assert cm.classifier_score(p[:, rng.permutation(k)]) == pytest.approx(s, rel=1e-12)


@pytest.mark.parametrize("bad", [np.ones((3, 2)), np.full((2, 2), np.nan), np.zeros((0, 3)), np.array([[1.5, -0.5]])])
def test_classifier_score_rejects_non_probabilities(bad):
    with pytest.raises(ValueError, match="probs"):
        cm.classifier_score(bad)


def _random_rotation(k, rng):
    q, r = np.linalg.qr(rng.standard_normal((k, k)))
    return q * np.sign(np.diag(r))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_frechet_distance_closed_form_for_covariances_sharing_eigenvectors(k, seed):
    # Σ₁ = Q diag(a) Qᵀ, Σ₂ = Q diag(b) Qᵀ commute, so (Σ₁Σ₂)^½ = Q diag(√(ab)) Qᵀ and
    # FD = ‖μ₁ − μ₂‖² + Σ (√a − √b)².
    rng = np.random.default_rng(seed)
    q = _random_rotation(k, rng)
    a, b = rng.uniform(0.01, 5, k), rng.uniform(0.01, 5, k)
    mu1, mu2 = rng.standard_normal(k), rng.standard_normal(k)
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = cm.frechet_distance(mu1, (q * a) @ q.T, mu2, (q * b) @ q.T)
    assert got == pytest.approx(want, rel=1e-8, abs=1e-9)


def test_frechet_distance_matches_scipy_sqrtm_for_non_commuting_covariances():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    for k in (2, 5, 30):
        a, b = rng.standard_normal((k, k)), rng.standard_normal((k, k))
        c1, c2 = a @ a.T + 0.1 * np.eye(k), b @ b.T + 0.1 * np.eye(k)
        mu1, mu2 = rng.standard_normal(k), rng.standard_normal(k)
        ref = np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * np.real(linalg.sqrtm(c1 @ c2)))
        assert cm.frechet_distance(mu1, c1, mu2, c2) == pytest.approx(ref, rel=1e-8)
        assert cm.frechet_distance(mu2, c2, mu1, c1) == pytest.approx(ref, rel=1e-8)  # symmetric


def test_frechet_distance_of_a_set_to_itself_is_zero_and_of_a_shift_is_the_squared_shift():
    rng = np.random.default_rng(1)
    f = rng.standard_normal((500, 8)) @ rng.standard_normal((8, 8))
    mu, cov = cm.gaussian_fit(f)
    assert cm.frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)
    shift = np.arange(8.0)
    assert cm.frechet_distance(*cm.gaussian_fit(f + shift), mu, cov) == pytest.approx(np.sum(shift**2), rel=1e-9)
    # a rank-deficient covariance (fewer rows than features) stays finite and non-negative
    few = cm.gaussian_fit(rng.standard_normal((3, 8)))
    assert 0 <= cm.frechet_distance(*few, mu, cov) < np.inf


def test_frechet_distance_and_gaussian_fit_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="means must be"):
        cm.frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="features"):
        cm.gaussian_fit(np.zeros((1, 4)))
