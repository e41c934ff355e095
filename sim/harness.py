"""One stream harness for every core: a driver on each input stream, a monitor on each output
stream, in ``amaranth.sim`` and in cocotb, every beat checked against the golden model.

The streams come from the component's signature (:func:`sim.stream.stream_ports`): each
``In(stream.Signature)`` member gets a driver with seeded idle cycles, each
``Out(stream.Signature)`` member a monitor with seeded backpressure and a
:class:`sim.checker.Scoreboard`. What to send and what to expect comes from a *case*, an object
with

* ``name``;
* ``core(**kwargs)``: the component (for cocotb it is built again inside the simulator, for
  its payload layouts: the generated Verilog flattens a stream port ``p`` to
  ``p__payload``/``p__valid``/``p__ready``, and the layout decodes ``p__payload``);
* ``stimulus()``: ``{input port: [record, ...]}``;
* ``expectation()``: an :class:`Expectation` computed by the golden model;
* optionally ``continued(previous_cases)``: the same case on a core that has already run
  ``previous_cases`` (its state memories survive a reset), for several stall patterns in one
  cocotb process.

:class:`sim.step_case.StepCase` (the per-step neuron cores) and
:class:`sim.tb_sahippo.SAHiPPOCase` (the event-driven SA-HiPPO core) are the cases.

Entry points: :func:`simulate` (``amaranth.sim``), :func:`run_on_dut` (inside cocotb, used by
the one cocotb test module ``sim/tb_core.py``) and :func:`run_case_cocotb` (pytest side: writes
the Verilog and runs ``sim/tb_core.py`` on it under Icarus). :data:`STALLS` names the idle x
backpressure patterns; :meth:`Expectation.flip_bit` and :func:`check_flip_reported` prove that
a checker fails, naming the beat, its context and the field (:func:`simulate_flipped` does both
on a case in ``amaranth.sim``).
"""

from __future__ import annotations

import base64
import dataclasses
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sim.checker import MismatchError, Scoreboard, check_value, finish_all
from sim.stream import (
    CocotbStreamDriver, CocotbStreamMonitor, SimStreamSink, SimStreamSource, run_simulation, stream_ports,
)

__all__ = [
    "STALLS",
    "Expectation",
    "SimRun",
    "simulate",
    "simulate_case",
    "run_on_dut",
    "cocotb_config",
    "case_from_config",
    "run_case_cocotb",
    "check_flip_reported",
    "simulate_flipped",
    "nudged",
]

#: Stall patterns: name -> (idle probability on every input, backpressure probability on every output).
STALLS = {"full_rate": (0.0, 0.0), "idle": (0.3, 0.0), "backpressure": (0.0, 0.4), "idle_backpressure": (0.3, 0.4)}
#: Clock cycles run after the last expected beat, for any extra beat to show up (above 4x the
#: longest core latency, 15).
SETTLE_CYCLES = 64
#: A run that moves no beat in or out for this many cycles while beats are outstanding has hung
#: (well above the slowest event, a taylor2 SA-HiPPO event of ~1000 cycles, under backpressure).
PATIENCE_CYCLES = 10_000


@dataclass
class Expectation:
    """What a core must emit: ``beats[port]`` lists ``(record, context)`` in output order, and
    ``counters[name]`` the final value of the output signal ``name``."""

    beats: dict[str, list[tuple[dict, dict]]]
    counters: dict[str, int] = field(default_factory=dict)

    def flip_bit(self, port: str, field: str, bit: int, **context) -> None:
        """Flip one bit of one expected beat (the first on ``port`` labelled ``context``), to
        prove that the checker fails."""
        record = next((rec for rec, ctx in self.beats[port] if ctx == context), None)
        if record is None:
            raise ValueError(f"no expected {port} beat labelled {context}")
        record[field] ^= 1 << bit


def check_flip_reported(error: MismatchError, flip: Mapping) -> str:
    """Assert that ``error`` reports exactly the one difference :meth:`Expectation.flip_bit`
    made with ``flip`` (``port``, ``field``, ``bit``, and the context labels); returns the message."""
    message = str(error)
    context = ", ".join(f"{key}={value}" for key, value in flip.items() if key not in ("port", "field", "bit"))
    assert f"{flip['port']} beat" in message and f"({context})" in message, message
    assert f"field {flip['field']!r}" in message, message
    assert len(error.mismatches) == 1, message
    return message


class _Bench:
    """What both simulators share: the ports, scoreboards, seeds, cycle budget and verdict."""

    def __init__(self, core, stimulus: Mapping, expectation: Expectation, *, idle_prob, backpressure_prob, seed):
        self.inputs, self.outputs = stream_ports(core)
        if set(stimulus) != set(self.inputs):
            raise ValueError(f"stimulus for {sorted(stimulus)}, but the core's input streams are {sorted(self.inputs)}")
        unexpected = [name for name in self.outputs if name not in expectation.beats]
        if unexpected:
            raise ValueError(f"no expected beats for the output streams {unexpected}")
        self.stimulus = {name: list(stimulus[name]) for name in self.inputs}
        self.boards = {name: Scoreboard(name) for name in self.outputs}
        for name, board in self.boards.items():
            board.expect_all(expectation.beats[name])
        self.beats = {name: [] for name in self.outputs}
        self.counters = dict(expectation.counters)
        self.idle_prob, self.backpressure_prob = idle_prob, backpressure_prob
        self.seeds = {name: seed + k for k, name in enumerate([*self.inputs, *self.outputs])}
        self._progress, self._still = -1, 0

    def on_beat(self, name: str) -> Callable:
        def observe(record):
            self.beats[name].append(record)
            self.boards[name].observe(record)

        return observe

    def waiting(self, sent: int, inputs_done: bool) -> bool:
        """Called once a cycle with the input beats sent so far: true while input or expected
        output beats are outstanding and the run has not hung (:data:`PATIENCE_CYCLES` without
        a beat moving)."""
        progress = sent + sum(map(len, self.beats.values()))
        self._progress, self._still = progress, (self._still + 1 if progress == self._progress else 0)
        outstanding = not inputs_done or any(board.outstanding for board in self.boards.values())
        return outstanding and self._still < PATIENCE_CYCLES

    def verdict(self, sent: Mapping, counters: Mapping) -> None:
        """Raise :class:`MismatchError` unless the core took every input beat (``sent[port]``)
        and every output beat and counter matched."""
        checks = [
            m for name, records in self.stimulus.items() for m in check_value(f"{name} beats taken", len(records), sent[name])
        ]
        checks += [m for name, value in self.counters.items() for m in check_value(name, value, counters[name])]
        finish_all(self.boards.values(), checks)


def nudged(case, name: str, by: int = 1, index: int | None = None):
    """``case`` with the parameter ``name`` (element ``index`` of an array) moved by ``by``: a
    model that disagrees with a core built from the original ``case``, to prove a run fails."""
    value = getattr(case.params, name)
    if index is None:
        value = value + by
    else:
        value = value.copy()
        value[index] += by
    return dataclasses.replace(case, params=dataclasses.replace(case.params, **{name: value}))


# --- amaranth.sim -------------------------------------------------------------------------------
@dataclass
class SimRun:
    """An :func:`simulate` run: ``cycles`` until the last expected output beat (or the budget),
    ``accepted_at[port]`` the cycle each input beat moved in, ``beats[port]`` the output records."""

    cycles: int
    accepted_at: dict[str, list[int]]
    beats: dict[str, list[dict]]


def simulate(
    core, stimulus: Mapping, expectation: Expectation, *, idle_prob=0.0, backpressure_prob=0.0, seed=0
) -> SimRun:
    """Drive ``stimulus`` into ``core`` in ``amaranth.sim`` and check every output beat and
    counter against ``expectation``; raises :class:`sim.checker.MismatchError` on a difference."""
    bench = _Bench(core, stimulus, expectation, idle_prob=idle_prob, backpressure_prob=backpressure_prob, seed=seed)
    sources = [
        SimStreamSource(port, bench.stimulus[name], idle_prob=idle_prob, seed=bench.seeds[name])
        for name, port in bench.inputs.items()
    ]
    sinks = [
        SimStreamSink(port, backpressure_prob=backpressure_prob, seed=bench.seeds[name], on_beat=bench.on_beat(name))
        for name, port in bench.outputs.items()
    ]
    final = {}

    async def drain(ctx):
        cycle = 0
        while bench.waiting(sum(source.sent for source in sources), all(source.done for source in sources)):
            await ctx.tick()
            cycle += 1
        final["cycles"] = cycle
        await ctx.tick().repeat(SETTLE_CYCLES)
        final["counters"] = {name: ctx.get(getattr(core, name)) for name in bench.counters}

    run_simulation(core, [drain], background=[endpoint.run for endpoint in [*sources, *sinks]])
    bench.verdict({name: source.sent for name, source in zip(bench.inputs, sources)}, final["counters"])
    accepted_at = {name: source.accepted_at for name, source in zip(bench.inputs, sources)}
    return SimRun(final["cycles"], accepted_at, bench.beats)


def simulate_case(case, *, core=None, corrupt: Callable | None = None, **stalls) -> SimRun:
    """:func:`simulate` on ``case`` (its own core unless ``core`` is given). ``corrupt(expectation)``
    may edit the expectation first, to prove the check can fail; ``stalls`` are
    ``idle_prob``, ``backpressure_prob`` and ``seed``."""
    expectation = case.expectation()
    if corrupt is not None:
        corrupt(expectation)
    return simulate(case.core() if core is None else core, case.stimulus(), expectation, **stalls)


def simulate_flipped(case, flip: Mapping) -> str:
    """:func:`simulate_case` on ``case`` with one bit of one expected beat flipped
    (:meth:`Expectation.flip_bit` with ``flip``); raises ``AssertionError`` unless the run reports
    exactly that difference (:func:`check_flip_reported`). Returns the checker's message."""
    try:
        simulate_case(case, corrupt=lambda expectation: expectation.flip_bit(**flip))
    except MismatchError as error:
        return check_flip_reported(error, flip)
    raise AssertionError(f"the run passed with the expected beat at {flip} flipped")


# --- cocotb -------------------------------------------------------------------------------------
async def run_on_dut(dut, core, stimulus, expectation, *, idle_prob=0.0, backpressure_prob=0.0, seed=0, label=""):
    """Inside cocotb: reset the DUT (Verilog of ``core``; clock ``clk``, reset ``rst``), drive
    ``stimulus``, drain the outputs and check them against ``expectation`` (raises
    :class:`sim.checker.MismatchError`)."""
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, RisingEdge

    bench = _Bench(core, stimulus, expectation, idle_prob=idle_prob, backpressure_prob=backpressure_prob, seed=seed)
    drivers = {
        name: CocotbStreamDriver(dut, name, port.payload.shape(), dut.clk, idle_prob=idle_prob, seed=bench.seeds[name])
        for name, port in bench.inputs.items()
    }
    monitors = [
        CocotbStreamMonitor(
            dut, name, port.payload.shape(), dut.clk,
            backpressure_prob=backpressure_prob, seed=bench.seeds[name], on_beat=bench.on_beat(name),
        )
        for name, port in bench.outputs.items()
    ]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
    for monitor in monitors:
        cocotb.start_soon(monitor.run())
    await RisingEdge(dut.clk)
    tasks = [cocotb.start_soon(driver.send(bench.stimulus[name])) for name, driver in drivers.items()]
    while bench.waiting(sum(driver.sent for driver in drivers.values()), all(task.done() for task in tasks)):
        await RisingEdge(dut.clk)
    await ClockCycles(dut.clk, SETTLE_CYCLES)
    counters = {name: int(getattr(dut, name).value) for name in bench.counters}
    dut._log.info(
        "%s: beats in %s, beats out %s, counters %s", label,
        {name: driver.sent for name, driver in drivers.items()},
        {name: len(beats) for name, beats in bench.beats.items()}, counters,
    )
    bench.verdict({name: driver.sent for name, driver in drivers.items()}, counters)


def cocotb_config(case, *, stalls=("full_rate",), seed=0, flip: Mapping | None = None, **core_kwargs) -> dict:
    """The configuration ``sim/tb_core.py`` reads: the case (pickled: built by this code base
    for its own simulator process), the stall patterns to run in order, the seed, the core's
    keyword arguments and an optional ``flip`` for the checker test."""
    config = {
        "case": base64.b64encode(pickle.dumps(case)).decode("ascii"),
        "case_name": case.name,
        "stalls": {name: STALLS[name] for name in stalls},
        "seed": seed,
        "core": core_kwargs,
    }
    if flip is not None:
        config["flip"] = dict(flip)
    return config


def case_from_config(config: Mapping):
    """The case :func:`cocotb_config` wrote."""
    return pickle.loads(base64.b64decode(config["case"]))


def run_case_cocotb(
    case, *, build_name: str, testcase: str | None = "matches_golden", core=None, stalls=("full_rate",), seed=0,
    flip: Mapping | None = None, **core_kwargs,
):
    """Generate the Verilog of ``case.core(**core_kwargs)`` (or of ``core``), run
    ``sim/tb_core.py`` on it under Icarus with each pattern of ``stalls`` in turn, and raise
    :class:`sim.runner.CocotbFailure` with the checker's message on any difference.
    ``testcase`` picks the cocotb test (``None``: all, in one simulator process)."""
    from sim.runner import run_cocotb

    return run_cocotb(
        case.core(**core_kwargs) if core is None else core,
        test_module="sim.tb_core",
        build_name=build_name,
        config=cocotb_config(case, stalls=stalls, seed=seed, flip=flip, **core_kwargs),
        test_filter=None if testcase is None else rf"\.{testcase}(/|$)",
    )
