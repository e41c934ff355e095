"""The cocotb testbench shared by the neuron cores whose stimulus is a *case* object.

A case (``sim.tb_silif.SiLIFCase``, ``sim.tb_csilif.CSiLIFCase``) carries the integer
parameters, the input beats and the golden output beats; :class:`NeuronCoreTestbench` drives
the beats into ``i_current`` (with idle cycles), watches ``o_spike`` and ``o_state`` (with
backpressure) and compares every beat and the final ``saturation_count`` exactly.
"""

from __future__ import annotations

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from sim.checker import MismatchError, Scoreboard, check_value, finish_all
from sim.stream import CocotbStreamDriver, CocotbStreamMonitor

__all__ = ["case_config", "NeuronCoreTestbench", "check_flipped_bit"]


def case_config(case, *, idle_prob=0.0, backpressure_prob=0.0, seed=0, emit_state=True, **extra):
    """The JSON-able configuration the cocotb testbench reads (:func:`sim.runner.load_config`)."""
    return {
        "case": case.to_json(with_expected=False),
        "seed": seed,
        "idle_prob": idle_prob,
        "backpressure_prob": backpressure_prob,
        "emit_state": emit_state,
        **extra,
    }


class NeuronCoreTestbench:
    """Driver, monitors, model and checker wired around one DUT for one configuration.

    ``case`` gives the parameters (``case.params``), the input beats (``case.input_beats()``)
    and the golden output beats (``case.expected_beats()``); ``core_class`` builds the same
    core as the DUT, for its payload layouts and latency.
    """

    def __init__(self, dut, config: dict, case, core_class):
        self.dut = dut
        self.case = case
        seed = int(config.get("seed", 0))
        self.emit_state = bool(config.get("emit_state", True))
        self.core = core_class(self.case.params, emit_state=self.emit_state)  # layouts and latency
        self.expected_states, self.expected_spikes, self.saturation_count = self.case.expected_beats()
        self.states = Scoreboard("o_state")
        self.spikes = Scoreboard("o_spike")
        idle_prob = float(config.get("idle_prob", 0.0))
        backpressure_prob = float(config.get("backpressure_prob", 0.0))
        self.driver = CocotbStreamDriver(
            dut, "i_current", self.core.current_layout, dut.clk, idle_prob=idle_prob, seed=seed
        )
        self.monitors = [
            CocotbStreamMonitor(
                dut, "o_spike", self.core.spike_layout, dut.clk,
                backpressure_prob=backpressure_prob, seed=seed + 1, on_beat=self.spikes.observe,
            )
        ]
        if self.emit_state:
            self.monitors.append(
                CocotbStreamMonitor(
                    dut, "o_state", self.core.state_layout, dut.clk,
                    backpressure_prob=backpressure_prob, seed=seed + 2, on_beat=self.states.observe,
                )
            )

    async def run(self) -> None:
        """Reset, stream the whole stimulus, drain the outputs; raises ``MismatchError``."""
        if self.emit_state:
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


async def check_flipped_bit(dut, tb: NeuronCoreTestbench, flip: dict) -> None:
    """Run ``tb`` with one golden state bit flipped (``flip``: step, neuron, field, bit): the
    checker must report exactly that mismatch, naming step, neuron and field."""
    record, _ = next(
        item for item in tb.expected_states if item[1] == {"step": flip["step"], "neuron": flip["neuron"]}
    )
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
