"""Chip placement: put cores on as few chips as the board allows (cores per chip
limit) so that few axon routes cross chips, without pushing any core's
output-axon entries over the limit (a route that leaves its chip costs an extra
entry, partitioner.model).

Small instances ((cores + linked core pairs) x chips <= max_cp_sat_vars) go
to OR-Tools CP-SAT with a time limit, seeded with the search's provisional placement; larger ones, or a
CP-SAT run without a feasible answer, use a greedy local search (single-core
moves and pairwise swaps that lower the off-chip routes) under the same time
limit.  The best valid placement found is kept.
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
                max_cp_sat_vars: int = 20000, max_contiguous_cores: int = 2000) -> Placement:
    """Best valid placement found, starting from `initial` (which must be valid)
    and the best split of the core order into contiguous runs of at most
    cores_per_chip (dynamic programming, up to max_contiguous_cores cores)."""
    initial = np.asarray(initial, np.int64)
    if problem.num_chips == 1:
        return Placement(initial, problem.offchip(initial), "single chip")
    deadline = time.perf_counter() + time_limit
    best = Placement(initial, problem.offchip(initial), "search order")
    if problem.num_cores <= max_contiguous_cores:
        chips = _contiguous(problem)
        if problem.valid(chips) and problem.offchip(chips) < best.offchip_routes:
            best = Placement(chips, problem.offchip(chips), "contiguous runs")
    pairs = len(np.unique(np.minimum(problem.src, problem.dst) * problem.num_cores
                          + np.maximum(problem.src, problem.dst)))
    if (problem.num_cores + pairs) * problem.num_chips <= max_cp_sat_vars:
        chips, status = _cp_sat(problem, best.chips, time_limit / 2)
        if chips is not None and problem.valid(chips) and problem.offchip(chips) < best.offchip_routes:
            best = Placement(chips, problem.offchip(chips), f"CP-SAT ({status})")
        if status == "optimal":
            return best
    chips = _local_search(problem, best.chips.copy(), deadline)
    if problem.offchip(chips) < best.offchip_routes:
        best = Placement(chips, problem.offchip(chips), best.method + " + local search")
    return best


def _contiguous(problem: PlacementProblem) -> np.ndarray:
    """Chips for the split of cores 0..n-1 into at most num_chips contiguous runs
    of at most cores_per_chip that keeps the most routes inside runs."""
    n, k, cap = problem.num_cores, problem.num_chips, problem.cores_per_chip
    upper = np.zeros((n, n), np.int64)
    a, b = np.minimum(problem.src, problem.dst), np.maximum(problem.src, problem.dst)
    np.add.at(upper, (a, b), problem.count)
    np.fill_diagonal(upper, 0)
    s = np.zeros((n + 1, n + 1), np.int64)
    s[1:, 1:] = upper.cumsum(0).cumsum(1)
    inside = np.full((k + 1, n + 1), -1, np.int64)   # best routes kept inside, c runs covering [0, b)
    back = np.zeros((k + 1, n + 1), np.int64)
    inside[0, 0] = 0
    for c in range(1, k + 1):
        for end in range(1, n + 1):
            start = np.arange(max(0, end - cap), end)
            prev = inside[c - 1, start]
            gain = np.where(prev >= 0, prev + s[end, end] - s[start, end] - s[end, start] + s[start, start], -1)
            j = int(gain.argmax())
            inside[c, end], back[c, end] = gain[j], start[j]
    c = int(inside[:, n].argmax())
    chips = np.zeros(n, np.int64)
    end = n
    while c > 0:
        start = back[c, end]
        chips[start:end] = c - 1
        end, c = start, c - 1
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
    """Improve chips by moves and swaps that lower the off-chip routes and keep it valid."""
    n, k = problem.num_cores, problem.num_chips
    weight = sp.coo_matrix((problem.count, (problem.src, problem.dst)), shape=(n, n)).tocsr()
    weight = (weight + weight.T).tolil()
    weight.setdiag(0)
    weight = weight.tocsr()
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        load = np.bincount(chips, minlength=k)
        onehot = sp.csr_matrix((np.ones(n), (np.arange(n), chips)), shape=(n, k))
        link = np.asarray((weight @ onehot).todense())   # routes between core c and chip j
        current = problem.offchip(chips)
        for c in range(n):
            here = chips[c]
            for j in np.argsort(-link[c]):
                if j == here or link[c, j] <= link[c, here]:
                    continue
                trial = chips.copy()
                trial[c] = j
                if load[j] >= problem.cores_per_chip:
                    on_j = np.flatnonzero(chips == j)
                    gain = (link[c, j] - link[c, here]) + (link[on_j, here] - link[on_j, j]) \
                        - 2 * weight[c, on_j].toarray().ravel()
                    if gain.max() <= 0:
                        continue
                    trial[on_j[gain.argmax()]] = here
                if problem.offchip(trial) < current and problem.valid(trial):
                    chips = trial
                    improved = True
                    break
            if improved or time.perf_counter() > deadline:
                break
    return chips
