"""C-SiLIF core under amaranth.sim against the golden integer model, exactly (every state word,
every spike, the saturation counter), with idle cycles and backpressure."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.back import verilog

from golden.csilif import CSiLIFParams
from golden.fixed import QFormat
from hw.cores.csilif import CSiLIFCore
from sim.checker import MismatchError
from sim.harness import STALLS, simulate_case, simulate_flipped
from sim.tb_csilif import CSILIF_KIND, load_corner_cases, random_case


@pytest.mark.parametrize("stalls", list(STALLS))
def test_random_layer(stalls):
    idle_prob, backpressure_prob = STALLS[stalls]
    simulate_case(random_case(1, 16, 20), idle_prob=idle_prob, backpressure_prob=backpressure_prob, seed=3)


@pytest.mark.parametrize("n_neurons", [1, 2, 3])
def test_read_after_write_stall(n_neurons):
    """Fewer neurons than the hazard window: every beat waits for its own previous update (one
    neuron: the same neuron offered on consecutive cycles; two: one cycle apart)."""
    simulate_case(random_case(2, n_neurons, 10, shuffle=False), backpressure_prob=0.2, seed=5)


def accept_cycles(n_neurons, steps):
    """Offer ``steps`` updates of neurons ``0, 1, .., n_neurons - 1`` back to back with the
    outputs always ready; return the cycle in which each was accepted."""
    params = random_case(8, n_neurons, 1).params
    case = CSILIF_KIND.case("back_to_back", params, np.full((steps, n_neurons), 1 << 12))
    return simulate_case(case).accepted_at["i_current"]


@pytest.mark.parametrize("n_neurons", [1, 2, CSiLIFCore.hazard_stages, CSiLIFCore.hazard_stages + 1])
def test_hazard_stall_timing(n_neurons):
    """A neuron is accepted again exactly ``hazard_stages + 1`` cycles after its previous update
    (its write-back is then one cycle old: the read port is not transparent), never sooner; with
    more neurons than the window, one update per clock."""
    accepted = accept_cycles(n_neurons, 4)
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
            case = random_case(2, n_neurons, 10, shuffle=False)
            simulate_case(case, core=ShortStall(case.params))


def test_other_formats_and_spikes_only():
    """Narrow states (saturation), a 16-bit coefficient and another input alignment; no o_state."""
    formats = dict(
        input_fmt=QFormat(4, 10), state_fmt=QFormat(4, 9), coef_fmt=QFormat(1, 15), gain_fmt=QFormat(3, 13)
    )
    case = random_case(4, 5, 24, drive=3.0, **formats)
    assert case.golden().saturation_count > 0
    simulate_case(case, core=case.core(emit_state=False), idle_prob=0.2, backpressure_prob=0.3, seed=7)


@pytest.mark.parametrize("case", load_corner_cases(), ids=lambda case: case.name)
def test_corner_vectors(case):
    simulate_case(case, idle_prob=0.1, backpressure_prob=0.2, seed=11)


def test_full_throughput():
    """With the outputs always ready and enough neurons, one update per clock after the latency."""
    case = random_case(5, CSiLIFCore.hazard_stages + 1, 6, shuffle=False)
    cycles = simulate_case(case).cycles
    assert cycles <= case.steps * case.params.n_neurons + CSiLIFCore.latency + 2


def test_checker_catches_one_bit():
    """Flip one bit of one expected state word: the run must report exactly that beat and field."""
    flip = {"port": "o_state", "field": "im", "bit": 0, "step": 4, "neuron": 2}
    simulate_flipped(random_case(6, 4, 8), flip)


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
