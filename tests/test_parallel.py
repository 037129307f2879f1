import threading

import pytest

from cnnumpy.functional import _parallel
from cnnumpy.functional._parallel import map_runs


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
@pytest.mark.parametrize("count", [1, 2, 7])
def test_map_runs_returns_every_chunk_in_order(monkeypatch, threads, count):
    monkeypatch.setattr(_parallel, "THREADS", threads)
    chunks = [slice(2 * i, 2 * i + 2) for i in range(count)]
    seen = []

    def run(part):
        seen.append(threading.current_thread().name)
        return [(c.start, len(part)) for c in part]

    results = map_runs(run, chunks)
    assert [start for start, _ in results] == [c.start for c in chunks]
    assert len(seen) == min(threads, count)  # one call per contiguous part
    sizes = {size for _, size in results}
    assert max(sizes) - min(sizes) <= 1  # the parts are balanced


def test_map_runs_nested_call_runs_inline(monkeypatch):
    # A kernel called from inside a pool thread must not wait on the pool it occupies.
    monkeypatch.setattr(_parallel, "THREADS", 2)
    chunks = [slice(i, i + 1) for i in range(4)]

    def inner(part):
        return [c.start for c in part]

    def outer(part):
        return [sum(map_runs(inner, chunks)) for _ in part]

    assert map_runs(outer, chunks) == [6, 6, 6, 6]


def test_map_runs_propagates_errors(monkeypatch):
    monkeypatch.setattr(_parallel, "THREADS", 2)

    def run(part):
        if part[0].start > 0:
            raise ValueError("boom")
        return [None] * len(part)

    with pytest.raises(ValueError, match="boom"):
        map_runs(run, [slice(0, 1), slice(1, 2)])


def test_threads_setting_reads_the_environment(monkeypatch):
    monkeypatch.setenv("CNNUMPY_NUM_THREADS", "3")
    assert _parallel._default_threads() == 3
    monkeypatch.setenv("CNNUMPY_NUM_THREADS", "0")
    assert _parallel._default_threads() == 1
    monkeypatch.delenv("CNNUMPY_NUM_THREADS")
    assert 1 <= _parallel._default_threads() <= 4
