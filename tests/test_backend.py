import ast
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from cnnumpy import backend
from cnnumpy.functional import _parallel, conv
from cnnumpy.functional.conv import conv2d_backward, conv2d_forward

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def restore_thread_count():
    previous = backend.get_num_threads()
    yield
    backend.set_num_threads(previous)


def _meet_on_helpers(helpers: int) -> set[str]:
    """Run ``helpers`` copies of a task on the pool that all wait for each other, twice over;
    returns the names of the threads that ran them. Fails if fewer threads than ``helpers``."""
    barrier = threading.Barrier(helpers, timeout=10)
    names = set()

    def meet() -> None:
        barrier.wait()
        names.add(threading.current_thread().name)

    for future in backend.run_on_workers(meet, 2 * helpers):
        future.result()
    return names


# --- the thread count -----------------------------------------------------------------------


def test_set_num_threads_sets_the_count():
    backend.set_num_threads(3)
    assert backend.get_num_threads() == 3
    backend.set_num_threads(np.int64(1))
    assert backend.get_num_threads() == 1


@pytest.mark.parametrize("n", [2, 3, 5])
def test_the_pool_has_one_helper_thread_fewer_than_the_count(n):
    backend.set_num_threads(n)
    names = _meet_on_helpers(n - 1)
    assert len(names) == n - 1
    assert all(name.startswith("cnnumpy-kernel") for name in names)


def test_a_new_count_shuts_the_old_pool_down():
    backend.set_num_threads(2)
    _meet_on_helpers(1)
    old = backend._threads.pool
    backend.set_num_threads(2)  # the same count keeps the pool
    assert backend._threads.pool is old
    backend.set_num_threads(4)
    with pytest.raises(RuntimeError, match="shutdown"):
        old.submit(print)
    assert len(_meet_on_helpers(3)) == 3


def test_conv2d_gives_the_same_bits_on_one_and_two_threads(rng, monkeypatch):
    x = rng.standard_normal((16, 3, 9, 8)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    dout = rng.standard_normal((16, 5, 9, 8)).astype(np.float32)
    monkeypatch.setattr(conv, "CHUNK_BYTES", 1)  # one sample per chunk
    results, workers = [], []
    for n in (1, 2):
        backend.set_num_threads(n)
        out, cache = conv2d_forward(x, w, b, padding=1)
        workers.append(_parallel.threads_for(conv._batch_chunks(x, cache.geometry)))
        results.append((out, *conv2d_backward(dout, cache)))
    assert workers == [1, 2]
    for one, two in zip(*results, strict=True):
        assert np.array_equal(one, two)


def test_num_threads_restores_the_previous_count():
    backend.set_num_threads(3)
    with backend.num_threads(1):
        assert backend.get_num_threads() == 1
        with backend.num_threads(2):
            assert backend.get_num_threads() == 2
        assert backend.get_num_threads() == 1
    assert backend.get_num_threads() == 3
    with pytest.raises(KeyError), backend.num_threads(2):
        raise KeyError("inside")
    assert backend.get_num_threads() == 3


@pytest.mark.parametrize(
    ("bad", "error"),
    [(0, ValueError), (-2, ValueError), (2.0, TypeError), ("2", TypeError), (True, TypeError),
     (None, TypeError)],
)  # fmt: skip
def test_bad_thread_counts_are_refused(bad, error):
    backend.set_num_threads(2)
    with pytest.raises(error, match=r"number of threads must be a positive integer, got"):
        backend.set_num_threads(bad)
    with pytest.raises(error, match="positive integer"), backend.num_threads(bad):
        pass
    assert backend.get_num_threads() == 2


def test_default_reads_the_environment(monkeypatch):
    monkeypatch.setenv("CNNUMPY_NUM_THREADS", "3")
    assert backend.default_num_threads() == 3
    for bad in ["0", "-1", "two", "1.5"]:
        monkeypatch.setenv("CNNUMPY_NUM_THREADS", bad)
        with pytest.raises(ValueError, match=f"CNNUMPY_NUM_THREADS must be .* got '{bad}'"):
            backend.default_num_threads()
    monkeypatch.delenv("CNNUMPY_NUM_THREADS")
    assert 1 <= backend.default_num_threads() <= backend.MAX_DEFAULT_THREADS


def _python(code: str, threads: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CNNUMPY_NUM_THREADS": threads}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_a_new_process_takes_its_count_from_the_environment():
    code = (
        "from cnnumpy import backend\n"
        "from cnnumpy.functional._parallel import threads_for\n"
        "print(backend.get_num_threads(), threads_for([slice(i, i + 1) for i in range(100)]))\n"
    )
    done = _python(code, "3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "3"]
    done = _python(code, "lots")
    assert done.returncode != 0
    assert "CNNUMPY_NUM_THREADS must be a positive integer, got 'lots'" in done.stderr


# --- scratch buffers ------------------------------------------------------------------------


def test_workspaces_never_share_a_buffer():
    a, b = backend.Workspace("a"), backend.Workspace("b")
    x = a.buffer("columns", (4, 5), np.float32)
    y = b.buffer("columns", (4, 5), np.float32)
    assert not np.shares_memory(x, y)


def test_a_buffer_is_reused_by_its_thread_and_grown_when_too_small():
    ws = backend.Workspace("test")
    first = ws.buffer("rows", (8, 8), np.float64)
    assert first.shape == (8, 8) and first.dtype == np.float64 and first.flags.c_contiguous
    again = ws.buffer("rows", (4, 3), np.float32)  # smaller, other dtype: the same memory
    assert np.shares_memory(first, again)
    assert not np.shares_memory(first, ws.buffer("other", (8, 8), np.float64))
    grown = ws.buffer("rows", (9, 8), np.float64)
    assert not np.shares_memory(first, grown)
    assert np.shares_memory(grown, ws.buffer("rows", (9, 8), np.float64))


def test_each_thread_has_its_own_buffers():
    ws = backend.Workspace("test")
    mine = ws.buffer("rows", (16,), np.float32)
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(ws.buffer("rows", (16,), np.float32)))
    thread.start()
    thread.join()
    assert not np.shares_memory(mine, theirs[0])


def test_huge_buffers_are_not_kept():
    ws = backend.Workspace("test")
    shape = (backend.KEEP_BYTES // 8 + 1,)
    first = ws.buffer("big", shape, np.float64)
    assert not np.shares_memory(first, ws.buffer("big", shape, np.float64))


def test_backend_imports_nothing_from_cnnumpy():
    tree = ast.parse(Path(backend.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and not (node.module or "").startswith("cnnumpy")
        elif isinstance(node, ast.Import):
            assert not any(alias.name.startswith("cnnumpy") for alias in node.names)
