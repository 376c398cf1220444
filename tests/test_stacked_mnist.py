"""Stacked MNIST (Metz et al. 2016 §3.3; VEEGAN; PacGAN): the dataset, the 1,000-mode count, a DCGAN smoke run."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gancore.data import load_labels, load_split
from gancore.data import stacked as stacked_data
from gancore.evaluate import stacked_mnist as sm

torch = pytest.importorskip("torch")

N_CHECK = 2000  # real test images classified once for the agreement and coverage checks


@pytest.fixture(scope="module")
def real():
    torch.set_num_threads(1)
    x = load_split("stacked-mnist", "test")
    y = load_labels("stacked-mnist", "test")
    return x[:N_CHECK], y[:N_CHECK], sm.channel_digits(x[:N_CHECK])


def test_splits_are_three_mnist_digits_stacked_channel_major():
    x, y = load_split("stacked-mnist", "test"), load_labels("stacked-mnist", "test")
    assert x.shape == (10000, 3 * 784) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert y.shape == (10000,) and y.dtype == np.int64 and y.min() >= 0 and y.max() <= 999
    base, base_y = load_split("mnist", "test"), load_labels("mnist", "test")
    idx = stacked_data.stack_indices(base.shape[0], "test")
    for c in range(3):  # channel c of row i is MNIST test image idx[i, c]
        assert np.array_equal(x.reshape(-1, 3, 784)[:, c], base[idx[:, c]])
    assert np.array_equal(y, 100 * base_y[idx[:, 0]] + 10 * base_y[idx[:, 1]] + base_y[idx[:, 2]])
    assert stacked_data.stack_indices(50000, "train").shape == (50000, 3)
    assert stacked_data.stack_indices(10000, "valid").shape == (10000, 3)


def test_splits_are_deterministic_and_distinct():
    a = stacked_data.stack_indices(10000, "test")
    assert np.array_equal(a, stacked_data.stack_indices(10000, "test"))
    assert not np.array_equal(a, stacked_data.stack_indices(10000, "valid"))
    assert np.array_equal(load_labels("stacked-mnist", "valid"), load_labels("stacked-mnist", "valid"))
    with pytest.raises(ValueError, match="split"):
        load_split("stacked-mnist", "unlabeled")


def test_labels_agree_with_the_bundled_classifier(real):
    _, y, digits = real
    truth = np.stack([y // 100, (y // 10) % 10, y % 10], axis=1)
    assert np.all((digits == truth).mean(axis=0) >= 0.98)  # the classifier's test accuracy is 99.35 %
    assert (sm.modes_of(digits) == y).mean() >= 0.96  # ≈ 0.99³


def test_real_images_cover_the_expected_number_of_modes(real):
    _, y, digits = real
    # Rows draw MNIST test digits independently with replacement: p(a, b, c) = q_a q_b q_c exactly.
    q = np.bincount(load_labels("mnist", "test"), minlength=10) / 10000
    p = np.einsum("a,b,c->abc", q, q, q).ravel()
    hit = 1 - (1 - p) ** N_CHECK  # P(mode m gets >= 1 of the N rows)
    expected, sd = hit.sum(), math.sqrt(np.sum(hit * (1 - hit)))  # sd bounds the true one (negative covariances)
    true_count = sm.summarize_modes(y)["modes_covered"]
    assert abs(true_count - expected) < 4 * sd
    measured = sm.summarize_modes(sm.modes_of(digits))
    assert measured["n"] == N_CHECK
    assert abs(measured["modes_covered"] - true_count) <= 0.03 * true_count
    assert measured["kl_to_uniform"] < 0.5  # ln 1000 = 6.9 for one mode


def test_one_repeated_image_is_one_mode_with_kl_log_1000(real):
    x = np.repeat(real[0][:1], 40, axis=0)
    r = sm.stacked_mnist_report(x)
    assert r["modes_covered"] == 1 and r["n"] == 40
    assert r["kl_to_uniform"] == pytest.approx(math.log(1000), abs=1e-12)


@given(st.lists(st.integers(0, 999), min_size=1, max_size=300))
def test_summary_counts_distinct_modes_and_bounds_kl(modes):
    r = sm.summarize_modes(np.array(modes))
    assert r["modes_covered"] == len(set(modes))
    assert -1e-12 <= r["kl_to_uniform"] <= math.log(1000) + 1e-12
    assert sum(r["top_modes"].values()) <= len(modes)


def test_balanced_modes_have_zero_kl():
    r = sm.summarize_modes(np.tile(np.arange(1000), 3))
    assert r["modes_covered"] == 1000 and r["kl_to_uniform"] == pytest.approx(0.0, abs=1e-12)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="images"):
        sm.channel_digits(np.zeros((4, 784), np.float32))
    with pytest.raises(ValueError, match="digits"):
        sm.modes_of(np.array([[1, 2, 10]]))
    with pytest.raises(SystemExit) as e:
        sm.main([])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        sm.main(["--real", "--n", "0"])
    assert e.value.code == 2


def test_markdown_section_shows_the_counts():
    lines = "\n".join(sm.markdown_section(sm.summarize_modes(np.array([7, 7, 123]))))
    assert "| 3 | 2 |" in lines and "007: 2" in lines


def test_dcgan_trains_on_stacked_mnist_and_is_scored(tmp_path):
    from gancore.train import checkpoints
    from gancore.train import cli as train

    run = tmp_path / "r"
    args = ["--dry-run", "--no-eval", "-q", "--preset", "dcgan", "--dataset", "stacked-mnist", "--dcgan-width", "4"]
    args += ["--batch-size", "8", "--noise-dim", "8", "--max-steps", "3", "--sample-rows", "2", "--sample-cols", "2"]
    assert train.main([*args, "--threads", "1", "--out", str(run)]) == 0
    assert checkpoints.latest(run).name == "step_00000003"
    assert json.loads((run / "config.json").read_text())["image_shape"] == [3, 28, 28]
    assert sm.main([str(run), "--n", "30"]) == 0
    r = json.loads((run / "stacked_mnist.json").read_text())
    assert r["n"] == 30 and 1 <= r["modes_covered"] <= 30


def test_evaluate_pipeline_reports_modes_or_says_why_not(real):
    from gancore.evaluate import pipeline

    r = pipeline._stacked_mnist_modes(real[0][:20], "cpu")
    assert r["n"] == 20 and abs(r["modes_covered"] - len(set(real[1][:20]))) <= 2  # the classifier errs on ~2 %
    assert "skipped" in pipeline._stacked_mnist_modes(np.zeros((5, 784), np.float32), "cpu")
