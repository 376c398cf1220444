"""Train the bundled MNIST classifier of :mod:`gancore.evaluate.classifier` (the measuring stick).

    python tools/train_mnist_classifier.py --threads 1          # ≈ a few CPU minutes; writes the bundled file
    python tools/train_mnist_classifier.py --out /tmp/clf.safetensors --epochs 2

Seeded and deterministic on one device and thread count: the same command writes the same bytes.
Data: MNIST train[0:50000] (the 2014 split's training set) for training, train[50000:60000] for
validation, the 10,000 test images only for the final accuracy. Adam with the learning rate halved
every few epochs, random translations of up to ±2 pixels (the images are padded with zeros), dropout
0.3 before the output layer.

After every epoch the model and Adam's buffers are checkpointed atomically into ``--state-dir``; a
killed run (``kill -9`` included) continues from the last finished epoch when started again with the
same flags, and ends with the same weights as an uninterrupted run (each epoch's shuffle, shifts and
dropout are drawn from generators seeded by (seed, epoch), so nothing else needs saving).

The weights are written atomically to ``--out`` (default: the package's bundled file), its SHA-256
into the ``SHA256SUMS`` beside it, and both printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from gancore.common.atomic import atomic_path, write_atomic
from gancore.common.cache import cache_root
from gancore.data import load_labels, load_split
from gancore.evaluate.classifier import build_network, weights_path

SHIFT = 2  # largest translation, in pixels, of the training augmentation


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=8, help="passes over train[0:50000] (default 8)")
    p.add_argument("--batch-size", type=int, default=64, help="minibatch size (default 64)")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam's initial learning rate (default 2e-3)")
    p.add_argument("--halve-every", type=int, default=2, help="halve the learning rate every N epochs (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the initialization and of every epoch's draws")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="weights file (default: the package's bundled file); its SHA256SUMS is written beside it",
    )
    p.add_argument(
        "--state-dir", type=Path, default=None, help="per-epoch checkpoints (default: ~/.cache/gancore/classifier)"
    )
    a = p.parse_args(argv)
    for name, low in (("epochs", 1), ("batch_size", 1), ("halve_every", 1), ("seed", 0), ("threads", 1)):
        if getattr(a, name) < low:
            p.error(f"--{name.replace('_', '-')} must be an integer >= {low}; got {getattr(a, name)}")
    if not (a.lr > 0 and np.isfinite(a.lr)):
        p.error(f"--lr must be a positive finite number; got {a.lr}")
    a.out = a.out or weights_path()
    a.state_dir = a.state_dir or cache_root("classifier")
    return a


def shifted(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each image of ``x`` (n, 1, 28, 28) translated by its own random (dy, dx) in [-SHIFT, SHIFT]²."""
    n = x.shape[0]
    padded = F.pad(x, (SHIFT, SHIFT, SHIFT, SHIFT))  # (n, 1, 32, 32)
    dy, dx = (torch.randint(0, 2 * SHIFT + 1, (n,), generator=gen) for _ in range(2))
    r = dy[:, None] + torch.arange(28)  # (n, 28) rows to keep
    c = dx[:, None] + torch.arange(28)
    return padded[torch.arange(n)[:, None, None], 0, r[:, :, None], c[:, None, :]].unsqueeze(1)


def accuracy(net, x: np.ndarray, y: np.ndarray) -> float:
    net.eval()
    hits = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], 1000):
            logits = net(torch.from_numpy(x[i : i + 1000]))
            hits += int((logits.argmax(1).numpy() == y[i : i + 1000]).sum())
    return hits / x.shape[0]


def save_state(state_dir: Path, epoch: int, net, opt, settings: dict) -> None:
    """Model and Adam buffers after ``epoch``, all or nothing (the JSON is renamed into place last)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.contiguous() for k, v in net.state_dict().items()}
    for idx, buf in opt.state_dict()["state"].items():
        for key, val in buf.items():
            tensors[f"adam.{idx}.{key}"] = torch.as_tensor(val).contiguous()
    with atomic_path(state_dir / "state.safetensors") as tmp:
        save_file(tensors, str(tmp))
    digest = hashlib.sha256((state_dir / "state.safetensors").read_bytes()).hexdigest()
    write_atomic(state_dir / "state.json", json.dumps({"epoch": epoch, "settings": settings, "sha256": digest}))


def load_state(state_dir: Path, net, opt, settings: dict) -> int:
    """Restore the last finished epoch from ``state_dir``; 0 when there is none to continue."""
    meta_path = state_dir / "state.json"
    if not meta_path.is_file():
        return 0
    meta = json.loads(meta_path.read_text())
    if meta["settings"] != settings:
        sys.exit(f"error: {state_dir} holds a run with other settings; remove it or pass another --state-dir")
    raw = (state_dir / "state.safetensors").read_bytes()
    if hashlib.sha256(raw).hexdigest() != meta["sha256"]:
        sys.exit(f"error: {state_dir / 'state.safetensors'} does not match its state.json; remove {state_dir}")
    tensors = load_file(str(state_dir / "state.safetensors"))
    net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    opt_state = opt.state_dict()
    buffers: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("adam."):
            _, idx, key = k.split(".", 2)
            buffers.setdefault(int(idx), {})[key] = v
    opt_state["state"] = buffers
    opt.load_state_dict(opt_state)
    return int(meta["epoch"])


def main(argv=None) -> None:
    a = parse(argv)
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True)
    x_train = load_split("mnist", "train").reshape(-1, 1, 28, 28)
    y_train = load_labels("mnist", "train")
    x_valid, y_valid = load_split("mnist", "valid").reshape(-1, 1, 28, 28), load_labels("mnist", "valid")
    x_test, y_test = load_split("mnist", "test").reshape(-1, 1, 28, 28), load_labels("mnist", "test")
    settings = {k: v for k, v in vars(a).items() if k in ("epochs", "batch_size", "lr", "halve_every", "seed")}
    print("settings:", json.dumps(settings), "threads:", a.threads, flush=True)

    torch.manual_seed(a.seed)
    net = build_network()
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    start = load_state(a.state_dir, net, opt, settings)
    if start:
        print(f"resumed after epoch {start} from {a.state_dir}", flush=True)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    for epoch in range(start, a.epochs):
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = a.lr * 0.5 ** (epoch // a.halve_every)
        order = torch.from_numpy(np.random.default_rng([a.seed, epoch]).permutation(x_train.shape[0]))
        gen = torch.Generator().manual_seed(a.seed * 100_003 + epoch)
        torch.manual_seed(a.seed * 100_003 + epoch)  # dropout masks
        net.train()
        total = 0.0
        for i in range(0, len(order), a.batch_size):
            idx = order[i : i + a.batch_size]
            loss = F.cross_entropy(net(shifted(xt[idx], gen)), yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        save_state(a.state_dir, epoch + 1, net, opt, settings)
        print(
            f"epoch {epoch + 1}/{a.epochs}  loss {total / len(order):.4f}  lr {opt.param_groups[0]['lr']:.2e}  "
            f"valid accuracy {accuracy(net, x_valid, y_valid):.4f}  {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    net.eval()
    valid, test = accuracy(net, x_valid, y_valid), accuracy(net, x_test, y_test)
    print(f"final: valid accuracy {valid:.4f}  test accuracy {test:.4f}  ({time.process_time():.0f} s CPU in all)")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(a.out) as tmp:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp))
    digest = hashlib.sha256(a.out.read_bytes()).hexdigest()
    write_atomic(a.out.parent / "SHA256SUMS", f"{digest}  {a.out.name}\n")
    print(f"wrote {a.out} ({a.out.stat().st_size} bytes), SHA-256 {digest}")


if __name__ == "__main__":
    main()
