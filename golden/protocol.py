"""The host link's frame format, in code: the specification the UART gateware is tested against.

Every frame, in both directions, is::

    SYNC (0xA5) | CMD (u8) | LEN (u8) | PAYLOAD (LEN bytes) | CRC (u16, big-endian)

``CRC`` is CRC-16/IBM-3740 (also called CRC-16/CCITT-FALSE: polynomial 0x1021, initial value
0xFFFF, no reflection, no output XOR) over ``CMD``, ``LEN`` and ``PAYLOAD``; the ``SYNC`` byte
is not covered. :data:`CRC` is ``amaranth.lib.crc``'s parameter object, so
``CRC.compute(...)`` here and ``CRC.create()`` in the gateware are the same algorithm. Multi-byte
fields are big-endian (network order).

Host to board (commands, :class:`Command`):

========================  =====  ===  =================================================
command                   CMD    LEN  payload
========================  =====  ===  =================================================
EVENT                     0x01   9    x u16, y u16, polarity u8, timestamp u32 (ticks)
END_OF_SAMPLE             0x02   0    (none): finish the sample, answer with SCORES
RESET                     0x03   0    (none): zero the network state
READ_STATUS               0x04   0    (none): answer with a STATUS frame
========================  =====  ===  =================================================

Board to host (results, :class:`Result`):

========================  =====  ======  ==============================================
result                    CMD    LEN     payload
========================  =====  ======  ==============================================
SPIKE                     0x81   7       layer u8, neuron u16, time u32 (step index)
SCORES                    0x82   1+4*N   argmax u8, N class scores s32
STATUS                    0x83   41      version u8 (2), the 10 counters of
                                         :data:`STATUS_COUNTER_NAMES`, each u32
========================  =====  ======  ==============================================

SPIKE: ``layer`` is the hidden layer's index in ``NetworkParams.layers`` (0 is the first
spiking layer; the readout does not spike), ``neuron`` the neuron's index in that layer, ``time``
the **step index** of the sample (0-based) in which it spiked: the step that integrated the
events with ticks ``[time * bin_ticks, (time + 1) * bin_ticks)``. A board sends the spikes of
the hidden layers chosen when it was built (none by default). Per layer, spikes come in the order
the layer emits them: step by step, and within a step in ascending neuron order with one lane
(with ``lanes > 1``, in the order the lane cores finish). Spikes of different layers interleave
in no specified order. Every SPIKE frame of a sample precedes that sample's SCORES frame, and
no SPIKE frame of the next sample precedes it. Spikes the UART cannot keep up with are dropped
on the board and counted (``spikes_dropped`` in STATUS).

STATUS versions: version 1 carried the 9 link counters of :data:`COUNTER_NAMES` (``LEN`` 37);
version 2 appends ``spikes_dropped`` (``LEN`` 41), the old fields keep their offsets.

Decoding rules (host-to-board direction; :class:`FrameDecoderModel` is their reference):

* **Hunt.** Outside a frame every byte other than ``SYNC`` is discarded and counted in
  ``bytes_skipped``.
* **Length check.** A known command whose ``LEN`` differs from its table entry, or an unknown
  command with ``LEN > MAX_UNKNOWN_PAYLOAD``, is abandoned right after the ``LEN`` byte
  (``bad_length``); hunting resumes with the next byte.
* **Checksum.** A frame whose CRC does not match is discarded (``bad_crc``); hunting resumes
  with the byte after its last CRC byte (no re-scan inside the discarded frame).
* **Unknown commands** with a correct CRC are skipped whole (``unknown_command``), so a newer
  host cannot desynchronise an older board.
* **Truncation.** If no byte arrives for ``timeout_cycles`` clock cycles while a frame is
  incomplete, the partial frame is discarded (``truncated``). The model receives this as an
  explicit :meth:`FrameDecoderModel.timeout` call.
* **Range check.** An EVENT with ``x >= width``, ``y >= height`` or ``polarity >= n_polarities``
  is dropped (``address_out_of_range``).
* **Time order.** Timestamps are unsigned 32-bit tick counts from the start of the sample; they
  never wrap. An EVENT whose timestamp is smaller than the last accepted EVENT's is dropped
  (``timestamp_backwards``); equal timestamps are accepted. END_OF_SAMPLE and RESET restart
  the order at 0. A sample longer than 2**32 - 1 ticks cannot be sent (the host driver raises).
* **Overflow.** A command that passes every check but finds the command FIFO full is dropped
  (``fifo_overflow``): the UART cannot be stalled, so the decoder never applies backpressure to
  its byte input and never loses frame alignment. The decoder's own state (the last timestamp)
  is updated even when the command is dropped.
* Every frame that starts with ``SYNC`` ends in exactly one of ``frames_ok``, ``bad_length``,
  ``bad_crc``, ``truncated``, ``unknown_command``, ``address_out_of_range``,
  ``timestamp_backwards``, ``fifo_overflow`` (or is still in progress).

Counters are unsigned 32-bit and saturate at ``2**32 - 1`` (never wrap). They are
cleared only by a hardware reset.

Host side, ``spikes_dropped`` is the only STATUS counter the decoder rules do not produce: it
counts SPIKE frames the board could not queue because its spike FIFO was full.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from amaranth.lib.crc import catalog

from .errors import SpikestreamError

__all__ = [
    "SYNC", "CRC", "PROTOCOL_VERSION", "MAX_UNKNOWN_PAYLOAD", "MAX_SCORES", "TIMESTAMP_MAX",
    "COUNTER_WIDTH", "COUNTER_MAX", "COUNTER_NAMES", "STATUS_EXTRA_COUNTERS",
    "STATUS_COUNTER_NAMES", "Command", "Result", "COMMAND_PAYLOAD_LENGTHS",
    "RESULT_PAYLOAD_LENGTHS", "SensorGeometry", "Event", "EndOfSample", "Reset", "ReadStatus",
    "Spike", "Scores", "Status", "crc16", "encode_frame", "decode_frame", "encode_event",
    "encode_end_of_sample", "encode_reset", "encode_read_status", "encode_command",
    "decode_command", "encode_spike", "encode_scores", "encode_status", "decode_result", "decode_results",
    "FrameParser", "FrameDecoderModel", "TIMEOUT", "ProtocolError", "SCORE_MIN", "SCORE_MAX", "saturate_score",
]


class ProtocolError(SpikestreamError):
    """A frame, command or value that the protocol does not carry; the message says which."""


SYNC = 0xA5
#: CRC-16/IBM-3740 over bytes; ``CRC.compute`` is the reference, ``CRC.create()`` the gateware.
CRC = catalog.CRC16_IBM_3740(data_width=8)
#: Version byte of STATUS: 2 since STATUS carries ``spikes_dropped``.
PROTOCOL_VERSION = 2
#: Longest payload an unknown host-to-board command may carry before it counts as ``bad_length``.
MAX_UNKNOWN_PAYLOAD = 32
TIMESTAMP_MAX = 2**32 - 1
#: Width of every hardware event, drop and saturation counter (they stick at ``COUNTER_MAX``), as
#: sent in STATUS; ``hw.arith.COUNTER_WIDTH`` is this one.
COUNTER_WIDTH = 32
COUNTER_MAX = 2**COUNTER_WIDTH - 1
#: The frame decoder's link counters, in STATUS order (each u32, saturating).
COUNTER_NAMES = (
    "frames_ok",
    "bytes_skipped",
    "bad_length",
    "bad_crc",
    "truncated",
    "unknown_command",
    "address_out_of_range",
    "timestamp_backwards",
    "fifo_overflow",
)
#: Counters STATUS appends after :data:`COUNTER_NAMES` (since version 2); 0 where not given.
STATUS_EXTRA_COUNTERS = ("spikes_dropped",)
#: Every counter of a STATUS frame, in wire order: the link counters, then ``spikes_dropped``
#: (SPIKE frames dropped because the board's spike FIFO was full).
STATUS_COUNTER_NAMES = COUNTER_NAMES + STATUS_EXTRA_COUNTERS


class Command(enum.IntEnum):
    """Host-to-board command codes (the ``CMD`` byte)."""

    EVENT = 0x01
    END_OF_SAMPLE = 0x02
    RESET = 0x03
    READ_STATUS = 0x04


class Result(enum.IntEnum):
    """Board-to-host result codes (the ``CMD`` byte)."""

    SPIKE = 0x81
    SCORES = 0x82
    STATUS = 0x83


EVENT_PAYLOAD = struct.Struct(">HHBI")  # x, y, polarity, timestamp
SPIKE_PAYLOAD = struct.Struct(">BHI")  # layer, neuron, time
STATUS_PAYLOAD = struct.Struct(">B" + "I" * len(STATUS_COUNTER_NAMES))  # version, counters

#: Payload length of each command; the decoder rejects any other ``LEN``.
COMMAND_PAYLOAD_LENGTHS: dict[int, int | None] = {
    Command.EVENT: EVENT_PAYLOAD.size,
    Command.END_OF_SAMPLE: 0,
    Command.RESET: 0,
    Command.READ_STATUS: 0,
}
#: Payload length of each result; ``None``: variable (SCORES, ``1 + 4 * n_classes``).
RESULT_PAYLOAD_LENGTHS: dict[int, int | None] = {
    Result.SPIKE: SPIKE_PAYLOAD.size,
    Result.SCORES: None,
    Result.STATUS: STATUS_PAYLOAD.size,
}
#: Most class scores one SCORES frame carries (``LEN = 1 + 4 * N <= 255``).
MAX_SCORES = (255 - 1) // 4


@dataclass(frozen=True)
class SensorGeometry:
    """Address range of the input events; builds both the golden decoder and the gateware.

    Parameters
    ----------
    width, height : int
        Pixel columns and rows (1..65536). A 1-D sensor (cochlea channels) uses ``height=1``.
    n_polarities : int
        Number of polarity values (1..256), 2 for ON/OFF cameras.
    """

    width: int
    height: int
    n_polarities: int = 2

    def __post_init__(self):
        for name, value, top in (("width", self.width, 1 << 16), ("height", self.height, 1 << 16),
                                 ("n_polarities", self.n_polarities, 1 << 8)):
            if not isinstance(value, int) or not 1 <= value <= top:
                raise ProtocolError(f"SensorGeometry.{name} must be an int in 1..{top}, got {value!r}")

    def contains(self, x: int, y: int, polarity: int) -> bool:
        """Whether an event address lies inside the sensor."""
        return x < self.width and y < self.height and polarity < self.n_polarities


# --- Typed commands and results ---------------------------------------------------------------

@dataclass(frozen=True)
class Event:
    """An input event: pixel ``(x, y)``, ``polarity`` and ``timestamp`` in ticks from sample start."""

    x: int
    y: int
    polarity: int
    timestamp: int


@dataclass(frozen=True)
class EndOfSample:
    """Finish the current sample: the board answers with SCORES."""


@dataclass(frozen=True)
class Reset:
    """Zero the network state."""


@dataclass(frozen=True)
class ReadStatus:
    """Ask for a STATUS frame."""


@dataclass(frozen=True)
class Spike:
    """An output spike of ``neuron`` in hidden ``layer`` at step ``time`` (0-based step index)."""

    layer: int
    neuron: int
    time: int


@dataclass(frozen=True)
class Scores:
    """Class scores (signed 32-bit, the readout's summed membrane) and their argmax."""

    scores: tuple[int, ...]
    argmax: int


@dataclass(frozen=True)
class Status:
    """The STATUS counters (:data:`STATUS_COUNTER_NAMES`) and the protocol version of the board.

    ``counters`` always holds every name of :data:`STATUS_COUNTER_NAMES`: the counters of
    :data:`STATUS_EXTRA_COUNTERS` missing from the given mapping are 0 (so the decoder's link
    counters alone make a valid STATUS).
    """

    counters: dict
    version: int = PROTOCOL_VERSION

    def __post_init__(self):
        filled = dict(self.counters)
        for name in STATUS_EXTRA_COUNTERS:
            filled.setdefault(name, 0)
        object.__setattr__(self, "counters", filled)


# --- Frames -----------------------------------------------------------------------------------

def crc16(data: bytes) -> int:
    """CRC-16/IBM-3740 of ``data`` (``CMD``, ``LEN`` and payload of a frame)."""
    return CRC.compute(data)


def encode_frame(cmd: int, payload: bytes = b"") -> bytes:
    """One frame: ``SYNC, cmd, len(payload), payload, CRC`` (CRC big-endian)."""
    if not 0 <= cmd <= 255:
        raise ProtocolError(f"frame command code must fit in a byte, got {cmd}")
    if len(payload) > 255:
        raise ProtocolError(f"frame payload is at most 255 bytes, got {len(payload)}")
    body = bytes([cmd, len(payload)]) + bytes(payload)
    return bytes([SYNC]) + body + crc16(body).to_bytes(2, "big")


def decode_frame(frame: bytes) -> tuple[int, bytes]:
    """Strictly decode one complete frame into ``(cmd, payload)``; ``ValueError`` if malformed."""
    frame = bytes(frame)
    if len(frame) < 5 or frame[0] != SYNC:
        raise ProtocolError(f"a frame starts with SYNC 0x{SYNC:02X} and has at least 5 bytes, got {frame.hex()}")
    if len(frame) != 5 + frame[2]:
        raise ProtocolError(f"frame length {len(frame)} does not match LEN {frame[2]} + 5")
    if crc16(frame[1:]) != 0:
        raise ProtocolError(f"frame CRC mismatch: {frame.hex()}")
    return frame[1], frame[3:-2]


def _check_u(name: str, value: int, bits: int) -> int:
    if not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise ProtocolError(f"{name} must be an unsigned {bits}-bit integer, got {value!r}")
    return value


def encode_event(x: int, y: int, polarity: int, timestamp: int) -> bytes:
    """EVENT frame. Fields must fit their wire widths (u16, u16, u8, u32)."""
    _check_u("event x", x, 16)
    _check_u("event y", y, 16)
    _check_u("event polarity", polarity, 8)
    _check_u("event timestamp", timestamp, 32)
    return encode_frame(Command.EVENT, EVENT_PAYLOAD.pack(x, y, polarity, timestamp))


def encode_end_of_sample() -> bytes:
    """END_OF_SAMPLE frame."""
    return encode_frame(Command.END_OF_SAMPLE)


def encode_reset() -> bytes:
    """RESET frame."""
    return encode_frame(Command.RESET)


def encode_read_status() -> bytes:
    """READ_STATUS frame."""
    return encode_frame(Command.READ_STATUS)


def encode_command(command) -> bytes:
    """Frame of a typed command (:class:`Event`, :class:`EndOfSample`, ...)."""
    if isinstance(command, Event):
        return encode_event(command.x, command.y, command.polarity, command.timestamp)
    if isinstance(command, EndOfSample):
        return encode_end_of_sample()
    if isinstance(command, Reset):
        return encode_reset()
    if isinstance(command, ReadStatus):
        return encode_read_status()
    raise ProtocolError(f"not a host-to-board command: {command!r}")


def decode_command(cmd: int, payload: bytes):
    """Typed command from a frame's ``(cmd, payload)``; ``ValueError`` for unknown or mis-sized."""
    expected = COMMAND_PAYLOAD_LENGTHS.get(cmd)
    if cmd not in COMMAND_PAYLOAD_LENGTHS:
        raise ProtocolError(f"unknown command 0x{cmd:02X}")
    if len(payload) != expected:
        raise ProtocolError(f"command 0x{cmd:02X} carries {expected} payload bytes, got {len(payload)}")
    if cmd == Command.EVENT:
        return Event(*EVENT_PAYLOAD.unpack(payload))
    return {Command.END_OF_SAMPLE: EndOfSample, Command.RESET: Reset, Command.READ_STATUS: ReadStatus}[cmd]()


def encode_spike(layer: int, neuron: int, time: int) -> bytes:
    """SPIKE frame (layer u8, neuron u16, time u32: the step index)."""
    _check_u("spike layer", layer, 8)
    _check_u("spike neuron", neuron, 16)
    _check_u("spike time", time, 32)
    return encode_frame(Result.SPIKE, SPIKE_PAYLOAD.pack(layer, neuron, time))


#: The range of a score in a SCORES frame (s32); the board saturates wider scores into it.
SCORE_MIN, SCORE_MAX = -(1 << 31), (1 << 31) - 1


def saturate_score(score: int) -> int:
    """``score`` as a SCORES frame carries it: saturated to s32."""
    return min(max(int(score), SCORE_MIN), SCORE_MAX)


def encode_scores(scores: Iterable[int], argmax: int) -> bytes:
    """SCORES frame: ``argmax`` u8 then each score as s32."""
    scores = list(scores)
    if not 1 <= len(scores) <= MAX_SCORES:
        raise ProtocolError(f"a SCORES frame carries 1..{MAX_SCORES} class scores, got {len(scores)}")
    for score in scores:
        if not SCORE_MIN <= score <= SCORE_MAX:
            raise ProtocolError(f"class scores are signed 32-bit, got {score}")
    _check_u("scores argmax", argmax, 8)
    return encode_frame(Result.SCORES, struct.pack(f">B{len(scores)}i", argmax, *scores))


def encode_status(counters: Mapping[str, int], version: int = PROTOCOL_VERSION) -> bytes:
    """STATUS frame: ``version`` then the counters of :data:`STATUS_COUNTER_NAMES` (u32 each).

    Every link counter of :data:`COUNTER_NAMES` must be given; ``spikes_dropped`` defaults to 0.
    """
    missing = set(COUNTER_NAMES) - set(counters)
    if missing:
        raise ProtocolError(f"STATUS needs every counter of COUNTER_NAMES; missing {sorted(missing)}")
    unknown = set(counters) - set(STATUS_COUNTER_NAMES)
    if unknown:
        raise ProtocolError(f"STATUS carries only STATUS_COUNTER_NAMES; unknown {sorted(unknown)}")
    counters = Status(counters).counters
    values = [_check_u(f"counter {name}", counters[name], COUNTER_WIDTH) for name in STATUS_COUNTER_NAMES]
    return encode_frame(Result.STATUS, STATUS_PAYLOAD.pack(_check_u("version", version, 8), *values))


def decode_result(cmd: int, payload: bytes):
    """Typed result (:class:`Spike`, :class:`Scores`, :class:`Status`) from ``(cmd, payload)``."""
    if cmd == Result.SPIKE and len(payload) == SPIKE_PAYLOAD.size:
        return Spike(*SPIKE_PAYLOAD.unpack(payload))
    if cmd == Result.SCORES and len(payload) >= 5 and (len(payload) - 1) % 4 == 0:
        n = (len(payload) - 1) // 4
        argmax, *scores = struct.unpack(f">B{n}i", payload)
        return Scores(tuple(scores), argmax)
    if cmd == Result.STATUS and len(payload) == STATUS_PAYLOAD.size:
        version, *values = STATUS_PAYLOAD.unpack(payload)
        return Status(dict(zip(STATUS_COUNTER_NAMES, values)), version)
    raise ProtocolError(f"not a valid result frame: cmd 0x{cmd:02X} with {len(payload)} payload bytes")


def decode_results(data: bytes) -> tuple[list, dict]:
    """The typed results of the board-to-host bytes ``data``, in order, and the parser's counters
    (all zero for a clean stream; a frame left incomplete at the end counts as ``truncated``)."""
    parser = FrameParser(RESULT_PAYLOAD_LENGTHS)
    results = []
    for byte in data:
        frame = parser.feed(byte)
        if frame is not None:
            results.append(decode_result(*frame))
    if parser.in_frame:
        parser.timeout()
    return results, parser.counters


# --- Streaming parser and the decoder reference model -----------------------------------------

class _State(enum.Enum):
    HUNT = "hunt"
    CMD = "cmd"
    LEN = "len"
    PAYLOAD = "payload"
    CRC_HI = "crc_hi"
    CRC_LO = "crc_lo"


class FrameParser:
    """Byte-at-a-time framing: SYNC hunt, length check, CRC check, timeout (module rules).

    Parameters
    ----------
    payload_lengths : mapping of int to int or None
        Known ``CMD`` codes and their payload length (``None``: any length).
    max_unknown_payload : int
        Longest payload accepted for an unknown ``CMD`` before it counts as ``bad_length``.

    :meth:`feed` returns ``None`` while a frame is incomplete or was rejected, and
    ``(cmd, payload)`` for a complete frame with a correct CRC and a known command. Rejections
    increment :attr:`counters` (``bytes_skipped``, ``bad_length``, ``bad_crc``, ``truncated``,
    ``unknown_command``), saturating at :data:`COUNTER_MAX`.
    """

    COUNTERS = ("bytes_skipped", "bad_length", "bad_crc", "truncated", "unknown_command")

    def __init__(self, payload_lengths: Mapping[int, int | None], max_unknown_payload: int = 255):
        self.payload_lengths = dict(payload_lengths)
        self.max_unknown_payload = max_unknown_payload
        self.counters = {name: 0 for name in self.COUNTERS}
        self._state = _State.HUNT
        self._cmd = 0
        self._length = 0
        self._body = bytearray()

    @property
    def in_frame(self) -> bool:
        """Whether a frame has started and is not finished yet."""
        return self._state is not _State.HUNT

    def _count(self, name: str):
        self.counters[name] = min(self.counters[name] + 1, COUNTER_MAX)

    def timeout(self) -> bool:
        """A gap of ``timeout_cycles`` without a byte: discard a partial frame. Returns whether one was."""
        if self._state is _State.HUNT:
            return False
        self._count("truncated")
        self._state = _State.HUNT
        return True

    def feed(self, byte: int) -> tuple[int, bytes] | None:
        """Consume one byte; return ``(cmd, payload)`` when it completes a good frame."""
        if not 0 <= byte <= 255:
            raise ProtocolError(f"bytes are 0..255, got {byte}")
        state = self._state
        if state is _State.HUNT:
            if byte == SYNC:
                self._body = bytearray()
                self._state = _State.CMD
            else:
                self._count("bytes_skipped")
            return None
        self._body.append(byte)
        if state is _State.CMD:
            self._cmd = byte
            self._state = _State.LEN
        elif state is _State.LEN:
            self._length = byte
            if self._cmd in self.payload_lengths:
                expected = self.payload_lengths[self._cmd]
                bad = expected is not None and byte != expected
            else:
                bad = byte > self.max_unknown_payload
            if bad:
                self._count("bad_length")
                self._state = _State.HUNT
            else:
                self._state = _State.PAYLOAD if byte else _State.CRC_HI
        elif state is _State.PAYLOAD:
            if len(self._body) == 2 + self._length:
                self._state = _State.CRC_HI
        elif state is _State.CRC_HI:
            self._state = _State.CRC_LO
        else:  # CRC_LO: the frame is complete
            self._state = _State.HUNT
            if crc16(bytes(self._body)) != 0:
                self._count("bad_crc")
            elif self._cmd not in self.payload_lengths:
                self._count("unknown_command")
            else:
                return self._cmd, bytes(self._body[2:-2])
        return None


class FrameDecoderModel:
    """Reference of the hardware ``FrameDecoder``: bytes in, typed commands and counters out.

    Parameters
    ----------
    geometry : SensorGeometry
        Event address range (``address_out_of_range`` outside it).
    fifo_depth : int or None
        Capacity of the command FIFO; commands accepted while :attr:`pending` holds this many
        are dropped and counted (``fifo_overflow``). ``None``: unbounded. A test that stalls the
        hardware's command output for the whole stream compares against a bounded model.

    Attributes
    ----------
    pending : list
        Commands delivered and not yet taken (:meth:`take`).
    counters : dict
        Every counter of :data:`COUNTER_NAMES`.
    """

    def __init__(self, geometry: SensorGeometry, fifo_depth: int | None = None):
        if not isinstance(geometry, SensorGeometry):
            raise ProtocolError(f"geometry must be a SensorGeometry, got {geometry!r}")
        if fifo_depth is not None and fifo_depth < 1:
            raise ProtocolError(f"fifo_depth must be at least 1 (or None), got {fifo_depth}")
        self.geometry = geometry
        self.fifo_depth = fifo_depth
        self.parser = FrameParser(COMMAND_PAYLOAD_LENGTHS, MAX_UNKNOWN_PAYLOAD)
        self.last_timestamp = 0
        self.pending: list = []
        self._counters = {name: 0 for name in ("frames_ok", "address_out_of_range",
                                               "timestamp_backwards", "fifo_overflow")}

    @property
    def counters(self) -> dict:
        merged = {**self.parser.counters, **self._counters}
        return {name: merged[name] for name in COUNTER_NAMES}

    def _count(self, name: str):
        self._counters[name] = min(self._counters[name] + 1, COUNTER_MAX)

    def timeout(self):
        """The line was idle for ``timeout_cycles`` (see :meth:`FrameParser.timeout`)."""
        self.parser.timeout()

    def feed(self, byte: int):
        """Consume one byte."""
        frame = self.parser.feed(byte)
        if frame is None:
            return
        command = decode_command(*frame)
        if isinstance(command, Event):
            if not self.geometry.contains(command.x, command.y, command.polarity):
                self._count("address_out_of_range")
                return
            if command.timestamp < self.last_timestamp:
                self._count("timestamp_backwards")
                return
            self.last_timestamp = command.timestamp
        elif isinstance(command, (EndOfSample, Reset)):
            self.last_timestamp = 0
        if self.fifo_depth is not None and len(self.pending) >= self.fifo_depth:
            self._count("fifo_overflow")
        else:
            self._count("frames_ok")
            self.pending.append(command)

    def feed_bytes(self, data: Iterable[int]):
        """Consume a byte string; the items :data:`TIMEOUT` stand for idle gaps."""
        for item in data:
            if item is TIMEOUT:
                self.timeout()
            else:
                self.feed(item)

    def take(self) -> list:
        """Remove and return the delivered commands."""
        taken, self.pending = self.pending, []
        return taken


class _Timeout:
    def __repr__(self):
        return "TIMEOUT"


#: Marker in a byte sequence for an idle gap of at least ``timeout_cycles`` (a truncation).
TIMEOUT = _Timeout()
