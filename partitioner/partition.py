"""The result of partitioning: which neurons sit on which core of which chip."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwmodel.limits import Board


@dataclass
class Core:
    """One neuromorphic core holding neurons of a single layer.

    neurons: sorted flat indices (Keras HWC order) of the layer's neurons on
    this core.  The resource counts are what the partitioner's model says the
    core uses: compartments, input axons, output-axon entries and 64-bit synapse
    words.
    """

    index: int
    chip: int
    layer: str
    neurons: np.ndarray
    compartments: int = 0
    input_axons: int = 0
    output_axons: int = 0
    synapse_words: int = 0


@dataclass
class Partition:
    """All cores of a compiled network, in layer (topological) order."""

    board: Board
    cores: list = field(default_factory=list)

    def cores_of(self, layer: str) -> list:
        return [c for c in self.cores if c.layer == layer]

    @property
    def num_cores(self) -> int:
        return len(self.cores)

    @property
    def num_chips(self) -> int:
        return len({c.chip for c in self.cores})
