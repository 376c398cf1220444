"""Fixtures shared by the kernel tests. Real data is read from $GANCORE_DATA_DIR or ../shared/datasets
and tests that need it skip, with the reason, when it is absent."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

import _budgets  # noqa: F401  (registers and loads the Hypothesis profile)

REPO = Path(__file__).resolve().parents[1]


def shared_datasets() -> Path | None:
    for cand in (os.environ.get("GANCORE_DATA_DIR"), REPO.parent / "shared" / "datasets"):
        if cand and (Path(cand) / "mnist" / "t10k-images-idx3-ubyte.gz").exists():
            return Path(cand)
    return None


def _idx_images(path: Path) -> np.ndarray:
    with gzip.open(path) as f:
        raw = f.read()
    return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255


@pytest.fixture(scope="session")
def mnist_small():
    """(300 test images, 3,000 training images) as float32 in [0, 1]."""
    root = shared_datasets()
    if root is None:
        pytest.skip("MNIST not found in $GANCORE_DATA_DIR or ../shared/datasets")
    test = _idx_images(root / "mnist" / "t10k-images-idx3-ubyte.gz")[:300]
    train = _idx_images(root / "mnist" / "train-images-idx3-ubyte.gz")[:3000]
    return test, train


# --- Reliability figures -----------------------------------------------------------------------
# Tests of the reliability suite (tests/reliability/) record what they measured ("29/29 bad inputs
# rejected", "peak RSS 410 MB"); the figures are printed at the end of the run and, when
# $GANCORE_RELIABILITY_JSON names a file, written there for RELIABILITY.md.
_FIGURES: list[tuple[str, str]] = []


@pytest.fixture
def record(request):
    """record(text): keep a measured figure of this test for the end-of-run summary."""

    def _record(text: str) -> None:
        _FIGURES.append((request.node.nodeid, text))

    return _record


def pytest_terminal_summary(terminalreporter):
    if not _FIGURES:
        return
    terminalreporter.section("reliability figures (measured in this run)")
    for node, text in _FIGURES:
        terminalreporter.write_line(f"{node.split('::')[-1]}: {text}")
    out = os.environ.get("GANCORE_RELIABILITY_JSON")
    if out:
        import json

        Path(out).write_text(json.dumps([{"test": n, "figure": t} for n, t in _FIGURES], indent=1) + "\n")
