import threading

import numpy as np
import pytest

from cnnumpy import backend
from cnnumpy.functional import _parallel
from cnnumpy.functional._parallel import chunk_slices, in_order_sum, map_chunks, threads_for


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("count", [1, 2, 7, 40])
def test_map_chunks_returns_every_chunk_in_order(monkeypatch, threads, count):
    monkeypatch.setattr(_parallel, "MIN_CHUNKS_PER_THREAD", 1)
    chunks = [slice(2 * i, 2 * i + 2) for i in range(count)]
    started = []

    def start():
        started.append(threading.current_thread().name)
        return lambda chunk: (chunk.start, threading.current_thread().name)

    with backend.num_threads(threads):
        results = map_chunks(start, chunks)
    assert [first for first, _ in results] == [c.start for c in chunks]
    assert len(started) == min(threads, count)  # one work function (scratch) per thread
    assert {name for _, name in results} <= set(started)


def test_map_chunks_nested_call_runs_inline(monkeypatch):
    # A kernel called from inside a pool thread must not wait on the pool it occupies.
    monkeypatch.setattr(_parallel, "MIN_CHUNKS_PER_THREAD", 1)
    chunks = [slice(i, i + 1) for i in range(4)]

    def inner(chunk):
        return chunk.start

    def outer(chunk):
        return sum(map_chunks(lambda: inner, chunks))

    with backend.num_threads(2):
        assert map_chunks(lambda: outer, chunks) == [6, 6, 6, 6]


def test_map_chunks_propagates_errors(monkeypatch):
    monkeypatch.setattr(_parallel, "MIN_CHUNKS_PER_THREAD", 1)

    def work(chunk):
        if chunk.start == 3:
            raise ValueError("boom")
        return chunk.start

    with backend.num_threads(2), pytest.raises(ValueError, match="boom"):
        map_chunks(lambda: work, [slice(i, i + 1) for i in range(6)])


@pytest.mark.parametrize(("count", "threads_used"), [(7, 1), (8, 2), (40, 2)])
def test_map_chunks_takes_a_second_thread_from_four_chunks_each(count, threads_used):
    started = []

    def start():
        started.append(threading.current_thread().name)
        return lambda chunk: chunk.start

    with backend.num_threads(2):
        assert threads_for([slice(i, i + 1) for i in range(count)]) == threads_used
        assert map_chunks(start, [slice(i, i + 1) for i in range(count)]) == list(range(count))
    assert len(started) == threads_used


def test_threads_for_follows_the_backend(monkeypatch):
    monkeypatch.setattr(_parallel, "MIN_CHUNKS_PER_THREAD", 1)
    chunks = [slice(i, i + 1) for i in range(10)]
    for n in (1, 3, 10, 16):
        with backend.num_threads(n):
            assert threads_for(chunks) == min(n, 10)


@pytest.mark.parametrize(
    ("count", "item_bytes", "chunk_bytes", "sizes"),
    [(10, 4, 12, [3, 3, 3, 1]), (5, 100, 10, [1] * 5), (4, 1, 100, [4]), (0, 4, 8, [])],
)
def test_chunk_slices_cover_the_range_largest_first(count, item_bytes, chunk_bytes, sizes):
    slices = chunk_slices(count, item_bytes, chunk_bytes)
    assert [s.stop - s.start for s in slices] == sizes
    assert [i for s in slices for i in range(s.start, s.stop)] == list(range(count))


def test_in_order_sum_adds_left_to_right_into_a_copy():
    # In float32, (1e8 + -1e8) + 1 is 1 but 1e8 + (-1e8 + 1) is 0: a fixed order of addition
    # is what makes the bits reproducible.
    parts = [np.float32([1e8]), np.float32([-1e8]), np.float32([1.0])]
    first = parts[0].copy()
    assert in_order_sum(parts)[0] == np.float32(1.0)
    assert np.array_equal(parts[0], first)


def test_no_chunks_is_no_work_and_an_empty_sum_is_refused():
    """An empty batch has no chunks: nothing is started (``start`` sizes its scratch by the
    first chunk), and a sum of no partial sums, which has no shape, is a clear error."""

    def start():
        raise AssertionError("start() must not be called without chunks")

    assert map_chunks(start, []) == []
    assert chunk_slices(0, 100, 1000) == []
    with pytest.raises(ValueError, match="at least one part"):
        in_order_sum([])
