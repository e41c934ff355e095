"""The project's one event representation, the event-camera readers, pooling and time binning.

Two forms, both numpy structured arrays in time order:

* **Camera events** (:data:`CAMERA_EVENT_DTYPE`): ``x``, ``y`` (``uint16`` pixel column and
  row, ``0 <= x < width``, ``0 <= y < height``), ``t`` (``int64`` timestamp in microsecond
  ticks, as the sensor wrote it: N-MNIST starts near 0, AEDAT4 counts from the Unix epoch) and
  ``p`` (``int8`` polarity, 1 = ON / brighter, 0 = OFF).
* **Channel events** (:data:`CHANNEL_EVENT_DTYPE`): ``channel`` (``uint32`` input-channel
  index) and ``t`` (``int64`` microsecond ticks). This is what the event processor consumes:
  camera events become channel events through an :class:`InputMap` (with optional spatial
  pooling); the audio front end (:mod:`golden.data.cochlea`) emits them directly.

Time binning (:func:`bin_events`) turns channel events into a dense ``(T, C)`` array of
non-negative integer counts: bin ``k`` holds the events with
``t_start + k * bin_ticks <= t < t_start + (k + 1) * bin_ticks`` and several events of one
channel in one bin add up (the reference pipeline's ``ToFrame`` semantics, ``np.add.at``).

Readers validate what they read and raise :class:`EventDataError` (a
:class:`~golden.errors.SpikestreamError`, so a ``ValueError``) with one line naming the file
and, where there is one, the byte offset, line or event: a truncated file names the offset of
the incomplete record; coordinates outside the sensor raise; timestamps that go backwards raise
unless ``allow_time_reversals=True``, in which case their number is reported in
:attr:`CameraRecording.n_time_reversals`. Tables (:func:`read_event_table`, ``.npy`` and
``.csv``) must hold integers: floats, NaN, complex values, missing fields and wrong column
counts are refused, not converted. Sizes are bounded (:data:`MAX_EVENT_FILE_BYTES`,
:data:`MAX_EVENTS`) and checked before a file is read. An AEDAT4 file whose compressed packets
the ``aedat`` decoder cannot decode (it raises or panics) is refused, and so is a header whose
info node is not UTF-8 XML (on which the decoder aborts the process); AEDAT4 carries no
checksum over its packets, so a bit flip inside one can still decode to different events.
N-MNIST is decoded by tonic (``tonic.io.read_mnist_file``); camera events in tonic's dtypes are
accepted wherever camera events are (:func:`as_camera_events`).
"""

from __future__ import annotations

import csv
import io
import struct
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import aedat
import numpy as np

from ..errors import SpikestreamError

__all__ = [
    "CAMERA_EVENT_DTYPE",
    "CHANNEL_EVENT_DTYPE",
    "NMNIST_SENSOR_SIZE",
    "MAX_EVENTS",
    "MAX_EVENT_FILE_BYTES",
    "CameraRecording",
    "EventDataError",
    "InputMap",
    "ChannelPool",
    "bin_events",
    "as_camera_events",
    "digitize_bin_ticks",
    "digitize_counts",
    "camera_events",
    "channel_events",
    "check_camera_events",
    "read_aedat4",
    "read_nmnist",
    "read_event_table",
]

CAMERA_EVENT_DTYPE = np.dtype([("x", np.uint16), ("y", np.uint16), ("t", np.int64), ("p", np.int8)])
CHANNEL_EVENT_DTYPE = np.dtype([("channel", np.uint32), ("t", np.int64)])
_TABLE_FIELDS = ("x", "y", "t", "p")

#: N-MNIST (ATIS sensor crop), ``(width, height)``.
NMNIST_SENSOR_SIZE = (34, 34)
#: Bytes per N-MNIST event: x (8 bits), y (8 bits), polarity (1 bit), timestamp (23 bits), big-endian.
NMNIST_EVENT_BYTES = 5
#: An N-MNIST record with this ``y`` is a timestamp-overflow marker, not an event (reference reader).
NMNIST_OVERFLOW_Y = 240
#: Microseconds added to every later timestamp per overflow marker (reference reader).
NMNIST_OVERFLOW_TICKS = 2**13
#: Most overflow markers read (tonic applies each to every later event: cost markers x events).
NMNIST_MAX_OVERFLOW_MARKERS = 64

#: Largest event file read (bytes) and most events in one file: checked before reading.
MAX_EVENT_FILE_BYTES = 1 << 30
MAX_EVENTS = 50_000_000

AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"
_LZ4_FRAME_MAGIC = 0x184D2204


class EventDataError(SpikestreamError):
    """Events that cannot be read or used: the message names the file (or array) and the problem."""


def _checked_size(path: Path) -> int:
    """The file's size, refused above :data:`MAX_EVENT_FILE_BYTES` or when it is not a file."""
    if not path.is_file():
        raise EventDataError(f"{path}: no such event file")
    size = path.stat().st_size
    if size > MAX_EVENT_FILE_BYTES:
        raise EventDataError(f"{path}: {size} bytes, more than the {MAX_EVENT_FILE_BYTES} an event file may have; "
                             "split the recording")
    return size


@dataclass(frozen=True)
class CameraRecording:
    """Camera events read from one file, with the facts the reader checked.

    Attributes
    ----------
    events : np.ndarray of CAMERA_EVENT_DTYPE
        The events in file order.
    sensor_size : tuple of int
        ``(width, height)`` in pixels; every event lies inside.
    path : Path
        The file read.
    n_time_reversals : int
        How many events carry an earlier timestamp than the event before them (0 for a
        well-formed recording; non-zero only when the reader was told to allow it).
    """

    events: np.ndarray
    sensor_size: tuple[int, int]
    path: Path
    n_time_reversals: int

    def __len__(self) -> int:
        return len(self.events)

    @property
    def duration_ticks(self) -> int:
        """Last minus first timestamp, in microsecond ticks (0 for fewer than two events)."""
        if len(self.events) < 2:
            return 0
        return int(self.events["t"][-1] - self.events["t"][0])


def camera_events(x, y, t, p) -> np.ndarray:
    """Pack four equally long arrays into a :data:`CAMERA_EVENT_DTYPE` array.

    Raises
    ------
    ValueError
        If lengths differ, a coordinate is negative or above 65535, or a polarity is not 0 / 1.
    """
    arrays = [np.asarray(a).reshape(-1) for a in (x, y, t, p)]
    if len({len(a) for a in arrays}) != 1:
        raise EventDataError(f"x, y, t, p need equal lengths; got {[len(a) for a in arrays]}")
    x, y, t, p = arrays
    for name, values in (("x", x), ("y", y), ("t", t), ("p", p)):
        if values.dtype.kind not in "iub":
            raise EventDataError(f"{name} must be integers, not {values.dtype} values")
    if t.size and t.dtype.kind == "u" and t.max() > np.iinfo(np.int64).max:
        raise EventDataError(f"timestamp {t.max()} does not fit int64 microseconds")
    for name, coord in (("x", x), ("y", y)):
        if coord.size and (coord.min() < 0 or coord.max() > np.iinfo(np.uint16).max):
            raise EventDataError(f"{name} coordinates must lie in 0..65535; got {coord.min()}..{coord.max()}")
    if p.size and not np.isin(p, (0, 1)).all():
        raise EventDataError(f"polarity must be 0 (OFF) or 1 (ON); got values {np.unique(p)[:8]}")
    events = np.empty(len(x), dtype=CAMERA_EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    return events


def as_camera_events(events, source: str = "events") -> np.ndarray:
    """Camera events in :data:`CAMERA_EVENT_DTYPE` from any structured array with integer or
    boolean fields (or field titles) ``x``, ``y``, ``t``, ``p``: tonic's ``tonic.io.events_struct``
    (``int16`` coordinates, ``bool`` polarity), a tonic dataset's ``int`` fields, tonic's AEDAT4
    events (``uint64`` ``t``, polarity ``on`` titled ``p``), or the project's own dtype, returned
    as it is. Other fields are ignored; values are checked as by
    :func:`camera_events`.

    Raises
    ------
    ValueError
        If ``events`` is not such an array, or a value does not fit (naming ``source``).
    """
    fields = getattr(getattr(events, "dtype", None), "fields", None)  # names and titles
    if fields is not None and events.dtype == CAMERA_EVENT_DTYPE:
        return events
    if fields is None or not set(_TABLE_FIELDS) <= set(fields):
        raise EventDataError(f"{source}: camera events need a structured array with fields x, y, t, p; "
                             f"got {getattr(events, 'dtype', type(events).__name__)}")
    try:
        return camera_events(events["x"], events["y"], events["t"], events["p"])
    except EventDataError as exc:
        raise EventDataError(f"{source}: {exc}") from None


def channel_events(channel, t) -> np.ndarray:
    """Pack channel indices and timestamps into a :data:`CHANNEL_EVENT_DTYPE` array.

    Raises
    ------
    ValueError
        If lengths differ or a channel index is negative or does not fit 32 bits.
    """
    channel = np.asarray(channel).reshape(-1)
    t = np.asarray(t).reshape(-1)
    if len(channel) != len(t):
        raise EventDataError(f"channel and t need equal lengths; got {len(channel)} and {len(t)}")
    if channel.size and (channel.min() < 0 or channel.max() > np.iinfo(np.uint32).max):
        raise EventDataError(f"channel indices must lie in 0..2**32-1; got {channel.min()}..{channel.max()}")
    events = np.empty(len(t), dtype=CHANNEL_EVENT_DTYPE)
    events["channel"], events["t"] = channel, t
    return events


def _time_reversals(t: np.ndarray) -> np.ndarray:
    """Indices ``i`` with ``t[i] < t[i - 1]``."""
    return np.flatnonzero(np.diff(t) < 0) + 1


def check_camera_events(events: np.ndarray, sensor_size: tuple[int, int], *,
                        allow_time_reversals: bool = False, source: str = "events") -> int:
    """Check camera events against a sensor; return the number of time reversals.

    Parameters
    ----------
    events : np.ndarray
        Camera events, :data:`CAMERA_EVENT_DTYPE` or any dtype :func:`as_camera_events` takes.
    sensor_size : (width, height)
    allow_time_reversals : bool
        When false (default), a timestamp smaller than its predecessor raises.
    source : str
        Named in error messages (a file path, typically).

    Raises
    ------
    ValueError
        On a dtype :func:`as_camera_events` refuses, a coordinate outside ``sensor_size``, a
        polarity other than 0 / 1, or
        (unless allowed) a timestamp that goes backwards; the message names the first offending
        event index.
    """
    events = as_camera_events(events, source)
    width, height = sensor_size
    for name, limit in (("x", width), ("y", height)):
        outside = np.flatnonzero(events[name] >= limit)
        if outside.size:
            i = outside[0]
            raise EventDataError(
                f"{source}: event {i} has {name} = {events[name][i]}, outside the {width}x{height} sensor "
                f"({outside.size} such events)"
            )
    bad_p = np.flatnonzero((events["p"] != 0) & (events["p"] != 1))
    if bad_p.size:
        raise EventDataError(f"{source}: event {bad_p[0]} has polarity {events['p'][bad_p[0]]}; expected 0 or 1")
    reversals = _time_reversals(events["t"])
    if reversals.size and not allow_time_reversals:
        i = reversals[0]
        raise EventDataError(
            f"{source}: timestamps go backwards at event {i} ({events['t'][i - 1]} -> {events['t'][i]} us; "
            f"{reversals.size} reversals in all); pass allow_time_reversals=True to read it anyway"
        )
    return int(reversals.size)


def read_nmnist(path, *, sensor_size: tuple[int, int] = NMNIST_SENSOR_SIZE,
                allow_time_reversals: bool = False) -> CameraRecording:
    """Read an N-MNIST ``.bin`` recording; tonic's ``tonic.io.read_mnist_file`` decodes it.

    Each event is 5 bytes, big-endian bit fields: x (8 bits), y (8 bits), polarity (1 bit),
    timestamp (23 bits, microseconds). As in the reference reader (Orchard's N-MNIST code), a
    record with ``y == 240`` is a timestamp-overflow marker: it is not an event and adds ``2**13``
    us to every later timestamp. Around tonic's decoder this reader checks the size bound, the
    record framing and every event (tonic checks none).

    Raises
    ------
    ValueError
        If the file length is not a whole number of 5-byte records (names the byte offset of the
        incomplete record), it holds more than :data:`NMNIST_MAX_OVERFLOW_MARKERS` overflow
        markers, or the events fail :func:`check_camera_events`.
    """
    from tonic.io import read_mnist_file

    path = Path(path)
    _checked_size(path)
    raw = path.read_bytes()
    size = len(raw)
    if size % NMNIST_EVENT_BYTES:
        complete = size - size % NMNIST_EVENT_BYTES
        raise EventDataError(
            f"{path}: truncated N-MNIST file: incomplete {NMNIST_EVENT_BYTES}-byte event at byte offset {complete} "
            f"({size % NMNIST_EVENT_BYTES} trailing bytes, file is {size} bytes)"
        )
    markers = int(np.count_nonzero(np.frombuffer(raw, dtype=np.uint8)[1::NMNIST_EVENT_BYTES] == NMNIST_OVERFLOW_Y))
    if markers > NMNIST_MAX_OVERFLOW_MARKERS:
        raise EventDataError(f"{path}: {markers} timestamp-overflow records (y = {NMNIST_OVERFLOW_Y}), more than "
                             f"{NMNIST_MAX_OVERFLOW_MARKERS}: a corrupted file, or a recording longer than "
                             f"{NMNIST_MAX_OVERFLOW_MARKERS * 2**23 // 60_000_000} minutes (split it)")
    events = read_mnist_file(io.BytesIO(raw), dtype=CAMERA_EVENT_DTYPE, is_stream=True)
    n_rev = check_camera_events(events, sensor_size, allow_time_reversals=allow_time_reversals, source=str(path))
    return CameraRecording(events, tuple(sensor_size), path, n_rev)


def _aedat4_header(header: bytes, path: Path) -> int:
    """Check the AEDAT4 flatbuffer header; return ``IOHeader.dataTablePosition`` (-1: no data table).

    The IOHeader table holds ``compression`` (field 0), ``dataTablePosition`` (field 1, int64,
    default -1) and ``infoNode`` (field 2, a string: the recording's XML description). The info
    node must lie inside the header, be UTF-8 and well-formed XML: the ``aedat`` decoder aborts
    the whole process (a Rust panic it does not turn into an exception) on a bit flip there.
    """

    def field(slot: int) -> int:
        """Offset of field ``slot`` in the root table (0: absent)."""
        position = 4 + 2 * slot
        if position + 2 > vtable_size:
            return 0
        (offset,) = struct.unpack_from("<H", header, vtable + position)
        return offset

    try:
        (root,) = struct.unpack_from("<I", header, 0)
        (vtable_back,) = struct.unpack_from("<i", header, root)
        vtable = root - vtable_back
        if vtable < 0:
            raise struct.error("vtable before the header")
        (vtable_size,) = struct.unpack_from("<H", header, vtable)
        table_offset = field(1)
        position = struct.unpack_from("<q", header, root + table_offset)[0] if table_offset else -1
        info_offset = field(2)
        if not info_offset:
            raise EventDataError(f"{path}: malformed AEDAT4 header (no info node)")
        info_ref = root + info_offset
        (info_rel,) = struct.unpack_from("<I", header, info_ref)
        (info_len,) = struct.unpack_from("<I", header, info_ref + info_rel)
    except struct.error as exc:
        raise EventDataError(f"{path}: malformed AEDAT4 header ({exc})") from None
    info_start = info_ref + info_rel + 4
    if info_start + info_len > len(header):
        raise EventDataError(f"{path}: malformed AEDAT4 header (info node of {info_len} bytes runs past the header)")
    try:
        ElementTree.fromstring(header[info_start:info_start + info_len].decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise EventDataError(f"{path}: corrupted AEDAT4 header: info node is not UTF-8 "
                             f"(byte offset {len(AEDAT4_MAGIC) + 4 + info_start + exc.start})") from None
    except ElementTree.ParseError as exc:
        raise EventDataError(f"{path}: corrupted AEDAT4 header: info node is not well-formed XML ({exc})") from None
    return position


def _lz4_frame_end(raw: bytes, offset: int, path: Path) -> int:
    """Walk the LZ4 frame starting at ``offset`` block by block; return where it ends."""
    size = len(raw)

    def need(pos: int, what: str):
        if pos > size:
            raise EventDataError(
                f"{path}: truncated AEDAT4 file: the data table (LZ4 frame at byte offset {offset}) "
                f"ends inside its {what}; file is {size} bytes"
            )

    need(offset + 7, "frame header")
    (magic,) = struct.unpack_from("<I", raw, offset)
    if magic != _LZ4_FRAME_MAGIC:
        raise EventDataError(f"{path}: no LZ4 frame at byte offset {offset} where the header puts the data table")
    flags = raw[offset + 4]
    pos = offset + 6 + (8 if flags & 0x08 else 0) + (4 if flags & 0x01 else 0) + 1
    block_checksum = 4 if flags & 0x10 else 0
    while True:
        need(pos + 4, f"block header at byte offset {pos}")
        (block,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if block == 0:
            break
        pos += (block & 0x7FFFFFFF) + block_checksum
        need(pos, f"block ending at byte offset {pos}")
    pos += 4 if flags & 0x04 else 0
    need(pos, "content checksum")
    return pos


def _check_aedat4_framing(raw: bytes, path: Path) -> None:
    """Check that the AEDAT4 packets (and the data table, if any) are complete.

    Layout: magic, ``uint32`` header length, flatbuffer IOHeader, then packets of
    ``int32`` stream id, ``uint32`` payload size, payload; optionally a data table (an LZ4
    frame) at the position the header names.
    """
    size = len(raw)
    if not raw.startswith(AEDAT4_MAGIC):
        if size < len(AEDAT4_MAGIC) and AEDAT4_MAGIC.startswith(raw):
            raise EventDataError(f"{path}: truncated AEDAT4 file: ends at byte offset {size} inside the magic")
        raise EventDataError(f"{path}: not an AEDAT4 file (no {AEDAT4_MAGIC!r} magic at byte offset 0)")
    header_start = len(AEDAT4_MAGIC) + 4
    if size < header_start:
        raise EventDataError(
            f"{path}: truncated AEDAT4 file: header length field at byte offset {len(AEDAT4_MAGIC)} incomplete"
        )
    (header_len,) = struct.unpack_from("<I", raw, len(AEDAT4_MAGIC))
    header_end = header_start + header_len
    if header_end > size:
        raise EventDataError(
            f"{path}: truncated AEDAT4 file: header at byte offset {header_start} announces {header_len} bytes, "
            f"file ends at byte offset {size}"
        )
    table_pos = _aedat4_header(raw[header_start:header_end], path)
    packets_end = size if table_pos < 0 else min(table_pos, size)
    offset = header_end
    while offset < packets_end:
        if offset + 8 > packets_end:
            raise EventDataError(f"{path}: truncated AEDAT4 file: incomplete packet header at byte offset {offset}")
        _, payload = struct.unpack_from("<iI", raw, offset)
        if offset + 8 + payload > packets_end:
            raise EventDataError(
                f"{path}: truncated AEDAT4 file: packet at byte offset {offset} announces {payload} bytes, "
                f"only {packets_end - offset - 8} follow"
            )
        offset += 8 + payload
    if table_pos > size:
        raise EventDataError(
            f"{path}: truncated AEDAT4 file: header puts the data table at byte offset {table_pos}, "
            f"file ends at byte offset {size}"
        )
    if table_pos >= 0:
        end = _lz4_frame_end(raw, table_pos, path)
        if end != size:
            raise EventDataError(f"{path}: {size - end} unexpected bytes after the data table at byte offset {end}")


def read_aedat4(path, *, stream_id: int | None = None, allow_time_reversals: bool = False) -> CameraRecording:
    """Read the polarity events of an AEDAT4 (iniVation DV) recording.

    The container's packets are LZ4-compressed flatbuffers; they are decoded with the ``aedat``
    package after this reader has checked the framing itself (so a truncated file is reported
    with its byte offset rather than as a decoder error). The sensor size comes from the
    stream's ``width`` / ``height`` in the file's info node.

    Parameters
    ----------
    stream_id : int, optional
        Which event stream to read; by default the only one of type ``events``.

    Raises
    ------
    ValueError
        On a truncated or malformed container (naming the byte offset), a missing or ambiguous
        event stream, or events that fail :func:`check_camera_events`.
    """
    path = Path(path)
    _checked_size(path)
    _check_aedat4_framing(path.read_bytes(), path)
    try:
        return _decode_aedat4(path, stream_id, allow_time_reversals)
    except EventDataError:
        raise
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except BaseException as exc:  # noqa: BLE001 - aedat raises RuntimeError, or panics (a BaseException)
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise EventDataError(f"{path}: corrupted AEDAT4 data: the decoder failed ({type(exc).__name__}: {reason})") from None


def _decode_aedat4(path: Path, stream_id, allow_time_reversals: bool) -> CameraRecording:
    """The ``aedat`` decoding part of :func:`read_aedat4` (its exceptions are turned into ours)."""
    decoder = aedat.Decoder(str(path))
    streams = decoder.id_to_stream()
    event_streams = sorted(sid for sid, info in streams.items() if info.get("type") == "events")
    if stream_id is None:
        if len(event_streams) != 1:
            raise EventDataError(f"{path}: {len(event_streams)} event streams {event_streams}; pass stream_id= to pick one")
        stream_id = event_streams[0]
    elif stream_id not in event_streams:
        raise EventDataError(f"{path}: stream {stream_id} is not an event stream; event streams are {event_streams}")
    sensor_size = (int(streams[stream_id]["width"]), int(streams[stream_id]["height"]))
    if min(sensor_size) < 1:
        raise EventDataError(f"{path}: stream {stream_id} declares a {sensor_size[0]}x{sensor_size[1]} sensor")
    chunks, count = [], 0
    for packet in decoder:
        if packet["stream_id"] == stream_id and "events" in packet:
            chunks.append(packet["events"])
            count += len(packet["events"])
            if count > MAX_EVENTS:
                raise EventDataError(f"{path}: more than {MAX_EVENTS} events; split the recording")
    if chunks:
        raw = np.concatenate(chunks)
        if raw["t"].max() > np.iinfo(np.int64).max:
            raise EventDataError(f"{path}: timestamp {raw['t'].max()} does not fit int64 microseconds")
        events = camera_events(raw["x"], raw["y"], raw["t"].astype(np.int64), raw["on"].astype(np.int8))
    else:
        events = np.empty(0, dtype=CAMERA_EVENT_DTYPE)
    n_rev = check_camera_events(events, sensor_size, allow_time_reversals=allow_time_reversals, source=str(path))
    return CameraRecording(events, sensor_size, path, n_rev)


#: Column order of a table without names: a plain ``N x 4`` ``.npy`` or a CSV without a header.
TABLE_COLUMNS = ("x", "y", "p", "t")
_MAX_FIELD_CHARS = 20  # an int64 timestamp has at most 19 digits and a sign


def read_event_table(path) -> np.ndarray:
    """Camera events from a table: ``.npy`` or ``.csv``.

    ``.npy``: a structured array with integer fields ``x``, ``y``, ``t``, ``p`` (others ignored),
    or a plain ``N x 4`` integer array with columns ``x, y, p, t``. ``.csv``: four integer
    columns ``x, y, p, t`` without a header, or a header naming ``x``, ``y``, ``t``, ``p`` in any
    order (other columns allowed); every row has as many fields as the first.

    Raises
    ------
    EventDataError
        For a non-integer value (float, NaN, complex, text), a missing field or column, a wrong
        column count, an array of another shape, more than :data:`MAX_EVENTS` events, a file that
        is not ``.npy`` / ``.csv`` or is not what its suffix says; naming the line, column or field.
    """
    path = Path(path)
    _checked_size(path)
    if path.suffix == ".npy":
        return _read_npy_table(path)
    if path.suffix == ".csv":
        return _read_csv_table(path)
    raise EventDataError(f"{path}: not an event table; use .npy or .csv")


def _read_npy_table(path: Path) -> np.ndarray:
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
            else:
                raise EventDataError(f"{path}: .npy format version {version[0]}.{version[1]} is not read; "
                                     "write it with numpy.save")
    except EventDataError:
        raise
    except (ValueError, EOFError, OSError, SyntaxError, TypeError) as exc:
        raise EventDataError(f"{path}: not a .npy file ({exc})") from None
    n = int(np.prod(shape)) if shape else 1
    if dtype.names:
        missing = [name for name in _TABLE_FIELDS if name not in dtype.names]
        if missing:
            raise EventDataError(f"{path}: a structured .npy needs fields x, y, t, p; it has {sorted(dtype.names)}")
        for name in _TABLE_FIELDS:
            field = dtype.fields[name][0]
            if field.shape or field.kind not in "iub":
                raise EventDataError(f"{path}: field {name} must hold integers, not {field}")
    else:
        if len(shape) != 2 or shape[1] != 4:
            raise EventDataError(f"{path}: a plain .npy must be an N x 4 integer array (x, y, p, t); got shape {shape}")
        if dtype.kind not in "iub":
            raise EventDataError(f"{path}: a plain .npy must hold integers, not {dtype} values")
        n = shape[0]
    if n > MAX_EVENTS:
        raise EventDataError(f"{path}: {n} events, more than {MAX_EVENTS}; split the recording")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise EventDataError(f"{path}: truncated or corrupted .npy data ({exc})") from None
    if dtype.names:
        array = array.reshape(-1)
        return _table_events(path, {name: array[name] for name in _TABLE_FIELDS})
    return _table_events(path, {name: array[:, TABLE_COLUMNS.index(name)] for name in _TABLE_FIELDS})


def _read_csv_table(path: Path) -> np.ndarray:
    columns: list[list[int]] = []
    names = None
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            for line, row in enumerate(csv.reader(handle), start=1):
                if not row or all(not field.strip() for field in row):
                    continue
                if names is None:
                    if any(c.isalpha() for field in row for c in field):
                        names = [field.strip() for field in row]
                        missing = [name for name in _TABLE_FIELDS if name not in names]
                        if missing:
                            raise EventDataError(
                                f"{path}: the CSV header must name columns x, y, t, p; it has {sorted(names)}")
                        if len(set(names)) != len(names):
                            raise EventDataError(f"{path}: the CSV header names a column twice: {names}")
                        columns = [[] for _ in names]
                        continue
                    names = list(TABLE_COLUMNS)
                    columns = [[] for _ in names]
                if len(row) != len(names):
                    raise EventDataError(f"{path}: line {line} has {len(row)} fields, expected {len(names)} "
                                         f"({', '.join(names)})")
                if len(columns[0]) >= MAX_EVENTS:
                    raise EventDataError(f"{path}: more than {MAX_EVENTS} events; split the recording")
                for index, field in enumerate(row):
                    columns[index].append(_csv_int(path, line, names[index], field))
    except UnicodeDecodeError as exc:
        raise EventDataError(f"{path}: not a text CSV file ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise EventDataError(f"{path}: malformed CSV ({exc})") from None
    if names is None:
        return np.empty(0, dtype=CAMERA_EVENT_DTYPE)
    return _table_events(path, {name: np.array(columns[names.index(name)], dtype=np.int64) for name in _TABLE_FIELDS})


def _csv_int(path: Path, line: int, column: str, field: str) -> int:
    text = field.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isdigit() or not digits.isascii() or len(text) > _MAX_FIELD_CHARS:
        what = "an empty field" if not text else repr(text if len(text) <= 24 else text[:24] + "...")
        raise EventDataError(f"{path}: line {line}, column {column}: {what} is not an integer")
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise EventDataError(f"{path}: line {line}, column {column}: {value} does not fit 64 bits")
    return value


def _table_events(path: Path, fields: dict) -> np.ndarray:
    try:
        return camera_events(fields["x"], fields["y"], fields["t"], fields["p"])
    except EventDataError as exc:
        raise EventDataError(f"{path}: {exc}") from None


def _positive_pair(name: str, value) -> tuple[int, int]:
    pair = tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) < 1 or any(int(v) != v for v in value):
        raise EventDataError(f"{name} must be two positive integers (along x, along y); got {value!r}")
    return pair


@dataclass(frozen=True)
class InputMap:
    """Map camera events to input-channel indices, pooling ``pool`` pixels into one channel.

    Channel order is polarity-major, then pooled row, then pooled column, i.e. the flattening
    of a ``(P, H', W')`` frame::

        channel = (p * H' + y // pool_y) * W' + x // pool_x     # split_polarity=True
        channel = (y // pool_y) * W' + x // pool_x              # split_polarity=False

    with ``W' = ceil(width / pool_x)`` and ``H' = ceil(height / pool_y)`` (the last pooled column
    and row cover fewer pixels when the sensor is not a multiple of the pool).

    Parameters
    ----------
    sensor_size : (width, height)
    pool : (pool_x, pool_y)
        Pixels per channel along each axis; ``(1, 1)`` keeps every pixel.
    split_polarity : bool
        ON and OFF events go to separate channels (default) or share one.
    """

    sensor_size: tuple[int, int]
    pool: tuple[int, int] = (1, 1)
    split_polarity: bool = True

    def __post_init__(self):
        object.__setattr__(self, "sensor_size", _positive_pair("sensor_size", self.sensor_size))
        object.__setattr__(self, "pool", _positive_pair("pool", self.pool))

    @property
    def pooled_size(self) -> tuple[int, int]:
        """``(W', H')``: channels per row and rows per polarity."""
        (width, height), (pool_x, pool_y) = self.sensor_size, self.pool
        return -(-width // pool_x), -(-height // pool_y)

    @property
    def n_polarities(self) -> int:
        return 2 if self.split_polarity else 1

    @property
    def n_channels(self) -> int:
        pooled_w, pooled_h = self.pooled_size
        return self.n_polarities * pooled_h * pooled_w

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """Camera events (any dtype :func:`as_camera_events` takes, tonic's included) ->
        :data:`CHANNEL_EVENT_DTYPE` events, same order and timestamps.

        Raises
        ------
        ValueError
            If an event lies outside ``sensor_size`` (see :func:`check_camera_events`).
        """
        events = as_camera_events(events, "InputMap")
        check_camera_events(events, self.sensor_size, allow_time_reversals=True, source="InputMap")
        pooled_w, pooled_h = self.pooled_size
        pool_x, pool_y = self.pool
        column = events["x"].astype(np.int64) // pool_x
        row = events["y"].astype(np.int64) // pool_y
        plane = events["p"].astype(np.int64) if self.split_polarity else 0
        return channel_events((plane * pooled_h + row) * pooled_w + column, events["t"])


@dataclass(frozen=True)
class ChannelPool:
    """Sum ``pool`` adjacent source channels into one input channel: ``channel = source // pool``.

    The audio counterpart of :class:`InputMap`'s spatial pooling (the SSC networks' authors sum 5
    adjacent cochlea channels: 700 -> 140). The last input channel covers fewer sources when
    ``n_sources`` is not a multiple of ``pool``.

    Parameters
    ----------
    n_sources : int
        Source channels (``0 <= channel < n_sources``).
    pool : int
        Source channels per input channel; 1 keeps every channel.
    """

    n_sources: int
    pool: int = 1

    def __post_init__(self):
        for name in ("n_sources", "pool"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise EventDataError(f"ChannelPool {name} must be a positive integer, not {value!r}")
            object.__setattr__(self, name, int(value))

    @property
    def n_channels(self) -> int:
        """Input channels: ``ceil(n_sources / pool)``."""
        return -(-self.n_sources // self.pool)

    def __call__(self, events: np.ndarray) -> np.ndarray:
        """Source channel events -> :data:`CHANNEL_EVENT_DTYPE` input events, same order and ticks.

        Raises
        ------
        ValueError
            On another dtype or a source channel ``>= n_sources`` (naming the first such event).
        """
        if events.dtype != CHANNEL_EVENT_DTYPE:
            raise EventDataError(f"ChannelPool: expected CHANNEL_EVENT_DTYPE {CHANNEL_EVENT_DTYPE}, got {events.dtype}")
        outside = np.flatnonzero(events["channel"] >= self.n_sources)
        if outside.size:
            i = int(outside[0])
            raise EventDataError(f"ChannelPool: event {i} has channel {int(events['channel'][i])}, outside the "
                                 f"{self.n_sources} source channels ({outside.size} such events)")
        return channel_events(events["channel"].astype(np.int64) // self.pool, events["t"])


def digitize_bin_ticks(n_steps: int, duration_ticks: int) -> int:
    """The whole-tick bin width that reproduces :func:`digitize_counts` exactly with :func:`bin_events`.

    ``np.digitize(t, linspace(0, duration, n_steps))`` puts ``t`` in bin ``k >= 1`` for
    ``(k-1) * w <= t < k * w`` with ``w = duration / (n_steps - 1)``, and nothing in bin 0.
    When ``w`` is a whole number of ticks this is :func:`bin_events` with ``bin_ticks = w`` and
    ``t_start = -w`` (the events shifted one bin later); this function returns that ``w``.

    Raises
    ------
    EventDataError
        When ``n_steps < 2`` or ``w`` is not a whole number of ticks (the message gives ``w``:
        such a binning can only be approximated on an integer time base).
    """
    n_steps, duration_ticks = int(n_steps), int(duration_ticks)
    if n_steps < 2 or duration_ticks < 1:
        raise EventDataError(f"the authors' binning needs n_steps >= 2 and a positive duration; got {n_steps} "
                             f"and {duration_ticks}")
    width, rest = divmod(duration_ticks, n_steps - 1)
    if rest:
        raise EventDataError(
            f"the authors' bins are {duration_ticks}/{n_steps - 1} = {duration_ticks / (n_steps - 1):.6g} ticks wide, "
            f"not a whole number of ticks: an integer time base cannot reproduce them exactly "
            f"(n_steps = {n_steps} of {duration_ticks} ticks; whole widths need n_steps - 1 to divide {duration_ticks})"
        )
    return width


def digitize_counts(events: np.ndarray, n_channels: int, n_steps: int, duration_ticks: int) -> np.ndarray:
    """The SSM-inspired-LIF authors' binning, ``(n_steps, n_channels)`` int64 counts.

    Bin of an event: ``np.digitize(t, np.linspace(0, duration, n_steps))`` as their data
    loader computes it (in float, here in ticks; events at or after the duration land in bin ``n_steps`` and
    are dropped here), so bin 0 is always empty. Use it to compare with the integer time base;
    :func:`digitize_bin_ticks` says when :func:`bin_events` reproduces it exactly.
    """
    if events.dtype != CHANNEL_EVENT_DTYPE:
        raise EventDataError(f"digitize_counts needs CHANNEL_EVENT_DTYPE events, not {events.dtype}")
    if int(n_steps) < 2 or int(n_channels) < 1 or int(duration_ticks) < 1:
        raise EventDataError(f"digitize_counts needs n_steps >= 2, n_channels >= 1 and a positive duration; got "
                             f"{n_steps}, {n_channels}, {duration_ticks}")
    channel = events["channel"].astype(np.int64)
    if channel.size and channel.max() >= n_channels:
        raise EventDataError(f"channel index {channel.max()} out of range for n_channels={n_channels}")
    bins = np.digitize(events["t"].astype(np.float64), np.linspace(0, int(duration_ticks), int(n_steps)))
    inside = bins < n_steps
    flat = bins[inside] * n_channels + channel[inside]
    return np.bincount(flat, minlength=n_steps * n_channels).astype(np.int64).reshape(n_steps, n_channels)


def bin_events(events: np.ndarray, n_channels: int, bin_ticks: int, *,
               t_start: int | None = None, n_bins: int | None = None) -> np.ndarray:
    """Dense ``(n_bins, n_channels)`` ``int64`` event counts from channel events.

    Bin ``k`` counts the events with ``t_start + k*bin_ticks <= t < t_start + (k+1)*bin_ticks``;
    events of one channel in one bin add up. Event order does not matter.

    Parameters
    ----------
    events : np.ndarray of CHANNEL_EVENT_DTYPE
    n_channels : int
        Width of the result; every channel index must be below it.
    bin_ticks : int
        Bin length in the events' ticks (microseconds), positive.
    t_start : int, optional
        Start of bin 0; default the earliest timestamp (0 for no events).
    n_bins : int, optional
        Number of bins (a fixed window: events at or after its end are left out). Default: just
        enough bins to hold the last event.

    Raises
    ------
    ValueError
        On a wrong dtype, non-positive ``bin_ticks`` / ``n_channels``, a channel index out of range,
        or an event before ``t_start``.
    """
    if events.dtype.names is None or not {"channel", "t"} <= set(events.dtype.names):
        raise EventDataError(f"bin_events needs channel events (fields channel, t); got dtype {events.dtype}")
    if int(n_channels) < 1 or int(bin_ticks) < 1:
        raise EventDataError(f"n_channels and bin_ticks must be positive; got {n_channels} and {bin_ticks}")
    if n_bins is not None and int(n_bins) < 0:
        raise EventDataError(f"n_bins must be non-negative; got {n_bins}")
    channel = events["channel"].astype(np.int64)
    t = events["t"].astype(np.int64)
    if channel.size and channel.max() >= n_channels:
        raise EventDataError(f"channel index {channel.max()} out of range for n_channels={n_channels}")
    if t_start is None:
        t_start = int(t.min()) if t.size else 0
    if t.size and t.min() < t_start:
        raise EventDataError(f"event at t={t.min()} lies before t_start={t_start}")
    bins = (t - t_start) // bin_ticks
    if n_bins is None:
        n_bins = int(bins.max()) + 1 if bins.size else 0
    inside = bins < n_bins
    flat = bins[inside] * n_channels + channel[inside]
    counts = np.bincount(flat, minlength=n_bins * n_channels)
    return counts.astype(np.int64).reshape(n_bins, n_channels)
