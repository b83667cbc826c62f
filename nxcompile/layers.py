"""Nx layers: Keras 3 layers that carry Loihi neuron parameters.

Neuron layers (NxInputLayer, and one per connection kind of nxcompile.ir.kinds:
NxDense, NxConv2D, NxDepthwiseConv2D, NxAveragePooling2D, NxUpSampling2D, NxAdd)
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
neurons        True (default); False for a weighted layer with activation
               'linear' whose synapses target the neurons of the NxAdd it
               feeds (it owns none itself; its Loihi arguments are unused).

Dense, Conv2D and DepthwiseConv2D Nx layers default to activation='relu': the
rate of a non-leaky integrate-and-fire neuron is a rectified linear function of
its input, so ReLU is the ANN twin of the spiking layer ('linear' is accepted
too).  NxAveragePooling2D has no activation: pooling nonnegative rates is
nonnegative.  ``layer.neuron_spec`` returns the layer's nxcompile.ir.NeuronSpec.
"""
from __future__ import annotations

import dataclasses
import math
import numbers

import keras

from hwmodel.errors import NetworkError
from hwmodel.formats import BIAS_EXP_MAX, DECAY_UNITY, THRESHOLD_MANT_MAX, WEIGHT_BITS_MAX
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
}

_register = keras.saving.register_keras_serializable(package="nxcompile")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class _NxNeurons:
    """Mixin for Keras layers with Loihi neurons: takes, validates and serializes
    the Loihi arguments (see the module docstring) and builds the NeuronSpec."""

    def __init__(self, *args, threshold=1.0, vThMant=None, biasExp=None, resetMode="hard",
                 numWeightBits=8, decayU=DECAY_MAX, decayV=0, neurons=True, **kwargs):
        super().__init__(*args, **kwargs)
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
        if resetMode not in RESET_MODES:
            raise NetworkError(f"{self._who()}: resetMode={resetMode!r} not one of {RESET_MODES}")
        self._neuron = NeuronSpec(
            threshold=float(threshold), reset=resetMode, decay_u=int(decayU), decay_v=int(decayV),
            vth_mant=None if vThMant is None else int(vThMant),
            bias_exp=None if biasExp is None else int(biasExp),
            num_weight_bits=int(numWeightBits))

    def _who(self) -> str:
        return f"{type(self).__name__} '{self.name}'"

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
        config["neurons"] = self.neurons
        return config


@_register
class NxInputLayer(_NxNeurons, keras.layers.InputLayer):
    """Input layer of an Nx model.

    ``inputMode='bias'``: each input value drives a neuron as a constant current
    (frames, in the units of the first layer's weights); ``'spikes'``: the input
    is a stream of spike events that enter the first layer directly.  As in
    NxTF, ``layer.input`` (same as ``layer.output``) is the KerasTensor to feed
    into the next layer.
    """

    def __init__(self, shape=None, inputMode="bias", **kwargs):
        super().__init__(shape=shape, **kwargs)
        if inputMode not in INPUT_MODES:
            raise NetworkError(f"{self._who()}: inputMode={inputMode!r} not one of {INPUT_MODES}")
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
class NxFlatten(keras.layers.Flatten):
    """Flatten (channels last); no neurons, folded into the next connection."""


@_register
class NxReshape(keras.layers.Reshape):
    """Reshape; no neurons, folded into the next connection."""


@_register
class NxZeroPadding2D(keras.layers.ZeroPadding2D):
    """Zero padding (channels last); no neurons, folded into the next connection."""


# Keras class name -> the Nx neuron layer class that subclasses it ('Conv2D' -> NxConv2D).
NX_NEURON_LAYERS = {next(b for b in cls.__bases__ if b is not _NxNeurons).__name__: cls
                    for cls in _NxNeurons.__subclasses__()}
