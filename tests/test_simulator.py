"""The reference simulator against hand-computed Loihi dynamics, and its
blocks of steps against single steps."""
from unittest import mock

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings, strategies as st

from hwmodel import formats, simulator
from hwmodel.errors import NetworkError
from hwmodel.network import RESET_MODES, IntConnection, IntLayer, IntNetwork, IntWindow
from hwmodel.simulator import simulate
from tests.helpers import assert_same_run


def _net(reset="hard", vth=10, bias=(1000,), w=64, du=4095, dv=0, weight_exp=0, vth_in=None):
    """input (bias driven, threshold vth_in, default vth) -> one neuron with weight w."""
    inp = IntLayer("inp", (len(bias),), vth=vth if vth_in is None else vth_in, bias_mant=np.zeros(len(bias), np.int64),
                   is_input=True, input_gain=1.0, reset=reset)
    out = IntLayer("out", (1,), vth=vth, bias_mant=np.zeros(1, np.int64), du=du, dv=dv, reset=reset)
    conn = IntConnection("inp", "out", sp.csr_matrix(np.full((1, len(bias)), w)), weight_exp=weight_exp)
    return IntNetwork({"inp": inp, "out": out}, [conn], "inp", "out"), np.array([bias], float)


def test_constant_bias_spike_times_hard_and_soft():
    # vth=10 -> threshold 640 in v units; bias 300/step.
    net, x = _net(reset="hard", bias=(300,))
    out = simulate(net, x, 12, record=["inp"])
    # hard reset: v = 300, 600, 900 -> spike at step 3 (index 2), every 3rd step
    assert np.flatnonzero(out.trains["inp"][0, :, 0]).tolist() == [2, 5, 8, 11]
    net, x = _net(reset="soft", bias=(300,))
    out = simulate(net, x, 12, record=["inp"])
    # soft reset keeps the remainder: 900-640=260, 560, 860 -> spike, 220, ...
    # spikes when cumulative 300*t crosses multiples of 640: t = 3, 5, 7, 9, 11 (1-based)
    assert np.flatnonzero(out.trains["inp"][0, :, 0]).tolist() == [2, 4, 6, 8, 10]
    assert out.counts["inp"][0, 0] == (300 * 12) // 640


def test_one_step_delay_per_hop_and_weight_exponent():
    # input spikes every step (bias > threshold); weight 64 << 1 = 128 per spike.
    net, x = _net(vth=100, bias=(4000,), w=64, weight_exp=1, vth_in=1)
    out = simulate(net, x, 6, record=["inp", "out"])
    assert out.trains["inp"][0, :, 0].all()
    v_per_step = 128 << formats.ACTIVATION_SHIFT          # 8192 per step from step 2 on
    # out sees the first input spike one step later; needs v > 6400 -> first spike at step 2 (index 1)
    assert not out.trains["out"][0, 0, 0]
    assert out.trains["out"][0, 1:, 0].all() and v_per_step > 100 << 6


def test_negative_weight_exponent_floors_like_an_arithmetic_shift():
    net, x = _net(vth=1, bias=(4000,), w=-3, weight_exp=-1)
    out = simulate(net, x, 3)
    # -3 >> 1 == -2 (floor), u = -2 << 6 = -128 per step with du=4095 (cleared every step)
    assert out.counts["out"][0, 0] == 0
    assert out.voltages["out"][0, 0] == -128 * 2


def test_current_decay_and_voltage_leak():
    net, x = _net(vth=100000, bias=(4000,), w=100, du=2047, dv=1024, vth_in=1)
    out = simulate(net, x, 4)
    u = v = 0
    for t in range(4):
        a = 100 if t >= 1 else 0
        u = int(np.sign(u * (4096 - 2048)) * (abs(u * (4096 - 2048)) >> 12)) + (a << 6)
        v = int(np.sign(v * (4096 - 1024)) * (abs(v * (4096 - 1024)) >> 12)) + u
    assert out.voltages["out"][0, 0] == v


def test_batch_samples_are_independent():
    net, x = _net(vth=10, bias=(300,))
    both = simulate(net, np.array([[300.0], [700.0]]), 10).counts["inp"]
    one = simulate(net, np.array([[700.0]]), 10).counts["inp"]
    assert both[1, 0] == one[0, 0] and both[0, 0] != both[1, 0]


def test_input_beyond_the_bias_mantissa_is_refused_not_clipped():
    # input_gain 1000: the 13-bit mantissa holds inputs in [-4.096, 4.095]
    inp = IntLayer("inp", (2,), vth=10, bias_mant=np.zeros(2, np.int64), is_input=True,
                   input_gain=1000.0)
    np.testing.assert_array_equal(inp.input_bias(np.array([[4.095, -4.096]])), [[4095, -4096]])
    with pytest.raises(ValueError, match=r"layer inp: input 4\.2 needs bias mantissa 4200, "
                                         r"outside the 13-bit -4096\.\.4095; inputs must lie "
                                         r"in \[-4\.096, 4\.095\]"):
        inp.input_bias(np.array([[1.0, 4.2]]))
    with pytest.raises(ValueError, match=r"layer inp: input nan"):
        inp.input_bias(np.array([[np.nan, 0.0]]))


def test_du_4094_keeps_a_4096th_of_u_and_only_4095_clears_it():
    # one input spike at step 1 through weight 254 << 7: u = 254 * 128 * 64 = 2080768 at step 2.
    # du = 4094 decays u by (4096 - 4095) / 4096 a step: 2080768 >> 12 = 508 at step 3, 0 after
    # (508 >> 12); du = 4095 clears it.  v sums u (no leak, threshold out of reach).
    inp = IntLayer("inp", (1,), vth=1, bias_mant=np.zeros(1, np.int64), is_input=True,
                   input_mode="spikes")
    x = np.zeros((1, 4, 1), np.int8)
    x[0, 0, 0] = 1
    for du, v_end in ((4094, 2080768 + 508), (4095, 2080768), (4093, 2080768 + 1016)):
        out = IntLayer("out", (1,), vth=formats.THRESHOLD_MANT_MAX, bias_mant=np.zeros(1, np.int64),
                       du=du)
        conn = IntConnection("inp", "out", sp.csr_matrix(np.full((1, 1), 254)), weight_exp=7)
        run = simulate(IntNetwork({"inp": inp, "out": out}, [conn], "inp", "out"), x, 4)
        assert run.voltages["out"][0, 0] == v_end, du


def test_recurrent_connection_with_a_delay_inhibits_its_own_neuron():
    # inp spikes every step; out gets 64 << 6 = 4096 a step from it (from step 1 on) and
    # inhibits itself by 192 << 6 = 12288 through a delay of 2: a spike of step t arrives at
    # step t + 3.  Hard reset, threshold 100 << 6 = 6400; a per-step integer model of the
    # same rules gives the expected train; blocks of any length (up to 3, the recurrent
    # connection's delay + 1, are used) give it too.
    inp = IntLayer("inp", (1,), vth=1, bias_mant=np.zeros(1, np.int64), is_input=True,
                   input_gain=1.0)
    out = IntLayer("out", (1,), vth=100, bias_mant=np.zeros(1, np.int64))
    net = IntNetwork({"inp": inp, "out": out}, [
        IntConnection("inp", "out", sp.csr_matrix([[64]])),
        IntConnection("out", "out", sp.csr_matrix([[-192]]), delays=sp.csr_matrix([[2]]))],
        "inp", "out")
    v, train = 0, []
    for t in range(16):
        v += (4096 if t >= 1 else 0) - (12288 if t >= 3 and train[t - 3] else 0)
        train.append(v > 6400)
        v = 0 if train[-1] else v
    assert 0 < sum(train) < 8
    for block in (None, 1, 2, 5):
        run = simulate(net, np.array([[4000.0]]), 16, record=["out"], block_steps=block)
        assert run.trains["out"][0, :, 0].tolist() == train, block


@st.composite
def _integer_networks(draw):
    """A random IntNetwork: a bias- or spike-driven input, 1..3 dense layers (random decays,
    reset modes, thresholds, biases, initial voltages, periodic resets), each fed by the
    layer before it with random weights, exponent and per-synapse delays, some by a second
    earlier layer, some by a recurrent connection from itself."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    spikes_in = draw(st.booleans())
    layers = {"inp": IntLayer("inp", (5,), vth=int(rng.integers(1, 40)),
                              bias_mant=np.zeros(5, np.int64), is_input=True,
                              input_mode="spikes" if spikes_in else "bias", input_gain=3000.0,
                              reset=draw(st.sampled_from(RESET_MODES)))}
    conns = []
    for i in range(draw(st.integers(1, 3))):
        n, name = int(rng.integers(1, 7)), f"l{i}"
        layers[name] = IntLayer(
            name, (n,), vth=int(rng.integers(0, 3000)), bias_mant=rng.integers(-300, 300, n),
            bias_exp=int(rng.integers(0, 8)), du=int(rng.choice([4095, rng.integers(0, 4096), -1])),
            dv=int(rng.choice([0, rng.integers(0, 4096)])), reset=draw(st.sampled_from(RESET_MODES)),
            reset_interval=int(rng.choice([0, rng.integers(2, 9)])), reset_offset=int(rng.integers(0, 2)),
            v_init=rng.integers(-2 ** 22, 2 ** 22, n) if rng.random() < 0.5 else None)
        names = list(layers)
        for source in {names[-2], names[int(rng.integers(0, len(names) - 1))], name}:
            if source == name and rng.random() < 0.6:
                continue
            m = layers[source].n
            w = rng.integers(-256, 256, (n, m)) * (rng.random((n, m)) < 0.8)
            delays = rng.integers(0, 4, (n, m)) * (w != 0) if rng.random() < 0.5 else None
            conns.append(IntConnection(source, name, sp.csr_matrix(w), weight_exp=int(rng.integers(-2, 8)),
                                       delays=None if delays is None else sp.csr_matrix(delays)))
    net = IntNetwork(layers, conns, "inp", name)
    x = (rng.random((3, 20, 5)) < 0.5).astype(np.int8) if spikes_in else rng.uniform(0, 1, (3, 5))
    return net, x


@settings(max_examples=60, deadline=None, derandomize=True)
@given(case=_integer_networks(), block=st.integers(2, 20), chunked=st.booleans())
def test_blocks_and_chunks_of_any_size_give_the_same_run(case, block, chunked):
    """Random integer networks (float32 and float64 state, clipped voltages, wrapped
    currents, floored negative exponents, delays, recurrent connections): a run in
    blocks of `block` steps, the batch in chunks of one sample or not, equals the run
    one step at a time, every layer, bit for bit."""
    net, x = case
    layers = list(net.layers)
    one = simulate(net, x, 20, record=layers, block_steps=1)
    with mock.patch.object(simulator, "CHUNK_BYTES", 1 if chunked else simulator.CHUNK_BYTES):
        got = simulate(net, x, 20, record=layers, block_steps=block)
    assert_same_run(got, one, layers, output=net.output_layer)


@pytest.mark.parametrize("du, steps, v", [
    # 5 inputs spiking every step through 255 << 7: u = 5 * 255 * 128 * 64 = 10444800, past
    # 2**23, wraps to 10444800 - 2**24 = -6332416 at the second step (float32 state: the
    # peak is below 2**24) ...
    (4095, 2, -6332416),
    # ... and two such steps take v below -(2**23 - 1), where it is clipped;
    (4095, 9, -(2 ** 23 - 1)),
    # a kept current (du = 2047: u halves each step) wraps too: at the third step u =
    # -6332416 / 2 + 10444800 = 7278592 and v = -6332416 + 7278592 = 946176 (unwrapped, v
    # would stay clipped at 2**23 - 1)
    (2047, 2, -6332416),
    (2047, 3, 946176),
])
def test_current_wraps_and_voltage_clips_at_24_bits_in_blocks_of_any_length(du, steps, v):
    inp = IntLayer("inp", (5,), vth=1, bias_mant=np.zeros(5, np.int64), is_input=True,
                   input_gain=1.0)
    out = IntLayer("out", (1,), vth=formats.THRESHOLD_MANT_MAX, bias_mant=np.zeros(1, np.int64),
                   du=du)
    net = IntNetwork({"inp": inp, "out": out},
                     [IntConnection("inp", "out", sp.csr_matrix(np.full((1, 5), 255)), weight_exp=7)],
                     "inp", "out")
    x = np.full((1, 5), 4000.0)
    for block in (None, 1, 2):
        assert simulate(net, x, steps, block_steps=block).voltages["out"][0, 0] == v


def test_voltage_clips_at_24_bits_under_a_negative_weight_exponent():
    # weight -1 at exponent -1 floors to -1 (not -0.5): u = -64 a step; from 300 v units
    # above the limit v reaches -(2**23 - 1) within 5 steps and stays clipped there
    limit = 2 ** 23 - 1
    net, x = _net(vth=10, bias=(1000,), w=-1, weight_exp=-1)
    net.layers["out"].v_init = np.array([-(limit - 300)])
    for steps in (4, 6, 8):
        v = simulate(net, x, steps).voltages["out"][0, 0]
        assert v == max(-(limit - 300) - 64 * (steps - 1), -limit)


def test_an_empty_batch_is_refused_by_name():
    net, x = _net()
    with pytest.raises(NetworkError, match="a batch of 0 samples"):
        simulate(net, x[:0], 5)


@pytest.mark.parametrize("weight_exp, dv", [(0, 0), (-1, 0), (0, 100)])   # floored; float64 target
@pytest.mark.parametrize("kh, kw, c, k, depthwise, strides, dilation, first, path", [
    (5, 5, 1, 3, False, (2, 2), (1, 1), 0, "frames_last"),    # patch rows of kw * C = 5 values
    (3, 3, 2, 2, False, (1, 2), (2, 1), 0, "frames_last"),
    (3, 3, 24, 2, False, (2, 1), (1, 2), 0, "im2col"),         # kw * C = 72 >= SHORT_RUN
    (3, 3, 4, 1, True, (2, 1), (1, 2), 0, "row_runs"),         # column stride 1, multiplier 1
    (2, 3, 4, 1, True, (1, 1), (2, 1), 0, "row_runs"),
    (3, 3, 4, 1, True, (1, 2), (1, 1), 0, "per_channel"),      # column stride 2
    (3, 3, 4, 2, True, (1, 1), (1, 1), 0, "per_channel"),      # multiplier 2
    (3, 3, 4, 1, True, (1, 1), (1, 1), 2, "per_channel"),      # onto target channels 2..5 of 9
])
def test_each_convolution_path_equals_the_matrix_product(kh, kw, c, k, depthwise, strides,
                                                         dilation, first, path, weight_exp, dv):
    """Each way the simulator computes a window (patches frames last or first,
    a per-channel window by runs of a row or by taps, and spike by spike as
    events) gives the matrix product's run bit for bit, padded on every side,
    also floored by a negative weight exponent and added into a float64 layer."""
    rng = np.random.default_rng(7)
    h, w = 9, 8
    (sy, sx), (dy, dx) = strides, dilation
    ho, wo = (h + 2 - (kh - 1) * dy - 1) // sy + 1, (w + 2 - (kw - 1) * dx - 1) // sx + 1
    co = c * k + 3 * bool(first) if depthwise else k
    win = IntWindow(rng.integers(-40, 60, (kh, kw, c, k)), strides, (1, 1), depthwise=depthwise,
                    first=first, dilation=dilation, source_shape=(h, w, c), target_shape=(ho, wo, co))
    inp = IntLayer("inp", (h, w, c), vth=1, bias_mant=np.zeros(h * w * c, np.int64), is_input=True,
                   input_mode="spikes")
    out = IntLayer("out", (ho, wo, co), vth=50, bias_mant=np.zeros(ho * wo * co, np.int64),
                   reset="soft", dv=dv)
    net = IntNetwork({"inp": inp, "out": out},
                     [IntConnection("inp", "out", None, weight_exp=weight_exp, window=win)],
                     "inp", "out")
    syn = simulator._synapses(net)[0]
    used = {"frames_last": syn.frames_last, "row_runs": syn.row_runs,
            "im2col": not depthwise and not syn.frames_last,
            "per_channel": depthwise and not syn.row_runs}
    assert [p for p, on in used.items() if on] == [path]
    x = (rng.random((5, 12, h * w * c)) < 0.3).astype(np.int8)
    ref = simulate(net.with_matrices(), x, 12, record=["out"])
    assert ref.counts["out"].sum() > 0
    for cost in (1e30, 0.0):          # events never, always
        with mock.patch.object(simulator, "EVENT_NS", (cost,) * 4):
            assert_same_run(simulate(net, x, 12, record=["out"]), ref, ["out"], output="out")
