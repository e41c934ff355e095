"""The processor board in Python: what a board built for a model file answers, from the golden specifications.

:class:`BoardModel` takes the host-to-board byte stream as ``ProcessorLink``
(``hw/boards/ulx3s_processor.py``) does, rule for rule:

1. the frame decoder's rules (:class:`golden.protocol.FrameDecoderModel`, the geometry of
   :func:`hw.boards.ulx3s_processor.link_geometry`): events outside the sensor and events going
   back in time are dropped and counted in STATUS;
2. the time-bin controller's rules (:func:`admit_events`, mirroring
   :class:`hw.processor.time_bins.TimeBinController`): an event at or after the end of the
   sample's last step is dropped (``late``), an event beyond ``max_events_per_step`` in its step
   is dropped (``over_bound``); the board counts these on its ``dropped_events`` output, not in
   STATUS;
3. :func:`golden.network.run_network` on the admitted events for ``n_steps`` steps.

END_OF_SAMPLE is answered with the SPIKE frames of the chosen hidden layers (``spike_layers``
as ``hw.build --spike-layers``; a board whose spike FIFOs drop nothing), then SCORES (signed 32-bit,
saturated as the board sends them; the argmax of the exact scores); READ_STATUS with STATUS
(the decoder's counters, ``spikes_dropped`` 0). RESET discards the sample.

:func:`estimate_cycles` is the processor's cycle model: the clock cycles a sample keeps the
processor busy, from the golden trace.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from golden.data.events import camera_events, channel_events
from golden.kinds import network_kinds
from golden.network import NetworkParams, NetworkTrace, run_network
from golden.protocol import (
    EndOfSample, Event, FrameDecoderModel, ReadStatus, Reset, encode_scores, saturate_score, encode_spike, encode_status,
)
from hw.boards.ulx3s_processor import link_geometry, spike_layer_indices
from hw.processor.network import FLAMES_TAIL
from hw.processor.synapse import bank_select_stages, drain_extra_stages

__all__ = [
    "DEFAULT_STEPS", "STEP_OVERHEAD_CYCLES", "model_steps", "InputDrops", "admit_events", "run_sample_events",
    "board_scores", "BoardModel", "estimate_cycles",
]

#: Steps per sample of a model file whose provenance does not say (``n_steps``).
DEFAULT_STEPS = 32
#: Cycles a step costs beyond its widest layer's drain and extra stages in :func:`estimate_cycles`
#: (core latency, stream FIFOs, merger).
STEP_OVERHEAD_CYCLES = 26


def model_steps(params: NetworkParams) -> int:
    """Steps per sample a board is built with for ``params``: its provenance ``n_steps``, else :data:`DEFAULT_STEPS`."""
    return int((params.provenance or {}).get("n_steps", DEFAULT_STEPS))


@dataclass
class InputDrops:
    """Events of one sample the board drops, by rule (each event counted once, in rule order).

    ``out_of_range`` and ``backwards`` are the frame decoder's (``address_out_of_range``,
    ``timestamp_backwards`` in STATUS); ``late`` and ``over_bound`` the time-bin controller's.
    """

    out_of_range: int = 0
    backwards: int = 0
    late: int = 0
    over_bound: int = 0

    @property
    def total(self) -> int:
        return self.out_of_range + self.backwards + self.late + self.over_bound


def admit_events(params: NetworkParams, n_steps: int, x, y, polarity, timestamp) -> tuple[np.ndarray, InputDrops]:
    """Which events of one sample (in sending order, ``timestamp`` in ticks from its start) reach the network.

    Returns a boolean mask and the counts of what each rule drops: outside the sensor of
    :func:`~hw.boards.ulx3s_processor.link_geometry` (time unchanged); below the last admitted
    timestamp; at or after tick ``n_steps * bin_ticks``; the ``max_events_per_step + 1``-th and
    later events of a step.
    """
    geometry = link_geometry(params)
    x, y, polarity, timestamp = (np.asarray(a, dtype=np.int64) for a in (x, y, polarity, timestamp))
    keep = np.zeros(len(x), dtype=bool)
    drops = InputDrops()
    end = n_steps * params.bin_ticks
    last, step, in_step = 0, -1, 0
    for i in range(len(x)):
        t = int(timestamp[i])
        if not geometry.contains(int(x[i]), int(y[i]), int(polarity[i])):
            drops.out_of_range += 1
        elif t < last:
            drops.backwards += 1
        else:
            last = t  # the decoder's time order advances even for events the time bins drop
            if t >= end:
                drops.late += 1
                continue
            k = t // params.bin_ticks
            in_step = in_step + 1 if k == step else 1
            step = k
            if in_step > params.max_events_per_step:
                drops.over_bound += 1
            else:
                keep[i] = True
    return keep, drops


def run_sample_events(params: NetworkParams, n_steps: int, x, y, polarity, timestamp) -> NetworkTrace:
    """The golden network over events that :func:`admit_events` admitted (camera or channel input)."""
    if params.input_map is not None:
        events = camera_events(x, y, timestamp, polarity)
    else:
        events = channel_events(np.asarray(x, dtype=np.int64), timestamp)
    return run_network(params, events, n_steps)


def board_scores(trace: NetworkTrace) -> tuple[list[int], int]:
    """Scores as the SCORES frame carries them (s32, saturated) and the decision (argmax of the exact scores)."""
    scores = [saturate_score(s) for s in trace.scores.tolist()]
    return scores, int(trace.prediction)


class BoardModel:
    """A stand-in board: bytes in, the result frames a processor board sends back out.

    Parameters
    ----------
    params : NetworkParams
        The model file's network.
    n_steps : int
        Steps per sample the board was built with (:func:`model_steps`).
    spike_layers : ``"all"`` or iterable of int, optional
        Hidden layers whose spikes it sends (default none, like a board built without
        ``--spike-layers``).

    Attributes
    ----------
    decoder : FrameDecoderModel
        The link counters (since this object was made, like the board's since power-up).
    last_trace : NetworkTrace or None
        The golden trace of the last finished sample.
    last_drops : InputDrops or None
        What the time-bin rules dropped from it (the decoder's drops are in ``decoder.counters``).
    """

    def __init__(self, params: NetworkParams, n_steps: int, spike_layers=None):
        self.params = params
        self.n_steps = n_steps
        self.spike_layers = spike_layer_indices(params, spike_layers)
        self.decoder = FrameDecoderModel(link_geometry(params))
        self.last_trace: NetworkTrace | None = None
        self.last_drops: InputDrops | None = None
        self._events: list[Event] = []

    def feed(self, data: bytes) -> bytes:
        """Consume host bytes; return the result frames they cause."""
        self.decoder.feed_bytes(data)
        out = bytearray()
        for command in self.decoder.take():
            if isinstance(command, Event):
                self._events.append(command)
            elif isinstance(command, EndOfSample):
                out += self._finish()
            elif isinstance(command, Reset):
                self._events = []
            elif isinstance(command, ReadStatus):
                out += encode_status(self.decoder.counters)
        return bytes(out)

    def _finish(self) -> bytes:
        columns = np.array([(e.x, e.y, e.polarity, e.timestamp) for e in self._events], dtype=np.int64).reshape(-1, 4)
        self._events = []
        keep, drops = admit_events(self.params, self.n_steps, *columns.T)
        trace = run_sample_events(self.params, self.n_steps, *columns[keep].T)
        self.last_trace, self.last_drops = trace, drops
        frames = bytearray()
        for index in self.spike_layers:
            for step, neuron in zip(*np.nonzero(trace.layers[index].spikes.numpy())):
                frames += encode_spike(index, int(neuron), int(step))
        frames += encode_scores(*board_scores(trace))
        return bytes(frames)


def _close_extra_stages(layer, lanes: int) -> int:
    """Cycles ``layer``'s synapse adds to a step beyond its rows and :data:`STEP_OVERHEAD_CYCLES`:
    its :func:`~hw.processor.synapse.drain_extra_stages` (none for a kind with its own
    layer rules: DH-LIF's branch sums have no scale and no shift) and the cycles of its
    weight-bank select (:func:`~hw.processor.synapse.bank_select_stages` at its
    ``min(lanes, n_out)`` lanes), which a close behind an event waits for. The FLAMES tail's
    layers have no synapse stage: 0."""
    if layer.kind in FLAMES_TAIL:
        return 0
    select = bank_select_stages(layer, min(lanes, layer.n_out))
    if network_kinds()[layer.kind].layer is not None:
        return select
    return select + drain_extra_stages(layer.scaled, layer.current_shift)


def estimate_cycles(params: NetworkParams, trace: NetworkTrace, *, lanes: int = 1, cores: int | None = None) -> int:
    """Clock cycles the processor is busy with one sample, from its golden trace (an estimate);
    for a batch's trace, the mean over its samples (rounded).

    Each input event costs layer 0 ``max(2, ceil(n_out / lanes))`` cycles (one row of ``lanes``
    accumulator adds per cycle, at most one event per 2 cycles through the time bins); each spike
    of a hidden layer costs the next layer ``ceil(n_out / lanes)``; each step costs the widest
    layer's drain, ``ceil(n_out / cores)``, plus :data:`STEP_OVERHEAD_CYCLES` and the largest
    layer's extra stages (:func:`hw.processor.synapse.drain_extra_stages`: 1 to 6, 5 with a
    per-row scale; plus :func:`hw.processor.synapse.bank_select_stages`: 3 for 5 to 16 weight
    banks). The layers overlap in hardware, which this sum ignores. Against the processor in
    amaranth.sim (``python -m bench.cycle_model``, first input beat to SCORES): on the FSDD
    networks at 8 lanes 4 % low (SiLIF) to 10 % high (C-SiLIF); on a network of tens of
    neurons, where the overlap is a larger share, about 30 % high.
    """
    cores = lanes if cores is None else cores
    samples = math.prod(trace.counts.shape[:-2])
    inputs = [int(trace.counts.sum())] + [int(layer.spikes.sum()) for layer in trace.layers[:-1]]
    cycles = inputs[0] * max(2, math.ceil(params.layers[0].n_out / lanes))
    cycles += sum(n * math.ceil(layer.n_out / lanes) for n, layer in zip(inputs[1:], params.layers[1:]))
    widest = max(math.ceil(layer.n_out / cores) for layer in params.layers)
    extra = max(_close_extra_stages(layer, lanes) for layer in params.layers)
    return round(cycles / samples) + trace.n_steps * (widest + STEP_OVERHEAD_CYCLES + extra)
