"""upsampling2d: nearest-neighbour upsampling (keras.layers.UpSampling2D,
interpolation 'nearest'): target pixel (oy, ox) copies source pixel
(oy // sy, ox // sx), channel c to channel c (+ the Concatenate offset), weight 1.

A fixed pattern without kernel; ``pool_size`` holds the factors (sy, sx).  A
window kind: per axis, input i reaches the contiguous outputs i*s .. i*s + s - 1,
so the partitioner counts it analytically.  Not a convolution, so it has no
netx kernel and the reference simulator takes its matrix (kernel_of: None).
"""
from __future__ import annotations

import numpy as np

from hwmodel.errors import NetworkError
from nxcompile.ir.window import WindowKind


class UpSampling2D(WindowKind):
    name = "upsampling2d"
    keras_class = "UpSampling2D"
    keras_args = ("size",)
    netx_type = ""
    weighted = False

    def check_keras(self, layer, who: str) -> None:
        if layer.interpolation != "nearest":
            raise NetworkError(f"{who}: interpolation={layer.interpolation!r}; only 'nearest' is "
                               "supported")

    def from_keras(self, layer, source_shape: tuple) -> dict:
        return dict(pool_size=tuple(layer.size))

    def kernel_hw(self, spec) -> tuple:
        return (1, 1)

    def window_axes(self, spec, target_shape: tuple) -> tuple:
        axes = []
        for axis in (0, 1):        # ZeroPadding2D before: padded pixels copy zeros
            o = np.arange(target_shape[axis])
            i = o // spec.pool_size[axis] - spec.pre_padding[axis][0]
            ok = (i >= 0) & (i < spec.source_shape[axis])
            axes.append((o[ok], np.zeros(int(ok.sum()), np.int64), i[ok]))
        return tuple(axes)

    def origin(self, spec, target_shape: tuple) -> tuple:
        return (0, 0)

    def target_channels(self, spec, c_out: int) -> tuple:
        return np.arange(spec.source_shape[2], dtype=np.int64) + spec.channel_offset, 1

    def weights(self, spec, sel_y, sel_x, ci, co) -> np.ndarray:
        return np.ones(np.broadcast_shapes(np.shape(sel_y), np.shape(sel_x), np.shape(ci),
                                           np.shape(co)))

    def kernel_of(self, spec, target_shape: tuple, weights) -> None:
        return None


KIND = UpSampling2D()
