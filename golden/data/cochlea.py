"""Audio to spikes: a cochlea-like front end for the spoken digits, and the cached encoded set.

In the spirit of the Spiking Heidelberg Digits pipeline (basilar-membrane filterbank, hair-cell
rectification and compression, one spike generator per channel), built on SciPy:

1. **Level.** Samples (``int16``) become float64, the mean is removed and the recording is
   scaled to unit RMS (each recording on its own, so loud and quiet speakers give similar rates).
2. **Filterbank.** ``n_channels`` (default **32**) fourth-order gammatone band-pass filters
   (``scipy.signal.gammatone``, IIR design of Slaney, unity gain at the centre frequency), centre
   frequencies equally spaced on the **ERB-number scale** of Glasberg & Moore (1990),
   ``E(f) = 21.4 log10(1 + 0.00437 f)``, from ``f_low_hz`` = 100 Hz to ``f_high_hz`` = 3,600 Hz.
   Channel 0 is the lowest frequency.
3. **Rectification.** Half-wave (``max(y, 0)``), then the mean over each tick of
   ``samples_per_tick`` samples (a boxcar low-pass; the last tick is zero-padded).
4. **Compression.** Cube root (Stevens' power law), ``c = mean ** (1/3)``.
   With ``channel_norm`` = ``p`` > 0 (off by default), each channel's envelope is first scaled by
   ``(m / m_c) ** p``: ``m_c`` the mean of channel ``c``'s envelope over the recording, ``m`` the
   mean of those means. ``p = 1`` flattens the recording's long-term spectrum (every channel gets
   the same mean envelope; a fixed microphone or vocal-tract tilt cancels), ``0 < p < 1`` does so
   in part. Like the level stage it needs the whole recording (the encoder runs on the host); to
   the spike generator it is one constant gain per channel and recording.
5. **Spike generator.** A leaky integrate-and-fire neuron per channel, one update per tick:
   ``u = leak * u + gain * c``; a spike when ``u >= threshold``, then ``u -= threshold``
   (subtractive reset). At most one spike per channel per tick, so rates are at most
   ``1 / tick`` (1 kHz). Zero initial state.

**Time resolution:** one tick = ``tick_us`` = **1,000 us** (8 samples at 8 kHz). A spike of tick
``k`` is emitted as the channel event ``(channel, t = k * tick_us)``: its time is the start of
the tick, so :func:`golden.data.events.bin_events` with ``bin_ticks=tick_us, t_start=0`` puts it
back in bin ``k``. Events are ordered by tick, then channel.

Everything is float64 NumPy/SciPy in a fixed order, so the encoding is deterministic.
:func:`encode_fsdd` encodes all 2,500 recordings (about 10 s on one core; two worker processes
by default) and caches them under ``build/cache/`` in a file keyed by a hash of the encoder
parameters, the encoder version and the list of recordings.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import signal

from . import REPO_ROOT
from .augment import AudioAugment
from .events import CHANNEL_EVENT_DTYPE, bin_events, channel_events
from .fsdd import FSDD_SAMPLE_RATE, SPLITS, TEST_INDEX_LIMIT, list_fsdd, read_wav

__all__ = [
    "CACHE_DIR",
    "ENCODER_VERSION",
    "CochleaParams",
    "CochleaStages",
    "EncodedFSDD",
    "encode_fsdd",
    "erb_space",
]

#: Bump when the algorithm changes in a way the parameters do not capture (invalidates caches).
ENCODER_VERSION = 1
CACHE_DIR = REPO_ROOT / "build" / "cache"


def erb_number(freq_hz):
    """Glasberg & Moore (1990) ERB-number (Cams) of a frequency in Hz."""
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(freq_hz, dtype=np.float64))


def erb_space(f_low_hz: float, f_high_hz: float, n: int) -> np.ndarray:
    """``n`` frequencies from ``f_low_hz`` to ``f_high_hz`` (both included), equally spaced in ERB-number."""
    cams = np.linspace(erb_number(f_low_hz), erb_number(f_high_hz), n)
    return (10.0 ** (cams / 21.4) - 1.0) / 0.00437


@dataclass(frozen=True)
class CochleaStages:
    """Every stage of one encoding (for plots and for finding where two encodings part).

    Attributes
    ----------
    band : np.ndarray, float64, shape (n_channels, n_samples)
        Gammatone filter outputs of the level-normalised recording.
    envelope : np.ndarray, float64, shape (n_ticks, n_channels)
        Half-wave rectified band, averaged per tick, scaled per channel when ``channel_norm`` is on.
    compressed : np.ndarray, float64, shape (n_ticks, n_channels)
        ``envelope ** (1/3)``.
    spikes : np.ndarray, int64, shape (n_ticks, n_channels)
        0 / 1 spike of each channel at each tick.
    """

    band: np.ndarray
    envelope: np.ndarray
    compressed: np.ndarray
    spikes: np.ndarray


@dataclass(frozen=True)
class CochleaParams:
    """Parameters of the audio-to-spikes front end (see the module docstring for the pipeline).

    Parameters
    ----------
    n_channels : int
        Gammatone channels, 32 by default.
    f_low_hz, f_high_hz : float
        Centre frequencies of the lowest and highest channel (ERB-spaced between), below Nyquist.
    sample_rate : int
        Input sample rate in Hz (FSDD: 8,000).
    tick_us : int
        Spike-generator time step in microseconds; must be a whole number of samples.
    leak : float
        Per-tick decay of the integrate-and-fire membrane, ``0 <= leak < 1`` (0.9: ~9.5 ms).
    gain : float
        Input gain on the compressed envelope, positive.
    threshold : float
        Firing threshold and reset amount, positive.
    channel_norm : float
        Per-channel gain normalisation exponent ``p`` in ``[0, 1]`` (module docstring, step 4);
        0 (default) leaves the channels as the filterbank gives them.
    """

    n_channels: int = 32
    f_low_hz: float = 100.0
    f_high_hz: float = 3600.0
    sample_rate: int = FSDD_SAMPLE_RATE
    tick_us: int = 1000
    leak: float = 0.9
    gain: float = 0.5
    threshold: float = 1.0
    channel_norm: float = 0.0

    def __post_init__(self):
        if int(self.n_channels) != self.n_channels or self.n_channels < 1:
            raise ValueError(f"n_channels must be a positive integer; got {self.n_channels!r}")
        if not 0 < self.f_low_hz < self.f_high_hz < self.sample_rate / 2:
            raise ValueError(
                f"need 0 < f_low_hz < f_high_hz < sample_rate/2 = {self.sample_rate / 2}; "
                f"got {self.f_low_hz} and {self.f_high_hz}"
            )
        if self.tick_us < 1 or (self.tick_us * self.sample_rate) % 1_000_000:
            raise ValueError(
                f"tick_us must be a positive whole number of samples at {self.sample_rate} Hz "
                f"(a multiple of {1_000_000 / self.sample_rate:g} us); got {self.tick_us}"
            )
        if not 0 <= self.leak < 1:
            raise ValueError(f"leak must lie in [0, 1); got {self.leak}")
        if self.gain <= 0 or self.threshold <= 0:
            raise ValueError(f"gain and threshold must be positive; got {self.gain} and {self.threshold}")
        if not 0 <= self.channel_norm <= 1:
            raise ValueError(f"channel_norm must lie in [0, 1]; got {self.channel_norm}")

    @property
    def samples_per_tick(self) -> int:
        return self.tick_us * self.sample_rate // 1_000_000

    @property
    def centre_frequencies_hz(self) -> np.ndarray:
        """Centre frequency of each channel, ascending."""
        return erb_space(self.f_low_hz, self.f_high_hz, self.n_channels)

    @property
    def key(self) -> str:
        """Hex digest of the parameters and :data:`ENCODER_VERSION` (names cache files).

        ``channel_norm`` enters only when it is on, so the default encoding keeps its key.
        """
        fields = asdict(self)
        if not self.channel_norm:
            del fields["channel_norm"]
        text = json.dumps({"encoder_version": ENCODER_VERSION, **fields}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def n_ticks(self, n_samples: int) -> int:
        """Ticks covering ``n_samples`` (the last one may be partial)."""
        return -(-n_samples // self.samples_per_tick)

    def stages(self, samples: np.ndarray) -> CochleaStages:
        """Run the whole pipeline on one recording, keeping every stage.

        Raises
        ------
        ValueError
            If ``samples`` is not a non-empty one-dimensional array.
        """
        samples = np.asarray(samples)
        if samples.ndim != 1 or samples.size == 0:
            raise ValueError(f"samples must be a non-empty 1-D array; got shape {samples.shape}")
        x = samples.astype(np.float64)
        x -= x.mean()
        rms = np.sqrt(np.mean(x * x))
        if rms > 0:
            x /= rms
        n_ticks = self.n_ticks(x.size)
        band = np.zeros((self.n_channels, n_ticks * self.samples_per_tick))
        for channel, sos in enumerate(_gammatone_bank(self)):
            band[channel, : x.size] = signal.sosfilt(sos, x)
        envelope = np.maximum(band, 0.0).reshape(self.n_channels, n_ticks, self.samples_per_tick).mean(axis=2).T
        if self.channel_norm:
            means = envelope.mean(axis=0)
            if np.all(means > 0):
                envelope = envelope * (means.mean() / means) ** self.channel_norm
        compressed = np.cbrt(envelope)
        spikes = np.zeros((n_ticks, self.n_channels), dtype=np.int64)
        membrane = np.zeros(self.n_channels)
        drive = self.gain * compressed
        for tick in range(n_ticks):
            membrane = self.leak * membrane + drive[tick]
            fired = membrane >= self.threshold
            membrane -= self.threshold * fired
            spikes[tick] = fired
        return CochleaStages(band[:, : x.size], envelope, compressed, spikes)

    def encode_dense(self, samples: np.ndarray) -> np.ndarray:
        """``(n_ticks, n_channels)`` int64 spike counts (0 / 1) of one recording."""
        return self.stages(samples).spikes

    def encode(self, samples: np.ndarray) -> np.ndarray:
        """Channel events (:data:`CHANNEL_EVENT_DTYPE`) of one recording, ``t`` in microseconds."""
        tick, channel = np.nonzero(self.encode_dense(samples))
        return channel_events(channel, tick * self.tick_us)


@lru_cache(maxsize=8)
def _gammatone_bank(params: CochleaParams) -> tuple[np.ndarray, ...]:
    """Second-order sections of each channel's fourth-order gammatone filter."""
    return tuple(
        signal.tf2sos(*signal.gammatone(fc, "iir", fs=params.sample_rate)) for fc in params.centre_frequencies_hz
    )


@dataclass(frozen=True)
class EncodedFSDD:
    """Spike-encoded FSDD recordings, all events in one array with per-recording offsets.

    Attributes
    ----------
    params : CochleaParams
    names, speakers : np.ndarray of str
    digits, indices, n_ticks : np.ndarray of int64
        Label, recording index (split: index < 5 is test) and length in ticks of each recording.
    offsets : np.ndarray of int64, shape (n + 1,)
        Recording ``i`` owns ``events[offsets[i]:offsets[i + 1]]``.
    events : np.ndarray of CHANNEL_EVENT_DTYPE
    """

    params: CochleaParams
    names: np.ndarray
    speakers: np.ndarray
    digits: np.ndarray
    indices: np.ndarray
    n_ticks: np.ndarray
    offsets: np.ndarray
    events: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    def events_of(self, i: int) -> np.ndarray:
        """Channel events of recording ``i``."""
        return self.events[self.offsets[i] : self.offsets[i + 1]]

    def dense(self, i: int, n_bins: int | None = None) -> np.ndarray:
        """``(T, n_channels)`` counts of recording ``i``, one bin per tick; ``T`` = its length or ``n_bins``."""
        return bin_events(
            self.events_of(i), self.params.n_channels, self.params.tick_us,
            t_start=0, n_bins=int(self.n_ticks[i]) if n_bins is None else n_bins,
        )

    def segment_rates(self, n_segments: int = 8) -> np.ndarray:
        """``(n, n_segments * n_channels)`` float features: each recording cut into ``n_segments``
        near-equal runs of ticks (``np.array_split``), mean spikes per tick of every channel in each.

        A fixed-length summary for quick baselines (a linear probe of what the encoding carries).
        """
        if int(n_segments) < 1:
            raise ValueError(f"n_segments must be positive; got {n_segments}")
        rows = []
        for i in range(len(self)):
            dense = self.dense(i)
            if len(dense) < n_segments:
                raise ValueError(f"{self.names[i]} has {len(dense)} ticks, fewer than n_segments={n_segments}")
            rows.append(np.concatenate([part.mean(axis=0) for part in np.array_split(dense, n_segments)]))
        return np.array(rows).reshape(len(self), n_segments * self.params.n_channels)

    def split(self, split: str) -> EncodedFSDD:
        """The recordings of ``"train"``, ``"test"`` or ``"all"``, in the same order."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
        if split == "all":
            return self
        keep = (self.indices < TEST_INDEX_LIMIT) == (split == "test")
        chunks = [self.events_of(i) for i in np.flatnonzero(keep)]
        lengths = [len(c) for c in chunks]
        return EncodedFSDD(
            self.params, self.names[keep], self.speakers[keep], self.digits[keep], self.indices[keep],
            self.n_ticks[keep], np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            np.concatenate(chunks) if chunks else np.empty(0, CHANNEL_EVENT_DTYPE),
        )


def _encode_file(job: tuple) -> tuple[np.ndarray, int]:
    params, path, augment, copy, recording = job
    samples = read_wav(path)
    if augment is not None:
        samples = augment.apply(samples, augment.rng(copy, recording))
    return params.encode(samples), params.n_ticks(samples.size)


def _cache_key(params: CochleaParams, files, augment: AudioAugment | None, copy: int) -> str:
    listing = [(f.name, f.path.stat().st_size) for f in files]
    doc = {"params": params.key, "files": listing}
    if augment is not None:
        doc.update(augment=augment.key, copy=copy)
    return hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:16]


def encode_fsdd(split: str = "all", params: CochleaParams | None = None, *, root=None,
                cache_dir=None, use_cache: bool = True, workers: int = 2,
                augment: AudioAugment | None = None, copy: int = 0) -> EncodedFSDD:
    """Encode every FSDD recording (or load the cached encoding) and return one split.

    The whole set is encoded and cached as one ``.npz`` file,
    ``<cache_dir>/fsdd_cochlea_<key>.npz``, with ``key`` a hash of the parameters, the encoder
    version, the recordings' names and sizes, and the augmentation and copy; a change to any of
    them encodes afresh. With ``augment``, recording ``i`` (in the order of
    :func:`golden.data.fsdd.list_fsdd`) is first perturbed by ``augment.apply`` with
    ``augment.rng(copy, i)`` (:mod:`golden.data.augment`); ``n_ticks`` is then the perturbed
    recording's length.

    Parameters
    ----------
    split : ``"train"``, ``"test"`` or ``"all"``
    params : CochleaParams, optional
        Default ``CochleaParams()``.
    root : path, optional
        FSDD folder; default ``<data>/fsdd``.
    cache_dir : path, optional
        Default ``<repo>/build/cache``.
    use_cache : bool
        Read and write the cache (default); false always encodes and writes nothing.
    workers : int
        Worker processes for encoding (1 encodes in this process).
    augment : AudioAugment, optional
        Encode perturbed recordings (default: the recordings as they are).
    copy : int
        Which augmented copy (seeds the perturbation with the recording's position).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}; got {split!r}")
    if int(workers) < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    params = params or CochleaParams()
    files = list_fsdd("all", root)
    cache_path = Path(cache_dir or CACHE_DIR) / f"fsdd_cochlea_{_cache_key(params, files, augment, copy)}.npz"
    if use_cache and cache_path.is_file():
        with np.load(cache_path, allow_pickle=False) as cached:
            arrays = {name: cached[name] for name in cached.files}
        events = channel_events(arrays.pop("channel"), arrays.pop("t"))
        return EncodedFSDD(params, events=events, **arrays).split(split)
    jobs = [(params, str(f.path), augment, copy, i) for i, f in enumerate(files)]
    if workers == 1:
        results = [_encode_file(job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_encode_file, jobs, chunksize=64))
    arrays = dict(
        names=np.array([f.name for f in files]),
        speakers=np.array([f.speaker for f in files]),
        digits=np.array([f.digit for f in files], dtype=np.int64),
        indices=np.array([f.index for f in files], dtype=np.int64),
        n_ticks=np.array([n for _, n in results], dtype=np.int64),
        offsets=np.concatenate([[0], np.cumsum([len(e) for e, _ in results])]).astype(np.int64),
    )
    events = np.concatenate([e for e, _ in results])
    if use_cache:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(partial, channel=events["channel"], t=events["t"], **arrays)
        os.replace(partial, cache_path)
    return EncodedFSDD(params, events=events, **arrays).split(split)
