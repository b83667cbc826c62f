"""compile_ir: IR -> partition (partitioner) + integer network (mapper)."""
from __future__ import annotations

import time

from hwmodel.limits import get_board
from mapper.quantize import quantize_network
from nxcompile.compiled import CompiledModel
from nxcompile.ir import NetworkIR
from partitioner import partition_network


def compile_ir(ir: NetworkIR, board="loihi1", weight_percentile: float = 100.0,
               **options) -> CompiledModel:
    """Quantize the network to Loihi integers and partition it over the board's
    cores, counting the integer synapses (partition_network's network).

    weight_percentile goes to mapper.quantize.quantize_network (100: scale each
    layer's weights by their maximum; p < 100: by their p-th percentile,
    clipping the rest).  options go to partitioner.partition_network:
    beam_width (M), cost_weights (a0..a3), placement_time_limit (s), validate.
    """
    board = get_board(board)
    t0 = time.perf_counter()   # quantize first: bad parameters fail before the search runs
    network, quantization = quantize_network(ir, weight_percentile=weight_percentile)
    t1 = time.perf_counter()
    partition = partition_network(ir, board, network=network, **options)
    return CompiledModel(ir, partition, network, quantization,
                         timings={**partition.timings, "quantize": t1 - t0})
