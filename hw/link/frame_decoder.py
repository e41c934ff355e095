"""Host-to-board frame decoder: a byte stream in, a stream of typed commands out.

The frame format and every decoding rule are specified by :mod:`golden.protocol`; this block is
tested bit for bit against :class:`golden.protocol.FrameDecoderModel`.
"""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from golden.protocol import (
    COMMAND_PAYLOAD_LENGTHS, COUNTER_MAX, COUNTER_NAMES, COUNTER_WIDTH, CRC, MAX_UNKNOWN_PAYLOAD,
    SYNC, Command, SensorGeometry,
)

__all__ = ["CommandKind", "command_layout", "COUNTERS_LAYOUT", "FrameDecoder"]

EVENT_PAYLOAD_BYTES = COMMAND_PAYLOAD_LENGTHS[Command.EVENT]


class CommandKind(enum.Enum, shape=3):
    """Kind of a decoded command; the values are the wire ``CMD`` codes."""

    EVENT = Command.EVENT.value
    END_OF_SAMPLE = Command.END_OF_SAMPLE.value
    RESET = Command.RESET.value
    READ_STATUS = Command.READ_STATUS.value


def command_layout(geometry: SensorGeometry) -> data.StructLayout:
    """Payload of the decoder's command stream.

    ``kind`` is a :class:`CommandKind`; ``x`` (``range(width)``), ``y`` (``range(height)``),
    ``polarity`` (``range(n_polarities)``) and ``timestamp`` (u32 ticks) carry an EVENT and hold
    no meaning for the other kinds.
    """
    return data.StructLayout({
        "kind": CommandKind,
        "x": range(geometry.width),
        "y": range(geometry.height),
        "polarity": range(geometry.n_polarities),
        "timestamp": unsigned(32),
    })


#: The link counters of :data:`golden.protocol.COUNTER_NAMES`, u32 each, in STATUS order.
COUNTERS_LAYOUT = data.StructLayout({name: unsigned(COUNTER_WIDTH) for name in COUNTER_NAMES})


class FrameDecoder(wiring.Component):
    """Deframe, check and decode host-to-board frames (rules: :mod:`golden.protocol`).

    Parameters
    ----------
    geometry : SensorGeometry
        Accepted event address range; events outside it are dropped and counted.
    timeout_cycles : int
        A frame is discarded (``truncated``) when this many consecutive cycles pass without a byte
        before it is complete. Choose it longer than any gap the host's USB-serial link puts
        inside a frame (full-speed USB moves host data in 1 ms frames, so take several ms, e.g.
        10 ms: ``clk_freq // 100``), and short enough that a frame left
        incomplete by an interrupted host is discarded before the host starts again.
    fifo_depth : int
        Capacity of the command FIFO (at least 2). A command that finds it full is dropped and
        counted (``fifo_overflow``).

    Members
    -------
    i : In(stream.Signature(8))
        Bytes from the line, at most one per cycle. ``ready`` is always high: the decoder never
        applies backpressure, so it can sit directly behind :class:`~hw.link.uart.UARTRx`.
    o : Out(stream.Signature(command_layout(geometry)))
        Decoded commands, in order, from the FIFO. A frame is checked in the cycle after its last
        byte; its command is written into the FIFO (and its counters move) one cycle later and is
        ``valid`` on ``o`` 2 cycles after that when the FIFO was empty. Backpressure on ``o`` only fills the FIFO.
    counters : Out(COUNTERS_LAYOUT)
        The link counters (u32, saturating, cleared by reset only), registered.
    """

    def __init__(self, geometry: SensorGeometry, *, timeout_cycles: int, fifo_depth: int = 16):
        if not isinstance(geometry, SensorGeometry):
            raise ValueError(f"geometry must be a golden.protocol.SensorGeometry, got {geometry!r}")
        if not isinstance(timeout_cycles, int) or timeout_cycles < 2:
            raise ValueError(f"timeout_cycles must be an int of at least 2, got {timeout_cycles!r}")
        if not isinstance(fifo_depth, int) or fifo_depth < 2:
            raise ValueError(f"fifo_depth must be an int of at least 2, got {fifo_depth!r}")
        self.geometry = geometry
        self.timeout_cycles = timeout_cycles
        self.fifo_depth = fifo_depth
        super().__init__({
            "i": In(stream.Signature(8)),
            "o": Out(stream.Signature(command_layout(geometry))),
            "counters": Out(COUNTERS_LAYOUT),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = CRC.create()
        layout = command_layout(self.geometry)
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=layout.size, depth=self.fifo_depth)
        m.d.comb += [
            self.o.payload.eq(fifo.r_data),
            self.o.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.o.ready),
        ]

        m.d.comb += self.i.ready.eq(1)
        byte = self.i.payload
        got_byte = self.i.valid

        def count(name):
            counter = self.counters[name]
            with m.If(counter != COUNTER_MAX):
                m.d.sync += counter.eq(counter + 1)

        cmd = Signal(8)  # CMD byte of the frame in progress
        bytes_left = Signal(range(256))  # payload bytes still to come after the current one
        payload = Signal(8 * EVENT_PAYLOAD_BYTES)  # last payload bytes, big-endian, newest at the bottom
        idle_cycles = Signal(range(self.timeout_cycles))
        last_timestamp = Signal(32)

        known = Signal()
        expected_length = Signal(8)
        m.d.comb += known.eq(Cat(*(cmd == code for code in COMMAND_PAYLOAD_LENGTHS)).any())
        m.d.comb += expected_length.eq(Mux(cmd == Command.EVENT, EVENT_PAYLOAD_BYTES, 0))

        event_timestamp = payload[0:32]
        event_polarity = payload[32:40]
        event_y = payload[40:56]
        event_x = payload[56:72]
        in_range = ((event_x < self.geometry.width) & (event_y < self.geometry.height)
                    & (event_polarity < self.geometry.n_polarities))

        command = Signal(layout)
        m.d.comb += [
            command.kind.as_value().eq(cmd),
            command.x.eq(event_x),
            command.y.eq(event_y),
            command.polarity.eq(event_polarity),
            command.timestamp.eq(event_timestamp),
            fifo.w_data.eq(command),
            crc.data.eq(byte),
        ]

        def hunt():
            with m.If(got_byte):
                with m.If(byte == SYNC):
                    m.d.comb += crc.start.eq(1)
                    m.d.sync += idle_cycles.eq(0)
                    m.next = "CMD"
                with m.Else():
                    count("bytes_skipped")

        def in_frame():
            """Feed the CRC and watch the inter-byte timeout; the caller handles the byte itself."""
            m.d.comb += crc.valid.eq(got_byte)
            with m.If(got_byte):
                m.d.sync += idle_cycles.eq(0)
            with m.Elif(idle_cycles == self.timeout_cycles - 1):
                count("truncated")
                m.next = "HUNT"
            with m.Else():
                m.d.sync += idle_cycles.eq(idle_cycles + 1)

        def deliver():
            with m.If(fifo.w_rdy):
                m.d.comb += fifo.w_en.eq(1)
                count("frames_ok")
            with m.Else():
                count("fifo_overflow")

        # Fate of the frame checked in the previous cycle, one flag each (all zero otherwise).
        verdict = Signal(data.StructLayout({name: unsigned(1) for name in (
            "bad_crc", "unknown_command", "address_out_of_range", "timestamp_backwards", "accept_event",
            "accept_other")}))
        m.d.sync += verdict.eq(0)  # overridden in the CHECK state

        with m.FSM():
            with m.State("HUNT"):
                hunt()
            with m.State("CMD"):
                in_frame()
                with m.If(got_byte):
                    m.d.sync += cmd.eq(byte)
                    m.next = "LEN"
            with m.State("LEN"):
                in_frame()
                with m.If(got_byte):
                    m.d.sync += bytes_left.eq(byte - 1)
                    with m.If(Mux(known, byte != expected_length, byte > MAX_UNKNOWN_PAYLOAD)):
                        count("bad_length")
                        m.next = "HUNT"
                    with m.Elif(byte == 0):
                        m.next = "CRC_HI"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                in_frame()
                with m.If(got_byte):
                    m.d.sync += [payload.eq(Cat(byte, payload[:-8])), bytes_left.eq(bytes_left - 1)]
                    with m.If(bytes_left == 0):
                        m.next = "CRC_HI"
            with m.State("CRC_HI"):
                in_frame()
                with m.If(got_byte):
                    m.next = "CRC_LO"
            with m.State("CRC_LO"):
                in_frame()
                with m.If(got_byte):
                    m.next = "CHECK"
            with m.State("CHECK"):
                # The frame is complete; this cycle's byte (if any) already belongs to the hunt.
                # The verdict is registered here and acted on in the next cycle (below), so the
                # CRC check and the counter updates sit in different cycles (timing).
                m.next = "HUNT"
                is_event = cmd == Command.EVENT
                m.d.sync += [
                    verdict.bad_crc.eq(~crc.match_detected),
                    verdict.unknown_command.eq(crc.match_detected & ~known),
                    verdict.address_out_of_range.eq(crc.match_detected & known & is_event & ~in_range),
                    verdict.timestamp_backwards.eq(
                        crc.match_detected & is_event & in_range & (event_timestamp < last_timestamp)),
                    verdict.accept_event.eq(
                        crc.match_detected & is_event & in_range & ~(event_timestamp < last_timestamp)),
                    verdict.accept_other.eq(crc.match_detected & known & ~is_event),
                ]
                hunt()
        # The frame checked in the previous cycle: count its fate, deliver it. Nothing in the
        # FSM counts the same counters in this cycle (the next frame is at least 5 bytes away).
        with m.If(verdict.bad_crc):
            count("bad_crc")
        with m.If(verdict.unknown_command):
            count("unknown_command")
        with m.If(verdict.address_out_of_range):
            count("address_out_of_range")
        with m.If(verdict.timestamp_backwards):
            count("timestamp_backwards")
        with m.If(verdict.accept_event):
            m.d.sync += last_timestamp.eq(event_timestamp)
        with m.If(verdict.accept_other & ((cmd == Command.END_OF_SAMPLE) | (cmd == Command.RESET))):
            m.d.sync += last_timestamp.eq(0)
        with m.If(verdict.accept_event | verdict.accept_other):
            deliver()
        return m
