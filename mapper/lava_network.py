"""Lava processes for a batch of an IntNetwork, laid out as its Partition.

Every core becomes one neuron process holding exactly that core's neurons (in
the order of Core.neurons, flat HWC indices of its layer): lava LIF (hard
reset; LIFReset with a periodic reset), the two-compartment SoftResetLIF, or,
for a spike-mode input layer, a RingBuffer replaying the samples' spikes.

The samples of a batch run side by side, one lane each: every process holds
its core's neurons once per lane (lane-major: index lane * len(core.neurons)
+ i) and every Sparse block is repeated along the diagonal, so the lanes never
interact and every sample's result is that of a network of its own
(tests/test_lava_backend.py).  Every IntConnection becomes one
lava Sparse per (source core, target core) pair with a non-zero weight block,
with the connection's weight_exp, bit width and sign mode (sign mode 'shared':
an excitatory and an inhibitory Sparse); a block with per-synapse delays is a
DelaySparse (its delays).  Sparse is exact
for these blocks because weight_exp >= 0: a left shift distributes over the
per-core partial sums.  A negative exponent is rejected (mapper.checks.check_connection).
The output layer and the recorded layers get a SpikeSink per core.
"""
from __future__ import annotations

import mapper.lava_compat  # noqa: F401  (before any lava import)

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp
from lava.magma.compiler.compiler_graphs import find_processes
from lava.proc.io.source import RingBuffer
from lava.proc.lif.process import LIF, LIFReset
from lava.proc.sparse.process import DelaySparse, Sparse
from lava.utils.weightutils import SignMode

from hwmodel.errors import NetworkError
from hwmodel.formats import sign_mode as sign_mode_of
from hwmodel.network import IntConnection, IntLayer, IntNetwork
from hwmodel.partition import Core, Partition
from mapper.checks import check_network, check_partition, check_record
from mapper.procs.process import SoftResetLIF, SpikeSink


@dataclass
class LavaNetwork:
    """The Lava processes of a batch, keyed like the partition.

    neurons: core index -> LIF | SoftResetLIF | RingBuffer.
    synapses: (source core index, target core index) -> list of Sparse or
    DelaySparse (one per IntConnection between the two cores' layers).
    sinks: core index -> SpikeSink (output and recorded layers).
    components: core indices of the sinks of each connected Lava graph; each
    graph is compiled and run on its own (run one of its sinks).
    lanes: samples side by side (module doc); sample s is lane s.
    """

    neurons: dict = field(default_factory=dict)
    synapses: dict = field(default_factory=dict)
    sinks: dict = field(default_factory=dict)
    components: list = field(default_factory=list)
    lanes: int = 1


def _neuron_process(layer: IntLayer, core: Core, bias_mant: np.ndarray):
    """LIF, SoftResetLIF, or LIFReset for a periodic reset (hard reset only:
    mapper.checks); bias_mant: (lanes * len(core.neurons),) mantissas of the
    core's lanes."""
    kind, periodic = SoftResetLIF if layer.reset == "soft" else LIF, {}
    if layer.reset_interval:
        kind, periodic = LIFReset, dict(reset_interval=layer.reset_interval,
                                        reset_offset=layer.reset_offset)
    return kind(shape=(len(bias_mant),), vth=layer.vth, du=layer.du, dv=layer.dv,
                bias_mant=bias_mant, bias_exp=layer.bias_exp,
                name=f"{layer.name}/core{core.index}", **periodic)


def _spike_source(layer: IntLayer, core: Core, x: np.ndarray, num_steps: int) -> RingBuffer:
    """RingBuffer of the core's input spikes: data (lanes * neurons, num_steps)
    0/1 for the samples x (lanes, steps, *shape)."""
    if x.shape[1] < num_steps:
        raise NetworkError(f"input layer {layer.name}: spike input has {x.shape[1]} steps, "
                           f"the run needs {num_steps}")
    spikes = np.asarray(x[:, :num_steps]).reshape(len(x), num_steps, layer.n) != 0
    spikes = spikes[..., core.neurons]                    # (lanes, steps, neurons)
    data = spikes.transpose(0, 2, 1).reshape(len(x) * len(core.neurons), num_steps)
    source = RingBuffer(data=data.astype(np.int32))
    source.name = f"{layer.name}/core{core.index}"
    return source


def _connect(lnet: LavaNetwork, partition: Partition, conn: IntConnection) -> None:
    """Sparse blocks of one connection (each repeated once per lane along the
    diagonal), wired into the neuron processes."""
    if conn.sign_mode == "shared":      # its positive and its negative weights: two connections
        weights = conn.matrix()
        for part in (weights.maximum(0), weights.minimum(0)):
            delays = None if conn.delays is None else \
                sp.csr_matrix(conn.delays.multiply(part != 0), dtype=np.int64)
            _connect(lnet, partition, replace(conn, weights=part.tocsr(), delays=delays,
                                              sign_mode=sign_mode_of(part.data)))
        return
    delays = None if not conn.max_delay else sp.csr_matrix(conn.delays, dtype=np.int64)
    sign_mode = SignMode[conn.sign_mode.upper()]
    for tgt in partition.cores_of(conn.target):
        rows = conn.rows(tgt.neurons)      # one target core's block at a time
        delay_rows = None if delays is None else delays[tgt.neurons]
        for src in partition.cores_of(conn.source):
            block = rows[:, src.neurons].tocsr()
            block.eliminate_zeros()
            if not block.nnz:
                continue
            delay = None if delay_rows is None else delay_rows[:, src.neurons].tocsr()
            if delay is not None:
                delay.eliminate_zeros()
            if lnet.lanes > 1:
                block = sp.block_diag([block] * lnet.lanes, format="csr")
                if delay is not None:
                    delay = sp.block_diag([delay] * lnet.lanes, format="csr")
            name = f"{conn.source}->{conn.target}/core{src.index}->core{tgt.index}"
            if delay is not None and delay.nnz:
                syn = DelaySparse(weights=block, delays=delay.astype(np.int64),
                                  max_delay=int(delay.data.max()), weight_exp=conn.weight_exp,
                                  num_weight_bits=conn.num_weight_bits, sign_mode=sign_mode,
                                  name=name)
            else:
                syn = Sparse(weights=block, weight_exp=conn.weight_exp,
                             num_weight_bits=conn.num_weight_bits, sign_mode=sign_mode,
                             name=name)
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
    """Lava processes for the samples x side by side, one lane each (module
    doc): x (batch, *input_shape) frames in bias input mode, (batch, steps >=
    num_steps, *input_shape) 0/1 spikes in spike input mode; one sample without
    the batch axis is a batch of one.  Sinks of the layers in `record` keep
    their spike trains of num_steps steps.  spike_source(layer, core): what
    feeds a spike-mode input core's synapses through its s_out (default: a
    RingBuffer of x's spikes; mapper.lava_export passes the user's port
    instead, one lane, and x's spikes are then not read)."""
    check_record(net, record)
    check_network(net)
    check_partition(net, partition)
    inp = net.layers[net.input_layer]
    x = np.asarray(x)
    if x.ndim == len(inp.shape) + (inp.input_mode == "spikes"):
        x = x[None]
    lanes = len(x)
    lnet = LavaNetwork(lanes=lanes)
    for name, layer in net.layers.items():
        spike_input = layer.is_input and layer.input_mode == "spikes"
        if not spike_input:
            bias = np.asarray(layer.input_bias(x) if layer.is_input else layer.bias_mant,
                              np.int64)
        for core in partition.cores_of(name):
            if spike_input:
                proc = (_spike_source(layer, core, x, num_steps) if spike_source is None
                        else spike_source(layer, core))
            elif layer.is_input:
                proc = _neuron_process(layer, core, bias[:, core.neurons].ravel())
            else:
                proc = _neuron_process(layer, core, np.tile(bias[core.neurons], lanes))
            lnet.neurons[core.index] = proc
    for conn in net.connections:
        _connect(lnet, partition, conn)
    for name in dict.fromkeys([net.output_layer, *record]):
        for core in partition.cores_of(name):
            sink = SpikeSink(shape=(lanes * len(core.neurons),),
                             record_steps=num_steps if name in record else None,
                             name=f"{name}/core{core.index}/sink")
            lnet.neurons[core.index].s_out.connect(sink.s_in)
            lnet.sinks[core.index] = sink
    lnet.components = _components(lnet.sinks)
    return lnet
