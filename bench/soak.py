"""Ten million events through the streaming processor's RTL on Verilator, every output checked.

``python -m bench.soak [--events N] [--seed S] [--model FILE ...] [--lanes L]`` builds
:class:`hw.processor.network.NetworkProcessor` for each network (two seeded random networks
from :func:`sim.processor_model.random_network` and each ``--model`` file, default the shipped
``models/fsdd_csilif.safetensors``), compiles it with the C++ stream harness of
:mod:`sim.verilator` and sends it its share of the ``N`` input events (default 10,000,000; the
model files share a tenth of them, their events cost several times the cycles):

* samples of random bursts (steps with 0 up to the declared bound of events, some steps
  empty), random idle gaps between beats (mostly none, some long), a random backpressure
  pattern on the scores;
* mixed in: out-of-range channels, ticks that go backwards, events after the sample's last
  step (late), steps with more events than ``max_events_per_step`` (over the bound).

Each beat's fate is predicted by :func:`sim.processor_model.time_bin_fates` (the time-bin
rule); the kept events, binned, go through :func:`golden.network.run_network`. Every output
is then compared: each hidden layer's spikes at every step (and its step closes and ``last``
flags), every readout membrane at every step, every sample's scores and argmax, the four drop
counters (each increment, in order, against the predicted drop of that reason: no event
unaccounted), and each layer's two saturation counters per sample.

The table (stdout, ``build/bench/soak.json``): events in, samples, clock cycles, events per
second of simulation (the harness's cycle loop alone) and cycles per second, mismatches, drops
by reason. Exit status 1 when any mismatch was found.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.common import write_results
from golden.cli import existing_file, non_negative_int, positive_int, run_main
from golden.data import REPO_ROOT
from golden.network import NetworkParams, run_network
from hw.processor.network import NetworkProcessor
from sim.processor_model import DROP_REASONS, is_flames, random_network, time_bin_fates
from sim.verilator import HarnessRun, VerilatorHarness, field, require_tools

DEFAULT_EVENTS = 10_000_000
DEFAULT_MODEL = REPO_ROOT / "models" / "fsdd_csilif.safetensors"
SOAK_BUILD = REPO_ROOT / "build" / "sim" / "soak"
COUNTERS = [f"dropped_{reason}" for reason in DROP_REASONS]

#: The seeded random networks of the soak: (name, random_network keyword arguments, steps).
RANDOM_NETWORKS = [
    ("random_rlif16_silif12", {"n_inputs": 12, "hidden": (("refractory_lif", 16), ("silif", 12)),
                               "max_events_per_step": 16, "readout_int_bits": 3}, 24),
    ("random_csilif20", {"n_inputs": 20, "hidden": (("csilif", 20),), "n_classes": 6,
                         "max_events_per_step": 24}, 16),
]


@dataclass
class Stimulus:
    """The input beats of a soak part, their gaps, and what the golden side expects of them."""

    kind: np.ndarray
    channel: np.ndarray
    tick: np.ndarray
    gaps: np.ndarray
    counts: np.ndarray  # (samples, steps, n_inputs): the events kept, per step
    drops: np.ndarray  # reason codes (index into DROP_REASONS) of the dropped beats, in input order

    @property
    def n_events(self) -> int:
        return int((self.kind == 0).sum())


def make_stimulus(params: NetworkParams, n_steps: int, n_events: int, rng: np.random.Generator, *,
                  max_burst: int = 64) -> Stimulus:
    """Samples of random bursts with out-of-range, backwards, late and over-bound events mixed in,
    until ``n_events`` EVENT beats; each sample ends with END."""
    n_inputs, bin_ticks, bound = params.n_inputs, params.bin_ticks, params.max_events_per_step
    channel_max = (1 << max(1, n_inputs.bit_length())) - 1
    burst = min(bound, max_burst)
    kinds, channels, ticks = [], [], []
    total = 0
    while total < n_events:
        per_step = np.where(rng.random(n_steps) < 0.15, 0, rng.integers(1, burst + 1, n_steps))
        over = rng.random(n_steps) < 0.03
        if bound <= max_burst:  # some steps carry more than the bound (those beyond it are dropped)
            per_step[over] = bound + rng.integers(1, 4, int(over.sum()))
        step_of = np.repeat(np.arange(n_steps), per_step)
        t = np.sort(step_of * bin_ticks + rng.integers(0, bin_ticks, step_of.shape[0]))
        ch = rng.integers(0, n_inputs, t.shape[0])
        # Out-of-range channels and backwards ticks at random places; late events at the end.
        n = t.shape[0]
        odd = rng.random(n)
        ch = np.where(odd < 0.01, rng.integers(n_inputs, channel_max + 1, n), ch)
        t = np.where((odd >= 0.01) & (odd < 0.02), np.maximum(t - rng.integers(1, 2 * bin_ticks, n), 0), t)
        n_late = int(rng.integers(0, 3)) if rng.random() < 0.3 else 0
        late = n_steps * bin_ticks + np.sort(rng.integers(0, 3 * bin_ticks, n_late))
        kinds += [np.zeros(n + n_late, dtype=np.int64), np.ones(1, dtype=np.int64)]
        channels += [ch, rng.integers(0, n_inputs, n_late), np.zeros(1, dtype=np.int64)]
        ticks += [t, late, np.zeros(1, dtype=np.int64)]
        total += n + n_late
    kind, channel, tick = np.concatenate(kinds), np.concatenate(channels), np.concatenate(ticks)
    counts, fates = time_bin_fates(params, n_steps, kind, channel, tick)
    gaps = np.where(rng.random(kind.shape[0]) < 0.8, 0, rng.geometric(0.25, kind.shape[0]))
    long = rng.random(kind.shape[0]) < 0.0005
    gaps[long] = rng.integers(100, 2000, int(long.sum()))
    return Stimulus(kind=kind, channel=channel, tick=tick, gaps=gaps, counts=counts, drops=fates[fates >= 0])


def backpressure_pattern(rng: np.random.Generator, length: int = 4099) -> np.ndarray:
    """Ready bits for the scores stream: runs of ready and not ready (about 60 % ready)."""
    bits, level = [], 1
    while len(bits) < length:
        bits += [level] * int(rng.geometric(0.1 if level else 0.15))
        level ^= 1
    return np.asarray(bits[:length], dtype=np.uint8)


#: Columns of the SA-HiPPO memory's expected and observed beats (a FLAMES network).
MEMORY_STATE_FIELDS = ("channel", "mode", "re", "im")
MEMORY_OUTPUT_FIELDS = ("channel", "dt", "y", "spike", "saturated")


def _memory_rows(memory, first_sample: int):
    """An SA-HiPPO layer trace of a batch as rows ``(sample, step, channel, ...)``: every mode
    ``(mode, re, im)`` of every event and every event's ``(dt, y, spike, saturated)``."""
    event = memory.event.numpy()
    b, k, h = np.nonzero(event)
    n_modes = memory.z.shape[-2]
    z = memory.z.numpy()[b, k, h]  # (events, N/2, 2)
    key = np.stack([b + first_sample, k, h], 1)
    states = np.concatenate([np.repeat(key, n_modes, 0), np.tile(np.arange(n_modes), len(b))[:, None],
                             z.reshape(-1, 2)], 1)
    outputs = np.concatenate([key] + [getattr(memory, name).numpy()[b, k, h].astype(np.int64)[:, None]
                                      for name in ("dt", "y", "spike", "saturated")], 1)
    return states, outputs


def _by_channel(rows: np.ndarray, channel: int) -> np.ndarray:
    """``rows`` in the order each channel sees them (stable by channel; time order within one)."""
    return rows[np.argsort(rows[:, channel], kind="stable")]


def golden_expectation(params: NetworkParams, counts: np.ndarray) -> dict:
    """The golden network on every sample: spikes per spiking hidden layer ``(S*T, n)``, readout
    membranes ``(S*T, classes)`` (a FLAMES network: the memory's beats, below), scores, argmax,
    per-sample saturation counts per layer.

    A FLAMES network's SA-HiPPO memory gives ``memory_states`` (rows ``MEMORY_STATE_FIELDS``) and
    ``memory_outputs`` (rows ``MEMORY_OUTPUT_FIELDS``), each channel's beats in time order over
    all samples, ``memory_events`` (events per sample) and ``clipped_interval`` (per sample).
    Samples go through :func:`golden.network.run_network` in batches of about 2**20 state words.
    """
    flames = is_flames(params.kinds)
    widest = max(max(layer.n_out, layer.n_in) for layer in params.layers)
    chunk = int(np.clip(2 ** 20 // (counts.shape[1] * widest), 16, 1024))
    spiking = params.layers[:-2] if flames else params.layers[:-1]
    spikes = [[] for _ in spiking]
    readout, scores, argmax, current_sat, neuron_sat = [], [], [], [], []
    memory_states, memory_outputs, memory_events, clipped = [], [], [], []
    for start in range(0, counts.shape[0], chunk):
        trace = run_network(params, torch.from_numpy(counts[start:start + chunk]))
        for k in range(len(spiking)):
            s = trace.layers[k].neuron.s
            spikes[k].append(s.reshape(-1, s.shape[-1]).numpy().astype(bool))
        if flames:
            memory = trace.layers[-2].neuron
            states, outputs = _memory_rows(memory, start)
            memory_states.append(states)
            memory_outputs.append(outputs)
            memory_events.append(memory.event.numpy().sum(axis=(1, 2)))
            clipped.append(memory.clipped.numpy().sum(axis=(1, 2)))
        else:
            u = trace.readout.neuron.u
            readout.append(u.reshape(-1, u.shape[-1]).numpy())
        scores.append(trace.scores.numpy())
        argmax.append(trace.prediction.numpy())
        current_sat.append(np.stack([layer.current_saturated.sum(dim=(-2, -1)).numpy() for layer in trace.layers], 1))
        neuron_sat.append(np.stack([layer.neuron.saturated.reshape(*layer.neuron.saturated.shape[:1], -1)
                                    .sum(dim=-1).numpy() for layer in trace.layers], 1))
    out = {"spikes": [np.concatenate(s) for s in spikes], "scores": np.concatenate(scores),
           "argmax": np.concatenate(argmax), "current_saturation": np.concatenate(current_sat),
           "neuron_saturation": np.concatenate(neuron_sat)}
    if flames:
        out["memory_states"] = _by_channel(np.concatenate(memory_states), 2)[:, 2:]
        out["memory_outputs"] = _by_channel(np.concatenate(memory_outputs), 2)[:, 2:]
        out["memory_events"] = np.concatenate(memory_events)
        out["clipped_interval"] = np.concatenate(clipped)
    else:
        out["readout_u"] = np.concatenate(readout)
    return out


def _signed(values: np.ndarray, width: int) -> np.ndarray:
    """Packed ``width``-bit two's complement fields (``width <= 64``) as int64."""
    shift = 64 - width
    return (np.asarray(values).astype(np.uint64) << np.uint64(shift)).view(np.int64) >> np.int64(shift)


def _counter_at(records: np.ndarray, cycles: np.ndarray, path: str, layout) -> np.ndarray:
    """The value of counter field ``path`` at each of ``cycles`` (records: its changes); a plain
    counter port with ``layout`` ``None``."""
    if len(records) == 0:
        return np.zeros(len(cycles), dtype=np.int64)
    values = (records["value"] if layout is None else field(records["value"], layout, path)).astype(np.int64)
    at = np.searchsorted(records["cycle"], cycles, side="right") - 1
    return np.where(at >= 0, values[np.maximum(at, 0)], 0)


def check(dut: NetworkProcessor, n_steps: int, stimulus: Stimulus, run: HarnessRun, expected: dict) -> dict:
    """Every difference between the run and the golden expectation.

    Returns ``{"mismatches": n, "first": [...], "bad_samples": set, "argmax": ..., "scores": ...}``:
    each stage counts its differing words, ``first`` holds the first message of each,
    ``bad_samples`` the samples with a difference, ``argmax`` and ``scores`` what the RTL gave.
    """
    params = dut.params
    n_samples = stimulus.counts.shape[0]
    total_steps = n_samples * n_steps
    errors: list[str] = []
    mismatches = 0
    bad_samples: set[int] = set()

    def fail(count: int, message: str, samples=()):
        nonlocal mismatches
        mismatches += int(count)
        errors.append(message)
        bad_samples.update(int(v) for v in samples)

    if run.timed_out:
        fail(1, f"the run stopped waiting: {run.beats_out} of {n_samples} scores after {run.cycles} cycles")
    # Hidden layers: spikes per step, closes, last flags.
    boundaries = []  # per layer: the cycle of each sample's last close (saturation counters are read there)
    taps = run.records.get("layer_taps")
    tap_layout = dut.layer_taps.shape() if dut.hidden else None
    for k, layer in enumerate(params.layers[:len(dut.hidden)]):
        values = taps["value"]
        valid = field(values, tap_layout, f"layer_{k}.valid").astype(bool)
        beats, cycles = values[valid], taps["cycle"][valid]
        close = field(beats, tap_layout, f"layer_{k}.close").astype(bool)
        last = field(beats, tap_layout, f"layer_{k}.last").astype(bool)
        index = field(beats, tap_layout, f"layer_{k}.index").astype(np.int64)
        step = np.cumsum(close) - close  # the step each beat belongs to (a close ends its step)
        if int(close.sum()) != total_steps:
            fail(abs(int(close.sum()) - total_steps), f"layers[{k}]: {int(close.sum())} steps closed, expected {total_steps}")
        want_last = (np.arange(int(close.sum())) % n_steps) == n_steps - 1
        if not np.array_equal(last[close], want_last):
            fail(int((last[close] != want_last).sum()), f"layers[{k}]: the last flags of the closes differ")
        spikes = ~close
        if bool((step[spikes] >= total_steps).any()) or bool((index[spikes] >= layer.n_out).any()):
            fail(int(((step[spikes] >= total_steps) | (index[spikes] >= layer.n_out)).sum()),
                 f"layers[{k}]: spikes after the last close or beyond the layer")
        keep = spikes & (step < total_steps) & (index < layer.n_out)
        got = np.zeros((total_steps, layer.n_out), dtype=np.int64)
        np.add.at(got, (step[keep], index[keep]), 1)
        diff = np.argwhere(got != expected["spikes"][k])
        if diff.size:
            g, i = diff[0]
            fail(len(diff), f"layers[{k}] sample {g // n_steps} step {g % n_steps} neuron {i}: "
                            f"spiked {got[g, i]} times, expected {int(expected['spikes'][k][g, i])} ({len(diff)} words differ)",
                 diff[:, 0] // n_steps)
        closes = cycles[close]
        boundaries.append(closes[n_steps - 1::n_steps][:n_samples])
    if dut.flames:
        boundaries += _check_memory(dut, run, expected, n_samples, fail)
    else:
        boundaries.append(_check_readout(dut, n_steps, run, expected, n_samples, fail))
    # Scores and argmax.
    scores = run.records["o_scores"]
    s_layout = dut.o_scores.payload.shape()
    n_classes = params.n_classes
    if len(scores) != n_samples:
        fail(abs(len(scores) - n_samples), f"scores: {len(scores)} beats, expected {n_samples}")
    width = s_layout["scores"].shape.elem_shape.width
    got_scores = np.stack([_signed(field(scores["value"], s_layout, f"scores.{c}"), width) for c in range(n_classes)], 1)
    got_argmax = field(scores["value"], s_layout, "argmax").astype(np.int64)
    m = min(len(scores), n_samples)
    bad = np.flatnonzero((got_scores[:m] != expected["scores"][:m]).any(1) | (got_argmax[:m] != expected["argmax"][:m]))
    if bad.size:
        s = bad[0]
        fail(bad.size, f"sample {s}: scores {got_scores[s].tolist()} argmax {got_argmax[s]}, expected "
                       f"{expected['scores'][s].tolist()} argmax {expected['argmax'][s]} ({bad.size} samples differ)", bad)
    # Drops: each counter increment, in order, against the predicted drops.
    steps = []
    for code, name in enumerate(COUNTERS):
        rec = run.records[name]
        values = rec["value"].astype(np.int64)
        if bool((np.diff(np.concatenate([[0], values])) != 1).any()):
            fail(1, f"{name}: a change by other than +1")
        steps.append(np.stack([rec["cycle"].astype(np.int64), np.full(len(rec), code)], 1))
    observed = np.concatenate(steps)
    observed = observed[np.argsort(observed[:, 0], kind="stable"), 1]
    if not np.array_equal(observed, stimulus.drops):
        n = min(len(observed), len(stimulus.drops))
        first = int(np.flatnonzero(observed[:n] != stimulus.drops[:n])[0]) if (observed[:n] != stimulus.drops[:n]).any() else n
        fail(max(1, abs(len(observed) - len(stimulus.drops))),
             f"drops: {len(observed)} counted, {len(stimulus.drops)} predicted; first difference at drop {first}")
    # Saturation counters, per layer and sample (read where the layer finished the sample).
    for name in ("current_saturation", "neuron_saturation"):
        rec = run.records[name]
        layout = getattr(dut, name).shape()
        for k in range(len(params.layers)):
            if len(boundaries[k]) != n_samples:
                continue
            at = _counter_at(rec, boundaries[k], str(k), layout)
            got = np.diff(np.concatenate([[0], at]))
            bad = np.flatnonzero(got != expected[name][:, k])
            if bad.size:
                fail(bad.size, f"{name}[{k}] sample {bad[0]}: {got[bad[0]]}, expected {expected[name][bad[0], k]} "
                               f"({bad.size} samples differ)", bad)
    return {"mismatches": mismatches, "first": errors, "bad_samples": bad_samples, "argmax": got_argmax,
            "scores": got_scores}


def _check_memory(dut: NetworkProcessor, run: HarnessRun, expected: dict, n_samples: int, fail) -> list:
    """A FLAMES network's SA-HiPPO memory: every mode beat and every event's soma output, per
    channel in order, and its clipped-interval counter per sample. Returns the cycles at which
    the memory layer and the event-pooling readout finished each sample (their counters are
    read there): the sample's last soma output, and its scores beat."""
    for name, fields, part in (("memory_state_tap", MEMORY_STATE_FIELDS, "states"),
                               ("memory_output_tap", MEMORY_OUTPUT_FIELDS, "outputs")):
        records = run.records[name]
        layout = getattr(dut, name).shape()
        valid = field(records["value"], layout, "valid").astype(bool)
        values = records["value"][valid]
        columns = []
        for f in fields:
            column = field(values, layout, f)
            shape = layout[f].shape
            columns.append(_signed(column, shape.width) if shape.signed else column.astype(np.int64))
        got = _by_channel(np.stack(columns, 1) if len(values) else np.zeros((0, len(fields)), np.int64), 0)
        want = expected[f"memory_{part}"]
        if got.shape != want.shape:
            fail(abs(len(got) - len(want)), f"memory {part}: {len(got)} beats, expected {len(want)}")
        n = min(len(got), len(want))
        diff = np.flatnonzero((got[:n] != want[:n]).any(1))
        if diff.size:
            j = diff[0]
            fail(diff.size, f"memory {part}: beat {j} of channel order: expected "
                            f"{dict(zip(fields, want[j].tolist()))}, got {dict(zip(fields, got[j].tolist()))} "
                            f"({diff.size} beats differ)")
        if part == "outputs":
            cycles = records["cycle"][valid]
    ends = np.cumsum(expected["memory_events"])  # soma outputs up to each sample's end
    if len(cycles) < int(ends[-1]):
        return [np.zeros(0, dtype=np.int64)] * 2  # counted above; no counter can be placed
    memory_done = np.array([cycles[e - 1] if e else -1 for e in ends], dtype=np.int64)
    at = _counter_at(run.records["clipped_interval"], memory_done, None, None)
    got = np.diff(np.concatenate([[0], at]))
    bad = np.flatnonzero(got != expected["clipped_interval"])
    if bad.size:
        fail(bad.size, f"clipped_interval sample {bad[0]}: {got[bad[0]]}, expected {expected['clipped_interval'][bad[0]]} "
                       f"({bad.size} samples differ)", bad)
    return [memory_done, run.records["o_scores"]["cycle"][:n_samples]]


def _check_readout(dut: NetworkProcessor, n_steps: int, run: HarnessRun, expected: dict, n_samples: int, fail):
    """Every readout membrane at every step; returns the cycle of each sample's last update."""
    params = dut.params
    readout = run.records["readout_tap"]
    r_layout = dut.readout_tap.shape()
    n_classes = params.n_classes
    neuron = field(readout["value"], r_layout, "neuron").astype(np.int64)
    u = _signed(field(readout["value"], r_layout, "u"), r_layout["u"].width)
    want_u = expected["readout_u"]
    if len(u) != want_u.size:
        fail(abs(len(u) - want_u.size), f"readout: {len(u)} membrane updates, expected {want_u.size}")
    n_rows = min(len(u), want_u.size) // n_classes
    rows = np.repeat(np.arange(n_rows), n_classes)
    got_u = np.full((n_rows, n_classes), np.iinfo(np.int64).min)
    got_u[rows, neuron[:rows.size]] = u[:rows.size]
    diff = np.argwhere(got_u != want_u[:n_rows])
    if diff.size:
        g, i = diff[0]
        fail(len(diff), f"readout sample {g // n_steps} step {g % n_steps} neuron {i}: u expected {want_u[g, i]}, "
                        f"got {got_u[g, i]} ({len(diff)} words differ)", diff[:, 0] // n_steps)
    return readout["cycle"][n_steps * n_classes - 1::n_steps * n_classes][:n_samples]


def processor_harness(dut: NetworkProcessor, name: str) -> VerilatorHarness:
    """The Verilator harness of ``dut`` under ``build/sim/soak/<name>/``: input ``i``, the scores
    stream, the layer and readout taps (a FLAMES network: the memory taps), the drop and
    saturation counters (and the clipped intervals), ``n_steps`` held."""
    readout = ["memory_state_tap", "memory_output_tap"] if dut.flames else ["readout_tap"]
    return VerilatorHarness(dut, SOAK_BUILD / name, outputs=["o_scores"],
                            taps=(["layer_taps"] if dut.hidden else []) + readout,
                            counters=COUNTERS + ["current_saturation", "neuron_saturation"]
                            + (["clipped_interval"] if dut.flames else []), constants=["n_steps"])


def soak_part(name: str, params: NetworkParams, n_steps: int, n_events: int, seed: int, lanes: int, log=print) -> dict:
    """One network: build, stimulus, run, check; a table row."""
    rng = np.random.default_rng(seed)
    dut = NetworkProcessor(params, n_steps=n_steps, lanes=lanes)
    harness = processor_harness(dut, f"{name}_lanes{lanes}")
    harness.build(log=log)
    start = time.perf_counter()
    stimulus = make_stimulus(params, n_steps, n_events, rng)
    expected = golden_expectation(params, stimulus.counts)
    log(f"{name}: {stimulus.n_events:,} events in {stimulus.counts.shape[0]:,} samples, stimulus and golden "
        f"in {time.perf_counter() - start:.0f} s; simulating")
    words = harness.pack({"kind": stimulus.kind, "channel": stimulus.channel, "tick": stimulus.tick})
    run = harness.run(harness.build_dir / "run", words, stimulus.gaps, ready_pattern=backpressure_pattern(rng),
                      constants=[n_steps], expected_beats=stimulus.counts.shape[0], log=log)
    result = check(dut, n_steps, stimulus, run, expected)
    for message in result["first"]:
        log(f"{name}: MISMATCH {message}")
    drops = {reason: int((stimulus.drops == code).sum()) for code, reason in enumerate(DROP_REASONS)}
    return {
        "network": name, "lanes": lanes, "steps": n_steps, "events": stimulus.n_events,
        "samples": int(stimulus.counts.shape[0]), "cycles": run.cycles, "sim_s": round(run.seconds, 2),
        "events_per_s": round(stimulus.n_events / run.seconds), "cycles_per_s": round(run.cycles / run.seconds),
        "mismatches": result["mismatches"], **{f"dropped_{k}": v for k, v in drops.items()},
        "kept": int(stimulus.counts.sum()), "first_mismatch": "; ".join(result["first"]) or None,
    }


COLUMNS = ["network", "lanes", "events", "samples", "cycles", "sim_s", "events_per_s", "cycles_per_s", "mismatches",
           "kept", "dropped_backwards", "dropped_out_of_range", "dropped_late", "dropped_over_bound"]


#: The model files' part of the events (shared among them): a model's event costs several
#: times the cycles of a random network's (176-neuron layers), so the random networks take most.
MODEL_SHARE = 0.1


def event_shares(n_events: int, n_random: int, n_models: int) -> list[int]:
    """Events per part: :data:`MODEL_SHARE` of them for the models, the rest for the random networks."""
    weights = [(1 - MODEL_SHARE) / n_random] * n_random + ([MODEL_SHARE / n_models] * n_models if n_models else [])
    weights = np.asarray(weights) / sum(weights)
    shares = np.floor(weights * n_events).astype(int)
    shares[0] += n_events - shares.sum()
    return shares.tolist()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=positive_int, default=DEFAULT_EVENTS,
                        help="input events in all (default %(default)s); the model files share a tenth")
    parser.add_argument("--seed", type=non_negative_int, default=1)
    parser.add_argument("--model", type=existing_file, nargs="*", default=[DEFAULT_MODEL],
                        help="model files to soak besides the random networks (default: %(default)s; none: --model)")
    parser.add_argument("--lanes", type=positive_int, default=8, help="synapse lanes per layer (default %(default)s)")
    args = parser.parse_args(argv)
    require_tools("run the soak")
    from golden.model_file import load_model

    parts = [(name, random_network(args.seed + k, **kw), steps) for k, (name, kw, steps) in enumerate(RANDOM_NETWORKS)]
    for path in args.model:
        params = load_model(path)
        parts.append((Path(path).stem, params, int((params.provenance or {}).get("n_steps", 32))))
    shares = event_shares(args.events, len(RANDOM_NETWORKS), len(args.model))
    rows = [soak_part(name, params, steps, n, args.seed * 1000 + k, args.lanes)
            for k, ((name, params, steps), n) in enumerate(zip(parts, shares))]
    total = {"network": "all", "lanes": args.lanes,
             **{c: sum(r[c] for r in rows) for c in COLUMNS if c not in ("network", "lanes", "events_per_s",
                                                                        "cycles_per_s", "sim_s")}}
    total["sim_s"] = round(sum(r["sim_s"] for r in rows), 2)
    total["events_per_s"] = round(total["events"] / total["sim_s"])
    total["cycles_per_s"] = round(total["cycles"] / total["sim_s"])
    rows.append(total)
    write_results("soak", rows, meta={
        "seed": args.seed, "what": "NetworkProcessor Verilog on Verilator (C++ harness, sim/verilator.py) against "
        "golden.network.run_network: every spike, readout membrane, score, drop and saturation count",
        "events_per_s": "input events / seconds of the harness's cycle loop (compiled simulation alone)",
    }, columns=COLUMNS)
    return 1 if total["mismatches"] else 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
