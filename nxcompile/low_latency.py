"""Low-latency rate conversion: where each neuron of a converted network starts.

convert(..., method='low_latency') follows Bu et al. 2022 (QCFS, ICLR): the
ANN is trained with nxcompile.activations.QuantizedClippedReLU (L levels, clip
lambda), each layer's threshold is its lambda, neurons reset by subtraction,
and every neuron starts at half its threshold.  An integrate-and-fire neuron
that starts at theta / 2 and integrates a constant input x for T steps spikes
round(T x / theta) times (clipped to 0..T) instead of floor(T x / theta): at T =
L its rate times theta is the QCFS activation exactly, and the expected
conversion error of the next layers is zero (their Theorem 2).

The half-threshold start is the one the chip gives for free: IntLayer.v_init
is loaded once with the network (Lava LIF's initial v), no host action during
the run.  The "buffered" alternative (neurons integrate for a while without
firing, then fire) would need the threshold or bias changed by the host in
the middle of every sample, or an extra inhibiting compartment per neuron on
Loihi 1, so it is not used.

Pipeline delay.  Every synaptic hop takes one step on Loihi, so a layer d hops
from the input sees its first input at step d + 1 while it integrates its bias
b from step 1: d steps of bias that an ANN (or a simulation without synaptic
delay) does not have.  start_at_half_threshold therefore starts each neuron at
theta / 2 - d * b (d: hops on the longest path from the input; per channel,
like the bias), so its potential is theta / 2 when its input arrives (exactly,
unless a neuron with a negative bias crosses the threshold before that); the
readout starts at -d * b, so that after T + d steps its potential (spikes x
threshold + v) is what it received in its T steps of input, with T steps of
bias.  A run of T integration steps is thus run for T + depth steps.
"""
from __future__ import annotations

import numpy as np


def hops_from_input(ir) -> dict:
    """Layer name -> synaptic hops (time steps) on the longest path from the input."""
    hops = {}
    for name in ir.order():
        hops[name] = max((hops[p] + 1 for p in ir.predecessors(name)), default=0)
    return hops


def start_at_half_threshold(snn, ir) -> None:
    """Set vInit of every neuron layer of a converted NxModel whose IR is `ir`
    (module doc): theta / 2 - d * b for the input and hidden layers, -d * b for
    the readout (b: the layer's bias per channel, d: its hops from the input)."""
    hops, readout = hops_from_input(ir), ir.outputs[0]
    for name in ir.order():
        spec = ir.layer(name)
        bias = np.zeros(spec.shape[-1]) if spec.bias is None else np.asarray(spec.bias)
        start = 0.0 if name == readout else spec.neuron.threshold / 2
        snn.get_layer(name).set_initial_voltage([float(v) for v in start - hops[name] * bias])
