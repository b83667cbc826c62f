"""Nx layers: Keras 3 layers that carry Loihi neuron parameters.

Neuron layers (NxInputLayer, and one per connection kind of nxcompile.ir.kinds:
NxDense, NxConv1D, NxConv2D, NxDepthwiseConv2D, NxAveragePooling2D, NxUpSampling2D, NxAdd)
own neurons on the chip; each subclasses its kind's Keras class (ConnectionKind.keras_class), and
NX_NEURON_LAYERS maps that class name to the Nx class; NxFlatten, NxReshape and
NxZeroPadding2D own none and are folded into the connections by
nxcompile.keras_ir.  Each neuron layer takes the usual Keras arguments plus the
Loihi ones, spelled camelCase as in NxTF:

threshold      float firing threshold, in the units of the float weights and
               biases (default 1.0, must be > 0).
vThMant        17-bit integer threshold mantissa (1..131071); if given it fixes
               the layer's integer scale (vThMant / threshold integer units per
               float unit).  Default None: the compiler chooses the scale.
biasExp        3-bit bias exponent (0..7), default None: chosen by the compiler.
resetMode      'hard' (v <- 0 after a spike) or 'soft' (v <- v - threshold).
numWeightBits  bits of the layer's incoming weights, 1..8 (default 8).
decayU         12-bit current decay, 0..4095 (default 4095: u is the input of
               the current step only, an integrate-and-fire neuron).
decayV         12-bit voltage decay, 0..4095 (default 0: no leak).
weightExponent 3-bit exponent of the layer's incoming weights, 0..7 (default
               None: the compiler chooses it); fixes the stored weights as
               W * scale / 2**weightExponent.
synapseEncoding  encoding of the synapse lists on the layer's cores, NxTF's
               'sparse', 'runlength', 'dense1', 'dense2' (or 'dense', the same
               as 'dense1'); default None: the partitioner picks the cheapest
               per core.
useSharedSign  True: positive and negative weights in separate synapse entries,
               each with a shared sign, so every weight keeps all its
               numWeightBits of magnitude (NxTF's default); False: a sign bit
               in every weight; default None: a shared sign where all the
               layer's weights have one sign, else a sign bit.
vInit          initial membrane potential, in the threshold's units: a
               number for every neuron or one per output channel (default
               0.0; nxcompile.low_latency starts converted layers near half
               the threshold); held in the 24-bit v.
probeSpikes    record the layer's spike trains in every run that gives no
               record list (default False).
neurons        True (default); False for a weighted layer with activation
               'linear' whose synapses target the neurons of the NxAdd it
               feeds (it owns none itself; its Loihi arguments are unused).

Dense, Conv2D and DepthwiseConv2D Nx layers default to activation='relu': the
rate of a non-leaky integrate-and-fire neuron is a rectified linear function of
its input, so ReLU is the ANN twin of the spiking layer ('linear' is accepted
too).  NxAveragePooling2D has no activation: pooling nonnegative rates is
nonnegative.  ``layer.neuron_spec`` returns the layer's nxcompile.ir.NeuronSpec.
Any layer may be called on an NxInputLayer itself (as NxTF's thesis, Fig.
3.2, writes it) as on its ``.output``.  An unknown keyword raises, naming it.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import numbers

import keras
import numpy as np

from hwmodel.errors import NetworkError
from hwmodel.formats import (BIAS_EXP_MAX, DECAY_UNITY, THRESHOLD_MANT_MAX, WEIGHT_BITS_MAX,
                             WEIGHT_EXP_MAX)
from hwmodel.synapse_format import ENCODINGS, NXTF_ENCODINGS
from hwmodel.network import INPUT_MODES, RESET_MODES
from nxcompile.ir import NeuronSpec

DECAY_MAX = DECAY_UNITY - 1

# Keras argument name -> NeuronSpec field.
_NEURON_ARGS = {
    "threshold": "threshold",
    "vThMant": "vth_mant",
    "biasExp": "bias_exp",
    "resetMode": "reset",
    "numWeightBits": "num_weight_bits",
    "decayU": "decay_u",
    "decayV": "decay_v",
    "weightExponent": "weight_exp",
    "synapseEncoding": "synapse_encoding",
    "useSharedSign": "shared_sign",
}
# synapseEncoding values: NxTF's names and the ones nxcompile reports -> the latter.
_ENCODING_NAMES = {**NXTF_ENCODINGS, **{e: e for e in ENCODINGS}}

_register = keras.saving.register_keras_serializable(package="nxcompile")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _layer_input(value):
    """An NxInputLayer stands for its output tensor; anything else is itself."""
    if isinstance(value, NxInputLayer):
        return value.output
    if isinstance(value, (list, tuple)):
        return type(value)(_layer_input(v) for v in value)
    return value


class _NxLayer:
    """Mixin of every Nx layer: an unknown keyword raises NetworkError naming it,
    and the layer may be called on an NxInputLayer object (NxTF's thesis, Fig.
    3.2) as on its output tensor."""

    def __init__(self, *args, **kwargs):
        try:
            super().__init__(*args, **kwargs)
        except ValueError as exc:       # Keras: "Unrecognized keyword arguments passed to ..."
            if "Unrecognized keyword arguments" not in str(exc):
                raise
            raise NetworkError(f"{type(self).__name__}: {exc}") from None

    def __call__(self, inputs, *args, **kwargs):
        return super().__call__(_layer_input(inputs), *args, **kwargs)


class _NxNeurons(_NxLayer):
    """Mixin for Keras layers with Loihi neurons: takes, validates and serializes
    the Loihi arguments (see the module docstring) and builds the NeuronSpec."""

    def __init__(self, *args, threshold=1.0, vThMant=None, biasExp=None, resetMode="hard",
                 numWeightBits=8, decayU=DECAY_MAX, decayV=0, weightExponent=None,
                 synapseEncoding=None, useSharedSign=None, vInit=0.0, probeSpikes=False,
                 neurons=True, **kwargs):
        super().__init__(*args, **kwargs)
        self._check_int("weightExponent", weightExponent, 0, WEIGHT_EXP_MAX, optional=True)
        if synapseEncoding is not None and synapseEncoding not in _ENCODING_NAMES:
            raise NetworkError(f"{self._who()}: synapseEncoding={synapseEncoding!r} not one of "
                               f"{tuple(NXTF_ENCODINGS)} (or None: chosen per core)")
        if not (useSharedSign is None or isinstance(useSharedSign, bool)):
            raise NetworkError(f"{self._who()}: useSharedSign={useSharedSign!r} must be True, "
                               f"False or None")
        if not isinstance(probeSpikes, bool):
            raise NetworkError(f"{self._who()}: probeSpikes={probeSpikes!r} must be True or False")
        self.probe_spikes = probeSpikes
        if not isinstance(neurons, bool):
            raise NetworkError(f"{self._who()}: neurons={neurons!r} must be True or False")
        if not neurons and getattr(self, "activation", None) is not keras.activations.linear:
            raise NetworkError(f"{self._who()}: neurons=False needs a weighted layer with "
                               "activation='linear' (its synapses feed the neurons of an NxAdd)")
        self.neurons = neurons
        # vThMant 0 would give the layer a scale of 0 integer units per float unit.
        self._check_int("vThMant", vThMant, 1, THRESHOLD_MANT_MAX, optional=True)
        self._check_int("biasExp", biasExp, 0, BIAS_EXP_MAX, optional=True)
        self._check_int("numWeightBits", numWeightBits, 1, WEIGHT_BITS_MAX)
        self._check_int("decayU", decayU, 0, DECAY_MAX)
        self._check_int("decayV", decayV, 0, DECAY_MAX)
        if (not isinstance(threshold, numbers.Real) or isinstance(threshold, bool)
                or not math.isfinite(threshold) or threshold <= 0):
            raise NetworkError(f"{self._who()}: threshold={threshold!r} must be a finite number > 0")
        self.set_initial_voltage(vInit)
        if resetMode not in RESET_MODES:
            raise NetworkError(f"{self._who()}: resetMode={resetMode!r} not one of {RESET_MODES}")
        self._neuron = NeuronSpec(
            threshold=float(threshold), reset=resetMode, decay_u=int(decayU), decay_v=int(decayV),
            vth_mant=None if vThMant is None else int(vThMant),
            bias_exp=None if biasExp is None else int(biasExp),
            num_weight_bits=int(numWeightBits),
            weight_exp=None if weightExponent is None else int(weightExponent),
            synapse_encoding=_ENCODING_NAMES.get(synapseEncoding),
            shared_sign=None if useSharedSign is None else bool(useSharedSign))

    def _who(self) -> str:
        return f"{type(self).__name__} '{self.name}'"

    def set_initial_voltage(self, v_init) -> None:
        """Set vInit (module doc): a finite number, or finite numbers one per
        output channel."""
        values = np.asarray(v_init, dtype=object)
        if values.ndim > 1 or not values.size or not all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
                for v in values.ravel()):
            raise NetworkError(f"{self._who()}: vInit={v_init!r} must be a finite number or a "
                               f"list of them, one per output channel")
        self.v_init = float(v_init) if values.ndim == 0 else [float(v) for v in values]

    def _check_int(self, param: str, value, lo: int, hi: int, optional: bool = False) -> None:
        if optional and value is None:
            return
        if not _is_int(value) or not lo <= value <= hi:
            allowed = f"an integer in {lo}..{hi}" + (" or None" if optional else "")
            raise NetworkError(f"{self._who()}: {param}={value!r} must be {allowed}")

    @property
    def neuron_spec(self) -> NeuronSpec:
        """The layer's Loihi neuron parameters (a copy)."""
        return dataclasses.replace(self._neuron)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({arg: getattr(self._neuron, f) for arg, f in _NEURON_ARGS.items()})
        config["vInit"] = self.v_init
        config["probeSpikes"] = self.probe_spikes
        config["neurons"] = self.neurons
        return config


# What NxInputLayer takes besides its own arguments: keras.layers.InputLayer's (and
# Keras 2's batch_input_shape, which it still reads) and the Loihi ones.
_INPUT_LAYER_ARGS = (frozenset(inspect.signature(keras.layers.InputLayer.__init__).parameters)
                     | frozenset(inspect.signature(_NxNeurons.__init__).parameters)
                     | {"batch_input_shape"}) - {"self", "args", "kwargs", "shape"}


@_register
class NxInputLayer(_NxNeurons, keras.layers.InputLayer):
    """Input layer of an Nx model.

    ``inputMode='bias'``: each input value drives a neuron as a constant current
    (frames, in the units of the first layer's weights); ``'spikes'``: the input
    is a stream of spike events that enter the first layer directly.  As in
    NxTF, ``layer.input`` (same as ``layer.output``) is the KerasTensor to feed
    into the next layer; the shape may also be given as NxTF's ``input_shape``.
    """

    def __init__(self, shape=None, inputMode="bias", *, input_shape=None, **kwargs):
        unknown = sorted(kwargs.keys() - _INPUT_LAYER_ARGS)
        if unknown:     # Keras' InputLayer would ignore them
            raise NetworkError(f"NxInputLayer: unknown keyword argument(s) {unknown}")
        if input_shape is not None and shape is not None:
            raise NetworkError(f"NxInputLayer: shape={shape!r} and input_shape={input_shape!r}; "
                               f"give one (input_shape is NxTF's name)")
        super().__init__(shape=shape if input_shape is None else input_shape, **kwargs)
        if inputMode not in INPUT_MODES:
            raise NetworkError(f"{self._who()}: inputMode={inputMode!r} not one of {INPUT_MODES}")
        for arg, value in (("weightExponent", self._neuron.weight_exp),
                           ("synapseEncoding", self._neuron.synapse_encoding),
                           ("useSharedSign", self._neuron.shared_sign)):
            if value is not None:
                raise NetworkError(f"{self._who()}: {arg}={value!r}; an input layer has no "
                                   f"incoming synapses")
        self.input_mode = inputMode

    @property
    def input(self):
        """The input KerasTensor (Keras' InputLayer.input is an empty list)."""
        return self.output

    def get_config(self) -> dict:
        return {**super().get_config(), "inputMode": self.input_mode}


@_register
class NxDense(_NxNeurons, keras.layers.Dense):
    """Fully connected layer of Loihi neurons; activation defaults to 'relu'."""

    def __init__(self, units, activation="relu", **kwargs):
        super().__init__(units, activation=activation, **kwargs)


@_register
class NxConv2D(_NxNeurons, keras.layers.Conv2D):
    """2-D convolution layer of Loihi neurons (channels last); activation
    defaults to 'relu'."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", *,
                 activation="relu", **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding,
                         activation=activation, **kwargs)


@_register
class NxConv1D(_NxNeurons, keras.layers.Conv1D):
    """1-D convolution layer of Loihi neurons over (steps, channels); on the chip
    a 2-D one of height 1 (nxcompile.ir.kinds.conv1d); activation defaults to
    'relu'."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", *,
                 activation="relu", **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding,
                         activation=activation, **kwargs)


@_register
class NxDepthwiseConv2D(_NxNeurons, keras.layers.DepthwiseConv2D):
    """Depthwise 2-D convolution layer of Loihi neurons (channels last);
    activation defaults to 'relu'."""

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, *,
                 activation="relu", **kwargs):
        super().__init__(kernel_size, strides=strides, padding=padding,
                         depth_multiplier=depth_multiplier, activation=activation, **kwargs)


@_register
class NxAveragePooling2D(_NxNeurons, keras.layers.AveragePooling2D):
    """2-D average pooling layer of Loihi neurons (no activation, no bias)."""


@_register
class NxMaxPooling2D(_NxNeurons, keras.layers.MaxPooling2D):
    """2-D max pooling layer of Loihi neurons, for single-spike networks only
    (convert(..., code='ttfs')); the rate code refuses it."""


@_register
class NxUpSampling2D(_NxNeurons, keras.layers.UpSampling2D):
    """Nearest-neighbour 2-D upsampling layer of Loihi neurons (no activation, no
    bias): each neuron relays the source pixel it copies."""


@_register
class NxAdd(_NxNeurons, keras.layers.Add):
    """Neurons at a sum: activation(sum_i gains[i] * inputs[i] + bias), gains
    (inputs, channels), bias (channels,) if use_bias.  The residual pattern
    relu(conv(h) + x): a summand from a weighted layer with neurons=False brings
    that layer's synapses (its kernel times the gain), any other summand an
    identity connection with the gain (nxcompile.ir.kinds.identity).
    activation defaults to 'relu'."""

    def __init__(self, activation="relu", use_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias

    def build(self, input_shape):
        super().build(input_shape)
        channels = input_shape[0][-1]
        self.gains = self.add_weight(shape=(len(input_shape), channels), initializer="ones",
                                     name="gains")
        self.bias = (self.add_weight(shape=(channels,), initializer="zeros", name="bias")
                     if self.use_bias else None)

    def _merge_function(self, inputs):
        total = sum(x * self.gains[i] for i, x in enumerate(inputs))
        return self.activation(total if self.bias is None else total + self.bias)

    def get_config(self) -> dict:
        return {**super().get_config(), "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias}


@_register
class NxFlatten(_NxLayer, keras.layers.Flatten):
    """Flatten (channels last); no neurons, folded into the next connection."""


@_register
class NxReshape(_NxLayer, keras.layers.Reshape):
    """Reshape; no neurons, folded into the next connection."""


@_register
class NxZeroPadding2D(_NxLayer, keras.layers.ZeroPadding2D):
    """Zero padding (channels last); no neurons, folded into the next connection."""


# Keras class name -> the Nx neuron layer class that subclasses it ('Conv2D' -> NxConv2D).
NX_NEURON_LAYERS = {next(b for b in cls.__bases__ if b is not _NxNeurons).__name__: cls
                    for cls in _NxNeurons.__subclasses__()}
