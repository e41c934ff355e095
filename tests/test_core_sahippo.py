"""Event-driven SA-HiPPO core (zoh) in amaranth.sim against the bit-exact golden model.

Every mode of every event, every ``y``, spike, clipped interval and the saturation count are
compared exactly with :func:`golden.sahippo.run_int` on irregular event streams: bursts at
``dt = 0`` and ``dt = 1``, gaps beyond the table's ``dt_max``, random intervals, with idle
cycles and backpressure.
"""

import gc
import random
import warnings

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator

from golden.fixed import QFormat
from golden.sahippo import SAHiPPOParams, run_int
from hw.cores.sahippo import SAHiPPOCore
from sim.checker import MismatchError, Scoreboard, check_value, finish_all
from sim.stream import SimStreamSink, SimStreamSource


def zoh_params(n_state: int, n_channels: int, dt_max: int, seed: int, **formats) -> SAHiPPOParams:
    """A zoh layer with per-channel alpha / dt_scale spread so that the tables differ per channel."""
    rng = np.random.default_rng(seed)
    return SAHiPPOParams.from_float(
        n_state,
        alpha=rng.uniform(0.5, 3.0, n_channels),
        dt_scale=rng.uniform(0.02, 0.2, n_channels),
        c=rng.standard_normal((n_channels, n_state)) / np.sqrt(n_state),
        d=rng.standard_normal(n_channels),
        threshold=rng.uniform(0.05, 0.3, n_channels),
        dt_max=dt_max,
        method="zoh",
        **formats,
    )


def irregular_stream(params: SAHiPPOParams, n_events: int, seed: int, scale: float = 1.5):
    """``(ticks, channels, weights_q)``: segments of same-tick bursts, dt = 1 runs, gaps beyond
    ``dt_max`` and random intervals, on random and on repeated channels."""
    rng = np.random.default_rng(seed)
    gaps, channels = [], []
    while len(gaps) < n_events:
        kind = rng.integers(4)
        length = int(rng.integers(2, 7))
        if kind == 0:  # burst at one tick: dt = 0 for a repeated channel
            gaps += [0] * length
        elif kind == 1:  # one tick apart
            gaps += [1] * length
        elif kind == 2:  # long gaps, beyond the table
            gaps += rng.integers(params.dt_max + 1, 4 * params.dt_max + 2, length).tolist()
        else:
            gaps += rng.integers(0, params.dt_max + 1, length).tolist()
        same = rng.random() < 0.5
        ch = int(rng.integers(params.n_channels))
        channels += [ch if same else int(rng.integers(params.n_channels)) for _ in range(length)]
    ticks = np.cumsum(gaps[:n_events])
    weights_q = params.input_fmt.quantize(rng.standard_normal(n_events) * scale)
    return ticks.astype(np.int64), np.array(channels[:n_events], dtype=np.int64), weights_q.astype(np.int64)


def expected_beats(params, ticks, channels, weights_q):
    trace = run_int(params, ticks, channels, weights_q)
    states, outputs = [], []
    for k, ch in enumerate(channels.tolist()):
        for n in range(params.n_modes):
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
    return states, outputs, trace


def simulate(params, ticks, channels, weights_q, *, seed=0, idle=0.0, backpressure=0.0, extra_events=None, corrupt=None):
    """Run the core and check every beat against the golden model; returns the golden trace.

    ``extra_events`` maps an event position to a record inserted before it on the input
    only (backwards ticks, which the core must drop); ``corrupt(states)`` alters the
    expected mode records before checking (to show the checker can fail).
    """
    dut = SAHiPPOCore(params)
    states, outputs, trace = expected_beats(params, ticks, channels, weights_q)
    if corrupt is not None:
        corrupt(states)
    state_board, output_board = Scoreboard("o_state"), Scoreboard("o_output")
    state_board.expect_all(states)
    output_board.expect_all(outputs)
    records = []
    for k, (t, c, w) in enumerate(zip(ticks.tolist(), channels.tolist(), weights_q.tolist())):
        if extra_events and k in extra_events:
            records.append(extra_events[k])
        records.append({"channel": c, "tick": t, "weight": w})
    source = SimStreamSource(dut.i_event, records, idle_prob=idle, seed=seed)
    sinks = [
        SimStreamSink(dut.o_state, backpressure_prob=backpressure, seed=seed + 1, on_beat=state_board.observe),
        SimStreamSink(dut.o_output, backpressure_prob=backpressure, seed=seed + 2, on_beat=output_board.observe),
    ]
    counters = {}

    async def finish(ctx):
        budget = 20 * len(states) + 40 * len(records) + 200
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
        check_value("saturation_count", trace.saturation_count, counters["saturation"])
        + check_value("backwards_count", len(extra_events or {}), counters["backwards"]),
    )
    return trace


@pytest.mark.parametrize(
    "n_state, n_channels, dt_max, n_events, idle, backpressure",
    [
        (16, 3, 12, 40, 0.0, 0.0),  # full rate; N/2 = hazard_stages + 1: same channel back to back
        (16, 3, 12, 30, 0.3, 0.3),  # idle cycles and backpressure
        (8, 2, 5, 40, 0.1, 0.2),  # N/2 = 4 < hazard stages: same-channel events stall
        (4, 5, 3, 40, 0.0, 0.1),  # N/2 = 2 < front end; 5 channels (not a power of two)
        (12, 2, 9, 24, 0.2, 0.2),  # N/2 = 6 modes: mode index with unused table words
    ],
)
def test_core_matches_golden(n_state, n_channels, dt_max, n_events, idle, backpressure):
    params = zoh_params(n_state, n_channels, dt_max, seed=n_state + n_channels)
    ticks, channels, weights_q = irregular_stream(params, n_events, seed=n_events + dt_max)
    trace = simulate(params, ticks, channels, weights_q, seed=2, idle=idle, backpressure=backpressure)
    assert 0 in trace.dt and 1 in trace.dt and params.dt_max in trace.dt
    assert trace.spike.any() and not trace.spike.all()


def test_core_saturates_and_counts():
    """Narrow state and output formats and large weights: clamps act; the counter matches."""
    params = zoh_params(8, 2, 6, seed=3, state_fmt=QFormat.parse("sQ2.14"), out_fmt=QFormat.parse("sQ2.14"))
    ticks, channels, weights_q = irregular_stream(params, 30, seed=5, scale=6.0)
    trace = simulate(params, ticks, channels, weights_q, seed=4, backpressure=0.2)
    assert 0 < trace.saturation_count < len(ticks)
    assert (trace.z == params.state_fmt.max_int).any() and (trace.z == params.state_fmt.min_int).any()


def test_core_drops_and_counts_backwards_ticks():
    """An event whose tick lies before its channel's last update leaves no trace but the counter."""
    params = zoh_params(8, 2, 6, seed=1)
    ticks = np.array([5, 9, 9, 20, 21, 40], dtype=np.int64)
    channels = np.array([0, 1, 0, 0, 1, 0], dtype=np.int64)
    weights_q = np.array([4096, -3000, 2000, 100, 4096, -4096], dtype=np.int64)
    backwards = {3: {"channel": 0, "tick": 8, "weight": 4096}, 5: {"channel": 1, "tick": 0, "weight": 4096}}
    simulate(params, ticks, channels, weights_q, seed=1, extra_events=backwards, backpressure=0.1)


def test_core_runs_one_event_per_mode_count():
    """Ready outputs: events on one channel, back to back, take exactly N/2 clocks each."""
    params = zoh_params(16, 2, 8, seed=0)
    dut = SAHiPPOCore(params)
    accepted_at = []
    n_events = 12

    async def bench(ctx):
        ctx.set(dut.o_state.ready, 1)
        ctx.set(dut.o_output.ready, 1)
        cycle = 0
        for k in range(n_events):
            ctx.set(dut.i_event.payload, {"channel": 0, "tick": k, "weight": 1000})
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
    params = zoh_params(8, 2, 6, seed=2)
    ticks, channels, weights_q = irregular_stream(params, 10, seed=1)

    def flip(states):
        states[21][0]["im"] ^= 1

    with pytest.raises(MismatchError, match=r"o_state beat 21 \(event=5, mode=1\): field 'im'"):
        simulate(params, ticks, channels, weights_q, corrupt=flip)


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
