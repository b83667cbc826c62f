"""Reference simulator: batched numpy integer dynamics, bit-exact with Lava's
fixed-point LIF / Dense / Sparse models (Loihi2SimCfg(select_tag='fixed_pt')).

Per step t, for every layer in topological order:
  a_in(t) = sum over incoming connections of shift(W @ s_source(t-1), weight_exp)
            (one step of delay per synaptic hop, as every Lava connection buffers)
  (v starts at the layer's v_init, u at 0)
  u <- decay(u, du + 1) + (a_in << 6), wrapped to 24 bit
  v <- decay(v, dv) + u + (bias_mant << bias_exp), clipped to 24 bit
  s <- v > (vth << 6);  hard reset: v <- 0;  soft reset: v <- v - (vth << 6)
with u and v zeroed first at the steps of a layer's periodic reset (Lava's
LIFReset: step t + 1 with (t + 1) % reset_interval == reset_offset).
All samples of a batch run at once, as independent networks.

Time blocks: a_in(t) depends only on spikes of steps before t, so the network
runs in blocks of steps: for a block t0 .. t0 + k - 1, layer by layer in
topological order, one product computes a layer's input for all k steps at once
(over k * batch frames, from its sources' spikes of steps t0 - 1 .. t0 + k - 2),
then the neuron update runs through the k steps.  Each layer keeps its spikes
of the block and of the steps before it that its connections still read (a
spike history, time-major: (steps, batch, neurons in flat HWC order)).  A
connection with per-synapse delays (IntConnection.delays) is one product per
delay d present, reading the history d steps further back: a_in(t) =
sum_d W_d @ s(t-1-d), exactly Lava's DelaySparse.  A connection whose source is
not before its target (a recurrent one, delay d) limits blocks to d + 1 steps.

Synaptic products are float matrix products, exact because every partial sum is
an integer below 2**24 in float32 (float64 where a row's weights could exceed
that) scaled by a power of two: a connection with a window (IntConnection.window)
is computed as a convolution of its kernel over the source's spike maps:
spike by spike where that costs less (_window_events: each spike adds the
kernel taps it reaches, compiled by numba; EVENT_NS, DENSE_NS estimate the
costs from the spikes of each product), else one product of every window's
patch with the kernel, the patches laid out frames last where a patch row
holds few values, or for per-channel kernels an elementwise product per tap,
over whole rows of outputs at once where the column stride and the multiplier
are 1 and the window reaches all target channels.  A
dense-enough matrix is used as a dense product, any other one as a sparse
product.  Neuron state is held in floats too, exactly
(_LayerState); the neuron update is one loop compiled by numba
(_neuron_steps), through the Loihi semantics of hwmodel.formats (decay,
wrap_current, clip_voltage).
"""
from __future__ import annotations

import concurrent.futures
import os
import threading

import numba
import numpy as np
import scipy.sparse as sp
import threadpoolctl

from hwmodel import formats
from hwmodel.backend import Backend, Progress, RunOutput
from hwmodel.errors import NetworkError
from hwmodel.network import IntConnection, IntLayer, IntNetwork
from hwmodel.partition import Partition

FLOAT32_EXACT = 2 ** 24      # float32 holds every integer below this exactly
DENSE_FRACTION = 0.05        # a matrix with at least this fraction of non-zeros is used dense
DENSE_MAX_ELEMENTS = 2 ** 25  # ... if it has at most this many entries
CHUNK_BYTES = 2 ** 26        # neuron state of the samples simulated at once (about twice the L3 cache)
STATE_BYTES_PER_NEURON = 28  # v, bias (float32 or float64), spike count (int32); u (float64) where kept
BLOCK_BYTES = 2 ** 27        # spike histories and one layer's input for a block of steps
THREADS = os.cpu_count() or 1   # chunks simulated at once (numpy's and numba's loops, scipy's sparse
                                # products and BLAS release the GIL)
PRODUCT_BYTES = 2 ** 22      # temporaries of one product (padded maps, patches) at a time
SHORT_RUN = 64               # values per patch row (kw * C) below which patches are built frames last
# Costs (ns, measured on 2 cores of an AMD EPYC) that choose how a window is computed (the
# result is the same): events, per source neuron scanned, per kernel tap a spike visits, per
# tap that reaches an output, per add; dense, per multiply-add of a matrix product, per
# patch value copied, per multiply-add of a per-channel window (elementwise)
EVENT_NS = (0.5, 2.0, 5.0, 0.15)
DENSE_NS = (0.02, 0.3, 0.7)


class _LayerState:
    """u, v (batch, n) and the bias (1, n) or (batch, n) of one layer.

    The integers are held as floats, exactly: float32 for a layer whose u is
    cleared every step (du = 4095), whose v does not leak (dv = 0) and whose
    largest input `peak_input` (u units) is below 2**24, float64 (exact below
    2**53) otherwise; u (float64) only where it is not cleared every step.
    In float32, |v| <= 2**23 - 1 plus an input wrapped to |u| <= 2**23 is
    exact, and a sum the bias then takes beyond 2**24 (where float32 rounds) is
    clipped to 2**23 - 1 anyway."""

    def __init__(self, layer: IntLayer, batch: int, bias_mant: np.ndarray, peak_input: float):
        self.layer = layer
        clears_u = layer.du + 1 >= formats.DECAY_UNITY
        self.dtype = np.float32 if clears_u and not layer.dv and peak_input < FLOAT32_EXACT \
            else np.float64
        self.u = np.zeros((batch, layer.n) if not clears_u else (0, 0), np.float64)
        self.v = np.zeros((batch, layer.n), self.dtype)
        if layer.v_init is not None:
            self.v[:] = np.asarray(layer.v_init, self.dtype)
        bias = np.asarray(bias_mant, np.int64)
        self.bias = np.left_shift(bias if bias.ndim == 2 else bias[None], layer.bias_exp).astype(self.dtype)
        self.no_input = np.zeros((1, 1, layer.n), self.dtype)

    def reset_due(self, t: int) -> bool:
        """The periodic reset (IntLayer.reset_interval) before step t (from 0)."""
        lay = self.layer
        return bool(lay.reset_interval) and (t + 1) % lay.reset_interval == lay.reset_offset

    def run(self, a_in: np.ndarray | None, t0: int, spikes: np.ndarray) -> None:
        """Steps t0 .. t0 + k - 1 with synaptic input a_in (k, batch, n) in u
        units (already << 6; this layer's dtype), None for none; writes the
        spikes into `spikes` (k, batch, n) bool."""
        lay = self.layer
        resets = np.array([self.reset_due(t0 + j) for j in range(len(spikes))])
        _neuron_steps(self.no_input if a_in is None else a_in, self.u, self.v, self.bias,
                      lay.du + 1, lay.dv, self.dtype(int(lay.vth) << formats.THRESHOLD_SHIFT),
                      lay.reset == "soft", resets, spikes)


_decay = numba.njit(formats.decay)
_wrap_current = numba.njit(formats.wrap_current)
_clip_voltage = numba.njit(formats.clip_voltage)


@numba.njit(nogil=True)     # no cache: numba's would not see changes to hwmodel.formats
def _neuron_steps(a_in, u, v, bias, du, dv, vth, soft, resets, spikes):
    """The module docstring's neuron update for the steps of a block, in place:
    a_in (k or 1, batch or 1, n) u units (1: the same for all, e.g. zeros for
    no input); u (batch, n), empty where du >= 4096 clears it every step; v
    (batch, n); bias (1 or batch, n); du, dv: decays (12 bit, du with Lava's
    +1); vth in v units; resets (k,) bool: the periodic reset before that
    step; spikes (k, batch, n) bool, written."""
    k, batch, n = spikes.shape
    general = u.size > 0 or dv > 0
    for j in range(k):
        if resets[j]:
            v[:] = 0
            u[:] = 0
        a_j = a_in[min(j, a_in.shape[0] - 1)]
        for r in range(batch):
            a, b = a_j[min(r, a_j.shape[0] - 1)], bias[min(r, bias.shape[0] - 1)]
            v_r, s = v[r], spikes[j, r]
            if general:
                for i in range(n):
                    cur = np.float64(a[i])
                    if u.size:
                        cur += _decay(u[r, i], du)
                    cur = _wrap_current(cur)
                    if u.size:
                        u[r, i] = cur
                    x = _clip_voltage(_decay(np.float64(v_r[i]), dv) + cur + b[i])
                    fired = x > vth
                    s[i] = fired
                    v_r[i] = x - (vth if soft else x) * fired
            else:                   # u cleared every step, no leak: the loop vectorizes
                for i in range(n):
                    x = _clip_voltage(v_r[i] + _wrap_current(a[i]) + b[i])
                    fired = x > vth
                    s[i] = fired
                    v_r[i] = x - (vth if soft else x) * fired


def _float_type(worst: float):
    return np.float32 if worst < FLOAT32_EXACT else np.float64


class _Synapses:
    """One product of a connection: the synapses of one delay (all of them
    without delays), from the source's spike frames (frames, n_source) bool
    to the target's input (frames, n_target) in u units, exact."""

    def __init__(self, conn: IntConnection, source: IntLayer, target: IntLayer,
                 delay: int = 0, matrix: sp.csr_matrix | None = None):
        self.conn, self.delay, self.n_source, self.n_target = conn, delay, source.n, target.n
        win = self.window = conn.window if matrix is None else None
        if win is not None:     # a row sums at most one output channel's whole kernel
            per_channel = np.abs(win.kernel).sum(axis=(0, 1) if win.depthwise else (0, 1, 2))
            worst = float(np.max(per_channel, initial=0))
        else:
            w = (conn.matrix() if matrix is None else matrix).tocsr()
            worst = float(np.max(np.asarray(abs(w).sum(axis=1)).ravel(), initial=0))
        # |input| bound in u units; a negative exponent floors, so a negative sum
        # can reach -ceil(worst * 2**weight_exp)
        self.peak = float(np.ceil(worst * 2.0 ** conn.weight_exp)) * 2.0 ** formats.ACTIVATION_SHIFT
        self.dtype = _float_type(worst)
        # A non-negative exponent scales the weights (by a power of two: exact);
        # a negative one floors the sum (an arithmetic right shift) before the << 6.
        self.floor = self.dtype(2.0 ** conn.weight_exp) if conn.weight_exp < 0 else None
        scale = 2.0 ** (max(conn.weight_exp, 0) + formats.ACTIVATION_SHIFT)
        self.scale = self.dtype(scale) if self.floor is not None else None
        weights = (lambda m: m) if self.floor is not None else (lambda m: m * scale)
        self.dense = self.matrix = None
        if win is not None:
            self.kernel = np.asarray(weights(np.asarray(win.kernel, np.float64)), self.dtype)
            self.source_shape, self.target_shape = tuple(source.shape), tuple(target.shape)
            ho, wo, co = self.target_shape
            kh, kw = self.kernel.shape[:2]
            (sy, sx), (top, left), (dy, dx) = win.strides, win.origin, win.dilation
            h, w_, c = self.source_shape
            self.padded_shape = (max((ho - 1) * sy + (kh - 1) * dy + 1, top + h),
                                 max((wo - 1) * sx + (kw - 1) * dx + 1, left + w_), c)
            # a 1x1 window of stride 1 over the unpadded map: the patches are the frames
            self.pointwise = (not win.depthwise and (kh, kw, sy, sx, top, left) == (1, 1, 1, 1, 0, 0)
                              and (ho, wo) == (h, w_))
            # patches copied in runs of kw * C values are slow when that is short:
            # then the maps are laid out frames last, the patches copied in runs of frames
            self.frames_last = not win.depthwise and not self.pointwise and kw * c < SHORT_RUN
            # a per-channel window of column stride 1, multiplier 1, onto all target
            # channels: one tap over a row of outputs is one run of wo * C values
            self.row_runs = (win.depthwise and sx == 1 and self.kernel.shape[3] == 1
                             and (win.first, c) == (0, co))
            if self.row_runs:
                self.row_kernel = np.tile(self.kernel[:, :, :, 0], (1, 1, wo))    # (kh, kw, wo * C)
            # events: the output each source row (column) reaches through each kernel row (column)
            self.reached = (_reached(h, ho, kh, sy, top, dy), _reached(w_, wo, kw, sx, left, dx))
            # the estimated cost (EVENT_NS, DENSE_NS) of a frame: dense; events, without
            # spikes and per spike (its kernel taps, those that reach an output, their adds)
            synapses = ho * wo * co * kh * kw * (1 if win.depthwise else c)
            self.dense_ns = synapses * (DENSE_NS[2] if win.depthwise else DENSE_NS[0]) \
                + (0 if self.pointwise or win.depthwise else ho * wo * kh * kw * c * DENSE_NS[1])
            width = self.kernel.shape[3] if win.depthwise else co
            reaching = ho * wo * kh * kw / (h * w_)          # taps of a spike that reach an output
            self.event_ns = (h * w_ * c * EVENT_NS[0], kh * kw * EVENT_NS[1]
                             + reaching * (EVENT_NS[2] + width * EVENT_NS[3]))
            patch = ho * wo * kh * kw * c * np.dtype(self.dtype).itemsize
            per_frame = int(np.prod(self.padded_shape)) * np.dtype(self.dtype).itemsize + patch
        else:
            per_frame = (self.n_source + self.n_target) * np.dtype(self.dtype).itemsize
            if w.nnz >= DENSE_FRACTION * w.shape[0] * w.shape[1] \
                    and w.shape[0] * w.shape[1] <= DENSE_MAX_ELEMENTS:
                self.dense = np.ascontiguousarray(weights(w.T.toarray().astype(np.float64)), self.dtype)
            else:
                self.matrix = weights(w.astype(np.float64)).astype(self.dtype).tocsr()
        self.frames_at_once = max(1, PRODUCT_BYTES // per_frame)

    def add_to(self, frames: np.ndarray, acc: np.ndarray, fresh: bool) -> None:
        """acc (frames, n_target) += the input from frames (frames, n_source)
        bool; fresh: acc holds nothing yet (it is written, not added to)."""
        g = self.frames_at_once
        for f0 in range(0, len(frames), g):
            self._product(frames[f0:f0 + g], acc[f0:f0 + g], fresh)

    def _product(self, frames: np.ndarray, acc: np.ndarray, fresh: bool) -> None:
        direct = self.floor is None and acc.dtype == self.dtype     # the product can go into acc
        win = self.window
        events = win is not None and (len(frames) * self.event_ns[0] + np.count_nonzero(frames)
                                      * self.event_ns[1] < len(frames) * self.dense_ns)
        if events or (win is not None and win.depthwise):
            out = acc if direct else np.zeros(acc.shape, self.dtype)
            if direct and fresh:
                out[:] = 0
            if events:
                _window_events(frames, self.kernel, out, *self.reached, self.source_shape[2],
                               self.target_shape[1:], win.first if win.depthwise else -1)
            else:
                self._per_channel(frames, out)
        elif win is not None and self.frames_last:
            out = acc if fresh and direct else np.empty(acc.shape, self.dtype)
            ho, wo, co = self.target_shape
            np.matmul(self._patches_frames_last(frames).transpose(0, 2, 1),
                      self.kernel.reshape(-1, co), out=out.reshape(len(out), ho * wo, co).transpose(1, 0, 2))
            if out is acc:
                return
        else:
            if win is not None:
                x = self._patches(frames)
                w = self.kernel.reshape(-1, self.kernel.shape[-1])
            else:
                x = frames.astype(self.dtype)
                w = self.dense
            if w is None:
                out = (self.matrix @ x.T).T
            elif fresh and direct:
                np.matmul(x, w, out=acc.reshape(len(x), -1))
                return
            else:
                out = (x @ w).reshape(acc.shape)
        if self.floor is not None:
            out *= self.floor
            np.floor(out, out=out)
            out *= self.scale
        if out is acc:
            return
        if fresh:
            acc[:] = out
        else:
            acc += out

    def _padded(self, frames: np.ndarray) -> np.ndarray:
        """The frames as zero-padded spike maps (frames, rows, cols, C) of `dtype`."""
        (h, w, c), (top, left) = self.source_shape, self.window.origin
        x = np.zeros((len(frames), *self.padded_shape), self.dtype)
        x[:, top:top + h, left:left + w] = frames.reshape(len(frames), h, w, c)
        return x

    def _windows(self, x: np.ndarray) -> np.ndarray:
        """A view (frames, ho, wo, kh, kw, C) of padded maps x: every window's patch."""
        win, (ho, wo, _) = self.window, self.target_shape
        kh, kw = self.kernel.shape[:2]
        (sy, sx), (dy, dx) = win.strides, win.dilation
        sb, sh, sw, sc = x.strides
        return np.lib.stride_tricks.as_strided(
            x, (len(x), ho, wo, kh, kw, x.shape[3]), (sb, sh * sy, sw * sx, sh * dy, sw * dx, sc),
            writeable=False)

    def _patches(self, frames: np.ndarray) -> np.ndarray:
        """Every window's (kh, kw, C) patch: (frames * ho * wo, kh * kw * C) (im2col)."""
        c = self.source_shape[2]
        if self.pointwise:
            return frames.reshape(-1, c).astype(self.dtype)
        return self._windows(self._padded(frames)).reshape(-1, self.kernel[..., 0].size)

    def _patches_frames_last(self, frames: np.ndarray) -> np.ndarray:
        """Every window's (kh, kw, C) patch, frames last: (ho * wo, kh * kw * C, frames)."""
        win, (h, w, c), (ho, wo, _) = self.window, self.source_shape, self.target_shape
        (top, left), (sy, sx), (dy, dx) = win.origin, win.strides, win.dilation
        kh, kw = self.kernel.shape[:2]
        x = np.zeros((*self.padded_shape, len(frames)), self.dtype)
        x[top:top + h, left:left + w] = frames.T.reshape(h, w, c, len(frames))
        sh, sw, sc, sf = x.strides
        view = np.lib.stride_tricks.as_strided(
            x, (ho, wo, kh, kw, c, len(frames)), (sh * sy, sw * sx, sh * dy, sw * dx, sc, sf),
            writeable=False)
        return np.ascontiguousarray(view).reshape(ho * wo, kh * kw * c, len(frames))

    def _per_channel(self, frames: np.ndarray, out: np.ndarray) -> None:
        """out (frames, n_target) += a per-channel window: an elementwise product per tap."""
        win = self.window
        if self.row_runs:
            self._per_channel_rows(frames, out)
            return
        patches = self._windows(self._padded(frames))
        ho, wo, co = self.target_shape
        kh, kw, c, k = self.kernel.shape
        part = out.reshape(len(out), ho, wo, co)[..., win.first:win.first + c * k]
        part = part.reshape(len(out), ho, wo, c, k)
        product = np.empty(part.shape, self.dtype)
        for ky in range(kh):
            for kx in range(kw):
                np.multiply(patches[:, :, :, ky, kx, :, None], self.kernel[ky, kx], out=product)
                part += product

    def _per_channel_rows(self, frames: np.ndarray, out: np.ndarray) -> None:
        """_per_channel where one tap over a row of outputs reads one run of the
        padded map (row_runs): per tap, (frames, ho, wo * C) at once."""
        x = self._padded(frames)
        (sy, _), (dy, dx) = self.window.strides, self.window.dilation
        ho, wo, c = self.target_shape
        sb, sh, sw, _ = x.strides
        part = out.reshape(len(out), ho, wo * c)
        product = np.empty(part.shape, self.dtype)
        for ky, kx in np.ndindex(*self.kernel.shape[:2]):
            tap = np.lib.stride_tricks.as_strided(x[:, ky * dy:, kx * dx:], part.shape,
                                                  (sb, sh * sy, x.itemsize), writeable=False)
            np.multiply(tap, self.row_kernel[ky, kx], out=product)
            part += product


def _reached(n_in: int, n_out: int, k: int, stride: int, origin: int, dilation: int) -> np.ndarray:
    """(n_in, k) int64 along one axis of a window: the output that source
    coordinate i reaches through kernel offset j (i = o * stride - origin + j *
    dilation), -1 where none."""
    i = np.arange(n_in)[:, None] + origin - np.arange(k)[None, :] * dilation
    o = i // stride
    return np.where((i >= 0) & (i % stride == 0) & (o < n_out), o, -1)


@numba.njit(nogil=True, cache=True)
def _window_events(frames, kernel, out, rows, cols, c, target, first):
    """out (frames, n_target) += a window's input, spike by spike: each spike of
    frames (frames, n_source) bool adds its kernel taps to the outputs it
    reaches (rows, cols: _reached).  kernel (kh, kw, C, k); target (wo, C_target);
    first: the depthwise window's first target channel, -1 for a full one."""
    w, kh, kw = cols.shape[0], rows.shape[1], cols.shape[1]
    k = kernel.shape[3]
    wo, co = target
    for f in range(frames.shape[0]):
        row, spikes = out[f], frames[f]
        for src in range(frames.shape[1]):
            if not spikes[src]:
                continue
            pix = src // c
            y, x, ci = pix // w, pix % w, src - pix * c
            for ky in range(kh):
                oy = rows[y, ky]
                if oy < 0:
                    continue
                for kx in range(kw):
                    ox = cols[x, kx]
                    if ox < 0:
                        continue
                    base = (oy * wo + ox) * co + (first + ci * k if first >= 0 else 0)
                    taps, part = kernel[ky, kx, ci], row[base:base + k]
                    for m in range(k):       # on views from 0: the loop vectorizes
                        part[m] += taps[m]


def _synapses(net: IntNetwork) -> list:
    """The products of every connection (one per delay present), the input
    layer's own connections left out when its spikes are given."""
    inp = net.layers[net.input_layer]
    out = []
    for c in net.connections:
        if c.target == inp.name and inp.input_mode == "spikes":
            continue
        source, target = net.layers[c.source], net.layers[c.target]
        if c.max_delay:
            out += [_Synapses(c, source, target, d, m) for d, m in c.delay_parts()]
        else:
            out.append(_Synapses(c, source, target))
    return out


def simulate(net: IntNetwork, x: np.ndarray, num_steps: int, record=(),
             progress: bool = True, block_steps: int | None = None) -> RunOutput:
    """Run a batch through the integer network.

    x: (batch, *input_shape) frames (bias input mode) or (batch, num_steps,
    *input_shape) 0/1 spikes (spike input mode).  record: names of layers whose
    spike trains to return.  progress: show a progress bar on stderr if the run
    takes more than 2 s.  The batch runs in chunks whose state fits CHUNK_BYTES
    (the samples are independent), at least one for each of THREADS threads
    that run them side by side, each in blocks of steps whose spike histories
    fit BLOCK_BYTES, at most block_steps (None: no further limit; the results
    depend on none of these).  An empty batch raises NetworkError.
    """
    x = np.asarray(x)
    if len(x) == 0:
        raise NetworkError("simulate: a batch of 0 samples; give at least one")
    synapses = _synapses(net)
    order = {name: i for i, name in enumerate(net.layers)}
    peak = {name: 0.0 for name in net.layers}
    history = {name: 1 for name in net.layers}      # steps of spikes kept from earlier blocks
    longest = num_steps if block_steps is None else max(1, block_steps)
    for syn in synapses:
        peak[syn.conn.target] += syn.peak
        history[syn.conn.source] = max(history[syn.conn.source], syn.delay + 1)
        if order[syn.conn.source] >= order[syn.conn.target]:   # reads spikes of its own block
            longest = min(longest, syn.delay + 1)
    neurons = sum(layer.n for layer in net.layers.values())
    chunk = max(1, min(-(-len(x) // THREADS),          # a chunk for every thread at least
                       CHUNK_BYTES // (STATE_BYTES_PER_NEURON * neurons)))
    per_frame = neurons + 8 * max(layer.n for layer in net.layers.values())   # spikes, one input
    steps = max(1, min(longest, num_steps, BLOCK_BYTES // (chunk * per_frame)))
    bar = _Tally(Progress(num_steps * len(x), f"simulating {len(x)} samples",
                          unit="sample-steps") if progress else None)
    starts = range(0, len(x), chunk)
    threads = max(1, min(THREADS, len(starts)))
    # BLAS shares the cores with the threads (its own threads busy-wait for each other:
    # with more of them than cores, as under other load, products slow down severalfold)
    with threadpoolctl.threadpool_limits(max(1, THREADS // threads), user_api="blas"), \
            concurrent.futures.ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(lambda i: _simulate_chunk(net, synapses, peak, history, steps,
                                                        x[i:i + chunk], num_steps, record, bar),
                              starts))
    if len(parts) == 1:
        return parts[0]
    return RunOutput(counts={k: np.concatenate([p.counts[k] for p in parts]) for k in parts[0].counts},
                     trains={k: np.concatenate([p.trains[k] for p in parts]) for k in parts[0].trains},
                     voltages={k: np.concatenate([p.voltages[k] for p in parts])
                               for k in parts[0].voltages})


class _Tally:
    """The sample-steps done by all chunks, shown on a Progress bar (or none)."""

    def __init__(self, bar: Progress | None):
        self.bar, self.done, self.lock = bar, 0, threading.Lock()

    def add(self, sample_steps: int) -> None:
        with self.lock:
            self.done += sample_steps
            if self.bar:
                self.bar.update(self.done)


def _simulate_chunk(net: IntNetwork, synapses: list, peak: dict, history: dict, steps: int,
                    x: np.ndarray, num_steps: int, record, tally: _Tally) -> RunOutput:
    """simulate() for one chunk of the batch in blocks of `steps` steps; peak:
    each layer's largest input (u units); history: the steps of spikes before
    a block each layer's connections read."""
    batch = len(x)
    inp = net.layers[net.input_layer]
    states, spikes = {}, {}
    for name, layer in net.layers.items():
        if not (layer.is_input and layer.input_mode == "spikes"):
            bias = layer.input_bias(x) if layer.is_input else layer.bias_mant
            states[name] = _LayerState(layer, batch, bias, peak[name])
        spikes[name] = np.zeros((history[name] + steps, batch, layer.n), bool)
    incoming = {name: [s for s in synapses if s.conn.target == name] for name in states}
    sizes = {}          # the input block of one layer at a time, by dtype: allocated once
    for st in states.values():
        sizes[st.dtype] = max(sizes.get(st.dtype, 0), steps * batch * st.layer.n)
    inputs = {dtype: np.empty(size, dtype) for dtype, size in sizes.items()}
    counts = {name: np.zeros((batch, l.n), np.int32) for name, l in net.layers.items()}
    out = RunOutput(trains={n: np.zeros((batch, num_steps, net.layers[n].n), bool) for n in record})
    if inp.input_mode == "spikes":
        x_spikes = x.reshape(batch, x.shape[1], inp.n).astype(bool)
    for t0 in range(0, num_steps, steps):
        k = min(steps, num_steps - t0)
        for name, layer in net.layers.items():
            own = spikes[name][history[name]:history[name] + k]
            if name not in states:
                own[:] = x_spikes[:, t0:t0 + k].transpose(1, 0, 2)
            else:
                a_in = None
                if incoming[name]:
                    a_in = inputs[states[name].dtype][:k * batch * layer.n].reshape(k * batch, -1)
                    for i, syn in enumerate(incoming[name]):
                        first = history[syn.conn.source] - 1 - syn.delay    # step t0 - 1 - delay
                        frames = spikes[syn.conn.source][first:first + k]
                        syn.add_to(frames.reshape(k * batch, -1), a_in, fresh=i == 0)
                    a_in = a_in.reshape(k, batch, layer.n)
                states[name].run(a_in, t0, own)
            counts[name] += own.sum(axis=0, dtype=np.int32)
            if name in out.trains:
                out.trains[name][:, t0:t0 + k] = own.transpose(1, 0, 2)
        for name, s in spikes.items():
            s[:history[name]] = s[k:k + history[name]]
        tally.add(k * batch)
    out.counts = {name: c.astype(np.int64) for name, c in counts.items()}
    out.voltages[net.output_layer] = states[net.output_layer].v.astype(np.int64)
    return out


def run_reference(net: IntNetwork, partition: Partition, x: np.ndarray, num_steps: int,
                  record=()) -> RunOutput:
    """backend='reference': simulate (the partition does not change the dynamics)."""
    return simulate(net, x, num_steps, record=record)


BACKEND = Backend("reference", run_reference)
