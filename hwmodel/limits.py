"""Loihi hardware limits: one place, each number with its source.

Sources
-------
[D18]  M. Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip
       Learning", IEEE Micro 38(1), 2018, p. 86 and the mapping constraints
       on p. 89: 128 neuromorphic cores per chip, 1024 compartments per core,
       4096 input axons (distribution lists) and 4096 output-axon entries
       (core-to-core fan-out edges) per core, 128 KB synaptic memory per core.
[NXTF] B. Rueckauer et al., "NxTF: An API and Compiler for Deep Spiking Neural
       Networks on Intel Loihi", ACM JETC 18(3), 2022, and its partitioner code:
       synapse memory as 16384 words of 64 bit, <= 60 synapses per synapse-list
       entry, <= 256 words per axon's synapse list, <= 7 synapse formats per core.
[INRC] Intel Neuromorphic Research Community system descriptions: Kapoho Bay
       (2 chips), Nahuku (up to 32 chips), Pohoiki Springs (768 chips).
[L2]   Intel, "Taking Neuromorphic Computing to the Next Level with Loihi 2",
       technology brief (2021): 128 neuron cores per chip, up to 8192 neurons
       per core and 1 million per chip (120 million synapses per chip, not cores).
       The other Loihi 2 core limits are not published in this form; the
       preset keeps Loihi 1's (an assumption, not a datum).
"""
from __future__ import annotations

from dataclasses import dataclass

from hwmodel.errors import NetworkError


@dataclass(frozen=True)
class CoreLimits:
    """Hard resource limits of one neuromorphic core: counts of compartments,
    input axons, output-axon entries, 64-bit synapse-memory words, synapses per
    synapse-list entry and words per axon's synapse list."""

    compartments: int = 1024          # [D18]
    input_axons: int = 4096           # [D18]
    output_axons: int = 4096          # [D18] output-axon (routing) entries
    synapse_words: int = 16384        # [NXTF] 128 KB / 64-bit words [D18]
    word_bits: int = 64               # [NXTF]
    synapses_per_entry: int = 60      # [NXTF] max synapses in one synapse-list entry
    words_per_axon: int = 256         # [NXTF] max synapse-list length of one axon
    synapse_formats: int = 7          # [NXTF] optimization.py maxNumSynFmt (15 hardware
                                      # slots, NxTF writes each format twice)


@dataclass(frozen=True)
class Resource:
    """A per-core resource with a hard limit.  key: the CoreLimits field that
    holds its limit, and the name of its count wherever cores are counted
    (hwmodel.partition.Core, partitioner.validate.CoreCount); name: how
    messages say it; label: its report column; unit: what its limit counts
    (the report's header line: '<limit> <unit>')."""

    key: str
    name: str
    label: str
    unit: str

    def limit(self, core: CoreLimits) -> int:
        return getattr(core, self.key)


# The per-core resources, in report order: read by the search's estimate, the
# lower bounds, the validator and the report.
RESOURCES = (
    Resource("compartments", "compartments", "compartments", "compartments"),
    Resource("input_axons", "input axons", "in axons", "input axons"),
    Resource("output_axons", "output axons", "out axons", "output-axon entries"),
    Resource("synapse_words", "synapse words", "syn words", "64-bit synapse words"),
    Resource("words_per_axon", "synapse words of one axon", "words/axon",
             "words in one axon's synapse list"),
)
RESOURCE = {r.key: r for r in RESOURCES}


@dataclass(frozen=True)
class ChipSpec:
    """One chip: a name, its core limits and how many cores it has."""

    name: str
    core: CoreLimits
    cores_per_chip: int


LOIHI1 = ChipSpec("loihi1", CoreLimits(), cores_per_chip=128)            # [D18]
LOIHI2 = ChipSpec("loihi2", CoreLimits(compartments=8192), cores_per_chip=128)  # [L2]


@dataclass(frozen=True)
class Board:
    """A board preset: a chip kind and how many chips are available."""

    name: str
    chip: ChipSpec
    num_chips: int

    @property
    def num_cores(self) -> int:
        return self.chip.cores_per_chip * self.num_chips


BOARDS = {
    "loihi1": Board("loihi1", LOIHI1, 1),
    "kapoho_bay": Board("kapoho_bay", LOIHI1, 2),               # [INRC]
    "nahuku32": Board("nahuku32", LOIHI1, 32),                  # [INRC]
    "pohoiki_springs": Board("pohoiki_springs", LOIHI1, 768),   # [INRC]
    "loihi2": Board("loihi2", LOIHI2, 1),                       # [L2]
}


def get_board(board: "str | Board") -> Board:
    """Return a Board for a preset name (see BOARDS) or pass a Board through."""
    if isinstance(board, Board):
        return board
    try:
        return BOARDS[board]
    except KeyError:
        raise NetworkError(
            f"unknown board {board!r}; presets: {', '.join(sorted(BOARDS))}") from None
