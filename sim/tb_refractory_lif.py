"""cocotb testbench of the refractory LIF core on its generated Verilog (Icarus).

Run through :func:`sim.runner.run_cocotb` (see ``tests/test_cocotb_refractory_lif.py`` and
``docs/verification.md``); the configuration arrives as JSON::

    {"params": <sim.refractory_lif_model.params_to_json>, "currents_q": [[...], ...],
     "shuffle": bool, "seed": int, "stalls": {"<name>": [idle_prob, backpressure_prob], ...},
     "flip": {"step": int, "neuron": int, "field": str, "bit": int}}   # flip: optional

The pieces:

* **Driver** :class:`sim.stream.CocotbStreamDriver` sends one ``i_current`` beat per neuron per
  step with seeded idle cycles;
* **Monitors** :class:`sim.stream.CocotbStreamMonitor` on ``o_spike`` and ``o_state`` with seeded
  backpressure, decoding payloads from the core's own layouts;
* **Model** :class:`sim.refractory_lif_model.RefractoryLIFModel` (golden ``run_int``) predicts
  every beat;
* **Checker** :class:`sim.checker.Scoreboard` per output stream compares every field of every
  beat as it arrives, then the final ``saturation_count``.

All tests of one simulator run share the DUT, whose state memories are not cleared by reset
(only the pipeline and the counter are). So the tests run the stimulus one after the other, as
one continuing sequence: each test's model starts from the history of the steps already applied
(:data:`APPLIED_STEPS`), and each pattern in ``stalls`` is one ``matches_golden`` test. Importing
torch inside the simulator takes seconds, which is why the patterns share one process.
"""

from __future__ import annotations

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from hw.cores.refractory_lif import RefractoryLIFCore
from sim.checker import MismatchError, Scoreboard, check_value, finish_all
from sim.refractory_lif_model import RefractoryLIFModel, beat_order, params_from_json
from sim.runner import load_config
from sim.stream import CocotbStreamDriver, CocotbStreamMonitor


#: Currents of every step this simulator process has applied to the DUT, in order.
APPLIED_STEPS: list = []

_CONFIG = load_config()
_STALLS = _CONFIG.get("stalls", {"full_rate": [0.0, 0.0]})


class RefractoryLIFTestbench:
    """Driver, monitors, model and checker wired around one DUT for one stall pattern.

    Parameters
    ----------
    dut : cocotb handle
    config : dict
        The run's configuration (see the module docstring).
    idle_prob, backpressure_prob : float
        Stall pattern of this test.
    seed : int
        Seeds the beat order, the idle and the backpressure patterns.
    """

    def __init__(self, dut, config: dict, *, idle_prob: float, backpressure_prob: float, seed: int):
        self.dut = dut
        params = params_from_json(config["params"])
        self.core = RefractoryLIFCore(params)  # for its layouts and latency
        self.currents_q = config["currents_q"]
        order = beat_order(len(self.currents_q), params.n_neurons, shuffle=bool(config.get("shuffle", False)), seed=seed)
        history = APPLIED_STEPS if APPLIED_STEPS else None
        self.model = RefractoryLIFModel(params, self.currents_q, order, history_q=history)

        self.states = Scoreboard("o_state")
        self.spikes = Scoreboard("o_spike")
        self.expected_states = self.model.expected_states()
        self.expected_spikes = self.model.expected_spikes()

        self.driver = CocotbStreamDriver(dut, "i_current", self.core.current_layout, dut.clk, idle_prob=idle_prob, seed=seed)
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

        APPLIED_STEPS.extend(self.currents_q)  # the DUT's memories now (should) hold these steps
        await self.driver.send(self.model.input_beats())
        budget = 20 * len(self.model.order) + 200
        while (self.spikes.outstanding or self.states.outstanding) and budget:
            await RisingEdge(dut.clk)
            budget -= 1
        await ClockCycles(dut.clk, 4 * self.core.latency)  # room for any extra beat to show up
        dut._log.info(
            "steps %d..%d: %d beats in, %d state and %d spike beats out, saturation_count %d",
            self.model.first_step, self.model.first_step + len(self.currents_q) - 1,
            self.driver.sent, self.states.observed, self.spikes.observed, int(dut.saturation_count.value),
        )
        finish_all(
            [self.states, self.spikes],
            check_value("saturation_count", self.model.saturation_count, int(dut.saturation_count.value)),
        )


@cocotb.test()
@cocotb.parametrize(stalls=[cocotb.Param(value=name, name=name) for name in _STALLS])
async def matches_golden(dut, stalls):
    """Every state word, every spike and the final saturation count equal the golden model."""
    idle_prob, backpressure_prob = _STALLS[stalls]
    seed = int(_CONFIG.get("seed", 0)) + 10 * list(_STALLS).index(stalls)
    tb = RefractoryLIFTestbench(dut, _CONFIG, idle_prob=idle_prob, backpressure_prob=backpressure_prob, seed=seed)
    await tb.run()


@cocotb.test()
@cocotb.skipif("flip" not in _CONFIG, reason="no 'flip' in the configuration")
async def checker_reports_flipped_bit(dut):
    """One golden state bit flipped: the run must fail, naming step, neuron and field."""
    flip = _CONFIG.get("flip", {})
    idle_prob, backpressure_prob = next(iter(_STALLS.values()))
    tb = RefractoryLIFTestbench(dut, _CONFIG, idle_prob=idle_prob, backpressure_prob=backpressure_prob, seed=99)
    step = tb.model.first_step + flip["step"]
    record, _ = next(item for item in tb.expected_states if item[1] == {"step": step, "neuron": flip["neuron"]})
    record[flip["field"]] ^= 1 << flip["bit"]
    try:
        await tb.run()
    except MismatchError as error:
        message = str(error)
        assert f"step={step}, neuron={flip['neuron']}" in message and f"field {flip['field']!r}" in message, message
        assert len(error.mismatches) == 1, message
        dut._log.info("checker reported, as it must:\n%s", message)
    else:
        raise AssertionError("the checker accepted a golden trace with a flipped bit")
