"""Simulation speed on the MNIST network of examples/mnist.py: the reference
simulator (batched numpy) against Lava's bit-accurate CPU simulator.

Trains and converts the example's CNN, then runs the same test digits for the
same number of steps on both backends (checking they agree bit for bit), and
the whole 1000-digit test set on the reference simulator.  Prints a table:
wall time, samples per second, time steps per second (sample-steps: one
sample advanced one step) and peak memory, and the speed ratio.

Peak memory: for the reference simulator, the peak of the memory allocated
during the run (tracemalloc, which sees numpy's arrays); for Lava, the largest
resident set of the processes Lava forks to run the process models (measured by
the OS when they exit; tracemalloc would slow Lava's many small Python
allocations and skew its timing).  A worker is forked from this process, so its
resident set includes pages it shares with it (TensorFlow, the data): the two
figures measure different things and only bound what each backend needs.

    PYTHONPATH=. .venv/bin/python benchmarks/simulate.py [--samples 5] [--steps 100]
"""
from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np

from examples.mnist import train
from nxcompile import convert
from nxcompile.datasets import mnist_5k


def measure(compiled, x, steps: int, backend: str) -> dict:
    """Wall time, peak memory (bytes, module doc) and result of one run."""
    if backend == "reference":
        tracemalloc.start()
    t0 = time.perf_counter()
    result = compiled.run(x, steps, backend=backend)
    wall = time.perf_counter() - t0
    if backend == "reference":
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    else:
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024   # KiB on Linux
    return {"samples": len(x), "steps": steps, "wall": wall, "peak": peak, "result": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=5, help="digits run on both backends")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()

    (x_train, y_train), (x_test, _) = mnist_5k()
    ann = train(x_train, y_train, args.epochs, seed=0)
    compiled = convert(ann, x_train[:1000]).compile()
    print(f"MNIST network: {sum(l.n for l in compiled.network.layers.values())} neurons, "
          f"{sum(c.weights.nnz for c in compiled.network.connections)} synapses, "
          f"{compiled.num_cores} cores\n")

    x = x_test[:args.samples]
    lava = measure(compiled, x, args.steps, "lava")
    ref = measure(compiled, x, args.steps, "reference")
    full = measure(compiled, x_test, args.steps, "reference")
    same = (np.array_equal(lava["result"].spike_counts, ref["result"].spike_counts)
            and np.array_equal(lava["result"].voltages, ref["result"].voltages))

    print(f"{'backend':<22} {'samples':>7} {'steps':>5} {'wall s':>8} {'samples/s':>10} "
          f"{'steps/s':>10} {'peak MB':>8}")
    for run, label in ((lava, "lava"), (ref, "reference (batched)"), (full, "reference (batched)")):
        print(f"{label:<22} {run['samples']:>7} {run['steps']:>5} {run['wall']:>8.2f} "
              f"{run['samples'] / run['wall']:>10.2f} "
              f"{run['samples'] * run['steps'] / run['wall']:>10.0f} {run['peak'] / 2**20:>8.1f}")
    print(f"\nreference / Lava speed on the same {args.samples} samples: "
          f"{lava['wall'] / ref['wall']:.0f}x; Lava and reference agree bit for bit: {same}")
    print(f"reference, {len(x_test)} test digits x {args.steps} steps: {full['wall']:.1f} s "
          f"(target < 60 s)")
    if not same:
        raise SystemExit("Lava and the reference simulator disagree")


if __name__ == "__main__":
    main()
