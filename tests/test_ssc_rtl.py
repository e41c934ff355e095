"""The imported SSC networks (140-512-512-35, 700 source channels pooled 5 by 5) through the
processor's Verilog on Verilator, against the golden network.

Each checkpoint is imported as ``docs/ssc_checkpoints.md`` says (fit-aware widths for the 85F,
row scales, error feedback), :class:`hw.processor.network.NetworkProcessor` (1 lane, 300 steps,
the channel pooler in front) runs 3 seeded synthetic SSC-shaped samples (700-channel events,
back to back, each ended by END) in the C++ stream harness of :mod:`sim.verilator`, and
:func:`bench.soak.check` compares every spike of both hidden layers at every step, every readout
membrane, the scores, the decision and the saturation counters with
:func:`golden.network.run_network` on the same events. The import, the Verilator compile of
some 350k weights and about 20 million simulated cycles per network take 15-25 minutes per
network on two cores, more than the default test run's budget: the tests run only with
``SPIKESTREAM_LONG=1`` (``SPIKESTREAM_LONG=1 python -m pytest tests/test_ssc_rtl.py``).
"""

import copy
import os

import numpy as np
import pytest

from bench.soak import Stimulus, check, golden_expectation, processor_harness
from golden.data.synthetic_ssc import SSC_CHANNELS, ssc_like_events
from golden.network import counts_from_events
from golden.ssc_checkpoint import import_checkpoint
from hw.processor.network import NetworkProcessor
from sim.verilator import missing_tools

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.environ.get("SPIKESTREAM_LONG"),
                                 reason="15-25 min per network: set SPIKESTREAM_LONG=1 to run the SSC networks' RTL check"),
              pytest.mark.skipif(missing_tools() is not None, reason=f"Verilator harness unavailable: {missing_tools()}")]

FILES = {"silif": "ssc_silif.pth", "csilif": "ssc_csilif.pth"}
N_SAMPLES = 3
N_STEPS = 300
SEEDS = {"silif": 13, "csilif": 14}


def ssc_stimulus(params, seed: int) -> Stimulus:
    """``N_SAMPLES`` synthetic SSC samples of 700-channel events (all inside the 300-step
    window, within the per-step bound), back to back, each followed by END."""
    rng = np.random.default_rng(seed)
    kinds, channels, ticks, counts = [], [], [], []
    for _ in range(N_SAMPLES):
        events = ssc_like_events(rng)
        assert int(events["t"].max()) < N_STEPS * params.bin_ticks
        counts.append(counts_from_events(params, events, N_STEPS))
        kinds += [np.zeros(len(events), dtype=np.int64), np.ones(1, dtype=np.int64)]
        channels += [events["channel"].astype(np.int64), np.zeros(1, dtype=np.int64)]
        ticks += [events["t"].astype(np.int64), np.zeros(1, dtype=np.int64)]
    counts = np.stack(counts)
    assert counts.sum(-1).max() <= params.max_events_per_step, "no event may be dropped for the bound"
    kind = np.concatenate(kinds)
    return Stimulus(kind=kind, channel=np.concatenate(channels), tick=np.concatenate(ticks),
                    gaps=np.zeros(len(kind), dtype=np.int64), counts=counts, drops=np.zeros(0, dtype=np.int64))


@pytest.fixture(scope="module", params=sorted(FILES))
def ssc_run(request, shared_data):
    kind = request.param
    path = shared_data / "ssm_lif_ssc" / FILES[kind]
    if not path.is_file():
        pytest.skip(f"the SSC checkpoint is not at {path}")
    params, _ = import_checkpoint(path, kind, device="85F", row_scale=True, error_feedback=True)
    assert params.channel_pool.n_sources == SSC_CHANNELS
    dut = NetworkProcessor(params, n_steps=N_STEPS, lanes=1)
    harness = processor_harness(dut, f"ssc_{kind}_lanes1")
    stimulus = ssc_stimulus(params, SEEDS[kind])
    expected = golden_expectation(params, stimulus.counts)
    words = harness.pack({"kind": stimulus.kind, "channel": stimulus.channel, "tick": stimulus.tick})
    run = harness.run(harness.build_dir / "run", words, stimulus.gaps, constants=[N_STEPS],
                      expected_beats=N_SAMPLES, log=lambda message: None)
    return kind, dut, stimulus, run, expected


def test_rtl_equals_golden(ssc_run):
    """Every spike of both hidden layers, every readout membrane, the scores and the decision of
    3 samples equal to the golden network's."""
    kind, dut, stimulus, run, expected = ssc_run
    assert stimulus.n_events > N_SAMPLES * 2000, "SSC-shaped input: thousands of events per sample"
    for spikes in expected["spikes"]:
        assert 0.005 < spikes.mean() < 0.5, f"{kind}: the hidden layers spike, but not everywhere"
    result = check(dut, N_STEPS, stimulus, run, expected)
    assert result["mismatches"] == 0, result["first"]
    assert not run.timed_out and run.beats_out == N_SAMPLES
    assert np.array_equal(result["argmax"], expected["argmax"])


def test_a_single_differing_spike_is_caught(ssc_run):
    """The comparison can fail: one layer-1 spike flipped in the expectation is one mismatch."""
    kind, dut, stimulus, run, expected = ssc_run
    expected = copy.deepcopy(expected)
    expected["spikes"][1][N_STEPS + 150, 7] ^= True
    result = check(dut, N_STEPS, stimulus, run, expected)
    assert result["mismatches"] == 1, result["first"]
    assert "layers[1] sample 1 step 150 neuron 7" in result["first"][0]
