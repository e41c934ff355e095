# amaranth: UnusedElaboratable=no
"""amaranth.sim unit tests of the refractory LIF core against the golden integer model, bit for bit."""

import pytest
from amaranth.sim import Simulator

from golden.fixed import QFormat
from hw.cores.refractory_lif import RefractoryLIFCore
from sim.checker import MismatchError
from sim.harness import STALLS, simulate_case, simulate_flipped
from sim.tb_refractory_lif import NARROW_FORMATS, load_corner_cases, random_case


@pytest.mark.parametrize("stalls", list(STALLS))
def test_small_random_matches_golden(stalls):
    case = random_case(12, 10, seed=1, shuffle=True)
    idle_prob, backpressure_prob = STALLS[stalls]
    simulate_case(case, idle_prob=idle_prob, backpressure_prob=backpressure_prob, seed=4)
    trace = case.golden()
    assert trace.s.any() and not trace.s.all()


@pytest.mark.parametrize("n_neurons", [1, 2, 5])
@pytest.mark.parametrize("backpressure_prob", [0.0, 0.5])
def test_hazard_fewer_neurons_than_pipeline(n_neurons, backpressure_prob):
    assert n_neurons <= RefractoryLIFCore.hazard_stages
    simulate_case(random_case(n_neurons, 12, seed=n_neurons), backpressure_prob=backpressure_prob, seed=6)


def test_full_rate_and_latency():
    """Enough neurons per step: one update per clock; a beat's output transfers `latency` edges after it."""
    n_neurons = RefractoryLIFCore.hazard_stages + 1
    case = random_case(n_neurons, 6, seed=17)
    accepted = simulate_case(case).accepted_at["i_current"]
    assert accepted == list(range(6 * n_neurons))

    core = case.core()
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

    case = random_case(1, 4, seed=1)
    with pytest.raises(MismatchError, match="field 'v'"):
        simulate_case(case, core=ShortStall(case.params))


@pytest.mark.parametrize("stalls", ["full_rate", "idle_backpressure"])
def test_narrow_formats_saturate_at_both_ends(stalls):
    case = random_case(16, 12, seed=7, shuffle=True, spread=4.0, **NARROW_FORMATS)
    idle_prob, backpressure_prob = STALLS[stalls]
    simulate_case(case, idle_prob=idle_prob, backpressure_prob=backpressure_prob, seed=10)
    tr = case.golden()
    state_fmt, refr_fmt = case.params.state_fmt, case.params.refr_fmt
    assert (tr.v == state_fmt.max_int).any() and (tr.v == state_fmt.min_int).any()
    assert (tr.refr == refr_fmt.max_int).any() and (tr.refr == refr_fmt.min_int).any()
    assert tr.saturation_count > 0


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
    case = random_case(9, 10, seed=19, shuffle=True, spread=3.0, **formats)
    simulate_case(case, backpressure_prob=0.2, seed=21)


def test_spike_only_core():
    case = random_case(8, 8, seed=11)
    simulate_case(case, core=case.core(emit_state=False), backpressure_prob=0.3, seed=13)


@pytest.mark.parametrize("case", load_corner_cases(), ids=lambda case: case.name)
def test_corner_vectors(case):
    simulate_case(case, backpressure_prob=0.2, seed=14)


def test_checker_reports_one_flipped_bit():
    flip = {"port": "o_state", "field": "u", "bit": 0, "step": 2, "neuron": 3}
    simulate_flipped(random_case(6, 4, seed=15), flip)


def test_rejects_wrong_params():
    with pytest.raises(TypeError, match="RefractoryLIFParams"):
        RefractoryLIFCore({"v_th_q": [1]})


def test_without_hazard_check_a_neuron_is_not_stalled():
    """``hazard_check=False`` (for a parent that never re-offers a neuron in flight): a neuron
    offered again at once is taken and reads its state before the write-back lands."""
    case = random_case(1, 4, seed=1)
    with pytest.raises(MismatchError, match="field 'v'"):
        simulate_case(case, core=RefractoryLIFCore(case.params, hazard_check=False))
