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

``--link`` sends the same beats as framed bytes through
:class:`hw.boards.ulx3s_processor.FramedProcessor` (frame decoder, processor, frame encoder: the
board's :class:`~hw.boards.ulx3s_processor.ProcessorLink` without its UART), one byte per cycle
at most, under :class:`LinkSoakTop`:

* EVENT frames (some with an out-of-range ``y`` or polarity besides the channels), samples
  ended by END_OF_SAMPLE or RESET, READ_STATUS after some samples, within a few and at the end;
* mixed in (:data:`MALFORMED`): garbage bytes, frames with a flipped payload or CRC bit, with a
  wrong ``LEN``, with an unknown ``CMD``, and frames cut short by a pause of at least the
  decoder's timeout; idle cycles inside frames (some up to the timeout minus one), between
  them (some long), and a random backpressure pattern on the result bytes.

Every byte goes through :class:`golden.protocol.FrameDecoderModel`, which predicts each frame's
fate and the counters at each READ_STATUS; its delivered commands go through
:func:`sim.processor_model.time_bin_fates` and :func:`golden.network.run_network`. The result
bytes are parsed with the golden parser and compared frame by frame (each SCORES with its
argmax, each STATUS with its ten counters) and byte for byte, and each increment of the
processor's drop counters against the predicted drops. Frames start only while
``LinkSoakTop.busy`` is low (no command waiting, no STATUS outstanding), where the decoder hunts
for ``SYNC``, so the pacing changes no frame's fate and the command FIFO never overflows. The
table goes to ``build/bench/soak_link.json``.
"""

from __future__ import annotations

import argparse
import binascii
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bench.common import write_results
from golden.cli import existing_file, non_negative_int, positive_int, run_main
from golden.data import REPO_ROOT
from golden.network import NetworkParams, run_network
from golden.protocol import (
    COUNTER_NAMES, COUNTER_WIDTH, SYNC, EndOfSample, Event, FrameDecoderModel,
    ReadStatus, Reset, Scores, Status, decode_results, encode_scores, encode_status, saturate_score,
)
from hw.boards.ulx3s_processor import FramedProcessor, link_geometry
from hw.link.frame_decoder import CommandKind
from hw.link.frame_encoder import ResultKind
from hw.processor.network import NetworkProcessor, is_flames
from sim.processor_model import DROP_REASONS, random_network, time_bin_fates
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


def random_beats(params: NetworkParams, n_steps: int, n_events: int, rng: np.random.Generator, *,
                 max_burst: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Input beats ``(kind, channel, tick)``: samples of random bursts with out-of-range, backwards,
    late and over-bound events mixed in, until ``n_events`` EVENT beats; each sample ends with END."""
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
    return np.concatenate(kinds), np.concatenate(channels), np.concatenate(ticks)


def make_stimulus(params: NetworkParams, n_steps: int, n_events: int, rng: np.random.Generator, *,
                  max_burst: int = 64) -> Stimulus:
    """:func:`random_beats` with idle gaps, and their fates under the time-bin rule."""
    kind, channel, tick = random_beats(params, n_steps, n_events, rng, max_burst=max_burst)
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


def check_drops(run: HarnessRun, predicted: np.ndarray, fail) -> None:
    """Each increment of the four drop counters, in cycle order, against the predicted drop reasons
    (codes into :data:`DROP_REASONS`); ``fail(count, message)`` for each difference."""
    steps = []
    for code, name in enumerate(COUNTERS):
        rec = run.records[name]
        values = rec["value"].astype(np.int64)
        if bool((np.diff(np.concatenate([[0], values])) != 1).any()):
            fail(1, f"{name}: a change by other than +1")
        steps.append(np.stack([rec["cycle"].astype(np.int64), np.full(len(rec), code)], 1))
    observed = np.concatenate(steps)
    observed = observed[np.argsort(observed[:, 0], kind="stable"), 1]
    if not np.array_equal(observed, predicted):
        n = min(len(observed), len(predicted))
        first = int(np.flatnonzero(observed[:n] != predicted[:n])[0]) if (observed[:n] != predicted[:n]).any() else n
        fail(max(1, abs(len(observed) - len(predicted))),
             f"drops: {len(observed)} counted, {len(predicted)} predicted; first difference at drop {first}")


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
    check_drops(run, stimulus.drops, fail)
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


# --- The link soak: framed bytes through the decoder, the processor and the encoder -----------

#: Frame decoder timeout of the link soak's build, in clock cycles (short: a truncation costs few cycles).
LINK_TIMEOUT = 48
#: Idle cycles before the byte that follows a READ_STATUS frame: longer than the decoder's
#: 4 cycles from a frame's last byte to its command, so ``busy`` already holds that byte back.
STATUS_GAP = 16
#: Malformations put before a frame, each with its probability per frame.
MALFORMED = {"garbage": 0.004, "bad_crc": 0.003, "bad_length": 0.003, "unknown_command": 0.002, "truncated": 0.002}
#: Probability per frame of a long pause inside it (at most ``LINK_TIMEOUT - 1`` idle cycles: not a truncation).
LONG_PAUSE = 0.01
#: Probabilities per sample of ending it with RESET instead of END_OF_SAMPLE, and of a READ_STATUS after it.
RESET_SHARE, STATUS_SHARE = 0.07, 0.1


class LinkSoakTop(wiring.Component):
    """:class:`~hw.boards.ulx3s_processor.FramedProcessor` with what the link soak observes.

    Members
    -------
    i : ``In(stream.Signature(8))``, o : ``Out(stream.Signature(8))``
        The framed processor's byte streams (host to board, board to host).
    busy : ``Out(1)``
        High while a command waits at the frame decoder's output, and from a READ_STATUS leaving
        the decoder until the encoder takes its STATUS. The soak's host starts a frame only while
        it is low (on the board the line rate keeps the decoder's command FIFO from filling, and
        the STATUS snapshot then holds exactly the frames sent before its READ_STATUS).
    dropped_backwards, dropped_out_of_range, dropped_late, dropped_over_bound : ``Out(32)``
        The processor's drop counters.
    """

    def __init__(self, params: NetworkParams, *, n_steps: int, lanes: int, timeout_cycles: int = LINK_TIMEOUT):
        self.params = params
        self.framed = FramedProcessor(params, n_steps=n_steps, lanes=lanes, timeout_cycles=timeout_cycles)
        super().__init__({"i": In(stream.Signature(8)), "o": Out(stream.Signature(8)), "busy": Out(1),
                          **{name: Out(COUNTER_WIDTH) for name in COUNTERS}})

    def elaborate(self, platform):
        m = Module()
        m.submodules.framed = framed = self.framed
        wiring.connect(m, wiring.flipped(self.i), framed.i)
        wiring.connect(m, framed.o, wiring.flipped(self.o))
        command, result = framed.decoder.o, framed.encoder.i
        status_asked = Signal()
        with m.If(command.valid & command.ready & (command.payload.kind == CommandKind.READ_STATUS)):
            m.d.sync += status_asked.eq(1)
        with m.If(result.valid & result.ready & (result.payload.kind == ResultKind.STATUS)):
            m.d.sync += status_asked.eq(0)
        m.d.comb += self.busy.eq(command.valid | status_asked)
        m.d.comb += [getattr(self, name).eq(getattr(framed.processor, name)) for name in COUNTERS]
        return m


def _frame(cmd: int, payload: bytes = b"") -> bytes:
    """A frame as :func:`golden.protocol.encode_frame` builds it (``binascii.crc_hqx`` is the same
    CRC-16/IBM-3740, in C: the soak builds millions)."""
    body = bytes((cmd, len(payload))) + payload
    return bytes((SYNC,)) + body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "big")


@dataclass
class LinkStimulus:
    """The host's byte stream of a link-soak part and everything the golden side predicts of it."""

    data: np.ndarray  # uint8: the bytes, in order
    gaps: np.ndarray  # idle cycles before each byte
    paced: np.ndarray  # bool: the byte may wait for ``busy`` (the decoder hunts for SYNC there)
    sent: dict  # frames sent, by what they were built as (event, end_of_sample, reset, read_status, malformations)
    counters: dict  # the golden decoder's counters after the last byte
    drops: np.ndarray  # the processor's drop reasons (DROP_REASONS codes), in order
    counts: np.ndarray  # (samples, steps, n_inputs): the events each sample keeps
    frames: list  # the result frames expected, in order: (label, decoded result)
    expected: bytes  # the same, as bytes

    @property
    def n_events(self) -> int:
        return self.sent["event"]


def make_link_stimulus(params: NetworkParams, n_steps: int, n_events: int, rng: np.random.Generator, *,
                       timeout: int = LINK_TIMEOUT) -> LinkStimulus:
    """The beats of :func:`random_beats` as frames (with out-of-range ``y`` and polarity besides the
    out-of-range channels; samples ended by END_OF_SAMPLE or RESET; READ_STATUS after some samples,
    within a few and at the end), with :data:`MALFORMED` frames and garbage mixed in, idle cycles
    between and inside frames (some up to ``timeout - 1``, some truncating), and the golden
    prediction: :class:`golden.protocol.FrameDecoderModel` on the bytes,
    :func:`sim.processor_model.time_bin_fates` and :func:`golden.network.run_network` on the
    commands it delivers."""
    kind, channel, tick = random_beats(params, n_steps, n_events, rng)
    n = len(kind)
    y = np.zeros(n, dtype=np.int64)
    polarity = np.zeros(n, dtype=np.int64)
    odd = rng.random(n)
    y[odd < 0.001] = rng.integers(1, 1 << 16, int((odd < 0.001).sum()))
    polarity[(odd >= 0.001) & (odd < 0.002)] = rng.integers(1, 256, int(((odd >= 0.001) & (odd < 0.002)).sum()))
    names = list(MALFORMED)
    cumulative = np.cumsum([MALFORMED[name] for name in names])
    malformation = np.searchsorted(cumulative, rng.random(n), side="right")  # len(names): none
    reset = rng.random(n) < RESET_SHARE
    status_after = (rng.random(n) < STATUS_SHARE) & (kind == 1) | (rng.random(n) < 0.0005)
    status_after[-1] = True
    sent = dict.fromkeys(["event", "end_of_sample", "reset", "read_status", *names], 0)
    chunks, starts, truncating = [], [], []  # byte strings; offsets of frame / garbage starts; truncation ends
    position = 0

    def put(chunk: bytes):
        nonlocal position
        starts.append(position)
        chunks.append(chunk)
        position += len(chunk)

    for j, (k, c, t) in enumerate(zip(kind.tolist(), channel.tolist(), tick.tolist())):
        bad = int(malformation[j])
        if bad < len(names):
            name = names[bad]
            sent[name] += 1
            if name == "garbage":
                put(rng.integers(0, 256, int(rng.integers(1, 9)), dtype=np.uint8).tobytes())
            elif name == "bad_crc":
                fields = (*rng.integers(0, 1 << 8, 3), int(rng.integers(0, 1 << 32)))
                frame = bytearray(_frame(0x01, struct.pack(">HHBI", *fields)))
                bit = int(rng.integers(3 * 8, len(frame) * 8))  # a payload or CRC bit
                frame[bit // 8] ^= 1 << (bit % 8)
                put(bytes(frame))
            elif name == "bad_length":
                cmd = int(rng.integers(1, 5))
                right = 9 if cmd == 1 else 0
                length = int(rng.choice([v for v in range(0, 12) if v != right]))
                put(bytes((SYNC, cmd, length)) + rng.integers(0, 256, length, dtype=np.uint8).tobytes() + b"\0\0")
            elif name == "unknown_command":
                cmd = int(rng.integers(5, 256))
                put(_frame(cmd, rng.integers(0, 256, int(rng.integers(0, 33)), dtype=np.uint8).tobytes()))
            else:  # truncated: a prefix of an EVENT frame, then a pause of at least the timeout
                frame = _frame(0x01, struct.pack(">HHBI", int(rng.integers(0, params.n_inputs)), 0, 0, t))
                put(frame[:int(rng.integers(1, len(frame)))])
                truncating.append(position)
        if k:
            is_reset = bool(reset[j])
            sent["reset" if is_reset else "end_of_sample"] += 1
            put(_frame(0x03 if is_reset else 0x02))
        else:
            sent["event"] += 1
            put(_frame(0x01, struct.pack(">HHBI", c, int(y[j]), int(polarity[j]), t)))
        if status_after[j]:
            sent["read_status"] += 1
            put(_frame(0x04))
    data = np.frombuffer(b"".join(chunks), dtype=np.uint8)
    starts = np.asarray(starts, dtype=np.int64)
    # Idle cycles: a few inside frames, more between them, long pauses inside some, truncations.
    gaps = np.where(rng.random(len(data)) < 0.05, rng.integers(1, 4, len(data)), 0)
    gaps[starts] = np.where(rng.random(len(starts)) < 0.8, 0, rng.geometric(0.25, len(starts)))
    long = rng.random(len(starts)) < 0.0005
    gaps[starts[long]] = rng.integers(100, 2000, int(long.sum()))
    pauses = starts[rng.random(len(starts)) < LONG_PAUSE] + 1
    pauses = pauses[pauses < len(data)]
    gaps[pauses] = np.where(rng.random(len(pauses)) < 0.25, timeout - 1,
                            rng.integers(timeout // 2, timeout, len(pauses)))
    truncating = np.asarray([p for p in truncating if p < len(data)], dtype=np.int64)
    gaps[truncating] = timeout + rng.integers(0, 64, len(truncating))
    # The golden decoder on the bytes: each command, the counters at each READ_STATUS, the pacing points.
    model = FrameDecoderModel(link_geometry(params))
    parser = model.parser
    paced = np.zeros(len(data), dtype=bool)
    commands, snapshots = [], []
    for j, (byte, gap) in enumerate(zip(data.tolist(), gaps.tolist())):
        if gap >= timeout:
            model.timeout()
        paced[j] = not parser.in_frame
        model.feed(byte)
        if model.pending:
            for command in model.take():
                commands.append(command)
                if isinstance(command, ReadStatus):
                    snapshots.append(model.counters)
                    if j + 1 < len(data):  # after a complete frame the decoder hunts: the pause changes nothing
                        gaps[j + 1] = max(gaps[j + 1], STATUS_GAP)
    # The processor's time bins and the golden network on the delivered commands.
    beats = [(0, cmd.x, cmd.timestamp) if isinstance(cmd, Event) else (1, 0, 0)
             for cmd in commands if not isinstance(cmd, ReadStatus)]
    b_kind, b_channel, b_tick = (np.asarray(col, dtype=np.int64) for col in zip(*beats))
    counts, fates = time_bin_fates(params, n_steps, b_kind, b_channel, b_tick)
    scores, argmax = golden_scores(params, counts)
    frames, expected = [], bytearray()
    sample = status = 0
    for command in commands:
        if isinstance(command, ReadStatus):
            counters = snapshots[status]
            frames.append((f"STATUS {status}", Status(counters)))
            expected += encode_status(counters)
            status += 1
        elif isinstance(command, (EndOfSample, Reset)):
            if isinstance(command, EndOfSample):
                values = [saturate_score(v) for v in scores[sample]]
                frames.append((f"SCORES of sample {sample}", Scores(tuple(values), int(argmax[sample]))))
                expected += encode_scores(values, int(argmax[sample]))
            sample += 1
    return LinkStimulus(data=data, gaps=gaps, paced=paced, sent=sent, counters=model.counters,
                        drops=fates[fates >= 0], counts=counts, frames=frames, expected=bytes(expected))


def golden_scores(params: NetworkParams, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``(samples, classes)`` and argmax of :func:`golden.network.run_network` on every sample."""
    widest = max(max(layer.n_out, layer.n_in) for layer in params.layers)
    chunk = int(np.clip(2 ** 20 // (max(1, counts.shape[1]) * widest), 16, 1024))
    scores, argmax = [np.zeros((0, params.n_classes), dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for start in range(0, counts.shape[0], chunk):
        trace = run_network(params, torch.from_numpy(counts[start:start + chunk]))
        scores.append(trace.scores.numpy().astype(np.int64))
        argmax.append(trace.prediction.numpy().astype(np.int64))
    return np.concatenate(scores), np.concatenate(argmax)


def check_link(stimulus: LinkStimulus, run: HarnessRun) -> dict:
    """Every difference between the link run and the prediction: each result frame (SCORES with
    argmax, STATUS with every counter), the bytes, and each processor drop.

    Returns ``{"mismatches": n, "first": [...]}``.
    """
    errors: list[str] = []
    mismatches = 0

    def fail(count: int, message: str):
        nonlocal mismatches
        mismatches += int(count)
        errors.append(message)

    want = stimulus.frames
    if run.timed_out:
        fail(1, f"the run stopped waiting: {run.beats_out} of {len(stimulus.expected)} result bytes "
                f"after {run.cycles} cycles")
    got_bytes = run.records["o"]["value"].astype(np.uint8).tobytes()
    got, parse_errors = decode_results(got_bytes)
    if any(parse_errors.values()):
        fail(sum(parse_errors.values()), f"result bytes that are not clean frames: {parse_errors}")
    if len(got) != len(want):
        fail(abs(len(got) - len(want)), f"{len(got)} result frames, expected {len(want)}")
    bad = [k for k, (frame, (_, expect)) in enumerate(zip(got, want)) if frame != expect]
    if bad:
        label, expect = want[bad[0]]
        frame = got[bad[0]]
        if isinstance(frame, Status) and isinstance(expect, Status):
            detail = ", ".join(f"{name} {frame.counters[name]} (expected {expect.counters[name]})"
                               for name in expect.counters if frame.counters[name] != expect.counters[name])
        else:
            detail = f"{frame}, expected {expect}"
        fail(len(bad), f"result frame {bad[0]} ({label}): {detail} ({len(bad)} frames differ)")
    if not mismatches and got_bytes != stimulus.expected:
        fail(1, "the result bytes differ from the golden encoder's")
    check_drops(run, stimulus.drops, fail)
    return {"mismatches": mismatches, "first": errors}


def link_harness(dut: LinkSoakTop, name: str) -> VerilatorHarness:
    """The Verilator harness of ``dut`` under ``build/sim/soak/<name>/``: bytes in on ``i`` (paced by
    ``busy``), result bytes out on ``o`` (under backpressure), the processor's drop counters."""
    return VerilatorHarness(dut, SOAK_BUILD / name, outputs=["o"], counters=COUNTERS, pace="busy")


def run_link(harness: VerilatorHarness, stimulus: LinkStimulus, ready_pattern, *, run_dir=None,
             drain_cycles: int = 10_000_000, log=print) -> HarnessRun:
    """Send the stimulus's bytes through the harness until every expected result byte is out
    (run files in ``run_dir``, default ``run`` in the harness's build folder)."""
    return harness.run(run_dir or harness.build_dir / "run", stimulus.data.astype(np.uint64), stimulus.gaps,
                       paced=stimulus.paced, ready_pattern=ready_pattern, expected_beats=len(stimulus.expected),
                       drain_cycles=drain_cycles, log=log)


#: Events per harness run of the link soak (each run starts from reset): bounds the memory the
#: golden prediction of a run holds (its bytes, its commands).
LINK_BATCH = 1_000_000


def link_part(name: str, params: NetworkParams, n_steps: int, n_events: int, seed: int, lanes: int, log=print) -> dict:
    """One network through the framed link, in runs of at most :data:`LINK_BATCH` events: build,
    stimulus, run, check; a table row (sums over the runs)."""
    rng = np.random.default_rng(seed)
    harness = link_harness(LinkSoakTop(params, n_steps=n_steps, lanes=lanes), f"link_{name}_lanes{lanes}")
    harness.build(log=log)
    row = {"network": name, "lanes": lanes, "steps": n_steps, "runs": 0, "sent": {}, "first_mismatch": None}
    sums = dict.fromkeys(["events", "samples", "frames", "malformed", "bytes_in", "bytes_out", "cycles", "sim_s",
                          "mismatches", "kept", *COUNTER_NAMES, "lost", *(f"dropped_{k}" for k in DROP_REASONS)], 0)
    for batch in range(0, n_events, LINK_BATCH):
        start = time.perf_counter()
        stimulus = make_link_stimulus(params, n_steps, min(LINK_BATCH, n_events - batch), rng)
        log(f"{name}: {stimulus.n_events:,} events in {len(stimulus.data):,} bytes ({stimulus.counts.shape[0]:,} "
            f"samples), stimulus and golden in {time.perf_counter() - start:.0f} s; simulating")
        run = run_link(harness, stimulus, backpressure_pattern(rng), log=log)
        result = check_link(stimulus, run)
        for message in result["first"]:
            log(f"{name}: MISMATCH {message}")
        c, sent = stimulus.counters, stimulus.sent
        delivered = len(stimulus.drops) + int(stimulus.counts.sum())  # EVENT commands the processor got
        values = {
            "events": stimulus.n_events, "samples": int(stimulus.counts.shape[0]), "frames": sum(sent.values()),
            "malformed": sum(sent[k] for k in MALFORMED if k != "garbage"), "bytes_in": len(stimulus.data),
            "bytes_out": len(stimulus.expected), "cycles": run.cycles, "sim_s": run.seconds,
            "mismatches": result["mismatches"], "kept": int(stimulus.counts.sum()), **c,
            "lost": stimulus.n_events - delivered - c["address_out_of_range"] - c["timestamp_backwards"],
            **{f"dropped_{k}": int((stimulus.drops == code).sum()) for code, k in enumerate(DROP_REASONS)},
        }
        for key, value in values.items():
            sums[key] += value
        for key, value in sent.items():
            row["sent"][key] = row["sent"].get(key, 0) + value
        row["runs"] += 1
        row["first_mismatch"] = row["first_mismatch"] or ("; ".join(result["first"]) or None)
    sums["sim_s"] = round(sums["sim_s"], 2)
    return {**row, **sums, "events_per_s": round(sums["events"] / sums["sim_s"]),
            "cycles_per_s": round(sums["cycles"] / sums["sim_s"])}


LINK_COLUMNS = ["network", "lanes", "events", "samples", "frames", "malformed", "bytes_in", "cycles", "sim_s",
                "events_per_s", "cycles_per_s", "mismatches", "kept", "bytes_skipped", "bad_length", "bad_crc",
                "truncated", "unknown_command", "address_out_of_range", "timestamp_backwards", "fifo_overflow", "lost",
                "dropped_late", "dropped_over_bound"]


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
    parser.add_argument("--link", action="store_true",
                        help="send the events as framed bytes through FramedProcessor (frame decoder, processor, "
                             "encoder) with malformed frames mixed in; results in build/bench/soak_link.json")
    args = parser.parse_args(argv)
    require_tools("run the soak")
    from golden.model_file import load_model

    parts = [(name, random_network(args.seed + k, **kw), steps) for k, (name, kw, steps) in enumerate(RANDOM_NETWORKS)]
    for path in args.model:
        params = load_model(path)
        parts.append((Path(path).stem, params, int((params.provenance or {}).get("n_steps", 32))))
    shares = event_shares(args.events, len(RANDOM_NETWORKS), len(args.model))
    part, columns = (link_part, LINK_COLUMNS) if args.link else (soak_part, COLUMNS)
    rows = [part(name, params, steps, n, args.seed * 1000 + k, args.lanes)
            for k, ((name, params, steps), n) in enumerate(zip(parts, shares))]
    total = {"network": "all", "lanes": args.lanes,
             **{c: sum(r[c] for r in rows) for c in columns if c not in ("network", "lanes", "events_per_s",
                                                                        "cycles_per_s", "sim_s")}}
    total["sim_s"] = round(sum(r["sim_s"] for r in rows), 2)
    total["events_per_s"] = round(total["events"] / total["sim_s"])
    total["cycles_per_s"] = round(total["cycles"] / total["sim_s"])
    rows.append(total)
    if args.link:
        write_results("soak_link", rows, meta={
            "seed": args.seed, "what": "FramedProcessor Verilog (frame decoder, NetworkProcessor, frame encoder) on "
            "Verilator, fed framed bytes with malformed frames and garbage mixed in: every result frame against the "
            "golden decoder and golden.network.run_network, every processor drop against time_bin_fates",
            "events": "well-formed EVENT frames sent; malformed: bad_crc, bad_length, unknown_command and truncated "
            "frames built as such (garbage runs besides); lost: well-formed EVENT frames swallowed by a malformed "
            "neighbour (counted in that neighbour's counter)",
            "events_per_s": "events / seconds of the harness's cycle loop (compiled simulation alone)",
        }, columns=columns)
    else:
        write_results("soak", rows, meta={
            "seed": args.seed, "what": "NetworkProcessor Verilog on Verilator (C++ harness, sim/verilator.py) against "
            "golden.network.run_network: every spike, readout membrane, score, drop and saturation count",
            "events_per_s": "input events / seconds of the harness's cycle loop (compiled simulation alone)",
        }, columns=columns)
    return 1 if total["mismatches"] else 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
