"""Energy and time model against hand-counted activity on a tiny network."""
import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from hwmodel.energy import CALIBRATED, PRE_SILICON, estimate
from hwmodel.limits import get_board
from hwmodel.network import IntConnection, IntLayer, IntNetwork
from hwmodel.partition import Core, Partition


def _layer(name, n, reset="hard", is_input=False):
    return IntLayer(name, (n,), vth=10, bias_mant=np.zeros(n, np.int64), reset=reset,
                    is_input=is_input, input_gain=1.0)


def _net_and_partition(chips=(0, 0, 0)):
    """inp (4 neurons, core 0) -> out (6 neurons: 0-2 on core 1, 3-5 on core 2).
    Weights: inp 0 -> out 0, 1, 3 (cores 1 and 2); inp 1 -> out 4 (core 2);
    inp 2 -> nothing; inp 3 -> out 0..5 (both cores)."""
    w = np.zeros((6, 4), np.int64)
    w[[0, 1, 3], 0] = 2
    w[4, 1] = -4
    w[:, 3] = 6
    net = IntNetwork({"inp": _layer("inp", 4, is_input=True), "out": _layer("out", 6, "soft")},
                     [IntConnection("inp", "out", sp.csr_matrix(w))], "inp", "out")
    cores = [Core(0, chips[0], "inp", np.arange(4)), Core(1, chips[1], "out", np.arange(3)),
             Core(2, chips[2], "out", np.arange(3, 6))]
    return net, Partition(get_board("kapoho_bay"), cores)


def test_counts_follow_spikes_times_fanout_and_compartments_times_steps():
    net, part = _net_and_partition()
    # two samples: their mean is what one inference costs
    counts = {"inp": np.array([[3, 1, 5, 2], [1, 1, 5, 0]]), "out": np.zeros((2, 6), int)}
    est = estimate(net, part, counts, num_steps=10)
    mean_in = np.array([2, 1, 5, 1])
    fan_out = np.array([3, 1, 0, 6])
    assert est.synaptic_ops == pytest.approx(mean_in @ fan_out)            # 6 + 1 + 0 + 6
    assert est.neuron_updates == 10 * (4 * 1 + 6 * 2)   # soft reset: 2 compartments per neuron
    assert est.spikes == pytest.approx(mean_in.sum())
    target_cores = np.array([2, 1, 0, 2])
    assert est.spike_messages == pytest.approx(mean_in @ target_cores)
    c, e = CALIBRATED, est.energy_by_component
    assert list(e) == ["synaptic", "compartments", "spikes", "messages", "neurocore static", "x86",
                       "board"]
    assert e["synaptic"] == pytest.approx(13 * c.synaptic_op)
    assert e["compartments"] == pytest.approx(160 * c.compartment_update)
    assert e["spikes"] == pytest.approx(9 * c.spike)
    assert e["messages"] == pytest.approx(7 * c.spike_message)
    assert est.dynamic == pytest.approx(e["synaptic"] + e["compartments"] + e["spikes"]
                                        + e["messages"])
    # busiest core: core 0 fires 9 spikes, sends 7 messages, updates 4 x 10 compartments
    # (core 1: 7 synaptic ops and 60 updates; core 2: 6 and 60); 3 cores: one tile's barrier
    busy = 9 * c.spike_time + 7 * c.spike_message_time + 40 * c.compartment_update_time
    assert 7 * c.synaptic_op_time + 60 * c.compartment_update_time < busy
    assert est.time == pytest.approx(busy + 10 * 0.6e-6)
    assert e["neurocore static"] == pytest.approx(3 * 1.2e-3 * est.time)
    assert e["x86"] == pytest.approx(22.65e-3 * est.time)
    assert e["board"] == pytest.approx(1.71 * est.time)
    assert est.energy == pytest.approx(sum(e.values()))
    assert est.edp == pytest.approx(est.energy * est.time)
    assert est.summary().startswith(f"10 steps: {est.energy * 1e6:.3g} uJ in all, "
                                    f"{est.dynamic * 1e6:.3g} uJ neurocore dynamic (synaptic ")
    assert "13 synaptic ops, 9 spikes, 160 neuron updates per inference" in est.summary()


def test_pre_silicon_costs_route_by_mesh_hops_and_chips_pay_x86():
    net, part = _net_and_partition()
    # 1 core per tile, 2 tiles per row: core 1 is one hop east, core 2 one hop north
    costs = dataclasses.replace(PRE_SILICON, cores_per_tile=1, mesh_width=2)
    counts = {"inp": np.array([[1, 0, 0, 0]]), "out": np.zeros((1, 6), int)}
    est = estimate(net, part, counts, 5, costs)
    assert est.energy_by_component["messages"] == pytest.approx(
        2 * costs.spike_in_tile + costs.hop_east_west + costs.hop_north_south)
    assert est.energy_by_component["compartments"] == pytest.approx(80 * 81e-12)
    net, part = _net_and_partition(chips=(0, 0, 1))
    est = estimate(net, part, {"inp": np.array([[0, 0, 0, 4]]), "out": np.zeros((1, 6), int)}, 5)
    assert est.offchip_messages == 4 and est.spike_messages == 8
    assert est.energy_by_component["messages"] == pytest.approx(8 * CALIBRATED.spike_message)
    assert est.time > 5 * CALIBRATED.barrier_multi_chip
    assert est.energy_by_component["x86"] == pytest.approx(2 * 22.65e-3 * est.time)


def test_more_spikes_cost_more_and_missing_counts_are_named():
    net, part = _net_and_partition()
    low = estimate(net, part, {"inp": np.array([[1, 1, 1, 1]]), "out": np.zeros((1, 6))}, 10)
    high = estimate(net, part, {"inp": np.array([[2, 2, 2, 2]]), "out": np.zeros((1, 6))}, 10)
    assert high.energy_by_component["synaptic"] == pytest.approx(
        2 * low.energy_by_component["synaptic"])
    assert high.energy > low.energy and high.edp > low.edp
    with pytest.raises(ValueError, match=r"missing \['inp'\].*reference"):
        estimate(net, part, {"out": np.zeros((1, 6))}, 10)
    with pytest.raises(ValueError, match=r"needs a run of at least one sample"):
        estimate(net, part, {"inp": np.zeros((0, 4)), "out": np.zeros((0, 6))}, 10)
