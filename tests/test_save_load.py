"""CompiledModel.save / nxcompile.load: everything comes back equal, runs give
identical results without recompiling, and a corrupt or foreign file gets a
clear ModelFileError."""
import dataclasses
import io
import json
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp

import nxcompile
from nxcompile.compiler import compile_ir
from nxcompile.ir import ConnectionSpec, LayerSpec, NetworkIR, NeuronSpec
from nxcompile.serialization import ARRAYS_MEMBER, JSON_MEMBER, ModelFileError


def _ir(rng) -> NetworkIR:
    """input (6,6,2) -> 3x3 'same' conv (soft, leaky) -> 2x2 avg pool -> dense 4 (hard)."""
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (6, 6, 2), neuron=NeuronSpec(reset="soft")))
    ir.add_layer(LayerSpec("conv", "conv2d", (6, 6, 3), bias=rng.normal(0.05, 0.05, 3),
                           neuron=NeuronSpec(reset="soft", decay_v=100, num_weight_bits=6)))
    ir.connect("inp", "conv", ConnectionSpec("conv2d", (6, 6, 2), padding="same",
                                             kernel=rng.normal(0.3, 0.3, (3, 3, 2, 3))))
    ir.add_layer(LayerSpec("pool", "avg_pool2d", (3, 3, 3), neuron=NeuronSpec(threshold=0.5)))
    ir.connect("conv", "pool", ConnectionSpec("avg_pool2d", (6, 6, 3), pool_size=(2, 2),
                                              strides=(2, 2)))
    ir.add_layer(LayerSpec("out", "dense", (4,), neuron=NeuronSpec(vth_mant=400)))
    ir.connect("pool", "out", ConnectionSpec("dense", (27,), kernel=rng.normal(0.2, 0.4, (27, 4))))
    return ir


@pytest.fixture(scope="module")
def compiled():
    return compile_ir(_ir(np.random.default_rng(3)), board="kapoho_bay", weight_percentile=90)


@pytest.fixture()
def saved(compiled, tmp_path):
    return compiled.save(tmp_path / "model.nxc")


def _assert_same(a, b, where="value"):
    """Deep equality of saved values: dataclasses, arrays, sparse matrices, containers."""
    assert type(a) is type(b), where
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            _assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif sp.issparse(a):
        assert a.dtype == b.dtype and (a != b).nnz == 0, where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_everything_comes_back_equal_and_runs_identically(compiled, saved):
    loaded = nxcompile.load(saved)
    _assert_same(compiled.partition, loaded.partition, "partition")
    _assert_same(compiled.network, loaded.network, "network")
    _assert_same(compiled.quantization, loaded.quantization, "quantization")
    _assert_same(compiled.timings, loaded.timings, "timings")
    assert list(loaded.ir.graph.nodes) == list(compiled.ir.graph.nodes)
    assert list(loaded.ir.graph.edges) == list(compiled.ir.graph.edges)
    for name in compiled.ir.order():
        _assert_same(compiled.ir.layer(name), loaded.ir.layer(name), name)
    for s, t in compiled.ir.graph.edges:
        _assert_same(compiled.ir.connection(s, t), loaded.ir.connection(s, t), f"{s}->{t}")
    assert loaded.report() == compiled.report()
    assert compiled.quantization["conv"].weights_clipped > 0      # the option reached the quantizer
    # the convolutions' windows are not stored: derived from the weights on load
    assert [c.window is not None for c in loaded.network.connections] == [True, True, False]
    x = np.random.default_rng(4).random((3, 6, 6, 2))
    before, after = compiled.run(x, 40), loaded.run(x, 40)
    assert before.spike_counts.sum() > 0
    np.testing.assert_array_equal(after.spike_counts, before.spike_counts)
    np.testing.assert_array_equal(after.voltages, before.voltages)
    on_lava = loaded.run(x[:1], 40, backend="lava", record=["conv"])
    np.testing.assert_array_equal(on_lava.spike_counts, before.spike_counts[:1])
    np.testing.assert_array_equal(on_lava.trains["conv"],
                                  compiled.run(x[:1], 40, record=["conv"]).trains["conv"])


def test_file_is_json_and_npz_without_pickle(saved):
    with zipfile.ZipFile(saved) as zf:
        assert sorted(zf.namelist()) == sorted([JSON_MEMBER, ARRAYS_MEMBER])
        doc = json.loads(zf.read(JSON_MEMBER))
        arrays = np.load(io.BytesIO(zf.read(ARRAYS_MEMBER)), allow_pickle=False)
        assert all(arrays[k].dtype != object for k in arrays.files)
    assert (doc["format"], doc["version"]) == ("nxcompile.compiled", 2)
    layers = doc["model"]["network"]["fields"]["layers"]["__dict__"]
    assert layers["out"]["fields"]["vth"] == 400


def _rewrite(path, edit_json=None, edit_arrays=None):
    """Rewrite a model file with its JSON document and/or arrays edited."""
    with zipfile.ZipFile(path) as zf:
        doc = json.loads(zf.read(JSON_MEMBER))
        with np.load(io.BytesIO(zf.read(ARRAYS_MEMBER))) as npz:
            arrays = dict(npz)
    if edit_json:
        edit_json(doc)
    if edit_arrays:
        edit_arrays(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(JSON_MEMBER, json.dumps(doc))
        zf.writestr(ARRAYS_MEMBER, buffer.getvalue())
    return path


def _drop_v_init(node):
    """Remove every dataclass's v_init field (what a version-1 file lacks)."""
    if isinstance(node, dict):
        if node.get("__dataclass__") in ("IntLayer", "LayerSpec"):
            node["fields"].pop("v_init")
        for value in node.values():
            _drop_v_init(value)
    elif isinstance(node, list):
        for value in node:
            _drop_v_init(value)


def test_version_1_file_without_initial_potentials_reads(compiled, saved):
    """Version 2 added v_init; a version-1 file (no such field) loads with v_init None."""
    _rewrite(saved, lambda d: (_set(d, "version", 1), _drop_v_init(d)))
    with zipfile.ZipFile(saved) as zf:
        assert '"v_init"' not in zf.read(JSON_MEMBER).decode()
    loaded = nxcompile.load(saved)
    assert all(layer.v_init is None for layer in loaded.network.layers.values())
    x = np.random.default_rng(5).random((2, 6, 6, 2))
    np.testing.assert_array_equal(loaded.run(x, 30).spike_counts, compiled.run(x, 30).spike_counts)


def _first_weights_key(doc):
    return doc["model"]["network"]["fields"]["connections"][0]["fields"]["weights"]["__csr__"]


def _set(doc, *path_and_value):
    *path, value = path_and_value
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


CORRUPTIONS = {
    "not a zip": (lambda p: p.write_bytes(b"hello, world"), r"not an nxcompile model file \(not a zip"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:300]), r"not a zip archive"),
    "foreign zip": (lambda p: zipfile.ZipFile(p, "w").writestr("x.txt", "x"),
                    r"no arrays.npz or nxcompile.json in the archive"),
    "foreign format": (lambda p: _rewrite(p, lambda d: _set(d, "format", "keras")),
                       r"format 'keras' is not 'nxcompile.compiled'"),
    "newer version": (lambda p: _rewrite(p, lambda d: _set(d, "version", 3)),
                      r"written in format version 3; this nxcompile reads versions 1, 2"),
    "missing part": (lambda p: _rewrite(p, lambda d: d["model"].pop("partition")),
                     r"model description incomplete: KeyError\('partition'\)"),
    "unknown type": (lambda p: _rewrite(p, lambda d: _set(
        d, "model", "partition", "__dataclass__", "Popen")), r"unknown type 'Popen'"),
    "unknown field": (lambda p: _rewrite(p, lambda d: _set(
        d, "model", "network", "fields", "evil", 1)), r"IntNetwork: unknown fields \['evil'\]"),
    "missing array": (lambda p: _rewrite(p, edit_arrays=lambda a: a.pop("a0")),
                      r"array 'a0' is missing from arrays.npz"),
    "pickled array": (lambda p: _rewrite(p, edit_arrays=lambda a: a.update(
        a0=np.array([{"x": 1}], dtype=object))), r"array 'a0' cannot be read: .*allow_pickle"),
}


def _core(doc, i):
    return doc["model"]["partition"]["fields"]["cores"][i]["fields"]


def _out_layer(doc):
    return doc["model"]["network"]["fields"]["layers"]["__dict__"]["out"]["fields"]


def _empty_member(path, key="a0"):
    """The npz with member `key` cut to zero bytes."""
    with zipfile.ZipFile(path) as zf:
        text, arrays = zf.read(JSON_MEMBER), zf.read(ARRAYS_MEMBER)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(arrays)) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.namelist():
            dst.writestr(item, b"" if item == f"{key}.npy" else src.read(item))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(JSON_MEMBER, text)
        zf.writestr(ARRAYS_MEMBER, out.getvalue())


def _bad_index(arrays, doc_path):
    key = _first_weights_key(json.loads(zipfile.ZipFile(doc_path).read(JSON_MEMBER)))
    arrays[f"{key}.indices"] = arrays[f"{key}.indices"].copy()
    arrays[f"{key}.indices"][0] = 10 ** 6


# Files whose values have the wrong type or range: each refused by name (they used to
# load and run with wrong results, or fail with a TypeError or EOFError).
BAD_VALUES = {
    "string for a number": (lambda p: _rewrite(p, lambda d: _out_layer(d).update(vth="400")),
                            r"IntLayer.vth: str '400' where the field holds int"),
    "null for a number": (lambda p: _rewrite(p, lambda d: _core(d, 1).update(chip=None)),
                          r"Core.chip: NoneType None where the field holds int"),
    "float for an integer": (lambda p: _rewrite(p, lambda d: _out_layer(d).update(vth=400.5)),
                             r"IntLayer.vth: float 400.5 where the field holds int"),
    "bool for an integer": (lambda p: _rewrite(p, lambda d: _core(d, 1).update(index=True)),
                            r"Core.index: bool True where the field holds int"),
    "float neuron indices": (lambda p: _rewrite(p, edit_arrays=lambda a: a.update(
        a3=a["a3"].astype(float) + 0.5)), r"core 0 neurons have dtype float64; they are integer"),
    "complex array": (lambda p: _rewrite(p, edit_arrays=lambda a: a.update(
        a3=a["a3"].astype(complex))), r"array 'a3' has dtype complex128; only booleans, integers"),
    "empty array member": (_empty_member, r"array 'a0' cannot be read: not an array in arrays.npz "
                                          r"\(0 bytes\)"),
    "sparse index out of range": (lambda p: _rewrite(p, edit_arrays=lambda a: _bad_index(a, p)),
                                  r"sparse matrix 'a\d+' is inconsistent: indices must be < 72"),
    "core on a missing chip": (lambda p: _rewrite(p, lambda d: _core(d, 1).update(chip=2)),
                               r"partition: core 1 sits on chip 2, board kapoho_bay has chips 0..1"),
    "zero chips": (lambda p: _rewrite(p, lambda d: d["model"]["partition"]["fields"]["board"][
        "fields"].update(num_chips=0)), r"partition: board kapoho_bay has 0 chips"),
    "string in a shape": (lambda p: _rewrite(p, lambda d: d["model"]["ir"]["__ir__"]["layers"][0][
        "fields"].update(shape={"__tuple__": ["6", 6, 2]})),
                          r"layer inp: shape \('6', 6, 2\) must be a tuple of integers >= 0"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS) + list(BAD_VALUES))
def test_corrupt_or_foreign_file_gets_a_clear_error(saved, name):
    corrupt, message = {**CORRUPTIONS, **BAD_VALUES}[name]
    corrupt(saved)
    with pytest.raises(ModelFileError, match=message):
        nxcompile.load(saved)


def test_values_the_chip_cannot_hold_are_refused_on_load(saved):
    with zipfile.ZipFile(saved) as zf:
        key = _first_weights_key(json.loads(zf.read(JSON_MEMBER)))

    def odd(arrays):
        arrays[key] = arrays[key].copy()
        arrays[key][0] = 3
    _rewrite(saved, edit_arrays=odd)
    with pytest.raises(ModelFileError, match=r"connection inp->conv: weight 3 is not a multiple of"):
        nxcompile.load(saved)
    _rewrite(saved, lambda d: _set(d, "model", "network", "fields", "layers", "__dict__", "out",
                                   "fields", "vth", 2 ** 17))
    with pytest.raises(ModelFileError, match=r"layer out: vth=131072 outside 0..131071"):
        nxcompile.load(saved)
