"""The base of every error nxcompile raises on purpose.

Each stage defines its named errors next to its code, all under NxCompileError
(and under the built-in they have always been, ValueError or RuntimeError), so
``except NxCompileError`` catches every one of them:

NetworkError            a network nxcompile cannot take (IR, Keras model, NIR graph,
                        Nx layer arguments, run inputs): names the layer, node or argument
PartitionError          partitioner.errors: no valid partition
  CoreLimitError          a layer that no split fits into a core's limits
  PartitionValidationError  partitioner.validate: a partition breaks a limit
    EstimateMismatchError     the search's estimate of a core differs from the recount
QuantizationError       mapper.quantize: a parameter Loihi's integers cannot hold
NetxExportError         mapper.netx: not describable in lava-dl's netx format
LavaRunError            mapper.lava_run: a Lava run failed
LoihiUnavailableError   mapper.loihi: no Loihi board can be used
ModelFileError          nxcompile.serialization: not a readable model file
LavaCompatError         mapper.lava_compat: lava-nc missing or not the pinned version
SingleSpikeError        nxcompile.ttfs: a neuron of a single-spike network spiked twice
"""
from __future__ import annotations


class NxCompileError(Exception):
    """Base class of nxcompile's errors."""


class NetworkError(NxCompileError, ValueError):
    """A network, layer or argument nxcompile cannot take; the message names it."""
