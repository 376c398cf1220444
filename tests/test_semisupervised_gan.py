"""The semi-supervised GAN of Salimans et al. 2016 (§5; tutorial §5.4): its losses are the K+1-class
softmax with the fake logit at 0, its initialization normalizes D's pre-activations, its Polyak average
of a constant is that constant, and the command validates, checkpoints and resumes bit for bit."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from gancore.semisupervised import cli  # noqa: E402
from gancore.semisupervised.config import SemiSupervisedConfig  # noqa: E402
from gancore.semisupervised.losses import generator_loss, real_logit, supervised_loss, unsupervised_loss  # noqa: E402
from gancore.semisupervised.models import Classifier  # noqa: E402
from gancore.semisupervised.training import SemiSupervisedData, SemiSupervisedTraining  # noqa: E402

from _train_helpers import PYTHON_DIR  # noqa: E402

logit_batches = st.integers(1, 6).flatmap(
    lambda n: st.lists(st.floats(-30, 30, allow_nan=False, width=32), min_size=n * 10, max_size=n * 10)
)


def _k_plus_1(logits: torch.Tensor) -> torch.Tensor:
    """Explicit log-probabilities of K+1 classes, the (K+1)-th ("generated") with logit 0."""
    full = torch.cat([logits, torch.zeros(logits.shape[0], 1, dtype=logits.dtype)], dim=1)
    return torch.log_softmax(full, dim=1)


@given(logit_batches, logit_batches)
def test_unsupervised_loss_is_the_gan_loss_of_the_k_plus_1_softmax(real, fake):
    lr = torch.tensor(real, dtype=torch.float64).reshape(-1, 10)
    lf = torch.tensor(fake, dtype=torch.float64).reshape(-1, 10)
    # −½ E log(1 − p(K+1 | x)) − ½ E log p(K+1 | G(z)): D(x) = 1 − p(fake | x)
    log_d_real = torch.log1p(-_k_plus_1(lr)[:, 10].exp())
    expected = -0.5 * log_d_real.mean() - 0.5 * _k_plus_1(lf)[:, 10].mean()
    assert float(unsupervised_loss(lr, lf)) == pytest.approx(float(expected), rel=1e-9, abs=1e-9)
    d = torch.sigmoid(real_logit(lr))  # D(x) = Z/(Z + 1)
    assert torch.allclose(d, 1 - _k_plus_1(lr)[:, 10].exp(), rtol=1e-9, atol=1e-12)


@given(logit_batches, st.integers(0, 9))
def test_supervised_loss_is_the_k_class_cross_entropy_given_real(values, label):
    logits = torch.tensor(values, dtype=torch.float64).reshape(-1, 10)
    y = torch.full((logits.shape[0],), label)
    logp = _k_plus_1(logits)
    # −log p(y | x, y ≤ K) = −log p(y | x) + log(1 − p(K+1 | x))
    expected = -(logp[:, label] - torch.log1p(-logp[:, 10].exp())).mean()
    assert float(supervised_loss(logits, y)) == pytest.approx(float(expected), rel=1e-9, abs=1e-9)


def test_feature_matching_is_zero_when_the_batch_means_agree_and_averages_over_features():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(8, 5, generator=g)
    assert float(generator_loss(f, f[torch.randperm(8, generator=g)])) == pytest.approx(0.0, abs=1e-12)
    shifted = f + torch.tensor([1.0, 0, 0, 0, 2.0])  # means differ by (1, 0, 0, 0, 2): (1 + 4) / 5
    assert float(generator_loss(f, shifted)) == pytest.approx(1.0, rel=1e-6)


def test_data_dependent_initialization_normalizes_every_pre_activation():
    x = torch.rand(300, 40, generator=torch.Generator().manual_seed(1))
    d = Classifier(40, [30, 20], 10, input_noise=0.0, hidden_noise=0.0, seed=0)
    d.initialize(x, noise=None)
    h = x
    for layer in [*d.hidden, d.out]:
        pre = layer(h)
        assert torch.allclose(pre.mean(0), torch.zeros(pre.shape[1]), atol=1e-5)
        assert torch.allclose(pre.std(0, unbiased=False), torch.ones(pre.shape[1]), atol=1e-4)
        h = torch.relu(pre)
    # Hidden scales are set by the initialization, then held; the output layer's scale is trained.
    names = {n for n, _ in d.named_parameters()}
    assert "out.g" in names and not any(n.startswith("hidden.") and n.endswith(".g") for n in names)


def _tiny_data(n=400, d=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, d), dtype=np.float32)
    y = np.arange(n) % 10
    idx = np.arange(20)
    return SemiSupervisedData(x, x[idx], y[idx], idx, x[:50], y[:50])


def _tiny_cfg(**kw):
    base = dict(labels=20, batch_size=20, d_hidden=[16, 8], g_hidden=[8], noise_dim=3, init_batch=50, epochs=1)
    return SemiSupervisedConfig(**{**base, **kw})


def test_the_polyak_average_of_unchanging_weights_is_those_weights():
    # lr 1e-30: D's weights do not move, so the (bias-corrected) average must equal them at every step.
    t = SemiSupervisedTraining(_tiny_cfg(lr=1e-30, average_rate=0.1), _tiny_data(), "cpu")
    for _ in range(3):
        t.train_step()
        for name, p in t.D.named_parameters():
            assert torch.allclose(t.averaged_parameters()[name], p, rtol=1e-5, atol=1e-7), name


def test_an_update_moves_both_nets_and_changes_the_average():
    t = SemiSupervisedTraining(_tiny_cfg(), _tiny_data(), "cpu")
    g0 = [p.clone() for p in t.G.parameters()]
    d0 = [p.clone() for p in t.D.parameters()]
    row = t.train_step()
    assert set(row) == {"loss_sup", "loss_unsup", "loss_g", "train_error"}
    assert all(not torch.equal(a, b) for a, b in zip(g0, t.G.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(d0, t.D.parameters()))
    assert all(float(a.abs().sum()) > 0 for a in t.average)


TINY = ["--labels", "20", "--unlabeled", "train", "--d-hidden", "16", "8", "--g-hidden", "8", "--noise-dim", "3"]
TINY += ["--init-batch", "50", "--threads", "1", "--batch-size", "250", "--log-every", "100", "-q"]  # 200 updates/epoch


def _weights(run):
    from safetensors.numpy import load_file

    ck = run / "checkpoints" / (run / "checkpoints" / "LATEST").read_text().strip()
    return {f"{g}/{k}": v for g in cli.GROUPS for k, v in load_file(str(ck / f"{g}.safetensors")).items()}


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    run = tmp_path_factory.mktemp("ssl") / "straight"
    assert cli.main([*TINY, "--epochs", "2", "--out", str(run)]) == 0
    return run


def test_a_run_reports_test_errors_per_epoch(straight):
    rep = json.loads((straight / "report.json").read_text())
    assert rep["epochs"] == 2 and rep["updates"] == 400 and [r["epoch"] for r in rep["curve"]] == [1, 2]
    assert 0 <= rep["test_errors"] <= rep["n_test"] == 10000
    assert (straight / "samples.png").is_file() and "test errors" in (straight / "report.md").read_text()


def test_resume_after_an_epoch_is_bit_identical(straight, tmp_path):
    run = tmp_path / "resumed"
    assert cli.main([*TINY, "--epochs", "1", "--out", str(run)]) == 0
    assert cli.main([*TINY, "--epochs", "2", "--out", str(run)]) == 0
    a, b = _weights(straight), _weights(run)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert (
        json.loads((run / "report.json").read_text())["test_errors"]
        == json.loads((straight / "report.json").read_text())["test_errors"]
    )


@pytest.mark.slow  # two fresh interpreters that each load MNIST: ~40 s on a busy 2-core machine
def test_kill_9_mid_epoch_then_the_same_command_is_bit_identical(straight, tmp_path):
    run = tmp_path / "killed"
    cmd = [sys.executable, "-m", "gancore.semisupervised", *TINY, "--epochs", "2", "--checkpoint-every", "50"]
    cmd += ["--out", str(run)]
    env = {**os.environ, "PYTHONPATH": str(PYTHON_DIR), "GANCORE_TEST_KILL_AT_STEP": "275"}
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == -9
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "step_00000250"
    env.pop("GANCORE_TEST_KILL_AT_STEP")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    a, b = _weights(straight), _weights(run)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    epochs = [json.loads(ln).get("epoch") for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e for e in epochs if e is not None] == [1, 2]  # the epoch-2 line is not written twice


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--labels", "15"], "--labels must be a positive multiple of 10"),
        (["--lr", "0"], "--lr must be a positive number"),
        (["--seeds", "2-1"], "is empty"),
        (["--seeds", "0-1", "--seed", "3"], "either --seed or --seeds"),
        (["--average-rate", "2"], "--average-rate must be in (0, 1]"),
    ],
)
def test_bad_arguments_are_one_line_errors_exit_2(flags, message, tmp_path, capsys):
    assert cli.main([*flags, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "r").exists()


def test_a_changed_setting_is_refused_on_resume(straight, tmp_path, caplog):
    assert cli.main([*TINY, "--epochs", "2", "--lr", "0.001", "--out", str(straight)]) == 2
    assert "was made with other settings (lr: 0.003 -> 0.001)" in caplog.text


def test_seeds_write_a_summary_with_mean_and_sd(tmp_path):
    out = tmp_path / "sweep"
    assert cli.main([*TINY, "--epochs", "1", "--seeds", "0-1", "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["seeds"] == [0, 1] and len(s["test_errors"]) == 2
    assert s["test_errors_stats"]["mean"] == pytest.approx(np.mean(s["test_errors"]))
    assert s["test_errors_stats"]["sd"] == pytest.approx(np.std(s["test_errors"], ddof=1))
    assert (out / "seed_1" / "report.json").is_file() and "mean ± sd" in (out / "summary.md").read_text()


def test_adam_with_eps_in_the_square_root_is_the_authors_step():
    """openai/improved-gan's adam_updates: p − lr·m̂/√(v̂ + ε). For a gradient of 10⁻⁵ the first step is
    lr·10⁻⁵/√(10⁻¹⁰ + 10⁻⁸) ≈ 0.0995·lr, where torch's m̂/(√v̂ + ε) steps ≈ lr."""
    from gancore.train.optimizers import Adam

    for in_sqrt, expected in ((True, 1e-5 / np.sqrt(1e-10 + 1e-8)), (False, 1e-5 / (1e-5 + 1e-8))):
        p = torch.zeros(3, dtype=torch.float64)
        opt = Adam([p], 0.5, 0.999, eps_in_sqrt=in_sqrt)
        opt.step([torch.full((3,), 1e-5, dtype=torch.float64)], lr=0.003)
        assert torch.allclose(p, torch.full((3,), -0.003 * expected, dtype=torch.float64), rtol=1e-12), in_sqrt
