"""conv2d: a 2-D convolution (keras.layers.Conv2D, cross-correlation).

kernel (kh, kw, c_in, c_out), c_in of the whole (concatenated) input: every
source channel reaches every target channel.
"""
from __future__ import annotations

import numpy as np

from hwmodel.errors import NetworkError
from nxcompile.ir.window import WindowKind


class Conv2D(WindowKind):
    name = "conv2d"
    keras_class = "Conv2D"
    keras_args = ("filters", "kernel_size", "strides", "padding", "dilation_rate")
    per_channel = False

    def check_keras(self, layer, who: str) -> None:
        super().check_keras(layer, who)
        if getattr(layer, "groups", 1) != 1:
            raise NetworkError(f"{who}: groups={layer.groups}; only 1 is supported "
                               "(use DepthwiseConv2D for per-channel filters)")

    def target_channels(self, spec, c_out: int) -> tuple:
        return np.zeros(spec.source_shape[2], np.int64), c_out

    def weights(self, spec, sel_y, sel_x, ci, co) -> np.ndarray:
        return spec.kernel[sel_y, sel_x, ci + spec.channel_offset, co]

    def tap_index(self, spec, ky, kx, ci, co) -> np.ndarray:
        return np.ravel_multi_index((ky, kx, ci + spec.channel_offset, co), spec.kernel.shape)

    def netx_weight(self, kernel: np.ndarray) -> tuple:
        return kernel.transpose(3, 2, 0, 1), 1

    def kernel_from_netx(self, weight: np.ndarray, groups: int) -> np.ndarray:
        return weight.transpose(2, 3, 1, 0)     # groups 1


KIND = Conv2D()
