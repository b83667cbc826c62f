"""Run an IntNetwork on Lava: rounds of samples side by side in one Lava network each.

The batch runs in rounds; each round's samples run side by side (lanes) in one
Lava network (mapper.lava_network), built, compiled and run on a Lava run
configuration: by default Loihi2SimCfg(select_tag='fixed_pt'), Lava's
bit-accurate CPU simulator (mapper.loihi passes Loihi2HwCfg and one lane for a
board); results come back through one Var.get per sink (and per output core
for the final voltage).  Each sample's result is bit for bit that of a network
of its own.  A new network per round, not one network reset between rounds:
Var.set moves one element per message (resetting u, v and the synaptic input in
flight of 64 lanes of the MNIST example took longer than running the round).
Every run ends, and none hangs.  When a ProcessModel raises, Lava's run()
raises a bare RuntimeError, its processes are gone and stop() would wait for
them forever: `running` then tears the runtime down itself and raises
LavaRunError with the tracebacks of the failed ProcessModels.  It does the same
on an interrupt (Ctrl-C ends Lava's processes as well) or any exception while
the results are read.

Runs from several threads take turns (one lock), so none hangs in stop().
While a run is active in the main thread, SIGTERM and SIGHUP tear it down like
an interrupt (freeing Lava's processes and shared memory) and are then handled
as the caller had them handled (by default the process ends).  Every process
forked during a run asks the kernel to kill it when its parent dies
(PR_SET_PDEATHSIG), so Lava's processes never outlive a parent killed outright.
"""
from __future__ import annotations

import mapper.lava_compat  # noqa: F401  (before any lava import)

import ctypes
import os
import signal
import sys
import threading
from contextlib import contextmanager

import numpy as np
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg, RunConfig

from hwmodel.backend import Backend, Progress, RunOutput
from hwmodel.errors import NxCompileError
from hwmodel.network import IntNetwork
from hwmodel.partition import Partition
from mapper.checks import check_record
from mapper.lava_network import LavaNetwork, build_lava_network
from mapper.procs.process import unpack_train


class LavaRunError(NxCompileError, RuntimeError):
    """A Lava run failed; the message holds the ProcessModels' tracebacks."""


class _Terminated(BaseException):
    """SIGTERM or SIGHUP arrived during a Lava run in the main thread."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_run_lock = threading.RLock()          # one Lava run at a time per process
LANE_SYNAPSES = 2 ** 25                # default_lanes(): synapses of all lanes' Sparse blocks
_TERMINATING = (signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1                  # linux/prctl.h
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
_fork = {"active": 0, "parent": 0}      # runs in progress; pid of the process forking


def _before_fork() -> None:
    _fork["parent"] = os.getpid()


def _after_fork_in_child() -> None:
    """In a forked process: a lock of its own (another thread may hold the
    parent's), and if a Lava run was active, SIGKILL when the parent dies (or
    exit at once if it already has).  Every process forked during a run gets it."""
    global _run_lock
    _run_lock = threading.RLock()
    if _fork["active"]:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != _fork["parent"]:
            os._exit(1)


if _prctl is not None:
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def _raise_terminated(signum, frame):
    """The first SIGTERM or SIGHUP ends the run; later ones wait (ignored) so
    they cannot interrupt the teardown."""
    for s in _TERMINATING:
        if signal.getsignal(s) is _raise_terminated:
            signal.signal(s, signal.SIG_IGN)
    raise _Terminated(signum)


def _restore(previous: dict) -> None:
    """Put back the caller's handlers, with the signals blocked meanwhile."""
    if previous:
        signal.pthread_sigmask(signal.SIG_BLOCK, _TERMINATING)
        for s, h in previous.items():
            signal.signal(s, h)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _TERMINATING)


@contextmanager
def _signals_end_the_run():
    """The lock, the parent-death flag and, in the main thread, SIGTERM and
    SIGHUP (those with a handler Python can restore: not ignored, not set from
    C) as _Terminated for the duration of a run; a _Terminated that ends the
    run is delivered again to the caller's handler (by default the process
    ends), or becomes LavaRunError if that handler returns."""
    with _run_lock:
        previous = {}
        _fork["active"] += 1
        try:
            if threading.current_thread() is threading.main_thread():
                for s in _TERMINATING:
                    handler = signal.getsignal(s)
                    if handler not in (signal.SIG_IGN, None):
                        previous[s] = handler
                        signal.signal(s, _raise_terminated)
            yield
        except _Terminated as stop:
            _restore(previous)
            previous = {}
            signal.raise_signal(stop.signum)
            raise LavaRunError(f"Lava run ended by {signal.Signals(stop.signum).name}") from None
        finally:
            _fork["active"] -= 1
            _restore(previous)


def _tear_down(runtime) -> list:
    """End a runtime whose run failed without stop() (which would hang): kill the
    processes still alive, free shared memory, and return the tracebacks of the
    processes that raised.  Uses lava-nc 0.10.0 internals (pinned by lava_compat)."""
    infra = getattr(runtime, "_messaging_infrastructure", None)
    tracebacks = []
    for actor in infra.actors if infra else []:
        if not actor._is_done:
            if actor.is_alive():
                actor.kill()
            actor.join()
        if actor.exception:
            tracebacks.append(actor.exception[1])
    if infra is not None and infra.smm is not None:
        infra.stop()
    if getattr(runtime, "_watchdog_manager", None) is not None:
        runtime._watchdog_manager.stop()
    runtime._is_running = runtime._is_started = False   # Runtime.__del__ would call stop()
    return tracebacks


def simulator_config() -> RunConfig:
    """Lava's bit-accurate CPU simulation: the fixed_pt ProcessModels."""
    return Loihi2SimCfg(select_tag="fixed_pt")


@contextmanager
def running(process: AbstractProcess, num_steps: int, run_cfg: RunConfig | None = None):
    """Compile and run the Lava graph connected to `process` for num_steps on
    run_cfg (default simulator_config()); read its Vars inside the block;
    stopped on exit.

    Raises LavaRunError (with the ProcessModel tracebacks) if the run fails.
    Nothing is left running and nothing hangs: a block that ends normally
    stop()s the run; a failed run, an exception in the block or an interrupt
    (Ctrl-C reaches Lava's processes too, and stop() would wait for them
    forever) tears the runtime down instead, and so do SIGTERM and SIGHUP in
    the main thread before they take their course.  Runs from other threads
    wait for this one."""
    with _signals_end_the_run():
        in_block = False
        try:
            process.run(condition=RunSteps(num_steps=num_steps),
                        run_cfg=run_cfg or simulator_config())
            in_block = True
            yield
        except BaseException as exc:
            if process.runtime is None:    # failed while compiling: nothing started
                raise
            tracebacks = _tear_down(process.runtime)
            if in_block or not isinstance(exc, Exception):
                raise
            cause = "\n".join(tracebacks) or f"{type(exc).__name__}: {exc}"
            raise LavaRunError(f"Lava run of the graph of {process.name!r} failed:\n{cause}") from exc
        try:
            process.stop()
        except BaseException:        # interrupted while stopping
            _tear_down(process.runtime)
            raise


def _read(lnet: LavaNetwork, cores: list, output_layer: str, num_steps: int, offset: int,
          out: RunOutput) -> None:
    """Fill samples offset .. offset + lnet.lanes - 1 of `out` from the sinks of
    `cores` (and the output cores' voltages) of a running Lava graph."""
    rows = slice(offset, offset + lnet.lanes)
    for core in cores:
        n = len(core.neurons)
        sink = lnet.sinks[core.index]
        if core.layer in out.trains:
            train = unpack_train(sink.train.get(), num_steps).reshape(num_steps, lnet.lanes, n)
            out.trains[core.layer][rows, :, core.neurons] = train.transpose(1, 0, 2)
            out.counts[core.layer][rows, core.neurons] = train.sum(axis=0)
        else:
            out.counts[core.layer][rows, core.neurons] = \
                np.asarray(sink.counts.get()).reshape(lnet.lanes, n)
        if core.layer == output_layer:
            out.voltages[core.layer][rows, core.neurons] = \
                np.asarray(lnet.neurons[core.index].v.get()).reshape(lnet.lanes, n)


def default_lanes(net: IntNetwork, batch: int) -> int:
    """Samples side by side on Lava's CPU simulator: as many as the batch has,
    while the repeated Sparse blocks hold at most LANE_SYNAPSES synapses in
    all (memory and step time grow with lanes; Lava's fixed per-step cost of
    every process and its compile time do not)."""
    synapses = max(1, sum(c.num_synapses for c in net.connections))
    return max(1, min(batch, LANE_SYNAPSES // synapses))


def run_lava(net: IntNetwork, partition: Partition, x: np.ndarray, num_steps: int,
             record=(), run_cfg: RunConfig | None = None, lanes: int | None = None) -> RunOutput:
    """Run the batch x on Lava laid out as `partition`, on run_cfg (default
    simulator_config()), in rounds of `lanes` samples side by side (default
    default_lanes()), each round a Lava network of its own (mapper.lava_network);
    every sample's result is that of a network of its own.

    x: (batch, *input_shape) frames (bias input mode) or (batch, steps,
    *input_shape) 0/1 spikes (spike input mode).  Returns counts (batch, n) of
    the output layer and of the recorded layers, trains (batch, num_steps, n) of
    the layers in `record`, and the output layer's final v (batch, n), all in
    flat HWC order.
    """
    check_record(net, record)
    x = np.asarray(x)
    batch = len(x)
    lanes = default_lanes(net, batch) if lanes is None else lanes
    layers = dict.fromkeys([net.output_layer, *record])
    out = RunOutput(
        counts={name: np.zeros((batch, net.layers[name].n), np.int64) for name in layers},
        trains={name: np.zeros((batch, num_steps, net.layers[name].n), bool) for name in record},
        voltages={net.output_layer: np.zeros((batch, net.layers[net.output_layer].n), np.int64)})
    core_by_index = {c.index: c for c in partition.cores}
    bar = Progress(batch, f"Lava, {num_steps} steps", unit="samples")
    for first in range(0, batch, lanes):
        lnet = build_lava_network(net, partition, x[first:first + lanes], num_steps, record)
        for component in lnet.components:
            with running(lnet.sinks[component[0]], num_steps, run_cfg):
                _read(lnet, [core_by_index[i] for i in component], net.output_layer, num_steps,
                      first, out)
        bar.update(first + lnet.lanes)
    return out


BACKEND = Backend("lava", run_lava)
