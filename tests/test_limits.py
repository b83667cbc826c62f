"""Every hard limit, at the limit and one unit past it: the validator passes a
partition that uses exactly the limit and refuses, naming the core, the resource,
the value and the limit, one that uses one unit more; the search keeps every
limit it is given."""
import dataclasses

import numpy as np
import pytest

from hwmodel import synapse_format as sf
from hwmodel.errors import NetworkError
from hwmodel.limits import RESOURCES, Board, ChipSpec, CoreLimits, get_board
from hwmodel.partition import Core, Partition
from nxcompile.ir import ConnectionSpec, LayerSpec, NetworkIR
from partitioner import model, partition_network
from partitioner.errors import PartitionError
from partitioner.validate import PartitionValidationError, _encode, recount, validate_partition
from tests.helpers import NetBuilder

BASE = CoreLimits()


def _board(num_chips=2, cores_per_chip=128, **limits) -> Board:
    chip = ChipSpec("test", dataclasses.replace(BASE, **limits), cores_per_chip=cores_per_chip)
    return Board("test", chip, num_chips=num_chips)


def _network():
    """inp (6x6x3) -> 3x3 conv (8) -> dense 20: every resource is used on some core."""
    b = NetBuilder((6, 6, 3), np.random.default_rng(0))
    b.conv(8, 3, padding="same")
    b.dense(20)
    return b.ir


def _partition(ir, board) -> Partition:
    """Two cores per layer (halves of the flat neurons), the conv's on chip 1."""
    cores = []
    for name in ir.order():
        n = ir.layer(name).n
        for neurons in np.array_split(np.arange(n), 2):
            cores.append(Core(index=len(cores), chip=1 if name == "conv2d1" else 0, layer=name,
                              neurons=neurons.astype(np.int64)))
    return Partition(board=board, cores=cores)


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.key)
def test_validator_at_the_limit_and_one_past_it(resource):
    ir = _network()
    counts = recount(ir, _partition(ir, _board()))
    worst = max(range(len(counts)), key=lambda i: getattr(counts[i], resource.key))
    used = getattr(counts[worst], resource.key)
    assert used > 1
    validate_partition(ir, _partition(ir, _board(**{resource.key: used})))
    part = _partition(ir, _board(**{resource.key: used - 1}))
    core = part.cores[worst]
    with pytest.raises(PartitionValidationError,
                       match=rf"core {worst} \(layer {core.layer}, chip {core.chip}\): {used} "
                             rf"{resource.name}, limit {used - 1}$"):
        validate_partition(ir, part)


def test_synapse_formats_at_the_limit_and_one_past_it():
    # run-length lists with skips of 1 (2-bit skip field) and 20 (5 bits): two formats
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (2,)))
    ir.add_layer(LayerSpec("out", "dense", (64,)))
    kernel = np.zeros((2, 64))
    kernel[0, [0, 1]] = kernel[1, [0, 20]] = 1.0
    ir.connect("inp", "out", ConnectionSpec("dense", (2,), kernel=kernel))

    def part(formats):
        return Partition(board=_board(synapse_formats=formats), cores=[
            Core(0, 0, "inp", np.arange(2)), Core(1, 0, "out", np.arange(64), encoding="runlength")])
    assert recount(ir, part(7))[1].synapse_formats == 2
    validate_partition(ir, part(2))
    with pytest.raises(PartitionValidationError, match=r"core 1 \(layer out, chip 0\): 2 synapse "
                                                       r"formats, limit 1"):
        validate_partition(ir, part(1))
    with pytest.raises(NetworkError, match=r"board test: 3 synapse formats per core; the search "
                                           r"needs 4, one per run-length skip width"):
        partition_network(ir, _board(synapse_formats=3))


def test_cores_per_chip_and_chips_at_the_limit_and_one_past_it():
    ir = _network()
    part = _partition(ir, _board(num_chips=2, cores_per_chip=4))     # 4 cores on chip 0, 2 on 1
    validate_partition(ir, part)
    part.board = _board(num_chips=2, cores_per_chip=3)
    with pytest.raises(PartitionValidationError, match=r"chip 0 holds 4 cores, limit 3"):
        validate_partition(ir, part)
    part.board = _board(num_chips=1, cores_per_chip=8)
    with pytest.raises(PartitionValidationError, match=r"core 2 \(layer conv2d1\): chip 1 outside "
                                                       r"0..0, board test has 1 chips"):
        validate_partition(ir, part)


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.key)
def test_the_search_keeps_a_limit_one_below_what_it_used(resource):
    """Compiled once with room to spare, then with the limit one below the
    largest use: every core keeps the new limit (the validator recounts it), or
    the search says which layer cannot and why."""
    ir = _network()
    free = partition_network(ir, _board(), placement_time_limit=0.2)
    used = max(getattr(c, resource.key) for c in free.cores)
    try:
        tight = partition_network(ir, _board(**{resource.key: used - 1}), placement_time_limit=0.2)
    except PartitionError as err:
        assert f"{resource.name} needed on one core, limit {used - 1}" in str(err)
        return
    assert max(getattr(c, resource.key) for c in tight.cores) <= used - 1


@pytest.mark.parametrize("n, fits", [(1024, True), (1025, False)])
def test_loihi1_core_holds_1024_compartments(n, fits):
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (2,)))
    ir.add_layer(LayerSpec("out", "dense", (n,)))
    kernel = np.zeros((2, n))
    kernel[0, 0] = kernel[1, n - 1] = 1.0
    ir.connect("inp", "out", ConnectionSpec("dense", (2,), kernel=kernel))
    part = Partition(board=get_board("loihi1"), cores=[Core(0, 0, "inp", np.arange(2)),
                                                       Core(1, 0, "out", np.arange(n))])
    if fits:
        assert recount(ir, part)[1].compartments == validate_partition(ir, part)[1].compartments
    else:
        with pytest.raises(PartitionValidationError, match=r"1025 compartments, limit 1024"):
            validate_partition(ir, part)


@pytest.mark.parametrize("n, fits", [(4096, True), (4097, False)])
def test_loihi1_core_holds_4096_input_axons(n, fits):
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (n,), input_mode="spikes"))     # no compartments
    ir.add_layer(LayerSpec("out", "dense", (1,)))
    ir.connect("inp", "out", ConnectionSpec("dense", (n,), kernel=np.arange(1, n + 1)[:, None] / n))
    part = Partition(board=get_board("loihi1"), cores=[
        Core(0, 0, "inp", np.arange(n // 2)), Core(1, 0, "inp", np.arange(n // 2, n)),
        Core(2, 0, "out", np.arange(1))])
    if fits:
        assert validate_partition(ir, part)[2].input_axons == 4096
    else:
        with pytest.raises(PartitionValidationError, match=r"core 2 .*: 4097 input axons, limit 4096"):
            validate_partition(ir, part)


@pytest.mark.parametrize("n, gap, encoding, words", [
    (5, 31, "runlength", 2), (5, 32, "runlength", 3), (5, 31, "sparse", 2), (5, 1, "dense", 1),
    (61, 1, "dense", 9), (5, 2, "dense2", 2), (5, 31, "dense2", 10)])
def test_validator_encodes_a_list_by_hand(n, gap, encoding, words):
    # one source, n synapses `gap` apart on a 129-compartment core (8 index bits):
    # run-length gaps of 31: 10 + 8 + 5 x (8 + 5) = 83 bits -> 2 words; gaps of 32: five
    # entries of 10 + 8 + 8 + 2 = 140 bits -> 3 words; sparse: 10 + 5 x (8 + 8) = 90 bits ->
    # 2 words; dense, consecutive: 10 + 8 + 5 x 8 = 58 bits -> 1 word (59 would take 2);
    # 61 consecutive: two entries of at most 60, 2 x 18 + 488 = 524 bits -> 9 words (one
    # entry would be 506 bits: 8); dense2 gaps of 2: one entry over compartments 0..8,
    # 10 + 8 + 9 x 8 = 90 bits -> 2 words; gaps of 31: entries from 0 (0, 31), 62 (62, 93)
    # and 124, 2 x (18 + 32 x 8) + 18 + 8 = 574 bits -> 10 words
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (1,)))
    ir.add_layer(LayerSpec("out", "dense", (129,)))
    kernel = np.zeros((1, 129))
    kernel[0, np.arange(n) * gap] = np.arange(1.0, n + 1)
    ir.connect("inp", "out", ConnectionSpec("dense", (1,), kernel=kernel))
    part = Partition(board=_board(), cores=[Core(0, 0, "inp", np.arange(1)),
                                            Core(1, 0, "out", np.arange(129), encoding=encoding)])
    count = recount(ir, part)[1]
    assert (count.synapse_words, count.words_per_axon) == (words, words)


def test_formats_of_a_list_with_several_entries():
    # one run-length list [0, 1 | 41, 61, 81]: a gap of 40 starts a second entry; the
    # entries' skip widths are 2 and 5 bits: two formats on one core
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (1,)))
    ir.add_layer(LayerSpec("out", "dense", (90,)))
    kernel = np.zeros((1, 90))
    kernel[0, [0, 1, 41, 61, 81]] = 1.0
    ir.connect("inp", "out", ConnectionSpec("dense", (1,), kernel=kernel))
    part = Partition(board=_board(synapse_formats=1), cores=[
        Core(0, 0, "inp", np.arange(1)), Core(1, 0, "out", np.arange(90), encoding="runlength")])
    assert recount(ir, part)[1].synapse_formats == 2
    with pytest.raises(PartitionValidationError, match=r"2 synapse formats, limit 1"):
        validate_partition(ir, part)


@pytest.mark.parametrize("encoding", ["sparse", "dense", "runlength", "dense2"])
@pytest.mark.parametrize("word_bits", [64, 32])
def test_the_validators_encoding_equals_the_search_model(encoding, word_bits):
    """The two independent codes give the same words for random lists: lengths
    around the 60-synapse entry, gaps around 32, every remainder of a word."""
    rng = np.random.default_rng(word_bits)
    limits = dataclasses.replace(BASE, word_bits=word_bits)
    for _ in range(200):
        lengths = rng.integers(1, 130, rng.integers(1, 6))
        lists = [np.cumsum(rng.choice([1, 2, 31, 32, 33, 50], n)) for n in lengths]
        local = np.concatenate(lists)
        starts = np.r_[0, np.cumsum(lengths)[:-1]]
        i_bits = rng.integers(6, 11, len(lengths))
        w_bits = int(rng.integers(1, 9))
        expected = model.list_words(local, starts, encoding, w_bits, i_bits, limits)
        words, *_ = _encode(local, starts, lengths, np.full(len(lengths), encoding), w_bits,
                            i_bits, limits.synapses_per_entry, word_bits)
        np.testing.assert_array_equal(words, expected)


@pytest.mark.parametrize("encoding", ["sparse", "dense", "runlength", "dense2"])
def test_both_encoders_agree_on_lists_in_two_sign_parts(encoding):
    """A shared sign's lists: positive synapses, then negative ones, each part
    ascending and encoded on its own; the two codes agree, and a list in two parts
    takes at least the words of either part alone."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        lists, part_at, at = [], [], 0
        for _ in range(rng.integers(1, 5)):
            a, b = (np.cumsum(rng.choice([1, 2, 31, 32, 50], n)) for n in rng.integers(1, 90, 2))
            lists.append(np.r_[a, b])
            part_at.append(at + len(a))
            at += len(a) + len(b)
        local = np.concatenate(lists)
        lengths = np.array([len(x) for x in lists])
        starts = np.r_[0, np.cumsum(lengths)[:-1]]
        sign_part = np.zeros(len(local), bool)
        sign_part[part_at] = True
        w_bits, i_bits = int(rng.integers(1, 9)), rng.integers(6, 11, len(lists))
        expected = model.list_words(local, starts, encoding, w_bits, i_bits, BASE, part_at)
        words, *_ = _encode(local, starts, lengths, np.full(len(lists), encoding), w_bits, i_bits,
                            BASE.synapses_per_entry, BASE.word_bits, sign_part)
        np.testing.assert_array_equal(words, expected)
        first = model.list_words(local[:part_at[0]], [0], encoding, w_bits, i_bits[:1], BASE)
        assert expected[0] >= first[0]


@pytest.mark.parametrize("n", [256, 257])
def test_shared_lists_one_copy_per_page_of_compartment_bases(n):
    """Compartment bases end at MAX_COMPARTMENT_BASE (255): lists identical up to
    their base share a stored copy only within a page of 256 bases.  n sources
    each reach one of n targets with the same weight (one synapse: 10 + 8 + 9
    index bits, + 6 -> 1 word): on one core of 256 targets every base is in
    page 0 (1 word); with 257 the list based at 256 takes a second copy (2
    words).  The search (axons free, so discrete axons win), the validator's
    window count and its matrix count agree."""
    assert sf.MAX_COMPARTMENT_BASE + 1 == sf.BASE_PAGE == 256
    b = NetBuilder((2, 2 * n, 1), np.random.default_rng(0))
    b.pool(2)                                    # (1, n, 1), every weight 1/4
    part = partition_network(b.ir, _board(), cost_weights=(1, 1, 0, 1))
    (core,) = part.cores_of(b.current)
    pages = 1 if n == 256 else 2
    assert (core.synapse_words, core.input_axons, core.population) == (pages, 2 * 2 * n, ())
    assert recount(b.ir, part) == recount(b.ir, part, analytic=False)
    # the same lists from a dense matrix (diagonal, equal weights), discrete axons
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (n,)))
    ir.add_layer(LayerSpec("out", "dense", (n,)))
    ir.connect("inp", "out", ConnectionSpec("dense", (n,), kernel=np.eye(n)))
    manual = Partition(board=_board(), cores=[Core(0, 0, "inp", np.arange(n)),
                                              Core(1, 0, "out", np.arange(n))])
    assert recount(ir, manual)[1].synapse_words == pages
    searched = partition_network(ir, _board(), cost_weights=(1, 1, 0, 1))
    assert [c.synapse_words for c in searched.cores_of("out")] == [pages]
