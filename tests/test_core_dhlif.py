"""DH-LIF core in amaranth.sim against the bit-exact golden model (every current, membrane and spike)."""

import gc
import warnings

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator

from golden.fixed import QFormat
from hw.cores.dhlif import DHLIFCore, branch_drives, drive_format
from sim.checker import MismatchError, Scoreboard, check_value, finish_all
from sim.stream import SimStreamSink, SimStreamSource
from sim.tb_dhlif import DHLIFCase, random_case


def simulate(case: DHLIFCase, *, seed=0, idle=0.0, backpressure=0.0, corrupt=None):
    """Run the core on ``case`` and check every beat against the golden model; returns the trace.

    ``corrupt(states)`` may alter the expected state records before checking (to show the
    checker can fail).
    """
    dut = DHLIFCore(case.params)
    states, spikes, saturation_count = case.expected_beats()
    if corrupt is not None:
        corrupt(states)
    state_board, spike_board = Scoreboard("o_state"), Scoreboard("o_spike")
    state_board.expect_all(states)
    spike_board.expect_all(spikes)
    records = case.input_beats()
    source = SimStreamSource(dut.i_drive, records, idle_prob=idle, seed=seed)
    sinks = [
        SimStreamSink(dut.o_state, backpressure_prob=backpressure, seed=seed + 1, on_beat=state_board.observe),
        SimStreamSink(dut.o_spike, backpressure_prob=backpressure, seed=seed + 2, on_beat=spike_board.observe),
    ]
    counter = []

    async def finish(ctx):
        budget = 20 * len(records) + 100
        while state_board.outstanding and budget:
            await ctx.tick()
            budget -= 1
        await ctx.tick().repeat(2 * dut.latency)
        counter.append(ctx.get(dut.saturation_count))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source.run)
    sim.add_testbench(finish)
    for sink in sinks:
        sim.add_testbench(sink.run, background=True)
    sim.run()
    finish_all([state_board, spike_board], check_value("saturation_count", saturation_count, counter[0]))
    return case.golden()


@pytest.mark.parametrize(
    "n_neurons, in_features, n_branches, steps, idle, backpressure, shuffle",
    [
        (12, 16, 4, 12, 0.0, 0.0, False),  # full rate, default 4 branches
        (12, 16, 4, 10, 0.3, 0.3, True),  # idle cycles, backpressure, any order
        (3, 6, 2, 14, 0.0, 0.2, False),  # fewer neurons than hazard stages: stalls
        (7, 7, 1, 10, 0.0, 0.0, False),  # hazard_stages + 1: read meets write-back; one branch
        (5, 9, 3, 10, 0.2, 0.0, True),  # uneven slices
    ],
)
def test_core_matches_golden(n_neurons, in_features, n_branches, steps, idle, backpressure, shuffle):
    case = random_case(n_neurons + in_features, n_neurons, in_features, n_branches, steps, shuffle=shuffle)
    trace = simulate(case, seed=1, idle=idle, backpressure=backpressure)
    assert trace.spike.any(), "test drive should make some neurons spike"


def test_core_saturates_both_ends_and_counts():
    """Narrow formats and large counts: currents and membrane reach both rails, drives are clamped."""
    fmt = QFormat(3, 8)
    case = random_case(
        4, 6, 8, 4, 12, rate=6.0, weight_fmt=QFormat(3, 8), current_fmt=fmt, membrane_fmt=QFormat(4, 8),
        decay_fmt=QFormat(0, 12, signed=False),
    )
    params, counts = case.params, case.counts
    assert np.any(np.abs(np.stack([counts[:, sl] @ params.weight_q[:, sl].T for sl in params.slices], -1))
                  > drive_format(params).max_int), "some drive should exceed the port format"
    trace = simulate(case, seed=3, backpressure=0.2)
    assert trace.saturation_count > 0
    assert (trace.current == fmt.max_int).any() and (trace.current == fmt.min_int).any()


def test_core_runs_one_update_per_clock_without_hazards():
    """Ready outputs and a neuron revisited only in its write-back cycle: every cycle accepts a beat."""
    params = random_case(3, DHLIFCore.hazard_stages + 1, 8, 4, 1).params
    dut = DHLIFCore(params)
    accepted = []

    async def bench(ctx):
        ctx.set(dut.o_state.ready, 1)
        ctx.set(dut.o_spike.ready, 1)
        for beat in range(4 * params.n_neurons):
            ctx.set(dut.i_drive.payload.neuron, beat % params.n_neurons)
            ctx.set(dut.i_drive.valid, 1)
            _, _, ready = await ctx.tick().sample(dut.i_drive.ready)
            accepted.append(ready)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert all(accepted)


def test_checker_sees_a_single_bit_error():
    case = random_case(1, 4, 8, 4, 5, shuffle=False)

    def flip(states):
        states[9][0]["current_2"] ^= 1

    with pytest.raises(MismatchError, match=r"beat 9 \(step=2, neuron=1\): field 'current_2'"):
        simulate(case, corrupt=flip)


def test_branch_drives_refuses_bad_counts():
    params = random_case(0, 2, 8, 4, 1).params
    with pytest.raises(ValueError, match="non-negative integer"):
        branch_drives(params, -np.ones((2, 8), dtype=np.int64))
    with pytest.raises(ValueError, match=r"counts must be \(T, 8\)"):
        branch_drives(params, np.ones((2, 7), dtype=np.int64))


def test_core_converts_to_verilog():
    text = verilog.convert(DHLIFCore(random_case(0, 64, 32, 4, 1).params, emit_state=False), name="dhlif_core")
    assert "module dhlif_core" in text


def test_core_rejects_wrong_params():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="DHLIFParams"):
            DHLIFCore(object())
        gc.collect()
