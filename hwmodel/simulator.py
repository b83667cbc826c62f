"""Reference simulator: batched numpy integer dynamics, bit-exact with Lava's
fixed-point LIF / Dense / Sparse models (Loihi2SimCfg(select_tag='fixed_pt')).

Per step t, for every layer in topological order:
  a_in(t) = sum over incoming connections of shift(W @ s_source(t-1), weight_exp)
            (one step of delay per synaptic hop, as every Lava connection buffers)
  u <- decay(u, du + 1) + (a_in << 6), wrapped to 24 bit
  v <- decay(v, dv) + u + (bias_mant << bias_exp), clipped to 24 bit
  s <- v > (vth << 6);  hard reset: v <- 0;  soft reset: v <- v - (vth << 6)
with u and v zeroed first at the steps of a layer's periodic reset (Lava's
LIFReset: step t + 1 with (t + 1) % reset_interval == reset_offset).
All samples of a batch run at once, as independent networks; state is
batch-major, (batch, neurons in flat HWC order).

A connection with per-synapse delays (IntConnection.delays) is one product
with its matrix stacked by delay; the part of delay d joins a ring buffer
(a delay line) that delivers it d steps later: a_in(t) = sum_d W_d @ s(t-1-d),
exactly Lava's DelaySparse (its a_buff).

Synaptic products are float matrix products, exact because every partial sum is
an integer below 2**24 in float32 (float64 where a row's weights could exceed
that): a connection with a window (IntConnection.window) is computed as a
convolution of its kernel over the source's spike maps (one product of every
window's patch with the kernel, or an elementwise product per tap for
per-channel kernels), a dense-enough matrix as a dense product, any other one as a sparse
product.  Neuron state is held in floats too, exactly (_LayerState).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hwmodel import formats
from hwmodel.backend import Backend, Progress, RunOutput
from hwmodel.network import IntConnection, IntLayer, IntNetwork
from hwmodel.partition import Partition

FLOAT32_EXACT = 2 ** 24      # float32 holds every integer below this exactly
DENSE_FRACTION = 0.05        # a matrix with at least this fraction of non-zeros is used dense
DENSE_MAX_ELEMENTS = 2 ** 25  # ... if it has at most this many entries
CHUNK_BYTES = 2 ** 26        # state of the samples simulated at once (about half the L3 cache)
STATE_BYTES_PER_NEURON = 26  # u, v, input, float and bool spikes, count: float32 / int32


class _LayerState:
    """u, v (batch, n) and the bias (1, n) or (batch, n) of one layer.

    The integers are held as floats, exactly: float32 for a layer whose u is
    cleared every step (du = 4095), whose v does not leak (dv = 0) and whose
    largest input `peak_input` (u units) is below 2**24 (u, v and their sums
    then stay integers float32 holds, and a sum beyond 2**24 is clipped to the
    24-bit range anyway); float64 (exact below 2**53) otherwise.  du = 4095
    clears u every step (decay by 4096 is 0) and dv = 0 leaves v as it is: both
    are skipped, with identical results."""

    def __init__(self, layer: IntLayer, batch: int, bias_mant: np.ndarray, peak_input: float):
        self.layer = layer
        self.clears_u = layer.du + 1 >= formats.DECAY_UNITY
        simple = self.clears_u and not layer.dv and peak_input < FLOAT32_EXACT
        self.dtype = np.float32 if simple else np.float64
        self.u = np.zeros((batch, layer.n), self.dtype)
        self.v = np.zeros((batch, layer.n), self.dtype)
        bias = np.asarray(bias_mant, np.int64)
        bias = np.left_shift(bias if bias.ndim == 2 else bias[None], layer.bias_exp)
        self.bias = bias.astype(self.dtype) if bias.any() else None
        self.vth = self.dtype(int(layer.vth) << formats.THRESHOLD_SHIFT)

    def reset_if_due(self, t: int) -> None:
        """The periodic reset (IntLayer.reset_interval) before step t (from 0)."""
        lay = self.layer
        if lay.reset_interval and (t + 1) % lay.reset_interval == lay.reset_offset:
            self.u[:] = 0
            self.v[:] = 0

    def step(self, a_in: np.ndarray | None) -> np.ndarray:
        """One time step with synaptic input a_in (batch, n) in u units (already
        << 6; this layer's dtype, consumed), None for none; returns the spikes
        (batch, n) bool."""
        lay = self.layer
        if a_in is not None or not self.clears_u:
            u = np.zeros_like(self.u) if a_in is None else a_in
            if not self.clears_u:
                u += formats.decay(self.u, lay.du + 1)
            if u.size and (u.max() > formats.STATE_MAX or u.min() <= -formats.STATE_MAX):
                u = formats.wrap_current(u)
            self.u = u
        v = self.v
        if lay.dv:
            v = self.v = formats.decay(v, lay.dv)
        v += self.u
        if self.bias is not None:
            v += self.bias
        formats.clip_voltage(v, out=v)
        s = v > self.vth
        if lay.reset == "hard":
            np.copyto(v, 0, where=s)
        else:
            np.subtract(v, self.vth, out=v, where=s)
        return s


def _float_type(worst: float):
    return np.float32 if worst < FLOAT32_EXACT else np.float64


class _Synapses:
    """One connection's product: input(spikes (batch, n_source) float) ->
    (batch, n_target) float, exact integers before the weight exponent."""

    def __init__(self, conn: IntConnection, source: IntLayer, target: IntLayer):
        self.conn, self.n_target = conn, target.n
        win = self.window = conn.window
        if win is not None:     # a row sums at most one output channel's whole kernel
            per_channel = np.abs(win.kernel).sum(axis=(0, 1) if win.depthwise else (0, 1, 2))
            worst = float(np.max(per_channel, initial=0))
        else:
            w = conn.matrix().tocsr()
            worst = float(np.max(np.asarray(abs(w).sum(axis=1)).ravel(), initial=0))
        self.peak = worst * 2.0 ** (conn.weight_exp + formats.ACTIVATION_SHIFT)
        self.dtype = _float_type(worst)
        self.delays = None          # the delays present (steps), with the matrix stacked by delay
        if conn.max_delay:
            parts = conn.delay_parts()
            self.delays = np.array([d for d, _ in parts], np.int64)
            w = sp.vstack([m for _, m in parts], format="csr")    # (delays * n_target, n_source)
        if win is not None:
            self.kernel = np.asarray(win.kernel, self.dtype)
            self.source_shape, self.target_shape = tuple(source.shape), tuple(target.shape)
        elif w.nnz >= DENSE_FRACTION * w.shape[0] * w.shape[1] \
                and w.shape[0] * w.shape[1] <= DENSE_MAX_ELEMENTS:
            self.dense = np.ascontiguousarray(w.T.toarray(), self.dtype)
        else:
            self.dense = None
            self.matrix = w.astype(self.dtype)
        # a negative exponent floors the sum (an arithmetic right shift) before the << 6
        self.floor = self.dtype(2.0 ** conn.weight_exp) if conn.weight_exp < 0 else None
        self.scale = self.dtype(2.0 ** (max(conn.weight_exp, 0) + formats.ACTIVATION_SHIFT))
        self.padded = None              # the zero-padded spike maps of _convolve

    def ring(self, batch: int) -> np.ndarray | None:
        """The delay line of a batch: (max delay + 1, batch, n_target) zeros, slot
        t % (max delay + 1) holding the input due at step t; None without delays."""
        if self.delays is None:
            return None
        return np.zeros((int(self.delays[-1]) + 1, batch, self.n_target), self.dtype)

    def deliver(self, spikes: np.ndarray, t: int, ring: np.ndarray | None) -> np.ndarray:
        """Synaptic input at step t (batch, n_target) from the previous step's
        spikes: input() itself without delays; with delays, the part of every
        delay d is added to the ring slot of step t + d and slot t is taken out
        (a_in(t) = sum_d W_d @ s(t - 1 - d), as Lava's DelaySparse)."""
        acc = self.input(spikes)
        if ring is None:
            return acc
        slots = (t + self.delays) % len(ring)
        ring[slots] += acc.reshape(len(spikes), len(self.delays), -1).transpose(1, 0, 2)
        now = t % len(ring)
        out = ring[now].copy()
        ring[now] = 0
        return out

    def input(self, spikes: np.ndarray) -> np.ndarray:
        """Synaptic input (batch, n_target) in u units (<< weight_exp << 6): the
        float product scaled by a power of two, which stays exact.  With delays
        (batch, delays * n_target): one block per delay present, ascending."""
        if self.window is not None:
            acc = self._convolve(spikes).reshape(len(spikes), -1)
        elif self.dense is not None:
            acc = spikes @ self.dense
        else:
            acc = (self.matrix @ spikes.T).T
        if self.floor is not None:
            acc *= self.floor
            np.floor(acc, out=acc)
        acc *= self.scale
        return acc

    def _convolve(self, spikes: np.ndarray) -> np.ndarray:
        """The window operation over the zero-padded spike maps: a full kernel
        as one product of every window's (kh, kw, C) patch with the kernel
        (im2col), a per-channel one as an elementwise product per tap."""
        win, (h, w, c) = self.window, self.source_shape
        ho, wo, co = self.target_shape
        kh, kw = self.kernel.shape[:2]
        (sy, sx), (top, left), (dy, dx) = win.strides, win.origin, win.dilation
        batch = len(spikes)
        if self.padded is None or len(self.padded) != batch:
            rows = (ho - 1) * sy + (kh - 1) * dy + 1       # the extent the windows read
            cols = (wo - 1) * sx + (kw - 1) * dx + 1
            self.padded = np.zeros((batch, max(rows, top + h), max(cols, left + w), c), self.dtype)
        x = self.padded
        x[:, top:top + h, left:left + w] = spikes.reshape(batch, h, w, c)
        sb, sh, sw, sc = x.strides
        patches = np.lib.stride_tricks.as_strided(
            x, (batch, ho, wo, kh, kw, c), (sb, sh * sy, sw * sx, sh * dy, sw * dx, sc),
            writeable=False)
        if not win.depthwise:
            return patches.reshape(-1, kh * kw * c) @ self.kernel.reshape(kh * kw * c, co)
        k = self.kernel.shape[3]
        out = np.zeros((batch, ho, wo, co), self.dtype)
        part = out[..., win.first:win.first + c * k].reshape(batch, ho, wo, c, k)
        product = np.empty(part.shape, self.dtype)
        for ky in range(kh):
            for kx in range(kw):
                np.multiply(patches[:, :, :, ky, kx, :, None], self.kernel[ky, kx], out=product)
                part += product
        return out.reshape(batch, -1)


def simulate(net: IntNetwork, x: np.ndarray, num_steps: int, record=(),
             progress: bool = True) -> RunOutput:
    """Run a batch through the integer network.

    x: (batch, *input_shape) frames (bias input mode) or (batch, num_steps,
    *input_shape) 0/1 spikes (spike input mode).  record: names of layers whose
    spike trains to return.  progress: show a progress bar on stderr if the run
    takes more than 2 s.  The batch runs in chunks whose state fits CHUNK_BYTES
    (the samples are independent; a cache-sized chunk makes the elementwise
    passes of a step faster than one large batch).
    """
    x = np.asarray(x)
    inp = net.layers[net.input_layer]
    synapses = [_Synapses(c, net.layers[c.source], net.layers[c.target])
                for c in net.connections if not (c.target == inp.name and inp.input_mode == "spikes")]
    peak = {name: 0.0 for name in net.layers}
    for syn in synapses:
        peak[syn.conn.target] += syn.peak
    per_sample = STATE_BYTES_PER_NEURON * sum(layer.n for layer in net.layers.values())
    chunk = max(1, min(len(x), CHUNK_BYTES // per_sample))
    bar = Progress(num_steps * len(x), f"simulating {len(x)} samples", unit="sample-steps") \
        if progress else None
    parts = [_simulate_chunk(net, synapses, peak, x[i:i + chunk], num_steps, record, bar,
                             i * num_steps) for i in range(0, len(x), chunk)]
    if len(parts) == 1:
        return parts[0]
    return RunOutput(counts={k: np.concatenate([p.counts[k] for p in parts]) for k in parts[0].counts},
                     trains={k: np.concatenate([p.trains[k] for p in parts]) for k in parts[0].trains},
                     voltages={k: np.concatenate([p.voltages[k] for p in parts])
                               for k in parts[0].voltages})


def _simulate_chunk(net: IntNetwork, synapses: list, peak: dict, x: np.ndarray, num_steps: int,
                    record, bar: Progress | None, done: int) -> RunOutput:
    """simulate() for one chunk of the batch; peak: each layer's largest input
    (u units); done: sample-steps before this chunk (for the progress bar)."""
    batch = len(x)
    inp = net.layers[net.input_layer]
    states = {}
    for name, layer in net.layers.items():
        if layer.is_input and layer.input_mode == "spikes":
            continue
        bias = layer.input_bias(x) if layer.is_input else layer.bias_mant
        states[name] = _LayerState(layer, batch, bias, peak[name])
    spikes = {name: np.zeros((batch, l.n), bool) for name, l in net.layers.items()}
    counts = {name: np.zeros((batch, l.n), np.int32) for name, l in net.layers.items()}
    out = RunOutput(trains={n: np.zeros((batch, num_steps, net.layers[n].n), bool) for n in record})
    if inp.input_mode == "spikes":
        x_spikes = x.reshape(batch, x.shape[1], inp.n).astype(bool)
    rings = [syn.ring(batch) for syn in synapses]
    for t in range(num_steps):
        # Connections deliver what they accumulated from the previous step's spikes.
        a_in = dict.fromkeys(states)
        as_float = {}
        for syn, ring in zip(synapses, rings):
            key = (syn.conn.source, syn.dtype)
            if key not in as_float:
                as_float[key] = spikes[syn.conn.source].astype(syn.dtype)
            a = syn.deliver(as_float[key], t, ring)
            target = syn.conn.target
            if a_in[target] is None:
                a_in[target] = a.astype(states[target].dtype, copy=False)
            else:
                a_in[target] += a
        for name in net.layers:
            if name in states:
                states[name].reset_if_due(t)
                spikes[name] = states[name].step(a_in[name])
            else:
                spikes[name] = x_spikes[:, t]
            counts[name] += spikes[name]
            if name in out.trains:
                out.trains[name][:, t] = spikes[name]
        if bar:
            bar.update(done + (t + 1) * batch)
    out.counts = {name: c.astype(np.int64) for name, c in counts.items()}
    out.voltages[net.output_layer] = states[net.output_layer].v.astype(np.int64)
    return out


def run_reference(net: IntNetwork, partition: Partition, x: np.ndarray, num_steps: int,
                  record=()) -> RunOutput:
    """backend='reference': simulate (the partition does not change the dynamics)."""
    return simulate(net, x, num_steps, record=record)


BACKEND = Backend("reference", run_reference)
