"""The streaming event processor: a whole network from :class:`golden.network.NetworkParams`.

Input events -> (input map) -> time-bin controller -> layer 0 -> ... -> readout -> class scores,
bit for bit :func:`golden.network.run_network`. ``docs/processor.md`` has the diagram and the
cycle costs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from golden.fixed import QFormat
from golden.network import LayerParams, NetworkParams
from hw.arith import COUNTER_WIDTH, any_of, times_constant, tree_select
from hw.cores import core_classes
from hw.cores.li_readout import LIReadoutCore
from hw.processor.input_map import InputMapper, camera_event_layout
from hw.processor.synapse import SynapseStage, synapse_command_layout
from hw.processor.time_bins import STEP_BITS, TimeBinController, input_event_layout

__all__ = ["lane_params", "layer_cores", "SpikingLayer", "ReadoutLayer", "NetworkProcessor",
           "layer_tap_layout", "readout_tap_layout"]

#: Entries of the buffered FIFO in front of the time-bin controller.
_EVENT_FIFO_DEPTH = 4
#: Entries of the buffered FIFO between a synapse lane and its core.
_LANE_FIFO_DEPTH = 2


def lane_params(neuron, lane: int, lanes: int):
    """The parameters of neurons ``lane, lane + lanes, ...`` of ``neuron`` (core ``lane`` of
    ``lanes`` neuron cores).

    Every per-neuron array field (first dimension ``n_neurons``) is sliced; scalars and formats
    are kept.
    """
    n = neuron.n_neurons
    sliced = {}
    for f in dataclasses.fields(neuron):
        value = getattr(neuron, f.name)
        if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == n:
            sliced[f.name] = value[lane::lanes].copy()
    return dataclasses.replace(neuron, **sliced)


def layer_tap_layout(n_out: int) -> data.StructLayout:
    """One observed beat of a spiking layer's output: ``{valid, close, last, index}``."""
    return data.StructLayout({"valid": unsigned(1), **dict(synapse_command_layout(n_out).members)})


def readout_tap_layout(core: LIReadoutCore) -> data.StructLayout:
    """One readout membrane update: ``{valid, neuron, u}``."""
    return data.StructLayout({"valid": unsigned(1), "neuron": unsigned(core.index_bits),
                              "u": core.params.state_fmt.shape()})


class _Beat:
    """``valid`` / ``ready`` / ``payload`` of a stream read out of a FIFO."""

    def __init__(self, valid, ready, payload):
        self.valid, self.ready, self.payload = valid, ready, payload


def _buffered(m, name, source, fields=None):
    """``source`` through a 2-entry buffered FIFO, so its ``ready`` is a register (timing).

    Returns the FIFO's read side as an object with ``valid``, ``ready`` (to drive) and a
    ``payload`` view of the source's layout (or only of the payload fields named in ``fields``).
    Adds 2 cycles of latency, no throughput loss.
    """
    layout = source.payload.shape()
    if fields is not None:
        layout = data.StructLayout({field: layout.members[field] for field in fields})
    payload = Signal(layout, name=f"{name}_w_data")
    m.d.comb += [getattr(payload, field).eq(getattr(source.payload, field)) for field in layout.members]
    m.submodules[name] = fifo = SyncFIFOBuffered(width=layout.size, depth=_LANE_FIFO_DEPTH)
    ready = Signal(name=f"{name}_ready")
    m.d.comb += [
        fifo.w_data.eq(payload.as_value()),
        fifo.w_en.eq(source.valid),
        source.ready.eq(fifo.w_rdy),
        fifo.r_en.eq(ready),
    ]
    return _Beat(fifo.r_rdy, ready, data.View(layout, fifo.r_data))


def _connect_beat(m, source, sink):
    """Drive stream ``sink`` from ``source`` (a stream or a :func:`_buffered` read side)."""
    m.d.comb += [sink.valid.eq(source.valid), sink.payload.eq(source.payload), source.ready.eq(sink.ready)]


def _min(value, limit):
    return Mux(value > limit, limit, value)


def _first_valid(streams):
    """Index of the lowest stream whose ``valid`` is high (0 when none).

    A balanced tree (``ceil(log2(len(streams)))`` levels of 2:1 multiplexers, each pair taking
    its lower half's index when that half has a valid stream), not a chain of one Mux per stream.
    """
    bits = max(1, (len(streams) - 1).bit_length())
    nodes = [(stream.valid, Const(0, bits)) for stream in streams]  # (any valid, index within the node)
    level = 0
    while len(nodes) > 1:
        if len(nodes) % 2:
            nodes.append((Const(0, 1), Const(0, bits)))
        nodes = [(lo_valid | hi_valid, Mux(lo_valid, lo_index, hi_index | (1 << level)))
                 for (lo_valid, lo_index), (hi_valid, hi_index) in zip(nodes[0::2], nodes[1::2])]
        level += 1
    return nodes[0][1]


def _serialise_lanes(m, beats, sink):
    """Drive stream ``sink`` (``{neuron, current}``) from the lane ``beats`` of one core, lowest
    valid lane first, as plain expressions (Verilog simulators know them from time 0).

    ``beats[q]`` carries the current of row ``row`` of lane ``q``; the sink gets neuron
    ``row * len(beats) + q`` (in the sink's index width, which may be narrower).
    """
    chosen = _first_valid(beats)
    row = tree_select(chosen, [beat.payload.neuron for beat in beats])
    m.d.comb += [
        sink.valid.eq(any_of(beat.valid for beat in beats)),
        sink.payload.neuron.eq(times_constant(row, len(beats)) + chosen if len(beats) > 1 else row),
        sink.payload.current.eq(tree_select(chosen, [beat.payload.current for beat in beats])),
    ]
    for q, beat in enumerate(beats):
        m.d.comb += beat.ready.eq((chosen == q) & sink.ready)


def clearable_core(core_class):
    """A subclass of a spiking core class whose state memory can be swept to zero (decision 'Per-sample state clear').

    The cores of ``hw/cores`` reset their state memories only through the bitstream's initial
    contents. The subclass adds two plain signals, driven by the layer: while ``clear_active``
    is high, the state memory's write port writes zero at ``clear_addr`` instead of the
    pipeline's write-back. The layer raises it only while the core's pipeline is empty (every
    update of the sample has come out), so no write-back is lost.
    """

    class ClearableCore(core_class):
        def __init__(self, params, **kwargs):
            super().__init__(params, **kwargs)
            self.clear_active = Signal()
            self.clear_addr = Signal(self.index_bits)

        def elaborate(self, platform):
            m = super().elaborate(platform)
            write = m.submodules.state_mem.write_ports[0]
            with m.If(self.clear_active):
                m.d.comb += [write.addr.eq(self.clear_addr), write.data.eq(0), write.en.eq(1)]
            return m

    ClearableCore.__name__ = ClearableCore.__qualname__ = f"Clearable{core_class.__name__}"
    return ClearableCore


def layer_cores(n_out: int, lanes: int, cores: int | None) -> tuple[int, int]:
    """``(lanes, cores)`` of a spiking layer of ``n_out`` neurons: both capped at ``n_out``.

    ``cores`` defaults to ``lanes``; it must divide ``lanes`` (each core then takes the beats of
    ``lanes // cores`` synapse lanes).
    """
    if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 1:
        raise ValueError(f"lanes must be a positive int, not {lanes!r}")
    if cores is None:
        cores = lanes
    if not isinstance(cores, int) or isinstance(cores, bool) or cores < 1:
        raise ValueError(f"cores must be a positive int (neuron cores per hidden layer) or None, not {cores!r}")
    lanes, cores = min(lanes, n_out), min(cores, n_out)
    if lanes % cores:
        raise ValueError(f"cores ({cores}) must divide lanes ({lanes}) (both capped at the layer's {n_out} neurons): "
                         "each core serves lanes // cores synapse lanes")
    return lanes, cores


class SpikingLayer(wiring.Component):
    """Synapse stage, ``cores`` neuron cores and the spike merger of one hidden layer.

    Neuron ``i`` lives in core ``i % cores`` at local index ``i // cores``. The synapse has
    ``lanes`` accumulator lanes (``cores`` divides ``lanes``); lane ``l`` (neurons
    ``row * lanes + l``) feeds core ``l % cores``, and the ``lanes // cores`` lanes of one core are
    serialised into it, lowest pending lane first, at local index
    ``row * (lanes // cores) + l // cores``. At a step close the synapse streams one current per
    neuron into the cores; each core update comes back on the core's ``o_state`` (every update,
    spike or not); the merger forwards the spiking ones as events ``{close: 0, index: local *
    cores + core}`` to the next layer and, once all ``n_out`` updates of the step have been seen,
    a close carrying the step's ``last`` flag. The synapse does not start the next step's drain
    before that close has left (so closes never overtake spikes).

    Throughput: an event costs ``ceil(n_out / lanes)`` cycles (the synapse); a close drains
    ``ceil(n_out / cores)`` currents through each core, one per cycle.

    Members
    -------
    i : ``In(stream.Signature(synapse_command_layout(n_in)))``
    o : ``Out(stream.Signature(synapse_command_layout(n_out)))``
        Spikes of each step in core output order, then the step's close.
    current_saturation_count, neuron_saturation_count : ``Out(32)``
        Clamped currents (synapse) and clamped neuron updates (sum over the cores).
    """

    def __init__(self, layer: LayerParams, *, lanes: int = 1, cores: int | None = None):
        if layer.is_readout:
            raise ValueError("SpikingLayer needs a spiking neuron kind; the readout is ReadoutLayer")
        self._layer = layer
        self._lanes, self._cores = layer_cores(layer.n_out, lanes, cores)
        self.synapse = SynapseStage(layer, lanes=self._lanes)
        core_class = clearable_core(core_classes()[layer.kind])
        self.cores = [core_class(lane_params(layer.neuron, core, self._cores), emit_state=True)
                      for core in range(self._cores)]
        super().__init__({
            "i": In(stream.Signature(synapse_command_layout(layer.n_in))),
            "o": Out(stream.Signature(synapse_command_layout(layer.n_out))),
            "current_saturation_count": Out(COUNTER_WIDTH),
            "neuron_saturation_count": Out(COUNTER_WIDTH),
        })

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def n_cores(self) -> int:
        """Neuron cores of the layer (``len(self.cores)``)."""
        return self._cores

    def elaborate(self, platform):
        m = Module()
        layer, lanes, n_cores = self._layer, self._lanes, self._cores
        per_core = lanes // n_cores
        m.submodules.synapse = synapse = self.synapse
        lane_beats = [_buffered(m, f"current_fifo_{lane}", synapse.o_current[lane]) for lane in range(lanes)]
        for c, core in enumerate(self.cores):
            m.submodules[f"core_{c}"] = core
            # The lanes c, c + cores, ... of this core, lowest pending first.
            if per_core > 1:  # the select feeds a 2-entry FIFO, so the core's ready stays off it (timing)
                selected = stream.Signature(core.i_current.payload.shape()).create()
            else:
                selected = core.i_current
            _serialise_lanes(m, lane_beats[c::n_cores], selected)
            if per_core > 1:
                _connect_beat(m, _buffered(m, f"core_fifo_{c}", selected), core.i_current)
            m.d.comb += core.o_spike.ready.eq(1)
        wiring.connect(m, wiring.flipped(self.i), synapse.i)

        step_pending = Signal()
        seen = Signal(range(layer.n_out + 1))
        clearing = Signal()
        core_neurons = max(core.n_neurons for core in self.cores)
        clear_addr = Signal(range(max(2, core_neurons)))
        m.d.comb += synapse.close_allowed.eq(~step_pending & ~clearing)
        for core in self.cores:
            m.d.comb += [core.clear_active.eq(clearing & (clear_addr < core.n_neurons)),
                         core.clear_addr.eq(clear_addr)]
        with m.If(clearing):
            m.d.sync += clear_addr.eq(clear_addr + 1)
            with m.If(clear_addr == core_neurons - 1):
                m.d.sync += clearing.eq(0)

        # Plain expressions, no comb processes: Verilog simulators know them from time 0. Each
        # core's updates reach the merger through a 2-entry FIFO, so the merger's step logic
        # does not drive the cores' pipeline enables (timing).
        beats = [_buffered(m, f"update_fifo_{c}", core.o_state, fields=("neuron", "spike"))
                 for c, core in enumerate(self.cores)]
        close_now = Signal()
        m.d.comb += close_now.eq(step_pending & (seen == layer.n_out))
        selected = _first_valid(beats)
        any_valid = any_of(beat.valid for beat in beats)
        spike = tree_select(selected, [beat.payload.spike for beat in beats])
        local = tree_select(selected, [beat.payload.neuron for beat in beats])
        index = times_constant(local, n_cores) + selected if n_cores > 1 else local
        taken = ~close_now & any_valid & (~spike | self.o.ready)
        m.d.comb += [
            self.o.valid.eq(close_now | (any_valid & spike)),
            self.o.payload.close.eq(close_now),
            self.o.payload.last.eq(close_now & synapse.last),
            self.o.payload.index.eq(Mux(close_now, 0, index)),
        ]
        for c in range(n_cores):
            m.d.comb += beats[c].ready.eq(taken & (selected == c))
        with m.If(close_now & self.o.ready):
            m.d.sync += [step_pending.eq(0), seen.eq(0)]
            with m.If(synapse.last):  # the sample ended: zero every neuron state (decision 'Per-sample state clear')
                m.d.sync += [clearing.eq(1), clear_addr.eq(0)]
        with m.Elif(taken):
            m.d.sync += seen.eq(seen + 1)
        with m.If(synapse.closed):
            m.d.sync += step_pending.eq(1)

        m.d.comb += self.current_saturation_count.eq(synapse.saturation_count)
        total = sum((core.saturation_count for core in self.cores), Const(0, COUNTER_WIDTH + 5))
        m.d.comb += self.neuron_saturation_count.eq(_min(total, (1 << COUNTER_WIDTH) - 1))
        return m


class ReadoutLayer(wiring.Component):
    """Synapse stage and the leaky-integrator readout core of the output layer.

    The synapse's lane beats are serialised (lowest lane first) into one
    :class:`~hw.cores.li_readout.LIReadoutCore`; after the update of every class in the step
    closed with ``last``, the core finishes the sample and offers its scores.

    Members
    -------
    i : ``In(stream.Signature(synapse_command_layout(n_in)))``
    o_scores : the core's ``o_scores``.
    tap : ``Out(readout_tap_layout(core))``
        Every membrane update, without backpressure (for verification).
    current_saturation_count, neuron_saturation_count : ``Out(32)``
    """

    def __init__(self, layer: LayerParams, *, lanes: int = 1, score_fmt: QFormat | None = None):
        if not layer.is_readout:
            raise ValueError(f"ReadoutLayer needs the li_readout kind, not {layer.kind}")
        self._layer = layer
        self._lanes = min(lanes, layer.n_out)
        self.synapse = SynapseStage(layer, lanes=self._lanes)
        self.core = core_classes()[layer.kind](layer.neuron, score_fmt=score_fmt)
        super().__init__({
            "i": In(stream.Signature(synapse_command_layout(layer.n_in))),
            "o_scores": Out(stream.Signature(self.core.scores_layout)),
            "tap": Out(readout_tap_layout(self.core)),
            "current_saturation_count": Out(COUNTER_WIDTH),
            "neuron_saturation_count": Out(COUNTER_WIDTH),
        })

    def elaborate(self, platform):
        m = Module()
        layer = self._layer
        m.submodules.synapse = synapse = self.synapse
        m.submodules.core = core = self.core
        wiring.connect(m, wiring.flipped(self.i), synapse.i)
        wiring.connect(m, core.o_scores, wiring.flipped(self.o_scores))

        # Serialise the lanes into the core, lowest pending lane first.
        lane_beats = [_buffered(m, f"current_fifo_{lane}", beat) for lane, beat in enumerate(synapse.o_current)]
        _serialise_lanes(m, lane_beats, core.i_current)

        step_pending = Signal()
        finish_pending = Signal()
        seen = Signal(range(layer.n_out + 1))
        m.d.comb += [
            core.o_state.ready.eq(1),
            synapse.close_allowed.eq(~step_pending & ~finish_pending),
            self.tap.valid.eq(core.o_state.valid),  # fields zero between beats (no undefined bits)
            self.tap.neuron.eq(Mux(core.o_state.valid, core.o_state.payload.neuron, 0)),
            self.tap.u.eq(Mux(core.o_state.valid, core.o_state.payload.u, 0)),
            core.i_finish.valid.eq(finish_pending),
            core.i_finish.payload.emit.eq(1),
        ]
        with m.If(core.i_finish.ready):
            m.d.sync += finish_pending.eq(0)
        with m.If(core.o_state.valid):
            m.d.sync += seen.eq(seen + 1)
        with m.If(step_pending & (seen == layer.n_out)):
            m.d.sync += [step_pending.eq(0), seen.eq(0), finish_pending.eq(synapse.last)]
        with m.If(synapse.closed):
            m.d.sync += step_pending.eq(1)

        m.d.comb += [
            self.current_saturation_count.eq(synapse.saturation_count),
            self.neuron_saturation_count.eq(core.saturation_count),
        ]
        return m


class NetworkProcessor(wiring.Component):
    """The whole network: events in, every hidden layer's spikes observable, class scores out.

    Parameters
    ----------
    params : NetworkParams
    n_steps : int
        Steps per sample (initial value of the :attr:`n_steps` port).
    lanes : int
        Synapse accumulator lanes per layer: accumulator adds per cycle (capped at the layer's
        width).
    cores : int, optional
        Neuron cores per hidden layer (default ``lanes``; capped at the layer's width; must
        divide the layer's lanes). The readout always has one core, fed by its ``lanes``
        accumulators.
    camera_input : bool
        Take camera events through the network's ``input_map`` (default: when it has one).
    score_fmt : QFormat, optional
        Class score format of the readout core.

    Members
    -------
    i : ``In(stream.Signature(camera_event_layout(input_map)))`` or
        ``In(stream.Signature(input_event_layout(n_inputs)))``
        Events of one sample in time order, then an END beat; the next sample may follow.
    o_scores : ``Out(stream.Signature({argmax, scores}))``
        One beat per sample.
    n_steps : ``In(16)``
    layer_taps : ``Out(ArrayLayout(layer_tap_layout, n_hidden))`` (only with hidden layers)
        Each hidden layer's output commands as they transfer, without backpressure.
    readout_tap : ``Out(readout_tap_layout)``
        Every readout membrane update.
    dropped_backwards, dropped_out_of_range, dropped_late, dropped_over_bound : ``Out(32)``
        Events dropped by the time-bin controller (see :class:`TimeBinController`).
    current_saturation, neuron_saturation : ``Out(ArrayLayout(32, n_layers))``
        Per layer, clamped currents and clamped neuron updates.
    """

    def __init__(self, params: NetworkParams, *, n_steps: int, lanes: int = 1, cores: int | None = None,
                 camera_input: bool | None = None, score_fmt: QFormat | None = None):
        if not isinstance(params, NetworkParams):
            raise TypeError(f"params must be a golden.network.NetworkParams, not {type(params).__name__}")
        if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 1:
            raise ValueError(f"lanes must be a positive int, not {lanes!r}")
        for layer in params.layers[:-1]:
            layer_cores(layer.n_out, lanes, cores)  # a clear ValueError before anything is built
        if camera_input is None:
            camera_input = params.input_map is not None
        if camera_input and params.input_map is None:
            raise ValueError("camera_input=True needs a network with an input_map")
        self._params = params
        self._lanes = lanes
        self._cores = lanes if cores is None else cores
        self._camera = bool(camera_input)
        self.time_bins = TimeBinController(params.n_inputs, params.bin_ticks, n_steps,
                                           max_events_per_step=params.max_events_per_step)
        self.mapper = InputMapper(params.input_map) if self._camera else None
        self.hidden = [SpikingLayer(layer, lanes=lanes, cores=cores) for layer in params.layers[:-1]]
        self.readout = ReadoutLayer(params.layers[-1], lanes=lanes, score_fmt=score_fmt)
        in_layout = camera_event_layout(params.input_map) if self._camera else input_event_layout(params.n_inputs)
        n_layers = len(params.layers)
        members = {
            "i": In(stream.Signature(in_layout)),
            "o_scores": Out(stream.Signature(self.readout.core.scores_layout)),
            "n_steps": In(STEP_BITS, init=n_steps),
        }
        if self.hidden:
            members["layer_taps"] = Out(data.StructLayout(
                {f"layer_{k}": layer_tap_layout(layer.n_out) for k, layer in enumerate(params.layers[:-1])}))
        members.update({
            "readout_tap": Out(readout_tap_layout(self.readout.core)),
            "dropped_backwards": Out(COUNTER_WIDTH),
            "dropped_out_of_range": Out(COUNTER_WIDTH),
            "dropped_late": Out(COUNTER_WIDTH),
            "dropped_over_bound": Out(COUNTER_WIDTH),
            "current_saturation": Out(data.ArrayLayout(COUNTER_WIDTH, n_layers)),
            "neuron_saturation": Out(data.ArrayLayout(COUNTER_WIDTH, n_layers)),
        })
        super().__init__(members)

    @property
    def params(self) -> NetworkParams:
        return self._params

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def cores(self) -> int:
        """Neuron cores per hidden layer as requested (each layer caps it at its width)."""
        return self._cores

    @property
    def camera_input(self) -> bool:
        return self._camera

    @property
    def input_layout(self) -> data.StructLayout:
        return self.i.payload.shape()

    def elaborate(self, platform):
        m = Module()
        m.submodules.time_bins = time_bins = self.time_bins
        if self._camera:
            m.submodules.input_map = mapper = self.mapper
            wiring.connect(m, wiring.flipped(self.i), mapper.i)
            events = mapper.o
        else:
            events = self.i
        # A small buffered FIFO before the time bins: its write side's ready is a register, so
        # the time bins' payload-dependent ready does not reach back to the input (timing).
        layout = time_bins.i.payload.shape()
        m.submodules.event_fifo = fifo = SyncFIFOBuffered(width=layout.size, depth=_EVENT_FIFO_DEPTH)
        m.d.comb += [
            fifo.w_data.eq(events.payload.as_value()),
            fifo.w_en.eq(events.valid),
            events.ready.eq(fifo.w_rdy),
            time_bins.i.payload.eq(fifo.r_data),
            time_bins.i.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(time_bins.i.ready),
        ]
        m.d.comb += [
            time_bins.n_steps.eq(self.n_steps),
            self.dropped_backwards.eq(time_bins.dropped_backwards),
            self.dropped_out_of_range.eq(time_bins.dropped_out_of_range),
            self.dropped_late.eq(time_bins.dropped_late),
            self.dropped_over_bound.eq(time_bins.dropped_over_bound),
        ]
        # The time bins' output through a 2-entry buffered FIFO: layer 0's synapse ready (its row
        # logic) does not reach back into the time-bin controller's step logic (timing).
        upstream = _buffered(m, "step_fifo", time_bins.o)
        for k, layer in enumerate(self.hidden):
            m.submodules[f"layer_{k}"] = layer
            _connect_beat(m, upstream, layer.i)
            tap = self.layer_taps[f"layer_{k}"]
            moved = layer.o.valid & layer.o.ready
            m.d.comb += [  # fields are zero between beats, so Verilog sims never see undefined bits here
                tap.valid.eq(moved),
                tap.close.eq(moved & layer.o.payload.close),
                tap.last.eq(moved & layer.o.payload.last),
                tap.index.eq(Mux(moved, layer.o.payload.index, 0)),
            ]
            m.d.comb += [
                self.current_saturation[k].eq(layer.current_saturation_count),
                self.neuron_saturation[k].eq(layer.neuron_saturation_count),
            ]
            # Each layer's output through a 2-entry buffered FIFO: the merger's ready logic and the
            # next synapse's address arithmetic land in different cycles (timing).
            upstream = _buffered(m, f"spike_fifo_{k}", layer.o)
        m.submodules.readout = readout = self.readout
        _connect_beat(m, upstream, readout.i)
        wiring.connect(m, readout.o_scores, wiring.flipped(self.o_scores))
        last = len(self.hidden)
        m.d.comb += [
            self.readout_tap.eq(readout.tap),
            self.current_saturation[last].eq(readout.current_saturation_count),
            self.neuron_saturation[last].eq(readout.neuron_saturation_count),
        ]
        return m
