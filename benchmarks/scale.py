"""Scale benchmark: Keras' MobileNet v1 (alpha 1, 1000 classes, random weights,
calibrated on uniform noise) converted with hard reset (or --reset soft: two
compartments per neuron) and compiled at several input sizes, each in a fresh
subprocess, printed as one table with the fitted growth exponents, then a
table of the chip placement of every size.

Columns: neurons, synapses (the IR's float synapses before sharing: every
kernel tap on a real pixel, summed over connections; not the integer count),
cores, the lower bound on cores
(partitioner.bounds) and cores / bound, chips, seconds per stage (convert:
Keras -> IR with calibration; quantize; bounds + search; placement;
validation; total), the child's peak RSS (ru_maxrss of its own process:
imports and Keras included) and the compile MB (peak RSS minus the RSS just
before convert).  Exponents: least-squares slopes of log(total compile s) and
log(compile MB) against log(synapses), over the sizes run.

Placement table: the axon routes between chips after placement against those
of chips filled in core order, the placement method and its seconds
(--placement-s: the compile's placement_time_limit, default 1 s).

Boards: nahuku32 up to 128x128 input, pohoiki_springs (768 chips) beyond.
A child whose RSS passes --max-mb (default 11000) is killed (sampled every 0.2 s).

Run:  PYTHONPATH=. .venv/bin/python benchmarks/scale.py [--sizes 32 64 96 128 160 224]
                                                        [--reset soft] [--placement-s 1]
                                                        [--max-mb 11000]
      (each size above 64 takes several GB; run those alone on a shared machine;
      MobileNet-512 soft: --sizes 512 --reset soft --placement-s 30)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_SIZES = (32, 64, 96, 128, 160, 224)
STAGES = ("convert", "quantize", "bounds", "search", "placement", "validation")


def board_for(size: int) -> str:
    return "nahuku32" if size <= 128 else "pohoiki_springs"


def _rss_mb(pid: "int | str" = "self") -> float:
    """Resident set size of a process (this one by default) now, MB."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def synapses(ir) -> int:
    """Synapses of the IR before sharing: window connections counted from their
    geometry (taps on real pixels x source channels x target channels each),
    others from their matrix."""
    from nxcompile.ir import connection_matrix
    total = 0
    for src, dst in ir.graph.edges:
        spec, shape = ir.connection(src, dst), tuple(ir.layer(dst).shape)
        if spec.op.window:
            (oy, _, _), (ox, _, _) = spec.op.window_axes(spec, shape)
            first, width = spec.op.target_channels(spec, shape[2])
            total += len(oy) * len(ox) * int((first < shape[2]).sum()) * width
        else:
            total += connection_matrix(spec, shape).nnz
    return total


def compile_one(size: int, reset: str, placement_s: float) -> dict:
    """Convert and compile MobileNet at size x size; the table row (one process)."""
    import warnings

    import keras

    from nxcompile import convert

    warnings.filterwarnings("ignore", message=".*dendritic accumulator")
    keras.utils.set_random_seed(0)
    ann = keras.applications.MobileNet(input_shape=(size, size, 3), weights=None)
    x = np.random.default_rng(0).uniform(size=(16, size, size, 3)).astype(np.float32)
    before = _rss_mb()
    t0 = time.perf_counter()
    snn = convert(ann, x, reset=reset)
    t1 = time.perf_counter()
    compiled = snn.compile(board=board_for(size), placement_time_limit=placement_s)
    t2 = time.perf_counter()
    p = compiled.partition
    return {"size": size, "reset": reset, "board": board_for(size),
            "neurons": sum(layer.n for layer in compiled.ir.layers()),
            "synapses": synapses(compiled.ir), "cores": p.num_cores, "bound": p.lower_bound_cores,
            "chips": p.num_chips, "convert": t1 - t0,
            **{k: compiled.timings.get(k, 0.0) for k in STAGES[1:]},
            "total": t2 - t0, "before_mb": before, "offchip": p.offchip_routes,
            "core_order_offchip": p.sequential_offchip_routes, "placement_method": p.placement}


def _watch(proc: subprocess.Popen, max_mb: float, killed: list) -> None:
    """Kill `proc` once its RSS passes max_mb (checked every 0.2 s)."""
    while proc.poll() is None:
        try:
            rss = _rss_mb(proc.pid)
        except (FileNotFoundError, ProcessLookupError):
            return
        if rss > max_mb:
            killed.append(rss)
            proc.kill()
            return
        time.sleep(0.2)


def run_child(size: int, reset: str, placement_s: float, max_mb: float) -> dict:
    """compile_one in a fresh interpreter, killed above max_mb of RSS; adds its
    peak RSS (MB)."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(size), "--reset", reset,
                             "--placement-s", str(placement_s)], stdout=subprocess.PIPE, text=True)
    killed = []
    watch = threading.Thread(target=_watch, args=(proc, max_mb, killed), daemon=True)
    watch.start()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if killed:
        raise SystemExit(f"size {size}: child killed at {killed[0]:.0f} MB RSS (--max-mb {max_mb:.0f})")
    if proc.returncode:
        raise SystemExit(f"size {size}: child exited with {proc.returncode}")
    row = json.loads(out.strip().splitlines()[-1])
    row["peak_mb"] = usage.ru_maxrss / 1024
    row["compile_mb"] = row["peak_mb"] - row["before_mb"]
    return row


def slope(x, y) -> float:
    """Least-squares slope of log(y) against log(x)."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES),
                        help="input heights/widths to compile")
    parser.add_argument("--reset", choices=("hard", "soft"), default="hard",
                        help="reset of the hidden neurons (soft: two compartments per neuron)")
    parser.add_argument("--placement-s", type=float, default=1.0,
                        help="placement_time_limit of the compile, seconds (its default: 1)")
    parser.add_argument("--max-mb", type=float, default=11000,
                        help="kill a child whose RSS passes this many MB")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(compile_one(args.child, args.reset, args.placement_s)))
        return
    print(f"MobileNet v1, reset {args.reset}", flush=True)
    cols = ("size", "board", "neurons", "synapses", "cores", "bound", "cores/bound", "chips",
            *(f"{s} s" for s in STAGES), "total s", "peak MB", "compile MB")
    print(" | ".join(cols), flush=True)
    print("-|-".join("-" * len(c) for c in cols), flush=True)
    rows = []
    for size in args.sizes:
        r = run_child(size, args.reset, args.placement_s, args.max_mb)
        rows.append(r)
        print(" | ".join([str(r["size"]), r["board"], str(r["neurons"]), str(r["synapses"]),
                          str(r["cores"]), str(r["bound"]), f"{r['cores'] / r['bound']:.3f}",
                          str(r["chips"]), *(f"{r[s]:.2f}" for s in STAGES), f"{r['total']:.1f}",
                          f"{r['peak_mb']:.0f}", f"{r['compile_mb']:.0f}"]), flush=True)
    if len(rows) >= 2:
        syn = [r["synapses"] for r in rows]
        print(f"exponent vs synapses: time {slope(syn, [r['total'] for r in rows]):.2f}, "
              f"compile memory {slope(syn, [max(r['compile_mb'], 1) for r in rows]):.2f}, "
              f"peak RSS {slope(syn, [r['peak_mb'] for r in rows]):.2f}")
    cols = ("size", "chips", "off-chip routes", "core order", "off-chip / core order",
            "placement", "placement s")
    print("\n" + " | ".join(cols))
    print("-|-".join("-" * len(c) for c in cols))
    for r in rows:
        ratio = r["offchip"] / r["core_order_offchip"] if r["core_order_offchip"] else 1.0
        print(" | ".join([str(r["size"]), str(r["chips"]), str(r["offchip"]),
                          str(r["core_order_offchip"]), f"{ratio:.3f}", r["placement_method"],
                          f"{r['placement']:.2f}"]))


if __name__ == "__main__":
    main()
