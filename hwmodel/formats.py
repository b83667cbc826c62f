"""Loihi numeric formats: bit widths and ranges of the neuron and synapse state.

Every value is an integer in the units Loihi stores it in; each constant names
its source:

[D18]   M. Davies et al., "Loihi: A Neuromorphic Manycore Processor with
        On-Chip Learning", IEEE Micro 38(1), 2018, p. 87: weights of 1 to 9
        bits, signed or unsigned, with scale normalization.
[LAVA]  Lava 0.10: `lava/proc/lif/models.py` (u, v 24 bit; du, dv 12 bit;
        bias_mant 13 bit; bias_exp 3 bit; vth 17 bit; input and threshold
        shifted left by 6; decay by x * (4096 - d) >> 12) and
        `lava/utils/weightutils.py` (8-bit weights clipped to -256..255 mixed
        or 0..255, low bits truncated to num_weight_bits): the fixed-point
        semantics the simulator matches, verified bit-exact
        (shared/LOIHI_AND_LAVA_FACTS.md).
[FACTS] shared/LOIHI_AND_LAVA_FACTS.md (NxSDK convention, not in [D18] or
        Lava): one weight exponent per connection in -7..7.
[NXTF]  NxTF, nxsdk_modules_ncl/dnn/src/synapse_compression.py (SynapseEncoder:
        useSharedSign stores positive and negative weights in separate entries).
[SNNTB] SNN toolbox (Rueckauer et al.), snntoolbox/utils/utils.py,
        check_q_overflow: the dendritic accumulator q is 16-bit signed.
"""
from __future__ import annotations

import numpy as np

from hwmodel.errors import NetworkError

STATE_BITS = 24                 # [LAVA] u and v, signed
STATE_MAX = 2 ** (STATE_BITS - 1)   # u wraps modulo 2**23, v clipped to +-(2**23 - 1)
DECAY_BITS = 12                 # [LAVA] du, dv unsigned: 0..4095
DECAY_UNITY = 2 ** DECAY_BITS
# du = -1: a current that never decays.  Loihi 1 decays u by decayU / 4096 with
# decayU in 0..4095 [D18]; Lava adds 1 to du, so Loihi's decayU = 0 is Lava's du = -1
# (lava-dl's netx builds its default neuron so, iDecay 0).
DU_NO_DECAY = -1
ACTIVATION_SHIFT = 6            # [LAVA] synaptic input is shifted left by 6 into u
THRESHOLD_SHIFT = 6             # [LAVA] spike when v > vth << 6
THRESHOLD_MANT_BITS = 17        # [LAVA] vth mantissa, unsigned: 0..131071
THRESHOLD_MANT_MAX = 2 ** THRESHOLD_MANT_BITS - 1
BIAS_MANT_BITS = 13             # [LAVA] signed: -4096..4095
BIAS_MANT_MAX = 2 ** (BIAS_MANT_BITS - 1) - 1
BIAS_EXP_BITS = 3               # [LAVA] unsigned: 0..7
BIAS_EXP_MAX = 2 ** BIAS_EXP_BITS - 1
WEIGHT_BITS_MAX = 8             # [LAVA] [D18] stored mantissa bits (sign extra when mixed)
WEIGHT_MIN = -(2 ** WEIGHT_BITS_MAX)        # -256 (mixed sign)
WEIGHT_MAX = 2 ** WEIGHT_BITS_MAX - 1       # 255
WEIGHT_EXP_MIN, WEIGHT_EXP_MAX = -7, 7      # [FACTS] shared per-connection exponent
DENDRITE_ACCUMULATOR_BITS = 16  # [SNNTB] signed per-step input sum; Lava does not enforce it

# How a connection's weights carry their sign [LAVA SignMode; NXTF SynapseEncoder
# signMode]: 'excitatory' / 'inhibitory', one sign shared by all; 'mixed', a sign
# bit in every weight (8 bits: -256..254 in steps of 2); 'shared', both signs, but
# positive and negative weights in separate synapse entries that each share their
# sign (NxTF's useSharedSign): every weight keeps its full magnitude bits
# (-255..255 in steps of 1), and Lava runs the two parts as an excitatory and an
# inhibitory connection.
SIGN_MODES = ("excitatory", "inhibitory", "mixed", "shared")


def sign_mode(weights: np.ndarray, shared_sign: bool | None = None) -> str:
    """The sign mode of a set of weights.  shared_sign None: 'excitatory' or
    'inhibitory' where all weights have one sign, else 'mixed'; True: 'shared'
    instead of 'mixed'; False: 'mixed' always (a sign bit per synapse)."""
    w = np.asarray(weights)
    if shared_sign is False:
        return "mixed"
    if w.size == 0 or w.min() >= 0:
        return "excitatory"
    if w.max() <= 0:
        return "inhibitory"
    return "shared" if shared_sign else "mixed"


def weight_step(num_weight_bits: int, mode: str) -> int:
    """Spacing of representable weights: the low bits Loihi drops.

    With 8 stored bits and mixed signs the lowest bit is dropped (step 2); each
    bit fewer doubles the step (Lava `truncate_weights`).
    """
    if not 1 <= num_weight_bits <= WEIGHT_BITS_MAX:
        raise NetworkError(f"numWeightBits={num_weight_bits} outside 1..{WEIGHT_BITS_MAX}")
    return 2 ** (WEIGHT_BITS_MAX - num_weight_bits + (mode == "mixed"))


def weight_range(mode: str) -> tuple[int, int]:
    """Largest representable weight magnitude range (before truncation) for a sign mode."""
    if mode == "mixed":
        return WEIGHT_MIN, WEIGHT_MAX
    if mode == "excitatory":
        return 0, WEIGHT_MAX
    if mode == "shared":
        return -WEIGHT_MAX, WEIGHT_MAX
    return -WEIGHT_MAX, 0


def decay(x: float, decay_const: int) -> float:
    """x * (4096 - decay_const) >> 12 in sign-magnitude, as Loihi decays u and v:
    the product truncated toward 0 (x float64, exact for the 24-bit states: the
    product stays below 2**36).  Scalar: hwmodel.simulator compiles these three."""
    return np.trunc(x * ((DECAY_UNITY - decay_const) / DECAY_UNITY))


# the limits as float32 (exact): a float32 state then stays float32 in the two below
_U_MAX, _U_WRAP, _V_LIMIT = np.float32(STATE_MAX), np.float32(2 * STATE_MAX), np.float32(STATE_MAX - 1)


def wrap_current(u: float) -> float:
    """The 24-bit current u wrapped modulo 2**23 the way Lava does."""
    if u > _U_MAX:
        return u - _U_WRAP
    if u <= -_U_MAX:
        return u + _U_WRAP
    return u


def clip_voltage(v: float) -> float:
    """The 24-bit voltage v clipped to +-(2**23 - 1) the way Lava does."""
    return min(max(v, -_V_LIMIT), _V_LIMIT)


def decay_time_constant(decay_const: int) -> float:
    """Forward-Euler time constant, in time steps, of a decay by decay_const/4096
    per step (x -> x * (4096 - decay_const) / 4096): 4096 / decay_const, inf for
    0.  The current's effective decay is du + 1 (Lava's hidden +1)."""
    return DECAY_UNITY / decay_const if decay_const else float("inf")
