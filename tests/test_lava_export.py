"""CompiledModel.to_lava: the compiled network as Lava processes that a Lava user
connects to processes of their own; runs equal the reference simulator bit for bit."""
import mapper.lava_compat  # noqa: F401  (before any lava import)

import dataclasses
import importlib.util

import numpy as np
import pytest
from lava.proc.io.sink import RingBuffer as Recorder
from lava.proc.io.source import RingBuffer as Source

from hwmodel.errors import NetworkError
from hwmodel.limits import LOIHI1, Board, ChipSpec
from mapper.lava_run import running
from nxcompile.compiler import compile_ir
from tests.helpers import ROOT, NetBuilder, dense_chain

T = 12


def _example():
    spec = importlib.util.spec_from_file_location("lava_interop", ROOT / "examples" / "lava_interop.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_equals_the_reference_simulator():
    example = _example()
    compiled = example.compile_network()
    spikes = np.random.default_rng(1).random((T, *example.SHAPE)) < 0.3
    lava = example.run_on_lava(compiled, spikes)
    ref = compiled.run(spikes[None], T, record=["readout"]).trains["readout"][0]
    assert lava.shape == (T, 5) and 0 < lava.sum() < lava.size
    np.testing.assert_array_equal(lava, ref)


def _small_board(**limits):
    """40 compartments per core: layers split over several cores."""
    return Board("small", ChipSpec("small", dataclasses.replace(LOIHI1.core, compartments=40,
                                                                **limits), 64), 1)


def _record(compiled, net, steps):
    """Recorders on every output core's s_out (same step) and on connect_output (a step
    later); returns the output trains (T, n) both ways, flat HWC order."""
    per_core = {c: Recorder(shape=p.shape, buffer=steps) for c, p in net.output_ports.items()}
    for c, port in net.output_ports.items():
        port.connect(per_core[c].a_in)
    whole = Recorder(shape=(net.n_output,), buffer=steps)
    net.connect_output(whole.a_in)
    with running(whole, steps):
        direct = {c: r.data.get() for c, r in per_core.items()}
        gathered = whole.data.get()
    train = np.zeros((steps, net.n_output), bool)
    for c, data in direct.items():
        train[:, net.output_neurons[c]] = data.T
    return train[:-1], gathered.T[1:].astype(bool)


def test_spike_input_split_over_cores_and_output_over_cores():
    rng = np.random.default_rng(3)
    b = NetBuilder((6, 6, 2), rng, input_mode="spikes")
    b.conv(3, 3, padding="same")                          # 108 neurons: 3 cores of 40
    compiled = compile_ir(b.ir, board=_small_board(output_axons=40))
    cores = [c.layer for c in compiled.partition.cores]
    assert cores.count("inp") > 1 and cores.count(b.current) > 1
    spikes = rng.random((T, 6, 6, 2)) < 0.4
    net = compiled.to_lava()
    assert len(net.input_ports) == cores.count(b.current)       # inputs merged into one
    assert sorted(np.concatenate(list(net.output_neurons.values()))) == list(range(108))
    net.connect_input(Source(data=spikes.reshape(T, -1).T.astype(np.int32)).s_out)
    direct, gathered = _record(compiled, net, T + 1)
    ref = compiled.run(spikes[None], T, record=[b.current]).trains[b.current][0].reshape(T, -1)
    assert 0 < ref.sum() < ref.size
    np.testing.assert_array_equal(direct, ref)
    np.testing.assert_array_equal(gathered, ref)


def test_bias_input_takes_the_frame():
    rng = np.random.default_rng(4)
    compiled = compile_ir(dense_chain([10, 50], rng), board=_small_board())
    frame = rng.uniform(0, 1, 10)
    net = compiled.to_lava(frame)
    assert net.input_ports == [] and len(net.output_ports) == 2
    direct, gathered = _record(compiled, net, T + 1)
    ref = compiled.run(frame[None], T, record=["dense0"]).trains["dense0"][0]
    assert 0 < ref.sum() < ref.size
    np.testing.assert_array_equal(direct, ref)
    np.testing.assert_array_equal(gathered, ref)
    with pytest.raises(NetworkError, match=r"layer inp: the input is in bias mode"):
        net.connect_input(Source(data=np.zeros((10, T), np.int32)).s_out)
    with pytest.raises(NetworkError, match=r"layer inp: frame of shape \(3,\), the input layer is "
                                           r"\(10,\)"):
        compiled.to_lava(np.zeros(3))


def test_spike_input_refuses_a_frame_and_a_source_of_another_shape():
    compiled = _example().compile_network()
    with pytest.raises(NetworkError, match=r"layer spikes: spike input mode takes its spikes"):
        compiled.to_lava(np.zeros((8, 8, 1)))
    net = compiled.to_lava()
    with pytest.raises(NetworkError, match=r"layer spikes: a source port of shape \(63,\), the "
                                           r"network's is \(64,\)"):
        net.connect_input(Source(data=np.zeros((63, T), np.int32)).s_out)
    with pytest.raises(NetworkError, match=r"layer readout: a sink port of shape \(4,\), the "
                                           r"network's is \(5,\)"):
        net.connect_output(Recorder(shape=(4,), buffer=T).a_in)
