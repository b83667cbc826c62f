"""Single-spike (TTFS) networks (nxcompile.ttfs): exactness of the mapping,
the single-spike property, Lava == reference, and the limits it refuses."""
from __future__ import annotations

import numpy as np
import pytest

from hwmodel import formats
from hwmodel.errors import NetworkError
from mapper.quantize import QuantizationError, quantize_network
from nxcompile.ir import INPUT, ConnectionSpec, LayerSpec, NetworkIR, NeuronSpec, connection_matrix
from nxcompile.ttfs import CLOCK, T_MAX, SingleSpikeError, to_ttfs

GRID = 64       # weights and biases on multiples of 1/64: the layers' integer grids hold them


def _flat_bias(layer: LayerSpec) -> np.ndarray:
    if layer.bias is None:
        return np.zeros(layer.n)
    return np.tile(layer.bias, layer.n // len(layer.bias))


def _preactivation(ir: NetworkIR, name: str, values: np.ndarray) -> np.ndarray:
    """The ANN's input sum of layer `name` for its source's values (batch, n);
    for max pooling the maximum over each window."""
    spec = ir.connection(ir.predecessors(name)[0], name)
    m = connection_matrix(spec, ir.layer(name).shape).toarray()
    if spec.kind == "max_pool2d":
        return np.where(m[None] > 0, values[:, None, :], -np.inf).max(axis=2)
    return values @ m.T + _flat_bias(ir.layer(name))


def _chain(seed: int, pool: str | None = None) -> tuple[NetworkIR, np.ndarray]:
    """A random ReLU chain conv -> [avg pool] -> dense (pool='dense', folded by
    to_ttfs) or conv (pool='conv', kept), or [max pool] -> dense ('max') or conv
    ('max conv') -> readout, each hidden layer scaled by
    its largest activation on the returned inputs (convert with percentile 100),
    weights and biases rounded to the 1/64 grid (and weights within +-1.9, so
    that every layer's scale is at least 128: the grid is exact)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (12, 6, 6, 1))
    ir = NetworkIR()
    ir.add_layer(LayerSpec("in", INPUT, (6, 6, 1)))
    ir.add_layer(LayerSpec("conv", "conv2d", (4, 4, 4), bias=rng.normal(0, 0.1, 4)))
    ir.connect("in", "conv", ConnectionSpec("conv2d", (6, 6, 1),
                                            kernel=rng.normal(0, 0.5, (3, 3, 1, 4))))
    src, shape = "conv", (4, 4, 4)
    if pool:
        kind = "max_pool2d" if pool.startswith("max") else "avg_pool2d"
        ir.add_layer(LayerSpec("pool", kind, (2, 2, 4)))
        ir.connect("conv", "pool", ConnectionSpec(kind, (4, 4, 4), pool_size=(2, 2),
                                                  strides=(2, 2)))
        src, shape = "pool", (2, 2, 4)
    if pool in ("conv", "max conv"):
        ir.add_layer(LayerSpec("conv2", "conv2d", (1, 1, 6), bias=rng.normal(0, 0.1, 6)))
        ir.connect("pool", "conv2", ConnectionSpec("conv2d", shape,
                                                   kernel=rng.normal(0, 0.5, (2, 2, 4, 6))))
        src, shape = "conv2", (1, 1, 6)
    n = int(np.prod(shape))
    ir.add_layer(LayerSpec("hid", "dense", (8,), bias=rng.normal(0, 0.1, 8)))
    ir.connect(src, "hid", ConnectionSpec("dense", (n,), kernel=rng.normal(0, 0.3, (n, 8))))
    ir.add_layer(LayerSpec("out", "dense", (3,)))
    ir.connect("hid", "out", ConnectionSpec("dense", (8,), kernel=rng.normal(0, 0.5, (8, 3))))
    values, lam_in = x.reshape(len(x), -1), 1.0
    for name in ir.order()[1:]:
        spec, layer = ir.connection(ir.predecessors(name)[0], name), ir.layer(name)
        act = np.maximum(_preactivation(ir, name, values), 0)
        lam = act.max() if ir.successors(name) and spec.kernel is not None else 1.0
        if spec.kernel is not None:
            spec.kernel = np.clip(np.round(spec.kernel * lam_in / lam * GRID) / GRID, -1.9, 1.9)
        if layer.bias is not None:
            layer.bias = np.round(layer.bias / lam * GRID) / GRID
        values, lam_in = np.maximum(_preactivation(ir, name, values), 0), 1.0
    return ir, x


def _ttfs_value(z: np.ndarray, T: int) -> np.ndarray:
    """What a TTFS neuron codes for input sum z: relu(z) rounded to 1/T (half
    down), at most 1 + 1/T (a spike on the window's first step)."""
    return np.clip(np.ceil(T * z - 0.5), 0, T + 1) / T


@pytest.mark.parametrize("seed,pool,T", [(0, None, 16), (1, "dense", 8), (2, "conv", 32),
                                         (6, "conv", 8), (8, "max", 16), (9, "max conv", 8)])
def test_ttfs_is_the_relu_network_rounded_to_the_time_step(seed, pool, T):
    """Every spiking layer's decoded spike times equal its ReLU activation of the
    previous layer's decoded values rounded to 1/T and clipped at 1 + 1/T (the
    mapping's only errors; an
    average pooling before a dense layer is folded into it, unrounded), the
    readout's voltage is exactly T times its input sum (weights on the grid: no
    quantization error), and no neuron spikes twice."""
    ir, x = _chain(seed, pool)
    net = to_ttfs(ir, T)
    assert ("pool" in net.spiking) == (pool in ("conv", "max", "max conv"))
    compiled = net.compile()
    result = compiled.run(x, record=net.spiking)
    values = np.round(x.reshape(len(x), -1) * T) / T
    for name in ir.order()[1:-1]:
        z = _preactivation(ir, name, values)
        if name not in net.spiking:         # folded pooling: linear, not rounded
            values = z
            continue
        decoded = net.decode(result.trains[name], name)
        if ir.layer(name).kind == "max_pool2d":     # the earliest spike: the window's maximum
            np.testing.assert_array_equal(decoded, z, err_msg=name)
            values = decoded
            continue
        np.testing.assert_array_equal(decoded, _ttfs_value(z, T), err_msg=name)
        assert 0.05 < np.mean(decoded > 0) < 0.95, name      # both spikes and silent zeros
        assert np.abs(decoded - np.clip(z, 0, 1 + 1 / T)).max() <= 0.5 / T + 1e-12
        values = decoded
    scale = compiled.compiled.quantization["out"].sigma
    z_out = _preactivation(ir, "out", values)
    np.testing.assert_array_equal(result.potentials.reshape(len(x), -1),
                                  z_out * T * scale * 2 ** formats.ACTIVATION_SHIFT)
    assert result.spike_counts.sum() == 0
    for name, counts in result.layer_counts.items():
        assert counts.max() <= 1, name


def test_single_spike_on_random_inputs():
    """Random networks, fresh random inputs of the distribution they were scaled
    on: at most one spike per neuron per sample, each spiking layer in its window
    [p_n + 1, p_n + T] (or before it, early)."""
    T = 16
    for seed in range(4):
        ir, _ = _chain(10 + seed, pool=(None, "dense", "conv", "max conv")[seed])
        net = to_ttfs(ir, T)
        compiled = net.compile()
        x = np.random.default_rng(seed).uniform(0, 1, (40, 6, 6, 1))
        result = compiled.run(x, record=net.spiking)
        for name, counts in result.layer_counts.items():
            assert counts.max() <= 1, (seed, name)
        for name in net.spiking:
            steps = np.nonzero(result.trains[name].reshape(len(x), net.num_steps, -1))[1]
            assert steps.max() <= net.evaluation[name] + T
            assert steps.min() > net.evaluation[name] - T


def test_second_spike_raises():
    """An input sum far beyond the range a network was scaled on (36 inputs of
    weight 1 at value 1: 36) crosses the threshold before the guard; the
    second spike that follows is an error, never a silently wrong result.  In
    its range (two inputs at 0.5: 1) one spike."""
    ir = NetworkIR()
    ir.add_layer(LayerSpec("in", INPUT, (36,)))
    ir.add_layer(LayerSpec("hid", "dense", (2,)))
    ir.connect("in", "hid", ConnectionSpec("dense", (36,), kernel=np.ones((36, 2))))
    ir.add_layer(LayerSpec("out", "dense", (2,)))
    ir.connect("hid", "out", ConnectionSpec("dense", (2,), kernel=np.eye(2)))
    compiled = to_ttfs(ir, 16).compile()
    assert compiled.run(np.eye(1, 36) / 2 + np.eye(1, 36, 1) / 2).layer_counts["hid"].tolist() \
        == [[1, 1]]
    with pytest.raises(SingleSpikeError, match="layer hid: a neuron spiked 2 times"):
        compiled.run(np.ones((1, 36)))


@pytest.mark.parametrize("pool", ["conv", "max conv"])
def test_lava_equals_reference(pool):
    """Lava's fixed-point simulator gives the reference's spike trains in every layer
    (partners, relays and OR neurons included) and the readout's voltages, bit for bit."""
    ir, x = _chain(3, pool=pool)
    compiled = to_ttfs(ir, 8).compile()
    names = compiled.ttfs.ir.order()[1:]
    lava = compiled.run(x[:2], backend="lava", record=names)
    ref = compiled.run(x[:2], record=names)
    np.testing.assert_array_equal(lava.voltages, ref.voltages)
    for name in names:
        np.testing.assert_array_equal(lava.trains[name], ref.trains[name], err_msg=name)
    assert sum(ref.trains[n].sum() for n in names) > 20


def test_structure_and_costs():
    """Partners only for sources of spiking layers, clocks as input channels that
    spike once each, hidden neurons with a current that never decays."""
    ir, x = _chain(4, pool="conv")
    net = to_ttfs(ir, 8)
    assert [n for n in net.ir.order() if n.endswith("_partner")] == [
        "conv_partner", "pool_partner", "conv2_partner"]
    spikes = net.encode(x[:2])
    n_pix = 36
    assert (spikes[:, :, 2 * n_pix:].sum(axis=1) == 1).all()
    assert (spikes[:, :, :2 * n_pix].sum(axis=1) <= 1).all()
    for name in ("conv", "pool", "conv2", "hid", "out"):
        assert net.ir.layer(name).neuron.decay_u == formats.DU_NO_DECAY
    assert net.num_steps == 5 * (8 + 1)


def test_refusals():
    ir, x = _chain(5)
    for T in (2, T_MAX + 1):
        with pytest.raises(NetworkError, match=f"steps_per_window={T} must be an integer in 3.."):
            to_ttfs(ir, T)
    for T in (3, T_MAX):
        net = to_ttfs(ir, T)
        assert max(net.ir.layer(n).neuron.vth_mant for n in net.spiking) <= \
            formats.THRESHOLD_MANT_MAX
    with pytest.raises(NetworkError, match="outside"):
        to_ttfs(ir, 8).encode(x * 1.5)
    ir.add_layer(LayerSpec("side", "dense", (3,)))
    ir.connect("hid", "side", ConnectionSpec("dense", (8,), kernel=np.ones((8, 3))))
    with pytest.raises(NetworkError, match="only chains"):
        to_ttfs(ir, 8)


@pytest.mark.parametrize("decay_u,ok", [
    (formats.DU_NO_DECAY, True), (formats.DU_NO_DECAY - 1, False),
    (formats.DECAY_UNITY - 1, True), (formats.DECAY_UNITY, False)])
def test_decay_u_limits(decay_u, ok):
    """decay_u = -1 (Loihi 1's decayU = 0: no current decay) is the lowest value."""
    ir = NetworkIR()
    ir.add_layer(LayerSpec("in", INPUT, (2,)))
    ir.add_layer(LayerSpec("out", "dense", (2,), NeuronSpec(decay_u=decay_u)))
    ir.connect("in", "out", ConnectionSpec("dense", (2,), kernel=np.eye(2)))
    if ok:
        assert quantize_network(ir)[0].layers["out"].du == decay_u
    else:
        with pytest.raises(QuantizationError, match="decay_u"):
            quantize_network(ir)


@pytest.mark.parametrize("pooling", ["AveragePooling2D", "MaxPooling2D"])
def test_convert_code_ttfs(pooling):
    """convert(..., code='ttfs') of a Keras ReLU chain (random weights,
    BatchNormalization folded, average or max pooling): the TTFS class equals
    the ANN's on at least 29 of 30 inputs; code='rate' refuses max pooling."""
    import keras

    from nxcompile import convert
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(6, 3, use_bias=False), keras.layers.BatchNormalization(),
        keras.layers.ReLU(), getattr(keras.layers, pooling)(2, name="pool"),
        keras.layers.Flatten(), keras.layers.Dense(4, activation="softmax")])
    rng = np.random.default_rng(0)
    bn = model.layers[1]
    bn.set_weights([rng.uniform(0.5, 1.5, 6), rng.normal(0, 0.2, 6), rng.normal(0, 0.2, 6),
                    rng.uniform(0.5, 1.5, 6)])
    x = rng.uniform(0, 1, (130, 8, 8, 1)).astype(np.float32)
    net = convert(model, x[:100], percentile=100, code="ttfs", steps_per_window=32)
    compiled = net.compile()
    result = compiled.run(x[100:])
    ann = model.predict(x[100:], verbose=0).argmax(axis=1)
    assert np.sum(result.predictions == ann) >= 29
    with pytest.raises(NetworkError, match="code='temporal' not one of"):
        convert(model, x[:10], code="temporal")
    if pooling == "MaxPooling2D":
        with pytest.raises(NetworkError, match="'pool' .* not supported by convert with code='rate'"):
            convert(model, x[:10])


def test_rate_code_refuses_max_pooling():
    """An IR with max pooling compiles only through nxcompile.ttfs."""
    from nxcompile.compiler import compile_ir
    ir, _ = _chain(5, pool="max")
    with pytest.raises(NetworkError, match="layer pool: a max_pool2d connection .* no rate-code"):
        compile_ir(ir)


def test_saved_ttfs_model_runs_the_same(tmp_path):
    from nxcompile import load
    ir, x = _chain(7, pool="conv")
    net = to_ttfs(ir, 8)
    compiled = net.compile()
    loaded = load(compiled.compiled.save(tmp_path / "ttfs.nxc"))
    spikes = net.encode(x)
    a, b = compiled.compiled.run(spikes, net.num_steps), loaded.run(spikes, net.num_steps)
    np.testing.assert_array_equal(a.voltages, b.voltages)
    assert loaded.ir.connection(CLOCK, "conv").own_exponent
    assert [c.weight_exp for c in loaded.network.incoming("conv") if c.source == CLOCK] == [6]
