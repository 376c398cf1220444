"""Side-by-side benchmark of gancore's kernels against the tools users would otherwise pick.

Run (opt-in, not part of the test suite; needs the `bench` extra: scipy, scikit-learn, faiss-cpu, torch):

    pip install '.[bench]' && python benches/bench_kernels.py --data-dir ../shared/datasets

Workloads (issue "Core speed"), MNIST pixels scaled to [0,1] float32, d = 784:
  P1  Parzen, one σ: 10,000 centers (train[0:10000]) × the 10,000 test images, σ = 0.2
  P2  Parzen protocol: 20 σ = logspace(-1, 0, 20) on 10,000 validation images (train[50000:60000]),
      then the best σ on the 10,000 test images
  N1  exact 1-NN: 10,000 test images against the 60,000 training images
  N2  exact 1-NN on CIFAR-10 (d = 3072): 10,000 test images against 50,000 training images

Every tool runs in this process on the same arrays; each answer is checked against gancore's
(max deviation in nats, or the number of index disagreements). Times are the median of --repeats
runs after one warm-up. "peak extra MB" is measured once per tool: the process's resident memory,
sampled every 2 ms during one call, minus its resident memory before the call (after the warm-up,
so memory an allocator kept from earlier calls is not counted again). --memory-check runs M1 in a
fresh interpreter and reports its peak RSS (VmHWM) minus its RSS once the inputs exist. The machine's own limit
is a float32
GEMM of the same shape through NumPy's BLAS; each kernel's effective GFLOP/s counts only the
distance GEMM (2·m·n·d flops per pass over the data).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import statistics
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

import gancore
from gancore import _core

CHUNK = 1000  # query rows per chunk for the NumPy/PyTorch baselines (bounded memory, like gancore)


# ----------------------------------------------------------------------------------------- data
def load_mnist(root: Path):
    def images(name):
        with gzip.open(root / "mnist" / name) as f:
            raw = f.read()
        return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255

    return images("train-images-idx3-ubyte.gz"), images("t10k-images-idx3-ubyte.gz")


def load_cifar10(root: Path):
    path = root / "cifar-10" / "cifar-10-binary.tar.gz"
    batches = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            name = os.path.basename(member.name)
            if name.endswith(".bin"):
                raw = np.frombuffer(tar.extractfile(member).read(), np.uint8).reshape(-1, 3073)
                batches[name] = raw[:, 1:].astype(np.float32) / 255
    train = np.concatenate([batches[f"data_batch_{i}.bin"] for i in range(1, 6)])
    return train, batches["test_batch.bin"]


# ----------------------------------------------------------------------------------- competitors
def numpy_parzen(x, c, sigma):
    """The straightforward code: chunked ‖x‖²+‖c‖²−2x·cᵀ with BLAS, then scipy's logsumexp."""
    from scipy.special import logsumexp

    cn = (c * c).sum(1)
    out = np.empty(len(x))
    for s in range(0, len(x), CHUNK):
        q = x[s : s + CHUNK]
        d2 = (q * q).sum(1)[:, None] + cn[None, :] - 2.0 * (q @ c.T)
        out[s : s + CHUNK] = logsumexp(-d2 / (2 * sigma * sigma), axis=1)
    return out - np.log(len(c)) - 0.5 * x.shape[1] * np.log(2 * np.pi * sigma * sigma)


def numpy_parzen_many_tuned(x, c, sigmas):
    """Tuned NumPy: each distance chunk computed once, every σ from it with an in-place log-sum-exp."""
    cn = (c * c).sum(1)
    out = np.empty((len(sigmas), len(x)))
    for s in range(0, len(x), CHUNK):
        q = x[s : s + CHUNK]
        d2 = (q * q).sum(1)[:, None] + cn[None, :] - 2.0 * (q @ c.T)
        shift = d2.min(axis=1, keepdims=True)  # the largest exponent of every σ
        d2 -= shift
        buf = np.empty_like(d2)
        for i, sig in enumerate(sigmas):
            inv = 1.0 / (2 * sig * sig)
            np.multiply(d2, -inv, out=buf)
            np.exp(buf, out=buf)
            out[i, s : s + CHUNK] = np.log(buf.sum(axis=1)) - shift[:, 0] * inv
    d = x.shape[1]
    norm = np.log(len(c)) + 0.5 * d * np.log(2 * np.pi * np.asarray(sigmas) ** 2)
    return out - norm[:, None]


def torch_parzen_many(x, c, sigmas):
    """PyTorch CPU float32: chunked addmm distances, torch.logsumexp per σ (distances reused)."""
    import torch

    xt, ct = torch.from_numpy(x), torch.from_numpy(c)
    cn = (ct * ct).sum(1)
    out = torch.empty((len(sigmas), len(x)), dtype=torch.float64)
    for s in range(0, len(x), CHUNK):
        q = xt[s : s + CHUNK]
        d2 = torch.addmm(cn[None, :] + (q * q).sum(1)[:, None], q, ct.T, beta=1.0, alpha=-2.0)
        for i, sig in enumerate(sigmas):
            out[i, s : s + CHUNK] = torch.logsumexp(-d2 / (2 * sig * sig), dim=1).double()
    d = x.shape[1]
    norm = np.log(len(c)) + 0.5 * d * np.log(2 * np.pi * np.asarray(sigmas) ** 2)
    return out.numpy() - norm[:, None]


def numpy_knn1(q, r):
    rn = (r * r).sum(1)
    idx = np.empty(len(q), np.int64)
    for s in range(0, len(q), CHUNK):
        idx[s : s + CHUNK] = (rn[None, :] - 2.0 * (q[s : s + CHUNK] @ r.T)).argmin(axis=1)
    return idx


def torch_knn1(q, r):
    import torch

    qt, rt = torch.from_numpy(q), torch.from_numpy(r)
    rn = (rt * rt).sum(1)
    idx = torch.empty(len(q), dtype=torch.int64)
    for s in range(0, len(q), CHUNK):
        idx[s : s + CHUNK] = torch.addmm(rn[None, :], qt[s : s + CHUNK], rt.T, alpha=-2.0).argmin(dim=1)
    return idx.numpy()


def faiss_knn1(q, r):
    import faiss

    index = faiss.IndexFlatL2(r.shape[1])
    index.add(r)
    return index.search(q, 1)[1][:, 0].astype(np.int64)


def sklearn_knn1(q, r):
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(r)
    return nn.kneighbors(q, return_distance=False)[:, 0].astype(np.int64)


# ------------------------------------------------------------------------------------- harness
@contextlib.contextmanager
def forced_knn_screen(name: str):
    """Run gancore.nearest_neighbors with the given first pass (GANCORE_KNN_SCREEN, read per call)."""
    old = os.environ.get("GANCORE_KNN_SCREEN")
    os.environ["GANCORE_KNN_SCREEN"] = name
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("GANCORE_KNN_SCREEN", None)
        else:
            os.environ["GANCORE_KNN_SCREEN"] = old


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_extra_mb(fn) -> float:
    """Run fn once, sampling this process's RSS every 2 ms; return peak minus the RSS before (MB)."""
    import threading

    before = rss_mb()
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.002)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        fn()
    finally:
        done.set()
        t.join()
    return max(peak[0], rss_mb()) - before


def memory_check():
    """M1 in a fresh interpreter, so no earlier allocation is reused: (seconds, VmHWM − RSS with inputs)."""
    import subprocess
    import textwrap

    code = textwrap.dedent(
        """
        import time, numpy as np, gancore
        def rss_mb():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096 / 2**20
        def hwm_mb():
            # VmHWM belongs to this address space, which exec made new. (ru_maxrss would not do:
            # it survives fork + exec and would report the benchmark parent's footprint.)
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024
        rng = np.random.default_rng(0)
        x = rng.random((100_000, 784), dtype=np.float32)
        c = rng.random((100_000, 784), dtype=np.float32)
        before = rss_mb()
        t = time.perf_counter()
        ll = gancore.parzen_loglik(x, c, 0.2)
        sec = time.perf_counter() - t
        peak = hwm_mb()
        assert np.isfinite(ll).all()
        print(sec, peak - before)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    sec, extra = out.stdout.split()
    return float(sec), float(extra)


def timed(fn, repeats: int):
    fn()  # warm-up (thread pools, page faults, lazy imports)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


class Table:
    def __init__(self):
        self.rows = []

    def add(self, workload, tool, seconds, check, gflops, mem, fraction=None):
        self.rows.append((workload, tool, seconds, check, gflops, mem, fraction))
        print(f"  {tool:<34} {seconds:8.3f} s  {gflops:7.1f} GFLOP/s  {mem:7.1f} MB  {check}", flush=True)

    def print(self, gemm_rate):
        print("\n| workload | tool | median s | gancore speed-up | GFLOP/s (% of GEMM) | peak extra MB | check |")
        print("|---|---|---:|---:|---:|---:|---|")
        by_workload = {}
        for row in self.rows:
            by_workload.setdefault(row[0], []).append(row)
        for rows in by_workload.values():
            ours = next(r[2] for r in rows if r[1].startswith("gancore") and "1 thread" not in r[1])
            for w, tool, sec, check, gf, mem, _ in rows:
                speedup = "—" if tool.startswith("gancore") else f"{sec / ours:.2f}×"
                pct = f"{gf:.0f} ({100 * gf / gemm_rate:.0f}%)"
                print(f"| {w} | {tool} | {sec:.3f} | {speedup} | {pct} | {mem:.0f} | {check} |")


def gemm_limit(m, n, d, repeats):
    rng = np.random.default_rng(0)
    a = rng.random((m, d), dtype=np.float32)
    b = rng.random((n, d), dtype=np.float32)
    sec, _ = timed(lambda: a @ b.T, repeats)
    return 2.0 * m * n * d / sec / 1e9, sec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("GANCORE_DATA_DIR", "../shared/datasets")))
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per tool (median reported)")
    ap.add_argument("--only", nargs="*", default=["P1", "P2", "N1", "N2"], help="workloads to run")
    ap.add_argument("--skip", nargs="*", default=[], help="tools to skip, e.g. sklearn numpy-per-sigma")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurements")
    ap.add_argument(
        "--memory-check",
        action="store_true",
        help="also run M1: a 100,000 × 100,000 Parzen evaluation (d = 784) and report its extra memory",
    )
    args = ap.parse_args(argv)
    if not (args.data_dir / "mnist").exists():
        sys.exit(f"MNIST not found under {args.data_dir}/mnist (give --data-dir)")

    import torch

    threads = os.cpu_count()
    print(
        f"gancore {gancore.__version__}; numpy {np.__version__}; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); {threads} cores"
    )
    train, test = load_mnist(args.data_dir)
    centers, valid = train[:10000], train[50000:60000]
    table = Table()
    mem = (lambda fn: float("nan")) if args.no_memory else peak_extra_mb
    skip = set(args.skip)
    r = args.repeats
    gemm_rate, _ = gemm_limit(10000, 10000, 784, r)
    print(f"machine limit: NumPy float32 GEMM 10000×10000×784: {gemm_rate:.0f} GFLOP/s")

    if "P1" in args.only:
        print("\nP1 Parzen σ=0.2, 10k test × 10k centers")
        flops = 2 * 10000 * 10000 * 784 / 1e9
        sec, ours = timed(lambda: gancore.parzen_loglik(test, centers, 0.2), r)
        table.add(
            "P1", "gancore", sec, "reference", flops / sec, mem(lambda: gancore.parzen_loglik(test, centers, 0.2))
        )
        sec1, _ = timed(lambda: gancore.parzen_loglik(test, centers, 0.2, n_threads=1), r)
        table.add("P1", "gancore (1 thread)", sec1, f"scaling {sec1 / sec:.2f}×", flops / sec1, float("nan"))
        sec, res = timed(lambda: numpy_parzen(test, centers, 0.2), r)
        table.add(
            "P1",
            "numpy f32 + scipy logsumexp",
            sec,
            f"max dev {np.abs(res - ours).max():.1e} nats",
            flops / sec,
            mem(lambda: numpy_parzen(test, centers, 0.2)),
        )
        sec, res = timed(lambda: torch_parzen_many(test, centers, [0.2])[0], r)
        table.add(
            "P1",
            "torch f32 addmm + logsumexp",
            sec,
            f"max dev {np.abs(res - ours).max():.1e} nats",
            flops / sec,
            mem(lambda: torch_parzen_many(test, centers, [0.2])),
        )

    if "P2" in args.only:
        print("\nP2 Parzen protocol: 20 σ on 10k validation, best σ on 10k test (10k centers)")
        grid = np.logspace(-1, 0, 20)
        flops = 2 * 2 * 10000 * 10000 * 784 / 1e9

        def ours_p2():
            v = gancore.parzen_loglik(valid, centers, grid).mean(axis=1)
            return gancore.parzen_loglik(test, centers, grid[int(np.argmax(v))])

        def per_sigma_p2():
            v = [numpy_parzen(valid, centers, s).mean() for s in grid]
            return numpy_parzen(test, centers, grid[int(np.argmax(v))])

        def tuned_p2():
            v = numpy_parzen_many_tuned(valid, centers, grid).mean(axis=1)
            return numpy_parzen_many_tuned(test, centers, [grid[int(np.argmax(v))]])[0]

        def torch_p2():
            v = torch_parzen_many(valid, centers, grid).mean(axis=1)
            return torch_parzen_many(test, centers, [grid[int(np.argmax(v))]])[0]

        sec, ours = timed(ours_p2, r)
        table.add("P2", "gancore", sec, "reference", flops / sec, mem(ours_p2))
        if "numpy-per-sigma" not in skip:
            sec, res = timed(per_sigma_p2, max(1, min(r, 3)))
            table.add(
                "P2",
                "numpy f32 per-σ loop (straightforward)",
                sec,
                f"max dev {np.abs(res - ours).max():.1e} nats",
                flops / sec,
                mem(per_sigma_p2),
            )
        sec, res = timed(tuned_p2, r)
        table.add(
            "P2",
            "numpy f32 tuned (distances once)",
            sec,
            f"max dev {np.abs(res - ours).max():.1e} nats",
            flops / sec,
            mem(tuned_p2),
        )
        sec, res = timed(torch_p2, r)
        table.add(
            "P2",
            "torch f32 (distances once)",
            sec,
            f"max dev {np.abs(res - ours).max():.1e} nats",
            flops / sec,
            mem(torch_p2),
        )

    for name, loader in (("N1", None), ("N2", load_cifar10)):
        if name not in args.only:
            continue
        if loader is None:
            q, ref = test, train
        else:
            if not (args.data_dir / "cifar-10").exists():
                print(f"\n{name}: CIFAR-10 not found under {args.data_dir}; skipped")
                continue
            ref, q = loader(args.data_dir)
        m, n, d = len(q), len(ref), q.shape[1]
        print(f"\n{name} exact 1-NN: {m} × {n}, d = {d}")
        flops = 2 * m * n * d / 1e9
        screen = _core.knn_screen(m, n, d)
        print(f"  gancore screens with: {screen}")
        sec, (idx, dist) = timed(lambda: gancore.nearest_neighbors(q, ref, 1), r)
        ours = idx[:, 0]
        table.add(
            name,
            f"gancore (exact, {screen} screen)",
            sec,
            "reference",
            flops / sec,
            mem(lambda: gancore.nearest_neighbors(q, ref, 1)),
        )
        if name == "N1":
            sec1, _ = timed(lambda: gancore.nearest_neighbors(q, ref, 1, n_threads=1), r)
            table.add(name, "gancore (exact, 1 thread)", sec1, f"scaling {sec1 / sec:.2f}×", flops / sec1, float("nan"))
        if screen != "gemm":
            # The same kernel with its portable first pass, for CPUs without AMX.
            with forced_knn_screen("gemm"):
                sec_g, (idx_g, dist_g) = timed(lambda: gancore.nearest_neighbors(q, ref, 1), r)
            same = bool(np.array_equal(idx_g, idx) and np.array_equal(dist_g, dist))
            table.add(
                name,
                "gancore (exact, gemm screen)",
                sec_g,
                "identical" if same else "DIFFERENT",
                flops / sec_g,
                float("nan"),
            )
        for tool, fn in (
            ("numpy f32", numpy_knn1),
            ("torch f32 addmm", torch_knn1),
            ("faiss-cpu IndexFlatL2", faiss_knn1),
            ("sklearn brute", sklearn_knn1),
        ):
            if tool.split()[0] in skip:
                continue
            sec, res = timed(lambda: fn(q, ref), r)
            # A disagreement is only a mistake if the other tool's pick is truly farther.
            exact_other = ((q.astype(np.float64) - ref[res].astype(np.float64)) ** 2).sum(1)
            worse = int((exact_other > dist[:, 0] * (1 + 1e-12)).sum())
            table.add(
                name,
                tool,
                sec,
                f"{int((res != ours).sum())} index disagreements, {worse} truly worse",
                flops / sec,
                mem(lambda: fn(q, ref)),
            )

    if args.memory_check:
        print("\nM1 Parzen 100,000 × 100,000, d = 784, σ = 0.2 (synthetic uniform data), in a fresh process")
        sec, extra = memory_check()
        print(f"  gancore: {sec:.1f} s, peak extra resident memory {extra:.1f} MB (the 2 × 299 MB inputs not counted)")
        table.add("M1", "gancore", sec, f"extra {extra:.0f} MB", 2 * 1e10 * 784 / 1e9 / sec, extra)

    table.print(gemm_rate)


if __name__ == "__main__":
    main()
