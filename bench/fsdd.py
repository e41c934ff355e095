"""FSDD spoken digits, audio to integer network: accuracy and cost per neuron type.

``python -m bench.fsdd`` measures, for each neuron type, first the leave-one-speaker-out (LOSO)
accuracy: one network per FSDD speaker, trained by :mod:`golden.train` on the other four
speakers' recordings with the default settings and seed (``split=<speaker>``, checkpoints in
``build/train/loso/<neuron>_e<epochs>_a<augment>/<speaker>/``, reused when finished with the same
settings), exported, and run float and integer on all 500 recordings of the held-out speaker;
the table gives every fold, the mean, the worst fold and the training time of each fold.

Then, on the official split, it takes the network trained by
:mod:`golden.train` with its default settings (reusing ``build/train/<neuron>/checkpoint.pt``
when it holds a finished run of exactly those settings, training otherwise), quantises it
with :func:`golden.export.export_network` and measures on the 250 test recordings:

* test accuracy of the float network (eval mode), of the integer network (:func:`golden.network.run_network`,
  the bit-exact model of the hardware) and how often the two decisions agree;
* parameters (trainable, float) and the integer words the hardware stores;
* state buffers: words and bits of neuron state (and accumulators) the hardware keeps;
* spike sparsity: spikes per neuron per step of each hidden layer (integer model);
* synaptic operations per sample: one weight-column addition per input event or spike and
  target neuron (the event-driven cost), beside the dense ``T * sum(n_in * n_out)``;
* the processor RTL (``--rtl N``): N test recordings through the generated Verilog on Icarus,
  compared bit for bit with the integer network, and the clock cycles each takes from its first
  event to its SCORES beat (kept in ``build/bench/fsdd_rtl_<neuron>_lanes<L>.json`` and reused
  while the network is unchanged);
* the bitstream figures (LUT4, FF, MULT18X18D, DP16KD, Fmax, timing, lanes, clock) from the
  ``report.json`` of ``python -m hw.build --board ulx3s --model .../fsdd_<neuron>.safetensors``
  (``build/ulx3s-<variant>-fsdd_<neuron>/``, or ``--builds DIR...``).

Hardware figures are measurements only; "not yet measured" / "not built yet" otherwise.

Writes ``docs/fsdd_results.md`` (the tables and the settings) and ``build/bench/fsdd.json``.
Screening runs (``--folds`` of only some speakers, ``--epochs``, ``--augment``, ``--train-limit``
other than the defaults, ``--no-official``) write ``build/bench/fsdd_screen_<tag>.json`` and
``.md`` instead and leave the docs alone.
``--quick`` trains small networks for two epochs on a subset (a smoke run of the whole
pipeline, a couple of minutes); it writes ``build/bench/fsdd_quick.json`` and
``build/bench/fsdd_quick.md`` and leaves the docs alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import BENCH_DIR, write_results
from golden.cli import existing_dir, non_negative_int, positive_int, run_main
from golden.data import REPO_ROOT
from golden.data.fsdd import FSDD_SPEAKERS
from golden.files import write_bytes, write_text
from golden.kinds import network_kinds, word_bits
from golden.train import (
    NEURON_CHOICES,
    TrainConfig,
    evaluate,
    export_trained,
    load_checkpoint,
    load_speech_data,
    parameter_count,
    spread_indices,
    train,
)
from hw.build import DEFAULT_PROCESSOR_CLOCK_MHZ

NOT_MEASURED = "not yet measured"
DOCS = REPO_ROOT / "docs"
TRAIN_DIR = REPO_ROOT / "build" / "train"
DEFAULT_NEURONS = ("csilif", "silif", "rlif")


def quick_config(neuron: str) -> TrainConfig:
    return TrainConfig(neuron=neuron, hidden=32, epochs=2, train_limit=300, test_limit=100, augment=1)


def obtain_model(config: TrainConfig, out_dir: Path, retrain: bool, log=print):
    """``(model, config, history, train_data, test_data, reused)``.

    A finished checkpoint in ``out_dir`` whose settings equal ``config`` in everything but the
    number of epochs is reused (the table states each row's epochs); anything else is trained
    afresh with ``config``. ``train_data`` of a reused checkpoint holds the clean encodings only
    (what the export calibrates on).
    """
    checkpoint = out_dir / "checkpoint.pt"
    if checkpoint.is_file() and not retrain:
        model, saved, history = load_checkpoint(checkpoint)
        if dataclasses.replace(saved, epochs=config.epochs) == config and len(history) == saved.epochs:
            log(f"{config.neuron}: reusing {checkpoint} ({saved.epochs} epochs)")
            train_data = load_speech_data("train", saved.bin_ms, saved.window_ms, saved.train_limit, split=saved.split)
            test_data = load_speech_data("test", saved.bin_ms, saved.window_ms, saved.test_limit, split=saved.split)
            return model, saved, history, train_data, test_data, True
        log(f"{config.neuron}: {checkpoint} holds other settings or an unfinished run; training afresh")
    result = train(config, out_dir, log=log)
    return result.model, config, result.history, result.train_data, result.test_data, False


def run_tag(config: TrainConfig) -> str:
    """Folder name of a training recipe: neuron, epochs, augmented copies (and the training subset)."""
    limit = f"_n{config.train_limit}" if config.train_limit else ""
    return f"{config.neuron}_e{config.epochs}_a{config.augment}{limit}"


def loso_fold(config: TrainConfig, retrain: bool, log=print) -> dict:
    """One leave-one-speaker-out fold (``config.split`` is the held-out speaker): train or reuse
    ``build/train/loso/<tag>/<speaker>/checkpoint.pt``, export, and measure float and integer
    accuracy on the held-out speaker's recordings."""
    out_dir = TRAIN_DIR / "loso" / run_tag(config) / config.split
    model, config, history, train_data, test_data, reused = obtain_model(config, out_dir, retrain, log)
    fold = {"speaker": config.split, "epochs": len(history), "train_seconds": sum(h["seconds"] for h in history),
            "n_train": len(train_data), "n_test": len(test_data), "reused_checkpoint": reused,
            "float_acc": 100 * evaluate(model, test_data)["acc"], "int_acc": None, "agreement": None}
    try:
        exported = export_trained(model, config, train_data, test_data, None, log=lambda *a: None)
    except ValueError as exc:
        fold["int_acc"] = f"no export ({exc})"
    else:
        fold.update(int_acc=100 * exported["int_acc"], agreement=100 * exported["agreement"])
    log(f"{config.neuron} LOSO {config.split}: float {fold['float_acc']:.1f} %, integer {_cell(fold['int_acc'])} %, "
        f"{fold['train_seconds']:.0f} s training")
    return fold


def loso_summary(folds: list[dict]) -> dict:
    """Mean and worst fold, float and integer (integer ``None`` unless every fold exported)."""
    floats = [f["float_acc"] for f in folds]
    ints = [f["int_acc"] for f in folds]
    ints = ints if all(isinstance(v, float) for v in ints) else None
    return {"float_mean": float(np.mean(floats)), "float_worst": float(min(floats)),
            "int_mean": float(np.mean(ints)) if ints else None, "int_worst": float(min(ints)) if ints else None,
            "int_float_max_gap": float(max(abs(a - b) for a, b in zip(floats, ints))) if ints else None,
            "train_seconds_mean": float(np.mean([f["train_seconds"] for f in folds]))}


def flames_loso() -> dict:
    """The FLAMES stack's LOSO rows (``python -m bench.flames_fsdd --folds``, tag
    :func:`bench.flames_fsdd.loso_tag`): folds by tag from every
    ``build/bench/flames_fsdd_loso_*.json`` that holds all five folds."""
    rows = {}
    for path in sorted(BENCH_DIR.glob("flames_fsdd_loso_*.json")):
        for tag, folds in json.loads(path.read_text())["meta"]["loso"].items():
            if sorted(f["speaker"] for f in folds) == sorted(FSDD_SPEAKERS):
                rows[tag] = folds
    return rows


def loso_table(loso: dict, official: dict) -> list[str]:
    """The LOSO table: per neuron the folds (float / integer), mean, worst fold, the official split."""
    speakers = [s for s in FSDD_SPEAKERS if any(f["speaker"] == s for folds in loso.values() for f in folds)]
    lines = [
        "| neuron | epochs | augmented copies | " + " | ".join(speakers) + " | LOSO mean float / integer "
        "| worst fold float / integer | official split float / integer | training s / fold (mean) |",
        "|---|---:|---:|" + "---:|" * len(speakers) + "---:|---:|---:|---:|",
    ]
    for neuron, folds in loso.items():
        by_speaker = {f["speaker"]: f for f in folds}
        cells = [f"{_cell(by_speaker[s]['float_acc'])} / {_cell(by_speaker[s]['int_acc'])}" if s in by_speaker else "-"
                 for s in speakers]
        summary = loso_summary(folds)
        row = official.get(neuron)
        official_cell = f"{_cell(row['float_acc'])} / {_cell(row['int_acc'])}" if row else "-"
        lines.append(
            f"| {neuron} | {folds[0]['epochs']} | {folds[0].get('augment', 0)} | " + " | ".join(cells)
            + f" | **{_cell(summary['float_mean'])} / {_cell(summary['int_mean'])}** "
            f"| {_cell(summary['float_worst'])} / {_cell(summary['int_worst'])} | {official_cell} "
            f"| {_cell(summary['train_seconds_mean'])} |"
        )
    lines += ["", "Training seconds per fold: " + "; ".join(
        f"{neuron} " + ", ".join(f"{f['speaker']} {f['train_seconds']:.0f}" for f in folds) for neuron, folds in loso.items())
        + "."]
    return lines


def integer_words(params) -> int:
    """Integer words the hardware stores: weights, biases and per-neuron coefficients."""
    total = 0
    for layer in params.layers:
        total += layer.weight_q.size + layer.bias_q.size
        for f in dataclasses.fields(layer.neuron):
            value = getattr(layer.neuron, f.name)
            if isinstance(value, np.ndarray) and value.dtype == np.int64:
                total += value.size
            elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                total += 1
    return int(total)


def state_buffers(params) -> dict:
    """Neuron state words and bits (plus the per-neuron accumulator bits) over all layers.

    The state is each core's state memory word, as its kind declares it (``state_words``):
    bits are the whole word, words its multi-bit fields (a previous-spike flag is not a word).
    """
    words = bits = acc = 0
    for layer in params.layers:
        state = network_kinds()[layer.kind].state_words(layer.neuron)
        words += layer.n_out * sum(1 for name in state if word_bits({name: state[name]}) > 1)
        bits += layer.n_out * word_bits(state)
        acc += layer.n_out * layer.acc_bits
    return {"state_words": words, "state_bits": bits, "accumulator_bits": acc}


def synaptic_ops(params, trace) -> dict:
    """Event-driven weight-column additions per sample, and the dense equivalent."""
    batch = trace.counts.shape[0]
    ops = float(trace.counts.sum()) * params.layers[0].n_out
    for layer, nxt in zip(trace.layers[:-1], params.layers[1:]):
        ops += float(layer.spikes.sum()) * nxt.n_out
    dense = trace.n_steps * sum(layer.n_in * layer.n_out for layer in params.layers)
    return {"synops_per_sample": ops / batch, "dense_macs_per_sample": dense,
            "input_events_per_sample": float(trace.counts.sum()) / batch}


def rtl_subset(neuron: str, params, n_steps: int, n_recordings: int, lanes: int, log=print) -> dict:
    """Run ``n_recordings`` test recordings (spread over the split) through the processor's
    generated Verilog on Icarus (``sim/tb_processor.py``, timed by :mod:`sim.tb_processor_timed`)
    and compare every spike, readout membrane, score and the decision with
    :func:`golden.network.run_network`.

    Each recording's cochlea events inside the window go in as channel events with their own
    ticks, back to back (no idle cycles, no backpressure on the scores), then END. Returns
    ``{"identical": k, "runs": n, "first_mismatch": text or None, "lanes": lanes,
    "cycles": [...]}``; ``cycles`` holds, per recording whose scores came out, the clock cycles
    from the first accepted input event to the SCORES beat.
    """
    import pickle
    from golden.data.cochlea import encode_fsdd
    from golden.network import run_network
    from hw.processor.network import NetworkProcessor
    from sim.processor_model import expected_from_trace
    from sim.runner import SIM_BUILD, CocotbFailure, run_cocotb

    from sim.tb_processor_timed import CYCLES_FILE

    encoded = encode_fsdd("test")
    build_name = f"fsdd/{neuron}"
    build = SIM_BUILD / build_name
    build.mkdir(parents=True, exist_ok=True)
    params_path = build / "params.pkl"
    write_bytes(params_path, pickle.dumps(params))
    dut = NetworkProcessor(params, n_steps=n_steps, lanes=lanes)
    indices = spread_indices(len(encoded), n_recordings)
    identical, first, cycles = 0, None, []
    for i in indices:
        events = encoded.events_of(int(i))
        events = events[events["t"] < n_steps * params.bin_ticks]
        expected = expected_from_trace(run_network(params, events, n_steps))
        beats = [{"kind": 0, "channel": int(e["channel"]), "tick": int(e["t"])} for e in events]
        beats.append({"kind": 1, "channel": 0, "tick": 0})
        config = {
            "params_path": str(params_path), "n_steps": n_steps, "lanes": lanes, "beats": beats,
            "expected": dataclasses.asdict(expected) | {"readout_u": np.asarray(expected.readout_u).tolist()},
            "idle_prob": 0.0, "backpressure_prob": 0.0, "seed": 11, "max_cycles": 4_000_000, "expected_drops": {},
        }
        (build / CYCLES_FILE).unlink(missing_ok=True)
        start = time.perf_counter()
        try:
            run_cocotb(dut, test_module="sim.tb_processor_timed", build_name=build_name, config=config,
                       testcase="processor_matches_golden_timed")
            failures = []
        except CocotbFailure as exc:
            failures = [str(exc)]
        timing = json.loads((build / CYCLES_FILE).read_text()) if (build / CYCLES_FILE).is_file() else {}
        if timing.get("cycles") is not None:
            cycles.append(int(timing["cycles"]))
        name = encoded.names[int(i)]
        took = f"{len(events)} events, {timing.get('cycles')} cycles; {time.perf_counter() - start:.0f} s"
        if failures:
            first = first or f"{name}: {failures[0]}"
            log(f"{neuron} RTL {name}: MISMATCH ({took})\n{failures[0][:600]}")
        else:
            identical += 1
            log(f"{neuron} RTL {name}: identical to the golden network ({took})")
    return {"identical": identical, "runs": len(indices), "first_mismatch": first, "lanes": lanes, "cycles": cycles}


def model_digest(params) -> str:
    """SHA-256 of the integer network: its model file without the provenance
    (:func:`golden.model_file.save_model` is deterministic)."""
    import hashlib
    import tempfile

    from golden.model_file import save_model

    with tempfile.TemporaryDirectory() as tmp:
        path = save_model(Path(tmp) / "model.safetensors", dataclasses.replace(params, provenance={}))
        return hashlib.sha256(path.read_bytes()).hexdigest()


def hardware_source() -> str:
    """The commit the processor RTL came from, ``+ uncommitted hw/ changes`` when ``hw/`` differs."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + (" + uncommitted hw/ changes" if git("status", "--porcelain", "--", "hw") else "")


def rtl_record_path(neuron: str, lanes: int) -> Path:
    return BENCH_DIR / f"fsdd_rtl_{neuron}_lanes{lanes}.json"


def stored_rtl(neuron: str, digest: str, n_steps: int) -> list[dict]:
    """The :func:`rtl_subset` outcomes stored for this exact network (model digest and steps),
    one per number of lanes, fewest lanes first."""
    records = []
    for path in sorted(BENCH_DIR.glob(f"fsdd_rtl_{neuron}_lanes*.json")):
        record = json.loads(path.read_text())
        if record.get("model_sha256") == digest and record.get("n_steps") == n_steps:
            records.append(record)
    return sorted(records, key=lambda r: r["lanes"])


def store_rtl(neuron: str, params, n_steps: int, n_recordings: int, lanes: int, log=print) -> dict:
    """:func:`rtl_subset`, its outcome kept in ``build/bench/fsdd_rtl_<neuron>_lanes<L>.json`` with
    the model digest, the hardware commit and the date (later runs reuse it for that network)."""
    hw = hardware_source()
    outcome = rtl_subset(neuron, params, n_steps, n_recordings, lanes, log)
    outcome.update(neuron=neuron, model_sha256=model_digest(params), n_steps=n_steps, hardware=hw,
                   date=time.strftime("%Y-%m-%d %H:%M %Z"))
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    write_text(rtl_record_path(neuron, lanes), json.dumps(outcome, indent=1) + "\n")
    return outcome


#: Build folders of ``python -m hw.build --board ulx3s --model .../fsdd_<neuron>.safetensors``:
#: ``build/ulx3s-<variant>-fsdd_<neuron>/`` holding ``report.json`` (:class:`hw.bitstream.report.BuildReport`).
BUILD_GLOB = "ulx3s-*-fsdd_{neuron}"
_DESIGN_LANES_STEPS = re.compile(r"lanes=(\d+), steps=(\d+)")


def find_build(neuron: str, dirs: list[Path] | None = None) -> Path | None:
    """The newest ``report.json`` of a processor build of ``fsdd_<neuron>``, or ``None``.

    ``dirs`` are build folders to look in (``--builds``); by default every
    ``build/ulx3s-*-fsdd_<neuron>/``. A folder counts for ``neuron`` when its report's design
    names the model file ``fsdd_<neuron>.safetensors``.
    """
    folders = list(dirs) if dirs else sorted((REPO_ROOT / "build").glob(BUILD_GLOB.format(neuron=neuron)))
    reports = []
    for folder in folders:
        path = Path(folder) / "report.json"
        if path.is_file() and f"fsdd_{neuron}.safetensors" in json.loads(path.read_text()).get("design", ""):
            reports.append(path)
    return max(reports, key=lambda p: p.stat().st_mtime, default=None)


def build_figures(report_path: Path) -> dict:
    """Resources, clock and timing of one build, from its ``report.json``.

    Raises ``ValueError`` when the report is not a processor build (no ``lanes=``/``steps=`` in
    its design) or has no clock.
    """
    report = json.loads(Path(report_path).read_text())
    match = _DESIGN_LANES_STEPS.search(report.get("design", ""))
    if not match or not report.get("clocks"):
        raise ValueError(f"{report_path}: not a processor build report with a clock (design {report.get('design')!r})")
    worst = min(report["clocks"], key=lambda clock: clock["fmax_mhz"])
    used = {name: entry["used"] for name, entry in report["utilisation"].items()}
    available = {name: entry["available"] for name, entry in report["utilisation"].items()}
    try:
        folder = str(Path(report_path).parent.resolve().relative_to(REPO_ROOT))
    except ValueError:
        folder = str(Path(report_path).parent)
    return {
        "folder": folder,
        "design": report["design"],
        "device": report["device"],
        "lanes": int(match.group(1)),
        "n_steps": int(match.group(2)),
        "clock_mhz": float(report["pll"].get("output_mhz", report["requested_clock_mhz"])),
        "used": used,
        "available": available,
        "fmax_mhz": float(worst["fmax_mhz"]),
        "timing_met": bool(report["timing_met"]),
        "critical_path": report.get("critical_path"),
        "total_seconds": report.get("total_seconds"),
    }


def measure(neuron: str, config: TrainConfig, out_dir: Path, retrain: bool, log=print, rtl: int = 0,
            lanes: int = 8, builds: list[Path] | str | None = "default") -> dict:
    """One row of the table for ``neuron`` (see the module docstring).

    ``rtl`` test recordings go through the processor RTL at ``lanes`` lanes (0: reuse a stored
    outcome for this network, if any); ``builds`` are hw.build folders to read the bitstream
    report from, ``"default"`` for ``build/ulx3s-*-fsdd_<neuron>/``, ``None`` for none.
    """
    start = time.perf_counter()
    model, config, history, train_data, test_data, reused = obtain_model(config, out_dir, retrain, log)
    float_eval = evaluate(model, test_data)
    row = {
        "neuron": neuron,
        "hidden": config.hidden,
        "parameters": parameter_count(model),
        "float_acc": 100 * float_eval["acc"],
        "float_acc_softmax_sum": 100 * float_eval["acc_softmax_sum"],
        "train_seconds": sum(h["seconds"] for h in history),
        "epochs": len(history),
        "reused_checkpoint": reused,
        "int_acc": None,
        "agreement": None,
        "int_words": None,
        "state_words": None,
        "state_bits": None,
        "accumulator_bits": None,
        "spike_rate": [round(r, 4) for r in float_eval["spike_rate"]],
        "synops_per_sample": None,
        "dense_macs_per_sample": None,
        "rtl_acc_subset": NOT_MEASURED,
        "rtl": [],
        "build": None,
    }
    report = find_build(neuron, None if builds == "default" else builds) if builds else None
    if report is not None:
        row["build"] = build_figures(report)
        log(f"{neuron}: build report {report}")
    try:
        exported = export_trained(model, config, train_data, test_data, out_dir / f"fsdd_{neuron}.safetensors", log=log)
    except ValueError as exc:
        row["int_acc"] = f"no export ({exc})"
        log(f"{neuron}: {exc}")
    else:
        params, trace = exported["params"], exported["trace"]
        row.update(
            int_acc=100 * exported["int_acc"],
            agreement=100 * exported["agreement"],
            int_words=integer_words(params),
            spike_rate=[round(r, 4) for r in exported["spike_rate_int"]],
            saturations=exported["saturations"],
            formats=exported["formats"],
            model_file=exported["model_file"],
            **state_buffers(params),
            **synaptic_ops(params, trace),
        )
        digest = model_digest(params)
        checked_in = REPO_ROOT / "models" / f"fsdd_{neuron}.safetensors"
        if checked_in.is_file() and checked_in.read_bytes() == Path(exported["model_file"]).read_bytes():
            row["checked_in_model"] = str(checked_in.relative_to(REPO_ROOT))
        if rtl:
            store_rtl(neuron, params, config.n_steps, rtl, lanes, log)
        row["rtl"] = stored_rtl(neuron, digest, config.n_steps)
        for record in row["rtl"]:
            log(f"{neuron}: RTL at {record['lanes']} lanes: {record['identical']} of {record['runs']} identical, "
                f"{record['date']} ({record['hardware']})")
        if row["rtl"]:
            main_record = next((r for r in row["rtl"] if r["lanes"] == lanes), row["rtl"][-1])
            row["rtl_acc_subset"] = f"{main_record['identical']} of {main_record['runs']} identical"
            row["rtl_first_mismatch"] = main_record["first_mismatch"]
    row["bench_seconds"] = time.perf_counter() - start
    return row


COLUMNS = ["neuron", "epochs", "parameters", "float_acc", "int_acc", "agreement", "rtl_acc_subset", "state_words",
           "state_bits", "spike_rate", "synops_per_sample", "dense_macs_per_sample"]
#: The processor top's default clock, at which RTL cycle counts are also given as time.
PROCESSOR_CLOCK_MHZ = DEFAULT_PROCESSOR_CLOCK_MHZ
NOT_BUILT = "not built yet"


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, list):
        return " / ".join(f"{v:.3f}" for v in value)
    return str(value)


def cycle_summary(record: dict | None) -> dict | None:
    """``{"mean", "max", "n"}`` of a stored RTL outcome's cycles per sample, or ``None``."""
    if not record or not record.get("cycles"):
        return None
    cycles = record["cycles"]
    return {"mean": float(np.mean(cycles)), "max": int(max(cycles)), "n": len(cycles)}


def _cycles_cell(summary) -> str:
    return f"{summary['mean']:,.0f} / {summary['max']:,}" if summary else NOT_MEASURED


def _time_cell(summary, clock_mhz: float) -> str:
    return f"{summary['mean'] / clock_mhz:,.0f} / {summary['max'] / clock_mhz:,.0f}" if summary else NOT_MEASURED


def rtl_table(rows: list[dict]) -> list[str]:
    lines = [
        "| neuron | lanes | RTL == golden (test recordings) | cycles / sample (mean / max) "
        f"| us / sample at {PROCESSOR_CLOCK_MHZ:g} MHz (mean / max) | RTL source | run |",
        "|---|---:|---|---:|---:|---|---|",
    ]
    for row in rows:
        if not row.get("rtl"):
            lines.append(f"| {row['neuron']} | - | {NOT_MEASURED} | {NOT_MEASURED} | {NOT_MEASURED} | - | - |")
        for record in row.get("rtl", []):
            summary = cycle_summary(record)
            lines.append(
                f"| {row['neuron']} | {record['lanes']} | {record['identical']} of {record['runs']} identical "
                f"| {_cycles_cell(summary)} | {_time_cell(summary, PROCESSOR_CLOCK_MHZ)} "
                f"| {record['hardware']} | {record['date']} |"
            )
    return lines


def build_table(rows: list[dict]) -> list[str]:
    lines = [
        "| neuron | build folder | lanes | clock (MHz) | LUT4 | FF | MULT18X18D | DP16KD | Fmax (MHz) | timing met "
        "| cycles / sample at these lanes (RTL, mean / max) | us / sample at this clock (mean / max) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for row in rows:
        build = row.get("build")
        if not build:
            lines.append(f"| {row['neuron']} | " + " | ".join([NOT_BUILT] + ["-"] * 10) + " |")
            continue
        record = next((r for r in row.get("rtl", []) if r["lanes"] == build["lanes"]), None)
        summary = cycle_summary(record)
        resources = " | ".join(f"{build['used'][name]:,} / {build['available'][name]:,}"
                               for name in ("LUT4", "FF", "MULT18X18D", "DP16KD"))
        lines.append(
            f"| {row['neuron']} | `{build['folder']}/` | {build['lanes']} | {build['clock_mhz']:g} | {resources} "
            f"| {build['fmax_mhz']:.1f} | {_cell(build['timing_met'])} | {_cycles_cell(summary)} "
            f"| {_time_cell(summary, build['clock_mhz'])} |"
        )
    return lines


def build_paragraph(row: dict) -> str:
    """What one bitstream build reported, in words (resources, timing, critical path)."""
    build = row["build"]
    used, available = build["used"], build["available"]
    verdict = "**timing met**" if build["timing_met"] else "**timing NOT met**"
    text = (
        f"**{row['neuron']}**: `python -m hw.build --board ulx3s --model build/train/{row['neuron']}/fsdd_{row['neuron']}.safetensors` "
        f"wrote `{build['folder']}/report.json`: {build['design']} on the {build['device']} at "
        f"{build['clock_mhz']:g} MHz, {verdict} (Fmax {build['fmax_mhz']:.1f} MHz); "
        + ", ".join(f"{name} {used[name]:,} / {available[name]:,}" for name in ("LUT4", "FF", "MULT18X18D", "DP16KD"))
        + (f"; the toolchain took {build['total_seconds']:.0f} s." if build.get("total_seconds") else ".")
    )
    if row.get("checked_in_model"):
        text += f" `{row['checked_in_model']}` is the same network."
    path = build.get("critical_path")
    if path:
        text += (
            f" Critical path {path['delay_ns']:.1f} ns on `{path['clock']}`: from `{path['start']}` "
            f"({path['clock_to_out_ns']:.1f} ns clock-to-out) through {len(path['cells']) - 2} logic cells to "
            f"`{path['end']}`; {path['logic_ns']:.1f} ns in cells, {path['routing_ns']:.1f} ns routing over "
            f"{path['hops']} nets."
        )
    return text


def loso_section(loso: dict, rows: list[dict]) -> list[str]:
    first = next(iter(loso.values()))[0]
    return [
        "## Leave-one-speaker-out: a voice the network never heard",
        "",
        f"Each fold trains on the other four speakers' recordings ({first['n_train']:,}) with the same settings "
        f"and seed and tests on the held-out speaker's {first['n_test']:,}; cells are float / integer accuracy (%). "
        "*Official split* is the network trained on index 5-49 of all five speakers and tested on index 0-4 "
        "(the same speakers: the table below). *Training s / fold* is wall-clock training time per fold on "
        "this machine (shared, so it moves with the load).",
        *([] if not any(name.startswith("flames ") for name in loso) else [
            "",
            "*flames hH eE aK [cnP] [nN]*: the FLAMES-style stack of [fsdd_flames.md](fsdd_flames.md), "
            "`python -m bench.flames_fsdd --hidden H --epochs E --augment K [--channel-norm P] [--train-limit N] "
            "--threads 1 --folds` (P: the cochlea's per-channel gain normalisation, [training.md](training.md); "
            "N: trained on N of each fold's 2,000 recordings, spread over speakers and digits)."]),
        "",
        *loso_table(loso, {row["neuron"]: row for row in rows}),
        "",
    ]


def markdown(rows: list[dict], config_text: str, quick: bool, loso: dict | None = None, command: str = "") -> str:
    head = ["neuron", "epochs", "parameters", "float acc (%)", "integer acc (%)", "int == float (%)", "RTL == golden (subset)",
            "state words", "state bits", "spikes / neuron / step (L1 / L2)", "synaptic ops / sample",
            "dense MACs / sample"]
    lines = [
        "# FSDD spoken digits: float, integer and hardware results" + (" (quick run)" if quick else ""),
        "",
        f"Written by `{command or 'python -m bench.fsdd'}` on {time.strftime('%Y-%m-%d %H:%M %Z')}; "
        "JSON in `build/bench/fsdd" + ("_quick" if quick else "") + ".json`. How the networks are trained and "
        "exported: [training.md](training.md). Data: Free Spoken Digit Dataset (Jakobovski, CC BY-SA 4.0), "
        "official split (index 0-4 test: 250 recordings; 5-49 train: 2,250), encoded by the cochlea of "
        "[data.md](data.md). The FLAMES-style SA-HiPPO stack (DH-LIF -> SA-HiPPO memories -> readout, "
        "event-driven rather than stepped) has its own table: [fsdd_flames.md](fsdd_flames.md).",
        "",
        config_text,
        "",
        *(loso_section(loso, rows) if loso else []),
        "## Official split",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in COLUMNS) + " |")
    lines += [
        "",
        "Columns: *float acc* is the trained float32 network in eval mode (batch norm with running "
        "statistics, no dropout), decision argmax of the summed readout membrane; *integer acc* "
        "the exported integer network (`golden.network.run_network`, bit-exact model of the hardware); "
        "*int == float* how many test decisions of the integer network equal those of the folded float64 "
        "network; *RTL == golden* test recordings, spread over the split, whose every hidden spike, readout "
        "membrane, score and decision in the processor's Verilog equal the integer network's (table below); "
        "*parameters* trainable float parameters; *state words/bits* neuron state the hardware "
        "keeps for all layers (C-SiLIF: re, im; SiLIF: u, w; refractory LIF: u, R and the previous "
        "spike; readout: u); *synaptic ops* weight-column additions per test recording (one per "
        "input event or spike and target neuron), beside the dense count `T * sum(n_in * n_out)`; "
        "*spikes / neuron / step* of the two hidden layers, integer model where exported.",
        "",
        *([] if quick else [f"![learning curves, {r['neuron']}](img/fsdd_curves_{r['neuron']}.png)" for r in rows] + [""]),
        "## Processor RTL",
        "",
        "`python -m bench.fsdd --rtl N --rtl-neurons ... --lanes L` runs N test recordings through the "
        "processor's generated Verilog on Icarus (`sim/tb_processor.py`, timed by `sim/tb_processor_timed.py`): "
        "each recording's cochlea events inside the window, back to back, then END; no idle cycles, no "
        "backpressure on the scores. *cycles / sample* counts clock cycles from the first accepted input event "
        "to the SCORES beat, so it includes the input phase (the events arrive as fast as the processor takes "
        "them); *us / sample* is that count at the processor top's default clock. The outcome is kept in "
        "`build/bench/fsdd_rtl_<neuron>_lanes<L>.json` with the model file's digest and reused while the network "
        "is the same; *RTL source* is the commit the Verilog was generated from.",
        "",
        *rtl_table(rows),
        "",
        "## Bitstreams",
        "",
        "Read from the `report.json` of `python -m hw.build --board ulx3s --model "
        "build/train/<neuron>/fsdd_<neuron>.safetensors` (folder `build/ulx3s-<variant>-fsdd_<neuron>/`, "
        "or the folders given with `--builds`); resources as used / available on the device, Fmax of the "
        f"slowest clock. \"{NOT_BUILT}\" where no such build has been run; no number here is estimated.",
        "",
        *build_table(rows),
    ]
    built = [row for row in rows if row.get("build")]
    if built:
        lines += [""] + [line for row in built for line in (build_paragraph(row), "")][:-1]
    mismatches = [r for r in rows if r.get("rtl_first_mismatch")]
    if mismatches:
        lines += ["", "## RTL mismatches", ""]
        lines += [f"* {r['neuron']}: {' '.join(r['rtl_first_mismatch'][:1200].split())}" for r in mismatches]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fsdd", description=__doc__.split("\n\n")[0])
    defaults = TrainConfig()
    parser.add_argument("--neurons", nargs="+", choices=sorted(NEURON_CHOICES), default=list(DEFAULT_NEURONS))
    parser.add_argument("--quick", action="store_true",
                        help="small networks, 2 epochs, subset, one LOSO fold unless --folds (smoke run)")
    parser.add_argument("--folds", nargs="*", choices=FSDD_SPEAKERS, default=None, metavar="SPEAKER",
                        help=f"held-out speakers of the LOSO folds (default all: {' '.join(FSDD_SPEAKERS)}; "
                             "none: no LOSO)")
    parser.add_argument("--no-official", action="store_true", help="leave out the official-split networks")
    parser.add_argument("--epochs", type=positive_int, default=None, help=f"training epochs (default {defaults.epochs})")
    parser.add_argument("--augment", type=non_negative_int, default=None, metavar="K",
                        help=f"augmented copies per training recording (default {defaults.augment})")
    parser.add_argument("--train-limit", type=positive_int, default=None, metavar="N",
                        help="train on N recordings of each split, spread over speakers and digits (screening)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help=f"torch CPU threads of each training (default {defaults.threads})")
    parser.add_argument("--retrain", action="store_true", help="train even when a matching checkpoint exists")
    parser.add_argument("--rtl", type=non_negative_int, default=0, metavar="N",
                        help="run N test recordings through the processor's Verilog (Icarus) for --rtl-neurons")
    parser.add_argument("--rtl-neurons", nargs="+", choices=sorted(NEURON_CHOICES), default=["csilif"])
    parser.add_argument("--lanes", type=positive_int, default=8, help="neuron lanes per layer of the simulated processor")
    parser.add_argument("--builds", nargs="+", type=existing_dir, metavar="DIR",
                        help="hw.build output folders to read report.json from (default: build/ulx3s-*-fsdd_<neuron>/)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    log = lambda *a: print(*a, flush=True)  # noqa: E731
    overrides = {name: value for name in ("epochs", "augment", "threads", "train_limit")
                 if (value := getattr(args, name)) is not None and value != getattr(defaults, name)}
    folds = list(args.folds if args.folds is not None else (FSDD_SPEAKERS[:1] if args.quick else FSDD_SPEAKERS))
    screening = not args.quick and (bool(set(overrides) - {"threads"}) or folds != list(FSDD_SPEAKERS)
                                     or args.no_official)

    def recipe(neuron: str) -> TrainConfig:
        return dataclasses.replace(quick_config(neuron) if args.quick else TrainConfig(neuron=neuron), **overrides)

    rows, loso = [], {}
    for neuron in args.neurons:
        config = recipe(neuron)
        if folds:
            loso[neuron] = [loso_fold(dataclasses.replace(config, split=speaker), args.retrain, log) | {"augment": config.augment}
                            for speaker in folds]
        if args.no_official:
            continue
        if args.quick:
            out_dir = TRAIN_DIR / "quick" / neuron
        elif config == TrainConfig(neuron=neuron):
            out_dir = TRAIN_DIR / neuron
        else:
            out_dir = TRAIN_DIR / "official" / run_tag(config)
        rtl = args.rtl if neuron in args.rtl_neurons else 0
        rows.append(measure(neuron, config, out_dir, args.retrain, log, rtl=rtl, lanes=args.lanes,
                            builds=None if args.quick or screening else (args.builds or "default")))
        if not args.quick and not screening:
            (DOCS / "img").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out_dir / "curves.png", DOCS / "img" / f"fsdd_curves_{neuron}.png")
    ref = recipe("csilif")
    config_text = (
        f"Settings: 32 cochlea channels -> {ref.hidden} -> {ref.hidden} -> 10 (two hidden SNNLayer blocks, "
        f"leaky-integrator readout), {ref.bin_ms} ms steps over a {ref.window_ms} ms window "
        f"({ref.n_steps} steps), epochs as in the table, batch {ref.batch_size}, Adam lr {ref.lr} (cosine), "
        f"dropout {ref.dropout}, loss {ref.loss}, seed {ref.seed}, {ref.threads} CPU threads, "
        f"{ref.augment} augmented copies of each training recording (`golden.data.augment`)"
        + (f", {ref.train_limit} train / {ref.test_limit} test recordings" if args.quick else "") + "."
    )
    command = " ".join(["python -m bench.fsdd", *(sys.argv[1:] if argv is None else argv)])
    if args.quick:
        name, target = "fsdd_quick", BENCH_DIR / "fsdd_quick.md"
    elif screening:
        tag = "_".join([*args.neurons, *[f"{k}{v}" for k, v in overrides.items()], *(folds or ["nofolds"])])
        name = f"fsdd_screen_{tag}"
        target = BENCH_DIR / f"{name}.md"
    else:
        name, target = "fsdd", DOCS / "fsdd_results.md"
    if not args.quick and not screening:
        loso.update(flames_loso())
    write_results(name, rows, meta={"config": config_text, "command": command, "loso": loso,
                                    "loso_summary": {n: loso_summary(f) for n, f in loso.items()}}, columns=COLUMNS)
    text = (markdown(rows, config_text, args.quick, loso, command) if rows
            else "\n".join([f"# FSDD LOSO screening: `{command}`", "", config_text, "", *loso_section(loso, rows)]))
    write_text(target, text)
    print("\n".join(loso_table(loso, {row["neuron"]: row for row in rows})) if loso else "")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
