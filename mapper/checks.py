"""What an IntNetwork and its Partition must satisfy before they run or are
saved: every parameter fits the bits Loihi (and Lava) store it in, the arrays
have the layers' sizes, and the partition holds every neuron once.  Numpy
only, so loading a saved model does not import Lava.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from hwmodel import formats
from hwmodel import synapse_format as sf
from hwmodel.errors import NetworkError
from hwmodel.network import RESET_MODES, IntConnection, IntLayer, IntNetwork
from hwmodel.partition import Partition


def _check_range(what: str, value, lo: int, hi: int) -> None:
    value = np.asarray(value)
    if value.size and (value.min() < lo or value.max() > hi):
        bad = value.min() if value.min() < lo else value.max()
        raise NetworkError(f"{what}={bad} outside {lo}..{hi}")


def check_layer(layer: IntLayer) -> None:
    """Raise ValueError if a parameter does not fit the bits Lava stores it in
    (Lava would silently wrap it)."""
    where = f"layer {layer.name}:"
    _check_range(f"{where} vth", layer.vth, 0, formats.THRESHOLD_MANT_MAX)
    _check_range(f"{where} du", layer.du, 0, formats.DECAY_UNITY - 1)
    _check_range(f"{where} dv", layer.dv, 0, formats.DECAY_UNITY - 1)
    _check_range(f"{where} bias_exp", layer.bias_exp, 0, formats.BIAS_EXP_MAX)
    _check_range(f"{where} bias_mant", layer.bias_mant, -formats.BIAS_MANT_MAX - 1,
                 formats.BIAS_MANT_MAX)
    if layer.reset not in RESET_MODES:
        raise NetworkError(f"{where} reset={layer.reset!r} not one of {RESET_MODES}")
    _check_range(f"{where} reset_interval", layer.reset_interval, 0, np.iinfo(np.int32).max)
    if layer.reset_interval:
        _check_range(f"{where} reset_offset", layer.reset_offset, 0, layer.reset_interval - 1)
        if layer.reset == "soft":
            raise NetworkError(f"{where} a periodic reset (reset_interval="
                               f"{layer.reset_interval}) needs reset 'hard' (lava's LIFReset)")
    if np.asarray(layer.bias_mant).dtype.kind not in "iu":
        raise NetworkError(f"{where} bias_mant has dtype {np.asarray(layer.bias_mant).dtype}; "
                           f"it holds integers")
    if np.shape(layer.bias_mant) != (layer.n,):
        raise NetworkError(f"{where} bias_mant has shape {np.shape(layer.bias_mant)}, the layer "
                           f"has {layer.n} neurons")


def check_connection(conn: IntConnection) -> None:
    """Raise ValueError unless weight_exp is in 0..7 and the weights lie on the
    grid Lava stores for the connection's sign mode and bit width (so Lava's
    clip and truncation keep them).

    A negative exponent is refused: Loihi applies it to every synapse before
    summing (keeping 6 fractional bits) while Lava's Sparse shifts the sum of
    its block right and floors it, so the two differ, and the result would
    depend on how the partition splits the source layer.  mapper.quantize
    never emits one."""
    where = f"connection {conn.source}->{conn.target}:"
    if conn.sign_mode not in formats.SIGN_MODES:
        raise NetworkError(f"{where} sign_mode={conn.sign_mode!r} not one of {formats.SIGN_MODES}")
    if conn.weight_exp < 0:
        raise NetworkError(
            f"{where} weight_exp={conn.weight_exp} is negative; the Lava back-end takes 0.."
            f"{formats.WEIGHT_EXP_MAX}: Lava floors each core block's shifted sum where Loihi "
            f"shifts every synapse before summing, so they would disagree (mapper.quantize "
            f"never emits a negative exponent)")
    _check_range(f"{where} weight_exp", conn.weight_exp, 0, formats.WEIGHT_EXP_MAX)
    _check_range(f"{where} num_weight_bits", conn.num_weight_bits, 1, formats.WEIGHT_BITS_MAX)
    if conn.weights is None and (conn.window is None or conn.delays is not None):
        raise NetworkError(f"{where} no weights: only a connection with a window and without "
                           f"delays may keep its synapses in the window's kernel")
    values = conn.window.kernel if conn.weights is None else conn.weights
    if values.dtype.kind not in "iu":
        raise NetworkError(f"{where} weights have dtype {values.dtype}; they hold integers")
    values = np.ravel(values) if conn.weights is None else values.data
    step = formats.weight_step(conn.num_weight_bits, conn.sign_mode)
    _check_range(f"{where} weight ({conn.sign_mode})", values,
                 *formats.weight_range(conn.sign_mode))
    off_grid = values[values % step != 0]
    if off_grid.size:
        raise NetworkError(f"{where} weight {off_grid[0]} is not a multiple of {step}, the step of "
                           f"{conn.num_weight_bits}-bit {conn.sign_mode} weights")
    check_delays(conn)


def check_delays(conn: IntConnection) -> None:
    """NetworkError unless the connection's delays (if any) are a matrix of the
    weights' shape of integers 0..synapse_format.DELAY_MAX, non-zero only on
    stored synapses, and a connection with delays has no window."""
    d = conn.delays
    if d is None:
        return
    where = f"connection {conn.source}->{conn.target}:"
    if not sp.issparse(d) or d.shape != conn.weights.shape:
        raise NetworkError(f"{where} delays must be a sparse matrix of the weights' shape "
                           f"{conn.weights.shape}, got {type(d).__name__} "
                           f"{getattr(d, 'shape', None)}")
    if d.dtype.kind not in "iu":
        raise NetworkError(f"{where} delays have dtype {d.dtype}; they hold integers (steps)")
    _check_range(f"{where} delay (time steps)", d.data, 0, sf.DELAY_MAX)
    on_synapses = sp.csr_matrix(d).multiply(conn.weights != 0)
    stray = int(np.count_nonzero(d.data)) - int(np.count_nonzero(on_synapses.data))
    if stray:
        raise NetworkError(f"{where} {stray} delays on synapses without a weight")
    if conn.max_delay and conn.window is not None:
        raise NetworkError(f"{where} a connection with delays has no window")


def check_record(net: IntNetwork, record) -> None:
    """Raise ValueError if `record` names a layer the network does not have."""
    unknown = set(record) - set(net.layers)
    if unknown:
        raise NetworkError(f"record: unknown layers {sorted(unknown)}; layers: {list(net.layers)}")


def check_partition(net: IntNetwork, partition: Partition) -> None:
    """Raise ValueError unless the board has chips, every core sits on one of
    them, core indices are unique and the cores of every layer hold each of its
    neurons once."""
    board = partition.board
    if board.num_chips < 1 or board.chip.cores_per_chip < 1:
        raise NetworkError(f"partition: board {board.name} has {board.num_chips} chips of "
                           f"{board.chip.cores_per_chip} cores; it needs at least one of each")
    for core in partition.cores:
        if not 0 <= core.chip < board.num_chips:
            raise NetworkError(f"partition: core {core.index} sits on chip {core.chip}, board "
                               f"{board.name} has chips 0..{board.num_chips - 1}")
        if np.asarray(core.neurons).dtype.kind not in "iu":
            raise NetworkError(f"partition: core {core.index} neurons have dtype "
                               f"{np.asarray(core.neurons).dtype}; they are integer indices")
    indices, counts = np.unique([c.index for c in partition.cores], return_counts=True)
    if np.any(counts > 1):
        raise NetworkError(f"partition: core index {indices[counts > 1][0]} is used by "
                           f"{counts.max()} cores")
    for core in partition.cores:
        if core.layer not in net.layers:
            raise NetworkError(f"partition: core {core.index} holds unknown layer {core.layer!r}")
    for name, layer in net.layers.items():
        held = np.concatenate([np.asarray(c.neurons, np.int64) for c in partition.cores_of(name)]
                              or [np.zeros(0, np.int64)])
        if len(held) != layer.n or not np.array_equal(np.sort(held), np.arange(layer.n)):
            raise NetworkError(f"partition: the cores of layer {name} hold {len(held)} neuron "
                               f"indices, not each of 0..{layer.n - 1} exactly once")


def check_network(net: IntNetwork) -> None:
    """Raise ValueError unless every layer and connection passes check_layer and
    check_connection, connections join known layers with weights of shape
    (target size, source size), and the input and output layers exist."""
    for name in (net.input_layer, net.output_layer):
        if name not in net.layers:
            raise NetworkError(f"network: input/output layer {name!r} is not one of its layers "
                               f"{list(net.layers)}")
    for layer in net.layers.values():
        check_layer(layer)
    for conn in net.connections:
        where = f"connection {conn.source}->{conn.target}:"
        for name in (conn.source, conn.target):
            if name not in net.layers:
                raise NetworkError(f"{where} unknown layer {name!r}")
        check_connection(conn)
        want = (net.layers[conn.target].n, net.layers[conn.source].n)
        shape = (conn.weights.shape if conn.weights is not None else
                 (int(np.prod(conn.window.target_shape)), int(np.prod(conn.window.source_shape))))
        if shape != want:
            raise NetworkError(f"{where} weights have shape {shape}, the layers "
                               f"need {want}")
