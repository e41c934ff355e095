"""The streaming event processor: a whole network from :class:`golden.network.NetworkParams`.

Input events -> (input map) -> time-bin controller -> layer 0 -> ... -> readout -> class scores,
bit for bit :func:`golden.network.run_network`; a FLAMES network ends in the SA-HiPPO memory
layer and the event-pooling readout instead of the leaky-integrator readout. ``docs/processor.md``
has the diagram and the cycle costs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.fixed import QFormat
from golden.kinds import network_kinds
from golden.network import LayerParams, NetworkParams
from hw.arith import COUNTER_MAX, COUNTER_WIDTH, times_constant
from hw.cores import core_classes
from hw.cores.li_readout import LIReadoutCore
from hw.cores.neuron_core import NeuronCore
from hw.processor.event_pool import EventPoolReadout
from hw.processor.input_map import ChannelPooler, InputMapper, camera_event_layout
from hw.processor.memory_layer import MemoryLayer
from hw.processor.synapse import SynapseStage, synapse_command_layout
from hw.processor.time_bins import STEP_BITS, TimeBinController, input_event_layout
from hw.streams import LowestValidArbiter, StreamQueue, StreamRegister

__all__ = ["FLAMES_TAIL", "is_flames", "lane_params", "layer_cores", "processor_runs", "check_processor_runs", "SpikingLayer",
           "ReadoutLayer", "NetworkProcessor", "layer_tap_layout", "readout_tap_layout"]

#: The last two layers of a FLAMES network, which the processor runs as its tail: the SA-HiPPO
#: memory layer (:class:`~hw.processor.memory_layer.MemoryLayer`) and the event-pooling readout
#: (:class:`~hw.processor.event_pool.EventPoolReadout`).
FLAMES_TAIL = ("sahippo", "event_pool")

#: Entries of the buffered FIFO in front of the time-bin controller.
_EVENT_FIFO_DEPTH = 4
#: Entries of the buffered FIFO between a synapse lane and its core.
_LANE_FIFO_DEPTH = 3


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


def is_flames(kinds) -> bool:
    """Whether a network with layers of ``kinds`` ends in :data:`FLAMES_TAIL` (an SA-HiPPO memory
    layer and the event-pooling readout)."""
    return tuple(kinds[-len(FLAMES_TAIL):]) == FLAMES_TAIL


def processor_runs(kind: str) -> bool:
    """Whether the processor runs layers of ``kind``: a kind on the network's default step, a
    kind with its own layer rule whose core is on the per-step :class:`NeuronCore` contract
    (DH-LIF), or one of :data:`FLAMES_TAIL` (in that place only: :func:`check_processor_runs`)."""
    if kind in FLAMES_TAIL or network_kinds()[kind].layer is None:
        return True
    core = core_classes().get(kind)
    return isinstance(core, type) and issubclass(core, NeuronCore)


def check_processor_runs(params: NetworkParams) -> None:
    """Raise ``ValueError`` naming the first layer the processor does not run, or an SA-HiPPO
    or event-pooling layer anywhere but as the network's :data:`FLAMES_TAIL` (before any
    component is built: Amaranth warns about a component whose constructor raised)."""
    kinds = params.kinds
    n = len(kinds)
    tail = dict(zip((n - 2, n - 1), FLAMES_TAIL)) if is_flames(kinds) else {}
    for i, kind in enumerate(kinds):
        if not processor_runs(kind):
            raise ValueError(f"layers[{i}]: the processor does not run {kind} layers (docs/processor.md)")
        if kind in FLAMES_TAIL and tail.get(i) != kind:
            raise ValueError(f"layers[{i}]: the processor runs {kind} layers only as the end of a FLAMES network, "
                             "an sahippo layer then the event_pool readout (docs/processor.md)")


def layer_tap_layout(n_out: int) -> data.StructLayout:
    """One observed beat of a spiking layer's output: ``{valid, close, last, index}``."""
    return data.StructLayout({"valid": unsigned(1), **dict(synapse_command_layout(n_out).members)})


def readout_tap_layout(core: LIReadoutCore) -> data.StructLayout:
    """One readout membrane update: ``{valid, neuron, u}``."""
    return data.StructLayout({"valid": unsigned(1), "neuron": unsigned(core.index_bits),
                              "u": core.params.state_fmt.shape()})


def _forward(m, source, sink, **fields):
    """Drive stream ``sink`` from stream ``source`` with the payload fields ``fields`` (by name),
    ``source.ready`` from ``sink.ready``: a connection whose payload changes shape on the way."""
    m.d.comb += [sink.valid.eq(source.valid), source.ready.eq(sink.ready)]
    m.d.comb += [sink.payload[name].eq(value) for name, value in fields.items()]


def _global_index(local, chosen, n: int):
    """Index ``local * n + chosen`` of the ``chosen``-th of ``n`` interleaved sources (``local``
    itself for one source), from shifts and adds (:func:`hw.arith.times_constant`)."""
    return times_constant(local, n) + chosen if n > 1 else local


def _serialise_lanes(m, name, queues, sink):
    """Drive stream ``sink`` (``{neuron, <words>}``: ``current``, or a DH-LIF core's branch
    drives) from the lane ``queues`` of one core through a
    :class:`~hw.streams.LowestValidArbiter` ``name``, lowest valid lane first.

    ``queues[q]`` carries the words of row ``row`` of lane ``q``; the sink gets neuron
    ``row * len(queues) + q`` (in the sink's index width, which may be narrower).
    """
    layout = queues[0].o.payload.shape()
    m.submodules[name] = arbiter = LowestValidArbiter(layout, len(queues))
    for q, queue in enumerate(queues):
        wiring.connect(m, queue.o, arbiter.i[q])
    chosen = arbiter.o.payload
    _forward(m, arbiter.o, sink, neuron=_global_index(chosen.neuron, chosen.index, len(queues)),
             **{field: chosen[field] for field in layout.members if field != "neuron"})


def _queue(m, name, shape, depth=_LANE_FIFO_DEPTH):
    """A :class:`~hw.streams.StreamQueue` of ``depth`` beats of ``shape``, added as submodule ``name``."""
    m.submodules[name] = queue = StreamQueue(shape, depth=depth)
    return queue


def _layer_input(m, name, shape):
    """A :func:`_queue` followed by a :class:`~hw.streams.StreamRegister` (``name`` and
    ``name + "_register"``): what feeds a layer. The queue's read logic sees only the register's
    registered ``ready``, and the layer's ``ready`` (its row and close logic) only loads the
    register's output. Returns ``(queue, register)``: connect into ``queue.i``, out of
    ``register.o``."""
    queue = _queue(m, name, shape)
    m.submodules[f"{name}_register"] = register = StreamRegister(shape)
    wiring.connect(m, queue.o, register.i)
    return queue, register


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
    before that close has left (so closes never overtake spikes, and no neuron reaches its core
    while its previous update is in flight: the cores are built without the read-after-write
    compare, ``hazard_check=False``).

    Throughput: an event costs ``ceil(n_out / lanes)`` cycles (the synapse); a close drains
    ``ceil(n_out / cores)`` currents through each core, one per cycle.

    A kind whose core sums several input slices per neuron (DH-LIF's branches,
    :meth:`~hw.cores.neuron_core.NeuronCore.branch_inputs`) gets a synapse with one
    accumulator per neuron and branch and the same cycles; its lane beats carry every branch
    drive of a neuron.

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
        core_class = core_classes()[layer.kind]
        self.synapse = SynapseStage(layer, lanes=self._lanes, branches=core_class.branch_inputs(layer.neuron))
        # No read-after-write compare in the cores: the next step's drain starts only after the
        # merger counted every update of the step out of the cores (timing: the core's input
        # ready is then its pipeline's advance, a register).
        self.cores = [core_class(lane_params(layer.neuron, core, self._cores), emit_state=True, clearable=True,
                                 hazard_check=False)
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
        # Each lane through a 3-entry queue, so the cores' readies do not reach the synapse (timing).
        lane_queues = []
        for lane in range(lanes):
            lane_queues.append(queue := _queue(m, f"current_fifo_{lane}", synapse.current_layout))
            wiring.connect(m, synapse.o_current[lane], queue.i)
        for c, core in enumerate(self.cores):
            m.submodules[f"core_{c}"] = core
            # The lanes c, c + cores, ... of this core, lowest pending first; with several, the
            # select feeds a 3-entry queue, so the core's ready stays off it (timing). The core
            # takes its beats from a register stage, so its read addresses come from a register
            # (timing).
            m.submodules[f"core_input_{c}"] = core_input = StreamRegister(core.input_layout)
            if per_core > 1:
                core_queue = _queue(m, f"core_fifo_{c}", core.input_layout)
                _serialise_lanes(m, f"lane_arbiter_{c}", lane_queues[c::n_cores], core_queue.i)
                wiring.connect(m, core_queue.o, core_input.i)
            else:
                _serialise_lanes(m, f"lane_arbiter_{c}", lane_queues[c::n_cores], core_input.i)
            wiring.connect(m, core_input.o, core.input_stream)
            m.d.comb += core.o_spike.ready.eq(1)
        wiring.connect(m, wiring.flipped(self.i), synapse.i)

        step_pending = Signal()
        seen = Signal(range(layer.n_out + 1))
        clearing = Signal()
        core_neurons = max(core.n_neurons for core in self.cores)
        clear_addr = Signal(range(max(2, core_neurons)))
        # Each core takes the sweep from registers of its own, a cycle behind `clearing`: the
        # route to its state memory's address and write enable starts from a register and
        # carries no compare. A close waits until the last such write has landed.
        clear_landing = Signal()
        m.d.sync += clear_landing.eq(clearing)
        m.d.comb += synapse.close_allowed.eq(~step_pending & ~clearing & ~clear_landing)
        for c, core in enumerate(self.cores):
            core_clear = Signal(core.clear_layout, name=f"core_{c}_clear")
            m.d.sync += [core_clear.active.eq(clearing & (clear_addr < core.n_neurons)),
                         core_clear.neuron.eq(clear_addr)]
            m.d.comb += core.clear.eq(core_clear)
        with m.If(clearing):
            m.d.sync += clear_addr.eq(clear_addr + 1)
            with m.If(clear_addr == core_neurons - 1):
                m.d.sync += clearing.eq(0)

        # Plain expressions, no comb processes: Verilog simulators know them from time 0. Each
        # core's updates ({neuron, spike} of its o_state) reach the merger through a 3-entry
        # queue, so the merger's step logic does not drive the cores' pipeline enables (timing).
        update_layout = data.StructLayout({"neuron": unsigned(self.cores[0].index_bits), "spike": unsigned(1)})
        m.submodules.update_arbiter = update_arbiter = LowestValidArbiter(update_layout, n_cores)
        for c, core in enumerate(self.cores):
            queue = _queue(m, f"update_fifo_{c}", update_layout)
            _forward(m, core.o_state, queue.i, neuron=core.o_state.payload.neuron, spike=core.o_state.payload.spike)
            wiring.connect(m, queue.o, update_arbiter.i[c])
        update = update_arbiter.o
        close_now = Signal()
        m.d.comb += close_now.eq(step_pending & (seen == layer.n_out))
        spike = update.payload.spike
        index = _global_index(update.payload.neuron, update.payload.index, n_cores)
        taken = update.valid & update.ready
        m.d.comb += [
            self.o.valid.eq(close_now | (update.valid & spike)),
            self.o.payload.close.eq(close_now),
            self.o.payload.last.eq(close_now & synapse.last),
            self.o.payload.index.eq(Mux(close_now, 0, index)),
            update.ready.eq(~close_now & (~spike | self.o.ready)),  # a non-spiking update leaves at once
        ]
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
        m.d.comb += self.neuron_saturation_count.eq(Mux(total > COUNTER_MAX, COUNTER_MAX, total))
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
        # No read-after-write compare in the core: a step's drain starts only after every update
        # of the previous step left the core (timing: its input ready is then a register).
        self.core = core_classes()[layer.kind](layer.neuron, score_fmt=score_fmt, hazard_check=False)
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

        # Serialise the lanes into the core through 3-entry queues, lowest pending lane first.
        lane_queues = []
        for lane, beat in enumerate(synapse.o_current):
            lane_queues.append(queue := _queue(m, f"current_fifo_{lane}", synapse.current_layout))
            wiring.connect(m, beat, queue.i)
        # The core takes its beats from a register stage (its ready only loads that register).
        m.submodules.core_input = core_input = StreamRegister(core.i_current.payload.shape())
        _serialise_lanes(m, "lane_arbiter", lane_queues, core_input.i)
        wiring.connect(m, core_input.o, core.i_current)

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

    A network ends either in the leaky-integrator readout (:class:`ReadoutLayer`) or, for
    FLAMES, in :data:`FLAMES_TAIL`: an SA-HiPPO memory layer (:class:`MemoryLayer`) fed by the
    last spiking layer and the event-pooling readout (:class:`EventPoolReadout`) behind it.

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
        Class score format of the leaky-integrator readout core (an event-pooling readout's
        scores are exact at its own width).

    Members
    -------
    i : ``In(stream.Signature(camera_event_layout(input_map)))``, or
        ``In(stream.Signature(input_event_layout(n)))`` with ``n`` the ``channel_pool``'s
        ``n_sources`` (source channels, pooled by a :class:`ChannelPooler`, one cycle) or ``n_inputs``
        Events of one sample in time order, then an END beat; the next sample may follow.
    o_scores : ``Out(stream.Signature({argmax, scores}))``
        One beat per sample.
    n_steps : ``In(16)``
    layer_taps : ``Out(StructLayout({layer_k: layer_tap_layout}))`` (only with spiking hidden layers)
        Each spiking hidden layer's output commands as they transfer, without backpressure.
    readout_tap : ``Out(readout_tap_layout)``
        Every readout membrane update (leaky-integrator readout only).
    memory_state_tap, memory_output_tap : ``Out(memory_state_tap_layout)``, ``Out(memory_output_tap_layout)``
        FLAMES only: every SA-HiPPO mode beat and every event's soma output (:class:`MemoryLayer`).
    clipped_interval, backwards_tick : ``Out(32)``
        FLAMES only: SA-HiPPO events whose interval was clipped at ``dt_max``, and events
        dropped for a backwards tick (none: the ticks count steps).
    dropped_backwards, dropped_out_of_range, dropped_late, dropped_over_bound : ``Out(32)``
        Events dropped by the time-bin controller (see :class:`TimeBinController`).
    current_saturation, neuron_saturation : ``Out(ArrayLayout(32, n_layers))``
        Per layer, clamped currents and clamped neuron updates (an SA-HiPPO layer: events
        with a clamped weight, and events in which a clamp acted; the event-pooling readout:
        zero, it does not clamp).
    """

    def __init__(self, params: NetworkParams, *, n_steps: int, lanes: int = 1, cores: int | None = None,
                 camera_input: bool | None = None, score_fmt: QFormat | None = None):
        if not isinstance(params, NetworkParams):
            raise TypeError(f"params must be a golden.network.NetworkParams, not {type(params).__name__}")
        if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 1:
            raise ValueError(f"lanes must be a positive int, not {lanes!r}")
        check_processor_runs(params)
        flames = is_flames(params.kinds)
        spiking = params.layers[:-2] if flames else params.layers[:-1]
        for layer in spiking:
            layer_cores(layer.n_out, lanes, cores)  # a clear ValueError before anything is built
        if flames and score_fmt is not None:
            raise ValueError("score_fmt is the leaky-integrator readout's; an event_pool readout's scores are exact")
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
        pool = None if self._camera else params.channel_pool
        self.pooler = ChannelPooler(pool) if pool is not None else None
        self.hidden = [SpikingLayer(layer, lanes=lanes, cores=cores) for layer in spiking]
        if flames:
            self.memory = MemoryLayer(params.layers[-2])
            self.readout = EventPoolReadout(params.layers[-1])
            scores_layout = self.readout.scores_layout
        else:
            self.memory = None
            self.readout = ReadoutLayer(params.layers[-1], lanes=lanes, score_fmt=score_fmt)
            scores_layout = self.readout.core.scores_layout
        if self._camera:
            in_layout = camera_event_layout(params.input_map)
        else:
            in_layout = input_event_layout(pool.n_sources if pool is not None else params.n_inputs)
        n_layers = len(params.layers)
        members = {
            "i": In(stream.Signature(in_layout)),
            "o_scores": Out(stream.Signature(scores_layout)),
            "n_steps": In(STEP_BITS, init=n_steps),
        }
        if self.hidden:
            members["layer_taps"] = Out(data.StructLayout(
                {f"layer_{k}": layer_tap_layout(layer.n_out) for k, layer in enumerate(spiking)}))
        if flames:
            members.update({
                "memory_state_tap": Out(self.memory.state_tap.shape()),
                "memory_output_tap": Out(self.memory.output_tap.shape()),
                "clipped_interval": Out(COUNTER_WIDTH),
                "backwards_tick": Out(COUNTER_WIDTH),
            })
        else:
            members["readout_tap"] = Out(readout_tap_layout(self.readout.core))
        members.update({
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
    def flames(self) -> bool:
        """The network ends in :data:`FLAMES_TAIL` (memory layer and event-pooling readout)."""
        return self.memory is not None

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
        elif self.pooler is not None:
            m.submodules.channel_pool = pooler = self.pooler
            wiring.connect(m, wiring.flipped(self.i), pooler.i)
            events = pooler.o
        else:
            events = wiring.flipped(self.i)
        # A small queue before the time bins: its input's ready is a register, so the time
        # bins' payload-dependent ready does not reach back to the input (timing).
        event_queue = _queue(m, "event_fifo", time_bins.i.payload.shape(), depth=_EVENT_FIFO_DEPTH)
        wiring.connect(m, events, event_queue.i)
        wiring.connect(m, event_queue.o, time_bins.i)
        m.d.comb += [
            time_bins.n_steps.eq(self.n_steps),
            self.dropped_backwards.eq(time_bins.dropped_backwards),
            self.dropped_out_of_range.eq(time_bins.dropped_out_of_range),
            self.dropped_late.eq(time_bins.dropped_late),
            self.dropped_over_bound.eq(time_bins.dropped_over_bound),
        ]
        # The time bins' output through a 3-entry queue and a register stage: layer 0's synapse
        # ready (its row logic) reaches neither the time-bin controller's step logic nor the
        # queue's read logic (timing).
        queue, upstream = _layer_input(m, "step_fifo", time_bins.o.payload.shape())
        wiring.connect(m, time_bins.o, queue.i)
        for k, layer in enumerate(self.hidden):
            m.submodules[f"layer_{k}"] = layer
            wiring.connect(m, upstream.o, layer.i)
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
            # Each layer's output through a 3-entry queue and a register stage: the merger's ready
            # logic, the queue's read and the next synapse's row logic land in different cycles.
            queue, upstream = _layer_input(m, f"spike_fifo_{k}", layer.o.payload.shape())
            wiring.connect(m, layer.o, queue.i)
        m.submodules.readout = readout = self.readout
        wiring.connect(m, readout.o_scores, wiring.flipped(self.o_scores))
        last = len(self.hidden)
        if self.flames:
            m.submodules.memory = memory = self.memory
            wiring.connect(m, upstream.o, memory.i)
            wiring.connect(m, memory.o_modes, readout.i)
            wiring.connect(m, memory.o_finish, readout.i_finish)
            m.d.comb += [
                self.memory_state_tap.eq(memory.state_tap),
                self.memory_output_tap.eq(memory.output_tap),
                self.clipped_interval.eq(memory.clipped_count),
                self.backwards_tick.eq(memory.backwards_count),
                self.current_saturation[last].eq(memory.current_saturation_count),
                self.neuron_saturation[last].eq(memory.neuron_saturation_count),
            ]
            return m
        wiring.connect(m, upstream.o, readout.i)
        m.d.comb += [
            self.readout_tap.eq(readout.tap),
            self.current_saturation[last].eq(readout.current_saturation_count),
            self.neuron_saturation[last].eq(readout.neuron_saturation_count),
        ]
        return m
