"""backend='loihi': the Lava network of mapper.lava_network on a Loihi 2 board.

The very processes that run on Lava's simulator (one neuron process per core,
one Sparse per core pair, sinks) are compiled with Loihi2HwCfg, which takes a
process's NeuroCore model where Intel's lava-loihi provides one (meant for LIF
and Sparse) and otherwise a Python model on the host (the input RingBuffers
and the SpikeSinks).  A layer's initial voltage (IntLayer.v_init) is its LIF
process's initial `v`, as on Lava's simulator, for lava-loihi to load into the
compartments (untested, as below).  Soft-reset layers are refused: SoftResetLIF has no
hardware model.  The partition fixes which neurons share a process; lava-loihi's
own compiler places the processes on cores.  The host is chosen with lava.utils.loihi: the SLURM
scheduler where `sinfo` answers (Intel's neuromorphic cloud), otherwise the
Loihi host whose address is in $NXCOMPILE_LOIHI_HOST (use_ethernet_host).

lava-loihi is distributed only to members of Intel's Neuromorphic Research
Community, so everything after the check that it is installed has never run
in this project: which lava-loihi versions accept these processes, how the
chip-to-host sink connections perform, and whether Loihi 2's LIF microcode
matches the fixed-point simulation bit for bit are all untested.
"""
from __future__ import annotations

import mapper.lava_compat  # noqa: F401  (before any lava import)

import os

import numpy as np
from lava.magma.core.run_configs import Loihi2HwCfg
from lava.utils import loihi, slurm

from hwmodel.backend import Backend, RunOutput
from hwmodel.errors import NetworkError, NxCompileError
from hwmodel.network import IntNetwork
from hwmodel.partition import Partition
from mapper.lava_run import run_lava

HOST_ENV = "NXCOMPILE_LOIHI_HOST"
INSTALL_HELP = (
    "backend='loihi' needs Intel's lava-loihi (the Loihi 2 extension of lava-nc), which is "
    "not on PyPI: it is available to members of the Intel Neuromorphic Research Community "
    "(INRC, https://www.intel.com/content/www/us/en/research/neuromorphic-community.html). "
    "Install it into this environment next to lava-nc==0.10.0 as Intel's INRC instructions "
    "describe, or run backend='lava' (Lava's bit-accurate CPU simulator) instead")


class LoihiUnavailableError(NxCompileError, RuntimeError):
    """No Loihi board can be used: lava-loihi is missing or no host is reachable."""


def check_hardware_models(net: IntNetwork) -> None:
    """Raise ValueError naming the layers whose neuron process has no Loihi 2
    hardware model: soft-reset layers (SoftResetLIF has only the Python model
    of mapper.procs; NxTF's two-compartment neuron is a Loihi 1 configuration)."""
    soft = [name for name, layer in net.layers.items()
            if layer.reset == "soft" and not (layer.is_input and layer.input_mode == "spikes")]
    if soft:
        raise NetworkError(
            f"backend='loihi': layers {soft} use soft reset, whose two-compartment neuron has no "
            f"Loihi 2 hardware model here (only a Python model); compile them with "
            f"resetMode='hard' to run on a board, or use backend='lava'")


def select_host() -> str:
    """Point lava at a Loihi host and return how ('SLURM' or the address).

    Raises LoihiUnavailableError if lava-loihi is not installed (INSTALL_HELP)
    or no host is known."""
    if not loihi.is_installed():
        raise LoihiUnavailableError(INSTALL_HELP)
    if slurm.is_available():
        loihi.use_slurm_host()
        return "SLURM"
    address = os.environ.get(HOST_ENV)
    if not address:
        raise LoihiUnavailableError(
            f"lava-loihi is installed but no Loihi host is known: SLURM's sinfo does not answer "
            f"and ${HOST_ENV} (the address of a Loihi 2 host) is not set")
    loihi.use_ethernet_host(address)
    return address


def run_loihi(net: IntNetwork, partition: Partition, x: np.ndarray, num_steps: int,
              record=()) -> RunOutput:
    """Run a batch on a Loihi 2 board, one sample at a time with the state reset
    in between (run_lava with one lane: each core holds its own neurons only)."""
    check_hardware_models(net)
    select_host()
    return run_lava(net, partition, x, num_steps, record, run_cfg=Loihi2HwCfg(), lanes=1)


BACKEND = Backend("loihi", run_loihi)
