"""End to end: gancore.evaluate on a tiny generator (in memory and from a run directory), the CLI."""

import json
import math
import warnings

import numpy as np
import pytest

from gancore.evaluate import draw_samples, evaluate_generator, evaluate_run, main
from gancore.evaluate.table1 import DataScaleWarning

from _eval_helpers import TinyGenerator, blobs, parzen_ll_2014
from _train_helpers import TINY

torch = pytest.importorskip("torch")  # gancore.evaluate imports torch lazily, so the imports above are safe

CFG = {"dataset": "mnist", "noise_dim": 4, "noise_prior": "uniform", "image_shape": [1, 4, 4]}


def _data(d=16, n_train=300, n_valid=120, n_test=150):
    return {"train": blobs(n_train, d, seed=1), "valid": blobs(n_valid, d, seed=2), "test": blobs(n_test, d, seed=3)}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    from gancore.evaluate import theory1d

    out = tmp_path_factory.mktemp("run")
    real = theory1d.train_gan_1d
    with warnings.catch_warnings(), pytest.MonkeyPatch.context() as mp:
        warnings.simplefilter("ignore")  # tiny data: σ may sit on the grid edge
        # Figure 1's 1-D GAN is test_theory1d's subject; here only its place in the report is, so it trains
        # 60 steps instead of 600, with a private cache so the short run never lands in the user's.
        mp.setattr(theory1d, "train_gan_1d", lambda **kw: real(steps=60, snapshots=(0, 30, None), **kw))
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        rep = evaluate_generator(
            TinyGenerator.make(),
            CFG,
            out,
            data=_data(),
            n_samples=200,
            seed=7,
            memorization_samples=100,
            cells=2,
            kmeans_iters=3,
        )
    return out, rep


def test_report_files_and_numbers(evaluated):
    out, rep = evaluated
    for name in (
        "report.json",
        "report.md",
        "samples.npz",
        "figure2_samples.png",
        "figure2_nn_pairs.png",
        "figure3_interpolation.png",
        "nn_distances.png",
        "sigma_curve.png",
        "figure1_1d.png",
    ):
        assert (out / name).is_file(), name
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["parzen"]["mean"] == pytest.approx(rep["parzen"]["mean"])
    assert on_disk["protocol"] == "paper" and on_disk["seed"] == 7
    assert set(on_disk["references"]) == {"train", "kmeans"}
    assert len(on_disk["parzen"]["sigmas"]) == len(on_disk["parzen"]["valid_ll"]) == 10
    assert set(on_disk["timings_s"]) >= {
        "sampling",
        "parzen_model",
        "parzen_references",
        "memorization",
        "figures",
        "total",
    }
    mem = on_disk["memorization"]
    assert mem["n_generated"] == 100 and 0 <= mem["one_nn_two_sample"]["accuracy"] <= 1
    assert "_distances" not in mem
    assert rep["headline"].startswith("MNIST Parzen test log-likelihood (paper protocol): ")
    assert rep["headline"].endswith("paper: 225 ± 2") or "WARNING" in rep["headline"]
    md = (out / "report.md").read_text()
    assert "| **this run (GAN)** |" in md and "| paper (2014): Adversarial nets | 225 ± 2 |" in md
    assert "![figure2](figure2_samples.png)" in md and "Verdict:" in md


def test_saved_samples_reproduce_the_number(evaluated):
    """Anyone can recompute the headline from samples.npz with the 2014 script's logic."""
    out, rep = evaluated
    z = np.load(out / "samples.npz")
    assert z["samples"].shape == (200, 16) and int(z["seed"]) == 7
    data = _data()
    mean, se, sigma = parzen_ll_2014(z["samples"], data["valid"], data["test"])
    assert rep["parzen"]["mean"] == pytest.approx(mean, rel=1e-5)
    assert rep["parzen"]["se"] == pytest.approx(se, rel=1e-4)
    assert rep["parzen"]["sigma"] == pytest.approx(sigma)


def test_samples_are_seeded():
    G = TinyGenerator.make()
    a, za = draw_samples(G, 50, 4, "uniform", seed=3, batch_size=16)
    b, _ = draw_samples(G, 50, 4, "uniform", seed=3, batch_size=16)
    whole, _ = draw_samples(G, 50, 4, "uniform", seed=3)
    c, _ = draw_samples(G, 50, 4, "uniform", seed=4)
    np.testing.assert_array_equal(a, b)
    # The same z decoded in other batch sizes: equal up to float32 rounding (torch's CPU GEMM blocks
    # differently by batch size, so bitwise equality across batch sizes is not promised).
    np.testing.assert_allclose(a, whole, rtol=0, atol=1e-6)
    assert not np.allclose(a, c)
    assert za.shape == (50, 4) and np.abs(za).max() <= math.sqrt(3)
    with pytest.raises(ValueError, match="n \\(number of samples\\)"):
        draw_samples(G, 0, 4, "uniform")


def test_minus_one_one_generator_is_flagged(tmp_path):
    G = torch.nn.Sequential(TinyGenerator.make(), torch.nn.Identity())
    G = torch.nn.Sequential(G, _Affine())  # outputs on [-1, 1]
    data = {k: v * 2 - 1 for k, v in _data().items()}
    with pytest.warns(DataScaleWarning, match=r"\[-1,1\] scale"):
        rep = evaluate_generator(
            G, CFG, tmp_path, data=data, n_samples=100, references="none", memorization=False, figures=False
        )
    assert any("[-1,1]" in w for w in rep["warnings"])
    assert "WARNING" in rep["headline"]
    assert "## ⚠ Warnings" in (tmp_path / "report.md").read_text()
    assert rep["references"] == {} and "memorization" not in rep and rep["figures"] == {}


class _Affine(torch.nn.Module):
    def forward(self, x):
        return 2 * x - 1


def test_argument_errors(tmp_path):
    G = TinyGenerator.make()
    with pytest.raises(ValueError, match="protocol"):
        evaluate_generator(G, CFG, tmp_path, data=_data(), protocol="2014")
    with pytest.raises(ValueError, match="config must contain 'noise_prior'"):
        evaluate_generator(G, {"dataset": "mnist", "noise_dim": 4, "image_shape": [1, 4, 4]}, tmp_path)
    with pytest.raises(ValueError, match="references"):
        evaluate_generator(G, CFG, tmp_path, data=_data(), references="some")
    with pytest.raises(ValueError, match="width 16 but"):
        evaluate_generator(G, CFG, tmp_path, data=_data(d=8), n_samples=10)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        evaluate_run(tmp_path / "nope")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real run directory written by the training CLI (dry run: synthetic data, tiny model)."""
    from gancore.train import cli as train

    out = tmp_path_factory.mktemp("train") / "run"
    rc = train.main([*TINY, "--epochs", "1", "--out", str(out)])  # the shared tiny recipe, one epoch
    assert rc in (0, None)
    return out


def test_evaluate_run_from_checkpoint(run_dir):
    data = _data(d=784, n_train=200, n_valid=60, n_test=80)
    data = {k: np.clip(v[:, np.arange(784) % 16], 0, 1) for k, v in data.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = evaluate_run(
            run_dir,
            data=data,
            n_samples=120,
            references="train",
            memorization_samples=60,
            cells=2,
            protocol="full",
            figure1=False,
        )
    assert rep["parzen"]["protocol"] == "full" and rep["parzen"]["n_valid"] == 60
    assert rep["config"]["noise_dim"] == 8 and rep["dataset"] == "mnist"
    for name in ("report.json", "report.md", "samples.npz", "figure2_samples.png", "figure3_interpolation.png"):
        assert (run_dir / name).is_file(), name


def test_cli_help_documents_options(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in (
        "--protocol",
        "--data-dir",
        "--device",
        "--seed",
        "--n-samples",
        "--no-figures",
        "--no-figure1",
        "--references",
        "--no-memorization",
        "--interpolation",
        "--cells",
    ):
        assert opt in text


def test_cli_on_real_mnist(run_dir, capsys, tmp_path, monkeypatch):
    """The CLI end to end on the real MNIST splits (skipped when no copy of MNIST is found)."""
    from gancore import data as gdata

    try:
        gdata.load_split("mnist", "test")
    except (FileNotFoundError, OSError) as exc:
        pytest.skip(f"MNIST not available: {exc}")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    rc = main([str(run_dir), "--n-samples", "300", "--references", "none", "--no-memorization", "--no-figures"])
    assert rc == 0
    out = capsys.readouterr().out
    assert out.startswith("MNIST Parzen test log-likelihood (paper protocol): ")
    rep = json.loads((run_dir / "report.json").read_text())
    assert rep["parzen"]["n_valid"] == 1000 and rep["parzen"]["n_test"] == 10000 and rep["parzen"]["d"] == 784


def test_cli_disk_full_while_writing_the_report_is_one_line_exit_5(run_dir, tmp_path, monkeypatch, caplog):
    """ENOSPC from the report writer (injected; the bundled MNIST copy is used): exit 5, one error line
    naming the file and the cause, the old report untouched, no temporary left behind."""
    import errno
    import os

    from gancore.common import atomic
    from gancore.evaluate import report

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    real = atomic.write_atomic

    def full_disk(path, data):
        if str(path).endswith("report.md"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, data)

    monkeypatch.setattr(report, "write_atomic", full_disk)
    before = sorted(p.name for p in run_dir.iterdir())
    rc = main([str(run_dir), "--n-samples", "200", "--references", "none", "--no-memorization", "--no-figures"])
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert rc == 5 and len(errors) == 1
    assert "No space left on device" in errors[0].getMessage() and "report.md" in errors[0].getMessage()
    assert not [p.name for p in run_dir.iterdir() if ".tmp" in p.name]
    assert set(before) <= {p.name for p in run_dir.iterdir()}


def test_evaluation_modules_import_lazily():
    """Importing the evaluation modules pulls in neither torch nor matplotlib (STYLE.md §10)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import gancore

    code = (
        "import sys, gancore.evaluate, gancore.evaluate.table1, gancore.evaluate.memorization, "
        "gancore.evaluate.kmeans, "
        "gancore.evaluate.figures, gancore.evaluate.theory1d, gancore.evaluate.report; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'PIL') if m in sys.modules))"
    )
    # The same gancore this process imported (source tree or installed wheel).
    env = dict(os.environ, PYTHONPATH=str(Path(gancore.__file__).resolve().parents[1]))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


class _RepeatsK(torch.nn.Module):
    """A collapsed G: z's first coordinate picks one of K fixed images, nothing else varies."""

    def __init__(self, k=30, d=16):
        super().__init__()
        self.register_buffer("table", torch.rand(k, d, generator=torch.Generator().manual_seed(0)))

    def forward(self, z):
        u = (z[:, 0] + math.sqrt(3)) / (2 * math.sqrt(3))  # U(−√3, √3) → U(0, 1)
        return self.table[(u * self.table.shape[0]).long().clamp(0, self.table.shape[0] - 1)]


def test_birthday_estimate_in_the_report_reads_a_collapsed_g_as_a_support_of_about_k(tmp_path):
    kw = dict(n_samples=400, references="none", memorization=False, figures=False, birthday=True, threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        collapsed = evaluate_generator(_RepeatsK(k=30), CFG, tmp_path / "c", data=_data(), **kw)
        spread = evaluate_generator(TinyGenerator.make(), CFG, tmp_path / "s", data=_data(), **kw)
    b = collapsed["birthday"]
    assert b["reached"] and 10 <= b["support"] <= 90, b  # uniform on 30 images: N̂ ≈ 30
    assert b["pool"] == 400 and b["calibration_rows"] == 300
    assert spread["birthday"]["s_half"] > b["s_half"]  # a continuous G repeats itself far later, if at all
    assert "Birthday-paradox support estimate" in (tmp_path / "c" / "report.md").read_text()
    assert json.loads((tmp_path / "c" / "report.json").read_text())["birthday"]["s_half"] == b["s_half"]
    off = evaluate_generator(TinyGenerator.make(), CFG, tmp_path / "o", data=_data(), **{**kw, "birthday": False})
    assert "birthday" not in off
