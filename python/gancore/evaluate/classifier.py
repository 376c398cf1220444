"""The bundled MNIST classifier: one fixed network that every machine measures samples with.

    from gancore.evaluate.classifier import predict_labels, predict_proba, penultimate_features
    predict_labels(samples)            # (n,) int64, the digit the classifier sees in each image
    predict_proba(samples)             # (n, 10) float64, p(y | x)
    penultimate_features(samples)      # (n, 64) float64, the ReLU layer before the softmax

It plays the part of the pretrained Inception network behind the Inception score (Salimans et al.,
2016, §4) and FID (Heusel et al., 2017), on MNIST, as TF-GAN's ``mnist_score`` and
``mnist_frechet_distance`` do (see :mod:`.class_metrics`). The network is small:

    (1, 28, 28) → conv 5×5, 16 → ReLU → max-pool 2 → conv 5×5, 32 → ReLU → max-pool 2
                → flatten 1568 → dense 64 → ReLU  (penultimate features)  → dropout → dense 10 (logits)

It was trained by ``python tools/train_mnist_classifier.py`` on MNIST train[0:50000] (validation on
train[50000:60000]); its weights ship as ``bundled/mnist_classifier.safetensors`` (115k float32 values,
≈460 kB), checked against ``bundled/SHA256SUMS`` on load. Torch is imported on first use only.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = [
    "WEIGHTS_FILE",
    "build_network",
    "expected_sha256",
    "load_mnist_classifier",
    "penultimate_features",
    "predict_labels",
    "predict_proba",
    "probabilities_and_features",
    "weights_path",
]

WEIGHTS_FILE = "mnist_classifier.safetensors"
N_FEATURES = 64  # width of the penultimate layer
_BATCH = 1000  # images per forward pass: ≈6 MB of activations, whatever n is


def bundled_dir() -> Path:
    """The folder shipped inside the package with the weights and their SHA256SUMS."""
    return Path(str(resources.files("gancore.evaluate") / "bundled"))


def weights_path() -> Path:
    return bundled_dir() / WEIGHTS_FILE


def expected_sha256(name: str = WEIGHTS_FILE) -> str:
    """The SHA-256 recorded for ``name`` in ``bundled/SHA256SUMS`` (``sha256sum`` format)."""
    sums = bundled_dir() / "SHA256SUMS"
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == name:
            return parts[0]
    raise ValueError(f"{sums} has no SHA-256 for {name}")


def build_network():
    """The classifier's architecture, freshly initialized (torch's default initialization)."""
    from collections import OrderedDict

    from torch import nn

    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(1, 16, 5, padding=2)),  # (n, 16, 28, 28)
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2)),  # (n, 16, 14, 14)
                ("conv2", nn.Conv2d(16, 32, 5, padding=2)),  # (n, 32, 14, 14)
                ("relu2", nn.ReLU()),
                ("pool2", nn.MaxPool2d(2)),  # (n, 32, 7, 7)
                ("flatten", nn.Flatten()),  # (n, 1568)
                ("fc1", nn.Linear(32 * 7 * 7, N_FEATURES)),
                ("relu3", nn.ReLU()),  # (n, 64): the penultimate features
                ("dropout", nn.Dropout(0.3)),  # training only; the identity in eval mode
                ("fc2", nn.Linear(N_FEATURES, 10)),  # (n, 10) logits
            ]
        )
    )


def load_mnist_classifier(device="cpu"):
    """The bundled classifier as a torch module in eval mode on ``device``, cached per process and device.

    The file's SHA-256 is checked against ``bundled/SHA256SUMS`` first: a mismatch (a truncated or
    altered file) raises ``ValueError`` naming the file."""
    import torch

    return _load(str(torch.device(device)))


@functools.cache
def _load(device: str):
    import torch
    from safetensors.torch import load_file

    path = weights_path()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the bundled classifier {path}: {exc.strerror or exc}") from None
    digest = hashlib.sha256(raw).hexdigest()
    want = expected_sha256()
    if digest != want:
        raise ValueError(f"{path} is corrupted: SHA-256 {digest} != {want} recorded in its SHA256SUMS")
    net = build_network()
    net.load_state_dict(load_file(str(path)))
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net.to(torch.device(device))


def check_images(images, name: str = "images") -> np.ndarray:
    """``images`` as a float32 (n, 1, 28, 28) array, or a one-line ``ValueError``/``TypeError`` naming it.

    Accepted: a float array (n, 784) or (n, 1, 28, 28) with n ≥ 1, finite, pixels in [0, 1]."""
    arr = np.asarray(images)
    if arr.dtype.kind != "f":
        hint = " (for 8-bit images use x.astype(np.float32) / 255)" if arr.dtype.kind in "ui" else ""
        raise TypeError(f"{name} must be a float array with pixels in [0, 1]; got dtype {arr.dtype}{hint}")
    if not (arr.ndim == 2 and arr.shape[1] == 784) and not (arr.ndim == 4 and arr.shape[1:] == (1, 28, 28)):
        raise ValueError(f"{name} must have shape (n, 784) or (n, 1, 28, 28); got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one image; got shape {arr.shape}")
    arr = arr.reshape(arr.shape[0], 1, 28, 28)
    lo, hi = float(np.min(arr)), float(np.max(arr))  # NaN propagates through both
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name} must be finite; it holds NaN or inf")
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name} must have pixels in [0, 1]; got values in [{lo:.4g}, {hi:.4g}]")
    return np.ascontiguousarray(arr, dtype=np.float32)


def _forward(images, device) -> tuple[np.ndarray, np.ndarray]:
    """(p(y|x) float64 (n, 10), penultimate features float64 (n, 64)) in one batched pass."""
    import torch

    x = check_images(images)
    net = load_mnist_classifier(device)
    probs, feats = [], []
    with torch.no_grad():
        for i in range(0, x.shape[0], _BATCH):
            h = torch.from_numpy(x[i : i + _BATCH]).to(device)
            for name, layer in net.named_children():
                if name == "dropout":  # the identity in eval mode; what enters it is the penultimate layer
                    feats.append(h.to("cpu", torch.float64).numpy())
                h = layer(h)
            probs.append(torch.softmax(h.double(), dim=1).to("cpu").numpy())
    return np.concatenate(probs), np.concatenate(feats)


def probabilities_and_features(images, *, device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """:func:`predict_proba` and :func:`penultimate_features` of the same images, one forward pass."""
    return _forward(images, device)


def predict_proba(images, *, device="cpu") -> np.ndarray:
    """p(y | x) of each image: float64 (n, 10), rows summing to 1."""
    return _forward(images, device)[0]


def predict_labels(images, *, device="cpu") -> np.ndarray:
    """The most probable digit of each image: int64 (n,)."""
    return np.argmax(predict_proba(images, device=device), axis=1).astype(np.int64)


def penultimate_features(images, *, device="cpu") -> np.ndarray:
    """The 64 ReLU activations before the output layer: float64 (n, 64), the space of the Fréchet distance."""
    return _forward(images, device)[1]
