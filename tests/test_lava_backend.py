"""The Lava back-end: one process per core, one Sparse per non-zero core-pair
block, and spike trains of every layer equal to the reference simulator's, bit
for bit, on hand-built partitioned networks."""
import multiprocessing
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, assume, example, given, settings, strategies as st

from mapper import lava_compat  # noqa: F401  (before lava)
from lava.proc.io.source import RingBuffer
from lava.proc.lif.process import LIF
from lava.utils.weightutils import SignMode

from hwmodel import formats
from hwmodel.limits import get_board
from hwmodel.network import IntConnection, IntLayer, IntNetwork
from hwmodel.partition import Core, Partition
from hwmodel.simulator import simulate
from mapper.lava_network import build_lava_network
from mapper.lava_run import run_lava, running
from mapper.procs.process import SoftResetLIF, SpikeSink, unpack_train
from nxcompile.ir import ConnectionSpec, connection_matrix
from tests.helpers import assert_same_run, examples, run_python

NUM_STEPS = 40


def _layer(name, shape, vth, **kw):
    n = int(np.prod(shape))
    kw.setdefault("bias_mant", np.zeros(n, np.int64))
    return IntLayer(name, tuple(shape), vth=vth, **kw)


def _on_grid(m, scale, mode, num_weight_bits=8):
    """Float matrix -> csr int weights on Loihi's grid (mixed 8 bit: even, -256..254)."""
    step = formats.weight_step(num_weight_bits, mode)
    lo, hi = formats.weight_range(mode)
    w = sp.csr_matrix(m, dtype=np.float64)
    w.data = np.clip(np.round(w.data * scale / step) * step, lo, hi // step * step).astype(np.int64)
    w.eliminate_zeros()
    return w


def _conv_matrix(rng, source_shape, target_shape, kernel_hw, strides=(1, 1), padding="same"):
    kernel = rng.normal(0, 1, (*kernel_hw, source_shape[2], target_shape[2]))
    spec = ConnectionSpec("conv2d", tuple(source_shape), kernel=kernel, strides=strides,
                          padding=padding)
    return connection_matrix(spec, tuple(target_shape))


def _partition(net, splits):
    """splits: layer -> list of neuron index arrays, one per core; cores numbered in layer order."""
    cores = []
    for name in net.layers:
        for neurons in splits[name]:
            cores.append(Core(index=len(cores), chip=0, layer=name,
                              neurons=np.asarray(neurons, np.int64)))
    return Partition(board=get_board("loihi1"), cores=cores)


def contiguous(n, k):
    return np.array_split(np.arange(n), k)


def shuffled(n, k, rng):
    return [np.sort(c) for c in np.array_split(rng.permutation(n), k)]


def strided(n, k):
    return [np.arange(i, n, k) for i in range(k)]


def dense_net(rng):
    """bias input (soft, leaky v) -> hidden (soft, du and dv, mixed weights << 1) ->
    output (hard) fed by hidden (7-bit excitatory) and by the input
    (inhibitory << 2); layers in contiguous chunks."""
    inp = _layer("inp", (16,), 50, is_input=True, input_gain=2500.0, reset="soft", dv=100)
    hid = _layer("hid", (24,), 120, du=1500, dv=200, reset="soft",
                 bias_mant=rng.integers(-200, 400, 24))
    out = _layer("out", (10,), 200, du=4095, dv=30)
    w_hid = _on_grid(rng.normal(0.4, 1, (24, 16)) * (rng.random((24, 16)) < 0.7), 90, "mixed")
    w_out = _on_grid(rng.random((10, 24)) * (rng.random((10, 24)) < 0.6), 32, "excitatory", 7)
    w_skip = _on_grid(-rng.random((10, 16)) * (rng.random((10, 16)) < 0.3), 40, "inhibitory")
    net = IntNetwork({"inp": inp, "hid": hid, "out": out}, [
        IntConnection("inp", "hid", w_hid, weight_exp=1),
        IntConnection("hid", "out", w_out, num_weight_bits=7,
                      sign_mode="excitatory"),
        IntConnection("inp", "out", w_skip, weight_exp=2, sign_mode="inhibitory"),
    ], "inp", "out")
    part = _partition(net, {"inp": contiguous(16, 2), "hid": contiguous(24, 3),
                            "out": contiguous(10, 2)})
    return net, part, rng.random((2, 16))


def conv_net(rng):
    """bias input (6,6,2) -> 3x3 'same' conv (6,6,4), soft -> dense output, hard;
    shuffled and strided neuron sets."""
    inp = _layer("inp", (6, 6, 2), 40, is_input=True, input_gain=3000.0)
    conv = _layer("conv", (6, 6, 4), 60, du=3000, reset="soft",
                  bias_mant=rng.integers(-100, 100, 144))
    out = _layer("out", (8,), 90, du=4095, dv=500)
    w_conv = _on_grid(_conv_matrix(rng, (6, 6, 2), (6, 6, 4), (3, 3)), 40, "mixed")
    w_out = _on_grid(rng.normal(0.2, 1, (8, 144)), 30, "mixed")
    net = IntNetwork({"inp": inp, "conv": conv, "out": out}, [
        IntConnection("inp", "conv", w_conv), IntConnection("conv", "out", w_out),
    ], "inp", "out")
    part = _partition(net, {"inp": shuffled(72, 3, rng), "conv": strided(144, 4),
                            "out": shuffled(8, 2, rng)})
    return net, part, rng.random((2, 6, 6, 2))


def spike_net(rng):
    """spike input (5,5,2) -> 3x3 stride-2 conv (3,3,3), excitatory << 2 -> dense
    output, soft, mixed; strided input cores."""
    inp = _layer("inp", (5, 5, 2), 1, is_input=True, input_mode="spikes")
    conv = _layer("conv", (3, 3, 3), 900, du=2000, dv=100)
    out = _layer("out", (6,), 500, du=4095, reset="soft")
    w_conv = _on_grid(np.abs(_conv_matrix(rng, (5, 5, 2), (3, 3, 3), (3, 3), (2, 2))), 20,
                      "excitatory")
    w_out = _on_grid(rng.normal(0.5, 1, (6, 27)), 76, "mixed")
    net = IntNetwork({"inp": inp, "conv": conv, "out": out}, [
        IntConnection("inp", "conv", w_conv, weight_exp=2, sign_mode="excitatory"),
        IntConnection("conv", "out", w_out),
    ], "inp", "out")
    part = _partition(net, {"inp": strided(50, 2), "conv": contiguous(27, 2),
                            "out": [np.arange(6)]})
    return net, part, (rng.random((2, NUM_STEPS, 5, 5, 2)) < 0.3).astype(np.int8)


def block_net(rng):
    """Two independent halves: the Lava graph has two connected components."""
    inp = _layer("inp", (8,), 30, is_input=True, input_gain=2500.0)
    hid = _layer("hid", (8,), 60, dv=50)
    out = _layer("out", (4,), 60, reset="soft")
    w_hid = _on_grid(sp.block_diag([rng.random((4, 4))] * 2), 200, "excitatory")
    w_out = _on_grid(sp.block_diag([rng.normal(1.0, 1, (2, 4))] * 2), 200, "mixed")
    net = IntNetwork({"inp": inp, "hid": hid, "out": out}, [
        IntConnection("inp", "hid", w_hid, sign_mode="excitatory"),
        IntConnection("hid", "out", w_out),
    ], "inp", "out")
    part = _partition(net, {"inp": contiguous(8, 2), "hid": contiguous(8, 2),
                            "out": contiguous(4, 2)})
    return net, part, rng.random((2, 8))


@pytest.mark.parametrize("make", [dense_net, conv_net, spike_net, block_net])
def test_lava_equals_reference_simulator_bit_for_bit(make):
    net, part, x = make(np.random.default_rng(7))
    layers = list(net.layers)
    ref = simulate(net, x, NUM_STEPS, record=layers)
    for name in layers:      # the comparison means something only if every layer is active
        rate = ref.trains[name].mean()
        assert 0.03 < rate < 0.9, f"{name}: firing rate {rate:.3f}"
    got = run_lava(net, part, x, NUM_STEPS, record=layers)
    assert_same_run(got, ref, layers)
    assert not np.array_equal(got.trains["out"][0], got.trains["out"][1])   # samples differ
    assert multiprocessing.active_children() == []     # every run stopped


@pytest.mark.parametrize("make", [conv_net, spike_net])
def test_samples_side_by_side_equal_one_network_per_sample(make):
    """Three samples in rounds of two lanes: round 0 runs samples 0 and 1 side
    by side in one network, round 1 sample 2 (sample 0 again): every sample's
    trains, counts and final voltages are those of its own network."""
    net, part, x = make(np.random.default_rng(7))
    x = np.concatenate([x, x[:1]])
    layers = list(net.layers)
    lnet = build_lava_network(net, part, x[:2], NUM_STEPS, record=["out"])
    assert lnet.lanes == 2
    for (s, t), (syn,) in lnet.synapses.items():       # each lane its own block
        w = syn.weights.init
        half = (w.shape[0] // 2, w.shape[1] // 2)
        assert w[:half[0], half[1]:].nnz == w[half[0]:, :half[1]].nnz == 0
        assert (w[:half[0], :half[1]] != w[half[0]:, half[1]:]).nnz == 0
    got = run_lava(net, part, x, NUM_STEPS, record=layers, lanes=2)
    for i in range(len(x)):
        alone = run_lava(net, part, x[i:i + 1], NUM_STEPS, record=layers, lanes=1)
        for name in layers:
            np.testing.assert_array_equal(got.trains[name][i], alone.trains[name][0], name)
            np.testing.assert_array_equal(got.counts[name][i], alone.counts[name][0], name)
        np.testing.assert_array_equal(got.voltages["out"][i], alone.voltages["out"][0])
    assert not np.array_equal(got.trains["out"][0], got.trains["out"][1])
    np.testing.assert_array_equal(got.trains["out"][0], got.trains["out"][2])   # same input
    assert_same_run(got, simulate(net, x, NUM_STEPS, record=layers), layers)


def test_counts_without_recording_and_two_components():
    net, part, x = block_net(np.random.default_rng(7))
    lnet = build_lava_network(net, part, x[0], NUM_STEPS)
    assert set(lnet.synapses) == {(0, 2), (1, 3), (2, 4), (3, 5)}     # zero blocks get no Sparse
    assert lnet.components == [[4], [5]]
    ref = simulate(net, x, NUM_STEPS)
    got = run_lava(net, part, x, NUM_STEPS, lanes=1)      # each sample a round of its own
    assert set(got.counts) == {"out"} and got.trains == {}
    np.testing.assert_array_equal(got.counts["out"], ref.counts["out"])
    np.testing.assert_array_equal(got.voltages["out"], ref.voltages["out"])


def test_lava_graph_mirrors_the_partition():
    net, part, x = conv_net(np.random.default_rng(7))
    lnet = build_lava_network(net, part, x[0], NUM_STEPS, record=["conv"])
    assert sorted(lnet.neurons) == [c.index for c in part.cores]
    kinds = {"inp": LIF, "conv": SoftResetLIF, "out": LIF}
    for core in part.cores:
        proc = lnet.neurons[core.index]
        assert type(proc) is kinds[core.layer] and proc.name == f"{core.layer}/core{core.index}"
        assert proc.a_in.shape == (len(core.neurons),)
    expected = {}
    for conn in net.connections:
        for tgt in part.cores_of(conn.target):
            for src in part.cores_of(conn.source):
                block = conn.matrix()[tgt.neurons][:, src.neurons]
                if block.count_nonzero():
                    expected[src.index, tgt.index] = block.toarray()
    assert set(lnet.synapses) == set(expected)
    layer_of = {c.index: c.layer for c in part.cores}
    for (s, t), (syn,) in lnet.synapses.items():
        np.testing.assert_array_equal(syn.weights.init.toarray(), expected[s, t])
        assert syn.proc_params["sign_mode"] is SignMode.MIXED
        assert syn.name == f"{layer_of[s]}->{layer_of[t]}/core{s}->core{t}"
    assert sorted(lnet.sinks) == [c.index for c in part.cores_of("conv") + part.cores_of("out")]


def test_spike_input_becomes_ring_buffers_of_the_core_spikes():
    net, part, x = spike_net(np.random.default_rng(7))
    lnet = build_lava_network(net, part, x[1], NUM_STEPS)
    for core in part.cores_of("inp"):
        buf = lnet.neurons[core.index]
        assert isinstance(buf, RingBuffer) and buf.name == f"inp/core{core.index}"
        np.testing.assert_array_equal(buf.data.init, x[1].reshape(NUM_STEPS, -1)[:, core.neurons].T)
    with pytest.raises(ValueError, match=f"spike input has 10 steps, the run needs {NUM_STEPS}"):
        build_lava_network(net, part, x[1][:10], NUM_STEPS)


def test_bad_input_is_rejected_with_the_layer_and_limit():
    net, part, x = dense_net(np.random.default_rng(7))
    net.connections[0].weights.data[0] = 3
    with pytest.raises(ValueError, match="connection inp->hid: weight 3 is not a multiple of 2"):
        build_lava_network(net, part, x[0], NUM_STEPS)
    net, part, x = dense_net(np.random.default_rng(7))
    net.layers["hid"].vth = 2 ** 17
    with pytest.raises(ValueError, match="layer hid: vth=131072 outside 0..131071"):
        build_lava_network(net, part, x[0], NUM_STEPS)
    net, part, x = dense_net(np.random.default_rng(7))
    part.cores[-1].neurons = part.cores[-1].neurons[1:]
    with pytest.raises(ValueError, match="cores of layer out hold 9 neuron indices"):
        build_lava_network(net, part, x[0], NUM_STEPS)
    net, part, x = dense_net(np.random.default_rng(7))
    part.cores[-1].index = part.cores[0].index
    with pytest.raises(ValueError, match="partition: core index 0 is used by 2 cores"):
        build_lava_network(net, part, x[0], NUM_STEPS)
    with pytest.raises(ValueError, match="record: unknown layers"):
        run_lava(net, part, x, NUM_STEPS, record=["nope"])


def test_negative_weight_exponent_is_refused_with_the_reason():
    """Loihi shifts each synapse before summing, Lava floors each block's sum:
    the back-end takes 0..7 only (the quantizer never emits less)."""
    net, part, x = dense_net(np.random.default_rng(7))
    net.connections[1].weight_exp = -3
    with pytest.raises(ValueError, match=r"connection hid->out: weight_exp=-3 is negative; the "
                                         r"Lava back-end takes 0..7: Lava floors each core block"):
        build_lava_network(net, part, x[0], NUM_STEPS)
    net.connections[1].weight_exp = 8
    with pytest.raises(ValueError, match=r"connection hid->out: weight_exp=8 outside 0..7"):
        build_lava_network(net, part, x[0], NUM_STEPS)


def test_two_compartment_neuron_resets_by_subtraction_within_the_step():
    """Constant biases, threshold 640 in v units: the spike train is that of
    v <- v + b; spike if v > 640; v <- v - 640 (no extra step from the second
    compartment), the integrator keeps the remainder and the spiking
    compartment holds the integrator's voltage or 0 right after its spike."""
    bias = np.array([300, 640, 641, 1000, 1900])
    steps = 13
    proc = SoftResetLIF(shape=(5,), bias_mant=bias, vth=10, du=4095, dv=0)
    sink = SpikeSink(shape=(5,), record_steps=steps)
    proc.s_out.connect(sink.s_in)
    with running(sink, steps):
        train = unpack_train(sink.train.get(), steps)
        v, v_soma = proc.v.get().astype(int), proc.v_soma.get().astype(int)
    v_hand, expected = np.zeros(5, int), []
    for _ in range(steps):
        v_hand += bias
        spikes = v_hand > 640
        v_hand[spikes] -= 640
        expected.append(spikes)
    np.testing.assert_array_equal(train, expected)
    np.testing.assert_array_equal(v, v_hand)
    np.testing.assert_array_equal(v_soma, np.where(expected[-1], 0, v_hand))
    assert train[0, 1] == 0 and train[:, 1].sum() == 12    # v = 640 is not above threshold
    assert train[:, 2].sum() == train[:, 4].sum() == steps  # at most one spike a step; v grows
    assert v_hand[4] == (1900 - 640) * steps


@settings(max_examples=examples(8), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(seed=st.integers(0, 2 ** 32 - 1), weight_exp=st.integers(0, 7),
       du=st.sampled_from([0, 4095]) | st.integers(0, 4095),
       dv=st.sampled_from([0, 4095]) | st.integers(0, 4095))
@example(seed=0, weight_exp=7, du=0, dv=0)      # u wraps 26 times, v saturates 106 times
def test_soft_reset_equals_the_reference_under_decays_and_negative_input(seed, weight_exp, du, dv):
    """One soft-reset layer (SoftResetLIF, two compartments) fed by random spikes
    through mixed-sign weights, every other neuron mostly inhibited, biases of
    both signs, any du and dv, weight exponents up to 7: its spikes and final
    voltages equal the reference's v <- v - (vth << 6), also where u wraps and v
    saturates."""
    rng = np.random.default_rng(seed)
    n_in, n, steps = 6, 8, 30
    inp = _layer("inp", (n_in,), 1, is_input=True, input_mode="spikes")
    out = _layer("out", (n,), int(rng.integers(1, 3000)), du=du, dv=dv, reset="soft",
                 bias_mant=rng.integers(-300, 300, n), bias_exp=int(rng.integers(0, 4)))
    drive = np.where(np.arange(n) % 2 == 0, 60.0, -60.0)[:, None]
    w = _on_grid(rng.normal(drive, 100, (n, n_in)), 1, "mixed")
    net = IntNetwork({"inp": inp, "out": out},
                     [IntConnection("inp", "out", w, weight_exp=weight_exp)], "inp", "out")
    part = _partition(net, {"inp": [np.arange(n_in)], "out": contiguous(n, 2)})
    x = (rng.random((1, steps, n_in)) < 0.5).astype(np.int8)
    ref = simulate(net, x, steps, record=["out"])
    assume(ref.trains["out"].any() and (ref.voltages["out"] < 0).any())
    got = run_lava(net, part, x, steps, record=["out"])
    np.testing.assert_array_equal(got.trains["out"], ref.trains["out"])
    np.testing.assert_array_equal(got.voltages["out"], ref.voltages["out"])


FAILING_RUN = """
import multiprocessing
import numpy as np
import mapper.lava_compat
from lava.proc.lif.process import LIF
from mapper.lava_run import LavaRunError, running
from mapper.procs.process import SpikeSink

def graph(record_steps):
    lif = LIF(shape=(2,), bias_mant=np.array([100, 300]), vth=1, du=4095)
    sink = SpikeSink(shape=(2,), record_steps=record_steps, name="short")
    lif.s_out.connect(sink.s_in)
    return sink

try:
    with running(graph(3), 10):   # the sink's model raises at step 4
        print("no error")
except LavaRunError as exc:
    print("LavaRunError", "beyond the record_steps=3" in str(exc))
print("children", multiprocessing.active_children())
sink = graph(None)
with running(sink, 5):
    print("after", sink.counts.get().astype(int).tolist())
"""


def _run_script(code: str, timeout: float = 90) -> list:
    """stdout lines of code run in a fresh interpreter that exits cleanly."""
    res = run_python(code, timeout=timeout)
    assert res.returncode == 0, res.stderr
    return res.stdout.splitlines()


def test_a_failing_process_model_raises_a_clear_error_and_nothing_hangs():
    assert _run_script(FAILING_RUN) == ["LavaRunError True", "children []", "after [5, 5]"]


INTERRUPTED_RUN = FAILING_RUN[:FAILING_RUN.index("try:")] + """
import os, signal, threading, time

# Ctrl-C: SIGINT to the whole process group, Lava's processes included;
# first while the results are read, then while the run itself runs
try:
    with running(graph(None), 5):
        os.killpg(0, signal.SIGINT)
        time.sleep(30)
except KeyboardInterrupt:
    print("interrupted reading", multiprocessing.active_children())
threading.Timer(1.0, os.killpg, (0, signal.SIGINT)).start()
try:
    with running(graph(None), 10 ** 7):
        print("run ended")
except KeyboardInterrupt:
    print("interrupted running", multiprocessing.active_children())
sink = graph(None)
with running(sink, 5):
    print("after", sink.counts.get().astype(int).tolist())
"""


def test_an_interrupt_ends_the_run_and_nothing_hangs():
    assert _run_script(INTERRUPTED_RUN, timeout=60) == [
        "interrupted reading []", "interrupted running []", "after [5, 5]"]


THREADED_RUNS = FAILING_RUN[:FAILING_RUN.index("try:")] + """
import threading

results = []
def runs():
    for _ in range(20):
        sink = graph(None)
        with running(sink, 5):
            results.append(sink.counts.get().astype(int).tolist())
threads = [threading.Thread(target=runs) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(results), all(r == [5, 5] for r in results), multiprocessing.active_children())
"""


def test_runs_from_two_threads_take_turns_and_none_hangs():
    assert _run_script(THREADED_RUNS, timeout=240) == ["40 True []"]


KILLED_RUN = FAILING_RUN[:FAILING_RUN.index("try:")] + """
import os, signal, sys, threading, time

def report_and_signal():      # once the run's processes (LIF, sink) are up
    deadline = time.monotonic() + 60
    while len(multiprocessing.active_children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    with open("/proc/self/maps") as maps:      # the run's shared memory, as this process maps it
        shm = {line.split("/dev/shm/")[1].split()[0] for line in maps if "/dev/shm/psm_" in line}
    print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
    print(" ".join(sorted(shm)), flush=True)
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))
threading.Thread(target=report_and_signal, daemon=True).start()
with running(graph(None), 10 ** 7):
    print("run ended")
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP", "SIGKILL"])
def test_a_terminated_or_killed_parent_leaves_no_lava_process(sig):
    """SIGTERM and SIGHUP tear the run down (no child, none of its shared
    memory segments left) and then end the process; after SIGKILL the children
    die with it."""
    code = KILLED_RUN.replace("sys.argv[1]", repr(sig))
    done = run_python(code, timeout=120)
    assert done.returncode == -getattr(signal, sig), done.stderr[-2000:]
    pids, segments = (line.split() for line in done.stdout.splitlines()[:2])
    children = [int(p) for p in pids]
    assert children and segments and "run ended" not in done.stdout
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in children if _alive(p)]
    leaked = [name for name in segments if (Path("/dev/shm") / name).exists()]
    for name in leaked:                     # SIGKILL cannot free them: clean up
        (Path("/dev/shm") / name).unlink(missing_ok=True)
    if sig != "SIGKILL":
        assert not leaked


HANDLED_RUN = FAILING_RUN[:FAILING_RUN.index("try:")] + """
import os, signal, threading, time
from mapper.lava_run import LavaRunError

seen = []
def mine(signum, frame):
    seen.append(signum)
signal.signal(signal.SIGTERM, mine)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
sink = graph(None)
with running(sink, 5):
    pass
print("restored", signal.getsignal(signal.SIGTERM) is mine,
      signal.getsignal(signal.SIGHUP) is signal.SIG_IGN)

def terminate():
    while len(multiprocessing.active_children()) < 2:
        time.sleep(0.1)
    time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=terminate, daemon=True).start()
try:
    with running(graph(None), 10 ** 7):
        print("run ended")
except LavaRunError as exc:
    print(str(exc), seen == [signal.SIGTERM], multiprocessing.active_children())
"""


def test_the_callers_signal_handlers_come_back_and_a_returning_one_ends_the_run_by_name():
    assert _run_script(HANDLED_RUN, timeout=120) == [
        "restored True True", "Lava run ended by SIGTERM True []"]
