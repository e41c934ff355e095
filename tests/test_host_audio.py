"""hw.host from audio: --golden and --loopback against golden.network.run_network on real FSDD recordings,
the board model's drop rules, the warnings for input a model cannot take, --check over a pty, bad arguments."""

import json
import os
import select
import threading
from dataclasses import replace

import numpy as np
import pytest
from scipy.io import wavfile

from golden.data.cochlea import CochleaParams
from golden.data.events import channel_events
from golden.data.fsdd import read_wav
from golden.model_file import load_model, save_model
from golden.network import default_network, run_network
from hw import host
from hw.board_model import BoardModel, admit_events, estimate_cycles, model_steps
from sim.processor_model import mixed_format_network, random_network

MODEL = host.Path(__file__).resolve().parent.parent / "models" / "fsdd_silif.safetensors"
RECORDINGS = ("3_theo_0.wav", "7_george_2.wav", "0_jackson_1.wav", "9_yweweler_4.wav")


def run_json(capsys, argv):
    """``hw.host`` with ``--json``: exit status, the document, stderr."""
    status = host.main([*argv, "--json"])
    captured = capsys.readouterr()
    return status, json.loads(captured.out), captured.err


def golden_answer(params, path):
    """Decision and scores of the model's integer network on a recording, computed without hw.host."""
    events = CochleaParams().encode(read_wav(path))
    n_steps = model_steps(params)
    events = events[events["t"] < n_steps * params.bin_ticks]
    trace = run_network(params, events, n_steps)
    return int(trace.prediction), trace.scores.tolist()


@pytest.fixture(scope="module")
def fsdd(shared_data):
    folder = shared_data / "fsdd" / "recordings"
    if not folder.is_dir():
        pytest.skip(f"FSDD recordings not found in {folder}")
    return [folder / name for name in RECORDINGS]


def test_golden_audio_gives_the_decisions_of_run_network(fsdd, capsys):
    params = load_model(MODEL)
    status, doc, err = run_json(capsys, ["--golden", "--model", str(MODEL), "--audio", *map(str, fsdd)])
    assert status == 0 and doc["warnings"] == [] and "warning" not in err
    for path, sample in zip(fsdd, doc["samples"]):
        decision, scores = golden_answer(params, path)
        assert sample["decision"] == decision and sample["scores"] == scores, path.name
        assert sample["label"] == int(path.name[0])
        assert sample["status"]["frames_ok"] > 0 and sample["times"]["line_how"] == "estimated"
        assert sample["times"]["board_cycles"] > 0
    assert doc["labelled"] == len(fsdd)


def test_loopback_audio_goes_through_the_link_and_equals_golden(fsdd, capsys):
    argv = ["--model", str(MODEL), "--spike-layers", "all", "--audio", *map(str, fsdd[:2])]
    _, golden, _ = run_json(capsys, ["--golden", *argv])
    _, loopback, _ = run_json(capsys, ["--loopback", *argv])
    for a, b in zip(golden["samples"], loopback["samples"]):
        assert a["decision"] == b["decision"] and a["scores"] == b["scores"]
        assert a["spikes_per_layer"] == b["spikes_per_layer"] and sum(b["spikes_per_layer"].values()) > 0
        assert a["status"] == b["status"] and b["link_errors"] is None
    host.main(["--golden", *argv])
    text = capsys.readouterr().out
    assert f"class {golden['samples'][0]['decision']} (file name: 3)" in text
    assert "board" in text and "estimated: cycle model" in text and "2 of 2 decisions" in text


# --- The board's drop rules and the warnings ------------------------------------------------------

def test_admit_events_follows_the_link_and_time_bin_rules():
    params = random_network(0, n_inputs=4, bin_ticks=10, max_events_per_step=2)
    #            x  y  p   t
    events = [(0, 0, 0, 0), (9, 0, 0, 1),   # outside the 4 x 1 x 1 input: dropped, time not advanced
              (1, 0, 0, 0), (2, 0, 0, 0),   # step 0 full (2 events)
              (3, 0, 0, 5),                 # a third event in step 0: over the bound
              (1, 0, 0, 3),                 # earlier than t = 5: backwards
              (2, 0, 0, 12), (0, 0, 0, 30)]  # step 1; t = 30 after 3 steps of 10: late
    keep, drops = admit_events(params, 3, *np.array(events).T)
    assert keep.tolist() == [True, False, True, False, False, False, True, False]
    assert (drops.out_of_range, drops.backwards, drops.late, drops.over_bound) == (1, 1, 1, 2)


def noise_wav(path, seconds=2.0, rate=16000, channels=2):
    rng = np.random.default_rng(1)
    samples = (rng.normal(0, 3000, (int(seconds * rate), channels))).astype(np.int16)
    wavfile.write(path, rate, samples if channels > 1 else samples[:, 0])
    return path


def test_warnings_say_what_will_be_dropped_before_sending(tmp_path, capsys):
    wav = noise_wav(tmp_path / "noise.wav")
    params = random_network(2, n_inputs=12, bin_ticks=20_000, max_events_per_step=5)
    params.provenance["n_steps"] = 40
    model = tmp_path / "small.safetensors"
    save_model(model, params)
    out = tmp_path / "frames.bin"
    assert host.main(["--dry-run", str(out), "--model", str(model), "--audio", str(wav)]) == 0
    err = capsys.readouterr().err
    sample = host.load_audio(wav, CochleaParams())
    keep, drops = admit_events(params, 40, sample.x, sample.y, sample.polarity, sample.timestamp)
    assert drops.out_of_range and drops.late and drops.over_bound
    assert (f"the input has 32 channels, the model takes 12: {drops.out_of_range} of {len(sample)} events lie "
            "outside it and will be dropped (address_out_of_range)") in err
    assert f"{drops.late} of {len(sample)} events lie after the model's window (40 steps of 20000 ticks = 800 ms)" in err
    assert f"{drops.over_bound} events exceed the model's 5 events per step and will be dropped" in err
    assert out.read_bytes() == host.sample_frames(sample)  # warned, then sent unchanged: the board drops them


def test_audio_is_resampled_and_mixed_down(tmp_path):
    stereo = noise_wav(tmp_path / "s.wav", seconds=0.5, rate=16000, channels=2)
    sample = host.load_audio(stereo, CochleaParams())
    assert sample.note == "channels averaged, resampled from 16000 Hz to 8000 Hz"
    assert sample.sensor_size == (32, 1) and len(sample) > 0 and sample.timestamp.max() < 500_000
    assert not sample.y.any() and not sample.polarity.any()


@pytest.mark.parametrize("argv, message", [
    (["--golden", "--events", "{csv}"], "--golden needs --model"),
    (["--port", "/dev/null", "--audio", "{wav}"], "--audio needs --model"),
    (["--golden", "--check", "--model", "{model}", "--audio", "{wav}"], "--check compares a board with the golden "
                                                                         "model: it needs --port"),
    (["--dry-run", "{out}", "--spike-layers", "all", "--model", "{model}", "--audio", "{wav}"],
     "--spike-layers chooses what the stand-in board sends: it needs --golden or --loopback"),
    (["--golden", "--spike-layers", "5", "--model", "{model}", "--audio", "{wav}"],
     "spike_layers: 5 is not a hidden layer index"),
    (["--golden", "--lanes", "4", "--cores", "3", "--model", "{model}", "--audio", "{wav}"],
     "--cores 3 must divide --lanes 4"),
    (["--golden", "--model", "{model}", "--audio", "{text}"], "not a readable WAV file"),
    (["--golden", "--model", "{camera}", "--audio", "{wav}"], "this model takes camera events (34 x 34 sensor), "
                                                              "not audio; use --events"),
    (["--golden", "--model", "{text}", "--audio", "{wav}"], "not a model file"),
])
def test_bad_arguments_are_one_line(tmp_path, usage_error, argv, message):
    files = {"wav": noise_wav(tmp_path / "a.wav", seconds=0.1, channels=1), "model": MODEL,
             "text": tmp_path / "t.wav", "camera": tmp_path / "camera.safetensors", "out": tmp_path / "o.bin",
             "csv": tmp_path / "e.csv"}
    files["text"].write_text("not audio\n")
    files["csv"].write_text("x,y,p,t\n1,0,0,0\n")
    save_model(files["camera"], default_network())
    line = usage_error(host.main, [part.format(**files) for part in argv])
    assert message in line and line.startswith("python -m hw.host: error:")


# --- --check with a board on a pty ------------------------------------------------------------------

def serve(board: BoardModel, master: int, done: threading.Event):
    while not done.is_set():
        if select.select([master], [], [], 0.02)[0]:
            reply = board.feed(os.read(master, 4096))
            if reply:
                os.write(master, reply)


@pytest.mark.parametrize("board_seed, agree", [(3, True), (4, False)])
def test_check_reports_whether_the_board_equals_the_golden_model(tmp_path, capsys, board_seed, agree):
    params = random_network(3, hidden=(("refractory_lif", 9), ("lif", 7)))
    params.provenance["n_steps"] = 6
    model = tmp_path / "m.safetensors"
    save_model(model, params)
    rng = np.random.default_rng(0)
    rows = sorted(zip(rng.integers(0, 300, 60).tolist(), rng.integers(0, 12, 60).tolist()))
    (tmp_path / "a.csv").write_text("x,y,p,t\n" + "".join(f"{c},0,0,{t}\n" for t, c in rows))
    board_params = random_network(board_seed, hidden=(("refractory_lif", 9), ("lif", 7)))
    board = BoardModel(board_params, 6, "all")  # the board on the pty: right network, or another one
    master, slave = os.openpty()
    done = threading.Event()
    server = threading.Thread(target=serve, args=(board, master, done), daemon=True)
    server.start()
    try:
        status = host.main(["--port", os.ttyname(slave), "--check", "--model", str(model),
                            "--events", str(tmp_path / "a.csv")])
    finally:
        done.set()
        server.join()
        os.close(master)
        os.close(slave)
    out = capsys.readouterr().out
    if agree:
        assert status == 0 and "check: the board equals the golden model (decision, scores, spikes)" in out
        assert "(measured, first byte sent to STATUS received)" in out
    else:
        assert status == 1 and "check: " in out and "scores differ" in out


@pytest.mark.parametrize("network", ["plain", "row_scale"])
def test_board_time_estimate_follows_the_simulated_processor(network):
    """estimate_cycles against NetworkProcessor in amaranth.sim, first input beat to SCORES, on a
    network without and with a per-row scale (whose drain costs 5 more cycles per step).

    On a network this small the layers' overlap, which the model ignores, is a large share:
    the estimate is about 30 % high (on the FSDD networks within a few %, bench.cycle_model).
    """
    from hw.processor.cycles import simulated_cycles

    if network == "plain":
        params = random_network(3, hidden=(("refractory_lif", 9), ("lif", 7)), max_events_per_step=40)
    else:
        params = mixed_format_network(3, max_events_per_step=40)
        assert params.layers[0].scaled
    rng = np.random.default_rng(0)
    events = channel_events(rng.integers(0, 12, 80), np.sort(rng.integers(0, 300, 80)))
    trace = run_network(params, events, 6)
    assert trace.layers[0].spikes.sum() > 10
    simulated = simulated_cycles(params, events, 6, lanes=1)
    estimate = estimate_cycles(params, trace, lanes=1)
    assert simulated * 0.9 < estimate < simulated * 1.4, (estimate, simulated)


def test_board_time_estimate_of_a_batch_and_of_a_row_scale():
    """A batch's estimate is the mean of its samples' (rounded); a per-row scale adds its drain's
    extra stages once per step (hw.processor.synapse.drain_extra_stages), the same trace
    without it does not."""
    params = mixed_format_network(4, max_events_per_step=40)
    counts = np.random.default_rng(1).integers(0, 2, (3, 6, params.n_inputs))
    each = [estimate_cycles(params, run_network(params, sample)) for sample in counts]
    batch = run_network(params, counts)
    assert estimate_cycles(params, batch) == round(np.mean(each))
    first = params.layers[0]
    unscaled = replace(params, layers=[replace(first, row_scale_q=None, row_scale_fmt=None), *params.layers[1:]])
    # The scaled layer 0 shifts right (6 extra stages), unscaled it shifts left (1); layer 1 shifts
    # right (2): 6 - 2 more per step.
    assert params.layers[0].current_shift > 0 and unscaled.layers[0].current_shift < 0
    assert params.layers[1].current_shift == 1
    assert estimate_cycles(params, batch) - estimate_cycles(unscaled, batch) == (6 - 2) * 6
