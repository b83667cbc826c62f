"""Export a compiled network as a lava-dl netx HDF5 description.

lava-dl's netx (lava/lib/dl/netx/hdf5.py, lava-dl 0.6) builds a chain of Lava
blocks from groups layer/0 .. layer/N-1 of an HDF5 file.  What is written here,
and how netx reads it:

  type      'input' (shape only: netx takes these spikes at Network.inp; with a
            neuron group for an input layer in bias_mant mode: netx's input
            block, whose bias mantissas the caller sets),
            'flatten' (the next dense layer reads its input in (C, H, W) order),
            'dense' or 'conv'
  shape     (C, H, W) of a spatial layer (netx reverses it to Lava's (W, H, C)), (n,)
  neuron    type 'CUBA', iDecay = du + 1, vDecay = dv, vThMant = vth, refDelay 1:
            netx makes a Lava LIF(vth=vThMant, du=iDecay-1, dv=vDecay, bias_exp=6)
  weight    dense: (n_out, n_in) integers (netx derives the bit width and a
            non-positive exponent from them, exact for weights on Loihi's 8-bit
            grid); conv: (C_out, C_in / groups, kH, kW), a cross-correlation
            kernel (netx flips it for Lava's Conv, which ignores any exponent)
  stride, padding (symmetric), dilation: (y, x); groups
  bias      netx's bias mantissa with its fixed bias_exp 6, per neuron: (n,) or
            (W, H, C) (omitted when zero)
  delay     dense: (n_out, n_in) per-synapse delays in time steps (omitted
            without delays; netx builds a DelayDense)

Networks that fit, exactly: a chain input -> ... -> output where each layer is
fed by the one before (dense; conv2d; depthwise_conv2d and average pooling as
grouped convolutions, the latter only where every window has the same weights,
e.g. 'valid' pooling), hard reset (netx has no reset by subtraction), weight
exponent 0 (netx keeps 8-bit weights), biases (bias_mant << bias_exp, v units)
that are multiples of 64 within 13 bits (compile with biasExp=6 for that), and
padding that netx's symmetric padding reproduces, and no Reshape before a
spatial layer (netx has none), no periodic reset (netx sets one for the whole
network: hdf5.Network(reset_interval=...)), no initial voltage (IntLayer.v_init:
netx's neuron group has no initial state).  An input layer in bias or spike
mode is not described: its spikes (the frames' spikes in bias input mode) feed
Network.inp.  Anything else raises NetxExportError naming the layer.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hwmodel import formats
from hwmodel.errors import NxCompileError
from hwmodel.network import IntConnection, IntLayer, IntNetwork
from mapper import netx_format as fmt
from nxcompile.ir import ConnectionSpec, NetworkIR


class NetxExportError(NxCompileError, ValueError):
    """The network does not fit lava-dl's netx format."""


def _chain(ir: NetworkIR) -> list:
    """Layer names input first, each fed by the one before only."""
    order = ir.order()
    for prev, name in zip(order, order[1:]):
        if ir.predecessors(name) != [prev] or ir.successors(prev) != [name]:
            raise NetxExportError(
                f"layer {name}: netx describes a chain of layers, but {name} is fed by "
                f"{ir.predecessors(name)} and {prev} feeds {ir.successors(prev)}")
    return order


def _check_neurons(layer: IntLayer, conn: IntConnection | None) -> None:
    """NetxExportError for what netx's LIF (hard reset, bias_exp 6, 8-bit
    weights without exponent, no reset schedule in the file) cannot hold."""
    if layer.reset_interval:
        raise NetxExportError(f"layer {layer.name}: periodic reset every {layer.reset_interval} "
                              f"steps; a netx file has none (hdf5.Network(reset_interval=...) "
                              f"sets one for all layers)")
    if layer.v_init is not None and layer.v_init.any():
        raise NetxExportError(f"layer {layer.name}: initial voltage v_init up to "
                              f"{int(np.abs(layer.v_init).max())} (v units); a netx file has no "
                              f"initial state (netx's LIF starts at v = 0)")
    if layer.reset != "hard":
        raise NetxExportError(f"layer {layer.name}: reset {layer.reset!r}; netx's LIF resets to 0 "
                              f"(compile with resetMode='hard' to export)")
    if conn is not None and conn.weight_exp != 0:
        raise NetxExportError(f"layer {layer.name}: weight exponent {conn.weight_exp}; netx "
                              f"describes 8-bit weights without an exponent")
    if conn.sign_mode == "shared":
        raise NetxExportError(f"layer {layer.name}: a shared sign (useSharedSign=True) with "
                              f"weights of both signs; netx's connections keep a sign bit in "
                              f"every weight (compile without useSharedSign to export)")


def _bias(layer: IntLayer) -> np.ndarray | None:
    """netx bias mantissas (bias_exp 6) in flat HWC order, None if all zero."""
    bias_v = np.asarray(layer.bias_mant, np.int64) << layer.bias_exp
    if not bias_v.any():
        return None
    mant, rest = np.divmod(bias_v, 1 << fmt.BIAS_EXP)
    bad = bias_v[(rest != 0) | (mant < -formats.BIAS_MANT_MAX - 1) | (mant > formats.BIAS_MANT_MAX)]
    if bad.size:
        raise NetxExportError(
            f"layer {layer.name}: bias {bad[0]} (v units) is not a multiple of 64 within 13 bits, "
            f"which netx's fixed bias_exp 6 needs (compile with biasExp=6)")
    return mant


def _window_weight(name: str, spec: ConnectionSpec, target_shape: tuple,
                   conn: IntConnection) -> tuple:
    """netx (weight, groups) of a window connection: its integer kernel (the
    quantizer's, where it kept one, else the one its kind recovers from the
    matrix: WindowKind.kernel_of) in netx's layout (WindowKind.netx_weight);
    average pooling is a depthwise kernel."""
    if spec.channel_offset or (spec.in_channels not in (None, spec.source_shape[2])):
        raise NetxExportError(f"layer {name}: a concatenated input is not a netx chain")
    if spec.dilation != (1, 1):
        raise NetxExportError(f"layer {name}: dilation {spec.dilation}; the exporter writes "
                              f"(1, 1) only")
    if conn.weights is None:            # a kept kernel; all source channels (checked above)
        kernel = conn.window.kernel
    else:
        kernel = spec.op.kernel_of(spec, target_shape, conn.weights)
    if kernel is None:
        raise NetxExportError(f"layer {name}: its weights differ between positions of the same "
                              f"kernel tap (e.g. 'same' average pooling at the border), so they "
                              f"are not one convolution kernel")
    return spec.op.netx_weight(kernel.astype(np.int64))


def _padding(name: str, spec: ConnectionSpec, target_shape: tuple) -> list:
    """Symmetric (y, x) padding that gives the same windows, checked through the
    output size that Lava's Conv computes from it."""
    pads = []
    windows = spec.op.window_axes(spec, target_shape)
    for axis, ((o, k, i), size) in enumerate(zip(windows, spec.op.kernel_hw(spec))):
        pad = int(o[0] * spec.strides[axis] + k[0] - i[0])
        n_in, n_out = spec.source_shape[axis], target_shape[axis]
        if (n_in + 2 * pad - size) // spec.strides[axis] + 1 != n_out:
            raise NetxExportError(
                f"layer {name}: padding {pad} before axis {'yx'[axis]} is not symmetric "
                f"({spec.padding!r}, stride {spec.strides[axis]}, pre-padding {spec.pre_padding}); "
                f"netx pads both sides equally")
        pads.append(pad)
    return pads


def _check_no_reshape(name: str, prev: str, spec: ConnectionSpec, source: tuple) -> None:
    """netx has no reshape: a window connection reads its source's own (C, H, W)
    layout (and a dense one its flattening), so a Reshape folded into the
    connection (source_shape other than the source layer's shape) is refused."""
    if spec.op.source_ndim == 3 and tuple(spec.source_shape) != source:
        raise NetxExportError(
            f"layer {name}: reads {prev} {source} reshaped to {tuple(spec.source_shape)}; "
            f"netx has no reshape (only a flatten before a dense layer)")


def _entries(ir: NetworkIR, net: IntNetwork) -> list:
    """The layer/<i> groups, as dicts (module doc)."""
    order = _chain(ir)
    conns = {(c.source, c.target): c for c in net.connections}
    entries = [{"type": fmt.INPUT, "shape": fmt.chw(ir.layer(order[0]).shape)}]
    inp = net.layers[order[0]]
    if inp.input_mode == "bias_mant":
        _check_neurons(inp, None)
        if inp.bias_exp != fmt.BIAS_EXP:
            raise NetxExportError(f"layer {inp.name}: bias_exp {inp.bias_exp}; netx's input "
                                  f"block has bias_exp {fmt.BIAS_EXP}")
        entries[0]["neuron"] = fmt.neuron_entry(inp.vth, inp.du, inp.dv)
    for prev, name in zip(order, order[1:]):
        spec, layer, conn = ir.connection(prev, name), net.layers[name], conns[prev, name]
        _check_neurons(layer, conn)
        target = tuple(ir.layer(name).shape)
        if spec.op.netx_type not in (fmt.DENSE, fmt.CONV):
            raise NetxExportError(f"layer {name}: connection kind {spec.kind!r} has no netx "
                                  f"description")
        _check_no_reshape(name, prev, spec, tuple(ir.layer(prev).shape))
        if spec.op.netx_type == fmt.DENSE:
            weight = conn.matrix().toarray()
            delay = None if not conn.max_delay else conn.delays.toarray()
            source = tuple(ir.layer(prev).shape)
            if len(source) == 3:       # netx flattens (C, H, W); the weights index (H, W, C)
                entries.append({"type": fmt.FLATTEN})
                chw = fmt.chw_order(source)
                weight = weight[:, chw]
                delay = None if delay is None else delay[:, chw]
            entry = {"type": fmt.DENSE, "shape": [layer.n], "weight": weight}
            if delay is not None:      # netx: DelayDense with these (out, in) delays
                entry["delay"] = delay
        else:
            weight, groups = _window_weight(name, spec, target, conn)
            entry = {"type": fmt.CONV, "shape": fmt.chw(target), "weight": weight,
                     "stride": list(spec.strides), "padding": _padding(name, spec, target),
                     "dilation": [1, 1], "groups": groups}
        bias = _bias(layer)
        if bias is not None:
            entry["bias"] = bias if len(target) == 1 else bias.reshape(target).transpose(1, 0, 2)
        entry["neuron"] = fmt.neuron_entry(layer.vth, layer.du, layer.dv)
        entries.append(entry)
    return entries


def export_netx(ir: NetworkIR, net: IntNetwork, path) -> Path:
    """Write the network as a netx HDF5 description (module doc); returns the
    path.  Raises NetxExportError (before writing anything) if it does not fit."""
    return fmt.write_file(path, _entries(ir, net))
