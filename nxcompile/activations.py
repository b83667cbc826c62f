"""ANN activations for training networks that convert to spiking networks with few time steps.

QuantizedClippedReLU is the quantization-clip-floor-shift activation of Bu et
al. 2022 ("Optimal ANN-SNN conversion for high-accuracy and ultra-low-latency
spiking neural networks", ICLR): with L levels and clip lambda,

    y = lambda * clip(floor(x * L / lambda + shift) / L, 0, 1),   shift = 1/2.

An integrate-and-fire neuron with threshold lambda, reset by subtraction and
initial potential lambda / 2, driven for T = L steps by a constant input x,
spikes exactly floor(x * L / lambda + 1/2) times (clipped to 0..L): its rate
times lambda is y.  nxcompile.convert takes lambda as the layer's scale (its
threshold) in place of the activation percentile; method='low_latency' adds
the half-threshold start (nxcompile.conversion).  The floor has a
straight-through gradient (identity), so lambda and the weights train with
back-propagation; lambda is learned (trainable_clip=True) or set from data
(calibrate_clips) and kept fixed.
"""
from __future__ import annotations

import numbers

import keras
import numpy as np

from hwmodel.errors import NetworkError
from nxcompile.normalization import percentile_scale

CLIP_MIN = 1e-3     # the smallest clip the layer uses (a learned clip is kept above it)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@keras.saving.register_keras_serializable(package="nxcompile")
class QuantizedClippedReLU(keras.layers.Layer):
    """lambda * clip(floor(x * levels / lambda + shift) / levels, 0, 1) (module doc).

    levels: L >= 1, the number of non-zero output levels (the time steps whose
    spike counts it models).  clip: initial lambda (> 0, the units of x).
    trainable_clip: learn lambda by back-propagation (else it stays as set).
    shift: in [0, 1), 0.5 for QCFS (rounding), 0 for a plain floor.
    """

    def __init__(self, levels: int = 8, clip: float = 1.0, trainable_clip: bool = True,
                 shift: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(levels, numbers.Integral) or isinstance(levels, bool) or levels < 1:
            raise NetworkError(f"QuantizedClippedReLU '{self.name}': levels={levels!r} must be "
                               f"an integer >= 1")
        if not (_is_real(clip) and np.isfinite(clip) and clip >= CLIP_MIN):
            raise NetworkError(f"QuantizedClippedReLU '{self.name}': clip={clip!r} must be a "
                               f"finite number >= {CLIP_MIN}")
        if not (_is_real(shift) and 0 <= shift < 1):
            raise NetworkError(f"QuantizedClippedReLU '{self.name}': shift={shift!r} must be "
                               f"in [0, 1)")
        self.levels, self.shift = int(levels), float(shift)
        self.trainable_clip = bool(trainable_clip)
        self.lam = self.add_weight(shape=(), name="clip", trainable=self.trainable_clip,
                                   initializer=keras.initializers.Constant(float(clip)))

    def call(self, x):
        ops = keras.ops
        lam = ops.maximum(self.lam, CLIP_MIN)
        z = x * (self.levels / lam) + self.shift
        z = z + ops.stop_gradient(ops.floor(z) - z)        # floor, straight-through gradient
        return ops.clip(z / self.levels, 0.0, 1.0) * lam

    def compute_output_shape(self, input_shape):
        return input_shape

    @property
    def clip_value(self) -> float:
        """lambda as the layer uses it (at least CLIP_MIN)."""
        return max(float(keras.ops.convert_to_numpy(self.lam)), CLIP_MIN)

    def set_clip(self, value: float) -> None:
        """Set lambda (> 0)."""
        if not (_is_real(value) and np.isfinite(value) and value >= CLIP_MIN):
            raise NetworkError(f"QuantizedClippedReLU '{self.name}': clip {value!r} must be "
                               f"finite and >= {CLIP_MIN}")
        self.lam.assign(float(value))

    def get_config(self) -> dict:
        return {**super().get_config(), "levels": self.levels, "clip": self.clip_value,
                "trainable_clip": self.trainable_clip, "shift": self.shift}


def calibrate_clips(model: keras.Model, x: np.ndarray, percentile: float = 99.9,
                    batch_size: int = 256) -> dict:
    """Set the clip of every QuantizedClippedReLU of `model` to the
    `percentile` of its positive inputs on x (layers in order, each measured
    with the clips before it already set).  Returns {layer name: clip}."""
    if not 0 < percentile <= 100:
        raise NetworkError(f"percentile={percentile} must be in (0, 100]")
    clips = {}
    for layer in model.layers:
        if not isinstance(layer, QuantizedClippedReLU):
            continue
        probe = keras.Model(model.inputs, layer.input)
        lam = percentile_scale(probe.predict(x, batch_size=batch_size, verbose=0), percentile)
        if lam <= 0:
            raise NetworkError(f"QuantizedClippedReLU '{layer.name}': no positive input on the "
                               f"calibration data (a dead layer)")
        layer.set_clip(lam)
        clips[layer.name] = layer.clip_value
    return clips
