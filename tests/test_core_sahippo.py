"""Event-driven SA-HiPPO core (zoh) in amaranth.sim against the bit-exact golden model.

Every mode of every event, every ``y``, spike, clipped interval and the saturation count are
compared exactly with :func:`golden.sahippo.run_int` on irregular event streams: bursts at
``dt = 0`` and ``dt = 1``, gaps beyond the table's ``dt_max``, random intervals, with idle
cycles and backpressure.
"""

import gc
import warnings

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator

from golden.fixed import QFormat
from golden.sahippo import SAHiPPOParams
from hw.cores.sahippo import SAHiPPOCore, SAHiPPOTaylor2Core
from sim.checker import MismatchError, Scoreboard, check_value, finish_all
from sim.stream import SimStreamSink, SimStreamSource
from sim.tb_sahippo import SAHiPPOCase, corner_case, random_case, zoh_params


def simulate(case: SAHiPPOCase, *, seed=0, idle=0.0, backpressure=0.0, corrupt=None):
    """Run the core on ``case`` and check every beat against the golden model; returns the trace.

    ``corrupt(states)`` alters the expected mode records before checking (to show the checker
    can fail).
    """
    dut = case.core()
    states, outputs, saturation_count = case.expected_beats()
    if corrupt is not None:
        corrupt(states)
    state_board, output_board = Scoreboard("o_state"), Scoreboard("o_output")
    state_board.expect_all(states)
    output_board.expect_all(outputs)
    records = case.input_beats()
    source = SimStreamSource(dut.i_event, records, idle_prob=idle, seed=seed)
    sinks = [
        SimStreamSink(dut.o_state, backpressure_prob=backpressure, seed=seed + 1, on_beat=state_board.observe),
        SimStreamSink(dut.o_output, backpressure_prob=backpressure, seed=seed + 2, on_beat=output_board.observe),
    ]
    counters = {}

    async def finish(ctx):
        budget = 20 * len(states) + (40 + dut.cycles_per_event) * len(records) + 200
        while (state_board.outstanding or output_board.outstanding) and budget:
            await ctx.tick()
            budget -= 1
        await ctx.tick().repeat(2 * dut.mode_latency)
        counters["saturation"] = ctx.get(dut.saturation_count)
        counters["backwards"] = ctx.get(dut.backwards_count)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source.run)
    sim.add_testbench(finish)
    for sink in sinks:
        sim.add_testbench(sink.run, background=True)
    sim.run()
    finish_all(
        [state_board, output_board],
        check_value("saturation_count", saturation_count, counters["saturation"])
        + check_value("backwards_count", len(case.backwards), counters["backwards"]),
    )
    return case.golden()


@pytest.mark.parametrize(
    "n_state, n_channels, dt_max, n_events, idle, backpressure",
    [
        (18, 3, 12, 40, 0.0, 0.0),  # full rate; N/2 = hazard_stages + 1: a read meets the write-back
        (16, 3, 12, 30, 0.0, 0.0),  # N/2 = hazard_stages: same-channel events stall one clock
        (16, 3, 12, 30, 0.3, 0.3),  # idle cycles and backpressure
        (8, 2, 5, 40, 0.1, 0.2),  # N/2 = 4 < hazard stages: same-channel events stall
        (4, 5, 3, 40, 0.0, 0.1),  # N/2 = 2 < front end; 5 channels (not a power of two)
        (12, 2, 9, 24, 0.2, 0.2),  # N/2 = 6 modes: mode index with unused table words
    ],
)
def test_core_matches_golden(n_state, n_channels, dt_max, n_events, idle, backpressure):
    case = random_case(n_state + n_channels, n_state, n_channels, dt_max, n_events)
    trace = simulate(case, seed=2, idle=idle, backpressure=backpressure)
    assert 0 in trace.dt and 1 in trace.dt and dt_max in trace.dt
    assert trace.spike.any() and not trace.spike.all()


def test_core_saturates_and_counts():
    """Narrow state and output formats and large weights: clamps act; the counter matches."""
    fmt = QFormat.parse("sQ2.14")
    case = random_case(3, 8, 2, 6, 30, scale=6.0, state_fmt=fmt, out_fmt=fmt)
    trace = simulate(case, seed=4, backpressure=0.2)
    assert 0 < trace.saturation_count < len(case.ticks)
    assert (trace.z == fmt.max_int).any() and (trace.z == fmt.min_int).any()


def test_core_written_down_corners():
    """Extreme weights, dt_max and dt_max + 1, a 2**31 gap, the last 32-bit tick, and three
    backwards ticks that the core drops (no output, no state change) and counts."""
    case = corner_case()
    trace = simulate(case, seed=1, idle=0.2, backpressure=0.2)
    assert trace.dt.tolist()[:6] == [0, 0, 0, case.params.dt_max, 0, case.params.dt_max]
    assert len(case.input_beats()) == len(case.ticks) + 3


def test_core_runs_one_event_per_mode_count():
    """Ready outputs: back-to-back events on two channels in turn take exactly N/2 clocks each."""
    params = zoh_params(16, 2, 8, seed=0)
    dut = SAHiPPOCore(params)
    accepted_at = []
    n_events = 12

    async def bench(ctx):
        ctx.set(dut.o_state.ready, 1)
        ctx.set(dut.o_output.ready, 1)
        cycle = 0
        for k in range(n_events):
            ctx.set(dut.i_event.payload, {"channel": k % 2, "tick": k, "weight": 1000})
            ctx.set(dut.i_event.valid, 1)
            while True:
                _, _, ready = await ctx.tick().sample(dut.i_event.ready)
                cycle += 1
                if ready:
                    accepted_at.append(cycle)
                    break
        ctx.set(dut.i_event.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    intervals = np.diff(accepted_at)
    assert dut.cycles_per_event == params.n_modes == 8
    assert (intervals[3:] == params.n_modes).all(), intervals


def test_checker_sees_a_single_bit_error():
    case = random_case(2, 8, 2, 6, 10)

    def flip(states):
        states[21][0]["im"] ^= 1

    with pytest.raises(MismatchError, match=r"o_state beat 21 \(event=5, mode=1\): field 'im'"):
        simulate(case, corrupt=flip)


def test_core_converts_to_verilog():
    text = verilog.convert(SAHiPPOCore(zoh_params(32, 4, 15, seed=0), emit_state=False), name="sahippo_core")
    assert "module sahippo_core" in text


def test_core_refuses_what_it_cannot_build():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="SAHiPPOParams"):
            SAHiPPOCore(object())
        taylor = SAHiPPOParams.from_float(8, 1.0, 0.1, np.zeros((1, 8)), [0.0], [1.0], 4, method="taylor2")
        with pytest.raises(ValueError, match="'zoh' discretisation only"):
            SAHiPPOCore(taylor)
        with pytest.raises(ValueError, match="tick_bits 2 cannot hold dt_max"):
            SAHiPPOCore(zoh_params(8, 1, 9, seed=0), tick_bits=2)
        gc.collect()


def test_fit_top_elaborates_for_the_85f(tmp_path):
    """The resource benchmark's board top (core, PLL, event stimulus, LED) prepares a build."""
    from bench.sahippo_core import sahippo_params
    from hw.boards.core_fit import SAHiPPOFitTop
    from hw.bitstream import run_build
    from hw.boards.ulx3s import BOARD_CLOCK_HZ, ulx3s_platform
    from hw.pll_ecp5 import solve_pll

    pll = solve_pll(BOARD_CLOCK_HZ, 100e6)
    core = SAHiPPOCore(sahippo_params(16, n_channels=4, dt_max=15), emit_state=False)
    result = run_build(SAHiPPOFitTop(core, pll_config=pll), ulx3s_platform("85F"), tmp_path, design="sahippo fit",
                       requested_clock_hz=100e6, pll=pll, dry_run=True)
    assert "top.il" in result.files or any(name.endswith(".v") or name.endswith(".il") for name in result.files)


# --- taylor2 ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "n_state, n_channels, dt_max, n_events, idle, backpressure",
    [
        (8, 2, 6, 24, 0.0, 0.0),
        (6, 3, 5, 20, 0.3, 0.3),  # N/2 = 3: unused table words; idle cycles and backpressure
    ],
)
def test_taylor2_core_matches_golden(n_state, n_channels, dt_max, n_events, idle, backpressure):
    case = random_case(n_state + 100, n_state, n_channels, dt_max, n_events, method="taylor2")
    assert case.params.max_substeps > 1
    trace = simulate(case, seed=3, idle=idle, backpressure=backpressure)
    assert 0 in trace.dt and dt_max in trace.dt
    assert trace.spike.any() and not trace.spike.all()


def test_taylor2_core_corners_and_saturation():
    simulate(corner_case(method="taylor2"), seed=5, idle=0.1, backpressure=0.2)
    fmt = QFormat.parse("sQ2.14")
    case = random_case(7, 8, 2, 6, 20, scale=6.0, method="taylor2", state_fmt=fmt, out_fmt=fmt)
    trace = simulate(case, seed=6, backpressure=0.2)
    assert trace.saturation_count > 0


def test_core_factory_picks_the_method():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        assert type(random_case(0, 8, 1, 4, 2, method="taylor2").core()) is SAHiPPOTaylor2Core
        assert type(random_case(0, 8, 1, 4, 2).core()) is SAHiPPOCore
        with pytest.raises(ValueError, match="SAHiPPOTaylor2Core implements the 'taylor2'"):
            SAHiPPOTaylor2Core(zoh_params(8, 1, 4, seed=0))
        gc.collect()
