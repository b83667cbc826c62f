"""max_pool2d: 2-D max pooling (keras.layers.MaxPooling2D), for single-spike
networks only.

Its matrix holds weight 1 from every position of a window to its output (who
reaches whom, as average pooling without the divisor), so the geometry is
average pooling's.  The maximum is not a synaptic sum: the rate code has no
mapping for it (mapper.quantize and nxcompile.convert refuse it by name), and
nxcompile.ttfs maps it to an OR neuron (the first spike in a window is its
maximum).
"""
from __future__ import annotations

import numpy as np

from nxcompile.ir.kinds.avg_pool2d import AveragePooling2D


class MaxPooling2D(AveragePooling2D):
    name = "max_pool2d"
    keras_class = "MaxPooling2D"
    rate = False

    def weights(self, spec, sel_y, sel_x, ci, co) -> np.ndarray:
        return np.ones(np.broadcast_shapes(np.shape(sel_y), np.shape(sel_x), np.shape(ci),
                                           np.shape(co)))


KIND = MaxPooling2D()
