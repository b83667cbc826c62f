"""Per-synapse delays: the delay field (hwmodel.synapse_format), the IR's and the
integer network's checks, the reference simulator's delay line against Lava's
DelaySparse (which delay arrives at which step; random networks on split
cores, lanes side by side, shared sign), the resource model's delay bits and
connection sharing (the search's count equals the validator's recount), and
the model file."""
import numpy as np
import pytest
import scipy.sparse as sp

from hwmodel import synapse_format as sf
from hwmodel.errors import NetworkError
from hwmodel.limits import get_board
from hwmodel.partition import Core, Partition
from hwmodel.simulator import simulate
from mapper.checks import check_network
from mapper.lava_run import run_lava
from mapper.quantize import quantize_network
from nxcompile.compiled import load
from nxcompile.compiler import compile_ir
from nxcompile.ir import ConnectionSpec, LayerSpec, NetworkIR, NeuronSpec
from partitioner.edges import make_edge
from partitioner.graph import PartitionGraph
from partitioner.pipeline import partition_network
from partitioner.tiling import Tiling
from partitioner.validate import recount


def test_delay_field_width():
    """NxTF's numDelayBits: none, else 3..6 bits; Loihi 1's delays reach 62."""
    assert [sf.delay_bits(d) for d in (0, 1, 7, 8, 15, 16, 31, 32, 62)] == \
        [0, 3, 3, 4, 4, 5, 5, 6, 6]
    assert sf.delay_bits(sf.DELAY_MAX) == sf.MAX_DELAY_BITS


def _chain(delays, kernel, neuron=None, input_mode="spikes"):
    """inp (n_in) -> out (n_out), one dense connection with these delays."""
    n_in, n_out = kernel.shape
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (n_in,), input_mode=input_mode))
    ir.add_layer(LayerSpec("out", "dense", (n_out,), neuron=neuron or NeuronSpec()))
    ir.connect("inp", "out", ConnectionSpec("dense", (n_in,), kernel=kernel, delays=delays))
    return ir


def test_delay_limits_at_and_past_the_limit():
    kernel = np.ones((2, 3))
    _chain(np.full((2, 3), 62), kernel).validate()
    for bad, match in ((63, r"delay 63 steps outside 0..62"), (-1, r"delay -1 steps outside"),
                       (1.5, r"delays must be integers")):
        with pytest.raises(NetworkError, match=r"connection inp->out: " + match):
            _chain(np.full((2, 3), bad), kernel).validate()
    with pytest.raises(NetworkError, match=r"delays of shape \(3, 2\), the kernel has \(2, 3\)"):
        _chain(np.ones((3, 2), int), kernel).validate()
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (4, 4, 1)))
    ir.add_layer(LayerSpec("c", "conv2d", (2, 2, 1)))
    ir.connect("inp", "c", ConnectionSpec("conv2d", (4, 4, 1), kernel=np.ones((3, 3, 1, 1)),
                                          delays=np.ones((3, 3, 1, 1), int)))
    with pytest.raises(NetworkError, match=r"connection inp->c: per-synapse delays on a conv2d "
                       r"connection; delays are supported on dense connections only"):
        ir.validate()
    net, _ = quantize_network(_chain(np.full((2, 3), 62), kernel))
    conn = net.connections[0]
    assert conn.max_delay == 62 and conn.window is None
    conn.delays = sp.csr_matrix(np.full((3, 2), 63))
    with pytest.raises(NetworkError, match=r"inp->out: delay \(time steps\)=63 outside 0..62"):
        check_network(net)
    conn.delays = sp.csr_matrix(np.full((3, 4), 1))
    with pytest.raises(NetworkError, match=r"delays must be a sparse matrix of the weights' "
                       r"shape \(3, 2\)"):
        check_network(net)


def _one_core_each(net):
    return Partition(board=get_board("loihi1"), cores=[
        Core(index=i, chip=0, layer=name, neurons=np.arange(layer.n))
        for i, (name, layer) in enumerate(net.layers.items())])


def test_delay_d_arrives_d_steps_after_the_one_step_hop():
    """A spike of input neuron j at step 0 through a synapse of delay d_j makes
    output neuron j fire at step 1 + d_j, on the reference simulator and on
    Lava's DelaySparse alike (delay 0 is the one-step hop of every connection)."""
    d = np.array([0, 1, 4, 9])
    ir = _chain(np.diag(d), np.eye(4) * 2.0, NeuronSpec(threshold=1.0))
    net, _ = quantize_network(ir)
    x = np.zeros((1, 14, 4), np.int8)
    x[0, 0] = 1
    ref = simulate(net, x, 14, record=["out"])
    assert [int(np.argmax(ref.trains["out"][0, :, j])) for j in range(4)] == list(1 + d)
    assert ref.trains["out"].sum() == 4
    lava = run_lava(net, _one_core_each(net), x, 14, record=["out"])
    np.testing.assert_array_equal(lava.trains["out"], ref.trains["out"])


def _random_net(rng, shared_sign):
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (12,), input_mode="spikes"))
    ir.add_layer(LayerSpec("h", "dense", (10,), neuron=NeuronSpec(
        decay_u=3000, decay_v=200, shared_sign=shared_sign)))
    ir.add_layer(LayerSpec("out", "dense", (6,), neuron=NeuronSpec(shared_sign=shared_sign)))
    ir.connect("inp", "h", ConnectionSpec("dense", (12,), kernel=rng.normal(0.4, 0.5, (12, 10)),
                                          delays=rng.integers(0, 6, (12, 10))))
    ir.connect("h", "out", ConnectionSpec("dense", (10,), kernel=rng.normal(0.4, 0.5, (10, 6)),
                                          delays=rng.integers(0, 4, (10, 6))))
    return ir


@pytest.mark.parametrize("shared_sign", [False, True])
def test_random_delays_run_on_lava_as_on_the_reference(shared_sign):
    """Random delays 0..5 and 0..3, every layer split over two cores in a
    shuffled order, 3 samples in rounds of 2 lanes: Lava equals the reference in
    every spike and the output voltages; the delays change the run."""
    rng = np.random.default_rng(1)
    net, _ = quantize_network(_random_net(rng, shared_sign))
    assert [c.max_delay for c in net.connections] == [5, 3]
    assert [c.sign_mode for c in net.connections] == ["shared" if shared_sign else "mixed"] * 2
    cores = []
    for name, layer in net.layers.items():
        for part in np.array_split(rng.permutation(layer.n), 2):
            cores.append(Core(index=len(cores), chip=0, layer=name, neurons=np.sort(part)))
    partition = Partition(board=get_board("loihi1"), cores=cores)
    x = (rng.random((3, 30, 12)) < 0.3).astype(np.int8)
    ref = simulate(net, x, 30, record=["h", "out"])
    assert ref.trains["out"].sum() > 50
    lava = run_lava(net, partition, x, 30, record=["h", "out"], lanes=2)
    for name in ("h", "out"):
        np.testing.assert_array_equal(lava.trains[name], ref.trains[name], err_msg=name)
    np.testing.assert_array_equal(lava.voltages["out"], ref.voltages["out"])
    for conn in net.connections:
        conn.delays = None
    assert not np.array_equal(simulate(net, x, 30, record=["out"]).trains["out"],
                              ref.trains["out"])


def _sharing_ir(delays):
    """8 sources that all reach the same 8 targets with the same weights, so
    their synapse lists are identical up to their base unless delays differ."""
    return _chain(delays, np.full((8, 8), 0.5), NeuronSpec(synapse_encoding="dense"))


@pytest.mark.parametrize("delays, distinct_lists, width", [
    (None, 1, 0),
    (np.tile(np.arange(8), (8, 1)), 1, 3),                   # per target: lists still equal
    (np.repeat(np.arange(8) % 4, 8).reshape(8, 8) * 10, 4, 5),   # per source: 4 kinds
])
def test_delay_bits_and_sharing_estimate_equals_recount(delays, distinct_lists, width):
    """Every synapse stores weight + delay bits (8 + delay_bits(largest delay));
    lists with other delays are not shared.  The search's estimate (all
    sources discrete) equals the validator's recount, which equals a count by
    hand: one dense entry of 8 synapses per list."""
    ir = _sharing_ir(delays)
    graph = PartitionGraph(ir, get_board("loihi1"))
    assert graph.w_bits["out"] == 8 + width
    tiling = Tiling(shape=(8,), block=(8,))
    edge = make_edge(ir, "inp", "out")
    usage = edge.usage(tiling, np.zeros(8, bool), graph.w_bits["out"], 1,
                       graph.limits, ("dense",))
    bits = sf.ENTRY_HEADER_BITS + sf.MIN_INDEX_BITS + 8 * (8 + width)
    words = -(-(bits + sf.LIST_RESERVE_BITS) // 64)
    assert usage.words[0, 0, 0] == distinct_lists * words
    partition = Partition(board=get_board("loihi1"), cores=[
        Core(index=0, chip=0, layer="inp", neurons=np.arange(8)),
        Core(index=1, chip=0, layer="out", neurons=np.arange(8), encoding="dense")])
    assert recount(ir, partition)[1].synapse_words == distinct_lists * words
    compiled = compile_ir(ir)          # the search's own choice, checked by the validator
    assert compiled.partition.cores_of("out")[0].synapse_words >= words


def test_model_file_keeps_the_delays(tmp_path):
    rng = np.random.default_rng(2)
    compiled = compile_ir(_random_net(rng, False))
    x = (rng.random((2, 25, 12)) < 0.3).astype(np.int8)
    ref = compiled.run(x, 25, record=["out"])
    again = load(compiled.save(tmp_path / "delays.nxc"))
    for a, b in zip(compiled.network.connections, again.network.connections):
        assert b.max_delay == a.max_delay > 0 and (a.delays != b.delays).nnz == 0
    for s, t in compiled.ir.graph.edges:
        np.testing.assert_array_equal(again.ir.connection(s, t).delays,
                                      compiled.ir.connection(s, t).delays)
    np.testing.assert_array_equal(again.run(x, 25, record=["out"]).trains["out"],
                                  ref.trains["out"])


def test_netx_export_then_import_keeps_the_delays(tmp_path):
    """export_netx writes each dense block's delays as an (out, in) `delay`
    matrix; importing the file gives the same integers and delays, and the
    same spikes."""
    from mapper.netx import export_netx
    from nxcompile.netx_import import check_exact, from_netx
    rng = np.random.default_rng(4)
    compiled = compile_ir(_random_net(rng, False))
    path = export_netx(compiled.ir, compiled.network, tmp_path / "delays.net")
    back = from_netx(path)
    check_exact(back.ir, back.network)
    for a, b in zip(compiled.network.connections, back.network.connections):
        assert (a.delays != b.delays).nnz == 0 and b.max_delay == a.max_delay > 0
    x = (rng.random((2, 25, 12)) < 0.3).astype(np.int8)
    np.testing.assert_array_equal(back.run(x, 25, record=["dense2"]).trains["dense2"],
                                  compiled.run(x, 25, record=["out"]).trains["out"])


@pytest.mark.parametrize("encoding, shared_sign", [(None, False), ("sparse", True),
                                                   ("dense2", False)])
def test_search_estimate_equals_recount_with_delays_on_several_cores(encoding, shared_sign):
    """A sparse 200 -> 1200 layer (2 cores) with delays 0..62 and few distinct
    weights, then 1200 -> 30 with identical lists whose delays differ by
    source: partition_network's validator recounts every core and fails on any
    difference from the search's estimate (EstimateMismatchError)."""
    rng = np.random.default_rng(7)
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (200,), input_mode="spikes"))
    nrn = NeuronSpec(shared_sign=shared_sign, synapse_encoding=encoding)
    ir.add_layer(LayerSpec("h", "dense", (1200,), neuron=nrn))
    ir.add_layer(LayerSpec("o", "dense", (30,), neuron=nrn))
    k = np.round(rng.normal(0, 1, (200, 1200)) * 4) / 4 * (rng.random((200, 1200)) < 0.3)
    ir.connect("inp", "h", ConnectionSpec("dense", (200,), kernel=k,
                                          delays=rng.integers(0, 63, (200, 1200))))
    by_source = rng.integers(0, 5, (1200, 1)) * np.ones((1, 30), int)
    ir.connect("h", "o", ConnectionSpec("dense", (1200,),
                                        kernel=np.tile(rng.normal(0, 1, (1, 30)), (1200, 1)),
                                        delays=by_source))
    partition = partition_network(ir, get_board("loihi1"))      # validate=True
    assert len(partition.cores_of("h")) >= 2
    assert PartitionGraph(ir, get_board("loihi1")).w_bits == {"inp": 8, "h": 14, "o": 11}
