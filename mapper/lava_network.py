"""Lava processes for one sample of an IntNetwork, laid out as its Partition.

Every core becomes one neuron process holding exactly that core's neurons (in
the order of Core.neurons, flat HWC indices of its layer): lava LIF (hard
reset), SoftResetLIF, or, for a spike-mode input layer, a RingBuffer replaying
the sample's spikes.  Every IntConnection becomes one lava Sparse per (source
core, target core) pair with a non-zero weight block.  Lava's Sparse floors its
own partial sum when weight_exp < 0; where a target core gets such a
connection from several source cores and the floor is not exact, the blocks run
with weight_exp=0 into one WeightExpShift per (connection, target core), so the
whole connection's input is shifted once, as IntConnection defines.  The output
layer and the recorded layers get a SpikeSink per core.
"""
from __future__ import annotations

import mapper.lava_compat  # noqa: F401  (before any lava import)

from dataclasses import dataclass, field

import numpy as np
from lava.magma.compiler.compiler_graphs import find_processes
from lava.proc.io.source import RingBuffer
from lava.proc.lif.process import LIF
from lava.proc.sparse.process import Sparse
from lava.utils.weightutils import SignMode

from hwmodel import formats
from hwmodel.network import IntConnection, IntLayer, IntNetwork
from mapper.procs.process import SoftResetLIF, SpikeSink, WeightExpShift
from partitioner.partition import Core, Partition


@dataclass
class LavaNetwork:
    """The Lava processes of one sample, keyed like the partition.

    neurons: core index -> LIF | SoftResetLIF | RingBuffer.
    synapses: (source core index, target core index) -> list of Sparse (one per
    IntConnection between the two cores' layers).
    shifts: (connection index in IntNetwork.connections, target core index) ->
    WeightExpShift.  sinks: core index -> SpikeSink (output and recorded layers).
    components: core indices of the sinks of each connected Lava graph; each
    graph is compiled and run on its own (run one of its sinks).
    """

    neurons: dict = field(default_factory=dict)
    synapses: dict = field(default_factory=dict)
    shifts: dict = field(default_factory=dict)
    sinks: dict = field(default_factory=dict)
    components: list = field(default_factory=list)


def _check_range(what: str, value, lo: int, hi: int) -> None:
    value = np.asarray(value)
    if value.size and (value.min() < lo or value.max() > hi):
        bad = value.min() if value.min() < lo else value.max()
        raise ValueError(f"{what}={bad} outside {lo}..{hi}")


def check_layer(layer: IntLayer) -> None:
    """Raise ValueError if a parameter does not fit the bits Lava stores it in
    (Lava would silently wrap it)."""
    where = f"layer {layer.name}:"
    _check_range(f"{where} vth", layer.vth, 0, formats.THRESHOLD_MANT_MAX)
    _check_range(f"{where} du", layer.du, 0, formats.DECAY_UNITY - 1)
    _check_range(f"{where} dv", layer.dv, 0, formats.DECAY_UNITY - 1)
    _check_range(f"{where} bias_exp", layer.bias_exp, 0, formats.BIAS_EXP_MAX)
    _check_range(f"{where} bias_mant", layer.bias_mant, -formats.BIAS_MANT_MAX - 1,
                 formats.BIAS_MANT_MAX)
    if layer.reset not in ("hard", "soft"):
        raise ValueError(f"{where} reset={layer.reset!r} not 'hard' or 'soft'")


def check_connection(conn: IntConnection) -> None:
    """Raise ValueError unless the weights lie on the grid Lava stores for the
    connection's sign mode and bit width (so Lava's clip and truncation keep them)."""
    where = f"connection {conn.source}->{conn.target}:"
    if conn.sign_mode not in formats.SIGN_MODES:
        raise ValueError(f"{where} sign_mode={conn.sign_mode!r} not one of {formats.SIGN_MODES}")
    _check_range(f"{where} weight_exp", conn.weight_exp,
                 formats.WEIGHT_EXP_MIN, formats.WEIGHT_EXP_MAX)
    step = formats.weight_step(conn.num_weight_bits, conn.sign_mode)
    _check_range(f"{where} weight ({conn.sign_mode})", conn.weights.data,
                 *formats.weight_range(conn.sign_mode))
    off_grid = conn.weights.data[conn.weights.data % step != 0]
    if off_grid.size:
        raise ValueError(f"{where} weight {off_grid[0]} is not a multiple of {step}, the step of "
                         f"{conn.num_weight_bits}-bit {conn.sign_mode} weights")


def check_record(net: IntNetwork, record) -> None:
    """Raise ValueError if `record` names a layer the network does not have."""
    unknown = set(record) - set(net.layers)
    if unknown:
        raise ValueError(f"record: unknown layers {sorted(unknown)}; layers: {list(net.layers)}")


def check_partition(net: IntNetwork, partition: Partition) -> None:
    """Raise ValueError unless the cores of every layer hold each of its neurons once."""
    for core in partition.cores:
        if core.layer not in net.layers:
            raise ValueError(f"partition: core {core.index} holds unknown layer {core.layer!r}")
    for name, layer in net.layers.items():
        held = np.concatenate([np.asarray(c.neurons, np.int64) for c in partition.cores_of(name)]
                              or [np.zeros(0, np.int64)])
        if len(held) != layer.n or not np.array_equal(np.sort(held), np.arange(layer.n)):
            raise ValueError(f"partition: the cores of layer {name} hold {len(held)} neuron "
                             f"indices, not each of 0..{layer.n - 1} exactly once")


def _neuron_process(layer: IntLayer, core: Core, bias_mant: np.ndarray):
    kind = SoftResetLIF if layer.reset == "soft" else LIF
    return kind(shape=(len(core.neurons),), vth=layer.vth, du=layer.du, dv=layer.dv,
                bias_mant=bias_mant[core.neurons], bias_exp=layer.bias_exp,
                name=f"{layer.name}/core{core.index}")


def _spike_source(layer: IntLayer, core: Core, x: np.ndarray, num_steps: int) -> RingBuffer:
    """RingBuffer of the core's input spikes, data (neurons, num_steps) 0/1."""
    if len(x) < num_steps:
        raise ValueError(f"input layer {layer.name}: spike input has {len(x)} steps, "
                         f"the run needs {num_steps}")
    spikes = np.asarray(x[:num_steps]).reshape(num_steps, layer.n) != 0
    source = RingBuffer(data=spikes[:, core.neurons].T.astype(np.int32))
    source.name = f"{layer.name}/core{core.index}"
    return source


def _needs_shift(conn: IntConnection, num_source_blocks: int) -> bool:
    """Whether per-block flooring by a negative weight_exp could differ from
    flooring the sum of the blocks."""
    return (conn.weight_exp < 0 and num_source_blocks > 1
            and bool(np.any(conn.weights.data % (1 << -conn.weight_exp))))


def _connect(lnet: LavaNetwork, partition: Partition, index: int, conn: IntConnection) -> None:
    """Sparse blocks (and shifts) of one connection, wired into the neuron processes."""
    weights = conn.weights.tocsr()
    sign_mode = SignMode[conn.sign_mode.upper()]
    for tgt in partition.cores_of(conn.target):
        rows = weights[tgt.neurons]
        blocks = []
        for src in partition.cores_of(conn.source):
            block = rows[:, src.neurons].tocsr()
            block.eliminate_zeros()
            if block.nnz:
                blocks.append((src, block))
        target_port = lnet.neurons[tgt.index].a_in
        if _needs_shift(conn, len(blocks)):
            shift = WeightExpShift(shape=(len(tgt.neurons),), weight_exp=conn.weight_exp,
                                   name=f"{conn.source}->{conn.target}/shift/core{tgt.index}")
            shift.a_out.connect(target_port)
            lnet.shifts[index, tgt.index] = shift
            target_port, weight_exp = shift.a_in, 0
        else:
            weight_exp = conn.weight_exp
        for src, block in blocks:
            syn = Sparse(weights=block, weight_exp=weight_exp, num_weight_bits=conn.num_weight_bits,
                         sign_mode=sign_mode,
                         name=f"{conn.source}->{conn.target}/core{src.index}->core{tgt.index}")
            lnet.neurons[src.index].s_out.connect(syn.s_in)
            syn.a_out.connect(target_port)
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
                       record=()) -> LavaNetwork:
    """Lava processes for one sample x: (*input_shape) frame in bias input mode,
    (steps >= num_steps, *input_shape) 0/1 spikes in spike input mode.  Sinks
    of the layers in `record` keep their spike trains of num_steps steps."""
    check_record(net, record)
    check_partition(net, partition)
    for conn in net.connections:
        check_connection(conn)
    lnet = LavaNetwork()
    x = np.asarray(x)
    for name, layer in net.layers.items():
        check_layer(layer)
        spike_input = layer.is_input and layer.input_mode == "spikes"
        if not spike_input:
            bias = np.asarray(layer.input_bias(x[None])[0] if layer.is_input else layer.bias_mant,
                              np.int64)
        for core in partition.cores_of(name):
            if spike_input:
                proc = _spike_source(layer, core, x, num_steps)
            else:
                proc = _neuron_process(layer, core, bias)
            lnet.neurons[core.index] = proc
    for index, conn in enumerate(net.connections):
        _connect(lnet, partition, index, conn)
    for name in dict.fromkeys([net.output_layer, *record]):
        for core in partition.cores_of(name):
            sink = SpikeSink(shape=(len(core.neurons),),
                             record_steps=num_steps if name in record else None,
                             name=f"{name}/core{core.index}/sink")
            lnet.neurons[core.index].s_out.connect(sink.s_in)
            lnet.sinks[core.index] = sink
    lnet.components = _components(lnet.sinks)
    return lnet
