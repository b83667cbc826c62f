"""Small IR builders shared by the tests (plain numpy, no Keras)."""
import numpy as np

from nxcompile.ir import ConnectionSpec, LayerSpec, NetworkIR, NeuronSpec


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
