"""C-SiLIF cases for :mod:`sim.harness`: random layers and checked-in corner cases.

:data:`CSILIF_KIND` says how the layer appears on its core's streams (its complex state ``u`` as
``re`` and ``im``). The corner cases are checked in as ``sim/vectors/csilif_corners.json``; ``python
-m sim.tb_csilif --write-vectors`` rewrites them after a deliberate change of the integer semantics
(the golden test fails until then).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from golden.csilif import CSiLIFParams, run_int
from golden.fixed import QFormat
from hw.cores.csilif import CSiLIFCore
from sim.step_case import StepCase, StepKind, current_input, gaussian_case, read_vectors, vectors_main

__all__ = ["CSILIF_KIND", "random_case", "corner_cases", "load_corner_cases", "CORNER_VECTORS"]

CORNER_VECTORS = Path(__file__).resolve().parent / "vectors" / "csilif_corners.json"


def _state_fields(trace) -> dict:
    return {"re": trace.re, "im": trace.im, "spike": trace.s, "saturated": trace.saturated}


#: The C-SiLIF layer on its core's streams.
CSILIF_KIND = StepKind("csilif", CSiLIFParams, CSiLIFCore, run_int, "i_current", current_input, _state_fields)


# --- case generators ---------------------------------------------------------------------------
def random_case(
    seed: int,
    n_neurons: int,
    steps: int,
    *,
    shuffle: bool = True,
    drive: float = 1.0,
    name: str | None = None,
    **formats: QFormat,
) -> StepCase:
    """A seeded random layer over the whole unit disc (as trained C-SiLIF decays are,
    NEURON_MATH §1.8), gains in the checkpoint's range [-1.5, 4.8] (clipped to ``gain_fmt``), and
    Gaussian currents of standard deviation ``drive`` with occasional spikes of 8x, quantised
    to ``input_fmt`` (saturating). Neurons are fed in a fresh random order each step when
    ``shuffle``."""
    rng = np.random.default_rng(seed)
    probe = CSiLIFParams([0], [0], [0], **formats)
    near_one = 1.0 - 10.0 ** rng.uniform(-7, -1, n_neurons)
    magnitude = np.where(rng.random(n_neurons) < 0.5, near_one, rng.uniform(0, 1, n_neurons))
    angle = rng.uniform(-np.pi, np.pi, n_neurons)
    gain = np.clip(rng.uniform(-1.5, 4.8, n_neurons), probe.gain_fmt.min_value, probe.gain_fmt.max_value)
    params = CSiLIFParams.from_float(magnitude * np.cos(angle), magnitude * np.sin(angle), gain, **formats)
    return gaussian_case(CSILIF_KIND, params, rng, steps, drive=drive, shuffle=shuffle, seed=seed, name=name)


def corner_cases() -> list[StepCase]:
    """The corner cases that are checked in as vectors (default formats unless stated)."""
    cases = []
    default = CSiLIFParams([0], [0], [0])
    c = default.coef_fmt.frac_bits
    limit = (1 << c) - 1
    x_lsb_half = 1 << (default.input_fmt.frac_bits - 1)  # 0.5 in input_fmt
    one_gain = 1 << default.gain_fmt.frac_bits
    steps = 40

    # |lambda| within one quantum of 1: integrators along the axes and the diagonal; a small
    # positive drive charges them up to spiking, the half reset pulls them back.
    diag = int(np.floor(limit / np.sqrt(2)))
    decays = [(limit, 0), (0, limit), (diag, diag), (-diag, diag)]
    currents = np.full((steps, 4), 205, dtype=np.int64)  # 0.05 in sQ6.12
    cases.append(
        CSILIF_KIND.case(
            "near_unit",
            CSiLIFParams([d[0] for d in decays], [d[1] for d in decays], [one_gain] * 4),
            currents,
            description="|lambda_q| within one quantum of 1 (axes and diagonals), small positive drive",
        )
    )

    # lambda near -1: fast oscillation at the Nyquist rate, with and without a small rotation.
    decays = [(-limit, 0), (-limit + 1000, 2000), (-(limit // 2), 0), (-limit, 0)]
    currents = np.zeros((steps, 4), dtype=np.int64)
    currents[0] = [4 * x_lsb_half, 4 * x_lsb_half, 3 * x_lsb_half, 0]
    currents[:, 3] = 2 * x_lsb_half
    cases.append(
        CSILIF_KIND.case(
            "near_minus_one",
            CSiLIFParams([d[0] for d in decays], [d[1] for d in decays], [one_gain] * 4),
            currents,
            description="lambda near -1 (sign flips every step), impulse and constant drive",
        )
    )

    # Large negative drive: the most negative current times the largest gains, into near-unit
    # and mid decays, until Re u (and Im u through the rotation) saturates at the bottom.
    p = default
    gains = [p.gain_fmt.max_int, p.gain_fmt.max_int, p.gain_fmt.max_int, p.gain_fmt.min_int]
    decays = [(limit, 0), (diag, -diag), (limit // 2, 0), (limit, 0)]
    currents = np.full((steps, 4), p.input_fmt.min_int, dtype=np.int64)
    currents[:, 3] = p.input_fmt.max_int  # negative gain times positive drive: also negative
    cases.append(
        CSILIF_KIND.case(
            "large_negative_drive",
            CSiLIFParams([d[0] for d in decays], [d[1] for d in decays], gains),
            currents,
            description="largest negative drive: saturation of Re u and Im u at the bottom of sQ12.12",
        )
    )

    # Saturation at both ends in a narrow state format: drive alternates sign in long blocks.
    narrow = {"state_fmt": QFormat(4, 10)}
    decays = [(limit, 0), (0, limit), (diag, diag), (limit // 4, 0)]
    currents = np.zeros((steps, 4), dtype=np.int64)
    currents[: steps // 2] = p.input_fmt.max_int
    currents[steps // 2 :] = p.input_fmt.min_int
    cases.append(
        CSILIF_KIND.case(
            "saturation_both_ends",
            CSiLIFParams([d[0] for d in decays], [d[1] for d in decays], [4 * one_gain] * 4, **narrow),
            currents,
            description="sQ4.10 states driven to the top then to the bottom of their range",
        )
    )

    # Exact ties: threshold Re u == 1/2 (no spike) against 1/2 + 1 LSB (spike), and rounding
    # ties of b*x at exactly half an LSB, positive (rounds up) and negative (rounds up, to 0).
    half_state_in_x = x_lsb_half  # 0.5
    lsb_ratio = 1 << (default.input_fmt.frac_bits - default.state_fmt.frac_bits)
    tie = 1 << (default.round_bits - default.input_shift - 1)  # b = 1 LSB: b*x is half a state LSB
    currents = np.array(
        [
            [half_state_in_x, half_state_in_x + lsb_ratio, tie, -tie],
            [half_state_in_x - lsb_ratio, half_state_in_x, 3 * tie, -3 * tie],
            [0, 0, 0, 0],
        ]
        * 4,
        dtype=np.int64,
    )
    cases.append(
        CSILIF_KIND.case(
            "exact_ties",
            CSiLIFParams([0, 0, 0, 0], [0, 0, 0, 0], [one_gain, one_gain, 1, 1]),
            currents,
            description="Re u exactly 1/2 (no spike) vs 1/2 + 1 LSB; b*x exactly half an LSB (round half up)",
        )
    )

    # Zero everywhere: nothing moves, no spike, no saturation.
    cases.append(
        CSILIF_KIND.case(
            "zero",
            CSiLIFParams([limit, 0, -diag], [0, -limit, diag], [0, one_gain, p.gain_fmt.min_int]),
            np.zeros((8, 3), dtype=np.int64),
            description="zero input from zero state",
        )
    )
    return cases


def load_corner_cases() -> list[StepCase]:
    """The checked-in corner vectors, with their expected state fields."""
    return read_vectors(CSILIF_KIND, CORNER_VECTORS)


if __name__ == "__main__":
    vectors_main(__doc__, CORNER_VECTORS, corner_cases)
