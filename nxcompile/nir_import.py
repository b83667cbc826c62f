"""NIR graph -> NetworkIR: the front end for the Neuromorphic Intermediate
Representation (PyPI ``nir``), ``nxcompile.from_nir``.

Neuron layers are NIR's Input and its spiking neuron nodes (IF, LIF,
CubaLIF).  Every other supported node lies on a path between two of them and is
folded into that connection, as keras_ir folds Flatten and Add:

  Affine, Linear        dense (the bias goes into the target's voltage bias)
  Conv2d                conv2d (groups 1) or depthwise_conv2d (groups = input
                        channels); integer padding becomes pre_padding
  SumPool2d, AvgPool2d  depthwise_conv2d with the constant kernel 1 or
                        1/(kh*kw) (padded zeros count, PyTorch's default)
  Flatten               nothing: NIR's row-major (C, H, W) order is kept and
                        the next dense kernel is permuted to the IR's HWC order
  Scale                 into the kernel (per channel for window connections)

Edges that meet sum their inputs: each summand becomes its own connection into
the neuron layer.  Summands from one source layer over several paths are added
into one connection (the IR has one per pair of layers): dense kernels add,
window kernels of one geometry add, and a 1x1 kernel (an identity skip) joins a
size-keeping convolution at its centre tap; other pairs are refused.  At most
one weighted node (Affine, Linear, Conv2d, pooling) per path; a path without one
is an identity (dense diagonal, or a 1x1 depthwise kernel).

Time: forward Euler with step dt, and one step of delay per connection between
neuron layers (as on Loihi), per neuron

  IF       v[t] = v[t-1] + dt*r*I[t]
  LIF      v[t] = (1 - b) v[t-1] + b (v_leak + r I[t]),          b = dt/tau
  CubaLIF  J[t] = (1 - a) J[t-1] + a w_in S[t],  v as LIF with I = J,  a = dt/tau_syn
  spike when v > v_threshold, then v <- v_reset (= 0; reset='soft': v <- v - v_threshold)

so decay_v = round(4096 b), decay_u = round(4096 a) - 1 (Lava adds 1), the
input gain (dt r, b r or a b r w_in) is folded into the weights and b v_leak is
the voltage bias.  Per-neuron thresholds, r and w_in are folded into the
weights too (each neuron's voltage is scaled to the layer's largest threshold;
per channel for window connections); time constants must be uniform per node
(one decay pair per layer).  A decay that rounds keeps its float time constant
in NeuronSpec.tau_u / tau_v, so the compiled model's report shows the error.
Anything without a Loihi 1 equivalent raises NetworkError (QuantizationError for
a decay out of the 12-bit range) naming the node and its type.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import networkx as nx
import nir
import numpy as np

from hwmodel import formats
from hwmodel.errors import NetworkError
from mapper.quantize import QuantizationError
from nxcompile.ir import INPUT, ConnectionSpec, LayerSpec, NetworkIR, NeuronSpec
from nxcompile.ir.merge import merge_connections

_NEURONS = (nir.IF, nir.LIF, nir.CubaLIF)
_WINDOWS = (nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)
_SUPPORTED = ("Input, Output, Affine, Linear, Conv2d, SumPool2d, AvgPool2d, Flatten, Scale, IF, "
              "LIF, CubaLIF")
_REASONS = {   # why a NIR node type has no Loihi 1 equivalent here
    "Delay": "synaptic delays are not modelled (every connection delays by one step)",
    "LI": "a non-spiking integrator", "CubaLI": "a non-spiking integrator",
    "I": "a non-spiking integrator",
    "Threshold": "a threshold without a neuron state",
    "Conv1d": "1-D convolutions are not supported (use Conv2d with a height of 1)",
    "NIRGraph": "nested graphs are not supported (flatten the graph first)",
}
RESETS = ("hard", "soft")


def _who(name: str, node) -> str:
    return f"node '{name}' ({type(node).__name__})"


@dataclass
class _Term:
    """One source layer's share of a tensor: the output of IR layer ``source``
    (NIR shape src_shape) through ``op`` (None: identity) to a tensor of NIR shape
    ``shape``.  Elementwise factors are flat in NIR row-major order: src_scale over
    the source, out_scale and bias over ``shape`` (bias already scaled)."""

    source: str
    src_shape: tuple
    shape: tuple
    op: str | None = None          # 'dense', 'conv2d', 'depthwise_conv2d'
    node: str = ""                 # the NIR node of op, for messages
    kernel: np.ndarray | None = None    # dense: NIR (out, in); windows: IR layout
    strides: tuple = (1, 1)
    padding: str = "valid"
    pre_padding: tuple = ((0, 0), (0, 0))
    src_scale: np.ndarray | None = None
    scaled_by: str = ""            # the Scale node of src_scale, for messages
    out_scale: np.ndarray | None = None
    bias: np.ndarray | None = None


def ir_order(shape: tuple) -> np.ndarray:
    """For each flat IR (H, W, C) position, the flat NIR (C, H, W) index of the same
    neuron (identity for 1-D shapes): a_ir = a_nir[ir_order(shape)]."""
    index = np.arange(int(np.prod(shape)))
    return index if len(shape) == 1 else index.reshape(shape).transpose(1, 2, 0).ravel()


def ir_shape(shape: tuple) -> tuple:
    """The IR shape of a NIR shape: (C, H, W) -> (H, W, C); (n,) unchanged."""
    return shape if len(shape) == 1 else (shape[1], shape[2], shape[0])


def _flat(who: str, what: str, value, shape: tuple) -> np.ndarray:
    """A NIR parameter as a flat float64 array over `shape` (a single value is
    broadcast); NetworkError for another size."""
    a = np.asarray(value, np.float64).ravel()
    n = int(np.prod(shape))
    if a.size == 1:
        return np.full(n, a[0])
    if a.size != n:
        raise NetworkError(f"{who}: {what} has {a.size} values, its input has shape {shape}")
    return a


def _per_channel(who: str, what: str, values: np.ndarray, shape: tuple) -> np.ndarray:
    """Per-channel values (C,) of flat NIR (C, H, W) `values`; NetworkError where
    they vary within a channel (a window connection has one kernel per channel)."""
    per = values.reshape(shape[0], -1)
    if not np.all(per == per[:, :1]):
        c = int(np.argmax(np.any(per != per[:, :1], axis=1)))
        raise NetworkError(f"{who}: {what} varies within channel {c} ({per[c].min():.4g}.."
                           f"{per[c].max():.4g}); a convolution or pooling connection "
                           "can scale per channel only")
    return per[:, 0]


def _pair(who: str, what: str, value) -> tuple:
    a = np.asarray(value).ravel()
    if a.size == 1:
        a = np.repeat(a, 2)
    if a.size != 2 or not np.all(a == np.round(a)):
        raise NetworkError(f"{who}: {what}={value!r}; expected one or two integers")
    return int(a[0]), int(a[1])


def _window_out(who: str, shape: tuple, k: tuple, stride: tuple, pad: tuple) -> tuple:
    out = [(n + 2 * p - kk) // s + 1 for n, p, kk, s in zip(shape[1:], pad, k, stride)]
    if min(out) < 1:
        raise NetworkError(f"{who}: window {k} with padding {pad} does not fit the input "
                           f"{shape}")
    return tuple(out)


class _Importer:
    def __init__(self, graph, dt: float, reset: str):
        self.graph, self.dt, self.reset = graph, dt, reset
        self.ir = NetworkIR()
        self.out: dict[str, list] = {}      # NIR node -> the _Terms of its output
        self.added = {name: i for i, name in enumerate(graph.nodes)}

    # -- the graph -------------------------------------------------------------
    def run(self) -> NetworkIR:
        g = nx.DiGraph()
        g.add_nodes_from(self.graph.nodes)
        for src, dst in self.graph.edges:
            for end in (src, dst):
                if end not in self.graph.nodes:
                    raise NetworkError(f"NIR edge ({src!r}, {dst!r}): no node {end!r}")
            g.add_edge(src, dst)
        if not nx.is_directed_acyclic_graph(g):
            cycle = [a for a, _ in nx.find_cycle(g)]
            raise NetworkError(f"NIR graph has a cycle through nodes {cycle}; only feed-forward "
                               "graphs map to the IR")
        outputs = [n for n, node in self.graph.nodes.items() if isinstance(node, nir.Output)]
        inputs = [n for n, node in self.graph.nodes.items() if isinstance(node, nir.Input)]
        if len(inputs) != 1 or len(outputs) != 1:
            raise NetworkError(f"NIR graph must have one Input and one Output node, has inputs "
                               f"{inputs} and outputs {outputs}")
        for name in nx.lexicographical_topological_sort(g, key=self.added.__getitem__):
            node = self.graph.nodes[name]
            terms = [t for p in g.predecessors(name) for t in self.out[p]]
            if not isinstance(node, nir.Input) and not terms:
                raise NetworkError(f"{_who(name, node)} has no input")
            self.out[name] = self._node(name, node, terms)
        for name in g.nodes:
            if name not in outputs and not g.out_degree(name):
                raise NetworkError(f"{_who(name, self.graph.nodes[name])} does not lead to the "
                                   f"Output node '{outputs[0]}'")
        self.ir.validate()
        return self.ir

    def _node(self, name: str, node, terms: list) -> list:
        who = _who(name, node)
        if isinstance(node, nir.Input):
            shape = tuple(int(d) for d in np.asarray(node.input_type["input"]).ravel())
            if len(shape) not in (1, 3):
                raise NetworkError(f"{who}: shape {shape}; inputs must be (n,) or (C, H, W)")
            self.ir.add_layer(LayerSpec(name, INPUT, ir_shape(shape), input_mode="spikes"))
            return [_Term(name, shape, shape)]
        if isinstance(node, nir.Output):
            if len(terms) != 1 or terms[0].op is not None or terms[0].out_scale is not None \
                    or terms[0].src_scale is not None or terms[0].shape != terms[0].src_shape:
                raise NetworkError(f"{who} must be fed by one spiking neuron node directly "
                                   f"({', '.join(c.__name__ for c in _NEURONS)})")
            return []
        if isinstance(node, _NEURONS):
            return self._neurons(name, node, terms)
        if isinstance(node, nir.Flatten):
            self._unweighted(who, terms, "Flatten")
            return [replace(t, shape=(int(np.prod(t.shape)),)) for t in terms]
        if isinstance(node, nir.Scale):
            return [self._scale(name, who, t, node.scale) for t in terms]
        if isinstance(node, (nir.Affine, nir.Linear)):
            return self._dense(name, node, terms)
        if isinstance(node, _WINDOWS):
            return self._window(name, node, terms)
        kind = type(node).__name__
        reason = _REASONS.get(kind, "no Loihi 1 equivalent in nxcompile")
        raise NetworkError(f"{who}: NIR type {kind} is not supported ({reason}); supported: "
                           f"{_SUPPORTED}")

    # -- folded nodes ----------------------------------------------------------
    @staticmethod
    def _unweighted(who: str, terms: list, what: str) -> None:
        for t in terms:
            if t.op is not None:
                raise NetworkError(f"{who}: {what} after node '{t.node}' without a neuron layer "
                                   "between; one weighted node per connection, Flatten before it")

    @staticmethod
    def _scale(name: str, who: str, t: _Term, scale) -> _Term:
        s = _flat(who, "scale", scale, t.shape)
        if t.op is None:
            src = s if t.src_scale is None else t.src_scale * s
            return replace(t, src_scale=src, scaled_by=name)
        out = s if t.out_scale is None else t.out_scale * s
        return replace(t, out_scale=out, bias=None if t.bias is None else t.bias * s)

    def _dense(self, name: str, node, terms: list) -> list:
        who = _who(name, node)
        w = np.asarray(node.weight, np.float64)
        if w.ndim != 2:
            raise NetworkError(f"{who}: weight of shape {w.shape}; only 2-D (out, in) weights")
        self._unweighted(who, terms, type(node).__name__)
        b = np.asarray(node.bias, np.float64).ravel() if isinstance(node, nir.Affine) else None
        out = []
        for i, t in enumerate(terms):
            if int(np.prod(t.shape)) != w.shape[1]:
                raise NetworkError(f"{who}: weight takes {w.shape[1]} inputs, gets shape "
                                   f"{t.shape} from '{t.source}'")
            bias = _flat(who, "bias", b, (w.shape[0],)) if b is not None and i == 0 else None
            out.append(replace(t, op="dense", node=name, kernel=w, shape=(w.shape[0],),
                               bias=bias))
        return out

    def _window(self, name: str, node, terms: list) -> list:
        who = _who(name, node)
        self._unweighted(who, terms, type(node).__name__)
        shapes = {t.shape for t in terms}
        shape = terms[0].shape
        if len(shapes) != 1 or len(shape) != 3:
            raise NetworkError(f"{who}: input shapes {sorted(shapes)}; needs one (C, H, W) shape")
        channels = shape[0]
        padding = "valid"
        if isinstance(node, nir.Conv2d):
            w = np.asarray(node.weight, np.float64)
            stride = _pair(who, "stride", node.stride)
            dilation = _pair(who, "dilation", node.dilation)
            if dilation != (1, 1):
                raise NetworkError(f"{who}: dilation={dilation}; only (1, 1) is supported")
            groups = int(np.asarray(node.groups).ravel()[0])
            if groups == 1 and w.shape[1] == channels:
                op, kernel = "conv2d", w.transpose(2, 3, 1, 0)
            elif groups == channels and w.shape[1] == 1 and w.shape[0] % channels == 0:
                op = "depthwise_conv2d"
                kernel = w[:, 0].reshape(channels, -1, *w.shape[2:]).transpose(2, 3, 0, 1)
            else:
                raise NetworkError(f"{who}: groups={groups} with weight {w.shape} on {channels} "
                                   "channels; only groups 1 or groups = input channels "
                                   "(depthwise) are supported")
            bias = np.asarray(node.bias, np.float64).ravel()
            k = w.shape[2:]
            pad_arg = node.padding.decode() if isinstance(node.padding, bytes) else node.padding
            if isinstance(pad_arg, str):
                if pad_arg == "same" and stride != (1, 1):
                    raise NetworkError(f"{who}: padding 'same' with stride {stride}; "
                                       "give integer padding")
                padding, pad = pad_arg, (0, 0)
                out_hw = shape[1:] if pad_arg == "same" else _window_out(who, shape, k, stride,
                                                                         (0, 0))
            else:
                pad = _pair(who, "padding", pad_arg)
                out_hw = _window_out(who, shape, k, stride, pad)
            c_out = w.shape[0]
        else:
            k = _pair(who, "kernel_size", node.kernel_size)
            stride = _pair(who, "stride", node.stride)
            pad = _pair(who, "padding", node.padding)
            value = 1.0 if isinstance(node, nir.SumPool2d) else 1.0 / (k[0] * k[1])
            op, kernel, bias = "depthwise_conv2d", np.full((*k, channels, 1), value), None
            out_hw = _window_out(who, shape, k, stride, pad)
            c_out = channels
        out_shape = (c_out, *out_hw)
        n_pos = int(np.prod(out_hw))
        out = []
        for i, t in enumerate(terms):
            b = (np.repeat(_flat(who, "bias", bias, (c_out,)), n_pos)
                 if bias is not None and i == 0 else None)
            out.append(replace(t, op=op, node=name, kernel=kernel, shape=out_shape,
                               strides=stride, padding=padding,
                               pre_padding=((pad[0], pad[0]), (pad[1], pad[1])), bias=b))
        return out

    # -- neuron layers ---------------------------------------------------------
    def _neurons(self, name: str, node, terms: list) -> list:
        who = _who(name, node)
        shape = terms[0].shape
        for t in terms:
            if t.shape != shape:
                raise NetworkError(f"{who}: inputs of shapes {shape} and {t.shape} (from "
                                   f"'{t.source}') meet; summed inputs need one shape")
        if len(shape) not in (1, 3):
            raise NetworkError(f"{who}: shape {shape}; neuron nodes must be (n,) or (C, H, W)")
        nrn, gain, leak = self._neuron_spec(who, node, shape)
        if nrn.decay_u != formats.DECAY_UNITY - 1:
            for t in terms:
                if t.bias is not None and np.any(t.bias):
                    raise NetworkError(
                        f"{who}: bias of node '{t.node}' feeds a synaptic current that decays "
                        f"(tau_syn > dt); Loihi adds a bias to the voltage, not the current: "
                        f"give a zero bias or tau_syn = dt")
        layer_kind = "dense" if len(shape) == 1 else next(
            (t.op for t in terms if t.op == "conv2d"), "depthwise_conv2d")
        bias = leak + sum((gain * t.bias for t in terms if t.bias is not None), np.zeros_like(leak))
        self.ir.add_layer(LayerSpec(name, layer_kind, ir_shape(shape), nrn,
                                    bias[ir_order(shape)] if np.any(bias) else None))
        specs: dict[str, list] = {}
        for t in terms:
            specs.setdefault(t.source, []).append(self._connection(who, t, gain))
        for source, found in specs.items():
            merged = merge_connections(found, ir_shape(shape))
            if merged is None:
                raise NetworkError(f"{who} receives node '{source}' over paths whose connections "
                                   "cannot be added into one (different windows or strides); "
                                   "the IR has one connection per pair of neuron layers")
            self.ir.connect(source, name, merged)
        return [_Term(name, shape, shape)]

    def _neuron_spec(self, who: str, node, shape: tuple) -> tuple:
        """(NeuronSpec, per-neuron input gain, per-neuron voltage bias), flat NIR order."""
        dt = self.dt
        par = {f: _flat(who, f, getattr(node, f), shape)
               for f in ("r", "v_threshold", "v_reset", "tau", "tau_mem", "tau_syn", "v_leak",
                         "w_in") if hasattr(node, f)}
        for f, v in par.items():
            bad = v[~np.isfinite(v)] if not f.startswith("tau") else v[np.isnan(v)]
            if bad.size:
                raise NetworkError(f"{who}: {f} contains {bad[0]}; must be finite")
        if np.any(par["v_reset"] != 0):
            raise NetworkError(f"{who}: v_reset={par['v_reset'][par['v_reset'] != 0][0]:.4g}; "
                               "Loihi 1 resets the voltage to 0 (or subtracts the threshold): "
                               "only v_reset = 0 maps")
        theta = par["v_threshold"]
        if np.any(theta <= 0):
            raise NetworkError(f"{who}: v_threshold={theta[theta <= 0][0]:.4g}; must be > 0")
        decay_u, tau_u, decay_v, tau_v = formats.DECAY_UNITY - 1, None, 0, None
        leak = np.zeros_like(theta)
        if isinstance(node, nir.IF):
            gain = dt * par["r"]
        else:
            tau_field = "tau" if isinstance(node, nir.LIF) else "tau_mem"
            b, decay_v, tau_v = self._decay(who, tau_field, par[tau_field], voltage=True)
            gain, leak = b * par["r"], b * par["v_leak"]
            if isinstance(node, nir.CubaLIF):
                a, decay_u, tau_u = self._decay(who, "tau_syn", par["tau_syn"], voltage=False)
                gain = gain * a * par["w_in"]
        top = float(theta.max())
        fold = top / theta             # each neuron's voltage scaled to the largest threshold
        nrn = NeuronSpec(threshold=top, reset=self.reset, decay_u=decay_u, decay_v=decay_v,
                         tau_u=tau_u, tau_v=tau_v)
        return nrn, gain * fold, leak * fold

    def _decay(self, who: str, field: str, tau: np.ndarray, voltage: bool) -> tuple:
        """(dt/tau, the 12-bit decay, tau in time steps; None for tau = inf) of a
        time constant that must be uniform over the node."""
        if np.any(tau != tau[0]):
            raise NetworkError(f"{who}: {field} varies within the node ({tau.min():.4g}.."
                               f"{tau.max():.4g}); a layer has one decay (give one value)")
        steps = float(tau[0]) / self.dt
        if not steps > 0:
            raise NetworkError(f"{who}: {field}={tau[0]:.4g}; time constants must be > 0")
        rate = 1.0 / steps
        unity = formats.DECAY_UNITY
        decay = round(unity * rate)
        if voltage:     # v <- v * (4096 - dv) >> 12, dv in 0..4095
            if decay > unity - 1:
                raise QuantizationError(
                    f"{who}: {field}={tau[0]:.4g} with dt={self.dt:.4g} needs voltage decay "
                    f"4096*dt/{field} = {unity * rate:.4g}, limit {unity - 1} "
                    f"({field} >= {self.dt * unity / (unity - 0.5):.6g})")
            return rate, decay, (None if math.isinf(steps) else steps)
        # u <- u * (4096 - (du + 1)) >> 12 (Lava's hidden +1), du in 0..4095
        if not 1 <= decay <= unity:
            raise QuantizationError(
                f"{who}: {field}={tau[0]:.4g} with dt={self.dt:.4g} needs current decay "
                f"4096*dt/{field} = {unity * rate:.4g}, outside 1..{unity} "
                f"({self.dt * unity / (unity + 0.5):.6g} < {field} < {self.dt * 2 * unity:.6g})")
        return rate, decay - 1, steps

    def _connection(self, who: str, t: _Term, gain: np.ndarray) -> ConnectionSpec:
        """The ConnectionSpec of term t into a layer whose neurons scale their input by
        `gain` (flat NIR order over t.shape)."""
        n_src = int(np.prod(t.src_shape))
        src = np.ones(n_src) if t.src_scale is None else t.src_scale
        out = gain if t.out_scale is None else gain * t.out_scale
        if t.op in (None, "dense") and len(t.shape) == 1:
            w = np.diag(src * out) if t.op is None else t.kernel * out[:, None] * src[None, :]
            return ConnectionSpec("dense", (n_src,), kernel=w.T[ir_order(t.src_shape)])
        if t.op is None:       # identity between two (C, H, W) layers
            if t.src_shape != t.shape:
                raise NetworkError(f"{who}: input from '{t.source}' of shape {t.src_shape} "
                                   f"becomes shape {t.shape} without a weighted node")
            scale = _per_channel(who, "the input's scale", src * out, t.shape)
            return ConnectionSpec("depthwise_conv2d", ir_shape(t.src_shape),
                                  kernel=scale.reshape(1, 1, -1, 1))
        if len(t.src_shape) != 3:
            raise NetworkError(f"{who}: node '{t.node}' needs a (C, H, W) input, '{t.source}' "
                               f"has shape {t.src_shape}")
        s_c = _per_channel(who, f"the scale of node '{t.scaled_by}' before node '{t.node}'",
                           src, t.src_shape)
        o_c = _per_channel(who, "the input gain (r, w_in, thresholds, scale)", out, t.shape)
        if t.op == "conv2d":
            kernel = t.kernel * s_c[None, None, :, None] * o_c[None, None, None, :]
        else:
            kernel = t.kernel * s_c[None, None, :, None] * o_c.reshape(len(s_c), -1)[None, None]
        return ConnectionSpec(t.op, ir_shape(t.src_shape), kernel=kernel, strides=t.strides,
                              padding=t.padding, pre_padding=t.pre_padding)


def from_nir(graph_or_path, dt: float, reset: str = "hard") -> NetworkIR:
    """The validated NetworkIR of a NIR graph (a nir.NIRGraph, or the path of a NIR
    HDF5 file, read with nir.read); compile it with nxcompile.compile_ir.

    dt: the time step (in the units of the graph's time constants) that one Loihi
    step stands for.  reset: 'hard' (NIR's reset to v_reset = 0) or 'soft'
    (subtract the threshold, for networks trained that way; NIR does not record
    it).  The input layer takes spikes, (batch, num_steps, *shape) with spatial
    shapes in the IR's (H, W, C) order (NIR's (C, H, W) transposed); IR layer
    names are the NIR node names.  Module doc: the mapping and what it refuses.
    """
    if not (isinstance(dt, (int, float)) and not isinstance(dt, bool) and math.isfinite(dt)
            and dt > 0):
        raise NetworkError(f"dt={dt!r} must be a finite number > 0")
    if reset not in RESETS:
        raise NetworkError(f"reset={reset!r} not one of {RESETS}")
    graph = graph_or_path
    if isinstance(graph_or_path, (str, Path)):
        try:        # no type check: nir 1.0.8 infers grouped Conv2d inputs wrongly; shapes
            graph = nir.read(graph_or_path, type_check=False)   # are checked here instead
        except (OSError, KeyError, ValueError, TypeError, AssertionError) as e:
            raise NetworkError(f"{graph_or_path}: not a readable NIR file ({type(e).__name__}: "
                               f"{e})") from None
    if not isinstance(graph, nir.NIRGraph):
        raise NetworkError(f"from_nir takes a nir.NIRGraph or a file path, got "
                           f"{type(graph_or_path).__name__}")
    return _Importer(graph, float(dt), reset).run()
