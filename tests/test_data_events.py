"""Event-camera readers, input map and time binning, on the real N-MNIST and DAVIS recordings."""

import struct
from pathlib import Path

import numpy as np
import pytest

from golden.data import DATA_ENV, data_path
from golden.data.events import (
    CAMERA_EVENT_DTYPE,
    CHANNEL_EVENT_DTYPE,
    ChannelPool,
    EventDataError,
    InputMap,
    as_camera_events,
    bin_events,
    digitize_bin_ticks,
    digitize_counts,
    camera_events,
    channel_events,
    check_camera_events,
    read_aedat4,
    read_event_table,
    read_nmnist,
)

NMNIST_EVENTS = 4325
DAVIS_EVENTS = 111_954


@pytest.fixture(scope="module")
def nmnist_path(shared_data):
    return shared_data / "events" / "nmnist_sample.bin"


@pytest.fixture(scope="module")
def davis_path(shared_data):
    return shared_data / "events" / "davis_sample.aedat4"


def nmnist_record(x, y, p, t):
    """One 5-byte N-MNIST record, written field by field (independent of the reader)."""
    return bytes([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF])


def frames_reference(events, sensor_size, pool, bin_ticks, t_start):
    """Dense counts the way the reference pipeline's ToFrame builds them: a (T, P, H, W) frame
    stack filled with np.add.at, flattened per bin. Independent of InputMap and bin_events."""
    width, height = sensor_size
    px, py = pool
    h, w = -(-height // py), -(-width // px)
    bins = (events["t"] - t_start) // bin_ticks
    frames = np.zeros((bins.max() + 1, 2, h, w), dtype=np.int64)
    np.add.at(frames, (bins, events["p"], events["y"] // py, events["x"] // px), 1)
    return frames.reshape(frames.shape[0], -1)


# --- N-MNIST ---------------------------------------------------------------------------------


def test_nmnist_real_file(nmnist_path):
    rec = read_nmnist(nmnist_path)
    assert len(rec) == NMNIST_EVENTS
    assert rec.events.dtype == CAMERA_EVENT_DTYPE
    assert rec.sensor_size == (34, 34) and rec.n_time_reversals == 0
    assert (np.diff(rec.events["t"]) >= 0).all()
    # Independent decode, record by record, with the 23-bit timestamp read as a big-endian int.
    raw = nmnist_path.read_bytes()
    expected = []
    for offset in range(0, len(raw), 5):
        x, y = raw[offset], raw[offset + 1]
        word = int.from_bytes(raw[offset + 2 : offset + 5], "big")
        expected.append((x, y, word & 0x7FFFFF, word >> 23))
    expected = np.array(expected)
    for i, name in enumerate(("x", "y", "t", "p")):
        np.testing.assert_array_equal(rec.events[name], expected[:, i])
    assert set(np.unique(rec.events["p"])) == {0, 1}


def test_nmnist_truncated_names_byte_offset(nmnist_path, tmp_path):
    cut = tmp_path / "cut.bin"
    cut.write_bytes(nmnist_path.read_bytes()[:-2])
    with pytest.raises(ValueError, match=r"byte offset 21620"):
        read_nmnist(cut)


def test_nmnist_overflow_marker_advances_time(tmp_path):
    path = tmp_path / "overflow.bin"
    path.write_bytes(nmnist_record(1, 2, 1, 100) + nmnist_record(0, 240, 0, 0) + nmnist_record(3, 4, 0, 50))
    rec = read_nmnist(path)
    assert rec.events.tolist() == [(1, 2, 100, 1), (3, 4, 50 + 2**13, 0)]


def test_nmnist_rejects_out_of_sensor_and_backwards_time(tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(nmnist_record(1, 1, 0, 10) + nmnist_record(34, 1, 0, 20))
    with pytest.raises(ValueError, match=r"event 1 has x = 34, outside the 34x34 sensor"):
        read_nmnist(outside)
    backwards = tmp_path / "backwards.bin"
    backwards.write_bytes(nmnist_record(1, 1, 0, 30) + nmnist_record(2, 2, 1, 20) + nmnist_record(3, 3, 1, 40))
    with pytest.raises(ValueError, match=r"backwards at event 1 \(30 -> 20 us"):
        read_nmnist(backwards)
    rec = read_nmnist(backwards, allow_time_reversals=True)
    assert rec.n_time_reversals == 1 and len(rec) == 3


def test_check_catches_a_single_perturbed_event(nmnist_path):
    events = read_nmnist(nmnist_path).events.copy()
    assert check_camera_events(events, (34, 34)) == 0
    events["y"][1234] = 34
    with pytest.raises(ValueError, match=r"event 1234 has y = 34"):
        check_camera_events(events, (34, 34))


# --- AEDAT4 ----------------------------------------------------------------------------------


def test_aedat4_real_file_matches_decoder(davis_path):
    import aedat

    rec = read_aedat4(davis_path)
    assert len(rec) == DAVIS_EVENTS
    assert rec.sensor_size == (320, 240) and rec.n_time_reversals == 0
    raw = np.concatenate([p["events"] for p in aedat.Decoder(str(davis_path)) if "events" in p])
    np.testing.assert_array_equal(rec.events["t"], raw["t"].astype(np.int64))
    np.testing.assert_array_equal(rec.events["x"], raw["x"])
    np.testing.assert_array_equal(rec.events["y"], raw["y"])
    np.testing.assert_array_equal(rec.events["p"], raw["on"].astype(np.int8))
    assert rec.events["x"].max() < 320 and rec.events["y"].max() < 240


def test_aedat4_header_bit_flip_is_an_error_not_an_abort(davis_path, tmp_path):
    """A bit flip in the info node's XML (byte 1383: 'a' -> 0xe1, not UTF-8) makes the ``aedat``
    decoder abort the process (SIGABRT, no exception); the reader refuses it first. Run in a
    child process so that an abort is reported as a failure."""
    import subprocess
    import sys

    raw = bytearray(davis_path.read_bytes())
    raw[1383] ^= 0x80
    path = tmp_path / "flipped.aedat4"
    path.write_bytes(bytes(raw))
    code = ("import sys\nfrom golden.data.events import read_aedat4\ntry:\n    read_aedat4(sys.argv[1])\n"
            "except ValueError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, f"reader died with {result.returncode}: {result.stderr[-400:]}"
    assert "info node is not UTF-8 (byte offset 1383)" in result.stdout and not result.stderr


def packet_starts(raw: bytes) -> list[int]:
    """Byte offsets of the AEDAT4 packets, walked independently of the reader."""
    (header_len,) = struct.unpack_from("<I", raw, 14)
    offset, starts = 18 + header_len, []
    while len(starts) < 20:
        starts.append(offset)
        offset += 8 + struct.unpack_from("<I", raw, offset + 4)[0]
    return starts


@pytest.mark.parametrize("where", ["magic", "header", "packet", "data_table"])
def test_aedat4_truncated_names_byte_offset(davis_path, tmp_path, where):
    raw = davis_path.read_bytes()
    starts = packet_starts(raw)
    cut_at = {"magic": 6, "header": 200, "packet": starts[10] + 100, "data_table": len(raw) - 10}[where]
    cut = tmp_path / "cut.aedat4"
    cut.write_bytes(raw[:cut_at])
    with pytest.raises(ValueError, match=r"truncated AEDAT4 file.*byte offset") as info:
        read_aedat4(cut)
    if where == "packet":
        assert f"packet at byte offset {starts[10]}" in str(info.value)


def test_aedat4_rejects_other_files(nmnist_path):
    with pytest.raises(ValueError, match="not an AEDAT4 file"):
        read_aedat4(nmnist_path)


# --- input map and binning -------------------------------------------------------------------


@pytest.mark.parametrize("pool", [(1, 1), (2, 2), (4, 3)])
def test_nmnist_dense_counts_match_frame_reference(nmnist_path, pool):
    events = read_nmnist(nmnist_path).events
    input_map = InputMap((34, 34), pool)
    assert input_map.n_channels == 2 * -(-34 // pool[0]) * -(-34 // pool[1])
    counts = bin_events(input_map(events), input_map.n_channels, 10_000, t_start=0)
    expected = frames_reference(events, (34, 34), pool, 10_000, 0)
    assert counts.dtype == np.int64 and (counts >= 0).all()
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == NMNIST_EVENTS


def test_davis_dense_counts_match_frame_reference(davis_path):
    events = read_aedat4(davis_path).events
    input_map = InputMap((320, 240), (8, 8))
    counts = bin_events(input_map(events), input_map.n_channels, 50_000)
    expected = frames_reference(events, (320, 240), (8, 8), 50_000, events["t"][0])
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == DAVIS_EVENTS
    counts[3, 17] += 1  # one changed count is seen
    assert not np.array_equal(counts, expected)


def test_input_map_channel_order_and_polarity_merge():
    events = camera_events([0, 5, 5, 33], [0, 0, 7, 33], [0, 1, 2, 3], [0, 1, 1, 0])
    split = InputMap((34, 34), (2, 2))
    assert split(events)["channel"].tolist() == [0, 17 * 17 + 2, 17 * 17 + 3 * 17 + 2, 16 * 17 + 16]
    merged = InputMap((34, 34), (2, 2), split_polarity=False)
    assert merged.n_channels == 17 * 17
    assert merged(events)["channel"].tolist() == [0, 2, 3 * 17 + 2, 16 * 17 + 16]


def test_bin_events_sums_duplicates_and_windows():
    events = channel_events([1, 1, 1, 0, 2, 2], [0, 5, 9, 10, 25, 30])
    counts = bin_events(events, 3, 10, t_start=0)
    np.testing.assert_array_equal(counts, [[0, 3, 0], [1, 0, 0], [0, 0, 1], [0, 0, 1]])
    np.testing.assert_array_equal(bin_events(events, 3, 10, t_start=0, n_bins=2), counts[:2])
    np.testing.assert_array_equal(bin_events(events[::-1], 3, 10, t_start=0), counts)
    assert bin_events(channel_events([], []), 4, 10).shape == (0, 4)


def test_bad_inputs_raise_clear_errors():
    events = channel_events([0, 3], [5, 6])
    with pytest.raises(ValueError, match="channel index 3 out of range for n_channels=3"):
        bin_events(events, 3, 1)
    with pytest.raises(ValueError, match="before t_start=6"):
        bin_events(events, 4, 1, t_start=6)
    with pytest.raises(ValueError, match="bin_ticks must be positive"):
        bin_events(events, 4, 0)
    with pytest.raises(ValueError, match="needs channel events"):
        bin_events(camera_events([0], [0], [0], [0]), 4, 1)
    with pytest.raises(ValueError, match="pool must be two positive integers"):
        InputMap((34, 34), (0, 2))
    with pytest.raises(ValueError, match="polarity must be 0"):
        camera_events([0], [0], [0], [2])
    with pytest.raises(ValueError, match="channel indices must lie"):
        channel_events([-1], [0])
    assert CHANNEL_EVENT_DTYPE.names == ("channel", "t")


def test_missing_data_names_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"nowhere/events.*SPIKESTREAM_DATA"):
        data_path("events")


def test_data_env_override(shared_data, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(shared_data))
    assert read_nmnist(data_path("events", "nmnist_sample.bin")).events.size == NMNIST_EVENTS


# --- Event tables: strict reading -----------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("1,2,1,5\n3,4,0\n", "line 2 has 3 fields, expected 4"),
    ("1,2,1,5,9\n", "line 1 has 5 fields, expected 4"),
    ("1,2,1,5.5\n", r"line 1, column t: '5.5' is not an integer"),
    ("1,2,1,nan\n", "header must name columns x, y, t, p"),
    ("x,y,p,t\n1,2,1,nan\n", r"line 2, column t: 'nan' is not an integer"),
    ("x,y,p,t\n1,,1,5\n", "line 2, column y: an empty field is not an integer"),
    ("x,y,p,t\n1,2,3,5\n", "polarity must be 0"),
    ("x,y,p,t\n-1,2,1,5\n", "x coordinates must lie in 0..65535"),
    ("x,y,p,t\n1,2,1," + "9" * 30 + "\n", "is not an integer"),
])
def test_csv_tables_are_read_strictly(tmp_path, text, message):
    from golden.data.events import EventDataError, read_event_table

    path = tmp_path / "e.csv"
    path.write_text(text)
    with pytest.raises(EventDataError, match=message):
        read_event_table(path)


def test_empty_tables_are_empty_samples(tmp_path):
    from golden.data.events import read_event_table

    (tmp_path / "a.csv").write_text("")
    (tmp_path / "b.csv").write_text("x,y,p,t\n")
    np.save(tmp_path / "c.npy", np.zeros((0, 4), np.int64))
    for name in ("a.csv", "b.csv", "c.npy"):
        assert len(read_event_table(tmp_path / name)) == 0


@pytest.mark.parametrize("array, message", [
    (np.array([[1.0, 2.0, 1.0, 5.0]]), "must hold integers, not float64"),
    (np.array([[1, 2, 1, 5]], dtype=complex), "must hold integers, not complex128"),
    (np.zeros((3,), np.int64), r"N x 4 integer array \(x, y, p, t\); got shape \(3,\)"),
    (np.zeros((2, 5), np.int64), "got shape"),
    (np.zeros(2, dtype=[("x", "i8"), ("y", "i8"), ("t", "f8"), ("p", "i8")]), "field t must hold integers"),
    (np.zeros(2, dtype=[("x", "i8"), ("y", "i8"), ("t", "i8")]), "needs fields x, y, t, p"),
    (np.array([[1, 2, 1, 2**64 - 1]], dtype=np.uint64), "does not fit int64"),
])
def test_npy_tables_are_read_strictly(tmp_path, array, message):
    from golden.data.events import EventDataError, read_event_table

    np.save(tmp_path / "e.npy", array)
    with pytest.raises(EventDataError, match=message):
        read_event_table(tmp_path / "e.npy")


def test_npy_sizes_are_checked_from_the_header(tmp_path, monkeypatch):
    import golden.data.events as events

    np.save(tmp_path / "e.npy", np.zeros((10, 4), np.int64))
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "cut.npy").write_bytes((tmp_path / "e.npy").read_bytes()[:-8])
    monkeypatch.setattr(events, "MAX_EVENTS", 5)
    with pytest.raises(events.EventDataError, match="10 events, more than 5"):
        events.read_event_table(tmp_path / "e.npy")
    with pytest.raises(events.EventDataError, match="not a .npy file"):
        events.read_event_table(tmp_path / "empty.npy")
    monkeypatch.setattr(events, "MAX_EVENTS", 50)
    with pytest.raises(events.EventDataError, match="truncated or corrupted"):
        events.read_event_table(tmp_path / "cut.npy")


def test_channel_pool_sums_adjacent_channels():
    pool = ChannelPool(n_sources=12, pool=5)
    assert pool.n_channels == 3
    events = channel_events([0, 4, 5, 9, 10, 11], [0, 1, 2, 3, 4, 5])
    pooled = pool(events)
    assert pooled["channel"].tolist() == [0, 0, 1, 1, 2, 2] and pooled["t"].tolist() == list(range(6))
    with pytest.raises(EventDataError, match="event 1 has channel 12, outside the 12 source channels"):
        pool(channel_events([3, 12], [0, 1]))
    with pytest.raises(EventDataError, match="pool must be a positive integer"):
        ChannelPool(n_sources=12, pool=0)


def test_digitize_binning_reproduced_on_whole_ticks():
    """The authors' np.digitize bins equal bin_events shifted by one bin when the width is whole
    ticks (301 steps over 1.2 s: 4000 us), events on bin edges included; 300 steps cannot be."""
    rng = np.random.default_rng(0)
    t = np.concatenate([rng.integers(0, 1_200_000, 2000), np.arange(0, 1_200_001, 4000)])
    events = channel_events(rng.integers(0, 7, t.size), np.sort(t))
    width = digitize_bin_ticks(301, 1_200_000)
    assert width == 4000
    want = digitize_counts(events, 7, 301, 1_200_000)
    assert want[0].sum() == 0  # bin 0 always empty
    got = bin_events(events, 7, width, t_start=-width, n_bins=301)
    assert np.array_equal(got, want)
    with pytest.raises(EventDataError, match=r"1200000/299 = 4013.38 ticks wide, not a whole number of ticks"):
        digitize_bin_ticks(300, 1_200_000)


# --- tonic -----------------------------------------------------------------------------------


def test_tonic_reads_the_same_events(nmnist_path, davis_path):
    """read_nmnist decodes through tonic; tonic's own AEDAT4 reader gives read_aedat4's events."""
    tonic_io = pytest.importorskip("tonic.io")

    ours = read_nmnist(nmnist_path).events
    theirs = tonic_io.read_mnist_file(str(nmnist_path), dtype=tonic_io.events_struct)
    for name in ("x", "y", "t", "p"):
        np.testing.assert_array_equal(ours[name], theirs[name].astype(np.int64))
    davis = read_aedat4(davis_path).events
    np.testing.assert_array_equal(as_camera_events(tonic_io.read_aedat4(str(davis_path))), davis)


def test_tonic_dtypes_accepted_wherever_events_are(nmnist_path, tmp_path):
    """Arrays in tonic's dtypes go through the input map, the check, the network and the event
    files (.npy) exactly as the project's own dtype does; out-of-range values are refused."""
    tonic_io = pytest.importorskip("tonic.io")
    from golden.network import default_network, run_network
    from hw.host import load_events

    ours = read_nmnist(nmnist_path).events
    tonic_struct = tonic_io.read_mnist_file(str(nmnist_path), dtype=tonic_io.events_struct)
    dataset_dtype = np.dtype([("x", int), ("y", int), ("t", int), ("p", int)])  # tonic.datasets.NMNIST.dtype
    params = default_network()
    expected_counts = run_network(params, ours, 8).counts
    for theirs in (tonic_struct, tonic_struct.astype(dataset_dtype)):
        np.testing.assert_array_equal(as_camera_events(theirs), ours)
        assert check_camera_events(theirs, (34, 34)) == 0
        np.testing.assert_array_equal(params.input_map(theirs), params.input_map(ours))
        np.testing.assert_array_equal(run_network(params, theirs, 8).counts, expected_counts)
        path = tmp_path / f"{theirs.dtype['p'].kind}.npy"
        np.save(path, theirs)
        np.testing.assert_array_equal(read_event_table(path), ours)
        np.testing.assert_array_equal(load_events(path).x, ours["x"])
    bad = tonic_struct.copy()
    bad["x"][7] = -1
    with pytest.raises(ValueError, match=r"InputMap: x coordinates must lie in 0..65535"):
        params.input_map(bad)
    with pytest.raises(ValueError, match=r"camera events \(fields x, y, t, p\)"):
        run_network(params, np.zeros(3, dtype=[("x", int), ("t", int)]), 8)
