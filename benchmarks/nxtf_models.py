"""NxTF's tutorial models, converted as shipped: the MNIST CNN
(a_minist_model_99pct.h5, Keras 2.2, ends in a 1x1x10 softmax conv and a no-op
Flatten) and the CIFAR-10 pseudo-MobileNet (b_cifar_pseudo_mobile_net_0.87.h5).
Both load in Keras 3 as plain Keras models.

The files are in intel-nrc-ecosystem/models under
nxsdk_modules_ncl/dnn/tutorials/models/ (not shipped here); pass their folder.
MNIST: ANN and SNN accuracy (reference simulator, 100 steps) on all 5000
offline digits, calibrated on 1000 of them; CIFAR: no CIFAR-10 ships offline,
so it is calibrated on uniform noise and only its partition is measured.
Prints cores, chips and the lower bound of each.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/nxtf_models.py FOLDER
"""
from __future__ import annotations

import argparse
import os
import pathlib
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from nxcompile import convert  # noqa: E402
from nxcompile.datasets import mnist_5k  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=pathlib.Path)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    (x_train, y_train), (x_test, y_test) = mnist_5k()
    x, y = np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test])

    ann = keras.models.load_model(args.folder / "a_minist_model_99pct.h5", compile=False)
    ann_pred = ann.predict(x, verbose=0).argmax(axis=1)
    t0 = time.perf_counter()
    compiled = convert(ann, x_train[:1000]).compile(board="loihi1")
    seconds = time.perf_counter() - t0
    pred = compiled.run(x, args.steps).predictions
    print(f"MNIST CNN: ANN {np.mean(ann_pred == y):.4f}, SNN {np.mean(pred == y):.4f} at "
          f"{args.steps} steps (agreement {np.mean(pred == ann_pred):.4f}) on {len(x)} digits; "
          f"{compiled.num_cores} cores on {compiled.num_chips} chip(s), lower bound "
          f"{compiled.lower_bound_cores}; convert + compile {seconds:.1f} s")

    ann = keras.models.load_model(args.folder / "b_cifar_pseudo_mobile_net_0.87.h5", compile=False)
    noise = np.random.default_rng(0).uniform(size=(200, *ann.inputs[0].shape[1:]))
    t0 = time.perf_counter()
    compiled = convert(ann, noise).compile(board="kapoho_bay")
    print(f"CIFAR-10 pseudo-MobileNet: {compiled.num_cores} cores on {compiled.num_chips} chips "
          f"({', '.join(map(str, np.bincount([c.chip for c in compiled.partition.cores])))}), "
          f"lower bound {compiled.lower_bound_cores}; convert + compile "
          f"{time.perf_counter() - t0:.1f} s (NxTF: 157 cores on 2 chips)")


if __name__ == "__main__":
    main()
