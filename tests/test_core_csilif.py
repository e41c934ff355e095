"""C-SiLIF core under amaranth.sim against the golden integer model, exactly (every state word,
every spike, the saturation counter), with idle cycles and backpressure."""

from __future__ import annotations

import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from golden.csilif import CSiLIFParams
from golden.fixed import QFormat
from hw.cores.csilif import CSiLIFCore
from sim.checker import MismatchError, Scoreboard, check_value, finish_all
from sim.stream import SimStreamSink, SimStreamSource
from sim.tb_csilif import CSiLIFCase, load_corner_cases, random_case


def run_core(
    case: CSiLIFCase, *, idle_prob=0.0, backpressure_prob=0.0, seed=0, emit_state=True, corrupt=None,
    core_class=CSiLIFCore,
):
    """Simulate ``case`` and raise ``MismatchError`` on any difference from the golden model.

    ``corrupt`` (optional) edits the expected state records before checking, to prove that the
    check can fail; ``core_class`` replaces the core (a deliberately broken one, for the same
    reason). Returns the number of cycles the run took.
    """
    dut = core_class(case.params, emit_state=emit_state)
    states, spikes, saturation_count = case.expected_beats(case.expected)
    if corrupt is not None:
        corrupt(states)
    boards = [Scoreboard("o_spike")]
    boards[0].expect_all(spikes)
    source = SimStreamSource(dut.i_current, case.input_beats(), idle_prob=idle_prob, seed=seed)
    sinks = [SimStreamSink(dut.o_spike, backpressure_prob=backpressure_prob, seed=seed + 1, on_beat=boards[0].observe)]
    if emit_state:
        boards.append(Scoreboard("o_state"))
        boards[1].expect_all(states)
        sinks.append(
            SimStreamSink(dut.o_state, backpressure_prob=backpressure_prob, seed=seed + 2, on_beat=boards[1].observe)
        )
    final = {}

    async def main(ctx):
        budget = 40 * (len(states) + 20)
        for cycle in range(budget):
            if source.done and all(board.outstanding == 0 for board in boards):
                break
            await ctx.tick()
        await ctx.tick().repeat(CSiLIFCore.latency + 4)  # let any extra beat show up
        final["cycles"] = cycle
        final["saturation_count"] = ctx.get(dut.saturation_count)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source.run)
    for sink in sinks:
        sim.add_testbench(sink.run, background=True)
    sim.add_testbench(main)
    sim.run()
    finish_all(boards, check_value("saturation_count", saturation_count, final["saturation_count"]))
    return final["cycles"]


TRAFFIC = [(0.0, 0.0), (0.3, 0.0), (0.0, 0.4), (0.25, 0.35)]


@pytest.mark.parametrize("idle_prob,backpressure_prob", TRAFFIC)
def test_random_layer(idle_prob, backpressure_prob):
    run_core(random_case(1, 16, 20), idle_prob=idle_prob, backpressure_prob=backpressure_prob, seed=3)


@pytest.mark.parametrize("n_neurons", [1, 2, 3])
def test_read_after_write_stall(n_neurons):
    """Fewer neurons than the hazard window: every beat waits for its own previous update (one
    neuron: the same neuron offered on consecutive cycles; two: one cycle apart)."""
    run_core(random_case(2, n_neurons, 10, shuffle=False), backpressure_prob=0.2, seed=5)


def accept_cycles(n_neurons, beats):
    """Offer ``beats`` updates of neurons ``0, 1, .., n_neurons - 1, 0, ..`` back to back with
    the outputs always ready; return the cycle in which each was accepted."""
    dut = CSiLIFCore(random_case(8, n_neurons, 1).params)
    accepted = []

    async def bench(ctx):
        ctx.set(dut.o_state.ready, 1)
        ctx.set(dut.o_spike.ready, 1)
        cycle = 0
        while len(accepted) < beats:
            ctx.set(dut.i_current.payload, {"neuron": len(accepted) % n_neurons, "current": 1 << 12})
            ctx.set(dut.i_current.valid, 1)
            _, _, ready = await ctx.tick().sample(dut.i_current.ready)
            if ready:
                accepted.append(cycle)
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return accepted


@pytest.mark.parametrize("n_neurons", [1, 2, CSiLIFCore.hazard_stages, CSiLIFCore.hazard_stages + 1])
def test_hazard_stall_timing(n_neurons):
    """A neuron is accepted again exactly ``hazard_stages + 1`` cycles after its previous update
    (its write-back is then one cycle old: the read port is not transparent), never sooner; with
    more neurons than the window, one update per clock."""
    accepted = accept_cycles(n_neurons, 4 * n_neurons)
    revisit = [accepted[k] - accepted[k - n_neurons] for k in range(n_neurons, len(accepted))]
    assert revisit == [max(n_neurons, CSiLIFCore.hazard_stages + 1)] * len(revisit)
    if n_neurons > CSiLIFCore.hazard_stages:
        assert accepted == list(range(len(accepted)))


def test_hazard_window_is_tight():
    """One stall stage fewer and a neuron reads its state in the cycle of its write-back, which
    the non-transparent read port misses: the check must report it."""

    class ShortStall(CSiLIFCore):
        hazard_stages = CSiLIFCore.hazard_stages - 1

    for n_neurons in (1, 2):
        with pytest.raises(MismatchError):
            run_core(random_case(2, n_neurons, 10, shuffle=False), core_class=ShortStall)


def test_other_formats_and_spikes_only():
    """Narrow states (saturation), a 16-bit coefficient and another input alignment; no o_state."""
    formats = dict(
        input_fmt=QFormat(4, 10), state_fmt=QFormat(4, 9), coef_fmt=QFormat(1, 15), gain_fmt=QFormat(3, 13)
    )
    case = random_case(4, 5, 24, drive=3.0, **formats)
    assert case.golden().saturation_count > 0
    run_core(case, idle_prob=0.2, backpressure_prob=0.3, seed=7, emit_state=False)


@pytest.mark.parametrize("case", load_corner_cases(), ids=lambda case: case.name)
def test_corner_vectors(case):
    run_core(case, idle_prob=0.1, backpressure_prob=0.2, seed=11)


def test_full_throughput():
    """With the outputs always ready and enough neurons, one update per clock after the latency."""
    case = random_case(5, CSiLIFCore.hazard_stages + 1, 6, shuffle=False)
    cycles = run_core(case)
    assert cycles <= case.steps * case.params.n_neurons + CSiLIFCore.latency + 2


def test_checker_catches_one_bit():
    """Flip one bit of one expected state word: the run must report exactly that field."""

    def flip(states):
        states[17][0]["im"] ^= 1

    with pytest.raises(MismatchError, match="'im'"):
        run_core(random_case(6, 4, 8), corrupt=flip)


def test_verilog_converts():
    core = CSiLIFCore(random_case(7, 4, 1).params)
    text = verilog.convert(core, name="csilif_core")
    assert "module csilif_core" in text


def test_bad_params_rejected():
    with pytest.raises(ValueError, match="inside the unit circle"):
        CSiLIFParams([(1 << 17) - 1], [1], [0])


@pytest.mark.slow
def test_ecp5_out_of_context_timing():
    """Yosys + nextpnr-ecp5 on the core alone (512 neurons, default formats): five products on
    nine MULT18X18D (two per split decay product, one for b*x) and >= 100 MHz post-route."""
    import json
    import subprocess

    from hw.toolchain import find_tool
    from sim.runner import REPO

    build = REPO / "build" / "csilif_ooc"
    build.mkdir(parents=True, exist_ok=True)
    (build / "csilif_core.v").write_text(
        verilog.convert(CSiLIFCore(random_case(0, 512, 1).params), name="csilif_core")
    )
    subprocess.run(
        [find_tool("yosys"), "-q", "-p", "read_verilog csilif_core.v; synth_ecp5 -top csilif_core -json csilif_core.json"],
        cwd=build, check=True, timeout=900,
    )
    subprocess.run(
        [
            find_tool("nextpnr-ecp5"), "--85k", "--package", "CABGA381", "--speed", "6", "--out-of-context",
            "--json", "csilif_core.json", "--freq", "100", "--seed", "1", "--report", "report.json",
            "--timing-allow-fail", "--quiet",
        ],
        cwd=build, check=True, timeout=900,
    )
    report = json.loads((build / "report.json").read_text())
    assert report["utilization"]["MULT18X18D"]["used"] == 9
    assert report["fmax"]["clk"]["achieved"] >= 100.0, report["fmax"]
