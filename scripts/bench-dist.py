#!/usr/bin/env python3
"""The data-parallel (MPI) table, from bench_dist's Google Benchmark JSON files.

    scripts/bench-dist.py DIR

DIR holds dist-np2.json (every row of bench/bench_dist.cpp at 2 ranks) and dist-np1.json (the
global-batch row at 1 rank), as scripts/bench writes them (--benchmark_repetitions with
aggregates only; rank 0's wall-clock times). Prints Markdown: the allreduce overhead per step of
the MLP batch-32 step at 2 ranks (with DDP's gradient average minus without), the bytes and
allreduce calls per step, a raw allreduce of the same size, and the data-parallel MLP step at a
global batch of 256 on 1 and 2 ranks with the speed-up. Standard library only.
"""
import json
import os
import re
import sys


def load(path):
    """name (without /iterations:N and /real_time) -> median aggregate row; and the context."""
    if not os.path.exists(path):
        return {}, {}
    with open(path) as f:
        data = json.load(f)
    rows = {}
    for b in data.get("benchmarks", []):
        name = re.sub(r"/iterations:\d+|/real_time", "", b.get("run_name", b["name"]))
        if b.get("error_occurred"):
            rows[name] = {"error": b.get("error_message", "error")}
        elif b.get("aggregate_name") == "median" or (b.get("aggregate_name") is None and name not in rows):
            rows[name] = dict(b, cv=rows.get(name, {}).get("cv"))
        elif b.get("aggregate_name") == "cv":  # the coefficient of variation over the repetitions
            rows.setdefault(name, {})["cv"] = b.get("real_time")
    return rows, data.get("context", {})


def us(b, metric="real_time"):
    if not b or metric not in b:
        return None
    return b[metric] * {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b.get("time_unit", "ns")]


def fmt(v, b=None):
    """A time in us; with b, the coefficient of variation of its repetitions."""
    if v is None:
        return "-"
    cv = b.get("cv") if b else None
    return (f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.1f} us") + (f" (cv {100 * cv:.0f}%)" if cv else "")


def find(rows, pattern):
    for name, b in rows.items():
        if re.fullmatch(pattern, name):
            return name, b
    return None, None


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "."
    np2, ctx2 = load(os.path.join(d, "dist-np2.json"))
    np1, ctx1 = load(os.path.join(d, "dist-np1.json"))
    if not np2 and not np1:
        print(f"bench-dist: no dist-np*.json in {d}", file=sys.stderr)
        return 1
    ctx = ctx2 or ctx1
    loads = [c.get("load_avg", [None])[0] for c in (ctx2, ctx1) if c.get("load_avg")]
    print("Data-parallel (MPI), rank 0's wall-clock median; " + (ctx.get("blas", "") or "BLAS unknown") +
          "; 1-minute load at the start of each run: " + ", ".join(f"{x:.2f}" for x in loads) + "\n")
    print("| row | wall time | rank 0's CPU time | notes |")
    print("|---|---|---|---|")
    _, local = find(np2, r"dist/mlp_step/batch:32/none/ranks:2/local")
    _, synced = find(np2, r"dist/mlp_step/batch:32/none/ranks:2/allreduce")
    raw_name, raw = find(np2, r"dist/allreduce/floats:\d+/ranks:2")
    _, s1 = find(np1, r"dist/mlp_step/global_batch:256/none/ranks:1")
    _, s2 = find(np2, r"dist/mlp_step/global_batch:256/none/ranks:2")
    t_local, t_sync, t_raw, t1, t2 = us(local), us(synced), us(raw), us(s1), us(s2)
    c_local, c_sync, c_raw, c1, c2 = (us(b, "cpu_time") for b in (local, synced, raw, s1, s2))
    bytes_ = synced.get("allreduce_bytes") if synced else None
    calls = synced.get("allreduce_calls") if synced else None
    print(f"| MLP batch 32 per rank, 2 ranks, no gradient average | {fmt(t_local, local)} | {fmt(c_local)} | |")
    print(f"| the same with DDP's gradient average | {fmt(t_sync, synced)} | {fmt(c_sync)} | "
          + (f"{bytes_ / 1024:.1f} KiB in {calls:.0f} allreduce(s) per step |" if bytes_ else "|"))
    if t_local and t_sync:
        print(f"| allreduce overhead per step | {fmt(t_sync - t_local)} | {fmt(c_sync - c_local)} | "
              f"{100 * (t_sync - t_local) / t_local:+.0f}% of the step's wall time |")
    if raw_name:
        print(f"| raw allreduce of {raw_name.split('/')[2].split(':')[1]} floats, 2 ranks | {fmt(t_raw, raw)} | "
              f"{fmt(c_raw)} | mean, one call |")
    print(f"| MLP step at global batch 256, 1 rank (256 per rank) | {fmt(t1, s1)} | {fmt(c1)} | |")
    print(f"| MLP step at global batch 256, 2 ranks (128 per rank) | {fmt(t2, s2)} | {fmt(c2)} | |")
    if t1 and t2:
        print(f"| speed-up 1 -> 2 ranks | {t1 / t2:.2f}x | | wall time, 1 rank / 2 ranks |")
    for name, b in list(np2.items()) + list(np1.items()):
        if "error" in b:
            print(f"\n{name}: error: {b['error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
