import threading

import pytest

from cnnumpy.functional import _parallel
from cnnumpy.functional._parallel import map_chunks


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("count", [1, 2, 7, 40])
def test_map_chunks_returns_every_chunk_in_order(monkeypatch, threads, count):
    monkeypatch.setattr(_parallel, "THREADS", threads)
    monkeypatch.setattr(_parallel, "MIN_CHUNKS_PER_THREAD", 1)
    chunks = [slice(2 * i, 2 * i + 2) for i in range(count)]
    started = []

    def start():
        started.append(threading.current_thread().name)
        return lambda chunk: (chunk.start, threading.current_thread().name)

    results = map_chunks(start, chunks)
    assert [first for first, _ in results] == [c.start for c in chunks]
    assert len(started) == min(threads, count)  # one work function (scratch) per thread
    assert {name for _, name in results} <= set(started)


def test_map_chunks_nested_call_runs_inline(monkeypatch):
    # A kernel called from inside a pool thread must not wait on the pool it occupies.
    monkeypatch.setattr(_parallel, "THREADS", 2)
    monkeypatch.setattr(_parallel, "MIN_CHUNKS_PER_THREAD", 1)
    chunks = [slice(i, i + 1) for i in range(4)]

    def inner(chunk):
        return chunk.start

    def outer(chunk):
        return sum(map_chunks(lambda: inner, chunks))

    assert map_chunks(lambda: outer, chunks) == [6, 6, 6, 6]


def test_map_chunks_propagates_errors(monkeypatch):
    monkeypatch.setattr(_parallel, "THREADS", 2)
    monkeypatch.setattr(_parallel, "MIN_CHUNKS_PER_THREAD", 1)

    def work(chunk):
        if chunk.start == 3:
            raise ValueError("boom")
        return chunk.start

    with pytest.raises(ValueError, match="boom"):
        map_chunks(lambda: work, [slice(i, i + 1) for i in range(6)])


@pytest.mark.parametrize(("count", "threads_used"), [(7, 1), (8, 2), (40, 2)])
def test_map_chunks_takes_a_second_thread_from_four_chunks_each(monkeypatch, count, threads_used):
    monkeypatch.setattr(_parallel, "THREADS", 2)
    started = []

    def start():
        started.append(threading.current_thread().name)
        return lambda chunk: chunk.start

    assert map_chunks(start, [slice(i, i + 1) for i in range(count)]) == list(range(count))
    assert len(started) == threads_used


def test_threads_setting_reads_the_environment(monkeypatch):
    monkeypatch.setenv("CNNUMPY_NUM_THREADS", "3")
    assert _parallel._default_threads() == 3
    monkeypatch.setenv("CNNUMPY_NUM_THREADS", "0")
    assert _parallel._default_threads() == 1
    monkeypatch.delenv("CNNUMPY_NUM_THREADS")
    assert 1 <= _parallel._default_threads() <= 4
