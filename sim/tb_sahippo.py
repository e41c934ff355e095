"""SA-HiPPO core verification: event-stream cases for :mod:`sim.harness`.

A :class:`SAHiPPOCase` holds a layer and an event stream, and derives from
:func:`golden.sahippo.run_int` what the core (:func:`hw.cores.sahippo.sahippo_core`: zoh or
taylor2) must emit: an ``o_state`` beat per mode of every event (labelled ``event``, ``mode``),
an ``o_output`` beat per event (``dt``, ``y``, spike, saturated; labelled ``event``), and the
final ``saturation_count``, ``backwards_count`` and ``clipped_count``. The cases run in
``tests/test_core_sahippo.py`` (amaranth.sim) and ``tests/test_cocotb_sahippo.py`` (cocotb on
Icarus).

Streams (:func:`irregular_stream`) mix same-tick bursts (``dt = 0``), runs one tick apart,
gaps beyond the table's ``dt_max`` and random intervals, on repeated and on random channels.
:func:`corner_case` writes down the edges: extreme weights, a gap of exactly ``dt_max`` and of
``dt_max + 1``, a gap of ``2**31`` ticks, the last tick ``tick_bits`` can hold, and events with
backwards ticks that the core must drop.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from golden.fixed import QFormat
from golden.sahippo import SAHiPPOParams, SAHiPPOTrace, run_int
from hw.cores.sahippo import SAHiPPOCore, sahippo_core
from sim.harness import Expectation

__all__ = [
    "SAHiPPOCase",
    "zoh_params",
    "irregular_stream",
    "random_case",
    "corner_case",
    "digit_case",
]


def zoh_params(n_state: int, n_channels: int, dt_max: int, seed: int, method: str = "zoh",
               **formats: QFormat) -> SAHiPPOParams:
    """A layer (``zoh`` unless ``method`` says otherwise) with per-channel ``alpha`` in [0.5, 3],
    ``dt_scale`` in [0.02, 0.2] (so every channel has its own tables), random ``C`` and ``D``,
    thresholds in [0.05, 0.3]."""
    rng = np.random.default_rng(seed)
    return SAHiPPOParams.from_float(
        n_state,
        alpha=rng.uniform(0.5, 3.0, n_channels),
        dt_scale=rng.uniform(0.02, 0.2, n_channels),
        c=rng.standard_normal((n_channels, n_state)) / np.sqrt(n_state),
        d=rng.standard_normal(n_channels),
        threshold=rng.uniform(0.05, 0.3, n_channels),
        dt_max=dt_max,
        method=method,
        **formats,
    )


def irregular_stream(params: SAHiPPOParams, n_events: int, seed: int, scale: float = 1.5):
    """``(ticks, channels, weights_q)`` int64: segments of 2-6 events taking turns: a same-tick
    burst and a run one tick apart (each on one channel), gaps beyond ``dt_max`` and random
    intervals (on one channel or on random ones); weights normal with standard deviation
    ``scale``."""
    rng = np.random.default_rng(seed)
    gaps, channels = [], []
    kind = int(rng.integers(4))
    while len(gaps) < n_events:
        kind = (kind + 1) % 4  # every kind within four segments
        length = int(rng.integers(2, 7))
        if kind == 0:
            gaps += [0] * length
        elif kind == 1:
            gaps += [1] * length
        elif kind == 2:
            gaps += rng.integers(params.dt_max + 1, 4 * params.dt_max + 2, length).tolist()
        else:
            gaps += rng.integers(0, params.dt_max + 1, length).tolist()
        repeat = kind < 2 or rng.random() < 0.5  # bursts and dt = 1 runs stay on one channel
        ch = int(rng.integers(params.n_channels))
        channels += [ch if repeat else int(rng.integers(params.n_channels)) for _ in range(length)]
    ticks = np.cumsum(gaps[:n_events])
    weights_q = params.input_fmt.quantize(rng.standard_normal(n_events) * scale)
    return ticks.astype(np.int64), np.array(channels[:n_events], dtype=np.int64), np.asarray(weights_q, dtype=np.int64)


@dataclass
class SAHiPPOCase:
    """One verification case: a ``zoh`` layer and an event stream.

    Parameters
    ----------
    name : str
        Short identifier (build directories, reports).
    params : SAHiPPOParams
        The layer.
    ticks, channels, weights_q : np.ndarray of int64, shape (K,)
        The events the golden model sees (ticks non-decreasing).
    backwards : dict, optional
        ``{position: {channel, tick, weight}}``: extra events sent to the core just before
        event ``position`` whose tick lies below their channel's last update; the core must
        drop and count them, the golden model never sees them.
    tick_bits : int
        The core's tick width.
    """

    name: str
    params: SAHiPPOParams
    ticks: np.ndarray
    channels: np.ndarray
    weights_q: np.ndarray
    backwards: dict = field(default_factory=dict)
    tick_bits: int = 32

    def __post_init__(self):
        self.ticks, self.channels, self.weights_q = (
            np.asarray(v, dtype=np.int64).reshape(-1) for v in (self.ticks, self.channels, self.weights_q)
        )
        self.backwards = {int(k): dict(v) for k, v in self.backwards.items()}
        if self.ticks.size and self.ticks.max() >= 1 << self.tick_bits:
            raise ValueError(f"case {self.name}: ticks must fit tick_bits = {self.tick_bits}")

    def core(self, **kwargs) -> SAHiPPOCore:
        """The core for the layer's method (:func:`hw.cores.sahippo.sahippo_core`)."""
        return sahippo_core(self.params, tick_bits=self.tick_bits, **kwargs)

    def golden(self) -> SAHiPPOTrace:
        return run_int(self.params, self.ticks, self.channels, self.weights_q)

    def input_beats(self) -> list[dict]:
        """``i_event`` records in order, the backwards events included."""
        beats = []
        for k, (t, c, w) in enumerate(zip(self.ticks.tolist(), self.channels.tolist(), self.weights_q.tolist())):
            if k in self.backwards:
                beats.append(self.backwards[k])
            beats.append({"channel": c, "tick": t, "weight": w})
        return beats

    def stimulus(self) -> dict:
        """``{"i_event": records}``: the events in order, the backwards ones included."""
        return {"i_event": self.input_beats()}

    def expectation(self) -> Expectation:
        """Every ``o_state`` beat (``event``, ``mode``), every ``o_output`` beat (``event``) and
        both counters."""
        trace = self.golden()
        states, outputs = [], []
        for k, ch in enumerate(self.channels.tolist()):
            for n in range(self.params.n_modes):
                record = {"channel": ch, "mode": n, "re": int(trace.z[k, n, 0]), "im": int(trace.z[k, n, 1])}
                states.append((record, {"event": k, "mode": n}))
            record = {
                "channel": ch,
                "dt": int(trace.dt[k]),
                "y": int(trace.y[k]),
                "spike": int(trace.spike[k]),
                "saturated": int(trace.saturated[k]),
            }
            outputs.append((record, {"event": k}))
        counters = {"saturation_count": trace.saturation_count, "backwards_count": len(self.backwards),
                    "clipped_count": trace.clipped_count}
        return Expectation({"o_state": states, "o_output": outputs}, counters)


def random_case(seed: int, n_state: int, n_channels: int, dt_max: int, n_events: int, *, scale: float = 1.5,
                method: str = "zoh", name: str | None = None, **formats: QFormat) -> SAHiPPOCase:
    """:func:`zoh_params` with :func:`irregular_stream`."""
    params = zoh_params(n_state, n_channels, dt_max, seed, method, **formats)
    ticks, channels, weights_q = irregular_stream(params, n_events, seed + 1000, scale)
    return SAHiPPOCase(name or f"random{seed}", params, ticks, channels, weights_q)


def corner_case(n_state: int = 8, dt_max: int = 6, seed: int = 11, method: str = "zoh") -> SAHiPPOCase:
    """Written-down edges on two channels: extreme weights (``input_fmt`` min and max) at one
    tick, intervals of exactly ``dt_max`` and ``dt_max + 1``, a first event at tick 0 (dt 0),
    a gap of ``2**31`` ticks, the largest 32-bit tick, zero weights (pure decay), and
    backwards ticks before events 6, 9 and 12."""
    params = zoh_params(n_state, 2, dt_max, seed, method)
    lo, hi = params.input_fmt.min_int, params.input_fmt.max_int
    big = 1 << 31
    top = (1 << 32) - 1
    events = [  # (tick, channel, weight)
        (0, 0, hi), (0, 0, hi), (0, 1, lo), (dt_max, 0, lo), (dt_max, 0, 0), (2 * dt_max + 1, 0, hi),
        (2 * dt_max + 1, 1, 1), (2 * dt_max + 2, 1, -1), (2 * dt_max + 3, 1, 0), (big, 0, 4096), (big, 1, 0),
        (big + 1, 0, 0), (top - dt_max, 1, hi), (top, 1, lo), (top, 0, 0),
    ]
    ticks, channels, weights = (np.array(v, dtype=np.int64) for v in zip(*events))
    backwards = {  # each tick lies below its channel's last update time
        6: {"channel": 0, "tick": dt_max, "weight": hi},
        9: {"channel": 0, "tick": 2 * dt_max, "weight": lo},
        12: {"channel": 1, "tick": 2 * dt_max + 2, "weight": hi},
    }
    return SAHiPPOCase(f"corners_{method}", params, ticks, channels, weights, backwards)


#: Written-down ``g_q`` table (``uQ4.20``, three 8-bit digits; channel x interval) of
#: :func:`digit_case`: every pattern of zero and non-zero digits, the smallest and largest
#: digits, the largest ``g_q``; ``g_q = 0`` at ``dt = 0``.
DIGIT_PATTERNS = (
    (0x000000, 0x000001, 0x0000FF, 0x000100, 0x00FF00, 0x010000, 0x0F0000, 0x000101),
    (0x000000, 0x010001, 0x010100, 0x010101, 0x0180FF, 0xFF0000, 0xFFFFFF, 0x00FFFF),
)


def digit_case(n_state: int = 8, seed: int = 12, n_events: int = 60) -> SAHiPPOCase:
    """The zoh decay composition's edges: a two-channel layer (``dt_max = 7``) whose ``g_q``
    table holds :data:`DIGIT_PATTERNS` instead of the warped steps, and a stream that reaches
    every interval ``0 .. dt_max`` of channel 0 and ``1 .. dt_max`` of channel 1."""
    base = zoh_params(n_state, 2, 7, seed)
    g_q = np.array(DIGIT_PATTERNS, dtype=np.int64)
    params = replace(base, g_q=g_q, substeps=(g_q > 0).astype(np.int64), g_sub_q=np.zeros_like(g_q))
    rng = np.random.default_rng(seed)
    gaps = [k % 9 for k in range(n_events)]
    ticks = np.cumsum(gaps)
    channels = (np.arange(n_events) // 9) % 2
    weights_q = params.input_fmt.quantize(rng.standard_normal(n_events))
    return SAHiPPOCase("digits", params, ticks, channels, weights_q)
