"""MNIST with single-spike (TTFS) neurons against the rate code.

Trains the examples/mnist.py network (as that example does: 15 epochs on the
4000 training digits of the offline MNIST subset), converts it twice, to the
rate code (nxcompile.convert) and to the TTFS code (convert(..., code='ttfs')),
runs the 1000 held-out digits on the reference simulator and prints one table:
accuracy, agreement with the ANN, steps, spikes per neuron, synaptic ops,
energy, time and EDP per inference (hwmodel.energy, calibrated costs), cores.
Checks a few digits of the TTFS network on Lava against the reference (every
layer's spike trains and the readout's voltages) and exits with status 1 if
they differ.  measure_rate() and measure_ttfs() give one row each for any
trained model and data.  --pooling max trains the MaxPooling2D variant
(TTFS rows only).

    PYTHONPATH=. .venv/bin/python examples/ttfs_mnist.py
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from nxcompile import convert  # noqa: E402
from nxcompile.datasets import mnist_5k  # noqa: E402


def _row(code: str, compiled, result, num_steps: int, y, ann_pred, hidden: list, **extra) -> dict:
    """One table row from a reference run (all layers counted); spikes and
    spikes per neuron of the ANN's hidden layers `hidden`."""
    est = compiled.energy(result)
    spikes = sum(float(result.layer_counts[n].sum()) for n in hidden) / len(y)
    neurons = sum(compiled.network.layers[n].n for n in hidden)
    return {"code": code, "steps": num_steps,
            "accuracy": float(np.mean(result.predictions == y)),
            "agreement": float(np.mean(result.predictions == ann_pred)),
            "hidden_spikes": spikes, "spikes_per_neuron": spikes / neurons,
            "all_spikes": est.spikes,
            "synaptic_ops": est.synaptic_ops, "dynamic_uJ": est.dynamic * 1e6,
            "energy_uJ": est.energy * 1e6, "time_ms": est.time * 1e3,
            "edp_uJ_ms": est.edp * 1e9, "cores": compiled.num_cores,
            "compartments": sum(layer.n * layer.compartments_per_neuron
                                for layer in compiled.network.layers.values()
                                if not (layer.is_input and layer.input_mode == "spikes")),
            **extra}


def by_layer(network, result, n: int) -> list:
    """Per layer: neurons, spikes per inference, and synaptic ops per inference of
    the connections out of it (spikes x fan-out)."""
    rows = []
    for name, layer in network.layers.items():
        counts = result.layer_counts[name].sum(axis=0)
        synops = sum(float(counts @ np.asarray((c.matrix() != 0).sum(axis=0)).ravel())
                     for c in network.connections if c.source == name)
        rows.append({"layer": name, "neurons": layer.n, "spikes": float(counts.sum()) / n,
                     "synaptic_ops": synops / n})
    return rows


def measure_rate(ann, x_calibration, x, y, ann_pred, num_steps: int, percentile: float = 99.9):
    """Row of the rate-coded SNN (convert's default code) at num_steps steps."""
    compiled = convert(ann, x_calibration, percentile=percentile).compile(board="loihi1")
    result = compiled.run(x, num_steps)
    return _row("rate", compiled, result, num_steps, y, ann_pred, compiled.ir.order()[1:-1],
                by_layer=by_layer(compiled.network, result, len(y)))


def lava_equals_reference(net, compiled, x) -> bool:
    """Every hidden layer's spike trains and the readout's voltages of the TTFS
    network `net` (compiled as `compiled`) on Lava equal the reference's on x."""
    names = net.ir.order()[1:-1]
    lava, ref = (compiled.run(x, backend=b, record=names) for b in ("lava", "reference"))
    return bool(np.array_equal(lava.voltages, ref.voltages) and all(
        np.array_equal(lava.trains[n], ref.trains[n]) for n in names))


def measure_ttfs(ann, x_calibration, x, y, ann_pred, steps_per_window: int = 32,
                 percentile: float = 100.0, lava_samples: int = 0):
    """Row of the TTFS SNN (partners' latch spikes and the host's input and
    clock spikes are in all_spikes and in the energy, not in spikes per neuron).
    lava_samples > 0 adds 'lava_equal': every layer's trains and the readout's
    voltages on Lava equal the reference's on the first lava_samples digits."""
    net = convert(ann, x_calibration, percentile=percentile, code="ttfs",
                  steps_per_window=steps_per_window)
    compiled = net.compile(board="loihi1")
    result = compiled.run(x)
    extra = {"partner_spikes": sum(float(result.layer_counts[n].sum()) for n in result.layer_counts
                                   if n.endswith("_partner")) / len(y),
             "report": compiled.report(),
             "by_layer": by_layer(compiled.compiled.network, result, len(y))}
    if lava_samples:
        extra["lava_equal"] = lava_equals_reference(net, compiled, x[:lava_samples])
    return _row("ttfs", compiled.compiled, result, net.num_steps, y, ann_pred, net.spiking, **extra)


def max_pooling_variant(epochs: int, seed: int, x, y):
    """The examples/mnist.py network with MaxPooling2D for its average pooling,
    trained as there (TTFS only: the rate code refuses max pooling)."""
    import keras
    from mnist import build_ann
    def swap(layer):
        cls = keras.layers.MaxPooling2D if isinstance(layer, keras.layers.AveragePooling2D) \
            else type(layer)
        return cls.from_config(layer.get_config())

    keras.utils.set_random_seed(seed)
    model = keras.models.clone_model(build_ann(), clone_function=swap)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--windows", type=int, nargs="+", default=[32],
                        help="TTFS steps per window")
    parser.add_argument("--rate-steps", type=int, nargs="+", default=[30])
    parser.add_argument("--ttfs-percentile", type=float, default=100.0)
    parser.add_argument("--lava-samples", type=int, default=3)
    parser.add_argument("--pooling", choices=("average", "max"), default="average",
                        help="max: the MaxPooling2D variant (TTFS rows only)")
    args = parser.parse_args()

    from mnist import train      # examples/mnist.py (this script's folder is on sys.path)
    (x_train, y_train), (x_test, y_test) = mnist_5k()
    t0 = time.perf_counter()
    if args.pooling == "max":
        ann, args.rate_steps = max_pooling_variant(args.epochs, args.seed, x_train, y_train), []
    else:
        ann = train(x_train, y_train, args.epochs, args.seed)
    ann_pred = ann.predict(x_test, verbose=0).argmax(axis=1)
    print(f"ANN trained in {time.perf_counter() - t0:.0f} s; accuracy on {len(y_test)} held-out "
          f"digits {np.mean(ann_pred == y_test):.4f}")
    cal = x_train[:1000]
    rows = [measure_rate(ann, cal, x_test, y_test, ann_pred, s) for s in args.rate_steps]
    for i, w in enumerate(args.windows):
        t0 = time.perf_counter()
        rows.append(measure_ttfs(ann, cal, x_test, y_test, ann_pred, w, args.ttfs_percentile,
                                 args.lava_samples if i == 0 else 0))
        print(f"TTFS T={w}: {time.perf_counter() - t0:.0f} s")
    print(f"\nTTFS, T={args.windows[0]}:\n{rows[len(args.rate_steps)]['report']}\n")
    cols = ("code", "steps", "accuracy", "agreement", "spikes_per_neuron", "all_spikes",
            "synaptic_ops",
            "dynamic_uJ", "energy_uJ", "time_ms", "edp_uJ_ms", "cores", "compartments")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c])
                                for c in cols) + " |")
    for r in rows:
        print(f"\n{r['code']} at {r['steps']} steps, per inference:\n| layer | neurons | spikes | "
              f"synaptic ops out of it |\n|---|---|---|---|")
        for b in r["by_layer"]:
            print(f"| {b['layer']} | {b['neurons']} | {b['spikes']:.0f} | "
                  f"{b['synaptic_ops']:.0f} |")
    for r in rows:
        if r["code"] == "ttfs":
            print(f"TTFS, {r['steps']} steps: partner (latch) spikes per inference "
                  f"{r['partner_spikes']:.0f}; "
                  f"Lava == reference: {r.get('lava_equal')}")
    if any(r.get("lava_equal") is False for r in rows):
        raise SystemExit("Lava and the reference simulator disagree")


if __name__ == "__main__":
    main()
