"""Thin partitioner: limits respected, neurons assigned once, resource counts, errors."""
import numpy as np
import pytest

from hwmodel.limits import get_board
from nxcompile.ir import ConnectionSpec, LayerSpec, NetworkIR
from partitioner.errors import CoreLimitError
from partitioner.layerwise import partition_network
from tests.helpers import dense_chain


def _check_assignment(ir, part):
    lim = part.board.chip.core
    for name in ir.order():
        cores = part.cores_of(name)
        neurons = np.concatenate([c.neurons for c in cores])
        assert sorted(neurons.tolist()) == list(range(ir.layer(name).n))
    for c in part.cores:
        assert c.compartments <= lim.compartments and c.input_axons <= lim.input_axons
        assert c.output_axons <= lim.output_axons and c.synapse_words <= lim.synapse_words


def test_small_dense_counts_by_hand():
    ir = dense_chain([10, 20], np.random.default_rng(0))
    part = partition_network(ir, get_board("loihi1"))
    inp, d = part.cores
    assert (inp.compartments, inp.output_axons) == (10, 10)
    # 10 axons, each with 20 synapses in one entry: 10 + 20*(9 + 6) = 310 bits -> 5 words
    assert (d.compartments, d.input_axons, d.synapse_words) == (20, 10, 50)


def test_soft_reset_takes_two_compartments_and_splits_layers():
    ir = dense_chain([100, 600], np.random.default_rng(0), reset="soft")
    part = partition_network(ir, get_board("loihi1"))
    assert len(part.cores_of("dense0")) == 2
    assert [c.compartments for c in part.cores_of("dense0")] == [600, 600]
    _check_assignment(ir, part)


def test_synapse_memory_forces_more_cores():
    # 1000 inputs x 1000 neurons: ~1M synapses cannot fit one core's 16384 words
    ir = dense_chain([1000, 1000], np.random.default_rng(0))
    part = partition_network(ir, get_board("loihi1"))
    assert len(part.cores_of("dense0")) >= 1000 * 1000 * 15 // 64 // 16384
    _check_assignment(ir, part)


def test_neuron_with_too_many_inputs_names_layer_resource_and_limit():
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (5000,)))
    ir.add_layer(LayerSpec("wide", "dense", (2,)))
    ir.connect("inp", "wide", ConnectionSpec("dense", (5000,), kernel=np.ones((5000, 2))))
    with pytest.raises(CoreLimitError, match=r"layer wide: 5000 input axons needed on one core, limit 4096"):
        partition_network(ir, get_board("loihi1"))


def test_network_larger_than_the_board():
    ir = dense_chain([100, 200000], np.random.default_rng(0), weight_scale=0.1)
    with pytest.raises(ValueError, match=r"board loihi1 has 1 chips"):
        partition_network(ir, get_board("loihi1"))
