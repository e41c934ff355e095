"""FSDD listing and split, and the cochlea audio-to-spikes encoder, on real recordings."""

import resource
import time
from collections import Counter

import numpy as np
import pytest
from scipy.io import wavfile

from bench.encode_fsdd import linear_probe_accuracy
from golden.data.cochlea import CochleaParams, encode_fsdd, erb_number
from golden.data.events import CHANNEL_EVENT_DTYPE, bin_events
from golden.data.fsdd import FSDD_SAMPLE_RATE, list_fsdd, load_fsdd, parse_name, read_wav

SPEAKERS = {"george", "jackson", "nicolas", "theo", "yweweler"}
FEW = ["0_george_0.wav", "3_jackson_7.wav", "5_nicolas_2.wav", "7_theo_30.wav", "9_yweweler_49.wav"]


@pytest.fixture(scope="module")
def fsdd_root(shared_data):
    return shared_data / "fsdd"


@pytest.fixture(scope="module")
def few_root(fsdd_root, tmp_path_factory):
    """A small FSDD folder of links to five real recordings (nothing copied)."""
    root = tmp_path_factory.mktemp("fsdd_few")
    (root / "recordings").mkdir()
    for name in FEW:
        (root / "recordings" / name).symlink_to(fsdd_root / "recordings" / name)
    return root


# --- listing and split -----------------------------------------------------------------------


def test_official_split(fsdd_root):
    everything, train, test = (list_fsdd(s, fsdd_root) for s in ("all", "train", "test"))
    assert (len(everything), len(train), len(test)) == (2500, 2250, 250)
    assert {f.index for f in test} == set(range(5)) and {f.index for f in train} == set(range(5, 50))
    assert {f.name for f in train}.isdisjoint(f.name for f in test)
    assert {f.speaker for f in everything} == SPEAKERS
    assert set(Counter((f.speaker, f.digit) for f in everything).values()) == {50}
    assert set(Counter(f.digit for f in test).values()) == {25}


def test_load_reads_int16_at_8khz(few_root):
    clips = load_fsdd("test", few_root)
    assert [c.file.name for c in clips] == ["0_george_0.wav", "5_nicolas_2.wav"]
    assert all(c.samples.dtype == np.int16 and c.samples.ndim == 1 for c in clips)
    assert [c.digit for c in clips] == [0, 5]


def test_bad_names_splits_and_files_raise(tmp_path):
    with pytest.raises(ValueError, match="not an FSDD recording name"):
        parse_name("george_0_1.wav")
    with pytest.raises(ValueError, match="split must be one of"):
        list_fsdd("validation", tmp_path)
    with pytest.raises(FileNotFoundError, match="no FSDD recordings"):
        list_fsdd("all", tmp_path)
    wavfile.write(tmp_path / "fast.wav", 16000, np.zeros(100, np.int16))
    with pytest.raises(ValueError, match="expected mono 16-bit PCM at 8000 Hz; got 16000 Hz"):
        read_wav(tmp_path / "fast.wav")
    wavfile.write(tmp_path / "stereo.wav", FSDD_SAMPLE_RATE, np.zeros((100, 2), np.int16))
    with pytest.raises(ValueError, match="shape"):
        read_wav(tmp_path / "stereo.wav")


# --- cochlea ---------------------------------------------------------------------------------


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="f_high_hz < sample_rate/2"):
        CochleaParams(f_high_hz=4000.0)
    with pytest.raises(ValueError, match="whole number of samples"):
        CochleaParams(tick_us=100)
    with pytest.raises(ValueError, match="leak must lie"):
        CochleaParams(leak=1.0)
    with pytest.raises(ValueError, match="n_channels"):
        CochleaParams(n_channels=0)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        CochleaParams().encode(np.zeros((2, 8)))


def test_channels_are_erb_spaced():
    params = CochleaParams()
    fc = params.centre_frequencies_hz
    assert len(fc) == 32 and fc[0] == pytest.approx(100.0) and fc[-1] == pytest.approx(3600.0)
    np.testing.assert_allclose(np.diff(erb_number(fc)), np.diff(erb_number(fc))[0])


@pytest.mark.parametrize("channel", [4, 16, 28])
def test_tone_drives_its_own_channel(channel):
    params = CochleaParams()
    t = np.arange(4000) / FSDD_SAMPLE_RATE
    tone = (8000 * np.sin(2 * np.pi * params.centre_frequencies_hz[channel] * t)).astype(np.int16)
    stages = params.stages(tone)
    assert np.argmax(stages.envelope[100:].mean(axis=0)) == channel
    assert np.argmax(stages.spikes.sum(axis=0)) == channel


def test_silence_gives_no_spikes():
    assert CochleaParams().encode(np.zeros(800, np.int16)).size == 0


def test_spike_generator_matches_scalar_reference(few_root):
    """The vectorised integrate-and-fire against a plain per-channel loop on the same drive."""
    params = CochleaParams()
    stages = params.stages(read_wav(few_root / "recordings" / FEW[1]))
    for channel in range(params.n_channels):
        membrane, expected = 0.0, []
        for drive in params.gain * stages.compressed[:, channel]:
            membrane = params.leak * membrane + drive
            expected.append(int(membrane >= params.threshold))
            membrane -= params.threshold * expected[-1]
        assert stages.spikes[:, channel].tolist() == expected, f"channel {channel}"
    assert 0 < stages.spikes.sum()


def test_encoding_is_deterministic_and_well_formed(few_root):
    params = CochleaParams()
    for name in FEW:
        samples = read_wav(few_root / "recordings" / name)
        events = params.encode(samples)
        assert events.dtype == CHANNEL_EVENT_DTYPE and events.size > 0
        assert np.array_equal(events, params.encode(samples))
        assert (np.diff(events["t"]) >= 0).all() and (events["t"] % params.tick_us == 0).all()
        assert events["channel"].max() < params.n_channels
        dense = params.encode_dense(samples)
        assert dense.shape == (params.n_ticks(samples.size), params.n_channels) and dense.max() == 1
        np.testing.assert_array_equal(
            bin_events(events, params.n_channels, params.tick_us, t_start=0, n_bins=len(dense)), dense
        )


def test_encoded_set_cache_round_trip(few_root, tmp_path):
    params = CochleaParams()
    fresh = encode_fsdd("all", params, root=few_root, cache_dir=tmp_path, workers=2)
    (cache_file,) = tmp_path.iterdir()
    assert cache_file.name.startswith("fsdd_cochlea_") and cache_file.suffix == ".npz"
    cached = encode_fsdd("all", params, root=few_root, cache_dir=tmp_path)
    serial = encode_fsdd("all", params, root=few_root, use_cache=False, workers=1)
    for other in (cached, serial):
        assert np.array_equal(other.events, fresh.events) and np.array_equal(other.offsets, fresh.offsets)
        assert other.names.tolist() == fresh.names.tolist()
    for i, name in enumerate(fresh.names):
        samples = read_wav(few_root / "recordings" / name)
        assert np.array_equal(fresh.events_of(i), params.encode(samples))
        assert np.array_equal(fresh.dense(i), params.encode_dense(samples))
    test = encode_fsdd("test", params, root=few_root, cache_dir=tmp_path)
    assert test.names.tolist() == ["0_george_0.wav", "5_nicolas_2.wav"] and test.digits.tolist() == [0, 5]
    assert np.array_equal(test.events_of(1), fresh.events_of(FEW.index("5_nicolas_2.wav")))
    rates = fresh.segment_rates(4)
    assert rates.shape == (5, 4 * 32)
    np.testing.assert_allclose(rates[0, :32], fresh.dense(0)[: -(-fresh.n_ticks[0] // 4)].mean(axis=0))
    with pytest.raises(ValueError, match="fewer than n_segments"):
        fresh.segment_rates(10_000)
    encode_fsdd("all", CochleaParams(gain=0.6), root=few_root, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2  # other parameters, other cache file


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the encoder's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def test_whole_set_encodes_within_a_minute(fsdd_root, tmp_path):
    """Under a minute on 2 cores, checked as under a minute of CPU time (so even on one core),
    since the machine running the tests is shared and its wall time is not ours."""
    start_wall, start_cpu = time.perf_counter(), cpu_seconds()
    encoded = encode_fsdd("all", root=fsdd_root, cache_dir=tmp_path, workers=2)
    wall, cpu = time.perf_counter() - start_wall, cpu_seconds() - start_cpu
    assert cpu < 60, f"encoding 2,500 recordings took {cpu:.1f} CPU s ({wall:.1f} s wall)"
    assert len(encoded) == 2500 and len(encoded.split("train")) == 2250 and len(encoded.split("test")) == 250
    assert (np.diff(encoded.offsets) > 0).all()  # every recording spikes
    _, test_accuracy = linear_probe_accuracy(encoded)
    assert test_accuracy > 0.9, f"a linear probe reads only {test_accuracy:.1%} of the test digits"


def test_channel_norm_flattens_the_long_term_spectrum():
    """channel_norm = 1 gives every channel the same mean envelope, 0.5 halves the spread (in
    log), 0 is the default encoding; the default keeps the key of the cached encodings."""
    t = np.arange(8000) / FSDD_SAMPLE_RATE
    fc = CochleaParams().centre_frequencies_hz
    tilted = sum(np.sin(2 * np.pi * f * t) / (k + 1) for k, f in enumerate(fc))
    samples = (4000 * tilted / np.abs(tilted).max()).astype(np.int16)
    spread = {}
    for p in (0.0, 0.5, 1.0):
        means = CochleaParams(channel_norm=p).stages(samples).envelope.mean(axis=0)
        spread[p] = np.log(means.max() / means.min())
    assert spread[0.0] > 1.0
    assert spread[1.0] == pytest.approx(0.0, abs=1e-9)
    assert spread[0.5] == pytest.approx(spread[0.0] / 2, rel=1e-6)
    assert np.array_equal(CochleaParams(channel_norm=0.0).encode(samples), CochleaParams().encode(samples))
    assert not np.array_equal(CochleaParams(channel_norm=1.0).encode(samples), CochleaParams().encode(samples))
    assert CochleaParams().key == "b45b3c7e2b2d7610"
    assert len({CochleaParams(channel_norm=p).key for p in (0.0, 0.5, 1.0)}) == 3
    assert CochleaParams(channel_norm=1.0).encode(np.zeros(800, np.int16)).size == 0
    with pytest.raises(ValueError, match="channel_norm must lie"):
        CochleaParams(channel_norm=1.5)
