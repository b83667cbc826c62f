"""The search's estimate of what a tiled layer's cores use.

layer_usage: compartments, input axons and synapse words of the layer's own
cores (depends only on the layer's tiling, so it is cached per tiling).
output_usage: output-axon entries of the layer's cores, which depend on the
tilings of its successors and on the chips of all those cores.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field

import numpy as np

from hwmodel import synapse_format as sf
from hwmodel.limits import RESOURCE
from partitioner import model
from partitioner.edges import WindowEdge
from partitioner.graph import PartitionGraph
from partitioner.model import ENCODINGS
from partitioner.tiling import Tiling

MAX_FREE = 4   # connections whose population flags are searched exhaustively per core
# What a layer's own cores may overrun (compartments are kept by the tilings,
# output axons are checked by output_usage).
_SYNAPSE_SIDE = ("input_axons", "synapse_words", "words_per_axon")


@dataclass(frozen=True)
class Violation:
    """A core of `layer` needs `needed` of `resource`, more than `limit`."""

    layer: str
    resource: str
    needed: int
    limit: int

    @property
    def ratio(self) -> float:
        return self.needed / self.limit


@dataclass
class LayerUsage:
    """Per core of a tiled layer: compartments, input axons, synapse words, the
    longest synapse list's words (words_per_axon), the chosen encoding (index into model.ENCODINGS), and per
    incoming source layer whether its members share a population axon on that core
    (population) and whether it reaches the core by pixel population axons (pixel)."""

    tiling: Tiling
    compartments: np.ndarray
    input_axons: np.ndarray
    synapse_words: np.ndarray
    words_per_axon: np.ndarray
    encoding: np.ndarray
    population: dict = field(default_factory=dict)
    pixel: dict = field(default_factory=dict)
    violation: Violation | None = None


def _worst(name: str, usage, core: int, keys: tuple, limits) -> Violation | None:
    """Of the resources `keys` (hwmodel.limits.RESOURCE) that core `core` of
    `usage` overruns, the one with the largest needed/limit ratio, or None."""
    bad = [Violation(name, RESOURCE[k].name, int(getattr(usage, k)[core]),
                     RESOURCE[k].limit(limits)) for k in keys]
    bad = [v for v in bad if v.needed > v.limit]
    return max(bad, key=lambda v: v.ratio) if bad else None


def _options(usages: list) -> list:
    """Axon choices to try, one per connection (0 discrete, 1 the members' population
    axon, 2 pixel population axons; edges.EdgeUsage): every combination over the
    connections that have a choice (all-discrete first) while there are at most
    MAX_FREE of them, beyond that each choice for all connections that have it."""
    choices = [(0,) + ((1,) if u.members.any() else ()) + ((2,) if u.pixel else ())
               for u in usages]
    free = [j for j, c in enumerate(choices) if len(c) > 1]
    if len(free) <= MAX_FREE:
        combos = itertools.product(*(choices[j] for j in free))
    else:
        combos = [tuple(o if o in choices[j] else 0 for j in free) for o in (0, 1, 2)]
    out = []
    for combo in combos:
        option = [0] * len(usages)
        for j, c in zip(free, combo):
            option[j] = c
        if option not in out:
            out.append(option)
    return out


def layer_usage(graph: PartitionGraph, name: str, tiling: Tiling,
                word_weight: float = 1.0, axon_weight: float = 1.0) -> LayerUsage:
    """Estimate the resources of every core of `name` split as `tiling`.  Each core
    gets the encoding and population flags that minimise its share of the cost,
    word_weight * words / word limit + axon_weight * input axons / axon limit,
    within its limits, among the layer's encodings (graph.encodings: its
    synapseEncoding, else model.AUTO_ENCODINGS; ties: fewer words, then
    all-discrete first and that order).  Pixel population axons (option 2) from
    a source with wide pixels (_wide_pixels) compete as any other choice; from
    other sources they are a fallback, taken only on cores that no choice
    without them fits: their output routes (2 entries per source core, pixel and
    target core) depend on the source's split, which is not known yet (outputs
    are split first), and preferring them whenever cheaper here put the CIFAR
    pseudo-MobileNet's 3-channel input layer, split by channel, on 7 cores
    instead of 6."""
    lim = graph.limits
    k = tiling.num_cores
    comps = tiling.sizes * graph.cpn[name]
    edges = graph.in_edges[name]
    encodings = graph.encodings[name]
    usages = [e.usage(tiling, graph.solo(e.source), graph.w_bits[name], graph.cpn[name], lim,
                      encodings, graph.split_signs[name]) for e in edges]
    if not usages:
        z = np.zeros(k, np.int64)
        return LayerUsage(tiling, comps, z, z.copy(), z.copy(), z.copy())
    options = _options(usages)
    # totals [option, encoding, core]
    axons = np.array([sum(u.input_axons[:, o, :] for u, o in zip(usages, opt)) for opt in options])
    words = np.array([sum(u.words[:, o, :] for u, o in zip(usages, opt)) for opt in options])
    longest = np.maximum.reduce([u.max_list for u in usages])[None].repeat(len(options), 0)
    ratio = np.maximum.reduce([axons / lim.input_axons, words / lim.synapse_words,
                               longest / lim.words_per_axon]).reshape(-1, k)
    axons, words, longest = (a.reshape(-1, k) for a in (axons, words, longest))
    feasible = ratio <= 1
    # pixel populations of thin sources only where no other choice fits (see above)
    thin = [not _wide_pixels(graph, e.source) for e in edges]
    fallback = np.repeat([any(o == 2 and t for o, t in zip(opt, thin)) for opt in options],
                         len(encodings))
    feasible[fallback] &= ~feasible[~fallback].any(axis=0)
    score = word_weight * words / lim.synapse_words + axon_weight * axons / lim.input_axons
    order = np.lexsort((words, np.where(feasible, score, np.inf)), axis=0)[0]
    pick = np.where(feasible.any(axis=0), order, ratio.argmin(axis=0))
    cols = np.arange(k)
    option, enc = np.divmod(pick, len(encodings))
    enc = np.array([ENCODINGS.index(e) for e in encodings])[enc]
    chosen = np.array(options)[option]          # [core, connection]
    usage = LayerUsage(tiling, comps, axons[pick, cols], words[pick, cols], longest[pick, cols], enc,
                       {e.source: (chosen[:, j] == 1) & (u.members > 0)
                        for j, (e, u) in enumerate(zip(edges, usages))},
                       {e.source: (chosen[:, j] == 2) & (u.input_axons[0, 2] > 0)
                        for j, (e, u) in enumerate(zip(edges, usages))})
    bad = np.flatnonzero(~feasible.any(axis=0))
    if len(bad):
        usage.violation = max((_worst(name, usage, t, _SYNAPSE_SIDE, lim) for t in bad),
                              key=lambda v: v.ratio)
    return usage


@dataclass
class OutputUsage:
    """Output-axon entries of a tiled layer's cores: total (with off-chip extras),
    and per successor the routes as (own core, successor core, count) arrays
    over the pairs with a route: discrete axons plus population axons."""

    entries: np.ndarray
    base: np.ndarray
    routes: dict
    offchip_routes: int
    violation: Violation | None = None


@dataclass(frozen=True)
class _Hits:
    """Which (source neuron, successor core) pairs a connection reaches, for
    one tiling of the successor.  Listed: every hit's source neuron (rows) and
    successor core (cols), whether the source is a member (reaches one core of
    all successors' cores), and where the successor takes pixel population axons
    from the layer, the runs of _pixel_routes (else None).  Product (a window
    connection into the layer's only successor): per source axis (row, column,
    channel) the bool table (n_axis, blocks of the successor on it), the hits
    being their Kronecker product, and the tables restricted to the coordinates
    that reach one block (a member reaches one core on every axis)."""

    rows: np.ndarray | None = None
    cols: np.ndarray | None = None
    member: np.ndarray | None = None
    runs: tuple | None = None
    factors: tuple | None = None
    member_factors: tuple | None = None

    def reach(self, tiling: Tiling, kt: int, pixels: bool) -> tuple:
        """The (own core, successor core) pairs with a hit from the layer's cores
        (split as `tiling`) to the successor's kt cores, as arrays: own core,
        successor core, hits, member hits, and with `pixels` the pixel population
        routes (_pixel_routes), else None.  A product's pairs are the products of
        its per-axis pairs, so nothing of size cores x successor cores is built."""
        k = tiling.num_cores
        if self.factors is None:
            pair = tiling.core_of[self.rows] * kt + self.cols   # (own core, successor core)
            reach = np.bincount(pair, minlength=k * kt).reshape(k, kt)
            members = np.bincount(pair[self.member], minlength=k * kt).reshape(k, kt)
            i, j = np.nonzero(reach)
            return i, j, reach[i, j], members[i, j], (
                _pixel_routes(tiling, self.rows, self.cols, self.runs, kt)[i, j] if pixels else None)
        own = [np.arange(0, n, b) for n, b in zip(tiling.shape, tiling.block)]
        counts = [np.add.reduceat(f.astype(np.int64), at, axis=0) for f, at in zip(self.factors, own)]
        member_counts = [np.add.reduceat(f.astype(np.int64), at, axis=0)
                         for f, at in zip(self.member_factors, own)]
        pairs = [np.nonzero(c) for c in counts]        # per axis: own block, successor block
        i = np.ravel_multi_index(np.ix_(*[p[0] for p in pairs]), tiling.counts).ravel()
        j = np.ravel_multi_index(np.ix_(*[p[1] for p in pairs]),
                                 [f.shape[1] for f in self.factors]).ravel()
        reach = _outer([c[p] for c, p in zip(counts, pairs)])
        members = _outer([c[p] for c, p in zip(member_counts, pairs)])
        pixel_routes = _outer([c[p] for c, p in zip(counts[:2], pairs[:2])]
                              + [np.ones(len(pairs[2][0]), np.int64)]) if pixels else None
        return i, j, reach, members, pixel_routes


def _outer(per_axis: list) -> np.ndarray:
    """Products of one value per axis (row, column, channel) over all combinations, flat."""
    return functools.reduce(np.multiply.outer, per_axis).ravel()


def successor_hits(graph: PartitionGraph, name: str, successors: dict) -> dict:
    """Per successor of layer `name`: the _Hits of its tiling (successors as in
    output_usage).  The same for every split of the layer itself."""
    n = graph.layer(name).n
    out_edges = graph.out_edges[name]
    if len(out_edges) == 1 and isinstance(out_edges[0], WindowEdge):
        e = out_edges[0]
        factors = e.target_factors(successors[e.target][0])
        return {e.target: _Hits(factors=factors, member_factors=tuple(
            f & (f.sum(axis=1) == 1)[:, None] for f in factors))}
    hits = {}
    for e in out_edges:
        h = graph.target_cores(e, successors[e.target][0])
        hits[e.target] = (np.repeat(np.arange(n), np.diff(h.indptr)), h.indices)
    mult = sum((np.bincount(rows, minlength=n) for rows, _ in hits.values()),
               np.zeros(n, np.int64))
    out = {}
    for t, (rows, cols) in hits.items():
        runs = None
        if successors[t][1].pixel[name].any():
            order = np.argsort(cols.astype(np.int64) * n + rows)
            pixel = rows[order] // graph.layer(name).shape[-1]
            at = cols[order]
            runs = (order, np.r_[True, (pixel[1:] != pixel[:-1]) | (at[1:] != at[:-1])])
        out[t] = _Hits(rows, cols, mult[rows] == 1, runs)
    return out


def output_usage(graph: PartitionGraph, name: str, tiling: Tiling, successors: dict,
                 first: int, hits: dict | None = None) -> OutputUsage:
    """successors: name -> (Tiling, LayerUsage, first provisional core index); the
    layer's own cores get provisional indices first, first + 1, ...; a core's
    chip is its provisional index // cores per chip.  hits: successor_hits of
    these successors (computed when not given)."""
    per_chip = graph.board.chip.cores_per_chip
    k = tiling.num_cores
    if hits is None:
        hits = successor_hits(graph, name, successors)
    chip = (first + np.arange(k)) // per_chip
    entries = np.zeros(k, np.int64)
    base = np.zeros(k, np.int64)
    routes, offchip = {}, 0
    for target, hit in hits.items():
        t_tiling, t_usage, t_first = successors[target]
        kt = t_tiling.num_cores
        pixel_cores = t_usage.pixel[name]
        i, j, reach, reach_members, pixel_routes = hit.reach(tiling, kt, bool(pixel_cores.any()))
        pop, pixel = t_usage.population[name][j], pixel_cores[j]
        discrete = np.where(pixel, 0, np.where(pop, reach - reach_members, reach))
        population = (pop & (reach_members > 0)).astype(np.int64)
        if pixel_routes is not None:
            population = population + np.where(pixel, pixel_routes, 0)
        off = (chip[i] != (t_first + j) // per_chip).astype(np.int64)
        base += np.bincount(i, model.output_entries(discrete, population, 0), k).astype(np.int64)
        entries += np.bincount(i, model.output_entries(discrete, population, off), k).astype(np.int64)
        count = discrete + population
        keep = count > 0
        routes[target] = (i[keep], j[keep], count[keep])
        offchip += int((count * off).sum())
    out = OutputUsage(entries, base, routes, offchip)
    lim = RESOURCE["output_axons"].limit(graph.limits)
    if entries.max(initial=0) > lim:
        out.violation = Violation(name, RESOURCE["output_axons"].name, int(entries.max()), lim)
    return out


def _wide_pixels(graph: PartitionGraph, name: str) -> bool:
    """A pixel of the (H, W, C) layer has at least twice the channels that its
    pixel population routes cost in entries on the fewest cores its channels fit
    (C >= 2 x 2 x ceil(C x compartments per neuron / compartment limit)): then
    a pixel route saves at least half the discrete entries while the source keeps
    each pixel on that many cores."""
    shape = graph.layer(name).shape
    if len(shape) != 3:
        return False
    c = shape[-1]
    fewest = -(-c * graph.cpn[name] // graph.limits.compartments)
    return c >= 2 * sf.POPULATION_ROUTE_ENTRIES * max(fewest, 1)


def _pixel_routes(tiling: Tiling, rows: np.ndarray, cols: np.ndarray, runs: tuple,
                  kt: int) -> np.ndarray:
    """(k, kt): pixels of the (H, W, C) layer with a neuron on the layer's core and
    a synapse on the successor's core, one pixel population route each.  rows,
    cols: source neuron and successor core of each hit; runs: the hits' order by
    (successor core, neuron) and where each (successor core, pixel) run starts
    (successor_hits).  A pixel's channels lie in one spatial block and its
    channel blocks are contiguous, so along a run the own core only steps: each
    step starts one more (own core, pixel, successor core), no sort per tiling."""
    order, start = runs
    core = tiling.core_of[rows[order]]
    new = start.copy()
    new[1:] |= core[1:] != core[:-1]
    routes = np.bincount(core[new] * kt + cols[order][new], minlength=tiling.num_cores * kt)
    return routes.reshape(tiling.num_cores, kt)
