"""Nx layers (Loihi arguments, validation, serialization), NxModel as a Keras
model and as the Loihi compile entry point, and the lazy package exports."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import nxcompile  # noqa: E402
from nxcompile.ir import NeuronSpec  # noqa: E402
from nxcompile.layers import (NxAveragePooling2D, NxConv2D, NxDense,  # noqa: E402
                              NxDepthwiseConv2D, NxFlatten, NxInputLayer, NxReshape,
                              NxZeroPadding2D)
from nxcompile.model import NxModel  # noqa: E402
from tests.helpers import run_python  # noqa: E402

LOIHI_ARGS = dict(threshold=0.25, vThMant=1000, biasExp=3, resetMode="soft", numWeightBits=5,
                  decayU=100, decayV=7)
NEURON_LAYERS = [
    lambda **kw: NxInputLayer(shape=(4, 4, 2), inputMode="spikes", **kw),
    lambda **kw: NxDense(5, use_bias=False, **kw),
    lambda **kw: NxConv2D(3, (2, 3), strides=2, padding="same", **kw),
    lambda **kw: NxDepthwiseConv2D(3, depth_multiplier=2, **kw),
    lambda **kw: NxAveragePooling2D(3, strides=1, padding="same", **kw),
]


def test_defaults_relu_and_neuron_spec():
    for make in NEURON_LAYERS[1:4]:
        assert make().activation is keras.activations.relu
    assert NxDense(3, activation="linear").activation is keras.activations.linear
    assert NxConv2D(2, 3).neuron_spec == NeuronSpec()
    spec = NxDense(3, **LOIHI_ARGS).neuron_spec
    assert spec == NeuronSpec(threshold=0.25, reset="soft", decay_u=100, decay_v=7, vth_mant=1000,
                              bias_exp=3, num_weight_bits=5)
    spec.threshold = 9.0  # a copy: the layer keeps its parameters
    assert NxDense(3, **LOIHI_ARGS).neuron_spec.threshold == 0.25


@pytest.mark.parametrize("arg,value,match", [
    ("threshold", 0, r"threshold=0 must be a finite number > 0"),
    ("threshold", -1.5, r"threshold=-1.5"),
    ("threshold", float("nan"), r"threshold=nan"),
    ("threshold", "1", r"threshold='1'"),
    ("vThMant", 2 ** 17, r"vThMant=131072 must be an integer in 1..131071 or None"),
    ("vThMant", 0, r"vThMant=0 must be an integer in 1..131071 or None"),
    ("vThMant", 10.5, r"vThMant=10.5"),
    ("biasExp", 8, r"biasExp=8 must be an integer in 0..7 or None"),
    ("numWeightBits", 0, r"numWeightBits=0 must be an integer in 1..8"),
    ("numWeightBits", 9, r"numWeightBits=9"),
    ("numWeightBits", True, r"numWeightBits=True"),
    ("decayU", 4096, r"decayU=4096 must be an integer in 0..4095"),
    ("decayV", -1, r"decayV=-1 must be an integer in 0..4095"),
    ("resetMode", "zero", r"resetMode='zero' not one of \('hard', 'soft'\)"),
])
@pytest.mark.parametrize("make", NEURON_LAYERS[:3])
def test_invalid_loihi_args_name_layer_parameter_value_and_range(make, arg, value, match):
    with pytest.raises(ValueError, match=r"Nx\w+ 'bad': " + match):
        make(name="bad", **{arg: value})


def test_invalid_input_mode():
    with pytest.raises(ValueError, match=r"NxInputLayer 'x': inputMode='rate' not one of"):
        NxInputLayer(shape=(3,), inputMode="rate", name="x")


def test_numpy_integers_accepted():
    assert NxDense(2, vThMant=np.int64(7), decayV=np.int32(3)).neuron_spec.vth_mant == 7


@pytest.mark.parametrize("make", NEURON_LAYERS)
def test_get_config_round_trip(make):
    layer = make(name="l", **LOIHI_ARGS)
    config = layer.get_config()
    assert {k: config[k] for k in LOIHI_ARGS} == LOIHI_ARGS
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    assert clone.neuron_spec == layer.neuron_spec
    assert type(clone) is type(layer)


def test_input_layer_tensors_and_mode():
    inp = NxInputLayer(shape=(28, 28, 1), inputMode="spikes")
    assert inp.input is inp.output
    assert tuple(inp.output.shape) == (None, 28, 28, 1)
    assert NxInputLayer.from_config(inp.get_config()).input_mode == "spikes"


def test_shape_layers_round_trip():
    for layer in (NxFlatten(), NxReshape((2, 3)), NxZeroPadding2D(((1, 2), (0, 1)))):
        assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()


def _tiny_model():
    inp = NxInputLayer(shape=(4, 4, 1), name="inp")
    c = NxConv2D(2, 3, name="conv", threshold=0.5)(inp.input)
    out = NxDense(3, name="out", activation="linear")(NxFlatten(name="flat")(c))
    return NxModel(inp.input, out)


def test_nx_model_is_a_keras_model():
    model = _tiny_model()
    assert isinstance(model, keras.Model)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    for name in ("inp", "conv", "flat", "out", "NxConv2D", "NxDense"):
        assert name in text
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=w.shape).astype("float32") for w in model.get_weights()]
    model.set_weights(weights)
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    x = rng.uniform(size=(2, 4, 4, 1)).astype("float32")
    k, b, k2, b2 = weights
    conv = np.zeros((2, 2, 2, 2))   # batch, height, width, filters (3x3 'valid' on 4x4)
    for i in range(2):
        for j in range(2):
            conv[:, i, j] = np.einsum("nhwc,hwcf->nf", x[:, i:i + 3, j:j + 3], k)
    expected = np.maximum(conv + b, 0).reshape(2, -1) @ k2 + b2
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_keras_compile_fit_and_save_load(tmp_path):
    model = _tiny_model()
    assert model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse") is None
    before = model.get_weights()
    rng = np.random.default_rng(1)
    x, y = rng.uniform(size=(8, 4, 4, 1)), rng.uniform(size=(8, 3))
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is NxModel
    assert loaded.get_layer("conv").neuron_spec.threshold == 0.5
    assert loaded.optimizer is not None and loaded.loss == "mse"
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)


def test_compile_dispatch():
    model = _tiny_model()
    with pytest.raises(TypeError, match="board='loihi1' cannot be mixed with Keras training"):
        model.compile(optimizer="sgd", board="loihi1")
    compiled = model.compile(board="loihi1")
    assert compiled is not None and compiled.ir.order() == ["inp", "conv", "out"]
    assert not model.compiled   # no Keras training compile happened
    assert model.to_ir().order() == ["inp", "conv", "out"]


def test_package_exports_are_lazy():
    code = ("import sys, nxcompile, nxcompile.ir\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))\n"
            "assert not heavy, heavy\n")
    done = run_python(code, timeout=60)
    assert done.returncode == 0, done.stderr
    assert nxcompile.NxDense is NxDense and nxcompile.NxModel is NxModel
    assert nxcompile.model_to_ir.__module__ == "nxcompile.keras_ir"
    assert set(nxcompile.__all__) <= set(dir(nxcompile))
    with pytest.raises(AttributeError, match="no attribute 'NxLSTM'"):
        nxcompile.NxLSTM
