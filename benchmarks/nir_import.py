"""NIR import benchmark: three networks built with the nir package (random
weights are enough to partition), written to NIR HDF5 files, read back,
imported with nxcompile.from_nir (dt = 1 ms) and compiled for Loihi 1 chips
(board nahuku32, as benchmarks/partition.py), printed as one table.

Columns: NIR nodes, neurons, cores, the lower bound on cores, the largest
relative weight quantization error of any layer, the largest decay error
(effective time constant against the NIR one) and the seconds of from_nir +
compile_ir.  The first two networks are those of benchmarks/partition.py
(there built with Nx layers: 8 and 10 cores), here with spike input.

Run:  PYTHONPATH=. .venv/bin/python benchmarks/nir_import.py
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import nir
import numpy as np

from hwmodel import formats
from nxcompile.compiler import compile_ir
from nxcompile.nir_import import from_nir

BOARD = "nahuku32"
DT = 1e-3
RNG = np.random.default_rng(0)


def _lif(shape, tau_steps=10.0):
    """snnTorch's export convention: r = tau / dt, so the input gain is 1."""
    full = (lambda v: np.full(shape, float(v)))
    return nir.LIF(tau=full(tau_steps * DT), r=full(tau_steps), v_leak=full(0),
                   v_threshold=full(1))


def _if(shape):
    return nir.IF(r=np.full(shape, 1 / DT), v_threshold=np.ones(shape))


def _conv(size, c_in, c_out, k, stride=1, padding=0):
    """A Conv2d on a size x size input (nir.write needs the input shape)."""
    return nir.Conv2d(input_shape=(size, size), weight=RNG.normal(0, 0.3, (c_out, c_in, k, k)),
                      stride=stride, padding=padding, dilation=1, groups=1, bias=np.zeros(c_out))


def _graph(nodes: dict, edges: list, input_shape, output_shape=(10,)) -> nir.NIRGraph:
    nodes = {"input": nir.Input(input_type={"input": np.array(input_shape)}), **nodes,
             "output": nir.Output(output_type={"output": np.array(output_shape)})}
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def fc_nmnist() -> nir.NIRGraph:
    """FC 1156-512-10, LIF neurons (tau 10 ms)."""
    return nir.NIRGraph.from_list(
        nir.Input(input_type={"input": np.array([1156])}),
        nir.Affine(weight=RNG.normal(0, 0.1, (512, 1156)), bias=np.zeros(512)), _lif(512),
        nir.Affine(weight=RNG.normal(0, 0.1, (10, 512)), bias=np.zeros(10)), _lif(10))


def mnist_cnn() -> nir.NIRGraph:
    """28x28x1 -> Conv16 5x5 s2 -> Conv32 3x3 -> Conv64 3x3 s2 -> Conv10 4x4, IF neurons."""
    layers = [(28, 1, 16, 5, 2, 12), (12, 16, 32, 3, 1, 10), (10, 32, 64, 3, 2, 4),
              (4, 64, 10, 4, 1, 1)]
    nodes, edges, prev = {}, [], "input"
    for i, (size, c_in, c_out, k, s, out) in enumerate(layers, 1):
        nodes[f"conv{i}"] = _conv(size, c_in, c_out, k, s)
        nodes[f"if{i}"] = _if((c_out, out, out))
        edges += [(prev, f"conv{i}"), (f"conv{i}", f"if{i}")]
        prev = f"if{i}"
    return _graph(nodes, edges + [(prev, "output")], [1, 28, 28], (10, 1, 1))


def residual_cnn() -> nir.NIRGraph:
    """32x32x3 -> Conv16 3x3 s2 -> two residual blocks (Conv16 3x3 'same' -> LIF ->
    Conv16 3x3 'same', + the block's input) -> AvgPool 2 -> Flatten -> Affine 10."""
    nodes = {"conv0": _conv(32, 3, 16, 3, 2, 1), "lif0": _lif((16, 16, 16))}
    edges, prev = [("input", "conv0"), ("conv0", "lif0")], "lif0"
    for b in (1, 2):
        nodes.update({f"b{b}a": _conv(16, 16, 16, 3, 1, "same"), f"b{b}lif": _lif((16, 16, 16)),
                      f"b{b}b": _conv(16, 16, 16, 3, 1, "same"),
                      f"b{b}out": _lif((16, 16, 16))})
        edges += [(prev, f"b{b}a"), (f"b{b}a", f"b{b}lif"), (f"b{b}lif", f"b{b}b"),
                  (f"b{b}b", f"b{b}out"), (prev, f"b{b}out")]      # the skip edge meets here
        prev = f"b{b}out"
    nodes.update({"pool": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                        padding=np.array([0, 0])),
                  "lif_pool": _lif((16, 8, 8)),
                  "flat": nir.Flatten(input_type={"input": np.array([16, 8, 8])}, start_dim=0),
                  "fc": nir.Affine(weight=RNG.normal(0, 0.05, (10, 1024)), bias=np.zeros(10)),
                  "lif_out": _lif(10)})
    edges += [(prev, "pool"), ("pool", "lif_pool"), ("lif_pool", "flat"), ("flat", "fc"),
              ("fc", "lif_out"), ("lif_out", "output")]
    return _graph(nodes, edges, [3, 32, 32])


NETWORKS = (("FC 1156-512-10 (N-MNIST)", fc_nmnist), ("MNIST CNN (tutorial a)", mnist_cnn),
            ("residual CNN, 2 blocks (CIFAR size)", residual_cnn))


def measure(build, folder: Path) -> dict:
    graph = build()
    path = folder / f"{build.__name__}.nir"
    nir.write(path, graph)
    t0 = time.perf_counter()
    compiled = compile_ir(from_nir(path, dt=DT), board=BOARD)
    seconds = time.perf_counter() - t0
    decay_err = 0.0
    for layer in compiled.ir.layers():
        nrn = layer.neuron
        for tau, decay in ((nrn.tau_v, nrn.decay_v), (nrn.tau_u, nrn.decay_u + 1)):
            if tau is not None:
                decay_err = max(decay_err, abs(formats.decay_time_constant(decay) / tau - 1))
    return {"nodes": len(graph.nodes), "neurons": sum(lay.n for lay in compiled.ir.layers()),
            "cores": compiled.num_cores, "bound": compiled.lower_bound_cores,
            "w err": max(q.weight_error for q in compiled.quantization.values()),
            "decay err": decay_err, "s": seconds}


def main() -> None:
    print("| network | NIR nodes | neurons | cores | lower bound | max w err | max decay err "
          "| import + compile s |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, build in NETWORKS:
            r = measure(build, Path(tmp))
            print(f"| {name} | {r['nodes']} | {r['neurons']} | {r['cores']} | {r['bound']} | "
                  f"{100 * r['w err']:.2f}% | {100 * r['decay err']:.3f}% | {r['s']:.2f} |")


if __name__ == "__main__":
    main()
