"""Refractory LIF core verification: the kind's stream facts, stimulus generators and corner vectors.

:data:`REFRACTORY_LIF_KIND` tells :class:`sim.step_case.StepCase` how
:func:`golden.refractory_lif.run_int` meets :class:`hw.cores.refractory_lif.RefractoryLIFCore`
(one ``i_current`` beat ``{neuron, current}`` per neuron per step; ``o_state`` beats ``{neuron,
v, refr, u, spike, saturated}``); the cases run through :mod:`sim.harness` in
``tests/test_core_refractory_lif.py`` (amaranth.sim) and ``tests/test_cocotb_refractory_lif.py``
(cocotb on Icarus).

The corner vectors (``sim/vectors/refractory_lif_corners.json``) are written by hand: stimulus
only, with symbolic currents (:func:`load_corner_cases`); their expectations come from the
golden model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from golden.fixed import QFormat
from golden.refractory_lif import RefractoryLIFParams, run_int
from hw.cores.refractory_lif import RefractoryLIFCore
from sim.step_case import StepCase, StepKind, current_input, feed_order, params_from_json

__all__ = [
    "REFRACTORY_LIF_KIND",
    "NARROW_FORMATS",
    "random_params",
    "random_currents",
    "random_case",
    "load_corner_cases",
    "CORNER_VECTORS",
]

CORNER_VECTORS = Path(__file__).resolve().parent / "vectors" / "refractory_lif_corners.json"


def _state_fields(trace) -> dict:
    return {"v": trace.v, "refr": trace.refr, "u": trace.u, "spike": trace.s, "saturated": trace.saturated}


#: The refractory LIF layer on its core's streams.
REFRACTORY_LIF_KIND = StepKind(
    "refractory_lif", RefractoryLIFParams, RefractoryLIFCore, run_int, "i_current", current_input, _state_fields
)

#: Formats narrow enough that random stimulus saturates v, R and u at both ends.
NARROW_FORMATS = dict(
    input_fmt=QFormat(4, 8),
    state_fmt=QFormat(3, 8),
    refr_fmt=QFormat(2, 8),
    threshold_fmt=QFormat(3, 8),
    coef_fmt=QFormat(0, 10, signed=False),
)


def random_params(n_neurons: int, seed: int, **formats: QFormat) -> RefractoryLIFParams:
    """Seeded per-neuron thresholds around the defaults and a random membrane decay.

    With any format given (e.g. :data:`NARROW_FORMATS`) thresholds and refractory magnitudes
    also go negative, so that ``v - v_th`` and ``R`` can saturate at either end.
    """
    rng = np.random.default_rng(seed)
    narrow = bool(formats)
    v_th = rng.uniform(-1.0 if narrow else 0.25, 3.5 if narrow else 2.0, n_neurons)
    u_th = rng.uniform(-1.5 if narrow else 0.0, 1.5 if narrow else 1.0, n_neurons)
    return RefractoryLIFParams.from_float(v_th, u_th, tau=rng.uniform(0.05, 0.95), tau_r=0.9, **formats)


def random_currents(params: RefractoryLIFParams, n_steps: int, seed: int, spread: float = 2.0) -> np.ndarray:
    """Seeded currents, shape ``(n_steps, n_neurons)``: uniform over ``+-spread * max|v_th|``
    (at least ``+-spread``), 20 % exact zeros, clipped to ``input_fmt``."""
    rng = np.random.default_rng(seed)
    fmt = params.input_fmt
    scale = int(spread * max(int(np.abs(params.v_th_q).max()), 1 << fmt.frac_bits))
    currents = rng.integers(-scale, scale, size=(n_steps, params.n_neurons), endpoint=True)
    currents[rng.random(currents.shape) < 0.2] = 0
    return np.clip(currents, fmt.min_int, fmt.max_int)


def random_case(
    n_neurons: int, n_steps: int, seed: int, *, shuffle: bool = False, spread: float = 2.0, **formats: QFormat
) -> StepCase:
    """:func:`random_params` (seed ``seed``) driven by :func:`random_currents` (seed ``seed + 1``),
    neurons in a seeded random order per step (seed ``seed + 2``) when ``shuffle``."""
    params = random_params(n_neurons, seed, **formats)
    currents = random_currents(params, n_steps, seed + 1, spread=spread)
    order = feed_order(n_steps, n_neurons, shuffle=shuffle, seed=seed + 2)
    return REFRACTORY_LIF_KIND.case(f"random{seed}_n{n_neurons}_t{n_steps}", params, currents, order)


def load_corner_cases(path: Path = CORNER_VECTORS) -> list[StepCase]:
    """The checked-in corner cases (stimulus only; the golden model gives the expectations).

    ``currents_q`` may use the strings ``"max"``, ``"min"``, ``"v_th"`` (the neuron's own
    threshold) and ``"-v_th"``, resolved here against the case's formats.
    """
    cases = []
    for record in json.loads(Path(path).read_text())["cases"]:
        params = params_from_json(RefractoryLIFParams, record["params"])
        named = {"max": params.input_fmt.max_int, "min": params.input_fmt.min_int}
        currents = np.empty((len(record["currents_q"]), params.n_neurons), dtype=np.int64)
        for t, row in enumerate(record["currents_q"]):
            for n, value in enumerate(row):
                v_th = int(params.v_th_q[n])
                table = {**named, "v_th": v_th, "-v_th": -v_th}
                if not isinstance(value, int) and value not in table:
                    raise ValueError(f"unknown corner value {value!r}: use an int or one of {sorted(table)}")
                currents[t, n] = value if isinstance(value, int) else table[value]
        cases.append(REFRACTORY_LIF_KIND.case(record["name"], params, currents, description=record["description"]))
    return cases
