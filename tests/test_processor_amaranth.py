# amaranth: UnusedElaboratable=no
"""amaranth.sim tests of the streaming event processor blocks and the whole network, bit for bit
against :func:`golden.network.run_network`."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from amaranth.hdl import Const, Fragment, Module, Signal, signed
from amaranth.sim import Simulator

from golden.data.events import CHANNEL_EVENT_DTYPE, ChannelPool, InputMap
from golden.fixed import QFormat
from golden.layers import LIReadoutParams, run_readout_int
from golden.network import LayerParams, NetworkParams, run_network
from hw.arith import (
    COUNTER_MAX, count_saturating, pipelined_tree_select, registered_greater, select_stages, times_constant, tree_select,
)
from hw.cores.li_readout import LIReadoutCore
from hw.processor.input_map import ChannelPooler, InputMapper
from hw.processor.network import NetworkProcessor, check_processor_runs, lane_params, processor_runs
from hw.processor.synapse import SynapseStage, weight_bank_depth
from hw.processor.time_bins import TimeBinController
from sim.processor_model import (
    Observed, compare, counts_to_beats, dhlif_network, expected_from_counts, expected_from_trace, flames_example_network,
    mixed_format_network, random_counts, random_network, scores_of,
)
from sim.stream import SimStreamSink, SimStreamSource, run_simulation


# --- LI readout core ------------------------------------------------------------------------
def _readout_params(n, seed, fmt=QFormat(4, 10), coef_bits=12):
    """Independent alpha and gain (their sum may exceed 1, so the membrane clamp is reached)."""
    rng = np.random.default_rng(seed)
    top = 1 << coef_bits
    return LIReadoutParams(alpha_q=rng.integers(top // 4, top, n), gain_q=rng.integers(top // 4, top, n),
                           input_fmt=fmt, state_fmt=fmt, coef_fmt=QFormat(0, coef_bits, signed=False))


@pytest.mark.parametrize("n,backpressure,wide", [(10, 0.0, False), (3, 0.4, False), (1, 0.0, False), (10, 0.3, True)])
def test_readout_core_matches_golden(n, backpressure, wide):
    """``wide``: 24-bit membrane and current, 18-bit coefficients (the multiplies are split in slices)."""
    params = _readout_params(n, seed=n, fmt=QFormat(10, 14), coef_bits=18) if wide else _readout_params(n, seed=n)
    rng = np.random.default_rng(7)
    steps = 9
    fmt = params.input_fmt
    currents = rng.integers(fmt.min_int, fmt.max_int + 1, (steps, n))
    currents[2] = fmt.max_int  # drive into saturation
    currents[3] = fmt.max_int
    trace = run_readout_int(params, torch.from_numpy(currents))
    core = LIReadoutCore(params)
    beats = [{"neuron": i, "current": int(currents[t, i])} for t in range(steps) for i in range(n)]
    states, scores = [], []
    source = SimStreamSource(core.i_current, beats, idle_prob=0.2, seed=1)
    state_sink = SimStreamSink(core.o_state, backpressure_prob=backpressure, seed=2, on_beat=states.append)
    score_sink = SimStreamSink(core.o_scores, backpressure_prob=backpressure, seed=3, on_beat=scores.append)
    final = {}

    async def sample(ctx):
        await source.run(ctx)
        await SimStreamSource(core.i_finish, [{"emit": 1}]).run(ctx)
        await ctx.tick().repeat(200 + 4 * n)
        final["saturation"] = ctx.get(core.saturation_count)

    run_simulation(core, [sample], background=[state_sink.run, score_sink.run])
    got_u = np.array([s["u"] for s in states]).reshape(steps, n)
    assert [s["neuron"] for s in states] == [b["neuron"] for b in beats]
    np.testing.assert_array_equal(got_u, trace.u.numpy())
    assert [s["saturated"] for s in states] == [int(v) for v in trace.saturated.numpy().reshape(-1)]
    assert [scores_of(beat) for beat in scores] == [([int(v) for v in trace.scores], int(trace.prediction))]
    assert final["saturation"] == trace.saturation_count > 0


def test_readout_argmax_first_index_wins_ties_and_clears():
    params = LIReadoutParams(alpha_q=[0, 0, 0], gain_q=[2048, 2048, 2048], input_fmt=QFormat(4, 10),
                             state_fmt=QFormat(4, 10), coef_fmt=QFormat(0, 12, signed=False))
    core = LIReadoutCore(params)
    # classes 1 and 2 tie at the top; the first (1) must win. Second sample: class 2 alone.
    samples = [[-64, 512, 512], [0, 0, 256]]
    scores = []
    sink = SimStreamSink(core.o_scores, on_beat=scores.append)
    state_sink = SimStreamSink(core.o_state)

    async def tb(ctx):
        for currents in samples:
            beats = [{"neuron": i, "current": x} for i, x in enumerate(currents)]
            await SimStreamSource(core.i_current, beats).run(ctx)
            await SimStreamSource(core.i_finish, [{"emit": 1}]).run(ctx)
        await ctx.tick().repeat(60)

    run_simulation(core, [tb], background=[sink.run, state_sink.run])
    # Classes 1 and 2 tie: the first wins; membranes and scores were cleared between samples.
    assert [scores_of(beat) for beat in scores] == [([-32, 256, 256], 1), ([0, 0, 128], 2)]


# --- synapse stage --------------------------------------------------------------------------
#: Layer formats of the synapse tests: (weight_fmt, bias_fmt, weight range, core input_fmt, row
#: scale format or None, max_events_per_step). ``tied``: the weights carry the core's fractional
#: bits; ``narrow``: 4-bit weights, shift 2; ``left``: 4-bit weights, shift -7; ``scaled``:
#: 9-bit weights, an 18-bit row scale and a 22-bit accumulator (two multiplier slices), shift 12.
SYNAPSE_FORMATS = {
    "tied": (QFormat(3, 10), QFormat(3, 10), 4000, QFormat(4, 10), None, 12),
    "narrow": (QFormat(1, 3), QFormat(5, 3), 8, QFormat(8, 1), None, 12),
    "left": (QFormat(1, 3), QFormat(5, 3), 8, QFormat(8, 10), None, 12),
    "scaled": (QFormat(3, 6), QFormat(5, 6), 256, QFormat(4, 10), QFormat(2, 16, signed=False), 4000),
}


def _layer(n_in, n_out, seed, formats="tied"):
    rng = np.random.default_rng(seed)
    weight_fmt, bias_fmt, w_max, fmt, scale_fmt, max_events = SYNAPSE_FORMATS[formats]
    neuron = _readout_params(n_out, seed, fmt=fmt)
    scale = None
    if scale_fmt is not None:  # mostly below 1/4 (the currents do not all clamp), one 0, one the largest
        scale = rng.integers(0, 1 << 14, n_out)
        scale[::5] = scale_fmt.max_int
        scale[1::7] = 0
    net = NetworkParams(n_inputs=n_in, bin_ticks=10, max_events_per_step=max_events, layers=[
        LayerParams(rng.integers(-w_max, w_max, (n_out, n_in)), rng.integers(-(w_max * 3) // 4, (w_max * 3) // 4, n_out),
                    weight_fmt, bias_fmt, neuron, row_scale_q=scale, row_scale_fmt=scale_fmt)])
    return net.layers[0]


@pytest.mark.parametrize("n_in,n_out,lanes,backpressure,formats", [
    (5, 7, 1, 0.0, "tied"), (5, 7, 3, 0.5, "tied"), (5, 8, 8, 0.3, "tied"), (5, 1, 1, 0.0, "tied"),
    (5, 2, 1, 0.2, "tied"), (200, 12, 1, 0.3, "tied"), (200, 12, 4, 0.0, "tied"),  # 3 and 2 weight banks
    (5, 7, 1, 0.3, "narrow"), (5, 7, 3, 0.0, "left"), (5, 7, 1, 0.0, "scaled"), (5, 11, 4, 0.4, "scaled"),
])
def test_synapse_sums_columns_and_clears(n_in, n_out, lanes, backpressure, formats):
    layer = _layer(n_in, n_out, seed=n_out + lanes, formats=formats)
    syn = SynapseStage(layer, lanes=lanes)
    rng = np.random.default_rng(3)
    steps = [rng.integers(0, n_in, int(rng.integers(0, 12))) for _ in range(4)]
    got, saturation = _run_synapse(syn, steps, backpressure=backpressure, sink_seed=10, source_seed=4)
    _check_synapse_currents(layer, syn, steps, got, saturation)
    if formats == "scaled":
        assert layer.acc_bits > 18 and syn.drain_extra_stages == 5 + (layer.current_shift > 0)


@pytest.mark.parametrize("n_in,n_out,lanes,banks", [(4500, 4, 4, 5), (3000, 8, 4, 6), (5600, 12, 4, 17),
                                                    (2500, 16, 4, 10)])
def test_synapse_many_weight_banks_back_to_back(n_in, n_out, lanes, banks):
    """Weight memories of 5 to 17 banks (per-group address registers, one or two registered
    levels of the pipelined bank select): events back to back on the same rows (one to four rows
    per event: every forwarding distance) on columns at bank boundaries (a column whose rows
    straddle two banks, its neighbours, the first and the last bank in turn), bit for bit."""
    layer = _layer(n_in, n_out, seed=n_in + lanes)
    syn = SynapseStage(layer, lanes=lanes)
    words = n_in * syn.rows
    depth = weight_bank_depth(words, lanes * layer.weight_fmt.width)
    assert -(-words // depth) == banks and syn.select_stages == select_stages(banks) + 2 == (4 if banks > 16 else 3)
    edges = [(k * depth) // syn.rows for k in (1, banks // 2, banks - 1)]
    steps = [[edges[0], edges[0] - 1, edges[0], edges[0] + 1, edges[0], edges[0] + 1],
             [edges[1] - 1, edges[1], edges[2], edges[2] - 1, edges[2], edges[1]],
             [0, n_in - 1] * 3, [],
             list(np.random.default_rng(n_in).integers(0, n_in, 12))]
    got, saturation = _run_synapse(syn, steps, backpressure=0.0, sink_seed=1, source_seed=2, idle_prob=0.0)
    _check_synapse_currents(layer, syn, steps, got, saturation)
    got, saturation = _run_synapse(syn, steps, backpressure=0.3, sink_seed=3, source_seed=4, idle_prob=0.3)
    _check_synapse_currents(layer, syn, steps, got, saturation)


@pytest.mark.parametrize("n_out,lanes", [(1, 1), (2, 1), (3, 1), (4, 1), (16, 4)])
def test_synapse_forwards_every_distance_from_one_bank(n_out, lanes):
    """One weight bank (no select stage: the accumulator read issued with the weight read): one to
    four rows per event, events back to back on the same few columns and then with idle cycles
    and backpressure, so a row is read again one, two, three and four cycles after its previous
    read (each forwarded sum) and five or more (the written word), bit for bit."""
    n_in = 5
    layer = _layer(n_in, n_out, seed=n_out + lanes)
    syn = SynapseStage(layer, lanes=lanes)
    assert syn.select_stages == 0 and syn.rows == -(-n_out // lanes)
    rng = np.random.default_rng(n_out)
    steps = [[0] * 7, [1, 2, 1, 2, 3, 1], [], list(rng.integers(0, n_in, 12)), [4, 4, 0, 4, 4]]
    got, saturation = _run_synapse(syn, steps, backpressure=0.0, sink_seed=1, source_seed=2, idle_prob=0.0)
    _check_synapse_currents(layer, syn, steps, got, saturation)
    got, saturation = _run_synapse(syn, steps, backpressure=0.3, sink_seed=3, source_seed=4, idle_prob=0.4)
    _check_synapse_currents(layer, syn, steps, got, saturation)


@pytest.mark.parametrize("n_in,n_out,lanes,stages", [(5, 7, 1, 0), (4500, 4, 4, 3), (5600, 12, 4, 4)])
def test_synapse_close_waits_for_the_bank_select(n_in, n_out, lanes, stages):
    """A close right behind an event is accepted ``rows + 5 + select_stages`` cycles after it
    (the class docstring's timing, and the per-step cost hw.board_model.estimate_cycles adds)."""
    syn = SynapseStage(_layer(n_in, n_out, seed=1), lanes=lanes)
    assert syn.select_stages == stages
    taken = []

    async def tb(ctx):
        ctx.set(syn.close_allowed, 1)
        for port in syn.o_current:
            ctx.set(port.ready, 1)
        cycle = 0
        for close in (0, 1):
            ctx.set(syn.i.payload, {"close": close, "last": 0, "index": n_in - 1})
            ctx.set(syn.i.valid, 1)
            ready = 0
            while not ready:
                _, _, ready = await ctx.tick().sample(syn.i.ready)
                cycle += 1
            taken.append(cycle)
        ctx.set(syn.i.valid, 0)

    sim = Simulator(syn)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert taken[1] - taken[0] == syn.rows + 5 + stages


def _check_synapse_currents(layer, syn, steps, got, saturation):
    """Each lane's beats of every step equal ``layer.current`` of the step's input counts, and the
    saturation count their clamps."""
    n_in, lanes = layer.n_in, syn.lanes
    saturated = 0
    for t, events in enumerate(steps):
        counts = np.bincount(events, minlength=n_in)
        want, clamped = layer.current(torch.from_numpy(layer.bias_q + layer.weight_q @ counts))
        saturated += int(clamped.sum())
        for lane in range(lanes):
            lane_n = syn.lane_neurons(lane)
            chunk = got[lane][t * lane_n:(t + 1) * lane_n]
            assert [b["neuron"] for b in chunk] == list(range(lane_n))
            assert [b["current"] for b in chunk] == [int(want[r * lanes + lane]) for r in range(lane_n)], (t, lane)
    assert [len(beats) for beats in got] == [len(steps) * syn.lane_neurons(lane) for lane in range(lanes)]
    assert syn.rows == -(-layer.n_out // lanes)
    assert saturation == saturated
    assert saturated or not layer.scaled


def _run_synapse(syn, steps, *, backpressure, sink_seed, source_seed, idle_prob=0.2):
    """Each step's input indices, then a close, into ``syn`` (``idle_prob`` idle cycles on the
    input, ``backpressure`` on every lane): the beats each lane gave and the saturation count after."""
    commands = []
    for events in steps:
        commands += [{"close": 0, "last": 0, "index": int(j)} for j in events]
        commands.append({"close": 1, "last": 0, "index": 0})
    got = [[] for _ in syn.o_current]
    sinks = [SimStreamSink(port, backpressure_prob=backpressure, seed=sink_seed + lane, on_beat=got[lane].append)
             for lane, port in enumerate(syn.o_current)]
    source = SimStreamSource(syn.i, commands, idle_prob=idle_prob, seed=source_seed)
    final = {}

    async def allow(ctx):
        ctx.set(syn.close_allowed, 1)
        await source_done(ctx, source)
        for _ in range(100):
            await ctx.tick()
        final["saturation"] = ctx.get(syn.saturation_count)

    run_simulation(syn, [source.run, allow], background=[s.run for s in sinks])
    return got, final["saturation"]


async def source_done(ctx, source):
    while not source.done:
        await ctx.tick()


def test_weight_banks_are_one_block_ram_deep():
    assert weight_bank_depth(176 * 176, 15) == 1024  # 31 DP16KD 1024x18, not 15-wide 16384x1 banks
    assert weight_bank_depth(32 * 176, 13) == 1024  # a tie (6 blocks): the shallower bank
    assert weight_bank_depth(176 * 10, 21) == 2048  # 3 blocks of 2048x9
    assert weight_bank_depth(200 * 12, 14) == 1024
    assert weight_bank_depth(600, 56) == 512
    assert weight_bank_depth(10000, 4) == 4096
    assert weight_bank_depth(10000, 1) == 16384


def test_times_constant_and_tree_select_are_exact():
    """The address and selection helpers of the synapse and merger, for every value of a 7-bit operand."""
    factors = [0, 1, 2, 3, 7, 11, 176, 255, 1000]
    x = Signal(7)
    products = [Signal(18, name=f"product_{k}") for k in factors]
    selected = [Signal(8, name=f"selected_{n}") for n in (1, 3, 10, 31)]
    m = Module()
    m.d.comb += [p.eq(times_constant(x, k)) for p, k in zip(products, factors)]
    m.d.comb += [s.eq(tree_select(x[:max(1, (n - 1).bit_length())], [Const(3 * v + 1, 8) for v in range(n)]))
                 for s, n in zip(selected, (1, 3, 10, 31))]
    bad = []

    async def tb(ctx):
        for v in range(128):
            ctx.set(x, v)
            bad.extend((k, v) for p, k in zip(products, factors) if ctx.get(p) != v * k)
            bad.extend((n, v) for s, n in zip(selected, (1, 3, 10, 31))
                       if v < n and ctx.get(s) != 3 * v + 1)

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    assert bad == []
    with pytest.raises(ValueError, match="factor"):
        times_constant(x, -1)


@pytest.mark.parametrize("amount_bits", [1, 2, 5])
def test_counters_add_and_stick_at_their_maximum(amount_bits):
    """count_saturating: a counter near COUNTER_MAX adds each cycle's amount (a 1-bit enable or
    a count) and sticks at COUNTER_MAX, never wrapping; `when` low holds it."""
    counter, amount, when = Signal(COUNTER_MAX.bit_length(), init=COUNTER_MAX - 40), Signal(amount_bits), Signal()
    m = Module()
    count_saturating(m, counter, amount, when=when)
    rng = np.random.default_rng(amount_bits)

    async def tb(ctx):
        expected = COUNTER_MAX - 40
        for _ in range(120):
            step, enabled = int(rng.integers(0, 1 << amount_bits)), bool(rng.integers(0, 4))
            ctx.set(amount, step)
            ctx.set(when, enabled)
            await ctx.tick()
            expected = min(COUNTER_MAX, expected + step) if enabled else expected
            assert ctx.get(counter) == expected
        assert expected == COUNTER_MAX

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("width", [1, 2, 7, 10, 11, 38])
def test_registered_greater_is_the_signed_compare_of_the_cycle_before(width):
    """registered_greater: with `en` high, the expression is a > b (signed) for the a and b of
    the cycle before, at the corners (the extremes, equal values), for neighbours x and x +- 1
    and at random; with `en` low it holds."""
    a, b, en = Signal(signed(width)), Signal(signed(width)), Signal()
    m = Module()
    greater = registered_greater(m, a, b, en=en, name="compare")
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    rng = np.random.default_rng(width)
    corners = [(lo, hi), (hi, lo), (lo, lo), (hi, hi), (0, -1), (-1, 0), (1, 0), (0, 0)]
    pairs = [(x, y) for x, y in corners if lo <= min(x, y) and max(x, y) <= hi]
    pairs += [tuple(int(v) for v in rng.integers(lo, hi + 1, 2)) for _ in range(200)]
    pairs += [(x, x + d) for x in rng.integers(lo, hi, 20).tolist() for d in (-1, 1) if lo <= x + d <= hi]

    async def tb(ctx):
        expected = None
        for x, y in pairs:
            enabled = bool(rng.integers(0, 4))
            ctx.set(a, x)
            ctx.set(b, y)
            ctx.set(en, enabled)
            await ctx.tick()
            if enabled:
                expected = x > y
            if expected is not None:
                assert ctx.get(greater) == expected, (x, y)

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize("count,ways", [(1, 4), (4, 4), (5, 4), (16, 4), (17, 4), (64, 4), (9, 2), (9, 8)])
def test_pipelined_tree_select_follows_its_index(count, ways):
    """pipelined_tree_select on values and an index that change every cycle: its select,
    registered, equals values[index] of `latency + 1` cycles earlier with the index of the cycle
    before those values, latency = select_stages(count, ways)."""
    index = Signal(range(max(2, count)))
    values = [Signal(8, name=f"value_{k}") for k in range(count)]
    m = Module()
    selected, latency = pipelined_tree_select(m, index, values, ways=ways)
    assert latency == select_stages(count, ways) == {1: 0, 4: 0, 5: 1, 16: 1, 17: 2, 64: 2, 9: 3 if ways == 2 else 1}[count]
    out = Signal(8)
    m.d.sync += out.eq(selected)
    rng = np.random.default_rng(count)
    words, indices, bad = [], [], []

    async def tb(ctx):
        for cycle in range(40):
            words.append(rng.integers(0, 256, count))
            indices.append(int(rng.integers(0, count)))
            ctx.set(index, indices[-1])
            for value, word in zip(values, words[-1]):
                ctx.set(value, int(word))
            at = cycle - latency - 1
            if at >= 1 and ctx.get(out) != words[at][indices[at - 1] if count > 1 else 0]:
                bad.append(cycle)
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert bad == []
    with pytest.raises(ValueError, match="ways"):
        pipelined_tree_select(m, index, values, ways=3)


def test_arbiter_picks_the_lowest_valid_stream():
    """The merger's and the lane serialisers' arbiter, for every valid pattern of 1, 3, 5 and 8
    streams: the chosen index, its payload and the ready routed back to it alone."""
    from amaranth.lib import data

    from hw.streams import LowestValidArbiter

    pattern = Signal(8)
    widths = (1, 3, 5, 8)
    layout = data.StructLayout({"tag": 4})
    arbiters = [LowestValidArbiter(layout, n) for n in widths]
    m = Module()
    for k, (arbiter, n) in enumerate(zip(arbiters, widths)):
        m.submodules[f"arbiter_{k}"] = arbiter
        m.d.comb += arbiter.o.ready.eq(1)
        for q in range(n):
            m.d.comb += [arbiter.i[q].valid.eq(pattern[q]), arbiter.i[q].payload.tag.eq(q + 3)]
    bad = []

    async def tb(ctx):
        for v in range(256):
            ctx.set(pattern, v)
            for arbiter, n in zip(arbiters, widths):
                bits = v & ((1 << n) - 1)
                want = (bits & -bits).bit_length() - 1
                got = ctx.get(arbiter.o.payload.index)
                readies = [ctx.get(arbiter.i[q].ready) for q in range(n)]
                if ctx.get(arbiter.o.valid) != bool(bits) or (bits and (
                        got != want or ctx.get(arbiter.o.payload.tag) != want + 3
                        or readies != [int(q == want) for q in range(n)])):
                    bad.append((n, v, got))

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    assert bad == []


@pytest.mark.parametrize("idle, backpressure", [(0.0, 0.0), (0.3, 0.0), (0.0, 0.4), (0.4, 0.5)])
def test_stream_register_passes_every_beat_in_order(idle, backpressure):
    """The register stage in front of each core: every beat once and in order under idle and
    backpressure patterns; one beat per cycle when neither side waits; i.ready and o.valid are
    registers (o.ready does not reach i.ready)."""
    from amaranth.lib import data

    from hw.streams import StreamRegister

    layout = data.StructLayout({"tag": 8})
    dut = StreamRegister(layout)
    records = [{"tag": k} for k in range(200)]
    source = SimStreamSource(dut.i, records, idle_prob=idle, seed=1)
    sink = SimStreamSink(dut.o, backpressure_prob=backpressure, seed=2)

    async def feed(ctx):
        await source.run(ctx)
        await ctx.tick().repeat(20)  # the last beats leave the register stage

    run_simulation(dut, [feed], background=[sink.run])
    assert [beat["tag"] for beat in sink.beats] == list(range(200))
    if idle == backpressure == 0:
        assert source.cycles == len(records)


def test_stream_register_ready_does_not_follow_o_ready():
    """i.ready and o.valid of the register stage do not change within a cycle when o.ready does."""
    from amaranth.lib import data

    from hw.streams import StreamRegister

    dut = StreamRegister(data.StructLayout({"tag": 8}))
    changed = []

    async def tb(ctx):
        ctx.set(dut.i.valid, 1)
        for k in range(30):
            seen = set()
            for ready in (0, 1):
                ctx.set(dut.o.ready, ready)
                seen.add((ctx.get(dut.i.ready), ctx.get(dut.o.valid)))
            if len(seen) > 1:
                changed.append(k)
            ctx.set(dut.o.ready, k % 3 == 0)
            await ctx.tick()

    run_simulation(dut, [tb])
    assert changed == []


def test_synapse_rejects_bad_lanes():
    layer = _layer(3, 4, seed=0)
    with pytest.raises(ValueError, match="lanes"):
        SynapseStage(layer, lanes=0)


# --- time bins and input map ----------------------------------------------------------------
def _pass(dut, beats, *, idle_prob=0.0, backpressure=0.0, drain=10, counters=()):
    """``beats`` into ``dut.i`` (``idle_prob`` idle cycles, seed 1) and ``dut.o`` out
    (``backpressure``, seed 2); ``drain`` cycles after the last input beat, the output beats and
    the value of each member named in ``counters``."""
    out, final = [], {}
    source = SimStreamSource(dut.i, beats, idle_prob=idle_prob, seed=1)
    sink = SimStreamSink(dut.o, backpressure_prob=backpressure, seed=2, on_beat=out.append)

    async def wait(ctx):
        await source_done(ctx, source)
        for _ in range(drain):
            await ctx.tick()
        final.update({name: ctx.get(getattr(dut, name)) for name in counters})

    run_simulation(dut, [source.run, wait], background=[sink.run])
    return out, final


def test_time_bins_closes_steps_and_drops():
    tb_dut = TimeBinController(n_inputs=6, bin_ticks=10, n_steps=4)
    beats = [
        {"kind": 0, "channel": 1, "tick": 3},
        {"kind": 0, "channel": 2, "tick": 3},   # equal tick: accepted
        {"kind": 0, "channel": 6, "tick": 4},   # out of range: dropped
        {"kind": 0, "channel": 3, "tick": 2},   # backwards: dropped
        {"kind": 0, "channel": 4, "tick": 25},  # closes steps 0 and 1
        {"kind": 0, "channel": 5, "tick": 39},
        {"kind": 0, "channel": 0, "tick": 40},  # beyond 4 steps: late
        {"kind": 1, "channel": 0, "tick": 0},   # end: close step 3 with last
        {"kind": 0, "channel": 0, "tick": 0},   # next sample starts at tick 0 again
        {"kind": 1, "channel": 0, "tick": 0},
    ]
    out, final = _pass(tb_dut, beats, idle_prob=0.3, backpressure=0.4, drain=20,
                       counters=("dropped_backwards", "dropped_out_of_range", "dropped_late", "step"))
    text = [("C" + ("L" if b["last"] else "")) if b["close"] else b["index"] for b in out]
    assert text == [1, 2, "C", "C", 4, "C", 5, "CL", 0, "C", "C", "C", "CL"]
    assert final == {"dropped_backwards": 1, "dropped_out_of_range": 1, "dropped_late": 1, "step": 0}


def test_time_bins_drops_events_over_the_step_bound():
    dut = TimeBinController(n_inputs=4, bin_ticks=10, n_steps=2, max_events_per_step=2)
    beats = [{"kind": 0, "channel": c, "tick": t} for c, t in ((0, 1), (1, 2), (2, 3), (3, 9), (1, 10), (2, 11))]
    beats.append({"kind": 1, "channel": 0, "tick": 0})
    out, final = _pass(dut, beats, counters=("dropped_over_bound",))
    assert [("C" if b["close"] else b["index"]) for b in out] == [0, 1, "C", 1, 2, "C"]
    assert final["dropped_over_bound"] == 2


def test_input_map_matches_golden():
    imap = InputMap(sensor_size=(10, 7), pool=(3, 2), split_polarity=True)
    dut = InputMapper(imap)
    rng = np.random.default_rng(0)
    xs, ys, ps = rng.integers(0, 10, 40), rng.integers(0, 7, 40), rng.integers(0, 2, 40)
    beats = [{"kind": 0, "x": int(x), "y": int(y), "polarity": int(p), "tick": i} for i, (x, y, p) in
             enumerate(zip(xs, ys, ps))]
    beats.append({"kind": 0, "x": 10, "y": 0, "polarity": 0, "tick": 99})  # outside the sensor
    out, _ = _pass(dut, beats, idle_prob=0.3, backpressure=0.3)
    from golden.data.events import CAMERA_EVENT_DTYPE
    events = np.zeros(40, dtype=CAMERA_EVENT_DTYPE)
    events["x"], events["y"], events["p"], events["t"] = xs, ys, ps, np.arange(40)
    want = imap(events)["channel"]
    assert [b["channel"] for b in out[:40]] == [int(v) for v in want]
    assert [b["tick"] for b in out] == [b["tick"] for b in beats]
    assert out[40]["channel"] >= imap.n_channels


@pytest.mark.parametrize("n_sources,pool", [(700, 5), (13, 4), (9, 1)])
def test_channel_pooler_matches_golden(n_sources, pool):
    """Every source channel (ascending, then random), one beyond the sources, and an END beat,
    with idle cycles and backpressure; channels and ticks as ChannelPool gives them."""
    channel_pool = ChannelPool(n_sources=n_sources, pool=pool)
    dut = ChannelPooler(channel_pool)
    rng = np.random.default_rng(n_sources)
    sources = np.concatenate([np.arange(n_sources), rng.integers(0, n_sources, 30)])
    beats = [{"kind": 0, "channel": int(c), "tick": 3 * i} for i, c in enumerate(sources)]
    beats.append({"kind": 0, "channel": n_sources, "tick": 5000})  # outside the sources
    beats.append({"kind": 1, "channel": 0, "tick": 0})
    out, _ = _pass(dut, beats, idle_prob=0.3, backpressure=0.3)
    events = np.zeros(len(sources), dtype=CHANNEL_EVENT_DTYPE)
    events["channel"], events["t"] = sources, 3 * np.arange(len(sources))
    want = channel_pool(events)
    n = len(sources)
    assert [b["channel"] for b in out[:n]] == [int(v) for v in want["channel"]]
    assert [b["tick"] for b in out] == [b["tick"] for b in beats]
    assert [b["kind"] for b in out] == [b["kind"] for b in beats]
    assert out[n]["channel"] >= channel_pool.n_channels


# --- whole processor ------------------------------------------------------------------------
def simulate_processor(params, beats, *, n_steps, lanes=1, cores=None, idle_prob=0.0, backpressure=0.0, seed=0,
                       max_cycles=200_000, n_samples=1, all_scores=None):
    """Drive ``beats`` into a NetworkProcessor; return ``(observed, counters, cycles)``."""
    dut = NetworkProcessor(params, n_steps=n_steps, lanes=lanes, cores=cores)
    n_hidden = len(dut.hidden)
    observed = Observed(n_hidden=n_hidden, n_classes=params.n_classes)
    scores = []
    source = SimStreamSource(dut.i, beats, idle_prob=idle_prob, seed=seed)
    sink = SimStreamSink(dut.o_scores, backpressure_prob=backpressure, seed=seed + 1, on_beat=scores.append)
    counters = {}
    cycles = {}
    # The spiking layers' cores and the leaky-integrator readout core have no read-after-write
    # compare (hazard_check=False): the processor must never offer a core a neuron whose
    # previous update is still in flight.
    cores = [core for layer in dut.hidden for core in layer.cores]
    if not dut.flames:
        cores.append(dut.readout.core)
    in_flight = [set() for _ in cores]

    async def monitor(ctx):
        n = 0
        while n < max_cycles:
            await ctx.tick()
            n += 1
            for core, pending in zip(cores, in_flight):
                update = core.o_state
                if ctx.get(update.valid) and ctx.get(update.ready):
                    pending.discard(ctx.get(update.payload.neuron))
                beat = core.input_stream
                if ctx.get(beat.valid) and ctx.get(beat.ready):
                    neuron = ctx.get(beat.payload.neuron)
                    assert neuron not in pending, f"neuron {neuron} offered again while in flight, cycle {n}"
                    pending.add(neuron)
            for k in range(n_hidden):
                tap = ctx.get(dut.layer_taps[f"layer_{k}"])
                if tap.valid:
                    observed.layer_beat(k, tap.close, tap.last, tap.index)
            if dut.flames:
                tap = ctx.get(dut.memory_state_tap)
                if tap.valid:
                    observed.memory_state_beat(tap.channel, tap.mode, tap.re, tap.im)
                tap = ctx.get(dut.memory_output_tap)
                if tap.valid:
                    observed.memory_output_beat(tap.channel, tap.dt, tap.y, tap.spike, tap.saturated)
            else:
                tap = ctx.get(dut.readout_tap)
                if tap.valid:
                    observed.readout_beat(int(tap.neuron), int(tap.u))
            if len(scores) >= n_samples and source.done:
                break
        cycles["total"] = n
        for _ in range(5):
            await ctx.tick()
        counters["current_saturation"] = list(ctx.get(dut.current_saturation))
        counters["neuron_saturation"] = list(ctx.get(dut.neuron_saturation))
        if dut.flames:
            counters["clipped_interval"] = ctx.get(dut.clipped_interval)
            counters["backwards_tick"] = ctx.get(dut.backwards_tick)
        for name in ("dropped_backwards", "dropped_out_of_range", "dropped_late"):
            counters[name] = ctx.get(getattr(dut, name))

    run_simulation(dut, [monitor], background=[source.run, sink.run])
    if scores:
        observed.scores_beat(scores[0])
    if all_scores is not None:
        all_scores += [scores_of(beat) for beat in scores]
    return observed, counters, cycles["total"]


def check_processor(params, counts, *, lanes=1, cores=None, idle_prob=0.0, backpressure=0.0, seed=0):
    expected = expected_from_counts(params, counts)
    beats = counts_to_beats(counts, params.bin_ticks, seed=seed)
    observed, counters, _ = simulate_processor(params, beats, n_steps=counts.shape[0], lanes=lanes, cores=cores,
                                               idle_prob=idle_prob, backpressure=backpressure, seed=seed)
    errors = compare(expected, observed, counters=counters)
    assert not errors, "\n".join(errors)
    return expected


@pytest.mark.parametrize("lanes", [1, 3])
def test_processor_per_layer_weight_formats(lanes):
    """A scaled 9-bit layer (shift 14), a 4-bit layer (shift 1) and a tied readout, bit for bit."""
    params = mixed_format_network(31)
    assert [layer.current_shift for layer in params.layers] == [14, 1, 0]
    assert [layer.weight_fmt.width for layer in params.layers] == [9, 4, 13] and params.layers[0].scaled
    counts = random_counts(params, 10, seed=32)
    expected = check_processor(params, counts, lanes=lanes, backpressure=0.2, seed=lanes)
    trace = run_network(params, counts)
    assert all(trace.layers[k].spikes.any() for k in (0, 1))  # both hidden layers take part
    assert expected.scores == [int(v) for v in trace.scores]


@pytest.mark.parametrize("kind", ["refractory_lif", "silif", "csilif"])
def test_processor_one_hidden_layer(kind):
    params = random_network(1, hidden=((kind, 9),))
    counts = random_counts(params, 8, seed=2)
    expected = check_processor(params, counts, idle_prob=0.2, backpressure=0.3, seed=3)
    spiked = sum(len(row) for row in expected.spikes[0])
    assert 0 < spiked < 8 * 9, "the test network should spike sometimes, not always"


def test_processor_two_hidden_layers_with_saturation():
    params = random_network(5, hidden=(("refractory_lif", 11), ("csilif", 6)), readout_int_bits=2)
    counts = random_counts(params, 7, seed=6)
    expected = check_processor(params, counts, seed=7)
    assert sum(expected.current_saturation) + sum(expected.neuron_saturation) > 0


def test_processor_pools_source_channels():
    """A network with a channel pool takes source channel events (and drops one beyond the
    sources): spikes, membranes, scores and counters as run_network on the pooled events."""
    import dataclasses

    params = random_network(3, n_inputs=5, hidden=(("silif", 7),))
    params = dataclasses.replace(params, channel_pool=ChannelPool(n_sources=14, pool=3))
    rng = np.random.default_rng(4)
    n_steps = 6
    ticks = np.sort(rng.integers(0, n_steps * params.bin_ticks, 40))
    sources = rng.integers(0, 14, 40)
    events = np.zeros(40, dtype=CHANNEL_EVENT_DTYPE)
    events["channel"], events["t"] = sources, ticks
    expected = expected_from_trace(run_network(params, events, n_steps=n_steps))
    beats = [{"kind": 0, "channel": int(c), "tick": int(t)} for c, t in zip(sources, ticks)]
    beats.insert(10, {"kind": 0, "channel": 14, "tick": int(ticks[9])})  # beyond the sources: dropped
    beats.append({"kind": 1, "channel": 0, "tick": 0})
    observed, counters, _ = simulate_processor(params, beats, n_steps=n_steps, idle_prob=0.2, backpressure=0.2,
                                               seed=5)
    errors = compare(expected, observed)
    assert not errors, "\n".join(errors)
    assert counters["dropped_out_of_range"] == 1


@pytest.mark.parametrize("lanes", [2, 4, 16])
def test_processor_lanes(lanes):
    params = random_network(8, hidden=(("silif", 10), ("refractory_lif", 7)))
    counts = random_counts(params, 6, seed=9)
    check_processor(params, counts, lanes=lanes, idle_prob=0.1, backpressure=0.2, seed=10)


@pytest.mark.parametrize("lanes,cores,hidden", [
    (4, 1, (("silif", 10), ("refractory_lif", 7))),  # 4 lanes into one core; layer 1: 3 rows, the last partial
    (4, 2, (("csilif", 9), ("refractory_lif", 12))),
    (8, 2, (("refractory_lif", 19), ("silif", 8))),  # 3 rows of 8; cores of 10 and 9 neurons
    (16, 4, (("refractory_lif", 37), ("csilif", 8))),  # layer 0: cores of 10, 9, 9, 9; layer 1 caps lanes at 8
])
def test_processor_lanes_and_cores(lanes, cores, hidden):
    """Fewer neuron cores than synapse lanes: every spike, membrane, score and counter exact."""
    params = random_network(20 + lanes + cores, hidden=hidden)
    counts = random_counts(params, 5, seed=lanes + cores)
    expected = check_processor(params, counts, lanes=lanes, cores=cores, idle_prob=0.1, backpressure=0.3, seed=11)
    assert 0 < sum(len(row) for row in expected.spikes[0]), "layer 0 should spike"


def test_spiking_layer_places_neurons_in_cores():
    """Neuron i in core i % cores at local index i // cores: the cores' parameter slices say so."""
    from hw.processor.network import SpikingLayer

    params = random_network(6, hidden=(("silif", 19),))
    layer = SpikingLayer(params.layers[0], lanes=8, cores=2)
    assert (layer.lanes, layer.n_cores, layer.synapse.rows) == (8, 2, 3)
    assert [core.n_neurons for core in layer.cores] == [10, 9]
    np.testing.assert_array_equal(layer.cores[1].params.alpha_q, params.layers[0].neuron.alpha_q[1::2])
    Fragment.get(layer, None)  # it elaborates (and its synapse and cores are used, no UnusedElaboratable)


@pytest.mark.parametrize("lanes,cores", [(1, 1), (3, 3), (4, 2)])
def test_processor_two_samples_start_from_zero_state(lanes, cores):
    params = random_network(12, hidden=(("refractory_lif", 8), ("csilif", 5)))
    samples = [random_counts(params, 5, seed=s) for s in (13, 14)]
    expected = [expected_from_counts(params, c) for c in samples]
    beats = counts_to_beats(samples[0], params.bin_ticks, seed=1) + counts_to_beats(samples[1], params.bin_ticks, seed=2)
    scores = []
    observed, _, _ = simulate_processor(params, beats, n_steps=5, lanes=lanes, cores=cores, n_samples=2,
                                        all_scores=scores, backpressure=0.2, seed=3)
    assert scores == [(e.scores, e.argmax) for e in expected]
    for k in range(2):
        got = [sorted(row) for row in observed.spikes[k][:-1]]
        assert got == expected[0].spikes[k] + expected[1].spikes[k]
    np.testing.assert_array_equal(np.asarray(observed.readout_rows),
                                  np.concatenate([expected[0].readout_u, expected[1].readout_u]))


def test_processor_readout_only():
    params = random_network(3, hidden=())
    counts = random_counts(params, 5, seed=4)
    check_processor(params, counts, seed=5)


def test_processor_checker_catches_one_bit():
    params = random_network(1, hidden=(("refractory_lif", 9),))
    counts = random_counts(params, 6, seed=2)
    expected = expected_from_counts(params, counts)
    beats = counts_to_beats(counts, params.bin_ticks)
    observed, counters, _ = simulate_processor(params, beats, n_steps=6)
    assert not compare(expected, observed, counters=counters)
    expected.readout_u[3, 1] ^= 1
    assert any("readout step 3 neuron 1" in e for e in compare(expected, observed))
    expected.readout_u[3, 1] ^= 1
    expected.spikes[0][2] = sorted(set(expected.spikes[0][2]) ^ {4})
    assert any("layers[0] step 2" in e for e in compare(expected, observed))


def test_processor_drops_bad_events_like_golden():
    params = random_network(2, hidden=(("refractory_lif", 5),))
    counts = random_counts(params, 4, seed=1, empty_prob=0.0)
    beats = counts_to_beats(counts, params.bin_ticks, seed=2)
    end = beats.pop()
    first = next(k for k, b in enumerate(beats) if b["tick"] > 0)
    bad = [{"kind": 0, "channel": params.n_inputs, "tick": beats[first]["tick"]},  # out of range
           {"kind": 0, "channel": 1, "tick": beats[first]["tick"] - 1}]  # backwards
    beats = beats[:first + 1] + bad + beats[first + 1:]
    beats += [{"kind": 0, "channel": 0, "tick": 4 * params.bin_ticks + 3}, end]  # beyond the sample
    expected = expected_from_counts(params, counts)
    observed, counters, _ = simulate_processor(params, beats, n_steps=4, idle_prob=0.2, seed=3)
    assert not compare(expected, observed, counters=counters)
    assert (counters["dropped_out_of_range"], counters["dropped_backwards"], counters["dropped_late"]) == (1, 1, 1)


def test_lane_params_slice_every_neuron_array():
    params = random_network(4, hidden=(("silif", 7),))
    neuron = params.layers[0].neuron
    parts = [lane_params(neuron, lane, 3) for lane in range(3)]
    assert [p.n_neurons for p in parts] == [3, 2, 2]
    np.testing.assert_array_equal(parts[1].alpha_q, neuron.alpha_q[1::3])


def test_board_top_elaborates_from_a_model_file(tmp_path):
    """The ULX3S top (PLL, UART pins, link, processor) prepares for the 85F from a saved model."""
    from golden.model_file import save_model
    from golden.network import default_network
    from hw.boards.ulx3s import BOARD_CLOCK_HZ, ulx3s_platform
    from hw.build import processor_top
    from hw.pll_ecp5 import solve_pll

    path = save_model(tmp_path / "default", default_network())
    design, top = processor_top(str(path), "85F", solve_pll(BOARD_CLOCK_HZ, 100e6), n_steps=32, lanes=2)
    assert "162-32-10" in design and "lanes=2" in design
    ulx3s_platform("85F").prepare(top)


def test_processor_rejects_bad_arguments():
    params = random_network(1)
    with pytest.raises(ValueError, match="lanes"):
        NetworkProcessor(params, n_steps=4, lanes=0)
    with pytest.raises(ValueError, match="cores"):
        NetworkProcessor(params, n_steps=4, lanes=4, cores=0)
    with pytest.raises(ValueError, match=r"cores \(3\) must divide lanes \(4\)"):
        NetworkProcessor(params, n_steps=4, lanes=4, cores=3)
    with pytest.raises(ValueError, match="cores"):
        NetworkProcessor(params, n_steps=4, lanes=4, cores=2.0)
    with pytest.raises(ValueError, match="input_map"):
        NetworkProcessor(params, n_steps=4, camera_input=True)
    with pytest.raises(ValueError, match="n_steps"):
        TimeBinController(n_inputs=4, bin_ticks=10, n_steps=0)


# --- DH-LIF layers --------------------------------------------------------------------------
def dhlif_counts(params, n_steps, seed):
    """Random counts, with one step of every allowed event on the input of the largest weight
    (its branch drive clamps)."""
    counts = random_counts(params, n_steps, seed=seed)
    counts[2] = 0
    counts[2, int(np.abs(params.layers[0].weight_q).max(axis=0).argmax())] = params.max_events_per_step
    return counts


@pytest.mark.parametrize("then,lanes,cores", [
    ((), 1, None),
    ((), 3, None),  # 3 lanes: rows of 3, the last partial
    ((("silif", 6),), 4, 2),  # two lanes into each DH-LIF core, then a SiLIF layer
])
def test_processor_dhlif_layer(then, lanes, cores):
    """dhlif -> [silif ->] li_readout: the branch sums, every spike, readout membrane, score and
    counter bit for bit."""
    params = dhlif_network(40 + lanes, then=then)
    counts = dhlif_counts(params, 8, seed=41)
    expected = check_processor(params, counts, lanes=lanes, cores=cores, idle_prob=0.1, backpressure=0.2,
                               seed=lanes)
    spiked = sum(len(row) for row in expected.spikes[0])
    assert 0 < spiked < 8 * params.layers[0].n_out, "the DH-LIF layer should spike sometimes, not always"
    assert expected.current_saturation[0] > 0 and expected.neuron_saturation[0] > 0
    if then:
        assert sum(len(row) for row in expected.spikes[1]) > 0, "the SiLIF layer should spike"


def test_processor_dhlif_layer_after_a_spiking_layer():
    """refractory_lif -> dhlif -> li_readout: the branch sums of spikes (a 0/1 vector per step)."""
    params = dhlif_network(43, before=(("refractory_lif", 10),), n_hidden=8)
    assert params.kinds == ["refractory_lif", "dhlif", "li_readout"]
    counts = random_counts(params, 8, seed=44)
    expected = check_processor(params, counts, lanes=2, idle_prob=0.1, backpressure=0.2, seed=45)
    assert 0 < sum(len(row) for row in expected.spikes[1]) < 8 * 8 and expected.neuron_saturation[1] > 0


@pytest.mark.parametrize("n_inputs,banks", [(10, 1), (300, 2)])
def test_synapse_branch_sums_match_the_dhlif_drives(n_inputs, banks):
    """The branched synapse alone: each lane beat carries a neuron's D clamped branch drives
    (golden.dhlif.branch_drives), from one weight bank or several."""
    from golden.dhlif import branch_drives
    from hw.cores.dhlif import DHLIFCore

    params = dhlif_network(50, n_inputs=n_inputs, n_hidden=5, n_branches=4)
    layer = params.layers[0]
    lanes = 2
    syn = SynapseStage(layer, lanes=lanes, branches=DHLIFCore.branch_inputs(layer.neuron))
    words = n_inputs * syn.rows
    assert -(-words // weight_bank_depth(words, lanes * layer.weight_fmt.width)) == banks
    counts = dhlif_counts(params, 4, seed=51)
    steps = [np.repeat(np.arange(row.size), row) for row in counts]
    got, saturation = _run_synapse(syn, steps, backpressure=0.3, sink_seed=5, source_seed=6)
    want, _ = branch_drives(layer.neuron, counts)
    trace = run_network(params, counts)
    for lane in range(lanes):
        beats = got[lane]
        n = syn.lane_neurons(lane)
        assert len(beats) == 4 * n
        for t in range(4):
            for r, beat in enumerate(beats[t * n:(t + 1) * n]):
                assert beat["neuron"] == r
                assert [beat[f"drive_{d}"] for d in range(4)] == [int(v) for v in want[t, r * lanes + lane]]
    assert saturation == trace.layers[0].current_saturation_count > 0
    with pytest.raises(ValueError, match="contiguous input slices"):
        SynapseStage(layer, branches={"drive_0": (slice(0, 4), layer.neuron.current_fmt)})


# --- FLAMES: DH-LIF -> SA-HiPPO memory -> event pooling ------------------------------------------
@pytest.mark.parametrize("lanes,cores,backpressure", [(1, None, 0.0), (3, None, 0.3), (4, 2, 0.2)])
def test_processor_flames_network(lanes, cores, backpressure):
    """dhlif -> sahippo -> event_pool: every DH-LIF spike, every mode beat and soma output of the
    memory (per channel, in event order), the scores, the decision and the counters (clipped
    intervals: dt_max = 3 steps) bit for bit, two samples back to back (the memory cleared between
    them)."""
    params = flames_example_network(60 + lanes)
    assert params.kinds == ["dhlif", "sahippo", "event_pool"]
    samples = [dhlif_counts(params, 10, seed=61 + k) for k in range(2)]
    expected = [expected_from_counts(params, counts) for counts in samples]
    beats = counts_to_beats(samples[0], params.bin_ticks, seed=1) + counts_to_beats(samples[1], params.bin_ticks, seed=2)
    assert all(sum(map(len, want.memory["outputs"].values())) > 10 for want in expected)
    assert sum(want.clipped_interval for want in expected) > 0
    all_scores = []
    observed, counters, _ = simulate_processor(params, beats, n_steps=10, lanes=lanes, cores=cores, idle_prob=0.1,
                                               backpressure=backpressure, seed=lanes, n_samples=2,
                                               all_scores=all_scores)
    assert [s for s, _ in all_scores] == [want.scores for want in expected]
    assert [a for _, a in all_scores] == [want.argmax for want in expected]
    # Spikes and memory beats of both samples together: the samples' traces concatenated.
    merged = expected_from_counts(params, samples[0])
    second = expected[1]
    merged.n_steps = 20
    merged.spikes = [a + b for a, b in zip(merged.spikes, second.spikes)]
    for part in ("states", "outputs"):
        for h, beats_h in second.memory[part].items():
            merged.memory[part].setdefault(h, []).extend(beats_h)
    merged.scores, merged.argmax = expected[0].scores, expected[0].argmax
    merged.current_saturation = [a + b for a, b in zip(expected[0].current_saturation, second.current_saturation)]
    merged.neuron_saturation = [a + b for a, b in zip(expected[0].neuron_saturation, second.neuron_saturation)]
    merged.clipped_interval = expected[0].clipped_interval + second.clipped_interval
    errors = compare(merged, observed, counters=counters)
    assert not errors, "\n".join(errors)
    assert counters["backwards_tick"] == 0


def test_processor_flames_checker_catches_one_bit():
    params = flames_example_network(70)
    counts = dhlif_counts(params, 8, seed=71)
    expected = check_processor(params, counts, lanes=2)
    h = min(expected.memory["states"])
    mode, re, im = expected.memory["states"][h][3]
    expected.memory["states"][h][3] = (mode, re ^ 1, im)
    observed, counters, _ = simulate_processor(params, counts_to_beats(counts, params.bin_ticks), n_steps=8, lanes=2)
    assert any(f"memory states channel {h} beat 3" in e for e in compare(expected, observed, counters=counters))


def test_processor_runs_the_flames_tail_only_at_the_end():
    params = flames_example_network(80)
    dendrites, memory, pool = params.layers
    assert processor_runs("sahippo") and processor_runs("event_pool")
    rng = np.random.default_rng(81)
    pool_on_spikes = replace(pool, weight_q=rng.integers(-99, 99, (pool.n_out, dendrites.n_out)), acc_bits=None)
    with pytest.raises(ValueError, match=r"layers\[1\]: the processor runs event_pool layers only as the end"):
        check_processor_runs(NetworkParams(n_inputs=params.n_inputs, bin_ticks=params.bin_ticks, layers=[
            replace(dendrites, acc_bits=None), pool_on_spikes], max_events_per_step=params.max_events_per_step))
    with pytest.raises(ValueError, match="score_fmt"):
        NetworkProcessor(params, n_steps=4, score_fmt=QFormat(20, 10))


def test_processor_flames_bad_input_is_counted():
    """A memory that saturates (state sQ3.14), a weight beyond input_fmt (channel 0) and intervals
    beyond dt_max: counted per layer exactly as the golden network counts them."""
    params = flames_example_network(90, state_fmt=QFormat.parse("sQ3.14"), clamped_weight=True, dt_max=2)
    counts = dhlif_counts(params, 10, seed=91)
    expected = check_processor(params, counts, lanes=2, backpressure=0.2, seed=3)
    assert expected.current_saturation[1] > 0, "channel 0's weight clamps at each of its events"
    assert expected.neuron_saturation[1] > 0, "the narrow memory state clamps"
    assert expected.clipped_interval > 0
