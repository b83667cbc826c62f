"""QuantizedClippedReLU (QCFS) and convert(method='low_latency'): the layer's
values, gradient and serialization; the half-threshold start that makes an
integrate-and-fire rate round; the converted network's scales and initial
voltages (half threshold minus the bias of each layer's pipeline delay)."""
import keras
import numpy as np
import pytest

import nxcompile
from hwmodel.errors import NetworkError
from hwmodel.simulator import simulate
from mapper.quantize import quantize_network
from nxcompile import QuantizedClippedReLU, calibrate_clips, convert
from nxcompile.ir import LayerSpec, NetworkIR, NeuronSpec


def test_quantized_relu_values_and_straight_through_gradient():
    layer = QuantizedClippedReLU(levels=4, clip=2.0)
    x = np.array([-1.0, 0.0, 0.24, 0.26, 0.74, 1.0, 2.5, 3.0], np.float32)
    # 2 * clip(floor(x * 4 / 2 + 0.5) / 4, 0, 1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)),
                               [0, 0, 0, 0.5, 0.5, 1.0, 2.0, 2.0])
    floor = QuantizedClippedReLU(levels=4, clip=2.0, shift=0.0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(floor(x)),
                               [0, 0, 0, 0, 0.5, 1.0, 2.0, 2.0])
    import tensorflow as tf
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = tf.reduce_sum(layer(xt))
    # identity where floor(z) / L lies in [0, 1], 0 where it is clipped
    np.testing.assert_array_equal(tape.gradient(y, xt).numpy(), [0, 1, 1, 1, 1, 1, 0, 0])


def test_quantized_relu_refuses_bad_arguments_and_round_trips_its_config():
    for kwargs, message in (({"levels": 0}, r"levels=0 must be an integer >= 1"),
                            ({"clip": 0.0}, r"clip=0.0 must be a finite number >= 0.001"),
                            ({"shift": 1.0}, r"shift=1.0 must be in \[0, 1\)")):
        with pytest.raises(NetworkError, match=message):
            QuantizedClippedReLU(**kwargs)
    layer = QuantizedClippedReLU(levels=6, clip=1.5, trainable_clip=False, name="q")
    again = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(again, QuantizedClippedReLU)
    assert (again.levels, again.clip_value, again.trainable_clip, again.shift) == (6, 1.5, False, 0.5)
    assert not again.trainable_weights


def test_half_threshold_start_rounds_the_rate():
    """An input neuron started at half its threshold, soft reset, spikes
    round(T x) times in T steps for a constant input x in [0, 1] (QCFS with L = T);
    started at 0 it spikes floor(T x) times."""
    T = 8
    rng = np.random.default_rng(0)
    k, u = rng.integers(0, 8, 200), rng.uniform(0.1, 0.9, 200)     # away from the steps
    for v_init, x in ((np.full(1, 0.5), np.clip((k + u - 0.5) / T, 0, 1)),
                      (None, (k + u) / T)):
        expect = np.floor(T * x + (0.5 if v_init is not None else 0))
        ir = NetworkIR()
        ir.add_layer(LayerSpec("inp", "input", (1,), neuron=NeuronSpec(reset="soft"),
                               v_init=v_init))
        net, _ = quantize_network(ir)
        counts = simulate(net, x[:, None], T).counts["inp"][:, 0]
        np.testing.assert_array_equal(counts, np.minimum(expect, T))


def _ann(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    L = keras.layers
    inp = keras.Input((4, 4, 1))
    h = L.Conv2D(3, 3, name="conv")(inp)
    h = QuantizedClippedReLU(levels=8, clip=1.3, name="q1")(h)
    h = L.Flatten()(h)
    h = L.Dense(5, name="hidden")(h)
    h = QuantizedClippedReLU(levels=8, clip=0.7, name="q2")(h)
    out = L.Dense(3, activation="softmax", name="readout")(h)
    return keras.Model(inp, out)


def test_convert_low_latency_scales_by_clip_and_starts_at_half_threshold():
    ann = _ann(0)
    x = np.random.default_rng(1).uniform(0, 1, (64, 4, 4, 1)).astype(np.float32)
    snn = convert(ann, x, method="low_latency")
    kernel, bias = ann.get_layer("conv").get_weights()
    conv_k, conv_b = snn.get_layer("conv").get_weights()
    np.testing.assert_allclose(conv_k, kernel / 1.3, rtol=1e-6)       # lambda = the clip
    np.testing.assert_allclose(conv_b, bias / 1.3, rtol=1e-6, atol=1e-7)
    hidden_k = snn.get_layer("hidden").get_weights()[0]
    np.testing.assert_allclose(hidden_k, ann.get_layer("hidden").get_weights()[0] * 1.3 / 0.7,
                               rtol=1e-5)
    assert [snn.get_layer(n).neuron_spec.reset for n in ("conv", "hidden", "readout")] == ["soft"] * 3
    # theta / 2 minus d steps of bias (d: hops from the input); the readout -d * bias
    hops = {snn.layers[0].name: 0, "conv": 1, "hidden": 2, "readout": 3}
    for name, d in hops.items():
        layer = snn.get_layer(name)
        b = layer.get_weights()[1] if name != snn.layers[0].name else 0.0
        start = 0.0 if name == "readout" else 0.5
        np.testing.assert_allclose(layer.v_init, start - d * np.broadcast_to(b, np.shape(
            layer.v_init)), rtol=1e-6, atol=1e-7)
    compiled = snn.compile()
    inp = compiled.network.layers[compiled.network.input_layer]
    np.testing.assert_array_equal(inp.v_init, np.full(16, inp.vth << 5))     # half of vth << 6
    rate = convert(ann, x).compile()
    assert all(layer.v_init is None for layer in rate.network.layers.values())
    assert rate.network.layers["conv"].vth == compiled.network.layers["conv"].vth


def test_low_latency_snn_agrees_with_its_ann_at_levels_steps():
    """The MNIST-like pattern at toy size: at T = L integration steps (plus the
    pipeline depth) the low-latency SNN's classes equal the ANN's on most
    samples, more often than the rate conversion's (toy, untrained weights:
    small margins between classes)."""
    ann = _ann(2)
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (300, 4, 4, 1)).astype(np.float32)
    calibrate_clips(ann, x[:100])
    ann_pred = ann.predict(x, verbose=0).argmax(axis=1)
    agree = {}
    for method in ("rate", "low_latency"):
        compiled = convert(ann, x[:100], method=method).compile()
        agree[method] = np.mean(compiled.run(x, 8 + 3).predictions == ann_pred)
    assert agree["low_latency"] >= 0.9 and agree["low_latency"] > agree["rate"] + 0.05, agree


def test_convert_refuses_bad_method_and_hard_reset_low_latency():
    ann, x = _ann(0), np.zeros((2, 4, 4, 1), np.float32)
    with pytest.raises(NetworkError, match=r"method='ttl' not one of \('rate', 'low_latency'"):
        convert(ann, x, method="ttl")
    with pytest.raises(NetworkError, match=r"method='low_latency' resets by subtraction; "
                                           r"reset='hard' must be 'soft'"):
        convert(ann, x, method="low_latency", reset="hard")
    L = keras.layers
    inp = keras.Input((4,))
    bad = keras.Model(inp, L.Dense(2)(QuantizedClippedReLU(name="q")(inp)))
    with pytest.raises(NetworkError, match=r"layer 'q' \(QuantizedClippedReLU\) must directly "
                                           r"follow a"):
        convert(bad, np.zeros((2, 4), np.float32))


def test_nx_layer_v_init_is_checked_and_serialized():
    with pytest.raises(NetworkError, match=r"NxDense 'd': vInit=nan must be a finite number"):
        nxcompile.NxDense(3, vInit=float("nan"), name="d")
    layer = nxcompile.NxDense(3, vInit=[0.5, 0.25, -1.0], name="d")
    assert keras.layers.deserialize(keras.layers.serialize(layer)).v_init == [0.5, 0.25, -1.0]
    inp = nxcompile.NxInputLayer((4,))
    out = nxcompile.NxDense(2, vInit=[0.5, 0.25, 0.0], name="wrong")(inp)
    with pytest.raises(NetworkError, match=r"vInit has 3 values, the layer has 2 output channels"):
        nxcompile.NxModel(inp.output, out).compile()
