"""The intermediate representation: a networkx DiGraph of neuron layers.

Nodes are layers that own neurons (input, dense, conv2d, depthwise_conv2d,
avg_pool2d); each node's attribute ``layer`` is a LayerSpec.  Edges carry a
``conn`` attribute, a ConnectionSpec with the synaptic operation and its float
kernel.  Layers without neurons (Flatten, Reshape, ZeroPadding2D, Add,
Concatenate) are folded into the connections.  Only numpy arrays and plain
Python values live here: no TensorFlow objects, so the partitioner and the
mapper consume it without importing Keras.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

NEURON_KINDS = ("input", "dense", "conv2d", "depthwise_conv2d", "avg_pool2d")
CONNECTION_KINDS = ("dense", "conv2d", "depthwise_conv2d", "avg_pool2d")


@dataclass
class NeuronSpec:
    """Loihi neuron parameters of a layer (float semantics plus integer overrides).

    threshold: firing threshold in the layer's float units (the units of the
    float weights and biases).  reset: 'hard' or 'soft' (reset by subtraction).
    decay_u, decay_v: 12-bit decays (decay_u=4095 makes u the input of the
    current step only; decay_v=0 means no leak).  vth_mant: if set, the 17-bit
    integer threshold mantissa that fixes the layer's integer scale.  bias_exp:
    if set, the 3-bit bias exponent.  num_weight_bits: 1..8.
    """

    threshold: float = 1.0
    reset: str = "hard"
    decay_u: int = 4095
    decay_v: int = 0
    vth_mant: int | None = None
    bias_exp: int | None = None
    num_weight_bits: int = 8


@dataclass
class LayerSpec:
    """A layer of neurons: name, kind, output shape (HWC or (n,)), bias (float, per
    output channel or None) and neuron parameters.  For an input layer,
    input_mode is 'bias' (frames as constant currents) or 'spikes'."""

    name: str
    kind: str
    shape: tuple
    neuron: NeuronSpec = field(default_factory=NeuronSpec)
    bias: np.ndarray | None = None
    input_mode: str = "bias"

    @property
    def n(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class ConnectionSpec:
    """Synaptic operation from a source layer into a target layer.

    kind: 'dense' (kernel (n_in, n_out)), 'conv2d' (kernel (kh, kw, c_in, c_out)),
    'depthwise_conv2d' (kernel (kh, kw, c_in, depth_multiplier)) or 'avg_pool2d'
    (no kernel; weight 1/(ph*pw)).  source_shape: the source's output shape as
    this operation sees it (after Flatten/Reshape but before ZeroPadding2D, so
    HWC for spatial ops, (n,) for dense).  pre_padding: ((top, bottom), (left, right))
    zero padding folded in from ZeroPadding2D.  channel_offset: where the
    source's channels start in the target's input (Concatenate).
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


class NetworkIR:
    """A DAG of LayerSpecs (nodes) and ConnectionSpecs (edges)."""

    def __init__(self) -> None:
        self.graph = nx.DiGraph()

    def add_layer(self, layer: LayerSpec) -> None:
        if layer.kind not in NEURON_KINDS:
            raise ValueError(f"layer {layer.name}: kind {layer.kind!r} not one of {NEURON_KINDS}")
        if layer.name in self.graph:
            raise ValueError(f"layer {layer.name}: duplicate layer name")
        self.graph.add_node(layer.name, layer=layer)

    def connect(self, source: str, target: str, conn: ConnectionSpec) -> None:
        if conn.kind not in CONNECTION_KINDS:
            raise ValueError(f"connection {source}->{target}: kind {conn.kind!r} unsupported")
        for name in (source, target):
            if name not in self.graph:
                raise ValueError(f"connection {source}->{target}: unknown layer {name}")
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
        return [n for n in self.order() if self.layer(n).kind == "input"]

    @property
    def outputs(self) -> list:
        return [n for n in self.order() if self.graph.out_degree(n) == 0]

    def validate(self) -> None:
        """Check the graph is a DAG whose input layers have no predecessors and
        whose other layers all have at least one."""
        if not nx.is_directed_acyclic_graph(self.graph):
            raise ValueError("network graph has a cycle; only feed-forward networks are supported")
        for name in self.order():
            layer, preds = self.layer(name), self.predecessors(name)
            if layer.kind == "input" and preds:
                raise ValueError(f"layer {name}: an input layer cannot have inputs")
            if layer.kind != "input" and not preds:
                raise ValueError(f"layer {name}: not connected to any input")
