"""The per-core resource model: the definitions both the search (estimate.py)
and the independent validator (validate.py) count by.

Limits come from hwmodel.limits (Loihi 1: 1024 compartments, 4096 input axons,
4096 output-axon entries, 16384 synapse words of 64 bit, <= 60 synapses per
synapse-list entry, <= 256 words per axon's synapse list).

Compartments
    One per neuron, two per soft-reset neuron (NxTF's two-compartment scheme
    for reset by subtraction [NXTF, dnn_layers.py: neuronSize = 2]); a
    spike-mode input layer has none (its spikes enter through axons only).

Synapse lists
    On a core t every source neuron i with synapses on t has one synapse list:
    its synapses on t ordered by local target index (the rank of the target
    neuron among t's neurons, which are sorted flat HWC indices).  A list is
    stored as entries of at most 60 synapses; every entry has a 10-bit header
    (4-bit format id + 6-bit synapse count) [NXTF, data_structures.SynEntry].
    Per encoding (w = the synapse bits of the layer: its num_weight_bits (the
    sign of mixed-sign weights is one of those bits, as in Lava/NxSDK) plus
    its delay field, hwmodel.synapse_format.delay_bits of the largest delay on
    any of its incoming synapses (0 without delays; NxTF's numDelayBits, one
    per layer) [NXTF, SynEntry: numWgtBits + numDlyBits per synapse]; b = index
    bits of the core, max(6, bits to address its largest compartment index)):
      sparse     each synapse w + b bits; a new entry every 60 synapses.
      dense      a new entry at every break in consecutive local indices and
                 every 60 synapses; each entry b more header bits (its start
                 index), each synapse w bits.
      runlength  a new entry wherever consecutive local indices differ by
                 more than 31 and every 60 synapses;
                 each entry b more header bits; each synapse w + s bits, s =
                 max(2, bit length of the largest gap in the entry).
      dense2     NxTF's 'dense2': an entry starts at the first synapse not in
                 an earlier entry and covers the 60 compartments from it; each
                 entry b more header bits, one w-bit synapse per compartment
                 from its first to its last target (gaps hold zero weights).
    With a shared sign (sign mode 'shared': useSharedSign and weights of both
    signs, hwmodel.formats) a list is its positive synapses, then its negative
    ones, each part cut into entries of its own [NXTF, SynapseEncoder.encode].
    A list of B bits takes ceil((B + 6) / 64) words (NxTF's rounding:
    SynapseGroup adds a word when B % 64 is 0 or >= 59).  No list may exceed
    256 words.  Each core records one encoding for all its lists (Core.encoding).
    A layer's synapseEncoding (NeuronSpec.synapse_encoding, NxTF's argument)
    fixes it for all its cores; otherwise the search picks it per core among
    AUTO_ENCODINGS (see below; dense2 only where a layer asks for it).

Connection sharing
    Lists of one connection (source layer -> this layer) on one core, other
    than population members, that are identical up to their base compartment
    (the same local indices after subtracting the first, the same weights and
    delays) and whose bases (first local indices) lie in the same page of 256
    (an axon's compartment base is 0..255: hwmodel.synapse_format.BASE_PAGE)
    are stored once: discrete axons point at the shared list with their own base
    [NXTF, _getUniqueSourceGroups; NxTF shares whole source columns, we share
    single lists].

Multiplicity and axons
    mult(i) = number of distinct cores holding targets of source neuron i, over
    all successor layers (cores hold one layer each, so a neuron feeding two
    layers has mult >= 2).  For a connection e into core t the sources with
    synapses on t split into members (mult(i) == 1: every target of i is on t)
    and the rest.  A core records which connections give their members ONE
    shared population axon (Core.population); a population's member lists are
    laid out as one block, each padded to the longest, so it takes
    |members| x (longest member list) words [NXTF, SynapseGroup: maxNumWords *
    numNeurons] and its members take no part in connection sharing.  All other
    sources have discrete axons.
      input axons on t   = per connection: #discrete sources + [population]
      output entries on s = per (e, t): 1 per discrete source of s with
                            synapses on t, 2 if s holds a member of the
                            population of (e, t), each +1 when s and t sit on
                            different chips [NXTF, data_structures.OutputAxonGroup].
    The search chooses, per core, the encoding and the population flags with the
    lowest cost share (a1 * words / word limit + a2 * input axons / axon limit,
    partitioner.search) among the choices within the core's limits (every
    combination of flags while at most estimate.MAX_FREE connections have
    members, beyond that all or none); a population is recorded only where it
    has members.
    Pixel populations (nengo-loihi's convolution axons, pop32; hwmodel.
    synapse_format): a window connection (source (H, W, C)) may instead reach
    core t through one population axon per source pixel with synapses on t,
    its channels the atoms (Core.pixel_population):
      input axons on t   = #source pixels reaching t;
      words on t         = per distinct block, |atoms| x (longest atom list);
                           a pixel's block is its atoms' lists at their bases
                           relative to the block's first, and pixels whose
                           blocks are identical and whose first bases lie in
                           one page of 256 store one;
      output entries on s = per (source pixel with a neuron on s, t) 2, +1
                           off-chip.
    The search offers them on window connections it counts analytically, and
    takes them only on cores that no other choice fits (estimate.layer_usage).
    NxTF groups a population by source column and forces discrete axons for
    soft reset; here a population is per (connection, target core) and any
    reset mode may use one.  Not modelled: NxTF's recurrent soft-reset axons.
    The synapse-format table (at most 7 formats per core) is counted by the
    validator alone (a core here uses at most 4, 8 with a shared sign); NxTF's destination groups
    belong to its interleaved layout, which nxcompile does not use
    (partitioner.validate).

[NXTF] B. Rueckauer et al., "NxTF", ACM JETC 18(3), 2022, and its partitioner
source (nxsdk_modules_ncl/dnn/src: data_structures.py, dnn_layers.py).
"""
from __future__ import annotations

import numpy as np

from hwmodel import synapse_format as sf
from hwmodel.formats import sign_mode as sf_sign_mode
from hwmodel.errors import NetworkError
from hwmodel.limits import CoreLimits
from partitioner.errors import CoreLimitError
from nxcompile.ir import INPUT, LayerSpec

ENCODINGS = sf.ENCODINGS
AUTO_ENCODINGS = ("sparse", "dense", "runlength")     # what the search chooses from
MAX_SKIP = 2 ** sf.MAX_SKIP_BITS - 1       # largest skip within a run-length entry

_SKIP_BITS = np.array([max(sf.MIN_SKIP_BITS, v.bit_length()) for v in range(MAX_SKIP + 1)])


def compartments_per_neuron(layer: LayerSpec) -> int:
    """2 for a soft-reset neuron, 1 otherwise, 0 for a spike-input layer."""
    if layer.kind == INPUT and layer.input_mode == "spikes":
        return 0
    return 2 if layer.neuron.reset == "soft" else 1


def weight_bits(layer: LayerSpec) -> int:
    """Stored bits per synapse weight of the layer's incoming synapses."""
    return int(layer.neuron.num_weight_bits)


def synapse_bits(layer: LayerSpec, max_delay: int) -> int:
    """Stored bits per synapse of the layer's incoming synapses other than index
    or skip: weight_bits plus the delay field (synapse_format.delay_bits of
    max_delay, the largest delay on any incoming synapse)."""
    return weight_bits(layer) + sf.delay_bits(max_delay)


def layer_encodings(layer: LayerSpec, split_signs: bool, formats: int) -> tuple:
    """The encodings the search may give the layer's cores: its synapseEncoding
    alone, or AUTO_ENCODINGS.  Run-length lists may use one format per skip
    width (MIN_SKIP_BITS..MAX_SKIP_BITS), twice over when their positive and
    negative parts are split (split_signs): where that exceeds the core's
    `formats` limit, the search leaves run-length out and a forced run-length
    is refused."""
    widths = (sf.MAX_SKIP_BITS - sf.MIN_SKIP_BITS + 1) * (2 if split_signs else 1)
    forced = layer.neuron.synapse_encoding
    if forced is None:
        return AUTO_ENCODINGS if widths <= formats else \
            tuple(e for e in AUTO_ENCODINGS if e != "runlength")
    if forced not in ENCODINGS:
        raise NetworkError(f"layer {layer.name}: synapseEncoding={forced!r} not one of "
                           f"{ENCODINGS}")
    if forced == "runlength" and widths > formats:
        raise CoreLimitError(layer.name, "synapse formats", widths, formats,
                             "synapseEncoding='runlength' with a shared sign: a positive and a "
                             "negative format per skip width")
    return (forced,)


def splits_signs(layer: LayerSpec, weights) -> bool:
    """True when the layer's synapse lists are split into a positive and a
    negative part: a shared sign asked for (NeuronSpec.shared_sign) and incoming
    weights (all of them, concatenated) of both signs (sign mode 'shared')."""
    return sf_sign_mode(weights, layer.neuron.shared_sign) == "shared"


def index_bits(compartments: int) -> int:
    """Bits of a local compartment index on a core with that many compartments."""
    return max(sf.MIN_INDEX_BITS, int(max(compartments, 1) - 1).bit_length())


def list_words(idx: np.ndarray, starts: np.ndarray, encoding: str, w_bits: int, i_bits,
               limits: CoreLimits, parts=None) -> np.ndarray:
    """64-bit words of each synapse list.

    idx: the lists' local target indices concatenated; starts: where each list
    begins in idx; parts: where a list's later parts begin (a shared-sign list
    is its positive then its negative synapses, each part encoded on its own;
    default: lists of one part); every part ascending and non-empty.  i_bits:
    index bits, one int or one per list.  Returns an int64 array with one word
    count per list.
    """
    idx = np.asarray(idx, np.int64)
    starts = np.asarray(starts, np.int64)
    if len(starts) == 0:
        return np.zeros(0, np.int64)
    i_bits = np.broadcast_to(np.asarray(i_bits, np.int64), starts.shape)
    part_starts = starts if parts is None else np.union1d(starts, np.asarray(parts, np.int64))
    owner = np.searchsorted(starts, part_starts, side="right") - 1
    bits = _part_bits(idx, part_starts, encoding, w_bits, i_bits[owner], limits)
    bits = np.bincount(owner, weights=bits, minlength=len(starts)).astype(np.int64)
    return -(-(bits + sf.LIST_RESERVE_BITS) // limits.word_bits)


def _part_bits(idx: np.ndarray, starts: np.ndarray, encoding: str, w_bits: int,
               i_bits: np.ndarray, limits: CoreLimits) -> np.ndarray:
    """Bits of each ascending run of synapses (starts: where each begins) encoded
    as its own entries."""
    n = len(idx)
    counts = np.diff(np.append(starts, n))
    per_entry = limits.synapses_per_entry
    if encoding == "sparse":
        return -(-counts // per_entry) * sf.ENTRY_HEADER_BITS + counts * (w_bits + i_bits)
    if encoding == "dense2":
        return _dense2_bits(idx, starts, counts, w_bits, i_bits, per_entry)
    first = np.zeros(n, bool)
    first[starts] = True
    gap = np.diff(idx, prepend=idx[0])
    brk = first | ((gap != 1) if encoding == "dense" else (gap > MAX_SKIP))
    chunk_start = np.flatnonzero(brk)
    pos = np.arange(n) - np.repeat(chunk_start, np.diff(np.append(chunk_start, n)))
    entry = brk | (pos % per_entry == 0)
    entry_start = np.flatnonzero(entry)
    entry_len = np.diff(np.append(entry_start, n))
    list_of_entry = np.searchsorted(starts, entry_start, side="right") - 1
    entry_i_bits = i_bits[list_of_entry]
    if encoding == "dense":
        entry_bits = sf.ENTRY_HEADER_BITS + entry_i_bits + entry_len * w_bits
    elif encoding == "runlength":
        skip = np.where(entry, 0, gap)
        skip_bits = _SKIP_BITS[np.maximum.reduceat(skip, entry_start)]
        entry_bits = sf.ENTRY_HEADER_BITS + entry_i_bits + entry_len * (w_bits + skip_bits)
    else:
        raise ValueError(f"unknown synapse encoding {encoding!r}; one of {ENCODINGS}")
    return np.bincount(list_of_entry, weights=entry_bits, minlength=len(starts)).astype(np.int64)


def _dense2_bits(idx: np.ndarray, starts: np.ndarray, counts: np.ndarray, w_bits: int,
                 i_bits: np.ndarray, per_entry: int) -> np.ndarray:
    """Bits of each list in NxTF's dense2 encoding: entries found one round per
    entry position, every list at once (each list's keys offset past the others)."""
    n = len(idx)
    list_of = np.repeat(np.arange(len(starts)), counts)
    key = idx + list_of * (int(idx.max()) + per_entry + 1)
    ends = starts + counts
    entry = np.zeros(n, bool)
    pos, lists = starts, np.arange(len(starts))
    while len(pos):
        entry[pos] = True
        nxt = np.searchsorted(key, key[pos] + per_entry)
        keep = nxt < ends[lists]
        pos, lists = nxt[keep], lists[keep]
    entry_start = np.flatnonzero(entry)
    entry_last = np.append(entry_start[1:], n) - 1
    span = idx[entry_last] - idx[entry_start] + 1
    owner = list_of[entry_start]
    entry_bits = sf.ENTRY_HEADER_BITS + i_bits[owner] + span * w_bits
    return np.bincount(owner, weights=entry_bits, minlength=len(starts)).astype(np.int64)


def output_entries(discrete: np.ndarray, population: np.ndarray, offchip: np.ndarray) -> np.ndarray:
    """Output-axon entries of routes: discrete source counts and population flags
    per route, offchip flags per route (arrays of the same shape)."""
    return (discrete * (sf.DISCRETE_ROUTE_ENTRIES + offchip * sf.OFFCHIP_EXTRA_ENTRIES)
            + population * (sf.POPULATION_ROUTE_ENTRIES + offchip * sf.OFFCHIP_EXTRA_ENTRIES))

