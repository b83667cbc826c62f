"""Initial membrane potentials (IntLayer.v_init): the reference simulator and
Lava start from them bit for bit (hard reset, the two-compartment soft reset,
LIFReset's periodic reset), the model file keeps them and refuses values the
24-bit v cannot hold, and netx export refuses them with the reason."""
import dataclasses
import multiprocessing

import numpy as np
import pytest

from hwmodel import formats
from hwmodel.errors import NetworkError
from hwmodel.limits import get_board
from hwmodel.partition import Core, Partition
from hwmodel.simulator import simulate
from mapper.checks import check_layer
from mapper.lava_run import run_lava
from mapper.netx import NetxExportError
from mapper.quantize import QuantizationError, quantize_network
from nxcompile.compiler import compile_ir
from nxcompile.serialization import ModelFileError
from tests.helpers import assert_same_run, dense_chain

NUM_STEPS = 20


def _network(reset: str, seed: int, periodic: bool = False):
    """A quantized 6-12-8-4 dense chain with random initial voltages in
    -vth..2 vth (v units) on every layer: some neurons spike at step 1 from v_init."""
    rng = np.random.default_rng(seed)
    ir = dense_chain([6, 12, 8, 4], rng, reset=reset, weight_scale=1.5, bias_scale=0.1)
    if periodic:
        for layer in ir.layers():
            layer.neuron.reset_interval, layer.neuron.reset_offset = 15, 11
    net, _ = quantize_network(ir)
    for layer in net.layers.values():
        vth = int(layer.vth) << formats.THRESHOLD_SHIFT
        layer.v_init = rng.integers(-vth, 2 * vth, layer.n)
    return ir, net


def _two_cores_each(ir) -> Partition:
    cores = []
    for layer in ir.layers():
        for half in np.array_split(np.arange(layer.n), 2):
            cores.append(Core(index=len(cores), chip=0, layer=layer.name, neurons=half))
    return Partition(board=get_board("nahuku32"), cores=cores)


@pytest.mark.parametrize("reset, periodic", [("hard", False), ("soft", False), ("hard", True)])
def test_lava_starts_from_v_init_bit_for_bit(reset, periodic):
    ir, net = _network(reset, seed=1, periodic=periodic)
    x = np.random.default_rng(2).uniform(0, 1, (2, 6))
    layers = list(net.layers)
    ref = simulate(net, x, NUM_STEPS, record=layers)
    zero = simulate(dataclasses.replace(net, layers={
        n: dataclasses.replace(l, v_init=None) for n, l in net.layers.items()}), x, NUM_STEPS,
        record=layers)
    for name in layers:       # the initial voltages change every layer's spike trains
        assert ref.trains[name].any() and not np.array_equal(ref.trains[name], zero.trains[name])
    got = run_lava(net, _two_cores_each(ir), x, NUM_STEPS, record=layers, lanes=2)
    assert_same_run(got, ref, layers, output="dense2")
    assert multiprocessing.active_children() == []


def test_v_init_is_checked_at_the_24_bit_limit():
    _, net = _network("soft", seed=3)
    layer = net.layers["dense0"]
    top = formats.STATE_MAX - 1
    for ok in (top, -top):
        check_layer(dataclasses.replace(layer, v_init=np.full(layer.n, ok)))
    for bad in (top + 1, -top - 1):
        with pytest.raises(NetworkError, match=rf"layer dense0: v_init \(v units, 24-bit\)="
                                               rf"{bad} outside -{top}..{top}"):
            check_layer(dataclasses.replace(layer, v_init=np.full(layer.n, bad)))
    with pytest.raises(NetworkError, match=r"v_init has shape \(3,\), the layer has 12 neurons"):
        check_layer(dataclasses.replace(layer, v_init=np.zeros(3, np.int64)))
    with pytest.raises(NetworkError, match=r"v_init has type ndarray float64"):
        check_layer(dataclasses.replace(layer, v_init=np.zeros(layer.n)))


def test_quantizer_refuses_v_init_beyond_24_bits():
    ir = dense_chain([4, 3], np.random.default_rng(0))
    layer = ir.layer("dense0")
    net, info = quantize_network(ir)
    vth = info["dense0"].vth
    limit = (formats.STATE_MAX - 1) / 2 ** formats.ACTIVATION_SHIFT / vth   # in thresholds
    layer.v_init = np.array([0.5, -0.25, limit * 0.999])
    net, _ = quantize_network(ir)
    assert net.layers["dense0"].v_init.tolist() == [vth * 32, -vth * 16,
                                                    round(limit * 0.999 * vth * 64)]
    layer.v_init = np.array([0.0, 0.0, limit * 1.01])
    with pytest.raises(QuantizationError, match=r"layer dense0: v_init up to .* beyond the "
                                                r"24-bit voltage"):
        quantize_network(ir)


def test_save_load_keeps_v_init_and_refuses_a_bad_one(tmp_path):
    import nxcompile
    from tests.test_save_load import _rewrite, _set
    rng = np.random.default_rng(5)
    ir = dense_chain([6, 8, 4], rng, reset="soft", weight_scale=1.5, bias_scale=0.1)
    for layer in ir.layers():
        layer.v_init = rng.uniform(-0.5, 1.0, layer.shape[-1])
    compiled = compile_ir(ir)
    assert all(layer.v_init is not None for layer in compiled.network.layers.values())
    path = compiled.save(tmp_path / "model.nxc")
    loaded = nxcompile.load(path)
    for name, layer in compiled.network.layers.items():
        np.testing.assert_array_equal(loaded.network.layers[name].v_init, layer.v_init)
        np.testing.assert_array_equal(loaded.ir.layer(name).v_init, ir.layer(name).v_init)
    x = rng.uniform(0, 1, (3, 6))
    np.testing.assert_array_equal(loaded.run(x, 30).potentials, compiled.run(x, 30).potentials)
    _rewrite(path, lambda d: _set(d, "model", "network", "fields", "layers", "__dict__",
                                  "dense1", "fields", "v_init", [1, 2]))
    with pytest.raises(ModelFileError, match=r"IntLayer.v_init: list \[1, 2\] where the field "
                                             r"holds ndarray or None"):
        nxcompile.load(path)


def test_netx_export_refuses_v_init(tmp_path):
    rng = np.random.default_rng(6)
    ir = dense_chain([6, 8, 4], rng, weight_scale=1.5)
    compile_ir(ir).export_netx(tmp_path / "plain.net")          # exports without v_init
    ir.layer("dense0").v_init = np.full(8, 0.5)
    with pytest.raises(NetxExportError, match=r"layer dense0: initial voltage v_init up to \d+ "
                                              r"\(v units\); a netx file has no initial state"):
        compile_ir(ir).export_netx(tmp_path / "model.net")
