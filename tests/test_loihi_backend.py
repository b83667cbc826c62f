"""backend='loihi' without Intel's lava-loihi: everything up to the board is
checked and the user is told what to install and where."""
import multiprocessing

import numpy as np
import pytest

from mapper import lava_compat  # noqa: F401  (before lava)
from lava.proc.lif.process import LIF
from lava.proc.sparse.process import Sparse
from lava.utils import loihi

from mapper.lava_network import build_lava_network
from mapper.loihi import HOST_ENV, LoihiUnavailableError, check_hardware_models, select_host
from mapper.procs.process import SpikeSink
from nxcompile.compiler import compile_ir
from tests.helpers import dense_chain

pytestmark = pytest.mark.skipif(loihi.is_installed(),
                                reason="lava-loihi is installed: the error path does not apply")


def _compiled(reset):
    return compile_ir(dense_chain([12, 8, 4], np.random.default_rng(0), reset=reset,
                                  bias_scale=0.1), board="loihi2")


def test_missing_lava_loihi_says_what_to_install_and_where(monkeypatch):
    monkeypatch.setenv(HOST_ENV, "10.0.0.1")
    compiled = _compiled("hard")
    x = np.random.default_rng(1).random((2, 12))
    with pytest.raises(LoihiUnavailableError) as err:
        compiled.run(x, 10, backend="loihi")
    message = str(err.value)
    for needed in ("lava-loihi", "not on PyPI", "Intel Neuromorphic Research Community",
                   "INRC", "lava-nc==0.10.0", "backend='lava'"):
        assert needed in message
    with pytest.raises(LoihiUnavailableError, match="lava-loihi"):
        select_host()
    assert multiprocessing.active_children() == []      # nothing was started


def test_soft_reset_has_no_hardware_model_and_is_refused_first():
    compiled = _compiled("soft")
    with pytest.raises(ValueError, match=r"backend='loihi': layers \['inp', 'dense0', 'dense1'\] "
                                         r"use soft reset, whose two-compartment neuron has no "
                                         r"Loihi 2 hardware model"):
        compiled.run(np.zeros((1, 12)), 10, backend="loihi")


def test_spike_input_layer_is_no_neuron_and_needs_no_model():
    compiled = compile_ir(dense_chain([12, 4], np.random.default_rng(0), reset="soft",
                                      input_mode="spikes"), board="loihi2")
    compiled.network.layers["dense0"].reset = "hard"
    check_hardware_models(compiled.network)     # the soft spike-input layer has no neurons


def test_the_board_gets_the_processes_that_have_hardware_models():
    """The Lava graph the board path hands to Loihi2HwCfg: LIF and Sparse (NeuroCore
    models in lava-loihi) and the host-side sinks; the same graph runs bit-exactly
    on the simulator (tests/test_lava_backend.py)."""
    compiled = _compiled("hard")
    net, part = compiled.network, compiled.partition
    lnet = build_lava_network(net, part, np.full(12, 0.5), 10)
    assert {type(p) for p in lnet.neurons.values()} == {LIF}
    assert {type(s) for blocks in lnet.synapses.values() for s in blocks} == {Sparse}
    assert {type(s) for s in lnet.sinks.values()} == {SpikeSink}
