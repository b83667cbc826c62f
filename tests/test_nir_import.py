"""nxcompile.from_nir: NIR graphs built with the nir package (and read back from
its HDF5 files) imported, compiled and run on the reference simulator, against
an independent float simulation of the NIR equations (forward Euler, one step
per connection between neuron nodes, module doc of nxcompile.nir_import); every
refusal names the node and its type.  No TensorFlow."""
import re
from pathlib import Path

import nir
import numpy as np
import pytest

from hwmodel.errors import NetworkError
from mapper.quantize import QuantizationError
from nxcompile.compiled import load
from nxcompile.compiler import compile_ir
from nxcompile.nir_import import from_nir

DT = 1e-3
NEURONS = (nir.IF, nir.LIF, nir.CubaLIF)


# -- the independent float simulation ------------------------------------------------
def _conv(x, w, stride, pad, groups):
    """PyTorch Conv2d (cross-correlation) of one (C, H, W) sample, by loops."""
    c_in, h, wd = x.shape
    xp = np.zeros((c_in, h + 2 * pad[0], wd + 2 * pad[1]))
    xp[:, pad[0]:pad[0] + h, pad[1]:pad[1] + wd] = x
    c_out, cpg, kh, kw = w.shape
    ho, wo = (xp.shape[1] - kh) // stride[0] + 1, (xp.shape[2] - kw) // stride[1] + 1
    out = np.zeros((c_out, ho, wo))
    per_group = c_out // groups
    for o in range(c_out):
        g = o // per_group
        for i in range(ho):
            for j in range(wo):
                patch = xp[g * cpg:(g + 1) * cpg, i * stride[0]:i * stride[0] + kh,
                           j * stride[1]:j * stride[1] + kw]
                out[o, i, j] = np.sum(patch * w[o])
    return out


def _same(node):
    return isinstance(node.padding, str) and node.padding == "same"


def _op(node, x):
    if isinstance(node, nir.Affine):
        return node.weight @ x + node.bias
    if isinstance(node, nir.Linear):
        return node.weight @ x
    if isinstance(node, nir.Flatten):
        return x.ravel()
    if isinstance(node, nir.Scale):
        return x * node.scale
    if isinstance(node, nir.Conv2d):
        k = node.weight.shape[2:]
        pad = ((k[0] - 1) // 2, (k[1] - 1) // 2) if _same(node) else tuple(node.padding)
        return (_conv(x, node.weight, tuple(node.stride), pad, node.groups)
                + node.bias[:, None, None])
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        c, (kh, kw) = x.shape[0], node.kernel_size
        w = np.ones((c, 1, kh, kw)) / (kh * kw if isinstance(node, nir.AvgPool2d) else 1)
        return _conv(x, w, tuple(node.stride), tuple(node.padding), c)
    raise AssertionError(type(node))


def float_run(graph, spikes, dt=DT, reset="hard"):
    """Spike trains {neuron node: (steps, *NIR shape)} of one sample of input spikes
    (steps, *NIR input shape): each neuron node sees its inputs' spikes of the
    previous step, through the nodes between, in float64."""
    preds = {n: [a for a, b in graph.edges if b == n] for n in graph.nodes}
    order, done = [], set()
    while len(order) < len(graph.nodes):
        for n in graph.nodes:
            if n not in done and all(p in done for p in preds[n]):
                order.append(n)
                done.add(n)
    neurons = [n for n in order if isinstance(graph.nodes[n], NEURONS)]
    (inp,) = [n for n in order if isinstance(graph.nodes[n], nir.Input)]
    prev = {n: np.zeros(graph.nodes[n].v_threshold.shape) for n in neurons}
    prev[inp] = np.zeros(spikes.shape[1:])
    state = {n: {"v": 0.0, "i": 0.0} for n in neurons}
    trains = {n: [] for n in neurons}
    for t in range(len(spikes)):
        val = {}
        for n in order:
            node = graph.nodes[n]
            if n in prev:
                val[n] = prev[n]
                continue
            if not isinstance(node, nir.Output):
                val[n] = _op(node, sum(val[p] for p in preds[n]))
        new = {inp: spikes[t].astype(np.float64)}
        for n in neurons:
            node, s = graph.nodes[n], state[n]
            current = sum(val[p] for p in preds[n])
            if isinstance(node, nir.IF):
                v = s["v"] + dt * node.r * current
            elif isinstance(node, nir.LIF):
                b = dt / node.tau
                v = (1 - b) * s["v"] + b * (node.v_leak + node.r * current)
            else:
                a, b = dt / node.tau_syn, dt / node.tau_mem
                s["i"] = (1 - a) * s["i"] + a * node.w_in * current
                v = (1 - b) * s["v"] + b * (node.v_leak + node.r * s["i"])
            z = v > node.v_threshold
            v = np.where(z, v - node.v_threshold if reset == "soft" else node.v_reset, v)
            s["v"] = v
            new[n] = z.astype(np.float64) * np.ones(node.v_threshold.shape)
            trains[n].append(z * np.ones(node.v_threshold.shape, bool))
        prev.update(new)
    return {n: np.array(v) for n, v in trains.items()}


def _to_hwc(x):
    """(steps, C, H, W) -> (steps, H, W, C); 1-D unchanged."""
    return x if x.ndim == 2 else x.transpose(0, 2, 3, 1)


def compare(source, spikes, dt=DT, reset="hard", expect_exact=True, graph=None):
    """Import (from a graph or a file; `graph` is what the float simulation runs,
    default `source`), compile and run on the reference simulator; assert every
    neuron node's spike train equals the float simulation's; return the compiled
    model and the trains."""
    graph = source if graph is None else graph
    ir = from_nir(source, dt=dt, reset=reset)
    compiled = compile_ir(ir)
    if expect_exact:
        for name, q in compiled.quantization.items():
            assert q.weight_error == 0 and q.bias_error == 0, (name, q)
    want = float_run(graph, spikes, dt, reset)
    res = compiled.run(_to_hwc(spikes)[None], len(spikes), record=list(want))
    for name, train in want.items():
        got = res.trains[name][0]
        got = got if got.ndim == 2 else got.transpose(0, 3, 1, 2)
        np.testing.assert_array_equal(got, train, err_msg=name)
    return compiled, want


def _decays(report):
    """The report's decay section."""
    return report.split("decays (")[1].split("compile time")[0]


def _ints(rng, *shape, top=3):
    """Integer weights in -top..top with one +-127 so that the weight scale maps them
    exactly to Loihi's even 8-bit grid (sigma a power of 2 times 2)."""
    w = rng.integers(-top, top + 1, shape).astype(np.float64)
    w.flat[0] = 127
    return w


def _spikes(rng, steps, *shape, p=0.3):
    return (rng.random((steps, *shape)) < p).astype(np.float64)


def _lif(n_shape, tau_steps=8, theta=40.0, v_leak=0.0, r=None):
    shape = tuple(np.atleast_1d(n_shape))
    tau = np.full(shape, tau_steps * DT)
    return nir.LIF(tau=tau, r=np.full(shape, tau_steps) if r is None else r,
                   v_leak=np.full(shape, v_leak), v_threshold=np.full(shape, theta))


def _if(shape, theta=60.0, r=1.0 / DT):
    shape = tuple(np.atleast_1d(shape))
    return nir.IF(r=np.full(shape, r), v_threshold=np.full(shape, theta))


# -- tests ----------------------------------------------------------------------
def _chain(rng):
    """Input -> Affine -> IF -> Linear -> LIF -> Linear -> CubaLIF, integer weights
    and thresholds, dt/tau of 1/8 and 1/4."""
    return nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([12])}),
        "fc1": nir.Affine(weight=_ints(rng, 16, 12), bias=rng.integers(-2, 3, 16) * 1.0),
        "if1": _if(16),
        "fc2": nir.Linear(weight=_ints(rng, 10, 16)),
        "lif2": _lif(10, tau_steps=8, theta=50.0),
        "fc3": nir.Linear(weight=_ints(rng, 4, 10)),
        "cuba": nir.CubaLIF(tau_syn=np.full(4, 4 * DT), tau_mem=np.full(4, 8 * DT),
                            r=np.full(4, 8.0), v_leak=np.zeros(4), v_threshold=np.full(4, 30.0),
                            w_in=np.full(4, 4.0)),
        "out": nir.Output(output_type={"output": np.array([4])}),
    }, edges=[("in", "fc1"), ("fc1", "if1"), ("if1", "fc2"), ("fc2", "lif2"), ("lif2", "fc3"),
              ("fc3", "cuba"), ("cuba", "out")])


def test_chain_matches_the_float_simulation_and_survives_hdf5(tmp_path):
    """The chain maps exactly (weights, thresholds and decays): its spike trains
    equal the float simulation's, from the graph read back from its HDF5 file;
    decays and the report's decay section, also after save and load."""
    rng = np.random.default_rng(1)
    g = _chain(rng)
    path = tmp_path / "chain.nir"
    nir.write(path, g)
    spikes = _spikes(rng, 60, 12)
    compiled, want = compare(nir.read(path), spikes)
    assert sum(t.sum() for t in want.values()) > 50        # the network is active
    assert all(t.any() for t in want.values())
    nrn = {n: compiled.ir.layer(n).neuron for n in ("if1", "lif2", "cuba")}
    assert (nrn["if1"].decay_u, nrn["if1"].decay_v) == (4095, 0)
    assert (nrn["lif2"].decay_u, nrn["lif2"].decay_v, nrn["lif2"].tau_v) == (4095, 512, 8)
    assert (nrn["cuba"].decay_u, nrn["cuba"].decay_v, nrn["cuba"].tau_u) == (1023, 512, 4)
    report = compiled.report()
    assert "decays (time constants" in report
    assert "+0.000%" in report
    assert compiled.num_cores == 4       # 3 neuron layers and the spike input's core
    loaded = load(compiled.save(tmp_path / "chain.nxc"))
    assert loaded.ir.layer("cuba").neuron.tau_u == 4
    assert _decays(loaded.report()) == _decays(report)


def test_lava_equals_the_reference_bit_for_bit():
    """The chain (IF, LIF, CubaLIF, a bias) on Lava's fixed-point simulator: every
    layer's spike trains and the output voltages equal the reference simulator's."""
    rng = np.random.default_rng(4)
    compiled = compile_ir(from_nir(_chain(rng), dt=DT))
    x = _spikes(rng, 25, 12)[None]
    layers = ["if1", "lif2", "cuba"]
    ref = compiled.run(x, 25, record=layers)
    got = compiled.run(x, 25, backend="lava", record=layers)
    assert all(ref.trains[n].any() for n in layers)
    for name in layers:
        np.testing.assert_array_equal(got.trains[name], ref.trains[name], err_msg=name)
    np.testing.assert_array_equal(got.spike_counts, ref.spike_counts)
    np.testing.assert_array_equal(got.voltages, ref.voltages)


def test_rounded_decay_is_reported_with_its_error():
    """tau = 3 steps: decay 4096/3 = 1365.33 rounds to 1365, a time constant of
    3.00073 steps, +0.024%."""
    g = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((2, 3))), _lif(2, tau_steps=3))
    compiled = compile_ir(from_nir(g, dt=DT))
    nrn = compiled.ir.layer("lif").neuron
    assert nrn.decay_v == 1365 and nrn.tau_v == pytest.approx(3)
    line = next(ln for ln in _decays(compiled.report()).splitlines() if ln.startswith("lif "))
    assert "1365" in line and "+0.024%" in line and "3.001" in line


def test_conv_pool_flatten_affine_matches_the_float_simulation(tmp_path):
    """Conv2d (padding 1, stride 1) -> IF -> SumPool2d -> IF -> Conv2d (stride 2,
    depthwise) -> LIF -> Flatten -> Affine -> IF, (C, H, W) inputs transposed to
    HWC; Flatten's (C, H, W) order reaches the dense kernel."""
    rng = np.random.default_rng(2)
    c1 = nir.Conv2d(input_shape=(8, 8), weight=_ints(rng, 4, 2, 3, 3), stride=1, padding=1,
                    dilation=1, groups=1, bias=np.array([1.0, 0, -1, 2]))
    pool = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                         padding=np.array([0, 0]))
    dw = nir.Conv2d(input_shape=(4, 4), weight=_ints(rng, 8, 1, 2, 2), stride=2, padding=0,
                    dilation=1, groups=4, bias=np.zeros(8))
    fc = nir.Affine(weight=_ints(rng, 5, 32), bias=np.zeros(5))
    g = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([2, 8, 8])}),
        "c1": c1, "if1": _if((4, 8, 8), theta=150.0), "pool": pool,
        "if2": _if((4, 4, 4), theta=0.5), "dw": dw, "lif3": _lif((8, 2, 2), 4, theta=100.0),
        "flat": nir.Flatten(input_type={"input": np.array([8, 2, 2])}, start_dim=0),
        "fc": fc, "if4": _if(5, theta=100.0),
        "out": nir.Output(output_type={"output": np.array([5])}),
    }, edges=[("in", "c1"), ("c1", "if1"), ("if1", "pool"), ("pool", "if2"), ("if2", "dw"),
              ("dw", "lif3"), ("lif3", "flat"), ("flat", "fc"), ("fc", "if4"), ("if4", "out")],
        type_check=False)       # nir 1.0.8 infers a grouped Conv2d's input as C_in / groups
    path = tmp_path / "cnn.nir"
    nir.write(path, g)
    compiled, want = compare(path, _spikes(rng, 40, 2, 8, 8),
                             graph=nir.read(path, type_check=False))
    assert all(t.any() for t in want.values()), {n: int(t.sum()) for n, t in want.items()}
    kinds = {t: compiled.ir.connection(s, t).kind for s, t in compiled.ir.graph.edges}
    assert kinds == {"if1": "conv2d", "if2": "depthwise_conv2d", "lif3": "depthwise_conv2d",
                     "if4": "dense"}


def test_residual_graph_sums_where_edges_meet():
    """if0 feeds lif1 through fc1 and, through a Scale, sum directly; lif1 feeds sum
    through fc2: two edges meet at sum and add.  Thresholds that vary per neuron
    (powers of 2) are folded exactly into the weights; reset by subtraction.  (The
    merge layer does not leak: a decay's truncation, under one voltage unit per
    step, can flip a spike where the voltage is that close to the threshold.)"""
    rng = np.random.default_rng(3)
    n = 6
    g = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([n])}),
        "fc0": nir.Linear(weight=_ints(rng, n, n)), "if0": _if(n, theta=60.0),
        "fc1": nir.Linear(weight=_ints(rng, n, n)), "lif1": _lif(n, tau_steps=4, theta=50.0),
        "fc2": nir.Linear(weight=_ints(rng, n, n)),
        "skip": nir.Scale(scale=np.array([2.0, 1, 1, 2, 1, 4])),
        "sum": nir.IF(r=np.full(n, 1 / DT), v_threshold=np.array([40.0, 20, 40, 10, 40, 20])),
        "out": nir.Output(output_type={"output": np.array([n])}),
    }, edges=[("in", "fc0"), ("fc0", "if0"), ("if0", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"),
              ("fc2", "sum"), ("if0", "skip"), ("skip", "sum"), ("sum", "out")])
    compiled, want = compare(g, _spikes(rng, 80, n), reset="soft")
    assert sorted(compiled.ir.predecessors("sum")) == ["if0", "lif1"]
    assert all(t.any() for t in want.values()), {k: int(t.sum()) for k, t in want.items()}
    nrn = compiled.ir.layer("sum").neuron
    assert (nrn.threshold, nrn.reset) == (40.0, "soft")
    skip = compiled.ir.connection("if0", "sum").kernel     # Scale x threshold fold, diagonal
    np.testing.assert_array_equal(np.diag(skip), [2, 2, 1, 8, 1, 8])


def test_spatial_skip_and_average_pooling_match_the_float_simulation():
    """A (C, H, W) identity edge (the skip a -> b) meets a 'same' Conv2d from the same
    layer at b: one connection, the identity added at the kernel's centre;
    AvgPool2d (padding 1, padded zeros count) feeds c."""
    rng = np.random.default_rng(5)
    conv = (lambda c_in, c_out: nir.Conv2d(
        input_shape=(6, 6), weight=_ints(rng, c_out, c_in, 3, 3), stride=1, padding="same",
        dilation=1, groups=1, bias=np.zeros(c_out)))
    g = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([1, 6, 6])}),
        "ca": conv(1, 2), "a": _if((2, 6, 6), theta=100.0), "cb": conv(2, 2),
        "b": _if((2, 6, 6), theta=100.0),
        "pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([1, 1])),
        "c": _if((2, 4, 4), theta=0.5),
        "out": nir.Output(output_type={"output": np.array([2, 4, 4])}),
    }, edges=[("in", "ca"), ("ca", "a"), ("a", "cb"), ("cb", "b"), ("a", "b"), ("b", "pool"),
              ("pool", "c"), ("c", "out")], type_check=False)
    compiled, want = compare(g, _spikes(rng, 40, 1, 6, 6, p=0.5))
    assert all(t.any() for t in want.values()), {k: int(t.sum()) for k, t in want.items()}
    merged = compiled.ir.connection("a", "b")      # the skip at the centre of cb's kernel
    assert merged.kind == "conv2d" and merged.kernel.shape == (3, 3, 2, 2)
    np.testing.assert_array_equal(merged.kernel[1, 1] - g.nodes["cb"].weight[:, :, 1, 1].T,
                                  np.eye(2))


def test_paths_from_one_layer_join_into_one_connection_or_are_refused():
    """Dense: if0 -> Linear -> b and if0 -> b add into one kernel (W.T + I).  A
    2x2 window joins a 3x3 one of the same stride at the taps that read its
    pixels; windows of different strides (2x2 stride 2, 1x1 stride 3 padding 1)
    are refused naming the layer and the source."""
    w = np.arange(9.0).reshape(3, 3)
    g = nir.NIRGraph(nodes={
        "in": nir.Input(input_type={"input": np.array([3])}),
        "fc0": nir.Linear(weight=np.eye(3)), "if0": _if(3), "fc": nir.Linear(weight=w),
        "b": _if(3), "out": nir.Output(output_type={"output": np.array([3])}),
    }, edges=[("in", "fc0"), ("fc0", "if0"), ("if0", "fc"), ("fc", "b"), ("if0", "b"),
              ("b", "out")])
    np.testing.assert_array_equal(from_nir(g, dt=DT).connection("if0", "b").kernel,
                                  w.T + np.eye(3))

    def conv(k, pad, stride=2):
        return nir.Conv2d(input_shape=(6, 6), weight=np.ones((1, 1, k, k)), stride=stride,
                          padding=pad, dilation=1, groups=1, bias=np.zeros(1))

    def graph(other):
        return nir.NIRGraph(nodes={
            "in": nir.Input(input_type={"input": np.array([1, 6, 6])}),
            "c2": conv(2, 0), "c3": other, "b": _if((1, 3, 3)),
            "out": nir.Output(output_type={"output": np.array([1, 3, 3])}),
        }, edges=[("in", "c2"), ("in", "c3"), ("c2", "b"), ("c3", "b"), ("b", "out")],
            type_check=False)
    # 3x3 padding 1 reads rows 2o-1..2o+1, the 2x2 rows 2o..2o+1: its taps 1..2
    kernel = from_nir(graph(conv(3, 1)), dt=DT).connection("in", "b").kernel[:, :, 0, 0]
    np.testing.assert_array_equal(kernel / kernel[0, 0], [[1, 1, 1], [1, 2, 2], [1, 2, 2]])
    g = graph(conv(1, 1, stride=3))
    with pytest.raises(NetworkError, match=r"node 'b' \(IF\) receives node 'in' over paths "
                                           "whose connections cannot be added"):
        from_nir(g, dt=DT)


def test_leak_and_r_fold_into_bias_and_weights():
    """v_leak becomes the voltage bias dt/tau * v_leak and r the weight gain dt/tau * r:
    a LIF with r = 2 tau/dt and v_leak = 8 sees weights doubled and a bias of 1."""
    w = np.array([[1.0, -2.0], [3.0, 0.5]])
    lif = _lif(2, tau_steps=8, theta=5.0, v_leak=8.0, r=np.full(2, 16.0))
    ir = from_nir(nir.NIRGraph.from_list(nir.Linear(weight=w), lif), dt=DT)
    np.testing.assert_allclose(ir.connection("input", "lif").kernel, 2 * w.T)
    np.testing.assert_allclose(ir.layer("lif").bias, [1.0, 1.0])


def test_scales_fold_into_kernels_and_biases():
    """A Scale after an Affine scales its rows and its bias; a Scale before a Conv2d
    scales the kernel's input channels, and one that varies within a channel is
    refused naming the node."""
    w, b = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1.0, -1.0])
    ir = from_nir(nir.NIRGraph.from_list(nir.Affine(weight=w, bias=b),
                                         nir.Scale(scale=np.array([2.0, 3.0])), _if(2)), dt=DT)
    np.testing.assert_array_equal(ir.connection("input", "if").kernel, (w * [[2], [3]]).T)
    np.testing.assert_array_equal(ir.layer("if").bias, [2.0, -3.0])

    def conv_graph(scale):
        g = nir.NIRGraph.from_list(
            nir.Scale(scale=scale),
            nir.Conv2d(input_shape=(3, 3), weight=np.ones((1, 2, 3, 3)), stride=1, padding=0,
                       dilation=1, groups=1, bias=np.zeros(1)), _if((1, 1, 1)), type_check=False)
        g.nodes["input"] = nir.Input(input_type={"input": np.array([2, 3, 3])})
        return g
    scale = np.stack([np.full((3, 3), 2.0), np.full((3, 3), 5.0)])
    kernel = from_nir(conv_graph(scale), dt=DT).connection("input", "if").kernel
    np.testing.assert_array_equal(kernel[:, :, :, 0], np.broadcast_to([2.0, 5.0], (3, 3, 2)))
    scale[1, 0, 0] = 4.0
    with pytest.raises(NetworkError, match=r"node 'if' \(IF\): the scale of node 'scale' "
                                           r"before node 'conv2d' varies within channel 1 "
                                           r"\(4..5\)"):
        from_nir(conv_graph(scale), dt=DT)


def _graph(*nodes):
    return nir.NIRGraph.from_list(*nodes, type_check=False)


@pytest.mark.parametrize("node, kind, words", [
    (nir.LI(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2)), "LI", "non-spiking"),
    (nir.Delay(delay=np.ones(2)), "Delay", "delays"),
    (nir.Threshold(threshold=np.ones(2)), "Threshold", "threshold"),
    (nir.I(r=np.ones(2)), "I", "non-spiking"),
])
def test_nodes_without_loihi_equivalent_are_refused_by_name_and_type(node, kind, words):
    g = _graph(nir.Linear(weight=np.ones((2, 2))), node, _if(2))
    name = type(node).__name__.lower()
    with pytest.raises(NetworkError, match=f"node '{name}' \\({kind}\\).*{words}"):
        from_nir(g, dt=DT)


def test_conv1d_is_refused():
    g = _graph(nir.Conv1d(input_shape=4, weight=np.ones((1, 1, 2)), stride=1, padding=0,
                          dilation=1, groups=1, bias=np.zeros(1)), _if((1, 3)))
    g.nodes["input"] = nir.Input(input_type={"input": np.array([4])})
    with pytest.raises(NetworkError, match=r"node 'conv1d' \(Conv1d\)"):
        from_nir(g, dt=DT)


@pytest.mark.parametrize("change, error, match", [
    (dict(v_reset=np.full(2, 0.5)), NetworkError, r"node 'lif' \(LIF\): v_reset=0.5.*only "
                                                  "v_reset = 0"),
    (dict(tau=np.array([8 * DT, 4 * DT])), NetworkError, r"node 'lif' \(LIF\): tau varies "
                                                          r"within the node \(0.004..0.008\)"),
    (dict(tau=np.full(2, DT)), QuantizationError, r"node 'lif' \(LIF\): tau=0.001 with "
                                                   r"dt=0.001 needs voltage decay .* = 4096, "
                                                   "limit 4095"),
    (dict(v_threshold=np.array([1.0, -1.0])), NetworkError, r"node 'lif' \(LIF\): "
                                                              "v_threshold=-1; must be > 0"),
])
def test_neuron_parameters_without_a_mapping_are_refused(change, error, match):
    lif = _lif(2)
    for k, v in change.items():
        setattr(lif, k, v)
    with pytest.raises(error, match=match):
        from_nir(_graph(nir.Linear(weight=np.ones((2, 2))), lif), dt=DT)


def test_current_decay_out_of_range_and_bias_into_a_decaying_current_are_refused():
    def cuba(tau_syn):
        return nir.CubaLIF(tau_syn=np.full(2, tau_syn), tau_mem=np.full(2, 8 * DT),
                           r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2))
    with pytest.raises(QuantizationError, match=r"node 'cubalif' \(CubaLIF\): tau_syn=10 .*"
                                                "current decay"):
        from_nir(_graph(nir.Linear(weight=np.ones((2, 2))), cuba(10.0)), dt=DT)
    with pytest.raises(NetworkError, match=r"node 'cubalif' \(CubaLIF\): bias of node 'affine'"):
        from_nir(_graph(nir.Affine(weight=np.ones((2, 2)), bias=np.ones(2)), cuba(4 * DT)),
                 dt=DT)


def test_graph_structure_errors_name_the_node():
    two_ops = _graph(nir.Linear(weight=np.ones((2, 2))), nir.Linear(weight=np.ones((2, 2))),
                     _if(2))
    with pytest.raises(NetworkError, match=r"node 'linear_1' \(Linear\).*after node 'linear'"):
        from_nir(two_ops, dt=DT)
    dilated = _graph(nir.Conv2d(input_shape=(4, 4), weight=np.ones((1, 1, 2, 2)), stride=1,
                                padding=0, dilation=2, groups=1, bias=np.zeros(1)),
                     _if((1, 2, 2)))
    dilated.nodes["input"] = nir.Input(input_type={"input": np.array([1, 4, 4])})
    with pytest.raises(NetworkError, match=r"node 'conv2d' \(Conv2d\): dilation=\(2, 2\)"):
        from_nir(dilated, dt=DT)
    no_neuron_out = nir.NIRGraph.from_list(nir.Linear(weight=np.ones((2, 2))))
    with pytest.raises(NetworkError, match=r"node 'output' \(Output\) must be fed by one "
                                           "spiking neuron node"):
        from_nir(no_neuron_out, dt=DT)
    with pytest.raises(NetworkError, match="dt=0 must be"):
        from_nir(no_neuron_out, dt=0)


def test_a_file_that_is_not_nir_is_refused(tmp_path):
    bad = tmp_path / "not.nir"
    bad.write_text("hello")
    with pytest.raises(NetworkError, match=f"{bad}: not a readable NIR file"):
        from_nir(bad, dt=DT)
    with pytest.raises(NetworkError, match="not a readable NIR file"):
        from_nir(tmp_path / "missing.nir", dt=DT)


def test_readme_nir_block_runs(tmp_path, monkeypatch, capsys):
    """The README's NIR example runs as written (in a scratch directory)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "from_nir" in b)
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["res"].spike_counts.shape == (2, 4)
    assert scope["res"].layer_counts["lif"].any()
    assert "decays (" in capsys.readouterr().out
