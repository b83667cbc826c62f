"""nxcompile: deep spiking neural networks from Keras onto Intel Loihi.

The public names are exported lazily (PEP 562) so that ``import nxcompile.ir``
and ``import nxcompile.connectivity`` (used by the partitioner and the mapper)
do not import TensorFlow or Keras.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "NxModel": "nxcompile.model",
    "NxInputLayer": "nxcompile.layers",
    "NxDense": "nxcompile.layers",
    "NxConv2D": "nxcompile.layers",
    "NxDepthwiseConv2D": "nxcompile.layers",
    "NxAveragePooling2D": "nxcompile.layers",
    "NxFlatten": "nxcompile.layers",
    "NxReshape": "nxcompile.layers",
    "NxZeroPadding2D": "nxcompile.layers",
    "model_to_ir": "nxcompile.keras_ir",
    "compile_ir": "nxcompile.compiler",
    "load": "nxcompile.serialization",
    "convert": "nxcompile.conversion",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'nxcompile' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
