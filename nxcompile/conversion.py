"""ANN-to-SNN conversion: a trained Keras model -> an equivalent NxModel.

``convert(keras_model, x_calibration)`` follows Rueckauer et al. 2017 (see
nxcompile.normalization for the numerics):

1. The model is read as a chain of layers from its input to its output.
   Neuron layers: Dense, Conv2D, DepthwiseConv2D, AveragePooling2D.  Folded
   into them: BatchNormalization (into the preceding Dense/Conv2D/
   DepthwiseConv2D, which must have no activation of its own), ReLU and
   Activation('relu'/'linear'/'softmax'), Softmax, Dropout (identity at
   inference).  Flatten, Reshape, ZeroPadding2D become their Nx versions.
   Anything else raises ValueError naming the layer and its type.
2. Every hidden neuron layer gets the scale lambda = the percentile of its
   positive activations on x_calibration; average pooling keeps the scale of
   its input, the input layer has lambda = 1 (pixels in [0, 1]: a pixel of 1.0
   makes its input neuron fire every step).  Weights and biases are rescaled;
   every hidden layer is a spiking layer with threshold 1 in these units, so
   its firing rate approximates its normalized ReLU activation.  The integer
   scale of each layer is left to the quantizer (mapper.quantize), which puts
   the largest weight at the top of the 8-bit range.
3. The output layer (softmax, linear or ReLU in the ANN) becomes a linear
   spiking readout with reset by subtraction, shifted by a common offset and
   scaled so that each step's input lies in [0, 0.8] threshold on the
   calibration data (nxcompile.normalization.readout_offset_and_scale).  Its
   voltage then stays between about 0 and one threshold for any number of
   steps: it never saturates, and spikes * threshold + v is the exact sum of
   its input; the class is the argmax of that sum (RunResult.potentials,
   .predictions), which the common offset does not change.  (A non-spiking
   readout cannot keep 8-bit weights: with the largest weight at 254 units, a
   24-bit voltage holds only 2**23 / (64 * 254) = 516 spikes through it.)

The returned NxModel predicts (Keras) (logits + offset) / lambda of the ANN:
the normalization leaves the function unchanged up to that positive affine
map (same argmax).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np

from hwmodel.errors import NetworkError
from nxcompile.ir import KINDS
from nxcompile.keras_ir import check_channels_last, check_layer_options, neuron_kind, who
from nxcompile.layers import (NX_NEURON_LAYERS, RESET_MODES, NxFlatten, NxInputLayer, NxReshape,
                              NxZeroPadding2D)
from nxcompile.model import NxModel
from nxcompile.normalization import (fold_batch_norm, percentile_scale, readout_offset_and_scale,
                                     scale_parameters)

_WEIGHTED = ", ".join(k.keras_class for k in KINDS.values() if k.weighted)
SUPPORTED = (", ".join(k.keras_class for k in KINDS.values())
             + ", Flatten, Reshape, ZeroPadding2D, BatchNormalization, ReLU, "
             "Activation('relu'/'linear'/'softmax'), Softmax, Dropout")
_ACTIVATIONS = {keras.activations.relu: "relu", keras.activations.linear: "linear",
                keras.activations.softmax: "softmax"}


@dataclass
class _Stage:
    """One neuron layer of the SNN: the Keras layer that owns the neurons, its
    parameters after BN folding, its activation, the Keras layers without
    neurons that precede it (Flatten, Reshape, ZeroPadding2D) and the tensor
    that holds its activation in the Keras model."""

    layer: keras.layers.Layer
    kind: str
    kernel: np.ndarray | None
    bias: np.ndarray | None
    activation: str
    tensor: object
    before: list = field(default_factory=list)

    @property
    def weighted(self) -> bool:
        """It has a kernel, bias and activation of its own (pooling: no)."""
        return KINDS[self.kind].weighted


def _chain(model) -> tuple:
    """(input layer, [(layer, output tensor), ...] from input to output)."""
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError):
        raise NetworkError(f"model '{model.name}' has no inputs/outputs; build it with an "
                           "Input (functional or Sequential) first") from None
    if len(inputs) != 1 or len(outputs) != 1:
        raise NetworkError(f"model '{model.name}' has {len(inputs)} inputs and {len(outputs)} "
                           "outputs; convert needs exactly one of each")
    chain, tensor = [], outputs[0]
    while True:
        layer, node_index, _ = tensor._keras_history
        if isinstance(layer, keras.layers.InputLayer):
            return layer, chain[::-1]
        node = layer._inbound_nodes[node_index]
        if len(node.input_tensors) != 1:
            raise NetworkError(f"{who(layer)} has {len(node.input_tensors)} inputs; convert "
                               f"supports chains of single-input layers: {SUPPORTED}")
        if len(layer._inbound_nodes) > 1:
            raise NetworkError(f"{who(layer)} is called more than once; its neurons would "
                               "exist once on the chip")
        chain.append((layer, tensor))
        tensor = node.input_tensors[0]


def _numpy(variable) -> np.ndarray | None:
    return None if variable is None else np.array(keras.ops.convert_to_numpy(variable),
                                                  np.float64)


def _activation_of(layer, fn) -> str:
    if fn not in _ACTIVATIONS:
        name = getattr(fn, "__name__", repr(fn))
        raise NetworkError(f"{who(layer)}: activation {name!r} is not supported; "
                           "use 'relu' (hidden layers) or 'softmax'/'linear' (output layer)")
    return _ACTIVATIONS[fn]


def _new_stage(layer, tensor, kind: str, before: list) -> _Stage:
    check_layer_options(layer, kind)
    if not KINDS[kind].weighted:
        return _Stage(layer, kind, None, None, "linear", tensor, before)
    return _Stage(layer, kind, _numpy(layer.kernel), _numpy(layer.bias),
                  _activation_of(layer, layer.activation), tensor, before)


def _fold_bn(layer, stage: _Stage | None, before: list) -> None:
    if stage is None or before or not stage.weighted or stage.activation != "linear":
        raise NetworkError(f"{who(layer)} must directly follow a {_WEIGHTED} layer without "
                           "activation, to be folded into it")
    axis = layer.axis if isinstance(layer.axis, int) else None
    if axis not in (-1, len(stage.tensor.shape) - 1):
        raise NetworkError(f"{who(layer)}: axis={layer.axis}; only the channels (last) axis "
                           "can be folded")
    n = layer.moving_mean.shape[0]
    stage.kernel, stage.bias = fold_batch_norm(
        stage.kernel, stage.bias,
        _numpy(layer.gamma) if layer.scale else np.ones(n),
        _numpy(layer.beta) if layer.center else np.zeros(n),
        _numpy(layer.moving_mean), _numpy(layer.moving_variance), layer.epsilon,
        channel_axes=KINDS[stage.kind].output_channel_axes)


def _set_activation(layer, stage: _Stage | None, before: list, act: str) -> None:
    if act == "linear":
        return
    if stage is None or before:
        raise NetworkError(f"{who(layer)}: activation {act!r} must follow a neuron layer "
                           f"({', '.join(k.keras_class for k in KINDS.values())})")
    if act == "relu" and not stage.weighted:
        return      # pooling of ReLU outputs (or pixels) is never negative
    if stage.activation not in ("linear", act):
        raise NetworkError(f"{who(layer)}: {act!r} after activation {stage.activation!r} of "
                           f"layer '{stage.layer.name}' is not supported")
    stage.activation = act


def _relu_activation(layer) -> str:
    if layer.max_value is not None or layer.negative_slope != 0 or layer.threshold != 0:
        raise NetworkError(f"{who(layer)}: only the plain ReLU is supported (max_value=None, "
                           f"negative_slope=0, threshold=0), got max_value={layer.max_value}, "
                           f"negative_slope={layer.negative_slope}, threshold={layer.threshold}")
    return "relu"


def _stages(chain: list) -> list:
    """Group the chain into neuron layers with what is folded into them."""
    stages, before = [], []
    for layer, tensor in chain:
        kind = neuron_kind(layer)     # never 'input': the chain starts after the input
        current = stages[-1] if stages else None
        if kind is not None:
            stages.append(_new_stage(layer, tensor, kind, before))
            before = []
        elif isinstance(layer, (keras.layers.Flatten, keras.layers.Reshape,
                                keras.layers.ZeroPadding2D)):
            check_channels_last(layer)
            before.append(layer)
        elif isinstance(layer, keras.layers.BatchNormalization):
            _fold_bn(layer, current, before)
            current.tensor = tensor
        elif isinstance(layer, (keras.layers.ReLU, keras.layers.Activation, keras.layers.Softmax)):
            if isinstance(layer, keras.layers.ReLU):
                act = _relu_activation(layer)
            elif isinstance(layer, keras.layers.Softmax):
                act = "softmax"
            else:
                act = _activation_of(layer, layer.activation)
            _set_activation(layer, current, before, act)
            if current is not None and not before:
                current.tensor = tensor
        elif isinstance(layer, keras.layers.Dropout):
            continue
        else:
            raise NetworkError(f"{who(layer)} is not supported by convert; supported: {SUPPORTED}")
    if not stages:
        raise NetworkError("the model has no neuron layer "
                           f"({', '.join(k.keras_class for k in KINDS.values())})")
    if before:
        raise NetworkError(f"{who(before[-1])} is the last layer; the model must end in a neuron "
                           "layer (the readout)")
    for stage in stages[:-1]:
        if stage.activation == "softmax":
            raise NetworkError(f"{who(stage.layer)}: softmax is only supported on the output layer")
        if stage.weighted and stage.activation != "relu":
            raise NetworkError(f"{who(stage.layer)}: a hidden layer needs a ReLU activation (the "
                               f"rate of a spiking neuron is rectified), got {stage.activation!r}")
    if not stages[-1].weighted:
        raise NetworkError(f"{who(stages[-1].layer)}: the output (readout) layer must be one "
                           f"of {_WEIGHTED}")
    return stages


def _calibration_scales(model, stages: list, x: np.ndarray, percentile: float,
                        batch_size: int) -> list:
    """lambda of each hidden stage: the percentile of its positive ANN
    activations; pooling keeps its input's."""
    if not stages:
        return []
    probe = keras.Model(model.inputs, [s.tensor for s in stages])
    acts = probe.predict(x, batch_size=batch_size, verbose=0)
    acts = acts if isinstance(acts, (list, tuple)) else [acts]
    scales, prev = [], 1.0
    for stage, a in zip(stages, acts):
        lam = _scale(stage, a, percentile) if stage.weighted else prev
        scales.append(lam)
        prev = lam
    return scales


def _scale(stage: _Stage, activations: np.ndarray, percentile: float) -> float:
    lam = percentile_scale(activations, percentile)
    if lam <= 0:
        raise NetworkError(f"{who(stage.layer)}: no positive activation on the calibration "
                           "data (a dead layer); the layer cannot be normalized")
    return lam


def _folded_layer(layer):
    """The Nx version of a Flatten, Reshape or ZeroPadding2D layer."""
    if isinstance(layer, keras.layers.Flatten):
        return NxFlatten(name=layer.name)
    if isinstance(layer, keras.layers.Reshape):
        return NxReshape(layer.target_shape, name=layer.name)
    return NxZeroPadding2D(layer.padding, name=layer.name)


def _nx_layer(stage: _Stage, neuron_args: dict, activation: str, use_bias: bool):
    """The Nx layer (nxcompile.layers) of a stage: the arguments of the trained
    layer that fix its connection (ConnectionKind.keras_args), the Loihi
    arguments, the SNN activation and bias; all else at its default."""
    op = KINDS[stage.kind]
    args = {**op.keras_config(stage.layer), "name": stage.layer.name, **neuron_args}
    if stage.weighted:
        args.update(activation=activation, use_bias=use_bias)
    return NX_NEURON_LAYERS[op.keras_class](**args)


def convert(keras_model, x_calibration, percentile: float = 99.9, reset: str = "soft",
            batch_size: int = 256) -> NxModel:
    """An NxModel equivalent to a trained Keras model (see the module docstring).

    x_calibration: (N, *input_shape) samples in [0, 1] (they enter as constant
    currents; 1.0 fires every step) on which the activations are measured.
    percentile: p in (0, 100], the activation percentile put at the threshold.
    reset: 'soft' (reset by subtraction, default) or 'hard' (reset to zero) for
    the hidden layers; the readout always resets by subtraction.  batch_size: of
    the Keras forward pass over x_calibration.
    """
    if reset not in RESET_MODES:
        raise NetworkError(f"reset={reset!r} not one of {RESET_MODES}")
    if not 0 < percentile <= 100:
        raise NetworkError(f"percentile={percentile} must be in (0, 100]")
    input_layer, chain = _chain(keras_model)
    stages = _stages(chain)
    x = np.asarray(x_calibration, np.float32)
    shape = tuple(keras_model.inputs[0].shape[1:])
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape or not len(x):
        raise NetworkError(f"x_calibration: shape {x.shape}, needs "
                           f"(N, {', '.join(map(str, shape))})")
    if x.min() < 0 or x.max() > 1:
        raise NetworkError(f"x_calibration: values in [{x.min():.3g}, {x.max():.3g}], must be in "
                           "[0, 1] (the input layer turns 1.0 into one spike per step); rescale "
                           "the data and retrain")
    scales = _calibration_scales(keras_model, stages[:-1], x, percentile, batch_size)

    inp = NxInputLayer(shape=shape, resetMode=reset, name=input_layer.name)
    tensor, lam_in = inp.output, 1.0
    for i, stage in enumerate(stages):
        for layer in stage.before:
            tensor = _folded_layer(layer)(tensor)
        readout = i == len(stages) - 1
        lam_out = 1.0 if readout else scales[i]
        layer = _nx_layer(stage, {"resetMode": "soft" if readout else reset},
                          "linear" if readout else "relu", use_bias=readout or stage.bias is not None)
        tensor = layer(tensor)
        if stage.weighted:
            kernel, bias = scale_parameters(stage.kernel, stage.bias, lam_in, lam_out)
            if bias is None and readout:
                bias = np.zeros(layer.bias.shape)
            layer.set_weights([p.astype(np.float32) for p in (kernel, bias) if p is not None])
        lam_in = lam_out
    snn = NxModel(inp.output, tensor, name=f"{keras_model.name}_snn")
    # With lambda = 1 the readout computes the ANN's logits: shift and scale them.
    kernel, bias = layer.get_weights()
    offset, lam = readout_offset_and_scale(snn.predict(x, batch_size=batch_size, verbose=0),
                                           kernel, bias)
    if lam <= 0:
        raise NetworkError(f"{who(stages[-1].layer)}: its outputs on the calibration data are "
                           "all 0 or negative (a dead readout)")
    layer.set_weights([kernel / lam, (bias + offset) / lam])
    return snn
