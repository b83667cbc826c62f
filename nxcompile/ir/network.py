"""The network: a networkx DiGraph of neuron layers.

Nodes are layers that own neurons ('input' or a connection kind of
nxcompile.ir.kinds, e.g. 'conv2d'); each node's attribute ``layer`` is a
LayerSpec.  Edges carry a ``conn`` attribute, a ConnectionSpec with the
synaptic operation and its float kernel.  Layers without neurons (Flatten,
Reshape, ZeroPadding2D, Add, Concatenate) are folded into the connections.
Only numpy arrays and plain Python values live here: no TensorFlow objects.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from hwmodel import synapse_format as sf
from hwmodel.errors import NetworkError
from nxcompile.ir.kinds import KINDS, get_kind

INPUT = "input"     # the layer kind of input layers; every other layer kind is a connection kind


def _int_tuple(values) -> tuple:
    """A tuple of Python ints where values are integers (anything else is kept,
    for NetworkIR.validate to name)."""
    values = tuple(values)
    return tuple(int(v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else v
                 for v in values)


@dataclass
class NeuronSpec:
    """Loihi neuron parameters of a layer (float semantics plus integer overrides).

    threshold: firing threshold in the layer's float units (the units of the
    float weights and biases).  reset: 'hard' or 'soft' (reset by subtraction).
    decay_u, decay_v: 12-bit decays (decay_u=4095 makes u the input of the
    current step only, decay_u=-1 keeps it forever: Loihi 1's decayU = 0,
    hwmodel.formats.DU_NO_DECAY; decay_v=0 means no leak).  vth_mant: if set, the 17-bit
    integer threshold mantissa that fixes the layer's integer scale.  bias_exp:
    if set, the 3-bit bias exponent.  num_weight_bits: 1..8.  tau_u, tau_v: the
    float time constants (in time steps) that decay_u and decay_v stand for, set
    by a front end that starts from them (nxcompile.nir_import) so that the
    report can show the rounding; None where the decay is given as an integer or
    there is no decay.  reset_interval, reset_offset: a periodic reset of u and v
    at the time steps t (from 1) with t % reset_interval == reset_offset, as
    Lava's LIFReset (0: never; hard reset only).  weight_exp: if
    set, the 3-bit exponent (0..7) of the layer's incoming weights (NxTF's
    weightExponent), else the quantizer chooses it.  synapse_encoding: if set,
    the encoding every synapse list on the layer's cores uses (one of
    hwmodel.synapse_format.ENCODINGS), else the partitioner chooses per core.
    shared_sign (NxTF's useSharedSign): True, positive and negative weights in
    separate synapse entries with a shared sign each (hwmodel.formats sign mode
    'shared'); False, a sign bit in every weight ('mixed'); None, a shared sign
    where all weights have one sign, else a sign bit.
    """

    threshold: float = 1.0
    reset: str = "hard"
    decay_u: int = 4095
    decay_v: int = 0
    vth_mant: int | None = None
    bias_exp: int | None = None
    num_weight_bits: int = 8
    tau_u: float | None = None
    tau_v: float | None = None
    reset_interval: int = 0
    reset_offset: int = 0
    weight_exp: int | None = None
    synapse_encoding: str | None = None
    shared_sign: bool | None = None


@dataclass
class LayerSpec:
    """A layer of neurons: name, kind ('input', or the connection kind of the
    layer that owns the neurons, e.g. 'conv2d'; single connections into it may
    be of other kinds), output shape (HWC or (n,)), bias (float, per output channel or
    None) and neuron parameters.  For an input layer, input_mode is 'bias'
    (frames as constant currents), 'spikes' or 'bias_mant' (frames are the
    integer bias mantissas of the input neurons; needs vth_mant and bias_exp).
    probe: record the layer's spike trains in every run that does not name its
    own record list (NxTF's probeSpikes).  v_init: the membrane potential
    before the first step, per output channel like bias (float units, those of
    the threshold), or None for 0; the quantizer stores it as IntLayer.v_init."""

    name: str
    kind: str
    shape: tuple
    neuron: NeuronSpec = field(default_factory=NeuronSpec)
    bias: np.ndarray | None = None
    input_mode: str = "bias"
    probe: bool = False
    v_init: np.ndarray | None = None

    def __post_init__(self):
        self.shape = _int_tuple(self.shape)

    @property
    def n(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class ConnectionSpec:
    """Synaptic operation from a source layer into a target layer.

    kind: the name of its ConnectionKind (nxcompile.ir.kinds: 'dense' with kernel
    (n_in, n_out), 'conv2d' (kh, kw, c_in, c_out), 'depthwise_conv2d' (kh, kw,
    c_in, depth_multiplier), 'avg_pool2d' without kernel); ``op`` is that object,
    which answers every question about the kind.  source_shape: the source's output shape as
    this operation sees it (after Flatten/Reshape but before ZeroPadding2D, so
    HWC for spatial ops, (n,) for dense).  pre_padding: ((top, bottom), (left, right))
    zero padding folded in from ZeroPadding2D.  dilation (dy, dx): the kernel's
    taps dy rows and dx columns apart (window kinds; (1, 1): adjacent).
    channel_offset: where the source's channels start in the target's input
    (Concatenate).  delays: None,
    or (dense only) an int array of the kernel's shape (n_in, n_out): the
    per-synapse delay in time steps (0..hwmodel.synapse_format.DELAY_MAX; 0 is
    the one-step hop every connection has, d arrives d steps later).
    own_exponent: the connection's weights get a weight exponent of their own,
    the smallest that fits them at the target layer's scale (on Loihi a
    synapse format per connection prototype, each with its weight exponent),
    instead of the exponent the target's other connections share; so a few
    large weights (e.g. a clock's) do not coarsen the grid of the others.
    """

    kind: str
    source_shape: tuple
    kernel: np.ndarray | None = None
    strides: tuple = (1, 1)
    padding: str = "valid"
    pool_size: tuple = (1, 1)
    pre_padding: tuple = ((0, 0), (0, 0))
    channel_offset: int = 0
    in_channels: int | None = None   # channels of the full (concatenated) input
    delays: np.ndarray | None = None
    dilation: tuple = (1, 1)
    own_exponent: bool = False

    def __post_init__(self):
        """Shapes and geometry as tuples of ints (a list or numpy ints in, the
        same tuple out), as the model file stores them."""
        self.source_shape = _int_tuple(self.source_shape)
        self.strides, self.pool_size = _int_tuple(self.strides), _int_tuple(self.pool_size)
        self.dilation = _int_tuple(self.dilation)
        self.pre_padding = tuple(_int_tuple(p) for p in self.pre_padding)

    @property
    def op(self):
        """The ConnectionKind of this connection (nxcompile.ir.kinds)."""
        return get_kind(self.kind)


def _check_shape(what: str, shape) -> None:
    """NetworkError unless shape is a non-empty tuple of integers >= 0 (a layer
    without neurons is the partitioner's to refuse, by name)."""
    if not (isinstance(shape, tuple) and shape and all(
            isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise NetworkError(f"{what} {shape!r} must be a tuple of integers >= 0")


def _check_delays(where: str, spec: ConnectionSpec) -> None:
    """NetworkError unless a connection's delays (if any) sit on a dense
    connection, have the kernel's shape and are integers 0..DELAY_MAX."""
    if spec.delays is None:
        return
    d = np.asarray(spec.delays)
    if spec.kind != "dense":
        raise NetworkError(f"{where} per-synapse delays on a {spec.kind} connection; delays "
                           f"are supported on dense connections only")
    if d.shape != np.shape(spec.kernel):
        raise NetworkError(f"{where} delays of shape {d.shape}, the kernel has "
                           f"{np.shape(spec.kernel)}")
    if d.size and (d.dtype.kind not in "iuf" or not np.all(np.isfinite(d))
                   or np.any(d != np.round(d))):
        raise NetworkError(f"{where} delays must be integers (time steps)")
    if d.size and (d.min() < 0 or d.max() > sf.DELAY_MAX):
        bad = d.min() if d.min() < 0 else d.max()
        raise NetworkError(f"{where} delay {bad:g} steps outside 0..{sf.DELAY_MAX}, the "
                           f"delays a Loihi 1 synapse holds")


class NetworkIR:
    """A DAG of LayerSpecs (nodes) and ConnectionSpecs (edges)."""

    def __init__(self) -> None:
        self.graph = nx.DiGraph()

    def add_layer(self, layer: LayerSpec) -> None:
        if layer.kind != INPUT and layer.kind not in KINDS:
            raise NetworkError(f"layer {layer.name}: kind {layer.kind!r} not one of "
                               f"{(INPUT, *KINDS)}")
        if layer.name in self.graph:
            raise NetworkError(f"layer {layer.name}: duplicate layer name")
        self.graph.add_node(layer.name, layer=layer)

    def connect(self, source: str, target: str, conn: ConnectionSpec) -> None:
        if conn.kind not in KINDS:
            raise NetworkError(f"connection {source}->{target}: kind {conn.kind!r} unsupported; "
                               f"one of {tuple(KINDS)}")
        for name in (source, target):
            if name not in self.graph:
                raise NetworkError(f"connection {source}->{target}: unknown layer {name}")
        self.graph.add_edge(source, target, conn=conn)

    def layer(self, name: str) -> LayerSpec:
        return self.graph.nodes[name]["layer"]

    def connection(self, source: str, target: str) -> ConnectionSpec:
        return self.graph.edges[source, target]["conn"]

    def order(self) -> list:
        """Layer names in topological order (inputs first; ties in the order
        the layers were added)."""
        added = {name: i for i, name in enumerate(self.graph.nodes)}
        return list(nx.lexicographical_topological_sort(self.graph, key=added.__getitem__))

    def layers(self) -> list:
        return [self.layer(n) for n in self.order()]

    def predecessors(self, name: str) -> list:
        return list(self.graph.predecessors(name))

    def successors(self, name: str) -> list:
        return list(self.graph.successors(name))

    @property
    def inputs(self) -> list:
        return [n for n in self.order() if self.layer(n).kind == INPUT]

    @property
    def outputs(self) -> list:
        return [n for n in self.order() if self.graph.out_degree(n) == 0]

    def validate(self) -> None:
        """Check the graph is a DAG whose input layers have no predecessors and
        whose other layers all have at least one."""
        if not nx.is_directed_acyclic_graph(self.graph):
            raise NetworkError("network graph has a cycle; only feed-forward networks are "
                               "supported")
        for name in self.order():
            layer, preds = self.layer(name), self.predecessors(name)
            _check_shape(f"layer {name}: shape", layer.shape)
            for src in preds:
                spec = self.connection(src, name)
                where = f"connection {src}->{name}:"
                _check_shape(f"{where} source_shape", spec.source_shape)
                _check_shape(f"{where} strides", spec.strides)
                _check_shape(f"{where} pool_size", spec.pool_size)
                _check_shape(f"{where} dilation", spec.dilation)
                if min(spec.dilation) < 1:
                    raise NetworkError(f"{where} dilation {spec.dilation} must be >= 1")
                for pad in spec.pre_padding:
                    _check_shape(f"{where} pre_padding", pad)
                _check_delays(where, spec)
                n_src = int(np.prod(spec.source_shape))
                if n_src != self.layer(src).n:
                    raise NetworkError(f"connection {src}->{name}: source_shape "
                                       f"{spec.source_shape} has {n_src} neurons, layer {src} "
                                       f"has {self.layer(src).n}")
            if layer.v_init is not None and np.size(layer.v_init) not in (layer.shape[-1],
                                                                          layer.n):
                raise NetworkError(f"layer {name}: v_init has {np.size(layer.v_init)} values; "
                                   f"one per channel ({layer.shape[-1]}) or per neuron "
                                   f"({layer.n})")
            if layer.kind == INPUT and preds:
                raise NetworkError(f"layer {name}: an input layer cannot have inputs")
            if layer.kind != INPUT and not preds:
                raise NetworkError(f"layer {name}: not connected to any input")
