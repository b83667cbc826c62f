"""Adding connections: the summands that reach one layer from one source over
several paths (e.g. a residual block's conv(x) + x, or Add([x, x])) become one
connection, since the IR has one per pair of layers.  Dense kernels add;
window kernels add where they share a geometry, a per-channel kernel (depthwise,
identity) spread over all channels as a conv2d, and a smaller kernel (e.g. a 1x1
identity skip or projection) joining a larger one of the same strides at the
taps that read its pixels (the centre of a size-keeping convolution); a dense or conv2d
source behind Concatenate contributes the kernel rows of its channels.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from nxcompile.ir.network import ConnectionSpec

_NO_PADDING = ((0, 0), (0, 0))


def own_rows(spec: ConnectionSpec) -> ConnectionSpec | None:
    """A dense or conv2d connection fed through Concatenate as one over its
    source alone (the kernel's rows of the source's channels); None for a
    per-channel kind at a Concatenate offset (its target channels move too)."""
    if not spec.channel_offset and spec.in_channels is None:
        return spec
    if spec.op.window and spec.op.per_channel:
        return None
    off = spec.channel_offset
    if spec.op.window:
        rows = spec.kernel[:, :, off:off + spec.source_shape[2]]
    else:
        rows = spec.kernel[off:off + int(np.prod(spec.source_shape))]
    return replace(spec, kernel=rows, channel_offset=0, in_channels=None)


def as_conv2d(spec: ConnectionSpec) -> ConnectionSpec:
    """A window connection with a kernel as a conv2d (a per-channel kernel
    spread over all channels)."""
    if not spec.op.per_channel:
        return spec
    kh, kw, channels, mult = spec.kernel.shape
    full = np.zeros((kh, kw, channels, channels * mult))
    for c in range(channels):
        full[:, :, c, c * mult:(c + 1) * mult] = spec.kernel[:, :, c, :]
    return replace(spec, kind="conv2d", kernel=full)


def embedded(spec: ConnectionSpec, like: ConnectionSpec, target_shape: tuple):
    """conv2d `spec` as a kernel of `like`'s shape and geometry, where both have
    the same strides and every tap of `spec` reads the source pixel of a tap of
    `like` (e.g. a 1x1 identity skip at the centre of a size-keeping 3x3
    convolution); None otherwise."""
    if spec.strides != like.strides:
        return None
    shift = np.subtract(like.op.origin(like, target_shape), spec.op.origin(spec, target_shape))
    small, big = np.array(spec.kernel.shape[:2]), np.array(like.kernel.shape[:2])
    if np.any(shift < 0) or np.any(shift + small > big):
        return None
    kernel = np.zeros(like.kernel.shape)
    kernel[shift[0]:shift[0] + small[0], shift[1]:shift[1] + small[1]] = spec.kernel
    return replace(like, kernel=kernel)


def merge_connections(specs: list, target_shape: tuple) -> ConnectionSpec | None:
    """One connection equal to the sum of `specs` (all from one source into the
    target of shape `target_shape`), or None where they cannot be added into one
    (pooling, different strides, windows that read different pixels, a
    per-channel kind behind Concatenate)."""
    if len(specs) == 1:
        return specs[0]
    if any(s.kernel is None for s in specs):
        return None
    specs = [own_rows(s) for s in specs]
    if any(s is None for s in specs):
        return None
    merged = specs[0]
    for spec in specs[1:]:
        if not merged.op.window and not spec.op.window:
            merged = replace(merged, kernel=merged.kernel + spec.kernel)
            continue
        if not (merged.op.window and spec.op.window):
            return None
        a, b = as_conv2d(merged), as_conv2d(spec)
        if (a.kernel.shape, a.padding, a.pre_padding) != (b.kernel.shape, b.padding,
                                                          b.pre_padding):
            big = embedded(b, a, target_shape)
            a, b = (a, big) if big is not None else (b, embedded(a, b, target_shape))
        if b is None or a.strides != b.strides:
            return None
        merged = replace(a, kernel=a.kernel + b.kernel)
    return merged
