"""SiLIF cases for :mod:`sim.harness`: random layers and checked-in corner cases.

:data:`SILIF_KIND` says how the layer appears on its core's streams (its membrane ``u`` and
adaptation ``w``). The corner cases are checked in as ``sim/vectors/silif_corners.json``; ``python
-m sim.tb_silif --write-vectors`` rewrites them after a deliberate change of the integer semantics
(the golden test fails until then).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from golden.fixed import QFormat
from golden.silif import SiLIFParams, run_int
from hw.cores.silif import SiLIFCore
from sim.step_case import StepCase, StepKind, current_input, gaussian_case, read_vectors, vectors_main

__all__ = ["SILIF_KIND", "random_case", "corner_cases", "load_corner_cases", "CORNER_VECTORS"]

CORNER_VECTORS = Path(__file__).resolve().parent / "vectors" / "silif_corners.json"


def _state_fields(trace) -> dict:
    return {"u": trace.u, "w": trace.w, "spike": trace.s, "saturated": trace.saturated}


#: The SiLIF layer on its core's streams.
SILIF_KIND = StepKind("silif", SiLIFParams, SiLIFCore, run_int, "i_current", current_input, _state_fields)


# --- case generators ---------------------------------------------------------------------------
def random_case(
    seed: int,
    n_neurons: int,
    steps: int,
    *,
    shuffle: bool = True,
    drive: float = 2.0,
    name: str | None = None,
    **formats: QFormat,
) -> StepCase:
    """A seeded random layer spread like trained SiLIF (NEURON_MATH §1.8): alpha over [0, 1),
    half the betas within 1e-7..1e-1 of 1 (some round to 1), a in [0, 1], b in [0, 2]; Gaussian
    currents of standard deviation ``drive`` with occasional 8x outliers, quantised (saturating)
    to ``input_fmt``. Neurons are fed in a fresh random order each step when ``shuffle``."""
    rng = np.random.default_rng(seed)
    near_one = 1.0 - 10.0 ** rng.uniform(-7, -1, n_neurons)
    beta = np.where(rng.random(n_neurons) < 0.5, near_one, rng.uniform(0.5, 1.0, n_neurons))
    params = SiLIFParams.from_float(
        rng.uniform(0.0, 1.0, n_neurons), beta, rng.uniform(0, 1, n_neurons), rng.uniform(0, 2, n_neurons), **formats
    )
    return gaussian_case(SILIF_KIND, params, rng, steps, drive=drive, shuffle=shuffle, seed=seed, name=name)


def corner_cases() -> list[StepCase]:
    """The corner cases that are checked in as vectors (default formats unless stated)."""
    cases = []
    default = SiLIFParams([0], [0], [0], [0], [0])
    one_decay = 1 << default.decay_fmt.frac_bits
    one_a = 1 << default.a_fmt.frac_bits
    one = default.threshold_q  # 1.0 in x, u, w, b
    half = one_decay // 2
    steps = 40

    # beta rounding to 1: from_float clamps it to 1 - 2**-18, w then integrates a*u exactly.
    params = SiLIFParams.from_float(
        alpha=[0.9, 0.5, 0.99, 0.0],
        beta=[1.0, 1 - 1e-9, 1 - 2**-19, 1 - 2**-17],
        a=[1.0, 0.0, 0.5, 1.0],
        b=[0.0, 2.0, 1.0, 0.25],
    )
    assert params.rounded_to_one["beta"].tolist() == [True, True, True, False]
    currents = np.zeros((steps, 4), dtype=np.int64)
    currents[:25] = [3 * one // 2, 5 * one, 3 * one, -7 * one]
    cases.append(
        SILIF_KIND.case(
            "beta_rounds_to_one",
            params,
            currents,
            description="beta = 1, 1-1e-9, 1-2**-19 round to 1.0 and are clamped to 1-2**-18 (w integrates); "
            "1-2**-17 stays; drive on, then off",
        )
    )

    # Large negative drive: the most negative current, with and without adaptation. Neuron 0 has
    # alpha_q + gain_q = 2**18 + 1, so u overshoots the bottom rail and saturates every step.
    p = default
    currents = np.full((steps, 4), p.input_fmt.min_int, dtype=np.int64)
    currents[steps // 2 :, 3] = p.input_fmt.max_int
    cases.append(
        SILIF_KIND.case(
            "large_negative_drive",
            SiLIFParams(
                alpha_q=[half, half, one_decay - 1, 1000],
                beta_q=[one_decay - 1, half, one_decay - 1, one_decay - 1],
                gain_q=[half + 1, half, 1, one_decay - 1000],
                a_q=[0, one_a, one_a // 2, 0],
                b_q=[0, 2 * one, one, 2 * one],
            ),
            currents,
            description="input_fmt minimum into neurons with and without adaptation; u saturating at the "
            "bottom (alpha+gain > 1); the last neuron swings to the input maximum halfway",
        )
    )

    # Saturation at both ends: sQ6.14 states (+-32) fed from sQ10.14 currents of +-400.
    narrow = SiLIFParams.from_float(
        alpha=[0.5, 0.9, 0.0, 0.99],
        beta=[0.95, 0.99, 1.0, 0.5],
        a=[0.0, 0.3, 0.0, 1.0],
        b=[0.0, 1.0, 2.0, 0.5],
        state_fmt=QFormat(6, 14),
    )
    currents = np.zeros((steps, 4), dtype=np.int64)
    currents[: steps // 2] = 400 * one
    currents[steps // 2 :] = -400 * one
    cases.append(
        SILIF_KIND.case(
            "saturation_both_ends",
            narrow,
            currents,
            description="sQ6.14 states driven to the top, then to the bottom of their range",
        )
    )

    # Exact ties. Neurons 0/1 (alpha = a = beta = b = 0, gain = 1 - 2**-18): u = x for these
    # currents, so u == 1.0 (no spike, strict) against 1.0 + 1 LSB (spike). Neurons 2/3
    # (gain = 1/2): gain*x lands exactly on half an LSB, +1.5 -> 2 and -1.5 -> -1 (round half up).
    currents = np.array([[one, one + 1, 3, -3], [one - 1, one, 1, -1], [0, 0, 0, 0]] * 4, dtype=np.int64)
    cases.append(
        SILIF_KIND.case(
            "exact_ties",
            SiLIFParams(
                alpha_q=[0, 0, 0, 0], beta_q=[0, 0, 0, 0], gain_q=[one_decay - 1, one_decay - 1, half, half],
                a_q=[0, 0, 0, 0], b_q=[0, 0, 0, 0],
            ),
            currents,
            description="u exactly 1.0 (no spike) vs 1.0 + 1 LSB; gain*x exactly half an LSB (round half up)",
        )
    )

    # The hand-worked float case (alpha = beta = a = 1/2, b = 1, x = 4, 0, 0), exact in integers.
    cases.append(
        SILIF_KIND.case(
            "update_order_by_hand",
            SiLIFParams([half], [half], [half], [one_a // 2], [one]),
            np.array([[4 * one], [0], [0], [0]], dtype=np.int64),
            description="w from the old u and s, u from the new w, reset by subtracting 1: "
            "u = 2, -0.5, -0.625; w = 0, 2, 0.75",
        )
    )

    # Zero everywhere: nothing moves, no spike, no saturation.
    cases.append(
        SILIF_KIND.case(
            "zero",
            SiLIFParams([one_decay - 1, 0, half], [one_decay - 1, half, 0], [1, one_decay - 1, half], [one_a, 0, 1], [2 * one, 0, 1]),
            np.zeros((8, 3), dtype=np.int64),
            description="zero input from zero state",
        )
    )
    return cases


def load_corner_cases() -> list[StepCase]:
    """The checked-in corner vectors, with their expected state fields."""
    return read_vectors(SILIF_KIND, CORNER_VECTORS)


if __name__ == "__main__":
    vectors_main(__doc__, CORNER_VECTORS, corner_cases)
