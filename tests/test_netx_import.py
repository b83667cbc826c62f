"""netx HDF5 import: lava-dl 0.6's own test networks and ground truth (from its
wheel, installed by the Makefile; these tests skip when it is absent), files
written here in netx's format and run the way netx builds them, the round trip
through the exporter, and what is refused by name."""
import importlib.metadata
import re
from pathlib import Path

import numpy as np
import pytest

from hwmodel.errors import NetworkError
from hwmodel.simulator import simulate
from mapper import netx_format as fmt
from mapper.netx import export_netx
from mapper.quantize import quantize_network
from nxcompile.compiled import load
from nxcompile.ir import connection_matrix
from nxcompile.netx_import import check_exact, from_netx, netx_to_ir


@pytest.fixture(scope="module")
def lava_dl():
    """lava-dl 0.6.0's netx test folder (tests/lava/lib/dl/netx of its wheel)."""
    try:
        dist = importlib.metadata.distribution("lava-dl")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("lava-dl 0.6.0's wheel is not installed (its netx test networks and ground "
                    "truth): `make .venv/.installed` installs it with --no-deps")
    root = Path(dist.locate_file("tests/lava/lib/dl/netx"))
    if dist.version != "0.6.0" or not (root / "tiny.net").exists():
        pytest.skip(f"lava-dl {dist.version} installed without its netx test files (need 0.6.0)")
    return root


def _hwc(a: np.ndarray) -> np.ndarray:
    """Lava's (W, H, C, ...) -> (H, W, C, ...)."""
    return a.swapaxes(0, 1)


def _train(train: np.ndarray, shape: tuple) -> np.ndarray:
    """One sample's spike train (steps, ...) as (*shape, steps)."""
    return np.moveaxis(np.asarray(train).reshape(len(train), *shape), 0, -1)


# -- lava-dl's own networks -----------------------------------------------------------

def test_tinynet_reproduces_lava_dl_ground_truth_and_runs_on_lava(lava_dl, tmp_path):
    """lava-dl's test_tinynet: input bias mantissas from gts, u and v of block i
    reset every 17 steps (io.reset.Reset(17, offset=i-1), which is
    hdf5.Network(reset_interval=17)), output spikes of steps 2..16 against the
    ground truth; Lava equals the reference simulator in every layer."""
    compiled = from_netx(lava_dl / "tiny.net", reset_interval=17)
    net = compiled.network
    assert list(net.layers) == ["input0", "conv1", "conv2"]
    assert compiled.num_cores == 3
    assert [(lay.reset_interval, lay.reset_offset) for lay in net.layers.values()] == \
        [(17, 1), (17, 2), (17, 3)]
    x = _hwc(np.load(lava_dl / "gts/tinynet/input_bias.npy"))[None]      # (1, 16, 16, 3)
    steps, layers = 17 + 3, list(net.layers)
    ref = compiled.run(x, steps, record=layers)
    gt = _hwc(np.load(lava_dl / "gts/tinynet/output.npy")[0].transpose(2, 1, 0, 3))[..., 1:]
    assert gt.sum() == 92
    np.testing.assert_array_equal(_train(ref.trains["conv2"][0], (1, 1, 36))[..., 2:17], gt)
    lava = compiled.run(x, steps, backend="lava", record=layers)
    for name in layers:
        np.testing.assert_array_equal(lava.trains[name], ref.trains[name], err_msg=name)
    np.testing.assert_array_equal(lava.voltages, ref.voltages)
    compiled.save(tmp_path / "tiny.nxc")           # the reset schedule and input mode are kept
    again = load(tmp_path / "tiny.nxc").run(x, steps, record=layers)
    for name in layers:
        np.testing.assert_array_equal(again.trains[name], ref.trains[name], err_msg=name)
    no_reset = from_netx(lava_dl / "tiny.net").run(x, steps, record=["conv2"])
    assert not np.array_equal(no_reset.trains["conv2"], ref.trains["conv2"])


def test_pilotnet_lif_reproduces_lava_dl_ground_truth(lava_dl):
    """PilotNet LIF (5 conv with strides (2, 2) and (2, 1), padding (1, 0), 4
    dense; 170 cores, so the reference simulator): the spikes of every block over
    the 24 recorded steps and the voltages of the neurons that did not fire at
    the last step equal lava-dl's ground truth with netx's reset schedule and
    interval 17 (input.npy, conv-k, fc-k; the 16-step interval of lava-dl's
    hardware test differs from step 17 on).  Where a neuron fired, the ground
    truth records v = 128 (the next step integrates from 0, as here)."""
    root = lava_dl / "gts/pilotnet_lif"
    ir = netx_to_ir(root / "network.net", reset_interval=17)
    net, _ = quantize_network(ir)
    check_exact(ir, net)
    x = _hwc(np.load(root / "image.npy"))[None]
    names = list(net.layers)
    assert names == ["input0", "conv1", "conv2", "conv3", "conv4", "conv5", "dense7", "dense8",
                     "dense9", "dense10"]
    ref = simulate(net, x, 24, record=names, progress=False)
    truth = ["input"] + [f"conv-{k}" for k in range(5)] + [f"fc-{k}" for k in range(3)]
    for name, key in zip(names[:-1], truth):
        want = np.load(root / f"{key}.npy")
        want = _hwc(want) if want.ndim == 4 else want
        assert want.any(), key
        np.testing.assert_array_equal(_train(ref.trains[name][0], net.layers[name].shape), want,
                                      err_msg=name)
        if name == "input0":           # no voltage ground truth for the input block
            continue
        net.output_layer = name
        v = simulate(net, x, 24, progress=False).voltages[name][0].reshape(
            net.layers[name].shape)
        want_v = np.load(root / f"{key}-v.npy")[..., 23]
        want_v = _hwc(want_v) if want_v.ndim == 3 else want_v
        fired = want[..., 23]
        np.testing.assert_array_equal(v[~fired], want_v[~fired], err_msg=name)
        assert np.all(v[fired] == 0) and np.all(want_v[fired] == 128), name


def test_mnist_default_readout_is_refused_and_the_rest_runs_on_lava(lava_dl):
    """mnist.net's last block has no neuron group (netx's default readout, not a
    Loihi 1 neuron): refused by name; num_layers=3 imports the blocks before it,
    which Lava runs bit for bit like the reference simulator."""
    with pytest.raises(NetworkError, match=r"netx file mnist.net, layer/3 \(dense\): no neuron "
                       r"group; netx's default readout \(vThMant 2\*\*17 = 131072.*limit 131071"):
        netx_to_ir(lava_dl / "mnist.net")
    compiled = from_netx(lava_dl / "mnist.net", num_layers=3)
    net = compiled.network
    assert list(net.layers) == ["input0", "dense1", "dense2"] and compiled.num_cores == 7
    assert net.layers["input0"].input_mode == "bias_mant" and net.layers["dense1"].dv == 123
    x = np.random.default_rng(3).integers(0, 141, (1, 784))     # mantissas 64 + 76 * pixel
    layers = list(net.layers)
    ref = compiled.run(x, 16, record=layers)
    assert all(ref.trains[n].any() for n in layers)
    lava = compiled.run(x, 16, backend="lava", record=layers)
    for name in layers:
        np.testing.assert_array_equal(lava.trains[name], ref.trains[name], err_msg=name)
    np.testing.assert_array_equal(lava.voltages, ref.voltages)


def test_ntidigits_delays_run_as_netx_runs_them(lava_dl, tmp_path):
    """ntidigits.net (64-256-256-242 dense, per-neuron axonal delays 0..62 in two
    blocks; its average readout skipped with num_layers=5, as lava-dl's test
    does): the output spikes of all 3000 steps equal lava-dl's ground truth one
    step later (gts/ntidigits/output.npy starts with an empty step; netx's own
    run on Lava, measured for 300 steps, equals nxcompile's reference step for
    step, and lava-dl's test compares only output[:, -1] with gt[:, 1]); Lava's
    DelaySparse equals the reference in every layer; the model file keeps it."""
    compiled = from_netx(lava_dl / "gts/ntidigits/ntidigits.net", num_layers=5)
    net = compiled.network
    assert list(net.layers) == ["input0", "dense2", "dense3", "dense4"]
    assert [c.max_delay for c in net.connections] == [62, 62, 0]
    words = {c.layer: c.words_per_axon for c in compiled.partition.cores}
    assert words == {"input0": 0, "dense2": 58, "dense3": 58, "dense4": 34}   # 8 + 6 delay bits
    inp = np.load(lava_dl / "gts/ntidigits/input.npy")                   # (64, 3000) spikes
    gt = np.load(lava_dl / "gts/ntidigits/output.npy")                   # (242, 3000)
    x = inp.T[None]
    train = compiled.run(x, inp.shape[1], record=["dense4"]).trains["dense4"][0].T
    assert train.sum() == gt.sum() == 22572 and not gt[:, 0].any()
    np.testing.assert_array_equal(train[:, :-1], gt[:, 1:])
    layers = list(net.layers)[1:]
    short = compiled.run(x[:, :130], 130, record=layers)      # 2 x 63: both delay lines wrap
    lava = compiled.run(x[:, :130], 130, backend="lava", record=layers)
    for name in layers:
        assert short.trains[name].any()
        np.testing.assert_array_equal(lava.trains[name], short.trains[name], err_msg=name)
    again = load(compiled.save(tmp_path / "ntidigits.nxc"))
    np.testing.assert_array_equal(again.run(x[:, :130], 130, record=["dense4"]).trains["dense4"],
                                  short.trains["dense4"])


def test_what_loihi1_cannot_run_is_refused_by_name(lava_dl):
    with pytest.raises(NetworkError, match=r"network.net, layer/0 \(input\): neuron type SDNN "
                       r"\(sigma-delta neurons with graded spikes\) needs Loihi 2"):
        netx_to_ir(lava_dl / "gts/pilotnet_sdnn/network.net")


def test_readme_netx_block_runs(lava_dl, capsys):
    """The README's netx import example runs as written and its Lava spikes are
    the reference simulator's."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "from_netx" in b)
    scope = {}
    exec(compile(block, "README.md", "exec"), scope)
    res, compiled = scope["res"], scope["compiled"]
    assert int(res.trains["conv2"].sum()) == 117
    ref = compiled.run(scope["bias"], num_steps=20, record="conv2")
    np.testing.assert_array_equal(res.trains["conv2"], ref.trains["conv2"])
    assert "total: 3 cores" in capsys.readouterr().out


# -- files written here in netx's format ----------------------------------------------

NEURON = fmt.neuron_entry(vth=40, du=1023, dv=300)


def _geometry_blocks(rng) -> list:
    """input (C, H, W) = (2, 7, 6) spikes -> conv 3x2 kernel, stride (2, 1),
    padding (1, 0), per-channel bias -> depthwise 3x3 x2 -> flatten -> dense
    with a 1-D stored weight and per-neuron bias."""
    even = lambda *shape: 2 * rng.integers(-12, 16, shape)      # noqa: E731  (8-bit mixed grid)
    return [
        {"type": "input", "shape": [2, 7, 6]},
        {"type": "conv", "shape": [4, 4, 5], "weight": even(4, 2, 3, 2), "stride": [2, 1],
         "padding": [1, 0], "dilation": [1, 1], "groups": 1, "bias": rng.integers(-2, 4, 4),
         "neuron": NEURON},
        {"type": "conv", "shape": [8, 2, 3], "weight": even(8, 1, 3, 3), "stride": [1, 1],
         "padding": [0, 0], "dilation": [1, 1], "groups": 4, "neuron": NEURON},
        {"type": "flatten", "shape": [48]},
        {"type": "dense", "shape": [5], "weight": even(5 * 48), "bias": rng.integers(0, 3, 5),
         "neuron": NEURON},
    ]


def test_geometry_runs_as_netx_builds_it_on_lava(tmp_path):
    """Non-square kernel, strides, symmetric padding, depthwise groups, flatten
    in (C, H, W) order, a 1-D stored dense weight and biases: the imported
    network's spikes equal those of the Lava processes built from the file the
    way netx builds them (tests.test_netx.read_netx)."""
    from tests.test_netx import _to_hwc, run_netx_file
    rng = np.random.default_rng(4)
    path = fmt.write_file(tmp_path / "geometry.net", _geometry_blocks(rng))
    ir = netx_to_ir(path)
    assert [ir.layer(n).kind for n in ir.order()] == ["input", "conv2d", "depthwise_conv2d",
                                                      "dense"]
    net, _ = quantize_network(ir)
    check_exact(ir, net)
    steps = 25
    spikes = rng.random((1, steps, 7, 6, 2)) < 0.5
    layers = list(net.layers)
    ref = simulate(net, spikes, steps, record=layers, progress=False)
    for name in layers:
        assert ref.trains[name].any(), name
    trains = run_netx_file(path, spikes[0].transpose(0, 2, 1, 3), steps)
    for name, train in zip(layers[1:], trains):
        np.testing.assert_array_equal(_to_hwc(train, net.layers[name].shape),
                                      ref.trains[name][0], err_msg=name)


def test_pool_block_is_sum_pooling_per_channel(tmp_path):
    """slayer's pool block (one weight per window tap, shared by all channels;
    netx 0.6 does not build it) becomes a depthwise convolution."""
    path = fmt.write_file(tmp_path / "pool.net", [
        {"type": "input", "shape": [3, 4, 4]},
        {"type": "pool", "shape": [3, 2, 2], "weight": np.full((1, 1, 2, 2), 6),
         "kernelSize": [2, 2], "stride": [2, 2], "padding": [0, 0], "dilation": [1, 1],
         "neuron": NEURON}])
    ir = netx_to_ir(path)
    spec = ir.connection("input0", "pool1")
    assert spec.kind == "depthwise_conv2d" and ir.layer("pool1").shape == (2, 2, 3)
    m = connection_matrix(spec, (2, 2, 3)).toarray()
    # target (0, 0, c) sums source pixels (0..1, 0..1) of channel c with weight 6
    want = np.zeros((4, 4, 3))
    want[:2, :2, 1] = 6
    np.testing.assert_array_equal(m[1], want.ravel())
    assert np.count_nonzero(m) == 48


def test_export_then_import_gives_the_same_integers(tmp_path):
    """nxcompile -> netx -> nxcompile: every non-input layer keeps its weights,
    biases, threshold and decays (the input becomes a spike input: the exporter
    does not describe a bias-mode input)."""
    from tests.test_netx import _cnn
    ir = _cnn(np.random.default_rng(5))
    net, _ = quantize_network(ir)
    back_ir = netx_to_ir(export_netx(ir, net, tmp_path / "cnn.h5"))
    back, _ = quantize_network(back_ir)
    check_exact(back_ir, back)
    pairs = list(zip(ir.order(), back_ir.order()))
    assert [b for _, b in pairs] == ["input0", "conv1", "conv2", "conv3", "dense5", "dense6"]
    conns = {(c.source, c.target): c for c in back.connections}
    for (src, bsrc), (name, bname) in zip(pairs, pairs[1:]):
        a, b = net.layers[name], back.layers[bname]
        assert (a.vth, a.du, a.dv) == (b.vth, b.du, b.dv), name
        np.testing.assert_array_equal(a.bias_mant << a.bias_exp, b.bias_mant << b.bias_exp)
        wa = next(c for c in net.connections if c.target == name)
        wb = conns[bsrc, bname]
        np.testing.assert_array_equal((wa.matrix().toarray() << wa.weight_exp),
                                      (wb.matrix().toarray() << wb.weight_exp), err_msg=name)


def _refused(tmp_path, blocks, match):
    path = fmt.write_file(tmp_path / "bad.net", blocks)
    with pytest.raises(NetworkError, match=match):
        from_netx(path)


def test_bad_files_are_refused_by_name(tmp_path):
    inp = {"type": "input", "shape": [2, 4, 4]}
    conv = {"type": "conv", "shape": [2, 2, 2], "weight": np.full((2, 2, 3, 3), 2),
            "stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1,
            "neuron": NEURON}
    _refused(tmp_path, [inp, {**conv, "dilation": [2, 2]}],
             r"bad.net, layer/1 \(conv\): dilation \(2, 2\); only \(1, 1\)")
    _refused(tmp_path, [inp, {**conv, "shape": [2, 3, 3]}],
             r"layer/1 \(conv\): shape \(H, W, C\) \(3, 3, 2\), but kernel \(3, 3\), stride "
             r"\(1, 1\) and padding \(0, 0\) on input0 \(4, 4, 2\) give \(2, 2, 2\)")
    _refused(tmp_path, [{"type": "input", "shape": [4, 4, 4]},
                        {**conv, "weight": np.full((4, 2, 3, 3), 2), "shape": [4, 2, 2],
                         "groups": 2}],
             r"layer/1 \(conv\): groups=2 with 4 input channels")
    _refused(tmp_path, [inp, conv, {"type": "dense", "shape": [3], "weight": np.ones((3, 8)),
                                    "neuron": NEURON}],
             r"layer/2 \(dense\): reads the spatial layer conv1 \(2, 2, 2\) without a flatten")
    _refused(tmp_path, [inp, {**conv, "neuron": {**NEURON, "type": "RF"}}],
             r"layer/1 \(conv\): neuron type RF \(resonate-and-fire neurons\) needs Loihi 2")
    _refused(tmp_path, [inp, {**conv, "neuron": {**NEURON, "gradedSpike": 1}}],
             r"layer/1 \(conv\): graded spikes need Loihi 2")
    _refused(tmp_path, [inp, {**conv, "neuron": {**NEURON, "iDecay": 0}}],
             r"layer/1 \(conv\): neuron iDecay=0 outside 1..4096")
    _refused(tmp_path, [inp, conv, {"type": "average", "shape": [1, 1, 1]}],
             r"layer/2 \(average\): not supported \(netx 0.6 does not build it either\); "
             r"num_layers=2 imports")
    _refused(tmp_path, [inp, {**conv, "weight": np.full((2, 2, 3, 3), 3)
                              * np.array([1, -1])[:, None, None, None]}],
             r"layer conv1: weight 3 from input0 becomes 4 \(weight exponent 0, mixed sign")
    _refused(tmp_path, [inp, {**conv, "bias": [1, 2, 3]}],
             r"layer/1 \(conv\): 3 biases for output shape \(2, 2, 2\)")
    _refused(tmp_path, [inp, {"type": "pool", "shape": [2, 2, 2], "weight": np.ones((2, 1, 3, 3)),
                              "stride": [1, 1], "padding": [0, 0], "neuron": NEURON}],
             r"layer/1 \(pool\): pool weight of shape \(2, 1, 3, 3\)")
    dense = {"type": "dense", "shape": [3], "weight": np.full((3, 32), 2), "neuron": NEURON}
    flat = {"type": "input", "shape": [32]}
    _refused(tmp_path, [flat, {**dense, "delay": np.full(3, 63.0)}],
             r"bad.net, layer/1 \(dense\): delay 63 steps outside 0..62, what a Loihi 1 "
             r"synapse holds \(netx clamps to 62\)")
    _refused(tmp_path, [flat, {**dense, "delay": np.full(3, -1.0)}],
             r"layer/1 \(dense\): delay -1 steps outside 0..62")
    _refused(tmp_path, [flat, {**dense, "delay": np.ones(5)}],
             r"layer/1 \(dense\): delay of shape \(5,\) fits neither the weight \(3, 32\)")
    _refused(tmp_path, [inp, {**conv, "delay": np.ones(8)}],
             r"layer/1 \(conv\): synaptic delays up to 1 steps; nxcompile takes per-synapse "
             r"delays on dense blocks only")
    _refused(tmp_path, [inp, {**conv, "bias": [5000, 0]}],
             r"bad.net, layer/1 \(conv\): bias 5000 outside the 13-bit bias mantissa "
             r"-4096..4095")
