"""Pictures of FSDD model files: confusion matrices, a spike raster of both hidden layers, weight and activation histograms.

Usage::

    python -m bench.fsdd_figures [--models FILE ...] [--split test|train|all] [--speaker NAME]
                                 [--recording 3_theo_0.wav] [--docs]

For each model file (default: the shipped ``models/fsdd_*.safetensors``), on the recordings of
``--split`` (the official split, ``test`` by default), optionally only those of one
``--speaker`` (a leave-one-speaker-out fold's test set), the integer network
(:func:`golden.network.run_network`, what the processor computes) runs over the model's
cochlea encoding (:func:`hw.host.cochlea_for`: the model's provenance ``cochlea`` fields, else
the default front end) for the model's ``n_steps`` and writes, under ``build/bench/``:

* ``fsdd_confusion_<model>_<set>.png``: true digit against decision, counts in the cells;
* ``fsdd_raster_<model>.png``: for ``--recording``, the cochlea's input events, the spikes of
  every hidden layer and the readout membrane per class, on one time axis;
* ``fsdd_histograms_<model>.png``: per layer, the weights, the biases and the currents the
  core receives over the set, each against the range of the fixed-point format the export
  chose (dashed), with the count of currents the saturation clamped.

``build/bench/fsdd_figures.json`` holds the accuracy, the confusion matrix and the saturation
counts per model and set; ``--docs`` copies the pictures to ``docs/img/``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from bench.common import BENCH_DIR, write_results
from golden.cli import existing_file, run_main
from golden.data.cochlea import encode_fsdd
from golden.data.events import bin_events
from golden.data.fsdd import SPLITS
from golden.errors import SpikestreamError
from golden.files import save_figure
from golden.model_file import load_model
from golden.network import run_network
from hw.board_model import model_steps
from hw.host import cochlea_for

REPO = Path(__file__).resolve().parent.parent
DOCS_IMG = REPO / "docs" / "img"
DEFAULT_MODELS = sorted((REPO / "models").glob("fsdd_*.safetensors"))


def model_counts(params, encoded, rows) -> np.ndarray:
    """``(len(rows), n_steps, n_inputs)`` event counts of recordings ``rows``, binned as the model's steps."""
    n_steps = model_steps(params)
    return np.stack([bin_events(encoded.events_of(int(i)), params.n_inputs, params.bin_ticks, t_start=0,
                                n_bins=n_steps) for i in rows])


def _fmt_range(fmt) -> tuple[float, float]:
    return fmt.min_int * fmt.lsb, fmt.max_int * fmt.lsb


def plot_confusion(matrix: np.ndarray, title: str, out: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.imshow(matrix, cmap="Blues")
    for (true, decided), count in np.ndenumerate(matrix):
        if count:
            ax.text(decided, true, str(count), ha="center", va="center", fontsize=8,
                    color="white" if count > matrix.max() / 2 else "black")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("decision")
    ax.set_ylabel("digit spoken")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, out, dpi=80)
    plt.close(fig)


def plot_raster(params, trace, events, name: str, title: str, out: Path) -> None:
    """Input events, each hidden layer's spikes and the readout membrane of one recording (``trace`` unbatched)."""
    import matplotlib.pyplot as plt

    step_ms = params.bin_ticks / 1000
    hidden = trace.layers[:-1]
    fig, axes = plt.subplots(len(hidden) + 2, 1, figsize=(7, 2 + 1.8 * (len(hidden) + 1)), sharex=True,
                             height_ratios=[1] + [1.5] * len(hidden) + [1])
    window = trace.n_steps * params.bin_ticks
    inside = events[events["t"] < window]
    axes[0].scatter(inside["t"] / 1000, inside["channel"], s=1, marker="|", color="k")
    axes[0].set_ylabel(f"cochlea\nchannel\n({len(inside)} events)")
    axes[0].set_title(title, fontsize=9)
    for index, (ax, layer) in enumerate(zip(axes[1:], hidden)):
        step, neuron = np.nonzero(layer.spikes.numpy())
        ax.scatter((step + 0.5) * step_ms, neuron, s=6, marker="|", color="C0")
        ax.set_ylim(-0.5, layer.spikes.shape[-1] - 0.5)
        ax.set_ylabel(f"layer {index}\n{layer.kind}\n({len(step)} spikes)")
    readout = trace.readout.neuron.u.numpy() * params.layers[-1].neuron.state_fmt.lsb
    decision = int(trace.prediction)
    times = (np.arange(trace.n_steps) + 0.5) * step_ms
    for digit in range(readout.shape[1]):
        axes[-1].plot(times, readout[:, digit], lw=2 if digit == decision else 0.7,
                      color="C3" if digit == decision else "0.6", label=f"{digit}" if digit == decision else None)
    axes[-1].set_ylabel("readout\nmembrane")
    axes[-1].legend(title="decision", fontsize=7, title_fontsize=7, loc="upper left")
    axes[-1].set_xlabel(f"time (ms): {trace.n_steps} steps of {step_ms:g} ms; {name}")
    fig.tight_layout()
    save_figure(fig, out, dpi=72)
    plt.close(fig)


def plot_histograms(params, trace, title: str, out: Path) -> list[dict]:
    """Per layer: weights, biases and currents against their formats' ranges; returns the saturation counts."""
    import matplotlib.pyplot as plt

    n = len(params.layers)
    fig, axes = plt.subplots(n, 3, figsize=(9, 2.2 * n + 0.6))
    axes = np.atleast_2d(axes)
    counts = []
    for i, (layer, layer_trace) in enumerate(zip(params.layers, trace.layers)):
        current_fmt = layer.neuron.input_fmt
        saturated = int(layer_trace.current_saturated.sum())
        panels = (("weights", layer.weight_q.ravel(), layer.weight_fmt),
                  ("biases", layer.bias_q.ravel(), layer.bias_fmt),
                  ("currents", layer_trace.currents.numpy().ravel(), current_fmt))
        for ax, (what, values, fmt) in zip(axes[i], panels):
            lo, hi = _fmt_range(fmt)
            ax.hist(values * fmt.lsb, bins=80, color="C0", log=what != "biases")
            for edge in (lo, hi):
                ax.axvline(edge, color="C3", ls="--", lw=1)
            ax.set_xlim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
            note = f", {saturated} clamped" if what == "currents" else ""
            ax.set_title(f"layer {i} ({layer.kind}) {what}: {fmt}{note}", fontsize=8)
            ax.tick_params(labelsize=7)
        counts.append({"layer": i, "kind": layer.kind, "currents": int(layer_trace.currents.numel()),
                       "currents_clamped": saturated,
                       "current_peak_of_range": float(np.abs(layer_trace.currents.numpy()).max()
                                                      / max(-current_fmt.min_int, current_fmt.max_int))})
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, out, dpi=72)
    plt.close(fig)
    return counts


def _set_name(split: str, speaker: str | None) -> str:
    return f"speaker-{speaker}" if speaker else split


def figures_for(model: Path, split: str, speaker: str | None, recording: str, out_dir: Path) -> tuple[dict, list[Path]]:
    """Every picture of one model file; returns its JSON row and the files written."""
    params = load_model(model)
    cochlea = cochlea_for(params)
    everything = encode_fsdd("all", cochlea)
    chosen = everything.split(split)
    rows = np.arange(len(chosen))
    if speaker is not None:
        rows = np.flatnonzero(chosen.speakers == speaker)
        if not len(rows):
            raise SpikestreamError(f"no {split} recording of speaker {speaker!r}; speakers: "
                                   f"{', '.join(sorted(set(chosen.speakers)))}")
    trace = run_network(params, model_counts(params, chosen, rows))
    digits = chosen.digits[rows]
    decisions = trace.prediction.numpy()
    matrix = np.zeros((10, 10), dtype=np.int64)
    np.add.at(matrix, (digits, decisions), 1)
    accuracy = float((digits == decisions).mean())
    set_name = _set_name(split, speaker)
    stem = model.stem
    files = [out_dir / f"fsdd_confusion_{stem}_{set_name}.png", out_dir / f"fsdd_raster_{stem}.png",
             out_dir / f"fsdd_histograms_{stem}.png"]
    plot_confusion(matrix, f"{model.name}, {set_name} set: {accuracy:.1%} of {len(rows)} (integer network)", files[0])

    names = list(everything.names)
    if recording not in names:
        raise SpikestreamError(f"--recording {recording}: not an FSDD recording name (e.g. 3_theo_0.wav)")
    one = names.index(recording)
    one_trace = run_network(params, model_counts(params, everything, [one])[0])
    plot_raster(params, one_trace, everything.events_of(one), recording,
                f"{model.name}: {recording} (digit {everything.digits[one]}, decision {int(one_trace.prediction)})",
                files[1])
    saturation = plot_histograms(params, trace, f"{model.name}: formats chosen by the export (dashed: their range), "
                                                f"currents over the {set_name} set ({len(rows)} recordings)", files[2])
    row = {"model": model.name, "set": set_name, "recordings": int(len(rows)), "accuracy": accuracy,
           "confusion": matrix.tolist(), "saturation": saturation,
           "kinds": "-".join(layer.kind for layer in params.layers[:-1])}
    return row, files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fsdd_figures", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", type=existing_file, default=DEFAULT_MODELS, metavar="FILE",
                        help="model files (default: models/fsdd_*.safetensors)")
    parser.add_argument("--split", choices=SPLITS, default="test", help="official split to evaluate (default test)")
    parser.add_argument("--speaker", help="only this speaker's recordings of the split (a LOSO fold's test set)")
    parser.add_argument("--recording", default="3_theo_0.wav", help="recording of the raster (default 3_theo_0.wav)")
    parser.add_argument("--docs", action="store_true", help="copy the pictures to docs/img/")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    if not args.models:
        parser.error("no model files: pass --models")
    out_dir = BENCH_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, written = [], []
    for model in args.models:
        row, files = figures_for(Path(model), args.split, args.speaker, args.recording, out_dir)
        rows.append(row)
        written += files
    for row in rows:
        for layer in row["saturation"]:
            print(f"{row['model']} layer {layer['layer']} ({layer['kind']}): currents reach "
                  f"{layer['current_peak_of_range']:.0%} of the format's range, {layer['currents_clamped']} of "
                  f"{layer['currents']} clamped")
    write_results("fsdd_figures", rows, {"split": args.split, "speaker": args.speaker, "recording": args.recording},
                  columns=["model", "kinds", "set", "recordings", "accuracy"])
    for path in written:
        print(f"wrote {path}")
        if args.docs:
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, DOCS_IMG / path.name)
    if args.docs:
        print(f"copied {len(written)} pictures to {DOCS_IMG}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
