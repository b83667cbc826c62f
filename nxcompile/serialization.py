"""The model file: a compiled network's parts without recompiling, as JSON and
npz, no pickle (nxcompile.compiled's save and load use it).

The file is a zip archive with two members:

  nxcompile.json   {"format": "nxcompile.compiled", "version": 2, "model": ...}:
                   the IR (layers in insertion order, connections), the
                   partition (board, cores, partitioner statistics), the integer
                   network, the per-layer quantization reports and the compile
                   timings, as JSON.  Dataclasses are {"__dataclass__": name,
                   "fields": {...}}, tuples {"__tuple__": [...]}, dicts
                   {"__dict__": {...}}; arrays {"__array__": key} and sparse
                   matrices {"__csr__": key, "shape": [rows, cols]} name entries
                   of arrays.npz.
  arrays.npz       every numpy array (csr matrices as key.data, key.indices,
                   key.indptr), read with allow_pickle=False.

Only the dataclasses of hwmodel.limits, hwmodel.network, hwmodel.partition,
mapper.quantize and the IR's specs are rebuilt, by name, so a file cannot make
read() construct anything else.  A file that is not such an archive, of another
format or version, or whose network fails mapper.checks raises ModelFileError.
"""
from __future__ import annotations

import dataclasses
import io
import json
import numbers
import types
import typing
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from hwmodel import limits, network, partition as partition_module
from hwmodel.errors import NxCompileError
from mapper import quantize
from mapper.checks import check_network, check_partition
from nxcompile.ir import ConnectionSpec, LayerSpec, NetworkIR, NeuronSpec

FORMAT = "nxcompile.compiled"
VERSION = 2            # 2 added IntLayer.v_init / LayerSpec.v_init (initial potentials)
READS = (1, VERSION)   # a version-1 file is a version-2 file without v_init (None: 0)
JSON_MEMBER = "nxcompile.json"
ARRAYS_MEMBER = "arrays.npz"

_CLASSES = {name: cls for module in (limits, network, partition_module, quantize)
            for name, cls in vars(module).items()
            if isinstance(cls, type) and dataclasses.is_dataclass(cls)}
_CLASSES.update({cls.__name__: cls for cls in (ConnectionSpec, LayerSpec, NeuronSpec)})
PARTS = {"ir": NetworkIR, "partition": partition_module.Partition, "network": network.IntNetwork,
         "quantization": dict, "timings": dict}


class ModelFileError(NxCompileError, ValueError):
    """A file is not a readable nxcompile model file."""


class _Encoder:
    """Python values -> JSON values, arrays collected under unique keys."""

    def __init__(self):
        self.arrays = {}

    def _array(self, value: np.ndarray) -> str:
        if value.dtype == object:
            raise TypeError("object arrays cannot be saved without pickle")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = value
        return key

    def encode(self, value):
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            name = type(value).__name__
            if _CLASSES.get(name) is not type(value):
                raise TypeError(f"cannot save a {type(value).__qualname__}")
            return {"__dataclass__": name,
                    "fields": {f.name: self.encode(getattr(value, f.name))
                               for f in dataclasses.fields(value)}}
        if isinstance(value, np.ndarray):
            return {"__array__": self._array(value)}
        if sp.issparse(value):
            csr = sp.csr_matrix(value)
            key = self._array(csr.data)
            self.arrays[f"{key}.indices"] = csr.indices
            self.arrays[f"{key}.indptr"] = csr.indptr
            return {"__csr__": key, "shape": list(csr.shape)}
        if isinstance(value, NetworkIR):
            return {"__ir__": {
                "layers": [self.encode(value.layer(n)) for n in value.graph.nodes],
                "connections": [[s, t, self.encode(value.connection(s, t))]
                                for s, t in value.graph.edges]}}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v) for v in value]}
        if isinstance(value, list):
            return [self.encode(v) for v in value]
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"dict keys must be strings, got {list(value)}")
            return {"__dict__": {k: self.encode(v) for k, v in value.items()}}
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"cannot save a value of type {type(value).__qualname__}")


def _fits(value, hint) -> bool:
    """value has the type a dataclass field declares: numbers are numbers (not
    bool, an int field holds an integer), arrays hold numbers, tuples and dicts
    are what they say (their items are checked where they are used)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    hint = typing.get_origin(hint) or hint
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if hint is np.ndarray:
        return isinstance(value, np.ndarray)
    return isinstance(value, hint)


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:80]


def _hint_name(hint) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_hint_name(h) for h in typing.get_args(hint))
    return "None" if hint is type(None) else getattr(hint, "__name__", str(hint))


class _Decoder:
    """JSON values -> Python values, arrays from the npz; every problem a ModelFileError."""

    def __init__(self, arrays):
        self.arrays = arrays

    def _array(self, key) -> np.ndarray:
        try:
            array = self.arrays[key]
        except (KeyError, TypeError):
            raise ModelFileError(f"array {key!r} is missing from {ARRAYS_MEMBER}") from None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            # e.g. an object array (needs pickle) or an empty or truncated member
            raise ModelFileError(f"array {key!r} cannot be read: {exc}") from None
        if not isinstance(array, np.ndarray):       # np.load hands back a member it cannot parse
            raise ModelFileError(f"array {key!r} cannot be read: not an array in "
                                 f"{ARRAYS_MEMBER} ({len(array)} bytes)")
        if array.dtype.kind not in "biuf":
            raise ModelFileError(f"array {key!r} has dtype {array.dtype}; only booleans, "
                                 f"integers and real floats are stored")
        return array

    def decode(self, value):
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1 and "__tuple__" in value:
            return tuple(self.decode(v) for v in value["__tuple__"])
        if len(value) == 1 and "__dict__" in value:
            return {k: self.decode(v) for k, v in value["__dict__"].items()}
        if len(value) == 1 and "__array__" in value:
            return self._array(value["__array__"])
        if set(value) == {"__csr__", "shape"}:
            key = value["__csr__"]
            try:
                matrix = sp.csr_matrix((self._array(key), self._array(f"{key}.indices"),
                                        self._array(f"{key}.indptr")), shape=tuple(value["shape"]))
                matrix.check_format(full_check=True)      # indices within the shape, sorted rows
            except (ValueError, TypeError) as exc:
                raise ModelFileError(f"sparse matrix {key!r} is inconsistent: {exc}") from None
            return matrix
        if set(value) == {"__dataclass__", "fields"}:
            return self._dataclass(value["__dataclass__"], value["fields"])
        if len(value) == 1 and "__ir__" in value:
            return self._ir(value["__ir__"])
        raise ModelFileError(f"unknown JSON object with keys {sorted(value)}")

    def _dataclass(self, name, fields):
        cls = _CLASSES.get(name)
        if cls is None:
            raise ModelFileError(f"unknown type {name!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(fields, dict) or set(fields) - known:
            unknown = sorted(set(fields) - known) if isinstance(fields, dict) else fields
            raise ModelFileError(f"{name}: unknown fields {unknown}")
        values = {k: self.decode(v) for k, v in fields.items()}
        hints = typing.get_type_hints(cls)
        for key, value in values.items():
            if not _fits(value, hints[key]):
                raise ModelFileError(f"{name}.{key}: {_describe(value)} where the field holds "
                                     f"{_hint_name(hints[key])}")
        try:
            return cls(**values)
        except TypeError as exc:
            raise ModelFileError(f"{name}: {exc}") from None

    def _ir(self, spec) -> NetworkIR:
        ir = NetworkIR()
        try:
            for layer in spec["layers"]:
                ir.add_layer(self.decode(layer))
            for source, target, conn in spec["connections"]:
                ir.connect(source, target, self.decode(conn))
            ir.validate()
        except ModelFileError:
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ModelFileError(f"network description (IR): {exc}") from None
        return ir


def write(path, **parts) -> Path:
    """Write the parts of a compiled network (PARTS: ir, partition, network,
    quantization, timings) to `path` (see the module doc); returns the path."""
    enc = _Encoder()
    # windows are derived from the weights when read (_add_windows)
    parts = {**parts, "network": parts["network"].with_matrices()}
    doc = {"format": FORMAT, "version": VERSION,
           "model": {key: enc.encode(parts[key]) for key in PARTS}}
    text = json.dumps(doc, allow_nan=False, indent=1)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **enc.arrays)
    path = Path(path)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(JSON_MEMBER, text)
        zf.writestr(ARRAYS_MEMBER, buffer.getvalue())
    return path


def _read(path: Path) -> tuple:
    """The JSON document and the npz of a model file."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            missing = {JSON_MEMBER, ARRAYS_MEMBER} - names
            if missing:
                raise ModelFileError(f"{path}: not an nxcompile model file (no "
                                     f"{' or '.join(sorted(missing))} in the archive)")
            text, arrays = zf.read(JSON_MEMBER), zf.read(ARRAYS_MEMBER)
    except zipfile.BadZipFile:
        raise ModelFileError(f"{path}: not an nxcompile model file (not a zip archive)") from None
    try:
        doc = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: {JSON_MEMBER} is not valid JSON: {exc}") from None
    try:
        npz = np.load(io.BytesIO(arrays), allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{path}: {ARRAYS_MEMBER} is not a readable npz: {exc}") from None
    return doc, npz


def read(path) -> dict:
    """The parts (PARTS) of a file written by write, checked; ModelFileError otherwise."""
    path = Path(path)
    doc, npz = _read(path)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ModelFileError(f"{path}: format {found!r} is not {FORMAT!r}")
    if doc.get("version") not in READS:
        raise ModelFileError(f"{path}: written in format version {doc.get('version')!r}; this "
                             f"nxcompile reads versions {', '.join(map(str, READS))}")
    with npz:
        try:
            parts = {key: _Decoder(npz).decode(doc["model"][key]) for key in PARTS}
        except ModelFileError as exc:
            raise ModelFileError(f"{path}: {exc}") from None
        except (KeyError, TypeError) as exc:
            raise ModelFileError(f"{path}: model description incomplete: {exc!r}") from None
    for key, kind in PARTS.items():
        if not isinstance(parts[key], kind):
            raise ModelFileError(f"{path}: {key} is a {type(parts[key]).__name__}, not a "
                                 f"{kind.__name__}")
    try:
        check_network(parts["network"])
        check_partition(parts["network"], parts["partition"])
        _add_windows(parts["ir"], parts["network"])
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    return parts


def _add_windows(ir: NetworkIR, net) -> None:
    """Give each connection the window (the reference simulator's convolution)
    that its checked weights and its IR connection give (mapper.quantize.window_of):
    not stored, so a file cannot make the simulators disagree.  A kernel
    connection then drops its matrix, as the quantizer's own output has none."""
    for conn in net.connections:
        spec = ir.connection(conn.source, conn.target)
        conn.window = quantize.window_of(spec, net.layers[conn.target].shape, conn.weights)
        if conn.window is not None and quantize.keeps_kernel(spec):
            conn.weights = None         # as mapper.quantize leaves it: the window holds them
