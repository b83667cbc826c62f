"""lava-dl's netx HDF5 network description, as lava-dl 0.6 writes and reads it
(lava/lib/dl/netx/hdf5.py, utils.py; lava/lib/dl/slayer/block/base.py): the
facts that mapper.netx (export) and nxcompile.netx_import (import) share.

A file holds groups layer/0 .. layer/N-1, one block each: a `type` string
('input', 'flatten', 'dense', 'conv', 'pool', ...), its output `shape` in
(C, H, W) order (netx reverses it to Lava's (W, H, C)) or (n,), and for
synaptic blocks `weight` (dense (out, in), possibly stored 1-D; conv and pool
(C_out, C_in / groups, kH, kW[, 1]) cross-correlation kernels), optional
`bias` (mantissas with netx's fixed bias_exp 6, per channel or per neuron),
`stride`, `padding` (symmetric), `dilation` as (y, x) pairs, `groups`,
optional per-synapse `delay`, and a `neuron` group.  netx turns the CUBA and
LOIHI neuron types into Lava LIF(vth=vThMant, du=iDecay - 1, dv=vDecay,
bias_exp=6) with hard reset; refDelay, wgtExp, theta, tauRho and scaleRho are
not used.  A block without a neuron group gets DEFAULT_NEURON.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

INPUT, FLATTEN, DENSE, CONV, POOL = "input", "flatten", "dense", "conv", "pool"
LIF_TYPES = ("CUBA", "LOIHI")      # both become Lava's LIF
BIAS_EXP = 6                       # netx gives every LIF neuron bias_exp 6
REF_DELAY = 1                      # what lava-dl writes; netx's LIF has no refractory period
MAX_DELAY = 62                     # netx clamps synaptic delays to 0..62 steps

# netx's neuron for a block without a `neuron` group (hdf5.Network.create_dense):
# u never decays (du = -1), v is cleared every step, vThMant 1 << 17 never fires.
DEFAULT_NEURON = {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17,
                  "refDelay": 1}

# Neuron types Loihi 1 cannot run, with the reason given when refusing them.
LOIHI2_ONLY = {
    "SDNN": "sigma-delta neurons with graded spikes",
    "RF": "resonate-and-fire neurons",
    "RF_IZ": "resonate-and-fire-Izhikevich neurons",
    "PHASE_RF": "phase resonate-and-fire neurons",
}
# Block types netx 0.6 itself does not build (hdf5.Network raises NotImplementedError).
NOT_IN_NETX = ("average", "concat", "convT", "unpool", "dense_comp", "dense_rec")


def read_string(dataset: h5py.Dataset) -> str:
    """A string entry ('type') as netx's NetDict reads it."""
    value = dataset[0] if dataset.shape else dataset[()]
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def write(group: h5py.Group, key: str, value) -> None:
    """One entry the way lava-dl writes it (strings as a 1-element bytes dataset)."""
    if isinstance(value, str):
        group.create_dataset(key, (1,), f"S{len(value)}", [value.encode("ascii")])
    else:
        group.create_dataset(key, data=np.asarray(value))


def write_file(path, blocks: list) -> Path:
    """A netx file of `blocks`: dicts of entries, 'neuron' a dict of its own."""
    path = Path(path)
    with h5py.File(path, "w") as f:
        layers = f.create_group("layer")
        for i, block in enumerate(blocks):
            group = layers.create_group(str(i))
            for key, value in block.items():
                if key == "neuron":
                    neuron = group.create_group("neuron")
                    for k, v in value.items():
                        write(neuron, k, v)
                else:
                    write(group, key, value)
    return path


def chw(shape_hwc: tuple) -> list:
    """(H, W, C) -> [C, H, W]; a 1-D shape as it is."""
    return [shape_hwc[2], shape_hwc[0], shape_hwc[1]] if len(shape_hwc) == 3 else list(shape_hwc)


def hwc(shape_chw) -> tuple:
    """netx's (C, H, W) -> (H, W, C); (n,) as it is."""
    shape = tuple(int(d) for d in np.ravel(shape_chw))
    return (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape


def chw_order(shape_hwc: tuple) -> np.ndarray:
    """For each flat netx (C, H, W) position of a layer of IR shape (H, W, C),
    the flat (H, W, C) index of the same neuron (how netx's flatten orders it)."""
    return np.arange(int(np.prod(shape_hwc))).reshape(shape_hwc).transpose(2, 0, 1).ravel()


def lif_params(neuron) -> dict:
    """Lava LIF parameters of a CUBA/LOIHI neuron group (or DEFAULT_NEURON)."""
    return {"vth": scalar(neuron, "vThMant"), "du": scalar(neuron, "iDecay") - 1,
            "dv": scalar(neuron, "vDecay"), "bias_exp": BIAS_EXP}


def scalar(group, key: str) -> int:
    """An integer entry of a group (an h5py group or a dict), stored as a scalar
    or a 1-element array."""
    value = group[key]
    return int(np.ravel(value[()] if hasattr(value, "shape") else value)[0])


def neuron_entry(vth: int, du: int, dv: int) -> dict:
    """The neuron group that netx turns into LIF(vth, du, dv, bias_exp=6)."""
    return {"type": "CUBA", "iDecay": du + 1, "vDecay": dv, "vThMant": vth,
            "refDelay": REF_DELAY}
