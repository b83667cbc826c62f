"""ANN-to-SNN conversion: a trained Keras model -> an equivalent NxModel.

``convert(keras_model, x_calibration)`` follows Rueckauer et al. 2017 (see
nxcompile.normalization for the numerics):

1. The Keras graph is walked from its input to its output.  Neuron layers of
   the SNN: the input, every Dense, Conv2D or DepthwiseConv2D followed by its
   ReLU (the activation's own or a ReLU / Activation('relu') layer), every
   AveragePooling2D, and every sum (Add) followed by a ReLU: there the
   neurons sit at the ReLU and each summand brings its synapses, a linear
   weighted layer's kernel (a layer with neurons=False into an NxAdd) or an
   identity connection for a shortcut (the pre-activation pattern of ResNet,
   relu(conv(h) + x)).  BatchNormalization is folded into the weighted layer
   before it, or into every summand of the sum before it (after Add); after
   neurons (after a ReLU) it stays in the NxModel, its shift in the spikes'
   units, and keras_ir folds it into the connections that read it (exact;
   refused where zero padding would reach it); ReLU
   with max_value (ReLU6) sets its layer's scale to at most max_value: a rate
   neuron saturates at one spike per step, the clip.  Dropout is dropped;
   Flatten, Reshape, ZeroPadding2D, Add and Concatenate of spiking outputs
   become their Nx (folded) versions; GlobalAveragePooling2D of a neuron layer
   is folded into the Dense after it (the kernel repeated over the map, divided
   by its size), else (after Concatenate, or before another layer) it becomes
   an average pooling over the whole map and a Flatten;
   SeparableConv2D becomes one Conv2D, its depthwise and pointwise kernels
   multiplied out (exact: there is no activation between them).
   Trailing Flatten, Reshape, Dropout and activations after the readout are
   dropped (they do not change its argmax).  Anything else raises
   NetworkError naming the layer and its type.
2. Every hidden neuron layer gets the scale lambda = the percentile of its
   positive activations on x_calibration, or the clip of its
   QuantizedClippedReLU (nxcompile.activations: the ANN was trained with
   it); the input layer has lambda = 1 (pixels in [0, 1]: a pixel of 1.0
   fires every step).  Outputs that meet
   without neurons in between (Add or Concatenate of spiking outputs, average
   pooling of them) share one lambda, the largest of their layers' (the input's
   1 if it is among them).  Weights and biases are rescaled by
   lambda_source / lambda_target per connection, so a sum of differently
   scaled branches gets each branch's scale in its weights (NxAdd's gains for
   shortcuts); every hidden layer spikes with threshold 1 in these units.
3. The output layer (a weighted layer, or a sum of them and shortcuts, with
   softmax, linear or ReLU in the ANN) becomes a linear spiking readout with
   reset by subtraction, shifted by a common offset and scaled so that each
   step's input lies in [0, 0.8] threshold on the calibration data
   (nxcompile.normalization.readout_offset_and_scale).  Its voltage then stays
   between about 0 and one threshold for any number of steps: it never
   saturates, and spikes * threshold + v is the exact sum of its input; the
   class is the argmax of that sum (RunResult.potentials, .predictions).

The returned NxModel predicts (Keras) (logits + offset) / lambda of the ANN
(up to ReLU6 clips beyond the percentile): the normalization leaves the
function unchanged up to that positive affine map (same argmax).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import keras
import numpy as np

from hwmodel.errors import NetworkError
from nxcompile.activations import QuantizedClippedReLU
from nxcompile.ir import KINDS
from nxcompile.keras_ir import (batch_norm_affine, batch_norm_weights, called_once,
                               check_channels_last, check_layer_options, neuron_kind, who)
from nxcompile.layers import (NX_NEURON_LAYERS, RESET_MODES, NxAdd, NxAveragePooling2D,
                              NxFlatten, NxInputLayer, NxReshape, NxZeroPadding2D)
from nxcompile.low_latency import start_at_half_threshold
from nxcompile.model import NxModel
from nxcompile.normalization import (fold_batch_norm, percentile_scale, readout_offset_and_scale,
                                     scale_parameters)
from nxcompile.ttfs import to_ttfs

_WEIGHTED = ", ".join(k.keras_class for k in KINDS.values() if k.weighted and k.keras_neurons)
SUPPORTED = (", ".join(k.keras_class for k in KINDS.values() if k.keras_neurons and k.rate)
             + ", SeparableConv2D, Add, Concatenate, GlobalAveragePooling2D, Flatten, Reshape, "
             "ZeroPadding2D, "
             "BatchNormalization, ReLU (max_value too), Activation('relu'/'linear'/'softmax'), "
             "Softmax, Dropout, QuantizedClippedReLU")
CODES = ("rate", "ttfs")     # spike codes convert() maps to
_ACTIVATIONS = {keras.activations.relu: "relu", keras.activations.linear: "linear",
                keras.activations.softmax: "softmax"}
METHODS = ("rate", "low_latency")     # convert(method=...): see convert
_TRAILING = (keras.layers.Flatten, keras.layers.Reshape, keras.layers.Dropout,
             keras.layers.Softmax, keras.layers.ReLU, keras.layers.Activation)


@dataclass
class _Spikes:
    """A Keras tensor the SNN holds as spikes: the Nx tensor and its scale group."""

    tensor: object
    group: int


@dataclass
class _Linear:
    """A weighted layer's output before its activation: kernel and bias after
    BatchNormalization, its source, and the ANN tensor that holds it.  gap: the
    source is seen through a GlobalAveragePooling2D (the kernel is expanded)."""

    layer: keras.layers.Layer
    kind: str
    kernel: np.ndarray
    bias: np.ndarray | None
    source: _Spikes
    softmax: bool = False
    gap: keras.layers.Layer | None = None


@dataclass
class _Sum:
    """An Add before its activation: summands (a _Linear or _Spikes, and its
    coefficient per channel from BatchNormalization after the Add) and a bias."""

    layer: keras.layers.Layer
    terms: list
    bias: np.ndarray


@dataclass
class _Gap:
    """GlobalAveragePooling2D of spikes, built only where no Dense takes it."""

    layer: keras.layers.Layer
    source: _Spikes
    shape: tuple


def _numpy(variable) -> np.ndarray | None:
    return None if variable is None else np.array(keras.ops.convert_to_numpy(variable),
                                                  np.float64)


def _activation_of(layer, fn) -> str:
    if fn not in _ACTIVATIONS:
        name = getattr(fn, "__name__", repr(fn))
        raise NetworkError(f"{who(layer)}: activation {name!r} is not supported; "
                           "use 'relu' (hidden layers) or 'softmax'/'linear' (output layer)")
    return _ACTIVATIONS[fn]


def _relu_max(layer) -> float | None:
    """max_value of a ReLU layer (None: unclipped); other variants are refused."""
    if layer.negative_slope != 0 or layer.threshold != 0 or (
            layer.max_value is not None and not float(layer.max_value) > 0):
        raise NetworkError(f"{who(layer)}: only ReLU with negative_slope=0, threshold=0 and "
                           f"max_value None or > 0 is supported, got max_value={layer.max_value}, "
                           f"negative_slope={layer.negative_slope}, threshold={layer.threshold}")
    return None if layer.max_value is None else float(layer.max_value)


def _fold_bn(layer, value):
    """value (a _Linear or _Sum) followed by inference-mode BatchNormalization."""
    if not isinstance(value, (_Linear, _Sum)):
        raise NetworkError(f"{who(layer)} must directly follow a {_WEIGHTED} layer without "
                           "activation (or an Add of them), to be folded in")
    scale, shift = batch_norm_affine(layer)
    if isinstance(value, _Linear):
        kernel, bias = fold_batch_norm(value.kernel, value.bias, scale, shift,
                                       KINDS[value.kind].output_channel_axes)
        return replace(value, kernel=kernel, bias=bias)
    # y = s * sum + t: every summand's coefficient and the bias times s, plus t
    return replace(value, terms=[(item, coef * scale) for item, coef in value.terms],
                   bias=np.asarray(value.bias, np.float64) * scale + shift)


class _Converter:
    """Walks the Keras graph (module doc, step 1) and builds the NxModel; the
    weights are set once the scales are known (apply)."""

    def __init__(self, model, reset: str, code: str):
        self.reset = reset
        self.clips: dict[int, float] = {}      # group -> lambda of its QuantizedClippedReLU
        self.code = code
        self.values: dict[int, object] = {}    # id(KerasTensor) -> _Spikes/_Linear/_Sum/_Gap
        self.parent: list[int] = []            # union-find over scale groups
        self.fixed: set[int] = set()           # groups of the input layer: lambda 1
        self.hidden: list = []                 # (group, ANN tensor, max_value, layer)
        self.setters: list = []                # f(lambda of a group) -> None, per layer
        self.used: set[int] = set()            # ids of the _Linear values built
        self.spike_norms: list = []            # BatchNormalization layers after neurons
        self.calls: dict[int, int] = {}        # id(layer) -> the node the walk met it at
        self.readout_tensor = _strip_trailing(model.outputs[0])
        self.input_layer = None

    # -- scale groups ------------------------------------------------------------
    def _group(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, g: int) -> int:
        while self.parent[g] != g:
            g = self.parent[g]
        return g

    def _join(self, groups) -> int:
        roots = sorted({self.find(g) for g in groups})
        for r in roots[1:]:
            self.parent[r] = roots[0]
        return roots[0]

    # -- the walk ---------------------------------------------------------------
    def resolve(self, tensor):
        key = id(tensor)
        if key not in self.values:
            layer, node_index, _ = tensor._keras_history
            if not called_once(layer, node_index, self.calls):
                raise NetworkError(f"{who(layer)} is called more than once; its neurons would "
                                   "exist once on the chip")
            node = layer._inbound_nodes[node_index]
            ins = [self.resolve(t) for t in node.input_tensors]
            for value in ins:
                if isinstance(value, _Linear) and value.softmax:
                    raise NetworkError(f"{who(value.layer)}: softmax is only supported on the "
                                       "output layer")
            self.values[key] = self._apply(layer, ins, tensor)
        return self.values[key]

    def _apply(self, layer, ins: list, tensor):
        kind = neuron_kind(layer)
        if isinstance(layer, keras.layers.InputLayer):
            return self._input(layer, tensor)
        if isinstance(layer, keras.layers.Dropout):
            return ins[0]
        if isinstance(layer, keras.layers.BatchNormalization):
            if isinstance(ins[0], _Spikes):
                return self._normalized_spikes(layer, ins[0])
            return _fold_bn(layer, ins[0])
        if isinstance(layer, (keras.layers.ReLU, keras.layers.Activation, keras.layers.Softmax)):
            return self._activation(layer, ins[0], tensor)
        if isinstance(layer, QuantizedClippedReLU):
            return self._quantized_relu(layer, ins[0], tensor)
        if kind is not None and not KINDS[kind].rate and self.code == "rate":
            raise NetworkError(f"{who(layer)} is not supported by convert with code='rate' (the "
                               f"maximum is no synaptic sum); code='ttfs' maps it")
        if kind is not None and KINDS[kind].keras_neurons:
            return self._neuron_layer(layer, kind, ins[0], tensor)
        if isinstance(layer, keras.layers.SeparableConv2D):
            return self._separable(layer, ins[0], tensor)
        if isinstance(layer, keras.layers.Add):
            return self._add(layer, ins)
        if isinstance(layer, keras.layers.GlobalAveragePooling2D):
            check_channels_last(layer)
            return _Gap(layer, self._spikes(layer, ins[0]), tuple(tensor.shape[1:]))
        if isinstance(layer, (keras.layers.Flatten, keras.layers.Reshape,
                              keras.layers.ZeroPadding2D, keras.layers.Concatenate)):
            check_channels_last(layer)
            parts = [self._spikes(layer, v) for v in ins]
            out = _folded_layer(layer)([p.tensor for p in parts] if len(parts) > 1
                                       else parts[0].tensor)
            return _Spikes(out, self._join(p.group for p in parts))
        raise NetworkError(f"{who(layer)} is not supported by convert; supported: {SUPPORTED}")

    def _normalized_spikes(self, layer, value: _Spikes) -> _Spikes:
        """BatchNormalization after neurons (after a ReLU): kept in the NxModel,
        its shift in the spikes' units (beta and the mean over the source's
        lambda), for keras_ir to fold into the connections that read it."""
        bn = keras.layers.BatchNormalization(epsilon=layer.epsilon, name=layer.name)
        out = bn(value.tensor)
        gamma, beta, mean, var = batch_norm_weights(layer)
        group = value.group

        def setter(lam) -> None:
            bn.set_weights([p.astype(np.float32) for p in
                            (gamma, beta / lam(group), mean / lam(group), var)])
        self.setters.append(setter)
        self.spike_norms.append(layer)
        return _Spikes(out, group)

    def _input(self, layer, tensor):
        shape = tuple(tensor.shape[1:])
        self.input_layer = NxInputLayer(shape=shape, resetMode=self.reset, name=layer.name)
        group = self._group()
        self.fixed.add(group)
        return _Spikes(self.input_layer.output, group)

    def _spikes(self, layer, value) -> _Spikes:
        """value as spikes: a GlobalAveragePooling2D is built here; a value
        before its activation is refused."""
        if isinstance(value, _Gap):
            return self._build_gap(value)
        if not isinstance(value, _Spikes):
            raise NetworkError(f"{who(value.layer)}: a hidden layer needs a ReLU activation (the "
                               f"rate of a spiking neuron is rectified) before {who(layer)}")
        return value

    def _build_gap(self, gap: _Gap) -> _Spikes:
        h, w, _ = gap.source.tensor.shape[1:]
        pool = NxAveragePooling2D(pool_size=(h, w), resetMode=self.reset, name=gap.layer.name)
        out = pool(gap.source.tensor)
        if not gap.layer.keepdims:
            out = NxFlatten(name=f"{gap.layer.name}_flatten")(out)
        return _Spikes(out, gap.source.group)

    def _neuron_layer(self, layer, kind: str, value, tensor):
        check_layer_options(layer, kind)
        if not KINDS[kind].weighted:        # pooling: spikes, on its input's scale
            source = self._spikes(layer, value)
            pool = _nx_layer(layer, kind, {"resetMode": self.reset})
            return _Spikes(pool(source.tensor), source.group)
        return self._weighted_layer(layer, kind, _numpy(layer.kernel), value, tensor)

    def _separable(self, layer, value, tensor):
        """SeparableConv2D: its depthwise and pointwise kernels (no activation
        between them) folded into one conv2d kernel, exactly."""
        check_layer_options(layer, "conv2d")
        dw, pw = _numpy(layer.depthwise_kernel), _numpy(layer.pointwise_kernel)
        kh, kw, c_in, mult = dw.shape
        kernel = np.einsum("hwcm,cmo->hwco", dw, pw.reshape(c_in, mult, -1))
        return self._weighted_layer(layer, "conv2d", kernel, value, tensor)

    def _weighted_layer(self, layer, kind: str, kernel: np.ndarray, value, tensor):
        gap = None
        if (isinstance(value, _Gap) and KINDS[kind].source_ndim == 1
                and neuron_kind(value.source.tensor._keras_history[0]) is not None):
            gap, value = value.layer, value.source       # folded into the kernel
        lin = _Linear(layer, kind, kernel, _numpy(layer.bias), self._spikes(layer, value),
                      gap=gap)
        act = _activation_of(layer, layer.activation)
        if tensor is self.readout_tensor or act != "relu":
            return replace(lin, softmax=act == "softmax")
        return self._weighted(lin, tensor, None)

    def _activation(self, layer, value, tensor):
        max_value = None
        if isinstance(layer, keras.layers.ReLU):
            act, max_value = "relu", _relu_max(layer)
        elif isinstance(layer, keras.layers.Softmax):
            act = "softmax"
        else:
            act = _activation_of(layer, layer.activation)
        if act == "linear":
            return value
        if isinstance(value, _Linear):
            if act == "softmax":
                return replace(value, softmax=True)
            return self._weighted(value, tensor, max_value)
        if isinstance(value, _Sum) and act == "relu":
            return self._sum(value, tensor, max_value)
        if act == "relu" and isinstance(value, _Spikes) and max_value is None:
            return value         # spikes (rates) are never negative
        raise NetworkError(f"{who(layer)}: activation {act!r}"
                           f"{'' if max_value is None else f' (max_value={max_value})'} must "
                           f"directly follow a {_WEIGHTED} layer without activation, or an Add "
                           "(softmax: only on the output layer)")

    def _quantized_relu(self, layer, value, tensor) -> _Spikes:
        """A QuantizedClippedReLU: neurons as for a ReLU, scaled by its clip."""
        if not isinstance(value, (_Linear, _Sum)):
            raise NetworkError(f"{who(layer)} must directly follow a {_WEIGHTED} layer without "
                               "activation, or an Add")
        build = self._weighted if isinstance(value, _Linear) else self._sum
        out = build(value, tensor, layer.clip_value)
        self.clips[out.group] = layer.clip_value
        return out

    def _add(self, layer, ins: list):
        if all(isinstance(v, (_Spikes, _Gap)) for v in ins):
            parts = [self._spikes(layer, v) for v in ins]
            out = keras.layers.Add(name=layer.name)([p.tensor for p in parts])
            return _Spikes(out, self._join(p.group for p in parts))
        channels = int(layer.output.shape[-1])
        terms, bias = [], np.zeros(channels)
        for v in ins:
            if isinstance(v, _Sum):
                terms += v.terms
                bias = bias + v.bias
            else:
                v = v if isinstance(v, _Linear) else self._spikes(layer, v)
                terms.append((v, np.ones(channels)))
        return _Sum(layer, terms, bias)

    # -- neuron layers -------------------------------------------------------------
    def _linear_layer(self, lin: _Linear, args: dict):
        """The Nx layer of a _Linear applied to its source; its setter, given the
        scales of the source and the target, sets the scaled weights."""
        if id(lin) in self.used:
            raise NetworkError(f"{who(lin.layer)}: its output without activation feeds more "
                               "than one layer; its synapses can target one neuron layer")
        self.used.add(id(lin))
        source = lin.source.tensor
        kernel = lin.kernel
        if lin.gap is not None:             # GAP -> Dense: the kernel over the whole map
            h, w, _ = source.shape[1:]
            source = NxFlatten(name=lin.gap.name)(source)
            kernel = np.tile(kernel / (h * w), (h * w, 1))
        layer = _nx_layer(lin.layer, lin.kind, {**args, "use_bias": lin.bias is not None})
        out = layer(source)

        def setter(lam_in: float, lam_out: float) -> None:
            k, b = scale_parameters(kernel, lin.bias, lam_in, lam_out)
            layer.set_weights([p.astype(np.float32) for p in (k, b) if p is not None])
        return layer, out, setter

    def _weighted(self, lin: _Linear, tensor, max_value, readout: bool = False) -> _Spikes:
        activation = "linear" if readout else "relu"
        reset = "soft" if readout else self.reset
        if readout and lin.bias is None:        # the readout's offset goes into its bias
            lin = replace(lin, bias=np.zeros(int(lin.layer.output.shape[-1])))
        layer, out, setter = self._linear_layer(lin, {"activation": activation,
                                                      "resetMode": reset})
        group = self._group()
        if not readout:
            self.hidden.append((group, tensor, max_value, lin.layer))
        src = lin.source.group
        self.setters.append(lambda lam: setter(lam(src), lam(group)))
        return _Spikes(out, group)

    def _sum(self, s: _Sum, tensor, max_value, readout: bool = False) -> _Spikes:
        inputs, rows, setters = [], [], []
        for item, coef in s.terms:
            if isinstance(item, _Linear):
                _, out, set_via = self._linear_layer(item, {"activation": "linear",
                                                            "neurons": False})
                setters.append((set_via, item.source.group))
                inputs.append(out)
                rows.append((coef, None))
            else:
                inputs.append(item.tensor)
                rows.append((coef, item.group))
        add = NxAdd(activation="linear" if readout else "relu", use_bias=True, name=s.layer.name,
                    resetMode="soft" if readout else self.reset)
        out = add(inputs)
        group = self._group()
        if not readout:
            self.hidden.append((group, tensor, max_value, s.layer))

        def setter(lam) -> None:
            lam_t = lam(group)
            for set_via, src in setters:
                set_via(lam(src), lam_t)
            gains = [coef if src is None else coef * lam(src) / lam_t for coef, src in rows]
            add.set_weights([np.array(gains, np.float32), (s.bias / lam_t).astype(np.float32)])
        self.setters.append(setter)
        return _Spikes(out, group)

    def readout(self, value) -> _Spikes:
        """The output layer (module doc, step 3)."""
        if isinstance(value, _Linear):
            return self._weighted(value, None, None, readout=True)
        if isinstance(value, _Sum):
            return self._sum(value, None, None, readout=True)
        layer = self.readout_tensor._keras_history[0]
        raise NetworkError(f"model output comes from {who(layer)}; the output (readout) layer "
                           f"must be one of {_WEIGHTED}, or an Add of them")


def _strip_trailing(tensor):
    """The model output without trailing reshapes, Dropout and activations
    (module doc): the tensor of the readout."""
    while True:
        layer, node_index, _ = tensor._keras_history
        if not isinstance(layer, _TRAILING):
            return tensor
        tensor = layer._inbound_nodes[node_index].input_tensors[0]


def _folded_layer(layer):
    """The Nx (or plain) version of a Flatten, Reshape, ZeroPadding2D or
    Concatenate layer (folded into the next connection by keras_ir)."""
    if isinstance(layer, keras.layers.Flatten):
        return NxFlatten(name=layer.name)
    if isinstance(layer, keras.layers.Reshape):
        return NxReshape(layer.target_shape, name=layer.name)
    if isinstance(layer, keras.layers.Concatenate):
        return keras.layers.Concatenate(axis=layer.axis, name=layer.name)
    return NxZeroPadding2D(layer.padding, name=layer.name)


def _nx_layer(layer, kind: str, args: dict):
    """The Nx layer of a trained Keras layer of connection kind `kind`: the
    arguments that fix its connection (ConnectionKind.keras_args), the Loihi
    and SNN arguments `args`; all else at its default."""
    op = KINDS[kind]
    return NX_NEURON_LAYERS[op.keras_class](**{**op.keras_config(layer), "name": layer.name,
                                               **args})


def _forward(model, x: np.ndarray, batch_size: int) -> list:
    """The outputs of `model` on x as a list, batch by batch as Model.predict
    computes them.  One batch (the default for calibration): its outputs as
    they come, without predict's copy of them all (at 512x512 MobileNet's 16
    frames, 1.5 GB); several batches: concatenated, so briefly twice."""
    outs = []
    for start in range(0, len(x), batch_size):
        out = model.predict_on_batch(x[start:start + batch_size])
        outs.append(list(out) if isinstance(out, (list, tuple)) else [out])
    return outs[0] if len(outs) == 1 else [np.concatenate(parts) for parts in zip(*outs)]


def _calibration_scales(model, conv: _Converter, x: np.ndarray, percentile: float,
                        batch_size: int):
    """lambda of every scale group (module doc, step 2), as a function of the group."""
    lams: dict[int, list] = {}
    if conv.hidden:
        probe = keras.Model(model.inputs, [t for _, t, _, _ in conv.hidden])
        acts = _forward(probe, x, batch_size)
        for n, (group, _, max_value, layer) in enumerate(conv.hidden):
            a, acts[n] = acts[n], None            # each layer's activations freed once used
            lam = conv.clips.get(group) or percentile_scale(a, percentile)
            if lam <= 0:
                raise NetworkError(f"{who(layer)}: no positive activation on the calibration "
                                   "data (a dead layer); the layer cannot be normalized")
            lams.setdefault(conv.find(group), []).append(
                lam if max_value is None else min(lam, max_value))
    fixed = {conv.find(g) for g in conv.fixed}

    def lam_of(group: int) -> float:
        root = conv.find(group)
        return 1.0 if root in fixed or root not in lams else max(lams[root])
    return lam_of


def convert(keras_model, x_calibration, percentile: float = 99.9, reset: str = "soft",
            batch_size: int = 256, method: str = "rate", code: str = "rate",
            steps_per_window: int = 32):
    """An NxModel equivalent to a trained Keras model (see the module docstring).

    x_calibration: (N, *input_shape) samples in [0, 1] (they enter as constant
    currents; 1.0 fires every step) on which the activations are measured.
    percentile: p in (0, 100], the activation percentile put at the threshold.
    reset: 'soft' (reset by subtraction, default) or 'hard' (reset to zero) for
    the hidden layers; the readout always resets by subtraction.  batch_size: of
    the Keras forward pass over x_calibration.  method: 'rate' (default:
    every neuron starts at v = 0) or 'low_latency' (needs reset='soft'; the
    neurons start so that each is at half its threshold when its input
    arrives: nxcompile.low_latency).  code: 'rate' (this NxModel) or
    'ttfs': its IR mapped to single-spike neurons with windows of
    steps_per_window steps, a nxcompile.ttfs.TTFSNetwork (method 'rate' only).
    """
    if code not in CODES:
        raise NetworkError(f"code={code!r} not one of {CODES}")
    if reset not in RESET_MODES:
        raise NetworkError(f"reset={reset!r} not one of {RESET_MODES}")
    if method not in METHODS:
        raise NetworkError(f"method={method!r} not one of {METHODS}")
    if method != "rate" and code != "rate":
        raise NetworkError(f"method={method!r} is a rate-code conversion; code={code!r} takes "
                           "method='rate'")
    if method == "low_latency" and reset != "soft":
        raise NetworkError(f"method='low_latency' resets by subtraction; reset={reset!r} must "
                           "be 'soft'")
    if not 0 < percentile <= 100:
        raise NetworkError(f"percentile={percentile} must be in (0, 100]")
    try:
        inputs, outputs = list(keras_model.inputs), list(keras_model.outputs)
    except (AttributeError, ValueError):
        raise NetworkError(f"model '{keras_model.name}' has no inputs/outputs; build it with an "
                           "Input (functional or Sequential) first") from None
    if len(inputs) != 1 or len(outputs) != 1:
        raise NetworkError(f"model '{keras_model.name}' has {len(inputs)} inputs and "
                           f"{len(outputs)} outputs; convert needs exactly one of each")
    conv = _Converter(keras_model, reset, code)
    conv.resolve(inputs[0])
    value = conv.resolve(conv.readout_tensor)
    out = conv.readout(value)
    x = np.asarray(x_calibration, np.float32)
    shape = tuple(inputs[0].shape[1:])
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape or not len(x):
        raise NetworkError(f"x_calibration: shape {x.shape}, needs "
                           f"(N, {', '.join(map(str, shape))})")
    if x.min() < 0 or x.max() > 1:
        raise NetworkError(f"x_calibration: values in [{x.min():.3g}, {x.max():.3g}], must be in "
                           "[0, 1] (the input layer turns 1.0 into one spike per step); rescale "
                           "the data and retrain")
    lam_of = _calibration_scales(keras_model, conv, x, percentile, batch_size)
    for setter in conv.setters:
        setter(lam_of)
    snn = NxModel(conv.input_layer.output, out.tensor, name=f"{keras_model.name}_snn")
    _scale_readout(snn, out.tensor._keras_history[0], value, x, batch_size)
    if conv.spike_norms or code == "ttfs" or method == "low_latency":
        # the IR once: where a BatchNormalization after neurons cannot be folded it says so now
        ir = snn.to_ir()
        if code == "ttfs":
            return to_ttfs(ir, steps_per_window)
        if method == "low_latency":
            start_at_half_threshold(snn, ir)
    return snn


def _scale_readout(snn, layer, readout, x: np.ndarray, batch_size: int) -> None:
    """With lambda = 1 the readout computes the ANN's logits: shift and scale
    them (module doc, step 3)."""
    z = snn.predict(x, batch_size=batch_size, verbose=0)
    if isinstance(layer, NxAdd):
        gains, bias = layer.get_weights()
        # the weights and bias the IR gets (nxcompile.keras_ir): shortcut gains, and
        # kernels and biases of the layers without neurons times their gains
        kernels, total_bias = [], bias.astype(np.float64)
        for t, g in zip(layer._inbound_nodes[0].input_tensors, gains):
            via = t._keras_history[0]
            if getattr(via, "neurons", True):
                kernels.append(np.abs(g))
                continue
            w = via.get_weights()
            kernels.append(np.abs(w[0]).ravel() * np.abs(g).max())
            if len(w) > 1:
                total_bias = total_bias + w[1] * g
        offset, lam = readout_offset_and_scale(z, np.concatenate(kernels), total_bias)
        _check_readout(readout, lam)
        layer.set_weights([gains / lam, (bias + offset) / lam])
        return
    kernel, bias = layer.get_weights()
    offset, lam = readout_offset_and_scale(z, kernel, bias)
    _check_readout(readout, lam)
    layer.set_weights([kernel / lam, (bias + offset) / lam])


def _check_readout(readout, lam: float) -> None:
    if lam <= 0:
        raise NetworkError(f"{who(readout.layer)}: its outputs on the calibration data are "
                           "all 0 or negative (a dead readout)")
