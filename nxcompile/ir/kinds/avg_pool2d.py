"""avg_pool2d: 2-D average pooling (keras.layers.AveragePooling2D).

No kernel: input channel c reaches target channel c (+ the Concatenate
offset) with weight 1 / (the window's divisor).  Keras divides by the window
positions inside the ZeroPadding2D-padded input (its zeros count), not by
those in 'same' padding; the divisor is a product of one count per axis, so it
is each axis' selector.
"""
from __future__ import annotations

import numpy as np

from nxcompile.ir.kinds.depthwise_conv2d import KIND as DEPTHWISE
from nxcompile.ir.window import WindowKind, padding_before, window_1d


class AveragePooling2D(WindowKind):
    name = "avg_pool2d"
    keras_class = "AveragePooling2D"
    keras_args = ("pool_size", "strides", "padding")
    weighted = False

    def from_keras(self, layer, source_shape: tuple) -> dict:
        return dict(pool_size=tuple(layer.pool_size), strides=tuple(layer.strides),
                    padding=layer.padding)

    def kernel_hw(self, spec) -> tuple:
        return tuple(spec.pool_size)

    def selectors(self, spec, target_shape: tuple) -> tuple:
        sel = []
        for axis, (o, _, _) in enumerate(self.window_axes(spec, target_shape)):
            n = spec.source_shape[axis] + sum(spec.pre_padding[axis])
            n_out, k, s = target_shape[axis], spec.pool_size[axis], spec.strides[axis]
            inside = window_1d(n, n_out, k, s, padding_before(n, n_out, k, s, spec.padding))[0]
            sel.append(np.bincount(inside, minlength=n_out)[o])
        return tuple(sel)

    def target_channels(self, spec, c_out: int) -> tuple:
        return np.arange(spec.source_shape[2], dtype=np.int64) + spec.channel_offset, 1

    def weights(self, spec, sel_y, sel_x, ci, co) -> np.ndarray:
        return np.broadcast_to(1.0 / (np.asarray(sel_y) * np.asarray(sel_x)),
                               np.broadcast_shapes(np.shape(sel_y), np.shape(sel_x),
                                                   np.shape(ci), np.shape(co)))

    def kernel_shape(self, spec) -> tuple:
        """As a depthwise kernel of multiplier 1."""
        return (*spec.pool_size, spec.in_channels or spec.source_shape[2], 1)

    def tap_index(self, spec, ky, kx, ci, co) -> np.ndarray:
        return np.ravel_multi_index((ky, kx, ci + spec.channel_offset, np.zeros_like(ci)),
                                    self.kernel_shape(spec))

    def netx_weight(self, kernel: np.ndarray) -> tuple:
        return DEPTHWISE.netx_weight(kernel)


KIND = AveragePooling2D()
