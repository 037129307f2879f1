"""Data-parallel scaling on one machine: images/s on K = 1 and 2 MPI ranks, each step split
into compute, waiting and the gradient all-reduce.

Each rank runs on one core: one BLAS thread (``OPENBLAS_NUM_THREADS=1`` and its cousins, set
below before NumPy is imported, and threadpoolctl's limit) and cnnumpy's kernels on one thread
(``cn.set_num_threads(1)``). The data are synthetic (a fixed random batch per rank: MNIST-sized
1x28x28 for ``lenet5_modern``, CIFAR-sized 3x32x32 for ``resnet20``), labels random in 0..9.
Every timed step, on every rank::

    forward + loss | backward | barrier (the wait) | GradientBuckets.allreduce_mean | SGD step

``compute = forward + loss + backward + optimiser step``. The barrier before the all-reduce
makes the all-reduce time exclude waiting for the slower rank; that wait is reported on its
own. Each figure is the median over the timed steps (after the warm-up steps) on each rank,
then the mean over the ranks; ``step`` is the median wall time of a whole step on rank 0 (the
ranks move in lockstep), and ``images/s = global batch / step``. On K = 1 the all-reduce is a
no-op but ``allreduce_mean`` still packs and unpacks the buckets: its time is that copying.

Bandwidth of an all-reduce of ``S`` bytes in ``t`` seconds on K ranks, as NCCL's tests report
it: ``algbw = S / t`` and ``busbw = algbw * 2(K-1)/K`` (what each link carried per second in a
ring all-reduce; equal for K = 2). A sweep of raw ``Allreduce`` calls from 8 bytes to 32 MiB on
two ranks gives the latency and bandwidth that ``scaling_model.py`` is checked with; each K = 2 run
repeats it (to 16 MiB) right after its steps, so that the check compares an all-reduce with a
calibration made under the same background load.

Strong scaling keeps the global batch ``G`` (default 128) and gives each of K ranks ``G/K``;
weak scaling keeps the per-rank batch ``P`` (default ``G/2``, so the K = 2 run serves both).
Efficiency at K = 2 is ``images/s(K=2) / (2 * images/s(K=1))``, against K = 1 at batch ``G``
(strong) or ``P`` (weak). ``--rounds R`` runs every configuration R times, interleaved (so K = 1
and K = 2 see the same background load), and reports each one's median round (``--pick best``:
its fastest round, the one least disturbed on a machine others are using).

Each rank is bound to its own core (``--bind-to core``): with ``--bind-to none`` the kernel
sometimes leaves both ranks on one core for a whole run, and since MPI ranks busy-poll while
they wait, every step then costs twice the compute and each all-reduce a time slice (ms).

Driver (launches every configuration with mpirun, prints one table; about a minute per round
on an idle 2-core machine)::

    .venv/bin/python benchmarks/scaling.py [--rounds 3] [--steps 12] [--markdown] [--json FILE]

One configuration by hand (what the driver runs)::

    .venv/bin/mpirun --allow-run-as-root --oversubscribe --bind-to core -n 2 \\
        .venv/bin/python benchmarks/scaling.py --worker --model resnet20 --batch 64
"""

from __future__ import annotations

import os

# One thread per rank, before NumPy loads its BLAS (threadpoolctl's limit is set as well); the
# launched ranks inherit it. Only when run as a script: importing this module changes nothing.
if __name__ == "__main__":
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                 "CNNUMPY_NUM_THREADS"):  # fmt: skip
        os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

INPUTS = {"lenet5_modern": (1, 28), "resnet20": (3, 32)}  # (channels, image size)
PHASES = ("forward", "backward", "wait", "allreduce", "optimiser")
SWEEP_BYTES = [8, 1024, 16 * 1024, 64 * 1024, 256 * 1024, 2**20, 4 * 2**20, 16 * 2**20,
               32 * 2**20]  # fmt: skip


# ---------------------------------------------------------------- worker (under mpirun)


def _build(model: str, rng_seed: int = 0):
    from cnnumpy.models import build_model

    channels, size = INPUTS.get(model, (3, 32))
    net = build_model(model, in_channels=channels, input_size=size,
                      rng=np.random.default_rng(rng_seed))  # fmt: skip
    return net, channels, size


def time_steps(comm, model: str, batch: int, warmup: int, steps: int) -> dict:
    """Seconds of each phase of each timed step on this rank (lists, by phase), with the
    gradient bytes and bucket count."""
    import cnnumpy as cn
    from cnnumpy import nn, optim
    from cnnumpy.distributed import GradientBuckets, broadcast_state

    net, channels, size = _build(model)
    broadcast_state(comm, [p.data for p in net.parameters()])
    rng = np.random.default_rng(1 + comm.rank)
    x = rng.standard_normal((batch, channels, size, size), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    loss = nn.CrossEntropyLoss()
    opt = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    buckets = GradientBuckets(net.parameters())
    net.train()
    cn.set_num_threads(1)
    times: dict[str, list[float]] = {p: [] for p in (*PHASES, "step")}
    clock = time.perf_counter
    for i in range(warmup + steps):
        comm.barrier()  # every step starts together
        t0 = clock()
        loss(net(x), y)
        t1 = clock()
        net.backward(loss.backward())
        t2 = clock()
        comm.barrier()
        t3 = clock()
        buckets.allreduce_mean(comm, 1.0 / comm.size)
        t4 = clock()
        opt.step()
        opt.zero_grad()
        t5 = clock()
        if i >= warmup:
            for name, dt in zip((*PHASES, "step"), (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4,
                                                    t5 - t0), strict=True):  # fmt: skip
                times[name].append(dt)
    return {"times": times, "grad_bytes": buckets.nbytes, "buckets": len(buckets.buckets),
            "parameters": sum(p.data.size for p in net.parameters())}  # fmt: skip


def sweep(comm, sizes: list[int], repeats: int) -> list[dict]:
    """Median and minimum seconds of a raw in-place ``Allreduce`` of each size (float32
    buffers; 8 bytes is two floats), each call after a barrier."""
    rows = []
    for nbytes in sizes:
        a = np.ones(max(1, nbytes // 4), np.float32)
        ts = []
        for i in range(repeats + 3):
            comm.barrier()
            t0 = time.perf_counter()
            comm.allreduce_(a)
            if i >= 3:
                ts.append(time.perf_counter() - t0)
        rows.append({"bytes": a.nbytes, "median_s": float(np.median(ts)), "min_s": min(ts)})
    return rows


def worker(args: argparse.Namespace) -> int:
    from threadpoolctl import threadpool_limits

    from cnnumpy.distributed import world

    threadpool_limits(1)
    comm = world()
    if args.sweep:
        result = {"kind": "sweep", "ranks": comm.size,
                  "rows": sweep(comm, SWEEP_BYTES, args.steps)}  # fmt: skip
    else:
        mine = time_steps(comm, args.model, args.batch, args.warmup, args.steps)
        every = comm.allgather(mine["times"])
        medians = {p: float(np.mean([np.median(r[p]) for r in every])) for p in PHASES}
        step = float(np.median(every[0]["step"]))
        result = {
            "kind": "steps", "model": args.model, "ranks": comm.size, "per_rank_batch": args.batch,
            "global_batch": args.batch * comm.size, "warmup": args.warmup, "steps": args.steps,
            "grad_bytes": mine["grad_bytes"], "buckets": mine["buckets"],
            "parameters": mine["parameters"],
            "median_s": {**medians, "compute": medians["forward"] + medians["backward"]
                         + medians["optimiser"], "step": step},
            "images_per_s": args.batch * comm.size / step,
            "allreduce_gb_per_s": mine["grad_bytes"] / medians["allreduce"] / 1e9,
            "per_rank_compute_s": [float(np.median(np.add(np.add(r["forward"], r["backward"]),
                                                          r["optimiser"]))) for r in every],
            "runs_s": every, "load_average_end": np.round(os.getloadavg(), 2).tolist(),
        }  # fmt: skip
        if comm.size > 1:  # the latency and bandwidth in the same conditions, for the check
            result["sweep"] = {"kind": "sweep", "ranks": comm.size,
                               "rows": sweep(comm, SWEEP_BYTES[:-1], 15)}  # fmt: skip
    if comm.rank == 0:
        text = json.dumps(result)
        if args.out:
            Path(args.out).write_text(text + "\n")
        else:
            print(text)
    return 0


# ---------------------------------------------------------------- driver


def mpirun_command(ranks: int, bind: str) -> list[str]:
    """``mpirun -n ranks`` (the one beside this Python, else on PATH) with the flags a shared
    machine needs: ``--allow-run-as-root`` as root, ``--oversubscribe``, ``--bind-to``."""
    beside = Path(sys.executable).with_name("mpirun")
    launcher = str(beside) if beside.exists() else shutil.which("mpirun")
    if launcher is None:
        raise SystemExit("mpirun not found: pip install 'cnnumpy[mpi]'")
    root = ["--allow-run-as-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    return [launcher, *root, "--oversubscribe", "--bind-to", bind, "-n", str(ranks)]


def launch(ranks: int, worker_args: list[str], bind: str, timeout: float) -> dict:
    """Run one configuration under mpirun and return rank 0's result."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [*mpirun_command(ranks, bind), sys.executable, str(Path(__file__).resolve()),
               "--worker", *worker_args, "--out", str(out)]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not out.exists():
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"failed (exit {proc.returncode}): {' '.join(cmd)}")
        return json.loads(out.read_text())


def pick_round(results: list[dict], pick: str = "median") -> dict:
    """Among the rounds of one configuration, the run of median images/s (the lower middle
    one for an even count) or, with ``pick="best"``, of the highest (the round least disturbed
    by other work on a shared machine), with every round's images/s beside it."""
    ranked = sorted(results, key=lambda r: r["images_per_s"])
    chosen = dict(ranked[-1] if pick == "best" else ranked[(len(ranked) - 1) // 2])
    chosen["rounds_images_per_s"] = [r["images_per_s"] for r in results]
    chosen["picked"] = pick
    return chosen


def efficiencies(runs: list[dict], global_batch: int, per_rank: int) -> list[dict]:
    """Speedup and efficiency at each K > 1 for each model: strong (against K = 1 at the
    global batch) and weak (against K = 1 at the per-rank batch)."""
    by = {(r["model"], r["ranks"], r["per_rank_batch"]): r for r in runs}
    rows = []
    for (model, k, batch), run in by.items():
        if k == 1:
            continue
        for kind, base_batch, want in (("strong", global_batch, global_batch // k),
                                       ("weak", per_rank, per_rank)):  # fmt: skip
            base = by.get((model, 1, base_batch))
            if base is None or batch != want:
                continue
            speedup = run["images_per_s"] / base["images_per_s"]
            rows.append({"model": model, "ranks": k, "scaling": kind, "speedup": speedup,
                         "efficiency": speedup / k, "per_rank_batch": batch,
                         "baseline_batch": base_batch})  # fmt: skip
    return rows


def print_table(runs: list[dict], effs: list[dict]) -> None:
    print(f"{'model':<14} {'K':>2} {'batch/rank':>10} {'images/s':>9} {'compute':>8} "
          f"{'(fwd':>6} {'bwd':>6} {'opt)':>5} {'wait':>6} {'allred':>7} {'step':>8} "
          f"{'grad MiB':>8} {'bkts':>4} {'GB/s':>6}")  # fmt: skip
    print(f"{'':<14} {'':>2} {'':>10} {'':>9} {'ms':>8} {'':>6} {'':>6} {'':>5} {'ms':>6} "
          f"{'ms':>7} {'ms':>8}")  # fmt: skip
    for r in runs:
        ms = {k: 1e3 * v for k, v in r["median_s"].items()}
        bw = f"{r['allreduce_gb_per_s']:6.2f}" if r["ranks"] > 1 else f"{'-':>6}"
        print(f"{r['model']:<14} {r['ranks']:>2} {r['per_rank_batch']:>10} "
              f"{r['images_per_s']:9.1f} {ms['compute']:8.1f} {ms['forward']:6.1f} "
              f"{ms['backward']:6.1f} {ms['optimiser']:5.1f} {ms['wait']:6.2f} "
              f"{ms['allreduce']:7.2f} {ms['step']:8.1f} {r['grad_bytes'] / 2**20:8.3f} "
              f"{r['buckets']:>4} {bw}")  # fmt: skip
    for e in effs:
        what = ("global batch " + str(e["baseline_batch"]) if e["scaling"] == "strong"
                else f"{e['per_rank_batch']} per rank")  # fmt: skip
        print(
            f"{e['scaling']:>6} scaling ({what}), {e['model']}, K={e['ranks']}: "
            f"speedup {e['speedup']:.2f}x, efficiency {100 * e['efficiency']:.0f}%"
        )


def print_markdown(runs: list[dict], effs: list[dict]) -> None:
    """The README's measured table: one row per (model, scaling, K)."""
    by = {(r["model"], r["ranks"], r["per_rank_batch"]): r for r in runs}
    print("\n| model | scaling | K | batch per rank | images/s | compute ms | all-reduce ms "
          "| wait ms | step ms | efficiency |")  # fmt: skip
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for e in effs:
        for k, batch, eff in ((1, e["baseline_batch"], None),
                              (e["ranks"], e["per_rank_batch"], e["efficiency"])):  # fmt: skip
            r = by[(e["model"], k, batch)]
            ms = {name: 1e3 * v for name, v in r["median_s"].items()}
            shown = "(base)" if eff is None else f"{100 * eff:.0f}%"
            print(f"| {e['model']} | {e['scaling']} | {k} | {batch} | {r['images_per_s']:.0f} "
                  f"| {ms['compute']:.1f} | {ms['allreduce']:.2f} | {ms['wait']:.2f} "
                  f"| {ms['step']:.1f} | {shown} |")  # fmt: skip


def print_sweep(result: dict) -> None:
    k = result["ranks"]
    print(f"\nraw Allreduce on {k} ranks (median of the calls; busbw = S/t * 2(K-1)/K):")
    for row in result["rows"]:
        t = row["median_s"]
        print(
            f"  {row['bytes']:>10} B  {1e6 * t:9.1f} us  "
            f"{row['bytes'] / t * 2 * (k - 1) / k / 1e9:6.2f} GB/s"
        )


def driver(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from timing import machine

    models = args.models.split(",")
    g, p = args.global_batch, args.per_rank_batch or args.global_batch // 2
    configs = sorted({(1, g), (1, p), (2, g // 2), (2, p)}, key=lambda c: (c[0], -c[1]))
    info = machine()
    load_start = np.round(os.getloadavg(), 2).tolist()
    print(f"{info['cpu']}, {info['cores']} cores, numpy {info['numpy']}; one BLAS and one "
          f"cnnumpy thread per rank; median of {args.steps} steps after {args.warmup}; "
          f"load average at start {load_start}", flush=True)  # fmt: skip
    rounds: dict[tuple, list[dict]] = {}
    sweeps: list[dict] = []
    for i in range(args.rounds):
        for model in models:
            for k, batch in configs:
                worker_args = ["--model", model, "--batch", str(batch), "--steps",
                               str(args.steps), "--warmup", str(args.warmup)]  # fmt: skip
                r = launch(k, worker_args, args.bind, args.timeout)
                rounds.setdefault((model, k, batch), []).append(r)
                print(f"  round {i + 1}: {model} K={k} batch/rank {batch}: "
                      f"{r['images_per_s']:.1f} images/s", flush=True)  # fmt: skip
        sweeps.append(launch(2, ["--sweep", "--steps", str(args.sweep_repeats)], args.bind,
                             args.timeout))  # fmt: skip
    runs = [pick_round(rs, args.pick) for rs in rounds.values()]
    agg = np.min if args.pick == "best" else np.median  # per size, over the rounds' sweeps
    swept = {"kind": "sweep", "ranks": 2, "rounds": len(sweeps), "rows": [
        {"bytes": rows[0]["bytes"], "median_s": float(agg([r["median_s"] for r in rows])),
         "min_s": min(r["min_s"] for r in rows)}
        for rows in zip(*(s["rows"] for s in sweeps), strict=True)]}  # fmt: skip
    effs = efficiencies(runs, g, p)
    print()
    print_table(runs, effs)
    print_sweep(swept)
    if args.markdown:
        print_markdown(runs, effs)
    load_end = np.round(os.getloadavg(), 2).tolist()
    print(f"load average (1, 5, 15 min) at the end: {load_end}")
    if args.json:
        report = {"machine": info, "global_batch": g, "per_rank_batch": p, "runs": runs,
                  "efficiency": effs, "sweep": swept, "load_average_start": load_start,
                  "load_average_end": load_end,
                  "command": " ".join([Path(sys.executable).name, *sys.argv])}  # fmt: skip
        args.json.write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


DESCRIPTION = (
    "Images/s of data-parallel training on K = 1 and 2 MPI ranks of one machine (one thread "
    "each), the step split into compute, wait and gradient all-reduce, for strong scaling "
    "(global batch fixed) and weak scaling (per-rank batch fixed), plus a sweep of raw "
    "all-reduce latency and bandwidth. Without --worker it launches every run with mpirun."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=DESCRIPTION, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument(
        "--models", default="lenet5_modern,resnet20", help="driver: comma-separated zoo models"
    )
    parser.add_argument(
        "--global-batch", type=int, default=128, help="driver: strong scaling's global batch"
    )
    parser.add_argument(
        "--per-rank-batch",
        type=int,
        default=None,
        help="driver: weak scaling's batch per rank (default global/2)",
    )
    parser.add_argument("--steps", type=int, default=20, help="timed steps (sweep: calls)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="driver: run every configuration this many times, interleaved, "
        "and report the median round (a loaded machine: 3 or 5)",
    )
    parser.add_argument(
        "--pick",
        choices=("median", "best"),
        default="median",
        help="driver: which round to report (best: the highest images/s, for a loaded machine)",
    )
    parser.add_argument(
        "--sweep-repeats",
        type=int,
        default=30,
        help="driver: calls per size in the all-reduce sweep",
    )
    parser.add_argument(
        "--bind",
        default="core",
        help="driver: mpirun --bind-to value (none lets two busy-polling ranks "
        "share a core for a while: doubled compute, ms all-reduces)",
    )
    parser.add_argument("--timeout", type=float, default=600, help="driver: seconds per run")
    parser.add_argument("--json", type=Path, default=None, help="driver: write the report here")
    parser.add_argument("--markdown", action="store_true", help="driver: also a Markdown table")
    parser.add_argument(
        "--worker", action="store_true", help="run one configuration on this process's MPI world"
    )
    parser.add_argument("--model", default="lenet5_modern", help="worker: the model")
    parser.add_argument("--batch", type=int, default=64, help="worker: images per rank")
    parser.add_argument("--sweep", action="store_true", help="worker: the all-reduce sweep")
    parser.add_argument("--out", default=None, help="worker: write rank 0's JSON here")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.global_batch < 2 or args.rounds < 1:
        parser.error("need --steps >= 1, --warmup >= 0, --global-batch >= 2, --rounds >= 1")
    from cnnumpy.distributed import launched_size

    return worker(args) if args.worker or launched_size() > 1 else driver(args)


if __name__ == "__main__":
    raise SystemExit(main())
