# amaranth: UnusedElaboratable=no
"""amaranth.sim unit tests of the refractory LIF core against the golden integer model, bit for bit."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.fixed import QFormat

from hw.cores.refractory_lif import RefractoryLIFCore
from sim.checker import MismatchError, Scoreboard, check_value, finish_all
from sim.refractory_lif_model import (
    NARROW_FORMATS,
    RefractoryLIFModel,
    beat_order,
    load_corner_vectors,
    random_currents,
    random_params,
)
from sim.stream import SimStreamSink, SimStreamSource

def simulate(model, *, emit_state=True, idle_prob=0.0, backpressure_prob=0.0, seed=0, perturb=None, core_class=RefractoryLIFCore):
    """Run ``model``'s stimulus through the core; raise ``MismatchError`` on any difference.

    ``perturb(state_expectations)`` may edit the expected state beats before the run (to prove
    the checker can fail).
    """
    core = core_class(model.params, emit_state=emit_state)
    states = Scoreboard("o_state")
    spikes = Scoreboard("o_spike")
    expected_states = model.expected_states()
    if perturb is not None:
        perturb(expected_states)
    if emit_state:
        states.expect_all(expected_states)
    spikes.expect_all(model.expected_spikes())

    source = SimStreamSource(core.i_current, model.input_beats(), idle_prob=idle_prob, seed=seed)
    sinks = [SimStreamSink(core.o_spike, backpressure_prob=backpressure_prob, seed=seed + 1, on_beat=spikes.observe)]
    if emit_state:
        sinks.append(SimStreamSink(core.o_state, backpressure_prob=backpressure_prob, seed=seed + 2, on_beat=states.observe))
    final = {}

    async def drain(ctx):
        budget = 20 * len(model.order) + 200
        while not source.done or spikes.outstanding or states.outstanding:
            await ctx.tick()
            budget -= 1
            if budget == 0:
                break
        await ctx.tick().repeat(4 * core.latency)  # room for any extra beat to show up
        final["saturation_count"] = ctx.get(core.saturation_count)

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(source.run)
    for sink in sinks:
        sim.add_testbench(sink.run, background=True)
    sim.add_testbench(drain)
    sim.run()
    model.source_cycles = source.cycles
    finish_all(
        [states, spikes], check_value("saturation_count", model.saturation_count, final["saturation_count"])
    )
    return model


@pytest.mark.parametrize("idle_prob,backpressure_prob", [(0.0, 0.0), (0.3, 0.0), (0.0, 0.4), (0.3, 0.4)])
def test_small_random_matches_golden(idle_prob, backpressure_prob):
    params = random_params(12, seed=1)
    currents = random_currents(params, 10, seed=2)
    model = RefractoryLIFModel(params, currents, beat_order(10, 12, shuffle=True, seed=3))
    simulate(model, idle_prob=idle_prob, backpressure_prob=backpressure_prob, seed=4)
    assert model.trace.s.any() and not model.trace.s.all()


@pytest.mark.parametrize("n_neurons", [1, 2, 5])
@pytest.mark.parametrize("backpressure_prob", [0.0, 0.5])
def test_hazard_fewer_neurons_than_pipeline(n_neurons, backpressure_prob):
    assert n_neurons <= RefractoryLIFCore.hazard_stages
    params = random_params(n_neurons, seed=n_neurons)
    model = RefractoryLIFModel(params, random_currents(params, 12, seed=5))
    simulate(model, backpressure_prob=backpressure_prob, seed=6)


def test_full_rate_and_latency():
    """Enough neurons per step: one update per clock; a beat's output transfers `latency` edges after it."""
    n_neurons = RefractoryLIFCore.hazard_stages + 1
    params = random_params(n_neurons, seed=17)
    model = simulate(RefractoryLIFModel(params, random_currents(params, 6, seed=18)))
    assert model.source_cycles == 6 * n_neurons

    core = RefractoryLIFCore(params)
    waited = []

    async def one_beat(ctx):
        ctx.set(core.o_state.ready, 1)
        ctx.set(core.i_current.payload, {"neuron": 0, "current": 1})
        ctx.set(core.i_current.valid, 1)
        await ctx.tick().until(core.i_current.ready)  # accepted on this edge
        ctx.set(core.i_current.valid, 0)
        edges = 0
        while True:  # count clock edges up to the one that transfers the state beat
            _, _, transferred = await ctx.tick().sample(core.o_state.valid)
            edges += 1
            if transferred:
                break
        waited.append(edges)

    sim = Simulator(core)
    sim.add_clock(1e-8)
    sim.add_testbench(one_beat)
    sim.run()
    assert waited == [core.latency]


def test_hazard_window_is_tight():
    """One stall stage fewer and a single neuron reads its state before the write-back lands."""

    class ShortStall(RefractoryLIFCore):
        hazard_stages = RefractoryLIFCore.hazard_stages - 1

    params = random_params(1, seed=1)
    model = RefractoryLIFModel(params, random_currents(params, 4, seed=5))
    with pytest.raises(MismatchError, match="field 'v'"):
        simulate(model, core_class=ShortStall)


@pytest.mark.parametrize("idle_prob,backpressure_prob", [(0.0, 0.0), (0.25, 0.35)])
def test_narrow_formats_saturate_at_both_ends(idle_prob, backpressure_prob):
    params = random_params(16, seed=7, **NARROW_FORMATS)
    currents = random_currents(params, 12, seed=8, spread=4.0)
    model = RefractoryLIFModel(params, currents, beat_order(12, 16, shuffle=True, seed=9))
    simulate(model, idle_prob=idle_prob, backpressure_prob=backpressure_prob, seed=10)
    tr = model.trace
    state_fmt, refr_fmt = params.state_fmt, params.refr_fmt
    assert (tr.v == state_fmt.max_int).any() and (tr.v == state_fmt.min_int).any()
    assert (tr.refr == refr_fmt.max_int).any() and (tr.refr == refr_fmt.min_int).any()
    assert model.saturation_count > 0


@pytest.mark.parametrize(
    "formats",
    [
        # 40-bit state: three 18-bit multiplier slices per product.
        dict(input_fmt="sQ16.20", state_fmt="sQ20.20", refr_fmt="sQ12.20", threshold_fmt="sQ8.20", coef_fmt="uQ0.18"),
        # 17-bit decays beside a 24-bit state: two slices.
        dict(input_fmt="sQ8.16", state_fmt="sQ8.16", refr_fmt="sQ8.16", threshold_fmt="sQ8.16", coef_fmt="uQ0.17"),
        # everything fits one multiplier: a single product.
        dict(input_fmt="sQ4.12", state_fmt="sQ4.12", refr_fmt="sQ4.12", threshold_fmt="sQ4.12", coef_fmt="uQ0.16"),
        # 18-bit decays beside a 10-bit state: too narrow to slice, a single (Yosys-split) product.
        dict(input_fmt="sQ3.7", state_fmt="sQ3.7", refr_fmt="sQ3.7", threshold_fmt="sQ3.7", coef_fmt="uQ0.18"),
    ],
    ids=["three_slices", "coef17", "one_multiplier", "unsliceable"],
)
def test_product_slicing_across_formats(formats):
    formats = {name: QFormat.parse(text) for name, text in formats.items()}
    params = random_params(9, seed=19, **formats)
    model = RefractoryLIFModel(params, random_currents(params, 10, seed=20, spread=3.0), beat_order(10, 9, shuffle=True))
    simulate(model, backpressure_prob=0.2, seed=21)


def test_spike_only_core():
    params = random_params(8, seed=11)
    model = RefractoryLIFModel(params, random_currents(params, 8, seed=12))
    simulate(model, emit_state=False, backpressure_prob=0.3, seed=13)


@pytest.mark.parametrize("case", load_corner_vectors(), ids=lambda case: case["name"])
def test_corner_vectors(case):
    model = RefractoryLIFModel(case["params"], case["currents_q"])
    simulate(model, backpressure_prob=0.2, seed=14)


def test_checker_reports_one_flipped_bit():
    params = random_params(6, seed=15)
    model = RefractoryLIFModel(params, random_currents(params, 4, seed=16))

    def flip(expected):
        record, context = next(item for item in expected if item[1] == {"step": 2, "neuron": 3})
        record["u"] ^= 1

    with pytest.raises(MismatchError) as info:
        simulate(model, perturb=flip)
    message = str(info.value)
    assert "step=2, neuron=3" in message and "field 'u'" in message
    assert len(info.value.mismatches) == 1


def test_rejects_wrong_params():
    with pytest.raises(TypeError, match="RefractoryLIFParams"):
        RefractoryLIFCore({"v_th_q": [1]})
