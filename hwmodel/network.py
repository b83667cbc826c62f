"""The integer network a chip runs: layers of compartments and the synapses between them.

This is what the mapper produces from the float IR and what both the Lava
builder and the reference simulator consume, so both run the very same numbers.
Neurons of a layer are indexed flat in Keras HWC order.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from hwmodel import formats
from hwmodel.errors import NetworkError

INPUT_MODES = ("bias", "spikes", "bias_mant")
RESET_MODES = ("hard", "soft")


@dataclass
class IntLayer:
    """One layer of integer LIF neurons.

    vth: threshold mantissa (17 bit, unsigned); a neuron spikes when v > vth << 6.
    bias_mant: (n,) int, 13-bit signed; bias_exp: 0..7; the bias added to v each
    step is bias_mant << bias_exp.  du, dv: 12-bit decays (du=4095 clears u every
    step).  reset: 'hard' (v <- 0) or 'soft' (v <- v - (vth << 6)).
    reset_interval, reset_offset: periodic state reset as Lava's LIFReset does
    it (lava-dl's netx resets between samples this way): at time step t
    (counted from 1) with t % reset_interval == reset_offset, u and v are
    zeroed before the step's synaptic input is integrated; 0 = never.
    v_init: (n,) int, the voltage v of each neuron before the first step, in
    v units (weight units << 6, as Lava's v and vth << 6; 24-bit signed:
    -(2**23 - 1)..2**23 - 1), or None for 0 (Lava LIF's `v` initial value); a
    periodic reset zeroes it like the rest of the state.
    An input layer (is_input) gets its bias per sample from input_bias() in
    'bias' mode (frames in [0, 1] times input_gain) or 'bias_mant' mode (the
    frames are the integer bias mantissas, as netx's input block takes them);
    in 'spikes' mode it has no compartments and its spikes are given.
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
    reset_interval: int = 0   # steps between periodic resets; 0: never
    reset_offset: int = 0     # reset at steps t with t % reset_interval == reset_offset
    v_init: np.ndarray | None = None   # initial v per neuron (v units); None: 0

    @property
    def n(self) -> int:
        return int(np.prod(self.shape))

    @property
    def compartments_per_neuron(self) -> int:
        """Soft reset uses the two-compartment scheme: two compartments per neuron."""
        return 2 if self.reset == "soft" else 1

    def input_bias(self, x: np.ndarray) -> np.ndarray:
        """Bias mantissas (batch, n) int64 for input frames x (batch, *shape):
        round(x * input_gain) in bias mode, x itself in bias_mant mode.  Raises
        ValueError for an input whose mantissa does not fit the 13 bits
        (clipping it would silently change the input), that is not finite, or
        (bias_mant mode) that is not an integer."""
        x = np.asarray(x, dtype=np.float64).reshape(len(x), self.n)
        if self.input_mode == "bias_mant":
            fraction = x[np.isfinite(x) & (x != np.round(x))]
            if fraction.size:
                raise NetworkError(f"layer {self.name}: input {fraction[0]:.4g} is not an "
                                   f"integer; in bias_mant mode inputs are bias mantissas")
            return self._mantissa_check(x, x)
        return self._mantissa_check(x, np.round(x * self.input_gain))

    def _mantissa_check(self, x: np.ndarray, mant: np.ndarray) -> np.ndarray:
        """mant as int64, or NetworkError naming the first input x whose mantissa
        lies outside 13 bits (or is NaN)."""
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
class IntWindow:
    """The synapses of a connection as a 2-D window operation over its (H, W, C)
    source, which hwmodel.simulator computes as a convolution.

    kernel: (kh, kw, C, k) int, the very integers of the connection's weights.
    depthwise False: source channel ci reaches the target's k channels through
    kernel[:, :, ci, :]; True: it reaches target channels first + ci * k + m
    through kernel[:, :, ci, m].  strides (sy, sx); origin (top, left);
    dilation (dy, dx): output pixel (oy, ox) sees source pixels (oy * sy - top +
    ky * dy, ox * sx - left + kx * dx), those outside the source being zeros.
    source_shape, target_shape: (H, W, C) of the two layers (what matrix()
    needs; () where unknown).
    """

    kernel: np.ndarray
    strides: tuple
    origin: tuple
    depthwise: bool = False
    first: int = 0
    dilation: tuple = (1, 1)
    source_shape: tuple = ()
    target_shape: tuple = ()

    def _reach(self, axis: int) -> np.ndarray:
        """Bool (outputs, kernel taps) along a spatial axis: tap k of output o
        reads a source pixel (not padding)."""
        n_in, n_out, k = self.source_shape[axis], self.target_shape[axis], self.kernel.shape[axis]
        i = (np.arange(n_out)[:, None] * self.strides[axis] - self.origin[axis]
             + np.arange(k)[None, :] * self.dilation[axis])
        return (i >= 0) & (i < n_in)

    def _channel_kernel(self, kernel: np.ndarray) -> np.ndarray:
        """(kh, kw, C_in or 1, C_target) view of a kernel-shaped array: the weight
        from source channel ci (axis 2; depthwise: its own one) to every target channel."""
        if not self.depthwise:
            return kernel
        kh, kw, c, k = kernel.shape
        out = np.zeros((kh, kw, 1, self.target_shape[2]), kernel.dtype)
        out[:, :, 0, self.first:self.first + c * k] = kernel.reshape(kh, kw, c * k)
        return out

    def row_sums(self, kernel: np.ndarray) -> np.ndarray:
        """Per target neuron (flat HWC) the sum of `kernel` (shaped like
        self.kernel, e.g. its positive part) over that neuron's synapses."""
        per_tap = self._channel_kernel(kernel).sum(axis=2)            # (kh, kw, C_target)
        return np.einsum("ya,xb,abc->yxc", self._reach(0).astype(np.float64),
                         self._reach(1).astype(np.float64), per_tap).ravel()

    def tap_counts(self) -> np.ndarray:
        """(kh, kw): synapses each kernel tap of one (source channel, target
        channel) pair makes, counting the positions where it reads a source pixel."""
        return np.outer(self._reach(0).sum(axis=0), self._reach(1).sum(axis=0))

    @property
    def num_synapses(self) -> int:
        """Synapses with a non-zero weight."""
        nz = (self.kernel != 0).sum(axis=3 if self.depthwise else (2, 3))
        per_tap = nz if self.depthwise else nz[:, :, None]
        return int((self.tap_counts()[:, :, None] * per_tap).sum())

    def matrix(self, targets=None) -> sp.csr_matrix:
        """The synapses as csr (len(targets), n_source) int64, rows for the
        target neurons `targets` (flat HWC indices; default all), zero weights
        left out: one core's block at a time instead of the whole matrix."""
        h, w, c = self.source_shape
        ho, wo, co_n = self.target_shape
        t = np.arange(ho * wo * co_n) if targets is None else np.asarray(targets, np.int64)
        oy, ox, co = t // (wo * co_n), t // co_n % wo, t % co_n
        kh, kw, kc, k = self.kernel.shape
        (sy, sx), (top, left), (dy, dx) = self.strides, self.origin, self.dilation
        ky, kx = (g.ravel() for g in np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij"))
        iy = oy[:, None] * sy - top + ky[None, :] * dy                  # (T, taps)
        ix = ox[:, None] * sx - left + kx[None, :] * dx
        inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
        if self.depthwise:
            rel = co - self.first
            ci = np.clip(rel // k, 0, kc - 1)[:, None, None]
            weight = self.kernel[ky[None, :, None], kx[None, :, None], ci, (rel % k)[:, None, None]]
            inside = (inside & ((rel >= 0) & (rel < kc * k))[:, None])[:, :, None]
        else:
            ci = np.arange(kc)[None, None, :]
            weight = self.kernel[ky[None, :, None], kx[None, :, None], ci, co[:, None, None]]
            inside = inside[:, :, None]
        col = (iy * w + ix)[:, :, None] * c + ci
        keep = np.broadcast_to(inside, weight.shape) & (weight != 0)
        rows = np.broadcast_to(np.arange(len(t))[:, None, None], weight.shape)
        return sp.csr_matrix((weight[keep].astype(np.int64),
                              (rows[keep], np.broadcast_to(col, weight.shape)[keep])),
                             shape=(len(t), h * w * c))


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
    delays: None (every synapse delivers on the next step) or csr (n_target,
    n_source) int: the per-synapse delay in time steps, 0..synapse_format.
    DELAY_MAX, non-zero only where weights is; a spike of step t reaches the
    target's u at step t + 1 + delay (Lava's DelaySparse).  A connection with
    delays has no window.
    weights is None where a window with both shapes holds the synapses
    (mapper.quantize keeps convolutions as kernels): matrix() and rows() build
    them from it.
    """

    source: str
    target: str
    weights: sp.csr_matrix | None
    weight_exp: int = 0
    num_weight_bits: int = 8
    sign_mode: str = "mixed"
    window: IntWindow | None = None   # the same synapses as a window operation, if they are one
    delays: sp.csr_matrix | None = None

    def matrix(self) -> sp.csr_matrix:
        """The synapse matrix (n_target, n_source), csr int."""
        return self.weights if self.weights is not None else self.window.matrix()

    def rows(self, targets) -> sp.csr_matrix:
        """The synapses into the target neurons `targets` (flat indices), csr
        (len(targets), n_source): from the window without building the whole matrix."""
        if self.weights is not None:
            return sp.csr_matrix(self.weights)[np.asarray(targets, np.int64)]
        return self.window.matrix(targets)

    @property
    def num_synapses(self) -> int:
        """Stored synapses (non-zero weights)."""
        if self.weights is not None:
            return int(sp.csr_matrix(self.weights).count_nonzero())
        return self.window.num_synapses

    @property
    def max_delay(self) -> int:
        """The largest synaptic delay in time steps (0 without delays)."""
        d = self.delays
        return 0 if d is None or d.nnz == 0 else int(d.data.max())

    def delay_parts(self) -> list:
        """[(delay, csr weights of the synapses with that delay)] for every
        delay present, ascending; [(0, weights)] without delays."""
        w = sp.csr_matrix(self.matrix())
        if not self.max_delay:
            return [(0, w)]
        d = sp.csr_matrix(self.delays)
        dense_d = d.multiply(w != 0).tocsr()          # delays of the stored synapses
        per_synapse = np.asarray(dense_d[w.nonzero()]).ravel()
        rows, cols = w.nonzero()
        values = np.asarray(w[rows, cols]).ravel()
        parts = []
        for k in np.unique(per_synapse):
            sel = per_synapse == k
            parts.append((int(k), sp.csr_matrix((values[sel], (rows[sel], cols[sel])),
                                                shape=w.shape, dtype=w.dtype)))
        return parts


@dataclass
class IntNetwork:
    """Layers in topological order and the connections between them."""

    layers: dict = field(default_factory=dict)       # name -> IntLayer, topological order
    connections: list = field(default_factory=list)  # IntConnection
    input_layer: str = ""
    output_layer: str = ""

    def incoming(self, name: str) -> list:
        return [c for c in self.connections if c.target == name]

    def with_matrices(self) -> "IntNetwork":
        """The same network with every connection's synapses as a matrix and no
        window: the reference simulator then computes each product as a sparse
        matrix product (the check, and the speed baseline, of its convolutions)."""
        return replace(self, connections=[replace(c, weights=c.matrix(), window=None)
                                          for c in self.connections])

