"""nxcompile <-> lava-dl netx, against the real lava.lib.dl.netx.hdf5.Network.

Needs lava-dl 0.6.0 with PyTorch, in a venv of its own (README, "netx import
and export": the recipe); run from the repository root:
    PYTHONPATH=. /tmp/netx-torch/bin/python benchmarks/netx_interop.py

netx -> nxcompile: lava-dl's tiny.net (reset every 17 steps, as its test),
mnist.net (its first 3 blocks: the default readout is refused) and PilotNet
LIF are imported with nxcompile.from_netx and run on nxcompile's reference
simulator; netx.hdf5.Network builds the same files and runs them on Lava
(fixed_pt) with the same input bias mantissas.
nxcompile -> netx: nxcompile networks (tests/test_netx.py's CNN with conv,
depthwise, average pooling and dense, and its flatten + dense net; tiny.net
imported without reset, an input block with neurons) are exported
with CompiledModel.export_netx, loaded by netx.hdf5.Network and run on Lava
with the input spikes (or bias mantissas) of nxcompile's run.
Delays: ntidigits.net both ways' first 200 steps, and a random network with
delays exported (netx builds DelayDense).
Every block's spike trains are compared bit for bit (PilotNet: its last five
blocks; reading a Lava sink moves one element per message).
"""
from __future__ import annotations

import mapper.lava_compat  # noqa: F401  (before lava)

import importlib.metadata
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from lava.lib.dl import netx
from lava.proc import io

from mapper.lava_run import running
from nxcompile.compiler import compile_ir
from nxcompile.netx_import import from_netx
from tests.test_delays import _random_net       # dense layers with delays
from tests.test_netx import _cnn, _flat_net     # the exporter's test networks

ROOT = Path(importlib.metadata.distribution("lava-dl").locate_file("tests/lava/lib/dl/netx"))


def run_real_netx(path, steps: int, record: list, *, spikes=None, bias_mant=None, **network):
    """Spike trains (steps, H, W, C) or (steps, n) of the blocks `record`
    (indices into Network.layers) of netx.hdf5.Network(path, **network) run on
    Lava; spikes: (steps, *Network.inp shape) into Network.inp; bias_mant:
    (W, H, C) mantissas of the input block."""
    net = netx.hdf5.Network(net_config=str(path), **network)
    if bias_mant is not None:
        net.in_layer.neuron.bias_mant.init = bias_mant.astype(int)
    if spikes is not None:
        source = io.source.RingBuffer(data=np.moveaxis(spikes, 0, -1).astype(int))
        source.s_out.connect(net.inp)
    sinks = []
    for i in record:
        sink = io.sink.RingBuffer(shape=net.layers[i].out.shape, buffer=steps)
        net.layers[i].out.connect(sink.a_in)
        sinks.append(sink)
    with running(net, steps):
        data = [np.moveaxis(s.data.get(), -1, 0) != 0 for s in sinks]
    return [d.swapaxes(1, 2) if d.ndim == 4 else d for d in data]      # (t, W, H, C) -> HWC


def compare(title: str, compiled, got: list, ref, names: list, seconds: float) -> bool:
    """Print one row; True when every recorded block agrees bit for bit."""
    equal, spikes = True, 0
    for name, train in zip(names, got):
        want = ref.trains[name][0]
        spikes += int(want.sum())
        equal &= train.shape == want.shape and bool(np.array_equal(train, want))
    print(f"| {title} | {compiled.num_cores} | {len(names)} ({', '.join(names)}) | "
          f"{ref.num_steps} | {spikes} | {'identical' if equal else 'DIFFERENT'} | "
          f"{seconds:.1f} |", flush=True)
    return equal


def netx_to_nxcompile() -> bool:
    ok = True
    tiny_bias = np.load(ROOT / "gts/tinynet/input_bias.npy")                    # (W, H, C)
    cases = [("tiny.net (reset 17)", ROOT / "tiny.net", dict(reset_interval=17), tiny_bias, 20,
              None),
             ("mnist.net, first 3 blocks", ROOT / "mnist.net", dict(num_layers=3),
              np.random.default_rng(0).integers(0, 141, (784,)), 16, None),
             ("pilotnet_lif (reset 17)", ROOT / "gts/pilotnet_lif/network.net",
              dict(reset_interval=17), np.load(ROOT / "gts/pilotnet_lif/image.npy"), 24, 5)]
    for title, path, options, bias, steps, last in cases:
        t0 = time.perf_counter()
        board = "nahuku32" if "pilotnet" in title else "loihi1"
        compiled = from_netx(path, board=board, **options)
        names = list(compiled.network.layers)
        names = names[-last:] if last else names
        x = bias.swapaxes(0, 1)[None] if bias.ndim == 3 else bias[None]
        ref = compiled.run(x, steps, record=names)
        blocks = list(compiled.network.layers)
        got = run_real_netx(path, steps, [blocks.index(n) for n in names], bias_mant=bias,
                            **options)
        got = [g.reshape(steps, *compiled.network.layers[n].shape) for g, n in zip(got, names)]
        ok &= compare(f"netx -> nxcompile: {title}", compiled, got, ref, names,
                      time.perf_counter() - t0)
    return ok


def nxcompile_to_netx(folder: Path) -> bool:
    ok, rng, steps = True, np.random.default_rng(7), 30
    for title, ir in (("CNN conv/depthwise/pool/dense", _cnn(rng)),
                      ("flatten + dense", _flat_net(rng))):
        t0 = time.perf_counter()
        compiled = compile_ir(ir)
        names = list(compiled.network.layers)
        x = rng.uniform(0.3, 1.0, (1, *compiled.network.layers[names[0]].shape))
        ref = compiled.run(x, steps, record=names)
        path = compiled.export_netx(folder / f"{names[-1]}_{len(names)}.net")
        spikes = ref.trains[names[0]][0]                                 # (t, H, W, C)
        flat = ir.connection(names[0], names[1]).kind == "dense"
        # netx's input port: the first synapse's, flat (C, H, W) after a flatten, else (W, H, C)
        spikes = spikes.transpose(0, 3, 1, 2).reshape(steps, -1) if flat else \
            spikes.swapaxes(1, 2)
        got = run_real_netx(path, steps, list(range(len(names) - 1)), spikes=spikes)
        got = [g.reshape(steps, *compiled.network.layers[n].shape)
               for g, n in zip(got, names[1:])]
        ok &= compare(f"nxcompile -> netx: {title}", compiled, got, ref, names[1:],
                      time.perf_counter() - t0)
    t0 = time.perf_counter()                  # an input block with neurons (bias_mant mode)
    compiled = from_netx(ROOT / "tiny.net")
    path = compiled.export_netx(folder / "tiny_again.net")
    bias = np.load(ROOT / "gts/tinynet/input_bias.npy")
    names = list(compiled.network.layers)
    ref = compiled.run(bias.swapaxes(0, 1)[None], steps, record=names)
    got = run_real_netx(path, steps, list(range(len(names))), bias_mant=bias)
    ok &= compare("nxcompile -> netx: tiny.net imported, exported", compiled, got, ref, names,
                  time.perf_counter() - t0)
    return ok


def delays(folder: Path) -> bool:
    """Per-synapse delays both ways: ntidigits.net (delays 0..62; num_layers=5
    skips its average readout, as lava-dl's test) with its input spikes, and
    tests/test_delays.py's random network with delays, exported (DelayDense)."""
    ok, steps = True, 200
    t0 = time.perf_counter()
    path = ROOT / "gts/ntidigits/ntidigits.net"
    compiled = from_netx(path, num_layers=5)
    names = list(compiled.network.layers)[1:]
    spikes = np.load(ROOT / "gts/ntidigits/input.npy")[:, :steps].T          # (t, 64)
    ref = compiled.run(spikes[None], steps, record=names)
    got = run_real_netx(path, steps, [0, 1, 2], spikes=spikes, num_layers=5)
    ok &= compare("netx -> nxcompile: ntidigits.net (delays 0..62)", compiled, got, ref, names,
                  time.perf_counter() - t0)
    t0 = time.perf_counter()
    rng = np.random.default_rng(1)
    compiled = compile_ir(_random_net(rng, False))
    x = (rng.random((1, 30, 12)) < 0.3).astype(np.int8)
    ref = compiled.run(x, 30, record=["h", "out"])
    path = compiled.export_netx(folder / "delays.net")
    got = run_real_netx(path, 30, [0, 1], spikes=x[0])
    ok &= compare("nxcompile -> netx: dense with delays 0..5", compiled, got, ref, ["h", "out"],
                  time.perf_counter() - t0)
    return ok


def main() -> int:
    print(f"lava-dl {importlib.metadata.version('lava-dl')}, "
          f"lava-nc {importlib.metadata.version('lava-nc')}, "
          f"torch {importlib.metadata.version('torch')}; Lava Loihi2SimCfg fixed_pt")
    print("| direction: network | cores | blocks compared | steps | spikes | result | s |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        ok = netx_to_nxcompile() & nxcompile_to_netx(Path(tmp)) & delays(Path(tmp))
    print("all identical" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
