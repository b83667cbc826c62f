"""Loihi hardware model: limits, numeric formats, integer network, reference simulator."""
