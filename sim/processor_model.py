"""Stimulus and expectations for the streaming event processor, shared by amaranth.sim and cocotb.

The model is :func:`golden.network.run_network`; this module only turns its trace into what
the processor's observation ports show (per hidden layer and step, the set of neurons that
spiked; per step, every readout membrane; per sample, scores and argmax) and turns event
counts into input beats.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from golden.fixed import QFormat
from golden.kinds import network_kinds
from golden.layers import LIReadoutParams
from golden.network import LayerParams, NetworkParams, run_network
from hw.processor.network import is_flames
from sim.stream import array_values

__all__ = ["random_network", "mixed_format_network", "dhlif_network", "flames_example_network", "counts_to_beats",
           "DROP_REASONS", "time_bin_fates", "Expected", "expected_from_counts", "Observed", "scores_of", "compare"]

END = 1
EVENT = 0


def _neuron(kind: str, n: int, rng: np.random.Generator):
    kinds = network_kinds()
    if kind not in kinds or kinds[kind].example_params is None:
        spiking = [name for name, k in kinds.items() if k.example_params is not None]
        raise ValueError(f"unknown hidden kind {kind!r}: one of {', '.join(spiking)}")
    return kinds[kind].example_params(rng, n)


def random_network(seed: int, *, n_inputs: int = 12, hidden=(("refractory_lif", 9),), n_classes: int = 5,
                   bin_ticks: int = 50, max_events_per_step: int = 16, weight_scale: float = 0.6,
                   readout_int_bits: int = 4) -> NetworkParams:
    """A small seeded random network whose currents spike often and sometimes saturate.

    ``hidden`` lists ``(kind, n_out)`` per spiking layer. The readout uses narrow formats
    (``readout_int_bits`` integer bits) so that its clamps are exercised too.
    """
    rng = np.random.default_rng(seed)
    layers = []
    n_prev = n_inputs
    for kind, n_out in hidden:
        neuron = _neuron(kind, n_out, rng)
        frac = neuron.input_fmt.frac_bits
        w_fmt, b_fmt = QFormat(3, frac), QFormat(3, frac)
        weight = w_fmt.quantize(rng.normal(0.1, weight_scale, (n_out, n_prev)))
        bias = b_fmt.quantize(rng.normal(0.0, 0.2, n_out))
        layers.append(LayerParams(weight, bias, w_fmt, b_fmt, neuron))
        n_prev = n_out
    fmt = QFormat(readout_int_bits, 10)
    readout = LIReadoutParams.from_float(alpha=rng.uniform(0.5, 0.95, n_classes), input_fmt=fmt, state_fmt=fmt,
                                         coef_fmt=QFormat(0, 12, signed=False))
    w_fmt = QFormat(3, 10)
    layers.append(LayerParams(w_fmt.quantize(rng.normal(0.0, 1.0, (n_classes, n_prev))),
                              w_fmt.quantize(rng.normal(0.0, 0.3, n_classes)), w_fmt, w_fmt, readout))
    return NetworkParams(n_inputs=n_inputs, bin_ticks=bin_ticks, layers=layers,
                         max_events_per_step=max_events_per_step, provenance={"source": "sim.processor_model",
                                                                              "seed": seed})


def mixed_format_network(seed: int, *, n_inputs: int = 12, n_classes: int = 5, bin_ticks: int = 50,
                         max_events_per_step: int = 16) -> NetworkParams:
    """A seeded random network whose layers use three weight formats (``LayerParams``):

    * layer 0, refractory LIF (9 neurons, input ``sQ4.8``): 9-bit weights ``sQ3.6`` with an
      18-bit per-row scale ``uQ2.16`` in [1/4, 2), shift ``6 + 16 - 8 = 14``;
    * layer 1, C-SiLIF (6 neurons, input ``sQ8.2``): 4-bit weights ``sQ1.3``, shift ``3 - 2 = 1``;
    * the readout: weights that carry its input format's fractional bits (shift 0).
    """
    rng = np.random.default_rng(seed)
    params = random_network(seed, n_inputs=n_inputs, hidden=(("refractory_lif", 9), ("csilif", 6)),
                            n_classes=n_classes, bin_ticks=bin_ticks, max_events_per_step=max_events_per_step)
    first, second, readout = params.layers
    w9, b9, scale_fmt = QFormat(3, 6), QFormat(4, 6), QFormat(2, 16, signed=False)
    scaled = LayerParams(w9.quantize(rng.normal(0.1, 0.6, (first.n_out, n_inputs))),
                         b9.quantize(rng.normal(0.0, 0.2, first.n_out)), w9, b9, first.neuron,
                         row_scale_q=scale_fmt.quantize(rng.uniform(0.25, 2.0, first.n_out)), row_scale_fmt=scale_fmt)
    w4 = QFormat(1, 3)
    narrow = LayerParams(w4.quantize(rng.normal(0.1, 0.6, (second.n_out, first.n_out))),
                         w4.quantize(rng.normal(0.0, 0.2, second.n_out)), w4, w4,
                         replace(second.neuron, input_fmt=QFormat(8, 2)))
    return NetworkParams(n_inputs=n_inputs, bin_ticks=bin_ticks, layers=[scaled, narrow, readout],
                         max_events_per_step=max_events_per_step,
                         provenance={"source": "sim.processor_model.mixed_format_network", "seed": seed})


def dhlif_network(seed: int, *, n_inputs: int = 12, n_hidden: int = 7, n_branches: int = 3, before=(), then=(),
                  n_classes: int = 4, bin_ticks: int = 50, max_events_per_step: int = 16) -> NetworkParams:
    """A seeded random network with a DH-LIF layer: ``n_inputs -> <before> -> dhlif(n_hidden,
    D = n_branches) -> <then> -> li_readout(n_classes)``.

    ``before`` and ``then`` list ``(kind, n_out)`` of further spiking layers (default step
    kinds). The DH-LIF formats are narrow (weights ``sQ3.8``, currents ``sQ4.8``, so drives
    beyond ``sQ6.8`` clamp when many events of a step hit one branch, membrane ``sQ5.8``); the
    branch decays span fast to slow, so the layer spikes often.
    """
    from golden.dhlif import DHLIFParams

    rng = np.random.default_rng(seed)
    head = random_network(seed + 1, n_inputs=n_inputs, hidden=tuple(before), bin_ticks=bin_ticks,
                          max_events_per_step=max_events_per_step).layers[:-1] if before else []
    n_in = head[-1].n_out if head else n_inputs
    w_fmt, current_fmt, membrane_fmt = QFormat(3, 8), QFormat(4, 8), QFormat(5, 8)
    decay_fmt = QFormat(0, 12, signed=False)
    neuron = DHLIFParams(
        weight_q=w_fmt.quantize(np.clip(rng.normal(0.2, 1.5, (n_hidden, n_in)), -7.9, 7.9)),
        branch_decay_q=decay_fmt.quantize(rng.uniform(0.2, 0.8, (n_hidden, n_branches))),
        soma_decay_q=decay_fmt.quantize(rng.uniform(0.5, 0.95, n_hidden)),
        threshold_q=membrane_fmt.quantize(4.0), weight_fmt=w_fmt, current_fmt=current_fmt,
        membrane_fmt=membrane_fmt, decay_fmt=decay_fmt)
    dendrites = LayerParams(neuron.weight_q, np.zeros(n_hidden, dtype=np.int64), w_fmt, w_fmt, neuron)
    tail = random_network(seed, n_inputs=n_hidden, hidden=tuple(then), n_classes=n_classes, bin_ticks=bin_ticks,
                          max_events_per_step=max_events_per_step)
    layers = [replace(layer, acc_bits=None) for layer in head] + [dendrites] + [
        replace(layer, acc_bits=None) for layer in tail.layers]
    return NetworkParams(n_inputs=n_inputs, bin_ticks=bin_ticks, layers=layers, max_events_per_step=max_events_per_step,
                         provenance={"source": "sim.processor_model.dhlif_network", "seed": seed})


def flames_example_network(seed: int, *, n_inputs: int = 12, n_hidden: int = 6, n_branches: int = 4, n_state: int = 8,
                           dt_max: int = 3, n_classes: int = 4, state_fmt: QFormat | None = None,
                           clamped_weight: bool = False, bin_ticks: int = 50,
                           max_events_per_step: int = 16) -> NetworkParams:
    """A seeded random FLAMES network: ``n_inputs -> dhlif(n_hidden) -> sahippo (zoh, N = n_state,
    dt_max) -> event_pool(n_classes)``.

    The DH-LIF layer is :func:`dhlif_network`'s (it spikes often); the memories have random
    ``alpha``, ``dt_scale``, ``C``, ``D`` and thresholds (so the soma outputs vary), a short
    ``dt_max`` (a channel silent for more than ``dt_max`` steps has its interval clipped), and
    event weights in [0.5, 2]. ``state_fmt`` narrows the memory state (the event-pooling
    readout's input follows it), so the modes clamp; ``clamped_weight`` gives channel 0 a weight
    beyond ``input_fmt``, clamped at every event.
    """
    from golden.event_pool import EventPoolParams
    from golden.sahippo import SAHiPPOParams

    rng = np.random.default_rng(seed)
    dendrites = dhlif_network(seed, n_inputs=n_inputs, n_hidden=n_hidden, n_branches=n_branches, bin_ticks=bin_ticks,
                              max_events_per_step=max_events_per_step).layers[0]
    formats = {"state_fmt": state_fmt} if state_fmt is not None else {}
    memory = SAHiPPOParams.from_float(
        n_state, alpha=rng.uniform(0.5, 3.0, n_hidden), dt_scale=rng.uniform(0.05, 0.5, n_hidden),
        c=rng.standard_normal((n_hidden, n_state)) / np.sqrt(n_state), d=rng.standard_normal(n_hidden),
        threshold=rng.uniform(0.05, 0.3, n_hidden), dt_max=dt_max, method="zoh", **formats)
    in_fmt = memory.input_fmt
    w_fmt = QFormat(in_fmt.int_bits + 2, in_fmt.frac_bits)
    diagonal = rng.uniform(0.5, 2.0, n_hidden)
    if clamped_weight:
        diagonal[0] = 1.5 * in_fmt.max_value
    weight = np.diag(w_fmt.quantize(diagonal))
    sahippo = LayerParams(weight, np.zeros(n_hidden, dtype=np.int64), w_fmt, w_fmt, memory)
    pool = EventPoolParams(n_classes, input_fmt=memory.state_fmt)
    pool_w_fmt = QFormat(3, 10)
    pool_b_fmt = QFormat(8, pool_w_fmt.frac_bits + memory.state_fmt.frac_bits)
    n_features = n_hidden * memory.n_modes * 2
    readout = LayerParams(pool_w_fmt.quantize(rng.normal(0.0, 1.0, (n_classes, n_features))),
                          pool_b_fmt.quantize(rng.normal(0.0, 0.3, n_classes)), pool_w_fmt, pool_b_fmt, pool)
    return NetworkParams(n_inputs=n_inputs, bin_ticks=bin_ticks, layers=[replace(dendrites, acc_bits=None), sahippo, readout],
                         max_events_per_step=max_events_per_step,
                         provenance={"source": "sim.processor_model.flames_example_network", "seed": seed})


def random_counts(params: NetworkParams, n_steps: int, seed: int, *, empty_prob: float = 0.2) -> np.ndarray:
    """Event counts ``(n_steps, n_inputs)`` with some empty steps and up to the declared bound per step."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_steps, params.n_inputs), dtype=np.int64)
    for k in range(n_steps):
        if rng.random() < empty_prob:
            continue
        n_events = int(rng.integers(1, params.max_events_per_step + 1))
        np.add.at(counts[k], rng.integers(0, params.n_inputs, n_events), 1)
    return counts


def counts_to_beats(counts: np.ndarray, bin_ticks: int, seed: int = 0) -> list[dict]:
    """Channel-event input beats (time order, random ticks inside each bin) for ``counts``, then END."""
    rng = np.random.default_rng(seed)
    beats = []
    for k, row in enumerate(np.asarray(counts)):
        channels = np.repeat(np.arange(row.shape[0]), row)
        rng.shuffle(channels)
        ticks = np.sort(rng.integers(k * bin_ticks, (k + 1) * bin_ticks, channels.shape[0]))
        beats += [{"kind": EVENT, "channel": int(c), "tick": int(t)} for c, t in zip(channels, ticks)]
    beats.append({"kind": END, "channel": 0, "tick": 0})
    return beats


#: Why the time-bin controller drops an event; ``dropped_<reason>`` counts it.
DROP_REASONS = ("backwards", "out_of_range", "late", "over_bound")
KEPT = -1
END_BEAT = -2


def time_bin_fates(params: NetworkParams, n_steps: int, kind: np.ndarray, channel: np.ndarray,
                   tick: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The time-bin controller's rule (:class:`hw.processor.time_bins.TimeBinController`) over a
    stream of input beats: ``(counts, fates)``.

    ``counts`` ``(samples, n_steps, n_inputs)`` holds the events each sample keeps, per step
    and channel (what :func:`golden.network.run_network` gets); ``fates`` gives each beat's fate:
    :data:`KEPT`, :data:`END_BEAT`, or the index in :data:`DROP_REASONS` of why it is dropped.
    Beats after the last END belong to no sample and are ignored by ``counts``.
    """
    bin_ticks, bound, n_inputs = params.bin_ticks, params.max_events_per_step, params.n_inputs
    fates = np.empty(len(kind), dtype=np.int64)
    samples, counts = [], np.zeros((n_steps, n_inputs), dtype=np.int64)
    step, bin_end, last_tick, step_events = 0, bin_ticks, 0, 0
    backwards, out_of_range, late, over_bound = range(4)
    for j, (k, c, t) in enumerate(zip(kind.tolist(), channel.tolist(), tick.tolist())):
        if k:
            fates[j] = END_BEAT
            samples.append(counts)
            counts = np.zeros((n_steps, n_inputs), dtype=np.int64)
            step, bin_end, last_tick, step_events = 0, bin_ticks, 0, 0
            continue
        if t < last_tick:
            fates[j] = backwards
            continue
        if c >= n_inputs:
            fates[j] = out_of_range
            continue
        while t >= bin_end and step + 1 < n_steps:
            step, bin_end, step_events = step + 1, bin_end + bin_ticks, 0
        last_tick = t
        if t >= bin_end:
            fates[j] = late
        elif step_events == bound:
            fates[j] = over_bound
        else:
            fates[j] = KEPT
            counts[step, c] += 1
            step_events += 1
    return (np.stack(samples) if samples else np.zeros((0, n_steps, n_inputs), dtype=np.int64)), fates


@dataclass
class Expected:
    """What the processor must show for one sample.

    A FLAMES network (``memory`` set) has no readout membranes (``readout_u`` is ``None``); its
    SA-HiPPO memory layer shows, per channel in event order, every updated mode ``(mode, re,
    im)`` and every event's ``(dt, y, spike, saturated)`` (:func:`memory_beats`).
    """

    n_steps: int
    spikes: list  # per spiking hidden layer: list over steps of sorted neuron lists
    readout_u: np.ndarray | None  # (T, n_classes)
    scores: list
    argmax: int
    current_saturation: list
    neuron_saturation: list
    memory: dict | None = None
    clipped_interval: int | None = None


def memory_beats(memory) -> dict:
    """An SA-HiPPO layer trace (:class:`golden.sahippo.SAHiPPOLayerTrace`, one sample) as the
    processor's memory taps show it: ``{"states": {h: [(mode, re, im), ...]}, "outputs": {h:
    [(dt, y, spike, saturated), ...]}}``, each channel's events in time order."""
    event, z = memory.event.numpy(), memory.z.numpy()
    states, outputs = {}, {}
    for k, h in zip(*np.nonzero(event)):
        h = int(h)
        states.setdefault(h, []).extend((n, int(z[k, h, n, 0]), int(z[k, h, n, 1])) for n in range(z.shape[2]))
        outputs.setdefault(h, []).append(tuple(int(getattr(memory, name)[k, h])
                                               for name in ("dt", "y", "spike", "saturated")))
    return {"states": states, "outputs": outputs}


def expected_from_trace(trace) -> Expected:
    flames = is_flames([layer.kind for layer in trace.layers])
    spikes = []
    for layer in trace.layers[:-2] if flames else trace.layers[:-1]:
        s = layer.neuron.s.numpy()
        spikes.append([sorted(int(i) for i in np.flatnonzero(row)) for row in s])
    counts = trace.saturation_counts()
    return Expected(
        n_steps=trace.n_steps,
        spikes=spikes,
        readout_u=None if flames else trace.readout.neuron.u.numpy(),
        scores=[int(v) for v in trace.scores],
        argmax=int(trace.prediction),
        current_saturation=[c["current"] for c in counts],
        neuron_saturation=[c["neuron"] for c in counts],
        memory=memory_beats(trace.layers[-2].neuron) if flames else None,
        clipped_interval=trace.counters()[-2]["clipped_interval"] if flames else None,
    )


def expected_from_counts(params: NetworkParams, counts: np.ndarray) -> Expected:
    return expected_from_trace(run_network(params, counts))


def scores_of(record: dict) -> tuple[list[int], int]:
    """``(scores, argmax)`` of an unpacked ``o_scores`` record (:func:`sim.stream.unpack` gives
    the scores array as a dict by index)."""
    return [int(v) for v in array_values(record["scores"])], int(record["argmax"])


@dataclass
class Observed:
    """What the processor showed: filled beat by beat from its taps."""

    n_hidden: int
    n_classes: int

    def __post_init__(self):
        self.spikes = [[[]] for _ in range(self.n_hidden)]
        self.last_seen = [False] * self.n_hidden
        self.readout_rows = []
        self.current_row = {}
        self.scores = None
        self.argmax = None
        self.memory = {"states": {}, "outputs": {}}

    def layer_beat(self, k: int, close: int, last: int, index: int):
        if close:
            if last:
                self.last_seen[k] = True
            self.spikes[k].append([])
        else:
            self.spikes[k][-1].append(int(index))

    def scores_beat(self, record: dict):
        """The first ``o_scores`` beat of the sample (an unpacked record)."""
        if self.scores is None:
            self.scores, self.argmax = scores_of(record)

    def memory_state_beat(self, channel: int, mode: int, re: int, im: int):
        self.memory["states"].setdefault(int(channel), []).append((int(mode), int(re), int(im)))

    def memory_output_beat(self, channel: int, dt: int, y: int, spike: int, saturated: int):
        self.memory["outputs"].setdefault(int(channel), []).append((int(dt), int(y), int(spike), int(saturated)))

    def readout_beat(self, neuron: int, u: int):
        if neuron in self.current_row:
            raise AssertionError(f"readout neuron {neuron} updated twice in one step")
        self.current_row[neuron] = int(u)
        if len(self.current_row) == self.n_classes:
            self.readout_rows.append([self.current_row[i] for i in range(self.n_classes)])
            self.current_row = {}


def compare(expected: Expected, observed: Observed, *, counters: dict | None = None) -> list[str]:
    """Every difference between ``expected`` and ``observed``, earliest first per stage ([] = bit exact)."""
    errors = []
    n_steps = expected.n_steps
    for k, want_layer in enumerate(expected.spikes):
        got_layer = [sorted(row) for row in observed.spikes[k][:-1]]
        if observed.spikes[k][-1]:
            errors.append(f"layers[{k}]: spikes after the last close: {observed.spikes[k][-1]}")
        if len(got_layer) != n_steps:
            errors.append(f"layers[{k}]: {len(got_layer)} steps closed, expected {n_steps}")
        for t, (want, got) in enumerate(zip(want_layer, got_layer)):
            if want != got:
                errors.append(f"layers[{k}] step {t}: spikes expected {want}, got {got}")
                break
        dup = [t for t, row in enumerate(observed.spikes[k]) if len(set(row)) != len(row)]
        if dup:
            errors.append(f"layers[{k}] step {dup[0]}: a neuron spiked twice")
    if expected.memory is not None:
        for part in ("states", "outputs"):
            want, got = expected.memory[part], observed.memory[part]
            for h in sorted(set(want) | set(got)):
                a, b = want.get(h, []), got.get(h, [])
                if a != b:
                    j = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                    errors.append(f"memory {part} channel {h} beat {j}: expected "
                                  f"{a[j] if j < len(a) else 'none'}, got {b[j] if j < len(b) else 'none'}")
                    break
    if expected.readout_u is not None:
        got_u = np.asarray(observed.readout_rows, dtype=np.int64).reshape(-1, expected.readout_u.shape[1])
        if got_u.shape != expected.readout_u.shape:
            errors.append(f"readout: {got_u.shape[0]} steps of membranes, expected {n_steps}")
        else:
            diff = np.argwhere(got_u != expected.readout_u)
            if diff.size:
                t, i = diff[0]
                errors.append(f"readout step {t} neuron {i}: u expected {expected.readout_u[t, i]}, got {got_u[t, i]}")
    if observed.scores != expected.scores:
        errors.append(f"scores: expected {expected.scores}, got {observed.scores}")
    if observed.argmax != expected.argmax:
        errors.append(f"argmax: expected {expected.argmax}, got {observed.argmax}")
    for name, want in (("current_saturation", expected.current_saturation),
                       ("neuron_saturation", expected.neuron_saturation)):
        if counters is not None and name in counters and list(counters[name]) != list(want):
            errors.append(f"{name}: expected {want}, got {list(counters[name])}")
    if expected.clipped_interval is not None and counters is not None and "clipped_interval" in counters \
            and counters["clipped_interval"] != expected.clipped_interval:
        errors.append(f"clipped_interval: expected {expected.clipped_interval}, got {counters['clipped_interval']}")
    return errors
