"""Quantization round trip: integer weights and biases, read back through the
layer's scale, equal the float ones within the stated rounding error; the
percentile option; neuron parameters that Loihi cannot hold."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from hwmodel import formats
from mapper.checks import check_network
from mapper.quantize import QuantizationError, _peak, quantize_network
from nxcompile.ir import ConnectionSpec, LayerSpec, NetworkIR, NeuronSpec, connection_matrix
from tests.helpers import NetBuilder, dense_chain, examples


def _conv_ir(rng, kernel_scale, bias_scale, num_weight_bits, sign):
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (5, 5, 2)))
    kernel = rng.normal(0, kernel_scale, (3, 3, 2, 3))
    if sign:
        kernel = sign * np.abs(kernel)
    ir.add_layer(LayerSpec("conv", "conv2d", (3, 3, 3), bias=rng.normal(0, bias_scale, 3),
                           neuron=NeuronSpec(threshold=float(rng.uniform(0.5, 2)),
                                             num_weight_bits=num_weight_bits)))
    ir.connect("inp", "conv", ConnectionSpec("conv2d", (5, 5, 2), kernel=kernel))
    return ir


@settings(max_examples=examples(40), deadline=None)
@given(seed=st.integers(0, 2 ** 31), kernel_scale=st.floats(1e-3, 30),
       bias_scale=st.floats(0, 0.5), bits=st.integers(2, 8), sign=st.sampled_from([0, 1, -1]))
def test_round_trip_within_half_a_step(seed, kernel_scale, bias_scale, bits, sign):
    rng = np.random.default_rng(seed)
    ir = _conv_ir(rng, kernel_scale, bias_scale * kernel_scale, bits, sign)
    net, info = quantize_network(ir)
    check_network(net)                     # every value on Loihi's grid and in range
    (conn,), q, lay = net.connections, info["conv"], net.layers["conv"]
    float_w = connection_matrix(ir.connection("inp", "conv"), (3, 3, 3)).toarray()
    back = conn.matrix().toarray() * 2.0 ** conn.weight_exp / q.sigma
    step = formats.weight_step(bits, conn.sign_mode) * 2.0 ** conn.weight_exp / q.sigma
    assert np.abs(back - float_w).max() <= step / 2 * (1 + 1e-9)
    assert q.weights_clipped == 0
    # the largest weight sits at the top of the grid (full use of the bits), less
    # what rounding the threshold mantissa down costs the scale (< 1/vth, vth >= 64),
    # unless the threshold mantissa is at its 17-bit limit
    grid = formats.weight_step(bits, conn.sign_mode)
    top = formats.WEIGHT_MAX // grid * grid
    assert lay.vth >= 64
    if lay.vth < formats.THRESHOLD_MANT_MAX:
        assert top * (1 - 1 / lay.vth) - grid <= np.abs(conn.matrix().data).max() <= top
    rel = np.linalg.norm(back - float_w) / np.linalg.norm(float_w)
    assert q.weight_error == pytest.approx(rel, rel=1e-9, abs=1e-15)
    assert lay.vth == round(ir.layer("conv").neuron.threshold * q.sigma)
    bias_v = np.tile(ir.layer("conv").bias, 9) * q.sigma * 64
    lsb = 2.0 ** lay.bias_exp
    assert np.abs(lay.bias_mant * lsb - bias_v).max() <= lsb / 2 * (1 + 1e-9)


def test_percentile_scaling_clips_the_outliers_and_refines_the_rest():
    rng = np.random.default_rng(11)
    ir = dense_chain([40, 30], rng)
    kernel = ir.connection("inp", "dense0").kernel
    kernel[:4, 0] = 10 * np.abs(kernel).max()               # 4 outliers of 1200
    full, info_full = quantize_network(ir)
    clipped, info_p = quantize_network(ir, weight_percentile=99)
    assert info_full["dense0"].weights_clipped == 0
    assert 4 <= info_p["dense0"].weights_clipped <= 12     # ~1% of 1200, the outliers included
    assert info_p["dense0"].sigma > 5 * info_full["dense0"].sigma
    check_network(clipped)                                  # clipped onto the grid, not past it
    w = clipped.connections[0].matrix().toarray()
    assert w.max() == 254 and w.min() >= -256
    # the bulk of the weights is represented far better
    float_w = kernel.T
    bulk = np.abs(float_w) < np.percentile(np.abs(float_w), 90)
    err = {name: np.abs(n.connections[0].matrix().toarray() / i["dense0"].sigma - float_w)[bulk].max()
           for name, n, i in (("full", full, info_full), ("p99", clipped, info_p))}
    assert err["p99"] < err["full"] / 4


@pytest.mark.parametrize("bad", [0, -5, 100.5, float("nan")])
def test_percentile_out_of_range(bad):
    with pytest.raises(ValueError, match=r"weight_percentile=.* must be in \(0, 100\]"):
        quantize_network(dense_chain([3, 2], np.random.default_rng(0)), weight_percentile=bad)


@pytest.mark.parametrize("field, value, message", [
    ("decay_u", 4096, r"layer dense0: decay_u=4096 must be an integer in -1..4095"),
    ("decay_v", -1, r"layer dense0: decay_v=-1 must be an integer in 0..4095"),
    ("num_weight_bits", 9, r"layer dense0: numWeightBits=9 must be an integer in 1..8"),
    ("bias_exp", 8, r"layer dense0: biasExp=8 must be an integer in 0..7"),
    ("reset", "zero", r"layer dense0: resetMode='zero' not one of \('hard', 'soft'\)"),
    ("threshold", float("inf"), r"layer dense0: threshold inf must be finite and > 0"),
])
def test_neuron_parameters_loihi_cannot_hold(field, value, message):
    ir = dense_chain([3, 2], np.random.default_rng(0))
    setattr(ir.layer("dense0").neuron, field, value)
    with pytest.raises(QuantizationError, match=message):
        quantize_network(ir)


@pytest.mark.parametrize("bits, sign", [(2, 0), (1, 1), (1, -1)])
def test_the_fewest_weight_bits_each_sign_mode_holds(bits, sign):
    # mixed signs drop one bit more: 2 bits keep magnitude 128, one sign alone 1 bit does
    net, _ = quantize_network(_conv_ir(np.random.default_rng(3), 1.0, 0.1, bits, sign))
    assert np.abs(net.connections[0].matrix().data).max() == 128


def test_one_weight_bit_with_both_signs_is_refused_by_name():
    with pytest.raises(QuantizationError, match=r"layer conv: numWeightBits=1 with weights of both "
                                                r"signs \(sign mode 'mixed'\) holds no weight but 0 "
                                                r"and -256"):
        quantize_network(_conv_ir(np.random.default_rng(3), 1.0, 0.1, 1, 0))


def test_input_threshold_and_mode_are_checked():
    ir = dense_chain([3, 2], np.random.default_rng(0))
    ir.layer("inp").neuron.threshold = float("nan")
    with pytest.raises(QuantizationError, match=r"layer inp: threshold nan must be finite"):
        quantize_network(ir)
    ir = dense_chain([3, 2], np.random.default_rng(0))
    ir.layer("inp").input_mode = "frames"
    with pytest.raises(QuantizationError, match=r"layer inp: input_mode='frames' not one of"):
        quantize_network(ir)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_connections_keep_no_matrix_and_build_rows_on_demand(seed):
    """A conv, a depthwise conv (multiplier 2, strided, dilated) and a concatenated
    input keep their kernels (weights None); the window's matrix equals the
    connection's float matrix put on the layer's grid, a core's rows equal those
    rows of the matrix, and the synapse count and the per-neuron sums (the
    accumulator warning's) equal the matrix's."""
    rng = np.random.default_rng(seed)
    b = NetBuilder((7, 6, 3), rng)
    b.conv(4, 3, padding="same")
    dw = b.depthwise(3, 1, "same", multiplier=2)
    side = b.conv(2, 1, source=dw)
    b.merge("conv2d", [dw, side], "concat", k=3, filters=3, padding="same")
    b.conv(3, 3, padding="same", dilation=2)
    b.depthwise(3, 2, "same")
    net, info = quantize_network(b.ir)
    assert net.connections
    for conn in net.connections:
        spec = b.ir.connection(conn.source, conn.target)
        shape = net.layers[conn.target].shape
        assert conn.weights is None and conn.window is not None
        m = conn.matrix()
        sigma, step = info[conn.target].sigma, formats.weight_step(8, conn.sign_mode)
        float_m = connection_matrix(spec, shape).toarray() * sigma / 2 ** conn.weight_exp
        np.testing.assert_array_equal(m.toarray(), np.round(float_m / step) * step)
        rows = rng.choice(m.shape[0], size=min(7, m.shape[0]), replace=False)
        np.testing.assert_array_equal(conn.rows(np.sort(rows)).toarray(), m[np.sort(rows)].toarray())
        assert conn.num_synapses == m.count_nonzero()
        np.testing.assert_array_equal(conn.window.row_sums(np.maximum(conn.window.kernel, 0)),
                                      np.asarray(m.maximum(0).sum(axis=1)).ravel())
    check_network(net)


def test_peak_of_kernel_taps_weighted_by_their_synapses_equals_the_percentile_of_all():
    """_peak over (value, synapses) pairs equals np.percentile over every synapse."""
    rng = np.random.default_rng(4)
    values, counts = rng.normal(size=50), rng.integers(0, 6, 50)
    every = np.repeat(values, counts)
    for pct in (100, 99.9, 90, 50, 12.5):
        want = np.max(np.abs(every)) if pct == 100 else np.percentile(np.abs(every), pct)
        assert _peak(values, counts, pct) == want
