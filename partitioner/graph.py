"""The network as the search sees it: layers in topological order, their
connections (partitioner.edges), compartments per neuron, synapse bits
(weight and delay), the
synapse encodings each layer's cores may use, whether its lists are split by
sign, and which source neurons feed only one successor layer."""
from __future__ import annotations

import numpy as np

from hwmodel.limits import Board
from nxcompile.ir import NetworkIR
from partitioner import model
from partitioner.edges import Edge, make_edge
from partitioner.errors import PartitionError
from partitioner.tiling import Tiling, candidate_tilings


class PartitionGraph:
    """Static facts about a network, with caches keyed by layer and tiling."""

    def __init__(self, ir: NetworkIR, board: Board, network=None):
        """network: the IntNetwork whose integer synapses the chip stores, for
        the connections that partitioner.edges counts from them (None: the IR's)."""
        ir.validate()
        self.ir, self.board, self.limits = ir, board, board.chip.core
        self.order = ir.order()
        for name in self.order:
            if ir.layer(name).n == 0:
                raise PartitionError(f"layer {name}: shape {tuple(ir.layer(name).shape)} has no "
                                     f"neurons; a layer needs at least one")
        stored = {} if network is None else {(c.source, c.target): c for c in network.connections}
        self.edges = {(s, t): make_edge(ir, s, t, stored.get((s, t))) for s, t in ir.graph.edges}
        self.in_edges = {n: [self.edges[p, n] for p in ir.predecessors(n)] for n in self.order}
        self.out_edges = {n: [self.edges[n, q] for q in ir.successors(n)] for n in self.order}
        self.cpn = {n: model.compartments_per_neuron(ir.layer(n)) for n in self.order}
        self.w_bits = {n: model.synapse_bits(ir.layer(n), max(   # weight + delay
            [e.max_delay for e in self.in_edges[n]], default=0)) for n in self.order}
        self.split_signs = {n: model.splits_signs(ir.layer(n), np.concatenate(
            [e.synapses[2] for e in self.in_edges[n]] or [np.zeros(0)]))
            if ir.layer(n).neuron.shared_sign else False for n in self.order}
        self.encodings = {n: model.layer_encodings(ir.layer(n), self.split_signs[n],
                                                   self.limits.synapse_formats)
                          for n in self.order}
        self._target_cores = {}
        self._candidates = {}
        self._solo = {}

    def layer(self, name: str):
        return self.ir.layer(name)

    def solo(self, name: str) -> np.ndarray:
        """Per neuron of a layer: it has synapses into exactly one successor layer."""
        if name not in self._solo:
            feeds = sum((e.connects.astype(np.int64) for e in self.out_edges[name]),
                        np.zeros(self.layer(name).n, np.int64))
            self._solo[name] = feeds == 1
        return self._solo[name]

    def fewest_target_cores(self, edge: Edge) -> np.ndarray:
        """Per source neuron of `edge`: the fewest cores of its target layer its
        synapses reach (its fan-out's compartments over a core's)."""
        return -(-edge.fanout * self.cpn[edge.target] // self.limits.compartments)

    def candidates(self, name: str) -> list:
        """Candidate tilings of a layer, fewest cores first."""
        if name not in self._candidates:
            self._candidates[name] = candidate_tilings(
                tuple(self.layer(name).shape), self.cpn[name], self.limits.compartments)
        return self._candidates[name]

    def release(self, name: str) -> None:
        """Free what only the split of layer `name` needed, once the search has
        decided it: the neuron maps of its candidate tilings (those that survive
        in the beam rebuild theirs when asked: for a matrix connection's hits,
        for the partition's cores), the block caches of its incoming edges and
        the hits and synapses of its outgoing ones (their targets are decided
        already).  Nothing proportional to neurons or synapses stays for the
        whole graph."""
        for tiling in self._candidates.get(name, ()):
            tiling.release()
        for e in self.in_edges[name]:
            e.release_blocks()
        for e in self.out_edges[name]:
            e.release_synapses()
            for key in [k for k in self._target_cores if k[:2] == (e.source, e.target)]:
                del self._target_cores[key]

    def target_cores(self, edge: Edge, tiling: Tiling):
        """Cached Edge.target_cores."""
        key = (edge.source, edge.target, tiling)
        if key not in self._target_cores:
            self._target_cores[key] = edge.target_cores(tiling)
        return self._target_cores[key]
