# amaranth: UnusedElaboratable=no
"""SPIKE output frames of :class:`hw.boards.ulx3s_processor.ProcessorLink` through the UART lines.

The generated Verilog runs on Icarus through cocotb (``sim/tb_spike_frames.py``): samples go in
as EVENT / END_OF_SAMPLE / RESET frames on ``rx``, READ_STATUS after the last SCORES frame has
come back; every frame on ``tx`` is
decoded by the golden parser and checked here against :func:`golden.network.run_network`:

* at a FIFO depth where nothing drops, the SPIKE frames of each chosen layer equal the golden
  spikes exactly (layer, neuron, time = step index, order: step by step, ascending neuron with
  one lane), each sample's spikes before its SCORES frame and none of the next sample's;
* with a 2-entry FIFO, spikes drop: the frames received are an in-order subsequence of the
  golden spikes, ``spikes_dropped`` in STATUS equals golden count - frames received, the scores
  are still exact and the run ends (nothing hangs).
"""

import json
import shutil

import pytest

from golden.network import run_network
from golden.protocol import (
    COUNTER_NAMES, PROTOCOL_VERSION, encode_end_of_sample, encode_event, encode_read_status, encode_reset,
)
from hw.boards.ulx3s_processor import ProcessorLink, spike_layer_indices
from sim.processor_model import counts_to_beats, random_counts, random_network
from sim.runner import SIM_BUILD, run_cocotb

needs_iverilog = pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) not installed")

N_STEPS = 6
#: Clock cycles per UART bit (the UART's minimum is 4).
DIVISOR = 4


def spiking_network():
    """Two refractory LIF layers (8, 6 neurons) that spike about 50 times per sample together."""
    return random_network(62, hidden=(("refractory_lif", 8), ("refractory_lif", 6)), n_inputs=6,
                          max_events_per_step=4, weight_scale=1.0)


def golden_spikes(trace, layers) -> dict:
    """Per chosen layer, ``(neuron, step)`` of every golden spike: step by step, ascending neuron."""
    out = {}
    for k in layers:
        s = trace.layers[k].neuron.s.numpy()
        out[k] = [(int(n), t) for t in range(s.shape[0]) for n in range(s.shape[1]) if s[t, n]]
    return out


def make_samples(params, seeds, resets=()):
    """Per seed one sample: its events, whether RESET ends it, and the golden trace."""
    samples = []
    for seed in seeds:
        counts = random_counts(params, N_STEPS, seed=seed)
        beats = counts_to_beats(counts, params.bin_ticks, seed=seed)[:-1]
        samples.append({"events": [(b["channel"], 0, 0, b["tick"]) for b in beats], "reset": seed in resets,
                        "trace": run_network(params, counts)})
    return samples


def host_frames(samples, *, early_status=False) -> bytes:
    """Every sample's frames; ``early_status``: a READ_STATUS right after the last END_OF_SAMPLE.

    The testbench sends a (further) READ_STATUS once every SCORES frame has arrived.
    """
    frames = b""
    for sample in samples:
        frames += b"".join(encode_event(x, y, p, t) for x, y, p, t in sample["events"])
        frames += encode_reset() if sample["reset"] else encode_end_of_sample()
    return frames + (encode_read_status() if early_status else b"")


def run_link(name, params, samples, *, spike_layers, spike_fifo_depth, early_status=False, lanes=1,
             max_cycles=500_000) -> dict:
    build = SIM_BUILD / "spike_frames" / name
    build.mkdir(parents=True, exist_ok=True)
    out_path = build / "results.json"
    out_path.unlink(missing_ok=True)
    config = {"divisor": DIVISOR, "frames": host_frames(samples, early_status=early_status).hex(),
              "n_scores": sum(not s["reset"] for s in samples), "max_cycles": max_cycles,
              "out_path": str(out_path)}
    dut = ProcessorLink(params, n_steps=N_STEPS, clk_freq=4e6, baud=1e6, lanes=lanes, spike_layers=spike_layers,
                        spike_fifo_depth=spike_fifo_depth)
    run_cocotb(dut, test_module="sim.tb_spike_frames", build_name=f"spike_frames/{name}", config=config)
    return json.loads(out_path.read_text())


def check_spike_frames(samples, run, layers, *, exact: bool, early_status: bool = False,
                       lanes: int = 1) -> list[str]:
    """Every mismatch between the received frames and the golden network, as messages.

    Received results are split into groups, each ending at a SCORES frame; a RESET-ended sample
    has no SCORES frame, so its spikes belong to the group of the next sample. ``exact``: each
    group's SPIKE frames of each layer equal the golden spikes; otherwise they are an in-order
    subsequence and ``spikes_dropped`` accounts for the rest. ``early_status``: two STATUS
    frames are expected, both after the last SCORES frame and with the same ``spikes_dropped``.
    ``lanes > 1``: within a step the lane cores' finishing order is not specified, so each step's
    spikes are compared sorted (the steps themselves must still come in order).
    """
    errors = []
    results = run["results"]
    if run["parser_counters"] and any(run["parser_counters"].values()):
        errors.append(f"the golden parser rejected bytes on tx: {run['parser_counters']}")
    groups, current = [], []
    for result in results:
        if result["kind"] == "scores":
            groups.append((current, result))
            current = []
        elif result["kind"] == "spike":
            current.append(result)
    statuses = [r for r in results if r["kind"] == "status"]
    if current:
        errors.append(f"{len(current)} SPIKE frames after the last SCORES frame")
    expected_groups, pending = [], {k: [] for k in layers}
    for sample in samples:
        for k, spikes in golden_spikes(sample["trace"], layers).items():
            pending[k] += spikes
        if not sample["reset"]:
            expected_groups.append((pending, sample["trace"]))
            pending = {k: [] for k in layers}
    if len(groups) != len(expected_groups):
        errors.append(f"SCORES frames: expected {len(expected_groups)}, got {len(groups)}")
    golden_total = received_total = 0
    for index, ((spikes, scores), (want, trace)) in enumerate(zip(groups, expected_groups)):
        want_scores = [int(v) for v in trace.scores]
        if scores["scores"] != want_scores or scores["argmax"] != int(trace.prediction):
            errors.append(f"sample {index}: scores {scores['scores']} argmax {scores['argmax']}, "
                          f"expected {want_scores} argmax {int(trace.prediction)}")
        others = sorted({s["layer"] for s in spikes} - set(layers))
        if others:
            errors.append(f"sample {index}: SPIKE frames of layers {others}, not chosen")
        for k in layers:
            got = [(s["neuron"], s["time"]) for s in spikes if s["layer"] == k]
            if lanes > 1:
                times = [t for _, t in got]
                if times != sorted(times):
                    errors.append(f"sample {index} layer {k}: steps out of order {times}")
                got = sorted(got, key=lambda spike: (spike[1], spike[0]))
            golden_total += len(want[k])
            received_total += len(got)
            if exact and got != want[k]:
                first = next((i for i, (g, w) in enumerate(zip(got, want[k])) if g != w), min(len(got), len(want[k])))
                errors.append(f"sample {index} layer {k}: spike {first} differs: got {got[first:first + 3]}, "
                              f"expected {want[k][first:first + 3]} ({len(got)} received, {len(want[k])} golden)")
            elif not exact and not _is_subsequence(got, want[k]):
                errors.append(f"sample {index} layer {k}: received spikes {got} are not an in-order subsequence "
                              f"of the golden {want[k]}")
    n_reads = 2 if early_status else 1
    last_scores = max((i for i, r in enumerate(results) if r["kind"] == "scores"), default=-1)
    if any(i < last_scores for i, r in enumerate(results) if r["kind"] == "status"):
        errors.append("a STATUS frame came before the SCORES of a sample finished before its READ_STATUS")
    if len(statuses) != n_reads:
        errors.append(f"STATUS frames: expected {n_reads}, got {len(statuses)}")
    elif early_status and statuses[0]["counters"]["spikes_dropped"] != statuses[1]["counters"]["spikes_dropped"]:
        errors.append(f"spikes_dropped changed between the STATUS frames: {statuses}")
    else:
        status = statuses[-1]
        dropped = golden_total - received_total
        if status["version"] != PROTOCOL_VERSION:
            errors.append(f"STATUS version {status['version']}, expected {PROTOCOL_VERSION}")
        if status["counters"]["spikes_dropped"] != dropped:
            errors.append(f"spikes_dropped {status['counters']['spikes_dropped']}, expected {dropped} "
                          f"({golden_total} golden spikes, {received_total} SPIKE frames)")
        if run["spikes_dropped"] != dropped:
            errors.append(f"spikes_dropped port {run['spikes_dropped']}, expected {dropped}")
        n_frames = sum(len(s["events"]) + 1 for s in samples) + n_reads
        if status["counters"]["frames_ok"] != n_frames or any(status["counters"][n] for n in COUNTER_NAMES[1:]):
            errors.append(f"link counters {status['counters']}, expected frames_ok={n_frames} and no errors")
    if run["samples_done"] != len(samples):
        errors.append(f"samples_done {run['samples_done']}, expected {len(samples)}")
    return errors


def _is_subsequence(part, whole) -> bool:
    it = iter(whole)
    return all(item in it for item in part)


def test_spike_layer_indices():
    params = spiking_network()
    assert spike_layer_indices(params, None) == ()
    assert spike_layer_indices(params, ()) == ()
    assert spike_layer_indices(params, "all") == (0, 1)
    assert spike_layer_indices(params, [1, 0]) == (0, 1)
    for bad, match in ((2, "not a hidden layer"), ((0, 2), "not a hidden layer"), ((1, 1), "twice"),
                       ("first", "all"), ((True,), "not a hidden layer")):
        with pytest.raises(ValueError, match=match):
            spike_layer_indices(params, bad if not isinstance(bad, int) else (bad,))
    with pytest.raises(ValueError, match="spike_fifo_depth"):
        ProcessorLink(params, n_steps=N_STEPS, clk_freq=4e6, baud=1e6, spike_layers="all", spike_fifo_depth=1)


@needs_iverilog
def test_spike_frames_exact_and_checker_fails_on_one_bit():
    """Both layers, a FIFO deep enough: every golden spike arrives, in order, in its sample's group.

    The middle sample ends with RESET (no SCORES), so its spikes lead the next sample's group.
    """
    params = spiking_network()
    samples = make_samples(params, (1, 2, 3), resets=(2,))
    layers = spike_layer_indices(params, "all")
    run = run_link("exact", params, samples, spike_layers="all", spike_fifo_depth=128)
    assert check_spike_frames(samples, run, layers, exact=True) == []
    assert run["spikes_dropped"] == 0
    assert sum(r["kind"] == "spike" for r in run["results"]) > 60
    # The checker sees one flipped bit of one spike's time, and a spike of a sample moved past its SCORES.
    spike = next(r for r in run["results"] if r["kind"] == "spike" and r["layer"] == 1)
    spike["time"] ^= 1
    errors = check_spike_frames(samples, run, layers, exact=True)
    assert any("layer 1: spike" in e for e in errors), errors
    spike["time"] ^= 1
    results = run["results"]
    first_scores = next(i for i, r in enumerate(results) if r["kind"] == "scores")
    results.insert(first_scores + 1, results.pop(first_scores - 1))
    assert check_spike_frames(samples, run, layers, exact=True) != []


@needs_iverilog
def test_spike_frames_drop_and_count():
    """A 2-entry FIFO for layer 1 only: spikes drop and are counted exactly; scores stay exact.

    A READ_STATUS follows the last END_OF_SAMPLE at once: its STATUS waits for that sample's
    SCORES and already counts every dropped spike.
    """
    params = spiking_network()
    samples = make_samples(params, (1, 3))
    run = run_link("drops", params, samples, spike_layers=(1,), spike_fifo_depth=2, early_status=True)
    assert check_spike_frames(samples, run, (1,), exact=False, early_status=True) == []
    received = sum(r["kind"] == "spike" for r in run["results"])
    assert run["spikes_dropped"] > 0 and received > 0, (run["spikes_dropped"], received)


# A constructor that refuses its arguments leaves an unelaborated object behind: Amaranth warns.
@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_build_cli_spike_layers(tmp_path, usage_error):
    """``python -m hw.build --spike-layers``: the spike FIFOs appear only when asked for; bad input exits 2."""
    from hw import build

    def design(*options):
        out = tmp_path / "-".join(options or ("none",))
        assert build.main(["--model", "default", "--dry-run", "--out", str(out), *options]) == 0
        return (out / "top.il").read_text()

    assert "spike_out_fifo_0" in design("--spike-layers", "all")
    assert "spike_out_fifo" not in design()
    for bad, message in ((["--spike-layers", "1"], "not a hidden layer index"),
                         (["--spike-layers", "x"], "argument --spike-layers")):
        assert message in usage_error(build.main, ["--model", "default", "--dry-run", "--out", str(tmp_path / "bad"),
                                                   *bad])


@needs_iverilog
def test_spike_frames_with_lanes():
    """Three lanes, layer 1 only, deep FIFO: every golden spike, steps in order (within a step any order)."""
    params = spiking_network()
    samples = make_samples(params, (2, 3))
    run = run_link("lanes", params, samples, spike_layers=(1,), spike_fifo_depth=64, lanes=3)
    assert check_spike_frames(samples, run, (1,), exact=True, lanes=3) == []
    assert run["spikes_dropped"] == 0 and sum(r["kind"] == "spike" for r in run["results"]) > 20
