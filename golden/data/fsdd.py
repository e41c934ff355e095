"""The Free Spoken Digit Dataset (FSDD): file listing with the official split, and WAV loading.

Files are ``recordings/{digit}_{speaker}_{index}.wav``: mono, 8 kHz, 16-bit PCM. The shared
copy holds five speakers (george, jackson, nicolas, theo, yweweler), 50 recordings per digit
each, 2,500 files. The official split puts ``index`` 0-4 in ``test`` (250 files) and 5-49 in
``train`` (2,250 files). FSDD is CC BY-SA 4.0 (Jakobovski/free-spoken-digit-dataset).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from . import data_path

__all__ = [
    "FSDD_SAMPLE_RATE", "FSDD_SPEAKERS", "SPLITS", "FSDDClip", "FSDDFile",
    "fsdd_root", "list_fsdd", "load_fsdd", "parse_name", "read_wav",
]

FSDD_SAMPLE_RATE = 8000
#: Recordings with an index below this are the official test split.
TEST_INDEX_LIMIT = 5
SPLITS = ("train", "test", "all")
#: The speakers of the shared copy (the leave-one-speaker-out folds).
FSDD_SPEAKERS = ("george", "jackson", "nicolas", "theo", "yweweler")

_NAME_RE = re.compile(r"^(\d)_([a-z]+)_(\d+)\.wav$")


@dataclass(frozen=True)
class FSDDFile:
    """One recording's file and what its name says."""

    path: Path
    digit: int
    speaker: str
    index: int

    @property
    def split(self) -> str:
        """``"test"`` for index 0-4, ``"train"`` otherwise (the official split)."""
        return "test" if self.index < TEST_INDEX_LIMIT else "train"

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class FSDDClip:
    """A loaded recording: its file and its ``int16`` samples at :data:`FSDD_SAMPLE_RATE`."""

    file: FSDDFile
    samples: np.ndarray

    @property
    def digit(self) -> int:
        return self.file.digit


def fsdd_root(root=None) -> Path:
    """The FSDD folder (the one holding ``recordings/``): ``root`` or ``<data>/fsdd``."""
    return Path(root) if root is not None else data_path("fsdd")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")


def parse_name(path) -> FSDDFile:
    """``FSDDFile`` from a ``{digit}_{speaker}_{index}.wav`` path; ``ValueError`` on any other name."""
    path = Path(path)
    match = _NAME_RE.match(path.name)
    if match is None:
        raise ValueError(f"{path}: not an FSDD recording name ({{digit}}_{{speaker}}_{{index}}.wav)")
    digit, speaker, index = match.groups()
    return FSDDFile(path, int(digit), speaker, int(index))


def list_fsdd(split: str = "all", root=None) -> list[FSDDFile]:
    """The recordings of one split, sorted by (speaker, digit, index).

    Raises
    ------
    ValueError
        On an unknown split.
    FileNotFoundError
        If the recordings folder is missing or holds no ``.wav`` file.
    """
    _check_split(split)
    recordings = fsdd_root(root) / "recordings"
    paths = sorted(recordings.glob("*.wav")) if recordings.is_dir() else []
    if not paths:
        raise FileNotFoundError(f"no FSDD recordings (*.wav) in {recordings}")
    files = sorted((parse_name(p) for p in paths), key=lambda f: (f.speaker, f.digit, f.index))
    return [f for f in files if split == "all" or f.split == split]


def read_wav(path) -> np.ndarray:
    """The ``int16`` samples of an FSDD recording, checked to be mono 16-bit at 8 kHz.

    Raises
    ------
    ValueError
        If the file is not mono 16-bit PCM at :data:`FSDD_SAMPLE_RATE`, or is empty.
    """
    rate, samples = wavfile.read(path)
    if rate != FSDD_SAMPLE_RATE or samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError(
            f"{path}: expected mono 16-bit PCM at {FSDD_SAMPLE_RATE} Hz; got {rate} Hz, "
            f"{samples.dtype}, shape {samples.shape}"
        )
    if samples.size == 0:
        raise ValueError(f"{path}: no samples")
    return samples


def load_fsdd(split: str = "all", root=None) -> list[FSDDClip]:
    """Load every recording of ``split`` (``"train"``, ``"test"`` or ``"all"``) with its samples."""
    return [FSDDClip(f, read_wav(f.path)) for f in list_fsdd(split, root)]
