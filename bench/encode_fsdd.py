"""Time the cochlea encoding of the whole FSDD set and plot one recording's stages.

Usage::

    python -m bench.encode_fsdd [--workers 1 2] [--example 3_theo_0.wav] [--docs]

Writes ``build/bench/encode_fsdd.json`` (timings, spike statistics, the accuracy of a linear
probe on the spike rates) and
``build/bench/fsdd_cochlea_<example>.png`` (waveform, compressed envelope, spike raster);
``--docs`` also copies the figure to ``docs/img/``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import BENCH_DIR, write_results
from golden.cli import positive_int, run_main
from golden.data.cochlea import CochleaParams, EncodedFSDD, encode_fsdd
from golden.data.fsdd import FSDD_SAMPLE_RATE, TEST_INDEX_LIMIT, fsdd_root, read_wav
from golden.files import save_figure

DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"


def linear_probe_accuracy(encoded: EncodedFSDD, n_segments: int = 8, ridge: float = 10.0) -> tuple[float, float]:
    """Train and test accuracy of a ridge-regression classifier on :meth:`EncodedFSDD.segment_rates`.

    Closed form (one-hot targets, features standardised on the train split), so deterministic:
    a quick measure of how much digit information the spike encoding carries.
    """
    features = encoded.segment_rates(n_segments)
    test = encoded.indices < TEST_INDEX_LIMIT
    mean, std = features[~test].mean(axis=0), features[~test].std(axis=0) + 1e-9
    design = np.hstack([(features - mean) / std, np.ones((len(features), 1))])
    targets = np.eye(10)[encoded.digits]
    train_design = design[~test]
    weights = np.linalg.solve(
        train_design.T @ train_design + ridge * np.eye(design.shape[1]), train_design.T @ targets[~test]
    )
    correct = np.argmax(design @ weights, axis=1) == encoded.digits
    return float(correct[~test].mean()), float(correct[test].mean())


def plot_example(params: CochleaParams, wav: Path, out: Path) -> None:
    """Three stacked panels sharing the time axis: waveform, compressed envelope, spike raster."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = read_wav(wav)
    stages = params.stages(samples)
    tick_ms = params.tick_us / 1000
    n_ticks = stages.spikes.shape[0]
    fig, axes = plt.subplots(3, 1, figsize=(7, 6), sharex=True, height_ratios=[1, 2, 2])
    axes[0].plot(np.arange(samples.size) / FSDD_SAMPLE_RATE * 1000, samples / 32768, lw=0.5, color="k")
    axes[0].set_ylabel("sample")
    axes[0].set_title(f"{wav.name}: {params.n_channels} ERB gammatone channels, {tick_ms:g} ms ticks")
    extent = (0, n_ticks * tick_ms, -0.5, params.n_channels - 0.5)
    axes[1].imshow(stages.compressed.T, origin="lower", aspect="auto", extent=extent, cmap="magma")
    axes[1].set_ylabel("channel\n(cube-root envelope)")
    tick, channel = np.nonzero(stages.spikes)
    axes[2].scatter(tick * tick_ms, channel, s=2, marker="|", color="k")
    axes[2].set_ylim(-0.5, params.n_channels - 0.5)
    axes[2].set_ylabel("channel (spikes)")
    axes[2].set_xlabel("time (ms)")
    fig.tight_layout()
    save_figure(fig, out, dpi=72)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=positive_int, nargs="+", default=[1, 2])
    parser.add_argument("--example", default="3_theo_0.wav")
    parser.add_argument("--docs", action="store_true", help="copy the figure to docs/img/")
    args = parser.parse_args(argv)

    params = CochleaParams()
    rows = []
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            encoded = encode_fsdd("all", params, cache_dir=cache, workers=workers)
            encode_s = time.perf_counter() - start
            start = time.perf_counter()
            encode_fsdd("all", params, cache_dir=cache)
            cached_s = time.perf_counter() - start
        spikes = np.diff(encoded.offsets)
        seconds = encoded.n_ticks * params.tick_us / 1e6
        rows.append({
            "workers": workers,
            "recordings": len(encoded),
            "encode_s": encode_s,
            "cached_load_s": cached_s,
            "audio_s": float(seconds.sum()),
            "spikes": int(spikes.sum()),
            "spikes_per_recording": float(spikes.mean()),
            "rate_hz_per_channel": float(spikes.sum() / seconds.sum() / params.n_channels),
        })
    train_acc, test_acc = linear_probe_accuracy(encoded)
    print(f"linear probe on 8-segment spike rates: train {train_acc:.3f}, test {test_acc:.3f}")
    meta = {
        "params": {k: getattr(params, k) for k in params.__dataclass_fields__},
        "cache_key": params.key,
        "linear_probe": {"features": "segment_rates(8)", "ridge": 10.0, "train_acc": train_acc, "test_acc": test_acc},
    }
    write_results("encode_fsdd", rows, meta)

    figure = BENCH_DIR / f"fsdd_cochlea_{Path(args.example).stem}.png"
    plot_example(params, fsdd_root() / "recordings" / args.example, figure)
    print(f"wrote {figure}")
    if args.docs:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(figure, DOCS_IMG / figure.name)
        print(f"copied to {DOCS_IMG / figure.name}")


if __name__ == "__main__":
    raise SystemExit(run_main(main))
