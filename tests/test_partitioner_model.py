"""Resource model formulas, the independent validator, and the search's estimates
against the validator's recount on random networks (hypothesis)."""
import dataclasses
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwmodel.limits import Board, ChipSpec, CoreLimits, get_board
from hwmodel.partition import Core, Partition
from nxcompile.ir import ConnectionSpec, LayerSpec, NetworkIR
from partitioner import model, partition_network, validate
from partitioner.edges import shared_list_keys
from partitioner.errors import PartitionError
from partitioner.validate import (EstimateMismatchError, PartitionValidationError, recount,
                                  validate_partition)
from tests.helpers import MERGES, NetBuilder, dense_chain, examples

LIM = CoreLimits()
TINY = Board("tiny", ChipSpec("tiny", CoreLimits(compartments=64, input_axons=256, output_axons=256,
                                                 synapse_words=512, words_per_axon=64),
                              cores_per_chip=3), num_chips=200)


def _words(idx, encoding, w_bits=8, i_bits=6):
    return int(model.list_words(np.array(idx), np.array([0]), encoding, w_bits, i_bits, LIM)[0])


def test_sparse_list_words_by_hand():
    # 10-bit header + 3 x (8 weight + 6 index) = 52 bits, + 6 reserve -> 1 word
    assert _words([0, 5, 9], "sparse") == 1
    # 61 synapses: 2 entries, 20 + 61 * 14 = 874 bits, + 6 = 880 -> 14 words
    assert _words(range(61), "sparse") == 14


def test_runlength_skip_of_31_stays_in_the_entry_and_32_starts_a_new_one():
    # gaps of 31: one entry, 10 + 7 start index + 5 x (8 weight + 5 skip) = 82 bits, + 6 -> 2 words
    assert _words([0, 31, 62, 93, 124], "runlength", i_bits=7) == 2
    # gaps of 32 (NxTF: a new entry at every gap >= 2**5): 5 entries of 10 + 8 + 8 + 2 = 28 bits
    # = 140, + 6 -> 3 words
    assert _words([0, 32, 64, 96, 128], "runlength", i_bits=8) == 3


def test_dense_entry_start_index_bits_count():
    # one run of 6 at a 10-bit core: 10 + 10 start index + 6 x 8 = 68 bits, + 6 -> 2 words
    # (without the start index it would be 58 + 6 = 64 bits: 1 word)
    assert _words(range(6), "dense", i_bits=10) == 2
    assert _words(range(6), "dense", i_bits=6) == 2        # 64 + 6 = 70 bits
    assert _words(range(5), "dense", i_bits=6) == 1        # 10 + 6 + 40 = 56, + 6 = 62 bits
    # 61 consecutive: two entries (at most 60 synapses each): 2 x 16 + 61 x 8 = 520, + 6 -> 9
    # words (one entry of 61 would be 504 + 6 = 510 bits: 8 words)
    assert _words(range(61), "dense") == 9


def test_dense_list_words_by_hand():
    # runs [0,1,2] and [5,6]: 2 x (10 + 6 start index) + 5 x 8 = 72 bits, + 6 -> 2 words
    assert _words([0, 1, 2, 5, 6], "dense") == 2
    # one run of 120: 2 entries of 60: 2 x 16 + 960 = 992, + 6 = 998 -> 16 words
    assert _words(range(120), "dense") == 16


def test_runlength_list_words_by_hand():
    # gaps 1, 2, 37: the gap > 31 starts a new entry; skips need 2 bits:
    # (16 + 3 x 10) + (16 + 1 x 10) = 72 bits, + 6 -> 2 words
    assert _words([0, 1, 3, 40], "runlength") == 2
    # a skip of 4 needs 3 bits: 16 + 2 x 11 = 38, + 6 = 44 -> 1 word
    assert _words([0, 4], "runlength") == 1


def test_several_lists_and_index_bits_per_list():
    idx = np.array([0, 1, 2, 7])
    words = model.list_words(idx, np.array([0, 3]), "sparse", 8, np.array([6, 10]), LIM)
    # list 0: 10 + 3 x 14 = 52 -> 1 word; list 1: 10 + 1 x 18 = 28 -> 1 word
    assert words.tolist() == [1, 1]
    assert model.index_bits(1024) == 10 and model.index_bits(20) == 6 and model.index_bits(65) == 7


def test_shared_list_keys_compare_relative_indices_weights_and_group():
    idx = np.array([0, 1, 5, 6, 5, 6, 0, 2, 3, 4])
    w = np.array([1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 0.0, -0.0])
    starts = np.array([0, 2, 4, 6, 8])
    group = np.array([0, 0, 1, 0, 0])
    keys = shared_list_keys(group, idx, w, starts)
    assert keys[0] == keys[1]           # same up to the base, same weights
    assert keys[2] != keys[1]           # other group (core or connection)
    assert keys[3] != keys[0]           # other relative indices
    assert keys[4] not in keys[:4]
    keys2 = shared_list_keys(np.zeros(2), np.array([3, 4, 7, 8]), np.array([0.0, 1.0, -0.0, 1.0]),
                                   np.array([0, 2]))
    assert keys2[0] == keys2[1]         # 0.0 == -0.0


def _manual(ir, splits, chips=None, encoding="sparse", population=None):
    cores = []
    for name in ir.order():
        for neurons in splits[name]:
            cores.append(Core(index=len(cores), chip=0, layer=name,
                              neurons=np.asarray(neurons, np.int64), encoding=encoding))
    for c, chip in zip(cores, chips or [0] * len(cores)):
        c.chip = chip
    for index, sources in (population or {}).items():
        cores[index].population = sources
    return Partition(board=get_board("kapoho_bay"), cores=cores)


def test_validator_counts_population_and_offchip_entries_by_hand():
    ir = dense_chain([4, 3], np.random.default_rng(0))
    splits = {"inp": [range(4)], "dense0": [range(3)]}
    # 4 distinct lists of 3 synapses: 10 + 3 x 14 = 52 bits, + 6 -> 1 word each.
    # Discrete: 4 input axons; 4 output entries + 4 because the routes leave chip 0.
    inp, d = recount(ir, _manual(ir, splits, chips=[0, 1]))
    assert (d.input_axons, d.synapse_words, d.compartments) == (4, 4, 3)
    assert (inp.output_axons, inp.compartments) == (8, 4)
    # All 4 sources target only this core: as a population, 1 input axon, 4 x 1
    # padded words, 2 output entries + 1 off-chip.
    inp, d = recount(ir, _manual(ir, splits, chips=[0, 1], population={1: ("inp",)}))
    assert (d.input_axons, d.synapse_words) == (1, 4)
    assert inp.output_axons == 3


def test_validator_shares_lists_identical_up_to_their_base_by_hand():
    # sources 0 and 1 reach targets (0, 1) and (2, 3) with weights (1, 2): one
    # stored list; source 2 reaches (0, 1) with (1, 3), source 3 (0, 2) with (1, 2):
    # their own lists.  4 discrete axons, 3 words of one list each
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (4,)))
    ir.add_layer(LayerSpec("out", "dense", (4,)))
    kernel = np.array([[1, 2, 0, 0], [0, 0, 1, 2], [1, 3, 0, 0], [1, 0, 2, 0]], float)
    ir.connect("inp", "out", ConnectionSpec("dense", (4,), kernel=kernel))
    inp, out = recount(ir, _manual(ir, {"inp": [range(4)], "out": [range(4)]}))
    assert (out.input_axons, out.synapse_words, inp.output_axons) == (4, 3, 4)


def test_validator_rejects_a_population_without_members():
    b = NetBuilder((4,), np.random.default_rng(0))
    b.dense(3)
    b.dense(2, source="inp")
    splits = {"inp": [range(4)], "dense1": [range(3)], "dense2": [range(2)]}
    with pytest.raises(PartitionValidationError, match=r"core 1 \(layer dense1\): population axon "
                                                       r"from layer inp recorded, but no neuron"):
        recount(b.ir, _manual(b.ir, splits, population={1: ("inp",)}))
    with pytest.raises(PartitionValidationError, match=r"population axon from 'dense1', which does "
                                                       r"not feed layer dense2"):
        recount(b.ir, _manual(b.ir, splits, population={2: ("dense1",)}))


def test_validator_counts_discrete_axons_of_a_source_with_two_successors():
    b = NetBuilder((4,), np.random.default_rng(0))
    b.dense(3)
    b.dense(2, source="inp")
    part = _manual(b.ir, {"inp": [range(4)], "dense1": [range(3)], "dense2": [range(2)]},
                   chips=[0, 0, 1])
    inp, d1, d2 = recount(b.ir, part)
    # every input neuron reaches 2 cores: discrete axons, 4 per target core; entries
    # 4 x 1 (same chip) + 4 x 2 (other chip)
    assert (d1.input_axons, d2.input_axons, inp.output_axons) == (4, 4, 12)
    # lists of 3 and 2 synapses: 1 word each, 4 distinct lists per core
    assert (d1.synapse_words, d2.synapse_words) == (4, 4)


def test_validator_names_core_layer_resource_value_and_limit():
    ir = dense_chain([10, 2000], np.random.default_rng(0))
    part = _manual(ir, {"inp": [range(10)], "dense0": [range(2000)]})
    with pytest.raises(PartitionValidationError,
                       match=r"core 1 \(layer dense0, chip 0\): 2000 compartments, limit 1024"):
        validate_partition(ir, part)


def test_validator_rejects_lost_or_doubled_neurons():
    ir = dense_chain([10, 20], np.random.default_rng(0))
    with pytest.raises(PartitionValidationError, match=r"layer dense0: 1 neurons are on no core"):
        validate_partition(ir, _manual(ir, {"inp": [range(10)], "dense0": [range(19)]}))
    with pytest.raises(PartitionValidationError, match=r"core 2 \(layer dense0\): neurons already on"):
        validate_partition(ir, _manual(ir, {"inp": [range(10)], "dense0": [range(20), [3]]}))


def test_validator_checks_cores_per_chip():
    ir = dense_chain([10, 20], np.random.default_rng(0))
    part = _manual(ir, {"inp": [range(10)], "dense0": [range(20)]}, chips=[0, 2])
    with pytest.raises(PartitionValidationError, match=r"core 1 \(layer dense0\): chip 2 outside 0..1, "
                                                       r"board kapoho_bay has 2 chips"):
        validate_partition(ir, part)
    part.cores[1].chip = -1
    with pytest.raises(PartitionValidationError, match=r"core 1 \(layer dense0\): chip -1 outside"):
        validate_partition(ir, part)
    part.cores[1].chip = 0
    part.board = Board("single", ChipSpec("single", CoreLimits(), cores_per_chip=1), num_chips=2)
    with pytest.raises(PartitionValidationError, match=r"chip 0 holds 2 cores, limit 1"):
        validate_partition(ir, part)


def _assert_estimates_equal_recount(ir, part):
    counts = validate_partition(ir, part)
    for core, count in zip(part.cores, counts):
        estimated = (core.compartments, core.input_axons, core.output_axons, core.synapse_words)
        recounted = (count.compartments, count.input_axons, count.output_axons, count.synapse_words)
        assert estimated == recounted, f"core {core.index} ({core.layer})"


def test_estimates_equal_recount_on_a_residual_cnn():
    rng = np.random.default_rng(1)
    b = NetBuilder((12, 12, 3), rng, reset="soft")
    stem = b.conv(8, 3, padding="same")
    left = b.depthwise(3)
    right = b.conv(8, 1, source=stem)
    join = b.conv(16, 3, stride=2, padding="same", source=left)
    b.ir.connect(right, join, ConnectionSpec("conv2d", (12, 12, 8), kernel=rng.normal(size=(1, 1, 8, 16)),
                                             strides=(2, 2), padding="same"))
    b.pool(2, source=join)
    b.dense(10)
    part = partition_network(b.ir, TINY, placement_time_limit=0.3)
    _assert_estimates_equal_recount(b.ir, part)
    assert part.num_chips > 1


def test_estimates_equal_recount_on_concatenated_branches():
    # Concatenate folded into channel offsets: a conv and an average pooling that
    # each read both branches
    rng = np.random.default_rng(2)
    b = NetBuilder((10, 10, 2), rng)
    a = b.conv(4, 3, padding="same")
    c = b.depthwise(3, source="inp")
    both = {a: (0, 4), c: (4, 2)}
    for kind, name in (("conv2d", "mix"), ("avg_pool2d", "pooled")):
        shape = (10, 10, 5) if kind == "conv2d" else (5, 5, 6)
        b.ir.add_layer(LayerSpec(name, kind, shape))
        kernel = rng.normal(size=(3, 3, 6, 5))
        for src, (offset, channels) in both.items():
            spec = (ConnectionSpec("conv2d", (10, 10, channels), kernel=kernel, padding="same",
                                   channel_offset=offset, in_channels=6) if kind == "conv2d" else
                    ConnectionSpec("avg_pool2d", (10, 10, channels), pool_size=(2, 2), strides=(2, 2),
                                   channel_offset=offset))
            b.ir.connect(src, name, spec)
    part = partition_network(b.ir, TINY, placement_time_limit=0.2)
    _assert_estimates_equal_recount(b.ir, part)
    assert len(part.cores_of("mix")) > 1


@pytest.mark.parametrize("how, kind", [("concat", "depthwise_conv2d"), ("concat", "conv2d"),
                                       ("add", "depthwise_conv2d")])
def test_estimates_equal_recount_where_branches_meet(how, kind):
    # a 4-channel stem and a 1x1 conv of it meet (Concatenate or Add) in a 3x3
    # layer that the search must split over cores
    rng = np.random.default_rng(3)
    b = NetBuilder((6, 6, 4), rng)
    side = b.conv(4 if how == "add" else 2, 1)
    b.merge(kind, ["inp", side], how, k=3, filters=4)
    b.dense(5)
    part = partition_network(b.ir, TINY, placement_time_limit=0.2)
    _assert_estimates_equal_recount(b.ir, part)
    assert len(part.cores_of(b.ir.order()[2])) > 1


def test_estimates_equal_recount_on_residual_sums_and_upsampling():
    # neurons at relu(conv(h) + g * x): the identity shortcut counted analytically,
    # the sum split over cores; then a nearest upsampling
    b = NetBuilder((8, 8, 6), np.random.default_rng(4))
    b.conv(6, 3, padding="same")
    b.residual(3)
    b.residual(1)
    b.upsample((2, 2))
    b.conv(2, 3, stride=2)
    b.dense(5)
    part = partition_network(b.ir, TINY, placement_time_limit=0.2)
    _assert_estimates_equal_recount(b.ir, part)
    assert len(part.cores_of(b.ir.order()[3])) > 1


def test_compile_fails_when_the_estimate_differs_from_the_recount(monkeypatch):
    ir = dense_chain([40, 30, 5], np.random.default_rng(0))
    import partitioner.pipeline as pipeline

    def recount_one_word_more(ir, part, network=None):
        counts = recount(ir, part, network=network)
        counts[1].synapse_words += 1
        return counts
    monkeypatch.setattr(pipeline, "recount", recount_one_word_more)
    with pytest.raises(EstimateMismatchError, match=r"core 1 \(layer dense0, chip 0\): the search "
                                                   r"estimated (\d+) synapse words, the validator "
                                                   r"recounted (\d+)"):
        partition_network(ir, TINY)
    part = partition_network(ir, TINY, validate=False)      # without validation: the estimate
    monkeypatch.undo()
    assert partition_network(ir, TINY).cores[1].synapse_words == part.cores[1].synapse_words


@st.composite
def networks(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31)))
    spatial = draw(st.booleans())
    if spatial:
        shape = (draw(st.integers(3, 10)), draw(st.integers(3, 10)), draw(st.integers(1, 4)))
    else:
        shape = (draw(st.integers(2, 80)),)
    b = NetBuilder(shape, rng, reset=draw(st.sampled_from(["hard", "soft"])),
                   input_mode=draw(st.sampled_from(["bias", "spikes"])),
                   num_weight_bits=draw(st.integers(1, 8)))
    branched = False
    for _ in range(draw(st.integers(1, 4))):
        ops = ["dense"]
        h = b.shape()
        if len(h) == 3:
            ops += ["conv", "depthwise", "branch", "merge", "residual", "upsample"] + (
                ["pool"] if min(h[:2]) >= 2 else [])
        op = draw(st.sampled_from(ops))
        if op == "dense":
            b.dense(draw(st.integers(1, 40)))
        elif op == "pool":
            b.pool(2, padding=draw(st.sampled_from(["valid", "same"])))
        elif op == "depthwise":
            b.depthwise(draw(st.integers(1, 3)), draw(st.integers(1, 2)),
                        draw(st.sampled_from(["valid", "same"])) if min(h[:2]) >= 3 else "same",
                        multiplier=draw(st.integers(1, 2)))
        elif op == "upsample":
            b.upsample((draw(st.integers(1, 3)), draw(st.integers(1, 2))))
        elif op == "residual":
            b.residual(draw(st.integers(1, min(3, *h[:2]))))
        elif op == "merge":
            # Concatenate or Add of the current layer and a 1x1 conv of it, into a conv2d
            # or depthwise_conv2d layer (channel offsets, two sources per target)
            stem, how = b.current, draw(st.sampled_from(MERGES))
            side = b.conv(h[2] if how == "add" else draw(st.integers(1, 4)), 1)
            b.merge(draw(st.sampled_from(["conv2d", "depthwise_conv2d"])), [stem, side], how,
                    k=draw(st.integers(1, min(3, *h[:2]))), filters=draw(st.integers(1, 6)),
                    multiplier=draw(st.integers(1, 2)), padding=draw(st.sampled_from(["valid", "same"])))
        elif op == "conv" or branched:
            k = draw(st.integers(1, min(3, *h[:2])))
            stride, padding = draw(st.integers(1, 2)), draw(st.sampled_from(["valid", "same"]))
            # dilation with stride 2 too (Keras allows stride 1 only; the IR both): an
            # input reaches outputs dilation / gcd(dilation, stride) apart
            dilation = draw(st.integers(1, 3)) if k > 1 else 1
            if padding == "valid" and (k - 1) * dilation + 1 > min(h[:2]):
                dilation = 1
            b.conv(draw(st.integers(1, 8)), k, stride, padding, dilation=dilation)
        else:
            # a layer with two successors that meet again (a residual Add); the strided
            # right branch leaves some stem neurons feeding the left branch only
            branched, stem = True, b.current
            f = draw(st.integers(1, 6))
            left = b.conv(f, min(3, *h[:2]), padding="same")
            if draw(st.booleans()):
                right = b.dense(draw(st.integers(1, 30)), source=stem)
            else:
                right = b.conv(f, 1, 2, "valid", source=stem)
            join = b.conv(draw(st.integers(1, 6)), 1, source=left)
            n_right, n_join = b.ir.layer(right).n, b.ir.layer(join).n
            b.ir.connect(right, join, ConnectionSpec("dense", (n_right,),
                                                     kernel=rng.normal(size=(n_right, n_join))))
    return b.ir


@settings(max_examples=examples(40), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(networks(), st.integers(1, 3))
def test_estimates_equal_recount_on_random_networks(ir, beam_width):
    try:
        part = partition_network(ir, TINY, beam_width=beam_width, placement_time_limit=0.2)
    except PartitionError as err:
        assert "limit" in str(err) or "board" in str(err)
        return
    _assert_estimates_equal_recount(ir, part)
    for name in ir.order():
        held = np.concatenate([c.neurons for c in part.cores_of(name)])
        assert np.array_equal(np.sort(held), np.arange(ir.layer(name).n))
    assert part.num_cores >= part.lower_bound_cores


@settings(max_examples=examples(30), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(networks(), st.sampled_from([None, *model.ENCODINGS]))
def test_validator_window_path_equals_its_matrix_path_on_random_networks(ir, encoding):
    """The validator's count of window connections without their matrix (box
    cores: one list per row class, column class and channel) equals its count
    from the synapse matrices, core by core, every resource."""
    for name in ir.order():
        if ir.layer(name).kind != "input":
            ir.layer(name).neuron = dataclasses.replace(ir.layer(name).neuron,
                                                        synapse_encoding=encoding)
    try:
        part = partition_network(ir, TINY, placement_time_limit=0.2, validate=False)
    except PartitionError:
        return
    assert recount(ir, part) == recount(ir, part, analytic=False)


@settings(max_examples=examples(20), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_validator_counts_in_chunks_of_cores_as_all_at_once(ir):
    """A window connection's lists counted one target core at a time (chunks of
    at least MAX_CHUNK_LISTS = 1 list) give the same counts, core by core, as
    all of them at once."""
    try:
        part = partition_network(ir, TINY, placement_time_limit=0.2, validate=False)
    except PartitionError:
        return
    at_once = recount(ir, part)
    with mock.patch.object(validate, "MAX_CHUNK_LISTS", 1):
        assert recount(ir, part) == at_once


def test_validator_window_path_by_hand_and_on_cores_that_are_not_boxes():
    """A 3x3 'same' conv of a 4x4x2 source into 4x4x3 on two box cores (rows
    0-1 and 2-3): per core 12 source pixels x 2 channels reach it, 24 input
    axons, and every list differs (distinct weights): words as the matrix path
    counts them.  Cores that are not boxes (interleaved neurons) take the matrix path."""
    rng = np.random.default_rng(3)
    ir = NetworkIR()
    ir.add_layer(LayerSpec("in", "input", (4, 4, 2)))
    ir.add_layer(LayerSpec("c", "conv2d", (4, 4, 3)))
    ir.connect("in", "c", ConnectionSpec("conv2d", (4, 4, 2), kernel=rng.normal(size=(3, 3, 2, 3)),
                                         padding="same"))
    halves = _manual(ir, {"in": [np.arange(32)], "c": [np.arange(24), np.arange(24, 48)]})
    counts = recount(ir, halves)
    assert [c.input_axons for c in counts[1:]] == [24, 24]
    assert counts == recount(ir, halves, analytic=False)
    odd = _manual(ir, {"in": [np.arange(32)], "c": [np.arange(0, 48, 2), np.arange(1, 48, 2)]})
    assert recount(ir, odd) == recount(ir, odd, analytic=False)
    assert [c.input_axons for c in recount(ir, odd)[1:]] == [32, 32]


@settings(max_examples=examples(30), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(networks(), st.sampled_from([None, *model.ENCODINGS]), st.sampled_from([None, True, False]))
def test_estimates_equal_recount_with_a_forced_encoding_and_a_sign_mode(ir, encoding, shared):
    """NxTF's synapseEncoding and useSharedSign on every layer: the search's estimate
    equals the recount (shared signs split every list of mixed-sign layers in two)."""
    for name in ir.order():
        layer = ir.layer(name)
        if layer.kind != "input":
            layer.neuron = dataclasses.replace(layer.neuron, synapse_encoding=encoding,
                                               shared_sign=shared)
    try:
        part = partition_network(ir, TINY, placement_time_limit=0.2)
    except PartitionError as err:
        assert "limit" in str(err) or "board" in str(err)
        return
    _assert_estimates_equal_recount(ir, part)
    if encoding is not None:
        assert {c.encoding for c in part.cores if ir.layer(c.layer).kind != "input"} == {encoding}


def test_the_validator_counts_the_integer_synapses_of_a_dense_layer():
    """Weights that quantize to 0 are no synapse: a tiny weight next to large
    ones (1e-4 against peaks near 2: 0 at the mixed sign's step of 2) stores
    nothing, and its delay (40 steps, the largest) no delay field.  The search's
    estimate (compile_ir validates it) and the validator count the integer
    network's 28 synapses, as the network and its Lava build store them; the
    IR's float weights would give 30, and a 6-bit delay field instead of 3."""
    from mapper.lava_network import build_lava_network
    from nxcompile.compiler import compile_ir
    from partitioner.graph import PartitionGraph
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (6,)))
    ir.add_layer(LayerSpec("out", "dense", (5,)))
    kernel = np.random.default_rng(0).uniform(0.5, 2.0, (6, 5)) * np.where(np.arange(5) % 2, 1, -1)
    kernel[0, 0], kernel[1, 2] = 1e-4, -1e-4
    delays = np.random.default_rng(1).integers(0, 8, (6, 5))
    delays[0, 0] = 40
    ir.connect("inp", "out", ConnectionSpec("dense", (6,), kernel=kernel, delays=delays))
    compiled = compile_ir(ir)
    (conn,) = compiled.network.connections
    counts = recount(ir, compiled.partition, network=compiled.network)
    assert sum(c.synapses for c in counts) == conn.num_synapses == conn.matrix().nnz == 28
    assert [c.synapse_words for c in counts] == [c.synapse_words for c in compiled.partition.cores]
    lnet = build_lava_network(compiled.network, compiled.partition, np.full(6, 0.5), 1)
    assert sum(syn.weights.init.nnz for syns in lnet.synapses.values() for syn in syns) == 28
    assert sum(c.synapses for c in recount(ir, compiled.partition)) == 30
    board = get_board("loihi1")
    assert PartitionGraph(ir, board, compiled.network).w_bits["out"] == 8 + 3
    assert PartitionGraph(ir, board).w_bits["out"] == 8 + 6


def test_an_integer_network_of_another_ir_is_refused():
    from hwmodel.errors import NetworkError
    from mapper.quantize import quantize_network
    ir, other = dense_chain([4, 3], np.random.default_rng(0)), dense_chain([4, 3, 2],
                                                                          np.random.default_rng(0))
    with pytest.raises(NetworkError, match=r"the integer network's connections \[\('dense0', "
                                           r"'dense1'\), \('inp', 'dense0'\)\] are not the IR's "
                                           r"\[\('inp', 'dense0'\)\]"):
        partition_network(ir, TINY, network=quantize_network(other)[0])


@pytest.mark.parametrize("shared", [False, True])
def test_estimates_equal_recount_on_cores_of_several_base_pages(shared):
    """Cores of more than 256 neurons (several pages of compartment bases) with
    shared lists (a depthwise conv's equal classes, a pooling's equal weights):
    the search's estimate equals the recount (partition_network fails
    otherwise), window lists counted by class equal those of the matrix, with
    a shared sign too (then the search counts the matrix)."""
    b = NetBuilder((24, 24, 2), np.random.default_rng(0))
    b.depthwise(3)
    b.pool(2)
    b.conv(4, 3, padding="same")
    for name in b.ir.order():
        layer = b.ir.layer(name)
        layer.neuron = dataclasses.replace(layer.neuron, shared_sign=shared)
    part = partition_network(b.ir, "loihi1", placement_time_limit=0.2)
    assert max(len(c.neurons) for c in part.cores if c.layer != "inp") > 256
    assert recount(b.ir, part) == recount(b.ir, part, analytic=False)


def test_window_block_usage_cache_keeps_each_channel_blocks_base_pages():
    """A depthwise conv with multiplier 2 on 5 channels in channel blocks of 5:
    its taps all differ, and the two channel blocks have equal run-length counts
    but their sources' lists start at other local channels, so on a core of
    several base pages (13 x 13 x 5 > 256) they differ in words; the usage of the
    whole tiling (one lookup per group of equal blocks) equals each core's own."""
    from partitioner.edges import make_edge
    from partitioner.tiling import Tiling
    b = NetBuilder((13, 13, 5), np.random.default_rng(0))
    b.depthwise(3, multiplier=2)
    shape = tuple(b.ir.layer(b.current).shape)
    tiling = Tiling(shape, (shape[0], shape[1], 5))
    lim, enc = get_board("loihi1").chip.core, model.AUTO_ENCODINGS
    solo = np.ones(b.ir.layer("inp").n, bool)
    edge = make_edge(b.ir, "inp", b.current)
    usage, marks = edge.usage(tiling, solo, 9, 1, lim, enc), edge._shared_sources(solo)
    words = []
    for core in range(tiling.num_cores):
        jy, jx, jc = tiling.block_index(core)
        h, w, c = tiling.block_shape(core)
        rows = edge.axes[0].classes(tiling.block[0], jy, marks[0])
        cols = edge.axes[1].classes(tiling.block[1], jx, marks[1])
        own = make_edge(b.ir, "inp", b.current)._block_usage(
            rows, cols, tiling.block[2], jc, marks[2], w, c, h * w * c // 256 + 1,
            model.index_bits(h * w * c), 9, lim, enc)
        np.testing.assert_array_equal(usage.words[:, :, core], own[1])
        words.append(own[1])
    assert not np.array_equal(words[0], words[1])
