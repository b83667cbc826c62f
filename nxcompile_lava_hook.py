"""The Python 3.11 fix of lava-nc 0.10.0 and the import hook that applies it.

lava-nc declares Python < 3.11.  Its one 3.11 incompatibility is in
`lava.magma.compiler.var_model`: dataclass fields `x: ByteEncoder = ByteEncoder()`,
which 3.11 rejects as mutable defaults, so most of lava fails to import.  The
hook (a meta-path finder) compiles a patched source of that one module
(`field(default_factory=ByteEncoder)`) when it is imported; site-packages is
never written, not even its bytecode cache.

A top-level module of the standard library alone, with no side effects on
import: install() arms the hook, and `nxcompile_lava.pth`, which the package
installs into site-packages, runs it at every interpreter start-up, so a plain
`from lava.proc.lif.process import LIF` works in any script or notebook of the
environment.  It imports none of nxcompile's packages at start-up (they would
then shadow another checkout on the path) and does nothing until var_model is
imported.  The hook patches only the pinned lava-nc version and leaves any
other alone; mapper.lava_compat (what nxcompile's own modules import) imports
lava at once and fails clearly on another version or source text.
"""
from __future__ import annotations

import importlib.machinery
import sys

LAVA_VERSION = "0.10.0"
PATCHED_MODULE = "lava.magma.compiler.var_model"
_FIELD_DEFAULT = r"^(\s+\w+): ByteEncoder = ByteEncoder\(\)$"    # one per line (re.MULTILINE)
_DATACLASS_IMPORT = "from dataclasses import dataclass, InitVar\n"
_EXPECTED_FIELDS = 8   # CoreEncoder x, y, p; ChipEncoder x, y, z; AxonEncoder hi, lo


class PatchError(ImportError):
    """var_model.py is not the text the patch is written for
    (mapper.lava_compat.LavaCompatError derives from it)."""


def patch_source(source: str) -> str:
    """The var_model.py source with ByteEncoder defaults made default factories."""
    import re           # here, not at start-up (re and its imports take ~9 ms)
    patched, count = re.subn(_FIELD_DEFAULT, r"\1: ByteEncoder = field(default_factory=ByteEncoder)",
                             source, flags=re.MULTILINE)
    if count != _EXPECTED_FIELDS or _DATACLASS_IMPORT not in patched:
        raise PatchError(
            f"{PATCHED_MODULE}: expected {_EXPECTED_FIELDS} 'ByteEncoder = ByteEncoder()' "
            f"fields and the line {_DATACLASS_IMPORT.strip()!r}, found {count} fields; "
            f"this patch is written for lava-nc=={LAVA_VERSION}")
    return patched.replace(_DATACLASS_IMPORT,
                           "from dataclasses import dataclass, InitVar, field\n", 1)


def installed_version() -> str | None:
    """The installed lava-nc version, None without lava-nc."""
    import importlib.metadata      # here, not at start-up: only when lava is imported
    try:
        return importlib.metadata.version("lava-nc")
    except importlib.metadata.PackageNotFoundError:
        return None


class _PatchedSourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles the patched text; never reads or writes the bytecode cache."""

    def get_code(self, fullname):
        source = self.get_data(self.path).decode("utf-8")
        return compile(patch_source(source), self.path, "exec", dont_inherit=True)


class _VarModelFinder:
    """Meta-path finder that hands var_model of the pinned lava-nc to the
    patching loader (any other module or version: not found here)."""

    @staticmethod
    def find_spec(fullname, path, target=None):
        if fullname != PATCHED_MODULE or installed_version() != LAVA_VERSION:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None
        spec.loader = _PatchedSourceLoader(fullname, spec.origin)
        return spec


def install() -> None:
    """Arm the hook (once): put the finder first on sys.meta_path.  Cheap: it
    imports nothing and does nothing until var_model is imported."""
    if not any(isinstance(f, _VarModelFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _VarModelFinder())
