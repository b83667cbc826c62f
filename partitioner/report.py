"""A partition report a person can read: per layer, what its cores use of each
resource (min / mean / max and % of the core limit), and totals."""
from __future__ import annotations

import numpy as np

from partitioner.partition import Partition

RESOURCES = (("compartments", "compartments"), ("input_axons", "in axons"),
             ("output_axons", "out axons"), ("synapse_words", "syn words"))


def _stat(values: list, limit: int) -> str:
    v = np.asarray(values)
    return f"{v.min()}/{v.mean():.0f}/{v.max()} ({100 * v.max() / limit:.0f}%)"


def layer_rows(partition: Partition, layer_names: list, shapes: dict) -> list:
    """One dict per layer: name, shape, neurons, cores, chips and per resource
    the min/mean/max over its cores."""
    lim = partition.board.chip.core
    rows = []
    for name in layer_names:
        cores = partition.cores_of(name)
        row = {"layer": name, "shape": "x".join(map(str, shapes[name])),
               "neurons": int(sum(len(c.neurons) for c in cores)), "cores": len(cores),
               "chips": ",".join(str(ch) for ch in sorted({c.chip for c in cores}))}
        for attr, label in RESOURCES:
            row[label] = _stat([getattr(c, attr) for c in cores], getattr(lim, attr))
        rows.append(row)
    return rows


def format_table(rows: list) -> str:
    """Left-aligned text table with a header line and a rule."""
    cols = list(rows[0])
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    head = "  ".join(c.ljust(width[c]) for c in cols)
    lines = [head, "-" * len(head)]
    lines += ["  ".join(str(r[c]).ljust(width[c]) for c in cols) for r in rows]
    return "\n".join(lines)


def partition_report(partition: Partition, layer_names: list, shapes: dict,
                     extra_columns: dict | None = None, footer: list = ()) -> str:
    """The report: a header with the board, a per-layer table, totals and footer lines.

    extra_columns: column name -> {layer name -> value} appended to each row.
    """
    rows = layer_rows(partition, layer_names, shapes)
    for col, values in (extra_columns or {}).items():
        for r in rows:
            r[col] = values.get(r["layer"], "")
    b = partition.board
    lines = [f"Partition on {b.name} ({b.chip.name}: {b.chip.cores_per_chip} cores/chip, "
             f"{b.num_chips} chips); per core min/mean/max (max as % of the core limit)",
             format_table(rows),
             f"total: {partition.num_cores} cores on {partition.num_chips} chip(s), "
             f"{sum(len(c.neurons) for c in partition.cores)} neurons, "
             f"{sum(c.compartments for c in partition.cores)} compartments, "
             f"{sum(c.synapse_words for c in partition.cores)} synapse words"]
    lines += list(footer)
    return "\n".join(lines)
