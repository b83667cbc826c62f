"""How a Loihi 1 core stores synapse lists and axon routes: field widths, with
their sources.  The search's resource model (partitioner.model) and the
validator (partitioner.validate) each count by these facts with code of their
own.

[NXTF] NxTF's partitioner (intel-nrc-ecosystem/models, nxsdk_modules_ncl/dnn/
src): data_structures.SynEntry._updateCost, synapse_compression, SynapseGroup.
_updateCost, OutputAxonGroup, optimization.ExclusionCriteria.
[LAVADL] lava-dl 0.6.0, src/lava/lib/dl/netx (the netx importer of Loihi
networks with per-synapse delays).
[NENGO] nengo-loihi (github.com/nengo/nengo-loihi, master e564f66): block.py
Axon.slots_per_axon / Synapse.atom_bits_extra / axon_bits, hardware/builder.py
build_synapse / build_axon (createPop16Axon, createPop32Axon, popSize,
population16MapEntry / population32MapEntry), builder/validate.py.
"""
from __future__ import annotations

# Encodings of a synapse list's entries [NXTF synapse_compression.SynapseEncoder]:
#   sparse     every synapse holds its compartment index;
#   dense      NxTF's 'dense1': consecutive compartments from the entry's first
#              index, a new entry at every gap;
#   runlength  every synapse holds the skip to the next compartment;
#   dense2     NxTF's 'dense2': an entry covers the next synapses_per_entry
#              compartments from its first index, gaps stored as zero-weight
#              synapses.
ENCODINGS = ("sparse", "dense", "runlength", "dense2")
# NxTF's names (its synapseEncoding argument) -> these.
NXTF_ENCODINGS = {"sparse": "sparse", "dense1": "dense", "runlength": "runlength",
                  "dense2": "dense2"}
# A synapse list is stored as entries: each a prefix of a format id and a
# synapse count, then its synapses.  [NXTF SynEntry: numPrefixBits = 4 + 6]
FORMAT_ID_BITS = 4
COUNT_BITS = 6
ENTRY_HEADER_BITS = FORMAT_ID_BITS + COUNT_BITS
# Compartment index fields: the bits of the core's largest compartment index,
# at least 6 (NxTF asserts at most 10: Loihi 1's 1024 compartments).  Sparse
# entries hold one per synapse; dense and run-length entries one in the prefix
# (the entry's first compartment).  [NXTF _getNumIdxBits]
MIN_INDEX_BITS = 6
# Run-length synapses hold the skip to the next compartment in 2..5 bits; a gap
# of 2**5 = 32 or more starts a new entry.  [NXTF _getNumSkipBits, encodeRunLength]
MIN_SKIP_BITS = 2
MAX_SKIP_BITS = 5
# A list needs 6 bits of room after its last synapse: with 64-bit words, B bits
# take ceil(B / 64) words, one more when B % 64 is 0 or at least 59.
# [NXTF SynapseGroup._updateCost]
LIST_RESERVE_BITS = 6
# Output-axon (routing) entries: 1 per discrete axon route, 2 per population
# axon route, each 1 more when the route leaves its chip.  [NXTF OutputAxonGroup:
# discreteCost = 1, sharedCost = 2]
DISCRETE_ROUTE_ENTRIES = 1
POPULATION_ROUTE_ENTRIES = 2
OFFCHIP_EXTRA_ENTRIES = 1
# Population axon types [NENGO].  A population axon carries, besides its target
# synapse-map entry (one input axon on the target core), an atom: the index of
# the sending compartment within its population, which selects one of the
# entry's popSize synapse lists (each synapseLen long, so every atom's list
# takes the length of the longest; NxTF likewise pads its population lists,
# SynapseGroup maxNumWords x numNeurons).  Lists of one population may be
# shared by several input axons, each with its own compartment base
# (nengo-loihi's axon_to_weight_map).  nengo-loihi's convolutions use one
# population axon per source pixel with the channel as atom.
#   pop32: 2 output-axon slots per axon (Axon.slots_per_axon), any base.
#   pop16: 1 slot, but its compartment base must be a multiple of 4
#          (population16MapEntry cxBase = base // 4), its synapse-map ids
#          fit 10 - extra bits, extra = max(0, atom bits - 5), and NxSDK does
#          not implement extra > 0 (more than 32 atoms).
# nxcompile's population axons, NxTF's and the per-pixel ones, are pop32:
# POPULATION_ROUTE_ENTRIES per route; pop16 is not modelled.
# Compartment base: the synapse-map entry of an input axon (discrete and pop32
# alike) holds the compartment base of its list, 0..255; a synapse reaches
# compartment base + its stored index [NENGO builder/validate.validate_synapse:
# "compartment base must be >= -1 and < 256"; hardware/builder.build_synapse:
# "Currently limited by hardware"; split_blocks: "new_base needs to be < 256
# due to chip constraints"].  nengo-loihi's convolutions keep one stored copy
# of a shared list per 256 compartments of base (conv.py: "an upper limit on
# the axon compartment offset of 256 ... make extra sets of redundant weights
# with part of the offset in the indices"): a copy whose indices hold 256 * p
# serves the axons with bases 256 * p .. 256 * p + 255.  So lists identical up
# to their base share one copy only where their bases (the lists' first
# compartments) lie in the same page of BASE_PAGE compartments; a list no other
# axon shares keeps base 0 and its own indices.  The copy's indices stay below
# the core's compartments, so it takes the words of the list it copies.
MAX_COMPARTMENT_BASE = 255
BASE_PAGE = MAX_COMPARTMENT_BASE + 1
# Synaptic delays (time steps a spike waits beyond the one-step hop; 0 = no
# wait).  Every synapse of a list stores a delay field of the list's format
# next to its weight: 0 bits where a format has no delays, else 3..6 bits
# [NXTF SynapseEncoder: numDelayBits in (3, 4, 5, 6) or None; SynEntry.
# _updateCost: each synapse weight + delay bits].  Delays reach 62 steps
# [LAVADL netx/utils.num_delay_bits: "Max delay exceeded limit of 62";
# netx/hdf5.Network clamps delays to 0..62] (Lava 0.10's DelaySparse fixed_pt
# model takes 0..63, "Loihi 2 has a maximum of 6 bits for delays").
MIN_DELAY_BITS = 3
MAX_DELAY_BITS = 6
DELAY_MAX = 62


def delay_bits(max_delay: int) -> int:
    """Delay field width (bits) of synapses whose largest delay is max_delay
    steps: 0 for none, else max(3, bit length of max_delay) (at most 6 for
    DELAY_MAX)."""
    max_delay = int(max_delay)
    return 0 if max_delay <= 0 else max(MIN_DELAY_BITS, max_delay.bit_length())
