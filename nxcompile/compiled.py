"""A compiled network: its IR, partition and integer network, a report, run(),
save() and load()."""
from __future__ import annotations

import importlib
import numbers
from dataclasses import dataclass, field

import numpy as np

from hwmodel import formats
from hwmodel.errors import NetworkError
from hwmodel.network import IntNetwork
from hwmodel.partition import Partition
from mapper.checks import check_record
from nxcompile import serialization
from nxcompile.ir import NetworkIR
from partitioner.report import format_table, partition_report, save_utilization

# backend name -> the module whose BACKEND (a hwmodel.backend.Backend) runs it;
# imported on first use (Lava's import takes a second and sets the fork start method).
BACKENDS = {"reference": "hwmodel.simulator", "lava": "mapper.lava_run", "loihi": "mapper.loihi"}


@dataclass
class RunResult:
    """Spike counts of the output layer, shaped (batch, *output_shape); its final
    voltages v (same shape, 24-bit integer units) and threshold vth << 6 (v
    units); recorded spike trains per layer, shaped (batch, num_steps,
    *layer_shape); spike counts (batch, n) of every layer the backend counted
    (the reference simulator: all layers; Lava: the output and recorded layers)."""

    spike_counts: np.ndarray
    voltages: np.ndarray
    threshold: int
    trains: dict = field(default_factory=dict)
    num_steps: int = 0
    layer_counts: dict = field(default_factory=dict)

    @property
    def potentials(self) -> np.ndarray:
        """Output layer's input summed over the run, in v units: spikes * threshold
        + v.  Exact for a non-spiking readout (v alone) and for reset by
        subtraction as long as v does not saturate; with hard reset it ranks by
        spike count, then by voltage."""
        return self.spike_counts.astype(np.int64) * self.threshold + self.voltages

    @property
    def predictions(self) -> np.ndarray:
        """Class per sample: the output neuron with the largest potential (lowest
        index on ties)."""
        return self.potentials.reshape(len(self.potentials), -1).argmax(axis=1)


class CompiledModel:
    """Result of NxModel.compile(): partition + quantized network, ready to run."""

    def __init__(self, ir: NetworkIR, partition: Partition, network: IntNetwork,
                 quantization: dict, timings: dict):
        self.ir = ir
        self.partition = partition
        self.network = network
        self.quantization = quantization
        self.timings = timings

    @property
    def num_cores(self) -> int:
        return self.partition.num_cores

    @property
    def num_chips(self) -> int:
        return self.partition.num_chips

    @property
    def lower_bound_cores(self) -> int:
        """Lower bound on the cores of any partition (partitioner.bounds)."""
        return self.partition.lower_bound_cores

    @property
    def core_assignment(self) -> list:
        """Per core: chip, layer name and the flat (Keras HWC) indices of its neurons."""
        return [{"core": c.index, "chip": c.chip, "layer": c.layer, "neurons": c.neurons}
                for c in self.partition.cores]

    def report(self) -> str:
        """Per-layer partition table with quantization columns (threshold mantissa,
        weight exponent, relative weight and bias error, weights clipped by a
        percentile scale), totals and timings."""
        names = self.ir.order()
        q = self.quantization
        extra = {"vth": {n: q[n].vth for n in names},
                 "w exp": {n: q[n].weight_exp for n in names},
                 "w err": {n: f"{100 * q[n].weight_error:.2f}%" for n in names},
                 "b err": {n: f"{100 * q[n].bias_error:.2f}%" for n in names},
                 "w clipped": {n: q[n].weights_clipped for n in names}}
        timing = ", ".join(f"{k} {v:.2f} s" for k, v in self.timings.items())
        return partition_report(self.partition, names, {n: self.ir.layer(n).shape for n in names},
                                extra_columns=extra,
                                footer=[*self._decay_section(), f"compile time: {timing}"])

    def _decay_section(self) -> list:
        """Report lines for layers whose decays stand for float time constants
        (NeuronSpec.tau_u, tau_v; the NIR importer sets them): per decay the time
        constant wanted and the one the 12-bit decay gives, in time steps, and the
        relative error.  No lines without such layers."""
        rows = []
        for name in self.ir.order():
            nrn = self.ir.layer(name).neuron
            if nrn.tau_u is None and nrn.tau_v is None:
                continue
            row = {"layer": name}
            for var, tau, decay in (("v", nrn.tau_v, nrn.decay_v), ("u", nrn.tau_u,
                                                                    nrn.decay_u + 1)):
                got = formats.decay_time_constant(decay)
                row[f"d{var}"] = decay - (var == "u")
                row[f"tau_{var} wanted"] = "" if tau is None else f"{tau:.4g}"
                row[f"tau_{var} Loihi"] = f"{got:.4g}"
                row[f"tau_{var} err"] = "" if tau is None else f"{100 * (got - tau) / tau:+.3f}%"
            rows.append(row)
        if not rows:
            return []
        return ["decays (time constants in time steps: wanted, what the 12-bit decay gives, "
                "error)", format_table(rows)]

    def save(self, path):
        """Write this model to one file (JSON + npz in a zip, no pickle; see
        nxcompile.serialization); nxcompile.load(path) reads it back. Returns the path."""
        return serialization.write(path, ir=self.ir, partition=self.partition,
                                   network=self.network, quantization=self.quantization,
                                   timings=self.timings)

    def export_netx(self, path):
        """Write the network as a lava-dl netx HDF5 description where it fits that
        format (mapper.netx: chains, hard reset; NetxExportError otherwise). Returns the path."""
        from mapper.netx import export_netx
        return export_netx(self.ir, self.network, path)

    def to_lava(self, x=None):
        """The network as Lava processes with ports for a Lava user's own
        processes (mapper.lava_export.LavaExport): in spike input mode
        ``connect_input(source.s_out)`` feeds it spikes of shape (n_input,),
        flat HWC; in bias mode x is the frame.  ``output`` is the output
        layer's spikes (OutPort, element i = neuron ``output_order[i]``).  Run
        it with mapper.lava_run.running(process, num_steps)."""
        from mapper.lava_export import to_lava
        return to_lava(self.network, self.partition, x)

    def save_utilization(self, path):
        """Write the utilization picture (cores x resources heat map) as a PNG; returns its path."""
        return save_utilization(self.partition, path)

    def energy(self, result: RunResult, costs=None):
        """Energy (neurocore dynamic and static, x86, board), time and
        energy-delay product per inference of a run (hwmodel.energy.estimate;
        costs: a hwmodel.energy.LoihiCosts, default CALIBRATED: SANA-FE's
        calibrated per-operation costs, NxTF's measured static power).  Needs the
        spike counts of every layer: a run on the reference backend (bit-exact
        with Lava)."""
        from hwmodel.energy import CALIBRATED, estimate
        return estimate(self.network, self.partition, result.layer_counts, result.num_steps,
                        CALIBRATED if costs is None else costs)

    def _check_input(self, x: np.ndarray, num_steps: int) -> np.ndarray:
        """x as a batch; NetworkError unless it holds at least one sample of the
        input's shape with real values, frames in [0, 1] or spikes of 0 and 1; a
        (steps, channels) sequence is the map (1, steps, channels) the IR holds."""
        inp = self.network.layers[self.network.input_layer]
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":
            raise NetworkError(f"layer {inp.name}: input of dtype {x.dtype}; inputs are real "
                               f"numbers")
        want = (num_steps, *inp.shape) if inp.input_mode == "spikes" else tuple(inp.shape)
        if len(inp.shape) == 3 and inp.shape[0] == 1 and x.ndim >= 2 and \
                x.shape[-3:] != tuple(inp.shape) and x.shape[-2:] == tuple(inp.shape[1:]):
            x = np.expand_dims(x, -3)   # (steps, channels) sequences: maps of height 1
        if x.ndim == len(want):
            x = x[None]
        if tuple(x.shape[1:]) != want:
            raise NetworkError(f"layer {inp.name}: input shape {tuple(x.shape[1:])} does not "
                               f"match {want} (input mode {inp.input_mode!r}, num_steps "
                               f"{num_steps})")
        if not len(x):
            raise NetworkError(f"layer {inp.name}: the batch holds no sample")
        if inp.input_mode == "spikes":
            bad = x[~np.isin(x, (0, 1))]
            if bad.size:
                raise NetworkError(f"layer {inp.name}: spike input holds {bad[0]}; spikes are 0 "
                                   f"or 1")
        elif inp.input_mode == "bias":     # bias_mant: IntLayer.input_bias checks the mantissas
            bad = x[~((x >= 0) & (x <= 1))]         # NaN included
            if bad.size:
                raise NetworkError(f"layer {inp.name}: input value {bad[0]:.4g} outside [0, 1]; "
                                   f"frames are constant currents in [0, 1] (1.0 fires every step)")
        return x

    def run(self, x, num_steps: int, backend: str = "reference", record=None) -> RunResult:
        """Run a batch for num_steps time steps on a backend: 'reference' (hwmodel's
        batched simulator), 'lava' (Lava's fixed-point CPU simulator) or 'loihi'
        (a Loihi 2 board through Intel's lava-loihi; mapper.loihi).

        x: (batch, *input_shape) frames in [0, 1] (bias input mode), integer
        bias mantissas (bias_mant mode, e.g. a netx import) or
        (batch, num_steps, *input_shape) 0/1 spikes (spike input mode); a single
        sample without the batch axis is accepted.  record: a layer name or
        layer names whose spike trains to return; None (default): the layers
        built with probeSpikes=True (LayerSpec.probe).
        """
        if not isinstance(num_steps, numbers.Integral) or isinstance(num_steps, bool):
            raise NetworkError(f"num_steps must be an integer, got {num_steps!r}")
        if num_steps < 1:
            raise NetworkError(f"num_steps must be >= 1, got {num_steps}")
        num_steps = int(num_steps)
        if backend not in BACKENDS:
            raise NetworkError(f"unknown backend {backend!r}; one of {tuple(BACKENDS)}")
        if record is None:
            record = tuple(n for n in self.ir.order() if self.ir.layer(n).probe)
        record = (record,) if isinstance(record, str) else tuple(record)
        check_record(self.network, record)
        x = self._check_input(x, num_steps)
        runner = importlib.import_module(BACKENDS[backend]).BACKEND
        out = runner.run(self.network, self.partition, x, num_steps, record=record)
        net = self.network
        out_layer = net.layers[net.output_layer]
        counts = out.counts[net.output_layer].reshape(len(x), *out_layer.shape)
        voltages = out.voltages[net.output_layer].reshape(len(x), *out_layer.shape)
        trains = {n: t.reshape(len(x), num_steps, *net.layers[n].shape)
                  for n, t in out.trains.items()}
        return RunResult(spike_counts=counts, voltages=voltages,
                         threshold=int(out_layer.vth) << formats.THRESHOLD_SHIFT, trains=trains,
                         num_steps=num_steps, layer_counts=dict(out.counts))


def load(path) -> CompiledModel:
    """Read a file written by CompiledModel.save (nxcompile.load); a file that is
    not one raises ModelFileError."""
    return CompiledModel(**serialization.read(path))
