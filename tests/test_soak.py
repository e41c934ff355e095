"""The Verilator soak harness (sim/verilator.py, bench/soak.py) on a few thousand events.

The processor's Verilog under the C++ stream harness, with bursts, idle gaps, backpressure and
every kind of dropped event, agrees with the golden network word for word; and the checker
catches a single corrupted expectation of each kind (a spike, a membrane, a score, a drop, a
saturation count), so the soak's "zero mismatches" can fail. The Verilator compile takes a
minute or more, hence ``slow``.
"""

import copy

import numpy as np
import pytest

from bench.soak import check, golden_expectation, make_stimulus, processor_harness
from hw.processor.network import NetworkProcessor
from sim.processor_model import DROP_REASONS, random_network
from sim.verilator import missing_tools

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(missing_tools() is not None, reason=f"Verilator harness unavailable: {missing_tools()}")]

N_STEPS = 6


@pytest.fixture(scope="module")
def soak_run(tmp_path_factory):
    params = random_network(5, n_inputs=10, hidden=(("refractory_lif", 9), ("silif", 7)), max_events_per_step=8,
                            readout_int_bits=2, weight_scale=1.5)
    dut = NetworkProcessor(params, n_steps=N_STEPS, lanes=2)
    harness = processor_harness(dut, "test_soak")
    rng = np.random.default_rng(6)
    stimulus = make_stimulus(params, N_STEPS, 3000, rng)
    expected = golden_expectation(params, stimulus.counts)
    words = harness.pack({"kind": stimulus.kind, "channel": stimulus.channel, "tick": stimulus.tick})
    ready = (rng.random(257) < 0.5).astype(np.uint8)
    # the run's files in a folder of this worker's own (another pytest worker may run the fixture too)
    run = harness.run(tmp_path_factory.mktemp("soak_run"), words, stimulus.gaps, ready_pattern=ready, constants=[N_STEPS],
                      expected_beats=stimulus.counts.shape[0], drain_cycles=200_000)
    return dut, stimulus, run, expected


def test_agrees_with_golden(soak_run):
    dut, stimulus, run, expected = soak_run
    assert stimulus.n_events >= 3000
    assert all((stimulus.drops == code).any() for code in range(len(DROP_REASONS))), "every drop reason exercised"
    assert expected["spikes"][0].any() and expected["spikes"][1].any()
    assert expected["current_saturation"][:, 0].any() and expected["current_saturation"][:, -1].any()
    assert expected["neuron_saturation"][:, 0].any()
    result = check(dut, N_STEPS, stimulus, run, expected)
    assert result["mismatches"] == 0, result["first"]
    assert not run.timed_out and run.beats_out == stimulus.counts.shape[0]


@pytest.mark.parametrize("corrupt,message", [
    (lambda e, s: e["spikes"][1].__setitem__((9, 3), ~e["spikes"][1][9, 3]), "layers[1] sample 1 step 3 neuron 3"),
    (lambda e, s: e["readout_u"].__setitem__((20, 1), e["readout_u"][20, 1] ^ 1), "readout sample 3 step 2 neuron 1"),
    (lambda e, s: e["scores"].__setitem__((4, 0), e["scores"][4, 0] + 1), "sample 4: scores"),
    (lambda e, s: s.drops.__setitem__(0, (s.drops[0] + 1) % 4), "drops:"),
    (lambda e, s: e["neuron_saturation"].__setitem__((2, 0), e["neuron_saturation"][2, 0] + 1),
     "neuron_saturation[0] sample 2"),
])
def test_corrupted_expectation_is_caught(soak_run, corrupt, message):
    dut, stimulus, run, expected = soak_run
    expected, stimulus = copy.deepcopy(expected), copy.deepcopy(stimulus)
    corrupt(expected, stimulus)
    result = check(dut, N_STEPS, stimulus, run, expected)
    assert result["mismatches"] == 1, result["first"]
    assert message in result["first"][0]
