"""A partition report a person can read: per layer its split, cores, lower bound,
chips, what its cores use of each resource (min / mean / max and the max as %
of the core limit), encodings and cost; totals; off-chip routes; and a
utilization picture (cores x resources heat map, PNG)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hwmodel.limits import RESOURCES
from hwmodel.partition import Partition


def _stat(values: list, limit: int) -> str:
    v = np.asarray(values)
    return f"{v.min()}/{v.mean():.0f}/{v.max()} ({100 * v.max() / limit:.0f}%)"


def layer_rows(partition: Partition, layer_names: list, shapes: dict) -> list:
    """One dict per layer: name, shape, neurons, split, cores, lower bound, chips,
    per resource the min/mean/max over its cores, encodings and cost."""
    lim = partition.board.chip.core
    rows = []
    for name in layer_names:
        cores = partition.cores_of(name)
        split = partition.layers.get(name)
        row = {"layer": name, "shape": "x".join(map(str, shapes[name])),
               "neurons": int(sum(len(c.neurons) for c in cores)),
               "split": split.split if split else "", "cores": len(cores),
               "bound": f"{split.lower_bound} ({split.bound_by})" if split else "",
               "chips": ",".join(str(ch) for ch in sorted({c.chip for c in cores}))}
        for r in RESOURCES:
            row[r.label] = _stat([getattr(c, r.key) for c in cores], r.limit(lim))
        row["encoding"] = "/".join(sorted({c.encoding for c in cores}))
        row["cost"] = f"{split.cost:.2f}" if split else ""
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


def chip_loads(partition: Partition) -> str:
    """Cores per chip, e.g. '128+29'."""
    return "+".join(str(n) for n in np.bincount([c.chip for c in partition.cores]) if n)


def partition_report(partition: Partition, layer_names: list, shapes: dict,
                     extra_columns: dict | None = None, footer: list = ()) -> str:
    """The report: a header with the board, a per-layer table, totals and footer lines.

    extra_columns: column name -> {layer name -> value} appended to each row.
    """
    rows = layer_rows(partition, layer_names, shapes)
    for col, values in (extra_columns or {}).items():
        for r in rows:
            r[col] = values.get(r["layer"], "")
    b, p = partition.board, partition
    ratio = p.num_cores / p.lower_bound_cores if p.lower_bound_cores else float("nan")
    limits = ", ".join(f"{r.limit(b.chip.core)} {r.unit}" for r in RESOURCES)
    lines = [f"Partition on {b.name} ({b.chip.name}: {b.chip.cores_per_chip} cores/chip, "
             f"{b.num_chips} chips); per core min/mean/max (max as % of the core limit)",
             f"core limits: {limits}",
             format_table(rows),
             f"total: {p.num_cores} cores on {p.num_chips} chip(s), lower bound {p.lower_bound_cores} "
             f"(cores/bound {ratio:.2f}), {sum(len(c.neurons) for c in p.cores)} neurons, "
             f"{sum(c.compartments for c in p.cores)} compartments, "
             f"{sum(c.synapse_words for c in p.cores)} synapse words",
             f"chips: {chip_loads(p)} cores; off-chip: {p.offchip_routes} axon routes between chips "
             f"(chips filled in core order: {p.sequential_offchip_routes}); placement: {p.placement}"
             + (f", {p.timings['placement']:.2f} s" if "placement" in p.timings else "")]
    lines += list(footer)
    return "\n".join(lines)


def save_utilization(partition: Partition, path) -> Path:
    """Write a PNG heat map: one column per core, one row per resource, colour =
    % of the core limit; layers marked along the core axis.  Returns the path."""
    from matplotlib.figure import Figure     # no pyplot: the caller's backend stays as it is

    lim = partition.board.chip.core
    cores = partition.cores
    use = np.array([[100 * getattr(c, r.key) / r.limit(lim) for c in cores] for r in RESOURCES])
    fig = Figure(figsize=(min(4 + 0.08 * len(cores), 40), 3.2))
    ax = fig.subplots()
    im = ax.imshow(use, aspect="auto", cmap="viridis", vmin=0, vmax=100, interpolation="nearest")
    ax.set_yticks(range(len(RESOURCES)), [r.label for r in RESOURCES])
    names = [c.layer for c in cores]
    starts = [i for i in range(len(names)) if i == 0 or names[i] != names[i - 1]]
    for s in starts[1:]:
        ax.axvline(s - 0.5, color="white", linewidth=0.8)
    ends = starts[1:] + [len(names)]
    ax.set_xticks([(s + e - 1) / 2 for s, e in zip(starts, ends)], [names[s] for s in starts],
                  rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("cores (grouped by layer)")
    fig.colorbar(im, ax=ax, label="% of core limit")
    ax.set_title(f"{len(cores)} cores on {partition.num_chips} chip(s), lower bound "
                 f"{partition.lower_bound_cores}")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path
