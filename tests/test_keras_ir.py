"""Keras -> IR: faithfulness of the extracted IR (and of the connection kinds' synapse matrices)
against Keras itself, and clear errors for what has no Loihi mapping."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from hwmodel.errors import NetworkError  # noqa: E402
from nxcompile.ir import NeuronSpec, connection_matrix  # noqa: E402
from nxcompile.keras_ir import model_to_ir  # noqa: E402
from nxcompile.layers import (NxAdd, NxAveragePooling2D, NxConv1D, NxConv2D, NxDense,  # noqa: E402
                              NxDepthwiseConv2D, NxFlatten, NxInputLayer, NxReshape,
                              NxZeroPadding2D)
from nxcompile.model import NxModel  # noqa: E402

L = keras.layers
LIN = {"activation": "linear"}
SEEDS = [0, 1, 2]


def _randomize(model, rng):
    """Random kernels and biases (Keras initializes biases to zero)."""
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])


def assert_ir_faithful(model, rng, batch=2, randomize=True):
    """For each IR layer, Keras' output equals the sum over its in-edges of
    connection_matrix @ flat source output, plus the bias per channel."""
    if randomize:
        _randomize(model, rng)
    ir = model_to_ir(model)
    xs = [rng.uniform(0, 1, (batch, *t.shape[1:])).astype("float32") for t in model.inputs]
    names = [n for n in ir.order() if ir.layer(n).kind != "input"]
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    outs = {t._keras_history[0].name: x for t, x in zip(model.inputs, xs)}
    outs.update(zip(names, (np.asarray(o) for o in probe(xs))))
    for name in names:
        layer = ir.layer(name)
        got = np.zeros((batch, layer.n))
        for src in ir.predecessors(name):
            m = connection_matrix(ir.connection(src, name), layer.shape)
            got += (m @ outs[src].reshape(batch, -1).T).T
        if layer.bias is not None:
            got += np.tile(layer.bias, layer.n // len(layer.bias))
        np.testing.assert_allclose(got, outs[name].reshape(batch, -1), rtol=1e-5, atol=1e-5,
                                   err_msg=f"layer {name}")
    return ir


def _hw(rng, lo=5, hi=8):
    return (int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1)), int(rng.integers(1, 4)))


@pytest.mark.parametrize("seed", SEEDS)
def test_dense_chain(seed):
    rng = np.random.default_rng(seed)
    inp = NxInputLayer(shape=(int(rng.integers(3, 20)),))
    h = NxDense(int(rng.integers(2, 10)), **LIN)(inp.input)
    out = NxDense(int(rng.integers(2, 10)), use_bias=bool(seed % 2), **LIN)(h)
    ir = assert_ir_faithful(NxModel(inp.input, out), rng)
    assert [ir.layer(n).kind for n in ir.order()] == ["input", "dense", "dense"]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_conv2d(seed, strides, padding):
    rng = np.random.default_rng(seed)
    inp = NxInputLayer(shape=_hw(rng))
    k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    c = NxConv2D(int(rng.integers(1, 5)), k, strides=strides, padding=padding, **LIN)(inp.input)
    out = NxDense(3, **LIN)(NxFlatten()(c))
    ir = assert_ir_faithful(NxModel(inp.input, out), rng)
    conv = ir.connection(inp.name, c._keras_history[0].name)
    assert (conv.strides, conv.padding, conv.kernel.shape[:2]) == ((strides, strides), padding, k)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("strides,padding,dilation", [(1, "same", 1), (2, "valid", 1),
                                                      (2, "same", 1), (1, "causal", 1),
                                                      (1, "causal", 2), (1, "valid", 3)])
def test_conv1d(seed, strides, padding, dilation):
    """Conv1D over (steps, channels): a conv of height 1 on the (1, steps,
    channels) map the IR holds, equal to Keras' outputs ('causal' as zeros
    before the first step); compiled, it runs on (batch, steps, channels)."""
    rng = np.random.default_rng(seed)
    steps, c = int(rng.integers(9, 14)), int(rng.integers(1, 4))
    inp = NxInputLayer(shape=(steps, c))
    k = int(rng.integers(2, 4))
    h = NxConv1D(int(rng.integers(1, 4)), k, strides=strides, padding=padding,
                 dilation_rate=dilation, name="c1", **LIN)(inp.input)
    h = NxConv1D(2, 2, padding="same", **LIN)(h)
    model = NxModel(inp.input, NxDense(3, **LIN)(NxFlatten()(h)))
    ir = assert_ir_faithful(model, rng)
    conv = ir.connection(inp.name, "c1")
    assert (ir.layer(inp.name).shape, conv.kind, conv.kernel.shape[:2]) == ((1, steps, c),
                                                                           "conv1d", (1, k))
    assert conv.pre_padding == ((0, 0), ((k - 1) * dilation if padding == "causal" else 0, 0))
    x = rng.uniform(0, 1, (2, steps, c))
    result = model.compile(board="loihi1").run(x, num_steps=5)
    assert result.predictions.shape == (2,)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("strides,padding", [(1, "same"), (2, "valid"), (2, "same")])
def test_depthwise_conv2d(seed, strides, padding):
    rng = np.random.default_rng(seed)
    inp = NxInputLayer(shape=_hw(rng))
    d = NxDepthwiseConv2D(int(rng.integers(1, 4)), strides=strides, padding=padding,
                          depth_multiplier=int(rng.integers(1, 4)), **LIN)(inp.input)
    assert_ir_faithful(NxModel(inp.input, NxConv2D(2, 2, **LIN)(d)), rng)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("padding", ["same", "valid"])
def test_dilated_convolutions(seed, padding, monkeypatch):
    """Keras' dilation_rate: a conv and a depthwise conv whose taps sit 2 and 3
    pixels apart equal Keras' outputs and compile (estimate == recount); the
    partitioner counts them analytically (WindowEdge; neither the search nor the
    validator builds their matrix); the reference simulator's window runs them
    as the matrices do (tests/test_lava_properties.py)."""
    import partitioner.edges
    import partitioner.validate
    from partitioner.edges import WindowEdge, make_edge
    rng = np.random.default_rng(seed)
    inp = NxInputLayer(shape=(9, 8, int(rng.integers(1, 3))))
    c = NxConv2D(2, 3, dilation_rate=(2, 3), padding=padding, **LIN)(inp.input)
    d = NxDepthwiseConv2D(2, dilation_rate=2, padding="same", **LIN)(c)
    model = NxModel(inp.input, NxDense(3, **LIN)(NxFlatten()(d)))
    ir = assert_ir_faithful(model, rng)
    conv = ir.connection(inp.name, c._keras_history[0].name)
    assert conv.dilation == (2, 3)
    assert isinstance(make_edge(ir, inp.name, c._keras_history[0].name), WindowEdge)
    built = []
    for module in (partitioner.edges, partitioner.validate):
        monkeypatch.setattr(module, "connection_matrix", lambda spec, shape, real=connection_matrix:
                            built.append(spec.dilation) or real(spec, shape))
    # the search's count of the gapped windows equals the validator's recount
    assert model.compile(board="loihi1").num_cores >= 3
    assert built == []      # no float matrix: the dense layer's synapses are the integer network's
    conv.dilation = (0, 1)
    with pytest.raises(NetworkError, match=r"dilation \(0, 1\) must be >= 1"):
        ir.validate()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("pool_strides,padding", [(None, "valid"), (1, "valid"), (None, "same"),
                                                  (2, "same")])
def test_average_pooling(seed, pool_strides, padding):
    rng = np.random.default_rng(seed)
    inp = NxInputLayer(shape=_hw(rng, 5, 9))
    c = NxConv2D(2, 2, **LIN)(inp.input)
    pool = int(rng.integers(2, 4))
    p = NxAveragePooling2D(pool, strides=pool_strides, padding=padding)(c)
    ir = assert_ir_faithful(NxModel(inp.input, p), rng)
    conn = ir.connection(c._keras_history[0].name, p._keras_history[0].name)
    assert conn.pool_size == (pool, pool)
    assert conn.strides == ((pool, pool) if pool_strides is None else (1, 1) if pool_strides == 1
                            else (2, 2))
    assert ir.layer(p._keras_history[0].name).bias is None


@pytest.mark.parametrize("seed", SEEDS)
def test_zero_padding_folds_into_each_spatial_kind(seed):
    rng = np.random.default_rng(seed)
    inp = NxInputLayer(shape=_hw(rng))
    pad = ((int(rng.integers(0, 3)), int(rng.integers(0, 3))),
           (int(rng.integers(0, 3)), int(rng.integers(0, 3))))
    c = NxConv2D(3, 3, strides=2, padding="same", **LIN)(NxZeroPadding2D(pad)(inp.input))
    d = NxDepthwiseConv2D(2, depth_multiplier=2, **LIN)(NxZeroPadding2D(1)(NxZeroPadding2D(1)(c)))
    p = NxAveragePooling2D(2, padding="same")(NxZeroPadding2D(((1, 0), (0, 1)))(d))
    ir = assert_ir_faithful(NxModel(inp.input, p), rng)
    c_name, d_name = c._keras_history[0].name, d._keras_history[0].name
    assert ir.connection(inp.name, c_name).pre_padding == pad
    assert ir.connection(c_name, d_name).pre_padding == ((2, 2), (2, 2))
    assert ir.connection(c_name, d_name).source_shape == ir.layer(c_name).shape


@pytest.mark.parametrize("seed", SEEDS)
def test_reshape_between_dense_and_conv(seed):
    rng = np.random.default_rng(seed)
    inp = NxInputLayer(shape=(int(rng.integers(3, 12)),))
    h, w, ch = _hw(rng, 3, 5)
    r = NxReshape((h, w, ch))(NxDense(h * w * ch, name="d0", **LIN)(inp.input))
    c = NxConv2D(2, 2, padding="same", name="c", **LIN)(r)
    out = NxDense(4, name="d1", **LIN)(NxReshape((-1,))(c))
    ir = assert_ir_faithful(NxModel(inp.input, out), rng)
    assert ir.connection("d0", "c").source_shape == (h, w, ch)
    assert ir.connection("c", "d1").source_shape == (h * w * 2,)


@pytest.mark.parametrize("seed", SEEDS)
def test_add_branch(seed):
    rng = np.random.default_rng(seed)
    inp = NxInputLayer(shape=_hw(rng))
    a = NxConv2D(3, 3, padding="same", **LIN)(inp.input)
    b = NxConv2D(3, 1, **LIN)(inp.input)
    s = L.Add()([a, b])
    c = NxConv2D(2, 3, strides=2, **LIN)(s)
    e = NxDepthwiseConv2D(2, **LIN)(s)
    f = NxDense(5, **LIN)(NxFlatten()(L.Add()([c, NxConv2D(2, 3, strides=2, **LIN)(s)])))
    model = NxModel(inp.input, [e, f])
    ir = assert_ir_faithful(model, rng)
    c_name = c._keras_history[0].name
    assert sorted(ir.predecessors(c_name)) == sorted([a._keras_history[0].name,
                                                       b._keras_history[0].name])
    assert ir.outputs == [e._keras_history[0].name, f._keras_history[0].name]


@pytest.mark.parametrize("seed", SEEDS)
def test_concatenate_branch(seed):
    rng = np.random.default_rng(seed)
    inp = NxInputLayer(shape=_hw(rng))
    a = NxConv2D(int(rng.integers(1, 4)), 3, padding="same", **LIN)(inp.input)
    b = NxDepthwiseConv2D(3, padding="same", depth_multiplier=2, **LIN)(inp.input)
    cat = L.Concatenate()([a, b])
    c = NxConv2D(3, 2, **LIN)(cat)
    d = NxDepthwiseConv2D(2, depth_multiplier=2, **LIN)(cat)
    p = NxAveragePooling2D(2, padding="same")(L.Concatenate(axis=3)([c, d]))
    g = NxConv2D(2, 3, **LIN)(L.Concatenate()([NxZeroPadding2D(1)(a), NxZeroPadding2D(1)(b)]))
    v1 = NxDense(3, **LIN)(NxFlatten()(p))
    v2 = NxDense(4, **LIN)(NxFlatten()(g))
    out = NxDense(2, **LIN)(L.Concatenate()([v1, v2]))
    ir = assert_ir_faithful(NxModel(inp.input, out), rng)
    to_c = ir.connection(b._keras_history[0].name, c._keras_history[0].name)
    n_a = a.shape[-1]
    assert (to_c.channel_offset, to_c.in_channels) == (n_a, n_a + b.shape[-1])
    to_out = ir.connection(v2._keras_history[0].name, out._keras_history[0].name)
    assert (to_out.channel_offset, to_out.in_channels) == (3, 7)


@pytest.mark.parametrize("seed", SEEDS)
def test_two_inputs_and_plain_keras_layers(seed):
    rng = np.random.default_rng(seed)
    shape = _hw(rng)
    i1, i2 = keras.Input(shape=shape, name="frames"), keras.Input(shape=(6,), name="vec")
    c = L.Conv2D(2, 3, padding="same", activation="relu")(L.ZeroPadding2D(1)(i1))
    p = L.AveragePooling2D(2)(L.DepthwiseConv2D(2, activation="relu")(c))
    v = L.Dense(4, activation="relu")(L.Concatenate()([L.Flatten()(p), L.Reshape((6,))(i2)]))
    model = keras.Model([i1, i2], v)
    ir = model_to_ir(model)
    assert ir.inputs == ["frames", "vec"]
    assert all(ir.layer(n).input_mode == "bias" for n in ir.inputs)
    assert all(ir.layer(n).neuron == NeuronSpec() for n in ir.order())
    # faithfulness needs linear layers: the relu is applied after the affine map
    for layer in model.layers:
        if hasattr(layer, "activation"):
            layer.activation = keras.activations.linear
    assert_ir_faithful(model, rng)


def test_ir_carries_layer_parameters():
    inp = NxInputLayer(shape=(4, 4, 1), inputMode="spikes", threshold=2.0, name="inp")
    c = NxConv2D(2, 3, name="conv", threshold=0.5, vThMant=300, biasExp=2, resetMode="soft",
                 numWeightBits=4, decayU=10, decayV=20)(inp.input)
    out = NxDense(3, name="out", use_bias=False)(NxFlatten()(c))
    model = NxModel(inp.input, out)
    ir = model_to_ir(model)
    assert ir.order() == ["inp", "conv", "out"]
    assert ir.layer("inp").input_mode == "spikes" and ir.layer("inp").neuron.threshold == 2.0
    assert ir.layer("conv").neuron == model.get_layer("conv").neuron_spec
    assert (ir.layer("conv").shape, ir.layer("out").shape) == ((2, 2, 2), (3,))
    assert ir.layer("out").bias is None and ir.layer("conv").bias.dtype.kind == "f"
    conn = ir.connection("conv", "out")
    assert (conn.kind, conn.source_shape) == ("dense", (8,))
    np.testing.assert_array_equal(conn.kernel, model.get_layer("out").kernel.numpy())
    assert ir.connection("inp", "conv").kernel.shape == (3, 3, 1, 2)


@pytest.mark.parametrize("seed", SEEDS)
def test_batch_norm_after_neurons_folds_into_the_next_connections(seed):
    """BatchNormalization of a layer's output (inside an NxModel) is absorbed by
    every connection that reads it: a 'valid' conv, a 1x1 conv through
    Concatenate, an NxAdd's weighted summand and shortcut, and Flatten -> Dense
    after two in a row; the IR equals Keras' inference outputs and keeps no
    layer for it."""
    rng = np.random.default_rng(seed)
    inp = NxInputLayer(shape=(7, 7, 2))
    a = NxConv2D(3, 3, padding="same", **LIN)(inp.input)
    bn = L.BatchNormalization(epsilon=0.01)(a)
    b = NxConv2D(3, 3, **LIN)(bn)                                  # valid: exact
    c = NxConv2D(3, 1, **LIN)(L.Concatenate()([bn, L.BatchNormalization()(a)]))
    s = NxAdd(**LIN)([NxConv2D(3, 1, neurons=False, **LIN)(bn), bn])   # the shortcut: its gain
    d = NxDense(4, **LIN)(NxFlatten()(L.BatchNormalization()(L.BatchNormalization()(b))))
    out = NxDense(2, **LIN)(L.Concatenate()([d, NxFlatten()(c), NxFlatten()(s)]))
    model = NxModel(inp.input, out)
    _randomize(model, rng)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 1, n),
                               rng.normal(0, 1, n), rng.uniform(0.2, 3, n)])
    ir = assert_ir_faithful(model, rng, randomize=False)
    assert not any(ir.layer(n).name.startswith("batch_norm") for n in ir.order())


def test_sequential_model():
    model = keras.Sequential([keras.Input((5,)), L.Dense(3, activation="relu")])
    assert [layer.kind for layer in model_to_ir(model).layers()] == ["input", "dense"]


def _model(build, shape=(6, 6, 2)):
    inp = keras.Input(shape=shape)
    return keras.Model(inp, build(inp))


@pytest.mark.parametrize("build,match", [
    (lambda x: L.GlobalMaxPooling2D(name="mp")(x),
     r"'mp' \(GlobalMaxPooling2D\) is not supported; supported:"),
    (lambda x: NxConv2D(2, 3, padding="same", name="c")(
        L.BatchNormalization(name="bn", beta_initializer="ones")(x)),
     r"BatchNormalization \['bn'\] after layer '.*' cannot be folded into layer 'c' \(NxConv2D\): "
     r"its shift would reach border neurons through zero padding \('same' padding"),
    (lambda x: NxAveragePooling2D(2, name="p")(L.BatchNormalization(name="bn")(x)),
     r"into layer 'p' \(NxAveragePooling2D\): its avg_pool2d connection has no kernel"),
    (lambda x: NxConv2D(2, 3)(L.BatchNormalization(axis=1, name="bn")(NxConv2D(2, 1)(x))),
     r"'bn' \(BatchNormalization\): axis=\[?1\]?; only the channels \(last\) axis"),
    (lambda x: NxConv2D(2, 3)(L.BatchNormalization(name="bn")(NxZeroPadding2D(1)(x))),
     r"'bn' \(BatchNormalization\): ZeroPadding2D before BatchNormalization"),
    (lambda x: L.Dense(2)(L.LSTM(3, name="lstm")(L.Reshape((6, 12))(x))),
     r"'lstm' \(LSTM\) is not supported"),
    (lambda x: L.Add(name="sum")([NxConv2D(2, 1)(x), NxConv2D(2, 1)(x)]),
     r"model output comes from layer 'sum' \(Add\)"),
    (lambda x: NxConv2D(2, 3, activation="sigmoid", name="c")(x),
     r"'c' \(NxConv2D\): activation 'sigmoid' is not supported"),
    (lambda x: L.Conv2D(2, 3, groups=2, name="c")(x), r"'c' \(Conv2D\): groups=2"),
    (lambda x: NxDense(2, name="d")(x), r"'d' \(NxDense\): input from .* has shape \(6, 6, 2\)"),
    (lambda x: NxDense(2)(NxFlatten(name="f")(NxZeroPadding2D(1)(x))),
     r"'f' \(NxFlatten\): reshaping the output of ZeroPadding2D"),
    (lambda x: NxConv2D(2, 1)(L.Concatenate(axis=1, name="cat")([x, x])),
     r"'cat' \(Concatenate\): axis=1"),
    (lambda x: NxDepthwiseConv2D(1, name="c")(L.Concatenate()([x, x])),
     r"'c' \(NxDepthwiseConv2D\) receives layer '.*' over several paths"),
])
def test_unsupported_graphs_raise_clear_errors(build, match):
    with pytest.raises(ValueError, match=match):
        model_to_ir(_model(build))


def test_a_source_fed_twice_becomes_one_connection():
    """Concatenate([x, x]) -> conv: the kernel rows of both copies added."""
    conv = NxConv2D(2, 3, name="c")
    ir = model_to_ir(_model(lambda x: conv(L.Concatenate()([x, x]))))
    (src,) = ir.predecessors("c")
    k = conv.get_weights()[0]
    spec = ir.connection(src, "c")
    assert (spec.channel_offset, spec.in_channels) == (0, None)
    np.testing.assert_allclose(spec.kernel, k[:, :, :2] + k[:, :, 2:])


def test_layers_without_neurons_feed_an_nxadd_only():
    from nxcompile.layers import NxAdd
    with pytest.raises(ValueError, match=r"NxConv2D 'c': neurons=False needs a weighted layer "
                                         "with activation='linear'"):
        NxConv2D(2, 1, neurons=False, name="c")
    lin = lambda x: NxConv2D(2, 1, activation="linear", neurons=False, name="lin")(x)  # noqa: E731
    with pytest.raises(ValueError, match=r"'c' \(NxConv2D\): its input comes from layer 'lin' "
                                         "without neurons"):
        model_to_ir(_model(lambda x: NxConv2D(2, 1, name="c")(lin(x))))
    with pytest.raises(ValueError, match=r"model output comes from layer 'lin'"):
        model_to_ir(_model(lin))
    ir = model_to_ir(_model(lambda x: NxAdd(name="s")([lin(x), x])))
    assert {p: ir.connection(p, "s").kind for p in ir.predecessors("s")} == {
        ir.inputs[0]: "conv2d"}             # conv(x) + x from one source: one connection


def test_reused_neuron_layer_and_output_feeding_on():
    shared = NxDense(4, name="shared")
    inp = keras.Input((4,))
    with pytest.raises(ValueError, match="'shared' .* called more than once"):
        model_to_ir(keras.Model(inp, shared(shared(inp))))
    h = NxDense(4, name="h")(inp)
    with pytest.raises(ValueError, match="model output 'h' also feeds other layers"):
        model_to_ir(keras.Model(inp, [h, NxDense(2)(h)]))
    with pytest.raises(ValueError, match=r"has shape \(1, 2, 3\); .*Flatten"):
        model_to_ir(_model(lambda x: NxDense(2)(x), shape=(2, 3)))
