"""The scaling model of ``benchmarks/scaling_model.py``: its formula against values worked out
by hand, its bucket count against ``GradientBuckets``, its calibration on a synthetic sweep."""

import sys
from pathlib import Path

import numpy as np
import pytest

from cnnumpy.distributed import GradientBuckets
from cnnumpy.models import build_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import scaling_model as sm  # noqa: E402


def test_one_rank_sends_nothing():
    assert sm.ring_allreduce_s(4e6, 3, 1, bandwidth=1e9, latency=25e-6) == 0.0


@pytest.mark.parametrize(
    ("nbytes", "buckets", "k", "bandwidth", "latency", "expected"),
    [
        # 2(1)/2 * 1e6 / 1e9 = 1e-3 s, plus 2(1) * 1e-6 * 1 = 2e-6 s
        (1e6, 1, 2, 1e9, 1e-6, 1.002e-3),
        # 2(3)/4 * 8e6 / 2e9 = 6e-3 s, plus 2(3) * 5e-6 * 3 = 9e-5 s
        (8e6, 3, 4, 2e9, 5e-6, 6.09e-3),
        # 2(255)/256 * 1.1e9 / 1.1e9 = 1.9921875 s, plus 2(255) * 25e-6 * 2 = 0.0255 s
        (1.1e9, 2, 256, 1.1e9, 25e-6, 2.0176875),
    ],
)
def test_ring_allreduce_matches_the_formula_by_hand(nbytes, buckets, k, bandwidth, latency,
                                                    expected):  # fmt: skip
    assert sm.ring_allreduce_s(nbytes, buckets, k, bandwidth, latency) == pytest.approx(expected)


def test_efficiency_without_and_with_overlap():
    assert sm.efficiency(0.9, 0.1) == pytest.approx(0.9)
    # 0.04 s of the all-reduce is left over after 0.06 s of backward: 0.9 / 0.94
    assert sm.efficiency(0.9, 0.1, 0.06) == pytest.approx(0.9 / 0.94)
    assert sm.efficiency(0.9, 0.1, 0.5) == 1.0  # hidden entirely


def test_efficiency_falls_as_ranks_are_added():
    link = sm.Link.parse("10 GbE:1.1:25")
    values = [
        sm.efficiency(
            0.02, 1e-4 + sm.ring_allreduce_s(246_824, 1, k, link.bandwidth, link.latency)
        )  # fmt: skip
        for k in sm.KS
    ]
    assert all(a > b for a, b in zip(values, values[1:], strict=False)), values


def test_link_parses_gigabytes_and_microseconds():
    link = sm.Link.parse("100 Gb InfiniBand:11:2")
    assert (link.name, link.bandwidth, link.latency) == ("100 Gb InfiniBand", 11e9, 2e-6)


class _Param:
    def __init__(self, size):
        self.grad = np.zeros(size, np.float32)


@pytest.mark.parametrize(("sizes", "bucket_bytes", "expected"), [
    ([10, 10, 10], 80, 2),  # 40 + 40 = 80 fits; the third would make 120 > 80
    ([10, 10, 10], 120, 1),
    ([100, 1, 1], 40, 2),  # an array larger than a bucket gets its own
    ([5], 1, 1),
])  # fmt: skip
def test_bucket_count_agrees_with_gradient_buckets(sizes, bucket_bytes, expected):
    assert sm.bucket_count(sizes, 4, bucket_bytes) == expected
    packed = GradientBuckets([_Param(n) for n in sizes], bucket_bytes=bucket_bytes)
    assert len(packed.buckets) == expected


def test_gradient_bytes_are_four_per_parameter():
    # lenet5_modern at 28x28: conv 1->6 5x5 (156), 6->16 5x5 (2,416), 16->120 5x5 (48,120),
    # linear 120->84 (10,164), 84->10 (850)
    counted = sm.zoo_model("lenet5_modern")
    assert counted["parameters"] == 156 + 2_416 + 48_120 + 10_164 + 850 == 61_706
    model = build_model("lenet5_modern", input_size=28, rng=np.random.default_rng(0))
    assert GradientBuckets(model.parameters()).nbytes == 4 * 61_706


def test_calibration_recovers_a_known_latency_and_bandwidth():
    latency, bandwidth = 1.5e-6, 4e9
    sizes = [8, 16 * 1024, 2**20, 4 * 2**20, 32 * 2**20]
    # two ranks: t = 2(1) a + 2(1)/2 * S / BW
    rows = [{"bytes": s, "median_s": 2 * latency + s / bandwidth} for s in sizes]
    rows[0]["median_s"] = 2 * latency  # 8 bytes: latency only, as the model reads it
    got_latency, got_bandwidth = sm.calibrate({"ranks": 2, "rows": rows})
    assert got_latency == pytest.approx(latency)
    assert got_bandwidth == pytest.approx(bandwidth)


def _run(model, ranks, batch, images_per_s):
    return {"model": model, "ranks": ranks, "per_rank_batch": batch,
            "images_per_s": images_per_s}  # fmt: skip


def test_measured_efficiency_is_images_per_second_over_k_times_one_rank():
    import scaling

    runs = [_run("m", 1, 128, 100.0), _run("m", 1, 64, 90.0), _run("m", 2, 64, 160.0)]
    got = {e["scaling"]: e for e in scaling.efficiencies(runs, global_batch=128, per_rank=64)}
    assert got["strong"]["efficiency"] == pytest.approx(160 / (2 * 100))  # 0.8
    assert got["weak"]["efficiency"] == pytest.approx(160 / (2 * 90))
    assert got["strong"]["baseline_batch"] == 128 and got["weak"]["baseline_batch"] == 64


def test_a_round_is_picked_by_its_images_per_second():
    import scaling

    rounds = [_run("m", 2, 64, v) for v in (30.0, 10.0, 20.0)]
    assert scaling.pick_round(rounds)["images_per_s"] == 20.0
    best = scaling.pick_round(rounds, "best")
    assert best["images_per_s"] == 30.0 and best["rounds_images_per_s"] == [30.0, 10.0, 20.0]
