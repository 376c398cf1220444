"""The birthday-paradox support estimate (Arora & Zhang 2017) on distributions whose support is known."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gancore.evaluate import birthday


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 30), d=st.integers(1, 6), copies=st.integers(0, 3), seed=st.integers(0, 2**16))
def test_nearest_other_distance_matches_brute_force(n, d, copies, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    for _ in range(copies):  # exact duplicates: their distance to the other copy is 0
        x[rng.integers(n)] = x[rng.integers(n)]
    got = birthday.nearest_other_distances(x, n_threads=1)
    diff = x[:, None, :].astype(np.float64) - x[None, :, :]
    full = np.sqrt((diff**2).sum(2))
    np.fill_diagonal(full, np.inf)
    assert np.allclose(got, full.min(1), atol=1e-6)


def test_near_duplicate_threshold():
    x = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 0.5]], dtype=np.float32)
    assert birthday.has_near_duplicate(x, 0.5, n_threads=1)
    assert not birthday.has_near_duplicate(x, 0.49, n_threads=1)


@pytest.mark.parametrize("support", [50, 400])
def test_uniform_discrete_support_is_recovered(support):
    """Draws from N well-separated points (plus noise far below τ): the estimate lands near N."""
    rng = np.random.default_rng(support)
    points = rng.standard_normal((support, 16)).astype(np.float32) * 10.0
    draw = birthday.collapsed_generator(points, 0.0)
    r = birthday.birthday_test(draw, 1e-3, trials=40, start=4, seed=1, n_threads=1)
    assert r["reached"]
    assert support / 2 <= r["support"] <= 2 * support, r
    assert r["support_s2"] == r["s_half"] ** 2


def test_continuous_distribution_gives_a_lower_bound():
    draw = lambda s, rng: rng.standard_normal((s, 8)).astype(np.float32)  # noqa: E731
    r = birthday.birthday_test(draw, 1e-3, trials=3, start=8, max_size=64, seed=0, n_threads=1)
    assert not r["reached"] and r["s_half"] == 64 and [s for s, _ in r["curve"]] == [8, 16, 32, 64]


def test_threshold_and_real_pool():
    real = np.random.default_rng(3).random((200, 10)).astype(np.float32)
    tau = birthday.threshold_from_real(real, quantile=0.5, n_threads=1)
    assert tau == pytest.approx(np.median(birthday.nearest_other_distances(real, n_threads=1)))
    batch = birthday.real_pool(real)(200, np.random.default_rng(0))
    assert len(np.unique(batch, axis=0)) == 200  # without replacement
    with pytest.raises(ValueError, match="exceeds"):
        birthday.real_pool(real)(201, np.random.default_rng(0))


def test_arguments_are_validated():
    draw = birthday.collapsed_generator(np.zeros((3, 2), np.float32), 0.0)
    for kwargs, match in (
        (dict(threshold=-1.0), "threshold"),
        (dict(threshold=0.1, trials=0), "trials"),
        (dict(threshold=0.1, start=1), "start"),
    ):
        with pytest.raises(ValueError, match=match):
            birthday.birthday_test(draw, **kwargs)
    with pytest.raises(ValueError, match="quantile"):
        birthday.threshold_from_real(np.zeros((3, 2)), quantile=1.0)
    for bad in ([], ["run", "--calibrate"], ["--calibrate", "--quantile", "0"], ["--calibrate", "--trials", "1"]):
        with pytest.raises(SystemExit) as e:
            birthday.main(bad)
        assert e.value.code == 2


@pytest.mark.slow  # trains a tiny run and reads MNIST's training images: about a minute on a busy 2-core machine
def test_command_on_a_run_directory(tmp_path, capsys):
    """``python -m gancore.evaluate.birthday RUN_DIR``: G's support estimate into RUN_DIR/birthday.json."""
    pytest.importorskip("torch")
    import json

    from gancore.train import cli as train

    from _train_helpers import TINY

    run = tmp_path / "run"
    assert train.main([*TINY, "--threads", "1", "--epochs", "1", "--out", str(run)]) == 0
    args = [str(run), "--calibration-rows", "300", "--trials", "2", "--max-size", "32", "--threads", "1"]
    assert birthday.main(args) == 0
    r = json.loads((run / "birthday.json").read_text())
    assert r["calibration_rows"] == 300 and r["trials"] == 2 and r["s_half"] <= 32
    assert "support" in capsys.readouterr().out


def test_command_on_stored_samples(tmp_path, capsys):
    """``--samples FILE``: stored samples (here 25 MNIST test images, each repeated 40 times) as the pool."""
    import json

    from gancore.data import load_split

    pool = np.repeat(load_split("mnist", "test")[:25], 40, axis=0)
    path = tmp_path / "samples.npy"
    np.save(path, pool)
    args = ["--samples", str(path), "--calibration-rows", "300", "--trials", "10", "--max-size", "64", "--threads", "1"]
    assert birthday.main(args) == 0
    r = json.loads((tmp_path / "samples.npy.birthday.json").read_text())
    assert r["reached"] and r["pool"] == 1000 and 8 <= r["support"] <= 75, r  # uniform on 25 images
    assert "1000 samples of" in capsys.readouterr().out
    np.savez(tmp_path / "bad.npz", other=pool)
    for bad in (["--samples", str(tmp_path / "bad.npz")], ["--samples", str(path), "--calibrate"]):
        with pytest.raises(SystemExit) as e:
            birthday.main(bad)
        assert e.value.code == 2
