"""compile_ir: IR -> partition (partitioner) + integer network (mapper)."""
from __future__ import annotations

import time

from hwmodel.limits import get_board
from mapper.quantize import quantize_network
from nxcompile.compiled import CompiledModel
from nxcompile.ir import NetworkIR
from partitioner.layerwise import partition_network


def compile_ir(ir: NetworkIR, board="loihi1") -> CompiledModel:
    """Partition the network over the board's cores and quantize it to Loihi integers."""
    board = get_board(board)
    t0 = time.perf_counter()
    partition = partition_network(ir, board)
    t1 = time.perf_counter()
    network, quantization = quantize_network(ir)
    t2 = time.perf_counter()
    return CompiledModel(ir, partition, network, quantization,
                         timings={"partition": t1 - t0, "quantize": t2 - t1})
