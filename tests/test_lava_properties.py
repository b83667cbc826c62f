"""Property tests: random small float networks (conv with strides and padding,
depthwise conv, average pooling, residual sums with identity shortcuts,
nearest upsampling, flatten, dense; frames or spikes in; branches
that meet through Concatenate or Add in a conv or depthwise conv), quantized
by the mapper and laid out on random partitions (contiguous, shuffled,
channel and spatial splits, cores spread over several chips), run on Lava with
the spike trains of every layer equal, bit for bit, to the reference
simulator's (which does not depend on any partition), hard and soft reset,
with or without random initial voltages, the reference simulator running in
blocks of a random number of steps."""
import multiprocessing
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from hwmodel.limits import get_board
from hwmodel.partition import Core, Partition
from hwmodel import simulator
from hwmodel.simulator import simulate
from mapper.lava_run import run_lava
from mapper.quantize import quantize_network
from nxcompile.ir import ConnectionSpec, LayerSpec, NetworkIR, NeuronSpec, output_size
from tests.helpers import MERGES, assert_same_run, connect_merged, examples

NUM_STEPS = 24
SPLITS = ("contiguous", "shuffled", "channel", "spatial")


def _neuron(rng, reset):
    return NeuronSpec(threshold=1.0, reset=reset,
                      decay_u=int(rng.choice([4095, rng.integers(0, 4096)])),
                      decay_v=int(rng.choice([0, rng.integers(0, 600)])))


def _kernel(rng, shape, fan_in):
    """Mostly excitatory weights that keep a layer firing at a moderate rate."""
    return rng.normal(0.6, 0.8, shape) * 2.5 / fan_in


@st.composite
def networks(draw, reset):
    """A NetworkIR: input -> 1..2 spatial layers -> flatten -> dense output."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    h, w, c = draw(st.integers(4, 7)), draw(st.integers(4, 7)), draw(st.integers(1, 2))
    input_mode = draw(st.sampled_from(["bias", "spikes"]))
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (h, w, c), input_mode=input_mode,
                           neuron=NeuronSpec(reset=reset)))
    prev, shape = "inp", (h, w, c)
    for i in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["conv2d", "conv1d", "depthwise_conv2d", "avg_pool2d",
                                     "identity", "upsampling2d"]))
        if kind == "upsampling2d":
            size = (draw(st.integers(1, 2)), draw(st.integers(1, 3)))
            pre = ((draw(st.integers(0, 1)), 0), (0, draw(st.integers(0, 1))))
            up = ((shape[0] + sum(pre[0])) * size[0], (shape[1] + sum(pre[1])) * size[1], shape[2])
            name = f"up{i}"
            ir.add_layer(LayerSpec(name, kind, up, neuron=_neuron(rng, reset)))
            ir.connect(prev, name, ConnectionSpec(kind, shape, pool_size=size, pre_padding=pre))
            prev, shape = name, up
            continue
        if kind == "identity":      # neurons at conv(h) + g * x, h = conv(x): a residual sum
            k = draw(st.integers(1, 3))
            c = shape[2]
            mid, name = f"mid{i}", f"identity{i}"
            ir.add_layer(LayerSpec(mid, "conv2d", shape, neuron=_neuron(rng, reset),
                                   bias=rng.normal(0.05, 0.05, c)))
            ir.connect(prev, mid, ConnectionSpec("conv2d", shape, padding="same",
                                                 kernel=_kernel(rng, (k, k, c, c), k * k * c)))
            ir.add_layer(LayerSpec(name, kind, shape, neuron=_neuron(rng, reset),
                                   bias=rng.normal(0.05, 0.05, c)))
            ir.connect(mid, name, ConnectionSpec("conv2d", shape, padding="same",
                                                 kernel=_kernel(rng, (k, k, c, c), 2 * k * k * c)))
            ir.connect(prev, name, ConnectionSpec("identity", shape,
                                                  kernel=rng.normal(0.5, 0.3, (1, 1, c, 1))))
            prev = name
            continue
        k = draw(st.integers(1, 3)) if kind != "avg_pool2d" else 2
        stride = draw(st.integers(1, 2))
        # dilated kernels (Keras: stride 1 only) span (k - 1) * d + 1 pixels
        d = draw(st.integers(1, 2)) if kind != "avg_pool2d" and k > 1 and stride == 1 else 1
        padding = draw(st.sampled_from(["same", "valid"]))
        pre = ((draw(st.integers(0, 1)), 0), (0, draw(st.integers(0, 1))))
        hp, wp = shape[0] + sum(pre[0]), shape[1] + sum(pre[1])
        kh, sy, dy = (1, 1, 1) if kind == "conv1d" else (k, stride, d)   # a row of height 1
        out_hw = (output_size(hp, (kh - 1) * dy + 1, sy, padding),
                  output_size(wp, (k - 1) * d + 1, stride, padding))
        if min(out_hw) < 1:
            break
        if kind in ("conv2d", "conv1d"):
            c_out = draw(st.integers(1, 3))
            kernel = _kernel(rng, (kh, k, shape[2], c_out), kh * k * shape[2])
        elif kind == "depthwise_conv2d":
            mult = draw(st.integers(1, 2))
            c_out = shape[2] * mult
            kernel = _kernel(rng, (k, k, shape[2], mult), k * k)
        else:
            c_out, kernel = shape[2], None
        name = f"{kind}{i}"
        ir.add_layer(LayerSpec(name, kind, (*out_hw, c_out), neuron=_neuron(rng, reset),
                               bias=rng.normal(0.05, 0.05, c_out) if kernel is not None else None))
        ir.connect(prev, name, ConnectionSpec(kind, shape, kernel=kernel, strides=(sy, stride),
                                              padding=padding, pool_size=(k, k), pre_padding=pre,
                                              dilation=(dy, d)))
        prev, shape = name, (*out_hw, c_out)
    n_in, n_out = int(np.prod(shape)), draw(st.integers(2, 6))
    ir.add_layer(LayerSpec("out", "dense", (n_out,), neuron=_neuron(rng, reset),
                           bias=rng.normal(0, 0.05, n_out)))
    ir.connect(prev, "out", ConnectionSpec("dense", (n_in,), kernel=_kernel(rng, (n_in, n_out), n_in)))
    return ir


@st.composite
def merged_networks(draw, reset, how, kind):
    """A NetworkIR: input -> 1x1 conv 'side'; [input, side] -> Concatenate or Add
    (`how`) -> `kind` (conv2d or depthwise_conv2d) -> flatten -> dense output."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    h, w, c = draw(st.integers(3, 6)), draw(st.integers(3, 6)), draw(st.integers(1, 3))
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (h, w, c), input_mode=draw(st.sampled_from(["bias", "spikes"])),
                           neuron=NeuronSpec(reset=reset)))
    c_side = c if how == "add" else draw(st.integers(1, 3))
    ir.add_layer(LayerSpec("side", "conv2d", (h, w, c_side), neuron=_neuron(rng, reset),
                           bias=rng.normal(0.05, 0.05, c_side)))
    ir.connect("inp", "side", ConnectionSpec("conv2d", (h, w, c), kernel=_kernel(rng, (1, 1, c, c_side), c)))
    c_in = c + c_side if how == "concat" else c
    k, padding = draw(st.integers(1, 3)), draw(st.sampled_from(["same", "valid"]))
    out_hw = (output_size(h, k, 1, padding), output_size(w, k, 1, padding))
    if kind == "conv2d":
        c_out = draw(st.integers(1, 3))
        kernel = _kernel(rng, (k, k, c_in, c_out), k * k * c_in)
    else:
        mult = draw(st.integers(1, 2))
        c_out, kernel = c_in * mult, _kernel(rng, (k, k, c_in, mult), k * k)
    ir.add_layer(LayerSpec("merge", kind, (*out_hw, c_out), neuron=_neuron(rng, reset),
                           bias=rng.normal(0.05, 0.05, c_out)))
    connect_merged(ir, "merge", kind, ["inp", "side"], how, kernel, padding=padding)
    n_in, n_out = int(np.prod((*out_hw, c_out))), draw(st.integers(2, 6))
    ir.add_layer(LayerSpec("out", "dense", (n_out,), neuron=_neuron(rng, reset),
                           bias=rng.normal(0, 0.05, n_out)))
    ir.connect("merge", "out", ConnectionSpec("dense", (n_in,), kernel=_kernel(rng, (n_in, n_out), n_in)))
    return ir


def _split(rng, how: str, shape: tuple, k: int) -> list:
    """k non-empty sorted neuron sets of a layer of `shape` (flat HWC indices)."""
    n = int(np.prod(shape))
    idx = np.arange(n)
    if how == "channel" and len(shape) == 3 and shape[2] >= k:        # whole channels per core
        groups = np.array_split(rng.permutation(shape[2]), k)
        return [np.sort(idx[np.isin(idx % shape[2], g)]) for g in groups]
    if how == "spatial" and len(shape) == 3 and shape[0] >= k:        # bands of rows
        rows = idx // (shape[1] * shape[2])
        return [idx[np.isin(rows, band)] for band in np.array_split(np.arange(shape[0]), k)]
    if how == "shuffled":
        return [np.sort(part) for part in np.array_split(rng.permutation(n), k)]
    return np.array_split(idx, k)


@st.composite
def partitions(draw, ir):
    """Random cores of every layer, each on one of 3 chips."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    cores = []
    for layer in ir.layers():
        how = draw(st.sampled_from(SPLITS))
        k = draw(st.integers(1, min(3, layer.n)))
        for neurons in _split(rng, how, layer.shape, k):
            cores.append(Core(index=len(cores), chip=draw(st.integers(0, 2)), layer=layer.name,
                              neurons=np.asarray(neurons, np.int64)))
    return Partition(board=get_board("nahuku32"), cores=cores)


def _inputs(draw, net):
    """A batch of 1 to 3 samples."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    batch = draw(st.integers(1, 3))
    inp = net.layers[net.input_layer]
    if inp.input_mode == "spikes":
        return (rng.random((batch, NUM_STEPS, *inp.shape)) < 0.4).astype(np.int8)
    return rng.uniform(0.2, 1.0, (batch, *inp.shape))


@pytest.mark.parametrize("reset", ["hard", "soft"])
@settings(max_examples=examples(15), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_lava_spike_trains_equal_the_reference_on_random_partitions(reset, data):
    _check_lava_equals_reference(data.draw(networks(reset)), data)


@pytest.mark.parametrize("how, kind", [(how, kind) for how in MERGES
                                       for kind in ("conv2d", "depthwise_conv2d")])
@pytest.mark.parametrize("reset", ["hard", "soft"])
@settings(max_examples=examples(4), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_lava_equals_the_reference_where_branches_meet(how, kind, reset, data):
    _check_lava_equals_reference(data.draw(merged_networks(reset, how, kind)), data)


def _check_lava_equals_reference(ir, data):
    """Quantize ir, lay it out on a random partition, run a batch on Lava (its
    samples in 1 to batch lanes, so in one or more rounds) and on the reference
    simulator: every layer's spike trains equal (and none silent)."""
    net, _ = quantize_network(ir)
    _draw_initial_voltages(net, data)
    part = data.draw(partitions(ir))
    x = _inputs(data.draw, net)
    layers = list(net.layers)
    ref = simulate(net, x, NUM_STEPS, record=layers,
                   block_steps=data.draw(st.integers(1, NUM_STEPS), label="block steps"))
    active = [name for name in layers if ref.trains[name].any()]
    assume(len(active) == len(layers))       # every layer spikes: the comparison means something
    got = run_lava(net, part, x, NUM_STEPS, record=layers,
                   lanes=data.draw(st.integers(1, len(x)), label="lanes"))
    assert_same_run(got, ref, layers)
    assert multiprocessing.active_children() == []


def _draw_initial_voltages(net, data) -> None:
    """Give some layers with compartments a random initial v (-vth..2 vth, v units)."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1), label="v_init seed"))
    for layer in net.layers.values():
        if not (layer.is_input and layer.input_mode == "spikes") and data.draw(
                st.booleans(), label=f"v_init of {layer.name}"):
            vth = int(layer.vth) << 6
            layer.v_init = rng.integers(-vth, 2 * vth, layer.n)


@pytest.mark.parametrize("reset", ["hard", "soft"])
@settings(max_examples=examples(40), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_convolutions_equal_the_matrix_products(reset, data):
    """The reference simulator's window path (kernels convolved over spike maps)
    equals its matrix path bit for bit, every layer, on random networks (chains
    and branches that meet); each conv and depthwise conv gets a window.  A
    run computes windows spike by spike (events), another without events and
    a batch run one sample at a time (chunks of one), its patches built frames
    first (these small maps get frames last by default), gives the same result;
    each run in blocks of a random number of steps."""
    how, kind = data.draw(st.sampled_from(MERGES)), data.draw(
        st.sampled_from(["conv2d", "depthwise_conv2d"]))
    ir = data.draw(st.one_of(networks(reset), merged_networks(reset, how, kind)))
    net, _ = quantize_network(ir)
    for conn in net.connections:
        if ir.connection(conn.source, conn.target).kind in ("conv2d", "depthwise_conv2d",
                                                            "identity"):
            assert conn.window is not None, (conn.source, conn.target)
    x = _inputs(data.draw, net)
    layers = list(net.layers)
    blocks = [data.draw(st.integers(1, NUM_STEPS), label="block steps") for _ in range(4)]
    ref = simulate(net.with_matrices(), x, NUM_STEPS, record=layers, block_steps=blocks[0])
    assume(all(ref.trains[name].any() for name in layers))
    with mock.patch.object(simulator, "EVENT_NS", (0.0,) * 4):
        assert_same_run(simulate(net, x, NUM_STEPS, record=layers, block_steps=blocks[1]),
                        ref, layers)
    with mock.patch.object(simulator, "EVENT_NS", (1e30,) * 4):
        assert_same_run(simulate(net, x, NUM_STEPS, record=layers, block_steps=blocks[2]),
                        ref, layers)
        with mock.patch.object(simulator, "CHUNK_BYTES", 1), mock.patch.object(simulator, "SHORT_RUN", 0):
            assert_same_run(simulate(net, x, NUM_STEPS, record=layers, block_steps=blocks[3]),
                            ref, layers)
