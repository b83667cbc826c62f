"""Single-spike (time-to-first-spike, TTFS) networks on Loihi 1.

``to_ttfs(ir, steps_per_window=T)`` maps a rate-normalized ReLU chain (the IR
of ``nxcompile.convert``: every hidden layer's values in units of its lambda,
threshold 1) onto integer neurons that spike at most once per sample, after
Stanojevic et al. 2022 ("An exact mapping from ReLU networks to spiking neural
networks"), with zeros silent.  Everything is made of IR features (layers,
dense/window connections, decays, hard reset; two added for it: decay_u = -1
and ConnectionSpec.own_exponent), so the quantizer, partitioner, reference
simulator, Lava and the model file take it as any other network.

Code.  Layer n evaluates at step p_n (p_1 = T, p_{n+1} = p_n + T + 1).  A
value x in (0, 1] of a source is one spike at step p_n - round(T x); 0 is no
spike.  Hidden neurons keep their current (decay_u = -1, Loihi 1's decayU = 0)
and do not leak (dv = 0): each input spike of step s adds its weight w to u
from step s + 1 on, so by p_n the voltage holds sum_j w_j (p_n - s_j) =
T * sum_j W_j x_j in units of the layer's scale C (weights W * C, the largest
|W * C| at most 254: 8-bit, exponent 0).  At p_n the input-dependent slope
sum_j w_j of the sources that spiked is cancelled exactly: each source layer
has a partner layer whose neuron fires at p_n if and only if its source fired
(a latch: +0.75 threshold from the source, +0.75 from a clock), and the
partner's synapses are the source's negated.  Zeros therefore cost no spike
and no synaptic event anywhere (Stanojevic et al. fire them at t_max instead).
From p_n + 1 a clock adds the slope 1 (C units) to every neuron, so a neuron
with value z crosses the threshold T + 0.5 at step p_n + T + 1 - round(T z):
the next layer's code for relu(z) rounded to 1/T (half down; z <= 0.5 / T:
silent; z > 1 + 0.5 / T: a spike at p_n, the value 1 + 1/T).  At p_n + T a
clock turns the slope to 0 (no input arrives later): no neuron of the layer
can spike again.  The
layer's bias b enters as a clock ramp of slope b over [p_n - T, p_n].  An
average pooling followed by a dense connection is folded into it.  A max
pooling is a layer of OR neurons (_or_neurons): the first spike of a window is
its maximum, passed on one step later, exactly; its source needs no partner.  The readout
does not spike (threshold at the 17-bit maximum); its voltage at step p_out
holds T * (its input) and the class is its argmax (RunResult.potentials).

Guard.  The threshold is GUARD = 254 << 7 higher (T + 0.5 + GUARD / C), and a
current of GUARD / 2 during steps p_n - 1 and p_n lifts every neuron by it:
before p_n a partial sum must exceed the threshold by ~64 times the layer's
peak weight to cross, so sums beyond the calibrated range clip instead of
firing early, and a neuron that fired (reset to 0, the lift gone) cannot reach
the threshold again in its window.  The current comes from two relay neurons
per layer (CLOCK) whose connection has its own weight exponent (6;
ConnectionSpec.own_exponent), so it does not coarsen the data weights.

Clocks (the bias, slope and blocking events, the relays' triggers, and the
first layer's partner spikes) are input channels that spike once, at fixed
steps: the host sends them with the pixels (TTFSNetwork.encode).  A clock
weight larger than the layer's largest data weight is split over several
channels, each on the layer's weight grid, the parts summing to the weight
rounded once.

Costs: one partner compartment per neuron of every layer that feeds a
spiking layer, two relays per spiking layer; an active neuron costs its own
spike and its partner's (two synaptic events per synapse), a zero nothing.
CompiledTTFS.run raises SingleSpikeError if a neuron spiked twice (input sums
beyond the guard).  The 16-bit dendritic accumulator of the chip is not
modelled (as everywhere here): the pulse's step and the step of the
cancellations carry large sums.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from hwmodel import formats
from hwmodel.errors import NetworkError, NxCompileError
from nxcompile.ir import INPUT, ConnectionSpec, LayerSpec, NetworkIR, NeuronSpec, connection_matrix

PARTNER_GAIN = 0.75     # a partner fires on its source's spike plus its clock (1.5 > 1), not one
WEIGHT_TOP = formats.WEIGHT_MAX - 1     # 254: the largest mixed-sign 8-bit weight (step 2)
# the guard: the threshold's margin, added to v by a current of GUARD / 2 for two steps (the
# largest weight at the largest exponent but one, u units / 64: half the 16-bit accumulator)
GUARD = WEIGHT_TOP << formats.WEIGHT_EXP_MAX
READOUT_VTH = formats.THRESHOLD_MANT_MAX
# the longest window: a threshold (T + 0.5) * C + GUARD with the smallest scale C = 2 in 17 bits
T_MAX = int((formats.THRESHOLD_MANT_MAX - GUARD) / 2 - 0.5)
CLOCK = "ttfs_clock"     # the relay neurons of the guard pulses
MAX_POOL = "max_pool2d"


class SingleSpikeError(NxCompileError, RuntimeError):
    """A neuron of a TTFS network spiked more than once in a sample."""


@dataclass
class TTFSNetwork:
    """A TTFS network: its IR, the window length T (steps), the evaluation
    step of every spiking layer and of the readout, and the input encoding
    (n_pixels data channels, then n_pixels first-layer partner channels, then
    one channel per clock, spiking at clock_steps)."""

    ir: NetworkIR
    steps_per_window: int
    evaluation: dict
    input_shape: tuple
    clock_steps: list
    spiking: list = field(default_factory=list)     # hidden layers, in order

    @property
    def num_steps(self) -> int:
        """Steps of one inference: up to the readout's evaluation step."""
        return self.evaluation[self.ir.outputs[0]] + 1

    @property
    def n_pixels(self) -> int:
        return int(np.prod(self.input_shape))

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Spike input (batch, num_steps, n_input) bool for frames x (batch,
        *input_shape) in [0, 1]: pixel x at step p_1 - round(T x) (none for
        0), its partner at p_1 where it spiked, every clock at its step."""
        x = np.asarray(x, np.float64).reshape(len(x), -1)
        if x.shape[1] != self.n_pixels:
            raise NetworkError(f"TTFS input: {x.shape[1]} values per sample, the network "
                               f"takes {self.input_shape}")
        bad = x[~((x >= 0) & (x <= 1))]
        if bad.size:
            raise NetworkError(f"TTFS input: value {bad[0]:.4g} outside [0, 1]")
        T, p1, n = self.steps_per_window, self.evaluation[self.spiking[0]], self.n_pixels
        q = np.round(x * T).astype(np.int64)
        spikes = np.zeros((len(x), self.num_steps, 2 * n + len(self.clock_steps)), bool)
        b, i = np.nonzero(q)
        spikes[b, p1 - q[b, i], i] = True
        spikes[b, p1, n + i] = True
        for k, step in enumerate(self.clock_steps):
            spikes[:, step, 2 * n + k] = True
        return spikes

    def decode(self, trains: np.ndarray, layer: str) -> np.ndarray:
        """Values (batch, n) a hidden layer's spike trains (batch, steps, n)
        encode: (p_next - s) / T for a spike at step s, 0 without one."""
        t = np.asarray(trains).reshape(len(trains), trains.shape[1], -1)
        nxt = self.evaluation[layer] + self.steps_per_window + 1
        fired = t.any(axis=1)
        first = t.argmax(axis=1)
        return np.where(fired, (nxt - first) / self.steps_per_window, 0.0)

    def compile(self, board="loihi1", **options) -> "CompiledTTFS":
        """Partition and quantize (nxcompile.compile_ir)."""
        from nxcompile.compiler import compile_ir
        return CompiledTTFS(self, compile_ir(self.ir, board=board, **options))


@dataclass
class CompiledTTFS:
    """A compiled TTFS network: run() encodes frames and checks the single-spike property."""

    ttfs: TTFSNetwork
    compiled: object        # nxcompile.compiled.CompiledModel

    def run(self, x, backend: str = "reference", record=None, batch: int = 100):
        """RunResult of frames x (batch, *input_shape) in [0, 1], one inference of
        num_steps each, in batches of `batch` samples; layer_counts of every layer
        the backend counted (reference: all).  Raises SingleSpikeError if any
        counted neuron spiked more than once."""
        from nxcompile.compiled import RunResult
        x = np.asarray(x)
        parts = [self.compiled.run(self.ttfs.encode(x[i:i + batch]), self.ttfs.num_steps,
                                   backend=backend, record=record)
                 for i in range(0, len(x), batch)]
        for part in parts:
            for name, counts in part.layer_counts.items():
                if counts.size and counts.max() > 1:
                    raise SingleSpikeError(f"layer {name}: a neuron spiked {counts.max()} times "
                                           f"in one sample (TTFS allows one)")
        cat = lambda key: np.concatenate([getattr(p, key) for p in parts])  # noqa: E731
        return RunResult(spike_counts=cat("spike_counts"), voltages=cat("voltages"),
                         threshold=parts[0].threshold,
                         trains={k: np.concatenate([p.trains[k] for p in parts])
                                 for k in parts[0].trains},
                         num_steps=self.ttfs.num_steps,
                         layer_counts={k: np.concatenate([p.layer_counts[k] for p in parts])
                                       for k in parts[0].layer_counts})

    def energy(self, result, costs=None):
        """hwmodel.energy estimate per inference (CompiledModel.energy)."""
        return self.compiled.energy(result, costs)

    def report(self) -> str:
        return self.compiled.report()


def _layer_scale(peak: float, T: int) -> int:
    """The layer's scale C: the largest power of two with peak * C <= 254 (8-bit
    mixed-sign weights at exponent 0), so that the slope 1 is C exactly, and
    with (T + 0.5) * C + GUARD within the 17-bit threshold mantissa."""
    top = (formats.THRESHOLD_MANT_MAX - GUARD) / (T + 0.5)
    if peak > 0:
        top = min(top, WEIGHT_TOP / peak)
    return 2 ** max(1, math.floor(math.log2(top)))


def _clock_kernel(n_in: int, n_target: int, rows: list) -> np.ndarray:
    """Dense kernel (n_in, n_target) of the clock channels `rows` [(row, weights)]."""
    kernel = np.zeros((n_in, n_target))
    for row, w in rows:
        kernel[row] = w
    return kernel


def _split(w: np.ndarray, peak: float, scale: int | None) -> list:
    """A clock's weights (float, per target neuron) as the weights of one or
    more clock channels, none larger than the layer's largest data weight
    `peak`, so the clock does not raise the layer's weight exponent.  With the
    layer's scale known, each part lies on its grid of 8-bit mixed-sign weights
    (steps of 2 / scale) and the parts sum to the weights rounded once."""
    if scale is None or not peak > 0:
        return [w]
    units = np.round(w * scale / 2).astype(np.int64)
    top = max(1, math.floor(peak * scale / 2 * (1 + 1e-12)))
    parts = max(1, -(-int(np.abs(units).max()) // top))
    q, r = np.divmod(units, parts)
    return [(q + (k < r)) * 2.0 / scale for k in range(parts)]


def _negated(spec: ConnectionSpec, target_shape: tuple) -> ConnectionSpec:
    """The partner's connection: spec with its weights negated (average
    pooling as the equivalent depthwise convolution)."""
    if spec.kind == "avg_pool2d":
        if spec.padding != "valid" or any(map(any, spec.pre_padding)):
            raise NetworkError("TTFS: average pooling with padding is not supported (its "
                               "divisor varies at the border)")
        ph, pw = spec.pool_size
        c = spec.source_shape[2]
        return ConnectionSpec("depthwise_conv2d", spec.source_shape,
                              kernel=np.full((ph, pw, c, 1), -1.0 / (ph * pw)),
                              strides=spec.strides, padding="valid",
                              channel_offset=spec.channel_offset, in_channels=spec.in_channels)
    if spec.kernel is None:
        raise NetworkError(f"TTFS: a {spec.kind} connection cannot be negated")
    return replace(spec, kernel=-np.asarray(spec.kernel, np.float64))


def _or_neurons(spec: ConnectionSpec):
    """A max pooling's connection, neurons and clock lift: an OR neuron per
    window.  Its current is cleared every step (du = 4095: each input spike adds
    its weight to v once), weights 1/n for a window of n, a clock lifts v by
    1 - 1/(2n) before the window: the first input spike crosses the threshold 1
    (the maximum is the earliest spike), the reset drops the lift, and the other
    n - 1 spikes, (n - 1)/n together, stay below it."""
    n = int(np.prod(spec.pool_size))
    c = spec.in_channels or spec.source_shape[2]
    conn = ConnectionSpec("depthwise_conv2d", spec.source_shape,
                          kernel=np.full((*spec.pool_size, c, 1), 1.0 / n),
                          strides=spec.strides, padding=spec.padding,
                          pre_padding=spec.pre_padding, channel_offset=spec.channel_offset,
                          in_channels=spec.in_channels)
    return conn, NeuronSpec(threshold=1.0, reset="hard"), 1.0 - 0.5 / n


def _partner(layer: LayerSpec):
    """The partner layer of a spiking layer and the connection into it."""
    spec = LayerSpec(f"{layer.name}_partner", "identity" if len(layer.shape) == 3 else "dense",
                     layer.shape, NeuronSpec(threshold=1.0, reset="hard"))
    if len(layer.shape) == 3:
        conn = ConnectionSpec("identity", layer.shape,
                              kernel=np.full((1, 1, layer.shape[2], 1), PARTNER_GAIN))
    else:
        conn = ConnectionSpec("dense", layer.shape, kernel=PARTNER_GAIN * np.eye(layer.n))
    return spec, conn


def _folded_chain(ir: NetworkIR, order: list) -> tuple[list, dict]:
    """The chain's neuron layers and {layer: (source, connection)}, an average
    pooling followed by a dense connection folded into it (pooling is linear
    and its values are never negative: no neurons, no window and no rounding
    to 1/T needed)."""
    layers, conns = [], {}
    for prev, name in zip(order, order[1:]):
        spec = ir.connection(prev, name)
        if layers and layers[-1].kind == "avg_pool2d" and spec.kind == "dense" \
                and spec.delays is None and not spec.channel_offset:
            pool = layers.pop()
            src, pool_spec = conns.pop(pool.name)
            m = connection_matrix(pool_spec, pool.shape)          # (n_pool, n_src)
            kernel = m.T @ np.asarray(spec.kernel, np.float64)[:pool.n]
            spec = ConnectionSpec("dense", (ir.layer(src).n,), kernel=np.asarray(kernel))
            prev = src
        layers.append(ir.layer(name))
        conns[name] = (prev, spec)
    return layers, conns


def _check_chain(ir: NetworkIR) -> list:
    order = ir.order()
    for prev, name in zip(order, order[1:]):
        if ir.predecessors(name) != [prev] or ir.successors(prev) != [name]:
            raise NetworkError(f"TTFS: layer {name} must take exactly the layer before it "
                               f"({prev}); only chains are supported")
    if ir.layer(order[0]).kind != INPUT or ir.layer(order[0]).input_mode != "bias":
        raise NetworkError("TTFS: the network must start with a frame (bias mode) input layer")
    return order


def _schedule(layers: list, T: int) -> dict:
    """The evaluation step p of every layer: p_1 = T, then T + 1 steps per
    layer; a max pooling passes its first input spike on a step later (its p is
    its source's + 1, the next layer's one step later)."""
    evaluation, step = {}, T
    for layer in layers:
        evaluation[layer.name] = step - T if layer.kind == MAX_POOL else step
        step += 1 if layer.kind == MAX_POOL else T + 1
    return evaluation


def _neurons(layer: LayerSpec, conn: ConnectionSpec, p: int, T: int, readout: bool):
    """A layer's TTFS LayerSpec, its data connection and matrix, and its clock
    events [(step, target, weights, peak, scale)] (module doc)."""
    if layer.kind == MAX_POOL:
        conn, nrn, lift = _or_neurons(conn)
        spec = replace(layer, kind=conn.kind, neuron=nrn, bias=None)
        return spec, conn, connection_matrix(conn, layer.shape), [
            (p - 2, layer.name, np.full(layer.n, lift), None, None)]
    mat = connection_matrix(conn, layer.shape)
    peak = float(abs(mat).max()) if mat.nnz else 0.0
    scale = _layer_scale(peak, T)
    bias = np.zeros(layer.n) if layer.bias is None else np.tile(
        np.asarray(layer.bias, np.float64).ravel(), layer.n // np.size(layer.bias))
    events = [(p - T, layer.name, bias, peak, scale)] if bias.any() else []
    if readout:
        nrn = NeuronSpec(threshold=READOUT_VTH / scale, reset="hard",
                         decay_u=formats.DU_NO_DECAY, decay_v=0, vth_mant=READOUT_VTH)
    else:
        vth = int((T + 0.5) * scale) + GUARD
        nrn = NeuronSpec(threshold=vth / scale, reset="hard", decay_u=formats.DU_NO_DECAY,
                         decay_v=0, vth_mant=vth)
        events += [(p, layer.name, 1.0 - bias, peak, scale),
                   (p + T, layer.name, np.full(layer.n, -1.0), peak, scale)]
    return replace(layer, neuron=nrn, bias=None), conn, mat, events


def to_ttfs(ir: NetworkIR, steps_per_window: int = 32) -> TTFSNetwork:
    """The TTFS network of a rate-normalized ReLU chain (module doc)."""
    T = steps_per_window
    if not (isinstance(T, int) and 3 <= T <= T_MAX):
        raise NetworkError(f"steps_per_window={T!r} must be an integer in 3..{T_MAX} (the "
                           f"guard's clock needs 3 steps; (T + 0.5) * 2 + {GUARD} must fit the "
                           f"17-bit threshold mantissa)")
    order = _check_chain(ir)
    inp = ir.layer(order[0])
    layers, conns = _folded_chain(ir, order)
    hidden, readout = layers[:-1], layers[-1]
    if not hidden:
        raise NetworkError("TTFS: the network needs at least one hidden layer")
    for layer in (layers[0], readout):
        if layer.kind == MAX_POOL:
            raise NetworkError(f"TTFS: layer {layer.name}: max pooling of the input or as the "
                               f"readout is not supported")
    evaluation = _schedule(layers, T)
    events = []     # (step, target layer, float weights per target neuron, peak, scale): _split
    specs, data = {}, {}
    for layer in layers:
        src, conn = conns[layer.name]
        specs[layer.name], conn, mat, more = _neurons(layer, conn, evaluation[layer.name], T,
                                                      layer is readout)
        events += more
        data[layer.name] = (src, conn, mat)
    guards = [h.name for h in hidden if h.kind != MAX_POOL]
    for k, name in enumerate(guards):        # relays fire at p - 2 (current on) and p (off)
        for on, step in ((0, evaluation[name] - 3), (1, evaluation[name] - 1)):
            events.append((step, CLOCK, 1.5 * (np.arange(2 * len(guards)) == 2 * k + on), 1.5,
                           None))
    partners = {}
    for layer, nxt in zip(hidden, layers[1:]):
        if nxt.kind == MAX_POOL or nxt is readout:     # no slope to cancel there
            continue
        partners[layer.name] = _partner(layer)
        events.append((evaluation[nxt.name] - 1, partners[layer.name][0].name,
                       np.full(layer.n, PARTNER_GAIN), PARTNER_GAIN, None))
    channels = []       # (step, target, weights)
    for step, target, w, peak, scale in events:
        channels += [(step, target, part) for part in _split(w, peak, scale)]
    out = _assemble(inp.n, layers, specs, data, partners, guards, channels)
    return TTFSNetwork(out, T, evaluation, tuple(inp.shape), [s for s, _, _ in channels],
                       spiking=[h.name for h in hidden])


def _assemble(n_pix: int, layers: list, specs: dict, data: dict, partners: dict, guards: list,
              channels: list) -> NetworkIR:
    """The TTFS IR: the spike input (pixels, the first layer's partners, one
    channel per clock), the relays, the layers and their partners."""
    n_in = 2 * n_pix + len(channels)
    out = NetworkIR()
    out.add_layer(LayerSpec("ttfs_input", INPUT, (n_in,), NeuronSpec(), input_mode="spikes"))
    out.add_layer(LayerSpec(CLOCK, "dense", (2 * len(guards),), NeuronSpec(reset="hard")))
    for layer in layers:
        out.add_layer(specs[layer.name])
        if layer.name in partners:
            out.add_layer(partners[layer.name][0])
    clock_rows = {}
    for k, (_, target, w) in enumerate(channels):
        clock_rows.setdefault(target, []).append((2 * n_pix + k, w))
    for i, layer in enumerate(layers):
        src, conn, mat = data[layer.name]
        kernel = _clock_kernel(n_in, layer.n, clock_rows.get(layer.name, []))
        if i == 0:
            kernel[:n_pix] = mat.T.toarray()
            kernel[n_pix:2 * n_pix] = -kernel[:n_pix]
        else:
            out.connect(src, layer.name, conn)
            if src in partners:
                out.connect(partners[src][0].name, layer.name, _negated(conn, layer.shape))
        out.connect("ttfs_input", layer.name, ConnectionSpec("dense", (n_in,), kernel=kernel))
    out.connect("ttfs_input", CLOCK, ConnectionSpec("dense", (n_in,), kernel=_clock_kernel(
        n_in, 2 * len(guards), clock_rows[CLOCK])))
    for k, name in enumerate(guards):
        scale = specs[name].neuron.vth_mant / specs[name].neuron.threshold
        kernel = np.zeros((2 * len(guards), specs[name].n))
        kernel[2 * k], kernel[2 * k + 1] = GUARD / 2 / scale, -GUARD / 2 / scale
        out.connect(CLOCK, name, ConnectionSpec("dense", (2 * len(guards),), kernel=kernel,
                                                own_exponent=True))
    for name, (spec, conn) in partners.items():
        out.connect(name, spec.name, conn)
        out.connect("ttfs_input", spec.name, ConnectionSpec("dense", (n_in,), kernel=_clock_kernel(
            n_in, spec.n, clock_rows[spec.name])))
    out.validate()
    return out
