"""The ANNs both simulation benchmarks run (benchmarks/simulate.py on the
project's environment, benchmarks/snntoolbox_ini.py on SNN Toolbox's): plain
Keras, so the same code builds them under Keras 3 and under TensorFlow 2.15's
Keras 2."""
from __future__ import annotations

import keras
import numpy as np


def nxtf_mnist_ann() -> keras.Model:
    """NxTF's tutorial MNIST CNN (33,802 parameters), as a Keras ANN."""
    inp = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(16, 5, strides=2, activation="relu")(inp)
    x = keras.layers.Conv2D(32, 3, activation="relu")(x)
    x = keras.layers.Conv2D(64, 3, strides=2, activation="relu")(x)
    return keras.Model(inp, keras.layers.Conv2D(10, 4, activation="relu")(x))


def trained_nxtf_mnist_ann(x_train: np.ndarray, y_train: np.ndarray) -> keras.Model:
    """nxtf_mnist_ann() trained 3 epochs on the digits (seed 0)."""
    keras.utils.set_random_seed(0)
    ann = nxtf_mnist_ann()
    ann.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    ann.fit(x_train, y_train[:, None, None], epochs=3, batch_size=64, verbose=0)
    return ann


def cifar_mobilenet_ann() -> keras.Model:
    """NxTF's CIFAR-10 pseudo-MobileNet as a Keras ANN ('same' padding)."""
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(inp)
    for stride, filters in [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256)]:
        x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", activation="relu")(x)
        x = keras.layers.Conv2D(filters, 1, padding="same", activation="relu")(x)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inp, keras.layers.Dense(10, activation="relu")(x))


def cifar_images(batch: int) -> np.ndarray:
    """Random images (batch, 32, 32, 3) float32 in [0, 1) (seed 1): no CIFAR-10 ships offline."""
    return np.random.default_rng(1).random((batch, 32, 32, 3)).astype(np.float32)
