"""``cnnumpy bench`` runs the benchmark cases and writes their report; no time is asserted."""

import json
import subprocess
import sys

import pytest


def test_bench_writes_ratios_for_every_case_it_ran(tmp_path):
    report = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "cnnumpy", "bench", "--", "--only", "pool", "--repeats", "1",
         "--warmup", "0", "--no-memory", "--json", str(report)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(report.read_text())
    names = [row["case"] for row in result["cases"]]
    assert names == ["max pool 2x2/2, (128, 64, 32, 32)", "max pool 3x3/2, (128, 64, 32, 32)"]
    for row in result["cases"]:
        assert row["ratio"] == pytest.approx(row["cnnumpy_ms"] / row["torch_ms"])
        assert row["bar"] in (1.0, 1.5)
    assert result["machine"]["blas"], "threadpoolctl should report numpy's BLAS"
    assert "ratio" in proc.stdout and "max pool 3x3/2" in proc.stdout


def test_bench_rejects_an_unknown_argument():
    proc = subprocess.run([sys.executable, "-m", "cnnumpy", "bench", "--", "--nosuch"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode != 0 and "unrecognized arguments: --nosuch" in proc.stderr
