"""The bundled MNIST classifier: its shipped weights reach the stated accuracy, its checksum is enforced,
its inputs are checked, and the class metrics say what they should on real digits."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("safetensors")

from gancore.data import load_labels, load_split  # noqa: E402
from gancore.evaluate import class_metrics as cm  # noqa: E402
from gancore.evaluate import classifier as clf  # noqa: E402

from _train_helpers import PYTHON_DIR  # noqa: E402

STATED_TEST_ACCURACY = 0.992  # the README's and the module's claim for the shipped weights


@pytest.fixture(scope="module")
def mnist_test():
    return load_split("mnist", "test"), load_labels("mnist", "test")


@pytest.fixture(scope="module")
def test_probs(mnist_test):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return clf.predict_proba(mnist_test[0])
    finally:
        torch.set_num_threads(threads)


def test_shipped_weights_reach_the_stated_test_accuracy(mnist_test, test_probs):
    # all 10,000 test images, which the training never saw (≈ 3 s on one thread)
    acc = float(np.mean(np.argmax(test_probs, axis=1) == mnist_test[1]))
    assert acc >= STATED_TEST_ACCURACY, f"test accuracy {acc:.4f} < {STATED_TEST_ACCURACY}"


def test_outputs_have_the_documented_shapes_and_agree_across_layouts_and_batches(mnist_test, test_probs):
    x = mnist_test[0][:1500]  # crosses the 1,000-image batch boundary
    p = clf.predict_proba(x.reshape(-1, 1, 28, 28))
    assert p.shape == (1500, 10) and p.dtype == np.float64
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(p, test_probs[:1500], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(clf.predict_proba(x[1000:1003]), test_probs[1000:1003], rtol=1e-6, atol=1e-9)
    labels = clf.predict_labels(x.astype(np.float64))
    assert labels.dtype == np.int64 and np.array_equal(labels, np.argmax(test_probs[:1500], axis=1))
    f = clf.penultimate_features(x)
    assert f.shape == (1500, clf.N_FEATURES) and f.dtype == np.float64 and f.min() >= 0  # ReLU outputs


def test_class_metrics_on_real_test_images_cover_10_digits_with_kl_near_0(test_probs):
    hist = cm.class_histogram(np.argmax(test_probs, axis=1))
    assert cm.digits_covered(hist) == 10
    # MNIST's test classes hold 892..1135 images, so the true histogram has KL ≈ 0.003 nats
    assert cm.kl_to_uniform(hist) < 0.01
    assert cm.classifier_score(test_probs) > 9.0  # confident and balanced: close to the maximum 10


def test_class_metrics_on_a_one_digit_set_cover_1_digit(mnist_test):
    x, y = mnist_test
    threes = x[y == 3][:500]
    rep = cm.mnist_class_report(threes, x[:500], x[500:1000])
    assert rep == cm.mnist_class_report(threes, reference=cm.reference_stats(x[:500], x[500:1000]))
    s = rep["samples"]
    assert s["digits_covered"] == 1 and s["histogram"][3] >= 0.98 * len(threes)
    assert s["kl_to_uniform"] > 0.9 * np.log(10) and s["classifier_score"] < 1.5
    # one digit is far from real data in feature space: much farther than real vs real
    assert s["frechet_distance"] > 10 * rep["reference"]["frechet_distance"]


def test_a_corrupted_weights_file_is_refused_naming_the_file(tmp_path, monkeypatch):
    bundled = tmp_path / "bundled"
    shutil.copytree(clf.bundled_dir(), bundled)
    raw = bytearray((bundled / clf.WEIGHTS_FILE).read_bytes())
    raw[-1] ^= 1  # one flipped bit in the last weight
    (bundled / clf.WEIGHTS_FILE).write_bytes(bytes(raw))
    monkeypatch.setattr(clf, "bundled_dir", lambda: bundled)
    clf._load.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"mnist_classifier\.safetensors is corrupted: SHA-256"):
            clf.load_mnist_classifier()
    finally:
        clf._load.cache_clear()  # the next test loads the real file again


def test_the_classifier_is_loaded_once_per_device():
    assert clf.load_mnist_classifier() is clf.load_mnist_classifier("cpu")
    assert not clf.load_mnist_classifier().training


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((2, 783), np.float32), "shape"),
        (np.zeros((2, 28, 28), np.float32), "shape"),
        (np.zeros((0, 784), np.float32), "at least one"),
        (np.full((2, 784), np.nan, np.float32), "finite"),
        (np.full((2, 784), 1.5, np.float32), r"\[0, 1\]"),
        (np.full((2, 784), -0.1), r"\[0, 1\]"),
    ],
)
def test_bad_images_are_refused_with_a_message_naming_them(bad, match):
    with pytest.raises(ValueError, match=f"images.*{match}"):
        clf.predict_proba(bad)


def test_integer_images_are_refused_with_the_conversion_hint():
    with pytest.raises(TypeError, match=r"images must be a float array.*255"):
        clf.predict_labels(np.zeros((1, 784), np.uint8))


def test_importing_the_classifier_modules_does_not_import_torch():
    code = (
        "import sys, gancore.evaluate.classifier, gancore.evaluate.class_metrics; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"PYTHONPATH": str(PYTHON_DIR)})


def _evaluate(tmp_path, dataset, **options):
    import torch

    from gancore.evaluate import evaluate_generator

    class Images(torch.nn.Module):  # "G": noise → flat 28×28 images on [0, 1]
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 784)

        def forward(self, z):
            return torch.sigmoid(self.lin(z))

    torch.manual_seed(0)
    x = load_split("mnist", "test")
    data = {"train": x[:300], "valid": x[300:500], "test": x[500:800]}
    cfg = {"dataset": dataset, "noise_dim": 4, "noise_prior": "uniform", "image_shape": [1, 28, 28]}
    opts = dict(n_samples=100, references="none", memorization=False, figures=False, threads=1)
    return evaluate_generator(Images(), cfg, tmp_path, data=data, **{**opts, **options})


def test_the_evaluation_reports_the_classifier_metrics_for_mnist_only(tmp_path):
    rep = _evaluate(tmp_path / "on", "mnist")
    c = rep["classifier"]
    assert c["samples"]["n"] == 100 and sum(c["samples"]["histogram"]) == 100
    assert c["reference"]["n"] == 300 and c["reference"]["frechet_n"] == 100  # validation rows, as many as samples
    assert "classifier" in rep["timings_s"]
    assert "## Classifier metrics" in (tmp_path / "on" / "report.md").read_text()
    assert "classifier" not in _evaluate(tmp_path / "off", "mnist", classifier=False)
    assert "classifier" not in _evaluate(tmp_path / "fashion", "fashion-mnist")
