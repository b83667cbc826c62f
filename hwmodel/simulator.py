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
All samples of a batch run at once, as independent networks.
"""
from __future__ import annotations

import numpy as np

from hwmodel import formats
from hwmodel.backend import Backend, Progress, RunOutput
from hwmodel.network import IntConnection, IntLayer, IntNetwork
from hwmodel.partition import Partition


def _shift(a: np.ndarray, exp: int) -> np.ndarray:
    return np.left_shift(a, exp) if exp > 0 else np.right_shift(a, -exp)


class _LayerState:
    """u, v (n, batch) int64 and the bias (n, 1) or (n, batch) of one layer.

    State is neuron-major so that each neuron's batch is contiguous for the
    synapse products.  du = 4095 clears u every step (decay by 4096 is 0) and
    dv = 0 leaves v as it is: both are skipped, with identical results."""

    def __init__(self, layer: IntLayer, batch: int, bias_mant: np.ndarray):
        self.layer = layer
        self.u = np.zeros((layer.n, batch), np.int64)
        self.v = np.zeros((layer.n, batch), np.int64)
        bias = np.asarray(bias_mant, np.int64)
        self.bias = np.left_shift(bias.T if bias.ndim == 2 else bias[:, None], layer.bias_exp)
        self.vth = np.int64(layer.vth) << formats.THRESHOLD_SHIFT

    def reset_if_due(self, t: int) -> None:
        """The periodic reset (IntLayer.reset_interval) before step t (from 0)."""
        lay = self.layer
        if lay.reset_interval and (t + 1) % lay.reset_interval == lay.reset_offset:
            self.u[:] = 0
            self.v[:] = 0

    def step(self, a_in: np.ndarray | None) -> np.ndarray:
        """One time step with synaptic input a_in (n, batch), None for none."""
        lay = self.layer
        clears_u = lay.du + 1 >= formats.DECAY_UNITY
        if a_in is not None or not clears_u:
            u = (np.zeros_like(self.u) if a_in is None
                 else np.left_shift(a_in, formats.ACTIVATION_SHIFT))
            if not clears_u:
                u += formats.decay(self.u, lay.du + 1)
            if u.size and (u.max() > formats.STATE_MAX or u.min() <= -formats.STATE_MAX):
                u = formats.wrap_current(u)
            self.u = u
        if lay.dv:
            self.v = formats.decay(self.v, lay.dv)
        v = self.v
        v += self.u
        v += self.bias
        formats.clip_voltage(v, out=v)
        s = v > self.vth
        if lay.reset == "hard":
            np.copyto(v, 0, where=s)
        else:
            np.subtract(v, self.vth, out=v, where=s)
        return s


class _Synapses:
    """One connection's weights as a float csr matrix: float32 where every
    partial sum of a row is an integer below 2**24 (so exact), else float64."""

    def __init__(self, conn: IntConnection):
        self.conn = conn
        w = conn.weights.tocsr()
        worst = float(np.max(np.asarray(abs(w).sum(axis=1)).ravel(), initial=0))
        self.dtype = np.float32 if worst < 2 ** 24 else np.float64
        self.weights = w.astype(self.dtype)

    def input(self, spikes: np.ndarray) -> np.ndarray:
        """Shifted synaptic input (n_target, batch) int64 for spikes (n_source, batch)."""
        acc = self.weights @ spikes.astype(self.dtype)
        return _shift(acc.astype(np.int64), self.conn.weight_exp)


def simulate(net: IntNetwork, x: np.ndarray, num_steps: int, record=(),
             progress: bool = True) -> RunOutput:
    """Run a batch through the integer network.

    x: (batch, *input_shape) frames (bias input mode) or (batch, num_steps,
    *input_shape) 0/1 spikes (spike input mode).  record: names of layers whose
    spike trains to return.  progress: show a progress bar on stderr if the run
    takes more than 2 s.
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
    synapses = [_Synapses(c) for c in net.connections if c.target in states]
    spikes = {name: np.zeros((l.n, batch), bool) for name, l in net.layers.items()}
    counts = {name: np.zeros((l.n, batch), np.int32) for name, l in net.layers.items()}
    out = RunOutput(trains={n: np.zeros((batch, num_steps, net.layers[n].n), bool) for n in record})
    if inp.input_mode == "spikes":
        x_spikes = x.reshape(batch, x.shape[1], inp.n).astype(bool)
    bar = Progress(num_steps, f"simulating {batch} samples") if progress else None
    for t in range(num_steps):
        # Connections deliver what they accumulated from the previous step's spikes.
        a_in = dict.fromkeys(states)
        for syn in synapses:
            a = syn.input(spikes[syn.conn.source])
            target = syn.conn.target
            a_in[target] = a if a_in[target] is None else a_in[target] + a
        for name in net.layers:
            if name in states:
                states[name].reset_if_due(t)
                spikes[name] = states[name].step(a_in[name])
            else:
                spikes[name] = np.ascontiguousarray(x_spikes[:, t].T)
            counts[name] += spikes[name]
            if name in out.trains:
                out.trains[name][:, t] = spikes[name].T
        if bar:
            bar.update(t + 1)
    out.counts = {name: c.T.astype(np.int64) for name, c in counts.items()}
    out.voltages[net.output_layer] = states[net.output_layer].v.T.copy()
    return out


def run_reference(net: IntNetwork, partition: Partition, x: np.ndarray, num_steps: int,
                  record=()) -> RunOutput:
    """backend='reference': simulate (the partition does not change the dynamics)."""
    return simulate(net, x, num_steps, record=record)


BACKEND = Backend("reference", run_reference)
