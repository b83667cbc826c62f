"""Independent validator of a partition.

Recounts every core's compartments, input axons, output-axon entries, synapse
words, longest synapse list and synapse formats from the final per-core neuron
assignment (Core.neurons, Core.chip and the recorded decisions Core.encoding
and Core.population) and the connection matrices (nxcompile.ir.connection_
matrix), by the rules partitioner.model documents.  It never reads the search's
estimates (the resource fields of Core) and calls none of the search's code: it
encodes every synapse list entry by entry as the chip stores it (the field
widths of hwmodel.synapse_format) and counts lists, multiplicities, members,
populations and connection sharing (compared exactly, list by list) itself.
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
from hwmodel.partition import Partition
from nxcompile.ir import INPUT, NetworkIR, connection_matrix, delay_matrix
from partitioner.errors import PartitionError


class PartitionValidationError(PartitionError):
    """A partition breaks a hard limit or does not assign every neuron once."""


class EstimateMismatchError(PartitionValidationError):
    """The search's estimate of a core's resource differs from the recount (a
    bug in one of the two counts)."""


@dataclass
class CoreCount:
    """What one core uses of each resource (hwmodel.limits.RESOURCES), recounted;
    words_per_axon is the longest synapse list's."""

    compartments: int = 0
    input_axons: int = 0
    output_axons: int = 0
    synapse_words: int = 0
    words_per_axon: int = 0
    synapse_formats: int = 0


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


def recount(ir: NetworkIR, partition: Partition) -> list:
    """CoreCount of every core (list indexed like partition.cores)."""
    lim = partition.board.chip.core
    core_of, local_of = _assignment(ir, partition)
    cores = partition.cores
    chip = np.array([c.chip for c in cores], np.int64)
    n_cores = len(cores)
    comps = np.array([len(c.neurons) * _compartments_per_neuron(ir.layer(c.layer)) for c in cores],
                     np.int64)
    in_axons, out_entries, words_used, max_list = (np.zeros(n_cores, np.int64) for _ in range(4))
    formats = [set() for _ in cores]        # per core: the skip widths of its entries
    for core in cores:
        for src in core.population:
            if (src, core.layer) not in ir.graph.edges:
                raise PartitionValidationError(
                    f"core {core.index} (layer {core.layer}): population axon from {src!r}, "
                    f"which does not feed layer {core.layer}")
    # Synapses of every connection as (source neuron, target core, local index, weight),
    # and the delay (steps) of each.
    synapses, delays = {}, {}
    for src, dst in ir.graph.edges:
        spec, shape = ir.connection(src, dst), ir.layer(dst).shape
        m = connection_matrix(spec, shape).tocoo()
        synapses[src, dst] = (m.col.astype(np.int64), core_of[dst][m.row], local_of[dst][m.row], m.data)
        d = delay_matrix(spec, shape)
        delays[src, dst] = np.zeros(m.nnz, np.int64) if d is None else \
            np.asarray(d.tocsr()[m.row, m.col], np.int64).ravel()
    # The delay field of a layer's synapses: sized by its largest incoming delay.
    delay_bits = {dst: sf.delay_bits(max([int(delays[s, dst].max(initial=0))
                                          for s in ir.predecessors(dst)], default=0))
                  for dst in ir.order()}
    core_encoding = np.array([c.encoding for c in cores])
    core_index_bits = np.array([max(sf.MIN_INDEX_BITS, int(max(c, 1) - 1).bit_length())
                                for c in comps])
    # Shared sign with weights of both signs: lists in a positive and a negative part.
    split = {}
    for dst in ir.order():
        w_all = np.concatenate([synapses[s, dst][3] for s in ir.predecessors(dst)] or [[]])
        split[dst] = bool(ir.layer(dst).neuron.shared_sign) and bool(
            (w_all > 0).any() and (w_all < 0).any())
    # Multiplicity: distinct target cores of every source neuron over all its successors.
    mult = {name: np.zeros(ir.layer(name).n, np.int64) for name in ir.order()}
    for (src, _), (i, t, _, _) in synapses.items():
        pairs = np.unique(i * n_cores + t)
        mult[src] += np.bincount(pairs // n_cores, minlength=len(mult[src]))
    for (src, dst), (i, t, local, w) in synapses.items():
        if len(i) == 0:
            continue
        # Lists: one per (target core, source neuron), cores contiguous, indices ascending;
        # with a shared sign its positive synapses, then its negative ones.
        negative = (w < 0) & split[dst]
        order = np.lexsort((local, negative, i, t))
        i, t, local, w, negative = i[order], t[order], local[order], w[order], negative[order]
        dly = delays[src, dst][order]
        starts = np.flatnonzero(np.r_[True, (i[1:] != i[:-1]) | (t[1:] != t[:-1])])
        sign_part = np.r_[True, negative[1:] != negative[:-1]]
        ends = np.append(starts[1:], len(i))
        list_src, list_core = i[starts], t[starts]
        member = mult[src][list_src] == 1
        keys = _identical_lists(list_core, local, w, starts, ends - starts, dly)
        # Words of every list, encoded entry by entry under its core's encoding.
        lengths = ends - starts
        words, skips, entry_list, entry_at = _encode(
            local, starts, lengths, core_encoding[list_core],
            int(ir.layer(dst).neuron.num_weight_bits) + delay_bits[dst], core_index_bits[list_core],
            lim.synapses_per_entry, lim.word_bits, sign_part)
        # one encoding and weight width per core; the sign mode of a shared sign per entry
        for key in set(zip(list_core[entry_list].tolist(), skips.tolist(),
                           negative[entry_at].tolist())):
            formats[key[0]].add(key[1:])
        # Per target core: members, population flag, distinct (shared) words.
        pop_core = np.array([src in c.population for c in cores])
        n_mem = np.bincount(list_core[member], minlength=n_cores)
        n_rest = np.bincount(list_core[~member], minlength=n_cores)
        for tc in np.flatnonzero(pop_core & (n_mem == 0)):
            if cores[tc].layer == dst:
                raise PartitionValidationError(
                    f"core {tc} (layer {dst}): population axon from layer {src} recorded, but no "
                    f"neuron of {src} has all its targets on this core")
        pooled = member & pop_core[list_core]
        first = np.unique(keys[~pooled], return_index=True)[1]
        shared = np.bincount(list_core[~pooled][first], weights=words[~pooled][first],
                             minlength=n_cores).astype(np.int64)
        m_max = np.zeros(n_cores, np.int64)
        np.maximum.at(m_max, list_core[pooled], words[pooled])
        np.maximum.at(max_list, list_core, words)
        pop = pop_core & (n_mem > 0)
        in_axons += np.where(pop, n_rest + 1, n_rest + n_mem)
        words_used += shared + np.where(pop, n_mem * m_max, 0)
        # Output entries of the source cores: one per discrete route, two per
        # (source core, population) with a member on that source core.
        s_core = core_of[src][list_src]
        off = (chip[s_core] != chip[list_core]).astype(np.int64)
        np.add.at(out_entries, s_core[~pooled],
                  sf.DISCRETE_ROUTE_ENTRIES + off[~pooled] * sf.OFFCHIP_EXTRA_ENTRIES)
        routes = np.unique(s_core[pooled] * n_cores + list_core[pooled])
        s_pop, t_pop = routes // n_cores, routes % n_cores
        np.add.at(out_entries, s_pop, sf.POPULATION_ROUTE_ENTRIES
                  + (chip[s_pop] != chip[t_pop]).astype(np.int64) * sf.OFFCHIP_EXTRA_ENTRIES)
    return [CoreCount(*map(int, v), synapse_formats=len(f))
            for *v, f in zip(comps, in_axons, out_entries, words_used, max_list, formats)]


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


def validate_partition(ir: NetworkIR, partition: Partition) -> list:
    """Recount the partition and raise PartitionValidationError on any violated
    limit (check_limits).  Returns the recounted CoreCounts."""
    counts = recount(ir, partition)
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
