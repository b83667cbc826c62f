"""A source seen through y = scale * x + shift (a BatchNormalization after a
layer's neurons): the connection that absorbs it, exactly or not at all.

The kernel takes the scale per source element (dense: its rows) or per source
channel (window kinds: kernel axis 2 is the input channel, the whole
concatenated input's); the shift becomes a bias per target channel, the
connection's matrix times the shift, which must be the same at every position
of a channel: zero padding ('same', ZeroPadding2D, causal) reaches border
neurons with fewer shifted inputs, which no per-channel bias can express.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from hwmodel.errors import NetworkError
from nxcompile.ir.network import ConnectionSpec


def absorb_source_affine(spec: ConnectionSpec, target_shape: tuple, scale: np.ndarray,
                         shift: np.ndarray) -> tuple[ConnectionSpec, np.ndarray]:
    """(spec with its kernel scaled, bias per target channel the shift adds) for
    a source transformed by scale, shift: (n_source,) arrays, flat HWC order
    of the source as spec sees it.  NetworkError (the reason, for the caller to
    name the layers) where no exact fold exists."""
    scale, shift = np.asarray(scale, np.float64), np.asarray(shift, np.float64)
    if spec.kernel is None or not spec.op.weighted:
        raise NetworkError(f"its {spec.op.name} connection has no kernel to absorb it; put a "
                           "weighted layer (Dense, Conv) after it")
    kernel = np.array(spec.kernel, np.float64)
    off = spec.channel_offset
    if spec.op.source_ndim == 1:
        kernel[off:off + len(scale)] *= scale[:, None]
    else:
        per_channel = scale.reshape(-1, spec.source_shape[-1])
        if np.ptp(per_channel, axis=0).max(initial=0) > 0:
            raise NetworkError("its scale differs within a channel of the spatial source "
                               f"{spec.source_shape}")
        kernel[:, :, off:off + per_channel.shape[1]] *= per_channel[0][:, None]
    added = (spec.op.matrix(spec, tuple(target_shape)) @ shift).reshape(-1, target_shape[-1])
    if not np.allclose(added, added[0], rtol=1e-9, atol=1e-12 * max(1.0, np.abs(added).max())):
        raise NetworkError("its shift would reach border neurons through zero padding "
                           f"({spec.padding!r} padding, pre_padding {spec.pre_padding}) "
                           "differently from the others; use 'valid' padding after it or put "
                           "the BatchNormalization before the activation")
    return replace(spec, kernel=kernel), added[0]
