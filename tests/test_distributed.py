"""Data-parallel training and sharded evaluation under torchrun (Gloo, CPU, localhost).

Every multi-process test launches real processes, ``python -m torch.distributed.run --standalone``
(torchrun on a free localhost port) or two plain processes with torchrun's variables, with a
timeout on the whole launch, so a hang fails the test instead of blocking CI.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not (dist.is_available() and dist.is_gloo_available()):
    pytest.skip("this PyTorch build has no torch.distributed with the Gloo backend", allow_module_level=True)

from gancore.distributed import group as distributed  # noqa: E402
from gancore.train import cli as train  # noqa: E402

from _train_helpers import PYTHON_DIR, TINY, state_of  # noqa: E402

LAUNCH_TIMEOUT = 120  # seconds for a whole launch; a healthy one takes 5-15 s on a busy 2-core machine
# TINY, plus a wider D initialization so that G, too, moves visibly in 16 steps (see the tolerance below).
ARGS = [*TINY, "--threads", "1", "--device", "cpu", "--d-init-range", "0.05"]


def _env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PYTHON_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _run(cmd, env, timeout=LAUNCH_TIMEOUT) -> subprocess.CompletedProcess:
    """Run ``cmd`` in its own session; on timeout kill the whole session (torchrun and its workers)."""
    p = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        pytest.fail(f"{' '.join(map(str, cmd))} did not finish within {timeout} s (hang?):\n{out[-3000:]}")
    return subprocess.CompletedProcess(cmd, p.returncode, out, "")


def torchrun(module_args, nproc=2, **env) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(nproc),
        "-m",
        *map(str, module_args),
    ]
    return _run(cmd, _env(**env))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same 16 steps (2 epochs, global batch 16) by one process and by two under torchrun."""
    root = tmp_path_factory.mktemp("ddp")
    assert train.main([*ARGS, "--out", str(root / "one")]) == 0
    r = torchrun(["gancore.train", *ARGS, "--out", root / "two"])
    assert r.returncode == 0, r.stdout[-3000:]
    return root


def _initial_state(run_dir) -> dict:
    """G's and D's parameters before the first step (built from the run's seed, as training does)."""
    from gancore.train import config
    from gancore.train.trainer import Trainer

    cfg = config.from_dict(json.loads((run_dir / "config.json").read_text()))
    t = Trainer(cfg, run_dir, torch.device("cpu"))
    out = {f"g.{k}": v.numpy().copy() for k, v in t.gen.state_dict().items()}
    out.update({f"d.{k}": v.numpy().copy() for k, v in t.disc.state_dict().items()})
    return out


# Tolerance of the 2-process vs 1-process comparison. The two runs compute the same global minibatch
# (same data rows, noise and dropout masks), so they differ only in float32 rounding: a rank's loss is
# a mean over 8 rows and DDP averages the two ranks' gradients, where one process takes the mean over
# 16 rows, and matrix products over 8 rows may block their sums differently than over 16. Those are
# ~1e-7 relative per step; after these 16 steps the largest difference seen was 3e-8. The tolerance,
# 1e-6 + 1e-5·|θ| (≤ 2e-6 here), leaves room for other CPUs' kernels, yet every parameter tensor moves
# by at least 1.5e-4 in these 16 steps (checked below, so the comparison cannot pass vacuously). A
# mistake in the data-parallel step shows up at the size of the update itself: drawing each rank's
# dropout masks locally, or giving both ranks the same rows, differed by 6e-5 to 2e-1.
ATOL, RTOL = 1e-6, 1e-5


def test_two_processes_match_one_process_with_the_same_global_batch(runs):
    one, two, init = state_of(runs / "one"), state_of(runs / "two"), _initial_state(runs / "one")
    assert one.keys() == two.keys()
    for k in one:
        np.testing.assert_allclose(two[k], one[k], rtol=RTOL, atol=ATOL, err_msg=k)
        moved = np.abs(one[k].astype(np.float64) - init[k]).max()
        assert moved > 50 * (ATOL + RTOL * np.abs(one[k]).max()), f"{k} barely moved ({moved:.1e}): weak test"
    # The logged numbers are global means over both ranks, and rank 0 alone wrote the run directory.
    m1 = [json.loads(x) for x in (runs / "one" / "metrics.jsonl").read_text().splitlines()]
    m2 = [json.loads(x) for x in (runs / "two" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in m1] == [r["step"] for r in m2]
    for a, b in zip(m1, m2):
        assert a["loss_d"] == pytest.approx(b["loss_d"], rel=1e-5)
        assert a["d_fake"] == pytest.approx(b["d_fake"], rel=1e-5)
    ckpts = sorted(p.name for p in (runs / "two" / "checkpoints").iterdir())
    assert ckpts == ["LATEST", "step_00000008", "step_00000016"]
    assert (runs / "two" / "samples" / "final.png").is_file()


@pytest.mark.slow  # ~23 s: two torchrun launches; .ci/run runs it with -m slow
def test_alternating_updates_under_ddp_match_one_process(tmp_path):
    args = [*ARGS, "--update", "alternating", "--k", "2", "--max-steps", "8"]
    assert train.main([*args, "--out", str(tmp_path / "one")]) == 0
    r = torchrun(["gancore.train", *args, "--out", tmp_path / "two"])
    assert r.returncode == 0, r.stdout[-3000:]
    one, two = state_of(tmp_path / "one"), state_of(tmp_path / "two")
    for k in one:
        np.testing.assert_allclose(two[k], one[k], rtol=RTOL, atol=ATOL, err_msg=k)


@pytest.mark.slow  # ~25 s of torchrun start-ups; .ci/run runs it with -m slow
def test_killed_rank_stops_the_run_and_resume_continues_bit_for_bit(runs, tmp_path):
    run = tmp_path / "killed"
    t0 = time.monotonic()
    r = torchrun(
        ["gancore.train", *ARGS, "--out", run, "--dist-timeout", "30"],
        GANCORE_TEST_KILL_AT_STEP=10,
        GANCORE_TEST_KILL_RANK=1,
    )
    assert r.returncode != 0, r.stdout[-3000:]
    assert time.monotonic() - t0 < 60  # stopped, well before the 120 s launch limit
    assert "SIGKILL" in r.stdout and "local_rank: 1" in r.stdout  # torchrun's summary names the dead rank
    from gancore.train import checkpoints as checkpoint

    assert checkpoint.latest(run).name == "step_00000008"  # the epoch checkpoint, intact
    r = torchrun(["gancore.train", "--resume", run, "-q", "--no-eval"])
    assert r.returncode == 0, r.stdout[-3000:]
    a, b = state_of(run), state_of(runs / "two")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)  # same world size: bitwise


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # waits out a --dist-timeout; .ci/run runs it with -m slow
def test_a_hung_rank_makes_the_others_fail_after_the_timeout(tmp_path):
    """A peer that stops answering without closing its sockets (SIGSTOP) is only caught by the timeout."""
    env = dict(
        WORLD_SIZE=2,
        LOCAL_WORLD_SIZE=2,
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=_free_port(),
        GANCORE_TEST_KILL_AT_STEP=10,
        GANCORE_TEST_KILL_RANK=1,
        GANCORE_TEST_KILL_SIGNAL="SIGSTOP",
        OMP_NUM_THREADS=1,
    )
    cmd = [sys.executable, "-m", "gancore.train", *ARGS, "--out", str(tmp_path / "run"), "--dist-timeout", "5"]
    procs = [
        subprocess.Popen(
            cmd, env=_env(**env, RANK=r, LOCAL_RANK=r), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for r in (0, 1)
    ]
    try:
        out, _ = procs[0].communicate(timeout=LAUNCH_TIMEOUT)
        assert procs[0].returncode == train.EXIT_DIST, out[-3000:]
        assert "Timed out" in out and "another rank died or was killed" in out and "--resume" in out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()


def test_batch_size_must_divide_among_the_processes():
    with pytest.raises(ValueError, match="--batch-size 15 is not divisible by the 2 processes"):
        distributed.check_batch_size(15, distributed.Dist(rank=1, world_size=2))
    distributed.check_batch_size(16, distributed.Dist(rank=1, world_size=2))


def test_without_torchrun_everything_is_single_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    assert distributed.setup("cpu") is distributed.SINGLE and not distributed.SINGLE.enabled
    assert distributed.current() is distributed.SINGLE


def test_rank_shards_concatenate_to_the_global_minibatch():
    """Data rows, noise and dropout masks of rank 0 and rank 1 are the halves of one process's."""
    from gancore.train.algorithm1 import MinibatchStream
    from gancore.train.models import dropout

    data = torch.arange(40.0).reshape(20, 2)
    streams = [MinibatchStream(data, 8, torch.Generator().manual_seed(5), rows=r) for r in (None, (0, 4), (4, 8))]
    for s in streams:
        s.new_epoch()
    full, r0, r1 = (s.take() for s in streams)
    assert torch.equal(torch.cat([r0, r1]), full)
    x = torch.ones(6, 50)
    masks = [
        dropout(x[:6] if sh is None else x[:3], 0.5, torch.Generator().manual_seed(3), sh)
        for sh in (None, (0, 2), (1, 2))
    ]
    assert torch.equal(torch.cat(masks[1:]), masks[0])


SHARDED_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from gancore import evaluate
    from gancore.distributed import group as distributed
    from gancore.distributed import sharding
    from gancore.train.checkpoints import load_generator

    out, run_dir, cli_dir = sys.argv[1:4]
    d = distributed.setup("cpu", 60)
    assert d.enabled and d.world_size == 2
    rng = np.random.default_rng(0)
    res = {}
    for name, (m, n, dim, dtype) in CASES["parzen"].items():
        x, c = rng.random((m, dim)).astype(dtype), rng.random((n, dim)).astype(dtype)
        sigma = np.logspace(-1, 0, 10) if name != "scalar" else 0.3
        res[name] = sharding.sharded_parzen_loglik(x, c, sigma, n_threads=1)
    for name, (m, n, dim, k) in CASES["knn"].items():
        q, r = rng.random((m, dim)).astype(np.float32), rng.random((n, dim)).astype(np.float32)
        res[name + "_idx"], res[name + "_d2"] = sharding.sharded_nearest_neighbors(q, r, k, n_threads=1)
    if d.is_main:
        np.savez(out + ".npz", **res)
    G, config = load_generator(run_dir)
    data = dict(np.load(out + "_data.npz"))
    evaluate.evaluate_generator(G, config, f"{out}_eval{d.rank}", data=data, **EVAL_KW, threads=1)
    evaluate.main([cli_dir, *CLI, "--threads", "1"])  # the CLI joins the same group, then leaves it
    """
)
CASES = {
    "parzen": {
        # (query rows, centers, dim, dtype), for the kernel's 512-row query blocks: 3 blocks split 1 + 2;
        # 512 + 1 rows, where a split into halves would change the last row's value (by 6e-14); 4 blocks
        # split 2 + 2 with 3 tiles of centers; 2 blocks with the centers split between threads; 3 rows
        # (rank 0 gets none).
        "uneven": (1100, 1000, 784, "float32"),
        "tail": (513, 300, 50, "float64"),
        "scalar": (2048, 3000, 784, "float32"),
        "split_centers": (1000, 5000, 50, "float64"),
        "tiny": (3, 7, 5, "float64"),
    },
    "knn": {"knn": (1001, 2000, 784, 3), "knn_one": (1, 4, 3, 2)},
}
EVAL_KW = dict(
    n_samples=500,
    references="all",
    kmeans_iters=3,
    memorization_samples=200,
    cells=5,
    figures=False,
    reference_cache=False,
)
CLI = ["--references", "none", "--no-memorization", "--no-figures", "--n-samples", "600"]


@pytest.mark.slow  # ~23 s: a torchrun evaluation; .ci/run runs it with -m slow
def test_sharded_evaluation_equals_one_process_exactly(runs, tmp_path):
    """Two ranks with 1 kernel thread each vs one process with 2 threads: bit for bit (==)."""
    import gancore
    from gancore import evaluate
    from gancore.train.checkpoints import load_generator

    g = np.random.default_rng(7)
    data = {k: g.random((n, 784), dtype=np.float32) for k, n in (("train", 2000), ("valid", 600), ("test", 700))}
    np.savez(tmp_path / "res_data.npz", **data)
    script = tmp_path / "sharded.py"
    script.write_text(f"CASES = {CASES!r}\nEVAL_KW = {EVAL_KW!r}\nCLI = {CLI!r}\n" + SHARDED_SCRIPT)
    for name in ("cli_two", "cli_one"):
        shutil.copytree(runs / "one", tmp_path / name)
    r = _run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(script),
            str(tmp_path / "res"),
            str(runs / "one"),
            str(tmp_path / "cli_two"),
        ],
        _env(),
    )
    assert r.returncode == 0, r.stdout[-3000:]
    got = np.load(tmp_path / "res.npz")

    rng = np.random.default_rng(0)
    for name, (m, n, dim, dtype) in CASES["parzen"].items():
        x, c = rng.random((m, dim)).astype(dtype), rng.random((n, dim)).astype(dtype)
        sigma = np.logspace(-1, 0, 10) if name != "scalar" else 0.3
        assert np.array_equal(got[name], gancore.parzen_loglik(x, c, sigma, n_threads=2)), name
    for name, (m, n, dim, k) in CASES["knn"].items():
        q, ref = rng.random((m, dim)).astype(np.float32), rng.random((n, dim)).astype(np.float32)
        idx, d2 = gancore.nearest_neighbors(q, ref, k, n_threads=2)
        assert np.array_equal(got[name + "_idx"], idx) and np.array_equal(got[name + "_d2"], d2), name

    # The evaluation with every sharded kernel call (Table 1 protocol, reference rows with k-means,
    # memorization tests), and the command line; rank 1 wrote nothing.
    G, config = load_generator(runs / "one")
    evaluate.evaluate_generator(G, config, tmp_path / "one_eval", data=data, **EVAL_KW, threads=2)
    one = json.loads((tmp_path / "one_eval" / "report.json").read_text())
    two = json.loads((tmp_path / "res_eval0" / "report.json").read_text())
    for key in ("parzen", "references", "memorization"):
        assert one[key] == two[key], key
    assert not (tmp_path / "res_eval1").exists()
    assert evaluate.main([str(tmp_path / "cli_one"), *CLI, "--threads", "2"]) == 0
    one = json.loads((tmp_path / "cli_one" / "report.json").read_text())
    two = json.loads((tmp_path / "cli_two" / "report.json").read_text())
    assert one["parzen"] == two["parzen"]
