"""The link soak (``bench.soak --link``) on a few thousand events: framed bytes with every kind of
malformed frame through the Verilog of ``FramedProcessor`` on Verilator.

Every result frame (SCORES with argmax, STATUS with every counter) and every processor drop
agrees with the golden decoder and network; and the checker catches a single corrupted
prediction of each kind, so the soak's "zero mismatches" can fail. The Verilator compile takes
about a minute on a free core (a small network, one lane).
"""

import copy

import numpy as np
import pytest

from bench.soak import (
    MALFORMED, LinkSoakTop, _frame, check_link, link_harness, make_link_stimulus, run_link,
)
from golden.protocol import Scores, Status, decode_results, encode_end_of_sample, encode_event, encode_read_status
from sim.processor_model import random_network
from sim.verilator import missing_tools

N_STEPS = 5
needs_verilator = pytest.mark.skipif(missing_tools() is not None,
                                     reason=f"Verilator harness unavailable: {missing_tools()}")


def _params():
    return random_network(5, n_inputs=6, hidden=(("refractory_lif", 6),), n_classes=3, max_events_per_step=6,
                          readout_int_bits=2, weight_scale=1.5)


def test_frames_match_the_golden_encoder():
    assert _frame(0x01, bytes.fromhex("0001 0002 01 00000064")) == encode_event(1, 2, 1, 100)
    assert _frame(0x02) == encode_end_of_sample() and _frame(0x04) == encode_read_status()


@pytest.fixture(scope="module")
def link_run(tmp_path_factory):
    params = _params()
    rng = np.random.default_rng(3)
    stimulus = make_link_stimulus(params, N_STEPS, 3000, rng)
    harness = link_harness(LinkSoakTop(params, n_steps=N_STEPS, lanes=1), "test_link")
    # the run's files in a folder of this worker's own (another pytest worker may run the fixture too)
    run = run_link(harness, stimulus, (rng.random(257) < 0.5).astype(np.uint8),
                   run_dir=tmp_path_factory.mktemp("link_run"), drain_cycles=200_000)
    return stimulus, run


@needs_verilator
def test_link_soak_agrees_with_golden(link_run):
    stimulus, run = link_run
    assert stimulus.n_events >= 3000
    assert all(stimulus.sent[name] > 0 for name in MALFORMED), stimulus.sent
    assert stimulus.sent["reset"] > 0 and stimulus.sent["read_status"] > 0
    counters = stimulus.counters
    for name in ("bytes_skipped", "bad_length", "bad_crc", "truncated", "unknown_command", "address_out_of_range",
                 "timestamp_backwards"):
        assert counters[name] > 0, f"{name} not exercised: {counters}"
    assert counters["fifo_overflow"] == 0
    late, over_bound = 2, 3  # DROP_REASONS codes
    assert (stimulus.drops == late).any() and (stimulus.drops == over_bound).any()
    assert bool(stimulus.paced.any()) and not bool(stimulus.paced.all())
    result = check_link(stimulus, run)
    assert result["mismatches"] == 0, result["first"]
    assert not run.timed_out and run.beats_out == len(stimulus.expected)
    frames, errors = decode_results(stimulus.expected)
    assert not any(errors.values()) and [f for _, f in stimulus.frames] == frames
    assert isinstance(frames[-1], Status) and frames[-1].counters["bad_crc"] == counters["bad_crc"]


def _bump_score(stimulus, index):
    label, scores = stimulus.frames[index]
    stimulus.frames[index] = (label, Scores((scores.scores[0] + 1, *scores.scores[1:]), scores.argmax))


def _bump_status(stimulus, index, name):
    label, status = stimulus.frames[index]
    stimulus.frames[index] = (label, Status({**status.counters, name: status.counters[name] + 1}))


def _first(stimulus, kind):
    return next(k for k, (_, frame) in enumerate(stimulus.frames) if isinstance(frame, kind))


@needs_verilator
@pytest.mark.parametrize("corrupt,message", [
    (lambda s: _bump_score(s, _first(s, Scores)), "(SCORES of sample 0)"),
    (lambda s: _bump_status(s, _first(s, Status), "bad_crc"), "(STATUS 0): bad_crc"),
    (lambda s: _bump_status(s, len(s.frames) - 1, "truncated"), "truncated"),
    (lambda s: s.frames.pop(), "result frames, expected"),
    (lambda s: s.drops.__setitem__(0, (s.drops[0] + 1) % 4), "drops:"),
])
def test_corrupted_prediction_is_caught(link_run, corrupt, message):
    stimulus, run = link_run
    stimulus = copy.deepcopy(stimulus)
    corrupt(stimulus)
    result = check_link(stimulus, run)
    assert result["mismatches"] == 1, result["first"]
    assert message in result["first"][0]
