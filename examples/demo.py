"""The README demo: a small Nx CNN on offline MNIST, compiled for Loihi, run on
Lava's bit-accurate simulator and on the reference simulator.

Steps: build the network from Nx layers, train it as a Keras model for a few
short epochs, calibrate it for spiking with nxcompile.convert (percentile
normalization on training digits), compile it (partition + quantize), print
the partition report, run a few test digits on both simulators and print the
output, the predictions and whether the two simulators agree bit for bit, then
the accuracy of the ANN and of the SNN (reference simulator) on 1000 test digits.
"""
from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from nxcompile import NxConv2D, NxDense, NxFlatten, NxInputLayer, NxModel, convert  # noqa: E402
from nxcompile.datasets import mnist_5k  # noqa: E402

NUM_STEPS = 100
NUM_LAVA_SAMPLES = 3


def build_model() -> NxModel:
    inp = NxInputLayer(shape=(28, 28, 1), resetMode="soft", name="input")
    x = NxConv2D(8, 5, strides=2, resetMode="soft", name="conv1")(inp.output)
    x = NxConv2D(16, 3, strides=2, resetMode="soft", name="conv2")(x)
    x = NxFlatten(name="flatten")(x)
    out = NxDense(10, activation="linear", resetMode="soft", name="dense")(x)
    return NxModel(inp.output, out, name="mnist_cnn")


def main() -> None:
    (x_train, y_train), (x_test, y_test) = mnist_5k()
    model = build_model()
    model.summary()
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, epochs=5, batch_size=64, verbose=0)
    ann_acc = float(np.mean(model.predict(x_test, verbose=0).argmax(1) == y_test))
    print(f"\nANN (Keras) test accuracy on {len(x_test)} digits: {ann_acc:.3f}")

    snn = convert(model, x_train[:1000])        # 99.9th-percentile normalization
    t0 = time.perf_counter()
    compiled = snn.compile(board="loihi1")
    print(f"\ncompiled in {time.perf_counter() - t0:.2f} s\n")
    print(compiled.report())

    x = x_test[:NUM_LAVA_SAMPLES]
    t0 = time.perf_counter()
    lava = compiled.run(x, num_steps=NUM_STEPS, backend="lava")
    t_lava = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = compiled.run(x, num_steps=NUM_STEPS, backend="reference")
    t_ref = time.perf_counter() - t0
    print(f"\n{NUM_LAVA_SAMPLES} test digits, {NUM_STEPS} time steps "
          f"(Lava {t_lava:.1f} s, reference {t_ref:.2f} s)")
    for i in range(NUM_LAVA_SAMPLES):
        print(f"  digit {y_test[i]}: Lava output spikes {lava.spike_counts[i].tolist()} -> "
              f"class {lava.predictions[i]}; reference -> class {ref.predictions[i]}")
    same = (np.array_equal(lava.spike_counts, ref.spike_counts)
            and np.array_equal(lava.voltages, ref.voltages))
    print(f"Lava and reference simulator agree bit for bit: {same}")
    full = compiled.run(x_test, num_steps=NUM_STEPS, backend="reference")
    print(f"ANN accuracy {ann_acc:.3f}; SNN (reference simulator, {NUM_STEPS} steps) accuracy "
          f"{np.mean(full.predictions == y_test):.3f} on {len(x_test)} test digits")
    if not same:
        raise SystemExit("Lava and the reference simulator disagree")


if __name__ == "__main__":
    main()
