"""Lava processes for one sample of an IntNetwork, laid out as its Partition.

Every core becomes one neuron process holding exactly that core's neurons (in
the order of Core.neurons, flat HWC indices of its layer): lava LIF (hard
reset), the two-compartment SoftResetLIF, or, for a spike-mode input layer, a
RingBuffer replaying the sample's spikes.  Every IntConnection becomes one
lava Sparse per (source core, target core) pair with a non-zero weight block,
with the connection's weight_exp, bit width and sign mode (sign mode 'shared':
an excitatory and an inhibitory Sparse).  Sparse is exact
for these blocks because weight_exp >= 0: a left shift distributes over the
per-core partial sums.  A negative exponent is rejected (mapper.checks.check_connection).
The output layer and the recorded layers get a SpikeSink per core.
"""
from __future__ import annotations

import mapper.lava_compat  # noqa: F401  (before any lava import)

from dataclasses import dataclass, field, replace

import numpy as np
from lava.magma.compiler.compiler_graphs import find_processes
from lava.proc.io.source import RingBuffer
from lava.proc.lif.process import LIF
from lava.proc.sparse.process import Sparse
from lava.utils.weightutils import SignMode

from hwmodel.errors import NetworkError
from hwmodel.formats import sign_mode as sign_mode_of
from hwmodel.network import IntConnection, IntLayer, IntNetwork
from hwmodel.partition import Core, Partition
from mapper.checks import check_network, check_partition, check_record
from mapper.procs.process import SoftResetLIF, SpikeSink


@dataclass
class LavaNetwork:
    """The Lava processes of one sample, keyed like the partition.

    neurons: core index -> LIF | SoftResetLIF | RingBuffer.
    synapses: (source core index, target core index) -> list of Sparse (one per
    IntConnection between the two cores' layers).
    sinks: core index -> SpikeSink (output and recorded layers).
    components: core indices of the sinks of each connected Lava graph; each
    graph is compiled and run on its own (run one of its sinks).
    """

    neurons: dict = field(default_factory=dict)
    synapses: dict = field(default_factory=dict)
    sinks: dict = field(default_factory=dict)
    components: list = field(default_factory=list)


def _neuron_process(layer: IntLayer, core: Core, bias_mant: np.ndarray):
    kind = SoftResetLIF if layer.reset == "soft" else LIF
    return kind(shape=(len(core.neurons),), vth=layer.vth, du=layer.du, dv=layer.dv,
                bias_mant=bias_mant[core.neurons], bias_exp=layer.bias_exp,
                name=f"{layer.name}/core{core.index}")


def _spike_source(layer: IntLayer, core: Core, x: np.ndarray, num_steps: int) -> RingBuffer:
    """RingBuffer of the core's input spikes, data (neurons, num_steps) 0/1."""
    if len(x) < num_steps:
        raise NetworkError(f"input layer {layer.name}: spike input has {len(x)} steps, "
                           f"the run needs {num_steps}")
    spikes = np.asarray(x[:num_steps]).reshape(num_steps, layer.n) != 0
    source = RingBuffer(data=spikes[:, core.neurons].T.astype(np.int32))
    source.name = f"{layer.name}/core{core.index}"
    return source


def _connect(lnet: LavaNetwork, partition: Partition, conn: IntConnection) -> None:
    """Sparse blocks of one connection, wired into the neuron processes."""
    if conn.sign_mode == "shared":      # its positive and its negative weights: two connections
        for part in (conn.weights.maximum(0), conn.weights.minimum(0)):
            _connect(lnet, partition, replace(conn, weights=part.tocsr(),
                                              sign_mode=sign_mode_of(part.data)))
        return
    weights = conn.weights.tocsr()
    sign_mode = SignMode[conn.sign_mode.upper()]
    for tgt in partition.cores_of(conn.target):
        rows = weights[tgt.neurons]
        for src in partition.cores_of(conn.source):
            block = rows[:, src.neurons].tocsr()
            block.eliminate_zeros()
            if not block.nnz:
                continue
            syn = Sparse(weights=block, weight_exp=conn.weight_exp,
                         num_weight_bits=conn.num_weight_bits, sign_mode=sign_mode,
                         name=f"{conn.source}->{conn.target}/core{src.index}->core{tgt.index}")
            lnet.neurons[src.index].s_out.connect(syn.s_in)
            syn.a_out.connect(lnet.neurons[tgt.index].a_in)
            lnet.synapses.setdefault((src.index, tgt.index), []).append(syn)


def _components(sinks: dict) -> list:
    """Core indices of the sinks in each connected Lava graph, found the way
    Lava's compiler finds the processes it compiles with one of them."""
    left, components = dict(sinks), []
    while left:
        reached = {id(p) for p in find_processes(next(iter(left.values())))}
        component = sorted(i for i, sink in left.items() if id(sink) in reached)
        components.append(component)
        for i in component:
            del left[i]
    return components


def build_lava_network(net: IntNetwork, partition: Partition, x: np.ndarray, num_steps: int,
                       record=(), spike_source=None) -> LavaNetwork:
    """Lava processes for one sample x: (*input_shape) frame in bias input mode,
    (steps >= num_steps, *input_shape) 0/1 spikes in spike input mode.  Sinks
    of the layers in `record` keep their spike trains of num_steps steps.
    spike_source(layer, core): what feeds a spike-mode input core's synapses
    through its s_out (default: a RingBuffer of x's spikes; mapper.lava_export
    passes the user's port instead, and x is then not read)."""
    check_record(net, record)
    check_network(net)
    check_partition(net, partition)
    lnet = LavaNetwork()
    x = np.asarray(x)
    for name, layer in net.layers.items():
        spike_input = layer.is_input and layer.input_mode == "spikes"
        if not spike_input:
            bias = np.asarray(layer.input_bias(x[None])[0] if layer.is_input else layer.bias_mant,
                              np.int64)
        for core in partition.cores_of(name):
            if spike_input:
                proc = (_spike_source(layer, core, x, num_steps) if spike_source is None
                        else spike_source(layer, core))
            else:
                proc = _neuron_process(layer, core, bias)
            lnet.neurons[core.index] = proc
    for conn in net.connections:
        _connect(lnet, partition, conn)
    for name in dict.fromkeys([net.output_layer, *record]):
        for core in partition.cores_of(name):
            sink = SpikeSink(shape=(len(core.neurons),),
                             record_steps=num_steps if name in record else None,
                             name=f"{name}/core{core.index}/sink")
            lnet.neurons[core.index].s_out.connect(sink.s_in)
            lnet.sinks[core.index] = sink
    lnet.components = _components(lnet.sinks)
    return lnet
