"""The semi-supervised linear probe: balanced seeded draws, a probe that learns what is linearly
learnable, features of D's hidden layers, resume after an interruption, one-line flag errors."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from gancore.evaluate import semisupervised as ss  # noqa: E402

from _train_helpers import TINY  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # small fits: one thread is fastest, and the machine may be shared
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 20), st.integers(0, 2**32 - 1))
def test_balanced_draw_is_balanced_distinct_and_seed_deterministic(per, seed):
    labels = np.random.default_rng(seed).integers(0, 10, 600)
    labels[:200] = np.repeat(np.arange(10), 20)  # every class has ≥ 20 rows
    idx = ss.balanced_draw(labels, 10 * per, (seed, 1))
    assert np.bincount(labels[idx], minlength=10).tolist() == [per] * 10
    assert np.unique(idx).size == idx.size
    assert np.array_equal(idx, ss.balanced_draw(labels, 10 * per, (seed, 1)))
    other = ss.balanced_draw(labels, 10 * per, (seed, 2))
    assert np.bincount(labels[other], minlength=10).tolist() == [per] * 10


def test_balanced_draw_differs_between_seeds_and_rejects_unbalanceable_sizes():
    labels = np.repeat(np.arange(10), 50)
    assert not np.array_equal(ss.balanced_draw(labels, 100, 0), ss.balanced_draw(labels, 100, 1))
    with pytest.raises(ValueError, match="multiple of 10"):
        ss.balanced_draw(labels, 105, 0)
    with pytest.raises(ValueError, match="class 0 has only 50"):
        ss.balanced_draw(labels, 510, 0)


def test_the_probe_learns_a_linearly_separable_problem_and_not_a_shuffled_one():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((10, 20)) * 4  # ten well separated clusters
    y = np.repeat(np.arange(10), 30)
    x = centers[y] + rng.standard_normal((300, 20))
    y_test = rng.integers(0, 10, 2000)
    x_test = centers[y_test] + rng.standard_normal((2000, 20))
    fit = dict(l2=0.01, max_iter=50)
    assert ss.probe_error(x, y, x_test, y_test, **fit) < 0.01
    # labels unrelated to x: the probe cannot beat chance on the test set
    assert ss.probe_error(x, rng.permutation(y), x_test, y_test, **fit) > 0.8


def test_the_fit_minimizes_the_penalized_cross_entropy():
    # at the optimum the gradient of mean CE + λ/2‖W‖² vanishes: X^T (P − Y)/n + λW = 0, Σ(P − Y) = 0
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((200, 5)), rng.integers(0, 3, 200)
    lam = 0.1
    w, b = ss.fit_logistic(x, y, n_classes=3, l2=lam)
    z = x @ w + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    r = p - np.eye(3)[y]
    np.testing.assert_allclose(x.T @ r / 200 + lam * w, 0, atol=1e-6)
    np.testing.assert_allclose(r.sum(axis=0), 0, atol=1e-5)


def test_discriminator_features_are_every_maxout_layer_without_dropout():
    from gancore.train.models import MaxoutDiscriminator

    d = MaxoutDiscriminator(12, [6, 4], pieces=3, input_keep=0.8, hidden_keep=0.5)
    d.train()  # the probe must switch dropout off itself
    x = np.random.default_rng(0).random((7, 12), dtype=np.float32)
    f = ss.discriminator_features(d, x)
    assert f.shape == (7, 10)
    with torch.no_grad():
        h1 = d.hidden[0](torch.from_numpy(x))
        np.testing.assert_allclose(f[:, :6], h1.numpy(), rtol=1e-6)
        np.testing.assert_allclose(f[:, 6:], d.hidden[1](h1).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(f, ss.discriminator_features(d, x))  # deterministic: no dropout


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny dry run (synthetic data, 784 pixels as MNIST) with a checkpoint."""
    from gancore.train import cli as train

    out = tmp_path_factory.mktemp("probe") / "run"
    rc = train.main([*TINY, "--max-steps", "2", "--out", str(out)])
    assert rc in (0, None)
    return out


@pytest.fixture(scope="module")
def small_mnist():
    from gancore.data import load_labels, load_split

    x, y = load_split("mnist", "valid"), load_labels("mnist", "valid")  # 10,000 real digits
    return {"train": x[:2000], "train_labels": y[:2000], "test": x[2000:2500], "test_labels": y[2000:2500]}


def test_the_probe_writes_every_cell_and_resumes_from_them(tiny_run, small_mnist):
    opts = dict(labels=[10, 20], draws=1, max_iter=20, data=small_mnist)
    res = ss.run_probe(tiny_run, **opts)
    saved = json.loads((tiny_run / ss.RESULTS_FILE).read_text())
    assert sorted(saved["cells"]) == sorted(f"{k}/{n}/0" for k in ss.FEATURE_SETS for n in (10, 20))
    assert all(0 <= e <= 1 for e in saved["cells"].values())
    assert res["table"]["pixels"]["20"][0] < 0.75  # 20 labelled digits: far better than chance (0.9)
    # a stopped probe leaves its finished cells; the next call keeps them and computes only the rest
    planted = dict(saved, cells={**saved["cells"], "pixels/10/0": 0.123})
    (tiny_run / ss.RESULTS_FILE).write_text(json.dumps(planted))
    res = ss.run_probe(tiny_run, **dict(opts, draws=2))
    assert res["cells"]["pixels/10/0"] == 0.123 and "pixels/10/1" in res["cells"]
    assert res["table"]["pixels"]["10"][2] == 2
    # other settings: the old cells are not reused
    res = ss.run_probe(tiny_run, **dict(opts, l2=0.5))
    assert res["cells"]["pixels/10/0"] != 0.123


@pytest.mark.parametrize(
    "argv, flag",
    [(["--labels", "15"], "--labels"), (["--draws", "0"], "--draws"), (["--l2", "-1"], "--l2")],
)
def test_bad_flags_exit_2_with_one_line_naming_the_flag(argv, flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        ss.main([str(tmp_path), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert flag in err and err.startswith("python -m gancore.evaluate.semisupervised: error:")


def test_a_directory_without_a_run_is_exit_2(tmp_path):
    assert ss.main([str(tmp_path)]) == 2
