"""conv1d: a 1-D convolution (keras.layers.Conv1D) as a 2-D one of height 1.

The IR holds a (steps, channels) tensor as a (1, steps, channels) map
(nxcompile.keras_ir), so a Conv1D is a conv2d with kernel (1, k, c_in, c_out),
strides (1, s) and dilation (1, d): the partitioner, quantizer, simulators and
netx export treat it as conv2d does.  'causal' padding is 'valid' after
(k - 1) * d zeros before the first step (pre_padding, added to the term's).
"""
from __future__ import annotations

from nxcompile.ir.kinds.conv2d import Conv2D


class Conv1D(Conv2D):
    name = "conv1d"
    keras_class = "Conv1D"

    def from_keras(self, layer, source_shape: tuple) -> dict:
        (k,), (stride,), (dilation,) = layer.kernel_size, layer.strides, layer.dilation_rate
        fields = dict(kernel=super().from_keras(layer, source_shape)["kernel"][None],
                      strides=(1, stride), padding=layer.padding, dilation=(1, dilation))
        if layer.padding == "causal":
            fields.update(padding="valid", pre_padding=((0, 0), ((k - 1) * dilation, 0)))
        return fields


KIND = Conv1D()
