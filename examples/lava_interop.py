"""Connect your own Lava processes to a network nxcompile compiled.

A small spike-input Nx network is compiled for Loihi; ``compiled.to_lava()``
gives its Lava processes (one per core) and ports.  Lava's own RingBuffer
source feeds it spikes, Lava's RingBuffer sink records the output layer, and
mapper.lava_run.running() runs the graph (stopped also on failure).  The
recorded spikes are compared with nxcompile's reference simulator bit for bit.

Run: .venv/bin/python examples/lava_interop.py

No nxcompile import is needed before the lava imports: the installed package
arms lava's Python 3.11 fix at interpreter start-up (nxcompile_lava.pth).
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from lava.proc.io.sink import RingBuffer as SpikeRecorder  # noqa: E402
from lava.proc.io.source import RingBuffer as SpikeSource  # noqa: E402

from mapper.lava_run import running  # noqa: E402
from nxcompile import NxConv2D, NxDense, NxFlatten, NxInputLayer, NxModel  # noqa: E402

SHAPE = (8, 8, 1)
NUM_STEPS = 20


def compile_network(seed: int = 0):
    """8x8 spikes -> 3x3 conv, 4 channels, stride 2 -> dense 5 (linear readout)."""
    inp = NxInputLayer(SHAPE, inputMode="spikes", name="spikes")
    hidden = NxConv2D(4, 3, strides=2, padding="same", threshold=0.5, name="conv")(inp)
    out = NxDense(5, activation="linear", threshold=1.0, name="readout")(NxFlatten()(hidden))
    model = NxModel(inp, out)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(-0.4, 0.6, w.shape) if w.ndim > 1 else np.zeros(w.shape)
                       for w in model.get_weights()])      # random kernels, no biases
    return model.compile()


def run_on_lava(compiled, spikes: np.ndarray) -> np.ndarray:
    """Output spikes (num_steps, n_output), flat HWC, of one sample of input
    spikes (num_steps, *SHAPE) run through the user's own Lava source and sink."""
    num_steps = len(spikes)
    net = compiled.to_lava()
    source = SpikeSource(data=spikes.reshape(num_steps, -1).T.astype(np.int32))
    net.connect_input(source.s_out)
    recorder = SpikeRecorder(shape=(net.n_output,), buffer=num_steps + 1)
    net.connect_output(recorder.a_in)         # one synaptic hop: one step later
    with running(recorder, num_steps + 1):
        data = recorder.data.get()            # (n_output, steps)
    return data.T[1:].astype(bool)


def main() -> None:
    compiled = compile_network()
    rng = np.random.default_rng(1)
    spikes = rng.random((NUM_STEPS, *SHAPE)) < 0.3
    lava = run_on_lava(compiled, spikes)
    ref = compiled.run(spikes[None], NUM_STEPS, record=["readout"]).trains["readout"][0]
    print(f"{compiled.num_cores} cores; output spikes per neuron (Lava, own source and sink): "
          f"{lava.sum(axis=0).tolist()}")
    print(f"reference simulator: {ref.sum(axis=0).tolist()}; identical spike trains: "
          f"{np.array_equal(lava, ref)}")


if __name__ == "__main__":
    main()
