"""Host driver of the board's UART link: stream event files or audio as frames, print what comes back.

Usage (see ``--help`` and ``docs/host_link.md``)::

    python -m hw.host --port /dev/ttyUSB0 --model models/fsdd_silif.safetensors --audio digit.wav
    python -m hw.host --port /dev/ttyUSB0 --check --model models/fsdd_silif.safetensors --audio digit.wav
    python -m hw.host --golden --model models/fsdd_silif.safetensors --audio digit.wav
    python -m hw.host --port /dev/ttyUSB0 --events sample.bin
    python -m hw.host --dry-run frames.bin --events sample.bin

Per sample (an event file, or a WAV recording encoded with the model's cochlea): optionally
RESET, every event as an EVENT frame, END_OF_SAMPLE, READ_STATUS; then wait until a SCORES and a
STATUS frame have arrived (SPIKE frames before them are collected: the board sends a sample's
spikes before its SCORES, and its STATUS after), and print them: the decision and scores, spikes
per layer, the STATUS counters, the spikes the board dropped during the sample, and the times
on the host (measured), the line (estimated from the byte count and baud rate, measured with a
board) and the board (estimated by :func:`hw.board_model.estimate_cycles`). ``--spikes`` prints
every spike, ``--spikes-csv FILE`` writes them as ``file,sample,layer,neuron,time`` rows,
``--json`` prints one JSON document. With ``--model``, what the board will drop of each sample
is printed as warnings before anything is sent. The frame format is :mod:`golden.protocol`.

The transport is pluggable: :class:`SerialTransport` (a serial port through ``pyserial``: Linux,
macOS, Windows), :class:`FileTransport` (``--dry-run``: the byte stream goes to a file) and
:class:`LoopbackTransport` (``--loopback``: an in-process stand-in board,
:class:`hw.board_model.BoardModel`, the model's golden network behind the link's rules).
``--golden`` asks the same board model without the link; ``--check`` asks both a board and it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import errno
import io
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden.cli import existing_file, int_range, output_file, positive_float, positive_int, run_main
from golden.data.cochlea import CochleaParams
from golden.data.fsdd import parse_name
from golden.errors import SpikestreamError
from golden.files import atomic_write, check_output, write_text
from golden.model_file import ModelFileError, load_model
from golden.protocol import (
    PROTOCOL_VERSION, RESULT_PAYLOAD_LENGTHS, STATUS_COUNTER_NAMES, TIMESTAMP_MAX, FrameParser, Scores, Spike,
    Status, decode_result, encode_end_of_sample, encode_event, encode_read_status, encode_reset,
)
from hw.board_model import BoardModel, InputDrops, admit_events, board_scores, estimate_cycles, model_steps
from hw.boards.ulx3s_processor import link_geometry
from hw.build import DEFAULT_PROCESSOR_CLOCK_MHZ, spike_layers_arg

__all__ = [
    "SampleEvents", "load_events", "sample_frames", "cochlea_for", "read_audio", "load_audio", "fsdd_label",
    "SerialPortError", "SerialTransport", "FileTransport", "LoopbackTransport", "SampleResult", "run_sample",
    "input_warnings", "golden_result", "disagreements", "main",
]

EVENT_SUFFIXES = (".bin", ".aedat4", ".npy", ".csv")
#: Bytes written per ``write`` call, so that results are read while a long sample streams.
WRITE_CHUNK = 4096
#: Baud rates ``--baud`` takes: what USB-serial bridges (the ULX3S's FT231X: up to 3 Mbaud) reach.
BAUD_MIN, BAUD_MAX = 300, 12_000_000


# --- Event files ---------------------------------------------------------------------------------

@dataclass
class SampleEvents:
    """Events of one sample in wire units: ``x``, ``y``, ``polarity``, ``timestamp`` (ticks).

    ``sensor_size`` is the recording's ``(width, height)`` where the file says (event cameras,
    the cochlea's ``(n_channels, 1)``).
    """

    x: np.ndarray
    y: np.ndarray
    polarity: np.ndarray
    timestamp: np.ndarray
    sensor_size: tuple[int, int] | None
    path: Path
    note: str = ""  # what the host changed (audio: resampled, channels averaged)

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


# --- Audio ---------------------------------------------------------------------------------------

def cochlea_for(params) -> CochleaParams:
    """The cochlea a model was trained on: its provenance ``cochlea`` fields, else the default front end.

    Raises
    ------
    SpikestreamError
        For a model that takes camera events (it has an input map), or provenance fields that
        are not :class:`~golden.data.cochlea.CochleaParams`.
    """
    if params.input_map is not None:
        width, height = params.input_map.sensor_size
        raise SpikestreamError(f"this model takes camera events ({width} x {height} sensor), not audio; use --events")
    fields = (params.provenance or {}).get("cochlea") or {}
    try:
        return CochleaParams(**fields)
    except (TypeError, ValueError) as error:
        raise SpikestreamError(f"the model's provenance 'cochlea' is not a cochlea setting: {error}") from None


def read_audio(path, sample_rate: int) -> tuple[np.ndarray, str]:
    """The samples of a WAV file at ``sample_rate`` (float64, one channel) and a note of what was converted.

    Any PCM or float WAV is taken: several channels are averaged, another rate is resampled
    (``scipy.signal.resample_poly``). Raises :class:`SpikestreamError` for a file that is not a
    readable WAV or holds no samples.
    """
    from scipy.io import wavfile
    from scipy.signal import resample_poly

    path = Path(path)
    try:
        rate, samples = wavfile.read(path)
    except (ValueError, EOFError) as error:
        raise SpikestreamError(f"{path}: not a readable WAV file ({error})") from None
    samples = np.asarray(samples, dtype=np.float64)
    notes = []
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
        notes.append("channels averaged")
    if samples.size == 0:
        raise SpikestreamError(f"{path}: the WAV file holds no samples")
    if rate != sample_rate:
        common = math.gcd(int(rate), int(sample_rate))
        samples = resample_poly(samples, sample_rate // common, rate // common)
        notes.append(f"resampled from {rate} Hz to {sample_rate} Hz")
    return samples, ", ".join(notes)


def load_audio(path, cochlea: CochleaParams) -> SampleEvents:
    """Encode one recording with the cochlea: channel events as ``x`` (``y``, ``polarity`` 0), ticks of 1 us."""
    samples, note = read_audio(path, cochlea.sample_rate)
    events = cochlea.encode(samples)
    zeros = np.zeros(len(events), dtype=np.int64)
    sample = SampleEvents(events["channel"].astype(np.int64), zeros, zeros.copy(), events["t"].astype(np.int64),
                          (cochlea.n_channels, 1), Path(path))
    sample.note = note
    return sample


def fsdd_label(path: Path) -> int | None:
    """The digit an FSDD-style name (``{digit}_{speaker}_{index}.wav``) says, else ``None``."""
    try:
        return parse_name(path).digit
    except ValueError:
        return None


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
    """An in-process stand-in board: a :class:`~hw.board_model.BoardModel` of the model file.

    Bytes written are taken as a processor board takes them (the golden frame decoder, the
    time-bin rules, the golden integer network); what it answers is read back as frames, so the
    driver's whole link path (framing, chunked writes, reply parsing) runs.
    """

    def __init__(self, board: BoardModel):
        self.board = board
        self.outgoing = bytearray()

    def write(self, data: bytes):
        self.outgoing += self.board.feed(data)

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
                  dropped_before: int | None = None, label: int | None = None) -> str:
    """The printed report of one sample.

    ``dropped_before``: ``spikes_dropped`` of the previous sample's STATUS (0 for the first
    sample after power-up); with it, the spikes dropped during this sample are printed too.
    ``label``: the class the file name says (printed beside the decision).
    """
    per_layer = spikes_per_layer(result.spikes)
    layers = f" ({', '.join(f'layer {k}: {n}' for k, n in per_layer.items())})" if per_layer else ""
    lines = [f"{path}: {n_events} events sent, {len(result.spikes)} spikes received{layers}"]
    if show_spikes:
        lines += [f"  spike layer {s.layer} neuron {s.neuron} t {s.time}" for s in result.spikes]
    if result.scores is not None:
        said = "" if label is None else f" (file name: {label}{'' if label == result.scores.argmax else ', WRONG'})"
        lines.append(f"  class {result.scores.argmax}{said}  scores {list(result.scores.scores)}")
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


# --- The model's side: warnings, the golden answer, times ------------------------------------

def input_warnings(params, n_steps: int, sample: SampleEvents, *, tick_us: int = 1) -> tuple[list[str], InputDrops]:
    """What the board will drop of one sample for this model, as warning lines, and the counts.

    Checks the recording's sensor size (or cochlea channels) against the model's input, and the
    events against the link's and the time bins' rules (:func:`hw.board_model.admit_events`):
    outside the input, back in time, after the model's window, beyond ``max_events_per_step``.
    """
    geometry = link_geometry(params)
    _, drops = admit_events(params, n_steps, sample.x, sample.y, sample.polarity, sample.timestamp)
    name, lines = sample.path, []
    size = tuple(sample.sensor_size) if sample.sensor_size is not None else None
    if size is not None and size != (geometry.width, geometry.height):
        if params.input_map is None and size[1] == 1:
            what = f"the input has {size[0]} channels, the model takes {geometry.width}"
        else:
            what = f"recorded on a {size[0]} x {size[1]} sensor, the model takes {geometry.width} x {geometry.height}"
        if drops.out_of_range:
            lines.append(f"{name}: {what}: {drops.out_of_range} of {len(sample)} events lie outside it and will be "
                         "dropped (address_out_of_range)")
        else:
            lines.append(f"{name}: {what}: no event lies outside it, but the model's inputs do not match the recording's")
    elif drops.out_of_range:
        lines.append(f"{name}: {drops.out_of_range} of {len(sample)} events lie outside the model's input "
                     f"({geometry.width} x {geometry.height} x {geometry.n_polarities}) and will be dropped "
                     "(address_out_of_range)")
    if drops.backwards:
        lines.append(f"{name}: {drops.backwards} events are earlier than the event before them and will be dropped "
                     "(timestamp_backwards)")
    if drops.late:
        window = n_steps * params.bin_ticks
        lines.append(f"{name}: {drops.late} of {len(sample)} events lie after the model's window ({n_steps} steps of "
                     f"{params.bin_ticks} ticks = {window * tick_us / 1000:g} ms) and will be dropped")
    if drops.over_bound:
        lines.append(f"{name}: {drops.over_bound} events exceed the model's {params.max_events_per_step} events per "
                     "step and will be dropped")
    return lines, drops


def golden_result(board: BoardModel, frames: bytes) -> SampleResult:
    """Feed one sample's frames to a :class:`~hw.board_model.BoardModel` and read its answer from the model itself."""
    board.feed(frames)
    trace = board.last_trace
    spikes = [Spike(index, int(neuron), int(step)) for index in board.spike_layers
              for step, neuron in zip(*np.nonzero(trace.layers[index].spikes.numpy()))]
    scores, argmax = board_scores(trace)
    return SampleResult(spikes=spikes, scores=Scores(tuple(scores), argmax), status=Status(board.decoder.counters))


def disagreements(board: SampleResult, golden: SampleResult, spikes_dropped: int) -> list[str]:
    """Where a board's answer differs from the golden model's (decision, scores, the layers whose spikes it sent).

    ``spikes_dropped``: spikes the board dropped during the sample; with none, each layer it
    sent spikes of must match exactly, otherwise be a subset of the golden spikes.
    """
    problems = []
    if board.scores is None:
        return ["no SCORES from the board"]
    if board.scores.argmax != golden.scores.argmax:
        problems.append(f"decision: board {board.scores.argmax}, golden {golden.scores.argmax}")
    if board.scores.scores != golden.scores.scores:
        differ = [i for i, (a, b) in enumerate(zip(board.scores.scores, golden.scores.scores)) if a != b]
        problems.append(f"scores differ in class(es) {differ or 'count'}: board {list(board.scores.scores)}, "
                        f"golden {list(golden.scores.scores)}")
    for layer in sorted({s.layer for s in board.spikes}):
        mine = sorted((s.time, s.neuron) for s in board.spikes if s.layer == layer)
        want = sorted((s.time, s.neuron) for s in golden.spikes if s.layer == layer)
        if mine != want and (spikes_dropped == 0 or not set(mine) <= set(want)):
            extra = sorted(set(mine) - set(want))[:3]
            problems.append(f"layer {layer} spikes: board {len(mine)}, golden {len(want)}"
                            + (f", e.g. (step, neuron) {extra} not in the golden model" if extra else ""))
    return problems


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def format_times(times: dict) -> str:
    """The time line of one sample (see :func:`main`'s ``times``)."""
    parts = [f"host {_ms(times['host_s'])} ({times['host_what']})"]
    if times.get("golden_s") is not None:
        parts.append(f"golden network on this host {_ms(times['golden_s'])}")
    if times["line_how"] == "measured":
        parts.append(f"line and board {_ms(times['line_s'])} (measured, first byte sent to STATUS received)")
    else:
        parts.append(f"line {_ms(times['line_s'])} (estimated: {times['line_bytes']} bytes at {times['baud']} baud)")
    if times.get("board_s") is not None:
        parts.append(f"board {_ms(times['board_s'])} (estimated: cycle model, {times['board_cycles']:,} cycles, "
                     f"{times['lanes']} lane{'s' if times['lanes'] > 1 else ''} at {times['clock_mhz']:g} MHz)")
    return "  time: " + ", ".join(parts)


# --- Command line ------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hw.host",
        description=(
            "Stream event files or audio recordings to a spikestream board over its UART link and print the "
            "decision, class scores, spikes and status counters it sends back; or run the model file's golden "
            "integer network instead of a board (--golden, --loopback), or both (--check). Each file is one "
            "sample: [RESET], its events as EVENT frames, END_OF_SAMPLE, READ_STATUS. Frame format: "
            "docs/host_link.md."),
        epilog=(
            "examples:\n"
            "  python -m hw.host --port /dev/ttyUSB0 --model models/fsdd_silif.safetensors --audio my_digit.wav\n"
            "  python -m hw.host --port /dev/ttyUSB0 --check --model models/fsdd_silif.safetensors --audio a.wav\n"
            "  python -m hw.host --golden --model models/fsdd_silif.safetensors "
            "--audio ../shared/data/fsdd/recordings/3_theo_0.wav\n"
            "  python -m hw.host --port /dev/ttyUSB0 --events ../shared/data/events/nmnist_sample.bin\n"
            "  python -m hw.host --dry-run build/frames.bin --events sample.csv"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial device of the board, e.g. /dev/ttyUSB0 (ULX3S: the FTDI port)")
    where.add_argument("--dry-run", metavar="FILE", type=output_file,
                       help="write the byte stream to FILE instead of a board; nothing is read back")
    where.add_argument("--loopback", action="store_true",
                       help="talk over the link code to an in-process stand-in board running --model's golden network")
    where.add_argument("--golden", action="store_true",
                       help="no board: run --model's golden integer network on this host, same output")
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--events", nargs="+", type=_event_file, metavar="FILE",
                        help=f"event files, one sample each ({', '.join(EVENT_SUFFIXES)}; .npy/.csv columns x, y, p, t)")
    inputs.add_argument("--audio", nargs="+", type=existing_file, metavar="FILE.wav",
                        help="WAV recordings, one sample each, encoded with the model's cochlea (needs --model)")
    parser.add_argument("--model", type=existing_file, metavar="MODEL",
                        help="the model file the board runs: checks the input against it (warnings), gives the "
                             "cochlea for --audio, the golden network for --golden/--loopback/--check and the "
                             "board time estimate")
    parser.add_argument("--check", action="store_true",
                        help="with --port and --model: also run the golden network and report any disagreement "
                             "(exit 1)")
    parser.add_argument("--steps", type=int_range(1, 65535, "a step count"),
                        help="steps per sample the board was built with (default: the model file's n_steps)")
    parser.add_argument("--spike-layers", type=spike_layers_arg, metavar="all|K[,K...]",
                        help="--golden/--loopback: hidden layers whose spikes the stand-in board sends, as "
                             "hw.build --spike-layers (default none)")
    parser.add_argument("--lanes", type=int_range(1, 256, "a lane count"), default=1,
                        help="processor lanes of the board, for the board time estimate (default 1)")
    parser.add_argument("--cores", type=int_range(1, 256, "a core count"),
                        help="neuron cores per hidden layer, for the board time estimate (default: --lanes)")
    parser.add_argument("--clock-mhz", type=positive_float, default=DEFAULT_PROCESSOR_CLOCK_MHZ,
                        help=f"processor clock, for the board time estimate (default {DEFAULT_PROCESSOR_CLOCK_MHZ:g})")
    parser.add_argument("--baud", type=int_range(BAUD_MIN, BAUD_MAX, "a baud rate"), default=1_000_000,
                        help="serial rate; must match the gateware (default 1000000; 3000000 needs a clock near a multiple of 3 MHz: 48, 75, the default 90)")
    parser.add_argument("--tick-us", type=positive_int, default=1,
                        help="microseconds per timestamp tick of --events (default 1)")
    parser.add_argument("--keep-time", action="store_true",
                        help="send --events timestamps as they are instead of counting from each sample's first event")
    parser.add_argument("--reset", action="store_true", help="send RESET before each sample")
    parser.add_argument("--timeout", type=positive_float, default=5.0,
                        help="seconds to wait for SCORES and STATUS after a sample (default 5)")
    parser.add_argument("--spikes", action="store_true", help="print every received spike")
    parser.add_argument("--spikes-csv", metavar="FILE", type=output_file,
                        help="write every received spike to FILE: file,sample,layer,neuron,time "
                             "(time: the step index within the sample)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the text report")
    parser.add_argument("--force", action="store_true",
                        help="overwrite an existing --dry-run or --spikes-csv file (never an input file)")
    return parser


def _event_file(text: str) -> Path:
    """``--events``: an existing file with a known suffix."""
    path = existing_file(text)
    if path.suffix not in EVENT_SUFFIXES:
        raise argparse.ArgumentTypeError(f"{text}: unknown event file type; use one of {', '.join(EVENT_SUFFIXES)}")
    return path


def _check_arguments(parser: argparse.ArgumentParser, args) -> None:
    """Refuse combinations that cannot run, and outputs that are inputs or (without --force) exist."""
    needs_model = [flag for flag, on in (("--audio", args.audio), ("--golden", args.golden),
                                         ("--loopback", args.loopback), ("--check", args.check)) if on]
    if needs_model and args.model is None:
        parser.error(f"{needs_model[0]} needs --model (the model file the board runs)")
    if args.spike_layers is not None and not (args.golden or args.loopback):
        parser.error("--spike-layers chooses what the stand-in board sends: it needs --golden or --loopback")
    if args.check and not args.port:
        parser.error("--check compares a board with the golden model: it needs --port")
    if args.cores is not None and args.lanes % args.cores:
        parser.error(f"--cores {args.cores} must divide --lanes {args.lanes}")
    outputs = [(name, path) for name, path in (("--dry-run", args.dry_run), ("--spikes-csv", args.spikes_csv))
               if path is not None]
    sources = [*(args.events or args.audio), *([args.model] if args.model else [])]
    try:
        for index, (name, path) in enumerate(outputs):
            earlier = [other for _, other in outputs[:index]]
            check_output(path, inputs=[*sources, *earlier], force=args.force, what=name)
    except SpikestreamError as error:
        parser.error(str(error))


def _load_samples(parser, args, params) -> list[SampleEvents]:
    """Every sample, read (and encoded) before anything is sent; ``host_s`` measured per sample."""
    samples = []
    try:
        cochlea = cochlea_for(params) if args.audio else None
        for path in args.events or args.audio:
            start = time.perf_counter()
            if cochlea is not None:
                sample = load_audio(path, cochlea)
            else:
                sample = load_events(path, tick_us=args.tick_us, keep_time=args.keep_time)
            sample.host_s = time.perf_counter() - start
            samples.append(sample)
    except (OSError, ValueError, SpikestreamError) as error:
        parser.error(str(error))
    return samples


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_arguments(parser, args)
    params = None
    if args.model is not None:
        try:
            params = load_model(args.model)
        except ModelFileError as error:
            parser.error(str(error))
    samples = _load_samples(parser, args, params)
    n_steps = args.steps or (model_steps(params) if params is not None else None)
    tick_us = 1 if args.audio else args.tick_us
    warnings = []
    if params is not None:
        for sample in samples:
            warnings += input_warnings(params, n_steps, sample, tick_us=tick_us)[0]
    for line in warnings:  # before anything is sent
        print(f"warning: {line}", file=sys.stderr)

    try:
        golden_board = None if params is None else BoardModel(params, n_steps, "all" if args.check else args.spike_layers)
    except ValueError as error:
        parser.error(f"argument --spike-layers: {error}")
    if args.port:
        try:
            transport = SerialTransport(args.port, args.baud)
        except SerialPortError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    elif args.dry_run:
        transport = FileTransport(args.dry_run)
    elif args.loopback:
        transport = LoopbackTransport(BoardModel(params, n_steps, args.spike_layers))
    else:
        transport = None  # --golden
    total_bytes = 0
    dropped_before = None  # spikes_dropped of the previous STATUS: the board's count since power-up
    spike_rows, records = [], []
    complete, status = False, 0
    try:
        for index, sample in enumerate(samples):
            start = time.perf_counter()
            frames = sample_frames(sample, reset=args.reset)
            host_s = sample.host_s + time.perf_counter() - start
            total_bytes += len(frames)
            if args.dry_run:
                run_sample(transport, frames, timeout=0, expect_reply=False)
                if not args.json:
                    print(f"{sample.path}: {len(sample)} events, {len(frames)} bytes")
                records.append({"file": str(sample.path), "events": len(sample), "bytes": len(frames)})
                continue
            golden, golden_s = None, None
            if golden_board is not None and not args.loopback:
                start = time.perf_counter()
                golden = golden_result(golden_board, frames)
                golden_s = time.perf_counter() - start
            if transport is None:
                result, line_s = golden, None
            else:
                start = time.perf_counter()
                try:
                    result = run_sample(transport, frames, timeout=args.timeout)
                except TimeoutError as error:
                    print(f"{sample.path}: {error}", file=sys.stderr)
                    return 1
                line_s = time.perf_counter() - start if args.port else None
                if args.loopback:
                    golden = result
            times = {"host_s": host_s, "host_what": "cochlea encoding and framing" if args.audio
                     else "reading and framing", "baud": args.baud,
                     "golden_s": golden_s if args.golden or args.check else None}
            reply_bytes = (len(result.spikes) * 12 + 5 + 1 + 4 * len(result.scores.scores) + 46
                           if result.scores is not None else 0)
            if line_s is None:
                times.update(line_how="estimated", line_bytes=len(frames) + reply_bytes,
                             line_s=(len(frames) + reply_bytes) * 10 / args.baud)
            else:
                times.update(line_how="measured", line_s=line_s)
            trace = golden_board.last_trace if golden_board is not None and not args.loopback else None
            if args.loopback:
                trace = transport.board.last_trace
            if trace is not None:
                cycles = estimate_cycles(params, trace, lanes=args.lanes, cores=args.cores)
                times.update(board_cycles=cycles, board_s=cycles / (args.clock_mhz * 1e6), lanes=args.lanes,
                             clock_mhz=args.clock_mhz)
            spikes_dropped = (result.status.counters["spikes_dropped"] - (dropped_before or 0)
                              if result.status is not None else 0)
            problems = disagreements(result, golden, spikes_dropped) if args.check else None
            if problems:
                status = 1
            label = fsdd_label(sample.path) if args.audio else None
            if not args.json:
                print(format_result(sample.path, len(sample), result, show_spikes=args.spikes,
                                    dropped_before=dropped_before, label=label))
                if sample.note:
                    print(f"  audio {sample.note}")
                print(format_times(times))
                if problems is not None:
                    print("  check: " + ("; ".join(problems) if problems else "the board equals the golden model "
                                         "(decision, scores" + (", spikes)" if result.spikes else ")")))
            records.append(_record(sample, frames, result, label, times, problems))
            dropped_before = result.status.counters["spikes_dropped"] if result.status is not None else None
            spike_rows += [(str(sample.path), index, s.layer, s.neuron, s.time) for s in result.spikes]
        complete = True
    finally:
        if transport is not None:
            transport.close(complete=complete)
        if args.spikes_csv and not args.dry_run:  # also after a timeout: the spikes received so far
            text = io.StringIO(newline="")
            writer = csv.writer(text)
            writer.writerow(("file", "sample", "layer", "neuron", "time"))
            writer.writerows(spike_rows)
            write_text(args.spikes_csv, text.getvalue())
    labelled = [r for r in records if r.get("label") is not None and r.get("decision") is not None]
    if args.json:
        print(json.dumps({"samples": records, "warnings": warnings,
                          "correct": sum(r["label"] == r["decision"] for r in labelled) if labelled else None,
                          "labelled": len(labelled)}, indent=1))
    elif args.dry_run:
        seconds = total_bytes * 10 / args.baud
        print(f"wrote {total_bytes} bytes to {args.dry_run} ({seconds:.3f} s on the line at {args.baud} baud)")
    elif len(labelled) > 1:
        correct = sum(r["label"] == r["decision"] for r in labelled)
        print(f"{correct} of {len(labelled)} decisions equal the digit in the file name")
    if args.check and status and not args.json:
        print("the board disagrees with the golden model (see check: lines)", file=sys.stderr)
    return status


def _record(sample: SampleEvents, frames: bytes, result: SampleResult, label, times: dict, problems) -> dict:
    """One sample of the ``--json`` document."""
    return {
        "file": str(sample.path), "events": len(sample), "bytes": len(frames), "audio": sample.note or None,
        "label": label, "decision": result.scores.argmax if result.scores is not None else None,
        "scores": list(result.scores.scores) if result.scores is not None else None,
        "spikes_per_layer": {str(k): v for k, v in spikes_per_layer(result.spikes).items()},
        "status": dict(result.status.counters) if result.status is not None else None,
        "link_errors": result.link_errors or None, "times": times,
        "check": None if problems is None else {"agree": not problems, "problems": problems},
    }


if __name__ == "__main__":
    sys.exit(run_main(main))
