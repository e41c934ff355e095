"""Audio augmentation of the spoken digits: other voices, microphones and rooms, drawn at random.

:class:`AudioAugment` turns one recording's ``int16`` samples into a perturbed float64 waveform,
the input of the cochlea (:class:`golden.data.cochlea.CochleaParams`), in this order:

1. **Silence trimming** (probability ``trim_prob``): leading and trailing samples whose 10 ms
   frame energy stays 30 dB under the loudest frame are cut.
2. **Speed** (factor drawn from ``speed``): polyphase resampling by ``1 / factor``
   (``scipy.signal.resample_poly``): duration and pitch and formants all scale, as between a
   faster, higher voice and a slower, lower one.
3. **Equalisation** (FFT, zero phase): a spectral tilt (dB per octave, drawn from ``tilt_db``)
   about 500 Hz, a smooth random curve (``eq_db`` at most, on 6 points equally spaced in log
   frequency from 100 Hz to 4 kHz, linear in dB between them), and band limits: a second-order
   Butterworth-shaped high-pass at a corner drawn from ``low_cut_hz`` and low-pass at one drawn
   from ``high_cut_hz`` (a telephone line, a small microphone).
4. **Rumble** (probability ``rumble_prob``): a sinusoid between 20 and 80 Hz and its second
   harmonic at ``rumble_db`` under the speech RMS (traffic, handling noise, mains hum).
5. **Noise** (probability ``noise_prob``): white or pink (1/f power) Gaussian noise at a
   signal-to-noise ratio drawn from ``snr_db``.
6. **Time shift**: leading silence of a duration drawn from ``shift_ms`` (the speech starts later
   in the window).

Random gain is not a step: the cochlea's level stage scales every recording to unit RMS, so a
gain changes nothing but the float rounding; what gain does to a real recording (the level of the
speech against the noise floor) is the noise step's SNR.

Every draw comes from ``numpy.random.default_rng([seed, copy, recording])``, so copy ``k`` of a
recording is the same waveform in every run; :func:`golden.data.cochlea.encode_fsdd` with
``augment=`` caches each copy of the whole set.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np
from scipy import signal

__all__ = ["AUGMENT_VERSION", "AudioAugment", "DEFAULT_AUGMENT"]

#: Bump when the algorithm changes in a way the fields do not capture (invalidates caches).
AUGMENT_VERSION = 1
_TRIM_FRAME_S = 0.010
_TRIM_DB = 30.0
_EQ_POINTS_HZ = (100.0, 4000.0, 6)
_SPEED_STEPS = 100


def _check_range(name: str, value, lo: float, hi: float) -> None:
    if len(value) != 2 or not lo <= value[0] <= value[1] <= hi:
        raise ValueError(f"{name} must be a (low, high) pair with {lo} <= low <= high <= {hi}; got {value!r}")


@dataclass(frozen=True)
class AudioAugment:
    """Ranges and probabilities of the random perturbations (module docstring for the steps).

    Ranges are ``(low, high)`` pairs drawn uniformly; a pair with ``low == high`` fixes the value
    (``(1.0, 1.0)`` speed, ``(0.0, 0.0)`` tilt, ``eq_db = 0``, ``low_cut_hz = (0, 0)``,
    ``high_cut_hz = (4000, 4000)``, probabilities 0 and ``shift_ms = (0, 0)`` turn a step off).
    """

    seed: int = 0
    trim_prob: float = 0.5
    speed: tuple[float, float] = (0.85, 1.15)
    tilt_db: tuple[float, float] = (-4.0, 4.0)
    eq_db: float = 6.0
    low_cut_hz: tuple[float, float] = (0.0, 400.0)
    high_cut_hz: tuple[float, float] = (2000.0, 4000.0)
    rumble_prob: float = 0.3
    rumble_db: tuple[float, float] = (3.0, 20.0)
    noise_prob: float = 0.5
    snr_db: tuple[float, float] = (10.0, 40.0)
    shift_ms: tuple[float, float] = (0.0, 100.0)
    sample_rate: int = 8000

    def __post_init__(self):
        for name in ("trim_prob", "rumble_prob", "noise_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1]; got {getattr(self, name)}")
        nyquist = self.sample_rate / 2
        _check_range("speed", self.speed, 0.5, 2.0)
        _check_range("tilt_db", self.tilt_db, -12.0, 12.0)
        _check_range("low_cut_hz", self.low_cut_hz, 0.0, nyquist)
        _check_range("high_cut_hz", self.high_cut_hz, 1.0, nyquist)
        _check_range("rumble_db", self.rumble_db, 0.0, 60.0)
        _check_range("snr_db", self.snr_db, -10.0, 80.0)
        _check_range("shift_ms", self.shift_ms, 0.0, 1000.0)
        if not 0.0 <= self.eq_db <= 20.0:
            raise ValueError(f"eq_db must lie in [0, 20]; got {self.eq_db}")

    @property
    def key(self) -> str:
        """Hex digest of the fields and :data:`AUGMENT_VERSION` (names cache files)."""
        text = json.dumps({"augment_version": AUGMENT_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def rng(self, copy: int, recording: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, int(copy), int(recording)])

    def apply(self, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One perturbed float64 waveform of ``samples`` (at :attr:`sample_rate`), drawn from ``rng``."""
        x = np.asarray(samples, dtype=np.float64)
        x = x - x.mean()
        if rng.random() < self.trim_prob:
            x = _trim(x, self.sample_rate)
        factor = rng.uniform(*self.speed)
        if factor != 1.0:
            x = signal.resample_poly(x, _SPEED_STEPS, int(round(_SPEED_STEPS * factor)))
        x = self._equalise(x, rng)
        rms = np.sqrt(np.mean(x * x)) or 1.0
        t = np.arange(x.size) / self.sample_rate
        if rng.random() < self.rumble_prob:
            f0, phase = rng.uniform(20.0, 80.0), rng.uniform(0, 2 * np.pi, 2)
            level = rms * 10 ** (-rng.uniform(*self.rumble_db) / 20) * np.sqrt(2)
            x = x + level * (np.sin(2 * np.pi * f0 * t + phase[0]) + 0.5 * np.sin(4 * np.pi * f0 * t + phase[1]))
        if rng.random() < self.noise_prob:
            noise = rng.standard_normal(x.size)
            if rng.random() < 0.5:
                spectrum = np.fft.rfft(noise)
                f = np.fft.rfftfreq(x.size, 1 / self.sample_rate)
                spectrum[1:] /= np.sqrt(f[1:] / f[1])
                noise = np.fft.irfft(spectrum, x.size)
            noise *= rms * 10 ** (-rng.uniform(*self.snr_db) / 20) / (np.sqrt(np.mean(noise * noise)) or 1.0)
            x = x + noise
        lead = int(round(rng.uniform(*self.shift_ms) * self.sample_rate / 1000))
        return np.concatenate([np.zeros(lead), x]) if lead else x

    def _equalise(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        f = np.fft.rfftfreq(x.size, 1 / self.sample_rate)
        octaves = np.log2(np.maximum(f, 1.0) / 500.0)
        gain_db = rng.uniform(*self.tilt_db) * octaves
        lo, hi, n = _EQ_POINTS_HZ
        points = np.log2(np.geomspace(lo, hi, int(n)))
        gain_db += np.interp(np.log2(np.maximum(f, 1.0)), points, rng.uniform(-self.eq_db, self.eq_db, int(n)))
        magnitude = 10 ** (gain_db / 20)
        low_cut, high_cut = rng.uniform(*self.low_cut_hz), rng.uniform(*self.high_cut_hz)
        if low_cut > 0:
            magnitude /= np.sqrt(1 + (low_cut / np.maximum(f, 1e-3)) ** 4)
        if high_cut < self.sample_rate / 2:
            magnitude /= np.sqrt(1 + (f / high_cut) ** 4)
        return np.fft.irfft(np.fft.rfft(x) * magnitude, x.size)


def _trim(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """``x`` without the leading and trailing frames more than 30 dB under its loudest frame."""
    frame = max(1, int(sample_rate * _TRIM_FRAME_S))
    n = x.size // frame
    if n < 2:
        return x
    energy = (x[: n * frame].reshape(n, frame) ** 2).mean(axis=1)
    loud = np.flatnonzero(energy >= energy.max() * 10 ** (-_TRIM_DB / 10))
    return x[loud[0] * frame:(loud[-1] + 1) * frame]


#: The augmentation :mod:`golden.train` uses (``--augment K`` copies).
DEFAULT_AUGMENT = AudioAugment()
