"""Lower bounds on the cores of each layer, from compartments, synapse words and
axons alone (valid for every partition under partitioner.model).

Per layer the bound is the largest of (each divided by its per-core limit and
rounded up), and at least 1:
- compartments: neurons x compartments per neuron;
- synapse words: every synapse is represented in some stored list, each stored
  synapse takes at least the weight and delay bits (dense format, no index).  When all
  weights of a connection differ no two lists can be shared, so all its
  synapses are stored; otherwise at least one synapse per distinct weight value;
- input axons: a source neuron that feeds two or more layers reaches several
  cores, so it has a discrete axon on every core it reaches: at least one input
  axon per such source, or per its pixel where the connection may use pixel
  population axons (shared by the pixel's C channels: 1/C per source);
- output-axon entries: a source with targets in layer X reaches at least
  ceil(fanout x compartments per neuron of X / compartment limit) cores of X,
  and all of X's cores when it feeds every neuron of X (at least X's bound);
  a source that reaches two or more cores uses one discrete entry per core, or
  shares a pixel population route (2 entries) with the pixel's other channels:
  min(1, 2/C) per core where the connection may use pixel population axons.
"""
from __future__ import annotations

import math

import numpy as np

from hwmodel import synapse_format as sf
from hwmodel.limits import RESOURCE
from partitioner.graph import PartitionGraph


def lower_bounds(graph: PartitionGraph) -> dict:
    """Layer name -> (lower bound on its cores, the resource that sets it)."""
    lim = graph.limits
    bounds = {}
    for name in reversed(graph.order):
        layer = graph.layer(name)
        words = sum(e.min_stored_synapses() for e in graph.in_edges[name]) * graph.w_bits[name]
        shared_sources = sum(int((e.connects & ~graph.solo(e.source)).sum()) / e.pixel_atoms
                             for e in graph.in_edges[name])
        reach = np.zeros(layer.n, np.int64)
        routes = np.zeros(layer.n)
        for e in graph.out_edges[name]:
            target = graph.layer(e.target)
            cores = graph.fewest_target_cores(e)
            cores = np.where(e.fanout == target.n, np.maximum(cores, bounds[e.target][0]), cores)
            reach += cores
            routes += cores * min(1.0, sf.POPULATION_ROUTE_ENTRIES / e.pixel_atoms)
        entries = math.ceil(routes[reach >= 2].sum())
        need = {"compartments": layer.n * graph.cpn[name],
                "synapse_words": math.ceil(words / lim.word_bits),
                "input_axons": shared_sources, "output_axons": entries}
        options = {RESOURCE[k].name: math.ceil(v / RESOURCE[k].limit(lim)) for k, v in need.items()}
        resource = max(options, key=options.get)
        bounds[name] = (max(1, options[resource]), resource)
    return bounds
