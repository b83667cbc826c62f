"""Lava Processes of nxcompile: the two-compartment soft-reset neuron and a spike sink."""
from __future__ import annotations

import mapper.lava_compat  # noqa: F401  (before any lava import)

import numpy as np
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.proc.lif.process import LIF

# A recorded spike train is packed into int64 words of this many steps: Var.get
# moves each element as one float64 message, which carries integers < 2**53 exactly.
TRAIN_BITS_PER_WORD = 52


class SoftResetLIF(LIF):
    """Reset by subtraction built from two compartments per neuron, as NxTF
    built it on Loihi 1.

    Integrating compartment (NxTF's compartment profile 0: the layer's du and
    dv, bias, no spike of its own, pushes its voltage onto the dendritic stack):
    Lava's fixed-point LIF state u, v (24 bit), bias_mant (13 bit) << bias_exp
    (3 bit), decays du, dv (12 bit), synaptic input a_in.

    Spiking compartment (NxTF's profile 1: du = dv = 4095, pops the stack, spike
    and reset): v_soma (24 bit).  Each step it takes the integrator's voltage
    of the same step, spikes when v_soma > vth << 6 (vth: 17-bit mantissa), and
    then resets to 0; its spike subtracts vth << 6 from the integrator's v in
    the same step.  On Loihi the compartments of one neuron are updated in one
    pass of the dendritic tree, so the join adds no time step; a reset sent
    back through a synapse would arrive a step late and let the neuron fire
    twice.  The spike train is therefore exactly that of one LIF compartment
    whose reset is v <- v - (vth << 6), which hwmodel.simulator computes.

    Parameters, units and bit widths are those of lava.proc.lif.process.LIF;
    the partitioner counts two compartments per neuron.
    """

    def __init__(self, *, shape: tuple, **kwargs):
        super().__init__(shape=shape, **kwargs)
        self.v_soma = Var(shape=shape, init=0)


def train_words(num_steps: int) -> int:
    """Number of int64 words per neuron that hold a train of num_steps steps."""
    return -(-num_steps // TRAIN_BITS_PER_WORD)


def unpack_train(words: np.ndarray, num_steps: int) -> np.ndarray:
    """(n, train_words(num_steps)) packed words -> (num_steps, n) bool spike train."""
    words = np.asarray(words).astype(np.int64)
    bits = np.arange(TRAIN_BITS_PER_WORD, dtype=np.int64)
    train = (words[:, :, None] >> bits) & 1            # (n, words, bits)
    return train.reshape(len(words), -1)[:, :num_steps].T.astype(bool)


class SpikeSink(AbstractProcess):
    """Counts the spikes of each of `shape[0]` neurons over a run.

    counts: (n,) spikes per neuron.  If record_steps is given, train: (n,
    train_words(record_steps)) the spike train of the first record_steps steps,
    bit (t-1) % TRAIN_BITS_PER_WORD of word (t-1) // TRAIN_BITS_PER_WORD holding
    step t (read it with one Var.get and unpack_train).  Running a recording sink
    for more than record_steps steps is an error.
    """

    def __init__(self, *, shape: tuple, record_steps: int | None = None, name: str | None = None):
        super().__init__(shape=shape, record_steps=record_steps, name=name)
        n = shape[0]
        self.s_in = InPort(shape=shape)
        self.counts = Var(shape=(n,), init=0)
        self.train = Var(shape=(n, train_words(record_steps or 0)), init=0)
