"""Partitioner: split every layer of a NetworkIR over Loihi cores and chips."""
