"""Loihi numeric formats: bit widths and ranges of the neuron and synapse state.

Sources: [D18] Davies et al. 2018 (24-bit u and v, 12-bit decays, weights 1-9 bit
with a shared exponent); Lava 0.10 `lava/proc/lif/models.py` and
`lava/utils/weightutils.py` (the fixed-point semantics the simulator must match,
verified bit-exact in shared/LOIHI_AND_LAVA_FACTS.md).
"""
from __future__ import annotations

import numpy as np

STATE_BITS = 24                 # u and v, signed
STATE_MAX = 2 ** (STATE_BITS - 1)   # u wraps modulo 2**23, v clipped to +-(2**23 - 1)
DECAY_BITS = 12                 # du, dv unsigned: 0..4095
DECAY_UNITY = 2 ** DECAY_BITS
ACTIVATION_SHIFT = 6            # synaptic input is shifted left by 6 into u
THRESHOLD_SHIFT = 6             # spike when v > vth << 6
THRESHOLD_MANT_BITS = 17        # vth mantissa, unsigned: 0..131071
THRESHOLD_MANT_MAX = 2 ** THRESHOLD_MANT_BITS - 1
BIAS_MANT_BITS = 13             # signed: -4096..4095
BIAS_MANT_MAX = 2 ** (BIAS_MANT_BITS - 1) - 1
BIAS_EXP_BITS = 3               # unsigned: 0..7
BIAS_EXP_MAX = 2 ** BIAS_EXP_BITS - 1
WEIGHT_BITS_MAX = 8             # stored weight mantissa bits (sign extra for mixed-sign)
WEIGHT_MIN = -(2 ** WEIGHT_BITS_MAX)        # -256 (mixed sign)
WEIGHT_MAX = 2 ** WEIGHT_BITS_MAX - 1       # 255
WEIGHT_EXP_MIN, WEIGHT_EXP_MAX = -7, 7      # shared per-connection exponent
DENDRITE_ACCUMULATOR_BITS = 16  # [D18] per-step synaptic input sum; Lava does not enforce it

SIGN_MODES = ("excitatory", "inhibitory", "mixed")


def sign_mode(weights: np.ndarray) -> str:
    """The Loihi sign mode of a set of weights: 'excitatory', 'inhibitory' or 'mixed'."""
    w = np.asarray(weights)
    if w.size == 0 or w.min() >= 0:
        return "excitatory"
    if w.max() <= 0:
        return "inhibitory"
    return "mixed"


def weight_step(num_weight_bits: int, mode: str) -> int:
    """Spacing of representable weights: the low bits Loihi drops.

    With 8 stored bits and mixed signs the lowest bit is dropped (step 2); each
    bit fewer doubles the step (Lava `truncate_weights`).
    """
    if not 1 <= num_weight_bits <= WEIGHT_BITS_MAX:
        raise ValueError(f"numWeightBits={num_weight_bits} outside 1..{WEIGHT_BITS_MAX}")
    return 2 ** (WEIGHT_BITS_MAX - num_weight_bits + (mode == "mixed"))


def weight_range(mode: str) -> tuple[int, int]:
    """Largest representable weight magnitude range (before truncation) for a sign mode."""
    if mode == "mixed":
        return WEIGHT_MIN, WEIGHT_MAX
    if mode == "excitatory":
        return 0, WEIGHT_MAX
    return -WEIGHT_MAX, 0


def decay(x: np.ndarray, decay_const: int) -> np.ndarray:
    """x * (4096 - decay_const) >> 12 in sign-magnitude, as Loihi decays u and v."""
    prod = x.astype(np.int64) * (DECAY_UNITY - decay_const)
    return (np.sign(prod) * (np.abs(prod) >> DECAY_BITS)).astype(np.int64)


def wrap_current(u: np.ndarray) -> np.ndarray:
    """Wrap the 24-bit current u modulo 2**23 the way Lava does."""
    u = np.where(u > STATE_MAX, u - 2 * STATE_MAX, u)
    return np.where(u <= -STATE_MAX, u + 2 * STATE_MAX, u)


def clip_voltage(v: np.ndarray) -> np.ndarray:
    """Clip the 24-bit voltage v to +-(2**23 - 1)."""
    return np.clip(v, -STATE_MAX + 1, STATE_MAX - 1)
