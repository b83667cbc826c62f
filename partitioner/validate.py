"""Independent validator of a partition.

Recounts every core's compartments, input axons, output-axon entries, synapse
words, longest synapse list and synapse formats from the final per-core neuron
assignment (Core.neurons, Core.chip and the recorded decisions Core.encoding
and Core.population) and the synapse data, by the rules partitioner.model
documents: given the integer network (hwmodel.network.IntNetwork, what the
chip stores), a non-window connection's integer synapses and their delays
(a weight that quantizes to 0 is no synapse); window connections, and every
connection without the integer network, from the IR's float weights: a window
connection stores every tap of its kernel (one that quantizes to 0 as a
synapse of weight 0, which keeps its entry's run whole) and shares lists whose
float weights are equal (their integers are then equal too; lists equal only
as integers are stored apart).  It never reads the search's estimates (the
resource fields of Core) and calls none of the search's code: it encodes
synapse lists entry by entry as the chip stores it (the field widths of
hwmodel.synapse_format) and counts lists, multiplicities, members,
populations and connection sharing (compared exactly, one stored copy per
page of compartment bases: hwmodel.synapse_format.BASE_PAGE) itself, one connection
at a time: window connections into box cores one distinct list per class
(_WindowLists, built from the kind's geometry), all others every list of the
connection matrix (nxcompile.ir.connection_matrix, _MatrixLists).
It fails loudly, naming the core, its layer, the resource, the value and the
limit.

Synapse formats: a core's entries share a format when they share encoding,
weight bits, delay bits, sign mode, index bits and skip bits (NxTF's SynFmt
fields without the interleaving offsets, which nxcompile does not use).  Every
synapse stores its weight and a delay field (hwmodel.synapse_format.delay_bits
of the largest delay into its layer: 0 bits without delays), so the delay
width is one per layer, as NxTF's numDelayBits is one per layer's encoder.  One layer per
core, one encoding per core and one sign mode per layer (mapper.quantize) leave
only the run-length skip width (2..5 bits) to vary, and with a shared sign
(sign mode 'shared') the sign of each part, so a core uses at most 4 formats
(8 for a shared-sign run-length core, beyond NxTF's 7: the validator refuses
it); the validator counts them (CoreLimits.synapse_formats).  NxTF's destination-group limit (16) belongs to
its interleaved compartment layout, a workaround of a cxBase defect
(optimization.py: "maxNumDestinationGroups = 16  # Due to cxBase bug"); nxcompile
lays compartments out without interleaving, so it does not apply.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwmodel import synapse_format as sf
from hwmodel.limits import RESOURCES
from hwmodel.network import IntNetwork
from hwmodel.partition import Partition
from nxcompile.ir import INPUT, NetworkIR, connection_matrix, delay_matrix
from partitioner.errors import PartitionError


MAX_CHUNK_LISTS = 1 << 20    # synapse lists counted at once (window connections, whole cores)


class PartitionValidationError(PartitionError):
    """A partition breaks a hard limit or does not assign every neuron once."""


class EstimateMismatchError(PartitionValidationError):
    """The search's estimate of a core's resource differs from the recount (a
    bug in one of the two counts)."""


@dataclass
class CoreCount:
    """What one core uses of each resource (hwmodel.limits.RESOURCES), recounted;
    words_per_axon is the longest synapse list's; synapses: the synapses of
    its lists, before connection sharing (not a limited resource)."""

    compartments: int = 0
    input_axons: int = 0
    output_axons: int = 0
    synapse_words: int = 0
    words_per_axon: int = 0
    synapse_formats: int = 0
    synapses: int = 0


def _assignment(ir: NetworkIR, partition: Partition) -> tuple[dict, dict]:
    """Per layer: global core index and local index (rank on its core) of every neuron."""
    core_of, local_of = {}, {}
    for name in ir.order():
        n = ir.layer(name).n
        core_of[name] = np.full(n, -1, np.int64)
        local_of[name] = np.full(n, -1, np.int64)
    for pos, core in enumerate(partition.cores):
        if core.index != pos:
            raise PartitionValidationError(f"core at position {pos} has index {core.index}")
        if core.layer not in core_of:
            raise PartitionValidationError(f"core {core.index}: unknown layer {core.layer!r}")
        nrn = np.asarray(core.neurons, np.int64)
        n = len(core_of[core.layer])
        if len(nrn) == 0 or np.any(np.diff(nrn) <= 0) or nrn[0] < 0 or nrn[-1] >= n:
            raise PartitionValidationError(
                f"core {core.index} (layer {core.layer}): neurons must be a non-empty ascending "
                f"set of indices in 0..{n - 1}")
        if np.any(core_of[core.layer][nrn] >= 0):
            raise PartitionValidationError(
                f"core {core.index} (layer {core.layer}): neurons already on another core")
        core_of[core.layer][nrn] = core.index
        local_of[core.layer][nrn] = np.arange(len(nrn))
    for name, cores in core_of.items():
        if np.any(cores < 0):
            raise PartitionValidationError(
                f"layer {name}: {int((cores < 0).sum())} neurons are on no core")
    return core_of, local_of


def _identical_lists(core: np.ndarray, local: np.ndarray, w: np.ndarray, starts: np.ndarray,
                     lengths: np.ndarray, delays: np.ndarray) -> np.ndarray:
    """Connection sharing, compared exactly: per list, the first list on the same
    core that is identical up to its base compartment (same length, same local
    indices minus the first, same weights by value, same delays).  Compared one
    (core, length) group at a time, as rows of bytes."""
    same = np.arange(len(starts))
    rel = local - np.repeat(local[starts], lengths)
    order = np.lexsort((lengths, core))
    cuts = np.flatnonzero(np.diff(core[order]) | np.diff(lengths[order])) + 1
    for lists in np.split(order, cuts):
        if len(lists) == 1:
            continue
        at = starts[lists][:, None] + np.arange(lengths[lists[0]])
        table = np.concatenate([rel[at], w[at] + 0.0, delays[at] + 0.0], axis=1)
        rows = table.view(np.dtype((np.void, table.itemsize * table.shape[1]))).ravel()
        _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
        same[lists] = lists[first[inverse]]
    return same


def recount(ir: NetworkIR, partition: Partition, analytic: bool = True,
            network: IntNetwork | None = None) -> list:
    """CoreCount of every core (list indexed like partition.cores); network:
    the integer network whose non-window synapses are counted (module doc).

    Streams over connections: each yields its synapse lists in chunks of whole
    target cores (per list: source neuron, target core, words, sharing key, base
    compartment, synapses; per chunk its formats) and is dropped before the
    next.  A window
    connection into a layer whose every core holds a box of neurons
    (_WindowLists) encodes each distinct list once; any other connection, and
    every one with analytic=False, encodes every list from its synapse matrix
    (_MatrixLists)."""
    lim = partition.board.chip.core
    core_of, local_of = _assignment(ir, partition)
    cores = partition.cores
    chip = np.array([c.chip for c in cores], np.int64)
    n_cores = len(cores)
    comps = np.array([len(c.neurons) * _compartments_per_neuron(ir.layer(c.layer)) for c in cores],
                     np.int64)
    in_axons, out_entries, words_used, max_list, synapses = (np.zeros(n_cores, np.int64)
                                                             for _ in range(5))
    formats = [set() for _ in cores]        # per core: the skip widths of its entries
    for core in cores:
        for src in core.population:
            if (src, core.layer) not in ir.graph.edges:
                raise PartitionValidationError(
                    f"core {core.index} (layer {core.layer}): population axon from {src!r}, "
                    f"which does not feed layer {core.layer}")
    boxes = {name: _boxes(ir.layer(name).shape, [cores[t].neurons for t in ts], ts)
             for name, ts in _cores_by_layer(cores).items()}
    # Per connection its counter: window lists where the target's cores are boxes, else
    # the synapse matrix (kept: its delays and signs are needed twice).
    counters = {}
    stored = {} if network is None else {(c.source, c.target): c for c in network.connections}
    for src, dst in ir.graph.edges:
        spec = ir.connection(src, dst)
        if network is not None and not spec.op.window and (src, dst) not in stored:
            raise PartitionValidationError(f"connection {src}->{dst}: not in the integer network")
        if analytic and spec.op.window and spec.delays is None and boxes[dst] is not None:
            counters[src, dst] = _WindowLists(spec, tuple(ir.layer(dst).shape), boxes[dst])
        else:
            counters[src, dst] = _MatrixLists(
                spec, tuple(ir.layer(dst).shape), core_of[dst], local_of[dst],
                None if spec.op.window else stored.get((src, dst)))
    # The delay field of a layer's synapses: sized by its largest incoming delay.
    delay_bits = {dst: sf.delay_bits(max([counters[s, dst].max_delay
                                          for s in ir.predecessors(dst)], default=0))
                  for dst in ir.order()}
    core_encoding = np.array([c.encoding for c in cores])
    core_index_bits = np.array([max(sf.MIN_INDEX_BITS, int(max(c, 1) - 1).bit_length())
                                for c in comps])
    # Shared sign with weights of both signs: lists in a positive and a negative part.
    split = {}
    for dst in ir.order():
        signs = [counters[s, dst].signs for s in ir.predecessors(dst)]
        split[dst] = bool(ir.layer(dst).neuron.shared_sign) and any(p for p, _ in signs) and \
            any(n for _, n in signs)
    for key, counter in counters.items():
        if split[key[1]] and isinstance(counter, _WindowLists):   # lists depend on signs
            spec = ir.connection(*key)
            counters[key] = _MatrixLists(spec, tuple(ir.layer(key[1]).shape), core_of[key[1]],
                                         local_of[key[1]])
    # Multiplicity: distinct target cores of every source neuron over all its successors.
    mult = {name: np.zeros(ir.layer(name).n, np.int64) for name in ir.order()}
    for (src, _), counter in counters.items():
        mult[src] += counter.reach(n_cores)
    for (src, dst) in list(counters):
        counter = counters.pop((src, dst))
        w_bits = int(ir.layer(dst).neuron.num_weight_bits) + delay_bits[dst]
        pix_core = np.array([src in c.pixel_population for c in cores])
        pop_core = np.array([src in c.population for c in cores])
        members = None      # per core, over the chunks (each a set of whole target cores)
        for lists in counter.lists(core_encoding, core_index_bits, w_bits, lim, split[dst]):
            list_src, list_core, words, keys, bases, sizes, entry_formats = lists
            synapses += np.bincount(list_core, weights=sizes, minlength=n_cores).astype(np.int64)
            for key in entry_formats:       # (core, skip bits, negative part)
                formats[key[0]].add(key[1:])
            np.maximum.at(max_list, list_core, words)
            s_core = core_of[src][list_src]
            # Pixel populations: their lists leave the discrete and member counts.
            if pix_core.any():
                by_pixel = pix_core[list_core]
                counted = _pixel_populations(ir, src, dst, cores, pix_core, chip,
                                             [a[by_pixel] for a in (list_src, list_core, words,
                                                                    keys, bases, s_core)])
                for total, part in zip((in_axons, words_used, out_entries), counted):
                    total += part
                keep = ~by_pixel
                list_src, list_core, words, keys, bases, s_core = (a[keep] for a in (
                    list_src, list_core, words, keys, bases, s_core))
            # a shared copy serves the axons whose bases lie in its page (hwmodel.synapse_format)
            keys = keys * (lim.compartments // sf.BASE_PAGE + 1) + bases // sf.BASE_PAGE
            member = mult[src][list_src] == 1
            # Per target core: members, population flag, distinct (shared) words.
            n_mem = np.bincount(list_core[member], minlength=n_cores)
            n_rest = np.bincount(list_core[~member], minlength=n_cores)
            members = n_mem if members is None else members + n_mem
            pooled = member & pop_core[list_core]
            first = np.unique(keys[~pooled], return_index=True)[1]
            shared = np.bincount(list_core[~pooled][first], weights=words[~pooled][first],
                                 minlength=n_cores).astype(np.int64)
            m_max = np.zeros(n_cores, np.int64)
            np.maximum.at(m_max, list_core[pooled], words[pooled])
            pop = pop_core & (n_mem > 0)
            in_axons += np.where(pop, n_rest + 1, n_rest + n_mem)
            words_used += shared + np.where(pop, n_mem * m_max, 0)
            # Output entries of the source cores: one per discrete route, two per
            # (source core, population) with a member on that source core.
            off = (chip[s_core] != chip[list_core]).astype(np.int64)
            out_entries += np.bincount(s_core[~pooled], minlength=n_cores,
                                       weights=sf.DISCRETE_ROUTE_ENTRIES
                                       + off[~pooled] * sf.OFFCHIP_EXTRA_ENTRIES).astype(np.int64)
            routes = np.unique(s_core[pooled] * n_cores + list_core[pooled])
            s_pop, t_pop = routes // n_cores, routes % n_cores
            np.add.at(out_entries, s_pop, sf.POPULATION_ROUTE_ENTRIES
                      + (chip[s_pop] != chip[t_pop]).astype(np.int64) * sf.OFFCHIP_EXTRA_ENTRIES)
        for tc in np.flatnonzero(pop_core & (members == 0) if members is not None else []):
            if cores[tc].layer == dst:
                raise PartitionValidationError(
                    f"core {tc} (layer {dst}): population axon from layer {src} recorded, but no "
                    f"neuron of {src} has all its targets on this core")
    return [CoreCount(*map(int, v), synapse_formats=len(f), synapses=int(s))
            for *v, f, s in zip(comps, in_axons, out_entries, words_used, max_list, formats,
                                synapses)]


def _pixel_populations(ir: NetworkIR, src: str, dst: str, cores: list, pix_core: np.ndarray,
                       chip: np.ndarray, lists: list) -> tuple:
    """Input axons, synapse words and output entries per core of the lists of
    connection src -> dst on cores that take it by pixel population axons
    (Core.pixel_population; hwmodel.synapse_format, population axon types):
    per target core one input axon per source pixel, its channels the atoms; a
    pixel's block is its atoms' lists, each padded to the longest (atoms x
    longest words), stored once for all pixels whose blocks are identical (the
    same atoms, lists identical up to base and the same bases relative to the
    block's first, its first base in the same page of hwmodel.synapse_format.
    BASE_PAGE); per (source core, pixel, target core) one population route."""
    list_src, list_core, words, keys, bases, s_core = lists
    n_cores = len(cores)
    shape = tuple(ir.layer(src).shape)
    for t in np.flatnonzero(pix_core):
        if cores[t].layer == dst and len(shape) != 3:
            raise PartitionValidationError(
                f"core {t} (layer {dst}): pixel population axons from layer {src}, whose shape "
                f"{shape} has no pixels")
        if cores[t].layer == dst and src in cores[t].population:
            raise PartitionValidationError(
                f"core {t} (layer {dst}): both a member population and pixel populations "
                f"recorded for layer {src}")
    out = tuple(np.zeros(n_cores, np.int64) for _ in range(3))
    if len(list_src) == 0:
        return out
    channels = shape[-1]
    pixel, atom = list_src // channels, list_src % channels
    order = np.lexsort((atom, pixel, list_core))
    pixel, atom, core, words, keys, bases, s_core = (a[order] for a in (
        pixel, atom, list_core, words, keys, bases, s_core))
    group_at = np.flatnonzero(np.r_[True, (core[1:] != core[:-1]) | (pixel[1:] != pixel[:-1])])
    sizes = np.diff(np.append(group_at, len(core)))
    group = np.repeat(np.arange(len(group_at)), sizes)
    g_core = core[group_at]
    np.add.at(out[0], g_core, 1)
    longest = np.maximum.reduceat(words, group_at)
    lowest = np.minimum.reduceat(bases, group_at)
    rel = bases - lowest[group]
    page = lowest // sf.BASE_PAGE
    block = np.arange(len(group_at))             # per group the first identical group
    for size in np.unique(sizes):
        gs = np.flatnonzero(sizes == size)
        at = group_at[gs][:, None] + np.arange(size)[None, :]
        table = np.concatenate([g_core[gs][:, None], page[gs][:, None], atom[at], keys[at],
                                rel[at]], axis=1)
        _, first, inverse = np.unique(table, axis=0, return_index=True, return_inverse=True)
        block[gs] = gs[first[inverse.ravel()]]
    stored = np.unique(block)
    np.add.at(out[1], g_core[stored], sizes[stored] * longest[stored])
    routes = np.unique((s_core * (pixel.max() + 1) + pixel) * n_cores + core)
    s_route, t_route = routes // n_cores // (pixel.max() + 1), routes % n_cores
    np.add.at(out[2], s_route, sf.POPULATION_ROUTE_ENTRIES
              + (chip[s_route] != chip[t_route]).astype(np.int64) * sf.OFFCHIP_EXTRA_ENTRIES)
    return out


def _cores_by_layer(cores: list) -> dict:
    """Layer name -> indices of its cores, ascending."""
    out = {}
    for core in cores:
        out.setdefault(core.layer, []).append(core.index)
    return out


def _boxes(shape: tuple, neurons: list, indices: list) -> "np.ndarray | None":
    """(core index, y0, y1, x0, x1, c0, c1) rows, one per core of an (H, W, C)
    layer, when every core's neurons are exactly the box [y0, y1) x [x0, x1) x
    [c0, c1) (its local indices then are row-major in the box); else None."""
    if len(shape) != 3:
        return None
    h, w, c = shape
    rows = []
    for t, nrn in zip(indices, neurons):
        nrn = np.asarray(nrn, np.int64)
        y, x, ch = nrn // (w * c), nrn // c % w, nrn % c
        lo = (int(y[0]), int(x.min()), int(ch.min()))
        hi = (int(y[-1]) + 1, int(x.max()) + 1, int(ch.max()) + 1)
        if (hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]) != len(nrn):
            return None     # ascending and unique (checked by _assignment): equal counts = box
        rows.append((t, lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]))
    return np.array(rows, np.int64)


class _MatrixLists:
    """A connection's synapse lists from its synapse matrix, every list encoded."""

    def __init__(self, spec, shape: tuple, core_of: np.ndarray, local_of: np.ndarray,
                 stored=None):
        """stored: the connection's IntConnection, whose synapses and delays are
        counted (None: the IR's float synapses)."""
        m = (connection_matrix(spec, shape) if stored is None else stored.matrix()).tocoo()
        self.i, self.t, self.local, self.w = (m.col.astype(np.int64), core_of[m.row],
                                              local_of[m.row], m.data)
        d = delay_matrix(spec, shape) if stored is None else stored.delays
        self.delays = np.zeros(m.nnz, np.int64) if d is None else \
            np.asarray(d.tocsr()[m.row, m.col], np.int64).ravel()
        self.max_delay = int(self.delays.max(initial=0))
        self.signs = (bool((self.w > 0).any()), bool((self.w < 0).any()))
        self.n_source = m.shape[1]

    def reach(self, n_cores: int) -> np.ndarray:
        """Per source neuron: the distinct cores its synapses reach."""
        pairs = np.unique(self.i * n_cores + self.t)
        return np.bincount(pairs // n_cores, minlength=self.n_source)

    def lists(self, core_encoding, core_index_bits, w_bits: int, lim, split: bool):
        """Yields (list source, list core, words, sharing key, base compartment (its
        lowest local index), synapses, formats) of every list, once (nothing without
        synapses)."""
        i, t, local, w = self.i, self.t, self.local, self.w
        if len(i) == 0:
            return
        # Lists: one per (target core, source neuron), cores contiguous, indices ascending;
        # with a shared sign its positive synapses, then its negative ones.
        negative = (w < 0) & split
        order = np.lexsort((local, negative, i, t))
        i, t, local, w, negative = i[order], t[order], local[order], w[order], negative[order]
        dly = self.delays[order]
        starts = np.flatnonzero(np.r_[True, (i[1:] != i[:-1]) | (t[1:] != t[:-1])])
        sign_part = np.r_[True, negative[1:] != negative[:-1]]
        lengths = np.diff(np.append(starts, len(i)))
        list_src, list_core = i[starts], t[starts]
        keys = _identical_lists(list_core, local, w, starts, lengths, dly)
        # Words of every list, encoded entry by entry under its core's encoding.
        words, skips, entry_list, entry_at = _encode(
            local, starts, lengths, core_encoding[list_core], w_bits,
            core_index_bits[list_core], lim.synapses_per_entry, lim.word_bits, sign_part)
        # one encoding and weight width per core; the sign mode of a shared sign per entry
        entry_formats = set(zip(list_core[entry_list].tolist(), skips.tolist(),
                                negative[entry_at].tolist()))
        yield (list_src, list_core, words, keys, np.minimum.reduceat(local, starts), lengths,
               entry_formats)


class _WindowLists:
    """A window connection's synapse lists into a layer of box cores, without its
    matrix.  On a box core a source pixel's list is fixed, up to its base
    compartment, by its row pattern (the (row offset from the first row it
    reaches, selector) pairs), its column pattern and its channel (the target
    channels it reaches in the box and the kernel): sources with the same three
    have the same words and share one list.  Per core every such
    representative list is built from the kind's window_axes, selectors,
    target_channels and weights, encoded by _encode (each distinct index
    pattern once) and compared for sharing by its relative indices and weights;
    cores whose box ranges match reuse the result."""

    max_delay = 0

    def __init__(self, spec, shape: tuple, boxes: np.ndarray):
        self.spec, self.op, self.shape, self.boxes = spec, spec.op, shape, boxes
        self.h_in, self.w_in, self.c_in = spec.source_shape
        self.axes = [(o, sel, i) for (o, _, i), sel in
                     zip(self.op.window_axes(spec, shape), self.op.selectors(spec, shape))]
        self.first, self.width = self.op.target_channels(spec, shape[2])
        self._axis, self._core = {}, {}
        ci = np.flatnonzero(self.first < shape[2])
        co = self.first[ci][:, None] + np.arange(self.width)[None, :]
        real = np.broadcast_to((co < shape[2])[None, None], (1, 1, *co.shape))
        sel_y, sel_x = (np.unique(s) for _, s, _ in self.axes)
        used = np.broadcast_to(np.asarray(self.op.weights(
            spec, sel_y[:, None, None, None], sel_x[None, :, None, None], ci[None, None, :, None],
            np.minimum(co, shape[2] - 1)[None, None]), np.float64),
            (len(sel_y), len(sel_x), *co.shape))[np.broadcast_to(real, (len(sel_y), len(sel_x),
                                                                         *co.shape))]
        self.signs = (bool((used > 0).any()), bool((used < 0).any()))

    def _axis_classes(self, axis: int, a0: int, a1: int) -> tuple:
        """Source coordinates along `axis` reaching outputs [a0, a1), the class of
        each, per class its (offsets, selectors) arrays (offsets ascending,
        relative to the first output it reaches: sources differing only in that
        first output have lists identical up to their base compartment), the
        class signature and per coordinate that first output (from a0)."""
        key = (axis, a0, a1)
        if key not in self._axis:
            o, sel, i = self.axes[axis]
            m = (o >= a0) & (o < a1)
            o, sel, i = o[m] - a0, sel[m], i[m]
            order = np.lexsort((o, i))
            o, sel, i = o[order], sel[order], i[order]
            coords, at = np.unique(i, return_index=True)
            classes, cls = {}, np.empty(len(coords), np.int64)
            for n, (s, e) in enumerate(zip(at, np.append(at[1:], len(i)))):
                cls[n] = classes.setdefault((tuple((o[s:e] - o[s]).tolist()),
                                             tuple(sel[s:e].tolist())), len(classes))
            patterns = [(np.array(off, np.int64), np.array(sl, np.int64)) for off, sl in classes]
            self._axis[key] = coords, cls, patterns, tuple(classes), o[at]
        return self._axis[key]

    def reach(self, n_cores: int) -> np.ndarray:
        """Per source neuron: the distinct cores it reaches (a box core is reached
        when the row, the column and the channel each reach its range)."""
        hits = []
        for axis, (lo_col, hi_col, n_in) in enumerate(((1, 2, self.h_in), (3, 4, self.w_in))):
            h = np.zeros((n_in, len(self.boxes)), np.float64)
            for k, box in enumerate(self.boxes):
                h[self._axis_classes(axis, int(box[lo_col]), int(box[hi_col]))[0], k] = 1
            hits.append(h)
        c0, c1 = self.boxes[:, 5], self.boxes[:, 6]
        lo = self.first[:, None]
        hc = ((lo < c1[None]) & (lo + self.width > c0[None]) & (lo < self.shape[2])).astype(float)
        return np.rint(np.einsum("yk,xk,ck->yxc", *hits, hc, optimize=True)).astype(np.int64).ravel()

    def lists(self, core_encoding, core_index_bits, w_bits: int, lim, split: bool):
        """As _MatrixLists.lists (split is False here: split layers use the matrix),
        in chunks of whole cores of about MAX_CHUNK_LISTS lists (sharing keys
        distinct across chunks), so no connection's lists are held all at once."""
        out = [], [], [], [], [], []
        entry_formats, key_base, held = set(), 0, 0
        for box in self.boxes:
            t = int(box[0])
            rep = self._core_lists(tuple(int(v) for v in box[1:]), str(core_encoding[t]),
                                   int(core_index_bits[t]), w_bits, lim)
            if rep is None:
                continue
            ys, xs, cs, cls, words, keys, sizes, bases, skips = rep
            src = ((ys[:, None, None] * self.w_in + xs[None, :, None]) * self.c_in
                   + cs[None, None, :]).ravel()
            out[0].append(src)
            out[1].append(np.full(len(src), t, np.int64))
            out[2].append(words[cls])
            out[3].append(keys[cls] + key_base)
            out[4].append(bases)
            out[5].append(sizes[cls])
            key_base += len(keys)
            entry_formats.update((t, int(s), False) for s in skips)
            held += len(src)
            if held >= MAX_CHUNK_LISTS:
                yield (*(np.concatenate(a) for a in out), entry_formats)
                out, entry_formats, held = ([], [], [], [], [], []), set(), 0
        if out[0]:
            yield (*(np.concatenate(a) for a in out), entry_formats)

    def _core_lists(self, box: tuple, encoding: str, i_bits: int, w_bits: int, lim):
        """For a box (y0, y1, x0, x1, c0, c1): the source rows, columns and channels
        reaching it, the representative list (class) of every source (ravelled
        rows x columns x channels), words, sharing key and synapses per class, the base
        compartment (first local index) per source, and the skip widths of its
        entries; None when nothing reaches it.  Boxes with the
        same row and column classes and channel range share words and keys."""
        y0, y1, x0, x1, c0, c1 = box
        ys, cy, pat_y, sig_y, first_y = self._axis_classes(0, y0, y1)
        xs, cx, pat_x, sig_x, first_x = self._axis_classes(1, x0, x1)
        lo = np.maximum(self.first, c0)
        hi = np.minimum(np.minimum(self.first + self.width, c1), self.shape[2])
        cs = np.flatnonzero(lo < hi)
        if len(ys) == 0 or len(xs) == 0 or len(cs) == 0:
            return None
        n_b, n_c = len(pat_x), len(cs)
        cls = ((cy[:, None, None] * n_b + cx[None, :, None]) * n_c
               + np.arange(n_c)[None, None, :]).ravel()
        key = (sig_y, sig_x, c0, c1, x1 - x0, encoding, i_bits, w_bits)
        if key not in self._core:
            self._core[key] = self._classes(pat_y, pat_x, cs, lo[cs], hi[cs] - lo[cs],
                                            x1 - x0, c1 - c0, encoding, i_bits, w_bits, lim)
        words, keys, sizes, skips = self._core[key]
        # per source its list's first local index in the box (row-major)
        bases = (((first_y[:, None, None] * (x1 - x0) + first_x[None, :, None]) * (c1 - c0))
                 + (lo[cs] - c0)[None, None, :]).ravel()
        return ys, xs, cs, cls, words, keys, sizes, bases, skips

    def _classes(self, pat_y, pat_x, cs, co_lo, c_len, bw: int, bc: int,
                 encoding: str, i_bits: int, w_bits: int, lim) -> tuple:
        """Words, sharing key and synapses of every class (row class, column
        class, channel) and the skip widths of their entries."""
        n_a, n_b = len(pat_y), len(pat_x)
        # Words: an encoding depends on the indices relative to the list's first
        # only, so one list per (row class, column class, channel count), each
        # starting at channel 0.
        lens, grp = np.unique(c_len, return_inverse=True)
        idx = []
        for off_y, _ in pat_y:
            for off_x, _ in pat_x:
                base = (off_y[:, None] * bw + off_x[None, :]).ravel() * bc
                idx += [(base[:, None] + np.arange(ln)[None, :]).ravel() for ln in lens]
        lengths = np.array([len(i) for i in idx], np.int64)
        n_lists = len(lengths)
        words, skips, _, _ = _encode(np.concatenate(idx), np.cumsum(lengths) - lengths, lengths,
                                     np.full(n_lists, encoding), w_bits,
                                     np.full(n_lists, i_bits), lim.synapses_per_entry,
                                     lim.word_bits)
        pattern = (np.arange(n_a)[:, None, None] * n_b + np.arange(n_b)[None, :, None]) \
            * len(lens) + grp.ravel()[None, None, :]
        keys = self._sharing(pat_y, pat_x, cs, co_lo, c_len)
        return words[pattern].ravel(), keys.ravel(), lengths[pattern].ravel(), \
            set(skips.tolist())

    def _sharing(self, pat_y: list, pat_x: list, cs: np.ndarray, co_lo: np.ndarray,
                 c_len: np.ndarray) -> np.ndarray:
        """Sharing key per class (row class, column class, channel): equal iff the
        lists are identical up to their base compartment, that is the same row
        offsets and column offsets up to a shift, the same channel count and the
        same weights, compared through an id per kernel column (the weights of one
        row selector, column selector and source channel over its channels)."""
        sel_y = np.unique(np.concatenate([s for _, s in pat_y]))
        sel_x = np.unique(np.concatenate([s for _, s in pat_x]))
        col_id = np.empty((len(sel_y), len(sel_x), len(cs)), np.int64)
        next_id = 0
        for ln in np.unique(c_len):
            k = np.flatnonzero(c_len == ln)
            co = co_lo[k][:, None] + np.arange(ln)[None, :]
            w = self.op.weights(self.spec, sel_y[:, None, None, None], sel_x[None, :, None, None],
                                cs[k][None, None, :, None], co[None, None])
            w = np.broadcast_to(np.asarray(w, np.float64), (len(sel_y), len(sel_x), len(k), ln))
            _, inv = np.unique(w.reshape(-1, ln) + 0.0, axis=0, return_inverse=True)
            col_id[:, :, k] = inv.reshape(len(sel_y), len(sel_x), len(k)) + next_id
            next_id += int(inv.max()) + 1
        shape_y = _shape_ids([off for off, _ in pat_y])
        shape_x = _shape_ids([off for off, _ in pat_x])
        keys = np.empty((len(pat_y), len(pat_x), len(cs)), np.int64)
        next_key = 0
        for ly in sorted({len(off) for off, _ in pat_y}):
            a = [n for n, (off, _) in enumerate(pat_y) if len(off) == ly]
            ay = np.searchsorted(sel_y, np.array([pat_y[n][1] for n in a]))     # (A, ly)
            for lx in sorted({len(off) for off, _ in pat_x}):
                b = [n for n, (off, _) in enumerate(pat_x) if len(off) == lx]
                bx = np.searchsorted(sel_x, np.array([pat_x[n][1] for n in b]))  # (B, lx)
                ids = col_id[ay[:, None, None, :, None], bx[None, :, None, None, :],
                             np.arange(len(cs))[None, None, :, None, None]]     # (A, B, C, ly, lx)
                table = np.concatenate([
                    np.broadcast_to(shape_y[a][:, None, None, None], (len(a), len(b), len(cs), 1)),
                    np.broadcast_to(shape_x[b][None, :, None, None], (len(a), len(b), len(cs), 1)),
                    np.broadcast_to(c_len[None, None, :, None], (len(a), len(b), len(cs), 1)),
                    ids.reshape(len(a), len(b), len(cs), ly * lx)], axis=3)
                _, inv = np.unique(table.reshape(-1, table.shape[3]), axis=0, return_inverse=True)
                keys[np.ix_(a, b, np.arange(len(cs)))] = inv.reshape(len(a), len(b), len(cs)) \
                    + next_key
                next_key += int(inv.max()) + 1
        return keys


def _shape_ids(offsets: list) -> np.ndarray:
    """An id per offset array, equal iff the arrays are."""
    seen = {}
    return np.array([seen.setdefault(tuple(o.tolist()), len(seen)) for o in offsets], np.int64)


def _compartments_per_neuron(layer) -> int:
    """Compartments of one neuron: none for a spike-input layer (its spikes enter
    through axons), two for reset by subtraction (NxTF's two-compartment neuron),
    else one."""
    if layer.kind == INPUT and layer.input_mode == "spikes":
        return 0
    return 2 if layer.neuron.reset == "soft" else 1


def _encode(local: np.ndarray, starts: np.ndarray, lengths: np.ndarray, encoding: np.ndarray,
            w_bits: int, i_bits: np.ndarray, per_entry: int, word_bits: int,
            sign_part: np.ndarray | None = None) -> tuple:
    """Encode synapse lists as the chip stores them; returns (words per list,
    skip bits of every entry, 0 outside run-length, the list of every entry,
    where every entry starts in local).  sign_part: True where a part of a
    list starts (a shared sign's negative synapses), each part encoded alone.

    local: the lists' local compartment indices, each list ascending; starts,
    lengths: where each list lies in local; encoding, i_bits: per list.  Also
    returns the list of every entry (skip bits and lists of entries align).  A list
    is cut into entries: sparse every per_entry synapses; dense at every index
    that does not follow its predecessor and every per_entry synapses;
    run-length at every skip of 2**MAX_SKIP_BITS or more and every per_entry
    synapses; dense2 at the first synapse per_entry or more compartments past
    its entry's first.  An entry is a format id and a synapse count
    (ENTRY_HEADER_BITS), for dense, dense2 and run-length its first index
    (i_bits), then per synapse its weight and delay (w_bits together), for
    sparse its index, for run-length
    its skip in the entry's skip width (the bits of its largest skip, at least
    MIN_SKIP_BITS); a dense2 entry holds a synapse for every compartment from
    its first to its last target, the skipped ones with weight 0.  A list of B
    bits takes ceil(B / word) words, one more when B % word is 0 or leaves
    less than LIST_RESERVE_BITS free (B % 64 >= 59)."""
    n = len(local)
    list_of = np.repeat(np.arange(len(starts)), lengths)
    first_in_list = np.zeros(n, bool)
    first_in_list[starts] = True
    step = np.diff(local, prepend=0)
    if sign_part is not None:
        first_in_list = first_in_list | sign_part
    step[first_in_list] = 0
    sparse, dense, runlength, dense2 = (np.repeat(encoding == e, lengths)
                                        for e in ("sparse", "dense", "runlength", "dense2"))
    cut = first_in_list | (dense & (step != 1)) | (runlength & (step >= 2 ** sf.MAX_SKIP_BITS))
    piece = np.cumsum(cut) - 1                               # runs between cuts
    in_piece = np.arange(n) - np.flatnonzero(cut)[piece]
    entry_first = in_piece % per_entry == 0                  # every per_entry synapses
    for i in np.flatnonzero(dense2):                         # dense2: windows of compartments
        entry_first[i] = first_in_list[i] or local[i] >= window_end
        if entry_first[i]:
            window_end = local[i] + per_entry
    entry = np.cumsum(entry_first) - 1
    entry_list = list_of[entry_first]
    largest = np.zeros(len(entry_list), np.int64)
    np.maximum.at(largest, entry, np.where(entry_first, 0, step))
    skip = np.where(runlength[entry_first], np.maximum(sf.MIN_SKIP_BITS, _bit_length(largest)), 0)
    per_synapse = w_bits + np.where(sparse, i_bits[list_of], 0) + skip[entry]
    prefix = sf.ENTRY_HEADER_BITS + np.where(sparse[entry_first], 0, i_bits[entry_list])
    if dense2.any():        # plus a zero-weight synapse at every compartment an entry skips
        lowest = np.full(len(entry_list), np.iinfo(np.int64).max)
        highest = np.zeros(len(entry_list), np.int64)
        np.minimum.at(lowest, entry, local)
        np.maximum.at(highest, entry, local)
        fillers = highest - lowest + 1 - np.bincount(entry, minlength=len(entry_list))
        prefix = prefix + np.where(dense2[entry_first], fillers * w_bits, 0)
    bits = (np.bincount(list_of, weights=per_synapse, minlength=len(starts))
            + np.bincount(entry_list, weights=prefix, minlength=len(starts))).astype(np.int64)
    rest = bits % word_bits
    words = -(-bits // word_bits) + ((rest == 0) | (rest > word_bits - sf.LIST_RESERVE_BITS))
    return words.astype(np.int64), skip, entry_list, np.flatnonzero(entry_first)


def _bit_length(values: np.ndarray) -> np.ndarray:
    """int.bit_length of every non-negative integer below 2**53 (frexp's exponent)."""
    return np.frexp(values.astype(np.float64))[1].astype(np.int64)


def validate_partition(ir: NetworkIR, partition: Partition,
                       network: IntNetwork | None = None) -> list:
    """Recount the partition (recount, with the integer network where given) and
    raise PartitionValidationError on any violated limit (check_limits).
    Returns the recounted CoreCounts."""
    counts = recount(ir, partition, network=network)
    check_limits(partition, counts)
    return counts


def check_estimates(partition: Partition, counts: list) -> None:
    """Raise EstimateMismatchError naming the first core and resource whose
    count in the partition (the search's estimate) differs from the recount."""
    for core, count in zip(partition.cores, counts):
        for resource in RESOURCES:
            estimate, recounted = getattr(core, resource.key), getattr(count, resource.key)
            if estimate != recounted:
                raise EstimateMismatchError(
                    f"core {core.index} (layer {core.layer}, chip {core.chip}): the search "
                    f"estimated {estimate} {resource.name}, the validator recounted {recounted}")


def check_limits(partition: Partition, counts: list) -> None:
    """Raise PartitionValidationError on any violated limit of the recounted
    CoreCounts (every resource of hwmodel.limits.RESOURCES) or of the board
    (cores per chip, chips)."""
    lim = partition.board.chip.core
    for core, count in zip(partition.cores, counts):
        for resource in RESOURCES:
            value, limit = getattr(count, resource.key), resource.limit(lim)
            if value > limit:
                raise PartitionValidationError(
                    f"core {core.index} (layer {core.layer}, chip {core.chip}): {value} "
                    f"{resource.name}, limit {limit}")
    for core, count in zip(partition.cores, counts):
        if count.synapse_formats > lim.synapse_formats:
            raise PartitionValidationError(
                f"core {core.index} (layer {core.layer}, chip {core.chip}): "
                f"{count.synapse_formats} synapse formats, limit {lim.synapse_formats}")
    board = partition.board
    for core in partition.cores:
        if not 0 <= core.chip < board.num_chips:
            raise PartitionValidationError(
                f"core {core.index} (layer {core.layer}): chip {core.chip} outside "
                f"0..{board.num_chips - 1}, board {board.name} has {board.num_chips} chips")
    chips = np.bincount([c.chip for c in partition.cores])
    if chips.max(initial=0) > board.chip.cores_per_chip:
        raise PartitionValidationError(
            f"chip {int(chips.argmax())} holds {int(chips.max())} cores, limit "
            f"{board.chip.cores_per_chip}")
