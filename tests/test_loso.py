"""Leave-one-speaker-out folds and augmentation: which recordings train and test in each split,
the audio perturbations (seeded, each step doing what it says), the augmented encodings in the
cache and in the training loop, and the LOSO table of bench.fsdd."""

import shutil

import numpy as np
import pytest
import torch

from bench.fsdd import loso_section, loso_summary, loso_table
from golden.data.augment import AudioAugment
from golden.data.cochlea import encode_fsdd
from golden.data.fsdd import FSDD_SPEAKERS, list_fsdd
from golden.train import SpeechData, TrainConfig, build_network, split_mask, train_epochs

SPEAKERS = np.repeat(np.array(FSDD_SPEAKERS), 50)
INDICES = np.tile(np.arange(50), len(FSDD_SPEAKERS))


@pytest.mark.parametrize("speaker", FSDD_SPEAKERS)
def test_a_loso_fold_tests_one_speaker_and_trains_on_the_other_four(speaker):
    train = split_mask(SPEAKERS, INDICES, speaker, "train")
    test = split_mask(SPEAKERS, INDICES, speaker, "test")
    assert set(SPEAKERS[test]) == {speaker} and test.sum() == 50
    assert speaker not in set(SPEAKERS[train]) and train.sum() == 200
    assert not (train & test).any()


def test_official_and_all_splits():
    official_test = split_mask(SPEAKERS, INDICES, "official", "test")
    assert (INDICES[official_test] < 5).all() and official_test.sum() == 25
    assert np.array_equal(split_mask(SPEAKERS, INDICES, "official", "train"), ~official_test)
    assert split_mask(SPEAKERS, INDICES, "all", "train").all()
    assert np.array_equal(split_mask(SPEAKERS, INDICES, "all", "test"), official_test)
    with pytest.raises(ValueError, match="split must be one of"):
        split_mask(SPEAKERS, INDICES, "nobody", "test")


@pytest.mark.parametrize("changes, message", [
    (dict(split="nobody"), "split must be one of"),
    (dict(augment=-1), "augment must be a non-negative int"),
    (dict(augment=True), "augment must be a non-negative int"),
])
def test_bad_split_and_augment_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def tone(seconds=0.5, lead=0.2, rate=8000):
    """A 440 Hz tone between ``lead`` seconds of silence on each side, as int16."""
    t = np.arange(int(seconds * rate)) / rate
    body = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    pad = np.zeros(int(lead * rate), np.int16)
    return np.concatenate([pad, body, pad])


OFF = dict(trim_prob=0.0, speed=(1.0, 1.0), tilt_db=(0.0, 0.0), eq_db=0.0, low_cut_hz=(0.0, 0.0),
           high_cut_hz=(4000.0, 4000.0), rumble_prob=0.0, noise_prob=0.0, shift_ms=(0.0, 0.0))


def test_augmentation_is_seeded_per_copy_and_recording():
    augment, x = AudioAugment(), tone()
    first = augment.apply(x, augment.rng(0, 7))
    assert np.array_equal(first, augment.apply(x, augment.rng(0, 7)))
    assert not np.array_equal(first, augment.apply(x, augment.rng(1, 7)))
    assert not np.array_equal(first, augment.apply(x, augment.rng(0, 8)))


def test_every_step_off_leaves_the_recording_as_it_is():
    x = tone()
    y = AudioAugment(**OFF).apply(x, np.random.default_rng(0))
    assert np.allclose(y, x - x.mean(), atol=1e-9)


def test_each_step_does_what_it_says():
    x, rng = tone(), lambda: np.random.default_rng(1)
    trimmed = AudioAugment(**{**OFF, "trim_prob": 1.0}).apply(x, rng())
    assert abs(trimmed.size - 4000) <= 80  # the 0.5 s tone, silences cut to the 10 ms frame
    faster = AudioAugment(**{**OFF, "speed": (1.25, 1.25)}).apply(x, rng())
    assert faster.size == int(np.ceil(x.size * 100 / 125))
    shifted = AudioAugment(**{**OFF, "shift_ms": (50.0, 50.0)}).apply(x, rng())
    assert shifted.size == x.size + 400 and not shifted[:400].any()
    noisy = AudioAugment(**{**OFF, "noise_prob": 1.0, "snr_db": (20.0, 20.0)}).apply(x, rng())
    clean = x - x.mean()
    snr = 10 * np.log10(np.mean(clean ** 2) / np.mean((noisy - clean) ** 2))
    assert abs(snr - 20.0) < 0.1
    cut = AudioAugment(**{**OFF, "high_cut_hz": (200.0, 200.0)}).apply(x, rng())
    assert np.sqrt(np.mean(cut ** 2)) < 0.3 * np.sqrt(np.mean(clean ** 2))  # 440 Hz well above a 200 Hz low-pass
    rumble = AudioAugment(**{**OFF, "rumble_prob": 1.0, "rumble_db": (6.0, 6.0)}).apply(x, rng())
    spectrum = np.abs(np.fft.rfft(rumble - clean))
    assert np.fft.rfftfreq(x.size, 1 / 8000)[spectrum.argmax()] < 170  # 20-80 Hz and its harmonic


@pytest.mark.parametrize("changes, message", [
    (dict(speed=(1.2, 1.1)), "speed must be a"),
    (dict(noise_prob=1.5), r"noise_prob must lie in \[0, 1\]"),
    (dict(high_cut_hz=(0.0, 5000.0)), "high_cut_hz must be a"),
    (dict(eq_db=-1.0), r"eq_db must lie in \[0, 20\]"),
])
def test_bad_augmentation_ranges_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        AudioAugment(**changes)


def test_augmented_encodings_are_cached_apart_from_the_clean_one(shared_data, tmp_path):
    root = tmp_path / "fsdd"
    (root / "recordings").mkdir(parents=True)
    for f in list_fsdd("all")[::500]:
        shutil.copy(f.path, root / "recordings" / f.name)
    clean = encode_fsdd("all", root=root, cache_dir=tmp_path, workers=1)
    copy0 = encode_fsdd("all", root=root, cache_dir=tmp_path, workers=1, augment=AudioAugment(), copy=0)
    copy1 = encode_fsdd("all", root=root, cache_dir=tmp_path, workers=1, augment=AudioAugment(), copy=1)
    assert len(list(tmp_path.glob("fsdd_cochlea_*.npz"))) == 3
    assert list(clean.names) == list(copy0.names) == list(copy1.names)
    assert not np.array_equal(clean.events, copy0.events) and not np.array_equal(copy0.events, copy1.events)
    again = encode_fsdd("all", root=root, cache_dir=tmp_path, workers=1, augment=AudioAugment(), copy=1)
    assert np.array_equal(again.events, copy1.events) and np.array_equal(again.n_ticks, copy1.n_ticks)


def small_data(augmented):
    generator = torch.Generator().manual_seed(0)
    counts = torch.poisson(torch.full((24, 6, 32), 0.4), generator=generator).long()
    return SpeechData(counts=counts, labels=torch.arange(24) % 10,
                      augmented=None if augmented is None else augmented(counts))


def run_epochs(data):
    torch.manual_seed(0)
    model = build_network("csilif", hidden=6)
    train_epochs(model, data, epochs=2, batch_size=8, lr=5e-3, seed=0, dtype=torch.float32,
                 forward=lambda m, x: (m(x).mean(dim=1), m(x).sum(dim=1)),
                 evaluate=lambda m: {"loss": 0.0, "acc": 0.0, "spike_rate": [0.0]}, log=lambda *a: None)
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_training_draws_from_the_augmented_copies_reproducibly():
    plain = run_epochs(small_data(None))
    silent = run_epochs(small_data(lambda c: torch.zeros_like(c)[None].repeat(2, 1, 1, 1)))
    assert not torch.equal(plain, silent)
    assert torch.equal(silent, run_epochs(small_data(lambda c: torch.zeros_like(c)[None].repeat(2, 1, 1, 1))))


def test_loso_table_has_every_fold_the_mean_and_the_official_split():
    folds = [{"speaker": s, "epochs": 12, "augment": 2, "float_acc": acc, "int_acc": acc - 0.2, "train_seconds": 60.0}
             for s, acc in zip(FSDD_SPEAKERS, (90.0, 95.0, 100.0, 85.0, 80.0))]
    summary = loso_summary(folds)
    assert summary["float_mean"] == 90.0 and summary["float_worst"] == 80.0
    assert summary["int_mean"] == pytest.approx(89.8) and summary["int_float_max_gap"] == pytest.approx(0.2)
    lines = loso_table({"csilif": folds}, {"csilif": {"float_acc": 99.2, "int_acc": 98.8}})
    assert FSDD_SPEAKERS[0] in lines[0] and "| csilif | 12 | 2 | 90.0 / 89.8 |" in lines[2]
    assert "**90.0 / 89.8**" in lines[2] and "80.0 / 79.8" in lines[2] and "99.2 / 98.8" in lines[2]
    folds[0].update(n_train=1000, n_test=500)
    assert "recordings (1,000)" in "\n".join(loso_section({"csilif": folds}, []))
    folds[1]["int_acc"] = "no export (too wide)"
    assert loso_summary(folds)["int_mean"] is None


def test_a_checkpoint_saved_before_splits_loads_as_official_and_unaugmented(tmp_path):
    from dataclasses import asdict

    from golden.train import load_checkpoint

    config = TrainConfig(neuron="csilif", hidden=6, split="george", augment=3)
    torch.manual_seed(0)
    model = build_network("csilif", hidden=6)
    saved = {key: value for key, value in asdict(config).items() if key not in ("split", "augment")}
    torch.save({"config": saved, "state_dict": model.state_dict(), "history": []}, tmp_path / "checkpoint.pt")
    _, loaded, _ = load_checkpoint(tmp_path / "checkpoint.pt")
    assert loaded.split == "official" and loaded.augment == 0 and loaded.hidden == 6
