#!/usr/bin/env python3
"""The ratio table of the side-by-side benchmark, from Google Benchmark JSON files.

    scripts/bench-ratio.py DIR [--metric cpu_time|real_time]

DIR holds tapegrad-*.json (bench_models) and libtorch-*.json (bench_models_libtorch), as
scripts/bench writes them (--benchmark_repetitions with aggregates only). For each workload:
tapegrad median / libtorch median, the target and whether it is met. Targets that involve one
library only (linear against raw sgemm, RSS soak, tape bytes) are reported from tapegrad's
numbers. Prints Markdown. Standard library only.
"""
import glob
import json
import os
import platform
import sys

# (name prefix, kind, bound): "ratio" means tapegrad / libtorch time <= bound.
TARGETS = [
    ("add_chain_fwd_bwd/", "ratio", 0.10),
    ("mlp_step/batch:1/", "ratio", 0.12),
    ("mlp_step/batch:32/", "ratio", 0.45),
    ("mlp_step/batch:256/", "ratio", 0.70),
    ("rnn_step/", "ratio", 0.50),
    ("layer_norm_fwd_bwd/256x1024", "ratio", 0.55),  # issue 18 (first match wins)
    ("layer_norm_fwd_bwd/", "ratio", 0.60),
    ("batch_norm_train_fwd_bwd/", "ratio", 0.60),
    ("group_norm_fwd_bwd/", "ratio", 0.60),
]
LINEAR = "linear_fwd_bwd/256x1024->1024"
SGEMM = "raw_sgemm/256x1024x1024"
SOAK_PREFIX = "mlp_soak/"
RSS_LIMIT_KIB = 1024.0
LINEAR_MIN_RATE = 0.95
THREADS_PREFIX = "threads/"  # the same workload with 1 and 2 threads, wall-clock time
THREADS_MIN_SPEEDUP = 1.6


LOADS = []  # 1-minute load average at the start of every program run


def load(pattern):
    """name -> {"median": aggregate row, "context": context}, over all files of a side."""
    runs = {}
    for path in sorted(glob.glob(pattern)):
        with open(path) as f:
            data = json.load(f)
        LOADS.extend(data.get("context", {}).get("load_avg", [])[:1])
        for b in data.get("benchmarks", []):
            name = b.get("run_name", b["name"])
            if name.endswith("/real_time"):  # UseRealTime() workloads: the threads table's
                name = name[: -len("/real_time")]
            kind = b.get("aggregate_name")
            if b.get("error_occurred"):
                runs.setdefault(name, {})["error"] = b.get("error_message", "error")
            # a single-iteration benchmark (the soak) reports its one run without aggregates
            if kind == "median" or (kind is None and b.get("run_type") == "iteration"):
                runs.setdefault(name, {})["median"] = b
                runs[name]["context"] = data.get("context", {})
    return runs


def to_us(b, metric):
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b.get("time_unit", "ns")]
    return b[metric] * scale


def fmt_us(v):
    if v is None:
        return "-"
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.1f} us"


def target_of(name):
    for prefix, kind, bound in TARGETS:
        if name.startswith(prefix):
            return kind, bound
    return None, None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


STREAM_CACHE = "stream_triad/3x1MiB"
STREAM_DRAM = "stream_triad/3x64MiB"
OWN_SGEMM = "own_sgemm/256x1024x1024"


def print_roofline(tg):
    """How close each of tapegrad's workloads runs to the machine's limit: products (FLOP/s
    counter) against the best sgemm rate of the run (OpenBLAS's or tapegrad's packed kernel),
    memory-bound ones (bytes/s counter) against STREAM's triad at the same working-set size."""
    def rate(name, counter):
        b = tg.get(name, {}).get("median")
        return b.get(counter) if b else None
    peak = max([r for r in (rate(SGEMM, "FLOP/s"), rate(OWN_SGEMM, "FLOP/s")) if r] or [0])
    bw = rate(STREAM_CACHE, "bytes/s")
    dram = rate(STREAM_DRAM, "bytes/s")
    if not peak and not bw:
        return
    print(f"\nRoofline (tapegrad): products against the peak sgemm rate of this run "
          f"({peak / 1e9:.1f} GFLOP/s), memory-bound kernels against STREAM's triad on 1 MiB arrays "
          f"({(bw or 0) / 1e9:.1f} GB/s, in cache; from memory: {(dram or 0) / 1e9:.1f} GB/s):\n")
    print("| workload | rate | limit | fraction of the limit |")
    print("|---|---|---|---|")
    for name in tg:
        if name.startswith(("stream_triad/", THREADS_PREFIX, SOAK_PREFIX)) or name in (SGEMM, OWN_SGEMM):
            continue
        flops, by = rate(name, "FLOP/s"), rate(name, "bytes/s")
        if flops and peak:
            print(f"| {name} | {flops / 1e9:.1f} GFLOP/s | {peak / 1e9:.1f} GFLOP/s | {flops / peak:.2f} |")
        elif by and bw:
            print(f"| {name} | {by / 1e9:.1f} GB/s | {bw / 1e9:.1f} GB/s | {by / bw:.2f} |")


def print_threads(tg, lt):
    """The two-thread table (wall-clock medians): each side's time with 1 and 2 threads and the
    speed-up; tapegrad's target is >= THREADS_MIN_SPEEDUP. Returns (targets met, targets)."""
    bases = sorted({n[len(THREADS_PREFIX):].rsplit("/threads:", 1)[0] for n in list(tg) + list(lt)
                    if n.startswith(THREADS_PREFIX)})
    if not bases:
        return 0, 0
    print("\nTwo threads for one run (wall-clock median; tapegrad: set_num_threads, libtorch: "
          "torch::set_num_threads and OpenBLAS threads):\n")
    print("| workload | tapegrad 1 thread | tapegrad 2 threads | speed-up | libtorch 1 thread | "
          "libtorch 2 threads | speed-up | target | met |")
    print("|---|---|---|---|---|---|---|---|---|")
    met = total = 0
    for base in bases:
        cells = []
        speedups = []
        for runs in (tg, lt):
            times = []
            for k in (1, 2):
                b = runs.get(f"{THREADS_PREFIX}{base}/threads:{k}", {}).get("median")
                times.append(to_us(b, "real_time") if b else None)
            sp = times[0] / times[1] if times[0] and times[1] else None
            speedups.append(sp)
            cells += [fmt_us(times[0]), fmt_us(times[1]), f"{sp:.2f}x" if sp else "-"]
        total += 1
        ok = speedups[0] is not None and speedups[0] >= THREADS_MIN_SPEEDUP
        met += ok
        print(f"| {base} | " + " | ".join(cells) + f" | >= {THREADS_MIN_SPEEDUP}x | {'yes' if ok else '**no**'} |")
    return met, total


def main():
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    directory = args[0]
    metric = "cpu_time"
    if "--metric" in args:
        metric = args[args.index("--metric") + 1]
    tg = load(os.path.join(directory, "tapegrad-*.json"))
    lt = load(os.path.join(directory, "libtorch-*.json"))
    if not tg and not lt:
        print(f"bench-ratio: no tapegrad-*.json or libtorch-*.json in {directory}", file=sys.stderr)
        return 1

    ctx = next(iter(tg.values() or lt.values()))["context"]
    lt_ctx = next(iter(lt.values()))["context"] if lt else {}
    load_range = f"{min(LOADS):.2f} to {max(LOADS):.2f}" if LOADS else "unknown"
    print(f"Run of {ctx.get('date', '?')} on {ctx.get('host_name', '?')}: {ctx.get('num_cpus', '?')} CPUs, "
          f"{cpu_model()}; 1-minute load average when each program started: {load_range}.")
    print(f"Metric: median {metric} of the repetitions. libtorch: {lt_ctx.get('library', 'not run')}.")
    print(f"BLAS (both sides load the same OpenBLAS): {ctx.get('blas', 'not recorded')}.\n")

    names = list(tg) + [n for n in lt if n not in tg]
    met_count = total = 0
    print("| workload | tapegrad | libtorch | ratio | target | met |")
    print("|---|---|---|---|---|---|")
    for name in names:
        if name.startswith((SOAK_PREFIX, THREADS_PREFIX, "stream_triad/")):
            continue
        t = tg.get(name, {}).get("median")
        l = lt.get(name, {}).get("median")
        tv = to_us(t, metric) if t else None
        lv = to_us(l, metric) if l else None
        kind, bound = target_of(name)
        ratio = tv / lv if tv and lv else None
        target = f"<= {bound:.2f}" if kind == "ratio" else ""
        met = ""
        if kind == "ratio":
            total += 1
            if ratio is None:
                met = "pending" if tv is None else "no libtorch run"
            else:
                ok = ratio <= bound
                met_count += ok
                met = "yes" if ok else "**no**"
        ratio_s = f"{ratio:.3f}" if ratio is not None else "-"
        if name == LINEAR:
            target, met = "(rate vs raw sgemm below)", ""
        print(f"| {name} | {fmt_us(tv)} | {fmt_us(lv)} | {ratio_s} | {target} | {met} |")

    # linear fwd+bwd is 3 GEMMs of the raw sgemm's size: rate = 3 t_sgemm / t_linear.
    print()
    for side, runs in (("tapegrad", tg), ("libtorch", lt)):
        lin = runs.get(LINEAR, {}).get("median")
        gemm = runs.get(SGEMM, {}).get("median")
        if not lin or not gemm:
            continue
        rate = 3 * to_us(gemm, metric) / to_us(lin, metric)
        line = (f"- {side}: linear 256x1024->1024 forward+backward runs at {rate:.3f} of its raw "
                f"sgemm rate ({fmt_us(to_us(lin, metric))} for 3 GEMMs, one raw sgemm "
                f"{fmt_us(to_us(gemm, metric))})")
        if side == "tapegrad":
            total += 1
            ok = rate >= LINEAR_MIN_RATE
            met_count += ok
            line += f"; target >= {LINEAR_MIN_RATE}: {'met' if ok else '**not met**'}"
        print(line)

    for side, runs in (("tapegrad", tg), ("libtorch", lt)):
        for name, r in runs.items():
            if not name.startswith(SOAK_PREFIX) or "median" not in r:
                continue
            b = r["median"]
            warm, end = b.get("rss_warm_KiB"), b.get("rss_end_KiB")
            growth = b.get("rss_growth_KiB")
            line = (f"- {side}: {name}: RSS {warm / 1024:.1f} MiB after warm-up, {end / 1024:.1f} MiB "
                    f"at the end, growth {growth:.0f} KiB")
            if side == "tapegrad":
                total += 1
                ok = growth <= RSS_LIMIT_KIB and "error" not in r
                met_count += ok
                line += f"; target <= {RSS_LIMIT_KIB:.0f} KiB: {'met' if ok else '**not met**'}"
            print(line)

    print_roofline(tg)
    met, n = print_threads(tg, lt)
    met_count += met
    total += n

    for name, r in tg.items():
        b = r.get("median", {})
        if name.startswith("mlp_step/batch:32/") and "tape_bytes" in b:
            print(f"- tapegrad: {name}: tape peak Tape::bytes_allocated() = {b['tape_bytes'] / 1024:.1f} KiB "
                  f"({b.get('tape_nodes', 0):.0f} nodes)")
    print(f"\nTargets met: {met_count} of {total}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
