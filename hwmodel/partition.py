"""A network's placement on a board: which neurons sit on which core of which
chip.  Written by the partitioner, read by every backend, the energy model,
the report and the model file (so it lives here, below all of them)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwmodel.limits import Board


@dataclass
class Core:
    """One neuromorphic core holding neurons of a single layer.

    neurons: sorted flat indices (Keras HWC order) of the layer's neurons on
    this core.  The resource counts (hwmodel.limits.RESOURCES) are what the
    partitioner's model (partitioner.model) says the core uses, as recounted
    by its validator: compartments, input axons, output-axon entries (including
    off-chip extras), 64-bit synapse words and the words of its longest synapse
    list (words_per_axon).
    Decisions the counts depend on: encoding, the synapse-list encoding of its
    lists ('sparse', 'dense', 'runlength'); population, the source layers whose
    neurons with all targets on this core share one population axon here;
    pixel_population, the source layers whose synapses reach this core through
    one population axon per source pixel, its channels as atoms
    (hwmodel.synapse_format, nengo-loihi's convolutions).
    """

    index: int
    chip: int
    layer: str
    neurons: np.ndarray
    compartments: int = 0
    input_axons: int = 0
    output_axons: int = 0
    synapse_words: int = 0
    words_per_axon: int = 0
    encoding: str = "sparse"
    population: tuple = ()
    pixel_population: tuple = ()


@dataclass
class LayerSplit:
    """How the search split one layer: split description ('ny x nx x nc of block'),
    its lower bound on cores and the resource that sets it, and its cost."""

    split: str
    lower_bound: int
    bound_by: str
    cost: float


@dataclass
class Partition:
    """All cores of a compiled network, in layer (topological) order.

    Filled by the partitioner: layers (name -> LayerSplit), lower_bound_cores
    (sum of the per-layer bounds), offchip_routes (axon routes between chips
    after placement) and sequential_offchip_routes (the same for chips filled in
    core order, NxTF's way), placement (how chips were assigned), timings
    (seconds per stage).
    """

    board: Board
    cores: list = field(default_factory=list)
    layers: dict = field(default_factory=dict)
    lower_bound_cores: int = 0
    offchip_routes: int = 0
    sequential_offchip_routes: int = 0
    placement: str = ""
    timings: dict = field(default_factory=dict)

    def cores_of(self, layer: str) -> list:
        return [c for c in self.cores if c.layer == layer]

    @property
    def num_cores(self) -> int:
        return len(self.cores)

    @property
    def num_chips(self) -> int:
        return len({c.chip for c in self.cores})
