"""Model side of the refractory LIF testbenches: stimulus beats and the beats the core must emit.

The numbers come from the golden sequential model :func:`golden.refractory_lif.run_int`; this
module only lays them out as stream beats in the order the driver sends them, with
``(step, neuron)`` labels for the checker. Used by both the ``amaranth.sim`` tests and the cocotb
testbench so the two cannot disagree on what "expected" means.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from golden.fixed import QFormat
from golden.refractory_lif import RefractoryLIFParams, RefractoryLIFTrace, run_int

__all__ = [
    "NARROW_FORMATS",
    "beat_order",
    "random_params",
    "random_currents",
    "RefractoryLIFModel",
    "load_corner_vectors",
    "params_to_json",
    "params_from_json",
]

CORNER_VECTORS = Path(__file__).resolve().parent / "vectors" / "refractory_lif_corners.json"


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


def beat_order(n_steps: int, n_neurons: int, *, shuffle: bool = False, seed: int = 0) -> list[tuple[int, int]]:
    """``(step, neuron)`` of every input beat: one beat per neuron per step, steps in order.

    With ``shuffle`` each step visits its neurons in a seeded random permutation (the core
    accepts any order within a step); otherwise in index order.
    """
    rng = np.random.default_rng(seed)
    order = []
    for step in range(n_steps):
        neurons = rng.permutation(n_neurons) if shuffle else np.arange(n_neurons)
        order += [(step, int(n)) for n in neurons]
    return order


class RefractoryLIFModel:
    """Golden trace of one stimulus, laid out as the core's stream beats.

    Parameters
    ----------
    params : RefractoryLIFParams
    currents_q : array of int, shape (n_steps, n_neurons)
        Input currents in ``params.input_fmt``.
    order : list of (step, neuron)
        Beat order of ``currents_q`` (see :func:`beat_order`); defaults to index order.
    history_q : array of int, shape (n_history, n_neurons), optional
        Steps the core has already run (its state memories hold their result): the trace is
        computed over ``history_q`` followed by ``currents_q``, and only the new steps produce
        beats. Step labels in contexts count from the start of the history.
    """

    def __init__(self, params: RefractoryLIFParams, currents_q, order=None, *, history_q=None):
        currents_q = _as_steps(params, currents_q, "currents_q")
        history_q = _as_steps(params, np.zeros((0, params.n_neurons)) if history_q is None else history_q, "history_q")
        self.params = params
        self.currents_q = currents_q
        self.first_step = history_q.shape[0]
        self.order = order if order is not None else beat_order(currents_q.shape[0], params.n_neurons)
        full = run_int(params, torch.cat([history_q, currents_q]))
        self.trace: RefractoryLIFTrace = RefractoryLIFTrace(
            *(getattr(full, name)[self.first_step :] for name in ("v", "refr", "u", "s", "saturated"))
        )

    @property
    def saturation_count(self) -> int:
        """Saturating updates among the new steps (the core's counter restarts at reset)."""
        return self.trace.saturation_count

    def input_beats(self) -> list[dict]:
        """Payload records for ``i_current`` (``{neuron, current}``), in beat order."""
        return [{"neuron": n, "current": int(self.currents_q[t, n])} for t, n in self.order]

    def expected_states(self) -> list[tuple[dict, dict]]:
        """``(record, context)`` for every ``o_state`` beat, in beat order."""
        tr = self.trace
        return [
            (
                {
                    "neuron": n,
                    "v": int(tr.v[t, n]),
                    "refr": int(tr.refr[t, n]),
                    "u": int(tr.u[t, n]),
                    "spike": int(tr.s[t, n]),
                    "saturated": int(tr.saturated[t, n]),
                },
                {"step": self.first_step + t, "neuron": n},
            )
            for t, n in self.order
        ]

    def expected_spikes(self) -> list[tuple[dict, dict]]:
        """``(record, context)`` for every ``o_spike`` beat: the updates that fired, in beat order."""
        return [
            ({"neuron": n}, {"step": self.first_step + t, "neuron": n})
            for t, n in self.order
            if bool(self.trace.s[t, n])
        ]


def _as_steps(params: RefractoryLIFParams, values, name: str) -> torch.Tensor:
    values = torch.as_tensor(np.asarray(values, dtype=np.int64))
    if values.ndim != 2 or values.shape[1] != params.n_neurons:
        raise ValueError(f"{name} must have shape (n_steps, {params.n_neurons}), not {tuple(values.shape)}")
    return values


# --- parameter and vector files ------------------------------------------------------------------
def params_to_json(params: RefractoryLIFParams) -> dict:
    """Everything needed to rebuild ``params`` (for handing a configuration to a cocotb run)."""
    return {
        "v_th_q": [int(v) for v in params.v_th_q],
        "u_th_q": [int(u) for u in params.u_th_q],
        "tau_q": params.tau_q,
        "tau_r_q": params.tau_r_q,
        **{
            name: str(getattr(params, name))
            for name in ("input_fmt", "state_fmt", "refr_fmt", "threshold_fmt", "coef_fmt")
        },
    }


def params_from_json(obj: dict) -> RefractoryLIFParams:
    """Inverse of :func:`params_to_json`."""
    formats = {
        name: QFormat.parse(obj[name])
        for name in ("input_fmt", "state_fmt", "refr_fmt", "threshold_fmt", "coef_fmt")
        if name in obj
    }
    return RefractoryLIFParams(
        v_th_q=np.asarray(obj["v_th_q"]), u_th_q=np.asarray(obj["u_th_q"]), tau_q=obj["tau_q"], tau_r_q=obj["tau_r_q"], **formats
    )


def load_corner_vectors(path: Path = CORNER_VECTORS) -> list[dict]:
    """The checked-in corner cases: ``[{name, description, params, currents_q}]``.

    ``currents_q`` may use the strings ``"max"``, ``"min"``, ``"v_th"`` (the neuron's own
    threshold) and ``"-v_th"``, resolved here against the case's formats.
    """
    cases = json.loads(Path(path).read_text())["cases"]
    resolved = []
    for case in cases:
        params = params_from_json(case["params"])
        fmt = params.input_fmt
        table = np.empty((len(case["currents_q"]), params.n_neurons), dtype=np.int64)
        for t, row in enumerate(case["currents_q"]):
            for n, value in enumerate(row):
                table[t, n] = _resolve(value, fmt, int(params.v_th_q[n]))
        resolved.append({"name": case["name"], "description": case["description"], "params": params, "currents_q": table})
    return resolved


def _resolve(value, fmt, v_th: int) -> int:
    if isinstance(value, int):
        return value
    named = {"max": fmt.max_int, "min": fmt.min_int, "v_th": v_th, "-v_th": -v_th}
    if value not in named:
        raise ValueError(f"unknown corner value {value!r}: use an int or one of {sorted(named)}")
    return named[value]
