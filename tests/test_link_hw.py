# amaranth: UnusedElaboratable=no
"""Host link gateware against golden.protocol, in amaranth.sim and as Verilog on Icarus (cocotb).

* UART: tx -> rx loopback at several clock/baud ratios, exact bit timing, framing error, overrun.
* FrameDecoder: the same byte streams (each bad-input case, random garbage) through the hardware
  and through ``FrameDecoderModel``; commands and every counter compared exactly, with idle cycles
  between bytes and random backpressure on the command output, and a full-FIFO case.
* FrameEncoder: its bytes decode with the golden parser into exactly the results sent.
* End to end over the serial line: UARTTx -> UARTRx -> FrameDecoder, FrameEncoder -> UARTTx -> UARTRx.
* The generated Verilog of FrameDecoder and FrameEncoder on Icarus through cocotb
  (``sim.runner.run_cocotb``), at full rate and with idle cycles and backpressure: decoder against
  the model on all bad-input cases plus a random stream; encoder bytes equal the golden frames.
"""

import random
import shutil

import cocotb
import pytest
from amaranth.hdl import Module
from amaranth.lib import data, stream, wiring
from amaranth.sim import Simulator
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from golden.protocol import (
    COUNTER_MAX, COUNTER_NAMES, TIMEOUT, Command, EndOfSample, Event, FrameDecoderModel,
    ReadStatus, Reset, Scores, SensorGeometry, Spike, Status, decode_results,
    encode_command, encode_end_of_sample, encode_event, encode_frame, encode_read_status,
    encode_reset, encode_scores, encode_spike, encode_status,
)
from hw.link import (
    COUNTERS_LAYOUT, CommandKind, FrameDecoder, FrameEncoder, ResultKind, UARTRx, UARTTx, command_layout,
    result_layout, uart_divisor,
)
from sim.runner import load_config, run_cocotb
from sim.stream import unpack

GEOMETRY = SensorGeometry(34, 34, 2)
TIMEOUT_CYCLES = 24
FIFO_DEPTH = 4


def simulate(dut, testbench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()


def _set_payload(ctx, port, item):
    ctx.set(port.payload, item)


def pump(dut, items, cycles, *, put=_set_payload, watch=None):
    """``cycles`` clock cycles of ``dut``: ``items`` offered on ``dut.i`` one at a time, each
    until it is taken (``put(ctx, port, item)`` sets the payload), ``dut.o`` always ready.
    ``watch(ctx, dut, cycle, taken)`` runs every cycle before the tick, ``taken`` counting the items
    taken so far. Returns the ``dut.o`` payloads received."""
    received = []

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        taken = 0
        for cycle in range(cycles):
            ctx.set(dut.i.valid, taken < len(items))
            if taken < len(items):
                put(ctx, dut.i, items[taken])
                if ctx.get(dut.i.ready):
                    taken += 1
            if ctx.get(dut.o.valid):
                received.append(ctx.get(dut.o.payload))
            if watch is not None:
                watch(ctx, dut, cycle, taken)
            await ctx.tick()

    simulate(dut, testbench)
    return received


# --- UART ---------------------------------------------------------------------------------------

class _Loopback(wiring.Component):
    """UARTTx wired to UARTRx, the serial line exposed for the checks."""

    def __init__(self, clk_freq, baud, rx_baud=None):
        self.tx = UARTTx(clk_freq, baud)
        self.rx = UARTRx(clk_freq, rx_baud or baud)
        super().__init__({
            "i": wiring.In(stream.Signature(8)),
            "o": wiring.Out(stream.Signature(8)),
            "framing_error": wiring.Out(1),
            "line": wiring.Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx = self.tx
        m.submodules.rx = self.rx
        wiring.connect(m, wiring.flipped(self.i), self.tx.i)
        wiring.connect(m, self.rx.o, wiring.flipped(self.o))
        m.d.comb += [self.rx.rx.eq(self.tx.tx), self.line.eq(self.tx.tx),
                     self.framing_error.eq(self.rx.framing_error)]
        return m


def no_framing_error(ctx, dut, cycle, taken):
    """A :func:`pump` watch for :class:`_Loopback`: the receiver never sees a bad stop bit."""
    assert not ctx.get(dut.framing_error)


@pytest.mark.parametrize("clk_freq, baud", [(25e6, 1e6), (48e6, 3e6), (4e6, 1e6), (10e6, 2e6)])
def test_uart_loopback(clk_freq, baud):
    divisor = uart_divisor(clk_freq, baud)
    dut = _Loopback(clk_freq, baud)
    payload = [0x00, 0xFF, 0x55, 0xAA, 0xA5] + [random.Random(divisor).randrange(256) for _ in range(7)]
    start_bits, previous_line = [], 1

    def watch(ctx, dut, cycle, taken):
        nonlocal previous_line
        line = ctx.get(dut.line)
        if previous_line and not line and len(start_bits) == taken - 1:
            start_bits.append(cycle)
        previous_line = line
        no_framing_error(ctx, dut, cycle, taken)

    assert pump(dut, payload, len(payload) * 10 * divisor + 8 * divisor, watch=watch) == payload
    # Back-to-back bytes leave exactly 10 bit times apart.
    assert [b - a for a, b in zip(start_bits, start_bits[1:])] == [10 * divisor] * (len(payload) - 1)


@pytest.mark.parametrize("rx_baud", [1.02e6, 0.98e6])
def test_uart_tolerates_two_sides_at_the_error_limit(rx_baud):
    """Transmitter and receiver each up to 2 % off (divisors 25 and 24 / 26): bytes still arrive."""
    dut = _Loopback(25e6, 1e6, rx_baud)
    payload = [0x00, 0xFF, 0x0F, 0xF0, 0x55]
    assert pump(dut, payload, len(payload) * 260 + 100, watch=no_framing_error) == payload


def test_uart_rx_framing_error_and_overrun():
    divisor = 8
    dut = UARTRx(8e6, 1e6)
    strobes = {"framing_error": 0, "overrun": 0}
    received = []

    def frame(byte, stop=1):
        return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]

    async def watch(ctx, bits):
        for bit in bits:
            ctx.set(dut.rx, bit)
            for _ in range(divisor):
                strobes["framing_error"] += ctx.get(dut.framing_error)
                strobes["overrun"] += ctx.get(dut.overrun)
                await ctx.tick()

    async def testbench(ctx):
        ctx.set(dut.o.ready, 0)
        # Bad stop bit, then the line held low (a break) for a while: one framing error, no byte.
        await watch(ctx, frame(0x3C, stop=0) + [0] * 12 + [1] * 3)
        assert strobes == {"framing_error": 1, "overrun": 0}
        assert not ctx.get(dut.o.valid)
        # Two bytes while nobody takes them: the first waits, the second is an overrun.
        await watch(ctx, frame(0x81) + frame(0x42) + [1] * 2)
        assert strobes == {"framing_error": 1, "overrun": 1}
        assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload) == 0x81
        ctx.set(dut.o.ready, 1)
        await ctx.tick()
        await watch(ctx, frame(0x42) + [1] * 2)
        received.append(ctx.get(dut.o.payload))

    simulate(dut, testbench)
    assert received == [0x42]


@pytest.mark.parametrize("clk_freq, baud, message", [
    (25e6, 3e6, "4.2%"), (10e6, 3e6, "at least 4"), (0, 1e6, "positive"),
])
def test_uart_divisor_rejects(clk_freq, baud, message):
    with pytest.raises(ValueError, match=message):
        uart_divisor(clk_freq, baud)


# --- FrameDecoder --------------------------------------------------------------------------------

def good_frames(rng, n, t0=0):
    """``n`` random valid commands (mostly events, in time order) and their frames."""
    out, t = [], t0
    for _ in range(n):
        roll = rng.random()
        if roll < 0.8:
            t += rng.choice([0, 1, rng.randrange(1 << 20)])
            out.append(encode_event(rng.randrange(34), rng.randrange(34), rng.randrange(2), t))
        elif roll < 0.9:
            out.append(encode_read_status())
        else:
            out.append(encode_end_of_sample())
            t = 0
    return out


def bad_input_cases():
    """Named byte sequences (with TIMEOUT markers), one per rule of golden.protocol."""
    ev = encode_event(5, 6, 1, 1000)
    corrupt = bytearray(encode_event(7, 8, 0, 2000))
    corrupt[6] ^= 0x10
    return {
        "good_mix": [*encode_reset(), *ev, *encode_event(33, 33, 1, 1000), *encode_read_status(),
                     *encode_end_of_sample(), *encode_event(0, 0, 0, 0)],
        "bad_crc": [*corrupt, *ev],
        "truncated_timeout": [*ev[:6], TIMEOUT, *ev, *encode_read_status()[:2], TIMEOUT, TIMEOUT],
        "truncated_swallows_next": [*ev[:6], *encode_event(1, 1, 1, 1100), *encode_event(2, 2, 0, 1200)],
        "unknown_command": [*encode_frame(0x7E, b"abc"), *encode_frame(0x40), *ev],
        "bad_length": [*encode_frame(0x7E, bytes(40)), *encode_frame(Command.EVENT, bytes(8)),
                       *encode_frame(Command.RESET, b"\x00"), TIMEOUT, *ev],
        "address_out_of_range": [*encode_event(34, 0, 0, 1), *encode_event(0, 34, 0, 1),
                                 *encode_event(0, 0, 2, 1), *encode_event(65535, 65535, 255, 1), *ev],
        "timestamp_backwards": [*encode_event(1, 1, 0, 10), *encode_event(1, 1, 0, 20),
                                *encode_event(1, 1, 0, 15), *encode_event(1, 1, 0, 20),
                                *encode_end_of_sample(), *encode_event(1, 1, 0, 0),
                                *encode_reset(), *encode_event(1, 1, 0, 0)],
        "garbage_with_sync_bytes": [0x00, 0xA5, 0xA5, 0x01, 0xFF, 0x13, 0xA5, TIMEOUT, *ev],
    }


def random_stream(seed):
    rng = random.Random(seed)
    items = []
    for frame in good_frames(rng, 30):
        roll = rng.random()
        if roll < 0.1:
            items += [rng.randrange(256) for _ in range(rng.randrange(1, 6))]
        elif roll < 0.2:
            frame = bytearray(frame)
            frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)
        elif roll < 0.25:
            frame = frame[: rng.randrange(1, len(frame))]
            items += list(frame) + [TIMEOUT]
            continue
        items += list(frame)
    return items + [TIMEOUT]


def to_golden(bits):
    """A command stream payload (flat bits of :func:`command_layout`) as a golden command."""
    command = data.Const(command_layout(GEOMETRY), bits)
    kind = command.kind
    if kind == CommandKind.EVENT:
        return Event(command.x, command.y, command.polarity, command.timestamp)
    return {CommandKind.END_OF_SAMPLE: EndOfSample(), CommandKind.RESET: Reset(),
            CommandKind.READ_STATUS: ReadStatus()}[kind]


class Gap:
    """``cycles`` idle cycles on the decoder input (the model sees nothing)."""

    def __init__(self, cycles):
        self.cycles = cycles


def run_decoder(items, *, seed=0, max_gap=2, ready_probability=1.0, stall_until_end=False):
    """Feed ``items`` to a FrameDecoder; return (commands, counters) taken from the hardware."""
    dut = FrameDecoder(GEOMETRY, timeout_cycles=TIMEOUT_CYCLES, fifo_depth=FIFO_DEPTH)
    rng = random.Random(seed)
    schedule = []  # one entry per cycle: a byte or None
    for item in items:
        if item is TIMEOUT:
            schedule += [None] * (TIMEOUT_CYCLES + rng.randrange(3))
        elif isinstance(item, Gap):
            schedule += [None] * item.cycles
        else:
            schedule += [None] * rng.randrange(max_gap + 1) + [item]
    schedule += [None] * 4
    commands, counters = [], {}

    async def testbench(ctx):
        for byte in schedule:
            ctx.set(dut.i.valid, byte is not None)
            ctx.set(dut.i.payload, byte or 0)
            ready = not stall_until_end and rng.random() < ready_probability
            ctx.set(dut.o.ready, ready)
            assert ctx.get(dut.i.ready)
            if ready and ctx.get(dut.o.valid):
                commands.append(to_golden(ctx.get(dut.o.payload).as_bits()))
            await ctx.tick()
        ctx.set(dut.i.valid, 0)
        ctx.set(dut.o.ready, 1)
        for _ in range(FIFO_DEPTH + 3):
            if ctx.get(dut.o.valid):
                commands.append(to_golden(ctx.get(dut.o.payload).as_bits()))
            await ctx.tick()
        assert not ctx.get(dut.o.valid)
        snapshot = ctx.get(dut.counters)
        counters.update({name: getattr(snapshot, name) for name in COUNTER_NAMES})

    simulate(dut, testbench)
    return commands, counters


def model_of(items, fifo_depth=None):
    model = FrameDecoderModel(GEOMETRY, fifo_depth=fifo_depth)
    model.feed_bytes(item for item in items if not isinstance(item, Gap))
    return model.take(), model.counters


@pytest.mark.parametrize("case", list(bad_input_cases()))
def test_decoder_bad_input_matches_model(case):
    items = bad_input_cases()[case]
    expected = model_of(items)
    # Back to back at one byte per cycle and always ready, then idle gaps with backpressure.
    assert run_decoder(items, max_gap=0) == expected
    assert run_decoder(items, seed=1, max_gap=3, ready_probability=0.5) == expected


@pytest.mark.parametrize("seed", range(3))
def test_decoder_random_streams_match_model(seed):
    items = random_stream(seed)
    commands, counters = run_decoder(items, seed=seed, max_gap=2, ready_probability=0.7)
    assert (commands, counters) == model_of(items)
    assert counters["fifo_overflow"] == 0  # the comparison above assumes an unbounded FIFO


def test_decoder_random_garbage_matches_model():
    rng = random.Random(99)
    # Garbage rich in SYNC and small command codes, so that headers keep starting.
    garbage = [rng.choice([0xA5, 0x01, 0x02, 0x04, 0x09, 0x00, rng.randrange(256)]) for _ in range(600)]
    items = garbage + [TIMEOUT] + list(encode_event(1, 2, 1, 3))
    commands, counters = run_decoder(items, max_gap=0, ready_probability=0.8)
    assert (commands, counters) == model_of(items)
    assert commands[-1] == Event(1, 2, 1, 3)


def test_decoder_full_fifo_drops_and_counts():
    rng = random.Random(5)
    items = [byte for frame in good_frames(rng, 3 * FIFO_DEPTH) for byte in frame]
    commands, counters = run_decoder(items, max_gap=1, stall_until_end=True)
    assert (commands, counters) == model_of(items, fifo_depth=FIFO_DEPTH)
    assert len(commands) == FIFO_DEPTH and counters["fifo_overflow"] == 2 * FIFO_DEPTH


def test_decoder_timeout_is_exactly_timeout_cycles():
    """``timeout_cycles - 1`` idle cycles inside a frame are tolerated, ``timeout_cycles`` truncate it."""
    frame = list(encode_event(5, 6, 1, 1000))
    for position in (1, 3, 8, len(frame) - 1):
        head, tail = frame[:position], frame[position:]
        tolerated = run_decoder([*head, Gap(TIMEOUT_CYCLES - 1), *tail], max_gap=0)
        assert tolerated == model_of(frame) and tolerated[1]["frames_ok"] == 1
        truncated = run_decoder([*head, Gap(TIMEOUT_CYCLES), *tail], max_gap=0)
        assert truncated == model_of([*head, TIMEOUT, *tail]) and truncated[1]["truncated"] == 1


def test_decoder_counters_saturate():
    """D2 for counters: preset one near 2**32 - 1, then three skipped bytes leave it at the maximum."""
    dut = FrameDecoder(GEOMETRY, timeout_cycles=TIMEOUT_CYCLES)
    seen = []

    async def testbench(ctx):
        ctx.set(dut.counters.bytes_skipped, COUNTER_MAX - 1)
        for byte in (0x00, 0x01, 0x02):
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, byte)
            await ctx.tick()
            seen.append(ctx.get(dut.counters.bytes_skipped))

    simulate(dut, testbench)
    assert seen == [COUNTER_MAX] * 3


def test_decoder_checker_catches_a_wrong_bit():
    """The comparison can fail: a model fed one flipped payload bit disagrees with the hardware."""
    items = list(encode_event(5, 6, 1, 1000))
    flipped = list(items)
    flipped[4] ^= 1  # x changes; the CRC no longer matches
    assert run_decoder(items, max_gap=0) != model_of(flipped)


@pytest.mark.parametrize("kwargs, message", [
    (dict(geometry=(34, 34), timeout_cycles=10), "SensorGeometry"),
    (dict(geometry=GEOMETRY, timeout_cycles=1), "timeout_cycles"),
    (dict(geometry=GEOMETRY, timeout_cycles=10, fifo_depth=1), "fifo_depth"),
])
def test_decoder_rejects_bad_parameters(kwargs, message):
    geometry = kwargs.pop("geometry")
    with pytest.raises(ValueError, match=message):
        FrameDecoder(geometry, **kwargs)


# --- FrameEncoder --------------------------------------------------------------------------------

N_CLASSES = 3


def set_result(ctx, port, result):
    payload = port.payload
    if isinstance(result, Spike):
        ctx.set(payload.kind, ResultKind.SPIKE)
        ctx.set(payload.body.spike.layer, result.layer)
        ctx.set(payload.body.spike.neuron, result.neuron)
        ctx.set(payload.body.spike.time, result.time)
    elif isinstance(result, Scores):
        ctx.set(payload.kind, ResultKind.SCORES)
        ctx.set(payload.body.scores.argmax, result.argmax)
        for index, score in enumerate(result.scores):
            ctx.set(payload.body.scores.scores[index], score)
    else:
        ctx.set(payload.kind, ResultKind.STATUS)
        for name in COUNTER_NAMES:
            ctx.set(payload.body.status[name], result.counters[name])


def example_results(rng):
    return [
        Spike(0, 0, 0),
        Spike(255, 65535, 2**32 - 1),
        Scores((-(2**31), 2**31 - 1, -1), 1),
        Status({name: rng.randrange(2**32) for name in COUNTER_NAMES}),
        *(Spike(rng.randrange(256), rng.randrange(65536), rng.randrange(2**32)) for _ in range(4)),
        Scores(tuple(rng.randrange(-(2**31), 2**31) for _ in range(N_CLASSES)), 2),
    ]


def decoded_results(data):
    """The results of ``data``, which must parse without a counted error."""
    results, counters = decode_results(data)
    assert not any(counters.values()), counters
    return results


@pytest.mark.parametrize("ready_probability", [1.0, 0.4])
def test_encoder_frames_decode_to_the_results(ready_probability):
    rng = random.Random(int(ready_probability * 10))
    results = example_results(rng)
    dut = FrameEncoder(N_CLASSES)
    out = []

    async def testbench(ctx):
        pending = list(results)
        for _ in range(2000):
            offering = bool(pending) and rng.random() < 0.7
            ctx.set(dut.i.valid, offering)
            if offering:
                set_result(ctx, dut.i, pending[0])
            ready = rng.random() < ready_probability
            ctx.set(dut.o.ready, ready)
            if ready and ctx.get(dut.o.valid):
                out.append(ctx.get(dut.o.payload))
            if offering and ctx.get(dut.i.ready):
                pending.pop(0)
            await ctx.tick()
            if not offering:
                ctx.set(dut.i.payload.as_value(), 0)  # the encoder must hold what it took
        assert not pending

    simulate(dut, testbench)
    assert decoded_results(out) == results


def test_encoder_rejects_bad_parameters():
    with pytest.raises(ValueError, match="n_classes"):
        FrameEncoder(64)


# --- Over the serial line -------------------------------------------------------------------------

class _SerialDecoder(wiring.Component):
    """UARTTx -> line -> UARTRx -> FrameDecoder."""

    def __init__(self, clk_freq, baud):
        self.tx = UARTTx(clk_freq, baud)
        self.rx = UARTRx(clk_freq, baud)
        self.decoder = FrameDecoder(GEOMETRY, timeout_cycles=40 * self.tx.divisor)
        super().__init__({"i": wiring.In(stream.Signature(8)),
                          "o": wiring.Out(stream.Signature(command_layout(GEOMETRY)))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.tx, m.submodules.rx, m.submodules.decoder = self.tx, self.rx, self.decoder
        wiring.connect(m, wiring.flipped(self.i), self.tx.i)
        m.d.comb += self.rx.rx.eq(self.tx.tx)
        wiring.connect(m, self.rx.o, self.decoder.i)
        wiring.connect(m, self.decoder.o, wiring.flipped(self.o))
        return m


def test_serial_line_to_decoder():
    commands = [Reset(), Event(3, 4, 1, 10), Event(33, 0, 0, 11), ReadStatus(), EndOfSample()]
    data = [0x00, *b"".join(encode_command(c) for c in commands)]
    dut = _SerialDecoder(4e6, 1e6)
    received = pump(dut, data, len(data) * 40 + 100)
    assert [to_golden(payload.as_bits()) for payload in received] == commands


class _SerialEncoder(wiring.Component):
    """FrameEncoder -> UARTTx -> line -> UARTRx."""

    def __init__(self, clk_freq, baud):
        self.encoder = FrameEncoder(N_CLASSES)
        self.tx = UARTTx(clk_freq, baud)
        self.rx = UARTRx(clk_freq, baud)
        super().__init__({"i": wiring.In(stream.Signature(result_layout(N_CLASSES))),
                          "o": wiring.Out(stream.Signature(8))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.encoder, m.submodules.tx, m.submodules.rx = self.encoder, self.tx, self.rx
        wiring.connect(m, wiring.flipped(self.i), self.encoder.i)
        wiring.connect(m, self.encoder.o, self.tx.i)
        m.d.comb += self.rx.rx.eq(self.tx.tx)
        wiring.connect(m, self.rx.o, wiring.flipped(self.o))
        return m


def test_encoder_over_serial_line():
    results = [Spike(1, 300, 123456), Scores((5, -7, 9), 2)]
    dut = _SerialEncoder(4e6, 1e6)
    assert decoded_results(pump(dut, results, 40 * 40, put=set_result)) == results


# --- The generated Verilog on Icarus (cocotb) -----------------------------------------------------
# pytest builds the Verilog and starts Icarus; the cocotb tests below (named cocotb_*, so pytest
# does not collect them) run inside the simulator and import this module again.

needs_iverilog = pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) not installed")
#: Stall patterns of the Verilog runs: name -> (largest idle gap between bytes, backpressure probability).
VERILOG_STALLS = {"full_rate": (0, 0.0), "idle_backpressure": (2, 0.4)}


def verilog_decoder_items():
    items = []
    for case in bad_input_cases().values():
        items += [*case, TIMEOUT]
    return items + random_stream(7)


def result_bits(result):
    """A golden result as the flat bits of :func:`result_layout` (``N_CLASSES`` scores)."""
    if isinstance(result, Spike):
        init = {"kind": ResultKind.SPIKE, "body": {"spike": vars(result)}}
    elif isinstance(result, Scores):
        init = {"kind": ResultKind.SCORES, "body": {"scores": {"argmax": result.argmax, "scores": list(result.scores)}}}
    else:
        init = {"kind": ResultKind.STATUS, "body": {"status": result.counters}}
    return result_layout(N_CLASSES).const(init).as_bits()


@needs_iverilog
def test_generated_verilog_decoder_matches_model():
    items = verilog_decoder_items()
    config = {"items": [-1 if item is TIMEOUT else item for item in items], "stalls": VERILOG_STALLS}
    run_cocotb(FrameDecoder(GEOMETRY, timeout_cycles=TIMEOUT_CYCLES, fifo_depth=FIFO_DEPTH),
               test_module="test_link_hw", build_name="link/frame_decoder", config=config,
               test_filter="cocotb_decoder_matches_model")


@needs_iverilog
def test_generated_verilog_encoder_matches_golden_frames():
    results = example_results(random.Random(3))
    config = {
        "results": [result_bits(result) for result in results],
        "frames": b"".join(encode_result(result) for result in results).hex(),
        "stalls": VERILOG_STALLS,
    }
    run_cocotb(FrameEncoder(N_CLASSES), test_module="test_link_hw", build_name="link/frame_encoder",
               config=config, test_filter="cocotb_encoder_matches_golden_frames")


def encode_result(result):
    if isinstance(result, Spike):
        return encode_spike(result.layer, result.neuron, result.time)
    if isinstance(result, Scores):
        return encode_scores(result.scores, result.argmax)
    return encode_status(result.counters)


async def _start(dut):
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())


async def _reset(dut):
    """Reset with nothing offered on ``i`` and ``o`` not ready."""
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0


@cocotb.test()
async def cocotb_decoder_matches_model(dut):
    """Every stall pattern: reset, feed the byte schedule, compare commands and counters to the model."""
    config = load_config()
    items = [TIMEOUT if value < 0 else value for value in config["items"]]
    expected = model_of(items)
    await _start(dut)
    for name, (max_gap, backpressure) in config["stalls"].items():
        rng = random.Random(name)
        await _reset(dut)
        schedule = []
        for item in items:
            gap = TIMEOUT_CYCLES + rng.randrange(3) if item is TIMEOUT else rng.randrange(max_gap + 1)
            schedule += [None] * gap + ([] if item is TIMEOUT else [item])
        commands = []
        for byte in schedule + [None] * (FIFO_DEPTH + 4):
            dut.i__valid.value = int(byte is not None)
            dut.i__payload.value = byte or 0
            ready = rng.random() >= backpressure
            dut.o__ready.value = int(ready)
            await RisingEdge(dut.clk)
            if ready and int(dut.o__valid.value):
                commands.append(to_golden(int(dut.o__payload.value)))
        while int(dut.o__valid.value):  # drain what backpressure left in the FIFO
            dut.o__ready.value = 1
            await RisingEdge(dut.clk)
            commands.append(to_golden(int(dut.o__payload.value)))
        counters = unpack(COUNTERS_LAYOUT, int(dut.counters.value))
        assert commands == expected[0], f"{name}: commands differ from the model"
        assert counters == expected[1], f"{name}: counters {counters} != model {expected[1]}"


@cocotb.test()
async def cocotb_encoder_matches_golden_frames(dut):
    """Every stall pattern: the encoder's bytes equal the golden encoder's frames exactly."""
    config = load_config()
    expected = bytes.fromhex(config["frames"])
    await _start(dut)
    for name, (max_gap, backpressure) in config["stalls"].items():
        rng = random.Random(name)
        await _reset(dut)
        pending, out = list(config["results"]), bytearray()
        for _ in range(len(expected) * 6 + 50):
            offering = bool(pending) and rng.randrange(max_gap + 1) == 0
            dut.i__valid.value = int(offering)
            dut.i__payload.value = pending[0] if offering else 0
            ready = rng.random() >= backpressure
            dut.o__ready.value = int(ready)
            await RisingEdge(dut.clk)
            if offering and int(dut.i__ready.value):
                pending.pop(0)
            if ready and int(dut.o__valid.value):
                out.append(int(dut.o__payload.value))
        assert not pending, f"{name}: {len(pending)} results never taken"
        assert bytes(out) == expected, f"{name}: bytes {bytes(out).hex()} != golden {expected.hex()}"
