"""LIF, IF and CubaLIF cases for :mod:`sim.harness`: seeded random layers.

:data:`LIF_KIND`, :data:`IF_KIND` and :data:`CUBA_LIF_KIND` say how each layer appears on its
core's streams (the membrane ``u``, and CubaLIF's synaptic current ``i``). IF runs on the LIF
core with its leak fixed at one.
"""

from __future__ import annotations

import numpy as np

from golden.cuba_lif import CubaLIFParams
from golden.cuba_lif import run_int as run_cuba_lif
from golden.fixed import QFormat
from golden.integrate_fire import IFParams
from golden.lif import LIFParams, run_int
from hw.cores.cuba_lif import CubaLIFCore
from hw.cores.lif import LIFCore
from sim.step_case import StepCase, StepKind, current_input, gaussian_case

__all__ = ["LIF_KIND", "IF_KIND", "CUBA_LIF_KIND", "random_params", "random_case"]


def _state_fields(trace) -> dict:
    return {"u": trace.u, "spike": trace.s, "saturated": trace.saturated}


def _cuba_state_fields(trace) -> dict:
    return {"i": trace.i, "u": trace.u, "spike": trace.s, "saturated": trace.saturated}


#: The LIF layer on its core's streams.
LIF_KIND = StepKind("lif", LIFParams, LIFCore, run_int, "i_current", current_input, _state_fields)
#: The IF layer: the LIF core and golden rule with the leak fixed at one.
IF_KIND = StepKind("if", IFParams, LIFCore, run_int, "i_current", current_input, _state_fields)
#: The CubaLIF layer on its core's streams.
CUBA_LIF_KIND = StepKind("cuba_lif", CubaLIFParams, CubaLIFCore, run_cuba_lif, "i_current", current_input,
                         _cuba_state_fields)


def random_params(kind: StepKind, n_neurons: int, seed: int, reset: float | None = None, **formats: QFormat):
    """Parameters of ``kind`` (LIF, IF or CubaLIF): thresholds in [0.2, 1.5], leaks and synaptic
    decays in [0, 0.999) (IF: no leak), input scales in [-1, 1.9]; reset by subtraction, or to
    ``reset``."""
    rng = np.random.default_rng(seed)
    common = dict(threshold=rng.uniform(0.2, 1.5, n_neurons), reset=reset, **formats)
    if kind is IF_KIND:
        return IFParams.from_float(scale=rng.uniform(-1.0, 1.9, n_neurons), **common)
    leak = rng.uniform(0.0, 0.999, n_neurons)
    if kind is CUBA_LIF_KIND:
        return CubaLIFParams.from_float(leak=leak, syn=rng.uniform(0.0, 0.999, n_neurons),
                                        scale=rng.uniform(-1.0, 1.9, n_neurons), **common)
    return LIFParams.from_float(leak=leak, scale=rng.uniform(-1.0, 1.9, n_neurons), **common)


def random_case(seed: int, n_neurons: int, steps: int, *, kind: StepKind = LIF_KIND, shuffle: bool = True,
                drive: float = 2.0, reset: float | None = None, name: str | None = None,
                **formats: QFormat) -> StepCase:
    """A seeded random layer of ``kind`` (:func:`random_params`) with Gaussian currents of
    standard deviation ``drive`` and occasional 8x outliers, quantised (saturating) to
    ``input_fmt``; neurons in a fresh random order each step when ``shuffle``."""
    rng = np.random.default_rng(seed)
    params = random_params(kind, n_neurons, seed, reset=reset, **formats)
    return gaussian_case(kind, params, rng, steps, drive=drive, shuffle=shuffle, seed=seed, name=name)
