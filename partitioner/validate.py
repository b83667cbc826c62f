"""Independent validator of a partition.

Recounts every core's compartments, input axons, output-axon entries, synapse
words and longest synapse list from the final per-core neuron assignment
(Core.neurons, Core.chip and the recorded decisions Core.encoding and
Core.population) and the connection matrices (nxcompile.ir.connection_matrix:
each kind's ConnectionKind.matrix), by the rules of partitioner.model.  It never
reads the search's estimates (the resource fields of Core), and fails loudly, naming the
core, its layer, the resource, the value and the limit.

Shared with the search are only the model's definitions (compartments per
neuron, index bits, words of one synapse list, output entries of a route);
the lists, multiplicities, members, populations and connection sharing
(compared exactly, list by list) are counted here from the synapse matrices.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwmodel.limits import RESOURCES
from hwmodel.partition import Partition
from nxcompile.ir import NetworkIR, connection_matrix
from partitioner import model
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
                     lengths: np.ndarray) -> np.ndarray:
    """Connection sharing, compared exactly: per list, the first list on the same
    core that is identical up to its base compartment (same length, same local
    indices minus the first, same weights by value).  Compared one (core, length)
    group at a time, as rows of bytes."""
    same = np.arange(len(starts))
    rel = local - np.repeat(local[starts], lengths)
    order = np.lexsort((lengths, core))
    cuts = np.flatnonzero(np.diff(core[order]) | np.diff(lengths[order])) + 1
    for lists in np.split(order, cuts):
        if len(lists) == 1:
            continue
        at = starts[lists][:, None] + np.arange(lengths[lists[0]])
        table = np.concatenate([rel[at], w[at] + 0.0], axis=1)
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
    comps = np.array([len(c.neurons) * model.compartments_per_neuron(ir.layer(c.layer)) for c in cores],
                     np.int64)
    in_axons, out_entries, words_used, max_list = (np.zeros(n_cores, np.int64) for _ in range(4))
    for core in cores:
        for src in core.population:
            if (src, core.layer) not in ir.graph.edges:
                raise PartitionValidationError(
                    f"core {core.index} (layer {core.layer}): population axon from {src!r}, "
                    f"which does not feed layer {core.layer}")
    # Synapses of every connection as (source neuron, target core, local index, weight).
    synapses = {}
    for src, dst in ir.graph.edges:
        m = connection_matrix(ir.connection(src, dst), ir.layer(dst).shape).tocoo()
        synapses[src, dst] = (m.col.astype(np.int64), core_of[dst][m.row], local_of[dst][m.row], m.data)
    core_encoding = np.array([c.encoding for c in cores])
    core_index_bits = np.array([model.index_bits(int(c)) for c in comps])
    # Multiplicity: distinct target cores of every source neuron over all its successors.
    mult = {name: np.zeros(ir.layer(name).n, np.int64) for name in ir.order()}
    for (src, _), (i, t, _, _) in synapses.items():
        pairs = np.unique(i * n_cores + t)
        mult[src] += np.bincount(pairs // n_cores, minlength=len(mult[src]))
    for (src, dst), (i, t, local, w) in synapses.items():
        if len(i) == 0:
            continue
        # Lists: one per (target core, source neuron), cores contiguous, indices ascending.
        order = np.lexsort((local, i, t))
        i, t, local, w = i[order], t[order], local[order], w[order]
        starts = np.flatnonzero(np.r_[True, (i[1:] != i[:-1]) | (t[1:] != t[:-1])])
        ends = np.append(starts[1:], len(i))
        list_src, list_core = i[starts], t[starts]
        member = mult[src][list_src] == 1
        keys = _identical_lists(list_core, local, w, starts, ends - starts)
        # Words of every list, under its core's encoding and index bits.
        words = np.zeros(len(starts), np.int64)
        encoding = core_encoding[list_core]
        i_bits = core_index_bits[list_core]
        lengths = ends - starts
        for enc in np.unique(encoding).tolist():
            sel = np.flatnonzero(encoding == enc)
            sub_starts = np.r_[0, np.cumsum(lengths[sel])[:-1]]
            words[sel] = model.list_words(local[np.repeat(encoding == enc, lengths)], sub_starts, enc,
                                          model.weight_bits(ir.layer(dst)), i_bits[sel], lim)
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
        np.add.at(out_entries, s_core[~pooled], model.output_entries(1, 0, off[~pooled]))
        routes = np.unique(s_core[pooled] * n_cores + list_core[pooled])
        s_pop, t_pop = routes // n_cores, routes % n_cores
        np.add.at(out_entries, s_pop, model.output_entries(0, 1, (chip[s_pop] != chip[t_pop]).astype(np.int64)))
    return [CoreCount(*map(int, v)) for v in zip(comps, in_axons, out_entries, words_used, max_list)]


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
