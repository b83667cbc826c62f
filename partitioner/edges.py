"""Connections as the search sees them: which source neurons reach which cores
of a tiled target layer, and what every target core needs for them (input
axons and synapse words by the rules of partitioner.model).

Two ways to count, chosen per connection:
- WindowEdge (every nxcompile.ir.WindowKind: conv2d, depthwise_conv2d,
  avg_pool2d): analytic.  The synapses of a window operation are a product of
  two spatial axes and a contiguous channel range per source channel, all
  answered by the connection's kind (window_axes, selectors, target_channels,
  weights), so on a rectangular block a source's synapse list is fixed by
  three run lengths (ly, lx, lc) and its kernel taps (a dilated window's rows
  and columns a fixed step apart: _Axis).  Sources are grouped into row classes x
  column classes x channels; lists are deduplicated (connection sharing) by
  comparing the weight blocks of each class triple.  Results are cached per
  block signature, so equal interior blocks are counted once.
- MatrixEdge (any other kind, e.g. dense, or a window edge whose sources that
  feed another successor too are no product of rows, columns and channels):
  from the synapse matrix, all lists at once.
Synapse data: a MatrixEdge given the connection's integer synapses (stored,
hwmodel.network.IntConnection: what the quantizer chose and the chip stores;
weights that quantize to 0 are none) counts those and their delays; without
them, and for every WindowEdge, the IR's float synapses (every window tap, one
that quantizes to 0 stored as a weight-0 synapse: partitioner.validate).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import scipy.sparse as sp

from hwmodel import synapse_format as sf
from hwmodel.limits import CoreLimits
from nxcompile.ir import NetworkIR, connection_matrix, delay_matrix
from partitioner import model
from partitioner.tiling import Tiling


@dataclass
class EdgeUsage:
    """What one connection needs on each core of a tiled target layer, per encoding
    (the target layer's model.layer_encodings, in that order) and per option (0: all
    sources discrete, 1: the members share a population axon, 2: one population
    axon per source pixel, only where pixel is True): input_axons and words
    [encoding, option, core]; the longest list max_list [encoding, core];
    members [core], the sources whose every target is on that core."""

    input_axons: np.ndarray
    words: np.ndarray
    max_list: np.ndarray
    members: np.ndarray
    pixel: bool = False

    @classmethod
    def zeros(cls, num_cores: int, n: int) -> "EdgeUsage":
        return cls(np.zeros((n, 3, num_cores), np.int64), np.zeros((n, 3, num_cores), np.int64),
                   np.zeros((n, num_cores), np.int64), np.zeros(num_cores, np.int64))


class Edge:
    """One IR connection source -> target, its synapses from `stored` (an
    IntConnection) or, where None, from the IR.  pixel_atoms: the most sources one
    input axon may carry besides a member population (a pixel population axon's
    channels; 1 where usage offers none)."""

    pixel_atoms = 1

    def __init__(self, ir: NetworkIR, source: str, target: str, stored=None):
        self.source, self.target, self.stored = source, target, stored
        self.conn = ir.connection(source, target)
        self.target_shape = tuple(ir.layer(target).shape)
        self.n_source = ir.layer(source).n
        self.n_target = ir.layer(target).n

    @cached_property
    def synapses(self) -> tuple:
        """(rows, cols, weights) of every synapse, ordered by source then target."""
        m = (connection_matrix(self.conn, self.target_shape) if self.stored is None
             else self.stored.matrix()).tocsc()
        m.sort_indices()
        cols = np.repeat(np.arange(self.n_source), np.diff(m.indptr))
        return m.indices.astype(np.int64), cols, m.data + 0.0

    @cached_property
    def share_values(self) -> np.ndarray | None:
        """Per synapse (ordered as synapses), a value equal for two synapses iff
        their weights and delays are, for connection sharing; None without
        delays (the weights themselves are compared)."""
        d = self._delays()
        if d is None:
            return None
        rows, cols, w = self.synapses
        per_synapse = np.asarray(d.tocsr()[rows, cols], np.float64).ravel()
        _, ids = np.unique(np.stack([w, per_synapse], axis=1), axis=0, return_inverse=True)
        return ids.ravel().astype(np.float64)

    def _delays(self):
        """The per-synapse delays (csr, aligned with the synapses) or None."""
        return delay_matrix(self.conn, self.target_shape) if self.stored is None \
            else self.stored.delays

    @cached_property
    def max_delay(self) -> int:
        """The largest delay on a synapse of this connection (0 without delays)."""
        d = self._delays()
        return int(d.data.max()) if d is not None and d.nnz else 0

    @cached_property
    def weights_distinct(self) -> bool:
        """True when no two synapses have the same weight (then no lists can be shared)."""
        w = self.synapses[2]
        return len(np.unique(w)) == len(w)

    def release_blocks(self) -> None:
        """Drop what counting the target layer's splits cached (its split is decided)."""

    def release_synapses(self) -> None:
        """Drop the synapse arrays (both layers' splits are decided)."""
        for attr in ("synapses", "share_values"):
            self.__dict__.pop(attr, None)

    def min_stored_synapses(self) -> int:
        """Fewest synapses any partition must store: all of them when no two weights
        are equal, else one per distinct weight value."""
        w = self.synapses[2]
        return len(w) if self.weights_distinct else len(np.unique(w))

    def min_input_axons(self, solo: np.ndarray, cpn: int, compartments: int,
                        split_signs: bool) -> np.ndarray:
        """Per target neuron (flat order), the fewest input axons this connection
        takes on the core holding it: one per source that must be discrete (not
        solo, or its targets need more than `compartments` compartments at `cpn`
        each), one more if it has any other source (partitioner.feasible)."""
        rows, cols, _ = self.synapses
        must = ~solo | (self.fanout * cpn > compartments)
        discrete = np.bincount(rows[must[cols]], minlength=self.n_target)
        other = np.bincount(rows[~must[cols]], minlength=self.n_target) > 0
        return discrete + other

    def min_target_words(self, w_bits: int, word_bits: int, distinct: bool) -> np.ndarray:
        """Per target neuron, the synapse words its incoming synapses of this
        connection take at w_bits each: distinct=True, one synapse per distinct
        weight (the fewest on its core: synapses into one neuron share storage
        only with equal weights); False, every synapse (cheaper, at least that)."""
        rows, _, w = self.synapses
        if distinct:
            order = np.lexsort((w, rows))
            r, v = rows[order], w[order]
            rows = r[np.r_[True, (r[1:] != r[:-1]) | (v[1:] != v[:-1])]]
        return -(-np.bincount(rows, minlength=self.n_target) * w_bits // word_bits)

    def usage(self, tiling: Tiling, solo: np.ndarray, w_bits: int, cpn: int,
              limits: CoreLimits, encodings: tuple, split_signs: bool = False) -> EdgeUsage:
        """Input axons, words and longest list on every core, with and without
        population, for each of `encodings`; split_signs: lists in a positive and
        a negative part (partitioner.model)."""
        rows, cols, w = self.synapses
        return matrix_usage(rows, cols, w, self.weights_distinct, self.n_source, tiling, solo,
                            w_bits, cpn, limits, encodings, split_signs, self.share_values)


class MatrixEdge(Edge):
    """A dense connection, counted from its synapse matrix."""

    @cached_property
    def connects(self) -> np.ndarray:
        """Source neurons with at least one synapse."""
        return self.fanout > 0

    @cached_property
    def fanout(self) -> np.ndarray:
        return np.bincount(self.synapses[1], minlength=self.n_source)

    def target_cores(self, tiling: Tiling) -> sp.csr_matrix:
        """0/1 (n_source, cores): source neuron i has a synapse on core t."""
        rows, cols, _ = self.synapses
        pairs = np.unique(cols * tiling.num_cores + tiling.core_of[rows])
        return sp.csr_matrix((np.ones(len(pairs), np.int64),
                              (pairs // tiling.num_cores, pairs % tiling.num_cores)),
                             shape=(self.n_source, tiling.num_cores))


class _Axis:
    """One spatial axis of a window operation: every input coordinate i reaches
    the outputs lo[i], lo[i] + step, .., hi[i] (lo = -1: none; step 1 without
    dilation, else dilation / gcd(dilation, stride): a tap's neighbours sit
    `dilation` inputs apart) and a selector table sel[i, o] that fixes the weight
    on this axis (WindowKind.selectors: the kernel offset, for pooling the
    window's divisor)."""

    def __init__(self, o, sel, i, n_in: int, n_out: int):
        self.n_out = n_out
        self.lo = np.full(n_in, n_out, np.int64)
        self.hi = np.full(n_in, -1, np.int64)
        np.minimum.at(self.lo, i, o)
        np.maximum.at(self.hi, i, o)
        self.present = self.hi >= 0
        self.lo[~self.present] = -1
        self.sel = np.full((n_in, n_out), -1, np.int64)
        self.sel[i, o] = sel
        self.reached = self.sel >= 0
        order = np.lexsort((o, i))
        gaps = np.diff(o[order])[np.diff(i[order]) == 0]
        self.step = int(np.gcd.reduce(gaps)) if len(gaps) else 1
        self.fanout = self.reached.sum(1)
        if not np.array_equal(self.fanout, np.where(self.present,
                                                    (self.hi - self.lo) // self.step + 1, 0)):
            raise ValueError("window axis: some input's outputs are not evenly spaced")
        self._classes = {}

    def hits(self, block: int, count: int) -> np.ndarray:
        """Bool (n_in, count): coordinate i reaches output block j."""
        out = np.zeros((len(self.lo), count), bool)
        i, o = np.nonzero(self.reached)
        out[i, o // block] = True
        return out

    def classes(self, block: int, j: int, marked: np.ndarray) -> tuple:
        """The sources of output block j (block size `block`) grouped by the run they
        hit (its outputs `step` apart): sorted tuple of (run length, selectors,
        #single, #multi, #single and marked, sources), where single sources reach
        no other block, `marked` (bool per input coordinate) marks the
        coordinates of sources that feed another layer and sources holds per
        source (first output it reaches in the block, 0 multi / 1 single / 2
        single and marked)."""
        key = (block, j, marked.tobytes())
        if key not in self._classes:
            a, z = j * block, min((j + 1) * block, self.n_out) - 1
            found = {}
            for i in np.flatnonzero(self.present & (self.lo <= z) & (self.hi >= a)):
                sel = self.sel[i, a:z + 1][self.reached[i, a:z + 1]]
                if len(sel) == 0:       # the block falls in a gap
                    continue
                counts = found.setdefault((len(sel), tuple(sel.tolist())), [0, 0, 0, []])
                single = self.lo[i] // block == self.hi[i] // block
                counts[0 if single else 1] += 1
                counts[2] += int(single and marked[i])
                counts[3].append((int(np.argmax(self.reached[i, a:z + 1])),
                                  int(single) + int(single and marked[i])))
            self._classes[key] = tuple(sorted((ln, sel, *n[:3], tuple(n[3]))
                                              for (ln, sel), n in found.items()))
        return self._classes[key]


class WindowEdge(Edge):
    """A window connection (nxcompile.ir.WindowKind), counted analytically."""

    def __init__(self, ir: NetworkIR, source: str, target: str):
        super().__init__(ir, source, target)
        conn, self.op = self.conn, self.conn.op
        (oy, _, iy), (ox, _, ix) = self.op.window_axes(conn, self.target_shape)
        sel_y, sel_x = self.op.selectors(conn, self.target_shape)
        h_in, w_in, self.c_in = conn.source_shape
        h_out, w_out, self.c_out = self.target_shape
        self.axes = (_Axis(oy, sel_y, iy, h_in, h_out), _Axis(ox, sel_x, ix, w_in, w_out))
        self.co_lo, self.width = self.op.target_channels(conn, self.c_out)
        self.co_hi = self.co_lo + self.width - 1
        self.pixel_atoms = self.c_in
        self.c_present = self.co_lo < self.c_out
        self._blocks = {}
        self._patterns = {}
        self._ids = {}

    def release_blocks(self) -> None:
        for cache in (self._blocks, self._patterns, self._ids, *(a._classes for a in self.axes)):
            cache.clear()

    @cached_property
    def _used_weights(self) -> np.ndarray:
        """The weight of every tap some synapse uses (row selector x column
        selector x source channel x its target channels), ravelled."""
        sel_y, sel_x = (np.unique(a.sel[a.sel >= 0]) for a in self.axes)
        ci = np.flatnonzero(self.c_present)
        co = self.co_lo[ci][:, None] + np.arange(self.width)
        used = self.op.weights(self.conn, sel_y[:, None, None, None], sel_x[None, :, None, None],
                               ci[None, None, :, None], co[None, None])
        return np.broadcast_to(np.asarray(used, np.float64) + 0.0,
                               (len(sel_y), len(sel_x), *co.shape)).ravel()

    def min_stored_synapses(self) -> int:
        """One synapse per distinct weight value that some synapse uses."""
        return len(np.unique(self._used_weights))

    @cached_property
    def taps_distinct(self) -> bool:
        """No two used taps have the same weight: then two lists of one block are
        equal only where their row classes, column classes and channels are
        (_block_usage needs no comparison)."""
        return self.min_stored_synapses() == len(self._used_weights)

    @cached_property
    def connects(self) -> np.ndarray:
        y, x = self.axes
        return np.kron(np.kron(y.present, x.present), self.c_present).astype(bool)

    @cached_property
    def channel_fanout(self) -> np.ndarray:
        """Target channels each source channel reaches."""
        return np.where(self.c_present, np.minimum(self.co_hi, self.c_out - 1) - self.co_lo + 1, 0)

    @cached_property
    def fanout(self) -> np.ndarray:
        y, x = self.axes
        return np.kron(np.kron(y.fanout, x.fanout), self.channel_fanout)

    def min_input_axons(self, solo: np.ndarray, cpn: int, compartments: int,
                        split_signs: bool) -> np.ndarray:
        """Edge.min_input_axons counted analytically: a source's fan-out is a
        product of its row, column and channel reach, so sources are grouped by
        the three reaches and counted per target row, column and channel.  Where
        usage offers pixel population axons (EdgeUsage.pixel), at most one axon
        per source pixel of the target's window."""
        if split_signs:
            return super().min_input_axons(solo, cpn, compartments, split_signs)
        sources_solo = solo[self.connects]
        y, x = self.axes
        o = np.arange(self.c_out)[:, None]
        channel_hit = (self.co_lo[None, :] <= o) & (o <= self.co_hi[None, :]) & self.c_present
        reach = [(y.reached.T, y.fanout), (x.reached.T, x.fanout),
                 (channel_hit, self.channel_fanout)]
        tables, values = [], []
        for hit, fan in reach:       # hit (n_out, n_in): output o takes input i
            v, group = np.unique(fan, return_inverse=True)
            tables.append(np.stack([(hit & (group[None, :] == g)).sum(1) for g in range(len(v))], 1))
            values.append(v)
        fan = values[0][:, None, None] * values[1][None, :, None] * values[2][None, None, :]
        must = (fan * cpn > compartments) | (not sources_solo.all())
        count = lambda m: np.einsum("ya,xb,kc,abc->yxk", *tables, m.astype(np.int64)).ravel()
        if sources_solo.any() and not sources_solo.all():     # not a product: the matrix
            counted = super().min_input_axons(solo, cpn, compartments, split_signs)
        else:
            counted = count(must) + (count(~must & (fan > 0)) > 0)
        if self._shared_sources(solo) is None:                # usage offers no pixel axons
            return counted
        pixels = np.einsum("y,x,k->yxk", tables[0][:, values[0] > 0].sum(1),
                           tables[1][:, values[1] > 0].sum(1),
                           tables[2][:, values[2] > 0].sum(1) > 0).ravel()
        return np.minimum(counted, pixels)

    def min_target_words(self, w_bits: int, word_bits: int, distinct: bool) -> int:
        """Not counted for window connections (partitioner.feasible): 0."""
        return 0

    def _channel_hits(self, block: int, count: int) -> np.ndarray:
        j = np.arange(count)[None, :]
        return (self.c_present[:, None] & (self.co_lo[:, None] // block <= j)
                & (j <= self.co_hi[:, None] // block))

    def target_factors(self, tiling: Tiling) -> tuple:
        """Bool (h_in, ny), (w_in, nx), (c_in, nc): which block rows, columns and
        channel blocks of the target's tiling each source row, column and channel
        reaches; target_cores is their Kronecker product."""
        (by, bx, bc), (ny, nx, nc) = tiling.block, tiling.counts
        y, x = self.axes
        return y.hits(by, ny), x.hits(bx, nx), self._channel_hits(bc, nc)

    def target_cores(self, tiling: Tiling) -> sp.csr_matrix:
        factors = [sp.csr_matrix(m.astype(np.int64)) for m in self.target_factors(tiling)]
        hits = sp.kron(sp.kron(factors[0], factors[1]), factors[2], format="csr")
        hits.eliminate_zeros()          # sp.kron leaves explicit zeros
        return hits

    def _channels(self, block: int, j: int) -> tuple:
        """Source channels reaching channel block j: (ci, first target channel, run
        length, single) arrays."""
        c0, c1 = j * block, min((j + 1) * block, self.c_out)
        lo, hi = np.maximum(self.co_lo, c0), np.minimum(self.co_hi, c1 - 1)
        ci = np.flatnonzero(self.c_present & (lo <= hi))
        single = self.co_lo[ci] // block == self.co_hi[ci] // block
        return ci, lo[ci], (hi - lo + 1)[ci], single

    def usage(self, tiling: Tiling, solo: np.ndarray, w_bits: int, cpn: int,
              limits: CoreLimits, encodings: tuple, split_signs: bool = False) -> EdgeUsage:
        marks = self._shared_sources(solo)
        if split_signs or marks is None:
            return super().usage(tiling, solo, w_bits, cpn, limits, encodings, split_signs)
        (by, bx, bc) = tiling.block
        out = EdgeUsage.zeros(tiling.num_cores, len(encodings))
        out.pixel = True
        # per axis, the block indices grouped by (what the block's usage depends on, its length)
        keys = ([self.axes[0].classes(by, j, marks[0]) for j in range(tiling.counts[0])],
                [self.axes[1].classes(bx, j, marks[1]) for j in range(tiling.counts[1])],
                [self._channel_key(bc, j, marks[2]) for j in range(tiling.counts[2])])
        groups = []
        for axis, axis_keys in enumerate(keys):
            found = {}
            for j, key in enumerate(axis_keys):
                start, stop = tiling.axis_range(axis, j)
                found.setdefault((key, stop - start), []).append(j)
            groups.append(list(found.items()))
        for ((rows, h), jys), ((cols, w), jxs), ((chans, c), jcs) in itertools.product(*groups):
            i_bits = model.index_bits(h * w * c * cpn)
            pages = h * w * c // sf.BASE_PAGE + 1
            key = (rows, cols, chans, w, c, pages, i_bits)
            if key not in self._blocks:
                self._blocks[key] = self._block_usage(rows, cols, bc, jcs[0], marks[2], w, c, pages,
                                                      i_bits, w_bits, limits, encodings)
            cores = np.ravel_multi_index(np.ix_(jys, jxs, jcs), tiling.counts).ravel()
            axons, words, max_list, members = self._blocks[key]
            out.input_axons[:, :, cores] = axons[:, :, None]
            out.words[:, :, cores] = words[:, :, None]
            out.max_list[:, cores] = max_list[:, None]
            out.members[cores] = members
        return out

    def _pattern_words(self, ly: int, lx: int, lc: int, w: int, c: int, i_bits: int,
                       w_bits: int, limits: CoreLimits, encodings: tuple) -> np.ndarray:
        """Words of one list of run lengths (ly, lx, lc) on a w x c block (rows and
        columns their axis' step apart), per encoding."""
        key = (ly, lx, lc, w, c, i_bits, w_bits, encodings)
        if key not in self._patterns:
            dy, dx = (a.step for a in self.axes)
            idx = ((np.arange(ly)[:, None, None] * dy * w + np.arange(lx)[None, :, None] * dx) * c
                   + np.arange(lc)[None, None, :]).ravel()
            self._patterns[key] = np.array([model.list_words(idx, [0], enc, w_bits, i_bits, limits)[0]
                                            for enc in encodings])
        return self._patterns[key]

    def _weights(self, sel_y, sel_x, ci, co_start, lc) -> np.ndarray:
        """Weight blocks (R * C * K, ly * lx * lc) of all class triples."""
        ly, lx = sel_y.shape[1], sel_x.shape[1]
        co = co_start[:, None] + np.arange(lc)[None, :]
        w = self.op.weights(self.conn, sel_y[:, None, None, :, None, None],
                            sel_x[None, :, None, None, :, None], ci[None, None, :, None, None, None],
                            co[None, None, :, None, None, :])
        w = np.broadcast_to(np.asarray(w, np.float64), (len(sel_y), len(sel_x), len(ci), ly, lx, lc))
        return w.reshape(len(sel_y) * len(sel_x) * len(ci), ly * lx * lc) + 0.0

    def _list_ids(self, sel_y, sel_x, ci, co_start, lc) -> np.ndarray:
        """_row_ids of the weight blocks of all class triples, cached by their
        selectors and channels (blocks of other tilings often repeat them)."""
        key = (sel_y.shape, sel_y.tobytes(), sel_x.shape, sel_x.tobytes(), ci.tobytes(),
               co_start.tobytes(), lc)
        if key not in self._ids:
            self._ids[key] = _row_ids(self._weights(sel_y, sel_x, ci, co_start, lc))
        return self._ids[key]

    def _shared_sources(self, solo: np.ndarray):
        """The connecting sources that feed another layer too (not solo) as a
        product of marked rows, columns and channels (three bool arrays), or None
        where they are no such product (then the matrix counts them)."""
        h, w, c = self.conn.source_shape
        shared = (~solo & self.connects).reshape(h, w, c)
        marks = (shared.any(axis=(1, 2)), shared.any(axis=(0, 2)), shared.any(axis=(0, 1)))
        product = marks[0][:, None, None] & marks[1][None, :, None] & marks[2][None, None, :]
        connects = self.connects.reshape(h, w, c)
        return marks if np.array_equal(product & connects, shared) else None

    def _channel_key(self, bc: int, jc: int, marked: np.ndarray):
        """What of channel block jc the block's usage depends on: the block
        itself, or where all used taps differ (taps_distinct: no list compares
        with another) only, per run length, how many source channels have it,
        how many of those reach no other channel block and how many of these are
        marked, and where each source channel's targets start in the block (its
        list's base page depends on it)."""
        if not self.taps_distinct:
            return bc, jc, marked.tobytes()
        ci, co_start, lc, single = self._channels(bc, jc)
        runs = np.unique(lc)
        return (tuple((int(r), int((lc == r).sum()), int(single[lc == r].sum()),
                       int((single & marked[ci])[lc == r].sum())) for r in runs),
                (co_start - jc * bc).tobytes())

    def _block_usage(self, rows: tuple, cols: tuple, bc: int, jc: int, c_marked: np.ndarray,
                     w: int, c: int, pages: int, i_bits: int, w_bits: int, limits: CoreLimits,
                     encodings: tuple) -> tuple:
        """Input axons and words [encoding, option], the longest list [encoding]
        and the members of one block of `pages` base pages; a source is a member
        when it reaches this block alone and is not marked on all three axes (it
        feeds no other layer)."""
        ci, co_start, lc, c_single = self._channels(bc, jc)
        first_channel = co_start - jc * bc          # a source channel's first local channel
        c_single_marked = c_single & c_marked[ci]
        n_enc = len(encodings)
        words_rest = np.zeros(n_enc, np.int64)
        words_all = np.zeros(n_enc, np.int64)
        member_max = np.zeros(n_enc, np.int64)
        max_list = np.zeros(n_enc, np.int64)
        members = rest = pixels = 0
        words_pixel = np.zeros(n_enc, np.int64)
        for ly in sorted({r[0] for r in rows}):
            ry = [r for r in rows if r[0] == ly]
            sel_y = np.array([r[1] for r in ry])
            n1_y, nm_y, n1m_y = (np.array([r[k] for r in ry]) for k in (2, 3, 4))
            for lx in sorted({r[0] for r in cols}):
                rx = [r for r in cols if r[0] == lx]
                sel_x = np.array([r[1] for r in rx])
                n1_x, nm_x, n1m_x = (np.array([r[k] for r in rx]) for k in (2, 3, 4))
                # pixel populations: a block of all channels per (row, column) class,
                # each channel's list padded to the longest; equal blocks shared
                block_ids = np.zeros((len(ry), len(rx), len(ci)), np.int64)
                longest = np.zeros(n_enc, np.int64)
                pixels += int((n1_y + nm_y).sum() * (n1_x + nm_x).sum()) if len(ci) else 0
                for l_c in np.unique(lc):
                    k = lc == l_c
                    n_all = np.broadcast_to(((n1_y + nm_y)[:, None] * (n1_x + nm_x)[None, :])[:, :, None],
                                            (len(ry), len(rx), int(k.sum())))
                    n_one = (n1_y[:, None, None] * n1_x[None, :, None] * c_single[k][None, None, :]
                             - n1m_y[:, None, None] * n1m_x[None, :, None]
                             * c_single_marked[k][None, None, :])
                    if self.taps_distinct:      # every class triple its own list
                        ids = np.arange(n_all.size)
                        distinct_rest = int(np.count_nonzero(n_all - n_one))
                        distinct_all = n_all.size
                    else:
                        ids = self._list_ids(sel_y, sel_x, ci[k], co_start[k], int(l_c))
                        block_ids[:, :, k] = ids.reshape(len(ry), len(rx), int(k.sum())) \
                            + block_ids.max(initial=-1) + 1
                        distinct_rest = len(np.unique(ids[(n_all - n_one).ravel() > 0]))
                        distinct_all = len(np.unique(ids))
                    if pages > 1:               # copies per page of bases
                        distinct_rest, distinct_all = _paged_lists(
                            ids.reshape(len(ry), len(rx), -1), ry, rx, first_channel[k],
                            c_single[k], c_single_marked[k], w, c, pages)
                    pw = self._pattern_words(ly, lx, int(l_c), w, c, i_bits, w_bits, limits,
                                             encodings)
                    words_rest += distinct_rest * pw
                    words_all += distinct_all * pw
                    max_list = np.maximum(max_list, pw)
                    if n_one.any():
                        member_max = np.maximum(member_max, pw)
                    longest = np.maximum(longest, pw)
                    members += int(n_one.sum())
                    rest += int((n_all - n_one).sum())
                if not len(ci):
                    blocks = 0
                elif self.taps_distinct:
                    blocks = _paged_blocks(np.arange(len(ry) * len(rx)), ry, rx,
                                           int(first_channel.min()), w, c, pages)
                else:
                    blocks = _paged_blocks(_row_ids(block_ids.reshape(-1, len(ci))), ry, rx,
                                           int(first_channel.min()), w, c, pages)
                words_pixel += blocks * len(ci) * longest
        in_axons = np.stack([np.full(n_enc, rest + members), np.full(n_enc, rest + min(members, 1)),
                             np.full(n_enc, pixels)], 1)
        words = np.stack([words_all, words_rest + members * member_max if members else words_all,
                          words_pixel], 1)
        return in_axons, words, max_list, members


def _paged_lists(ids: np.ndarray, rows: list, cols: list, first_channel: np.ndarray,
                 single: np.ndarray, single_marked: np.ndarray, w: int, c: int,
                 pages: int) -> tuple:
    """Stored lists (distinct (list id, base page) pairs) of class triples
    (row class, column class, channel; ids (R, C, K)) on a w x c block of
    `pages` base pages: among the sources that are no members, and among all
    sources."""
    key, flag_y, flag_x = _page_keys(ids, rows, cols, first_channel, w, c, pages)
    fy, fx = flag_y[:, None, None], flag_x[None, :, None]
    member = ((fy >= 1) & (fx >= 1) & single[None, None, :]
              & ~((fy == 2) & (fx == 2) & single_marked[None, None, :]))
    return _distinct(key[~member]), _distinct(key)


def _paged_blocks(pair_ids: np.ndarray, rows: list, cols: list, first_channel: int, w: int,
                  c: int, pages: int) -> int:
    """Stored pixel blocks: distinct (block id, base page) pairs over the source
    pixels of every (row class, column class) pair (pair_ids ravelled R x C),
    a pixel block's base being its first channel's list's first local index."""
    key, _, _ = _page_keys(pair_ids.reshape(len(rows), len(cols), 1), rows, cols,
                           np.array([first_channel]), w, c, pages)
    return _distinct(key)


def _page_keys(ids: np.ndarray, rows: list, cols: list, first_channel: np.ndarray, w: int,
               c: int, pages: int) -> tuple:
    """(keys (source rows, source columns, K), row flags, column flags): per source
    of the classes' (ids (R, C, K) of class triples) its stored copy, list id *
    pages + base page.  A source's base is its list's first local index, (first
    row * w + first column) * c + its channel's first local channel."""
    (off_y, flag_y, cy), (off_x, flag_x, cx) = _class_sources(rows), _class_sources(cols)
    base = (off_y[:, None, None] * w + off_x[None, :, None]) * c + first_channel[None, None, :]
    return ids[cy[:, None], cx[None, :]] * pages + base // sf.BASE_PAGE, flag_y, flag_x


def _distinct(keys: np.ndarray) -> int:
    """How many distinct values the non-negative integers `keys` take."""
    seen = np.zeros(int(keys.max(initial=-1)) + 1, bool)
    seen[keys] = True
    return int(seen.sum())


def _class_sources(classes: list) -> tuple:
    """(first output, flag, class) arrays of the sources of _Axis.classes tuples."""
    table = np.array([(*src, n) for n, cls in enumerate(classes) for src in cls[5]], np.int64)
    return table[:, 0], table[:, 1], table[:, 2]


@lru_cache(maxsize=None)
def _hash_coefficients(width: int) -> np.ndarray:
    """_row_ids' odd random multipliers for rows of `width` values (seed 0, read-only)."""
    coef = np.random.default_rng(0).integers(1, 2 ** 62, width) | 1
    coef.flags.writeable = False
    return coef


def _row_ids(rows: np.ndarray) -> np.ndarray:
    """An id per row of a float array, equal iff the rows are (by value: 0.0 ==
    -0.0): rows bucketed by an integer hash of their bit patterns, each bucket
    checked against its first row; any collision falls back to comparing whole rows."""
    bits = (np.ascontiguousarray(rows, np.float64) + 0.0).view(np.int64)
    coef = _hash_coefficients(bits.shape[1])
    _, first, ids = np.unique((bits * coef).sum(axis=1), return_index=True, return_inverse=True)
    ids = ids.ravel()
    if np.array_equal(bits, bits[first[ids]]):
        return ids
    return np.unique(bits, axis=0, return_inverse=True)[1].ravel()


def matrix_usage(rows, cols, w, weights_distinct: bool, n_source: int, tiling: Tiling,
                 solo: np.ndarray, w_bits: int, cpn: int, limits: CoreLimits,
                 encodings: tuple, split_signs: bool = False, share=None) -> EdgeUsage:
    """EdgeUsage from the synapses (rows, cols, weights), sorted by source then target,
    for each of `encodings`; split_signs: each list is its positive, then its
    negative synapses (partitioner.model); share: per synapse the value that
    connection sharing compares (Edge.share_values; default the weights);
    w_bits: bits per synapse besides index and skip (weight and delay)."""
    k = tiling.num_cores
    out = EdgeUsage.zeros(k, len(encodings))
    if len(rows) == 0:
        return out
    core, local = tiling.core_of[rows], tiling.local_of[rows]
    key = cols * k + core
    share = w if share is None else share
    if split_signs:
        order = np.lexsort((local, w < 0, key))
        key, core, local, w, share = key[order], core[order], local[order], w[order], share[order]
    elif len(tiling.shape) > 1 and k > 1:
        order = np.argsort(key, kind="stable")
        key, core, local, w, share = key[order], core[order], local[order], w[order], share[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    parts = np.flatnonzero(np.r_[False, (w[1:] < 0) != (w[:-1] < 0)]) if split_signs else None
    list_src, list_core = key[starts] // k, core[starts]
    mult = np.bincount(list_src, minlength=n_source)
    member = solo[list_src] & (mult[list_src] == 1)
    i_bits = np.array([model.index_bits(int(n) * cpn) for n in tiling.sizes])[list_core]
    n_rest = np.bincount(list_core[~member], minlength=k)
    n_mem = np.bincount(list_core[member], minlength=k)
    # lists share a stored copy within a core and a page of bases (hwmodel.synapse_format)
    pages = int(tiling.sizes.max()) // sf.BASE_PAGE + 1
    keys = None if weights_distinct else shared_list_keys(
        list_core * pages + np.minimum.reduceat(local, starts) // sf.BASE_PAGE, local, share, starts)
    for e, enc in enumerate(encodings):
        words = model.list_words(local, starts, enc, w_bits, i_bits, limits, parts)
        w_rest = _distinct_words(keys, words, list_core, ~member, k)
        w_all = _distinct_words(keys, words, list_core, np.ones(len(starts), bool), k)
        m_max = np.zeros(k, np.int64)
        np.maximum.at(m_max, list_core[member], words[member])
        np.maximum.at(out.max_list[e], list_core, words)
        out.input_axons[e, :2] = [n_rest + n_mem, n_rest + np.minimum(n_mem, 1)]
        out.words[e, :2] = [w_all, np.where(n_mem > 0, w_rest + n_mem * m_max, w_all)]
    out.members = n_mem
    return out


def _distinct_words(keys, words, list_core, mask, k: int) -> np.ndarray:
    """Per core, the words of the distinct lists among those selected by mask."""
    if keys is None:
        return np.bincount(list_core[mask], weights=words[mask], minlength=k).astype(np.int64)
    _, first = np.unique(keys[mask], return_index=True)
    sel = np.flatnonzero(mask)[first]
    return np.bincount(list_core[sel], weights=words[sel], minlength=k).astype(np.int64)


def shared_list_keys(group: np.ndarray, idx: np.ndarray, weights: np.ndarray,
                     starts: np.ndarray) -> np.ndarray:
    """Connection sharing (partitioner.model): an id per synapse list such that
    two lists get the same id iff they are in the same group (core and
    connection) and are identical up to their base compartment (same local
    indices minus the first, same weights).

    group: one int per list; idx, weights: the lists concatenated; starts: where
    each list begins.  Weights compare by value (0.0 == -0.0).  Lists are first
    bucketed by a fingerprint (equal lists always share it); lists of a bucket
    are compared element by element with its first list, and any that differ
    (a fingerprint collision) are compared exactly among themselves.
    """
    starts = np.asarray(starts, np.int64)
    n_lists = len(starts)
    if n_lists == 0:
        return np.empty(0, np.int64)
    idx = np.asarray(idx, np.int64)
    lengths = np.diff(np.append(starts, len(idx)))
    pos = np.arange(len(idx)) - np.repeat(starts, lengths)
    rel = idx - np.repeat(idx[starts], lengths)
    w = np.asarray(weights, np.float64) + 0.0
    coef = np.random.default_rng(0).random((2, int(lengths.max())))
    fingerprint = np.stack([np.asarray(group, np.float64), lengths.astype(np.float64),
                            np.add.reduceat(w * coef[0, pos], starts),
                            np.add.reduceat(rel * coef[1, pos], starts)])
    order = np.lexsort(fingerprint[::-1])
    fp = fingerprint[:, order]
    new_bucket = np.r_[True, np.any(fp[:, 1:] != fp[:, :-1], axis=0)]
    bucket = np.empty(n_lists, np.int64)
    bucket[order] = np.cumsum(new_bucket) - 1
    keys = np.empty(n_lists, np.int64)
    sizes = np.bincount(bucket)
    alone = sizes[bucket] == 1
    keys[alone] = np.flatnonzero(alone)
    rep = np.full(len(sizes), n_lists, np.int64)      # first list of every bucket
    np.minimum.at(rep, bucket, np.arange(n_lists))
    for length in np.unique(lengths[~alone]):
        lists = np.flatnonzero(~alone & (lengths == length))
        at = starts[lists][:, None] + np.arange(length)[None, :]
        first = np.searchsorted(lists, rep[bucket[lists]])
        same = np.all(rel[at] == rel[at][first], axis=1) & np.all(w[at] == w[at][first], axis=1)
        keys[lists[same]] = lists[first[same]]
        odd = lists[~same]          # fingerprint collisions: compare exactly
        if len(odd):
            table = np.concatenate([bucket[odd][:, None].astype(np.float64),
                                    rel[at[~same]].astype(np.float64), w[at[~same]]], axis=1)
            _, first_odd, inverse = np.unique(table, axis=0, return_index=True, return_inverse=True)
            keys[odd] = odd[first_odd[inverse.ravel()]]
    return keys


def make_edge(ir: NetworkIR, source: str, target: str, stored=None) -> Edge:
    """WindowEdge for a window kind (counted analytically, dilated too, from the
    IR), else MatrixEdge (from `stored`, the connection's IntConnection, where given)."""
    if ir.connection(source, target).op.window:
        return WindowEdge(ir, source, target)
    return MatrixEdge(ir, source, target, stored)
