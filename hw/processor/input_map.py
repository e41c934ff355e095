"""Events to input channels: camera events with spatial pooling (:class:`InputMapper`, mirroring
:class:`golden.data.events.InputMap`) and channel events with channel pooling
(:class:`ChannelPooler`, mirroring :class:`golden.data.events.ChannelPool`)."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.data.events import ChannelPool, InputMap
from hw.arith import times_constant
from hw.processor.time_bins import TICK_BITS, channel_bits, input_event_layout

__all__ = ["camera_event_layout", "InputMapper", "ChannelPooler"]


def camera_event_layout(input_map: InputMap) -> data.StructLayout:
    """Payload of the camera-event input: ``{kind, x, y, polarity, tick}``.

    ``x``, ``y`` and ``polarity`` are as wide as the sensor needs plus one bit, so that
    out-of-range addresses can be presented (they are marked, then counted and dropped by the
    :class:`~hw.processor.time_bins.TimeBinController`).
    """
    width, height = input_map.sensor_size
    return data.StructLayout({
        "kind": unsigned(1),
        "x": unsigned(width.bit_length()),
        "y": unsigned(height.bit_length()),
        "polarity": unsigned(1),
        "tick": unsigned(TICK_BITS),
    })


class InputMapper(wiring.Component):
    """``channel = (p * H' + y // pool_y) * W' + x // pool_x`` (``p`` taken as 0 without split).

    An event outside the sensor (``x >= width`` or ``y >= height``) gets channel ``2**b - 1``
    (``b`` = :func:`~hw.processor.time_bins.channel_bits`), which is ``>= n_channels``, so the
    time-bin controller counts and drops it. END beats pass through unchanged.

    Parameters
    ----------
    input_map : InputMap

    Members
    -------
    i : ``In(stream.Signature(camera_event_layout(input_map)))``
    o : ``Out(stream.Signature(input_event_layout(input_map.n_channels)))``

    Timing
    ------
    Latency 2 cycles (two registered stages moving together), one beat per cycle;
    ``i.ready = ~o.valid | o.ready``. The divisions by the pool sizes and the multiply by the
    pooled width are by constants (shifts when they are powers of two), one per stage.
    """

    def __init__(self, input_map: InputMap):
        if not isinstance(input_map, InputMap):
            raise ValueError(f"input_map must be a golden.data.events.InputMap, not {type(input_map).__name__}")
        self._map = input_map
        super().__init__({
            "i": In(stream.Signature(camera_event_layout(input_map))),
            "o": Out(stream.Signature(input_event_layout(input_map.n_channels))),
        })

    @property
    def input_map(self) -> InputMap:
        return self._map

    def elaborate(self, platform):
        m = Module()
        imap = self._map
        (width, height), (pool_x, pool_y) = imap.sensor_size, imap.pool
        pooled_w, pooled_h = imap.pooled_size
        mark = (1 << channel_bits(imap.n_channels)) - 1
        beat = self.i.payload

        # Two stages moving as a whole: (1) pooled row within the polarity plane and pooled
        # column, (2) the channel. Each stage holds one constant division or multiply.
        advance = ~self.o.valid | self.o.ready
        valid_1 = Signal()
        kind_1 = Signal()
        tick_1 = Signal(TICK_BITS)
        row_1 = Signal(range(imap.n_polarities * pooled_h + 1))
        column_1 = Signal(range(pooled_w + 1))
        outside_1 = Signal()
        plane = beat.polarity if imap.split_polarity else 0
        m.d.comb += self.i.ready.eq(advance)
        with m.If(advance):
            m.d.sync += [
                valid_1.eq(self.i.valid),
                kind_1.eq(beat.kind),
                tick_1.eq(beat.tick),
                row_1.eq(times_constant(plane, pooled_h) + beat.y // pool_y),
                column_1.eq(beat.x // pool_x),
                outside_1.eq((beat.x >= width) | (beat.y >= height)),
                self.o.valid.eq(valid_1),
                self.o.payload.kind.eq(kind_1),
                self.o.payload.channel.eq(Mux(outside_1, mark, times_constant(row_1, pooled_w) + column_1)),
                self.o.payload.tick.eq(tick_1),
            ]
        return m


class ChannelPooler(wiring.Component):
    """``channel = source // pool``: ``pool`` adjacent source channels become one input channel.

    A source channel ``>= n_sources`` gets channel ``2**b - 1`` (``b`` =
    :func:`~hw.processor.time_bins.channel_bits` of the pooled count), which is ``>= n_channels``,
    so the time-bin controller counts and drops it. END beats pass through unchanged.

    Parameters
    ----------
    channel_pool : ChannelPool

    Members
    -------
    i : ``In(stream.Signature(input_event_layout(channel_pool.n_sources)))``
    o : ``Out(stream.Signature(input_event_layout(channel_pool.n_channels)))``

    Timing
    ------
    Latency 1 cycle (one registered stage), one beat per cycle; ``i.ready = ~o.valid | o.ready``.
    The division is by a constant (a shift when ``pool`` is a power of two).
    """

    def __init__(self, channel_pool: ChannelPool):
        if not isinstance(channel_pool, ChannelPool):
            raise ValueError(
                f"channel_pool must be a golden.data.events.ChannelPool, not {type(channel_pool).__name__}")
        self._pool = channel_pool
        super().__init__({
            "i": In(stream.Signature(input_event_layout(channel_pool.n_sources))),
            "o": Out(stream.Signature(input_event_layout(channel_pool.n_channels))),
        })

    @property
    def channel_pool(self) -> ChannelPool:
        return self._pool

    def elaborate(self, platform):
        m = Module()
        pool = self._pool
        mark = (1 << channel_bits(pool.n_channels)) - 1
        beat = self.i.payload
        advance = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(advance)
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(self.i.valid),
                self.o.payload.kind.eq(beat.kind),
                self.o.payload.channel.eq(Mux(beat.channel >= pool.n_sources, mark, beat.channel // pool.pool)),
                self.o.payload.tick.eq(beat.tick),
            ]
        return m
