"""Make lava-nc 0.10.0 importable on Python 3.11 without touching site-packages.

lava-nc declares Python < 3.11.  Its one 3.11 incompatibility is in
`lava.magma.compiler.var_model`: dataclass fields `x: ByteEncoder = ByteEncoder()`,
which 3.11 rejects as mutable defaults, so most of lava fails to import.  This
module installs an import hook that compiles a patched source of that one module
(`field(default_factory=ByteEncoder)`) and checks the pinned version and the patch.

Import this module before any lava import:

    import mapper.lava_compat  # noqa: F401  (first, before lava)
    from lava.proc.lif.process import LIF

Importing lava.proc makes 'fork' the multiprocessing start method of the process.
"""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.metadata
import re
import sys

from hwmodel.errors import NxCompileError

LAVA_VERSION = "0.10.0"
PATCHED_MODULE = "lava.magma.compiler.var_model"
_FIELD_DEFAULT = re.compile(r"^(\s+\w+): ByteEncoder = ByteEncoder\(\)$", re.MULTILINE)
_DATACLASS_IMPORT = "from dataclasses import dataclass, InitVar\n"
_EXPECTED_FIELDS = 8   # CoreEncoder x, y, p; ChipEncoder x, y, z; AxonEncoder hi, lo


class LavaCompatError(NxCompileError, ImportError):
    """lava-nc is missing, of another version, or its source is not the expected text."""


def patch_source(source: str) -> str:
    """The var_model.py source with ByteEncoder defaults made default factories."""
    patched, count = _FIELD_DEFAULT.subn(r"\1: ByteEncoder = field(default_factory=ByteEncoder)",
                                         source)
    if count != _EXPECTED_FIELDS or _DATACLASS_IMPORT not in patched:
        raise LavaCompatError(
            f"{PATCHED_MODULE}: expected {_EXPECTED_FIELDS} 'ByteEncoder = ByteEncoder()' "
            f"fields and the line {_DATACLASS_IMPORT.strip()!r}, found {count} fields; "
            f"this patch is written for lava-nc=={LAVA_VERSION}")
    return patched.replace(_DATACLASS_IMPORT,
                           "from dataclasses import dataclass, InitVar, field\n", 1)


class _PatchedSourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles the patched text; never reads or writes the bytecode cache."""

    def get_code(self, fullname):
        source = self.get_data(self.path).decode("utf-8")
        return compile(patch_source(source), self.path, "exec", dont_inherit=True)


class _VarModelFinder:
    """Meta-path finder that hands var_model to the patching loader."""

    @staticmethod
    def find_spec(fullname, path, target=None):
        if fullname != PATCHED_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None
        spec.loader = _PatchedSourceLoader(fullname, spec.origin)
        return spec


def _check_version() -> None:
    try:
        version = importlib.metadata.version("lava-nc")
    except importlib.metadata.PackageNotFoundError:
        raise LavaCompatError(
            f"lava-nc is not installed; install lava-nc=={LAVA_VERSION} "
            "(pip install --no-deps --ignore-requires-python)") from None
    if version != LAVA_VERSION:
        raise LavaCompatError(
            f"lava-nc {version} is installed; nxcompile needs lava-nc=={LAVA_VERSION}")


def _is_patched(module) -> bool:
    field = module.CoreEncoder.__dataclass_fields__["x"]
    return field.default_factory is module.ByteEncoder


def import_lava() -> None:
    """Install the hook (once) and import the patched var_model; raise
    LavaCompatError if lava is of another version or the patch did not apply."""
    _check_version()
    if not any(isinstance(f, _VarModelFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _VarModelFinder())
    module = importlib.import_module(PATCHED_MODULE)
    if not _is_patched(module):
        raise LavaCompatError(
            f"{PATCHED_MODULE} was imported before mapper.lava_compat and is unpatched; "
            "import mapper.lava_compat before any lava module")


import_lava()
