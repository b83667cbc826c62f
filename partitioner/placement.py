"""Chip placement: put cores on as few chips as the board allows (cores per chip
limit) so that few axon routes cross chips, without pushing any core's
output-axon entries over the limit (a route that leaves its chip costs an extra
entry, partitioner.model).

Candidates: the search's provisional placement, the best split of the core
order into contiguous runs (dynamic programming, linear in the cores; its best
split may need more runs than the board has chips), chips filled in core order, OR-Tools
CP-SAT with a time limit for small instances ((cores + linked core pairs) x
chips <= max_cp_sat_vars), seeded with the best so far; larger ones, or a
CP-SAT run without a proven optimum, go on to a greedy local search (single-core
moves and pairwise swaps that lower the off-chip routes, sparse and
incremental, so it scales to Pohoiki Springs' 768 chips) under the same time
limit.  The best valid placement found is kept; Placement.method says which.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass
class Placement:
    """chips: chip of every core; offchip_routes: axon routes between chips."""

    chips: np.ndarray
    offchip_routes: int
    method: str


@dataclass
class PlacementProblem:
    """Cores 0..n-1, directed routes src -> dst with a count each, every core's
    output entries when nothing leaves the chip (base), the entry limit."""

    num_cores: int
    src: np.ndarray
    dst: np.ndarray
    count: np.ndarray
    base: np.ndarray
    entry_limit: int
    cores_per_chip: int
    num_chips: int

    def offchip(self, chips: np.ndarray) -> int:
        return int(self.count[chips[self.src] != chips[self.dst]].sum())

    def entries(self, chips: np.ndarray) -> np.ndarray:
        off = (chips[self.src] != chips[self.dst]) * self.count
        return self.base + np.bincount(self.src, weights=off, minlength=self.num_cores).astype(np.int64)

    def valid(self, chips: np.ndarray) -> bool:
        return (np.bincount(chips, minlength=self.num_chips).max() <= self.cores_per_chip
                and chips.max() < self.num_chips
                and bool((self.entries(chips) <= self.entry_limit).all()))


def place_cores(problem: PlacementProblem, initial: np.ndarray, time_limit: float = 1.0,
                max_cp_sat_vars: int = 20000) -> Placement:
    """Best valid placement found, starting from `initial` (which must be valid),
    the best split of the core order into contiguous runs of at most
    cores_per_chip (_contiguous) and chips filled in core order; CP-SAT where the model has at most
    max_cp_sat_vars variables, then the greedy local search until time_limit
    (seconds) has passed."""
    initial = np.asarray(initial, np.int64)
    if problem.num_chips == 1:
        return Placement(initial, problem.offchip(initial), "single chip")
    deadline = time.perf_counter() + time_limit
    best = Placement(initial, problem.offchip(initial), "search order")

    def consider(chips: np.ndarray | None, method: str) -> None:
        nonlocal best
        if chips is not None:
            routes = problem.offchip(chips)
            if routes < best.offchip_routes and problem.valid(chips):
                best = Placement(chips, routes, method)

    consider(_contiguous(problem), "contiguous runs")
    # chips filled in core order: where the runs need more chips than the board has
    consider(np.arange(problem.num_cores) // problem.cores_per_chip, "core order")
    pairs = len(np.unique(np.minimum(problem.src, problem.dst) * problem.num_cores
                          + np.maximum(problem.src, problem.dst)))
    if (problem.num_cores + pairs) * problem.num_chips <= max_cp_sat_vars:
        chips, status = _cp_sat(problem, best.chips, time_limit / 2)
        consider(chips, f"CP-SAT ({status})")
        if status == "optimal":
            return best
    consider(_local_search(problem, best.chips.copy(), deadline), best.method + " + local search")
    return best


def _contiguous(problem: PlacementProblem) -> np.ndarray | None:
    """Chips for the split of cores 0..n-1 into contiguous runs of at most
    cores_per_chip that keeps the most routes inside runs (fewest runs among
    equals), or None when it needs more runs than the board has chips.
    Dynamic programming over run ends, O(cores x cores_per_chip): inside[j] =
    routes inside a run [start, end) for the window of starts, updated by the
    routes that end at end - 1."""
    n, cap = problem.num_cores, problem.cores_per_chip
    a, b = np.minimum(problem.src, problem.dst), np.maximum(problem.src, problem.dst)
    keep = (a != b) & (b - a < cap) & (problem.count > 0)
    a, b, w = a[keep], b[keep], problem.count[keep]
    order = np.argsort(b, kind="stable")
    a, b, w = a[order], b[order], w[order]
    at = np.searchsorted(b, np.arange(n + 1))          # routes with b == e: at[e]:at[e+1]
    best = np.full(n + 1, -1, np.int64)                # routes kept inside, runs covering [0, e)
    runs = np.zeros(n + 1, np.int64)
    back = np.zeros(n + 1, np.int64)
    best[0] = 0
    inside = np.zeros(cap, np.int64)                   # inside[j]: run [end - cap + j, end)
    for end in range(1, n + 1):
        inside = np.r_[inside[1:], 0]                  # the window moves one start on
        lo, hi = at[end - 1], at[end]
        if hi > lo:                                    # routes (a, end - 1): inside for starts <= a
            j = a[lo:hi] - (end - cap)
            inside += np.bincount(j, weights=w[lo:hi], minlength=cap)[::-1].cumsum()[::-1] \
                .astype(np.int64)
        first = max(0, end - cap)
        starts = np.arange(first, end)
        gain = np.where(best[starts] >= 0, best[starts] + inside[starts - (end - cap)], -1)
        pick = np.lexsort((runs[starts], -gain))[0]
        best[end], runs[end], back[end] = gain[pick], runs[starts[pick]] + 1, starts[pick]
    if runs[n] > problem.num_chips:
        return None
    chips = np.zeros(n, np.int64)
    end, c = n, runs[n]
    while end > 0:
        c -= 1
        chips[back[end]:end] = c
        end = back[end]
    return chips


def _cp_sat(problem: PlacementProblem, initial: np.ndarray, time_limit: float):
    from ortools.sat.python import cp_model

    n, k = problem.num_cores, problem.num_chips
    m = cp_model.CpModel()
    x = [[m.NewBoolVar(f"x{c}_{j}") for j in range(k)] for c in range(n)]
    for c in range(n):
        m.AddExactlyOne(x[c])
        for j in range(k):
            m.AddHint(x[c][j], int(initial[c] == j))
    for j in range(k):
        m.Add(sum(x[c][j] for c in range(n)) <= problem.cores_per_chip)
    m.Add(x[0][0] == 1)   # chips are interchangeable
    pairs = {}
    for s, d, w in zip(problem.src.tolist(), problem.dst.tolist(), problem.count.tolist()):
        if s != d and w:
            pairs[min(s, d), max(s, d)] = pairs.get((min(s, d), max(s, d)), 0) + w
    split = {}
    for (a, b), w in pairs.items():
        y = m.NewBoolVar(f"y{a}_{b}")
        for j in range(k):
            m.Add(y >= x[a][j] - x[b][j])
            m.Add(y >= x[b][j] - x[a][j])
        m.AddHint(y, int(initial[a] != initial[b]))
        split[a, b] = (y, w)
    extra = [[] for _ in range(n)]
    for s, d, w in zip(problem.src.tolist(), problem.dst.tolist(), problem.count.tolist()):
        if s != d and w:
            extra[s].append((split[min(s, d), max(s, d)][0], w))
    for s in range(n):
        if extra[s]:
            m.Add(int(problem.base[s]) + sum(w * y for y, w in extra[s]) <= problem.entry_limit)
    m.Minimize(sum(w * y for y, w in split.values()))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit)
    solver.parameters.num_workers = 2
    status = solver.Solve(m)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, "no solution"
    chips = np.array([next(j for j in range(k) if solver.Value(x[c][j])) for c in range(n)])
    return chips, "optimal" if status == cp_model.OPTIMAL else "time limit"


def _local_search(problem: PlacementProblem, chips: np.ndarray, deadline: float) -> np.ndarray:
    """Greedy moves and swaps that lower the off-chip routes and keep every chip
    and every core's output entries within their limits, until no core improves
    or the deadline passes.  Each core's links to chips are read from the sparse
    route matrix and entries are updated incrementally, so one pass costs about
    O(routes): it scales to Pohoiki Springs' 768 chips."""
    n, k, cap = problem.num_cores, problem.num_chips, problem.cores_per_chip
    own = (problem.src != problem.dst) & (problem.count > 0)
    routes = sp.coo_matrix((problem.count[own], (problem.src[own], problem.dst[own])),
                           shape=(n, n)).tocsr()
    inbound = routes.T.tocsr()
    weight = (routes + inbound).tocsr()
    entries = problem.entries(chips)
    load = np.bincount(chips, minlength=k)
    members = [list(np.flatnonzero(chips == j)) for j in range(k)]

    def links(c):
        """Chips of c's neighbours and the routes to each (summed)."""
        lo, hi = weight.indptr[c], weight.indptr[c + 1]
        where, total = np.unique(chips[weight.indices[lo:hi]], return_inverse=True)
        return where, np.bincount(total.ravel(), weights=weight.data[lo:hi]).astype(np.int64)

    def move(c, to):
        """Put core c on chip `to`; returns the cores whose entries changed."""
        here = chips[c]
        lo, hi = routes.indptr[c], routes.indptr[c + 1]
        dst, cnt = routes.indices[lo:hi], routes.data[lo:hi]
        entries[c] += int(((chips[dst] != to).astype(np.int64) - (chips[dst] != here)) @ cnt)
        lo, hi = inbound.indptr[c], inbound.indptr[c + 1]
        src, cnt = inbound.indices[lo:hi], inbound.data[lo:hi]
        np.add.at(entries, src, ((chips[src] != to).astype(np.int64) - (chips[src] != here)) * cnt)
        chips[c] = to
        load[here] -= 1
        load[to] += 1
        members[here].remove(c)
        members[to].append(c)
        return np.r_[c, src]

    def link_difference(cores, a, b):
        """Per core of `cores`: its routes to cores on chip a minus those to chip b."""
        sub = weight[cores]
        on = chips[sub.indices]
        rows = np.repeat(np.arange(len(cores)), np.diff(sub.indptr))
        return np.bincount(rows, weights=sub.data * ((on == a).astype(np.int64) - (on == b)),
                           minlength=len(cores)).astype(np.int64)

    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        for c in range(n):
            if c % 64 == 0 and time.perf_counter() > deadline:
                break
            where, total = links(c)
            here = chips[c]
            inner = int(total[where == here].sum())
            for at in np.argsort(-total, kind="stable"):     # where: distinct chips
                j, gain = where[at], int(total[at]) - inner
                if j == here or gain <= 0:
                    continue
                partner = None
                if load[j] >= cap:
                    on_j = np.array(members[j])
                    swap = link_difference(on_j, here, j) - 2 * weight[c, on_j].toarray().ravel()
                    if gain + swap.max() <= 0:
                        continue
                    partner = int(on_j[swap.argmax()])
                touched = move(c, j)
                if partner is not None:
                    touched = np.r_[touched, move(partner, here)]
                if (entries[touched] <= problem.entry_limit).all():
                    improved = True
                    break
                if partner is not None:
                    move(partner, j)
                move(c, here)
    return chips
