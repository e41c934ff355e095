"""Time-bin controller: timestamped input events in, per-step events and step closes out.

Mirrors the time rule of :func:`golden.network.run_network` (via
:func:`golden.network.counts_from_events`): an event with tick ``t`` (relative to the sample
start) belongs to step ``k = t // bin_ticks``; a sample of ``T`` steps covers ticks
``[0, T * bin_ticks)``; empty steps still advance every neuron.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.arith import COUNTER_WIDTH, count_saturating
from hw.processor.synapse import synapse_command_layout

__all__ = ["InputKind", "TICK_BITS", "STEP_BITS", "channel_bits", "input_event_layout", "TimeBinController"]

#: Width of an event tick (the host link's u32 timestamp).
TICK_BITS = 32
#: Width of a step counter: samples of up to 65535 steps.
STEP_BITS = 16


class InputKind(enum.Enum, shape=1):
    """Kind of an input beat."""

    EVENT = 0
    #: End of sample: close the remaining steps up to ``n_steps``, then finish the sample.
    END = 1


def channel_bits(n_inputs: int) -> int:
    """Width of a channel field: wide enough to carry ``n_inputs`` itself (an out-of-range mark)."""
    return max(1, int(n_inputs).bit_length())


def input_event_layout(n_inputs: int) -> data.StructLayout:
    """Payload of the processor's channel-event input: ``{kind, channel, tick}`` (``kind`` an :class:`InputKind` value).

    ``channel`` is wide enough to hold values ``>= n_inputs``, which are counted and dropped.
    """
    return data.StructLayout(
        {"kind": unsigned(1), "channel": unsigned(channel_bits(n_inputs)), "tick": unsigned(TICK_BITS)}
    )


class TimeBinController(wiring.Component):
    """Close time steps as event time crosses bin boundaries; flush a sample to ``n_steps``.

    For each input beat, in order (``k`` the open step, ``bin_end = (k + 1) * bin_ticks``):

    * EVENT with ``tick`` below the last accepted tick: dropped, ``dropped_backwards`` counts.
    * EVENT with ``channel >= n_inputs``: dropped, ``dropped_out_of_range`` counts (its tick is
      ignored).
    * EVENT with ``tick >= bin_end``: if ``k`` is the sample's last step (``k + 1 >= n_steps``)
      the event lies beyond the sample and is dropped (``dropped_late`` counts, as
      :func:`golden.network.counts_from_events` leaves it out); otherwise a close of step ``k``
      is emitted, ``k`` advances and the same event is examined again.
    * EVENT that would be the ``max_events_per_step + 1``-th of its step: dropped,
      ``dropped_over_bound`` counts (layer 0's accumulators are sized for the declared bound,
      :attr:`golden.network.NetworkParams.max_events_per_step`, so they never wrap).
    * EVENT otherwise: emitted as ``{close: 0, index: channel}``.
    * END: closes are emitted for every remaining step, the last one with ``last = 1``; then
      the END is consumed and time restarts at step 0, tick 0.

    Parameters
    ----------
    n_inputs : int
        Input channels.
    bin_ticks : int
        Step width in ticks (1 .. 2**32 - 1).
    n_steps : int
        Steps per sample (initial value of the :attr:`n_steps` port), 1 .. 65535.
    max_events_per_step : int, optional
        Events passed per step at most; default: no bound.

    Members
    -------
    i : ``In(stream.Signature(input_event_layout(n_inputs)))``
    o : ``Out(stream.Signature(synapse_command_layout(n_inputs)))``
        Events and closes for layer 0. Registered: one beat per cycle at most.
    n_steps : ``In(16)``
        Steps per sample, read when a step closes; 0 acts as 1.
    step : ``Out(16)``
        The open step ``k``.
    dropped_backwards, dropped_out_of_range, dropped_late, dropped_over_bound : ``Out(32)``
        Dropped-event counters; stick at ``2**32 - 1``.

    Timing
    ------
    Each input beat is examined for one cycle (its comparisons with the state registered), then
    acted on: one input beat (or one close) per 2 cycles while ``o`` is ready; an event ``d``
    steps ahead waits ``2 * d`` cycles for its closes. ``i.ready`` depends combinationally on
    ``o.ready`` and registers. Never hangs: every beat is consumed after at most ``n_steps``
    closes.
    """

    def __init__(self, n_inputs: int, bin_ticks: int, n_steps: int, max_events_per_step: int | None = None):
        for name, value, hi in (("n_inputs", n_inputs, 1 << 16), ("bin_ticks", bin_ticks, (1 << TICK_BITS) - 1),
                                ("n_steps", n_steps, (1 << STEP_BITS) - 1)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
                raise ValueError(f"{name} must be an int in 1..{hi}, not {value!r}")
        if max_events_per_step is not None and (isinstance(max_events_per_step, bool) or
                                                not isinstance(max_events_per_step, int) or max_events_per_step < 1):
            raise ValueError(f"max_events_per_step must be a positive int or None, not {max_events_per_step!r}")
        self._n_inputs = n_inputs
        self._bin_ticks = bin_ticks
        self._max_events = max_events_per_step
        super().__init__({
            "i": In(stream.Signature(input_event_layout(n_inputs))),
            "o": Out(stream.Signature(synapse_command_layout(n_inputs))),
            "n_steps": In(STEP_BITS, init=n_steps),
            "step": Out(STEP_BITS),
            "dropped_backwards": Out(COUNTER_WIDTH),
            "dropped_out_of_range": Out(COUNTER_WIDTH),
            "dropped_late": Out(COUNTER_WIDTH),
            "dropped_over_bound": Out(COUNTER_WIDTH),
        })

    @property
    def n_inputs(self) -> int:
        return self._n_inputs

    @property
    def bin_ticks(self) -> int:
        return self._bin_ticks

    def elaborate(self, platform):
        m = Module()
        bin_end = Signal(TICK_BITS + STEP_BITS + 1, init=self._bin_ticks)
        last_tick = Signal(TICK_BITS)
        out_valid = Signal()
        out = Signal(self.o.payload.shape())
        m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.eq(out)]
        can_load = ~out_valid | self.o.ready

        beat = self.i.payload
        # The head beat is examined in one cycle (its comparisons with the state registered) and
        # acted on in the next, so the 32- and 49-bit comparisons and the decision below sit in
        # different cycles (timing). Every action changes the state, so it is examined again.
        examined = Signal()
        head_end = Signal()
        head_before_last = Signal()
        head_out_of_range = Signal()
        head_beyond_bin = Signal()
        head_final_step = Signal()
        head_at_bound = Signal()
        if self._max_events is not None:
            step_events = Signal(range(self._max_events + 1))
        with m.If(self.i.valid & ~examined):
            m.d.sync += [
                examined.eq(1),
                head_end.eq(beat.kind == InputKind.END),
                head_before_last.eq(beat.tick < last_tick),
                head_out_of_range.eq(beat.channel >= self._n_inputs),
                head_beyond_bin.eq(beat.tick >= bin_end),
                head_final_step.eq((self.step + 1) >= self.n_steps),
            ]
            if self._max_events is not None:
                m.d.sync += head_at_bound.eq(step_events == self._max_events)

        is_end = head_end
        final_step = head_final_step
        backwards = ~is_end & head_before_last
        out_of_range = ~is_end & ~backwards & head_out_of_range
        beyond = ~is_end & ~backwards & ~out_of_range & head_beyond_bin
        late = beyond & final_step
        close = is_end | (beyond & ~final_step)
        in_step = ~is_end & ~backwards & ~out_of_range & ~beyond
        over_bound = in_step & head_at_bound
        emit_event = in_step & ~over_bound
        consume = (is_end & final_step) | backwards | out_of_range | late | over_bound | emit_event
        m.d.comb += self.i.ready.eq(examined & can_load & consume)
        go = Signal()
        m.d.comb += go.eq(examined & self.i.valid & can_load)
        with m.If(go):
            m.d.sync += examined.eq(0)

        with m.If(can_load):
            m.d.sync += out_valid.eq(0)
        with m.If(go & (close | emit_event)):
            m.d.sync += [
                out_valid.eq(1),
                out.close.eq(close),
                out.last.eq(is_end & final_step),
                out.index.eq(beat.channel),
            ]
        with m.If(go & close):
            with m.If(is_end & final_step):
                m.d.sync += [self.step.eq(0), bin_end.eq(self._bin_ticks), last_tick.eq(0)]
            with m.Else():
                m.d.sync += [self.step.eq(self.step + 1), bin_end.eq(bin_end + self._bin_ticks)]
        with m.If(go & (emit_event | late | over_bound)):
            m.d.sync += last_tick.eq(beat.tick)
        if self._max_events is not None:
            with m.If(go & close):
                m.d.sync += step_events.eq(0)
            with m.Elif(go & emit_event):
                m.d.sync += step_events.eq(step_events + 1)

        for counter, flag in ((self.dropped_backwards, backwards), (self.dropped_out_of_range, out_of_range),
                              (self.dropped_late, late), (self.dropped_over_bound, over_bound)):
            count_saturating(m, counter, go & flag)
        return m
