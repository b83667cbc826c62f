"""WindowKind: what every 2-D window operation (conv2d, depthwise_conv2d,
avg_pool2d) shares, in Keras layouts (HWC activations, cross-correlation,
'same'/'valid' padding, ZeroPadding2D folded in as pre_padding).

A window operation's synapses are a product of two spatial axes and a channel
map.  Per spatial axis, window_axes gives the (output index, kernel offset,
input index) triples that hit real (unpadded) source pixels, and selectors the
value per triple that fixes the weight on that axis (the kernel offset; for
pooling the window's divisor).  Per source channel ci, the target channels are
the contiguous range first[ci] .. first[ci] + width - 1 (Concatenate offsets
included).  weights(spec, sel_y, sel_x, ci, co) gives the float weight of any
tap.  The matrix, the partitioner's analytic counts (partitioner.edges) and the
netx kernel are all built from these four answers.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hwmodel.errors import NetworkError
from nxcompile.ir.kind import ConnectionKind


def output_size(n_in: int, k: int, stride: int, mode: str) -> int:
    """Keras output length of one spatial axis."""
    if mode == "valid":
        return (n_in - k) // stride + 1
    return -(-n_in // stride)


def padding_before(n_in: int, n_out: int, k: int, stride: int, mode: str) -> int:
    """Padding before the first input element along one axis (Keras convention)."""
    if mode == "valid":
        return 0
    return max((n_out - 1) * stride + k - n_in, 0) // 2


def window_1d(n_in: int, n_out: int, k: int, stride: int, pad_before: int, dilation: int = 1):
    """(out index, kernel offset, in index) triples of one spatial axis that hit
    the (unpadded) input; taps `dilation` apart."""
    o, kk = np.meshgrid(np.arange(n_out), np.arange(k), indexing="ij")
    i = o * stride - pad_before + kk * dilation
    ok = (i >= 0) & (i < n_in)
    return o[ok], kk[ok], i[ok]


class WindowKind(ConnectionKind):
    """A 2-D window operation over an (H, W, C) source (module doc)."""

    window = True
    netx_type = "conv"
    per_channel = True   # kernel_of's kernel is (kh, kw, c_in, multiplier); False: (.., c_out)

    # -- Keras -----------------------------------------------------------------
    def from_keras(self, layer, source_shape: tuple) -> dict:
        return dict(kernel=np.array(layer.kernel), strides=tuple(layer.strides),
                    padding=layer.padding, dilation=tuple(layer.dilation_rate))

    # -- the four answers (module doc) -----------------------------------------
    def kernel_hw(self, spec) -> tuple:
        """(kh, kw) of the window."""
        return tuple(spec.kernel.shape[:2])

    def extent(self, spec) -> tuple:
        """(rows, columns) of the source one window spans: the kernel with its
        dilation's gaps."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel_hw(spec), spec.dilation))

    def window_axes(self, spec, target_shape: tuple) -> tuple:
        """((oy, ky, iy), (ox, kx, ix)): per spatial axis the (out index, kernel
        offset, in index) triples that hit real (unpadded) source pixels."""
        h_in, w_in = spec.source_shape[0], spec.source_shape[1]
        kh, kw = self.kernel_hw(spec)
        (sy, sx), (dy, dx) = spec.strides, spec.dilation
        pad_y, pad_x = self.origin(spec, target_shape)
        return (window_1d(h_in, target_shape[0], kh, sy, pad_y, dy),
                window_1d(w_in, target_shape[1], kw, sx, pad_x, dx))

    def origin(self, spec, target_shape: tuple) -> tuple:
        """(top, left): zero rows and columns before the first source pixel, so
        that output pixel (oy, ox) sees source pixels (oy * sy - top + ky,
        ox * sx - left + kx); pre-padding and 'same' padding together."""
        (pt, pb), (pl, pr) = spec.pre_padding
        h_in, w_in = spec.source_shape[0], spec.source_shape[1]
        kh, kw = self.extent(spec)
        sy, sx = spec.strides
        return (pt + padding_before(h_in + pt + pb, target_shape[0], kh, sy, spec.padding),
                pl + padding_before(w_in + pl + pr, target_shape[1], kw, sx, spec.padding))

    def selectors(self, spec, target_shape: tuple) -> tuple:
        """Per spatial axis, per triple of window_axes: what fixes the weight on
        that axis (here the kernel offset)."""
        (_, ky, _), (_, kx, _) = self.window_axes(spec, target_shape)
        return ky, kx

    def target_channels(self, spec, c_out: int) -> tuple:
        """(first, width): source channel ci reaches target channels first[ci] ..
        first[ci] + width - 1 (first is an int64 array over the source's channels)."""
        raise NotImplementedError

    def weights(self, spec, sel_y, sel_x, ci, co) -> np.ndarray:
        """Float weights of the taps (sel_y, sel_x, source channel ci, target
        channel co), numpy-broadcast; ci counts the source's own channels."""
        raise NotImplementedError

    # -- built from them -------------------------------------------------------
    def _taps(self, spec, target_shape: tuple) -> tuple:
        """Every synapse as (row, col, sel_y, sel_x, ky, kx, ci, co) arrays,
        broadcast to one shape."""
        (oy, ky, iy), (ox, kx, ix) = self.window_axes(spec, target_shape)
        sel_y, sel_x = self.selectors(spec, target_shape)
        a, b = (g.ravel() for g in np.meshgrid(np.arange(len(oy)), np.arange(len(ox)),
                                                indexing="ij"))
        c_src, c_out = spec.source_shape[2], target_shape[2]
        first, width = self.target_channels(spec, c_out)
        ci = np.arange(c_src)[None, :, None]
        co = (first[:, None] + np.arange(width)[None, :])[None]
        row = (oy[a] * target_shape[1] + ox[b])[:, None, None] * c_out + co
        col = (iy[a] * spec.source_shape[1] + ix[b])[:, None, None] * c_src + ci
        pos = [v[:, None, None] for v in (sel_y[a], sel_x[b], ky[a], kx[b])]
        return np.broadcast_arrays(row, col, *pos, ci, co)

    def matrix(self, spec, target_shape: tuple):
        row, col, sel_y, sel_x, _, _, ci, co = self._taps(spec, target_shape)
        w = np.asarray(self.weights(spec, sel_y, sel_x, ci, co), np.float64)
        n_tgt, n_src = int(np.prod(target_shape)), int(np.prod(spec.source_shape))
        return sp.coo_matrix((w.ravel(), (row.ravel(), col.ravel())), shape=(n_tgt, n_src)).tocsr()

    def kernel_shape(self, spec) -> tuple:
        """Shape of the (kh, kw, c_in, per-channel) kernel of kernel_of."""
        return tuple(spec.kernel.shape)

    def tap_index(self, spec, ky, kx, ci, co) -> np.ndarray:
        """Flat index into a kernel of kernel_shape of each tap."""
        raise NotImplementedError

    def kernel_of(self, spec, target_shape: tuple, weights) -> np.ndarray | None:
        """The kernel (kernel_shape) whose window operation gives the synapse
        matrix `weights` (n_target x n_source, e.g. integer), or None when
        synapses of one kernel tap carry different weights (e.g. 'same' average
        pooling at the border) or weights sit outside the window."""
        row, col, _, _, ky, kx, ci, co = (a.ravel() for a in self._taps(spec, target_shape))
        tap = self.tap_index(spec, ky, kx, ci, co)
        row.flags.writeable = col.flags.writeable = False   # else scipy's indexing warns (numpy 2)
        w = np.asarray(weights.tocsr()[row, col]).ravel()
        kernel = np.zeros(int(np.prod(self.kernel_shape(spec))), w.dtype)
        kernel[tap] = w
        if not np.array_equal(kernel[tap], w) or np.count_nonzero(w) != weights.count_nonzero():
            return None
        return kernel.reshape(self.kernel_shape(spec))

    def netx_weight(self, kernel: np.ndarray) -> tuple:
        """(weight, groups) in lava-dl netx's layout (C_out, C_in / groups, kH, kW)
        of a kernel_of kernel."""
        raise NotImplementedError

    def kernel_from_netx(self, weight: np.ndarray, groups: int) -> np.ndarray:
        """The kernel (kernel_shape) of a netx weight (C_out, C_in / groups, kH,
        kW) and its groups: the inverse of netx_weight."""
        raise NotImplementedError
