"""depthwise_conv2d: a per-channel 2-D convolution (keras.layers.DepthwiseConv2D).

kernel (kh, kw, c_in, depth_multiplier), c_in of the whole (concatenated)
input: input channel c reaches target channels c * multiplier + m.
"""
from __future__ import annotations

import numpy as np

from nxcompile.ir.window import WindowKind


class DepthwiseConv2D(WindowKind):
    name = "depthwise_conv2d"
    keras_class = "DepthwiseConv2D"
    keras_args = ("kernel_size", "strides", "padding", "depth_multiplier", "dilation_rate")
    output_channel_axes = 2       # target channel c * multiplier + m is kernel[..., c, m]

    def target_channels(self, spec, c_out: int) -> tuple:
        mult = spec.kernel.shape[3]
        return (np.arange(spec.source_shape[2], dtype=np.int64) + spec.channel_offset) * mult, mult

    def weights(self, spec, sel_y, sel_x, ci, co) -> np.ndarray:
        c = ci + spec.channel_offset
        return spec.kernel[sel_y, sel_x, c, co - c * spec.kernel.shape[3]]

    def tap_index(self, spec, ky, kx, ci, co) -> np.ndarray:
        c = ci + spec.channel_offset
        return np.ravel_multi_index((ky, kx, c, co - c * spec.kernel.shape[3]), spec.kernel.shape)

    def netx_weight(self, kernel: np.ndarray) -> tuple:
        kh, kw, channels, mult = kernel.shape
        return kernel.transpose(2, 3, 0, 1).reshape(channels * mult, 1, kh, kw), channels

    def kernel_from_netx(self, weight: np.ndarray, groups: int) -> np.ndarray:
        """(kh, kw, groups, multiplier) of a netx weight (groups * multiplier, 1,
        kH, kW), groups being the input's channels."""
        c_out, _, kh, kw = weight.shape
        return weight.reshape(groups, c_out // groups, kh, kw).transpose(2, 3, 0, 1)


KIND = DepthwiseConv2D()
