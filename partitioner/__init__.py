"""Partitioner: split every layer of a NetworkIR over Loihi cores and chips.

Entry point: partition_network(ir, board, **options) (partitioner.pipeline).
The resource model is documented in partitioner.model.
"""
from partitioner.pipeline import partition_network

__all__ = ["partition_network"]
