"""DH-LIF core verification: test cases and the cocotb testbench.

The cocotb tests (:func:`matches_golden`, :func:`checker_reports_flipped_bit`) run on the
Verilog of :class:`hw.cores.dhlif.DHLIFCore` under Icarus, driven from
``tests/test_cocotb_dhlif.py`` through :func:`sim.runner.run_cocotb`. The configuration
arrives as JSON (:func:`case_config`)::

    {"case": DHLIFCase.to_json(), "seed": int, "idle_prob": float, "backpressure_prob": float,
     "flip": {"step", "neuron", "field", "bit"} (checker test only)}

and the testbench rebuilds the same :class:`golden.dhlif.DHLIFParams`, so port layouts and
expected beats come from the objects that generated the Verilog. The pieces: **driver**
:class:`sim.stream.CocotbStreamDriver` (one ``i_drive`` beat per neuron per tick, seeded idle
cycles); **monitors** :class:`sim.stream.CocotbStreamMonitor` on ``o_spike`` and ``o_state``
(seeded backpressure); **model** :func:`golden.dhlif.run_int` through
:meth:`DHLIFCase.expected_beats`; **checker** :class:`sim.checker.Scoreboard` per output stream
(every field of every beat), then the final ``saturation_count``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from golden.dhlif import DHLIFParams, DHLIFTrace, run_int
from golden.fixed import QFormat
from hw.cores.dhlif import DHLIFCore, branch_drives
from sim.checker import MismatchError, Scoreboard, check_value, finish_all
from sim.runner import load_config
from sim.stream import CocotbStreamDriver, CocotbStreamMonitor

__all__ = ["DHLIFCase", "random_case", "case_config", "matches_golden", "checker_reports_flipped_bit"]

_FORMAT_NAMES = ("weight_fmt", "current_fmt", "membrane_fmt", "decay_fmt")
_PARAM_ARRAYS = ("weight_q", "branch_decay_q", "soma_decay_q")


@dataclass
class DHLIFCase:
    """One verification case: a layer, its input counts and the order neurons are fed in.

    Parameters
    ----------
    name : str
        Short identifier (build directories, reports).
    params : DHLIFParams
        The layer.
    counts : np.ndarray of int64, shape (T, C)
        Non-negative input event counts.
    order : np.ndarray of int64, shape (T, H), optional
        ``order[t]`` is the permutation of neurons fed at tick ``t`` (default index order).
    """

    name: str
    params: DHLIFParams
    counts: np.ndarray
    order: np.ndarray | None = None

    def __post_init__(self):
        self.counts = np.asarray(self.counts, dtype=np.int64)
        steps, h = self.counts.shape[0], self.params.n_neurons
        if self.order is None:
            self.order = np.tile(np.arange(h), (steps, 1))
        self.order = np.asarray(self.order, dtype=np.int64)
        if self.order.shape != (steps, h) or not all(sorted(row.tolist()) == list(range(h)) for row in self.order):
            raise ValueError(f"case {self.name}: order must hold one permutation of the {h} neurons per tick")

    def golden(self) -> DHLIFTrace:
        return run_int(self.params, self.counts)

    def feed(self):
        """``(tick, neuron)`` pairs in feeding order."""
        return [(t, int(n)) for t in range(self.counts.shape[0]) for n in self.order[t]]

    def input_beats(self) -> list[dict]:
        """``i_drive`` records in feeding order."""
        drives = branch_drives(self.params, self.counts)
        d_range = range(self.params.n_branches)
        return [{"neuron": n, **{f"drive_{d}": int(drives[t, n, d]) for d in d_range}} for t, n in self.feed()]

    def expected_beats(self):
        """``(state_beats, spike_beats, saturation_count)`` as ``(record, context)`` pairs."""
        trace = self.golden()
        states, spikes = [], []
        for t, n in self.feed():
            context = {"step": t, "neuron": n}
            record = {
                "neuron": n,
                **{f"current_{d}": int(trace.current[t, n, d]) for d in range(self.params.n_branches)},
                "u": int(trace.membrane[t, n]),
                "spike": int(trace.spike[t, n]),
                "saturated": int(trace.saturated[t, n]),
            }
            states.append((record, context))
            if trace.spike[t, n]:
                spikes.append(({"neuron": n}, context))
        return states, spikes, trace.saturation_count

    def to_json(self) -> dict:
        p = self.params
        return {
            "name": self.name,
            **{name: getattr(p, name).tolist() for name in _PARAM_ARRAYS},
            "threshold_q": p.threshold_q,
            **{name: str(getattr(p, name)) for name in _FORMAT_NAMES},
            "counts": self.counts.tolist(),
            "order": self.order.tolist(),
        }

    @classmethod
    def from_json(cls, record: dict) -> "DHLIFCase":
        params = DHLIFParams(
            **{name: np.asarray(record[name], dtype=np.int64) for name in _PARAM_ARRAYS},
            threshold_q=int(record["threshold_q"]),
            **{name: QFormat.parse(record[name]) for name in _FORMAT_NAMES},
        )
        return cls(record["name"], params, np.asarray(record["counts"]), np.asarray(record["order"]))


def random_case(
    seed: int, n_neurons: int, in_features: int, n_branches: int, steps: int, *, rate: float = 0.8,
    shuffle: bool = True, name: str | None = None, **formats: QFormat,
) -> DHLIFCase:
    """Weights over the whole weight range, branch decays 0.3-0.99, soma decays 0.5-0.99,
    threshold 1.5, Poisson counts of mean ``rate``; neurons in a random order per tick."""
    rng = np.random.default_rng(seed)
    probe = DHLIFParams(np.zeros((1, n_branches)), np.zeros((1, n_branches)), np.zeros(1), 1, **formats)
    one = 1 << probe.decay_fmt.frac_bits
    params = DHLIFParams(
        weight_q=probe.weight_fmt.quantize(rng.uniform(-1.0, 1.5, (n_neurons, in_features))),
        branch_decay_q=(rng.uniform(0.3, 0.99, (n_neurons, n_branches)) * one).astype(np.int64),
        soma_decay_q=(rng.uniform(0.5, 0.99, n_neurons) * one).astype(np.int64),
        threshold_q=probe.membrane_fmt.quantize(1.5),
        **formats,
    )
    counts = rng.poisson(rate, (steps, in_features)).astype(np.int64)
    order = np.array([rng.permutation(n_neurons) if shuffle else np.arange(n_neurons) for _ in range(steps)])
    return DHLIFCase(name or f"random{seed}", params, counts, order)


def case_config(case: DHLIFCase, *, idle_prob=0.0, backpressure_prob=0.0, seed=0, **extra) -> dict:
    """The JSON-able configuration the cocotb testbench reads (:func:`sim.runner.load_config`)."""
    return {"case": case.to_json(), "seed": seed, "idle_prob": idle_prob, "backpressure_prob": backpressure_prob, **extra}


# --- cocotb testbench --------------------------------------------------------------------------
class DHLIFTestbench:
    """Driver, monitors, model and checker wired around one DUT for one configuration."""

    def __init__(self, dut, config: dict):
        self.dut = dut
        self.case = DHLIFCase.from_json(config["case"])
        seed = int(config.get("seed", 0))
        self.core = DHLIFCore(self.case.params)  # layouts and latency
        self.expected_states, self.expected_spikes, self.saturation_count = self.case.expected_beats()
        self.states = Scoreboard("o_state")
        self.spikes = Scoreboard("o_spike")
        backpressure_prob = float(config.get("backpressure_prob", 0.0))
        self.driver = CocotbStreamDriver(
            dut, "i_drive", self.core.drive_layout, dut.clk, idle_prob=float(config.get("idle_prob", 0.0)), seed=seed
        )
        self.monitors = [
            CocotbStreamMonitor(
                dut, "o_spike", self.core.spike_layout, dut.clk,
                backpressure_prob=backpressure_prob, seed=seed + 1, on_beat=self.spikes.observe,
            ),
            CocotbStreamMonitor(
                dut, "o_state", self.core.state_layout, dut.clk,
                backpressure_prob=backpressure_prob, seed=seed + 2, on_beat=self.states.observe,
            ),
        ]

    async def run(self) -> None:
        """Reset, stream the whole stimulus, drain the outputs; raises ``MismatchError``."""
        self.states.expect_all(self.expected_states)
        self.spikes.expect_all(self.expected_spikes)
        dut = self.dut
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.rst.value = 1
        await ClockCycles(dut.clk, 2)
        dut.rst.value = 0
        for monitor in self.monitors:
            cocotb.start_soon(monitor.run())
        await RisingEdge(dut.clk)
        beats = self.case.input_beats()
        await self.driver.send(beats)
        budget = 20 * len(beats) + 200
        while (self.spikes.outstanding or self.states.outstanding) and budget:
            await RisingEdge(dut.clk)
            budget -= 1
        await ClockCycles(dut.clk, 4 * self.core.latency)  # room for any extra beat to show up
        dut._log.info(
            "%s: %d beats in, %d state and %d spike beats out, saturation_count %d",
            self.case.name, self.driver.sent, self.states.observed, self.spikes.observed,
            int(dut.saturation_count.value),
        )
        finish_all(
            [self.states, self.spikes],
            check_value("saturation_count", self.saturation_count, int(dut.saturation_count.value)),
        )


@cocotb.test()
async def matches_golden(dut):
    """Every branch current, membrane, spike and the final saturation count equal the golden model."""
    await DHLIFTestbench(dut, load_config()).run()


@cocotb.test()
async def checker_reports_flipped_bit(dut):
    """The same run with one golden state bit flipped must fail, naming tick, neuron and field."""
    config = load_config()
    flip = config["flip"]
    tb = DHLIFTestbench(dut, config)
    record, _ = next(item for item in tb.expected_states if item[1] == {"step": flip["step"], "neuron": flip["neuron"]})
    record[flip["field"]] ^= 1 << flip["bit"]
    try:
        await tb.run()
    except MismatchError as error:
        message = str(error)
        where = f"step={flip['step']}, neuron={flip['neuron']}"
        assert where in message and f"field {flip['field']!r}" in message, message
        assert len(error.mismatches) == 1, message
        dut._log.info("checker reported, as it must:\n%s", message)
    else:
        raise AssertionError("the checker accepted a golden trace with a flipped bit")
