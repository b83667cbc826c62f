"""Partitioner search: hand-checked splits and counts, lower bounds, errors, chip
placement, the report and the compiled model's partition properties."""
import matplotlib
import numpy as np
import pytest

from hwmodel.limits import Board, ChipSpec, CoreLimits, get_board
from nxcompile.compiler import compile_ir
from nxcompile.ir import ConnectionSpec, LayerSpec, NetworkIR
from partitioner import partition_network
from partitioner.errors import CoreLimitError, PartitionError
from partitioner.feasible import check_layers
from partitioner.graph import PartitionGraph
from partitioner.validate import validate_partition
from tests.helpers import NetBuilder, dense_chain


def _check(ir, part):
    """Every neuron once, every limit kept (independent recount), estimates exact."""
    counts = validate_partition(ir, part)
    for core, count in zip(part.cores, counts):
        assert (core.compartments, core.input_axons, core.output_axons, core.synapse_words) == \
            (count.compartments, count.input_axons, count.output_axons, count.synapse_words)


def test_small_dense_counts_by_hand():
    ir = dense_chain([10, 20], np.random.default_rng(0))
    part = partition_network(ir, "loihi1")
    inp, d = part.cores
    # 10 lists of 20 synapses on one core (20 compartments: 6 index bits); dense
    # format: one run = one entry, 10 + 6 + 20 x 8 = 176 bits, + 6 -> 3 words
    # (sparse 5, run-length 4).  All 10 sources target only this core and 10 x 3
    # words of a population is no more than the 10 distinct lists: one population
    # axon, 2 output entries on the input core.
    assert (inp.compartments, inp.output_axons) == (10, 2)
    assert (d.compartments, d.input_axons, d.synapse_words, d.encoding) == (20, 1, 30, "dense")
    _check(ir, part)


def test_soft_reset_takes_two_compartments_and_splits_layers():
    ir = dense_chain([100, 600], np.random.default_rng(0), reset="soft")
    part = partition_network(ir, "loihi1")
    assert [c.compartments for c in part.cores_of("dense0")] == [600, 600]
    assert [c.compartments for c in part.cores_of("inp")] == [200]
    _check(ir, part)


def test_spike_input_needs_no_compartments():
    ir = dense_chain([100, 20], np.random.default_rng(0), input_mode="spikes")
    part = partition_network(ir, "loihi1")
    assert [c.compartments for c in part.cores_of("inp")] == [0]


def test_synapse_memory_sets_the_split_of_a_dense_layer():
    ir = dense_chain([1000, 1000], np.random.default_rng(0))
    part = partition_network(ir, "loihi1")
    # 8 cores of 125 would need 17 words per list (3 entries: 3 x 17 + 1000 + 6 =
    # 1057 bits) x 1000 = 17000 > 16384; 9 cores of 112: 2 x 17 + 896 + 6 = 936
    # bits -> 15 words x 1000 sources = 15000.
    cores = part.cores_of("dense0")
    assert len(cores) == 9
    assert [c.synapse_words for c in cores] == [15000] * 8 + [14000]
    # every input neuron reaches all 9 cores: 9 discrete entries each; 2 input cores
    # of 500 would need 4500 > 4096, so 3 cores
    assert len(part.cores_of("inp")) == 3
    assert part.layers["dense0"].lower_bound == 8 and part.layers["inp"].lower_bound == 2
    _check(ir, part)


def test_convolutions_share_synapse_lists():
    b = NetBuilder((8, 8, 4), np.random.default_rng(0))
    b.pool(2)
    # 256 sources, one synapse each, all weights 1/4: one distinct relative list
    # (sparse: 10 + 8 + 6 = 24 bits, + 6 -> 1 word).  Discrete axons share it:
    # 1 word, 256 axons (cost 1/16384 + 256/4096); a population pads a list per
    # member: 256 words, 1 axon (cost 256/16384 + 1/4096); pixel populations (4
    # channels: wide pixels, estimate._wide_pixels): 4 words, 64 axons, the same
    # cost with fewer words (counted by hand below)
    part = partition_network(b.ir, "loihi1")
    (core,) = part.cores_of(b.current)
    assert (core.synapse_words, core.input_axons, core.pixel_population) == (4, 64, ("inp",))
    _check(b.ir, part)
    no_pixels = partition_network(b.ir, "loihi1", cost_weights=(1, 1, 1.001, 1))
    (core,) = no_pixels.cores_of(b.current)
    assert (core.synapse_words, core.input_axons, core.population) == (256, 1, ("inp",))
    _check(b.ir, no_pixels)
    free_axons = partition_network(b.ir, "loihi1", cost_weights=(1, 1, 0, 1))
    (core,) = free_axons.cores_of(b.current)
    assert (core.synapse_words, core.input_axons, core.population) == (1, 256, ())
    _check(b.ir, free_axons)


def test_pixel_population_axons_counted_by_hand():
    # The pooling above on cores of 64 input axons and 100 words: discrete axons
    # (256) and the members' population (256 words) do not fit one core, pixel
    # population axons do (the only choice): one axon per source pixel (64); a pixel's block holds
    # its 4 channels' lists (1 synapse, 1 word each) at bases 0, 1, 2, 3 from its
    # first, identical for all 64 pixels, so stored once: 4 x 1 words.  The input
    # core sends one route per pixel, 2 entries each: 128.
    small = Board("small", ChipSpec("small", CoreLimits(input_axons=64, synapse_words=100), 128), 1)
    b = NetBuilder((8, 8, 4), np.random.default_rng(0))
    b.pool(2)
    part = partition_network(b.ir, small)
    (core,) = part.cores_of(b.current)
    assert (core.synapse_words, core.input_axons, core.population, core.pixel_population) == \
        (4, 64, (), ("inp",))
    assert [c.output_axons for c in part.cores_of("inp")] == [128]
    _check(b.ir, part)                  # the validator's own count equals the estimate


def test_pixel_population_axons_on_a_split_convolution():
    # 3x3 conv from 16 to 16 channels on 6x6, cores of 1024 words and 64 input axons:
    # 144 discrete sources per output pixel do not fit, pixels (at most 36) do; the
    # source split by channel sends a route per (source core, pixel, target core);
    # the validator's recount equals the search's estimate on every core
    small = Board("small", ChipSpec("small", CoreLimits(input_axons=64, synapse_words=1024,
                                                        compartments=64), 128), 4)
    b = NetBuilder((6, 6, 16), np.random.default_rng(1))
    b.conv(16, 3, padding="same")
    part = partition_network(b.ir, small)
    assert all(c.pixel_population == ("inp",) for c in part.cores_of(b.current))
    _check(b.ir, part)


def test_cnn_cores_against_its_lower_bound():
    b = NetBuilder((28, 28, 1), np.random.default_rng(0))
    b.conv(16, 5, 2)
    b.conv(32, 3)
    b.conv(64, 3, 2)
    b.conv(10, 4)
    part = partition_network(b.ir, "loihi1")
    # compartment bounds: 784 -> 1, 2304 -> 3, 3200 -> 4, 1024 -> 1, 10 -> 1
    assert [part.layers[n].lower_bound for n in b.ir.order()] == [1, 3, 4, 1, 1]
    # all but conv2d3 at their bound: its 1024 neurons on one core span 4 pages of
    # compartment bases, so each shared list is stored once per page (hwmodel.
    # synapse_format.BASE_PAGE): 17088 words > 16384 (7136 if bases were not
    # limited), 2 cores
    assert [len(part.cores_of(n)) for n in b.ir.order()] == [1, 3, 4, 2, 1]
    assert part.lower_bound_cores == 10
    _check(b.ir, part)


def test_loihi2_preset_holds_eight_times_the_compartments():
    def pooled():
        b = NetBuilder((64, 64, 2), np.random.default_rng(0))
        b.pool(2)
        return b.ir
    # 8192 input + 2048 pooling neurons: 8 + 2 cores of 1024 compartments, 1 + 1 of 8192.
    # Each pooling core takes 4096 (Loihi 1) or 8192 sources whose only target is
    # that core: one population axon (1 word each) is cheaper than discrete axons.
    loihi1, loihi2 = partition_network(pooled(), "loihi1"), partition_network(pooled(), "loihi2")
    assert (loihi1.num_cores, loihi2.num_cores) == (10, 2)
    assert [(c.input_axons, c.synapse_words, c.population) for c in loihi2.cores_of("avg_pool2d1")] \
        == [(1, 8192, ("inp",))]
    assert [c.output_axons for c in loihi1.cores_of("inp")] == [2] * 8


def test_cifar_pseudo_mobilenet_matches_nxtf_at_the_compartment_bound():
    # NxTF tutorial b: 76,810 neurons + 3,072 inputs, two compartments each
    b = NetBuilder((32, 32, 3), np.random.default_rng(0), reset="soft")
    b.conv(32, 3, 2, "same")
    for stride, filters in [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256)]:
        b.depthwise(3, stride)
        b.conv(filters, 1)
    b.pool(2)
    b.dense(10)
    part = partition_network(b.ir, "nahuku32", placement_time_limit=0.5)
    assert sum(ir_layer.n for ir_layer in b.ir.layers()) == 76810 + 3072
    assert (part.num_cores, part.lower_bound_cores, part.num_chips) == (157, 157, 2)
    assert part.offchip_routes < part.sequential_offchip_routes
    _check(b.ir, part)


def test_beam_width_and_cost_weights_are_options():
    ir = dense_chain([300, 200, 10], np.random.default_rng(0))
    narrow = partition_network(ir, "loihi1", beam_width=1)
    wide = partition_network(ir, "loihi1", beam_width=6, cost_weights=(1, 0.5, 0.5, 0))
    assert narrow.num_cores >= wide.lower_bound_cores and wide.num_cores >= wide.lower_bound_cores
    with pytest.raises(ValueError, match="beam width M must be >= 1"):
        partition_network(ir, "loihi1", beam_width=0)
    with pytest.raises(ValueError, match="cost weights must be 4 numbers"):
        partition_network(ir, "loihi1", cost_weights=(1, 1))


def test_neuron_with_too_many_discrete_inputs_is_refused_before_the_search():
    # 5000 sources that also feed another layer need discrete axons: 5000 input
    # axons on the core of `other` however it is split, on any board
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (5000,), input_mode="spikes"))
    ir.add_layer(LayerSpec("wide", "dense", (2,)))
    ir.add_layer(LayerSpec("other", "dense", (3,)))
    ir.connect("inp", "wide", ConnectionSpec("dense", (5000,), kernel=np.ones((5000, 2))))
    ir.connect("inp", "other", ConnectionSpec("dense", (5000,), kernel=np.ones((5000, 3))))
    with pytest.raises(CoreLimitError, match=r"^layer wide: 5000 input axons needed on one core, "
                                             r"limit 4096 \(neuron \(0,\) of shape \(2,\): sources "
                                             r"of that neuron that need an axon of their own .*; the "
                                             r"limit is per core, so no split and no larger board "
                                             r"holds it\)$"):
        partition_network(ir, "pohoiki_springs")


def _fan_in(n_sources: int, shared: bool) -> NetworkIR:
    """n_sources spike inputs -> one neuron (and, when shared, also -> a second layer)."""
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (n_sources,), input_mode="spikes"))
    ir.add_layer(LayerSpec("one", "dense", (1,)))
    w = np.random.default_rng(0).permutation(n_sources)[:, None] + 1.0     # all distinct
    ir.connect("inp", "one", ConnectionSpec("dense", (n_sources,), kernel=w))
    if shared:
        ir.add_layer(LayerSpec("two", "dense", (1,)))
        ir.connect("inp", "two", ConnectionSpec("dense", (n_sources,), kernel=w))
    return ir


def _fits_or_refused(graph, fits: bool, message: str) -> None:
    """check_layers passes (at the limit) or raises CoreLimitError matching message."""
    if fits:
        check_layers(graph)
    else:
        with pytest.raises(CoreLimitError, match=message):
            check_layers(graph)


@pytest.mark.parametrize("n, fits", [(4096, True), (4097, False)])
def test_fan_in_of_discrete_sources_at_the_input_axon_limit(n, fits):
    graph = PartitionGraph(_fan_in(n, shared=True), get_board("loihi1"))
    _fits_or_refused(graph, fits, r"^layer one: 4097 input axons needed on one core, "
                                  r"limit 4096 \(neuron \(0,\)")


@pytest.mark.parametrize("n, fits", [(131072, True), (131073, False)])
def test_one_neurons_distinct_weights_at_the_synapse_memory(n, fits):
    # sources that feed only `one` share one population axon; their 8-bit weights
    # all differ, so none can share storage: n * 8 / 64 words at least
    graph = PartitionGraph(_fan_in(n, shared=False), get_board("loihi1"))
    _fits_or_refused(graph, fits, r"^layer one: 16385 synapse words needed on one "
                                  r"core, limit 16384 \(neuron \(0,\)")


@pytest.mark.parametrize("targets, fits", [(32, True), (33, False)])
def test_one_sources_output_entries_at_the_limit(targets, fits):
    # cores of 4 compartments: a source feeding 33 neurons reaches 9 cores, 9 entries
    small = Board("small", ChipSpec("small", CoreLimits(compartments=4, output_axons=8), 128), 1)
    graph = PartitionGraph(dense_chain([1, targets], np.random.default_rng(0)), small)
    _fits_or_refused(graph, fits, r"^layer inp: 9 output axons needed on one core, "
                                  r"limit 8 \(neuron \(0,\)")


@pytest.mark.parametrize("axons, fits", [(9, True), (8, False)])
def test_convolution_fan_in_at_the_input_axon_limit(axons, fits):
    # a 3x3 'same' conv whose sources also feed a second layer: discrete axons for
    # all 9 x 2 sources of an inner neuron, or one pixel population axon per
    # window pixel, 9 (counted analytically), against cores of 9 and of 8 axons
    net = NetBuilder((4, 4, 2), np.random.default_rng(0), input_mode="spikes")
    net.conv(2, 3, padding="same")
    net.conv(2, 3, padding="same", source="inp")
    board = Board("b", ChipSpec("b", CoreLimits(input_axons=axons), 128), 1)
    graph = PartitionGraph(net.ir, board)
    _fits_or_refused(graph, fits, r"^layer conv2d1: 9 input axons needed on one "
                                  r"core, limit 8 \(neuron \(1, 1, 0\) of shape "
                                  r"\(4, 4, 2\)")


def test_a_layer_without_room_on_the_board_names_the_cores_it_needs_and_those_left():
    # uniform blocks of at most 8 compartments cut 5x5 into 5 cores (its bound is 4);
    # the output takes 1 of the board's 5
    five = Board("five", ChipSpec("five", CoreLimits(compartments=8), cores_per_chip=5), 1)
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (5, 5, 1)))
    ir.add_layer(LayerSpec("out", "dense", (1,)))
    ir.connect("inp", "out", ConnectionSpec("dense", (25,), kernel=np.ones((25, 1))))
    with pytest.raises(PartitionError, match=r"^layer inp: splits of 5 or more cores do not fit the "
                                             r"4 cores left for it on board five \(5 cores;"):
        partition_network(ir, five)
    # a split that breaks a core limit, and the larger ones no room: the error says both
    ten = Board("ten", ChipSpec("ten", CoreLimits(), cores_per_chip=10), 1)
    with pytest.raises(CoreLimitError, match=r"layer dense0: 17000 synapse words needed on one core, "
                                             r"limit 16384 \(best of 1 candidate splits of layer dense0: "
                                             r"8 blocks of 125; splits of 9 or more cores were not tried: "
                                             r"they do not fit "
                                             r"the 8 cores left for it on board ten"):
        partition_network(dense_chain([1000, 1000], np.random.default_rng(0)), ten)


def test_a_layer_without_neurons_or_room_for_one_is_refused_by_name():
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (3,)))
    ir.add_layer(LayerSpec("empty", "dense", (0,)))
    ir.connect("inp", "empty", ConnectionSpec("dense", (3,), kernel=np.ones((3, 0))))
    with pytest.raises(PartitionError, match=r"layer empty: shape \(0,\) has no neurons"):
        partition_network(ir, "loihi1")
    # a soft-reset neuron takes 2 compartments: none fits a core of 1
    tiny = Board("tiny", ChipSpec("tiny", CoreLimits(compartments=1), cores_per_chip=8), 1)
    with pytest.raises(CoreLimitError, match=r"layer inp: 2 compartments needed on one core, "
                                             r"limit 1 \(one neuron\)"):
        partition_network(dense_chain([2, 2], np.random.default_rng(0), reset="soft"), tiny)


def test_population_axon_lets_a_wide_fan_in_fit():
    # the same fan-in from sources that feed only `wide` shares one population axon
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (5000,), input_mode="spikes"))
    ir.add_layer(LayerSpec("wide", "dense", (2,)))
    ir.connect("inp", "wide", ConnectionSpec("dense", (5000,), kernel=np.ones((5000, 2))))
    part = partition_network(ir, "loihi1")
    assert [c.input_axons for c in part.cores_of("wide")] == [1]
    _check(ir, part)


def test_network_larger_than_the_board():
    one_chip = Board("one", ChipSpec("quad", CoreLimits(), cores_per_chip=4), 1)
    ir = dense_chain([10, 5000], np.random.default_rng(0))
    # 5000 compartments need 5 cores, the input 1: 6 > 4
    with pytest.raises(PartitionError, match=r"needs at least 6 cores on 2 chips, board one has 1 chips "
                                             r"\(largest: layer dense0, at least 5 cores by compartments\)"):
        partition_network(ir, one_chip)


SMALL_CHIPS = Board("small", ChipSpec("small", CoreLimits(compartments=128), cores_per_chip=4), 16)


def test_chip_placement_keeps_limits_and_beats_filling_chips_in_order():
    b = NetBuilder((16, 16, 2), np.random.default_rng(0))
    b.conv(8, 3, padding="same")
    b.pool(2)
    b.conv(8, 3, padding="same")
    b.dense(10)
    part = partition_network(b.ir, SMALL_CHIPS, placement_time_limit=0.3)
    per_chip = np.bincount([c.chip for c in part.cores])
    assert part.num_chips == -(-part.num_cores // 4) and per_chip.max() <= 4
    assert part.offchip_routes <= part.sequential_offchip_routes
    _check(b.ir, part)


def test_compiled_model_exposes_the_partition_and_reports_it(tmp_path):
    b = NetBuilder((12, 12, 2), np.random.default_rng(0), reset="soft")
    b.conv(8, 3, padding="same")
    b.depthwise(3, 2)
    b.dense(10)
    compiled = compile_ir(b.ir, SMALL_CHIPS, beam_width=2, placement_time_limit=0.3)
    assert compiled.num_cores == compiled.partition.num_cores >= compiled.lower_bound_cores
    assert compiled.num_chips == compiled.partition.num_chips
    first = compiled.core_assignment[0]
    assert set(first) == {"core", "chip", "layer", "neurons"}
    report = compiled.report()
    for text in ("lower bound", "off-chip", "cores/bound", "search", "placement", "compartments",
                 "conv2d1", "6x3x1 blocks of 2x4x8", "compile time"):
        assert text in report, text
    backend = matplotlib.get_backend()
    matplotlib.use("svg")            # the caller's backend, whatever it is, stays
    try:
        png = compiled.save_utilization(tmp_path / "util.png")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(backend)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_placement_of_thousands_of_cores_on_pohoiki_springs_uses_the_greedy_fallback():
    # 20000 cores in 4 interleaved chains (core c feeds c + 4), placed at random
    # first: too large for CP-SAT on 768 chips of 128, so contiguous runs and the
    # greedy local search place them, validly, with fewer off-chip routes than
    # filling chips in core order
    from partitioner.placement import PlacementProblem, place_cores
    n, cap, chips = 20000, 128, 768
    rng = np.random.default_rng(0)
    src = np.arange(n - 4)
    problem = PlacementProblem(n, src, src + 4, rng.integers(1, 5, len(src)),
                               np.zeros(n, np.int64), 4096, cap, chips)
    initial = rng.permutation(np.arange(n) // cap)
    placed = place_cores(problem, initial, time_limit=2.0)
    assert "CP-SAT" not in placed.method and placed.method.startswith("contiguous runs")
    assert problem.valid(placed.chips) and placed.offchip_routes == problem.offchip(placed.chips)
    assert placed.offchip_routes <= problem.offchip(np.arange(n) // cap) < problem.offchip(initial)


def test_placement_is_never_worse_than_filling_chips_in_core_order():
    # 4 cores, 2 chips of 2: the best contiguous split keeps route 1->2 inside with
    # runs [0] [1 2] [3], one run more than the board has chips, so it is no
    # candidate; the search's order puts every route across chips; CP-SAT is off
    # and the local search has no time: core order (routes 0->1, 2->3 inside) wins
    from partitioner.placement import PlacementProblem, place_cores
    problem = PlacementProblem(4, np.array([0, 1, 2]), np.array([1, 2, 3]), np.array([3, 7, 3]),
                               np.zeros(4, np.int64), 4096, 2, 2)
    initial = np.array([0, 1, 0, 1])
    placed = place_cores(problem, initial, time_limit=0.0, max_cp_sat_vars=0)
    assert placed.method == "core order"
    assert placed.offchip_routes == problem.offchip(np.array([0, 0, 1, 1])) == 7 < problem.offchip(initial)
