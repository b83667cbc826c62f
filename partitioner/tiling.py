"""Rectangular tilings of a layer: the search's candidate splits.

A tiling cuts every axis of the layer's shape (H, W, C) or (n,) into blocks of
one size (the last block of an axis may be shorter); each block is one core.
Blocks are numbered in row-major block order, and a core's neurons are the
flat (Keras HWC) indices of its block, ascending, so a neuron's local index on
its core is its row-major rank inside the block.
"""
from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np


def useful_block_sizes(n: int) -> list:
    """Every block size that gives a different number of blocks along an axis of
    length n, the smallest one for each count: ceil(n / s) for s = 1..n."""
    return sorted({-(-n // s) for s in range(1, n + 1)}, reverse=True)


@dataclass(frozen=True)
class Tiling:
    """A layer shape cut into blocks of `block` (one int per axis)."""

    shape: tuple
    block: tuple

    @property
    def counts(self) -> tuple:
        """Blocks per axis."""
        return tuple(-(-n // b) for n, b in zip(self.shape, self.block))

    @property
    def num_cores(self) -> int:
        return math.prod(self.counts)

    @property
    def split(self) -> str:
        """'4x4x2 blocks of 8x8x16' style description."""
        return f"{'x'.join(map(str, self.counts))} blocks of {'x'.join(map(str, self.block))}"

    def axis_block(self, axis: int) -> np.ndarray:
        """Block index of every coordinate along an axis."""
        return np.arange(self.shape[axis]) // self.block[axis]

    def axis_range(self, axis: int, j: int) -> tuple:
        """[start, stop) of block j along an axis."""
        b = self.block[axis]
        return j * b, min((j + 1) * b, self.shape[axis])

    def block_index(self, core: int) -> tuple:
        """Per-axis block indices of a core."""
        return tuple(int(v) for v in np.unravel_index(core, self.counts))

    def block_shape(self, core: int) -> tuple:
        return tuple(stop - start for start, stop in
                     (self.axis_range(a, j) for a, j in enumerate(self.block_index(core))))

    @cached_property
    def core_of(self) -> np.ndarray:
        """Core index of every neuron, flat order (int64)."""
        grids = np.meshgrid(*[self.axis_block(a) for a in range(len(self.shape))], indexing="ij")
        return np.ravel_multi_index([g.ravel() for g in grids], self.counts).astype(np.int64)

    @cached_property
    def local_of(self) -> np.ndarray:
        """Local index (rank on its core) of every neuron, flat order."""
        order = np.argsort(self.core_of, kind="stable")
        local = np.empty_like(order)
        sizes = np.bincount(self.core_of, minlength=self.num_cores)
        local[order] = np.arange(len(order)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        return local

    @cached_property
    def sizes(self) -> np.ndarray:
        """Neurons per core (int64): the product of its block's lengths, without
        core_of."""
        lengths = [np.diff(np.minimum(np.arange(c + 1) * b, n))
                   for n, b, c in zip(self.shape, self.block, self.counts)]
        return functools.reduce(np.multiply.outer, lengths).ravel().astype(np.int64)

    def release(self) -> None:
        """Drop the cached neuron maps (core_of, local_of, sizes); they are rebuilt
        when asked for again."""
        for attr in ("core_of", "local_of", "sizes"):
            self.__dict__.pop(attr, None)

    def neurons(self) -> list:
        """Sorted flat neuron indices of every core."""
        order = np.argsort(self.core_of, kind="stable")
        return np.split(order.astype(np.int64), np.cumsum(self.sizes)[:-1])


def candidate_tilings(shape: tuple, compartments_per_neuron: int, max_compartments: int) -> list:
    """All tilings from useful block sizes whose blocks fit the compartment limit,
    ordered by number of cores, then by largest block first."""
    sizes = [useful_block_sizes(n) for n in shape]
    out = []
    for block in itertools.product(*sizes):
        if math.prod(block) * compartments_per_neuron <= max_compartments:
            out.append(Tiling(tuple(shape), tuple(block)))
    out.sort(key=lambda t: (t.num_cores, -math.prod(t.block), t.block))
    return out
