"""DH-LIF core in amaranth.sim against the bit-exact golden model (every current, membrane and spike)."""

import dataclasses

import numpy as np
import pytest
from amaranth.back import verilog

from golden.dhlif import branch_drives
from golden.fixed import QFormat
from hw.cores.dhlif import DHLIFCore
from sim.harness import STALLS, simulate_case, simulate_flipped
from sim.tb_dhlif import DHLIF_KIND, random_case


@pytest.mark.parametrize(
    "n_neurons, in_features, n_branches, steps, stalls, shuffle",
    [
        (12, 16, 4, 12, "full_rate", False),  # default 4 branches
        (12, 16, 4, 10, "idle_backpressure", True),  # any order
        (3, 6, 2, 14, "backpressure", False),  # fewer neurons than hazard stages: stalls
        (DHLIFCore.hazard_stages + 1, 7, 1, 10, "full_rate", False),  # a read the cycle after the write-back; one branch
        (5, 9, 3, 10, "idle", True),  # uneven slices
    ],
)
def test_core_matches_golden(n_neurons, in_features, n_branches, steps, stalls, shuffle):
    case = random_case(n_neurons + in_features, n_neurons, in_features, n_branches, steps, shuffle=shuffle)
    idle_prob, backpressure_prob = STALLS[stalls]
    simulate_case(case, seed=1, idle_prob=idle_prob, backpressure_prob=backpressure_prob)
    assert case.golden().spike.any(), "test drive should make some neurons spike"


def test_core_saturates_both_ends_and_counts():
    """Narrow formats and large counts: currents and membrane reach both rails, drives are clamped."""
    fmt = QFormat(3, 8)
    case = random_case(
        4, 6, 8, 4, 12, rate=6.0, weight_fmt=QFormat(3, 8), current_fmt=fmt, membrane_fmt=QFormat(4, 8),
        decay_fmt=QFormat(0, 12, signed=False),
    )
    params, counts = case.params, case.inputs_q
    assert branch_drives(params, counts)[1].any(), "some drive should exceed the port format"
    simulate_case(case, seed=3, backpressure_prob=0.2)
    trace = case.golden()
    assert trace.saturation_count > 0
    assert (trace.current == fmt.max_int).any() and (trace.current == fmt.min_int).any()



@pytest.mark.parametrize("below_rail", [0, 1])
def test_core_spikes_at_the_membrane_rail_only_below_the_threshold(below_rail):
    """Membranes clamped at the top rail: they spike when the threshold is below the rail, never
    when the threshold is the rail itself (the strict compare is on the clamped membrane)."""
    membrane_fmt = QFormat(4, 8)
    case = random_case(5, 4, 8, 2, 10, rate=6.0, weight_fmt=QFormat(3, 8), current_fmt=QFormat(3, 8),
                       membrane_fmt=membrane_fmt, decay_fmt=QFormat(0, 12, signed=False))
    params = dataclasses.replace(case.params, threshold_q=membrane_fmt.max_int - below_rail)
    case = DHLIF_KIND.case(case.name, params, case.inputs_q, case.order)
    trace = case.golden()
    assert (trace.membrane == membrane_fmt.max_int).any(), "some membrane should reach the top rail"
    assert trace.spike.any() == bool(below_rail)
    simulate_case(case, seed=2)

def test_core_runs_one_update_per_clock_without_hazards():
    """Ready outputs and a neuron revisited only the cycle after its write-back: every cycle accepts a beat."""
    params = random_case(3, DHLIFCore.hazard_stages + 1, 8, 4, 1).params
    case = DHLIF_KIND.case("back_to_back", params, np.zeros((4, 8), dtype=np.int64))
    accepted = simulate_case(case).accepted_at["i_drive"]
    assert accepted == list(range(len(accepted)))


def test_checker_sees_a_single_bit_error():
    case = random_case(1, 4, 8, 4, 5, shuffle=False)
    flip = {"port": "o_state", "field": "current_2", "bit": 0, "step": 2, "neuron": 1}
    assert "o_state beat 9 (step=2, neuron=1): field 'current_2'" in simulate_flipped(case, flip)


def test_branch_drives_refuses_bad_counts():
    params = random_case(0, 2, 8, 4, 1).params
    with pytest.raises(ValueError, match="non-negative integer"):
        branch_drives(params, -np.ones((2, 8), dtype=np.int64))
    with pytest.raises(ValueError, match=r"counts must be \(T, 8\)"):
        branch_drives(params, np.ones((2, 7), dtype=np.int64))


def test_core_converts_to_verilog():
    text = verilog.convert(DHLIFCore(random_case(0, 64, 32, 4, 1).params, emit_state=False), name="dhlif_core")
    assert "module dhlif_core" in text


def test_core_rejects_wrong_params(never_elaborated):
    params = random_case(1, 2, 4, 2, 1).params
    with never_elaborated():
        with pytest.raises(TypeError, match="DHLIFParams"):
            DHLIFCore(object())
        with pytest.raises(ValueError, match="at most 17 bits"):
            DHLIFCore(dataclasses.replace(params, decay_fmt=QFormat(0, 18, signed=False)))
