"""Adding connections: the summands that reach one layer from one source over
several paths (e.g. a residual block's conv(x) + x, or Add([x, x])) become one
connection, since the IR has one per pair of layers.  Dense kernels add;
window kernels add where they share a geometry, a per-channel kernel (depthwise,
identity) spread over all channels as a conv2d, and a 1x1 kernel (an identity
skip) joining a size-keeping convolution at its centre tap; a dense or conv2d
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


def centered(spec: ConnectionSpec, like: ConnectionSpec) -> ConnectionSpec | None:
    """A 1x1, stride-1, unpadded conv2d `spec` as a kernel of `like`'s shape and
    geometry (its centre tap), where `like` keeps the size (stride 1, odd kernel,
    'same' or (k-1)/2 padding on each side); None otherwise."""
    kh, kw = like.kernel.shape[:2]
    keeps = like.strides == (1, 1) and kh % 2 == kw % 2 == 1 and (
        (like.padding == "same" and like.pre_padding == _NO_PADDING)
        or (like.padding == "valid" and like.pre_padding == ((kh // 2,) * 2, (kw // 2,) * 2)))
    plain = (spec.kernel.shape[:2] == (1, 1) and spec.strides == (1, 1)
             and spec.pre_padding == _NO_PADDING)
    if not (keeps and plain):
        return None
    kernel = np.zeros(like.kernel.shape)
    kernel[kh // 2, kw // 2] = spec.kernel[0, 0]
    return replace(like, kernel=kernel)


def merge_connections(specs: list) -> ConnectionSpec | None:
    """One connection equal to the sum of `specs` (all from one source into one
    target), or None where they cannot be added into one (pooling, different
    windows, strides, a per-channel kind behind Concatenate)."""
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
        if a.kernel.shape != b.kernel.shape:
            a, b = (a, centered(b, a)) if centered(b, a) is not None else (b, centered(a, b))
        if b is None or (a.strides, a.padding, a.pre_padding) != (b.strides, b.padding,
                                                                   b.pre_padding):
            return None
        merged = replace(a, kernel=a.kernel + b.kernel)
    return merged
