"""Synapse matrices of IR connections, in Keras HWC flat order.

The single place where Keras layouts (HWC activations, (kh, kw, c_in, c_out)
kernels, cross-correlation, 'same'/'valid' padding, Flatten order) become an
explicit (n_target, n_source) matrix.  Everything downstream (partitioner,
quantizer, Lava builder, reference simulator) works on these matrices, so no
other module converts layouts.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from nxcompile.ir import ConnectionSpec


def _window_1d(n_in: int, n_out: int, k: int, stride: int, pad_before: int):
    """(out index, kernel offset, in index) triples of one spatial axis that hit
    the (unpadded) input."""
    o, kk = np.meshgrid(np.arange(n_out), np.arange(k), indexing="ij")
    i = o * stride - pad_before + kk
    ok = (i >= 0) & (i < n_in)
    return o[ok], kk[ok], i[ok]


def _padding(n_in: int, n_out: int, k: int, stride: int, mode: str) -> int:
    """Padding before the first input element along one axis (Keras convention)."""
    if mode == "valid":
        return 0
    return max((n_out - 1) * stride + k - n_in, 0) // 2


def output_size(n_in: int, k: int, stride: int, mode: str) -> int:
    """Keras output length of one spatial axis."""
    if mode == "valid":
        return (n_in - k) // stride + 1
    return -(-n_in // stride)


def kernel_hw(conn: ConnectionSpec) -> tuple:
    """(kh, kw) window of a spatial connection (pool size or kernel size)."""
    return tuple(conn.pool_size) if conn.kind == "avg_pool2d" else tuple(conn.kernel.shape[:2])


def window_axes(conn: ConnectionSpec, target_shape: tuple) -> tuple:
    """Per spatial axis of a 2-D window operation, the (out index, kernel offset,
    in index) triples that hit real (unpadded) source pixels: ((oy, ky, iy),
    (ox, kx, ix)).  The operation's pairs are the product of the two axes."""
    (pt, pb), (pl, pr) = conn.pre_padding
    h_in, w_in = conn.source_shape[0], conn.source_shape[1]
    h_out, w_out = target_shape[0], target_shape[1]
    kh, kw = kernel_hw(conn)
    sy, sx = conn.strides
    pad_y = pt + _padding(h_in + pt + pb, h_out, kh, sy, conn.padding)
    pad_x = pl + _padding(w_in + pl + pr, w_out, kw, sx, conn.padding)
    return _window_1d(h_in, h_out, kh, sy, pad_y), _window_1d(w_in, w_out, kw, sx, pad_x)


def _spatial_pairs(conn: ConnectionSpec, target_shape: tuple):
    """Index arrays (oy, ox, ky, kx, iy, ix) of all output/kernel/input position
    triples of a 2-D window operation that hit real (unpadded) source pixels."""
    (oy, ky, iy), (ox, kx, ix) = window_axes(conn, target_shape)
    a, b = np.meshgrid(np.arange(len(oy)), np.arange(len(ox)), indexing="ij")
    a, b = a.ravel(), b.ravel()
    return oy[a], ox[b], ky[a], kx[b], iy[a], ix[b]


def _pool_counts(conn: ConnectionSpec, target_shape: tuple, pool_size: tuple) -> np.ndarray:
    """Window positions per output pixel (flat HW) that Keras averages over: those
    inside the ZeroPadding2D-padded input (its zeros count), not those in 'same' padding."""
    (pt, pb), (pl, pr) = conn.pre_padding
    axes = ((conn.source_shape[0] + pt + pb, target_shape[0], pool_size[0], conn.strides[0]),
            (conn.source_shape[1] + pl + pr, target_shape[1], pool_size[1], conn.strides[1]))
    counts = [np.bincount(_window_1d(n, n_out, k, s, _padding(n, n_out, k, s, conn.padding))[0],
                          minlength=n_out) for n, n_out, k, s in axes]
    return np.outer(counts[0], counts[1]).ravel()


def connection_matrix(conn: ConnectionSpec, target_shape: tuple) -> sp.csr_matrix:
    """Float synapse matrix (n_target, n_source) of one connection, HWC flat order."""
    n_src = int(np.prod(conn.source_shape))
    n_tgt = int(np.prod(target_shape))
    if conn.kind == "dense":
        k = np.asarray(conn.kernel, dtype=np.float64)
        rows = slice(conn.channel_offset, conn.channel_offset + n_src)
        return sp.csr_matrix(k[rows, :].T)
    h_in, w_in, c_src = conn.source_shape
    c_out = target_shape[2]
    oy, ox, ky, kx, iy, ix = _spatial_pairs(conn, target_shape)
    out_pos = oy * target_shape[1] + ox
    in_pos = iy * w_in + ix
    ci = np.arange(c_src)
    if conn.kind == "conv2d":
        co = np.arange(c_out)
        w = conn.kernel[ky[:, None, None], kx[:, None, None],
                        ci[None, :, None] + conn.channel_offset, co[None, None, :]]
        rows = out_pos[:, None, None] * c_out + co[None, None, :]
        cols = in_pos[:, None, None] * c_src + ci[None, :, None]
        rows, cols = np.broadcast_arrays(rows, cols)
    elif conn.kind == "depthwise_conv2d":
        mult = conn.kernel.shape[3]
        m = np.arange(mult)
        cg = ci + conn.channel_offset   # channel in the (concatenated) input
        w = conn.kernel[ky[:, None, None], kx[:, None, None], cg[None, :, None], m[None, None, :]]
        rows = out_pos[:, None, None] * c_out + cg[None, :, None] * mult + m[None, None, :]
        cols = in_pos[:, None, None] * c_src + ci[None, :, None]
        rows, cols = np.broadcast_arrays(rows, cols)
    elif conn.kind == "avg_pool2d":
        count = _pool_counts(conn, target_shape, kernel_hw(conn))
        w = np.broadcast_to((1.0 / count[out_pos])[:, None], (len(out_pos), c_src))
        rows = out_pos[:, None] * c_out + ci[None, :] + conn.channel_offset
        cols = in_pos[:, None] * c_src + ci[None, :]
        rows, cols = np.broadcast_arrays(rows, cols)
    else:
        raise ValueError(f"unknown connection kind {conn.kind!r}")
    m = sp.coo_matrix((np.asarray(w, dtype=np.float64).ravel(), (rows.ravel(), cols.ravel())),
                      shape=(n_tgt, n_src))
    return m.tocsr()
