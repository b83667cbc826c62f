"""Simulation speed: Lava per sample against Lava per batch, and the reference
simulator against a Keras forward pass of the same ANN per time step.

1. Lava, on the MNIST network of examples/mnist.py (trained here): one Lava
   network per sample (the backend before batching: run_lava with one lane on a
   batch of one) against the whole batch in one network (lanes side by side,
   rounds one after another).  Both are checked against the reference
   simulator bit for bit.
2. Reference simulator against Keras, per sample-step: what SNN Toolbox's INI
   simulator does each time step is a forward pass of the ANN's graph; here the
   ANN's compiled predict function on the same batch, once per step.  Networks:
   the example's CNN, NxTF's tutorial MNIST CNN (Conv16 5x5 s2, Conv32 3x3,
   Conv64 3x3 s2, Conv10 4x4; trained here on the MNIST digits) and NxTF's
   CIFAR pseudo-MobileNet (random weights, random images); the ANNs are in
   benchmarks/ann_models.py.  The reference simulator also runs with every
   product as a matrix product (no windows: the simulator before convolutions
   were computed as convolutions).  SNN Toolbox's INI simulator itself needs
   its own environment: benchmarks/snntoolbox_ini.py measures it on the same
   networks, batch and steps and writes a JSON that --ini prints next to the
   table.
3. Memory: MobileNet v1 (alpha 1, 128x128x3, 1000 classes, random weights,
   Nx layers: AveragePooling 4x4 for the global pooling) runs a batch of 8 for
   50 steps on the reference simulator.

Peak memory: of the reference simulator, the peak of what the run allocates
(tracemalloc, which sees numpy's arrays; the network itself is not counted);
of the process, its peak resident set (everything: TensorFlow, the network).

    PYTHONPATH=. .venv/bin/python benchmarks/simulate.py [--samples 100] [--steps 100] [--ini FILE]
"""
from __future__ import annotations

import argparse
import json
import resource
import time
import tracemalloc

import keras
import numpy as np

from benchmarks.ann_models import cifar_images, cifar_mobilenet_ann, trained_nxtf_mnist_ann
from examples.mnist import train
from hwmodel.simulator import simulate
from mapper.lava_run import default_lanes, run_lava
from mapper.quantize import quantize_network
from nxcompile import (NxAveragePooling2D, NxConv2D, NxDense, NxDepthwiseConv2D, NxFlatten,
                       NxInputLayer, NxModel, convert)
from nxcompile.datasets import mnist_5k
from nxcompile.keras_ir import model_to_ir


def _same(a, b, layer: str) -> bool:
    return (np.array_equal(a.counts[layer], b.counts[layer])
            and np.array_equal(a.voltages[layer], b.voltages[layer]))


def lava_table(compiled, x: np.ndarray, before: int, steps: int) -> None:
    net, part = compiled.network, compiled.partition
    out = net.output_layer
    ref = simulate(net, x, steps, progress=False)
    t0 = time.perf_counter()
    alone = [run_lava(net, part, x[i:i + 1], steps, lanes=1) for i in range(before)]
    t_before = time.perf_counter() - t0
    same_before = all(np.array_equal(a.counts[out][0], ref.counts[out][i])
                      and np.array_equal(a.voltages[out][0], ref.voltages[out][i])
                      for i, a in enumerate(alone))
    lanes = default_lanes(net, len(x))
    t0 = time.perf_counter()
    batch = run_lava(net, part, x, steps)
    t_after = time.perf_counter() - t0
    print(f"Lava, MNIST example network ({compiled.num_cores} cores), {steps} steps per sample")
    print(f"{'run':<40} {'samples':>7} {'wall s':>8} {'samples/s':>10} {'== reference':>13}")
    for label, n, wall, same in (
            ("one network per sample (before)", before, t_before, same_before),
            (f"rounds of {lanes} samples side by side", len(x), t_after, _same(batch, ref, out))):
        print(f"{label:<40} {n:>7} {wall:>8.1f} {n / wall:>10.2f} {str(same):>13}")
    print(f"speed-up: {(len(x) / t_after) / (before / t_before):.1f}x samples/s\n")


def keras_per_step(ann: keras.Model, x: np.ndarray, steps: int) -> float:
    """Seconds per sample-step of the ANN's forward pass on batch x, once per step."""
    ann.predict_on_batch(x)                       # compile and warm up
    t0 = time.perf_counter()
    for _ in range(steps):
        ann.predict_on_batch(x)
    return (time.perf_counter() - t0) / (steps * len(x))


def reference_per_step(net, x: np.ndarray, steps: int) -> tuple:
    """(seconds per sample-step, peak bytes allocated, result) of the reference simulator."""
    simulate(net, x[:2], 2, progress=False)       # numba compiles its kernels on first use
    tracemalloc.start()
    t0 = time.perf_counter()
    result = simulate(net, x, steps, progress=False)
    wall = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return wall / (steps * len(x)), peak, result


def speed_table(rows: list, batch: int, steps: int, ini: dict) -> None:
    """ini: network name -> SNN Toolbox INI microseconds per sample-step
    (benchmarks/snntoolbox_ini.py --json), measured separately; {}: none."""
    print(f"Reference simulator vs Keras forward pass per step: batch {batch}, {steps} steps "
          f"(microseconds per sample-step)")
    print(f"{'network':<30} {'neurons':>8} {'Keras':>8} {'reference':>10} {'x Keras':>8} "
          f"{'matrices':>9} {'x Keras':>8} {'same':>5}" + (f" {'INI':>8} {'x INI':>6}" if ini else ""))
    for name, ann, net, x in rows:
        keras_s = keras_per_step(ann, x, steps)
        ref_s, _, ref = reference_per_step(net, x, steps)
        mat_s, _, mat = reference_per_step(net.with_matrices(), x, steps)
        same = all(np.array_equal(ref.counts[k], mat.counts[k]) for k in ref.counts)
        n = sum(layer.n for layer in net.layers.values())
        line = (f"{name:<30} {n:>8} {keras_s * 1e6:>8.1f} {ref_s * 1e6:>10.1f} "
                f"{keras_s / ref_s:>8.2f} {mat_s * 1e6:>9.1f} {keras_s / mat_s:>8.2f} "
                f"{str(same):>5}")
        if name in ini:
            line += f" {ini[name]:>8.1f} {ini[name] / (ref_s * 1e6):>6.2f}"
        elif ini:
            line += f" {'-':>8} {'-':>6}"
        print(line)
    print()


def mobilenet_v1(size: int = 128) -> NxModel:
    """MobileNet v1, alpha 1, 1000 classes, Nx layers (hard reset)."""
    inp = NxInputLayer(shape=(size, size, 3), name="input")
    x = NxConv2D(32, 3, strides=2, padding="same", name="conv1")(inp.output)
    blocks = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
              (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024)]
    for i, (stride, filters) in enumerate(blocks):
        x = NxDepthwiseConv2D(3, strides=stride, padding="same", name=f"dw{i + 1}")(x)
        x = NxConv2D(filters, 1, name=f"pw{i + 1}")(x)
    x = NxAveragePooling2D(size // 32, name="pool")(x)
    x = NxFlatten(name="flatten")(x)
    return NxModel(inp.output, NxDense(1000, name="output")(x), name="mobilenet_v1")


def memory_line(size: int, batch: int, steps: int) -> None:
    keras.utils.set_random_seed(0)
    net, _ = quantize_network(model_to_ir(mobilenet_v1(size)))
    x = np.random.default_rng(0).random((batch, size, size, 3))
    per_step, peak, result = reference_per_step(net, x, steps)
    synapses = sum(c.num_synapses for c in net.connections)
    spikes = sum(int(c.sum()) for c in result.counts.values())
    print(f"MobileNet v1 {size}x{size}: {sum(l.n for l in net.layers.values())} neurons, "
          f"{synapses} synapses; batch {batch} x {steps} steps on the reference simulator: "
          f"{per_step * batch * steps:.1f} s, {spikes} spikes, run peak {peak / 2**20:.0f} MB, "
          f"process peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MB "
          f"(target < 4096 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100, help="digits in the Lava batch")
    parser.add_argument("--before", type=int, default=3, help="digits run one network each")
    parser.add_argument("--steps", type=int, default=100, help="steps of the Lava runs")
    parser.add_argument("--batch", type=int, default=200, help="batch of the speed table")
    parser.add_argument("--speed-steps", type=int, default=50)
    parser.add_argument("--ini", help="JSON of SNN Toolbox INI times (benchmarks/snntoolbox_ini.py "
                                      "--json) to print next to the speed table")
    parser.add_argument("--mobilenet", type=int, default=128, help="MobileNet input size; 0: skip")
    args = parser.parse_args()

    (x_train, y_train), (x_test, _) = mnist_5k()
    ann = train(x_train, y_train, 15, seed=0)
    compiled = convert(ann, x_train[:1000]).compile()
    lava_table(compiled, x_test[:args.samples], args.before, args.steps)

    nxtf = trained_nxtf_mnist_ann(x_train, y_train)
    keras.utils.set_random_seed(0)
    cifar = cifar_mobilenet_ann()
    x_cifar = cifar_images(args.batch)
    rows = []
    for name, model, x_cal, x in (
            ("MNIST example CNN", ann, x_train[:1000], x_test[:args.batch]),
            ("NxTF tutorial MNIST CNN", nxtf, x_train[:1000], x_test[:args.batch]),
            ("NxTF CIFAR pseudo-MobileNet", cifar, x_cifar, x_cifar)):
        net, _ = quantize_network(model_to_ir(convert(model, x_cal)))
        rows.append((name, model, net, x))
    ini = {}
    if args.ini:
        with open(args.ini) as f:
            measured = json.load(f)
        if (measured["batch"], measured["steps"]) != (args.batch, args.speed_steps):
            parser.error(f"{args.ini} holds INI times for batch {measured['batch']}, "
                         f"{measured['steps']} steps, not {args.batch}, {args.speed_steps}")
        ini = measured["us_per_sample_step"]
    speed_table(rows, args.batch, args.speed_steps, ini)
    if args.mobilenet:
        memory_line(args.mobilenet, 8, 50)


if __name__ == "__main__":
    main()
