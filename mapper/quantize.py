"""Quantization: float IR layers -> Loihi integer layers (hwmodel.network).

Units.  A layer's float weights W, biases b and threshold theta share one scale
sigma (integer synaptic-input units per float unit, per layer).  With weight
exponent e the stored weight is w = W*sigma/2**e rounded to the Loihi grid, so a
spike delivers w << e == W*sigma to u (before Loihi's own << 6); the threshold
mantissa is vth = theta*sigma (17 bit); the bias added to v every step is
bias_mant << bias_exp == b*sigma*64 (13-bit mantissa, 3-bit exponent).  Hence
the integer layer computes the float layer's function up to rounding.

Choice of sigma.  vThMant given: sigma = vThMant/theta.  weightExponent e given
(NeuronSpec.weight_exp): e is fixed, and without vThMant sigma puts the peak
weight at the top of the range with that e (then capped as below); a peak that
needs a larger e is a QuantizationError.  Otherwise sigma puts the
layer's peak weight at the top of the 8-bit range with e = 0 (a layer without
weights starts from half the largest threshold mantissa).  The peak is the
largest |weight|, or with weight_percentile p < 100 the p-th percentile of the
non-zero |weights|: weights beyond it are clipped to the range (the report's
weight error includes them) and the others keep more resolution.  Where that
makes the threshold mantissa smaller than THRESHOLD_RESOLUTION (a threshold of a
few weights, so rounding it would cost percents), sigma is doubled up to 7
times (as far as the bias allows) and the weights use the exponent instead.
sigma is then reduced where the threshold mantissa would overflow or the
largest bias would not fit a 13-bit mantissa with exponent 7.  e is the
smallest exponent >= 0 that fits the peak into the range.  Negative exponents
are never used: Loihi applies the exponent to each synapse before summing
(keeping 6 fractional bits), while Lava shifts each connection block's sum
right and floors it, so the two agree only for e >= 0.  A layer whose scale is
capped (tiny weights next to a large threshold or bias, or a small user
vThMant) keeps e = 0 and uses fewer weight bits; the report's weight error
shows the cost.  A connection with ConnectionSpec.own_exponent takes no part
in choosing sigma and e: it gets the smallest exponent that fits its own
weights at the layer's sigma (its weight error is then its own rounding).
The sign mode (hwmodel.formats.sign_mode) follows the layer's weights and its
useSharedSign (NeuronSpec.shared_sign): a sign bit in every weight halves the
grid of 8-bit weights (step 2), a shared sign keeps it (step 1).
The input layer (frames as constant currents, pixels in [0, 1]) gets the sigma
that maps a pixel of 1.0 to the largest bias mantissa with bias_exp = 0 (or
biasExp); with vThMant given, the smallest bias exponent that holds a pixel of 1.0.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from hwmodel import formats
from hwmodel.errors import NetworkError, NxCompileError
from hwmodel.network import (INPUT_MODES, RESET_MODES, IntConnection, IntLayer, IntNetwork,
                             IntWindow)
from nxcompile.ir import (INPUT, ConnectionSpec, LayerSpec, NetworkIR, connection_matrix,
                          delay_matrix)


# Smallest threshold mantissa the automatic scale aims for: the threshold then
# carries at most 1/128 relative rounding error.
THRESHOLD_RESOLUTION = 64


class QuantizationError(NxCompileError, ValueError):
    """A parameter cannot be represented in Loihi's integer formats."""


@dataclass
class LayerQuantization:
    """What quantization did to one layer: its scale sigma (integer input units
    per float unit), exponents, threshold mantissa, the relative errors
    (||q/sigma - x|| / ||x||) of weights and biases, and how many weights were
    clipped to the weight range (only with weight_percentile < 100)."""

    sigma: float
    weight_exp: int
    bias_exp: int
    vth: int
    weight_error: float = 0.0
    bias_error: float = 0.0
    weights_clipped: int = 0


def _check_finite(name: str, what: str, x: np.ndarray) -> None:
    if x.size and not np.all(np.isfinite(x)):
        bad = x[~np.isfinite(x)].ravel()[0]
        raise QuantizationError(f"layer {name}: {what} contains {bad}; must be finite")


def _rel_error(q: np.ndarray, x: np.ndarray) -> float:
    norm = np.linalg.norm(x)
    return float(np.linalg.norm(q - x) / norm) if norm > 0 else 0.0


def _bias_exponent(name: str, bias_v: np.ndarray, fixed: int | None, what: str = "bias",
                   remedy: str = "the bias or the layer's scale (vThMant)") -> int:
    """Smallest exponent whose 13-bit mantissa holds the largest bias (v units);
    errors name it as `what` and suggest lowering `remedy`."""
    peak = float(np.max(np.abs(bias_v))) if bias_v.size else 0.0
    need = 0 if peak <= formats.BIAS_MANT_MAX else math.ceil(math.log2(peak / formats.BIAS_MANT_MAX))
    if fixed is not None:
        need = fixed if need <= fixed else need
    if need > formats.BIAS_EXP_MAX:
        raise QuantizationError(
            f"layer {name}: {what} needs a {formats.BIAS_MANT_BITS}-bit mantissa with exponent "
            f"{need}, limit {formats.BIAS_EXP_MAX} (up to {peak:.4g} in voltage units); "
            f"lower {remedy}")
    if fixed is not None and need > fixed:
        raise QuantizationError(
            f"layer {name}: biasExp={fixed} too small for the {what}, needs {need}")
    return need


def _quantize_bias(bias_v: np.ndarray, bias_exp: int) -> np.ndarray:
    mant = np.round(bias_v / 2 ** bias_exp)
    return np.clip(mant, -formats.BIAS_MANT_MAX - 1, formats.BIAS_MANT_MAX).astype(np.int64)


def _flat_bias(layer: LayerSpec) -> np.ndarray:
    """Per-neuron float bias in HWC flat order (Keras bias is per output channel)."""
    return np.zeros(layer.n) if layer.bias is None else _per_neuron(layer, layer.bias)


def _per_neuron(layer: LayerSpec, per_channel) -> np.ndarray:
    """Values per output channel (or one per neuron) -> per neuron, flat HWC order."""
    values = np.asarray(per_channel, dtype=np.float64).ravel()
    return np.tile(values, layer.n // values.size)


def _check_range(name: str, what: str, value, lo: int, hi: int) -> None:
    if not (isinstance(value, (int, np.integer)) and lo <= value <= hi):
        raise QuantizationError(f"layer {name}: {what}={value!r} must be an integer in {lo}..{hi}")


def _check_neuron(layer: LayerSpec) -> None:
    """Raise QuantizationError unless the layer's neuron parameters fit Loihi's fields."""
    nrn, name = layer.neuron, layer.name
    if not (np.isfinite(nrn.threshold) and nrn.threshold > 0):
        raise QuantizationError(f"layer {name}: threshold {nrn.threshold} must be finite and > 0")
    if nrn.reset not in RESET_MODES:
        raise QuantizationError(f"layer {name}: resetMode={nrn.reset!r} not one of {RESET_MODES}")
    _check_range(name, "decay_u", nrn.decay_u, formats.DU_NO_DECAY, formats.DECAY_UNITY - 1)
    _check_range(name, "decay_v", nrn.decay_v, 0, formats.DECAY_UNITY - 1)
    _check_range(name, "numWeightBits", nrn.num_weight_bits, 1, formats.WEIGHT_BITS_MAX)
    if nrn.bias_exp is not None:
        _check_range(name, "biasExp", nrn.bias_exp, 0, formats.BIAS_EXP_MAX)
    if layer.kind == INPUT and layer.input_mode not in INPUT_MODES:
        raise QuantizationError(f"layer {name}: input_mode={layer.input_mode!r} not one of "
                                f"{INPUT_MODES}")
    if layer.kind == INPUT and layer.input_mode == "bias_mant" and (
            nrn.vth_mant is None or nrn.bias_exp is None):
        raise QuantizationError(f"layer {name}: input_mode 'bias_mant' takes the integer bias "
                                f"mantissas as they are and needs vThMant and biasExp set")
    _check_range(name, "reset_interval", nrn.reset_interval, 0, np.iinfo(np.int32).max)
    if nrn.reset_interval:
        _check_range(name, "reset_offset", nrn.reset_offset, 0, nrn.reset_interval - 1)
        if nrn.reset != "hard":
            raise QuantizationError(f"layer {name}: a periodic reset (reset_interval="
                                    f"{nrn.reset_interval}) needs resetMode='hard'")


def _input_gain(vth: int, bias_exp: int, threshold: float) -> float:
    """Bias mantissa per unit of input: one mantissa step above the exact scale, so an
    input equal to the threshold gives a bias strictly above vth << 6 and spikes every
    step (Loihi spikes only when v > vth << 6).  Rates are 1/4032 (or less) too high."""
    return (vth * 2 ** formats.THRESHOLD_SHIFT / 2 ** bias_exp + 1) / threshold


def _initial_voltage(layer: LayerSpec, sigma: float) -> np.ndarray | None:
    """IntLayer.v_init of the layer at scale sigma: v_init * sigma << 6 (v
    units) rounded, per neuron (None where v_init is None or all 0);
    QuantizationError where it is not finite or beyond the 24-bit voltage."""
    if layer.v_init is None:
        return None
    v = _per_neuron(layer, layer.v_init)
    _check_finite(layer.name, "v_init", v)
    if layer.kind == INPUT and layer.input_mode == "spikes" and v.any():
        raise QuantizationError(f"layer {layer.name}: v_init is set, but a spike-mode input "
                                f"layer has no compartments to start from it")
    v_units = np.round(v * sigma * 2 ** formats.ACTIVATION_SHIFT)
    worst = float(np.max(np.abs(v_units), initial=0))
    if worst > formats.STATE_MAX - 1:
        raise QuantizationError(
            f"layer {layer.name}: v_init up to {np.max(np.abs(v)):.4g} is {worst:.0f} in v "
            f"units at the layer's scale (threshold mantissa "
            f"{round(layer.neuron.threshold * sigma)}), beyond the 24-bit voltage "
            f"+-{formats.STATE_MAX - 1}")
    return v_units.astype(np.int64) if v_units.any() else None


def _periodic_reset(layer: LayerSpec) -> dict:
    """The IntLayer fields of the layer's periodic reset."""
    return dict(reset_interval=layer.neuron.reset_interval,
                reset_offset=layer.neuron.reset_offset)


def _quantize_input(layer: LayerSpec) -> tuple[IntLayer, LayerQuantization]:
    """The input layer: its bias is set per sample (input_gain mantissa units per
    unit of input); inputs (pixels) in [0, 1], so an input of 1.0 is its largest bias.
    In bias_mant mode the inputs are the mantissas (gain 1) with the layer's
    vThMant and biasExp."""
    nrn = layer.neuron
    if layer.input_mode == "bias_mant":
        vth, bias_exp = nrn.vth_mant, nrn.bias_exp
        _check_vth(layer.name, vth)
    elif nrn.vth_mant is not None:
        vth = nrn.vth_mant
        _check_vth(layer.name, vth)
        # an input of 1.0 in v units, with room for the extra mantissa step of _input_gain
        one_v = (vth * 2 ** formats.THRESHOLD_SHIFT + 2 ** formats.BIAS_EXP_MAX) / nrn.threshold
        bias_exp = _bias_exponent(layer.name, np.array([one_v]), nrn.bias_exp, "input of 1.0",
                                  "vThMant")
    else:   # an input of 1.0 -> the largest bias mantissa
        bias_exp = nrn.bias_exp or 0
        vth = int((formats.BIAS_MANT_MAX * nrn.threshold - 1) * 2 ** bias_exp
                  // 2 ** formats.THRESHOLD_SHIFT)
        _check_vth(layer.name, vth)
    sigma = vth / nrn.threshold
    gain = 1.0 if layer.input_mode == "bias_mant" else _input_gain(vth, bias_exp, nrn.threshold)
    q = IntLayer(name=layer.name, shape=tuple(layer.shape), vth=vth,
                 bias_mant=np.zeros(layer.n, np.int64), bias_exp=bias_exp,
                 du=nrn.decay_u, dv=nrn.decay_v, reset=nrn.reset, is_input=True,
                 input_mode=layer.input_mode, input_gain=gain,
                 v_init=_initial_voltage(layer, sigma), **_periodic_reset(layer))
    return q, LayerQuantization(sigma=sigma, weight_exp=0, bias_exp=bias_exp, vth=vth)


def _check_vth(name: str, vth: int) -> None:
    if not 1 <= vth <= formats.THRESHOLD_MANT_MAX:
        raise QuantizationError(
            f"layer {name}: threshold mantissa vThMant={vth} outside 1..{formats.THRESHOLD_MANT_MAX}")


def _weight_exponent(name: str, peak_scaled: float, w_top: int) -> int:
    """Smallest exponent e in 0..7 with peak_scaled / 2**e <= w_top (see module doc)."""
    ratio = peak_scaled / w_top * (1 - 1e-12)      # a peak at the top, up to float rounding
    if ratio <= 1:
        return 0
    e = math.ceil(math.log2(ratio))
    if e > formats.WEIGHT_EXP_MAX:
        raise QuantizationError(
            f"layer {name}: weights at the layer's scale need weight exponent {e}, limit "
            f"{formats.WEIGHT_EXP_MAX}; the threshold mantissa is too large for these weights "
            f"(lower vThMant)")
    return e


def _bias_cap(bias: np.ndarray) -> float:
    """Largest scale at which the largest |bias| still fits a 13-bit mantissa with
    the largest (3-bit) exponent; inf without a bias."""
    peak = float(np.max(np.abs(bias), initial=0))
    if peak == 0:
        return math.inf
    fits = formats.BIAS_MANT_MAX * 2 ** formats.BIAS_EXP_MAX / 2 ** formats.ACTIVATION_SHIFT
    return fits / peak * (1 - 1e-9)     # margin: float rounding of bias * sigma * 64


def _threshold_boost(vth: float, headroom: float) -> int:
    """Smallest b in 0..7 with vth * 2**b >= THRESHOLD_RESOLUTION (7 if none),
    lowered until 2**b is at most `headroom` (how far the scale may still grow)."""
    if vth >= THRESHOLD_RESOLUTION:
        return 0
    b = min(formats.WEIGHT_EXP_MAX, math.ceil(math.log2(THRESHOLD_RESOLUTION / vth)))
    while b > 0 and 2 ** b > headroom:
        b -= 1
    return b


def _pooled(parts: list) -> tuple:
    """(values, counts) of several connections' _float_synapses, concatenated."""
    if not parts:
        return np.zeros(0), np.zeros(0, np.int64)
    return np.concatenate([v for v, _, _ in parts]), np.concatenate([n for _, n, _ in parts])


def _peak(values: np.ndarray, counts: np.ndarray, percentile: float) -> float:
    """The |weight| that is put at the top of the weight range (module doc):
    over synapses, each value of `values` standing for `counts` synapses (the
    percentile as np.percentile's linear method would give it on them all)."""
    mag, counts = np.abs(values), np.asarray(counts)
    keep = (mag != 0) & (counts > 0)
    mag, counts = mag[keep], counts[keep]
    if not mag.size:
        return 0.0
    if percentile >= 100:
        return float(np.max(mag))
    order = np.argsort(mag, kind="stable")
    mag, ends = mag[order], np.cumsum(counts[order])
    pos = percentile / 100 * (ends[-1] - 1)
    lo, hi = (mag[np.searchsorted(ends, j, side="right")] for j in (math.floor(pos), math.ceil(pos)))
    t = pos - math.floor(pos)
    return float(hi - (hi - lo) * (1 - t) if t >= 0.5 else lo + (hi - lo) * t)


def _float_synapses(spec: ConnectionSpec, target_shape: tuple):
    """(values, counts, matrix) of a connection's float weights: a kernel
    connection (window_of takes its kernel directly) as its used kernel taps
    and the synapses each makes, matrix None; any other as its matrix's data,
    one synapse each."""
    if keeps_kernel(spec):
        channels = slice(spec.channel_offset, spec.channel_offset + spec.source_shape[2])
        kernel = np.asarray(spec.kernel, np.float64)[:, :, channels]
        (oy, ky, _), (ox, kx, _) = spec.op.window_axes(spec, tuple(target_shape))
        taps = np.outer(np.bincount(ky, minlength=kernel.shape[0]),
                        np.bincount(kx, minlength=kernel.shape[1]))
        counts = np.broadcast_to(taps[:, :, None, None], kernel.shape)
        return kernel.ravel(), counts.ravel(), None
    m = connection_matrix(spec, target_shape)
    return m.data, np.ones(len(m.data), np.int64), m


def keeps_kernel(spec: ConnectionSpec) -> bool:
    """True for a connection window_of builds straight from its kernel (a
    weighted window kind without delays)."""
    return spec.op.window and spec.op.weighted and spec.delays is None


def _quantize_neurons(ir: NetworkIR, layer: LayerSpec, weight_percentile: float):
    """Integer layer and integer connections of one non-input layer."""
    nrn = layer.neuron
    syn = {src: _float_synapses(ir.connection(src, layer.name), layer.shape)
           for src in ir.predecessors(layer.name)}
    for src, (values, _, _) in syn.items():
        _check_finite(layer.name, f"kernel (from {src})", values)
    bias = _flat_bias(layer)
    _check_finite(layer.name, "bias", bias)
    own = {src for src in syn if ir.connection(src, layer.name).own_exponent}
    all_w, all_n = _pooled(list(syn.values()))
    mode = formats.sign_mode(all_w[all_n > 0], nrn.shared_sign)
    all_w, all_n = _pooled([syn[src] for src in syn if src not in own])   # the weights that set sigma
    step = formats.weight_step(nrn.num_weight_bits, mode)
    lo, hi = formats.weight_range(mode)
    lo_units, hi_units = -(-lo // step), hi // step     # the grid's ends, in steps
    w_top = (formats.WEIGHT_MAX // step) * step         # largest magnitude every sign holds
    if w_top == 0:
        raise QuantizationError(
            f"layer {layer.name}: numWeightBits={nrn.num_weight_bits} with weights of both signs "
            f"(sign mode {mode!r}) holds no weight but 0 and -{step}: its step {step} exceeds "
            f"the largest magnitude {formats.WEIGHT_MAX}; use numWeightBits >= 2 or useSharedSign=True")
    peak = _peak(all_w, all_n, weight_percentile)
    fixed_exp = nrn.weight_exp
    if fixed_exp is not None:
        _check_range(layer.name, "weightExponent", fixed_exp, 0, formats.WEIGHT_EXP_MAX)
    if nrn.vth_mant is not None:
        sigma = nrn.vth_mant / nrn.threshold
    else:
        sigma = w_top / peak if peak > 0 else formats.THRESHOLD_MANT_MAX / nrn.threshold / 2
        cap = _bias_cap(bias)
        if fixed_exp is None:
            sigma *= 2 ** _threshold_boost(nrn.threshold * sigma, cap / sigma)
        elif peak > 0:
            sigma *= 2 ** fixed_exp
        sigma = min(sigma, formats.THRESHOLD_MANT_MAX / nrn.threshold)
        if cap * nrn.threshold >= 1:    # else no threshold mantissa fits: the bias error says why
            sigma = min(sigma, cap)
        # integer threshold, no overflow (the factor absorbs float rounding of exact products)
        sigma = math.floor(nrn.threshold * sigma * (1 + 1e-12)) / nrn.threshold
    vth = int(round(nrn.threshold * sigma))
    _check_vth(layer.name, vth)
    sigma = vth / nrn.threshold     # exact threshold; weights and bias follow it
    w_exp = _weight_exponent(layer.name, peak * sigma, w_top)
    if fixed_exp is not None:
        if w_exp > fixed_exp:
            raise QuantizationError(
                f"layer {layer.name}: weightExponent={fixed_exp} too small: the weights at the "
                f"layer's scale (vThMant {vth}) reach {peak * sigma / 2 ** fixed_exp:.0f}, limit "
                f"{w_top}; they need weight exponent {w_exp} (or a lower vThMant)")
        w_exp = fixed_exp

    def stored(units: np.ndarray) -> np.ndarray:
        """Rounded units -> the integers Loihi stores (clipped to the grid)."""
        return (np.clip(units, lo_units, hi_units) * step).astype(np.int64)

    conns, err_num, err_den, clipped = [], 0.0, 0.0, 0
    for src, (values, counts, m) in syn.items():
        exp = w_exp if src not in own else _weight_exponent(
            layer.name, float(np.max(np.abs(values[counts > 0]), initial=0)) * sigma, w_top)

        def units_of(values: np.ndarray, exp=exp) -> np.ndarray:
            """Float weights in steps of the grid, rounded (before clipping)."""
            return np.round(values * sigma / 2 ** exp / step)

        def on_grid(values: np.ndarray, units_of=units_of) -> np.ndarray:
            return stored(units_of(values))

        units = units_of(values)
        clipped += int(counts[(units < lo_units) | (units > hi_units)].sum())
        q = stored(units)
        err_num += float(np.sum(counts * (q * 2 ** exp / sigma - values) ** 2))
        err_den += float(np.sum(counts * values ** 2))
        spec = ir.connection(src, layer.name)
        if m is None:           # a kernel: the window holds the synapses
            conns.append(IntConnection(source=src, target=layer.name, weights=None,
                                       weight_exp=exp, num_weight_bits=nrn.num_weight_bits,
                                       sign_mode=mode, window=window_of(spec, layer.shape, None,
                                                                        on_grid)))
            continue
        w = m.copy()
        w.data = q
        w.eliminate_zeros()
        w = sp.csr_matrix(w)
        delays = delay_matrix(spec, layer.shape)
        if delays is not None:       # only on the synapses that keep a weight
            delays = sp.csr_matrix(delays.multiply(w != 0), dtype=np.int64)
            delays.eliminate_zeros()
        conns.append(IntConnection(source=src, target=layer.name, weights=w,
                                   weight_exp=exp, num_weight_bits=nrn.num_weight_bits,
                                   sign_mode=mode, window=window_of(spec, layer.shape, w, on_grid),
                                   delays=delays if delays is not None and delays.nnz else None))
    bias_v = bias * sigma * 2 ** formats.ACTIVATION_SHIFT
    bias_exp = _bias_exponent(layer.name, bias_v, nrn.bias_exp)
    mant = _quantize_bias(bias_v, bias_exp)
    q = IntLayer(name=layer.name, shape=tuple(layer.shape), vth=vth, bias_mant=mant,
                 bias_exp=bias_exp, du=nrn.decay_u, dv=nrn.decay_v, reset=nrn.reset,
                 v_init=_initial_voltage(layer, sigma), **_periodic_reset(layer))
    info = LayerQuantization(
        sigma=sigma, weight_exp=w_exp, bias_exp=bias_exp, vth=vth,
        weight_error=math.sqrt(err_num / err_den) if err_den > 0 else 0.0,
        bias_error=_rel_error(mant * 2.0 ** bias_exp / sigma / 2 ** formats.ACTIVATION_SHIFT, bias),
        weights_clipped=clipped)
    _warn_accumulator(layer.name, conns)
    return q, conns, info


def window_of(spec: ConnectionSpec, target_shape: tuple, weights,
              on_grid=None) -> IntWindow | None:
    """The integer synapses `weights` of a window connection as an IntWindow
    over its source (the kernel's rows of the source's channels), or None for
    other kinds, for connections with delays and where one kernel tap carries
    different weights.

    on_grid (float weights -> their integers) gives a weighted kind's kernel
    directly, elementwise as the matrix entries it holds were made; without it
    the kernel is read back from `weights` (WindowKind.kernel_of)."""
    kind = spec.op
    if not kind.window or spec.delays is not None:      # delays: the matrix path
        return None
    if on_grid is not None and keeps_kernel(spec):
        kernel = on_grid(np.asarray(spec.kernel, np.float64))
    else:
        kernel = kind.kernel_of(spec, tuple(target_shape), weights)
    if kernel is None:
        return None
    channels = slice(spec.channel_offset, spec.channel_offset + spec.source_shape[2])
    return IntWindow(kernel=np.asarray(kernel[:, :, channels], np.int64),
                     strides=tuple(spec.strides), origin=tuple(kind.origin(spec, tuple(target_shape))),
                     depthwise=kind.per_channel,
                     first=spec.channel_offset * kernel.shape[3] if kind.per_channel else 0,
                     dilation=tuple(spec.dilation), source_shape=tuple(spec.source_shape),
                     target_shape=tuple(target_shape))


def _warn_accumulator(name: str, conns: list) -> None:
    """Warn if all excitatory (or all inhibitory) inputs firing together could
    overflow the 16-bit dendritic accumulator, which Lava does not model."""
    limit = 2 ** (formats.DENDRITE_ACCUMULATOR_BITS - 1)

    def per_target(c: IntConnection, sign: int) -> np.ndarray:
        """Sum of the weights of one sign into every target neuron."""
        if c.weights is None:
            return c.window.row_sums(np.maximum(sign * c.window.kernel, 0))
        return np.asarray((sign * c.weights).maximum(0).sum(axis=1)).ravel()
    pos = sum(per_target(c, 1) * 2.0 ** c.weight_exp for c in conns)
    neg = sum(per_target(c, -1) * 2.0 ** c.weight_exp for c in conns)
    worst = max(float(np.max(pos, initial=0)), float(np.max(neg, initial=0)))
    if worst >= limit:
        warnings.warn(f"layer {name}: worst-case synaptic input per step {worst:.0f} exceeds the "
                      f"{formats.DENDRITE_ACCUMULATOR_BITS}-bit dendritic accumulator "
                      f"(limit {limit}); Loihi may saturate where the simulators do not",
                      stacklevel=3)


def quantize_network(ir: NetworkIR, weight_percentile: float = 100.0) -> tuple[IntNetwork, dict]:
    """Quantize every layer of the IR. Returns the IntNetwork and, per layer,
    its LayerQuantization.

    weight_percentile: 100 scales each layer by its largest |weight|; a value
    in (0, 100) by that percentile of its non-zero |weights| (module doc)."""
    if not (isinstance(weight_percentile, (int, float)) and 0 < weight_percentile <= 100):
        raise NetworkError(f"weight_percentile={weight_percentile!r} must be in (0, 100]")
    ir.validate()
    if len(ir.inputs) != 1 or len(ir.outputs) != 1:
        raise NetworkError(f"network must have exactly one input and one output layer, "
                           f"has inputs {ir.inputs} and outputs {ir.outputs}")
    net = IntNetwork(input_layer=ir.inputs[0], output_layer=ir.outputs[0])
    info = {}
    for layer in ir.layers():
        _check_neuron(layer)
        for src in ir.predecessors(layer.name):
            op = ir.connection(src, layer.name).op
            if not op.rate:
                raise NetworkError(f"layer {layer.name}: a {op.name} connection ({op.keras_class}) "
                                   f"is no synaptic sum and has no rate-code mapping; "
                                   f"convert(..., code='ttfs') maps it")
        if layer.kind == INPUT:
            q, info[layer.name] = _quantize_input(layer)
        else:
            q, conns, info[layer.name] = _quantize_neurons(ir, layer, weight_percentile)
            net.connections.extend(conns)
        net.layers[layer.name] = q
    return net, info
