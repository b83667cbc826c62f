"""Small IR builders shared by the tests (plain numpy, no Keras), and a fresh
interpreter that cannot hang a test."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nxcompile.ir import ConnectionSpec, LayerSpec, NetworkIR, NeuronSpec

ROOT = Path(__file__).resolve().parents[1]


def examples(n: int) -> int:
    """A property test's number of examples: n, times HYPOTHESIS_EXAMPLES_FACTOR
    (default 10) under the 'long' hypothesis profile (tests/conftest.py)."""
    if os.environ.get("HYPOTHESIS_PROFILE") != "long":
        return n
    return n * int(os.environ.get("HYPOTHESIS_EXAMPLES_FACTOR", "10"))


def run_python(code: str, *flags: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter with the repository importable, in a process
    group of its own (so an interrupt it sends reaches only it and its Lava
    processes).  A run past `timeout` seconds fails the test, and the whole group
    is killed."""
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, *flags, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"hung for {timeout} s; stdout {out!r}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def assert_same_run(got, ref, layers, output="out"):
    """Two RunOutputs agree bit for bit: spike trains and counts of every layer in
    `layers`, and the final voltages of the output layer."""
    for name in layers:
        np.testing.assert_array_equal(got.trains[name], ref.trains[name], err_msg=name)
        np.testing.assert_array_equal(got.counts[name], ref.counts[name], err_msg=name)
    np.testing.assert_array_equal(got.voltages[output], ref.voltages[output])


MERGES = ("concat", "add")


def connect_merged(ir, target, kind, sources, how, kernel, **geometry):
    """Connect `sources` (layers of one height and width) into `target` as Keras'
    Concatenate (how='concat': each source at its channel offset of the
    concatenated channels) or Add (how='add': sources of one shape) would: one
    ConnectionSpec of `kind` per source, all with `kernel` and `geometry`."""
    shapes = [tuple(ir.layer(s).shape) for s in sources]
    if how == "concat":
        offsets, total = np.cumsum([0] + [s[2] for s in shapes])[:-1], sum(s[2] for s in shapes)
    else:
        assert len(set(shapes)) == 1, shapes
        offsets, total = [0] * len(shapes), None
    for src, shape, offset in zip(sources, shapes, offsets):
        ir.connect(src, target, ConnectionSpec(kind, shape, kernel=kernel, channel_offset=int(offset),
                                               in_channels=total, **geometry))


def dense_chain(sizes, rng, reset="hard", weight_scale=1.0, bias_scale=0.0, input_mode="bias"):
    """input(sizes[0]) -> dense(sizes[1]) -> ... with random weights."""
    ir = NetworkIR()
    ir.add_layer(LayerSpec("inp", "input", (sizes[0],), input_mode=input_mode,
                           neuron=NeuronSpec(reset=reset)))
    prev = "inp"
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        name = f"dense{i}"
        ir.add_layer(LayerSpec(name, "dense", (n_out,), neuron=NeuronSpec(reset=reset),
                               bias=rng.normal(0, bias_scale, n_out) if bias_scale else None))
        k = rng.normal(0, weight_scale / np.sqrt(n_in), (n_in, n_out))
        ir.connect(prev, name, ConnectionSpec("dense", (n_in,), kernel=k))
        prev = name
    return ir


class NetBuilder:
    """Chains of IR layers with random kernels (numpy only), for partitioner tests.

    Each method appends a layer fed by the current one (or by `source`) and makes
    it current; names are kind + running number."""

    def __init__(self, shape, rng, reset="hard", input_mode="bias", num_weight_bits=8):
        from nxcompile.ir import output_size
        self._size = output_size
        self.ir, self.rng = NetworkIR(), rng
        self.neuron = NeuronSpec(reset=reset, num_weight_bits=num_weight_bits)
        self.ir.add_layer(LayerSpec("inp", "input", tuple(shape), neuron=self.neuron,
                                    input_mode=input_mode))
        self.current, self._count = "inp", 0

    def shape(self, name=None):
        return tuple(self.ir.layer(name or self.current).shape)

    def _add(self, kind, shape, conn, source):
        self._count += 1
        name = f"{kind}{self._count}"
        self.ir.add_layer(LayerSpec(name, kind, tuple(shape), neuron=self.neuron))
        self.ir.connect(source or self.current, name, conn)
        self.current = name
        return name

    def conv(self, filters, k, stride=1, padding="valid", source=None, dilation=1):
        h, w, c = self.shape(source)
        span = (k - 1) * dilation + 1                # the window with its gaps
        out = (self._size(h, span, stride, padding), self._size(w, span, stride, padding), filters)
        kernel = self.rng.normal(0, 1, (k, k, c, filters))
        return self._add("conv2d", out, ConnectionSpec(
            "conv2d", (h, w, c), kernel=kernel, strides=(stride, stride), padding=padding,
            dilation=(dilation, dilation)), source)

    def depthwise(self, k, stride=1, padding="same", multiplier=1, source=None):
        h, w, c = self.shape(source)
        out = (self._size(h, k, stride, padding), self._size(w, k, stride, padding), c * multiplier)
        kernel = self.rng.normal(0, 1, (k, k, c, multiplier))
        return self._add("depthwise_conv2d", out, ConnectionSpec(
            "depthwise_conv2d", (h, w, c), kernel=kernel, strides=(stride, stride), padding=padding),
            source)

    def pool(self, p, padding="valid", source=None):
        h, w, c = self.shape(source)
        out = (self._size(h, p, p, padding), self._size(w, p, p, padding), c)
        return self._add("avg_pool2d", out, ConnectionSpec(
            "avg_pool2d", (h, w, c), pool_size=(p, p), strides=(p, p), padding=padding), source)

    def merge(self, kind, sources, how, k=3, filters=2, multiplier=1, padding="same"):
        """A conv2d or depthwise_conv2d layer (stride 1) fed by `sources` through
        Concatenate or Add (connect_merged)."""
        h, w, _ = self.shape(sources[0])
        c_in = (sum(self.shape(s)[2] for s in sources) if how == "concat"
                else self.shape(sources[0])[2])
        out_hw = (self._size(h, k, 1, padding), self._size(w, k, 1, padding))
        if kind == "conv2d":
            kernel, c_out = self.rng.normal(0, 1, (k, k, c_in, filters)), filters
        else:
            kernel, c_out = self.rng.normal(0, 1, (k, k, c_in, multiplier)), c_in * multiplier
        self._count += 1
        name = f"{how}_{kind}{self._count}"
        self.ir.add_layer(LayerSpec(name, kind, (*out_hw, c_out), neuron=self.neuron))
        connect_merged(self.ir, name, kind, sources, how, kernel, padding=padding)
        self.current = name
        return name

    def upsample(self, size, source=None):
        h, w, c = self.shape(source)
        out = (h * size[0], w * size[1], c)
        return self._add("upsampling2d", out, ConnectionSpec("upsampling2d", (h, w, c),
                                                             pool_size=size), source)

    def residual(self, k=3, source=None):
        """The pre-activation residual pattern on x (the current layer): neurons at
        relu(conv(h) + g * x), h = conv(x): an identity-kind layer fed by a
        size-keeping conv2d from h and an identity connection (gain g per channel)
        from x."""
        x = source or self.current
        h, w, c = self.shape(x)
        mid = self.conv(c, k, padding="same", source=x)
        self._count += 1
        name = f"identity{self._count}"
        self.ir.add_layer(LayerSpec(name, "identity", (h, w, c), neuron=self.neuron))
        self.ir.connect(mid, name, ConnectionSpec("conv2d", (h, w, c), padding="same",
                                                  kernel=self.rng.normal(0, 1, (k, k, c, c))))
        self.ir.connect(x, name, ConnectionSpec("identity", (h, w, c),
                                                kernel=self.rng.normal(1, 0.3, (1, 1, c, 1))))
        self.current = name
        return name

    def dense(self, units, source=None):
        n = int(np.prod(self.shape(source)))
        kernel = self.rng.normal(0, 1, (n, units))
        return self._add("dense", (units,), ConnectionSpec("dense", (n,), kernel=kernel), source)
