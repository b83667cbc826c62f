"""Reference simulator: batched numpy integer dynamics, bit-exact with Lava's
fixed-point LIF / Dense / Sparse models (Loihi2SimCfg(select_tag='fixed_pt')).

Per step t, for every layer in topological order:
  a_in(t) = sum over incoming connections of shift(W @ s_source(t-1), weight_exp)
            (one step of delay per synaptic hop, as every Lava connection buffers)
  u <- decay(u, du + 1) + (a_in << 6), wrapped to 24 bit
  v <- decay(v, dv) + u + (bias_mant << bias_exp), clipped to 24 bit
  s <- v > (vth << 6);  hard reset: v <- 0;  soft reset: v <- v - (vth << 6)
All samples of a batch run at once, as independent networks.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hwmodel import formats
from hwmodel.network import IntLayer, IntNetwork


@dataclass
class RunOutput:
    """Result of running a batch.

    counts: layer name -> (batch, n) int spike counts over all steps (the
    reference simulator fills every layer; Lava the output layer and recorded
    layers).  trains: layer name -> (batch, num_steps, n) bool spike trains of the
    layers asked for with `record`.  voltages: output layer's final v (batch, n).
    """

    counts: dict = field(default_factory=dict)
    trains: dict = field(default_factory=dict)
    voltages: dict = field(default_factory=dict)


def _shift(a: np.ndarray, exp: int) -> np.ndarray:
    return np.left_shift(a, exp) if exp > 0 else np.right_shift(a, -exp)


class _LayerState:
    """u, v (batch, n) int64 and the effective bias of one layer."""

    def __init__(self, layer: IntLayer, batch: int, bias_mant: np.ndarray):
        self.layer = layer
        self.u = np.zeros((batch, layer.n), np.int64)
        self.v = np.zeros((batch, layer.n), np.int64)
        self.bias = np.left_shift(np.broadcast_to(bias_mant, (batch, layer.n)).astype(np.int64),
                                  layer.bias_exp)
        self.vth = np.int64(layer.vth) << formats.THRESHOLD_SHIFT

    def step(self, a_in: np.ndarray) -> np.ndarray:
        lay = self.layer
        u = formats.decay(self.u, lay.du + 1) + (a_in << formats.ACTIVATION_SHIFT)
        self.u = formats.wrap_current(u)
        v = formats.decay(self.v, lay.dv) + self.u + self.bias
        self.v = formats.clip_voltage(v)
        s = self.v > self.vth
        if lay.reset == "hard":
            self.v[s] = 0
        else:
            self.v[s] -= self.vth
        return s


def simulate(net: IntNetwork, x: np.ndarray, num_steps: int, record=()) -> RunOutput:
    """Run a batch through the integer network.

    x: (batch, *input_shape) frames (bias input mode) or (batch, num_steps,
    *input_shape) 0/1 spikes (spike input mode).  record: names of layers whose
    spike trains to return.
    """
    x = np.asarray(x)
    batch = len(x)
    inp = net.layers[net.input_layer]
    states = {}
    for name, layer in net.layers.items():
        if layer.is_input and layer.input_mode == "spikes":
            continue
        bias = layer.input_bias(x) if layer.is_input else layer.bias_mant
        states[name] = _LayerState(layer, batch, bias)
    weights = [(c, c.weights.tocsr().astype(np.int64)) for c in net.connections]
    spikes = {name: np.zeros((batch, l.n), bool) for name, l in net.layers.items()}
    out = RunOutput(counts={n: np.zeros((batch, l.n), np.int64) for n, l in net.layers.items()},
                    trains={n: np.zeros((batch, num_steps, net.layers[n].n), bool) for n in record})
    if inp.input_mode == "spikes":
        x_spikes = x.reshape(batch, x.shape[1], inp.n).astype(bool)
    for t in range(num_steps):
        # Connections deliver what they accumulated from the previous step's spikes.
        a_in = {name: np.zeros((batch, st.layer.n), np.int64) for name, st in states.items()}
        for conn, wt in weights:
            if conn.target in a_in:
                acc = (wt @ spikes[conn.source].T.astype(np.int64)).T
                a_in[conn.target] += _shift(np.asarray(acc, np.int64), conn.weight_exp)
        for name in net.layers:
            if name in states:
                spikes[name] = states[name].step(a_in[name])
            else:
                spikes[name] = x_spikes[:, t]
            out.counts[name] += spikes[name]
            if name in out.trains:
                out.trains[name][:, t] = spikes[name]
    out.voltages[net.output_layer] = states[net.output_layer].v.copy()
    return out
