"""Process-level behavior of the kernels: lazy imports, threads, GIL release, Ctrl-C."""

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np

import gancore


def test_import_gancore_does_not_import_torch():
    code = "import sys, gancore; gancore.parzen_loglik([[0.0]], [[1.0]], 1.0); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_concurrent_calls_from_python_threads_match_sequential_calls():
    rng = np.random.default_rng(0)
    jobs = [(rng.random((300, 64)).astype(np.float32), rng.random((2000, 64)).astype(np.float32)) for _ in range(4)]
    sequential = [(gancore.parzen_loglik(x, c, [0.2, 1.0]), gancore.nearest_neighbors(x, c, 2)) for x, c in jobs]
    results = [None] * 4

    def work(i):
        x, c = jobs[i]
        results[i] = (gancore.parzen_loglik(x, c, [0.2, 1.0]), gancore.nearest_neighbors(x, c, 2))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (p1, (i1, d1)), (p2, (i2, d2)) in zip(sequential, results):
        np.testing.assert_allclose(p1, p2, rtol=1e-12)
        assert (i1 == i2).all() and (d1 == d2).all()


def test_the_gil_is_released_while_a_kernel_runs():
    rng = np.random.default_rng(1)
    x, c = rng.random((2000, 256)).astype(np.float32), rng.random((20000, 256)).astype(np.float32)
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.005)

    t = threading.Thread(target=ticker)
    t.start()
    start = time.perf_counter()
    gancore.nearest_neighbors(x, c, 1, n_threads=1)
    elapsed = time.perf_counter() - start
    done.set()
    t.join()
    during = [s for s in ticks if start < s < start + elapsed]
    # A Python thread kept running while the kernel ran (it would be starved if the GIL were held).
    assert elapsed < 0.05 or len(during) >= 3


def test_thread_count_from_environment_gives_the_same_answer():
    rng = np.random.default_rng(2)
    x, c = rng.random((600, 32)), rng.random((3000, 32))
    code = textwrap.dedent(
        """
        import numpy as np, gancore, sys
        rng = np.random.default_rng(2)
        x, c = rng.random((600, 32)), rng.random((3000, 32))
        np.save(sys.argv[1], gancore.parzen_loglik(x, c, 0.7))
        """
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "a.npy")
        env = dict(os.environ, GANCORE_NUM_THREADS="1")
        subprocess.run([sys.executable, "-c", code, out], check=True, env=env)
        np.testing.assert_allclose(np.load(out), gancore.parzen_loglik(x, c, 0.7, n_threads=2), rtol=1e-12)


def test_ctrl_c_interrupts_a_long_kernel_promptly():
    # Run in a child so the SIGINT cannot reach the test runner itself.
    code = textwrap.dedent(
        """
        import os, signal, threading, time, numpy as np, gancore
        # A child started from a background job or under nohup inherits SIGINT ignored; install
        # Python's handler so the test measures the kernel, not how the suite was launched.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        rng = np.random.default_rng(0)
        x = rng.random((20000, 784), dtype=np.float32)
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
        start = time.perf_counter()
        try:
            gancore.nearest_neighbors(x, x, 1, n_threads=1)   # tens of seconds of work
            print("finished", time.perf_counter() - start)
        except KeyboardInterrupt:
            print("interrupted", time.perf_counter() - start)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    word, seconds = out.stdout.split()
    assert word == "interrupted", out.stdout + out.stderr
    assert float(seconds) < 1.5


def test_kernels_work_in_a_forked_child_after_use_in_the_parent():
    """A forked child inherits the cached thread pool but not its threads: it must not deadlock."""
    code = textwrap.dedent(
        """
        import os, numpy as np, gancore
        rng = np.random.default_rng(0)
        x = rng.random((3000, 64), dtype=np.float32)
        want = gancore.parzen_loglik(x, x, 0.5, n_threads=2)      # parent builds the pool
        pid = os.fork()
        if pid == 0:
            got = gancore.parzen_loglik(x, x, 0.5, n_threads=2)
            os._exit(0 if np.array_equal(got, want) else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "0", out.stdout + out.stderr
