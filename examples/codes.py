"""Spike codes side by side: accuracy, synaptic operations and energy per
inference against time steps, for the examples/mnist.py network (offline MNIST,
4000 train / 1000 held-out digits) and a small CNN on scikit-learn's 8x8 digits.

Codes (CODES: code name -> function(Data, steps) -> one row per step count, a
dict as run_rows makes it: steps, total_steps, accuracy, ann_accuracy,
agreement, spikes, synaptic_ops, dynamic_uJ, energy_uJ, time_ms, edp_uJ_ms, ...;
add a code by adding an entry):
  rate         Rueckauer et al. 2017: a ReLU ANN, layers scaled by the 99.9th
               activation percentile, neurons start at v = 0 (convert's default).
  low_latency  Bu et al. 2022: the ANN trained with QuantizedClippedReLU
               (L = 8 levels, learned clip), converted with
               method='low_latency' (the clips as scales, reset by
               subtraction, neurons start at half threshold).
  qcfs_rate    the same QCFS-trained ANN with the rate method (v starts at 0):
               what the half-threshold start alone buys.
  ttfs         the ReLU ANN of `rate` as single-spike neurons (convert(...,
               code='ttfs', steps_per_window=T), nxcompile.ttfs: every neuron
               fires at most once, layer n in its own window of T + 1 steps);
               T is its time resolution (3 at least: T = 2 is skipped) and a
               run lasts the network's num_steps (about (T + 1) per layer).

Time steps.  Every synaptic hop takes one step on Loihi, so the readout first
sees the input `depth` steps after the start (depth = hops on the longest path
from the input layer to the readout, 4 for both networks here).  Every code is
run for T + depth steps for T integration steps, and the class is the argmax
of the readout's potential (spikes x threshold + v) at the end.  The low-latency
code starts every layer d hops deep d steps of bias lower (nxcompile.low_latency),
so its readout holds T steps of input and T of bias; the rate codes start at 0
and integrate their biases from the first step, as convert's default always
has.  Energy, time and EDP per inference (hwmodel.energy, SANA-FE's calibrated
costs) are those of the whole T + depth steps.  A few test samples of every
converted code also run on Lava (--lava-samples) and must give the reference
simulator's spike counts and voltages (exit status 1 otherwise).  Trained ANN
weights are cached in --out (delete them to retrain).

    PYTHONPATH=. .venv/bin/python examples/codes.py --out out/codes
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import time
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from examples.mnist import build_ann, check_lava, train  # noqa: E402
from examples.ttfs_mnist import lava_equals_reference  # noqa: E402
from nxcompile import QuantizedClippedReLU, convert  # noqa: E402
from nxcompile.datasets import mnist_5k  # noqa: E402
from nxcompile.low_latency import hops_from_input  # noqa: E402

STEPS = (2, 4, 8, 16, 32, 64)
LEVELS = 8              # QuantizedClippedReLU levels: the integration steps it is trained for
INITIAL_CLIP = 2.0      # its clip before training (BatchNormalization precedes it)
PERCENTILE = 99.9       # the rate code's activation percentile
CALIBRATION = 1000      # training samples the conversion measures activations on


@dataclass
class Data:
    """A data set, the ANN architecture for it and its training length."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    build: object        # build(activation) -> keras.Model; activation(name) -> a layer
    epochs: int
    cache: pathlib.Path
    seed: int = 0
    lava_samples: int = 2   # test samples also run on Lava (checked equal to the reference)


def build_digits_ann(activation=None) -> keras.Model:
    """examples/mnist.py's network for 8x8 digits: a 3x3 first convolution, stride 1."""
    return build_ann(activation, shape=(8, 8, 1), kernel=3, strides=1, name="digits_cnn")


def digits(seed: int = 0, num_test: int = 497):
    """scikit-learn's 8x8 digits (1797), pixels 0..16 scaled to [0, 1]: a seeded
    shuffle, the last num_test held out."""
    from sklearn.datasets import load_digits
    bunch = load_digits()
    order = np.random.default_rng(seed).permutation(len(bunch.target))
    x = (bunch.images[order] / 16.0).astype(np.float32)[..., None]
    y = bunch.target[order].astype(np.int64)
    return (x[:-num_test], y[:-num_test]), (x[-num_test:], y[-num_test:])


def quantized_relu(name: str) -> QuantizedClippedReLU:
    return QuantizedClippedReLU(levels=LEVELS, clip=INITIAL_CLIP, name=name)


def trained(data: Data, ann: str) -> keras.Model:
    """The ANN of kind `ann` ('relu' or 'qcfs') for data: from the cache, else
    trained (examples/mnist.py's train) and cached."""
    path = data.cache / f"{data.name}_{ann}_e{data.epochs}_s{data.seed}.weights.h5"
    activation = quantized_relu if ann == "qcfs" else None
    if path.exists():       # weights only: a loaded Sequential's layers have two call nodes
        model = data.build(activation)
        model.load_weights(path)
        return model
    t0 = time.perf_counter()
    model = train(data.x_train, data.y_train, data.epochs, data.seed,
                  build=lambda: data.build(activation))
    print(f"  trained the {ann} ANN for {data.name} in {time.perf_counter() - t0:.0f} s")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save_weights(path)
    return model


def depth(compiled) -> int:
    """Synaptic hops (one step each) on the longest path from the input to the readout."""
    return hops_from_input(compiled.ir)[compiled.network.output_layer]


def converted_rows(data: Data, ann: str, method: str, steps) -> list:
    """Rows (run_rows) of the ANN of kind `ann` converted with `method`."""
    model = trained(data, ann)
    ann_pred = model.predict(data.x_test, verbose=0).argmax(axis=1)
    snn = convert(model, data.x_train[:CALIBRATION], percentile=PERCENTILE, method=method)
    compiled = snn.compile(board="loihi1")
    if data.lava_samples and not check_lava(compiled, data.x_test[:data.lava_samples],
                                            LEVELS + depth(compiled)):
        raise SystemExit(f"{data.name}, {ann} ANN, method {method}: Lava and the reference "
                         "simulator disagree")
    return run_rows(compiled, data, ann_pred, steps)


def run_rows(compiled, data: Data, ann_pred: np.ndarray, steps) -> list:
    """Per integration step count T: accuracy, agreement with the ANN, spikes,
    synaptic ops, energy (dynamic and total), time and EDP per inference of a
    run of T + depth steps on the reference simulator."""
    hops, rows = depth(compiled), []
    for t in steps:
        t0 = time.perf_counter()
        result = compiled.run(data.x_test, t + hops)
        rows.append(row(t, t + hops, result, compiled.energy(result), data, ann_pred,
                        compiled.num_cores, t0))
    return rows


def row(t: int, total_steps: int, result, est, data: Data, ann_pred: np.ndarray, cores: int,
        t0: float) -> dict:
    """One table row: a run of total_steps steps for T = t (its result and energy
    estimate est) against the labels and the ANN's classes; t0: when its work began."""
    pred = result.predictions
    return {"steps": t, "total_steps": total_steps,
            "accuracy": float(np.mean(pred == data.y_test)),
            "ann_accuracy": float(np.mean(ann_pred == data.y_test)),
            "agreement": float(np.mean(pred == ann_pred)),
            "spikes": est.spikes, "synaptic_ops": est.synaptic_ops,
            "dynamic_uJ": est.dynamic * 1e6, "energy_uJ": est.energy * 1e6,
            "time_ms": est.time * 1e3, "edp_uJ_ms": est.edp * 1e9,
            "cores": cores, "simulation_s": time.perf_counter() - t0}


def ttfs_rows(data: Data, steps) -> list:
    """Rows (run_rows' keys) of the ReLU ANN as a TTFS network per window T >= 3;
    the first data.lava_samples test samples of T = 8 also run on Lava (checked
    equal to the reference, every layer's spike trains and the readout's voltage)."""
    model = trained(data, "relu")
    ann_pred = model.predict(data.x_test, verbose=0).argmax(axis=1)
    rows = []
    for t in (t for t in steps if t >= 3):
        t0 = time.perf_counter()
        net = convert(model, data.x_train[:CALIBRATION], percentile=100.0, code="ttfs",
                      steps_per_window=t)
        compiled = net.compile(board="loihi1")
        if t == LEVELS and data.lava_samples and not lava_equals_reference(
                net, compiled, data.x_test[:data.lava_samples]):
            raise SystemExit(f"{data.name}, TTFS T={t}: Lava and the reference disagree")
        result = compiled.run(data.x_test)
        rows.append(row(t, net.num_steps, result, compiled.energy(result), data, ann_pred,
                        compiled.compiled.num_cores, t0))
    return rows


CODES = {
    "rate": lambda data, steps: converted_rows(data, "relu", "rate", steps),
    "low_latency": lambda data, steps: converted_rows(data, "qcfs", "low_latency", steps),
    "qcfs_rate": lambda data, steps: converted_rows(data, "qcfs", "rate", steps),
    "ttfs": ttfs_rows,
}


def print_table(name: str, results: dict) -> None:
    print(f"\n{name}: accuracy on {len(results)} code(s); T = integration steps, run for "
          f"T + depth steps")
    print(f"{'code':<12} {'T':>3} {'run':>4} {'SNN acc':>7} {'ANN acc':>7} {'gap pp':>6} "
          f"{'agree':>6} {'spikes':>8} {'synops':>9} {'dyn uJ':>7} {'total uJ':>8} "
          f"{'ms':>6} {'EDP uJ*ms':>9}")
    for code, rows in results.items():
        for r in rows:
            print(f"{code:<12} {r['steps']:>3} {r['total_steps']:>4} {r['accuracy']:>7.4f} "
                  f"{r['ann_accuracy']:>7.4f} {100 * (r['ann_accuracy'] - r['accuracy']):>6.2f} "
                  f"{r['agreement']:>6.3f} {r['spikes']:>8.0f} {r['synaptic_ops']:>9.0f} "
                  f"{r['dynamic_uJ']:>7.2f} {r['energy_uJ']:>8.1f} {r['time_ms']:>6.3f} "
                  f"{r['edp_uJ_ms']:>9.2f}")


def plot(all_results: dict, path: pathlib.Path) -> None:
    """Accuracy vs integration steps and vs EDP, one row per data set."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(all_results), 2, figsize=(11, 4 * len(all_results)),
                             squeeze=False)
    for (name, results), (a, b) in zip(all_results.items(), axes):
        for code, rows in results.items():
            acc = [100 * r["accuracy"] for r in rows]
            line, = a.plot([r["steps"] for r in rows], acc, "o-", label=code)
            b.plot([r["edp_uJ_ms"] for r in rows], acc, "o-", color=line.get_color(), label=code)
            a.axhline(100 * rows[0]["ann_accuracy"], color=line.get_color(), ls=":", lw=1)
        for ax, label in ((a, "integration time steps T (run: T + depth)"),
                          (b, "energy-delay product per inference (uJ ms)")):
            ax.set_xscale("log", base=2 if ax is a else 10)
            ax.set_xlabel(label)
            ax.set_ylabel(f"{name} test accuracy (%)")
            ax.set_ylim(max(0, min(100 * r["accuracy"] for rs in results.values()
                                   for r in rs) - 2), 100)
            ax.grid(alpha=0.3)
        a.legend(loc="lower right", title="code (dotted: its ANN)")
        a.set_title(f"{name}: accuracy vs time steps")
        b.set_title(f"{name}: accuracy vs EDP (Loihi 1 estimate)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codes", nargs="+", default=list(CODES), choices=list(CODES))
    parser.add_argument("--datasets", nargs="+", default=["mnist", "digits"],
                        choices=["mnist", "digits"])
    parser.add_argument("--steps", type=int, nargs="+", default=list(STEPS))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lava-samples", type=int, default=2,
                        help="test samples per code also run on Lava for 8 + depth steps and "
                             "checked equal to the reference (0: none)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out/codes"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    loaders = {"mnist": (mnist_5k, build_ann, args.epochs),
               "digits": (digits, build_digits_ann, 3 * args.epochs)}
    all_results = {}
    for name in args.datasets:
        load, build, epochs = loaders[name]
        (x_train, y_train), (x_test, y_test) = load()     # the fixed split; --seed: training
        data = Data(name, x_train, y_train, x_test, y_test, build, epochs, args.out, args.seed,
                    args.lava_samples)
        all_results[name] = {}
        for code in args.codes:
            t0 = time.perf_counter()
            all_results[name][code] = CODES[code](data, args.steps)
            print(f"{name} {code}: {time.perf_counter() - t0:.0f} s")
        print_table(f"{name} ({len(x_test)} held-out samples)", all_results[name])
    plot(all_results, args.out / "codes_accuracy_vs_steps_and_edp.png")
    (args.out / "codes.json").write_text(json.dumps(all_results, indent=2))
    print(f"\nwrote {args.out / 'codes_accuracy_vs_steps_and_edp.png'} and "
          f"{args.out / 'codes.json'}; energy: hwmodel.energy, CALIBRATED costs")


if __name__ == "__main__":
    main()
