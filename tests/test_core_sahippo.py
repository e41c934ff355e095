"""Event-driven SA-HiPPO core (zoh) in amaranth.sim against the bit-exact golden model.

Every mode of every event, every ``y``, spike, clipped interval and the saturation count are
compared exactly with :func:`golden.sahippo.run_int` on irregular event streams: bursts at
``dt = 0`` and ``dt = 1``, gaps beyond the table's ``dt_max``, random intervals, with idle
cycles and backpressure.
"""

import numpy as np
import pytest
from amaranth.back import verilog

from golden.fixed import QFormat
from golden.sahippo import SAHiPPOParams
from hw.cores.sahippo import SAHiPPOCore, SAHiPPOTaylor2Core, sahippo_core
from sim.harness import STALLS, simulate_case, simulate_flipped
from sim.tb_sahippo import SAHiPPOCase, corner_case, digit_case, irregular_stream, random_case, zoh_params


def simulate(case: SAHiPPOCase, *, stalls="full_rate", **kwargs):
    """Run the core on ``case`` with a stall pattern of :data:`sim.harness.STALLS` and check every
    beat against the golden model; returns the trace."""
    idle_prob, backpressure_prob = STALLS[stalls]
    simulate_case(case, idle_prob=idle_prob, backpressure_prob=backpressure_prob, **kwargs)
    return case.golden()


@pytest.mark.parametrize(
    "n_state, n_channels, dt_max, n_events, stalls",
    [
        (20, 3, 12, 40, "full_rate"),  # N/2 = hazard_stages + 1: reads take forwarded updates
        (18, 3, 12, 30, "full_rate"),  # N/2 = hazard_stages: same-channel events stall one clock
        (18, 3, 12, 30, "idle_backpressure"),
        (8, 2, 5, 40, "idle_backpressure"),  # N/2 = 4 < hazard stages: same-channel events stall
        (4, 5, 3, 40, "backpressure"),  # N/2 = 2 < front end; 5 channels (not a power of two)
        (12, 2, 9, 24, "idle"),  # N/2 = 6 modes: mode index with unused table words
    ],
)
def test_core_matches_golden(n_state, n_channels, dt_max, n_events, stalls):
    case = random_case(n_state + n_channels, n_state, n_channels, dt_max, n_events)
    trace = simulate(case, seed=2, stalls=stalls)
    assert 0 in trace.dt and 1 in trace.dt and dt_max in trace.dt
    assert trace.spike.any() and not trace.spike.all()


def test_core_saturates_and_counts():
    """Narrow state and output formats and large weights: clamps act; the counter matches."""
    fmt = QFormat.parse("sQ2.14")
    case = random_case(3, 8, 2, 6, 30, scale=6.0, state_fmt=fmt, out_fmt=fmt)
    trace = simulate(case, seed=4, stalls="backpressure")
    assert 0 < trace.saturation_count < len(case.ticks)
    assert (trace.z == fmt.max_int).any() and (trace.z == fmt.min_int).any()


def test_core_written_down_corners():
    """Extreme weights, dt_max and dt_max + 1, a 2**31 gap, the last 32-bit tick, and three
    backwards ticks that the core drops (no output, no state change) and counts."""
    case = corner_case()
    trace = simulate(case, seed=1, stalls="idle_backpressure")
    assert trace.dt.tolist()[:6] == [0, 0, 0, case.params.dt_max, 0, case.params.dt_max]
    assert len(case.input_beats()) == len(case.ticks) + 3


def test_core_composes_every_digit_pattern():
    """The decay composition: a zero digit at each position and between non-zero ones, the
    largest digits, the largest g_q, and g_q = 0 (decay skipped)."""
    case = digit_case()
    core = case.core()
    assert core.read_stage == 11 and core.mode_latency == 33
    trace = simulate(case, core=core, seed=3, stalls="idle_backpressure")
    assert set(trace.dt.tolist()) == set(range(8))


def test_core_runs_one_event_per_mode_count():
    """Ready outputs: back-to-back events on two channels in turn take exactly N/2 clocks each."""
    params = zoh_params(16, 2, 8, seed=0)
    n_events = 12
    case = SAHiPPOCase("back_to_back", params, np.arange(n_events), np.arange(n_events) % 2, np.full(n_events, 1000))
    core = case.core()
    accepted_at = simulate_case(case, core=core).accepted_at["i_event"]
    intervals = np.diff(accepted_at)
    assert core.cycles_per_event == params.n_modes == 8
    assert (intervals[3:] == params.n_modes).all(), intervals


@pytest.mark.parametrize("n_state", [4, 18, 20, 22, 24])
def test_core_back_to_back_one_channel_and_alternating(n_state):
    """Ready outputs, events offered every clock: a run on one channel (intervals 0, 1, beyond
    dt_max, a backwards tick dropped in between), then two channels in turn. Each event reads
    the t_last its predecessor on the channel wrote and its modes the updates 10, 11 and 12
    stages ahead forwarded (N/2 = 10, 11, 12); bit-exact. On one channel the front end
    (N/2 = 2), the modes (N/2 > hazard_stages) or, for N/2 <= hazard_stages, the read-after-write
    loop of hazard_stages + 1 clocks set the pace; two channels in turn run at
    cycles_per_event."""
    params = zoh_params(n_state, 2, 5, seed=7)
    same = [0, 0, 1, 2, 2, 9, 10, 16, 16, 17]
    ticks = np.array(same + [18 + k // 2 * 3 for k in range(12)])
    channels = np.array([1] * len(same) + [k % 2 for k in range(12)])
    weights = np.array([(-1) ** k * (900 + 37 * k) for k in range(len(ticks))])
    backwards = {4: {"channel": 1, "tick": 1, "weight": 500}, 13: {"channel": 0, "tick": 17, "weight": -500}}
    case = SAHiPPOCase("back_to_back_channels", params, ticks, channels, weights, backwards)
    core = case.core()
    accepted_at = simulate_case(case, core=core).accepted_at["i_event"]
    trace = case.golden()
    assert {0, 1, params.dt_max} <= set(trace.dt.tolist())
    intervals = np.diff(accepted_at)
    assert core.cycles_per_event == max(params.n_modes, core.front_end_cycles + 1)
    # A dropped event leaves the front end after 4 clocks (ACCEPT .. CLIP); the first event and
    # the one after a dropped event find the modes idle and wait for the front end alone.
    dropped = np.array([k + i for i, k in enumerate(sorted(backwards))])
    expected = np.full(len(intervals), core.cycles_per_event)
    expected[0], expected[dropped], expected[dropped + 1] = core.front_end_cycles + 1, 4, core.front_end_cycles + 1
    # One channel: beats 0 .. len(same) (one dropped); the loop's pace once the holding
    # register has filled, so the run's last two intervals are exactly it.
    loop = core.hazard_stages + 1 if params.n_modes <= core.hazard_stages else 0
    one_channel = len(same)
    stalled = (intervals[:one_channel] == max(loop, core.cycles_per_event)) & (expected[:one_channel] != 4)
    assert (stalled | (intervals[:one_channel] == expected[:one_channel])).all(), intervals
    assert (intervals[one_channel - 2:one_channel] == max(loop, core.cycles_per_event)).all(), intervals
    # Two channels in turn, from the second beat of the alternation on.
    assert intervals[one_channel + 2:].tolist() == expected[one_channel + 2:].tolist()


def test_checker_sees_a_single_bit_error():
    case = random_case(2, 8, 2, 6, 10)
    flip = {"port": "o_state", "field": "im", "bit": 0, "event": 5, "mode": 1}
    assert "o_state beat 21 (event=5, mode=1): field 'im'" in simulate_flipped(case, flip)


def test_core_converts_to_verilog():
    text = verilog.convert(SAHiPPOCore(zoh_params(32, 4, 15, seed=0), emit_state=False), name="sahippo_core")
    assert "module sahippo_core" in text


def test_core_refuses_what_it_cannot_build(never_elaborated):
    with never_elaborated():
        with pytest.raises(TypeError, match="SAHiPPOParams"):
            SAHiPPOCore(object())
        taylor = SAHiPPOParams.from_float(8, 1.0, 0.1, np.zeros((1, 8)), [0.0], [1.0], 4, method="taylor2")
        with pytest.raises(ValueError, match="'zoh' discretisation only"):
            SAHiPPOCore(taylor)
        with pytest.raises(ValueError, match="tick_bits 2 cannot hold dt_max"):
            SAHiPPOCore(zoh_params(8, 1, 9, seed=0), tick_bits=2)
        with pytest.raises(ValueError, match="wider than one 18-bit multiplier port"):
            SAHiPPOCore(zoh_params(8, 1, 4, seed=0, decay_fmt=QFormat.parse("sQ1.19")))


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
    "n_state, n_channels, dt_max, n_events, stalls",
    [
        (8, 2, 6, 24, "full_rate"),
        (6, 3, 5, 20, "idle_backpressure"),  # N/2 = 3: unused table words
    ],
)
def test_taylor2_core_matches_golden(n_state, n_channels, dt_max, n_events, stalls):
    case = random_case(n_state + 100, n_state, n_channels, dt_max, n_events, method="taylor2")
    assert case.params.max_substeps > 1
    trace = simulate(case, seed=3, stalls=stalls)
    assert 0 in trace.dt and dt_max in trace.dt
    assert trace.spike.any() and not trace.spike.all()


def test_taylor2_core_corners_and_saturation():
    simulate(corner_case(method="taylor2"), seed=5, stalls="idle_backpressure")
    fmt = QFormat.parse("sQ2.14")
    case = random_case(7, 8, 2, 6, 20, scale=6.0, method="taylor2", state_fmt=fmt, out_fmt=fmt)
    trace = simulate(case, seed=6, stalls="backpressure")
    assert trace.saturation_count > 0


def test_core_factory_picks_the_method(never_elaborated):
    with never_elaborated():
        assert type(random_case(0, 8, 1, 4, 2, method="taylor2").core()) is SAHiPPOTaylor2Core
        assert type(random_case(0, 8, 1, 4, 2).core()) is SAHiPPOCore
        with pytest.raises(ValueError, match="SAHiPPOTaylor2Core implements the 'taylor2'"):
            SAHiPPOTaylor2Core(zoh_params(8, 1, 4, seed=0))


# --- per-sample clear -----------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["zoh", "taylor2"])
def test_core_clear_returns_to_the_initial_state(method):
    """Two samples through one core, a clear sweep over every (channel, mode) between them: the
    second sample's every mode, y, spike and interval equal the golden model's from zero state
    (its ticks restart at 0, so without the clear of t_last its first intervals would read as
    backwards and be dropped), and the counters add up over both samples."""
    from amaranth.sim import Simulator

    from golden.sahippo import run_int
    from sim.stream import SimStreamSink, SimStreamSource

    params = zoh_params(8, 3, 5, seed=21, method=method)
    samples = [irregular_stream(params, 14 if method == "taylor2" else 30, seed) for seed in (22, 23)]
    traces = [run_int(params, *sample) for sample in samples]
    core = sahippo_core(params, tick_bits=16, clearable=True)
    states, outputs, final = [], [], {}
    state_sink = SimStreamSink(core.o_state, backpressure_prob=0.2, seed=1, on_beat=states.append)
    output_sink = SimStreamSink(core.o_output, backpressure_prob=0.2, seed=2, on_beat=outputs.append)

    async def drive(ctx):
        for index, (ticks, channels, weights) in enumerate(samples):
            beats = [{"channel": int(c), "tick": int(t), "weight": int(w)} for t, c, w in zip(ticks, channels, weights)]
            await SimStreamSource(core.i_event, beats, idle_prob=0.1, seed=index).run(ctx)
            for _ in range(2000):  # until the sample's last output beat (or a bound: the check then fails)
                if len(outputs) >= sum(len(s[0]) for s in samples[:index + 1]):
                    break
                await ctx.tick()
            ctx.set(core.clear.active, 1)
            for channel in range(params.n_channels):
                for mode in range(params.n_modes):
                    ctx.set(core.clear.channel, channel)
                    ctx.set(core.clear.mode, mode)
                    await ctx.tick()
            ctx.set(core.clear.active, 0)
        for name in ("saturation_count", "backwards_count", "clipped_count"):
            final[name] = ctx.get(getattr(core, name))

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(state_sink.run, background=True)
    sim.add_testbench(output_sink.run, background=True)
    sim.add_testbench(drive)
    sim.run()
    want_states = [(int(c), n, int(z[n, 0]), int(z[n, 1])) for trace, sample in zip(traces, samples)
                   for c, z in zip(sample[1], trace.z) for n in range(params.n_modes)]
    assert [(b["channel"], b["mode"], b["re"], b["im"]) for b in states] == want_states
    want_outputs = [(int(c), int(dt), int(y), int(s)) for trace, sample in zip(traces, samples)
                    for c, dt, y, s in zip(sample[1], trace.dt, trace.y, trace.spike)]
    assert [(b["channel"], b["dt"], b["y"], b["spike"]) for b in outputs] == want_outputs
    assert final == {"saturation_count": sum(t.saturation_count for t in traces), "backwards_count": 0,
                     "clipped_count": sum(t.clipped_count for t in traces)}
    assert all(t.clipped_count > 0 for t in traces)
