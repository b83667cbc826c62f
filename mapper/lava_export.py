"""A compiled network as Lava processes with named ports, for a Lava user to
connect processes of their own (CompiledModel.to_lava).

The processes are mapper.lava_network's, one per core, with the same integer
parameters as every nxcompile run.  What differs:

inputs   In spike input mode the input layer is the user's: its synapses
         (one lava Sparse per target core, fed by all input neurons: the input
         layer's cores merged into one, which changes no sum since every weight
         exponent is >= 0) wait on InPorts of shape (n_input,), spikes in flat
         HWC order; ``connect_input(out_port)`` connects a source to all of
         them.  In bias input mode the frame given to to_lava sets the input
         neurons' biases and there is no input port.
outputs  ``output_ports``: core index -> s_out of each output core (its spikes
         in the step they fire), ``output_neurons``: core index -> the flat
         HWC indices of that port's elements.  (Lava 0.10 cannot concatenate
         ports.)  ``connect_output(in_port)`` feeds one InPort of shape
         (n_output,) with the output layer's spikes in flat HWC order, through
         one unit-weight Sparse per output core, so they arrive one step
         later, as through any synapse.  ``sinks`` are nxcompile's SpikeSinks
         on the output cores (spike counts), compiled and run with the graph.

Run it with mapper.lava_run.running(<a process of the graph>, num_steps).
"""
from __future__ import annotations

import mapper.lava_compat  # noqa: F401  (before any lava import)

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from lava.proc.sparse.process import Sparse
from lava.utils.weightutils import SignMode

from hwmodel.errors import NetworkError
from hwmodel.network import IntNetwork
from hwmodel.partition import Core, Partition
from mapper.lava_network import LavaNetwork, build_lava_network


class _InputFanout:
    """Stands in for a spike-mode input core's process: records the Sparse
    InPorts the builder connects its s_out to."""

    def __init__(self):
        self.s_out = self
        self.ports = []

    def connect(self, port) -> None:
        self.ports.append(port)


@dataclass
class LavaExport:
    """The processes of one compiled network and the ports a Lava user connects.

    network: the mapper.lava_network.LavaNetwork (neurons per core, Sparse
    synapses per core pair, SpikeSinks per output core).  input_ports: the
    InPorts (each of shape (n_input,)) that a spike source of the input layer
    feeds, empty in bias input mode.  output_ports, output_neurons: per output
    core its s_out and the flat HWC indices of its elements.
    """

    network: LavaNetwork
    input_layer: str
    output_layer: str
    n_output: int
    input_ports: list = field(default_factory=list)
    output_ports: dict = field(default_factory=dict)
    output_neurons: dict = field(default_factory=dict)

    @property
    def processes(self) -> list:
        """Every Lava process of the network (neurons, synapses, sinks)."""
        net = self.network
        return [*net.neurons.values(), *(s for syns in net.synapses.values() for s in syns),
                *net.sinks.values()]

    @property
    def sinks(self) -> dict:
        """Core index -> SpikeSink (counts) of the output layer's cores."""
        return self.network.sinks

    def connect_input(self, out_port) -> None:
        """Connect a spike source's OutPort of shape (n_input,) to every input port."""
        if not self.input_ports:
            raise NetworkError(f"layer {self.input_layer}: the input is in bias mode (the frame "
                               f"given to to_lava); it has no spike input port")
        _check_shape(self.input_layer, "source", out_port, self.input_ports[0].shape)
        out_port.connect(self.input_ports)

    def connect_output(self, in_port) -> list:
        """Feed an InPort of shape (n_output,) with the output layer's spikes, flat
        HWC order, one step after they fire (a unit-weight Sparse per output
        core, returned)."""
        _check_shape(self.output_layer, "sink", in_port, (self.n_output,))
        gathers = []
        for core, port in self.output_ports.items():
            cols = np.arange(len(self.output_neurons[core]))
            weights = sp.csr_matrix((np.ones(len(cols), np.int64),
                                     (self.output_neurons[core], cols)),
                                    shape=(self.n_output, len(cols)))
            gather = Sparse(weights=weights, sign_mode=SignMode.EXCITATORY,
                            name=f"{self.output_layer}/core{core}/gather")
            port.connect(gather.s_in)
            gather.a_out.connect(in_port)
            gathers.append(gather)
        return gathers


def _check_shape(layer: str, what: str, port, shape: tuple) -> None:
    if tuple(port.shape) != tuple(shape):
        raise NetworkError(f"layer {layer}: a {what} port of shape {tuple(port.shape)}, the "
                           f"network's is {tuple(shape)}")


def _merged_input(net: IntNetwork, partition: Partition) -> Partition:
    """The partition with a spike-mode input layer on one core (it has no
    compartments; its cores only group its axons)."""
    inp = net.layers[net.input_layer]
    cores = partition.cores_of(inp.name)
    if inp.input_mode != "spikes" or len(cores) == 1:
        return partition
    merged = Core(index=cores[0].index, chip=cores[0].chip, layer=inp.name,
                  neurons=np.arange(inp.n, dtype=np.int64))
    return dataclasses.replace(partition, cores=[merged, *(c for c in partition.cores
                                                           if c.layer != inp.name)])


def to_lava(net: IntNetwork, partition: Partition, x=None) -> LavaExport:
    """The Lava processes of `net` laid out as `partition`, with ports (module doc).

    x: the input frame (*input_shape) in bias input mode (default: zeros); must
    be None in spike input mode, where the user's source gives the spikes.
    """
    inp = net.layers[net.input_layer]
    spikes = inp.input_mode == "spikes"
    if spikes and x is not None:
        raise NetworkError(f"layer {inp.name}: spike input mode takes its spikes through "
                           f"connect_input, not a frame x")
    if not spikes:
        x = np.zeros(inp.shape) if x is None else np.asarray(x)
        if x.shape != tuple(inp.shape):
            raise NetworkError(f"layer {inp.name}: frame of shape {x.shape}, the input layer "
                               f"is {tuple(inp.shape)}")
    fanout = _InputFanout()
    if spikes:      # one step of no spikes: build_lava_network reads only its shape
        x = np.zeros((1, *inp.shape))
    lnet = build_lava_network(net, _merged_input(net, partition), x, 1,
                              spike_source=lambda layer, core: fanout)
    out_cores = partition.cores_of(net.output_layer)
    return LavaExport(network=lnet, input_layer=inp.name, output_layer=net.output_layer,
                      n_output=net.layers[net.output_layer].n, input_ports=fanout.ports,
                      output_ports={c.index: lnet.neurons[c.index].s_out for c in out_cores},
                      output_neurons={c.index: np.asarray(c.neurons) for c in out_cores})
