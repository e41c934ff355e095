"""LIF cases for :mod:`sim.harness`: seeded random layers.

:data:`LIF_KIND` says how the layer appears on its core's streams (its membrane ``u``).
"""

from __future__ import annotations

import numpy as np

from golden.fixed import QFormat
from golden.lif import LIFParams, run_int
from hw.cores.lif import LIFCore
from sim.step_case import StepCase, StepKind, current_input, gaussian_case

__all__ = ["LIF_KIND", "random_params", "random_case"]


def _state_fields(trace) -> dict:
    return {"u": trace.u, "spike": trace.s, "saturated": trace.saturated}


#: The LIF layer on its core's streams.
LIF_KIND = StepKind("lif", LIFParams, LIFCore, run_int, "i_current", current_input, _state_fields)


def random_params(n_neurons: int, seed: int, reset: float | None = None, **formats: QFormat) -> LIFParams:
    """Thresholds in [0.2, 1.5], leaks in [0, 0.999), input scales in [-1, 1.9]; reset by
    subtraction, or to ``reset``."""
    rng = np.random.default_rng(seed)
    return LIFParams.from_float(threshold=rng.uniform(0.2, 1.5, n_neurons), leak=rng.uniform(0.0, 0.999, n_neurons),
                                scale=rng.uniform(-1.0, 1.9, n_neurons), reset=reset, **formats)


def random_case(seed: int, n_neurons: int, steps: int, *, shuffle: bool = True, drive: float = 2.0,
                reset: float | None = None, name: str | None = None, **formats: QFormat) -> StepCase:
    """A seeded random layer (:func:`random_params`) with Gaussian currents of standard deviation
    ``drive`` and occasional 8x outliers, quantised (saturating) to ``input_fmt``; neurons in a
    fresh random order each step when ``shuffle``."""
    rng = np.random.default_rng(seed)
    params = random_params(n_neurons, seed, reset=reset, **formats)
    return gaussian_case(LIF_KIND, params, rng, steps, drive=drive, shuffle=shuffle, seed=seed, name=name)
