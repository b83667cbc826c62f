"""Float IR -> Loihi integers: grid, ranges, errors, and the function it preserves."""
import numpy as np
import pytest

from hwmodel import formats
from hwmodel.simulator import simulate
from mapper.quantize import QuantizationError, quantize_network
from nxcompile.ir import connection_matrix
from tests.helpers import dense_chain


def test_weights_fill_the_8bit_grid_and_round_to_nearest():
    rng = np.random.default_rng(1)
    ir = dense_chain([30, 20], rng, bias_scale=0.05)
    net, info = quantize_network(ir)
    conn, q = net.connections[0], info["dense0"]
    w = conn.matrix().toarray()
    assert np.all(w % 2 == 0) and w.min() >= -256 and w.max() <= 255   # mixed sign: even values
    assert np.abs(w).max() == 254                                      # full width used
    float_w = connection_matrix(ir.connection("inp", "dense0"), (20,)).toarray()
    step = 2 * 2.0 ** conn.weight_exp / q.sigma
    assert np.abs(w * 2.0 ** conn.weight_exp / q.sigma - float_w).max() <= step / 2 + 1e-12
    assert net.layers["dense0"].vth == round(1.0 * q.sigma)
    assert 0 < q.weight_error < 0.02


def test_bias_mantissa_and_exponent_use_13_bits():
    rng = np.random.default_rng(2)
    ir = dense_chain([10, 50], rng, bias_scale=0.5)
    net, info = quantize_network(ir)
    lay, q = net.layers["dense0"], info["dense0"]
    assert np.abs(lay.bias_mant).max() <= formats.BIAS_MANT_MAX
    back = lay.bias_mant * 2.0 ** lay.bias_exp / q.sigma / 64
    assert np.abs(back - ir.layer("dense0").bias).max() <= 2.0 ** lay.bias_exp / q.sigma / 64
    if lay.bias_exp > 0:   # smallest exponent: the mantissa would not fit with one less
        assert np.abs(lay.bias_mant).max() > formats.BIAS_MANT_MAX // 2


def test_vthmant_fixes_the_scale():
    rng = np.random.default_rng(3)
    ir = dense_chain([16, 8], rng)
    ir.layer("dense0").neuron.vth_mant = 300
    net, info = quantize_network(ir)
    assert net.layers["dense0"].vth == 300 and info["dense0"].sigma == 300.0


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_name_the_layer(bad):
    rng = np.random.default_rng(4)
    ir = dense_chain([4, 3], rng)
    ir.connection("inp", "dense0").kernel[1, 2] = bad
    with pytest.raises(QuantizationError, match=r"layer dense0: kernel .* contains"):
        quantize_network(ir)


def test_bias_exponent_too_small_is_an_error():
    rng = np.random.default_rng(5)
    ir = dense_chain([4, 3], rng, bias_scale=5.0)
    ir.layer("dense0").neuron.bias_exp = 0
    with pytest.raises(QuantizationError, match=r"layer dense0: biasExp=0 too small"):
        quantize_network(ir)


def test_threshold_mantissa_out_of_range():
    rng = np.random.default_rng(6)
    ir = dense_chain([4, 3], rng)
    ir.layer("dense0").neuron.vth_mant = 2 ** 17
    with pytest.raises(QuantizationError, match=r"vThMant=131072 outside 1..131071"):
        quantize_network(ir)


def test_spike_rates_approximate_the_float_relu_network():
    """Soft-reset rates over many steps follow clip(relu(W r + b), 0, 1)."""
    rng = np.random.default_rng(3)
    ir = dense_chain([20, 15, 10], rng, reset="soft", weight_scale=1.5, bias_scale=0.1)
    net, _ = quantize_network(ir)
    x = rng.random((8, 20))
    steps = 600
    counts = simulate(net, x, steps).counts
    r = x
    for name in ("dense0", "dense1"):
        lay = ir.layer(name)
        src = ir.predecessors(name)[0]
        m = connection_matrix(ir.connection(src, name), lay.shape).toarray()
        r = np.clip(r @ m.T + lay.bias, 0, 1)
        rate = counts[name] / steps
        assert np.abs(rate - r).mean() < 0.01, name
    assert r.mean() > 0.1   # the network is active enough for the comparison to mean something


def test_small_vthmant_keeps_a_nonnegative_weight_exponent():
    """A small fixed scale uses fewer weight bits rather than a negative exponent
    (Lava floors per block for e < 0, Loihi does not)."""
    rng = np.random.default_rng(8)
    ir = dense_chain([16, 8], rng)
    ir.layer("dense0").neuron.vth_mant = 20
    net, info = quantize_network(ir)
    conn = net.connections[0]
    assert conn.weight_exp == 0 and 0 < np.abs(conn.matrix().toarray()).max() < 254
    assert info["dense0"].weight_error > 0.02    # fewer bits: larger (reported) error


def test_large_vthmant_uses_a_positive_weight_exponent():
    rng = np.random.default_rng(9)
    ir = dense_chain([16, 8], rng)
    ir.layer("dense0").neuron.vth_mant = 20000
    with pytest.warns(UserWarning, match=r"layer dense0: worst-case synaptic input .* 16-bit dendritic"):
        net, _ = quantize_network(ir)
    conn = net.connections[0]
    assert conn.weight_exp > 0 and np.abs(conn.matrix().toarray()).max() > 127
    ir.layer("dense0").neuron.vth_mant = 131071
    with pytest.raises(QuantizationError, match=r"layer dense0: .* need weight exponent 9, limit 7"):
        quantize_network(ir)


def test_report_shows_each_layers_quantization_error():
    from nxcompile.compiler import compile_ir
    rng = np.random.default_rng(10)
    compiled = compile_ir(dense_chain([30, 20], rng, bias_scale=0.3), weight_percentile=90.0)
    q = compiled.quantization["dense0"]
    assert q.weights_clipped > 0 and q.bias_error > 0
    row = next(line for line in compiled.report().splitlines() if line.startswith("dense0"))
    cells = row.split()
    assert f"{100 * q.weight_error:.2f}%" in cells and f"{100 * q.bias_error:.2f}%" in cells
    assert cells[-1] == str(q.weights_clipped)


@pytest.mark.parametrize("kernel, bias", [(0.0, [0.5, -0.2]), (0.01, [1.0, 0.0])])
def test_the_scale_is_lowered_until_the_largest_bias_fits(kernel, bias):
    """No weights, or weights far below the bias: the automatic scale that would put
    the peak weight at the top of the grid leaves the bias no 13-bit mantissa; it
    is lowered until the bias fits with exponent 7, and the rates keep the bias."""
    ir = dense_chain([3, 2], np.random.default_rng(0), reset="soft")
    ir.connection("inp", "dense0").kernel[:] = kernel
    ir.layer("dense0").bias = np.array(bias)
    net, info = quantize_network(ir)
    lay, q = net.layers["dense0"], info["dense0"]
    assert lay.bias_exp == formats.BIAS_EXP_MAX and np.abs(lay.bias_mant).max() > formats.BIAS_MANT_MAX // 2
    back = lay.bias_mant * 2.0 ** lay.bias_exp / q.sigma / 64
    assert np.abs(back - bias).max() <= 2.0 ** lay.bias_exp / q.sigma / 64
    rates = simulate(net, np.zeros((1, 3)), 100, progress=False).counts["dense0"][0] / 100
    assert np.abs(rates - np.maximum(bias, 0)).max() <= 0.02    # within 2 spikes in 100 steps
    ir.layer("dense0").bias = np.array([1e4, 0.0])      # no threshold mantissa fits that
    with pytest.raises(QuantizationError, match=r"layer dense0: bias needs a 13-bit mantissa with "
                                                r"exponent \d+, limit 7"):
        quantize_network(ir)


def test_input_vthmant_gets_the_bias_exponent_that_holds_a_pixel_of_one():
    """vThMant 100 on the input: a pixel of 1.0 is 6400 (v units), beyond a 13-bit
    mantissa with exponent 0; exponent 1 holds it, and the input spikes as with the
    automatic scale (a pixel of 1.0 one mantissa step above the threshold)."""
    x = np.array([[1.0, 0.5, 0.25]])
    auto, _ = quantize_network(dense_chain([3, 2], np.random.default_rng(0)))
    ir = dense_chain([3, 2], np.random.default_rng(0))
    ir.layer("inp").neuron.vth_mant = 100
    net, info = quantize_network(ir)
    assert (net.layers["inp"].vth, net.layers["inp"].bias_exp, info["inp"].bias_exp) == (100, 1, 1)
    assert net.layers["inp"].input_bias(x).tolist() == [[3201, 1600, 800]]
    np.testing.assert_array_equal(simulate(net, x, 40, progress=False).counts["inp"],
                                  simulate(auto, x, 40, progress=False).counts["inp"])
    ir.layer("inp").neuron.bias_exp = 0
    with pytest.raises(QuantizationError, match=r"layer inp: biasExp=0 too small for the input of "
                                                r"1.0, needs 1"):
        quantize_network(ir)
    ir.layer("inp").neuron.bias_exp, ir.layer("inp").neuron.vth_mant = None, 100000
    with pytest.raises(QuantizationError, match=r"layer inp: input of 1.0 needs a 13-bit mantissa "
                                                r"with exponent 11, limit 7 .* lower vThMant"):
        quantize_network(ir)


@pytest.mark.parametrize("reset", ["hard", "soft"])
def test_a_pixel_of_one_spikes_every_step(reset):
    """Loihi spikes only when v > vth << 6: the input gain puts a pixel of 1.0 one
    mantissa step above the threshold, so it fires on every step in both reset modes."""
    net, _ = quantize_network(dense_chain([3, 2], np.random.default_rng(0), reset=reset))
    x = np.array([[1.0, 0.5, 0.25]])
    counts = simulate(net, x, 40, progress=False).counts["inp"][0]
    assert counts[0] == 40
    if reset == "soft":    # rate x within one spike of 40 * x
        assert abs(counts[1] - 20) <= 1 and abs(counts[2] - 10) <= 1
