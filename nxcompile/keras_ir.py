"""Keras functional model -> NetworkIR.

Walks the Keras 3 graph from the model's outputs back to its inputs.  Layers
with neurons (InputLayer, Dense, Conv2D, DepthwiseConv2D, AveragePooling2D and
their Nx subclasses) become IR layers; layers without neurons are folded into
the connections:

Flatten, Reshape   change the source_shape the next operation sees (the flat
                   HWC order is unchanged);
ZeroPadding2D      becomes pre_padding of the next spatial operation;
Add                each summand gets its own edge into the consuming layer,
                   all with that layer's kernel;
Concatenate        (channels axis) each part gets its own edge with its
                   channel_offset and the total in_channels; for flat vectors
                   the channel offset is the flat offset;
Dropout            nothing (inference);
BatchNormalization (inference) after neurons: y = scale * x + shift per channel,
                   absorbed by the connections that read it (nxcompile.ir.affine:
                   the kernel scaled per source channel, the shift a bias of the
                   target; refused where zero padding makes that inexact);
a weighted layer   (Nx, neurons=False) its synapses go, with its kernel and
                   bias, to the NxAdd it feeds (the residual pattern
                   relu(conv(h) + x)); NxAdd's other summands get identity
                   connections (nxcompile.ir.kinds.identity; diagonal dense for
                   flat summands), each scaled by NxAdd's gain.

A softmax activation is taken on the output layer only, as a linear readout
(NxTF's tutorials end in one; the class is the argmax of the readout's input).

A tensor is therefore resolved to a list of _Terms: the neuron layers whose
outputs, reshaped, padded and placed at a channel offset, sum to it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import keras
import numpy as np

from hwmodel.errors import NetworkError
from nxcompile.ir import INPUT, KINDS, ConnectionSpec, LayerSpec, NetworkIR, NeuronSpec
from nxcompile.ir.affine import absorb_source_affine
from nxcompile.ir.merge import merge_connections
from nxcompile.layers import NX_NEURON_LAYERS

# Keras layer class -> IR layer kind: InputLayer -> 'input', each connection
# kind's keras_class (where a plain layer of it owns neurons) and Nx class ->
# that kind (nxcompile.ir.kinds).
_KIND_OF_CLASS = {keras.layers.InputLayer: INPUT,
                  **{getattr(keras.layers, k.keras_class): name for name, k in KINDS.items()
                     if k.keras_neurons},
                  **{NX_NEURON_LAYERS[k.keras_class]: name for name, k in KINDS.items()}}

_FOLDED = (keras.layers.Flatten, keras.layers.Reshape, keras.layers.ZeroPadding2D,
           keras.layers.Add, keras.layers.Concatenate, keras.layers.Dropout,
           keras.layers.BatchNormalization)
_ACTIVATIONS = {keras.activations.relu: "relu", keras.activations.linear: "linear",
                keras.activations.softmax: "softmax"}
_SUPPORTED = ("supported: neuron layers InputLayer, "
              + ", ".join(k.keras_class for k in KINDS.values())
              + " (and their Nx versions), NxAdd; folded layers Flatten, Reshape, ZeroPadding2D, "
              "Add, Concatenate, Dropout, BatchNormalization")
_NO_PADDING = ((0, 0), (0, 0))


@dataclass(frozen=True)
class _Term:
    """One neuron layer's share of a tensor: the output of layer ``source`` seen
    with ``shape`` (after Flatten/Reshape), zero padded by ``pre_padding`` and
    placed at ``channel_offset`` of ``in_channels`` channels (Concatenate);
    ``via``: a weighted layer without neurons applied to that (its synapses
    form the connection), ``gain``: NxAdd's gain per channel of the sum;
    ``affine``: (scale, shift, names) of BatchNormalization after the source's
    neurons, per element of the flat source (the connection absorbs it)."""

    source: str
    shape: tuple
    pre_padding: tuple = _NO_PADDING
    channel_offset: int = 0
    in_channels: int | None = None
    via: object = None
    gain: np.ndarray | None = None
    affine: tuple | None = None


def who(layer) -> str:
    """How errors name a Keras layer: its name and type."""
    return f"layer '{layer.name}' ({type(layer).__name__})"


def neuron_kind(layer) -> str | None:
    """The IR kind of a Keras layer with neurons ('input' or a connection kind
    of nxcompile.ir.kinds), found along its class's MRO (the most derived match
    wins); None for any other layer."""
    for cls in type(layer).__mro__:
        if cls in _KIND_OF_CLASS:
            return _KIND_OF_CLASS[cls]
    return None


def _shape(layer, tensor) -> tuple:
    """Tensor shape without the batch dimension, a (steps, channels) sequence as
    a (1, steps, channels) map (Conv1D is a conv of height 1); must be fully
    defined."""
    shape = tuple(tensor.shape[1:])
    if any(d is None for d in shape):
        raise NetworkError(f"{who(layer)}: shape {shape} has undefined dimensions; "
                           "give the input layer a full shape")
    return (1, *shape) if len(shape) == 2 else shape


def called_once(layer, node_index: int, calls: dict) -> bool:
    """Whether the walk meets `layer` at one call only: records node_index in
    calls (id(layer) -> node index) and is False if another was recorded.  A
    Keras model file's Sequential gives every layer a second, unused node, so
    the nodes the model's graph reaches count, not len(layer._inbound_nodes)."""
    return calls.setdefault(id(layer), node_index) == node_index


def check_channels_last(layer) -> None:
    """Reject a layer whose data_format is not 'channels_last'."""
    fmt = getattr(layer, "data_format", "channels_last")
    if fmt != "channels_last":
        raise NetworkError(f"{who(layer)}: data_format={fmt!r}; only 'channels_last' is supported")


def check_layer_options(layer, kind: str) -> None:
    """Reject Keras options of a neuron layer of IR kind ``kind`` that have no
    Loihi mapping (activations aside): channels first, a quantized kernel
    (its scales would be lost), and what the connection kind refuses
    (ConnectionKind.check_keras: dilation, grouped convolution)."""
    check_channels_last(layer)
    if kind == INPUT:
        return
    op = KINDS[kind]
    if op.weighted and getattr(layer, "quantization_mode", None) is not None:
        raise NetworkError(f"{who(layer)}: quantization_mode={layer.quantization_mode!r} "
                           "is not supported; give the float model")
    op.check_keras(layer, who(layer))


def _check_neuron_layer(layer, kind: str) -> None:
    """check_layer_options, and an activation an integrate-and-fire layer has."""
    check_layer_options(layer, kind)
    if kind != INPUT and KINDS[kind].weighted and layer.activation not in _ACTIVATIONS:
        name = getattr(layer.activation, "__name__", repr(layer.activation))
        raise NetworkError(f"{who(layer)}: activation {name!r} is not supported; use 'relu' "
                           "(the rate of an integrate-and-fire neuron), 'linear' or, on the "
                           "output layer, 'softmax'")


def _numpy(variable) -> np.ndarray:
    return np.array(keras.ops.convert_to_numpy(variable))


class _Converter:
    def __init__(self) -> None:
        self.ir = NetworkIR()
        self.terms: dict[int, list] = {}        # id(KerasTensor) -> its _Terms
        self.softmax: list = []                  # neuron layers with a softmax activation
        self.calls: dict[int, int] = {}          # id(layer) -> the node the walk met it at

    def resolve(self, tensor) -> list:
        """The _Terms of a KerasTensor (memoized)."""
        key = id(tensor)
        if key not in self.terms:
            layer, node_index, _ = tensor._keras_history
            node = layer._inbound_nodes[node_index]
            kind = neuron_kind(layer)
            if kind is not None and not getattr(layer, "neurons", True):
                self.terms[key] = self._via(layer, kind, node, node_index)
            elif kind is not None:
                self.terms[key] = [_Term(self._add_layer(layer, kind, node, tensor),
                                         _shape(layer, tensor))]
            elif isinstance(layer, _FOLDED):
                parts = [self.resolve(t) for t in node.input_tensors]
                self.terms[key] = self._fold(layer, node, parts, tensor)
            else:
                raise NetworkError(f"{who(layer)} is not supported; {_SUPPORTED}")
        return self.terms[key]

    def _via(self, layer, kind: str, node, node_index: int) -> list:
        """The terms of a weighted layer without neurons: its input's, through it."""
        check_layer_options(layer, kind)
        if not KINDS[kind].weighted:
            raise NetworkError(f"{who(layer)}: neurons=False is for weighted layers only")
        if not called_once(layer, node_index, self.calls):
            raise NetworkError(f"{who(layer)} is called more than once")
        terms = self.resolve(node.input_tensors[0])
        for t in terms:
            if t.via is not None:
                raise NetworkError(f"{who(layer)}: its input comes from layer '{t.via.name}' "
                                   "without neurons; two weighted layers need neurons between")
        return [replace(t, via=layer) for t in terms]

    def _inputs(self, layer, kind: str, node) -> list:
        """The terms of a neuron layer's input: NxAdd's summands with their gains."""
        if kind == INPUT:
            return []
        if not isinstance(layer, keras.layers.Add):
            terms = self.resolve(node.input_tensors[0])
            for t in terms:
                if t.via is not None:
                    raise NetworkError(f"{who(layer)}: its input comes from layer "
                                       f"'{t.via.name}' without neurons (neurons=False), which "
                                       "can only feed an NxAdd")
            return terms
        gains = _numpy(layer.gains)
        return [replace(t, gain=gains[i]) for i, tensor in enumerate(node.input_tensors)
                for t in self.resolve(tensor)]

    def _add_layer(self, layer, kind: str, node, tensor) -> str:
        in_terms = self._inputs(layer, kind, node)
        if layer.name in self.ir.graph:
            raise NetworkError(f"{who(layer)} is called more than once; a neuron layer "
                               "must be used once (its neurons exist once on the chip)")
        _check_neuron_layer(layer, kind)
        if getattr(layer, "activation", None) is keras.activations.softmax:
            self.softmax.append(layer)
        shape = _shape(layer, tensor)
        if len(shape) not in (1, 3):
            raise NetworkError(f"{who(layer)}: output shape {shape}; neuron layers must be "
                               "(n,) or (height, width, channels)")
        if kind == INPUT:
            self.ir.add_layer(LayerSpec(layer.name, kind, shape, _neuron_spec(layer),
                                        input_mode=getattr(layer, "input_mode", "bias"),
                                        probe=getattr(layer, "probe_spikes", False),
                                        v_init=_v_init(layer, shape)))
        else:
            specs: dict[str, list] = {}
            bias = _bias(layer, in_terms)
            for term in in_terms:
                spec, added = _connection(layer, kind, term, shape)
                specs.setdefault(term.source, []).append(spec)
                if added is not None:
                    bias = added if bias is None else bias + added
            self.ir.add_layer(LayerSpec(layer.name, kind, shape, _neuron_spec(layer), bias,
                                        probe=getattr(layer, "probe_spikes", False),
                                        v_init=_v_init(layer, shape)))
            for source, found in specs.items():
                merged = merge_connections(found, shape)
                if merged is None:
                    raise NetworkError(
                        f"{who(layer)} receives layer '{source}' over several paths (through "
                        "Add/Concatenate) whose connections cannot be added into one (pooling, "
                        "different windows or strides, Concatenate offsets); the IR has one "
                        "connection per layer pair")
                self.ir.connect(source, layer.name, merged)
        return layer.name

    def _fold(self, layer, node, parts: list, tensor) -> list:
        check_channels_last(layer)
        shape = _shape(layer, tensor)
        if isinstance(layer, keras.layers.Dropout):
            return parts[0]
        if isinstance(layer, keras.layers.BatchNormalization):
            return _batch_norm(layer, parts[0])
        for terms in parts:
            for t in terms:
                if t.via is not None and not isinstance(layer, keras.layers.Add):
                    raise NetworkError(f"{who(layer)}: its input comes from layer "
                                       f"'{t.via.name}' without neurons (neurons=False), which "
                                       "can only feed an NxAdd (through Add)")
        if isinstance(layer, (keras.layers.Flatten, keras.layers.Reshape)):
            (terms,) = parts
            if shape == _shape(layer, node.input_tensors[0]):
                return terms
            for t in terms:
                if t.pre_padding != _NO_PADDING or t.in_channels is not None:
                    cause = "ZeroPadding2D" if t.pre_padding != _NO_PADDING else "Concatenate"
                    raise NetworkError(f"{who(layer)}: reshaping the output of {cause} is not "
                                       "supported; reshape before padding/concatenating")
            return [replace(t, shape=shape) for t in terms]
        if isinstance(layer, keras.layers.ZeroPadding2D):
            (terms,) = parts
            (pt, pb), (pl, pr) = layer.padding
            return [replace(t, pre_padding=((t.pre_padding[0][0] + pt, t.pre_padding[0][1] + pb),
                                            (t.pre_padding[1][0] + pl, t.pre_padding[1][1] + pr)))
                    for t in terms]
        in_shapes = [_shape(layer, t) for t in node.input_tensors]
        if isinstance(layer, keras.layers.Add):
            if any(s != shape for s in in_shapes):
                raise NetworkError(f"{who(layer)}: input shapes {in_shapes} differ; "
                                   "broadcasting is not supported")
            return [t for terms in parts for t in terms]
        # Concatenate
        if layer.axis not in (-1, len(shape)):
            raise NetworkError(f"{who(layer)}: axis={layer.axis}; only the channels axis (-1) "
                               "is supported")
        offsets = np.cumsum([0] + [s[-1] for s in in_shapes])
        return [replace(t, channel_offset=int(off) + t.channel_offset, in_channels=shape[-1])
                for terms, off in zip(parts, offsets) for t in terms]


def _batch_norm(layer, terms: list) -> list:
    """The terms of a tensor after inference-mode BatchNormalization: each with
    y = scale * x + shift over its channels (the shift once per channel where
    summands overlap), composed with any earlier one."""
    scale, shift = batch_norm_affine(layer)
    shifted = np.zeros(len(scale), bool)
    out = []
    for t in terms:
        if t.via is not None:
            raise NetworkError(f"{who(layer)}: its input comes from layer '{t.via.name}' without "
                               "neurons; fold the BatchNormalization into that layer's kernel")
        if t.pre_padding != _NO_PADDING:
            raise NetworkError(f"{who(layer)}: ZeroPadding2D before BatchNormalization is not "
                               "supported (the padding would be shifted too); pad after it")
        ch = slice(t.channel_offset, t.channel_offset + t.shape[-1])
        own = np.where(shifted[ch], 0.0, shift[ch])
        shifted[ch] = True
        reps = int(np.prod(t.shape[:-1]))
        s, b = np.tile(scale[ch], reps), np.tile(own, reps)
        if t.affine is not None:
            s0, b0, names = t.affine
            s, b, names = s0 * s, b0 * s + b, f"{names[:-1]}, '{layer.name}']"
        else:
            names = f"['{layer.name}']"
        out.append(replace(t, affine=(s, b, names)))
    return out


def batch_norm_weights(layer) -> tuple:
    """gamma, beta, moving mean and moving variance of a BatchNormalization,
    float64 (ones and zeros where it has no scale or center); NetworkError
    unless it normalizes the channels (last) axis."""
    axis = layer.axis if isinstance(layer.axis, int) else None
    if axis not in (-1, len(layer.input.shape) - 1):
        raise NetworkError(f"{who(layer)}: axis={layer.axis}; only the channels (last) axis "
                           "can be folded")
    n = layer.moving_mean.shape[0]
    return (_numpy(layer.gamma).astype(np.float64) if layer.scale else np.ones(n),
            _numpy(layer.beta).astype(np.float64) if layer.center else np.zeros(n),
            _numpy(layer.moving_mean).astype(np.float64),
            _numpy(layer.moving_variance).astype(np.float64))


def batch_norm_affine(layer) -> tuple:
    """(scale, shift) per channel, float64, of an inference-mode
    BatchNormalization: y = scale * x + shift."""
    gamma, beta, mean, var = batch_norm_weights(layer)
    scale = gamma / np.sqrt(var + layer.epsilon)
    return scale, beta - mean * scale


def _neuron_spec(layer) -> NeuronSpec:
    """Loihi parameters of an Nx layer; defaults for a plain Keras layer."""
    return layer.neuron_spec if hasattr(layer, "neuron_spec") else NeuronSpec()


def _v_init(layer, shape: tuple) -> np.ndarray | None:
    """An Nx layer's vInit per output channel (None for 0 or a plain Keras layer)."""
    v = np.asarray(getattr(layer, "v_init", 0.0), np.float64)
    if not v.any():
        return None
    if v.size not in (1, shape[-1]):
        raise NetworkError(f"{who(layer)}: vInit has {v.size} values, the layer has "
                           f"{shape[-1]} output channels")
    return np.broadcast_to(v, (shape[-1],)).copy()


def _bias(layer, terms: list) -> np.ndarray | None:
    """The layer's bias per channel: its own, plus the gained biases of the
    weighted layers without neurons among its summands (NxAdd)."""
    parts = [_numpy(layer.bias)] if getattr(layer, "bias", None) is not None else []
    parts += [_numpy(t.via.bias) * t.gain for t in terms
              if t.via is not None and t.via.bias is not None]
    return sum(parts) if parts else None


def _connection(layer, kind: str, term: _Term, shape: tuple) -> tuple:
    """(ConnectionSpec, bias per target channel or None) of ``term`` into neuron
    layer ``layer`` of output ``shape``: its kind's ConnectionKind.from_keras, or
    its via layer's, NxAdd's gain folded into the kernel's output channels, and
    the term's BatchNormalization absorbed (nxcompile.ir.affine)."""
    spec = _connection_spec(layer, kind, term)
    if term.affine is None:
        return spec, None
    scale, shift, names = term.affine
    try:
        return absorb_source_affine(spec, shape, scale, shift)
    except NetworkError as e:
        raise NetworkError(f"BatchNormalization {names} after layer '{term.source}' cannot be "
                           f"folded into {who(layer)}: {e}") from None


def _connection_spec(layer, kind: str, term: _Term) -> ConnectionSpec:
    if term.via is not None:        # (into an NxAdd: _Converter._inputs)
        layer, kind = term.via, neuron_kind(term.via)
    elif isinstance(layer, keras.layers.Add):       # a shortcut: identity, flat: diagonal
        gain = np.asarray(term.gain, np.float64)
        kind, kernel = ("dense", np.diag(gain)) if len(term.shape) == 1 else \
            (kind, gain.reshape(1, 1, -1, 1))
        return ConnectionSpec(kind, term.shape, kernel=kernel, pre_padding=term.pre_padding,
                              channel_offset=term.channel_offset, in_channels=term.in_channels)
    op = KINDS[kind]
    if len(term.shape) != op.source_ndim:
        raise NetworkError(f"{who(layer)}: input from '{term.source}' has shape {term.shape}; "
                           f"{op.source_hint}")
    fields = op.from_keras(layer, term.shape)
    own = fields.pop("pre_padding", _NO_PADDING)       # Conv1D's causal padding
    pre_padding = tuple((a + c, b + d) for (a, b), (c, d) in zip(term.pre_padding, own))
    if term.gain is not None:
        kernel = np.asarray(fields["kernel"], np.float64)
        fields["kernel"] = kernel * np.asarray(term.gain).reshape(
            kernel.shape[-op.output_channel_axes:])
    return ConnectionSpec(kind, term.shape, pre_padding=pre_padding,
                          channel_offset=term.channel_offset, in_channels=term.in_channels,
                          **fields)


def model_to_ir(model) -> NetworkIR:
    """The validated NetworkIR of a Keras functional model (or NxModel).

    IR layer names are the Keras layer names; kernels are numpy copies in Keras
    layout, biases numpy float arrays per output channel (None without bias).
    Raises ValueError naming the layer for anything without a Loihi mapping.
    """
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError):
        raise NetworkError(f"model '{model.name}' has no inputs/outputs; build it with the "
                           "functional API (NxModel(inputs, outputs)) first") from None
    conv = _Converter()
    for tensor in inputs:
        conv.resolve(tensor)
    for tensor in outputs:
        conv.resolve(tensor)
    for tensor in outputs:
        layer = tensor._keras_history[0]
        if neuron_kind(layer) is None or not getattr(layer, "neurons", True):
            kinds = ", ".join(k.keras_class for k in KINDS.values())
            raise NetworkError(f"model output comes from {who(layer)}; model outputs must be "
                               f"neuron layers ({kinds})")
        if conv.ir.graph.out_degree(layer.name):
            raise NetworkError(f"model output '{layer.name}' also feeds other layers; the IR's "
                               "outputs are the layers without successors")
    for layer in conv.softmax:
        if conv.ir.graph.out_degree(layer.name):
            raise NetworkError(f"{who(layer)}: activation 'softmax' is only supported on the "
                               "output layer (a readout: the class is the argmax of its input)")
    conv.ir.validate()
    return conv.ir
