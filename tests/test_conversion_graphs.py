"""convert() on graphs: residual blocks (the pre-activation pattern, where a
linear conv and a shortcut meet in one ReLU, with BatchNormalization after the
conv and after the Add, projection shortcuts), Inception-style Concatenate with
a pooled branch (a SeparableConv2D and an UpSampling2D after it),
GlobalAveragePooling2D heads, an output from Add, ReLU6, trailing layers
after the readout, Conv1D sequences and BatchNormalization after ReLUs.  Random weights:
the converted Keras twin computes the ANN's logits up to the readout's shift
and scale exactly (float), branch scales included; the compiled network runs
the same on Lava as on the reference simulator."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import nxcompile  # noqa: E402
from nxcompile import NxAdd, convert  # noqa: E402
from nxcompile.normalization import percentile_scale  # noqa: E402

L = keras.layers


def _randomize(model, seed=0):
    """Random kernels and biases, and BatchNormalization statistics far from the
    identity, so that folding them and the branch scales matter."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0.2, 0.3, n),
                               rng.normal(0, 0.3, n), rng.uniform(0.2, 3, n)])
        elif layer.get_weights():
            layer.set_weights([rng.normal(0.05, 0.5, w.shape) / np.sqrt(np.prod(w.shape[:-1]))
                               for w in layer.get_weights()])
    return model


def _block(x, filters, stride, name):
    """Conv-BN-ReLU-Conv-BN, + shortcut (projected where the shape changes),
    ReLU: the post-activation ResNet block."""
    h = L.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_c1")(x)
    h = L.ReLU(name=f"{name}_r1")(L.BatchNormalization(name=f"{name}_bn1")(h))
    h = L.Conv2D(filters, 3, padding="same", name=f"{name}_c2")(h)
    h = L.BatchNormalization(name=f"{name}_bn2")(h)
    if stride != 1 or x.shape[-1] != filters:
        x = L.Conv2D(filters, 1, strides=stride, name=f"{name}_proj")(x)
        x = L.BatchNormalization(name=f"{name}_bnp")(x)
    return L.ReLU(name=f"{name}_out")(L.Add(name=f"{name}_add")([h, x]))


def _resnet():
    inp = keras.Input((8, 8, 1))
    x = L.ReLU(name="stem_relu")(L.BatchNormalization(name="stem_bn")(
        L.Conv2D(4, 3, padding="same", name="stem")(inp)))
    x = _block(x, 4, 1, "b1")
    x = _block(x, 6, 2, "b2")
    s = L.Add(name="b3_add")([L.Conv2D(6, 3, padding="same", name="b3_c")(x), x])
    x = L.Activation("relu", name="b3_out")(L.BatchNormalization(name="b3_bn")(s))
    x = L.Dropout(0.3)(L.GlobalAveragePooling2D(name="gap")(x))
    return _randomize(keras.Model(inp, L.Dense(5, name="logits")(x), name="resnet"))


def _inception():
    inp = keras.Input((6, 6, 2))
    x = L.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inp)
    a = L.Conv2D(3, 1, activation="relu", name="b1x1")(x)
    b = L.Conv2D(3, 3, padding="same", activation="relu", name="b3x3")(x)
    c = L.AveragePooling2D(3, strides=1, padding="same", name="pool")(x)
    c = L.Conv2D(2, 1, activation="relu", name="bpool")(c)
    x = L.Concatenate(name="concat")([a, b, c])
    x = L.SeparableConv2D(4, 3, strides=2, depth_multiplier=2, activation="relu", name="after")(x)
    x = L.UpSampling2D(2, name="up")(x)
    out = L.Dense(4, name="logits")(L.Flatten()(x))
    return _randomize(keras.Model(inp, out, name="inception"), seed=1)


def _add_output():
    """Two Dense heads summed at the output, ReLU6 on a hidden layer, and a
    trailing Activation and Reshape after the readout."""
    inp = keras.Input((5, 5, 1))
    x = L.Flatten()(L.Conv2D(3, 3, activation="relu", name="conv")(inp))
    h = L.ReLU(max_value=6.0, name="relu6")(L.Dense(8, name="hidden")(x))
    s = L.Add(name="sum")([L.Dense(3, name="head_a")(h), L.Dense(3, name="head_b")(x)])
    out = L.Reshape((3, 1))(L.Activation("softmax")(s))
    return _randomize(keras.Model(inp, out, name="add_output"), seed=2)


def _gap_concat():
    """GlobalAveragePooling2D of a Concatenate: average pooling neurons, then the Dense."""
    inp = keras.Input((6, 6, 1))
    a = L.Conv2D(2, 3, padding="same", activation="relu", name="a")(inp)
    b = L.Conv2D(3, 1, activation="relu", name="b")(inp)
    x = L.GlobalAveragePooling2D(name="gap")(L.Concatenate()([a, b]))
    return _randomize(keras.Model(inp, L.Dense(3, name="logits")(x), name="gap_concat"), seed=8)


def _sequence():
    """Conv1D over (steps, channels): causal and dilated, with BatchNormalization,
    then strided."""
    inp = keras.Input((16, 2))
    x = L.Conv1D(4, 3, padding="causal", dilation_rate=2, name="causal")(inp)
    x = L.ReLU()(L.BatchNormalization(name="bn")(x))
    x = L.Conv1D(3, 3, strides=2, padding="same", activation="relu", name="strided")(x)
    return _randomize(keras.Model(inp, L.Dense(3, name="logits")(L.Flatten()(x)),
                                  name="sequence"), seed=5)


def _bn_after_relu():
    """BatchNormalization after ReLUs: before a 'valid' conv, before Flatten ->
    Dense, and before an Add's shortcut."""
    inp = keras.Input((7, 7, 2), name="in")
    x = L.BatchNormalization(name="bn1")(L.Conv2D(4, 3, padding="same", activation="relu",
                                                  name="c1")(inp))
    x = L.BatchNormalization(name="bn2")(L.Conv2D(4, 3, activation="relu", name="c2")(x))
    x = L.ReLU()(L.Add(name="add")([L.Conv2D(4, 1, name="c3")(x), x]))
    x = L.BatchNormalization(name="bn3")(L.Flatten()(x))
    return _randomize(keras.Model(inp, L.Dense(3, name="logits")(x), name="bn_after_relu"),
                      seed=6)


MODELS = {"bn_after_relu": _bn_after_relu, "resnet": _resnet, "inception": _inception, "add_output": _add_output,
          "gap_concat": _gap_concat, "sequence": _sequence}


def _logits(model, x):
    """The model's output before the trailing layers (the readout's input sum)."""
    return model.predict(x, verbose=0).reshape(len(x), -1)


@pytest.fixture(scope="module", params=sorted(MODELS))
def converted(request):
    ann = MODELS[request.param]()
    x = np.random.default_rng(3).uniform(size=(64, *ann.inputs[0].shape[1:])).astype(np.float32)
    return request.param, ann, convert(ann, x), x


def test_keras_twin_computes_the_shifted_and_scaled_ann_logits(converted):
    name, ann, snn, x = converted
    pre = L.Activation("linear")  # the logits: the output of the readout before softmax
    readout = ann.get_layer("logits" if name != "add_output" else "sum").output
    z = keras.Model(ann.inputs, pre(readout)).predict(x, verbose=0).reshape(len(x), -1)
    twin = _logits(snn, x)
    # twin = (z + offset) / lam: offset and lam as normalization.readout_offset_and_scale
    # chose them (the offset may be capped by the bias range)
    lam, c = np.polyfit(twin.ravel(), z.ravel(), 1)
    assert lam == pytest.approx(1.25 * (z.max() - c), rel=1e-4) and -c >= 0
    np.testing.assert_allclose(twin * lam + c, z, rtol=1e-4, atol=1e-4 * np.abs(z).max())


def test_branches_become_neurons_at_the_sum_with_identity_shortcuts(converted):
    name, _, snn, _ = converted
    ir = snn.to_ir()
    kinds = {(s, t): ir.connection(s, t).kind for s, t in ir.graph.edges}
    if name == "resnet":
        # neurons at each sum: the linear conv's synapses and the shortcut's
        assert kinds[("b1_c1", "b1_add")] == "conv2d"
        assert kinds[("stem", "b1_add")] == "identity"
        assert kinds[("b1_add", "b2_add")] == "conv2d"         # the projection, no neurons
        # conv(x) + x from one layer: one connection, the identity at the centre tap
        assert kinds[("b2_add", "b3_add")] == "conv2d" and ("b2_add", "b3_c") not in kinds
        assert kinds[("b3_add", "logits")] == "dense"          # GAP folded into the Dense
        assert [n for n in ir.order() if isinstance(snn.get_layer(n), NxAdd)] == \
            ["b1_add", "b2_add", "b3_add"]
    elif name == "inception":
        assert sorted(s for s, t in kinds if t == "after") == ["b1x1", "b3x3", "bpool"]
        assert kinds[("stem", "pool")] == "avg_pool2d" and kinds[("after", "up")] == "upsampling2d"
    elif name == "gap_concat":
        assert kinds[("a", "gap")] == kinds[("b", "gap")] == "avg_pool2d"
        assert kinds[("gap", "logits")] == "dense"
    elif name == "bn_after_relu":    # folded into the layers after them: no neurons of their own
        assert sorted(ir.graph.edges) == [("add", "logits"), ("c1", "c2"), ("c2", "add"),
                                          ("in", "c1")]
    elif name == "sequence":    # Conv1D: a conv of height 1, causal padding before the steps
        assert kinds[("causal", "strided")] == "conv1d"
        assert ir.connection(ir.order()[0], "causal").pre_padding == ((0, 0), (4, 0))
    else:
        assert sorted(s for s, t in kinds if t == "sum") == ["conv", "hidden"]
        assert kinds[("conv", "sum")] == "dense" and ir.outputs == ["sum"]


def test_branches_that_meet_share_a_scale_and_sums_normalize_at_the_relu(converted):
    name, ann, snn, x = converted
    if name == "inception":   # the three concatenated branches: one lambda, the largest
        acts = [keras.Model(ann.inputs, ann.get_layer(n).output).predict(x, verbose=0)
                for n in ("b1x1", "b3x3", "bpool")]
        lams = [percentile_scale(a, 99.9) for a in acts]
        twin = [keras.Model(snn.inputs, snn.get_layer(n).output).predict(x, verbose=0)
                for n in ("b1x1", "b3x3", "bpool")]
        for a, t in zip(acts, twin):
            np.testing.assert_allclose(t * max(lams), a, rtol=1e-4, atol=1e-5)
    elif name == "resnet":    # each sum's own percentile at its threshold
        for n in ("b1_add", "b2_add", "b3_add"):
            t = keras.Model(snn.inputs, snn.get_layer(n).output).predict(x, verbose=0)
            assert percentile_scale(t, 99.9) == pytest.approx(1.0, rel=1e-4)
    elif name == "add_output":    # ReLU6's scale is at most its max_value
        ann_h = keras.Model(ann.inputs, ann.get_layer("relu6").output).predict(x, verbose=0)
        lam = min(percentile_scale(ann_h, 99.9), 6.0)
        t = keras.Model(snn.inputs, snn.get_layer("hidden").output).predict(x, verbose=0)
        np.testing.assert_allclose(np.minimum(t * lam, 6.0), ann_h, rtol=1e-4, atol=1e-5)


def test_relu6_below_the_percentile_clips_at_the_rate_limit():
    inp = keras.Input((4,))
    h = L.ReLU(max_value=0.1, name="clip")(L.Dense(6, name="hidden")(inp))
    ann = _randomize(keras.Model(inp, L.Dense(2, name="logits")(h)), seed=4)
    x = np.random.default_rng(0).uniform(size=(32, 4)).astype(np.float32)
    assert percentile_scale(keras.Model(inp, h).predict(x, verbose=0), 99.9) > 0.1
    snn = convert(ann, x)
    # lambda = max_value: the clip at 0.1 is the rate limit of one spike per step
    np.testing.assert_allclose(snn.get_layer("hidden").get_weights()[0],
                               ann.get_layer("hidden").get_weights()[0] / 0.1, rtol=1e-6)


def test_resnet_runs_the_same_on_lava_and_the_reference(tmp_path):
    ann = _resnet()
    x = np.random.default_rng(5).uniform(size=(16, 8, 8, 1)).astype(np.float32)
    compiled = convert(ann, x).compile()
    layers = list(compiled.network.layers)
    ref = compiled.run(x[:1], 20, backend="reference", record=layers)
    assert all(ref.trains[n].any() for n in layers)
    got = compiled.run(x[:1], 20, backend="lava", record=layers)
    for name in layers:
        np.testing.assert_array_equal(got.trains[name], ref.trains[name], err_msg=name)
    np.testing.assert_array_equal(got.voltages, ref.voltages)
    compiled.save(tmp_path / "resnet.nxc")          # identity connections in the model file
    loaded = nxcompile.load(tmp_path / "resnet.nxc").run(x[:4], 20)
    np.testing.assert_array_equal(loaded.potentials, compiled.run(x[:4], 20).potentials)


def test_summands_from_one_source_become_one_connection():
    """conv_a(x) + conv_b(x) + x -> ReLU: one conv2d, the kernels and the
    identity (at the centre tap) added."""
    inp = keras.Input((5, 5, 1))
    s = L.Add(name="a")([L.Conv2D(1, 3, padding="same", name="ca")(inp),
                         L.Conv2D(1, 3, padding="same", name="cb")(inp), inp])
    model = _randomize(keras.Model(inp, L.Dense(2)(L.Flatten()(L.ReLU()(s)))))
    x = np.random.default_rng(0).uniform(size=(8, 5, 5, 1))
    snn = convert(model, x)
    ir = snn.to_ir()
    (src,) = ir.predecessors("a")
    conn = ir.connection(src, "a")
    assert conn.kind == "conv2d" and conn.kernel.shape == (3, 3, 1, 1)
    ka, kb = (snn.get_layer(n).get_weights()[0] for n in ("ca", "cb"))
    expected = ka + kb
    expected[1, 1, 0, :] += snn.get_layer("a").get_weights()[0][2]
    np.testing.assert_allclose(conn.kernel, expected, rtol=1e-6)


@pytest.mark.parametrize("build, message", [
    (lambda i: L.Conv2D(2, 1, name="lin2")(L.Conv2D(2, 3, name="lin1")(i)),
     r"'lin1' \(Conv2D\): a hidden layer needs a ReLU activation"),
    (lambda i: L.Conv2D(2, 3, padding="same", activation="relu", name="c2")(
        L.BatchNormalization(name="bn")(L.Conv2D(2, 3, activation="relu")(i))),
     r"BatchNormalization \['bn'\] after layer '.*' cannot be folded into layer 'c2' "
     r"\(NxConv2D\): its shift would reach border neurons"),
    (lambda i: L.BatchNormalization(name="bn")(L.GlobalAveragePooling2D()(
        L.Conv2D(2, 3, activation="relu")(i))),
     r"'bn' \(BatchNormalization\) must directly follow"),
    (lambda i: L.ReLU(name="r")(L.Add(name="a")([
        L.Conv2D(1, 3, strides=2, name="lin")(i),
        L.Conv2D(1, 1, strides=3, padding="same", name="proj")(i)])),
     r"'a' \(NxAdd\) receives layer 'input.*' over several paths"),
    (lambda i: L.Activation("softmax", name="sm")(L.Conv2D(2, 3, name="c")(i)),
     r"'c' \(Conv2D\): softmax is only supported on the output layer"),
])
def test_graph_errors_name_the_layer(build, message):
    inp = keras.Input((6, 6, 1))
    model = _randomize(keras.Model(inp, L.Dense(2)(L.Flatten()(build(inp)))))
    for layer in model.layers:      # positive weights: no layer is dead on the calibration
        layer.set_weights([np.abs(w) for w in layer.get_weights()])
    x = np.random.default_rng(0).uniform(size=(8, 6, 6, 1))
    with pytest.raises(ValueError, match=message):
        convert(model, x).to_ir()


def test_nxtf_mnist_model_converts_as_shipped():
    """NxTF's tutorial MNIST architecture ends in a 1x1x10 softmax conv and a
    no-op Flatten: the conv is the readout, the trailing layers are dropped."""
    ann = _randomize(keras.Sequential([
        keras.Input((28, 28, 1)), L.Conv2D(16, 5, strides=2, activation="relu"), L.Dropout(0.1),
        L.Conv2D(32, 3, activation="relu"), L.Dropout(0.1),
        L.Conv2D(64, 3, strides=2, activation="relu"), L.Dropout(0.1),
        L.Conv2D(10, 4, activation="softmax", name="logits"), L.Flatten()]), seed=6)
    x = np.random.default_rng(7).uniform(size=(32, 28, 28, 1)).astype(np.float32)
    snn = convert(ann, x)
    assert tuple(snn.outputs[0].shape[1:]) == (1, 1, 10)
    assert snn.to_ir().outputs == ["logits"]
    z = keras.Model(ann.inputs, ann.get_layer("logits").output).predict(x, verbose=0)
    np.testing.assert_array_equal(_logits(snn, x).argmax(axis=1),
                                  np.log(z.reshape(len(x), -1)).argmax(axis=1))


def test_converted_graph_saves_and_loads_in_keras(converted, tmp_path):
    """NxAdd's gains and the layers without neurons survive a Keras model file."""
    _, _, snn, x = converted
    snn.save(tmp_path / "snn.keras")
    back = keras.models.load_model(tmp_path / "snn.keras")
    np.testing.assert_array_equal(back.predict(x, verbose=0), snn.predict(x, verbose=0))
    assert [type(layer).__name__ for layer in back.layers] == \
        [type(layer).__name__ for layer in snn.layers]
    assert [getattr(layer, "neurons", None) for layer in back.layers] == \
        [getattr(layer, "neurons", None) for layer in snn.layers]
