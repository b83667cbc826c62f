"""dense: every source neuron to every target neuron (keras.layers.Dense).

kernel (n_in, n_out) over the flat source (after Flatten/Reshape, HWC order);
with Concatenate the source's rows start at channel_offset.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from nxcompile.ir.kind import ConnectionKind


class Dense(ConnectionKind):
    name = "dense"
    keras_class = "Dense"
    source_ndim = 1
    source_hint = "Dense needs a 1-D input (put a Flatten before it)"
    keras_args = ("units",)
    netx_type = "dense"

    def from_keras(self, layer, source_shape: tuple) -> dict:
        return {"kernel": np.array(layer.kernel)}

    def matrix(self, spec, target_shape: tuple):
        k = np.asarray(spec.kernel, dtype=np.float64)
        n_src = int(np.prod(spec.source_shape))
        return sp.csr_matrix(k[spec.channel_offset:spec.channel_offset + n_src, :].T)


KIND = Dense()
