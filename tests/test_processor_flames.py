# amaranth: UnusedElaboratable=no
"""The shipped FLAMES model (``models/fsdd_flames.safetensors``: DH-LIF -> SA-HiPPO -> event
pooling) through :class:`hw.processor.network.NetworkProcessor` on FSDD test recordings, against
:func:`golden.network.run_network` on the same events: every DH-LIF spike, every SA-HiPPO mode
beat and soma output (per channel, in event order), the clipped intervals, the scores, the
decision and the saturation counters.

The processor's Verilog runs on Verilator (:mod:`sim.verilator`, the checker of
:mod:`bench.soak`), the first :data:`N_RTL` test recordings back to back (amaranth.sim of the
full-size design does not finish one recording's 71,000 cycles in 30 minutes on the shared
machine; ``tests/test_processor_amaranth.py`` runs small FLAMES networks there). The recordings
come from the shared data (skipped without them), and the tests skip without Verilator. Last,
a tiny FLAMES network whose memory saturates, on random bursts: its counters in the Verilog.
"""

import copy

import numpy as np
import pytest

from bench.rtl_fsdd import first_recordings, fsdd_stimulus
from bench.soak import check, golden_expectation, processor_harness
from golden.data import REPO_ROOT
from hw.processor.network import NetworkProcessor
from sim.verilator import missing_tools

MODEL = REPO_ROOT / "models" / "fsdd_flames.safetensors"
N_RTL = 5
LANES = 8


@pytest.fixture(scope="module")
def flames_model():
    from golden.model_file import load_model

    params = load_model(MODEL)
    assert params.kinds == ["dhlif", "sahippo", "event_pool"]
    return params, int(params.provenance["n_steps"])


@pytest.fixture(scope="module")
def test_recordings(shared_data):
    from golden.data.cochlea import encode_fsdd

    if not (shared_data / "fsdd").is_dir():
        pytest.skip(f"the FSDD recordings are not at {shared_data / 'fsdd'}")
    return encode_fsdd("test")


@pytest.fixture(scope="module")
def rtl_run(flames_model, test_recordings):
    if missing_tools() is not None:
        pytest.skip(f"Verilator harness unavailable: {missing_tools()}")
    params, n_steps = flames_model
    dut = NetworkProcessor(params, n_steps=n_steps, lanes=LANES)
    harness = processor_harness(dut, f"fsdd_flames_lanes{LANES}")
    harness.build(log=lambda message: None)
    stimulus = fsdd_stimulus(params, n_steps, first_recordings(test_recordings, N_RTL))
    expected = golden_expectation(params, stimulus.counts)
    words = harness.pack({"kind": stimulus.kind, "channel": stimulus.channel, "tick": stimulus.tick})
    run = harness.run(harness.build_dir / "run", words, stimulus.gaps, constants=[n_steps], expected_beats=N_RTL,
                      log=lambda message: None)
    return dut, n_steps, stimulus, run, expected


def test_rtl_equals_golden_on_fsdd(rtl_run):
    dut, n_steps, stimulus, run, expected = rtl_run
    assert not run.timed_out and run.beats_out == N_RTL
    assert len(expected["memory_outputs"]) > N_RTL * 500, "every recording drives hundreds of SA-HiPPO events"
    result = check(dut, n_steps, stimulus, run, expected)
    assert result["mismatches"] == 0, result["first"]
    assert np.array_equal(result["argmax"], expected["argmax"])


def test_rtl_check_sees_one_wrong_mode(rtl_run):
    """The comparison can fail: one bit of one SA-HiPPO mode flipped in the expectation."""
    dut, n_steps, stimulus, run, expected = rtl_run
    expected = copy.deepcopy(expected)
    expected["memory_states"][1234, 2] ^= 1
    result = check(dut, n_steps, stimulus, run, expected)
    assert result["mismatches"] == 1, result["first"]
    assert "memory states: beat 1234" in result["first"][0]


def test_rtl_counts_bad_input_like_golden():
    """A tiny FLAMES network whose memory saturates (state sQ3.14), with a weight beyond
    input_fmt and a dt_max of 2 steps, on random bursts with dropped events mixed in
    (bench.soak.make_stimulus): every output and counter of the Verilog as in golden."""
    from bench.soak import make_stimulus
    from golden.fixed import QFormat
    from sim.processor_model import flames_example_network

    if missing_tools() is not None:
        pytest.skip(f"Verilator harness unavailable: {missing_tools()}")
    n_steps = 8
    params = flames_example_network(92, state_fmt=QFormat.parse("sQ3.14"), clamped_weight=True, dt_max=2)
    dut = NetworkProcessor(params, n_steps=n_steps, lanes=2)
    harness = processor_harness(dut, "test_flames_bad_input")
    rng = np.random.default_rng(93)
    stimulus = make_stimulus(params, n_steps, 1500, rng, max_burst=12)
    expected = golden_expectation(params, stimulus.counts)
    words = harness.pack({"kind": stimulus.kind, "channel": stimulus.channel, "tick": stimulus.tick})
    ready = (rng.random(257) < 0.5).astype(np.uint8)
    run = harness.run(harness.build_dir / "run", words, stimulus.gaps, ready_pattern=ready, constants=[n_steps],
                      expected_beats=stimulus.counts.shape[0], log=lambda message: None)
    assert expected["current_saturation"][:, 1].any() and expected["neuron_saturation"][:, 1].any()
    assert expected["clipped_interval"].any() and len(stimulus.drops) > 0
    result = check(dut, n_steps, stimulus, run, expected)
    assert result["mismatches"] == 0, result["first"]
    expected["clipped_interval"][0] += 1
    result = check(dut, n_steps, stimulus, run, expected)
    assert result["mismatches"] == 1 and "clipped_interval sample 0" in result["first"][0], result["first"]
