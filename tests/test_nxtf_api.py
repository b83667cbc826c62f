"""NxTF code as written: NxTF's argument names are accepted and honoured
(weightExponent, synapseEncoding, numCandidatesToCompute, probeSpikes,
NxInputLayer(...).input, a layer called on the NxInputLayer itself), and any
unknown keyword raises naming it."""
import dataclasses

import numpy as np
import pytest

import nxcompile
from hwmodel.errors import NetworkError
from hwmodel.limits import LOIHI1, Board, ChipSpec, get_board
from mapper.quantize import QuantizationError
from nxcompile import (NxAveragePooling2D, NxConv2D, NxDense, NxDepthwiseConv2D, NxFlatten,
                       NxInputLayer, NxModel, NxReshape, NxZeroPadding2D)
from partitioner import search
from partitioner.errors import CoreLimitError
from partitioner.graph import PartitionGraph

LAYERS = [(NxDense, (4,)), (NxConv2D, (2, 3)), (NxDepthwiseConv2D, (3,)),
          (NxAveragePooling2D, (2,)), (NxFlatten, ()), (NxReshape, ((4,),)), (NxZeroPadding2D, ()),
          (NxInputLayer, ((4,),))]


@pytest.mark.parametrize("cls, args", LAYERS, ids=[c.__name__ for c, _ in LAYERS])
def test_an_unknown_keyword_on_a_layer_raises_naming_it(cls, args):
    with pytest.raises(NetworkError, match=rf"{cls.__name__}.*bogusArgument"):
        cls(*args, bogusArgument=7)


def test_an_unknown_keyword_on_nxmodel_raises_naming_it():
    inp = NxInputLayer((4,))
    out = NxDense(2)(inp.input)
    with pytest.raises(NetworkError, match=r"NxModel: unknown keyword argument\(s\) \['bogusArgument'\]"):
        NxModel(inp.input, out, bogusArgument=7)
    with pytest.raises(NetworkError, match=r"numCandidatesToCompute=0 must be an integer >= 1"):
        NxModel(inp.input, out, numCandidatesToCompute=0)


def _dense_model(units=64, n_in=16, **nx):
    """inp (n_in,) -> NxDense(units, linear) with a fixed kernel: weights (1..n_in*units/2)
    / (n_in * units), rising along every list (no two lists equal, so none is
    shared), on every other target, 0 elsewhere."""
    inp = NxInputLayer((n_in,))
    layer = NxDense(units, activation="linear", use_bias=False, name="out", **nx)
    model = NxModel(inp, layer(inp))            # NxTF's thesis style: the layer object
    kernel = np.zeros((n_in, units))
    kernel[:, ::2] = np.arange(1, n_in * units // 2 + 1).reshape(n_in, -1) / (n_in * units)
    layer.set_weights([kernel])
    return model


def test_weight_exponent_fixes_the_layers_exponent():
    # vThMant 512, threshold 1: sigma 512; the peak weight 0.5 is 256 integer units.
    # Automatic: exponent 1 (256 / 2 = 128 fits 8 bits). weightExponent=3: 256 / 8 = 32.
    auto = _dense_model(vThMant=512).compile()
    fixed = _dense_model(vThMant=512, weightExponent=3).compile()
    assert auto.quantization["out"].weight_exp == 1
    assert fixed.quantization["out"].weight_exp == 3
    (conn,) = fixed.network.connections
    assert conn.weight_exp == 3
    assert conn.matrix().max() == 32 and conn.matrix().min() == 0
    assert auto.network.connections[0].matrix().max() == 128


def test_a_weight_exponent_the_chip_cannot_honour_is_refused():
    for bad in (8, -1, 2.0):
        with pytest.raises(NetworkError, match=rf"weightExponent={bad!r} must be an integer in 0..7"):
            NxDense(3, weightExponent=bad)
    # the peak weight is 256 units at vThMant 512: exponent 0 cannot hold it
    with pytest.raises(QuantizationError, match=r"layer out: weightExponent=0 too small.*reach "
                                                r"256, limit 255.*need weight exponent 1"):
        _dense_model(vThMant=512, weightExponent=0).compile()
    with pytest.raises(NetworkError, match=r"NxInputLayer.*weightExponent=2; an input layer"):
        NxInputLayer((3,), weightExponent=2)


# 16 sources, each a list of 32 targets 2 apart on one 64-compartment core (6 index bits,
# 8 weight bits): sparse one entry 10 + 32 x 14 = 458 bits -> 8 words; dense a new entry
# per synapse 32 x (16 + 8) = 768 -> 13; run-length one entry of 2-bit skips 16 + 32 x 10
# = 336 -> 6; dense2 two windows, 0..58 and 60..62: 16 + 59 x 8 + 16 + 3 x 8 = 528 -> 9.
WORDS = {"sparse": 8, "dense1": 13, "dense": 13, "runlength": 6, "dense2": 9}
INTERNAL = {"dense1": "dense"}


@pytest.mark.parametrize("encoding", ["sparse", "dense1", "runlength", "dense2"])
def test_synapse_encoding_forces_the_layers_encoding(encoding):
    compiled = _dense_model(synapseEncoding=encoding).compile()
    (core,) = compiled.partition.cores_of("out")
    assert core.encoding == INTERNAL.get(encoding, encoding)
    assert (core.synapse_words, core.words_per_axon) == (16 * WORDS[encoding], WORDS[encoding])


def test_without_synapse_encoding_the_search_picks_the_cheapest():
    (core,) = _dense_model().compile().partition.cores_of("out")
    assert (core.encoding, core.synapse_words) == ("runlength", 16 * 6)


def test_a_synapse_encoding_that_does_not_fit_is_refused():
    with pytest.raises(NetworkError, match=r"synapseEncoding='dense3' not one of \('sparse', "
                                           r"'dense1', 'runlength', 'dense2'\)"):
        NxDense(3, synapseEncoding="dense3")
    # one core for the layer, 150 synapse words: sparse (128) fits, dense1 (207) does not;
    # 207 = 15 x 13 + 12: the smallest weight, 1/1024, is 0 as an integer (0.5 -> 255), no
    # synapse, so source 0's list holds 31 (one dense entry less, 750 bits -> 12 words)
    chip = ChipSpec("small", dataclasses.replace(LOIHI1.core, synapse_words=150), cores_per_chip=2)
    board = Board("small", chip, num_chips=1)
    assert _dense_model(synapseEncoding="sparse").compile(board=board).num_cores == 2
    with pytest.raises(CoreLimitError, match=r"layer out: 207 synapse words needed on one core, "
                                             r"limit 150 .*synapseEncoding='dense'"):
        _dense_model(synapseEncoding="dense1").compile(board=board)


def test_num_candidates_to_compute_is_the_beam_width(monkeypatch):
    widths = []

    class Recording(search.BeamSearch):
        def __init__(self, graph, bounds, beam_width=4, cost_weights=search.DEFAULT_COST_WEIGHTS):
            widths.append(beam_width)
            super().__init__(graph, bounds, beam_width, cost_weights)

    monkeypatch.setattr("partitioner.pipeline.BeamSearch", Recording)
    model = _dense_model()
    inp, out = model.inputs[0], model.outputs[0]
    NxModel(inp, out, numCandidatesToCompute=1).compile()
    NxModel(inp, out, numCandidatesToCompute=3).compile()
    NxModel(inp, out, numCandidatesToCompute=3).compile(beam_width=2)
    NxModel(inp, out).compile()
    assert widths == [1, 3, 2, 4]


def test_probe_spikes_layers_are_recorded_by_default():
    inp = NxInputLayer((6,), probeSpikes=True)
    hidden = NxDense(5, probeSpikes=True, name="hidden")(inp.input)
    out = NxDense(3, activation="linear", name="out")(hidden)
    model = NxModel(inp.input, out)
    rng = np.random.default_rng(0)
    model.set_weights([rng.uniform(-1, 1, w.shape) for w in model.get_weights()])
    compiled = model.compile()
    x = rng.uniform(0, 1, (2, 6))
    res = compiled.run(x, 20)
    assert sorted(res.trains) == sorted([inp.name, "hidden"])
    named = compiled.run(x, 20, record=[inp.name, "hidden"])
    for name in named.trains:
        np.testing.assert_array_equal(res.trains[name], named.trains[name])
    assert res.trains["hidden"].shape == (2, 20, 5) and res.trains["hidden"].sum() > 0
    assert compiled.run(x, 20, record=()).trains == {}


def test_the_nxtf_mnist_tutorial_model_runs_as_written():
    """nxsdk_modules_ncl/dnn/tutorials/a_image_classification_mnist.ipynb, the cell that
    builds the SNN, with only the import line changed."""
    input_shape = (28, 28, 1)
    from nxcompile import NxInputLayer, NxConv2D, NxModel   # was nxsdk_modules_ncl.dnn...

    vth_mant = 2**9
    bias_exp = 6
    weight_exponent = 0
    synapse_encoding = 'sparse'

    inputLayer = NxInputLayer(input_shape,
                              vThMant=vth_mant,
                              biasExp=bias_exp)

    layer = NxConv2D(filters=16,
                     kernel_size=(5, 5),
                     strides=(2, 2),
                     input_shape=input_shape,
                     vThMant=vth_mant,
                     weightExponent=weight_exponent,
                     synapseEncoding=synapse_encoding)(inputLayer.input)
    layer = NxConv2D(filters=32,
                     kernel_size=(3, 3),
                     vThMant=vth_mant,
                     weightExponent=weight_exponent,
                     synapseEncoding=synapse_encoding)(layer)
    layer = NxConv2D(filters=64,
                     kernel_size=(3, 3),
                     strides=(2, 2),
                     vThMant=vth_mant,
                     weightExponent=weight_exponent,
                     synapseEncoding=synapse_encoding)(layer)
    layer = NxConv2D(filters=10,
                     kernel_size=(4, 4),
                     activation='softmax',
                     vThMant=vth_mant,
                     weightExponent=weight_exponent,
                     synapseEncoding=synapse_encoding)(layer)

    snn_nxmodel = NxModel(inputLayer.input, layer,
                          numCandidatesToCompute=1)
    # NxTF's to_integer gives integer weights; small ones keep weightExponent 0 possible
    rng = np.random.default_rng(0)
    snn_nxmodel.set_weights([rng.integers(-1, 2, w.shape) / 2 ** 9 for w in
                             snn_nxmodel.get_weights()])
    compiled = snn_nxmodel.compile()
    assert all(c.encoding == "sparse" for c in compiled.partition.cores
               if c.layer != inputLayer.name)
    assert {q.weight_exp for q in compiled.quantization.values()} == {0}
    assert {q.vth for q in compiled.quantization.values()} == {vth_mant}
    res = compiled.run(rng.uniform(0, 1, (1, *input_shape)), 10)
    assert res.spike_counts.shape == (1, 1, 1, 10)


def test_softmax_is_refused_off_the_output_layer():
    inp = NxInputLayer((4,))
    hidden = NxDense(4, activation="softmax", name="hidden")(inp)
    with pytest.raises(NetworkError, match=r"layer 'hidden'.*'softmax' is only supported on the "
                                           r"output layer"):
        NxModel(inp, NxDense(2)(hidden)).to_ir()


def test_calling_on_the_input_layer_object_equals_calling_on_its_output():
    a = _dense_model().to_ir()
    inp = NxInputLayer((16,))
    b = NxModel(inp.input, NxDense(64, activation="linear", use_bias=False,
                                   name="out")(NxFlatten()(inp.output))).to_ir()
    assert [(l.kind, l.shape) for l in a.layers()] == [(l.kind, l.shape) for l in b.layers()]
    assert nxcompile.NxInputLayer is NxInputLayer


def _signed_model(sign=None, n_in=16, units=64, **nx):
    """inp (n_in,) -> NxDense(units): weights alternate in sign along the targets
    (or all positive with sign=+1), distinct magnitudes."""
    inp = NxInputLayer((n_in,))
    layer = NxDense(units, activation="linear", use_bias=False, name="out", **nx)
    model = NxModel(inp, layer(inp))
    mag = np.arange(1, n_in * units + 1).reshape(n_in, units) / (n_in * units)
    layer.set_weights([mag * (1 if sign == 1 else (-1) ** np.arange(units))])
    return model


def test_use_shared_sign_selects_the_sign_mode():
    modes = {shared: _signed_model(useSharedSign=shared).compile().network.connections[0]
             for shared in (None, True, False)}
    assert [modes[s].sign_mode for s in (None, True, False)] == ["mixed", "shared", "mixed"]
    # a sign bit costs the lowest weight bit: even weights up to 254; shared: all 8 bits, 255
    assert modes[None].matrix().max() == 254 and (modes[None].matrix().data % 2 == 0).all()
    assert modes[True].matrix().max() == 255 and (modes[True].matrix().data % 2 == 1).any()
    assert modes[True].matrix().min() < 0
    one_sign = {shared: _signed_model(sign=1, useSharedSign=shared).compile().network
                .connections[0] for shared in (None, False)}
    assert one_sign[None].sign_mode == "excitatory" and one_sign[None].matrix().max() == 255
    assert one_sign[False].sign_mode == "mixed" and one_sign[False].matrix().max() == 254
    with pytest.raises(NetworkError, match=r"useSharedSign=1 must be True, False or None"):
        NxDense(3, useSharedSign=1)


def test_a_shared_sign_splits_every_synapse_list_by_sign():
    # dense1, 16 sources x 64 targets of alternating sign on one core (6 index bits):
    # one sign bit per weight: 64 consecutive synapses, 2 entries, 2 x 16 + 64 x 8 = 544
    # bits -> 9 words per list; shared sign: 32 positive and 32 negative synapses two
    # apart, one entry each: 64 x (16 + 8) = 1536 bits -> 25 words
    words = {shared: _signed_model(useSharedSign=shared, synapseEncoding="dense1").compile()
             .partition.cores_of("out")[0].synapse_words for shared in (None, True)}
    assert words == {None: 16 * 9, True: 16 * 25}


def test_a_shared_sign_keeps_run_length_within_the_synapse_formats():
    """Split by sign, run-length lists may use 2 x 4 skip widths = 8 formats, one
    more than a core's 7: the search leaves run-length out of a shared-sign
    layer and a forced one is refused naming the limit."""
    graph = PartitionGraph(_signed_model(useSharedSign=True).to_ir(), get_board("loihi1"))
    assert graph.encodings["out"] == ("sparse", "dense")
    graph = PartitionGraph(_signed_model(useSharedSign=False).to_ir(), get_board("loihi1"))
    assert graph.encodings["out"] == ("sparse", "dense", "runlength")
    with pytest.raises(CoreLimitError, match=r"layer out: 8 synapse formats needed on one core, "
                                             r"limit 7 \(synapseEncoding='runlength' with a "
                                             r"shared sign"):
        _signed_model(useSharedSign=True, synapseEncoding="runlength").compile()


def test_a_shared_sign_runs_bit_exact_on_lava():
    inp = NxInputLayer((12,), inputMode="spikes")
    hidden = NxDense(9, useSharedSign=True, name="hidden")(inp)
    out = NxDense(4, activation="linear", useSharedSign=True, name="out")(hidden)
    model = NxModel(inp, out)
    rng = np.random.default_rng(5)
    model.set_weights([rng.uniform(-1, 1, w.shape) if w.ndim > 1 else np.zeros(w.shape)
                       for w in model.get_weights()])
    compiled = model.compile()
    assert {c.sign_mode for c in compiled.network.connections} == {"shared"}
    x = rng.random((1, 15, 12)) < 0.5
    lava = compiled.run(x, 15, backend="lava", record=["hidden", "out"])
    ref = compiled.run(x, 15, record=["hidden", "out"])
    for name in ("hidden", "out"):
        np.testing.assert_array_equal(lava.trains[name], ref.trains[name])
    np.testing.assert_array_equal(lava.voltages, ref.voltages)
    assert 0 < ref.trains["hidden"].sum() < ref.trains["hidden"].size


def test_netx_export_refuses_a_shared_sign(tmp_path):
    from mapper.netx import NetxExportError
    compiled = _signed_model(useSharedSign=True).compile()
    with pytest.raises(NetxExportError, match=r"layer out: a shared sign \(useSharedSign=True\)"):
        compiled.export_netx(tmp_path / "net.h5")
    assert _signed_model().compile().export_netx(tmp_path / "ok.h5").exists()


def test_the_nxtf_arguments_survive_save_and_load(tmp_path):
    inp = NxInputLayer((16,))
    out = NxDense(64, activation="linear", name="out", weightExponent=1, synapseEncoding="dense2",
                  useSharedSign=True, probeSpikes=True)(inp)
    model = NxModel(inp, out)
    rng = np.random.default_rng(2)
    model.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in model.get_weights()])
    loaded = nxcompile.load(model.compile().save(tmp_path / "net.nxc"))
    assert loaded.ir.layer("out").neuron.weight_exp == 1 and loaded.ir.layer("out").probe
    assert loaded.network.connections[0].sign_mode == "shared"
    assert loaded.partition.cores_of("out")[0].encoding == "dense2"
    assert list(loaded.run(rng.uniform(0, 1, (1, 16)), 5).trains) == ["out"]
