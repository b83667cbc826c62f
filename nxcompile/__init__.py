"""nxcompile: deep spiking neural networks from Keras onto Intel Loihi.

The public names are exported lazily (PEP 562) so that ``import nxcompile.ir``
(the IR, read by the partitioner and the mapper) does not import TensorFlow or
Keras.  Every Nx layer class of nxcompile.layers (``nxcompile.NxConv2D``, ...)
is exported too, without being listed here.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "NxModel": "nxcompile.model",
    "NxInputLayer": "nxcompile.layers",
    "NxDense": "nxcompile.layers",
    "NxConv1D": "nxcompile.layers",
    "NxConv2D": "nxcompile.layers",
    "NxDepthwiseConv2D": "nxcompile.layers",
    "NxAveragePooling2D": "nxcompile.layers",
    "NxMaxPooling2D": "nxcompile.layers",
    "NxAdd": "nxcompile.layers",
    "NxUpSampling2D": "nxcompile.layers",
    "NxFlatten": "nxcompile.layers",
    "NxReshape": "nxcompile.layers",
    "NxZeroPadding2D": "nxcompile.layers",
    "NxCompileError": "hwmodel.errors",
    "model_to_ir": "nxcompile.keras_ir",
    "compile_ir": "nxcompile.compiler",
    "load": "nxcompile.compiled",
    "convert": "nxcompile.conversion",
    "QuantizedClippedReLU": "nxcompile.activations",
    "calibrate_clips": "nxcompile.activations",
    "from_nir": "nxcompile.nir_import",
    "from_netx": "nxcompile.netx_import",
    "netx_to_ir": "nxcompile.netx_import",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name.startswith("Nx"):
        layers = importlib.import_module("nxcompile.layers")
        if isinstance(getattr(layers, name, None), type):
            return getattr(layers, name)
    raise AttributeError(f"module 'nxcompile' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
