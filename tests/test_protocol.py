"""golden.protocol: frame vectors, round trips, every bad-input rule counted, fuzzing; and the host driver
(hw.host) on files, a stand-in board, a pty and the real N-MNIST sample."""

import binascii
import os
import random
import select
import threading

import numpy as np
import pytest

import struct

from golden.protocol import (
    COUNTER_MAX, COUNTER_NAMES, CRC, MAX_SCORES, PROTOCOL_VERSION, RESULT_PAYLOAD_LENGTHS,
    STATUS_COUNTER_NAMES, SYNC, TIMEOUT, Command,
    EndOfSample, Event, FrameDecoderModel, FrameParser, ReadStatus, Reset, Result, Scores,
    SensorGeometry, Spike, Status, crc16, decode_command, decode_frame, decode_result,
    encode_command, encode_end_of_sample, encode_event, encode_frame, encode_read_status,
    encode_reset, encode_scores, encode_spike, encode_status,
)
from golden.data.events import camera_events, channel_events
from golden.model_file import load_model, save_model
from golden.network import default_network, run_network
from hw import host
from hw.board_model import BoardModel
from sim.processor_model import random_network

GEOMETRY = SensorGeometry(34, 34, 2)


def run_model(items, fifo_depth=None):
    model = FrameDecoderModel(GEOMETRY, fifo_depth=fifo_depth)
    model.feed_bytes(items)
    return model.take(), {name: value for name, value in model.counters.items() if value}


# --- Checked-in vectors ---------------------------------------------------------------------------

def test_crc_is_crc16_ibm_3740():
    assert crc16(b"123456789") == 0x29B1  # the catalogue's check value
    assert CRC.residue() == 0


def test_result_frame_vectors():
    """SPIKE (layer 1, neuron 0x0203, step 5) and STATUS version 2 written out by hand."""
    spike = encode_spike(1, 0x0203, 5)
    assert spike.hex() == "a5 81 07 01 0203 00000005 06ad".replace(" ", "")
    assert int.from_bytes(spike[-2:], "big") == binascii.crc_hqx(spike[1:-2], 0xFFFF)
    counters = {name: i + 1 for i, name in enumerate(STATUS_COUNTER_NAMES)}
    body = bytes([Result.STATUS, 41, 2]) + b"".join((i + 1).to_bytes(4, "big") for i in range(10))
    assert encode_status(counters) == bytes([SYNC]) + body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "big")


def test_status_version_2_layout():
    """STATUS v2 keeps every v1 field at its offset and appends spikes_dropped (LEN 37 -> 41)."""
    assert PROTOCOL_VERSION == 2
    assert STATUS_COUNTER_NAMES == COUNTER_NAMES + ("spikes_dropped",)
    assert RESULT_PAYLOAD_LENGTHS[Result.STATUS] == 41
    counters = {name: 0x01000000 * (i + 1) + i for i, name in enumerate(STATUS_COUNTER_NAMES)}
    _, payload = decode_frame(encode_status(counters))
    v1 = struct.unpack(">B9I", payload[:37])  # a version 1 reader's view of the prefix
    assert v1 == (2, *(counters[name] for name in COUNTER_NAMES))
    assert int.from_bytes(payload[37:], "big") == counters["spikes_dropped"]
    status = decode_result(Result.STATUS, payload)
    assert status.counters == counters and status.version == 2
    # The link counters alone make a STATUS with spikes_dropped = 0 (the decoder model's counters).
    assert decode_result(*decode_frame(encode_status(dict.fromkeys(COUNTER_NAMES, 7)))).counters == {
        **dict.fromkeys(COUNTER_NAMES, 7), "spikes_dropped": 0}
    assert Status(dict.fromkeys(COUNTER_NAMES, 1)) == Status({**dict.fromkeys(COUNTER_NAMES, 1), "spikes_dropped": 0})
    assert Status(dict.fromkeys(COUNTER_NAMES, 1)) != Status({**dict.fromkeys(COUNTER_NAMES, 1), "spikes_dropped": 1})
    # A version 1 frame (37 bytes) is not a valid result any more.
    with pytest.raises(ValueError, match="not a valid result"):
        decode_result(Result.STATUS, payload[:37])


@pytest.mark.parametrize("frame, expected_hex", [
    (encode_event(1, 2, 1, 100), "a5 01 09 0001 0002 01 00000064 63a8"),
    (encode_end_of_sample(), "a5 02 00 7b6d"),
    (encode_reset(), "a5 03 00 485c"),
    (encode_read_status(), "a5 04 00 d1cb"),
])
def test_frame_vectors(frame, expected_hex):
    """Hand-checked frames: SYNC, CMD, LEN, big-endian payload, CRC-16 over CMD..payload."""
    assert frame.hex() == expected_hex.replace(" ", "")
    # An independent CRC-16/IBM-3740: the standard library's CRC-CCITT with initial value 0xFFFF.
    assert int.from_bytes(frame[-2:], "big") == binascii.crc_hqx(frame[1:-2], 0xFFFF)


# --- Round trips ----------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    Event(0, 0, 0, 0), Event(65535, 65535, 255, 2**32 - 1), Event(33, 1, 1, 123456),
    EndOfSample(), Reset(), ReadStatus(),
])
def test_command_round_trip(command):
    assert decode_command(*decode_frame(encode_command(command))) == command


@pytest.mark.parametrize("result, frame", [
    (Spike(0, 0, 0), encode_spike(0, 0, 0)),
    (Spike(255, 65535, 2**32 - 1), encode_spike(255, 65535, 2**32 - 1)),
    (Scores((-(2**31), 0, 2**31 - 1), 2), encode_scores([-(2**31), 0, 2**31 - 1], 2)),
    (Scores(tuple(range(MAX_SCORES)), 62), encode_scores(range(MAX_SCORES), 62)),
    (Status({name: i * 1000 for i, name in enumerate(COUNTER_NAMES)}),
     encode_status({name: i * 1000 for i, name in enumerate(COUNTER_NAMES)})),
])
def test_result_round_trip(result, frame):
    assert decode_result(*decode_frame(frame)) == result


@pytest.mark.parametrize("call, message", [
    (lambda: encode_event(65536, 0, 0, 0), "x"),
    (lambda: encode_event(0, -1, 0, 0), "y"),
    (lambda: encode_event(0, 0, 256, 0), "polarity"),
    (lambda: encode_event(0, 0, 0, 2**32), "timestamp"),
    (lambda: encode_scores([], 0), "1..63"),
    (lambda: encode_scores([2**31], 0), "signed 32-bit"),
    (lambda: encode_status({}), "missing"),
    (lambda: encode_status({**dict.fromkeys(COUNTER_NAMES, 0), "spikes_lost": 1}), "unknown"),
    (lambda: encode_status({**dict.fromkeys(COUNTER_NAMES, 0), "spikes_dropped": 2**32}), "spikes_dropped"),
    (lambda: encode_frame(256), "byte"),
    (lambda: encode_frame(1, bytes(256)), "255"),
    (lambda: decode_frame(b"\xa5\x01"), "at least 5"),
    (lambda: decode_frame(encode_reset()[:-1] + b"\x00"), "CRC"),
    (lambda: decode_command(0x7E, b""), "unknown"),
    (lambda: decode_command(Command.EVENT, b""), "payload"),
    (lambda: decode_result(Result.SPIKE, b""), "result"),
    (lambda: SensorGeometry(0, 1), "width"),
    (lambda: SensorGeometry(1, 1, 257), "n_polarities"),
    (lambda: FrameDecoderModel((34, 34)), "SensorGeometry"),
    (lambda: FrameParser({}).feed(256), "0..255"),
])
def test_bad_arguments_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- Every bad-input rule, counted ---------------------------------------------------------------

EV = encode_event(5, 6, 1, 1000)
GOOD = [Event(5, 6, 1, 1000)]


def test_good_stream_decodes_every_command():
    commands = [Reset(), Event(1, 2, 0, 5), Event(33, 33, 1, 5), ReadStatus(), EndOfSample()]
    assert run_model(b"".join(map(encode_command, commands))) == (commands, {"frames_ok": 5})


def test_bytes_outside_frames_are_skipped():
    assert run_model([0x00, 0x11, *EV, 0xFF]) == (GOOD, {"frames_ok": 1, "bytes_skipped": 3})


def test_bad_checksum_is_counted_and_the_next_frame_decodes():
    for position in range(1, len(EV)):  # any bit of CMD, LEN, payload or CRC
        corrupt = bytearray(encode_event(7, 8, 0, 2000))
        corrupt[position] ^= 0x04
        commands, counters = run_model([*corrupt, *EV])
        assert commands == GOOD, position
        assert counters["frames_ok"] == 1
        assert sum(counters.values()) - 1 - counters.get("bytes_skipped", 0) == 1, (position, counters)


def test_payload_bit_flip_is_a_bad_crc():
    corrupt = bytearray(EV)
    corrupt[6] ^= 0x10
    assert run_model([*corrupt, *EV]) == (GOOD, {"frames_ok": 1, "bad_crc": 1})


def test_truncated_frame_times_out():
    items = [*EV[:6], TIMEOUT, *EV, *encode_read_status()[:2], TIMEOUT, TIMEOUT]
    assert run_model(items) == (GOOD, {"frames_ok": 1, "truncated": 2})


def test_truncated_frame_without_gap_swallows_the_next_and_resyncs():
    # 6 bytes of a frame, then a whole frame: its first 8 bytes complete the first (bad CRC), its
    # last 6 are skipped, and the third frame decodes.
    items = [*EV[:6], *encode_event(1, 1, 1, 1100), *encode_event(2, 2, 0, 1200)]
    assert run_model(items) == ([Event(2, 2, 0, 1200)], {"frames_ok": 1, "bad_crc": 1, "bytes_skipped": 6})


def test_unknown_command_is_skipped_whole():
    items = [*encode_frame(0x7E, b"abc"), *encode_frame(0x40), *encode_frame(0x7F, bytes(32)), *EV]
    assert run_model(items) == (GOOD, {"frames_ok": 1, "unknown_command": 3})


def test_bad_length_abandons_the_frame_at_its_length_byte():
    assert run_model([*encode_frame(0x7E, bytes(33)), *EV]) == (
        GOOD, {"frames_ok": 1, "bad_length": 1, "bytes_skipped": 33 + 2})
    assert run_model([*encode_frame(Command.RESET, b"\x00")[:3], *EV]) == (GOOD, {"frames_ok": 1, "bad_length": 1})
    assert run_model([*encode_frame(Command.EVENT, bytes(8))[:3], *EV]) == (GOOD, {"frames_ok": 1, "bad_length": 1})


def test_out_of_range_addresses_are_dropped():
    items = [*encode_event(34, 0, 0, 1), *encode_event(0, 34, 0, 1), *encode_event(0, 0, 2, 1),
             *encode_event(65535, 65535, 255, 1), *encode_event(33, 33, 1, 1)]
    assert run_model(items) == ([Event(33, 33, 1, 1)], {"frames_ok": 1, "address_out_of_range": 4})


def test_out_of_range_event_does_not_advance_time():
    items = [*encode_event(99, 0, 0, 500), *encode_event(1, 1, 0, 10)]
    assert run_model(items) == ([Event(1, 1, 0, 10)], {"frames_ok": 1, "address_out_of_range": 1})


def test_timestamps_going_backwards_are_dropped_and_samples_restart_at_zero():
    times = [10, 20, 15, 20, 19]
    items = [byte for t in times for byte in encode_event(1, 1, 0, t)]
    items += [*encode_end_of_sample(), *encode_event(1, 1, 0, 0), *encode_event(1, 1, 0, 7),
              *encode_reset(), *encode_event(1, 1, 0, 3)]
    commands, counters = run_model(items)
    assert [c.timestamp for c in commands if isinstance(c, Event)] == [10, 20, 20, 0, 7, 3]
    assert counters == {"frames_ok": 8, "timestamp_backwards": 2}


def test_full_fifo_drops_and_counts_but_keeps_time():
    items = [*encode_event(1, 1, 0, 10), *encode_event(1, 1, 0, 20), *encode_event(1, 1, 0, 30),
             *encode_read_status()]
    model = FrameDecoderModel(GEOMETRY, fifo_depth=2)
    model.feed_bytes(items)
    assert model.take() == [Event(1, 1, 0, 10), Event(1, 1, 0, 20)]
    assert model.counters["fifo_overflow"] == 2 and model.last_timestamp == 30
    model.feed_bytes(encode_event(1, 1, 0, 25))  # 30 was accepted before the FIFO dropped it
    assert model.take() == [] and model.counters["timestamp_backwards"] == 1


def test_counters_saturate():
    model = FrameDecoderModel(GEOMETRY)
    model.parser.counters["bytes_skipped"] = COUNTER_MAX - 1
    model.feed_bytes([0, 0, 0])
    assert model.counters["bytes_skipped"] == COUNTER_MAX


# --- Fuzzing --------------------------------------------------------------------------------------

def _random_frames(rng, n):
    t, frames, commands = 0, [], []
    for _ in range(n):
        t += rng.randrange(100)
        command = Event(rng.randrange(34), rng.randrange(34), rng.randrange(2), t)
        frames.append(encode_command(command))
        commands.append(command)
    return frames, commands


@pytest.mark.parametrize("seed", range(20))
def test_random_garbage_never_crashes_and_resyncs(seed):
    rng = random.Random(seed)
    model = FrameDecoderModel(GEOMETRY)
    garbage = [rng.choice([SYNC, 1, 2, 3, 4, 9, 0, rng.randrange(256)]) for _ in range(rng.randrange(2000))]
    model.feed_bytes(garbage)
    model.take()
    # After a gap, good frames always decode (the timestamp order restarts with RESET).
    frames, commands = _random_frames(rng, 10)
    model.feed_bytes([TIMEOUT, *encode_reset(), *b"".join(frames)])
    assert model.take() == [Reset(), *commands]


@pytest.mark.parametrize("seed", range(10))
def test_every_started_frame_ends_in_exactly_one_outcome(seed):
    rng = random.Random(seed)
    frames, _ = _random_frames(rng, 40)
    items = []
    for frame in frames:
        frame = bytearray(frame)
        roll = rng.random()
        if roll < 0.2:
            frame[rng.randrange(len(frame))] = rng.randrange(256)
        elif roll < 0.3:
            frame = frame[: rng.randrange(1, len(frame))] + bytes([0xEE])
            items.append(TIMEOUT)
        items += list(frame)
        if rng.random() < 0.1:
            items.append(TIMEOUT)
    model = FrameDecoderModel(GEOMETRY, fifo_depth=rng.choice([None, 5]))
    started = 0
    for item in [*items, TIMEOUT]:
        before = model.parser.in_frame
        model.feed_bytes([item])
        started += item is not TIMEOUT and item == SYNC and not before and model.parser.in_frame
    outcomes = {name: value for name, value in model.counters.items() if name != "bytes_skipped"}
    assert sum(outcomes.values()) == started


def test_result_parser_skips_garbage_between_frames():
    parser = FrameParser(RESULT_PAYLOAD_LENGTHS)
    data = [0x00, *encode_spike(1, 2, 3), 0x42, *encode_scores([1, -2], 0),
            *encode_status({name: 1 for name in COUNTER_NAMES})]
    results = [decode_result(*frame) for frame in map(parser.feed, data) if frame is not None]
    assert results == [Spike(1, 2, 3), Scores((1, -2), 0), Status({name: 1 for name in COUNTER_NAMES})]
    assert parser.counters["bytes_skipped"] == 2


# --- Host driver ------------------------------------------------------------------------------------

CSV_EVENTS = "x,y,p,t\n1,2,1,1005\n3,3,0,1010\n33,0,1,1010\n"


def test_load_events_csv_and_npy_agree(tmp_path):
    (tmp_path / "a.csv").write_text(CSV_EVENTS)
    (tmp_path / "b.csv").write_text("1,2,1,1005\n3,3,0,1010\n33,0,1,1010\n")
    np.save(tmp_path / "c.npy", np.array([[1, 2, 1, 1005], [3, 3, 0, 1010], [33, 0, 1, 1010]]))
    structured = np.zeros(3, dtype=[("x", "u2"), ("y", "u2"), ("t", "i8"), ("p", "i1")])
    structured["x"], structured["y"], structured["t"], structured["p"] = [1, 3, 33], [2, 3, 0], [1005, 1010, 1010], [1, 0, 1]
    np.save(tmp_path / "d.npy", structured)
    for name in ("a.csv", "b.csv", "c.npy", "d.npy"):
        events = host.load_events(tmp_path / name)
        assert events.x.tolist() == [1, 3, 33] and events.y.tolist() == [2, 3, 0], name
        assert events.polarity.tolist() == [1, 0, 1] and events.timestamp.tolist() == [0, 5, 5], name
    assert host.load_events(tmp_path / "a.csv", tick_us=2, keep_time=True).timestamp.tolist() == [502, 505, 505]


def test_load_events_rejects_bad_files(tmp_path):
    (tmp_path / "e.txt").write_text("")
    (tmp_path / "f.csv").write_text("x,y,q,t\n1,2,1,5\n")
    (tmp_path / "g.csv").write_text(f"x,y,p,t\n1,2,1,{2**32}\n")
    with pytest.raises(ValueError, match="unknown event file type"):
        host.load_events(tmp_path / "e.txt")
    with pytest.raises(ValueError, match="x, y, t, p"):
        host.load_events(tmp_path / "f.csv")
    with pytest.raises(ValueError, match="--tick-us"):
        host.load_events(tmp_path / "g.csv", keep_time=True)


def test_sample_frames_decode_to_the_sample(tmp_path):
    (tmp_path / "a.csv").write_text(CSV_EVENTS)
    frames = host.sample_frames(host.load_events(tmp_path / "a.csv"), reset=True)
    model = FrameDecoderModel(GEOMETRY)
    model.feed_bytes(frames)
    assert model.take() == [Reset(), Event(1, 2, 1, 0), Event(3, 3, 0, 5), Event(33, 0, 1, 5), EndOfSample(), ReadStatus()]


def test_dry_run_writes_the_byte_stream(tmp_path, capsys):
    (tmp_path / "a.csv").write_text(CSV_EVENTS)
    out = tmp_path / "frames.bin"
    assert host.main(["--dry-run", str(out), "--events", str(tmp_path / "a.csv")]) == 0
    assert out.read_bytes() == host.sample_frames(host.load_events(tmp_path / "a.csv"))
    assert "3 events" in capsys.readouterr().out


def default_model(tmp_path):
    """The embedded default network (34 x 34 camera input, 32 steps of 10 ms) as a model file."""
    path = tmp_path / "default.safetensors"
    if not path.exists():
        save_model(path, default_network())
    return path


def spiking_model(tmp_path):
    """A small channel-input network that spikes often (12 inputs, two hidden layers, 6 steps of 50 ticks)."""
    path = tmp_path / "spiking.safetensors"
    params = random_network(3, hidden=(("refractory_lif", 9), ("lif", 7)))
    params.provenance["n_steps"] = 6
    save_model(path, params)
    return path


def test_loopback_answers_with_the_models_golden_network(tmp_path, capsys):
    (tmp_path / "a.csv").write_text(CSV_EVENTS + "40,0,0,1020\n")  # x = 40 is outside 34 x 34
    params = default_network()
    assert host.main(["--loopback", "--model", str(default_model(tmp_path)), "--events", str(tmp_path / "a.csv")]) == 0
    captured = capsys.readouterr()
    events = camera_events([1, 3, 33], [2, 3, 0], [0, 5, 5], [1, 0, 1])
    scores = run_network(params, events, 32).scores.tolist()
    assert f"scores {scores}" in captured.out
    assert "frames_ok=5" in captured.out and "address_out_of_range=1" in captured.out
    assert "1 of 4 events lie outside the model's input (34 x 34 x 2) and will be dropped" in captured.err


def test_loopback_spikes_csv_and_per_layer_counts(tmp_path, capsys):
    """SPIKE frames of the chosen layers: the golden network's spikes, counted per layer, written per sample."""
    rng = np.random.default_rng(0)
    rows = sorted(zip(rng.integers(0, 300, 60).tolist(), rng.integers(0, 12, 60).tolist()))
    (tmp_path / "a.csv").write_text("x,y,p,t\n" + "".join(f"{c},0,0,{t}\n" for t, c in rows))
    (tmp_path / "b.csv").write_text("x,y,p,t\n5,0,0,0\n7,0,0,3\n")
    out = tmp_path / "spikes.csv"
    model = spiking_model(tmp_path)
    assert host.main(["--loopback", "--model", str(model), "--spike-layers", "all", "--spikes-csv", str(out),
                      "--events", str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]) == 0
    printed = capsys.readouterr().out
    params = load_model(model)
    trace = run_network(params, channel_events([c for _, c in rows], [t - rows[0][0] for t, _ in rows]), 6)
    want = [f"{tmp_path / 'a.csv'},0,{layer},{n},{k}" for layer in (0, 1)
            for k, n in zip(*np.nonzero(trace.layers[layer].spikes.numpy()))]
    assert len(want) > 20
    n0, n1 = (int(trace.layers[i].spikes.sum()) for i in (0, 1))
    assert f"{n0 + n1} spikes received (layer 0: {n0}, layer 1: {n1})" in printed
    assert "spikes_dropped=0" in printed and "dropped on the board" not in printed
    lines = out.read_text().splitlines()
    assert lines[0] == "file,sample,layer,neuron,time" and lines[1:len(want) + 1] == want
    assert all(line.startswith(f"{tmp_path / 'b.csv'},1,") for line in lines[len(want) + 1:])


def test_spike_results_collected_and_drops_reported():
    """run_sample keeps every SPIKE before SCORES; format_result shows per-layer counts and the drop delta."""

    class Board:
        def __init__(self, reply):
            self.reply = reply

        def write(self, data):
            pass

        def read(self, timeout):
            reply, self.reply = self.reply, b""
            return reply

    counters = {**dict.fromkeys(COUNTER_NAMES, 0), "frames_ok": 3, "spikes_dropped": 9}
    reply = (encode_spike(0, 4, 0) + encode_spike(1, 2, 0) + encode_spike(0, 1, 3) + encode_scores([5, 6], 1)
             + encode_status(counters))
    result = host.run_sample(Board(reply), b"", timeout=1.0)
    assert result.spikes == [Spike(0, 4, 0), Spike(1, 2, 0), Spike(0, 1, 3)]
    assert host.spikes_per_layer(result.spikes) == {0: 2, 1: 1}
    text = host.format_result("s.bin", 7, result, show_spikes=True, dropped_before=4)
    assert "3 spikes received (layer 0: 2, layer 1: 1)" in text and "spike layer 1 neuron 2 t 0" in text
    assert "spikes_dropped=9" in text and "5 spikes dropped on the board during this sample" in text
    assert "dropped on the board" not in host.format_result("s.bin", 7, result, show_spikes=False)


def test_silent_board_times_out(tmp_path):
    transport = host.FileTransport(tmp_path / "sink.bin")
    with pytest.raises(TimeoutError, match="SCORES and STATUS"):
        host.run_sample(transport, host.encode_end_of_sample(), timeout=0.05)
    transport.close()


def test_serial_transport_over_a_pty(tmp_path, capsys):
    """The termios path end to end: the driver on a pty, a stand-in board on its master side."""
    (tmp_path / "a.csv").write_text(CSV_EVENTS)
    master, slave = os.openpty()
    board = host.LoopbackTransport(BoardModel(default_network(), 32))
    done = threading.Event()

    def serve():
        while not done.is_set():
            if select.select([master], [], [], 0.02)[0]:
                board.write(os.read(master, 4096))
                reply = board.read(0)
                if reply:
                    os.write(master, reply)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        assert host.main(["--port", os.ttyname(slave), "--timeout", "5", "--events", str(tmp_path / "a.csv")]) == 0
    finally:
        done.set()
        server.join()
        os.close(master)
        os.close(slave)
    assert "frames_ok=5" in capsys.readouterr().out


def test_real_nmnist_sample_over_loopback(shared_data):
    events = host.load_events(shared_data / "events" / "nmnist_sample.bin")
    params = default_network()
    board = host.LoopbackTransport(BoardModel(params, 32))
    result = host.run_sample(board, host.sample_frames(events), timeout=1.0)
    assert len(events) == 4325
    assert result.status.counters["frames_ok"] == len(events) + 2
    inside = events.timestamp < 32 * params.bin_ticks
    trace = run_network(params, camera_events(events.x[inside], events.y[inside], events.timestamp[inside],
                                              events.polarity[inside]), 32)
    assert list(result.scores.scores) == trace.scores.tolist() and result.scores.argmax == int(trace.prediction)
    assert not result.link_errors


# --- Serial port errors and output refusals ---------------------------------------------------
def test_serial_port_errors_are_one_line_with_what_to_try(tmp_path, capsys):
    import errno

    (tmp_path / "a.csv").write_text(CSV_EVENTS)
    assert host.main(["--port", str(tmp_path / "ttyNONE"), "--events", str(tmp_path / "a.csv")]) == 2
    assert "no such serial port; is the board plugged in?" in capsys.readouterr().err
    with pytest.raises(host.SerialPortError, match="not a serial port"):
        host.SerialTransport("/dev/null", 1_000_000)
    master, slave = os.openpty()
    try:
        first = host.SerialTransport(os.ttyname(slave), 1_000_000)
        with pytest.raises(host.SerialPortError, match="busy: another program"):
            host.SerialTransport(os.ttyname(slave), 1_000_000)
        first.close()
    finally:
        os.close(master)
        os.close(slave)
    assert "dialout" in str(host._serial_error("/dev/ttyUSB0", 1, OSError(errno.EACCES, "Permission denied")))
    assert "baud 7 is not supported" in str(host._serial_error("/dev/ttyUSB0", 7, ValueError("Not a valid baudrate")))


@pytest.mark.parametrize("argv, message", [
    (["--baud", "0"], "argument --baud: must be a baud rate in 300..12000000, not 0"),
    (["--steps", "70000"], "argument --steps: must be a step count in 1..65535, not 70000"),
    (["--lanes", "0"], "argument --lanes: must be a lane count in 1..256, not 0"),
    (["--clock-mhz", "inf"], "argument --clock-mhz: expected a finite number"),
    (["--tick-us", "-1"], "argument --tick-us: must be at least 1, not -1"),
    (["--timeout", "nan"], "argument --timeout: expected a finite number"),
])
def test_host_arguments_are_checked_when_parsed(tmp_path, usage_error, argv, message):
    (tmp_path / "a.csv").write_text(CSV_EVENTS)
    argv = ["--loopback", "--model", str(default_model(tmp_path)), "--events", str(tmp_path / "a.csv"), *argv]
    assert message in usage_error(host.main, argv)


def test_host_never_overwrites_an_input_or_an_existing_file(tmp_path, usage_error):
    events = tmp_path / "a.csv"
    events.write_text(CSV_EVENTS)
    model = default_model(tmp_path)
    for argv in (["--dry-run", str(events)], ["--loopback", "--model", str(model), "--spikes-csv", str(events)],
                 ["--golden", "--model", str(model), "--spikes-csv", str(model)],
                 ["--dry-run", str(tmp_path / "f.bin"), "--spikes-csv", str(tmp_path / "f.bin")]):
        assert "writing it would destroy the input" in usage_error(host.main, [*argv, "--force", "--events", str(events)])
    assert events.read_text() == CSV_EVENTS
    out = tmp_path / "frames.bin"
    out.write_bytes(b"mine")
    assert "exists; pass --force" in usage_error(host.main, ["--dry-run", str(out), "--events", str(events)])
    assert out.read_bytes() == b"mine"
    assert host.main(["--dry-run", str(out), "--force", "--events", str(events)]) == 0
    assert out.read_bytes() == host.sample_frames(host.load_events(events))
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
