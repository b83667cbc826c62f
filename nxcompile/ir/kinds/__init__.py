"""The connection kinds: one module per kind, each defining ``KIND``, an
instance of nxcompile.ir.kind.ConnectionKind.  Every module of this package is
a kind: adding a kind is adding a module here (and its Nx layer class in
nxcompile.layers).  KINDS maps kind names ('conv2d', ...) to the objects,
weighted kinds first, flat sources first, then by name (the order in which
messages list them)."""
from __future__ import annotations

import importlib
import pkgutil

from hwmodel.errors import NetworkError

_found = [importlib.import_module(f"{__name__}.{m.name}").KIND
          for m in pkgutil.iter_modules(__path__)]
KINDS = {k.name: k for k in sorted(_found, key=lambda k: (not k.weighted, k.source_ndim, k.name))}


def get_kind(name: str):
    """The ConnectionKind called `name`."""
    try:
        return KINDS[name]
    except KeyError:
        raise NetworkError(f"unknown connection kind {name!r}; one of {tuple(KINDS)}") from None
