"""Property-based fuzzing (hypothesis) of everything that reads outside input.

The property everywhere: a correct result or one clear project error (:class:`SpikestreamError`,
one line); never another exception, never a hang (every example has a deadline). Covered: the
model-file loader (bit flips, truncation, hostile headers, edited manifest fields), every event
reader (N-MNIST, AEDAT4, ``.npy``, CSV), the protocol's golden decoder, parser and encoders,
and every command's argument parser. The examples are derandomised so that CI is repeatable;
``SPIKESTREAM_FUZZ_EXAMPLES=N`` runs N random examples per test instead (a deeper local run).
The whole file runs in well under a minute (docs/reliability.md gives the counts).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import io
import json
import os
import struct
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from golden.data.events import CAMERA_EVENT_DTYPE, EventDataError, read_aedat4, read_event_table, read_nmnist
from golden.model_file import ModelFileError, load_model, save_model, to_manifest, write_raw
from golden.network import NetworkParams, default_network
from golden.protocol import (
    COUNTER_NAMES, RESULT_PAYLOAD_LENGTHS, TIMESTAMP_MAX, EndOfSample, Event, FrameDecoderModel, FrameParser,
    ProtocolError, ReadStatus, Reset, SensorGeometry, decode_result, encode_event, encode_scores, encode_spike,
    encode_status,
)

_EXAMPLES = int(os.environ.get("SPIKESTREAM_FUZZ_EXAMPLES", "0"))


def fuzz(examples: int):
    """Settings of one fuzz test: ``examples`` derandomised examples (CI), a 10 s deadline each."""
    return settings(max_examples=_EXAMPLES or examples, derandomize=not _EXAMPLES, deadline=10_000,
                    database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                                          HealthCheck.data_too_large])


def _flip(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, bit in flips:
        out[position % len(out)] ^= 1 << bit
    return bytes(out)


_FLIPS = st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 7)), min_size=1, max_size=4)


# --- Model files ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory) -> bytes:
    return save_model(tmp_path_factory.mktemp("fuzz") / "net.safetensors", default_network()).read_bytes()


def _load_or_refuse(path: Path):
    try:
        return load_model(path)
    except ModelFileError as error:
        assert "\n" not in str(error) and str(error).startswith(str(path)), str(error)
        return None


@fuzz(150)
@given(flips=_FLIPS)
def test_model_file_bit_flips(model_bytes, tmp_path, flips):
    """A flipped bit anywhere is refused (header JSON, manifest digest, array SHA-256) or harmless."""
    path = tmp_path / "flipped.safetensors"
    path.write_bytes(_flip(model_bytes, flips))
    result = _load_or_refuse(path)
    assert result is None or isinstance(result, NetworkParams)


@fuzz(40)
@given(cut=st.integers(0, 2**31))
def test_model_file_truncated(model_bytes, tmp_path, cut):
    path = tmp_path / "cut.safetensors"
    path.write_bytes(model_bytes[:cut % len(model_bytes)])
    assert _load_or_refuse(path) is None


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@fuzz(80)
@given(data=st.data())
def test_model_file_edited_manifest_fields(tmp_path, data):
    """Any manifest value replaced (digests rewritten to match): the field checks refuse it by name."""
    manifest, arrays = to_manifest(default_network())
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                paths.append((*path, key))
                walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                paths.append((*path, index))
                walk(value, (*path, index))

    walk(manifest, ())
    edited = copy.deepcopy(manifest)
    path = data.draw(st.sampled_from(paths), label="field")
    parent = edited
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans(), label="delete") and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(_JSON, label="value")
    file = write_raw(tmp_path / "edited.safetensors", edited, arrays)
    result = _load_or_refuse(file)
    assert result is None or isinstance(result, NetworkParams)


@fuzz(80)
@given(header=_JSON, raw=st.binary(max_size=64))
def test_model_file_arbitrary_headers(tmp_path, header, raw):
    path = tmp_path / "header.safetensors"
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw)
    assert _load_or_refuse(path) is None
    path.write_bytes(raw)
    assert _load_or_refuse(path) is None


# --- Event readers --------------------------------------------------------------------------------
def _read_or_refuse(reader, path: Path):
    try:
        return reader(path)
    except EventDataError as error:
        assert "\n" not in str(error), str(error)
        return None


@fuzz(150)
@given(raw=st.binary(max_size=120))
def test_nmnist_arbitrary_bytes(tmp_path, raw):
    path = tmp_path / "s.bin"
    path.write_bytes(raw)
    recording = _read_or_refuse(read_nmnist, path)
    if recording is not None:
        assert len(raw) % 5 == 0 and recording.events.dtype == CAMERA_EVENT_DTYPE
        assert (recording.events["x"] < 34).all() and (recording.events["y"] < 34).all()


@pytest.fixture(scope="module")
def davis_bytes(shared_data) -> bytes:
    return (shared_data / "events" / "davis_sample.aedat4").read_bytes()


@fuzz(40)
@given(flips=_FLIPS)
def test_aedat4_bit_flips(davis_bytes, tmp_path, flips):
    """Decoder errors and Rust panics of the ``aedat`` package come out as EventDataError."""
    path = tmp_path / "s.aedat4"
    path.write_bytes(_flip(davis_bytes, flips))
    recording = _read_or_refuse(read_aedat4, path)
    assert recording is None or recording.events.dtype == CAMERA_EVENT_DTYPE


#: The DAVIS sample's magic, header length and flatbuffer header (its info node's XML): 2,352 bytes.
DAVIS_HEADER_BYTES = 2352


@fuzz(40)
@given(flips=st.lists(st.tuples(st.integers(0, DAVIS_HEADER_BYTES - 1), st.integers(0, 7)), min_size=1, max_size=2))
def test_aedat4_header_bit_flips(davis_bytes, tmp_path, flips):
    """Flips in the header, where the ``aedat`` decoder can abort the process: refused or read."""
    path = tmp_path / "s.aedat4"
    path.write_bytes(_flip(davis_bytes, flips))
    recording = _read_or_refuse(read_aedat4, path)
    assert recording is None or recording.events.dtype == CAMERA_EVENT_DTYPE


@fuzz(100)
@given(raw=st.binary(max_size=200))
def test_aedat4_arbitrary_bytes_after_the_magic(tmp_path, raw):
    path = tmp_path / "s.aedat4"
    path.write_bytes(b"#!AER-DAT4.0\r\n" + raw)
    recording = _read_or_refuse(read_aedat4, path)
    assert recording is None or recording.events.dtype == CAMERA_EVENT_DTYPE


_NPY_DTYPES = st.sampled_from([
    np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.bool_,
    np.float32, np.float64, np.complex128,
])


@fuzz(150)
@given(array=hnp.arrays(_NPY_DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)))
def test_npy_arbitrary_arrays(tmp_path, array):
    path = tmp_path / "e.npy"
    np.save(path, array)
    events = _read_or_refuse(read_event_table, path)
    if events is not None:  # only an N x 4 integer array of valid events reads, column for column
        assert array.dtype.kind in "iub" and array.ndim == 2 and array.shape[1] == 4
        assert events["x"].tolist() == array[:, 0].tolist() and events["t"].tolist() == array[:, 3].tolist()


@fuzz(80)
@given(
    fields=st.lists(st.sampled_from(["x", "y", "t", "p", "q"]), min_size=1, max_size=5, unique=True),
    kinds=st.lists(st.sampled_from(["<i8", "<u2", "<f8", "<c16", "?", "<i4"]), min_size=5, max_size=5),
    n=st.integers(0, 4), flips=st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 7)), max_size=2),
)
def test_npy_structured_and_corrupted(tmp_path, fields, kinds, n, flips):
    array = np.zeros(n, dtype=[(name, kind) for name, kind in zip(fields, kinds)])
    path = tmp_path / "e.npy"
    np.save(path, array)
    if flips:
        path.write_bytes(_flip(path.read_bytes(), flips))
    events = _read_or_refuse(read_event_table, path)
    assert events is None or events.dtype == CAMERA_EVENT_DTYPE


_CSV_TEXT = st.text(alphabet="0123456789,,,-+.eE \n\nxytpnaNIf\tj\"", max_size=120)


@fuzz(200)
@given(text=_CSV_TEXT)
def test_csv_arbitrary_text(tmp_path, text):
    path = tmp_path / "e.csv"
    path.write_text(text)
    events = _read_or_refuse(read_event_table, path)
    assert events is None or events.dtype == CAMERA_EVENT_DTYPE


@fuzz(100)
@given(rows=st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 65535), st.integers(0, 1),
                                st.integers(-2**63, 2**63 - 1)), max_size=20))
def test_csv_valid_rows_read_back_exactly(tmp_path, rows):
    path = tmp_path / "e.csv"
    path.write_text("".join(f"{x},{y},{p},{t}\n" for x, y, p, t in rows))
    events = read_event_table(path)
    assert [(int(e["x"]), int(e["y"]), int(e["p"]), int(e["t"])) for e in events] == rows


# --- Protocol -------------------------------------------------------------------------------------
GEOMETRY = SensorGeometry(34, 34)


@fuzz(150)
@given(stream=st.binary(max_size=400))
def test_decoder_model_takes_any_byte_stream(stream):
    """Never raises; every delivered command is a well-formed, in-range command."""
    model = FrameDecoderModel(GEOMETRY, fifo_depth=8)
    model.feed_bytes(stream)
    for command in model.take():
        assert isinstance(command, (Event, EndOfSample, Reset, ReadStatus))
        if isinstance(command, Event):
            assert GEOMETRY.contains(command.x, command.y, command.polarity)
    assert set(model.counters) == set(COUNTER_NAMES) and all(v >= 0 for v in model.counters.values())


@fuzz(150)
@given(stream=st.binary(max_size=400))
def test_result_parser_takes_any_byte_stream(stream):
    parser = FrameParser(RESULT_PAYLOAD_LENGTHS)
    for byte in stream:
        frame = parser.feed(byte)
        if frame is not None:
            try:
                decode_result(*frame)
            except ProtocolError:
                pass


_ANY = st.one_of(st.integers(-2**40, 2**40), st.none(), st.floats(), st.text(max_size=3), st.booleans())


@fuzz(150)
@given(x=_ANY, y=_ANY, polarity=_ANY, timestamp=_ANY)
def test_event_encoder_round_trips_or_refuses(x, y, polarity, timestamp):
    try:
        frame = encode_event(x, y, polarity, timestamp)
    except ProtocolError:
        assert not all(isinstance(v, int) and not isinstance(v, bool) for v in (x, y, polarity, timestamp)) or not (
            0 <= x < 2**16 and 0 <= y < 2**16 and 0 <= polarity < 2**8 and 0 <= timestamp <= TIMESTAMP_MAX)
        return
    model = FrameDecoderModel(SensorGeometry(1 << 16, 1 << 16, 256))
    model.feed_bytes(frame)
    assert model.take() == [Event(x, y, polarity, timestamp)]


@fuzz(100)
@given(layer=_ANY, neuron=_ANY, time=_ANY, scores=st.lists(st.integers(-2**33, 2**33), max_size=70),
       argmax=st.integers(-2, 300), counter=st.integers(-1, 2**33))
def test_result_encoders_round_trip_or_refuse(layer, neuron, time, scores, argmax, counter):
    parser = FrameParser(RESULT_PAYLOAD_LENGTHS)
    for encode, arguments in ((encode_spike, (layer, neuron, time)), (encode_scores, (scores, argmax)),
                              (encode_status, ({name: counter for name in COUNTER_NAMES},))):
        try:
            frame = encode(*arguments)
        except ProtocolError:
            continue
        parsed = [item for item in map(parser.feed, frame) if item is not None]
        assert len(parsed) == 1
        decode_result(*parsed[0])


# --- Command-line parsers -------------------------------------------------------------------------
class _Parsed(Exception):
    """Raised in place of running a command once its arguments parsed."""


COMMANDS = {
    "hw.build": ["--board", "--variant", "--clock-mhz", "--model", "--lanes", "--cores", "--steps",
                 "--spike-layers", "--stimulus", "--neurons", "--out", "--dry-run", "--force", "--seed", "--router", "--lut-mapper"],
    "hw.host": ["--port", "--dry-run", "--loopback", "--golden", "--events", "--audio", "--model", "--check", "--steps",
                "--spike-layers", "--lanes", "--cores", "--clock-mhz", "--baud", "--tick-us", "--keep-time",
                "--timeout", "--spikes", "--spikes-csv", "--json", "--force"],
    "golden.train": ["--neuron", "--hidden", "--bin-ms", "--window-ms", "--epochs", "--batch-size", "--lr",
                     "--dropout", "--loss", "--seed", "--threads", "--train-limit", "--test-limit", "--out",
                     "--export", "--force"],
    "golden.model_file": ["check", "default", "--device", "--lanes", "--seed", "--hidden", "--force"],
    "golden.ssc_checkpoint": ["--kind", "--out", "--device", "--weight-bits", "--row-scale", "--error-feedback",
                              "--lanes", "--steps", "--bin-ticks", "--authors-binning", "--calibration-samples",
                              "--seed", "--max-events-per-step", "--force"],
    "golden.nir": ["import", "export", "--out", "--dt", "--source", "--calibrate", "--bin-ticks", "--device",
                   "--force"],
    "bench.core_fit": ["--quick", "--cores", "--neurons", "--clock-mhz", "--variant", "--seeds", "--jobs"],
    "bench.processor": ["--networks", "--lanes", "--clock-mhz", "--fit", "--fit-lanes", "--cores", "--jobs",
                        "--variant", "--seed", "--router", "--lut-mapper", "--no-sim"],
    "bench.sahippo_core": ["--states", "--channels", "--dt-max", "--clock-mhz", "--variant", "--seed", "--router"],
    "bench.golden_speed": ["--neurons", "--steps", "--batch", "--repeat", "--types"],
    "bench.pmbc": ["--lengths", "--batch", "--channels", "--paths", "--seed", "--threads", "--quick", "--output"],
    "bench.fsdd": ["--neurons", "--quick", "--rtl", "--rtl-neurons", "--lanes", "--builds"],
    "bench.flames_fsdd": ["--epochs", "--hidden", "--n-state", "--threads", "--rtl", "--fit", "--router"],
    "bench.sahippo": ["--quick", "--only"],
    "bench.sahippo_decay": ["--streams", "--events", "--ticks", "--flames", "--flames-limit"],
    "bench.encode_fsdd": ["--workers", "--example", "--docs"],
    "bench.fsdd_figures": ["--models", "--split", "--speaker", "--recording", "--docs"],
    "bench.cycle_model": ["--models", "--recordings", "--lanes"],
    "bench.hard_blocks": ["--variants", "--seed", "--clock-mhz"],
    "bench.ssc_checkpoints": ["--networks", "--weight-bits", "--row-scale", "--rounding", "--no-tied", "--no-fit",
                              "--batch", "--steps", "--calibration", "--seed", "--device", "--lanes", "--cores",
                              "--clock-mhz", "--quick"],
    "bench.fmax": ["--networks", "--seeds", "--clock-mhz", "--variant", "--router", "--jobs"],
    "bench.soak": ["--events", "--seed", "--model", "--lanes"],
    "bench.rtl_fsdd": ["--model", "--lanes"],
}
_VALUES = ["0", "1", "-1", "2", "3", "4", "16", "70000", "1e9", "inf", "nan", "-inf", "0.5", "99F", "85f", "12F",
           "all", "0,1", "x", "", " ", "default", "csilif", "router2", "abc", "9" * 60, "/", "/dev/null",
           "models/fsdd_csilif.safetensors", "README.md", "no/such/file.csv", "build"]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_command_line_parsers(command, monkeypatch, tmp_path):
    """Any argument list: parsed, or refused with exit status 2 and an ``error:`` line; no traceback."""
    module = importlib.import_module(command)
    real_parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        parsed = real_parse_args(self, args, namespace)
        raise _Parsed(parsed)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    tokens = st.lists(st.sampled_from(COMMANDS[command]) | st.sampled_from(_VALUES) | st.text(max_size=6),
                      max_size=8)

    @fuzz(40)
    @given(argv=tokens)
    def check(argv):
        stderr, stdout = io.StringIO(), io.StringIO()
        with redirect_stderr(stderr), redirect_stdout(stdout):
            try:
                module.main(argv)
            except _Parsed:
                return
            except SystemExit as exit_info:
                if exit_info.code == 0 and stdout.getvalue().startswith("usage:"):
                    return  # --help, or an abbreviation of it
                assert exit_info.code == 2, (argv, exit_info.code, stderr.getvalue())
        text = stderr.getvalue()
        assert "Traceback" not in text and "error:" in text.rstrip("\n").split("\n")[-1], (argv, text)

    check()
