"""Mapper: quantize a NetworkIR to Loihi integers and emit Lava processes per core."""
