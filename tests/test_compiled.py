"""CompiledModel.run: the shapes it returns, edge cases (one sample, one step,
one neuron) and clear errors for bad arguments.  Numpy IRs, no Keras."""
import numpy as np
import pytest

from hwmodel.errors import NetworkError
from nxcompile.compiler import compile_ir
from tests.helpers import dense_chain


@pytest.fixture(scope="module")
def compiled():
    """inp (5) -> dense0 (4) -> dense1 (1), with biases."""
    return compile_ir(dense_chain([5, 4, 1], np.random.default_rng(0), bias_scale=0.2))


def test_one_sample_without_batch_axis_one_step_one_output_neuron(compiled):
    x = np.full(5, 0.5)
    one = compiled.run(x, num_steps=1, record="dense0")
    assert one.spike_counts.shape == (1, 1) and one.trains["dense0"].shape == (1, 1, 4)
    # One step: no spike has crossed a synapse yet, so the output holds its bias alone.
    out = compiled.network.layers["dense1"]
    assert one.spike_counts[0, 0] == 0
    assert one.voltages[0, 0] == int(out.bias_mant[0]) << out.bias_exp != 0
    batch = compiled.run(x[None], num_steps=1, record=["dense0"])
    np.testing.assert_array_equal(batch.voltages, one.voltages)


@pytest.mark.parametrize("kwargs, match", [
    (dict(x=np.zeros((2, 6)), num_steps=5), r"layer inp: input shape \(6,\) does not match \(5,\)"),
    (dict(x=np.zeros((2, 5)), num_steps=0), r"num_steps must be >= 1, got 0"),
    (dict(x=np.zeros((2, 5)), num_steps=5, record="dense9"), r"record: unknown layers \['dense9'\]"),
    (dict(x=np.zeros((2, 5)), num_steps=5, backend="gpu"), r"unknown backend 'gpu'"),
    (dict(x=np.full((1, 5), 2.0), num_steps=5), r"layer inp: input value 2 outside \[0, 1\]; frames "
                                                r"are constant currents"),
    (dict(x=np.full((1, 5), -0.01), num_steps=5), r"layer inp: input value -0.01 outside \[0, 1\]"),
    (dict(x=np.full((1, 5), np.nan), num_steps=5), r"layer inp: input value nan outside \[0, 1\]"),
    (dict(x=np.zeros((1, 5), complex), num_steps=5), r"layer inp: input of dtype complex128; inputs "
                                                     r"are real numbers"),
    (dict(x=np.zeros((0, 5)), num_steps=5), r"layer inp: the batch holds no sample"),
    (dict(x=np.zeros((2, 5)), num_steps=2.5), r"num_steps must be an integer, got 2.5"),
    (dict(x=np.zeros((2, 5)), num_steps="10"), r"num_steps must be an integer, got '10'"),
])
def test_bad_arguments_are_named(compiled, kwargs, match):
    with pytest.raises(ValueError, match=match):
        compiled.run(**kwargs)


def test_spike_input_must_be_zeros_and_ones():
    ir = dense_chain([5, 4, 2], np.random.default_rng(0), input_mode="spikes")
    compiled = compile_ir(ir)
    x = np.zeros((1, 3, 5))
    assert compiled.run(x, num_steps=3).spike_counts.shape == (1, 2)
    x[0, 1, 2] = 2
    with pytest.raises(NetworkError, match=r"layer inp: spike input holds 2.0; spikes are 0 or 1"):
        compiled.run(x, num_steps=3)


def test_every_backend_is_one_backend_object_under_its_name():
    import importlib

    from hwmodel.backend import Backend
    from nxcompile.compiled import BACKENDS
    for name, module in BACKENDS.items():
        backend = importlib.import_module(module).BACKEND
        assert isinstance(backend, Backend) and backend.name == name
