"""Formal checkers: one block under check, its inputs assumed well-behaved, its contract asserted.

Every checker's ``In`` members are free inputs (the solver picks their values each cycle) and
its ``sync`` reset is held low (:func:`~hw.formal.properties.hold_reset_low`). Run one with
:func:`hw.formal.sby.prove`; ``docs/formal.md`` lists what each proves and how deep.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from hw.streams import StreamQueue
from amaranth.lib.wiring import In

from golden.protocol import COMMAND_PAYLOAD_LENGTHS, CRC, SYNC, Command, SensorGeometry
from hw.formal.properties import assert_stream_rules, assume_stream_rules, hold_reset_low, past, started
from hw.link.frame_decoder import EVENT_PAYLOAD_BYTES, CommandKind, FrameDecoder
from hw.processor.time_bins import InputKind, TimeBinController

__all__ = ["BlockCheck", "QueueCheck", "TimeBinOrderCheck", "time_bin_counters",
           "FrameDecoderCRCCheck", "frame_decoder_counters", "crc_of_bytes"]


def _stream_members(signature):
    """``(name, flow)`` of the stream members of ``signature``."""
    return [(name, member.flow) for name, member in signature.members.items()
            if member.is_signature and isinstance(member.signature, stream.Signature)]


def _assert_counter_sticks(m, counter, label):
    """A counter steps by 0 or 1 per cycle, never wraps and sticks at its maximum."""
    maximum = (1 << len(counter)) - 1
    was = past(m, counter, name=f"{label}_was")
    with m.If(started(m)):
        m.d.comb += [
            Assert(counter >= was, f"{label}: never decreases (never wraps)"),
            Assert(counter - was <= 1, f"{label}: steps by at most one"),
            Assert((was != maximum) | (counter == maximum), f"{label}: sticks at its maximum"),
        ]


class BlockCheck(wiring.Component):
    """A block with its own signature as free inputs: stream rules on its streams, counters checked.

    The checker has the block's signature; its ``In`` members drive the block's, so the solver
    chooses the block's inputs. Every ``In`` stream of the block is assumed to follow the stream
    rules (``valid`` holds until ``ready``, payload stable while waiting) and every ``Out``
    stream is proven to follow them; every counter in ``counters`` is proven to step by at most
    one, never wrap and stick at its maximum.

    Parameters
    ----------
    block : wiring.Component
        The block under check (built by the caller with small parameters).
    counters : callable, optional
        ``counters(block) -> {label: value}``, the block's saturating counters.
    free_inputs : dict, optional
        More ``In`` members of the checker (free choices its properties use), by name.
    """

    def __init__(self, block, counters=None, *, free_inputs=None):
        self._block = block
        self._counters = counters
        super().__init__({**dict(block.signature.members.items()), **(free_inputs or {})})

    def elaborate(self, platform):
        m = Module()
        hold_reset_low(m)
        m.submodules.block = block = self._block
        for path, member, value in block.signature.flatten(block):
            mine = self
            for step in path:
                mine = mine[step] if isinstance(step, int) else getattr(mine, step)
            m.d.comb += value.eq(mine) if member.flow == In else mine.eq(value)
        for name, flow in _stream_members(block.signature):
            rules = assume_stream_rules if flow == In else assert_stream_rules
            rules(m, getattr(block, name), prefix=name)
        if self._counters is not None:
            for label, counter in self._counters(block).items():
                _assert_counter_sticks(m, counter, label)
        self.add_properties(m, block)
        return m

    def add_properties(self, m, block):
        """Block-specific properties (none here)."""


class QueueCheck(BlockCheck):
    """A queue loses, duplicates and reorders nothing, and offers what it holds.

    ``make_queue(shape, depth=)`` builds the queue (a component with streams ``i`` and ``o``).
    The checker counts the beats held (taken on ``i`` minus given on ``o``) and proves:

    * nothing from nothing: ``o.valid`` only while a beat is held (no duplicate, no invention);
    * at most ``depth`` beats are held, and a queue holding fewer than ``depth - 1`` takes a beat
      (``i.ready``; SyncFIFOBuffered's input side is full while its last entry is moving into
      the output register);
    * while beats are held, ``o.valid`` is never low two cycles in a row: none is kept back;
    * the beat taken while the free input ``pick`` is high comes out on ``o`` unchanged exactly
      after the beats that were ahead of it (order and data: since the solver may pick any
      beat, this holds for every beat).

    Members (besides the queue's own)
    -------
    pick : ``In(1)``
        Choose the beat taken in this cycle as the tracked one (when none is tracked).
    """

    def __init__(self, make_queue=StreamQueue, *, width: int = 4, depth: int = 2):
        self._depth = depth
        queue = make_queue(unsigned(width), depth=depth)
        super().__init__(queue, free_inputs={"pick": In(1)})

    def add_properties(self, m, queue):
        depth = self._depth
        took = queue.i.valid & queue.i.ready
        gave = queue.o.valid & queue.o.ready
        held = Signal(range(depth + 2))
        m.d.sync += held.eq(held + took - gave)
        m.d.comb += [
            Assert(held <= depth, "holds at most depth beats"),
            Assert(~queue.o.valid | (held != 0), "offers a beat only while one is held"),
            Assert((held >= depth - 1) | queue.i.ready, "takes a beat while it holds fewer than depth - 1"),
        ]
        was_held_unoffered = past(m, (held != 0) & ~queue.o.valid, name="was_held_unoffered")
        with m.If((held != 0) & was_held_unoffered):
            m.d.comb += Assert(queue.o.valid, "offers a held beat in the second cycle at the latest")

        tracked = Signal(queue.i.payload.shape())
        tracking = Signal()
        ahead = Signal(range(depth + 1))
        with m.If(tracking & gave):
            with m.If(ahead == 0):
                m.d.comb += Assert(Value.cast(queue.o.payload) == Value.cast(tracked),
                                   "the tracked beat comes out unchanged in its turn")
                m.d.sync += tracking.eq(0)
            with m.Else():
                m.d.sync += ahead.eq(ahead - 1)
        with m.If(~tracking & took & self.pick):
            m.d.sync += [tracking.eq(1), tracked.eq(queue.i.payload), ahead.eq(held - gave)]


def time_bin_counters(time_bins):
    """The dropped-event counters of a :class:`~hw.processor.time_bins.TimeBinController`."""
    return {name: getattr(time_bins, name)
            for name in ("dropped_backwards", "dropped_out_of_range", "dropped_late", "dropped_over_bound")}


class TimeBinOrderCheck(BlockCheck):
    """The time bins pass events in order, each in its own step, and lose none silently.

    Builds a :class:`~hw.processor.time_bins.TimeBinController` (``n_steps`` is a free input,
    held constant). The output is registered, so an event beat loaded onto ``o`` comes from the
    input beat taken in the cycle before; the checker keeps that beat and counts the closes it
    has seen, and proves for every event loaded onto ``o``:

    * it comes from an EVENT beat taken in the cycle before, with the same channel (in range);
    * its tick is not below the tick of the event passed before it in the sample (order);
    * its tick lies in the open step: ``k * bin_ticks <= tick < (k + 1) * bin_ticks`` after
      ``k`` closes (no event crosses a step boundary either way);

    and that every EVENT beat taken is either passed or counted by exactly one drop counter,
    that a close is marked ``last`` exactly when it closes step ``n_steps - 1``, plus the
    stream rules and the four drop counters' sticking (:class:`BlockCheck`).
    """

    def __init__(self, *, n_inputs: int = 3, bin_ticks: int = 3, n_steps: int = 3, max_events_per_step: int = 2):
        self._bin_ticks = bin_ticks
        super().__init__(TimeBinController(n_inputs, bin_ticks, n_steps, max_events_per_step),
                         counters=time_bin_counters)

    def add_properties(self, m, time_bins):
        n_steps_was = past(m, time_bins.n_steps, name="n_steps_was")
        with m.If(started(m)):
            m.d.comb += Assume(time_bins.n_steps == n_steps_was)

        took = past(m, time_bins.i.valid & time_bins.i.ready, name="took")
        beat = past(m, time_bins.i.payload, name="taken_beat")
        fresh = time_bins.o.valid & past(m, ~time_bins.o.valid | time_bins.o.ready, name="could_load")
        out = time_bins.o.payload
        closes = Signal.like(time_bins.step, name="closes_seen")
        passed_tick = Signal.like(time_bins.i.payload.tick, name="passed_tick")
        bin_ticks = self._bin_ticks

        with m.If(fresh & ~out.close):
            m.d.comb += [
                Assert(took & (beat.kind == InputKind.EVENT), "an event out comes from an event taken before"),
                Assert((beat.channel == out.index) & (beat.channel < time_bins.n_inputs), "with its channel"),
                Assert(beat.tick >= passed_tick, "events pass in tick order"),
                Assert((beat.tick >= closes * bin_ticks) & (beat.tick < (closes + 1) * bin_ticks),
                       "an event passes in its own step"),
            ]
            m.d.sync += passed_tick.eq(beat.tick)
        last_step = Mux(time_bins.n_steps == 0, 0, time_bins.n_steps - 1)
        with m.If(fresh & out.close):
            m.d.comb += Assert(out.last == (closes == last_step), "last marks the close of the final step")
            with m.If(out.last):
                m.d.sync += [closes.eq(0), passed_tick.eq(0)]
            with m.Else():
                m.d.sync += closes.eq(closes + 1)

        drops = [counter != past(m, counter, name=f"{label}_before")
                 for label, counter in time_bin_counters(time_bins).items()]
        passed = fresh & ~out.close
        with m.If(started(m) & took & (beat.kind == InputKind.EVENT)):
            m.d.comb += Assert(Cat(passed, *drops).as_unsigned() != 0, "an event taken is passed or counted")
            for k, drop in enumerate(drops):
                m.d.comb += Assert(~drop | ~Cat(passed, *drops[:k]).any(), "and counted once at most")


def crc_of_bytes(m, byte_values):
    """CRC-16/IBM-3740 (:data:`golden.protocol.CRC`: polynomial 0x1021, initial 0xFFFF, no
    reflection) of 8-bit Amaranth values, combinational, bit by bit: an implementation apart from
    the decoder's :mod:`amaranth.lib.crc` processor. Each step is a signal of ``m`` (an
    expression that used the previous step twice would grow as a tree, exponentially)."""
    algorithm = CRC.algorithm
    crc = Const(algorithm.initial_crc, 16)
    for index, byte in enumerate(byte_values):
        for bit in reversed(range(8)):
            step = Signal(16, name=f"crc_byte{index}_bit{bit}")
            m.d.comb += step.eq(Cat(Const(0, 1), crc[:15]) ^ Mux(byte[bit] ^ crc[15], algorithm.polynomial, 0))
            crc = step
    return crc


def frame_decoder_counters(decoder):
    """The link counters of a :class:`~hw.link.frame_decoder.FrameDecoder`."""
    return {name: decoder.counters[name] for name in decoder.counters.shape().members}


#: Bytes of the longest frame that yields a command: SYNC, CMD, LEN, an EVENT payload, CRC.
_LONGEST_FRAME = 3 + EVENT_PAYLOAD_BYTES + 2
#: Cycles from the one that takes a frame's last byte to the one that first offers its command
#: on ``o`` (empty queue, ``o.ready`` high): check, deliver, two FIFO stages.
_DECODE_LATENCY = 4


class FrameDecoderCRCCheck(BlockCheck):
    """The frame decoder emits a command only from a complete frame with a good CRC and length.

    Builds a small :class:`~hw.link.frame_decoder.FrameDecoder` (``o.ready`` held high, so a
    command leaves a fixed :data:`_DECODE_LATENCY` after its frame's last byte) and keeps the
    last bytes taken on ``i`` in a window. For every command on ``o`` it proves that the bytes
    taken just before form a frame for exactly that command: ``SYNC``, the command's code,
    its length (9 for EVENT, 0 otherwise), the payload, and a CRC equal to
    :func:`crc_of_bytes` of ``CMD``, ``LEN`` and payload; and that an EVENT's fields are the
    payload's. So no frame with a bad CRC, a bad length or an unknown command yields a command.
    """

    def __init__(self, *, timeout_cycles: int = 2, fifo_depth: int = 2,
                 geometry: SensorGeometry = SensorGeometry(width=4, height=4, n_polarities=2)):
        super().__init__(FrameDecoder(geometry, timeout_cycles=timeout_cycles, fifo_depth=fifo_depth))

    def add_properties(self, m, decoder):
        m.d.comb += Assume(decoder.o.ready)
        window = Signal(8 * _LONGEST_FRAME, name="bytes_taken")  # newest byte at the bottom
        with m.If(decoder.i.valid & decoder.i.ready):
            m.d.sync += window.eq(Cat(decoder.i.payload, window[:-8]))
        frame_bytes = window
        for _ in range(_DECODE_LATENCY - 1):
            frame_bytes = past(m, frame_bytes, name="frame_bytes")
        newest = [frame_bytes[8 * k: 8 * k + 8] for k in range(_LONGEST_FRAME)]  # newest[0]: CRC low

        command = decoder.o.payload
        with m.If(decoder.o.valid):
            for code, length in COMMAND_PAYLOAD_LENGTHS.items():
                frame = list(reversed(newest[:length + 5]))  # oldest first: SYNC .. CRC low
                sync, cmd, declared, payload, crc_hi, crc_lo = (
                    frame[0], frame[1], frame[2], frame[3:-2], frame[-2], frame[-1])
                with m.If(command.kind == CommandKind(code.value)):
                    m.d.comb += [
                        Assert(sync == SYNC, "a command follows a SYNC byte"),
                        Assert(cmd == code.value, "the frame's CMD is the command's"),
                        Assert(declared == length, "the frame's LEN is the command's length"),
                        Assert(Cat(crc_lo, crc_hi) == crc_of_bytes(m, [cmd, declared, *payload]),
                               "the frame's CRC is good"),
                    ]
                    if code == Command.EVENT:
                        m.d.comb += Assert(
                            (Cat(payload[1], payload[0]) == command.x) & (Cat(payload[3], payload[2]) == command.y)
                            & (payload[4] == command.polarity)
                            & (Cat(payload[8], payload[7], payload[6], payload[5]) == command.timestamp),
                            "an EVENT carries its payload's fields")
            m.d.comb += Assert(Cat(*(command.kind == CommandKind(code.value)
                                     for code in COMMAND_PAYLOAD_LENGTHS)).any(), "a command is of a known kind")
