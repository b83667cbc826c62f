"""Energy and time per inference on Loihi, from the activity of a simulated run.

Activity (per inference, averaged over the samples of a run):
  synaptic operations = sum over neurons of spikes x fan-out (NxTF thesis
      eq. 2.22), fan-out = the neuron's synapses (non-zero weights) in all its
      outgoing connections;
  neuron updates = compartments x time steps (every compartment is updated
      every step; soft reset uses two compartments per neuron);
  spike messages = sum over neurons of spikes x the number of cores that hold
      the neuron's targets (one message per destination core and spike).
Energy = synaptic ops x E_syn + neuron updates x E_update + messages x their
routing energy + static power x chips x time.  Time per step = the busiest
core's work (its synaptic ops and compartment updates, at their per-operation
latencies, averaged over the run) + the barrier synchronization; time per
inference = steps x time per step; EDP = energy x time.

Sources
-------
[D18] M. Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip
      Learning", IEEE Micro 38(1), 2018, Table 2 (p. 96; pre-silicon SDF and
      SPICE simulation, values at 0.75 V), as in shared/LOIHI_AND_LAVA_FACTS.md:
      energy per synaptic spike op (min) 23.6 pJ, time per synaptic spike op
      (max) 3.5 ns; neuron update (active / inactive) 81 / 52 pJ and
      8.4 / 5.3 ns; within-tile spike 1.7 pJ; tile hop 3.0 pJ (east-west) /
      4.0 pJ (north-south); mesh-wide barrier sync 113-465 ns (1-32 tiles).
[F20] E. P. Frady et al., "Neuromorphic Nearest-Neighbor Search Using Intel's
      Pohoiki Springs", NICE 2020 (the facts file lists these under [D18]):
      barrier synchronization 14.3 us per 256-chip column, 16.2 us across
      768 chips; static power 3.34 W measured on a 32-chip board, about
      0.1 W per chip.
[SFE] SANA-FE's Loihi description (SLAM-Lab/SANA-FE, arch/loihi.yaml): 4 cores
      per tile (also implied by [D18]: 128 cores, barrier "1-32 tiles"), tiles
      in an 8 x 4 mesh per chip (not in [D18]).

Modelling choices (each a bound, stated so it can be changed through
LoihiCosts): a synaptic op costs [D18]'s minimum energy (a lower bound) and
its maximum time; every neuron update is charged as active (upper bound; 52 pJ
gives the lower one); the barrier is the full 32-tile mesh's 465 ns on one
chip and 15 us on several ([F20] measured it across hundreds of chips, so for
a few chips it is an upper bound); cores sit on their chip's mesh in the order
of their index (k-th core of a chip in tile k // 4, tile t at column t % 8,
row t // 8); a message costs the within-tile energy plus the hops of
dimension-order routing; messages between chips are counted, not charged
(no figure in [D18]).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from hwmodel.errors import NetworkError
from hwmodel.network import IntNetwork


@dataclass(frozen=True)
class LoihiCosts:
    """Per-operation energies (J), latencies (s), static power (W) and mesh
    geometry (cores per tile, tiles per mesh row).  The defaults are Loihi 1's;
    no per-operation figures are published for Loihi 2, so a Loihi 2 board is
    estimated with them too."""

    synaptic_op: float = 23.6e-12          # [D18] min
    neuron_update: float = 81e-12          # [D18] active; inactive 52e-12
    spike_in_tile: float = 1.7e-12         # [D18]
    hop_east_west: float = 3.0e-12         # [D18]
    hop_north_south: float = 4.0e-12       # [D18]
    static_power_per_chip: float = 0.1     # [F20] 3.34 W / 32 chips
    synaptic_op_time: float = 3.5e-9       # [D18] max
    neuron_update_time: float = 8.4e-9     # [D18] active; inactive 5.3e-9
    barrier_one_chip: float = 465e-9       # [D18] 32 tiles (113 ns for 1)
    barrier_multi_chip: float = 15e-6      # [F20] 14.3-16.2 us
    cores_per_tile: int = 4                # [SFE]
    mesh_width: int = 8                    # [SFE] tiles per mesh row


LOIHI = LoihiCosts()


@dataclass
class EnergyEstimate:
    """Per inference: activity counts, energy by component (J), total energy
    (J), time (s) and energy-delay product (J s)."""

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
        return float(sum(self.energy_by_component.values()))

    @property
    def edp(self) -> float:
        return self.energy * self.time

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v * 1e6:.3g}" for k, v in self.energy_by_component.items())
        return (f"{self.num_steps} steps: {self.energy * 1e6:.3g} uJ ({parts} uJ), "
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
    and off-chip messages (1 per pair whose cores are on different chips)."""

    def __init__(self, net: IntNetwork, partition, costs: LoihiCosts):
        pos = _mesh_positions(partition, costs)
        core_of = {}
        for core in partition.cores:
            owner = core_of.setdefault(core.layer, np.zeros(net.layers[core.layer].n, np.int64))
            owner[np.asarray(core.neurons, np.int64)] = core.index
        self.num_cores = len(pos)
        self.per_conn = []
        for conn in net.connections:
            w = conn.weights.tocoo()
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


def estimate(net: IntNetwork, partition, counts: dict, num_steps: int,
             costs: LoihiCosts = LOIHI) -> EnergyEstimate:
    """Energy, time and EDP per inference of a run of num_steps steps.

    counts: layer name -> (batch, n) spike counts over the run, for every layer
    with outgoing connections (hwmodel.simulator fills all layers).  partition:
    the partitioner.Partition the network runs on.
    """
    missing = sorted({c.source for c in net.connections} - set(counts))
    if missing:
        raise NetworkError(f"energy estimate needs the spike counts of every layer; missing "
                           f"{missing} (run with backend='reference', which counts all layers)")
    mean = {name: np.asarray(c, np.float64).reshape(len(c), -1).mean(axis=0)
            for name, c in counts.items()}
    traffic = _Traffic(net, partition, costs)
    core_synops = np.zeros(traffic.num_cores)
    messages = route_energy = offchip = 0.0
    for source, synapses, msgs, energy, off in traffic.per_conn:
        spikes = mean[source]
        core_synops += synapses @ spikes
        messages += float((msgs @ spikes).sum())
        route_energy += float((energy @ spikes).sum())
        offchip += float((off @ spikes).sum())
    core_updates = np.zeros(traffic.num_cores)
    for core in partition.cores:
        layer = net.layers[core.layer]
        if not (layer.is_input and layer.input_mode == "spikes"):
            core_updates[core.index] = len(core.neurons) * layer.compartments_per_neuron * num_steps
    synops, updates = float(core_synops.sum()), float(core_updates.sum())
    busy = core_synops * costs.synaptic_op_time + core_updates * costs.neuron_update_time
    barrier = costs.barrier_one_chip if partition.num_chips <= 1 else costs.barrier_multi_chip
    time = float(busy.max(initial=0.0)) + num_steps * barrier
    return EnergyEstimate(
        num_steps=num_steps, synaptic_ops=synops, neuron_updates=updates,
        spikes=float(sum(m.sum() for m in mean.values())), spike_messages=messages,
        offchip_messages=offchip,
        energy_by_component={"synaptic": synops * costs.synaptic_op,
                             "neuron": updates * costs.neuron_update,
                             "routing": route_energy,
                             "static": costs.static_power_per_chip * partition.num_chips * time},
        time=time)
