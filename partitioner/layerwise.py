"""Thin layer-wise partitioner: per layer the fewest contiguous equal chunks of
neurons (flat HWC order) that respect every hard limit of a core.

Layers are visited from the output back to the input, so when a layer is split
the split of all its successors is known and its output axons can be counted.
"""
from __future__ import annotations

import math

import numpy as np

from hwmodel.limits import Board
from nxcompile.connectivity import connection_matrix
from nxcompile.ir import NetworkIR
from partitioner import resources
from partitioner.errors import CoreLimitError, PartitionError
from partitioner.partition import Core, Partition
from partitioner.usage import compartments_per_neuron, measure, weight_bits


def _chunks(n: int, k: int) -> list:
    return [np.asarray(c, dtype=np.int64) for c in np.array_split(np.arange(n), k)]


def _split_layer(ir: NetworkIR, name: str, in_mats: list, out_mats: list, board: Board) -> list:
    """Fewest chunks of layer `name` that fit a core. out_mats: (matrix, core index
    of every target neuron) of the successors, already split."""
    lim = board.chip.core
    layer = ir.layer(name)
    cpn = compartments_per_neuron(ir, name)
    k = max(1, math.ceil(layer.n * cpn / lim.compartments)) if cpn else 1
    out_per_neuron = sum(resources.output_axons(m, core_of, layer.n) for m, core_of in out_mats) \
        if out_mats else np.zeros(layer.n, np.int64)
    worst = None
    while k <= layer.n:
        chunks = _chunks(layer.n, k)
        fits = True
        for rows in chunks:
            comp = len(rows) * cpn
            axons, words, per_axon = resources.input_resources(
                in_mats, rows, comp, weight_bits(ir, name), lim)
            out = int(out_per_neuron[rows].sum())
            checks = (("compartments", comp, lim.compartments),
                      ("input axons", axons, lim.input_axons),
                      ("synapse words", words, lim.synapse_words),
                      ("synapse words of one axon", per_axon, lim.words_per_axon),
                      ("output axons", out, lim.output_axons))
            for resource, need, limit in checks:
                if need > limit:
                    fits = False
                    worst = (resource, need, limit)
                    break
            if not fits:
                break
        if fits:
            return chunks
        k += max(1, k // 8)
    resource, need, limit = worst
    raise CoreLimitError(name, resource, need, limit, "even one neuron per core does not fit")


def partition_network(ir: NetworkIR, board: Board) -> Partition:
    """Split every layer over cores and place the cores on chips in layer order."""
    ir.validate()
    order = ir.order()
    splits = {}
    core_of = {}
    for name in reversed(order):
        layer = ir.layer(name)
        in_mats = [connection_matrix(ir.connection(src, name), layer.shape)
                   for src in ir.predecessors(name)]
        out_mats = [(connection_matrix(ir.connection(name, dst), ir.layer(dst).shape), core_of[dst])
                    for dst in ir.successors(name)]
        splits[name] = _split_layer(ir, name, in_mats, out_mats, board)
        core_of[name] = np.empty(layer.n, np.int64)
        for i, rows in enumerate(splits[name]):
            core_of[name][rows] = i
    return _place(ir, order, splits, board)


def _place(ir: NetworkIR, order: list, splits: dict, board: Board) -> Partition:
    """Number the cores in layer order and fill chips one after the other."""
    part = Partition(board=board)
    per_chip = board.chip.cores_per_chip
    for name in order:
        for rows in splits[name]:
            idx = len(part.cores)
            part.cores.append(Core(index=idx, chip=idx // per_chip, layer=name, neurons=rows))
    if part.num_chips > board.num_chips:
        raise PartitionError(f"network needs {part.num_cores} cores on {part.num_chips} chips, "
                             f"board {board.name} has {board.num_chips} chips")
    measure(ir, part)
    return part
