"""Make lava-nc 0.10.0 importable on Python 3.11 now, or fail clearly.

Importing this module arms nxcompile_lava_hook's import hook (the 3.11 fix of
`lava.magma.compiler.var_model`, site-packages untouched), imports that module
and checks the pinned version and the patch.  nxcompile's modules import it
before any lava import:

    import mapper.lava_compat  # noqa: F401  (first, before lava)
    from lava.proc.lif.process import LIF

(An installed nxcompile also arms the hook at interpreter start-up through
nxcompile_lava.pth, so user code needs no such line.)  Importing lava.proc
makes 'fork' the multiprocessing start method of the process.
"""
from __future__ import annotations

import importlib

from hwmodel.errors import NxCompileError
from nxcompile_lava_hook import (LAVA_VERSION, PATCHED_MODULE, PatchError, _VarModelFinder, install,
                                 installed_version, patch_source)

__all__ = ["LAVA_VERSION", "PATCHED_MODULE", "LavaCompatError", "_VarModelFinder", "import_lava",
           "patch_source"]


class LavaCompatError(NxCompileError, PatchError):
    """lava-nc is missing, of another version, or its source is not the expected text
    (patch_source raises the PatchError it derives from)."""


def _check_version() -> None:
    version = installed_version()
    if version is None:
        raise LavaCompatError(
            f"lava-nc is not installed; install lava-nc=={LAVA_VERSION} "
            "(pip install --no-deps --ignore-requires-python)")
    if version != LAVA_VERSION:
        raise LavaCompatError(
            f"lava-nc {version} is installed; nxcompile needs lava-nc=={LAVA_VERSION}")


def _is_patched(module) -> bool:
    field = module.CoreEncoder.__dataclass_fields__["x"]
    return field.default_factory is module.ByteEncoder


def import_lava() -> None:
    """Arm the hook (once) and import the patched var_model; raise
    LavaCompatError if lava is of another version or the patch did not apply."""
    _check_version()
    install()
    try:
        module = importlib.import_module(PATCHED_MODULE)
    except PatchError as exc:
        raise LavaCompatError(str(exc)) from None
    if not _is_patched(module):
        raise LavaCompatError(
            f"{PATCHED_MODULE} was imported before mapper.lava_compat and is unpatched; "
            "import mapper.lava_compat before any lava module")


import_lava()
