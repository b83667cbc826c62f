"""Per-core resource counts from a neuron-to-core assignment and the synapse matrices.

Thin model (foundation): every source neuron that has synapses on a core uses
one input axon there and one output-axon entry per distinct target core; its
synapses on that core are stored in sparse format: entries of at most 60
synapses, each entry a 10-bit header (4-bit format + 6-bit count), each synapse
its weight bits plus an index of max(6, ceil(log2(compartments))) bits, and the
axon's synapse list rounded up to whole 64-bit words.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from hwmodel.limits import CoreLimits

ENTRY_HEADER_BITS = 10   # 4-bit format id + 6-bit synapse count (NxTF model)
MIN_INDEX_BITS = 6


def index_bits(compartments: int) -> int:
    """Bits of a sparse synapse's target index on a core with that many compartments."""
    return max(MIN_INDEX_BITS, math.ceil(math.log2(max(compartments, 2))))


def synapse_list_words(synapses_per_axon: np.ndarray, weight_bits: int, idx_bits: int,
                       limits: CoreLimits) -> np.ndarray:
    """64-bit words of each axon's sparse synapse list (array of synapse counts)."""
    c = np.asarray(synapses_per_axon, dtype=np.int64)
    entries = -(-c // limits.synapses_per_entry)
    bits = entries * ENTRY_HEADER_BITS + c * (weight_bits + idx_bits)
    return -(-bits // limits.word_bits)


def fan_in_per_source(matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Synapses each source neuron (column) has onto the given target rows."""
    sub = matrix[rows]
    return np.bincount(sub.indices, minlength=matrix.shape[1])


def input_resources(matrices: list, rows: np.ndarray, compartments: int, weight_bits: int,
                    limits: CoreLimits) -> tuple[int, int, int]:
    """(input axons, synapse words, largest per-axon words) of a core holding `rows`
    of a layer whose incoming synapse matrices are `matrices`."""
    axons = words = worst = 0
    ib = index_bits(compartments)
    for m in matrices:
        c = fan_in_per_source(m, rows)
        c = c[c > 0]
        w = synapse_list_words(c, weight_bits, ib, limits)
        axons += len(c)
        words += int(w.sum())
        worst = max(worst, int(w.max(initial=0)))
    return axons, words, worst


def output_axons(matrix: sp.csr_matrix, target_core_of: np.ndarray, num_sources: int) -> np.ndarray:
    """Per source neuron: number of distinct target cores it projects to through
    `matrix` (n_target, n_source), given the core index of every target neuron."""
    coo = matrix.tocoo()
    pairs = np.unique(coo.col.astype(np.int64) * (int(target_core_of.max()) + 1)
                      + target_core_of[coo.row])
    cols = pairs // (int(target_core_of.max()) + 1)
    return np.bincount(cols, minlength=num_sources)
