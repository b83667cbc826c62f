"""What every backend implements and returns.

A backend runs an integer network (hwmodel.network) laid out by a partition
(hwmodel.partition) on a batch of inputs: the reference simulator
(hwmodel.simulator), Lava's CPU simulator (mapper.lava_run) and a Loihi board
(mapper.loihi).  Each module defines BACKEND, a Backend whose run function
returns a RunOutput; Progress is the progress display they share.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class RunOutput:
    """Result of running a batch.

    counts: layer name -> (batch, n) int spike counts over all steps (the
    reference simulator fills every layer; Lava the output layer and recorded
    layers).  trains: layer name -> (batch, num_steps, n) bool spike trains of the
    layers asked for with `record`.  voltages: output layer name -> its final v
    (batch, n), 24-bit signed integers (v units: the threshold is vth << 6).
    """

    counts: dict = field(default_factory=dict)
    trains: dict = field(default_factory=dict)
    voltages: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Backend:
    """One way to run a compiled network: its name (CompiledModel.run's backend=)
    and run(net, partition, x, num_steps, record) -> RunOutput, which runs the
    batch x of an IntNetwork laid out by a Partition for num_steps steps.  x:
    (batch, *input_shape) frames in [0, 1] (bias input mode) or (batch,
    num_steps, *input_shape) 0/1 spikes (spike input mode); record: names of
    layers whose spike trains to return."""

    name: str
    run: Callable[..., RunOutput]


class Progress:
    """A text progress bar on stderr for a loop of `total` units (steps,
    samples), shown once the loop has taken more than `after` seconds, redrawn
    at most every `every` seconds and finished with a newline once shown."""

    def __init__(self, total: int, label: str, unit: str = "steps", after: float = 2.0,
                 every: float = 0.5):
        self.total, self.label, self.unit, self.after, self.every = total, label, unit, after, every
        self.start = self.last = time.perf_counter()

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.start < self.after or (now - self.last < self.every and done < self.total):
            return
        self.last = now
        bar = "#" * (30 * done // self.total)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {done}/{self.total} {self.unit} "
                         f"{now - self.start:.1f} s")
        if done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()
