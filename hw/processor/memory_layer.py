"""The SA-HiPPO memory layer of a FLAMES network in the processor: spikes in, posted modes out.

The hardware form of the ``sahippo`` layer rule of :mod:`golden.sahippo` (``_run_layer``): each
spike ``h`` of step ``k`` of the layer before is one event ``{channel h, tick k + 1, weight
sat(input_fmt, W[h, h])}`` of a :class:`hw.cores.sahippo.SAHiPPOCore`, and the core's updated
modes go on, one beat per mode, to the event-pooling readout
(:class:`hw.processor.event_pool.EventPoolReadout`). ``docs/processor.md`` has the design.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.network import LayerParams
from hw.arith import COUNTER_WIDTH, count_saturating, index_bits, times_constant
from hw.cores.sahippo import SAHiPPOCore, sahippo_core
from hw.memories import parameter_memory
from hw.processor.synapse import synapse_command_layout
from hw.processor.time_bins import STEP_BITS

__all__ = ["MemoryLayer", "memory_state_tap_layout", "memory_output_tap_layout"]


def memory_state_tap_layout(core: SAHiPPOCore) -> data.StructLayout:
    """One updated mode of the memory: ``{valid, channel, mode, re, im}``."""
    return data.StructLayout({"valid": unsigned(1), **dict(core.state_layout.members)})


def memory_output_tap_layout(core: SAHiPPOCore) -> data.StructLayout:
    """One event's soma output: ``{valid, channel, dt, y, spike, saturated}``."""
    return data.StructLayout({"valid": unsigned(1), **dict(core.output_layout.members)})


class MemoryLayer(wiring.Component):
    """An ``sahippo`` layer: the weight ROM, one SA-HiPPO core, the step counter and the
    per-sample clear.

    Per spike beat ``{close: 0, index: h}`` of the layer before (at most one per channel and
    step), an event ``{channel h, tick k + 1, weight}`` enters the core, ``k`` the closes seen in
    the sample; the weight ``sat(input_fmt, W[h, h])`` and its clamp flag come from an
    ``H``-word ROM (a clamped weight is counted per event in :attr:`current_saturation_count`).
    A close is taken and its step counted once every mode beat of the step's events has left
    on :attr:`o_modes`. The close marked ``last`` is followed by one :attr:`o_finish` beat; once it
    is taken, a sweep writes zero over every mode and ``t_last`` (``H * 2**mode_bits`` cycles,
    :attr:`clear_cycles`) and the step counter restarts.

    Parameters
    ----------
    layer : LayerParams
        An ``sahippo`` layer (diagonal weights, checked by the network); its core is
        :func:`hw.cores.sahippo.sahippo_core` of the layer's method.

    Members
    -------
    i : ``In(stream.Signature(synapse_command_layout(n_in)))``
        The spikes of the layer before, each step closed.
    o_modes : ``Out(stream.Signature({index, re: state_fmt, im: state_fmt}))``
        Every updated mode, ``index = h * N/2 + n`` (the event-pooling readout's input).
    o_finish : ``Out(stream.Signature({emit}))``
        The sample ended (``emit = 1``); offered after its last mode beat.
    state_tap : ``Out(memory_state_tap_layout(core))``
        Every mode beat as it transfers (for verification).
    output_tap : ``Out(memory_output_tap_layout(core))``
        Every event's ``{channel, dt, y, spike, saturated}`` (the core's ``o_output``).
    current_saturation_count, neuron_saturation_count, clipped_count, backwards_count : ``Out(32)``
        Events with a clamped weight; the core's saturated events, clipped intervals and
        backwards ticks (none: the ticks count steps).

    Timing
    ------
    A spike beat is taken per cycle while the core's front end takes events (one event per
    :attr:`SAHiPPOCore.cycles_per_event` clocks, 16 at ``N = 32``); a close waits for the
    step's last mode beat (about :attr:`SAHiPPOCore.mode_latency` + ``front_end_cycles`` clocks
    after the last event is taken).
    """

    def __init__(self, layer: LayerParams):
        if not isinstance(layer, LayerParams) or layer.kind != "sahippo":
            raise ValueError(f"MemoryLayer needs an sahippo LayerParams, not {getattr(layer, 'kind', layer)!r}")
        self._layer = layer
        self.core = sahippo_core(layer.neuron, tick_bits=STEP_BITS, emit_state=True, clearable=True)
        p = layer.neuron
        self._mode_layout = data.StructLayout({"index": unsigned(index_bits(p.n_channels * p.n_modes)),
                                               "re": p.state_fmt.shape(), "im": p.state_fmt.shape()})
        super().__init__({
            "i": In(stream.Signature(synapse_command_layout(layer.n_in))),
            "o_modes": Out(stream.Signature(self._mode_layout)),
            "o_finish": Out(stream.Signature(data.StructLayout({"emit": unsigned(1)}))),
            "state_tap": Out(memory_state_tap_layout(self.core)),
            "output_tap": Out(memory_output_tap_layout(self.core)),
            "current_saturation_count": Out(COUNTER_WIDTH),
            "neuron_saturation_count": Out(COUNTER_WIDTH),
            "clipped_count": Out(COUNTER_WIDTH),
            "backwards_count": Out(COUNTER_WIDTH),
        })

    @property
    def mode_layout(self) -> data.StructLayout:
        return self._mode_layout

    @property
    def clear_cycles(self) -> int:
        """Cycles of the per-sample clear sweep."""
        return self._layer.neuron.n_channels << self.core.mode_bits

    def elaborate(self, platform):
        m = Module()
        p = self._layer.neuron
        m.submodules.core = core = self.core
        n_modes, mode_bits = p.n_modes, core.mode_bits

        weights, clamped = p.input_fmt.saturate(np.diagonal(self._layer.weight_q))
        weight_layout = data.StructLayout({"weight": p.input_fmt.shape(), "clamped": unsigned(1)})
        weight_rd = parameter_memory(m, "weight_mem", shape=weight_layout,
                                     init=[{"weight": int(w), "clamped": int(c)}
                                           for w, c in zip(np.asarray(weights).tolist(), np.asarray(clamped).tolist())])

        step = Signal(STEP_BITS)  # steps closed in this sample
        pending = Signal()  # a spike waits for the core; its weight is the ROM's word
        pending_channel = Signal(unsigned(core.channel_bits))
        in_flight = Signal(range(p.n_channels * n_modes + 1))  # mode beats of the step's events not passed on yet
        closing = Signal()
        closing_last = Signal()
        finishing = Signal()
        clearing = Signal()
        clear_addr = Signal(range(max(2, self.clear_cycles)))

        take = self.i.valid & self.i.ready
        event_taken = core.i_event.valid & core.i_event.ready
        mode_moved = core.o_state.valid & core.o_state.ready
        m.d.comb += [
            self.i.ready.eq(~closing & ~finishing & ~clearing & (~pending | core.i_event.ready)),
            weight_rd.addr.eq(self.i.payload.index),
            weight_rd.en.eq(take & ~self.i.payload.close),
            core.i_event.valid.eq(pending),
            core.i_event.payload.channel.eq(pending_channel),
            core.i_event.payload.tick.eq(step + 1),
            core.i_event.payload.weight.eq(weight_rd.data.weight),
        ]
        with m.If(event_taken):
            m.d.sync += pending.eq(0)
        with m.If(take):
            with m.If(self.i.payload.close):
                m.d.sync += [closing.eq(1), closing_last.eq(self.i.payload.last)]
            with m.Else():
                m.d.sync += [pending.eq(1), pending_channel.eq(self.i.payload.index)]
        m.d.sync += in_flight.eq(in_flight + event_taken * n_modes - mode_moved)
        count_saturating(m, self.current_saturation_count, event_taken & weight_rd.data.clamped)

        with m.If(closing & ~pending & (in_flight == 0)):
            m.d.sync += [closing.eq(0), step.eq(step + 1)]
            with m.If(closing_last):
                m.d.sync += finishing.eq(1)
        m.d.comb += [self.o_finish.valid.eq(finishing), self.o_finish.payload.emit.eq(1)]
        with m.If(self.o_finish.valid & self.o_finish.ready):
            m.d.sync += [finishing.eq(0), step.eq(0), clearing.eq(1), clear_addr.eq(0)]
        m.d.comb += [
            core.clear.active.eq(clearing),
            core.clear.mode.eq(clear_addr[:mode_bits]),
            core.clear.channel.eq(clear_addr[mode_bits:]),
        ]
        with m.If(clearing):
            m.d.sync += clear_addr.eq(clear_addr + 1)
            with m.If(clear_addr == self.clear_cycles - 1):
                m.d.sync += clearing.eq(0)

        # Modes on to the readout; the soma outputs are observed only.
        state = core.o_state.payload
        m.d.comb += [
            self.o_modes.valid.eq(core.o_state.valid),
            core.o_state.ready.eq(self.o_modes.ready),
            self.o_modes.payload.index.eq(times_constant(state.channel, n_modes) + state.mode),
            self.o_modes.payload.re.eq(state.re),
            self.o_modes.payload.im.eq(state.im),
            core.o_output.ready.eq(1),
            # Taps: fields are zero between beats, so Verilog simulators never see undefined bits.
            self.state_tap.valid.eq(mode_moved),
            self.output_tap.valid.eq(core.o_output.valid),
        ]
        for name in ("channel", "mode", "re", "im"):
            m.d.comb += self.state_tap[name].eq(Mux(mode_moved, state[name], 0))
        output = core.o_output.payload
        for name in ("channel", "dt", "y", "spike", "saturated"):
            m.d.comb += self.output_tap[name].eq(Mux(core.o_output.valid, output[name], 0))
        m.d.comb += [
            self.neuron_saturation_count.eq(core.saturation_count),
            self.clipped_count.eq(core.clipped_count),
            self.backwards_count.eq(core.backwards_count),
        ]
        return m
