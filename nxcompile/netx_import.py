"""Import a lava-dl netx HDF5 network (lava-dl 0.6's format, mapper.netx_format)
as nxcompile IR holding the integers that netx gives Lava, so that the
compiled network runs bit for bit as lava.lib.dl.netx.hdf5.Network does.

Each block becomes a layer named after its type and index ('conv1', 'dense7'):
  input     with a neuron group: an input layer in 'bias_mant' mode (run() takes
            the per-pixel bias mantissas that netx's caller sets on the input
            block; the file's input weight/bias, the caller's transform, are not
            applied); without: a spike input layer, flat (n,) when a dense
            block follows (the order netx's Network.inp takes), else (H, W, C)
  dense     weight (out, in), also stored 1-D; after 'flatten' its columns index
            the previous block in (C, H, W) order and are permuted to HWC
  conv      weight (C_out, C_in / groups, kH, kW[, 1]), strides, symmetric padding
            and non-square kernels; groups 1 (conv2d) or one per input channel
            (depthwise_conv2d)
  pool      slayer's sum pooling (one weight per window tap, every channel):
            a depthwise_conv2d (netx 0.6 itself refuses pool blocks)
  delay     per-synapse delays of a dense block (netx: DelayDense/DelaySparse):
            a scalar, one per target neuron (slayer's axonal delay of the
            block's neurons, which netx puts on their input synapses), one
            per source, or (out, in); time steps, truncated to integers
  neuron    CUBA or LOIHI: vThMant, du = iDecay - 1, dv = vDecay, bias exponent 6,
            hard reset (weights and biases at scale 1: threshold = vThMant)
Weights and biases are read as netx reads them (cast to integers, truncating).
reset_interval / reset_offset follow hdf5.Network: block k (counted over the
blocks netx builds, input block included) resets u and v at the steps t with
t % reset_interval == (reset_offset + 1 + k) % reset_interval.

Refused by name (NetworkError): neuron types of Loihi 2 (sigma-delta, resonate-
and-fire) and graded spikes; blocks netx 0.6 does not build; a block without a
neuron group (netx's default readout: vThMant 2**17 is beyond Loihi 1's 17-bit
threshold mantissa; num_layers imports the blocks before it); delays on conv
and pool blocks, delays beyond 62 steps (netx clamps them); dilation; other
groups; shapes that do not follow from the geometry; values that Loihi 1's
integer formats do not hold exactly (checked on the quantized network:
from_netx).
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import scipy.sparse as sp

from hwmodel import formats
from hwmodel import synapse_format as sf
from hwmodel.errors import NetworkError
from hwmodel.network import IntNetwork
from mapper import netx_format as fmt
from nxcompile.compiled import CompiledModel
from nxcompile.compiler import compile_ir
from nxcompile.ir import (INPUT, ConnectionSpec, LayerSpec, NetworkIR, NeuronSpec,
                          connection_matrix, delay_matrix, get_kind)


def _pair(group, key: str, default: int) -> tuple:
    """A (y, x) entry (scalar or pair) as a tuple of two ints."""
    if key not in group:
        return (default, default)
    value = np.ravel(group[key][()]).astype(int)
    return (int(value[0]),) * 2 if value.size == 1 else (int(value[0]), int(value[1]))


class _Reader:
    """Builds the IR block by block (module doc)."""

    def __init__(self, path: Path, reset_interval: int | None, reset_offset: int):
        self.path, self.ir = path, NetworkIR()
        self.reset_interval, self.reset_phase = reset_interval, reset_offset + 1
        self.prev: str | None = None          # the last layer with neurons
        self.spike_input: tuple | None = None  # (H, W, C) of an input block without neurons
        self.flatten_next = False

    def where(self, i: int, kind: str) -> str:
        return f"netx file {self.path.name}, layer/{i} ({kind})"

    # -- neurons -----------------------------------------------------------------
    def neuron(self, group, where: str) -> NeuronSpec:
        """The NeuronSpec of a block's neuron group (module doc)."""
        if "neuron" not in group:
            raise NetworkError(
                f"{where}: no neuron group; netx's default readout (vThMant 2**17 = "
                f"{fmt.DEFAULT_NEURON['vThMant']}, iDecay 0, vDecay 4096: a current that never "
                f"decays and never fires) exceeds Loihi 1's {formats.THRESHOLD_MANT_BITS}-bit "
                f"threshold mantissa (limit {formats.THRESHOLD_MANT_MAX}); import the blocks "
                f"before it with num_layers")
        nrn = group["neuron"]
        kind = fmt.read_string(nrn["type"])
        if kind in fmt.LOIHI2_ONLY:
            raise NetworkError(f"{where}: neuron type {kind} ({fmt.LOIHI2_ONLY[kind]}) needs "
                               f"Loihi 2; the target is Loihi 1")
        if kind not in fmt.LIF_TYPES:
            raise NetworkError(f"{where}: neuron type {kind!r} unknown; netx's LIF types are "
                               f"{fmt.LIF_TYPES}")
        graded = ("gradedSpike" in nrn and bool(np.ravel(nrn["gradedSpike"][()])[0])) or (
            "messageBits" in nrn and fmt.scalar(nrn, "messageBits") > 0)
        if graded:
            raise NetworkError(f"{where}: graded spikes need Loihi 2; the target is Loihi 1")
        lif = fmt.lif_params(nrn)
        for field, value, lo, hi in (("vThMant", lif["vth"], 1, formats.THRESHOLD_MANT_MAX),
                                     ("iDecay", lif["du"] + 1, 1, formats.DECAY_UNITY),
                                     ("vDecay", lif["dv"], 0, formats.DECAY_UNITY - 1)):
            if not lo <= value <= hi:
                raise NetworkError(f"{where}: neuron {field}={value} outside {lo}..{hi}, what "
                                   f"nxcompile's Loihi 1 neurons hold")
        periodic = {}
        if self.reset_interval:
            periodic = dict(reset_interval=self.reset_interval,
                            reset_offset=self.reset_phase % self.reset_interval)
        self.reset_phase += 1
        return NeuronSpec(threshold=float(lif["vth"]), vth_mant=lif["vth"], decay_u=lif["du"],
                          decay_v=lif["dv"], bias_exp=lif["bias_exp"], reset="hard", **periodic)

    @staticmethod
    def check_delay(group, where: str) -> None:
        """Refuse the delays of a block that nxcompile takes only on dense blocks."""
        if "delay" in group and np.any(group["delay"][()] != 0):
            raise NetworkError(f"{where}: synaptic delays up to "
                               f"{int(np.max(group['delay'][()]))} steps; nxcompile takes "
                               f"per-synapse delays on dense blocks only (netx 0.6 too)")

    @staticmethod
    def delays(group, shape: tuple, where: str) -> np.ndarray | None:
        """A dense block's `delay` as an int (out, in) matrix, as hdf5.Network.
        create_dense reads it: a scalar for every synapse, a vector of `out`
        entries per target neuron (the block's axonal delays), one of `in`
        entries per source neuron, or the matrix itself; cast to int
        (truncating) as blocks.process.Dense does.  None without delays.
        netx clamps delays above 62 to 62 with a warning: refused here instead."""
        if "delay" not in group:
            return None
        raw = np.asarray(group["delay"][()], np.float64)
        n_out, n_in = shape
        if raw.size == 1:
            d = np.full(shape, raw.ravel()[0])
        elif raw.ndim == 1 and raw.size == n_out:
            d = np.repeat(raw[:, None], n_in, axis=1)
        elif raw.ndim == 1 and raw.size == n_in:
            d = np.repeat(raw[None, :], n_out, axis=0)
        elif raw.shape == shape:
            d = raw
        else:
            raise NetworkError(f"{where}: delay of shape {raw.shape} fits neither the weight "
                               f"{shape}, its {n_out} targets nor its {n_in} sources")
        if not np.all(np.isfinite(d)) or d.min() < 0 or d.max() > sf.DELAY_MAX:
            bad = d[~np.isfinite(d)][0] if not np.all(np.isfinite(d)) else (
                d.min() if d.min() < 0 else d.max())
            raise NetworkError(f"{where}: delay {bad:g} steps outside 0..{sf.DELAY_MAX}, what a "
                               f"Loihi 1 synapse holds (netx clamps to {fmt.MAX_DELAY})")
        d = d.astype(np.int64)
        return d if d.any() else None

    # -- sources -------------------------------------------------------------------
    def source(self, where: str, flat: bool) -> tuple:
        """(layer name, shape) the next block reads; creates the spike input layer
        of an input block without neurons (flat for a dense block)."""
        if self.prev is not None:
            return self.prev, self.ir.layer(self.prev).shape
        if self.spike_input is None:
            raise NetworkError(f"{where}: no input block before it")
        shape = (int(np.prod(self.spike_input)),) if flat else self.spike_input
        self.ir.add_layer(LayerSpec("input0", INPUT, shape, input_mode="spikes"))
        return "input0", shape

    def add(self, name: str, kind: str, shape: tuple, group, where: str, source: str,
            conn: ConnectionSpec, bias: np.ndarray | None) -> None:
        lo, hi = -formats.BIAS_MANT_MAX - 1, formats.BIAS_MANT_MAX
        if bias is not None and bias.size not in (1, shape[-1], int(np.prod(shape))):
            raise NetworkError(f"{where}: {bias.size} biases for output shape {shape}; netx "
                               f"takes one, one per channel or one per neuron")
        if bias is not None and bias.size and (bias.min() < lo or bias.max() > hi):
            bad = bias.min() if bias.min() < lo else bias.max()
            raise NetworkError(f"{where}: bias {bad} outside the {formats.BIAS_MANT_BITS}-bit "
                               f"bias mantissa {lo}..{hi}")
        self.ir.add_layer(LayerSpec(name, kind, shape, neuron=self.neuron(group, where),
                                    bias=bias))
        self.ir.connect(source, name, conn)
        self.prev, self.flatten_next = name, False

    # -- blocks --------------------------------------------------------------------
    def input(self, i: int, group) -> None:
        where = self.where(i, fmt.INPUT)
        if i != 0:
            raise NetworkError(f"{where}: an input block must be layer/0")
        shape = fmt.hwc(group["shape"][()])
        if "neuron" not in group:
            self.spike_input = shape
            return
        name = f"{fmt.INPUT}{i}"
        self.ir.add_layer(LayerSpec(name, INPUT, shape, neuron=self.neuron(group, where),
                                    input_mode="bias_mant"))
        self.prev = name

    def flatten(self, i: int, group) -> None:
        if self.prev is not None and len(self.ir.layer(self.prev).shape) != 3:
            raise NetworkError(f"{self.where(i, fmt.FLATTEN)}: follows the 1-D layer "
                               f"{self.prev}; netx flattens (W, H, C) outputs only")
        self.flatten_next = True

    def dense(self, i: int, group) -> None:
        where = self.where(i, fmt.DENSE)
        n_out = int(np.prod(group["shape"][()]))
        weight = group["weight"][()].astype(int)
        weight = weight.reshape(n_out, -1) if weight.ndim == 1 else weight
        delays = self.delays(group, weight.shape, where)
        source, shape = self.source(where, flat=True)
        if len(shape) == 3:
            if not self.flatten_next:
                raise NetworkError(f"{where}: reads the spatial layer {source} {shape} without "
                                   f"a flatten block before it")
            order = fmt.chw_order(shape)
            hwc = np.empty_like(weight)
            hwc[:, order] = weight             # column k of netx reads (C, H, W) index k
            weight = hwc
            if delays is not None:
                hwc_delays = np.empty_like(delays)
                hwc_delays[:, order] = delays
                delays = hwc_delays
        if weight.shape != (n_out, int(np.prod(shape))):
            raise NetworkError(f"{where}: weight shape {weight.shape}, expected "
                               f"({n_out}, {int(np.prod(shape))}) from shape and source {source}")
        if delays is not None:          # netx zeroes the delays of zero weights
            delays = np.where(weight != 0, delays, 0)
        bias = group["bias"][()].astype(int).ravel() if "bias" in group else None
        self.add(f"{fmt.DENSE}{i}", "dense", (n_out,), group, where, source,
                 ConnectionSpec("dense", (weight.shape[1],), kernel=weight.T.astype(float),
                                delays=None if delays is None else delays.T.copy()),
                 bias)

    def window(self, i: int, group, kind: str) -> None:
        """conv and pool blocks (module doc)."""
        where = self.where(i, kind)
        self.check_delay(group, where)
        source, shape = self.source(where, flat=False)
        if len(shape) != 3:
            raise NetworkError(f"{where}: reads the 1-D layer {source} {shape}; a {kind} block "
                               f"needs a (C, H, W) input")
        if _pair(group, "dilation", 1) != (1, 1):
            raise NetworkError(f"{where}: dilation {_pair(group, 'dilation', 1)}; only (1, 1) "
                               f"is supported")
        weight = group["weight"][()].astype(int)
        channels = shape[2]
        if kind == fmt.POOL:       # one kernel (kH, kW) for every channel, sum pooling
            if weight.ndim < 2 or weight.size != np.prod(weight.shape[-2:]):
                raise NetworkError(f"{where}: pool weight of shape {weight.shape}; slayer's "
                                   f"pool has one (1, 1, kH, kW) kernel for all channels")
            tap = weight.reshape(weight.shape[-2:])
            weight, groups = np.broadcast_to(tap, (channels, 1, *tap.shape)), channels
        else:
            weight = weight.reshape(weight.shape[:4])
            groups = int(np.ravel(group["groups"][()])[0]) if "groups" in group else 1
        if groups == 1:
            op = get_kind("conv2d")
        elif groups == channels and weight.shape[1] == 1:
            op = get_kind("depthwise_conv2d")
        else:
            raise NetworkError(f"{where}: groups={groups} with {channels} input channels; "
                               f"nxcompile has groups 1 and depthwise (groups = channels)")
        if weight.shape[1] * groups != channels:
            raise NetworkError(f"{where}: weight shape {weight.shape} reads "
                               f"{weight.shape[1] * groups} channels, {source} has {channels}")
        kernel = op.kernel_from_netx(weight, groups).astype(float)
        stride, pad = _pair(group, "stride", 1), _pair(group, "padding", 0)
        out = fmt.hwc(group["shape"][()])
        expect = tuple((shape[a] + 2 * pad[a] - kernel.shape[a]) // stride[a] + 1
                       for a in (0, 1)) + (weight.shape[0],)
        if out != expect:
            raise NetworkError(f"{where}: shape (H, W, C) {out}, but kernel {kernel.shape[:2]}, "
                               f"stride {stride} and padding {pad} on {source} {shape} give "
                               f"{expect}")
        bias = None
        if "bias" in group:
            bias = group["bias"][()].astype(int)
            if bias.size == int(np.prod(out)) and bias.size != out[2]:   # per neuron, (W, H, C)
                bias = bias.reshape(out[1], out[0], out[2]).transpose(1, 0, 2)
            bias = bias.ravel()
        conn = ConnectionSpec(op.name, shape, kernel=kernel, strides=stride,
                              pre_padding=((pad[0], pad[0]), (pad[1], pad[1])))
        self.add(f"{kind}{i}", op.name, out, group, where, source, conn, bias)


def netx_to_ir(path, num_layers: int | None = None, reset_interval: int | None = None,
               reset_offset: int = 0) -> NetworkIR:
    """The NetworkIR of a netx HDF5 file (module doc).  num_layers: read only
    layer/0 .. layer/num_layers-1 (as hdf5.Network(num_layers=)); reset_interval,
    reset_offset: hdf5.Network's periodic reset (None: never)."""
    path = Path(path)
    reader = _Reader(path, reset_interval, reset_offset)
    blocks = {fmt.INPUT: reader.input, fmt.FLATTEN: reader.flatten, fmt.DENSE: reader.dense,
              fmt.CONV: lambda i, g: reader.window(i, g, fmt.CONV),
              fmt.POOL: lambda i, g: reader.window(i, g, fmt.POOL)}
    with h5py.File(path, "r") as f:
        layers = f["layer"]
        count = len(layers) if num_layers is None else min(len(layers), num_layers)
        for i in range(count):
            group = layers[str(i)]
            kind = fmt.read_string(group["type"])
            if kind not in blocks:
                why = ("netx 0.6 does not build it either" if kind in fmt.NOT_IN_NETX
                       else "unknown block type")
                raise NetworkError(f"{reader.where(i, kind)}: not supported ({why}); "
                                   f"num_layers={i} imports the blocks before it")
            blocks[kind](i, group)
    if reader.prev is None:
        raise NetworkError(f"netx file {path.name}: no block with neurons")
    reader.ir.validate()
    return reader.ir


def check_exact(ir: NetworkIR, net: IntNetwork) -> None:
    """NetworkError unless the quantized network `net` holds the imported IR's
    integers exactly: every weight (times 2**weight_exp), threshold mantissa,
    bias (times 64) and decay (scale 1).  Names the layer and the first value
    that differs."""
    for conn in net.connections:
        want = connection_matrix(ir.connection(conn.source, conn.target),
                                 ir.layer(conn.target).shape).tocsr()
        got = conn.matrix().tocsr().astype(np.float64) * 2.0 ** conn.weight_exp
        diff = (got - want).tocoo()
        diff.eliminate_zeros()
        if diff.nnz:
            r, c = diff.row[0], diff.col[0]
            raise NetworkError(
                f"layer {conn.target}: weight {want[r, c]:.0f} from {conn.source} becomes "
                f"{got[r, c]:.0f} (weight exponent {conn.weight_exp}, {conn.sign_mode} sign: "
                f"Loihi 1 holds mixed-sign weights as even numbers in -256..254 at exponent 0)")
        spec = ir.connection(conn.source, conn.target)
        want_d = delay_matrix(spec, ir.layer(conn.target).shape)
        want_d = sp.csr_matrix(want.shape, dtype=np.int64) if want_d is None else want_d
        got_d = sp.csr_matrix(want.shape, dtype=np.int64) if conn.delays is None else conn.delays
        if (want_d != got_d).nnz:
            raise NetworkError(f"layer {conn.target}: the delays from {conn.source} changed "
                               f"in quantization")
    for name, layer in net.layers.items():
        spec = ir.layer(name)
        if layer.is_input and layer.input_mode == "spikes":
            continue
        bias = np.zeros(layer.n) if spec.bias is None else np.resize(spec.bias, layer.n)
        got_bias = np.asarray(layer.bias_mant, np.int64) << layer.bias_exp
        for what, want, got in (("vThMant", spec.neuron.vth_mant, layer.vth),
                                ("du", spec.neuron.decay_u, layer.du),
                                ("dv", spec.neuron.decay_v, layer.dv)):
            if want != got:
                raise NetworkError(f"layer {name}: {what} {want} becomes {got}")
        bad = np.flatnonzero(got_bias != bias * 2 ** formats.ACTIVATION_SHIFT)
        if bad.size and not layer.is_input:
            raise NetworkError(f"layer {name}: bias {bias[bad[0]]:.0f} becomes "
                               f"{got_bias[bad[0]] / 2 ** formats.ACTIVATION_SHIFT:g} (13-bit "
                               f"mantissa at netx's bias exponent 6)")


def from_netx(path, num_layers: int | None = None, reset_interval: int | None = None,
              reset_offset: int = 0, board="loihi1", **options) -> CompiledModel:
    """Import a netx file (netx_to_ir), compile it for `board` (compile_ir
    options) and check that the integers are netx's (check_exact)."""
    compiled = compile_ir(netx_to_ir(path, num_layers, reset_interval, reset_offset),
                          board=board, **options)
    check_exact(compiled.ir, compiled.network)
    return compiled
