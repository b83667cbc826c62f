"""Energy and time model against hand-counted activity on a tiny network."""
import numpy as np
import pytest
import scipy.sparse as sp

from hwmodel.energy import LOIHI, LoihiCosts, estimate
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
    # cores 0, 1, 2 share tile 0: every message is a within-tile spike
    e = est.energy_by_component
    assert e["synaptic"] == pytest.approx(13 * LOIHI.synaptic_op)
    assert e["neuron"] == pytest.approx(160 * LOIHI.neuron_update)
    assert e["routing"] == pytest.approx(7 * LOIHI.spike_in_tile)
    # busiest core: core 1, 3 neurons x 2 compartments x 10 steps and synaptic
    # ops 2 x 2 (inp 0) + 1 x 3 (inp 3) = 7 (core 2 has 6, core 0 none)
    busy = 7 * LOIHI.synaptic_op_time + 60 * LOIHI.neuron_update_time
    assert est.time == pytest.approx(busy + 10 * LOIHI.barrier_one_chip)
    assert e["static"] == pytest.approx(LOIHI.static_power_per_chip * est.time)
    assert est.energy == pytest.approx(sum(e.values()))
    assert est.edp == pytest.approx(est.energy * est.time)
    assert est.summary().startswith(f"10 steps: {est.energy * 1e6:.3g} uJ (synaptic ")
    assert "13 synaptic ops, 9 spikes, 160 neuron updates per inference" in est.summary()


def test_hops_on_the_mesh_and_messages_between_chips():
    net, part = _net_and_partition()
    # 1 core per tile, 2 tiles per row: core 1 is one hop east, core 2 one hop north
    costs = LoihiCosts(cores_per_tile=1, mesh_width=2)
    counts = {"inp": np.array([[1, 0, 0, 0]]), "out": np.zeros((1, 6), int)}
    est = estimate(net, part, counts, 5, costs)
    assert est.energy_by_component["routing"] == pytest.approx(
        2 * costs.spike_in_tile + costs.hop_east_west + costs.hop_north_south)
    net, part = _net_and_partition(chips=(0, 0, 1))
    est = estimate(net, part, {"inp": np.array([[0, 0, 0, 4]]), "out": np.zeros((1, 6), int)}, 5)
    assert est.offchip_messages == 4 and est.spike_messages == 8
    assert est.energy_by_component["routing"] == pytest.approx(4 * LOIHI.spike_in_tile)
    assert est.time > 5 * LOIHI.barrier_multi_chip
    assert est.energy_by_component["static"] == pytest.approx(2 * 0.1 * est.time)


def test_more_spikes_cost_more_and_missing_counts_are_named():
    net, part = _net_and_partition()
    low = estimate(net, part, {"inp": np.array([[1, 1, 1, 1]]), "out": np.zeros((1, 6))}, 10)
    high = estimate(net, part, {"inp": np.array([[2, 2, 2, 2]]), "out": np.zeros((1, 6))}, 10)
    assert high.energy_by_component["synaptic"] == pytest.approx(
        2 * low.energy_by_component["synaptic"])
    assert high.energy > low.energy and high.edp > low.edp
    with pytest.raises(ValueError, match=r"missing \['inp'\].*reference"):
        estimate(net, part, {"out": np.zeros((1, 6))}, 10)
