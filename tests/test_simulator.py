"""The reference simulator against hand-computed Loihi dynamics."""
import numpy as np
import pytest
import scipy.sparse as sp

from hwmodel import formats
from hwmodel.network import IntConnection, IntLayer, IntNetwork
from hwmodel.simulator import simulate


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
