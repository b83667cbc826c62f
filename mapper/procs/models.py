"""fixed_pt ProcessModels of the Processes in process.py."""
from __future__ import annotations

import mapper.lava_compat  # noqa: F401  (before any lava import)

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import AbstractPyLifModelFixed

from mapper.procs.process import TRAIN_BITS_PER_WORD, SoftResetLIF, SpikeSink, WeightExpShift


@implements(proc=SoftResetLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySoftResetLifModelFixed(AbstractPyLifModelFixed):
    """Lava's bit-accurate fixed-point LIF (PyLifModelBitAcc) except the reset:
    a spiking neuron keeps v - (vth << 6) instead of 0."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.effective_vth = 0

    def scale_threshold(self):
        self.effective_vth = np.left_shift(self.vth, self.vth_shift)
        self.isthrscaled = True

    def spiking_activation(self):
        return self.v > self.effective_vth

    def reset_voltage(self, spike_vector: np.ndarray):
        self.v[spike_vector] -= self.effective_vth


@implements(proc=WeightExpShift, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyWeightExpShiftModel(PyLoihiProcessModel):
    """a_out = a_in >> -weight_exp (arithmetic: floors negative sums, as Sparse does)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32)

    def run_spk(self):
        self.a_out.send(np.right_shift(self.a_in.recv(), -self.proc_params["weight_exp"]))


@implements(proc=SpikeSink, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeSinkModel(PyLoihiProcessModel):
    """Accumulates spike counts and packs the spike train bit by bit."""

    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)
    counts: np.ndarray = LavaPyType(np.ndarray, np.int64)
    train: np.ndarray = LavaPyType(np.ndarray, np.int64)

    def run_spk(self):
        spikes = self.s_in.recv() != 0
        self.counts += spikes
        record_steps = self.proc_params["record_steps"]
        if record_steps is None:
            return
        if self.time_step > record_steps:
            raise RuntimeError(
                f"SpikeSink {self.proc_params['name']!r}: step {self.time_step} is beyond the "
                f"record_steps={record_steps} its train was sized for")
        word, bit = divmod(self.time_step - 1, TRAIN_BITS_PER_WORD)
        self.train[:, word] |= spikes.astype(np.int64) << bit
