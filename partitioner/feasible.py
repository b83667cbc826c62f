"""Refuse, before the search, a layer that no core of any board can hold.

Each check is a floor on what the core holding ONE neuron (or the cores one
source neuron reaches) must use, whatever the split, the encoding, the axon
choices or the number of chips (partitioner.model's rules):
- compartments: one neuron's compartments;
- input axons: the core of target neuron j holds, per incoming connection,
  one discrete axon for every source of j that cannot share a population axon
  (it feeds another layer, or its targets need more compartments than a core
  has, so they cannot all sit on j's core), plus one axon if j has any other
  source (discrete, or the population axon); a window connection that may use
  pixel population axons needs at most one per source pixel of j's window;
- synapse words: every synapse into j is stored on j's core; two of them can
  share storage only with equal weights (connection sharing), so per dense
  connection at least one synapse per distinct weight into j, each at least
  its weight and delay bits (window connections: not checked, their per-neuron
  fan-in is far below the synapse memory);
- output-axon entries: a source neuron reaches at least ceil(its targets'
  compartments / compartment limit) cores of each successor, one entry per
  core where that is 2 or more (partitioner.bounds' rule, per neuron).
A layer over a floor raises CoreLimitError naming the layer, the resource, the
need, the limit and the neuron, in seconds, where the search would try every
split first; the limit is per core, so no split and no larger board helps.
"""
from __future__ import annotations

import numpy as np

from hwmodel.limits import RESOURCE
from partitioner.errors import CoreLimitError
from partitioner.graph import PartitionGraph


def check_layers(graph: PartitionGraph) -> None:
    """Raise CoreLimitError for the first layer (topological order) that some
    neuron of it makes impossible on any core."""
    lim = graph.limits
    for name in graph.order:
        layer = graph.layer(name)
        _refuse(name, "compartments", graph.cpn[name], lim, None, layer)
        edges = graph.in_edges[name]
        if edges:
            axons = sum(e.min_input_axons(graph.solo(e.source), graph.cpn[name], lim.compartments,
                                          graph.split_signs[name]) for e in edges)
            _refuse(name, "input_axons", axons, lim,
                    "sources of that neuron that need an axon of their own on its core "
                    "(they feed another layer too, or reach more compartments than a core "
                    "has), one more for its other sources", layer)
            words = _words(graph, name, False)       # every synapse: distinct only if over
            if np.max(words) > lim.synapse_words:
                words = _words(graph, name, True)
            _refuse(name, "synapse_words", words, lim,
                    "one stored synapse per distinct weight into that neuron", layer)
        reach = sum((graph.fewest_target_cores(e) for e in graph.out_edges[name]),
                    np.zeros(layer.n, np.int64))
        _refuse(name, "output_axons", np.where(reach >= 2, reach, 0), lim,
                "one discrete entry per core its targets need at least", layer)


def _words(graph: PartitionGraph, name: str, distinct: bool) -> np.ndarray:
    """Per neuron of layer `name`, words of its incoming synapses (Edge.min_target_words)."""
    return sum(e.min_target_words(graph.w_bits[name], graph.limits.word_bits, distinct)
               for e in graph.in_edges[name])


def _refuse(name: str, key: str, need: np.ndarray, lim, why: str | None, layer) -> None:
    """CoreLimitError when the largest of `need` (one value per neuron, flat
    order, or one for all: why None) exceeds the limit of resource `key`."""
    need = np.atleast_1d(need).ravel()
    worst = int(need.argmax())
    resource = RESOURCE[key]
    if int(need[worst]) > resource.limit(lim):
        where = "one neuron" if why is None else (
            f"neuron {tuple(map(int, np.unravel_index(worst, layer.shape)))} of shape "
            f"{tuple(layer.shape)}: {why}; the limit is per core, so no split and no larger "
            f"board holds it")
        raise CoreLimitError(name, resource.name, int(need[worst]), resource.limit(lim), where)
