"""A model of data-parallel training on K = 2 to 256 processes of a cluster, calibrated on the
one-machine measurements of ``scaling.py`` and checked against them.

Ring all-reduce of ``S`` gradient bytes in ``n_b`` buckets on K ranks over a link of bandwidth
``BW`` (bytes/s) and latency ``a`` (s per message)::

    t_ring(K) = 2(K-1)/K * S / BW  +  2(K-1) * a * n_b          (0 for K = 1)

(reduce-scatter then all-gather: 2(K-1) messages of ``S/K`` bytes per bucket, each rank
sending and receiving ``2(K-1)/K * S``). ``GradientBuckets.allreduce_mean`` also packs and
unpacks the buckets, a copy measured on K = 1 (``t_pack``), so the all-reduce of a step costs
``t_ar = t_pack + t_ring``.

Weak scaling (per-rank batch ``b`` fixed): every rank computes as on K = 1, so
``t_compute`` (forward + loss + backward + optimiser step) is the measured K = 1 time at ``b``;
a model not measured gets resnet20's time scaled by its multiply-adds per image. Then::

    efficiency, no overlap   = t_compute / (t_compute + t_ar)
    efficiency, full overlap = t_compute / (t_compute + max(0, t_ar - t_backward))
    images/s                 = K * b / (t_compute + t_ar)

Full overlap (the all-reduce of each bucket started while backward computes the next, as
PyTorch's DDP and Horovod do) is an upper bound: the last bucket always waits; with one bucket
(every model here below 25 MiB) ``allreduce_mean`` overlaps nothing.

Strong scaling (global batch ``G`` fixed) assumes compute linear in the per-rank batch:
``t(K) = t_compute(G) / K + t_ar(K)``, which has a minimum: images/s stop rising.

The check: the sweep of raw all-reduces on two ranks of one machine gives the shared-memory
latency (half the 8-byte all-reduce: ``t = 2(K-1) a`` at ``K = 2``) and bandwidth (least
squares of ``t - 2a`` against ``S`` over 16 KiB to 4 MiB, the gradients' range), from the
sweep each K = 2 run made right after its steps; the formula with those predicts that run's
all-reduce and step, and the relative errors are printed. Then the formula for K = 2 to 256 on
each link, the first K below 50% efficiency under each change that moves it (no buckets,
float16 gradients, twice the batch, full overlap), the strong-scaling peak, and the formula in
Horovod's published 512-GPU setting beside its measured efficiencies.

    .venv/bin/python benchmarks/scaling_model.py --measured scaling.json [--json model.json]
        [--link "10 GbE:1.1:25" --link "100 Gb IB:11:2"] [--bucket-mib 25] [--dtype-bytes 4]
        [--compute-speedup 1] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KS = [2, 4, 8, 16, 32, 64, 128, 256]
ZOO = ["wrn16_4", "resnet18", "resnet50", "vgg16", "alexnet", "wrn28_10"]
DEFAULT_LINKS = ["10 GbE:1.1:25", "100 Gb InfiniBand:11:2"]

# Horovod's published runs (README and docs/benchmarks of github.com/horovod/horovod, from
# Sergeev & Del Balso 2018): 128 servers x 4 Pascal GPUs, RoCE 25 Gbit/s, 512 GPUs.
# Parameters: the ImageNet models' well-known counts. Images/s of one P100 (TensorFlow's
# benchmark pages, batch 64, recalled; ResNet-101 interpolated between ResNet-50 and -152):
# assumptions, not measurements. Horovod's fusion buffer is 64 MiB.
HOROVOD = {
    "inception_v3": {"parameters": 23.8e6, "images_per_s": 142.0, "published": 0.90},
    "resnet101": {"parameters": 44.5e6, "images_per_s": 130.0, "published": 0.90},
    "vgg16 (ImageNet)": {"parameters": 138.4e6, "images_per_s": 154.0, "published": 0.68},
}
HOROVOD_K, HOROVOD_BATCH, HOROVOD_BUCKET = 512, 64, 64 * 2**20


@dataclass(frozen=True)
class Link:
    """A network: ``bandwidth`` in bytes/s (effective, per direction), ``latency`` in s."""

    name: str
    bandwidth: float
    latency: float

    @classmethod
    def parse(cls, text: str) -> Link:
        """``'NAME:GB/s:us'``, e.g. ``'10 GbE:1.1:25'``."""
        try:
            name, gbps, us = text.rsplit(":", 2)
            return cls(name, float(gbps) * 1e9, float(us) * 1e-6)
        except ValueError:
            raise argparse.ArgumentTypeError(f"a link is NAME:GB/s:us, got {text!r}") from None


# 25 Gbit/s is 3.1 GB/s raw; the effective bandwidth and the latency are assumed.
HOROVOD_LINK = Link("25 Gb RoCE", 2.8e9, 5e-6)


def ring_allreduce_s(nbytes: float, buckets: int, k: int, bandwidth: float,
                     latency: float) -> float:  # fmt: skip
    """``2(K-1)/K * nbytes / bandwidth + 2(K-1) * latency * buckets``: seconds of a ring
    all-reduce of ``nbytes`` in ``buckets`` calls on ``k`` ranks (0 for ``k = 1``)."""
    if k < 1 or buckets < 0 or nbytes < 0:
        raise ValueError(f"need k >= 1, buckets >= 0, nbytes >= 0; got {k}, {buckets}, {nbytes}")
    return 2 * (k - 1) / k * nbytes / bandwidth + 2 * (k - 1) * latency * buckets


def efficiency(t_compute: float, t_allreduce: float, t_backward: float = 0.0) -> float:
    """``t_compute / (t_compute + max(0, t_allreduce - t_backward))``: the fraction of a step
    spent computing when the all-reduce may hide behind ``t_backward`` seconds of backward
    (0: no overlap)."""
    return t_compute / (t_compute + max(0.0, t_allreduce - t_backward))


def bucket_count(sizes: list[int], itemsize: int, bucket_bytes: int) -> int:
    """How many buckets ``GradientBuckets`` packs arrays of ``sizes`` elements into (one dtype):
    a bucket closes when the next array would take it past ``bucket_bytes``."""
    count, start = 0, 0
    for size in sizes:
        if start and (start + size) * itemsize > bucket_bytes:
            count, start = count + 1, 0
        start += size
    return count + (1 if start else 0)


def zoo_model(name: str) -> dict:
    """Parameters, gradient element counts and forward multiply-adds per image of a zoo model
    built at its design input (MNIST 1x28x28 for the LeNets, 3x32x32 otherwise)."""
    from cnnumpy.inspect.summary import summary
    from cnnumpy.models import build_model

    channels, size = (1, 28) if name.startswith("lenet") else (3, 32)
    model = build_model(name, in_channels=channels, input_size=size,
                        rng=np.random.default_rng(0))  # fmt: skip
    params = model.parameters()
    sizes = [p.data.size for p in params]
    macs = sum(row.multiply_adds for row in summary(model, (channels, size, size)))
    return {"parameters": sum(sizes), "sizes": sizes, "arrays": len(sizes),
            "itemsize": params[0].data.itemsize, "macs": macs}  # fmt: skip


def calibrate(sweep: dict) -> tuple[float, float]:
    """``(latency a, bandwidth BW)`` of one machine from ``scaling.py``'s two-rank sweep:
    ``a = t(8 B) / (2(K-1))`` and BW the least-squares slope of ``t - 2(K-1) a`` against
    ``2(K-1)/K * S`` over 16 KiB to 4 MiB (through the origin)."""
    k = sweep["ranks"]
    rows = sorted(sweep["rows"], key=lambda r: r["bytes"])
    latency = rows[0]["median_s"] / (2 * (k - 1))
    fit = [r for r in rows if 16 * 1024 <= r["bytes"] <= 4 * 2**20]
    s = np.array([2 * (k - 1) / k * r["bytes"] for r in fit])
    t = np.array([r["median_s"] - 2 * (k - 1) * latency for r in fit])
    return latency, float(s @ s / (s @ t))


def measured_points(report: dict) -> dict:
    """Per measured model: K = 1 compute, backward and pack seconds at the per-rank batch,
    gradient bytes and buckets, and the K = 2 run's all-reduce, step and images/s."""
    b = report["per_rank_batch"]
    out = {}
    for r in report["runs"]:
        if r["per_rank_batch"] != b:
            continue
        entry = out.setdefault(r["model"], {"grad_bytes": r["grad_bytes"],
                                            "buckets": r["buckets"], "batch": b})  # fmt: skip
        m = r["median_s"]
        if r["ranks"] == 1:
            entry.update(compute=m["compute"], backward=m["backward"], pack=m["allreduce"],
                         images_per_s_1=r["images_per_s"])  # fmt: skip
        else:
            entry.update(ranks=r["ranks"], allreduce=m["allreduce"], step=m["step"],
                         images_per_s=r["images_per_s"])  # fmt: skip
            if "sweep" in r:
                entry["sweep"] = r["sweep"]
    return out


def check(points: dict, latency: float, bandwidth: float) -> list[dict]:
    """The model's K = 2 all-reduce (``t_pack + t_ring``) and step (``t_compute + t_ar``)
    against the measured ones, with the relative errors. ``latency`` and ``bandwidth`` are
    replaced by the run's own sweep where it made one."""
    rows = []
    for name, p in points.items():
        if "allreduce" not in p or "compute" not in p:
            continue
        if "sweep" in p:  # calibrated in the same job, right after the steps
            latency, bandwidth = calibrate(p["sweep"])
        ring = ring_allreduce_s(p["grad_bytes"], p["buckets"], p["ranks"], bandwidth, latency)
        ar = p["pack"] + ring
        step = p["compute"] + ar
        rows.append({"model": name, "ranks": p["ranks"], "latency_s": latency,
                     "bandwidth_bytes_per_s": bandwidth, "pack_s": p["pack"], "ring_s": ring,
                     "allreduce_model_s": ar, "allreduce_measured_s": p["allreduce"],
                     "allreduce_error": ar / p["allreduce"] - 1, "step_model_s": step,
                     "step_measured_s": p["step"], "step_error": step / p["step"] - 1})  # fmt: skip
    return rows


def model_rows(models: dict, links: list[Link], ks: list[int]) -> list[dict]:
    """Every (link, K, model): all-reduce seconds, both efficiencies, images/s."""
    rows = []
    for link in links:
        for k in ks:
            for name, m in models.items():
                ar = m["pack"] + ring_allreduce_s(m["grad_bytes"], m["buckets"], k,
                                                  link.bandwidth, link.latency)  # fmt: skip
                rows.append({"link": link.name, "ranks": k, "model": name, "allreduce_s": ar,
                             "efficiency": efficiency(m["compute"], ar),
                             "efficiency_overlap": efficiency(m["compute"], ar, m["backward"]),
                             "images_per_s": k * m["batch"] / (m["compute"] + ar)})  # fmt: skip
    return rows


def first_below(m: dict, link: Link, ks: list[int], threshold: float = 0.5,
                overlap: bool = False) -> int | None:  # fmt: skip
    """The first K in ``ks`` whose efficiency is below ``threshold`` (None: none is)."""
    for k in ks:
        ar = m["pack"] + ring_allreduce_s(m["grad_bytes"], m["buckets"], k, link.bandwidth,
                                          link.latency)  # fmt: skip
        if efficiency(m["compute"], ar, m["backward"] if overlap else 0.0) < threshold:
            return k
    return None


def strong_peak(m: dict, link: Link, global_batch: int, kmax: int = 4096) -> int:
    """Strong scaling at ``global_batch``: the K (a power of 2, at most ``global_batch``)
    where ``G / (t_compute(G) / K + t_ar(K))`` is highest, compute linear in the batch."""
    t_full = m["compute"] / m["batch"] * global_batch
    best, best_rate, k = 1, 0.0, 1
    while k <= min(kmax, global_batch):
        t = t_full / k + m["pack"] + ring_allreduce_s(m["grad_bytes"], m["buckets"], k,
                                                      link.bandwidth, link.latency)  # fmt: skip
        if global_batch / t > best_rate:
            best, best_rate = k, global_batch / t
        k *= 2
    return best


def variants(m: dict) -> dict[str, dict]:
    """The baseline and what moves it: one all-reduce per parameter array (no buckets), float16
    gradients (half the bytes), twice the per-rank batch; overlap is a column of its own."""
    return {
        "baseline": m,
        "no buckets": {**m, "buckets": m["arrays"]},
        "float16": {**m, "grad_bytes": m["grad_bytes"] / 2, "pack": m["pack"] / 2},
        "2x batch": {**m, "compute": 2 * m["compute"], "backward": 2 * m["backward"],
                     "batch": 2 * m["batch"]},
    }  # fmt: skip


def horovod_rows(link: Link) -> list[dict]:
    """The formula in Horovod's 512-GPU setting, against its published efficiencies; the
    backward pass taken as 2/3 of the step."""
    rows = []
    for name, h in HOROVOD.items():
        nbytes = 4 * h["parameters"]
        t_c = HOROVOD_BATCH / h["images_per_s"]
        ar = ring_allreduce_s(nbytes, math.ceil(nbytes / HOROVOD_BUCKET), HOROVOD_K,
                              link.bandwidth, link.latency)  # fmt: skip
        rows.append({"model": name, "grad_mib": nbytes / 2**20, "compute_s": t_c,
                     "allreduce_s": ar, "efficiency": efficiency(t_c, ar),
                     "efficiency_overlap": efficiency(t_c, ar, 2 * t_c / 3),
                     "published": h["published"]})  # fmt: skip
    return rows


def build_models(report: dict, zoo: list[str], bucket_bytes: int, dtype_bytes: int,
                 speedup: float) -> dict:  # fmt: skip
    """Every model's inputs to the formula: gradient bytes and buckets at ``dtype_bytes`` per
    element, and compute and backward seconds per step (divided by ``speedup``) and the pack
    copies' seconds (not divided: they are copies in memory)."""
    points = measured_points(report)
    ref = points["resnet20"]
    ref_macs = zoo_model("resnet20")["macs"]
    models = {}
    for name in [*points, *[z for z in zoo if z not in points]]:
        z = zoo_model(name)
        nbytes = z["parameters"] * dtype_bytes
        p = points.get(name)
        if p is not None:  # measured: its own times (the pack copies scale with the bytes)
            compute, backward, source = p["compute"], p["backward"], "measured"
            pack = p["pack"] * nbytes / p["grad_bytes"]
        else:  # resnet20's per multiply-add, and its pack time per byte
            scale = z["macs"] / ref_macs
            compute, backward = ref["compute"] * scale, ref["backward"] * scale
            pack, source = ref["pack"] * nbytes / ref["grad_bytes"], "from resnet20 by MACs"
        models[name] = {
            "parameters": z["parameters"], "arrays": z["arrays"], "macs": z["macs"],
            "grad_bytes": nbytes, "buckets": bucket_count(z["sizes"], dtype_bytes, bucket_bytes),
            "compute": compute / speedup, "backward": backward / speedup, "pack": pack,
            "batch": report["per_rank_batch"], "compute_source": source,
        }  # fmt: skip
    return models


def _efficiencies(models: dict, k: int, link: Link) -> list[tuple[float, float]]:
    """Each model's efficiency at ``k`` ranks on ``link``: without and with full overlap."""
    cells = []
    for m in models.values():
        ar = m["pack"] + ring_allreduce_s(m["grad_bytes"], m["buckets"], k,
                                          link.bandwidth, link.latency)  # fmt: skip
        cells.append((efficiency(m["compute"], ar), efficiency(m["compute"], ar, m["backward"])))
    return cells


def _pct(x: float) -> str:
    return f"{100 * x:3.0f}%"


def report_text(models: dict, links: list[Link], ks: list[int], checks: list[dict],
                latency: float, bandwidth: float, global_batch: int) -> None:  # fmt: skip
    b = next(iter(models.values()))["batch"]
    print(
        f"one machine, two ranks (scaling.py's sweep): latency a = {1e6 * latency:.2f} us, "
        f"bandwidth BW = {bandwidth / 1e9:.2f} GB/s"
    )
    print("check, K = 2 on one machine: model (t_pack + t_ring) vs measured")
    for c in checks:
        print(
            f"  {c['model']:<14} (a {1e6 * c['latency_s']:.2f} us, BW "
            f"{c['bandwidth_bytes_per_s'] / 1e9:.2f} GB/s from its own job) "
            f"all-reduce {1e3 * c['allreduce_model_s']:6.3f} ms "
            f"(pack {1e3 * c['pack_s']:.3f} + ring {1e3 * c['ring_s']:.3f}) vs "
            f"{1e3 * c['allreduce_measured_s']:6.3f} ms ({100 * c['allreduce_error']:+.0f}%); "
            f"step {1e3 * c['step_model_s']:7.1f} vs {1e3 * c['step_measured_s']:7.1f} ms "
            f"({100 * c['step_error']:+.0f}%)"
        )
    print(f"\nmodels (weak scaling, {b} images per rank; compute per step on one core):")
    print(f"  {'model':<14} {'params':>11} {'grad MiB':>9} {'buckets':>7} {'MMACs/img':>10} "
          f"{'compute ms':>11} {'bwd ms':>9}  source")  # fmt: skip
    for name, m in models.items():
        print(
            f"  {name:<14} {m['parameters']:>11,} {m['grad_bytes'] / 2**20:9.2f} "
            f"{m['buckets']:>7} {m['macs'] / 1e6:10.1f} {1e3 * m['compute']:11.1f} "
            f"{1e3 * m['backward']:9.1f}  {m['compute_source']}"
        )
    for link in links:
        print(
            f"\n{link.name} ({link.bandwidth / 1e9:g} GB/s, {1e6 * link.latency:g} us): "
            "efficiency no overlap / full overlap"
        )
        print(f"  {'K':>4} " + " ".join(f"{n:>15}" for n in models))
        for k in ks:
            cells = [f"{_pct(a)} / {_pct(b)}" for a, b in _efficiencies(models, k, link)]
            print(f"  {k:>4} " + " ".join(f"{c:>15}" for c in cells))
        print(
            f"  first K below 50% (no overlap; 'overlap' with it), strong-scaling peak at "
            f"global batch {global_batch}:"
        )
        for name, m in models.items():
            moved = ", ".join(f"{v}: {first_below(mv, link, ks) or '>' + str(ks[-1])}"
                              for v, mv in variants(m).items())  # fmt: skip
            over = first_below(m, link, ks, overlap=True) or f">{ks[-1]}"
            peak = strong_peak(m, link, global_batch)
            rising = " (one image per rank, still rising)" if peak == global_batch else ""
            print(f"    {name:<14} {moved}, overlap: {over}; strong peak K = {peak}{rising}")


def markdown_text(
    models: dict, links: list[Link], ks: list[int], checks: list[dict], global_batch: int
) -> None:
    """The README's tables: the check, each model's inputs, and per link the efficiency
    (no overlap / full overlap) at each K, then the first K below 50% under each variant and
    the K where strong scaling at ``global_batch`` peaks."""
    print("\n| model | all-reduce, model ms | measured ms | error | step, model ms "
          "| measured ms | error |\n|---|--:|--:|--:|--:|--:|--:|")  # fmt: skip
    for c in checks:
        print(f"| {c['model']} | {1e3 * c['allreduce_model_s']:.3f} "
              f"| {1e3 * c['allreduce_measured_s']:.3f} | {100 * c['allreduce_error']:+.0f}% "
              f"| {1e3 * c['step_model_s']:.1f} | {1e3 * c['step_measured_s']:.1f} "
              f"| {100 * c['step_error']:+.0f}% |")  # fmt: skip
    print("\n| model | parameters | gradient MiB | buckets | compute ms per step | source |")
    print("|---|--:|--:|--:|--:|---|")
    for name, m in models.items():
        print(f"| {name} | {m['parameters']:,} | {m['grad_bytes'] / 2**20:.2f} | {m['buckets']} "
              f"| {1e3 * m['compute']:.1f} | {m['compute_source']} |")  # fmt: skip
    for link in links:
        print(
            f"\n{link.name} ({link.bandwidth / 1e9:g} GB/s, {1e6 * link.latency:g} us): "
            "efficiency without / with full overlap\n"
        )
        print("| K | " + " | ".join(models) + " |\n|--:|" + "--:|" * len(models))
        for k in ks:
            cells = [f"{100 * a:.0f}% / {100 * b:.0f}%" for a, b in _efficiencies(models, k, link)]
            print(f"| {k} | " + " | ".join(cells) + " |")
    print("\nFirst K below 50% efficiency (no overlap unless named):\n")
    names = [*variants(next(iter(models.values()))), "full overlap"]
    names.append(f"strong scaling peak, G = {global_batch}")
    print("| link | model | " + " | ".join(names) + " |\n|---|---|" + "--:|" * len(names))
    for link in links:
        for name, m in models.items():
            cells = [first_below(mv, link, ks) for mv in variants(m).values()]
            cells.append(first_below(m, link, ks, overlap=True))
            shown = [f">{ks[-1]}" if c is None else str(c) for c in cells]
            peak = strong_peak(m, link, global_batch)
            shown.append(f"{peak}{'+' if peak == global_batch else ''}")
            print(f"| {link.name} | {name} | " + " | ".join(shown) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--measured",
        type=Path,
        required=True,
        help="scaling.py's --json report (K = 1 and 2 on one machine)",
    )
    parser.add_argument(
        "--link",
        action="append",
        type=Link.parse,
        default=None,
        help=f"NAME:GB/s:us, repeatable (default {DEFAULT_LINKS})",
    )
    parser.add_argument("--zoo", default=",".join(ZOO), help="more zoo models, comma-separated")
    parser.add_argument("--bucket-mib", type=float, default=25, help="bucket size, MiB")
    parser.add_argument("--dtype-bytes", type=int, default=4, help="bytes per gradient value")
    parser.add_argument(
        "--compute-speedup",
        type=float,
        default=1.0,
        help="divide compute (not the pack copies) by this: faster ranks",
    )
    parser.add_argument(
        "--global-batch",
        type=int,
        default=1024,
        help="strong scaling's global batch for the images/s peak",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--markdown", action="store_true", help="also the tables in Markdown")
    args = parser.parse_args(argv)
    links = args.link or [Link.parse(t) for t in DEFAULT_LINKS]
    report = json.loads(args.measured.read_text())
    latency, bandwidth = calibrate(report["sweep"])
    checks = check(measured_points(report), latency, bandwidth)
    zoo = [z for z in args.zoo.split(",") if z]
    models = build_models(report, zoo, int(args.bucket_mib * 2**20), args.dtype_bytes,
                          args.compute_speedup)  # fmt: skip
    report_text(models, links, KS, checks, latency, bandwidth, args.global_batch)
    if args.markdown:
        markdown_text(models, links, KS, checks, args.global_batch)
    horovod = horovod_rows(HOROVOD_LINK)
    print(
        f"\nHorovod's setting ({HOROVOD_K} GPUs, {HOROVOD_LINK.name} at "
        f"{HOROVOD_LINK.bandwidth / 1e9:g} GB/s and {1e6 * HOROVOD_LINK.latency:g} us, batch "
        f"{HOROVOD_BATCH}, assumed P100 speeds): model no overlap / full overlap vs published"
    )
    for h in horovod:
        print(
            f"  {h['model']:<17} {h['grad_mib']:6.0f} MiB  compute {1e3 * h['compute_s']:4.0f} ms"
            f"  all-reduce {1e3 * h['allreduce_s']:4.0f} ms  {_pct(h['efficiency'])} / "
            f"{_pct(h['efficiency_overlap'])}  vs {_pct(h['published'])}"
        )
    if args.json:
        out = {"latency_s": latency, "bandwidth_bytes_per_s": bandwidth, "check": checks,
               "models": {n: {k: v for k, v in m.items()} for n, m in models.items()},
               "rows": model_rows(models, links, KS), "horovod": horovod,
               "links": [vars(link) for link in links], "compute_speedup": args.compute_speedup,
               "dtype_bytes": args.dtype_bytes, "bucket_mib": args.bucket_mib}  # fmt: skip
        args.json.write_text(json.dumps(out, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
