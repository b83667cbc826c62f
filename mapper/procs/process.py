"""Lava Processes of nxcompile: a soft-reset LIF neuron, the weight exponent of
a connection split over several source cores, and a spike sink."""
from __future__ import annotations

import mapper.lava_compat  # noqa: F401  (before any lava import)

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.proc.lif.process import LIF

# A recorded spike train is packed into int64 words of this many steps: Var.get
# moves each element as one float64 message, which carries integers < 2**53 exactly.
TRAIN_BITS_PER_WORD = 52


class SoftResetLIF(LIF):
    """Lava's LIF with reset by subtraction: on a spike v <- v - (vth << 6).

    Parameters, units and bit widths are those of lava.proc.lif.process.LIF
    (vth 17-bit mantissa, du/dv 12 bit, bias_mant 13-bit signed, bias_exp 3 bit).
    """


class WeightExpShift(AbstractProcess):
    """Applies one connection's negative weight exponent to the summed synaptic
    input that its per-core-pair Sparse processes (weight_exp=0) deliver to one
    target core: a_out = a_in >> -weight_exp, in the same step (no delay).

    Lava's Sparse floors its own partial sum; shifting the sum of all source
    cores instead keeps the result independent of how the source layer is split.
    """

    def __init__(self, *, shape: tuple, weight_exp: int, name: str | None = None):
        if weight_exp >= 0:
            raise ValueError(f"WeightExpShift {name!r}: weight_exp={weight_exp} must be negative; "
                             "a left shift distributes over the per-core sums")
        super().__init__(shape=shape, weight_exp=weight_exp, name=name)
        self.a_in = InPort(shape=shape)
        self.a_out = OutPort(shape=shape)


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
