"""Synthetic input shaped like Spiking Speech Commands (SSC), for networks trained on SSC.

The SSC recordings are not on these machines, so calibration and the checkpoint bench drive
the networks with seeded synthetic events of the same shape: :data:`SSC_CHANNELS` cochlea
channels over :data:`SSC_DURATION_TICKS` (1.2 s of microsecond ticks), sparse Poisson activity
whose probability per channel and 4 ms bin moves between 1 % and 5 % with a speech-like
envelope (a few syllable bumps in time, each with its own formant-like band of channels).

:func:`ssc_like_events` gives one sample's channel events (:data:`~golden.data.events.CHANNEL_EVENT_DTYPE`);
:func:`ssc_like_counts` bins a batch of them into ``(B, T, n_inputs)`` counts through a
:class:`~golden.data.events.ChannelPool` (the authors pool 5 adjacent channels: 700 -> 140).
"""

from __future__ import annotations

import numpy as np

from .events import ChannelPool, bin_events, channel_events

__all__ = ["SSC_CHANNELS", "SSC_DURATION_TICKS", "SSC_POOL", "ssc_like_events", "ssc_like_counts"]

#: Cochlea channels of the SSC recordings.
SSC_CHANNELS = 700
#: Length of a sample the authors bin (1.2 s), in microsecond ticks.
SSC_DURATION_TICKS = 1_200_000
#: The authors' channel pooling: 5 adjacent channels summed into one input (700 -> 140).
SSC_POOL = ChannelPool(n_sources=SSC_CHANNELS, pool=5)
#: Bin over which the activity probability is stated (4 ms).
_RATE_BIN_TICKS = 4_000
_P_MIN, _P_MAX = 0.01, 0.05


def ssc_like_events(rng: np.random.Generator, *, n_channels: int = SSC_CHANNELS,
                    duration_ticks: int = SSC_DURATION_TICKS) -> np.ndarray:
    """One sample of SSC-shaped channel events, in time order.

    Per channel ``c`` and 4 ms bin ``k`` the number of events is Poisson with mean
    ``p = 0.01 + 0.04 * envelope(k) * band(k, c)`` (so between 1 % and 5 %), where the envelope
    is 2 to 5 syllables (Gaussian bumps of 40 to 120 ms between 0.1 s and 1.0 s) and each
    syllable excites a Gaussian band of channels around its own centre; event times are uniform
    inside their bin.
    """
    n_bins = -(-int(duration_ticks) // _RATE_BIN_TICKS)
    t = (np.arange(n_bins) + 0.5) * _RATE_BIN_TICKS
    channels = np.arange(n_channels)
    drive = np.zeros((n_bins, n_channels))
    for _ in range(int(rng.integers(2, 6))):
        centre = rng.uniform(0.1, 1.0) * 1e6
        width = rng.uniform(40e3, 120e3) / 2
        envelope = np.exp(-0.5 * ((t - centre) / width) ** 2)
        band_centre = rng.uniform(0.1, 0.9) * n_channels
        band_width = rng.uniform(0.05, 0.25) * n_channels
        band = np.exp(-0.5 * ((channels - band_centre) / band_width) ** 2)
        drive = np.maximum(drive, envelope[:, None] * band[None, :])
    counts = rng.poisson(_P_MIN + (_P_MAX - _P_MIN) * drive)
    step, channel = np.nonzero(counts)
    repeats = counts[step, channel]
    step, channel = np.repeat(step, repeats), np.repeat(channel, repeats)
    ticks = step * _RATE_BIN_TICKS + rng.integers(0, _RATE_BIN_TICKS, step.size)
    keep = ticks < duration_ticks
    order = np.argsort(ticks[keep], kind="stable")
    return channel_events(channel[keep][order], ticks[keep][order])


def ssc_like_counts(n_samples: int, n_steps: int, bin_ticks: int, *, seed: int = 0,
                    pool: ChannelPool = SSC_POOL) -> np.ndarray:
    """``(n_samples, n_steps, pool.n_channels)`` int64 counts of :func:`ssc_like_events`, pooled by
    ``pool`` and binned ``bin_ticks`` wide from tick 0 (the same ``seed`` gives the same counts)."""
    rng = np.random.default_rng(seed)
    out = np.empty((int(n_samples), int(n_steps), pool.n_channels), dtype=np.int64)
    for i in range(int(n_samples)):
        events = pool(ssc_like_events(rng, n_channels=pool.n_sources))
        out[i] = bin_events(events, pool.n_channels, bin_ticks, t_start=0, n_bins=n_steps)
    return out
