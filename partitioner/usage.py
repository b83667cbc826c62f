"""Recount what every core uses, from the final neuron-to-core assignment and the
synapse matrices alone (not from the search's own numbers)."""
from __future__ import annotations

import numpy as np

from nxcompile.connectivity import connection_matrix
from nxcompile.ir import NetworkIR
from partitioner import resources
from partitioner.partition import Partition


def compartments_per_neuron(ir: NetworkIR, name: str) -> int:
    """Two compartments for a soft-reset neuron, none for a spike-input 'neuron'."""
    layer = ir.layer(name)
    if layer.kind == "input" and layer.input_mode == "spikes":
        return 0
    return 2 if layer.neuron.reset == "soft" else 1


def weight_bits(ir: NetworkIR, name: str) -> int:
    """Stored bits per synapse weight of a layer: mantissa plus sign."""
    return ir.layer(name).neuron.num_weight_bits + 1


def core_index_of_neurons(ir: NetworkIR, partition: Partition) -> dict:
    """Layer name -> array giving the core index of each of its neurons."""
    out = {}
    for core in partition.cores:
        arr = out.setdefault(core.layer, np.full(ir.layer(core.layer).n, -1, np.int64))
        arr[core.neurons] = core.index
    return out


def measure(ir: NetworkIR, partition: Partition) -> None:
    """Fill compartments, input_axons, output_axons and synapse_words of every core."""
    lim = partition.board.chip.core
    core_of = core_index_of_neurons(ir, partition)
    for name in ir.order():
        layer = ir.layer(name)
        in_mats = [connection_matrix(ir.connection(src, name), layer.shape)
                   for src in ir.predecessors(name)]
        out_per_neuron = np.zeros(layer.n, np.int64)
        for dst in ir.successors(name):
            m = connection_matrix(ir.connection(name, dst), ir.layer(dst).shape)
            out_per_neuron += resources.output_axons(m, core_of[dst], layer.n)
        for core in partition.cores_of(name):
            core.compartments = len(core.neurons) * compartments_per_neuron(ir, name)
            core.input_axons, core.synapse_words, _ = resources.input_resources(
                in_mats, core.neurons, core.compartments, weight_bits(ir, name), lim)
            core.output_axons = int(out_per_neuron[core.neurons].sum())
