"""Quantization: float IR layers -> Loihi integer layers (hwmodel.network).

Units.  A layer's float weights W, biases b and threshold theta share one scale
sigma (integer synaptic-input units per float unit, per layer).  With weight
exponent e the stored weight is w = W*sigma/2**e rounded to the Loihi grid, so a
spike delivers w << e == W*sigma to u (before Loihi's own << 6); the threshold
mantissa is vth = theta*sigma (17 bit); the bias added to v every step is
bias_mant << bias_exp == b*sigma*64 (13-bit mantissa, 3-bit exponent).  Hence
the integer layer computes the float layer's function up to rounding.

Choice of sigma.  vThMant given: sigma = vThMant/theta.  Otherwise sigma puts the
largest weight at the top of the 8-bit range with e = 0, and is reduced if the
threshold mantissa would overflow.  e is the smallest exponent >= 0 that fits the
largest weight into the range.  Negative exponents are never used: Loihi applies
the exponent to each synapse before summing (keeping 6 fractional bits), while
Lava shifts each connection block's sum right and floors it, so the two agree
only for e >= 0.  A layer whose scale is capped (tiny weights next to a large
threshold, or a small user vThMant) keeps e = 0 and uses fewer weight bits; the
report's weight error shows the cost.
The input layer (frames as constant currents, pixels in [0, 1]) gets the sigma
that maps a pixel of 1.0 to the largest bias mantissa with bias_exp = 0.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hwmodel import formats
from hwmodel.network import IntConnection, IntLayer, IntNetwork
from nxcompile.connectivity import connection_matrix
from nxcompile.ir import LayerSpec, NetworkIR


class QuantizationError(ValueError):
    """A parameter cannot be represented in Loihi's integer formats."""


@dataclass
class LayerQuantization:
    """What quantization did to one layer: its scale and the relative errors
    (||q/sigma - x|| / ||x||) of weights and biases."""

    sigma: float
    weight_exp: int
    bias_exp: int
    vth: int
    weight_error: float = 0.0
    bias_error: float = 0.0


def _check_finite(name: str, what: str, x: np.ndarray) -> None:
    if x.size and not np.all(np.isfinite(x)):
        bad = x[~np.isfinite(x)].ravel()[0]
        raise QuantizationError(f"layer {name}: {what} contains {bad}; must be finite")


def _rel_error(q: np.ndarray, x: np.ndarray) -> float:
    norm = np.linalg.norm(x)
    return float(np.linalg.norm(q - x) / norm) if norm > 0 else 0.0


def _bias_exponent(name: str, bias_v: np.ndarray, fixed: int | None) -> int:
    """Smallest exponent whose 13-bit mantissa holds the largest bias (v units)."""
    peak = float(np.max(np.abs(bias_v))) if bias_v.size else 0.0
    need = 0 if peak <= formats.BIAS_MANT_MAX else math.ceil(math.log2(peak / formats.BIAS_MANT_MAX))
    if fixed is not None:
        need = fixed if need <= fixed else need
    if need > formats.BIAS_EXP_MAX:
        raise QuantizationError(
            f"layer {name}: bias needs a {formats.BIAS_MANT_BITS}-bit mantissa with exponent "
            f"{need}, limit {formats.BIAS_EXP_MAX} (largest bias {peak:.4g} in voltage units); "
            f"lower the bias or the layer's scale (vThMant)")
    if fixed is not None and need > fixed:
        raise QuantizationError(
            f"layer {name}: biasExp={fixed} too small for the bias, needs {need}")
    return need


def _quantize_bias(bias_v: np.ndarray, bias_exp: int) -> np.ndarray:
    mant = np.round(bias_v / 2 ** bias_exp)
    return np.clip(mant, -formats.BIAS_MANT_MAX - 1, formats.BIAS_MANT_MAX).astype(np.int64)


def _flat_bias(layer: LayerSpec) -> np.ndarray:
    """Per-neuron float bias in HWC flat order (Keras bias is per output channel)."""
    if layer.bias is None:
        return np.zeros(layer.n)
    b = np.asarray(layer.bias, dtype=np.float64).ravel()
    return np.tile(b, layer.n // b.size)


def _quantize_input(layer: LayerSpec) -> tuple[IntLayer, LayerQuantization]:
    nrn = layer.neuron
    bias_exp = nrn.bias_exp or 0
    if nrn.vth_mant is not None:
        vth = nrn.vth_mant
    else:   # a pixel of 1.0 -> the largest bias mantissa
        vth = int(formats.BIAS_MANT_MAX * 2 ** bias_exp * nrn.threshold
                  // 2 ** formats.THRESHOLD_SHIFT)
    sigma = vth / nrn.threshold
    gain = sigma * 2 ** formats.THRESHOLD_SHIFT / 2 ** bias_exp
    _check_vth(layer.name, vth)
    q = IntLayer(name=layer.name, shape=tuple(layer.shape), vth=vth,
                 bias_mant=np.zeros(layer.n, np.int64), bias_exp=bias_exp,
                 du=nrn.decay_u, dv=nrn.decay_v, reset=nrn.reset, is_input=True,
                 input_mode=layer.input_mode, input_gain=gain)
    return q, LayerQuantization(sigma=sigma, weight_exp=0, bias_exp=bias_exp, vth=vth)


def _check_vth(name: str, vth: int) -> None:
    if not 1 <= vth <= formats.THRESHOLD_MANT_MAX:
        raise QuantizationError(
            f"layer {name}: threshold mantissa vThMant={vth} outside 1..{formats.THRESHOLD_MANT_MAX}")


def _weight_exponent(name: str, peak_scaled: float, w_top: int) -> int:
    """Smallest exponent e in 0..7 with peak_scaled / 2**e <= w_top (see module doc)."""
    if peak_scaled <= w_top:
        return 0
    e = math.ceil(math.log2(peak_scaled / w_top))
    if e > formats.WEIGHT_EXP_MAX:
        raise QuantizationError(
            f"layer {name}: weights at the layer's scale need weight exponent {e}, limit "
            f"{formats.WEIGHT_EXP_MAX}; the threshold mantissa is too large for these weights "
            f"(lower vThMant)")
    return e


def _quantize_neurons(ir: NetworkIR, layer: LayerSpec):
    """Integer layer and integer connections of one non-input layer."""
    nrn = layer.neuron
    mats = {src: connection_matrix(ir.connection(src, layer.name), layer.shape)
            for src in ir.predecessors(layer.name)}
    for src, m in mats.items():
        _check_finite(layer.name, f"kernel (from {src})", m.data)
    bias = _flat_bias(layer)
    _check_finite(layer.name, "bias", bias)
    if not (np.isfinite(nrn.threshold) and nrn.threshold > 0):
        raise QuantizationError(f"layer {layer.name}: threshold {nrn.threshold} must be > 0")
    all_w = np.concatenate([m.data for m in mats.values()]) if mats else np.zeros(0)
    mode = formats.sign_mode(all_w)
    step = formats.weight_step(nrn.num_weight_bits, mode)
    lo, hi = formats.weight_range(mode)
    w_top = (formats.WEIGHT_MAX // step) * step
    peak = float(np.max(np.abs(all_w))) if all_w.size else 0.0
    if nrn.vth_mant is not None:
        sigma = nrn.vth_mant / nrn.threshold
    else:
        sigma = w_top / peak if peak > 0 else formats.THRESHOLD_MANT_MAX / nrn.threshold / 2
        sigma = min(sigma, formats.THRESHOLD_MANT_MAX / nrn.threshold)
        sigma = math.floor(nrn.threshold * sigma) / nrn.threshold   # integer threshold, no overflow
    vth = int(round(nrn.threshold * sigma))
    _check_vth(layer.name, vth)
    sigma = vth / nrn.threshold     # exact threshold; weights and bias follow it
    w_exp = _weight_exponent(layer.name, peak * sigma, w_top)
    conns, err_num, err_den = [], 0.0, 0.0
    for src, m in mats.items():
        w = m.copy()
        w.data = np.clip(np.round(m.data * sigma / 2 ** w_exp / step) * step, lo, hi)
        err_num += float(np.sum((w.data * 2 ** w_exp / sigma - m.data) ** 2))
        err_den += float(np.sum(m.data ** 2))
        w.data = w.data.astype(np.int64)
        w.eliminate_zeros()
        conns.append(IntConnection(source=src, target=layer.name, weights=sp.csr_matrix(w),
                                   weight_exp=w_exp, num_weight_bits=nrn.num_weight_bits,
                                   sign_mode=mode))
    bias_v = bias * sigma * 2 ** formats.ACTIVATION_SHIFT
    bias_exp = _bias_exponent(layer.name, bias_v, nrn.bias_exp)
    mant = _quantize_bias(bias_v, bias_exp)
    q = IntLayer(name=layer.name, shape=tuple(layer.shape), vth=vth, bias_mant=mant,
                 bias_exp=bias_exp, du=nrn.decay_u, dv=nrn.decay_v, reset=nrn.reset)
    info = LayerQuantization(
        sigma=sigma, weight_exp=w_exp, bias_exp=bias_exp, vth=vth,
        weight_error=math.sqrt(err_num / err_den) if err_den > 0 else 0.0,
        bias_error=_rel_error(mant * 2.0 ** bias_exp / sigma / 2 ** formats.ACTIVATION_SHIFT, bias))
    _warn_accumulator(layer.name, conns)
    return q, conns, info


def _warn_accumulator(name: str, conns: list) -> None:
    """Warn if all excitatory (or all inhibitory) inputs firing together could
    overflow the 16-bit dendritic accumulator, which Lava does not model."""
    limit = 2 ** (formats.DENDRITE_ACCUMULATOR_BITS - 1)
    pos = sum(np.asarray(c.weights.maximum(0).sum(axis=1)).ravel() * 2.0 ** c.weight_exp
              for c in conns)
    neg = sum(np.asarray((-c.weights).maximum(0).sum(axis=1)).ravel() * 2.0 ** c.weight_exp
              for c in conns)
    worst = max(float(np.max(pos, initial=0)), float(np.max(neg, initial=0)))
    if worst >= limit:
        warnings.warn(f"layer {name}: worst-case synaptic input per step {worst:.0f} exceeds the "
                      f"{formats.DENDRITE_ACCUMULATOR_BITS}-bit dendritic accumulator "
                      f"(limit {limit}); Loihi may saturate where the simulators do not",
                      stacklevel=3)


def quantize_network(ir: NetworkIR) -> tuple[IntNetwork, dict]:
    """Quantize every layer of the IR. Returns the IntNetwork and, per layer,
    its LayerQuantization."""
    ir.validate()
    if len(ir.inputs) != 1 or len(ir.outputs) != 1:
        raise ValueError(f"network must have exactly one input and one output layer, "
                         f"has inputs {ir.inputs} and outputs {ir.outputs}")
    net = IntNetwork(input_layer=ir.inputs[0], output_layer=ir.outputs[0])
    info = {}
    for layer in ir.layers():
        if layer.kind == "input":
            q, info[layer.name] = _quantize_input(layer)
        else:
            q, conns, info[layer.name] = _quantize_neurons(ir, layer)
            net.connections.extend(conns)
        net.layers[layer.name] = q
    return net, info
