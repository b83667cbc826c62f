"""Keras graphs through convert() and compile: an Inception-style network
(1x1, 3x3 and pooled branches, Concatenate), the ResNet-style MNIST CNN of
examples/resnet_mnist.py and Keras' own MobileNet v1
(keras.applications.MobileNet: ZeroPadding2D, DepthwiseConv2D, BN, ReLU6, GAP,
a 1x1-conv classifier, Reshape and softmax), all with random weights and
calibrated on uniform noise (the partition does not depend on the weights'
values beyond their sparsity).  Prints neurons, cores, chips, the lower bound
and the convert + compile time of each.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/keras_graphs.py [--mobilenet-size 128]
      (--mobilenet-size 0 skips MobileNet: at 128x128 its compile takes minutes
      and several GB)
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from examples.resnet_mnist import build_ann as resnet  # noqa: E402
from nxcompile import convert  # noqa: E402

L = keras.layers


def inception() -> keras.Model:
    """32x32x3 -> Conv32 s2 -> two Inception blocks (1x1 | 1x1-3x3 | 3x3 avg pool-1x1,
    concatenated) -> GAP -> Dense 10."""
    inp = keras.Input((32, 32, 3))
    x = L.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="stem")(inp)
    for i, width in enumerate((16, 32)):
        a = L.Conv2D(width, 1, activation="relu", name=f"inc{i}_1x1")(x)
        b = L.Conv2D(width, 1, activation="relu", name=f"inc{i}_3x3_reduce")(x)
        b = L.Conv2D(width, 3, padding="same", activation="relu", name=f"inc{i}_3x3")(b)
        c = L.AveragePooling2D(3, strides=1, padding="same", name=f"inc{i}_pool")(x)
        c = L.Conv2D(width // 2, 1, activation="relu", name=f"inc{i}_pool_proj")(c)
        x = L.Concatenate(name=f"inc{i}_concat")([a, b, c])
    out = L.Dense(10, activation="softmax", name="logits")(L.GlobalAveragePooling2D()(x))
    return keras.Model(inp, out, name="inception")


def measure(name: str, ann: keras.Model, board: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(64, *ann.inputs[0].shape[1:])).astype(np.float32)
    t0 = time.perf_counter()
    compiled = convert(ann, x).compile(board=board)
    print(f"{name}: {compiled.ir.graph.number_of_nodes()} neuron layers, "
          f"{sum(layer.n for layer in compiled.ir.layers())} neurons, {compiled.num_cores} cores "
          f"on {compiled.num_chips} chip(s), lower bound {compiled.lower_bound_cores} "
          f"({compiled.num_cores / compiled.lower_bound_cores:.2f}x); convert + compile "
          f"{time.perf_counter() - t0:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mobilenet-size", type=int, default=128)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    measure("Inception-style 32x32x3", inception(), "nahuku32")
    measure("ResNet-style MNIST (examples/resnet_mnist.py)", resnet(16), "nahuku32")
    if args.mobilenet_size:
        size = args.mobilenet_size
        measure(f"MobileNet v1 {size}x{size}", keras.applications.MobileNet(
            input_shape=(size, size, 3), weights=None), "nahuku32")


if __name__ == "__main__":
    main()
