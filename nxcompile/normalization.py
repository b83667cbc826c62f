"""The numerics of ANN-to-SNN conversion, on numpy arrays (no Keras).

Rueckauer et al. 2017 ("Conversion of continuous-valued deep networks to
efficient event-driven networks for image classification", Front. Neurosci.):
a non-leaky integrate-and-fire neuron with threshold 1 and reset by subtraction
fires at a rate (spikes per time step) equal to its ReLU activation, clipped to
1.  Scaling each layer by the p-th percentile lambda_l of its activations on
calibration data, W_l <- W_l * lambda_{l-1} / lambda_l and b_l <- b_l / lambda_l,
leaves the network's function unchanged (ReLU commutes with positive scaling)
while putting almost every activation (all but 100 - p percent) below the
threshold, i.e. into the range a spiking neuron can represent.

Kernels are in Keras layout: dense (n_in, n_out), conv2d (kh, kw, c_in, c_out),
depthwise_conv2d (kh, kw, c_in, depth_multiplier); biases per output channel.
"""
from __future__ import annotations

import numpy as np

from hwmodel import formats


def fold_batch_norm(kernel: np.ndarray, bias: np.ndarray | None, scale: np.ndarray,
                    shift: np.ndarray, channel_axes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Kernel and bias of a layer followed by y = scale * x + shift per output
    channel (inference-mode BatchNormalization: nxcompile.keras_ir.batch_norm_affine).
    channel_axes: the kernel's trailing axes that index the output channel
    (ConnectionKind.output_channel_axes: 1 for Dense and Conv2D, 2 for
    DepthwiseConv2D, whose channel c * multiplier + m is kernel[..., c, m]).
    Returns float64 arrays; bias (None: no bias) becomes a bias per output channel."""
    scale = np.asarray(scale, np.float64)
    kernel = np.asarray(kernel, np.float64)
    folded = kernel * scale.reshape(kernel.shape[-channel_axes:])
    b = np.zeros(scale.shape) if bias is None else np.asarray(bias, np.float64)
    return folded, b * scale + np.asarray(shift, np.float64)


def percentile_scale(activations: np.ndarray, percentile: float) -> float:
    """lambda: the percentile (0..100) of the positive activations, as in
    Rueckauer et al. 2017 (zeros, the silent ReLUs, are left out).  0.0 if no
    activation is positive."""
    positive = np.asarray(activations).ravel()
    positive = positive[positive > 0]
    return float(np.percentile(positive, percentile)) if positive.size else 0.0


def scale_parameters(kernel: np.ndarray, bias: np.ndarray | None, lambda_in: float,
                     lambda_out: float) -> tuple[np.ndarray, np.ndarray | None]:
    """W * lambda_in / lambda_out and b / lambda_out."""
    return (np.asarray(kernel, np.float64) * (lambda_in / lambda_out),
            None if bias is None else np.asarray(bias, np.float64) / lambda_out)


READOUT_HEADROOM = 1.25
# The largest |bias| a layer can hold, in units of its largest |weight|: the
# quantizer puts that weight at no more than WEIGHT_MAX integer units, and the
# bias added to v (13-bit mantissa << 3-bit exponent) is 2**6 times the bias in
# those units.
_BIAS_PER_WEIGHT = (formats.BIAS_MANT_MAX * 2 ** formats.BIAS_EXP_MAX
                    / 2 ** formats.ACTIVATION_SHIFT / formats.WEIGHT_MAX)


def readout_offset_and_scale(outputs: np.ndarray, kernel: np.ndarray,
                             bias: np.ndarray | None) -> tuple[float, float]:
    """(offset, lambda) for a readout layer (kernel, bias) whose outputs on the
    calibration data are z: its parameters become kernel / lambda and
    (bias + offset) / lambda.

    With offset = READOUT_HEADROOM * max(0, -min z) and lambda =
    READOUT_HEADROOM * (max z + offset), each step's input (z + offset) /
    lambda lies in [0, 0.8] on the calibration data (and then some way beyond
    it): a spiking readout with threshold 1 and reset by subtraction keeps its
    voltage between about 0 and one threshold whatever the number of steps, so
    spikes * threshold + v is its exact input sum, and never saturates.  A
    common offset leaves the argmax (and the softmax) unchanged.  The offset is
    capped so that every bias stays within what Loihi's bias can hold next to
    the layer's largest weight; beyond the cap a neuron far below the others
    may still drift down to -2**23 over long runs.
    """
    z = np.asarray(outputs, np.float64)
    b = np.zeros(1) if bias is None else np.asarray(bias, np.float64)
    cap = _BIAS_PER_WEIGHT * float(np.abs(kernel).max()) - float(b.max())
    offset = min(READOUT_HEADROOM * max(0.0, -float(z.min())), max(cap, 0.0))
    return offset, READOUT_HEADROOM * (float(z.max()) + offset)
