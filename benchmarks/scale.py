"""Scale benchmark: Keras' MobileNet v1 (alpha 1, 1000 classes, random weights,
calibrated on uniform noise) converted with hard reset and compiled at several
input sizes, each in a fresh subprocess, printed as one table with the fitted
growth exponents.

Columns: neurons, synapses (the validator's count of stored synapses before
sharing, summed over connections), cores, the lower bound on cores
(partitioner.bounds) and cores / bound, chips, seconds per stage (convert:
Keras -> IR with calibration; quantize; bounds + search; placement;
validation; total), the child's peak RSS (ru_maxrss of its own process:
imports and Keras included) and the compile MB (peak RSS minus the RSS just
before convert).  Exponents: least-squares slopes of log(total compile s) and
log(compile MB) against log(synapses), over the sizes run.

Boards: nahuku32 up to 128x128 input, pohoiki_springs (768 chips) beyond.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/scale.py [--sizes 32 64 96 128 160 224]
      (each size above 64 takes several GB; run those alone on a shared machine)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEFAULT_SIZES = (32, 64, 96, 128, 160, 224)
STAGES = ("convert", "quantize", "bounds", "search", "placement", "validation")


def board_for(size: int) -> str:
    return "nahuku32" if size <= 128 else "pohoiki_springs"


def _rss_mb() -> float:
    """Resident set size of this process now, MB."""
    with open("/proc/self/statm") as f:
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


def compile_one(size: int) -> dict:
    """Convert and compile MobileNet at size x size; the table row (one process)."""
    import time
    import warnings

    import keras

    from nxcompile import convert

    warnings.filterwarnings("ignore", message=".*dendritic accumulator")
    keras.utils.set_random_seed(0)
    ann = keras.applications.MobileNet(input_shape=(size, size, 3), weights=None)
    x = np.random.default_rng(0).uniform(size=(16, size, size, 3)).astype(np.float32)
    before = _rss_mb()
    t0 = time.perf_counter()
    snn = convert(ann, x, reset="hard")
    t1 = time.perf_counter()
    compiled = snn.compile(board=board_for(size))
    t2 = time.perf_counter()
    p = compiled.partition
    return {"size": size, "board": board_for(size),
            "neurons": sum(layer.n for layer in compiled.ir.layers()),
            "synapses": synapses(compiled.ir), "cores": p.num_cores, "bound": p.lower_bound_cores,
            "chips": p.num_chips, "convert": t1 - t0,
            **{k: compiled.timings.get(k, 0.0) for k in STAGES[1:]},
            "total": t2 - t0, "before_mb": before}


def run_child(size: int) -> dict:
    """compile_one in a fresh interpreter; adds its peak RSS (MB)."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(size)],
                            stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
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
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(compile_one(args.child)))
        return
    cols = ("size", "board", "neurons", "synapses", "cores", "bound", "cores/bound", "chips",
            *(f"{s} s" for s in STAGES), "total s", "peak MB", "compile MB")
    print(" | ".join(cols), flush=True)
    print("-|-".join("-" * len(c) for c in cols), flush=True)
    rows = []
    for size in args.sizes:
        r = run_child(size)
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


if __name__ == "__main__":
    main()
