"""Loihi hardware model, the lowest package (it imports no other): limits and the
resource table, numeric formats, the error base class, the integer network, the
partition (neurons on cores on chips), the backend interface and result type,
the reference simulator and the energy model."""
