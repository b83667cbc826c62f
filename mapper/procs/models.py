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

from mapper.procs.process import TRAIN_BITS_PER_WORD, SoftResetLIF, SpikeSink


@implements(proc=SoftResetLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySoftResetLifModelFixed(AbstractPyLifModelFixed):
    """Both compartments of SoftResetLIF, bit-accurate.

    The integrating compartment is Lava's fixed-point LIF sub-threshold update
    (AbstractPyLifModelFixed: the same code as PyLifModelBitAcc); the spiking
    compartment and its back-action on the integrator follow the Process
    docstring, all within one time step.
    """

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)
    v_soma: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.effective_vth = 0

    def scale_threshold(self):
        self.effective_vth = np.left_shift(self.vth, self.vth_shift)
        self.isthrscaled = True

    def run_spk(self):
        a_in = self.a_in.recv()
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        self.subthr_dynamics(activation_in=a_in)    # integrating compartment: u, v
        self.v_soma[:] = self.v                     # join: the spiking compartment's input
        spikes = self.v_soma > self.effective_vth
        self.v_soma[spikes] = 0                     # the spiking compartment resets
        self.v[spikes] -= self.effective_vth        # and its spike lowers the integrator
        self.s_out.send(spikes)


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
