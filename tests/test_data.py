"""Datasets: the paper's splits, pixel scaling, checksum refusal, search order, downloads, TFD layout."""

import functools
import gzip
import http.server
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest

from gancore.data import loaders as data

from _train_helpers import PYTHON_DIR, SHARED_DATASETS

needs_shared = pytest.mark.skipif(not SHARED_DATASETS.is_dir(), reason="../shared/datasets not present")


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """No test may read or fill the real user cache, or reach the internet."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("GANCORE_DATA_DIR", raising=False)
    monkeypatch.delenv("GANCORE_DATA_URL", raising=False)
    monkeypatch.setenv("GANCORE_NO_DOWNLOAD", "1")
    data._load_arrays.cache_clear()
    data._load_tfd.cache_clear()
    yield
    data._load_arrays.cache_clear()
    data._load_tfd.cache_clear()


def test_bundled_mnist_has_the_papers_splits():
    train, valid, test = (data.load_split("mnist", s) for s in ("train", "valid", "test"))
    assert train.shape == (50000, 784) and valid.shape == (10000, 784) and test.shape == (10000, 784)
    for a in (train, valid, test):
        assert a.dtype == np.float32 and a.min() == 0.0 and a.max() == 1.0
    assert abs(np.concatenate([train, valid]).mean() - 0.1307) < 1e-3  # the canonical mean pixel
    raw = gzip.decompress((data.bundled_dir() / "mnist" / "train-images-idx3-ubyte.gz").read_bytes())
    row_50000 = np.frombuffer(raw, np.uint8, 784, offset=16 + 50000 * 784)
    assert np.array_equal(valid[0], row_50000 / np.float32(255))
    assert np.array_equal(data.load_split("mnist", "train"), train)  # cached, but a fresh copy
    train[0, 0] = 7.0
    assert data.load_split("mnist", "train")[0, 0] != 7.0
    assert data.IMAGE_SHAPES == {
        "mnist": (1, 28, 28),
        "fashion-mnist": (1, 28, 28),
        "cifar10": (3, 32, 32),
        "tfd": (1, 48, 48),
        "stacked-mnist": (3, 28, 28),
    }


def test_labels_line_up_with_the_image_rows():
    train, valid, test = (data.load_labels("mnist", s) for s in ("train", "valid", "test"))
    assert train.shape == (50000,) and valid.shape == (10000,) and test.shape == (10000,)
    assert train.dtype == np.int64 and set(np.unique(test)) == set(range(10))
    raw = gzip.decompress((data.bundled_dir() / "mnist" / "train-labels-idx1-ubyte.gz").read_bytes())
    assert valid[0] == raw[8 + 50000] and train[0] == raw[8] == 5  # MNIST's first training digit is a 5
    assert np.bincount(test).tolist()[:3] == [980, 1135, 1032]  # the published t10k class counts
    with pytest.raises(ValueError, match="TFD"):
        data.load_labels("tfd", "train")


def test_bundled_checksums_agree_with_the_shared_list():
    bundled = (data.bundled_dir() / "mnist" / "SHA256SUMS").read_text().split()
    pairs = dict(zip(bundled[1::2], bundled[0::2]))
    for name, digest in pairs.items():
        assert data.checksums()[f"mnist/{name}"] == digest
    if SHARED_DATASETS.is_dir():
        assert (SHARED_DATASETS / "SHA256SUMS").read_text() == (data.bundled_dir() / "SHA256SUMS").read_text()


@pytest.mark.parametrize(
    "args,match",
    [
        (("svhn", "train"), "unknown dataset"),
        (("mnist", "dev"), "unknown split"),
        (("mnist", "train", 1), "only applies to TFD"),
        (("tfd", "train", 5), "fold"),
        (("mnist", "unlabeled"), "only TFD"),
    ],
)
def test_bad_names(args, match):
    kwargs = {"fold": args[2]} if len(args) > 2 else {}
    with pytest.raises(ValueError, match=match):
        data.load_split(args[0], args[1], **kwargs)


def _copy_mnist(dst):
    (dst / "mnist").mkdir(parents=True)
    for f in (data.bundled_dir() / "mnist").glob("*.gz"):
        shutil.copy(f, dst / "mnist" / f.name)
    return dst / "mnist"


def test_corrupted_dataset_is_refused_not_replaced(tmp_path):
    folder = _copy_mnist(tmp_path / "d")
    path = folder / "t10k-images-idx3-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[5000] ^= 0xFF  # one flipped pixel: a valid gzip and a valid IDX, but the wrong data
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ValueError, match="checksum mismatch.*t10k-images"):
        data.load_split("mnist", "test", data_dir=tmp_path / "d")


def test_truncated_dataset_is_refused(tmp_path):
    folder = _copy_mnist(tmp_path / "d")
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100000])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        data.load_split("mnist", "train", data_dir=tmp_path / "d")


def test_uncompressed_idx_files_are_accepted(tmp_path):
    folder = _copy_mnist(tmp_path / "d")
    for f in folder.glob("*.gz"):
        f.with_suffix("").write_bytes(gzip.decompress(f.read_bytes()))
        f.unlink()
    assert data.load_split("mnist", "test", data_dir=tmp_path / "d").shape == (10000, 784)


def test_missing_dataset_names_files_and_directories(tmp_path, monkeypatch):
    monkeypatch.setenv("GANCORE_DATA_DIR", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError) as err:
        data.load_split("fashion-mnist", "train", data_dir=tmp_path / "mine")
    msg = str(err.value)
    assert "train-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert str(tmp_path / "mine" / "fashion-mnist") in msg and str(tmp_path / "env" / "fashion-mnist") in msg
    with pytest.raises(FileNotFoundError, match="TFD_48x48.mat"):
        data.load_split("tfd", "train", data_dir=tmp_path)


def test_search_order_data_dir_then_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GANCORE_DATA_DIR", str(tmp_path / "env"))
    roots = data.search_roots(tmp_path / "mine")
    assert roots == [tmp_path / "mine", tmp_path / "env", tmp_path / "cache" / "gancore" / "datasets"]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_mirror():
    """An HTTP server on 127.0.0.1 serving a directory laid out like ../shared/datasets."""
    servers = []

    def serve(directory):
        handler = functools.partial(_QuietHandler, directory=str(directory))
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield serve
    for srv in servers:
        srv.shutdown()
        srv.server_close()


@needs_shared
def test_download_from_a_mirror_verifies_and_caches(tmp_path, monkeypatch, http_mirror):
    monkeypatch.delenv("GANCORE_NO_DOWNLOAD")
    monkeypatch.setenv("GANCORE_DATA_URL", http_mirror(SHARED_DATASETS))
    test = data.load_split("fashion-mnist", "test", data_dir=tmp_path / "empty")
    assert test.shape == (10000, 784) and abs(test.mean() - 0.2868) < 1e-3
    cached = tmp_path / "cache" / "gancore" / "datasets" / "fashion-mnist"
    assert sorted(p.name for p in cached.iterdir()) == ["t10k-images-idx3-ubyte.gz", "train-images-idx3-ubyte.gz"]
    # a second load reads the cache: no server needed
    monkeypatch.setenv("GANCORE_DATA_URL", "http://127.0.0.1:9")
    data._load_arrays.cache_clear()
    assert data.load_split("fashion-mnist", "valid").shape == (10000, 784)


@needs_shared
def test_download_with_wrong_content_leaves_nothing(tmp_path, monkeypatch, http_mirror):
    mirror = tmp_path / "mirror" / "fashion-mnist"
    mirror.mkdir(parents=True)
    good = (SHARED_DATASETS / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").read_bytes()
    (mirror / "train-images-idx3-ubyte.gz").write_bytes(good)  # the wrong file under the right name
    monkeypatch.delenv("GANCORE_NO_DOWNLOAD")
    monkeypatch.setenv("GANCORE_DATA_URL", http_mirror(tmp_path / "mirror"))
    with pytest.raises(ValueError, match="checksum mismatch"):
        data.load_split("fashion-mnist", "train", data_dir=tmp_path / "empty")
    cached = tmp_path / "cache" / "gancore" / "datasets" / "fashion-mnist"
    assert not cached.exists() or not any(cached.iterdir())


def test_download_failure_is_a_clear_file_not_found(tmp_path, monkeypatch, http_mirror):
    monkeypatch.delenv("GANCORE_NO_DOWNLOAD")
    monkeypatch.setenv("GANCORE_DATA_URL", http_mirror(tmp_path))  # serves nothing: 404
    with pytest.raises(FileNotFoundError, match="could not be downloaded.*404"):
        data.load_split("fashion-mnist", "train", data_dir=tmp_path / "empty")


def test_tfd_loader_on_a_synthetic_file_in_the_standard_layout(tmp_path):
    """TFD is not public: this checks the loader against a small file with the real file's variables."""
    scipy_io = pytest.importorskip("scipy.io")
    rng = np.random.default_rng(0)
    n = 40
    images = rng.integers(0, 256, size=(n, 48, 48), dtype=np.uint8)
    folds = rng.integers(0, 4, size=(n, 5)).astype(np.uint8)  # 0 unlabelled, 1 train, 2 valid, 3 test
    (tmp_path / "tfd").mkdir()
    scipy_io.savemat(
        tmp_path / "tfd" / "TFD_48x48.mat", {"images": images, "folds": folds, "labs_id": np.zeros((n, 1))}
    )
    for fold in (0, 3):
        for code, split in ((0, "unlabeled"), (1, "train"), (2, "valid"), (3, "test")):
            x = data.load_split("tfd", split, data_dir=tmp_path, fold=fold)
            rows = folds[:, fold] == code
            assert x.shape == (rows.sum(), 2304) and x.dtype == np.float32
            assert np.array_equal(x, images[rows].reshape(-1, 2304) / np.float32(255))
    (tmp_path / "tfd" / "TFD_48x48.mat").write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    data._load_tfd.cache_clear()
    with pytest.raises(ValueError, match="TFD_48x48.mat"):
        data.load_split("tfd", "train", data_dir=tmp_path)


@needs_shared
def test_cifar10_from_the_binary_tarball():
    valid = data.load_split("cifar10", "valid", data_dir=SHARED_DATASETS)
    assert valid.shape == (10000, 3072) and valid.dtype == np.float32
    train = data.load_split("cifar10", "train", data_dir=SHARED_DATASETS)
    assert train.shape == (40000, 3072)
    means = np.concatenate([train, valid]).reshape(-1, 3, 1024).mean(axis=(0, 2))
    assert np.allclose(means, [0.4914, 0.4822, 0.4465], atol=5e-4)  # channel-major (C, H, W) layout
    labels = data.load_labels("cifar10", "test", data_dir=SHARED_DATASETS)
    assert labels.shape == (10000,) and np.bincount(labels).tolist() == [1000] * 10


def test_import_gancore_and_the_subpackages_do_not_import_torch():
    code = (
        "import sys, gancore, gancore.common, gancore.data, gancore.train, gancore.train.config, gancore.evaluate, "
        "gancore.evaluate.config, gancore.distributed; assert 'torch' not in sys.modules, 'torch imported'"
    )
    env = {"PYTHONPATH": str(PYTHON_DIR), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
