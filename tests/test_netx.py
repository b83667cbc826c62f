"""netx HDF5 export: the file, read the way lava-dl's netx reads it (lava-dl
needs PyTorch and does not install on Python 3.11 here), runs on Lava's own
Dense and Conv processes with the spike trains of the compiled network; what
does not fit is refused with the layer and the reason."""
import h5py
import numpy as np
import pytest

from mapper import lava_compat  # noqa: F401  (before lava)
from lava.proc.conv.process import Conv
from lava.proc.dense.process import Dense
from lava.proc.io.source import RingBuffer
from lava.proc.lif.process import LIF

from hwmodel.simulator import simulate
from mapper.lava_run import running
from mapper.netx import NetxExportError, export_netx
from mapper.procs.process import SpikeSink, unpack_train
from mapper.quantize import quantize_network
from nxcompile.ir import ConnectionSpec, LayerSpec, NetworkIR, NeuronSpec

STEPS = 30


def _string(dataset) -> str:
    """A 'type' entry as netx's NetDict reads it."""
    value = dataset[0] if dataset.shape else dataset[()]
    return value.decode("ascii")


def _expand(x) -> np.ndarray:
    """netx's expand(): a (y, x) pair -> Lava's (x, y)."""
    return np.array([x, x]) if np.isscalar(x) or np.ndim(x) == 0 else np.asarray(x)[::-1]


def read_netx(path, input_spikes: np.ndarray):
    """Lava processes for a netx file, built as lava-dl 0.6's netx.hdf5.Network
    builds them (for the subset mapper.netx writes): CUBA neurons are
    LIF(vth=vThMant, du=iDecay-1, dv=vDecay, bias_exp=6); 'dense' a Dense with
    the stored weights (netx's weight-bit optimisation is exact for 8-bit-grid
    weights); 'conv' a Conv with the kernel flipped and transposed to (C_out, W,
    H, C_in); 'flatten' connects through out.transpose([2, 1, 0]).flatten().
    input_spikes: (steps, *input shape in (W, H, C)) fed at the input.
    Returns the neuron processes in layer order."""
    data = np.moveaxis(np.asarray(input_spikes, np.int32), 0, -1)
    port, shape = RingBuffer(data=data).s_out, data.shape[:-1]
    neurons, flatten_next = [], False
    with h5py.File(path, "r") as f:
        layers = f["layer"]
        for i in range(len(layers)):
            g = layers[str(i)]
            kind = _string(g["type"])
            if kind == "input":
                assert tuple(g["shape"][()][::-1]) == shape
                continue
            if kind == "flatten":
                flatten_next = True
                continue
            out_shape = tuple(g["shape"][()][::-1])
            if kind == "dense":
                weight = g["weight"][()].astype(int)
                n_out = int(np.prod(out_shape))
                syn = Dense(weights=weight.reshape(n_out, -1) if weight.ndim == 1 else weight)
            else:
                weight = g["weight"][()].astype(int)[:, :, ::-1, ::-1][..., 0] if g[
                    "weight"].ndim == 5 else g["weight"][()].astype(int)[:, :, ::-1, ::-1]
                syn = Conv(weight=weight.transpose(0, 3, 2, 1), input_shape=shape,
                           stride=_expand(g["stride"][()]), padding=_expand(g["padding"][()]),
                           dilation=_expand(g["dilation"][()]), groups=int(g["groups"][()]))
                assert tuple(syn.output_shape) == out_shape
            nrn = g["neuron"]
            assert _string(nrn["type"]) == "CUBA"
            bias = g["bias"][()].astype(np.int32) if "bias" in g else 0
            lif = LIF(shape=out_shape, vth=int(nrn["vThMant"][()]), du=int(nrn["iDecay"][()]) - 1,
                      dv=int(nrn["vDecay"][()]), bias_mant=bias, bias_exp=6)
            (port.transpose([2, 1, 0]).flatten() if flatten_next else port).connect(syn.s_in)
            syn.a_out.connect(lif.a_in)
            port, shape, flatten_next = lif.s_out, out_shape, False
            neurons.append(lif)
    return neurons


def run_netx_file(path, input_spikes: np.ndarray, steps: int, voltage: bool = False):
    """Run the Lava processes of read_netx for `steps` steps; the spike trains
    (steps, n) of every block in Lava's flat (W, H, C) order, and with voltage
    the last block's final v."""
    neurons = read_netx(path, input_spikes)
    sinks = []
    for lif in neurons:
        sink = SpikeSink(shape=(int(np.prod(lif.s_out.shape)),), record_steps=steps)
        (lif.s_out.flatten() if len(lif.s_out.shape) > 1 else lif.s_out).connect(sink.s_in)
        sinks.append(sink)
    with running(sinks[-1], steps):
        trains = [unpack_train(s.train.get(), steps) for s in sinks]
        v_out = neurons[-1].v.get().astype(np.int64) if voltage else None
    return (trains, v_out) if voltage else trains


def _to_hwc(x: np.ndarray, shape_hwc: tuple) -> np.ndarray:
    """(..., n) in Lava's flat (W, H, C) order -> (..., n) in flat (H, W, C) order."""
    if len(shape_hwc) == 1:
        return x
    h, w, c = shape_hwc
    lead = x.shape[:-1]
    return x.reshape(*lead, w, h, c).swapaxes(-3, -2).reshape(*lead, h * w * c)


def _cnn(rng) -> NetworkIR:
    """input (6,6,2) frames -> 3x3 'same' conv (6,6,3) -> 3x3 stride-2 'valid'
    depthwise x2 (2,2,6) -> 2x2 'valid' avg pool (1,1,6) -> flatten -> dense 7
    -> dense 4; hard reset, biasExp 6, leaky neurons."""
    ir = NetworkIR()
    nrn = dict(bias_exp=6, decay_u=3000, decay_v=200)
    ir.add_layer(LayerSpec("inp", "input", (6, 6, 2)))
    ir.add_layer(LayerSpec("conv", "conv2d", (6, 6, 3), bias=rng.normal(0.05, 0.05, 3),
                           neuron=NeuronSpec(**nrn)))
    ir.connect("inp", "conv", ConnectionSpec("conv2d", (6, 6, 2), padding="same",
                                             kernel=rng.normal(0.3, 0.3, (3, 3, 2, 3))))
    ir.add_layer(LayerSpec("dw", "depthwise_conv2d", (2, 2, 6), bias=rng.normal(0.05, 0.05, 6),
                           neuron=NeuronSpec(**nrn)))
    ir.connect("conv", "dw", ConnectionSpec("depthwise_conv2d", (6, 6, 3), strides=(2, 2),
                                            kernel=rng.normal(0.4, 0.4, (3, 3, 3, 2))))
    ir.add_layer(LayerSpec("pool", "avg_pool2d", (1, 1, 6), neuron=NeuronSpec(threshold=0.5)))
    ir.connect("dw", "pool", ConnectionSpec("avg_pool2d", (2, 2, 6), pool_size=(2, 2)))
    ir.add_layer(LayerSpec("hid", "dense", (7,), bias=rng.normal(0, 0.05, 7),
                           neuron=NeuronSpec(**nrn)))
    ir.connect("pool", "hid", ConnectionSpec("dense", (6,), kernel=rng.normal(0.3, 0.5, (6, 7))))
    ir.add_layer(LayerSpec("out", "dense", (4,), neuron=NeuronSpec(bias_exp=6)))
    ir.connect("hid", "out", ConnectionSpec("dense", (7,), kernel=rng.normal(0.3, 0.5, (7, 4))))
    return ir


def _flat_net(rng) -> NetworkIR:
    """input (4,4,2) -> flatten -> dense 5 (a flatten entry in the file)."""
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (4, 4, 2)))
    ir.add_layer(LayerSpec("out", "dense", (5,), neuron=NeuronSpec(decay_v=100)))
    ir.connect("inp", "out", ConnectionSpec("dense", (32,), kernel=rng.normal(0.1, 0.3, (32, 5))))
    return ir


@pytest.mark.parametrize("make", [_cnn, _flat_net])
def test_netx_file_runs_like_the_compiled_network(tmp_path, make):
    rng = np.random.default_rng(5)
    ir = make(rng)
    net, _ = quantize_network(ir)
    path = export_netx(ir, net, tmp_path / "net.h5")
    x = rng.uniform(0.3, 1.0, (1, *net.layers["inp"].shape))
    layers = list(net.layers)
    ref = simulate(net, x, STEPS, record=layers)
    for name in layers:
        assert ref.trains[name].any(), name        # every layer is active
    inp = net.layers["inp"].shape
    spikes = ref.trains["inp"][0].reshape(STEPS, *inp).transpose(0, 2, 1, 3)   # (t, W, H, C)
    trains, v_out = run_netx_file(path, spikes, STEPS, voltage=True)
    assert len(trains) == len(layers) - 1
    for name, train in zip(layers[1:], trains):
        got = _to_hwc(train, net.layers[name].shape)
        np.testing.assert_array_equal(got, ref.trains[name][0], err_msg=name)
    np.testing.assert_array_equal(v_out, ref.voltages[net.output_layer][0])
    with h5py.File(path) as f:
        kinds = [_string(f["layer"][str(i)]["type"]) for i in range(len(f["layer"]))]
    assert kinds == (["input", "conv", "conv", "conv", "flatten", "dense", "dense"] if make is _cnn
                     else ["input", "flatten", "dense"])


def _refused(ir, match, tmp_path):
    net, _ = quantize_network(ir)
    path = tmp_path / "refused.h5"
    with pytest.raises(NetxExportError, match=match):
        export_netx(ir, net, path)
    assert not path.exists()


def test_what_netx_cannot_describe_is_refused_by_name(tmp_path):
    rng = np.random.default_rng(1)
    ir = _cnn(rng)
    ir.layer("hid").neuron.reset = "soft"
    _refused(ir, r"layer hid: reset 'soft'; netx's LIF resets to 0", tmp_path)
    ir = _cnn(rng)
    ir.layer("hid").neuron.bias_exp = None
    _refused(ir, r"layer hid: bias -?\d+ \(v units\) is not a multiple of 64", tmp_path)
    ir = _cnn(rng)
    ir.layer("out").neuron.vth_mant = 20000
    _refused(ir, r"layer out: weight exponent [1-7]; netx describes 8-bit weights", tmp_path)
    ir = _cnn(rng)                     # 'same' with stride 2 on 6 pixels pads 0 before, 1 after
    ir.connection("conv", "dw").padding = "same"
    ir.layer("dw").shape = (3, 3, 6)
    ir.connection("dw", "pool").source_shape = (3, 3, 6)
    _refused(ir, r"layer dw: padding 0 before axis y is not symmetric", tmp_path)
    ir = _cnn(rng)                     # 'same' pooling: border windows average fewer pixels
    pool = ir.connection("dw", "pool")
    pool.padding, pool.strides = "same", (1, 1)
    ir.layer("pool").shape = (2, 2, 6)
    ir.connection("pool", "hid").source_shape = (24,)
    ir.connection("pool", "hid").kernel = rng.normal(0.3, 0.5, (24, 7))
    _refused(ir, r"layer pool: its weights differ between positions of the same kernel tap",
             tmp_path)
    ir = _cnn(rng)                     # 'same' 3x3 with dilation 2: taps 2 pixels apart
    ir.connection("inp", "conv").dilation = (2, 2)
    _refused(ir, r"layer conv: dilation \(2, 2\); the exporter writes \(1, 1\) only", tmp_path)
    ir = _flat_net(rng)
    ir.add_layer(LayerSpec("skip", "dense", (5,)))
    ir.connect("inp", "skip", ConnectionSpec("dense", (32,), kernel=np.ones((32, 5))))
    ir.connect("skip", "out", ConnectionSpec("dense", (5,), kernel=np.ones((5, 5))))
    _refused(ir, r"layer skip: netx describes a chain of layers, but skip is fed by \['inp'\] "
                 r"and inp feeds \['out', 'skip'\]", tmp_path)


def test_reshape_before_a_spatial_layer_is_refused(tmp_path):
    """netx has no reshape: (4,5,3) -> Reshape((5,4,3)) -> 1x1 conv stride 3 was
    written as a conv over the unreshaped (4,5,3) input and ran with wrong spikes."""
    rng = np.random.default_rng(2)
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (4, 5, 3)))
    ir.add_layer(LayerSpec("conv", "conv2d", (2, 2, 2), neuron=NeuronSpec(bias_exp=6)))
    ir.connect("inp", "conv", ConnectionSpec("conv2d", (5, 4, 3), strides=(3, 3),
                                             kernel=rng.normal(0.3, 0.3, (1, 1, 3, 2))))
    _refused(ir, r"layer conv: reads inp \(4, 5, 3\) reshaped to \(5, 4, 3\); netx has no "
                 r"reshape", tmp_path)
    ir.connection("inp", "conv").source_shape = (4, 5, 3)     # the same conv without the reshape
    net, _ = quantize_network(ir)
    assert export_netx(ir, net, tmp_path / "ok.h5").exists()
