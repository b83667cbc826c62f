"""Energy model against NxTF's measured MNIST run (Rueckauer et al. 2022, thesis
tables 3.2-3.5): an MNIST CNN of 6746 parameters and 4314 neurons on 14 cores,
100 time steps, soft reset, frames as bias currents: 6.65 ms and 12.06 mJ per
inference; power: neurocores 16.96 mW static + 59.24 mW dynamic, x86 0.36 +
22.29 mW, 1812 mW in all.

NxTF's model file is not published; this script trains the architecture whose
counts match exactly (Conv16 5x5 stride 2 -> Conv16 3x3 -> AveragePooling 2 ->
Dense 10: 416 + 2320 + 4010 = 6746 parameters, 2304 + 1600 + 400 + 10 = 4314
neurons besides the 784 inputs; an inference from the counts, not a datum) on
the 4000 training digits of nxcompile.datasets.mnist_5k, converts it (soft
reset), compiles it for one Loihi 1 chip, runs the 1000 held-out digits for 100
steps on the reference simulator and prints the estimate of hwmodel.energy term
by term next to NxTF's measurement.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/energy.py [--epochs N]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from hwmodel.energy import CALIBRATED, PRE_SILICON  # noqa: E402
from nxcompile import convert  # noqa: E402
from nxcompile.datasets import mnist_5k  # noqa: E402

STEPS = 100
# NxTF measured, per inference (power x 6.65 ms)
NXTF = {"time ms": 6.65, "neurocore dynamic mJ": 59.24 * 6.65e-3, "neurocore static mJ": 16.96 * 6.65e-3,
        "x86 mJ": (0.36 + 22.29) * 6.65e-3, "total mJ": 12.06, "cores": 14}


def ann(epochs: int, x, y) -> keras.Model:
    keras.utils.set_random_seed(0)
    L = keras.layers
    model = keras.Sequential([
        keras.Input((28, 28, 1)), L.Conv2D(16, 5, strides=2, activation="relu"),
        L.Conv2D(16, 3, activation="relu"), L.AveragePooling2D(2), L.Flatten(),
        L.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    (x_train, y_train), (x_test, y_test) = mnist_5k()
    model = ann(args.epochs, x_train, y_train)
    print(f"ANN: {model.count_params()} parameters, test accuracy "
          f"{model.evaluate(x_test, y_test, verbose=0)[1]:.3f}")
    compiled = convert(model, x_train[:1000], reset="soft").compile(board="loihi1")
    neurons = sum(compiled.ir.layer(n).n for n in compiled.ir.order()[1:])
    result = compiled.run(x_test, STEPS)
    print(f"SNN: {neurons} neurons besides the input, {compiled.num_cores} cores, accuracy "
          f"{np.mean(result.predictions == y_test):.3f} at {STEPS} steps")
    print(f"\n{'per inference':<22}{'NxTF measured':>14}" + "".join(
        f"{name:>22}" for name in ("nxcompile calibrated", "nxcompile pre-silicon")))
    rows = {}
    for costs in (CALIBRATED, PRE_SILICON):
        est = compiled.energy(result, costs)
        e = est.energy_by_component
        rows[costs.name] = {"time ms": est.time * 1e3, "neurocore dynamic mJ": est.dynamic * 1e3,
                            "neurocore static mJ": e["neurocore static"] * 1e3,
                            "x86 mJ": e["x86"] * 1e3, "total mJ": est.energy * 1e3,
                            "cores": compiled.num_cores}
    for key, measured in NXTF.items():
        print(f"{key:<22}{measured:>14.3f}" + "".join(f"{r[key]:>22.3f}" for r in rows.values()))
    est = compiled.energy(result)
    print(f"\nactivity per inference: {est.synaptic_ops:.4g} synaptic ops, {est.spikes:.4g} spikes, "
          f"{est.spike_messages:.4g} spike messages, {est.neuron_updates:.4g} compartment updates")


if __name__ == "__main__":
    main()
