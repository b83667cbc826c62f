"""partition_network: refusal of layers no core holds (partitioner.feasible) ->
lower bounds -> beam search -> chip placement -> cores -> independent
validation, each stage timed.  Validation recounts every core, fails
when a search estimate differs from the recount (EstimateMismatchError, so the
counts the cores keep and the report prints are the recount's) and then checks
every limit."""
from __future__ import annotations

import time

import numpy as np

from hwmodel import synapse_format as sf
from hwmodel.errors import NetworkError
from hwmodel.limits import Board, get_board
from hwmodel.network import IntNetwork
from hwmodel.partition import Core, LayerSplit, Partition
from nxcompile.ir import NetworkIR
from partitioner.bounds import lower_bounds
from partitioner.errors import PartitionError
from partitioner.feasible import check_layers
from partitioner.graph import PartitionGraph
from partitioner.model import ENCODINGS
from partitioner.placement import PlacementProblem, place_cores
from partitioner.search import DEFAULT_COST_WEIGHTS, BeamSearch, State
from partitioner.validate import check_estimates, check_limits, recount


def partition_network(ir: NetworkIR, board: "str | Board" = "loihi1", *, beam_width: int = 4,
                      cost_weights: tuple = DEFAULT_COST_WEIGHTS, placement_time_limit: float = 1.0,
                      validate: bool = True, network: IntNetwork | None = None) -> Partition:
    """Split every layer of `ir` over cores of `board` and place the cores on chips.

    beam_width: M, partial partitions kept per layer (M^2 proposals each step).
    cost_weights: (a0, a1, a2, a3) of the cost a0*cores + a1*words/limit +
    a2*axons/limit + a3*off-chip routes/limit (partitioner.search).  placement_time_limit:
    seconds for the chip placement (CP-SAT or greedy).  validate: recount the
    result with the independent validator (partitioner.validate), fail on any
    core whose estimate differs from the recount and on any violated limit.
    validate=False skips all of that (the cores then hold unchecked estimates).
    network: the IntNetwork quantized from `ir` (mapper.quantize), whose integer
    synapses the search and the validator count where partitioner.edges says
    (None: the IR's float synapses throughout).
    """
    board = get_board(board)
    widths = sf.MAX_SKIP_BITS - sf.MIN_SKIP_BITS + 1
    if board.chip.core.synapse_formats < widths:
        raise NetworkError(
            f"board {board.name}: {board.chip.core.synapse_formats} synapse formats per core; the "
            f"search needs {widths}, one per run-length skip width ({sf.MIN_SKIP_BITS}.."
            f"{sf.MAX_SKIP_BITS} bits), and does not count formats (partitioner.validate)")
    timings = {}
    t0 = time.perf_counter()
    if network is not None:
        _check_network(ir, network)
    graph = PartitionGraph(ir, board, network)
    check_layers(graph)
    bounds = lower_bounds(graph)
    lower = sum(b for b, _ in bounds.values())
    if lower > board.num_cores:
        per_chip = board.chip.cores_per_chip
        name = max(bounds, key=lambda n: bounds[n][0])
        raise PartitionError(f"network needs at least {lower} cores on {-(-lower // per_chip)} chips, "
                             f"board {board.name} has {board.num_chips} chips (largest: layer "
                             f"{name}, at least {bounds[name][0]} cores by {bounds[name][1]})")
    t1 = time.perf_counter()
    timings["bounds"] = t1 - t0
    state = BeamSearch(graph, bounds, beam_width, cost_weights).run()
    t2 = time.perf_counter()
    timings["search"] = t2 - t1
    part, problem, initial = _build(graph, state, bounds)
    placed = place_cores(problem, initial, placement_time_limit)
    entries = problem.entries(placed.chips)
    for core in part.cores:
        core.chip = int(placed.chips[core.index])
        core.output_axons = int(entries[core.index])
    part.offchip_routes = placed.offchip_routes
    part.sequential_offchip_routes = problem.offchip(np.arange(part.num_cores) // board.chip.cores_per_chip)
    part.placement = placed.method
    t3 = time.perf_counter()
    timings["placement"] = t3 - t2
    if validate:
        counts = recount(ir, part, network=network)
        check_estimates(part, counts)
        check_limits(part, counts)
        timings["validation"] = time.perf_counter() - t3
    part.timings = timings
    return part


def _check_network(ir: NetworkIR, network: IntNetwork) -> None:
    """NetworkError unless the integer network has the IR's connections, one each."""
    given = sorted((c.source, c.target) for c in network.connections)
    if given != sorted(ir.graph.edges):
        raise NetworkError(f"the integer network's connections {given} are not the IR's "
                           f"{sorted(ir.graph.edges)}")


def _build(graph: PartitionGraph, state: State, bounds: dict):
    """Cores in topological order with the search's estimates, and the placement
    problem with the provisional chips (placement order, mirrored so the inputs
    sit on chip 0)."""
    board = graph.board
    per_chip = board.chip.cores_per_chip
    part = Partition(board=board, lower_bound_cores=sum(b for b, _ in bounds.values()))
    first = {}
    provisional = []
    for name in graph.order:
        choice = state.choices[name]
        usage = choice.usage
        first[name] = len(part.cores)
        part.layers[name] = LayerSplit(choice.tiling.split, bounds[name][0], bounds[name][1], choice.cost)
        layer_neurons = choice.tiling.neurons()
        choice.tiling.release()             # the cores keep the neurons
        for local, neurons in enumerate(layer_neurons):
            part.cores.append(Core(
                index=len(part.cores), chip=0, layer=name, neurons=neurons,
                compartments=int(usage.compartments[local]), input_axons=int(usage.input_axons[local]),
                synapse_words=int(usage.synapse_words[local]),
                words_per_axon=int(usage.words_per_axon[local]),
                encoding=ENCODINGS[int(usage.encoding[local])],
                population=tuple(src for src, flags in usage.population.items() if flags[local]),
                pixel_population=tuple(src for src, flags in usage.pixel.items() if flags[local])))
            provisional.append(choice.first + local)
    num_chips = -(-part.num_cores // per_chip)
    initial = num_chips - 1 - np.asarray(provisional, np.int64) // per_chip
    src, dst, count, base = [], [], [], np.zeros(part.num_cores, np.int64)
    for name in graph.order:
        choice = state.choices[name]
        base[first[name]:first[name] + choice.tiling.num_cores] = choice.output.base
        for target, (s, d, c) in choice.output.routes.items():
            order = np.lexsort((d, s))          # by core pair, as the placement reads them
            src.append(s[order] + first[name])
            dst.append(d[order] + first[target])
            count.append(c[order])
    cat = (lambda a: np.concatenate(a).astype(np.int64) if a else np.zeros(0, np.int64))
    problem = PlacementProblem(part.num_cores, cat(src), cat(dst), cat(count), base,
                               board.chip.core.output_axons, per_chip, num_chips)
    return part, problem, initial
