"""The integer network a chip runs: layers of compartments and the synapses between them.

This is what the mapper produces from the float IR and what both the Lava
builder and the reference simulator consume, so both run the very same numbers.
Neurons of a layer are indexed flat in Keras HWC order.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from hwmodel import formats
from hwmodel.errors import NetworkError

INPUT_MODES = ("bias", "spikes")
RESET_MODES = ("hard", "soft")


@dataclass
class IntLayer:
    """One layer of integer LIF neurons.

    vth: threshold mantissa (17 bit, unsigned); a neuron spikes when v > vth << 6.
    bias_mant: (n,) int, 13-bit signed; bias_exp: 0..7; the bias added to v each
    step is bias_mant << bias_exp.  du, dv: 12-bit decays (du=4095 clears u every
    step).  reset: 'hard' (v <- 0) or 'soft' (v <- v - (vth << 6)).
    An input layer (is_input) gets its bias per sample from input_bias() in
    'bias' mode; in 'spikes' mode it has no compartments and its spikes are given.
    """

    name: str
    shape: tuple
    vth: int
    bias_mant: np.ndarray
    bias_exp: int = 0
    du: int = 4095
    dv: int = 0
    reset: str = "hard"
    is_input: bool = False
    input_mode: str = "bias"
    input_gain: float = 0.0   # bias mantissa per unit of input (bias mode)

    @property
    def n(self) -> int:
        return int(np.prod(self.shape))

    @property
    def compartments_per_neuron(self) -> int:
        """Soft reset uses the two-compartment scheme: two compartments per neuron."""
        return 2 if self.reset == "soft" else 1

    def input_bias(self, x: np.ndarray) -> np.ndarray:
        """Bias mantissas (batch, n) int64 for input frames x (batch, *shape) in
        bias mode: round(x * input_gain).  Raises ValueError for an input whose
        mantissa does not fit the 13 bits (clipping it would silently change
        the input) or that is not finite."""
        x = np.asarray(x, dtype=np.float64).reshape(len(x), self.n)
        mant = np.round(x * self.input_gain)
        lo, hi = -formats.BIAS_MANT_MAX - 1, formats.BIAS_MANT_MAX
        bad = ~((mant >= lo) & (mant <= hi))      # also NaN
        if bad.any():
            i = np.argwhere(bad)[0]
            raise NetworkError(
                f"layer {self.name}: input {x[tuple(i)]:.4g} needs bias mantissa "
                f"{mant[tuple(i)]:.0f}, outside the {formats.BIAS_MANT_BITS}-bit {lo}..{hi}; "
                f"inputs must lie in [{lo / self.input_gain:.4g}, {hi / self.input_gain:.4g}] "
                f"(input gain {self.input_gain:.4g} mantissa units per input unit)")
        return mant.astype(np.int64)


@dataclass
class IntConnection:
    """Synapses from layer `source` to layer `target`.

    weights: csr (n_target, n_source) int, already on the grid Loihi stores
    (clipped to 8 bits and truncated to num_weight_bits for sign_mode), so Lava's
    clip/truncate leave them unchanged.  Each step a target receives
    (weights @ spikes) << weight_exp.  weight_exp: 0..7; mapper.quantize never
    emits a negative one and the Lava back-end rejects it (Loihi shifts each
    synapse before summing, Lava floors each block's sum: they would differ).
    sign_mode: hwmodel.formats.SIGN_MODES ('shared': both signs, each with a shared
    sign, so every weight keeps its full magnitude bits).
    """

    source: str
    target: str
    weights: sp.csr_matrix
    weight_exp: int = 0
    num_weight_bits: int = 8
    sign_mode: str = "mixed"


@dataclass
class IntNetwork:
    """Layers in topological order and the connections between them."""

    layers: dict = field(default_factory=dict)       # name -> IntLayer, topological order
    connections: list = field(default_factory=list)  # IntConnection
    input_layer: str = ""
    output_layer: str = ""

    def incoming(self, name: str) -> list:
        return [c for c in self.connections if c.target == name]

