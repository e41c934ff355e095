"""8N1 UART transmitter and receiver as byte streams.

Both sides divide the ``sync`` clock by ``divisor = round(clk_freq / baud)``; the baud rate
actually produced, ``clk_freq / divisor``, must be within :data:`MAX_BAUD_ERROR` of the one asked
for. On the ULX3S the FTDI FT231X reaches 3 Mbaud exactly and 1 Mbaud exactly (3 MHz / n):

==========  ==========  =======  ======================================
clock       baud        divisor  note
==========  ==========  =======  ======================================
25 MHz      1 Mbaud     25       the default: board oscillator, no PLL
48 MHz      3 Mbaud     16       needs a PLL
75 MHz      3 Mbaud     25       needs a PLL
90 MHz      3 Mbaud     30       the processor top's default clock
25 MHz      3 Mbaud     (8)      rejected: 4.2 % baud error
==========  ==========  =======  ======================================

The serial line has no flow control, so neither block can stall the far end: the receiver
delivers a byte on a stream whose consumer must keep up (the frame decoder always does).
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["MAX_BAUD_ERROR", "uart_divisor", "UARTTx", "UARTRx"]

#: Largest relative error between the asked and the produced baud rate (per side; a receiver
#: sampling mid-bit tolerates about 5 % between both sides over one 10-bit frame).
MAX_BAUD_ERROR = 0.02


def uart_divisor(clk_freq: float, baud: float) -> int:
    """Clock cycles per bit for ``baud`` at ``clk_freq``; ``ValueError`` when not usable."""
    if not clk_freq > 0 or not baud > 0:
        raise ValueError(f"clk_freq and baud must be positive, got {clk_freq} and {baud}")
    divisor = round(clk_freq / baud)
    if divisor < 4:
        raise ValueError(
            f"a UART needs at least 4 clock cycles per bit; {clk_freq:g} Hz / {baud:g} baud gives "
            f"{clk_freq / baud:.3g}: raise the clock or lower the baud rate")
    error = abs(clk_freq / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(
            f"{clk_freq:g} Hz / {divisor} = {clk_freq / divisor:.6g} baud is {error:.1%} off "
            f"{baud:g} baud (at most {MAX_BAUD_ERROR:.0%}): use a clock that is a near multiple of the baud rate")
    return divisor


class UARTTx(wiring.Component):
    """8N1 transmitter: one start bit, 8 data bits LSB first, one stop bit.

    Parameters
    ----------
    clk_freq : float
        Frequency of the ``sync`` domain in Hz.
    baud : float
        Bit rate in baud (default 1 Mbaud).

    Members
    -------
    i : In(stream.Signature(8))
        Bytes to send. ``ready`` is high while the line is idle and during the last cycle of
        a stop bit, so back-to-back bytes leave exactly 10 bit times apart (throughput
        ``baud / 10`` bytes per second); the stream is held off otherwise.
    tx : Out(1)
        The serial line, registered, high when idle.
    """

    def __init__(self, clk_freq: float, baud: float = 1_000_000):
        self.divisor = uart_divisor(clk_freq, baud)
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        bits_left = Signal(range(11))  # bits of the current frame still on or to go on the line
        timer = Signal(range(self.divisor))  # cycles left in the current bit, minus one
        pending = Signal(9)  # data bits then the stop bit, next bit at the bottom

        bit_done = timer == 0
        m.d.comb += self.i.ready.eq((bits_left == 0) | ((bits_left == 1) & bit_done))
        with m.If(bits_left != 0):
            m.d.sync += timer.eq(timer - 1)
            with m.If(bit_done):
                m.d.sync += [
                    timer.eq(self.divisor - 1),
                    bits_left.eq(bits_left - 1),
                    self.tx.eq(pending[0]),
                    pending.eq(Cat(pending[1:], 1)),
                ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                self.tx.eq(0),
                pending.eq(Cat(self.i.payload, 1)),
                bits_left.eq(10),
                timer.eq(self.divisor - 1),
            ]
        return m


class UARTRx(wiring.Component):
    """8N1 receiver sampling each bit in its middle.

    Parameters
    ----------
    clk_freq : float
        Frequency of the ``sync`` domain in Hz.
    baud : float
        Bit rate in baud (default 1 Mbaud).

    Members
    -------
    rx : In(1)
        The serial line (asynchronous; passes a two-flop synchroniser, 2 cycles of latency).
    o : Out(stream.Signature(8))
        Received bytes, ``valid`` from the middle of the stop bit until taken. No
        backpressure reaches the line: a byte that completes while the previous one is still
        untaken is dropped (``overrun``).
    framing_error : Out(1)
        One-cycle strobe: a byte's stop bit was low; the byte is dropped and the receiver waits
        for the line to return high.
    overrun : Out(1)
        One-cycle strobe: a byte was dropped because ``o`` was still full.
    """

    def __init__(self, clk_freq: float, baud: float = 1_000_000):
        self.divisor = uart_divisor(clk_freq, baud)
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8)),
            "framing_error": Out(1),
            "overrun": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.rx_sync = FFSynchronizer(self.rx, line, init=1)

        timer = Signal(range(self.divisor))
        bit_index = Signal(range(8))
        shift = Signal(8)
        sample = timer == 0

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(self.divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(sample):
                    with m.If(line):  # a glitch, not a start bit
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [timer.eq(self.divisor - 1), bit_index.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(sample):
                    m.d.sync += [
                        shift.eq(Cat(shift[1:], line)),
                        bit_index.eq(bit_index + 1),
                        timer.eq(self.divisor - 1),
                    ]
                    with m.If(bit_index == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(sample):
                    with m.If(~line):
                        m.d.comb += self.framing_error.eq(1)
                        m.next = "BREAK"
                    with m.Elif(self.o.valid & ~self.o.ready):
                        m.d.comb += self.overrun.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                        m.next = "IDLE"
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m
