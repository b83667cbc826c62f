"""Partition benchmark: four networks (and VGG-11 with --vgg) built with Nx layers (random weights are
enough to partition), each compiled for Loihi 1 chips (board nahuku32), printed as
one table next to NxTF's published numbers (Rueckauer et al. 2022).

Columns: cores, chips (cores per chip), the lower bound on cores (partitioner.bounds), cores /
lower bound, off-chip axon routes after placement (and with chips filled in core
order, NxTF's way), compile seconds (NxModel.compile: Keras -> IR, partition,
quantize) and the peak Python memory of one compile (tracemalloc, numpy arrays
included).

Run:  PYTHONPATH=. .venv/bin/python benchmarks/partition.py [--beam-width M] [--vgg]
"""
from __future__ import annotations

import argparse
import os
import time
import tracemalloc
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from nxcompile import (NxAveragePooling2D, NxConv2D, NxDense, NxDepthwiseConv2D,  # noqa: E402
                       NxFlatten, NxInputLayer, NxModel)
from partitioner.report import chip_loads  # noqa: E402

BOARD = "nahuku32"


def fc_nmnist() -> NxModel:
    """FC 1156-512-10 (the N-MNIST SLAYER model), spike input, 8-bit weights, hard reset."""
    inp = NxInputLayer(shape=(1156,), inputMode="spikes", name="input")
    x = NxDense(512, name="hidden")(inp.output)
    return NxModel(inp.output, NxDense(10, name="output")(x), name="fc_nmnist")


def mnist_cnn() -> NxModel:
    """NxTF tutorial a: 28x28x1 -> Conv16 5x5 s2 -> Conv32 3x3 -> Conv64 3x3 s2 -> Conv10 4x4."""
    inp = NxInputLayer(shape=(28, 28, 1), name="input")
    x = NxConv2D(16, 5, strides=2, name="conv1")(inp.output)
    x = NxConv2D(32, 3, name="conv2")(x)
    x = NxConv2D(64, 3, strides=2, name="conv3")(x)
    return NxModel(inp.output, NxConv2D(10, 4, name="conv4")(x), name="mnist_cnn")


def cifar_mobilenet() -> NxModel:
    """NxTF tutorial b: pseudo-MobileNet, soft reset everywhere, 'same' padding."""
    soft = {"resetMode": "soft"}
    inp = NxInputLayer(shape=(32, 32, 3), name="input", **soft)
    x = NxConv2D(32, 3, strides=2, padding="same", name="conv1", **soft)(inp.output)
    blocks = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256)]
    for i, (stride, filters) in enumerate(blocks):
        x = NxDepthwiseConv2D(3, strides=stride, padding="same", name=f"dw{i + 1}", **soft)(x)
        x = NxConv2D(filters, 1, padding="same", name=f"pw{i + 1}", **soft)(x)
    x = NxAveragePooling2D(2, name="pool", **soft)(x)
    x = NxFlatten(name="flatten")(x)
    return NxModel(inp.output, NxDense(10, name="output", **soft)(x), name="cifar_mobilenet")


def dense_1000() -> NxModel:
    """Dense 1000-1000-1000-24 (a user's SNN-toolbox network)."""
    inp = NxInputLayer(shape=(1000,), name="input")
    x = NxDense(1000, name="dense1")(inp.output)
    x = NxDense(1000, name="dense2")(x)
    return NxModel(inp.output, NxDense(24, name="output")(x), name="dense_1000")


def vgg11_cifar() -> NxModel:
    """VGG-11 for CIFAR-10: 32x32x3; 3x3 'same' convs 64, M, 128, M, 256, 256, M, 512,
    512, M, 512, 512, M (M: 2x2 average pooling, as nxcompile has no max pooling),
    then Dense 10.  Its 3x3x512 fan-in (4608 sources) exceeds a core's 4096 input
    axons with one axon per source: it needs pixel population axons."""
    inp = NxInputLayer(shape=(32, 32, 3), name="input")
    x, n = inp.output, 0
    for i, spec in enumerate((64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")):
        if spec == "M":
            x = NxAveragePooling2D(2, name=f"pool{i}")(x)
        else:
            n += 1
            x = NxConv2D(spec, 3, padding="same", name=f"conv{n}")(x)
    x = NxFlatten(name="flatten")(x)
    return NxModel(inp.output, NxDense(10, name="output")(x), name="vgg11_cifar")


NETWORKS = (
    ("FC 1156-512-10 (N-MNIST)", fc_nmnist, "30 cores (11 input + 18 hidden + 1 output)"),
    ("MNIST CNN (tutorial a)", mnist_cnn, "not published"),
    ("CIFAR-10 pseudo-MobileNet (tutorial b)", cifar_mobilenet, "157 cores on 2 chips (128 + 29)"),
    ("Dense 1000-1000-1000-24", dense_1000, "mapping took 84.5 s and 4.5 GB"),
)


def measure(build, options: dict) -> dict:
    """Compile once timed, once under tracemalloc; return the table row."""
    model = build()
    t0 = time.perf_counter()
    compiled = model.compile(board=BOARD, **options)
    seconds = time.perf_counter() - t0
    tracemalloc.start()
    model.compile(board=BOARD, **options)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    p = compiled.partition
    return {"cores": p.num_cores, "chips": f"{p.num_chips} ({chip_loads(p)})",
            "lower bound": p.lower_bound_cores,
            "cores/bound": f"{p.num_cores / p.lower_bound_cores:.2f}",
            "off-chip routes (in order)": f"{p.offchip_routes} ({p.sequential_offchip_routes})",
            "compile s": f"{seconds:.2f}", "peak MB": f"{peak / 2 ** 20:.0f}"}


VGG = ("VGG-11 CIFAR-10 (32x32x3, 3x3 convs to 512 channels)", vgg11_cifar,
       "not published (fan-in 4608 > 4096 input axons without population axons)")


def main() -> None:
    # random weights trip the quantizer's dendritic-accumulator warning; it is
    # about the integer network, not the partition
    warnings.filterwarnings("ignore", message=".*dendritic accumulator")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--beam-width", type=int, default=4, help="M of the beam search")
    parser.add_argument("--vgg", action="store_true",
                        help="also VGG-11 for CIFAR-10 (about 3 min per compile here, compiled twice)")
    args = parser.parse_args()
    rows = []
    networks = NETWORKS + ((VGG,) if args.vgg else ())
    for name, build, nxtf in networks:
        rows.append({"network": name, **measure(build, {"beam_width": args.beam_width}),
                     "NxTF published": nxtf})
    cols = list(rows[0])
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print(f"Loihi 1 ({BOARD}), beam width M={args.beam_width}")
    print(" | ".join(c.ljust(width[c]) for c in cols))
    print("-|-".join("-" * width[c] for c in cols))
    for r in rows:
        print(" | ".join(str(r[c]).ljust(width[c]) for c in cols))


if __name__ == "__main__":
    main()
