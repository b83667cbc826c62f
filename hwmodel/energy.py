"""Energy and time per inference on Loihi 1, from the activity of a simulated run.

Activity (per inference, averaged over the samples of a run):
  synaptic operations = sum over neurons of spikes x fan-out (NxTF thesis
      eq. 2.22), fan-out = the neuron's synapses (non-zero weights) in all its
      outgoing connections;
  compartment updates = compartments x time steps (every compartment is
      updated every step; soft reset uses two compartments per neuron);
  spikes = spikes fired by neurons with compartments (spike input has none);
  spike messages = sum over neurons of spikes x the number of cores that hold
      the neuron's targets (one message per destination core and spike).

Energy, as separate terms (EnergyEstimate.energy_by_component):
  neurocore dynamic   synaptic ops x E_syn + compartment updates x E_update +
                      spikes x E_spike + messages x (E_message + routing hops)
  neurocore static    used cores x P_core_static x time
  x86                 used chips x P_x86 x time (the embedded Lakemont cores
                      that run the time-step loop and host I/O)
  board               P_board x time (the rest of the board)
Time per step = the busiest core's work (its synaptic ops, compartment
updates, spikes and messages out, at their per-operation latencies, averaged
over the run) + the barrier synchronization; time per inference = steps x time
per step; EDP = total energy x time.

Two cost sets (LoihiCosts):
  CALIBRATED (the default)  per-operation costs of SANA-FE's Loihi model,
      calibrated against Loihi measurements [SFE]; static, x86 and board power
      measured by NxTF on Loihi [NXTF].
  PRE_SILICON  per-operation costs of Davies et al. 2018's pre-silicon
      simulation [D18] (minimum synaptic energy, active neuron updates,
      within-tile spike plus mesh hops), same static, x86 and board power.

Sources
-------
[SFE] SANA-FE 2.2.9 (SLAM-Lab/SANA-FE), examples/loihi.yaml, its calibrated
      Loihi description: synaptic op 35.5 pJ / 3.8 ns (dense); spike message
      111 pJ / 5.1 ns out (16 ns in); spike 69.3 pJ / 30 ns; compartment update
      51.2 pJ / 6.0 ns (+21.6 pJ / 3.7 ns when its state changes, not charged
      here); barrier 0.6 / 1.0 / 1.4 / 1.8 us for 1 / 2 / 4 / 29+ tiles (between
      table entries the next larger one is charged, an upper bound); 4 cores
      per tile, 8 x 4 tiles per chip.
[NXTF] B. Rueckauer, "NxTF" (thesis, tables 3.2-3.5; ACM JETC 18(3), 2022),
      measured on Loihi: MNIST CNN on 14 cores, neurocore static 16.96 mW
      (1.21 mW per core), x86 0.36 mW static + 22.29 mW dynamic, 1812 mW in
      all (so 1.71 W for the rest of the board); N-MNIST FC on 30 cores,
      neurocore static 37.18 mW (1.24 mW per core).
[D18] M. Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip
      Learning", IEEE Micro 38(1), 2018, Table 2 (pre-silicon, 0.75 V): synaptic
      spike op 23.6 pJ (min) / 3.5 ns (max); neuron update 81 pJ / 8.4 ns
      (active; inactive 52 pJ / 5.3 ns); within-tile spike 1.7 pJ; tile hop
      3.0 pJ east-west / 4.0 pJ north-south; barrier 113-465 ns (1-32 tiles; 465
      ns is charged for 2 tiles or more, an upper bound).
[F20] E. P. Frady et al., "Neuromorphic Nearest-Neighbor Search Using Intel's
      Pohoiki Springs", NICE 2020: barrier 14.3-16.2 us across hundreds of chips.

Modelling choices: every compartment is charged an update every step; the
board power is one board's (a multi-board system such as Pohoiki Springs
would need one term per board); messages between chips are counted, not
charged extra (no published figure); the barrier across several chips is
[F20]'s, measured across hundreds of chips, so for a few chips an upper bound;
cores sit on their chip's mesh in the order of their index (k-th core of a
chip in tile k // 4, tile t at column t % 8, row t // 8).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from hwmodel.errors import NetworkError
from hwmodel.network import IntNetwork


@dataclass(frozen=True)
class LoihiCosts:
    """Per-operation energies (J) and latencies (s), static powers (W), barrier
    times (s) and mesh geometry of Loihi 1 (module doc for the two sets).  No
    per-operation figures are published for Loihi 2, so a Loihi 2 board is
    estimated with Loihi 1's too."""

    name: str = "calibrated (SANA-FE per operation, NxTF measured static power)"
    synaptic_op: float = 35.5e-12          # [SFE]
    synaptic_op_time: float = 3.8e-9       # [SFE]
    compartment_update: float = 51.2e-12   # [SFE]
    compartment_update_time: float = 6.0e-9    # [SFE]
    spike: float = 69.3e-12                # [SFE]
    spike_time: float = 30e-9              # [SFE]
    spike_message: float = 111e-12         # [SFE] per message out
    spike_message_time: float = 5.1e-9     # [SFE] out
    spike_in_tile: float = 0.0             # [D18] 1.7 pJ, in [SFE]'s message cost
    hop_east_west: float = 0.0             # [D18] 3.0 pJ, in [SFE]'s message cost
    hop_north_south: float = 0.0           # [D18] 4.0 pJ, in [SFE]'s message cost
    barrier_by_tiles: tuple = ((1, 0.6e-6), (2, 1.0e-6), (4, 1.4e-6), (32, 1.8e-6))  # [SFE]
    barrier_multi_chip: float = 15e-6      # [F20] 14.3-16.2 us
    core_static_power: float = 1.2e-3      # [NXTF] per used core
    x86_power: float = 22.65e-3            # [NXTF] per used chip, static + dynamic
    board_power: float = 1.71              # [NXTF] 1812 mW minus neurocores and x86
    cores_per_tile: int = 4                # [SFE]
    mesh_width: int = 8                    # [SFE] tiles per mesh row


CALIBRATED = LoihiCosts()
PRE_SILICON = LoihiCosts(
    name="pre-silicon (Davies et al. 2018 per operation, NxTF measured static power)",
    synaptic_op=23.6e-12, synaptic_op_time=3.5e-9, compartment_update=81e-12,
    compartment_update_time=8.4e-9, spike=0.0, spike_time=0.0, spike_message=0.0,
    spike_message_time=0.0, spike_in_tile=1.7e-12, hop_east_west=3.0e-12, hop_north_south=4.0e-12,
    barrier_by_tiles=((1, 113e-9), (32, 465e-9)))

DYNAMIC = ("synaptic", "compartments", "spikes", "messages")     # the neurocore dynamic terms


@dataclass
class EnergyEstimate:
    """Per inference: activity counts, energy by component (J; DYNAMIC terms,
    then 'neurocore static', 'x86' and 'board'), time (s) and energy-delay
    product (J s) of the total."""

    num_steps: int
    synaptic_ops: float
    neuron_updates: float
    spikes: float
    spike_messages: float
    offchip_messages: float
    energy_by_component: dict = field(default_factory=dict)
    time: float = 0.0

    @property
    def energy(self) -> float:
        """Total energy (J): dynamic, static, x86 and board."""
        return float(sum(self.energy_by_component.values()))

    @property
    def dynamic(self) -> float:
        """Neurocore dynamic energy (J): the DYNAMIC terms."""
        return float(sum(self.energy_by_component.get(k, 0.0) for k in DYNAMIC))

    @property
    def edp(self) -> float:
        return self.energy * self.time

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v * 1e6:.3g}" for k, v in self.energy_by_component.items())
        return (f"{self.num_steps} steps: {self.energy * 1e6:.3g} uJ in all, "
                f"{self.dynamic * 1e6:.3g} uJ neurocore dynamic ({parts} uJ), "
                f"{self.time * 1e3:.3g} ms, EDP {self.edp * 1e9:.3g} uJ*ms; "
                f"{self.synaptic_ops:.3g} synaptic ops, {self.spikes:.3g} spikes, "
                f"{self.neuron_updates:.3g} neuron updates per inference")


def _mesh_positions(partition, costs: LoihiCosts) -> np.ndarray:
    """(num_cores, 3) chip, mesh column and mesh row of every core index (module doc)."""
    cores = sorted(partition.cores, key=lambda c: c.index)
    pos = np.zeros((max((c.index for c in cores), default=-1) + 1, 3), np.int64)
    on_chip = {}
    for core in cores:
        k = on_chip.get(core.chip, 0)
        on_chip[core.chip] = k + 1
        tile = k // costs.cores_per_tile
        pos[core.index] = (core.chip, tile % costs.mesh_width, tile // costs.mesh_width)
    return pos


class _Traffic:
    """Per connection, sparse (target core x source neuron) matrices: synapses
    (count), messages (1 per pair), on-chip routing energy of one message (J)
    and off-chip messages (1 per pair whose cores are on different chips); and
    per layer the core of every neuron (core_of)."""

    def __init__(self, net: IntNetwork, partition, costs: LoihiCosts):
        pos = _mesh_positions(partition, costs)
        core_of = {}
        for core in partition.cores:
            owner = core_of.setdefault(core.layer, np.zeros(net.layers[core.layer].n, np.int64))
            owner[np.asarray(core.neurons, np.int64)] = core.index
        self.num_cores, self.core_of = len(pos), core_of
        self.per_conn = []
        for conn in net.connections:
            w = conn.matrix().tocoo()
            keep = w.data != 0
            shape = (self.num_cores, w.shape[1])
            synapses = sp.csr_matrix((np.ones(int(keep.sum())),
                                      (core_of[conn.target][w.row[keep]], w.col[keep])), shape=shape)
            synapses.sum_duplicates()
            pairs = synapses.tocoo()
            src, dst = pos[core_of[conn.source][pairs.col]], pos[pairs.row]
            same_chip = src[:, 0] == dst[:, 0]
            route = (costs.spike_in_tile + np.abs(src[:, 1] - dst[:, 1]) * costs.hop_east_west
                     + np.abs(src[:, 2] - dst[:, 2]) * costs.hop_north_south)
            index = (pairs.row, pairs.col)
            self.per_conn.append((
                conn.source, synapses,
                sp.csr_matrix((np.ones(len(pairs.row)), index), shape=shape),
                sp.csr_matrix((np.where(same_chip, route, 0.0), index), shape=shape),
                sp.csr_matrix(((~same_chip).astype(float), index), shape=shape)))


def _barrier(partition, costs: LoihiCosts) -> float:
    """Barrier time per step: by the tiles of the busiest chip on one chip, the
    multi-chip figure across several."""
    if partition.num_chips > 1:
        return costs.barrier_multi_chip
    tiles = -(-len(partition.cores) // costs.cores_per_tile)
    return next((t for n, t in costs.barrier_by_tiles if tiles <= n), costs.barrier_by_tiles[-1][1])


def estimate(net: IntNetwork, partition, counts: dict, num_steps: int,
             costs: LoihiCosts = CALIBRATED) -> EnergyEstimate:
    """Energy, time and EDP per inference of a run of num_steps steps.

    counts: layer name -> (batch, n) spike counts over the run, for every layer
    with outgoing connections (hwmodel.simulator fills all layers), batch >= 1.
    partition: the hwmodel.partition.Partition the network runs on.
    """
    missing = sorted({c.source for c in net.connections} - set(counts))
    if missing:
        raise NetworkError(f"energy estimate needs the spike counts of every layer; missing "
                           f"{missing} (run with backend='reference', which counts all layers)")
    if any(len(c) == 0 for c in counts.values()):
        raise NetworkError("energy estimate needs a run of at least one sample")
    mean = {name: np.asarray(c, np.float64).reshape(len(c), -1).mean(axis=0)
            for name, c in counts.items()}
    traffic = _Traffic(net, partition, costs)
    core_synops, core_messages = np.zeros(traffic.num_cores), np.zeros(traffic.num_cores)
    messages = route_energy = offchip = 0.0
    for source, synapses, msgs, energy, off in traffic.per_conn:
        spikes = mean[source]
        core_synops += synapses @ spikes
        np.add.at(core_messages, traffic.core_of[source],          # messages each core sends
                  np.asarray(msgs.sum(axis=0)).ravel() * spikes)
        messages += float((msgs @ spikes).sum())
        route_energy += float((energy @ spikes).sum())
        offchip += float((off @ spikes).sum())
    core_updates, core_spikes = np.zeros(traffic.num_cores), np.zeros(traffic.num_cores)
    for core in partition.cores:
        layer = net.layers[core.layer]
        if not (layer.is_input and layer.input_mode == "spikes"):
            core_updates[core.index] = len(core.neurons) * layer.compartments_per_neuron * num_steps
            if core.layer in mean:
                core_spikes[core.index] = mean[core.layer][np.asarray(core.neurons, np.int64)].sum()
    synops, updates, fired = (float(a.sum()) for a in (core_synops, core_updates, core_spikes))
    busy = (core_synops * costs.synaptic_op_time + core_updates * costs.compartment_update_time
            + core_spikes * costs.spike_time + core_messages * costs.spike_message_time)
    time = float(busy.max(initial=0.0)) + num_steps * _barrier(partition, costs)
    chips = partition.num_chips
    return EnergyEstimate(
        num_steps=num_steps, synaptic_ops=synops, neuron_updates=updates,
        spikes=fired, spike_messages=messages,
        offchip_messages=offchip,
        energy_by_component={"synaptic": synops * costs.synaptic_op,
                             "compartments": updates * costs.compartment_update,
                             "spikes": fired * costs.spike,
                             "messages": messages * costs.spike_message + route_energy,
                             "neurocore static": costs.core_static_power * len(partition.cores) * time,
                             "x86": costs.x86_power * chips * time,
                             "board": costs.board_power * time},
        time=time)
