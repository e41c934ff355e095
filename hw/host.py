"""Host driver of the board's UART link: stream event files as frames, print what comes back.

Usage (see ``--help`` and ``docs/host_link.md``)::

    python -m hw.host --port /dev/ttyUSB0 --events sample.bin
    python -m hw.host --dry-run frames.bin --events sample.bin
    python -m hw.host --loopback --events sample.bin

Per event file (one sample): optionally RESET, every event as an EVENT frame, END_OF_SAMPLE,
READ_STATUS; then wait until a SCORES and a STATUS frame have arrived (SPIKE frames before them
are collected: the board sends a sample's spikes before its SCORES, and its STATUS after), and
print them: scores, spikes per layer, the STATUS counters and the spikes the board dropped during
the sample. ``--spikes`` prints every spike, ``--spikes-csv FILE`` writes them as
``file,sample,layer,neuron,time`` rows. The frame format is :mod:`golden.protocol`.

The transport is pluggable: :class:`SerialTransport` (a serial port through ``pyserial``: Linux,
macOS, Windows), :class:`FileTransport` (``--dry-run``: the byte stream goes to a file) and
:class:`LoopbackTransport` (an in-process stand-in board built on the golden decoder, for tests
and for trying the driver without hardware).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import errno
import io
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden.cli import existing_file, int_range, output_file, positive_float, positive_int, run_main
from golden.errors import SpikestreamError
from golden.files import atomic_write, check_output, write_text
from golden.protocol import (
    MAX_SCORES, PROTOCOL_VERSION, RESULT_PAYLOAD_LENGTHS, STATUS_COUNTER_NAMES, TIMESTAMP_MAX, EndOfSample, Event,
    FrameDecoderModel, FrameParser, ReadStatus, Reset, Scores, SensorGeometry, Spike, Status,
    decode_result, encode_end_of_sample, encode_event, encode_read_status, encode_reset,
    encode_scores, encode_spike, encode_status,
)

__all__ = [
    "SampleEvents", "load_events", "sample_frames", "SerialPortError", "SerialTransport", "FileTransport",
    "LoopbackTransport", "SampleResult", "run_sample", "main",
]

EVENT_SUFFIXES = (".bin", ".aedat4", ".npy", ".csv")
#: Bytes written per ``write`` call, so that results are read while a long sample streams.
WRITE_CHUNK = 4096
#: Baud rates ``--baud`` takes: what USB-serial bridges (the ULX3S's FT231X: up to 3 Mbaud) reach.
BAUD_MIN, BAUD_MAX = 300, 12_000_000


# --- Event files ---------------------------------------------------------------------------------

@dataclass
class SampleEvents:
    """Events of one sample in wire units: ``x``, ``y``, ``polarity``, ``timestamp`` (ticks)."""

    x: np.ndarray
    y: np.ndarray
    polarity: np.ndarray
    timestamp: np.ndarray
    sensor_size: tuple[int, int] | None
    path: Path

    def __len__(self) -> int:
        return len(self.x)


def load_events(path, *, tick_us: int = 1, keep_time: bool = False) -> SampleEvents:
    """Read one event file and convert its timestamps to ticks.

    Parameters
    ----------
    path : str or Path
        ``.bin`` (N-MNIST), ``.aedat4`` (iniVation DV), ``.npy`` or ``.csv`` (columns x, y, p, t
        without a header, or any order with a header naming x, y, t, p).
    tick_us : int
        Microseconds per tick: ``ticks = (t - t_first) // tick_us``.
    keep_time : bool
        Send the file's timestamps unchanged (still divided by ``tick_us``) instead of counting
        from the sample's first event.

    Raises
    ------
    SpikestreamError
        Unknown suffix, a malformed file (:class:`golden.data.events.EventDataError`), or
        timestamps that do not fit the wire's u32 ticks.
    """
    from golden.data.events import read_aedat4, read_event_table, read_nmnist

    path = Path(path)
    if not isinstance(tick_us, int) or tick_us < 1:
        raise SpikestreamError(f"tick_us must be a positive integer, got {tick_us!r}")
    if path.suffix == ".bin":
        recording = read_nmnist(path, allow_time_reversals=True)
        events, sensor_size = recording.events, recording.sensor_size
    elif path.suffix == ".aedat4":
        recording = read_aedat4(path, allow_time_reversals=True)
        events, sensor_size = recording.events, recording.sensor_size
    elif path.suffix in (".npy", ".csv"):
        events, sensor_size = read_event_table(path), None
    else:
        raise SpikestreamError(f"{path}: unknown event file type; use one of {', '.join(EVENT_SUFFIXES)}")
    t = events["t"].astype(np.int64)
    if len(t) and not keep_time:
        t = t - t[0]
    ticks = t // tick_us
    if len(ticks) and (ticks.min() < 0 or ticks.max() > TIMESTAMP_MAX):
        raise SpikestreamError(
            f"{path}: timestamps span {ticks.min()}..{ticks.max()} ticks, outside the wire's 0..{TIMESTAMP_MAX}: "
            f"{'drop --keep-time or ' if keep_time else ''}raise --tick-us")
    return SampleEvents(events["x"].astype(np.int64), events["y"].astype(np.int64),
                        events["p"].astype(np.int64), ticks, sensor_size, path)


def sample_frames(events: SampleEvents, *, reset: bool = False) -> bytes:
    """The byte stream of one sample: [RESET], EVENT frames, END_OF_SAMPLE, READ_STATUS."""
    frames = [encode_reset()] if reset else []
    frames += [encode_event(int(x), int(y), int(p), int(t))
               for x, y, p, t in zip(events.x, events.y, events.polarity, events.timestamp)]
    frames += [encode_end_of_sample(), encode_read_status()]
    return b"".join(frames)


# --- Transports ----------------------------------------------------------------------------------

class SerialPortError(SpikestreamError):
    """A serial port that cannot be opened or used; the message says why and what to try."""


def _serial_error(port: str, baud: int, error: Exception) -> SerialPortError:
    """One :class:`SerialPortError` for what ``pyserial`` raises on each platform."""
    code = getattr(error, "errno", None)
    text = str(error)
    lowered = text.lower()
    if isinstance(error, ValueError) or code == errno.EINVAL or "invalid argument" in lowered or "baud" in lowered:
        return SerialPortError(f"{port}: baud {baud} is not supported by this port or driver ({text}); "
                               "try 1000000 or 3000000 and a gateware built for it")
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "filenotfounderror" in lowered \
            or "cannot find the file" in lowered:
        return SerialPortError(f"{port}: no such serial port; is the board plugged in? ports present: {_port_list()}")
    if code in (errno.EACCES, errno.EPERM) or "permission" in lowered or "access is denied" in lowered:
        if "access is denied" in lowered:  # Windows says this for a port another program holds
            return SerialPortError(f"{port}: access denied: another program (a serial terminal, "
                                   "openFPGALoader) may hold the port; close it")
        return SerialPortError(f"{port}: permission denied: on Linux add yourself to the dialout group "
                               "(sudo usermod -aG dialout $USER, then log in again)")
    if code in (errno.EBUSY, errno.EAGAIN) or "lock" in lowered or "busy" in lowered:
        return SerialPortError(f"{port}: busy: another program (a serial terminal, openFPGALoader) holds the port; "
                               "close it")
    if code == errno.ENOTTY or "inappropriate ioctl" in lowered:
        return SerialPortError(f"{port}: not a serial port")
    return SerialPortError(f"{port}: serial port error: {text}")


def _port_list() -> str:
    from serial.tools import list_ports

    names = sorted(info.device for info in list_ports.comports())
    return ", ".join(names) if names else "none"


class SerialTransport:
    """A serial port in raw 8N1 mode, no flow control, through ``pyserial`` (Linux, macOS, Windows).

    The port is opened exclusively (another program holding it is reported as busy).

    Parameters
    ----------
    port : str
        Device, e.g. ``/dev/ttyUSB0``, ``/dev/cu.usbserial-...``, ``COM3``.
    baud : int
        Line rate; must match the gateware's.

    Raises
    ------
    SerialPortError
        For a missing port, a busy port, no permission, an unsupported baud or a device that is
        not a serial port, with what to try.
    """

    def __init__(self, port: str, baud: int):
        import serial

        self.port_name = port
        self.baud = baud
        try:
            self.serial = serial.Serial(baudrate=baud, bytesize=serial.EIGHTBITS, parity=serial.PARITY_NONE,
                                        stopbits=serial.STOPBITS_ONE, timeout=0, write_timeout=10,
                                        xonxoff=False, rtscts=False, dsrdtr=False, exclusive=True)
            self.serial.port = port
            self.serial.open()
            self.serial.reset_input_buffer()
        except (serial.SerialException, OSError, ValueError) as error:
            raise _serial_error(port, baud, error) from None

    def write(self, data: bytes):
        import serial

        try:
            self.serial.write(data)
        except (serial.SerialException, OSError) as error:
            raise SerialPortError(f"{self.port_name}: write failed (board unplugged?): {error}") from None

    def read(self, timeout: float) -> bytes:
        import serial

        try:
            self.serial.timeout = timeout
            first = self.serial.read(1)
            return first + self.serial.read(self.serial.in_waiting) if first else b""
        except (serial.SerialException, OSError) as error:
            raise SerialPortError(f"{self.port_name}: read failed (board unplugged?): {error}") from None

    def close(self, complete: bool = True):
        with contextlib.suppress(Exception):
            self.serial.close()


class FileTransport:
    """``--dry-run``: the bytes that would go to the board are written to a file; nothing comes back.

    The file is written under a temporary name and renamed by :meth:`close` (``complete=False``:
    discarded), so an interrupted run leaves no half stream.
    """

    def __init__(self, path):
        self._stack = contextlib.ExitStack()
        self.handle = self._stack.enter_context(atomic_write(path, "wb"))

    def write(self, data: bytes):
        self.handle.write(data)

    def read(self, timeout: float) -> bytes:
        return b""

    def close(self, complete: bool = True):
        if complete:
            self._stack.close()
        else:
            self._stack.__exit__(RuntimeError, RuntimeError("interrupted"), None)


class LoopbackTransport:
    """An in-process stand-in board: the golden frame decoder and a placeholder network.

    Bytes written are decoded by :class:`~golden.protocol.FrameDecoderModel` exactly as the
    gateware would; END_OF_SAMPLE is answered with SCORES and READ_STATUS with STATUS (the real
    counters). The placeholder network has no neurons: class ``c``'s score is the number of
    accepted events with ``x * n_classes // width == c``, and each event with ``x == y`` is echoed
    as a SPIKE of layer 0, neuron ``x``; this only exercises the link.
    """

    def __init__(self, geometry: SensorGeometry, n_classes: int = 10):
        self.geometry = geometry
        self.n_classes = n_classes
        self.decoder = FrameDecoderModel(geometry)
        self.outgoing = bytearray()
        self.histogram = [0] * n_classes

    def write(self, data: bytes):
        self.decoder.feed_bytes(data)
        for command in self.decoder.take():
            if isinstance(command, Event):
                self.histogram[command.x * self.n_classes // self.geometry.width] += 1
                if command.x == command.y:
                    self.outgoing += encode_spike(0, command.x, command.timestamp)
            elif isinstance(command, EndOfSample):
                argmax = max(range(self.n_classes), key=self.histogram.__getitem__)
                self.outgoing += encode_scores(self.histogram, argmax)
                self.histogram = [0] * self.n_classes
            elif isinstance(command, Reset):
                self.histogram = [0] * self.n_classes
            elif isinstance(command, ReadStatus):
                self.outgoing += encode_status(self.decoder.counters)

    def read(self, timeout: float) -> bytes:
        data, self.outgoing = bytes(self.outgoing), bytearray()
        return data

    def close(self, complete: bool = True):
        pass


# --- Session -------------------------------------------------------------------------------------

@dataclass
class SampleResult:
    """What the board sent back for one sample."""

    spikes: list = field(default_factory=list)
    scores: Scores | None = None
    status: Status | None = None
    link_errors: dict = field(default_factory=dict)  # host-side framing counters of the reply stream


def run_sample(transport, frames: bytes, *, timeout: float, expect_reply: bool = True) -> SampleResult:
    """Send one sample's frames and collect the reply until SCORES and STATUS (or ``timeout``).

    Raises
    ------
    TimeoutError
        When ``expect_reply`` and SCORES or STATUS did not arrive within ``timeout`` seconds
        after the last byte was written.
    """
    parser = FrameParser(RESULT_PAYLOAD_LENGTHS)
    result = SampleResult()

    def absorb(data: bytes):
        for byte in data:
            frame = parser.feed(byte)
            if frame is None:
                continue
            try:
                item = decode_result(*frame)
            except ValueError:
                result.link_errors["malformed"] = result.link_errors.get("malformed", 0) + 1
                continue
            if isinstance(item, Spike):
                result.spikes.append(item)
            elif isinstance(item, Scores):
                result.scores = item
            else:
                result.status = item

    for start in range(0, len(frames), WRITE_CHUNK):
        transport.write(frames[start:start + WRITE_CHUNK])
        absorb(transport.read(0.0))
    if expect_reply:
        deadline = time.monotonic() + timeout
        while result.scores is None or result.status is None:
            left = deadline - time.monotonic()
            if left <= 0:
                missing = [name for name, got in (("SCORES", result.scores), ("STATUS", result.status)) if got is None]
                raise TimeoutError(
                    f"no {' and '.join(missing)} frame within {timeout:g} s: is the bitstream loaded, "
                    f"the port right and the baud rate the one the gateware was built for?")
            absorb(transport.read(min(left, 0.1)))
    result.link_errors.update({name: value for name, value in parser.counters.items() if value})
    return result


def spikes_per_layer(spikes) -> dict[int, int]:
    """Number of :class:`~golden.protocol.Spike` per layer, in layer order."""
    counts: dict[int, int] = {}
    for spike in spikes:
        counts[spike.layer] = counts.get(spike.layer, 0) + 1
    return dict(sorted(counts.items()))


def format_result(path: Path, n_events: int, result: SampleResult, *, show_spikes: bool,
                  dropped_before: int | None = None) -> str:
    """The printed report of one sample.

    ``dropped_before``: ``spikes_dropped`` of the previous sample's STATUS (0 for the first
    sample after power-up); with it, the spikes dropped during this sample are printed too.
    """
    per_layer = spikes_per_layer(result.spikes)
    layers = f" ({', '.join(f'layer {k}: {n}' for k, n in per_layer.items())})" if per_layer else ""
    lines = [f"{path}: {n_events} events sent, {len(result.spikes)} spikes received{layers}"]
    if show_spikes:
        lines += [f"  spike layer {s.layer} neuron {s.neuron} t {s.time}" for s in result.spikes]
    if result.scores is not None:
        lines.append(f"  class {result.scores.argmax}  scores {list(result.scores.scores)}")
    if result.status is not None:
        if result.status.version != PROTOCOL_VERSION:
            lines.append(f"  warning: board speaks protocol version {result.status.version}, "
                         f"this driver {PROTOCOL_VERSION}")
        lines.append("  status " + "  ".join(f"{name}={result.status.counters[name]}" for name in STATUS_COUNTER_NAMES))
        dropped = result.status.counters["spikes_dropped"] - (dropped_before or 0)
        if dropped_before is not None and dropped:
            lines.append(f"  {dropped} spikes dropped on the board during this sample (the UART could not keep up)")
    if result.link_errors:
        lines.append(f"  reply stream errors {result.link_errors}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hw.host",
        description=(
            "Stream event files to a spikestream board over its UART link and print the spikes, class "
            "scores and status counters it sends back. Each file is one sample: [RESET], its events as "
            "EVENT frames, END_OF_SAMPLE, READ_STATUS. Frame format: docs/host_link.md."),
        epilog=(
            "examples:\n"
            "  python -m hw.host --port /dev/ttyUSB0 --events ../shared/data/events/nmnist_sample.bin\n"
            "  python -m hw.host --dry-run build/frames.bin --events sample.csv --width 34 --height 34\n"
            "  python -m hw.host --loopback --events ../shared/data/events/nmnist_sample.bin"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial device of the board, e.g. /dev/ttyUSB0 (ULX3S: the FTDI port)")
    where.add_argument("--dry-run", metavar="FILE", type=output_file,
                       help="write the byte stream to FILE instead of a board; nothing is read back")
    where.add_argument("--loopback", action="store_true",
                       help="talk to an in-process stand-in board (golden decoder, placeholder network)")
    parser.add_argument("--events", nargs="+", required=True, type=_event_file, metavar="FILE",
                        help=f"event files, one sample each ({', '.join(EVENT_SUFFIXES)}; .npy/.csv columns x, y, p, t)")
    parser.add_argument("--baud", type=int_range(BAUD_MIN, BAUD_MAX, "a baud rate"), default=1_000_000,
                        help="serial rate; must match the gateware (default 1000000; 3000000 needs a 48 or 75 MHz clock)")
    parser.add_argument("--tick-us", type=positive_int, default=1, help="microseconds per timestamp tick (default 1)")
    parser.add_argument("--keep-time", action="store_true",
                        help="send file timestamps as they are instead of counting from each sample's first event")
    parser.add_argument("--reset", action="store_true", help="send RESET before each sample")
    parser.add_argument("--timeout", type=positive_float, default=5.0,
                        help="seconds to wait for SCORES and STATUS after a sample (default 5)")
    parser.add_argument("--width", type=int_range(1, 1 << 16, "a sensor width"), help="sensor width for --loopback (default: from the file)")
    parser.add_argument("--height", type=int_range(1, 1 << 16, "a sensor height"), help="sensor height for --loopback (default: from the file)")
    parser.add_argument("--classes", type=int_range(1, MAX_SCORES, "a class count"), default=10, help="classes of the --loopback stand-in (default 10)")
    parser.add_argument("--spikes", action="store_true", help="print every received spike")
    parser.add_argument("--spikes-csv", metavar="FILE", type=output_file,
                        help="write every received spike to FILE: file,sample,layer,neuron,time "
                             "(time: the step index within the sample)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite an existing --dry-run or --spikes-csv file (never an --events file)")
    return parser


def _event_file(text: str) -> Path:
    """``--events``: an existing file with a known suffix."""
    path = existing_file(text)
    if path.suffix not in EVENT_SUFFIXES:
        raise argparse.ArgumentTypeError(f"{text}: unknown event file type; use one of {', '.join(EVENT_SUFFIXES)}")
    return path


def _check_outputs(parser: argparse.ArgumentParser, args) -> None:
    """Refuse an output that is an input, the other output, or (without --force) an existing file."""
    outputs = [(name, path) for name, path in (("--dry-run", args.dry_run), ("--spikes-csv", args.spikes_csv))
               if path is not None]
    try:
        for index, (name, path) in enumerate(outputs):
            earlier = [other for _, other in outputs[:index]]
            check_output(path, inputs=[*args.events, *earlier], force=args.force, what=name)
    except SpikestreamError as error:
        parser.error(str(error))


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_outputs(parser, args)
    try:
        samples = [load_events(path, tick_us=args.tick_us, keep_time=args.keep_time) for path in args.events]
    except (OSError, ValueError) as error:
        parser.error(str(error))
    if args.port:
        try:
            transport = SerialTransport(args.port, args.baud)
        except SerialPortError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    elif args.dry_run:
        transport = FileTransport(args.dry_run)
    else:
        size = samples[0].sensor_size or (None, None)
        width, height = args.width or size[0], args.height or size[1]
        if width is None or height is None:
            parser.error("--loopback with .npy/.csv events needs --width and --height")
        transport = LoopbackTransport(SensorGeometry(width, height), args.classes)
    total_bytes = 0
    dropped_before = None  # spikes_dropped of the previous STATUS: the board's count since power-up
    spike_rows = []
    complete = False
    try:
        for index, sample in enumerate(samples):
            frames = sample_frames(sample, reset=args.reset)
            total_bytes += len(frames)
            if args.dry_run:
                run_sample(transport, frames, timeout=0, expect_reply=False)
                print(f"{sample.path}: {len(sample)} events, {len(frames)} bytes")
                continue
            try:
                result = run_sample(transport, frames, timeout=args.timeout)
            except TimeoutError as error:
                print(f"{sample.path}: {error}", file=sys.stderr)
                return 1
            print(format_result(sample.path, len(sample), result, show_spikes=args.spikes,
                                dropped_before=dropped_before))
            dropped_before = result.status.counters["spikes_dropped"]
            spike_rows += [(str(sample.path), index, s.layer, s.neuron, s.time) for s in result.spikes]
        complete = True
    finally:
        transport.close(complete=complete)
        if args.spikes_csv and not args.dry_run:  # also after a timeout: the spikes received so far
            text = io.StringIO(newline="")
            writer = csv.writer(text)
            writer.writerow(("file", "sample", "layer", "neuron", "time"))
            writer.writerows(spike_rows)
            write_text(args.spikes_csv, text.getvalue())
    if args.dry_run:
        seconds = total_bytes * 10 / args.baud
        print(f"wrote {total_bytes} bytes to {args.dry_run} ({seconds:.3f} s on the line at {args.baud} baud)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
