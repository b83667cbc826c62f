"""Greedy layer-wise beam search (NxTF's optimizer, extended to graphs).

Layers are visited from the outputs back to the inputs (reverse topological
order), so when a layer is split the splits of all its successors are known:
they fix the multiplicity of its neurons and so its output-axon entries
(a layer with several successors, e.g. a residual branch, gets it from all of
them).  The beam keeps `beam_width` (M) partial partitions; for each one the
candidate tilings of the next layer are tried fewest cores first, tier by tier
(a tier: all tilings with the same core count; tiers below the layer's lower
bound are skipped) until M valid ones are found; the M best of the up to M^2
proposals by cumulative cost survive.  A tiling is valid when every core keeps
every hard limit (partitioner.estimate), and it must leave room on the board
for the lower bounds of the layers still to split.

Cost of a layer (thesis eq. 3.1, weights a0..a3, default 1):
    a0 * cores + a1 * sum(synapse words) / word limit
    + a2 * sum(input axons + output entries) / axon limit
    + a3 * off-chip axon routes / output-entry limit,
summed over the layers placed so far.  Cores get provisional indices in the
order they are placed (outputs first) and chip = index // cores per chip; the
placement stage (partitioner.placement) improves the chips afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass

from hwmodel.errors import NetworkError
from hwmodel.limits import RESOURCE
from partitioner.errors import CoreLimitError, PartitionError
from partitioner.estimate import (LayerUsage, OutputUsage, Violation, layer_usage, output_usage,
                                  successor_hits)
from partitioner.graph import PartitionGraph
from partitioner.tiling import Tiling

DEFAULT_COST_WEIGHTS = (1.0, 1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Choice:
    """One layer's split in a partial partition."""

    tiling: Tiling
    usage: LayerUsage
    output: OutputUsage
    first: int       # provisional index of its first core
    cost: float


@dataclass(frozen=True)
class State:
    """A partial partition: the layers split so far."""

    choices: dict
    num_cores: int
    cost: float

    def key(self) -> tuple:
        return tuple(sorted((n, c.tiling.block) for n, c in self.choices.items()))


class _Failures:
    """Why no split of one layer was accepted, for the error message: the least
    violating candidate (its core limit), how many distinct splits were tried,
    and the fewest cores of a split the board had no room for (with the room)."""

    def __init__(self):
        self.best: tuple | None = None
        self.tried = set()
        self.no_room: tuple | None = None
        self.deferred = []      # (tiling, its output-axon violation): own usage not yet counted

    def defer(self, tiling: Tiling, violation: Violation) -> None:
        """A split failed on its output axons; its own usage (which, if it fails too,
        the message names instead) is counted only if the layer fails."""
        self.deferred.append((tiling, violation))

    def add(self, violation: Violation, tiling: Tiling) -> None:
        self.tried.add(tiling)
        if self.best is None or violation.ratio < self.best[0].ratio:
            self.best = (violation, tiling)

    def full(self, cores: int, left: int) -> None:
        """A split of `cores` cores did not fit the `left` cores the board had left."""
        if self.no_room is None or left - cores > self.no_room[1] - self.no_room[0]:
            self.no_room = (cores, left)

    def error(self, name: str, graph: PartitionGraph) -> PartitionError:
        b = graph.board
        room = ""
        if self.no_room is not None:
            cores, left = self.no_room
            room = (f"splits of {cores} or more cores {'were not tried: they ' if self.best else ''}"
                    f"do not fit the {left} cores left for it on "
                    f"board {b.name} ({b.num_cores} cores; the layers split so far and the lower "
                    f"bounds of those still to split take the rest)")
        if self.best is None and not room:       # no candidate at all: not one neuron fits a core
            comps = RESOURCE["compartments"]
            return CoreLimitError(name, comps.name, graph.cpn[name], comps.limit(graph.limits),
                                  "one neuron")
        if self.best is None:
            return PartitionError(f"layer {name}: {room}")
        v, tiling = self.best
        forced = graph.layer(name).neuron.synapse_encoding
        return CoreLimitError(v.layer, v.resource, v.needed, v.limit,
                              f"best of {len(self.tried)} candidate splits of layer {name}: "
                              f"{tiling.split}" + (f"; {room}" if room else "")
                              + (f"; with synapseEncoding={forced!r}" if forced else ""))


def layer_cost(usage: LayerUsage, output: OutputUsage, graph: PartitionGraph,
               weights: tuple) -> float:
    lim = graph.limits
    a0, a1, a2, a3 = weights
    return float(a0 * usage.tiling.num_cores
                 + a1 * usage.synapse_words.sum() / lim.synapse_words
                 + a2 * (usage.input_axons.sum() / lim.input_axons
                         + output.entries.sum() / lim.output_axons)
                 + a3 * output.offchip_routes / lim.output_axons)


class BeamSearch:
    """Runs the search; usage estimates are cached per (layer, tiling)."""

    def __init__(self, graph: PartitionGraph, bounds: dict, beam_width: int = 4,
                 cost_weights: tuple = DEFAULT_COST_WEIGHTS):
        if beam_width < 1:
            raise NetworkError(f"beam width M must be >= 1, got {beam_width}")
        if len(cost_weights) != 4:
            raise NetworkError(f"cost weights must be 4 numbers (a0..a3), got {cost_weights!r}")
        self.graph, self.bounds = graph, bounds
        self.beam_width, self.weights = beam_width, tuple(cost_weights)
        self._usage = {}

    def usage(self, name: str, tiling: Tiling) -> LayerUsage:
        key = (name, tiling)
        if key not in self._usage:
            self._usage[key] = layer_usage(self.graph, name, tiling, self.weights[1], self.weights[2])
        return self._usage[key]

    def run(self) -> State:
        """The best complete partition."""
        g = self.graph
        states = [State({}, 0, 0.0)]
        remaining = sum(b for b, _ in self.bounds.values())
        for name in reversed(g.order):
            remaining -= self.bounds[name][0]
            failures = _Failures()
            proposals = []
            for state in states:
                proposals += self._propose(state, name, remaining, failures)
            if not proposals:
                for tiling, violation in failures.deferred:
                    failures.add(self.usage(name, tiling).violation or violation, tiling)
                raise failures.error(name, g)
            proposals.sort(key=lambda s: s.cost)
            seen, states = set(), []
            for s in proposals:
                if s.key() not in seen:
                    seen.add(s.key())
                    states.append(s)
                if len(states) == self.beam_width:
                    break
            for key in [k for k in self._usage if k[0] == name]:
                del self._usage[key]            # the surviving states hold theirs
            g.release(name)
        return states[0]

    def _propose(self, state: State, name: str, remaining: int, failures: _Failures) -> list:
        """Up to M extensions of `state` by a split of layer `name`."""
        g = self.graph
        successors = {q: (c.tiling, c.usage, c.first) for q, c in state.choices.items()}
        capacity = g.board.num_cores - state.num_cores - remaining
        hits = successor_hits(g, name, successors)
        found, tier = [], None
        for tiling in g.candidates(name):
            k = tiling.num_cores
            if k < self.bounds[name][0]:
                continue
            if tier is not None and k > tier and len(found) >= self.beam_width:
                break
            tier = k
            if k > capacity:
                failures.full(k, capacity)
                break
            output = output_usage(g, name, tiling, successors, state.num_cores, hits)
            if output.violation:    # the cheaper check first; the message wants the own one
                failures.defer(tiling, output.violation)
                continue
            usage = self.usage(name, tiling)
            if usage.violation:
                failures.add(usage.violation, tiling)
                continue
            cost = layer_cost(usage, output, g, self.weights)
            choice = Choice(tiling, usage, output, state.num_cores, cost)
            found.append(State({**state.choices, name: choice}, state.num_cores + k,
                               state.cost + cost))
        found.sort(key=lambda s: s.cost)
        return found[:self.beam_width]
