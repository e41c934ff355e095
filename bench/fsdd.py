"""FSDD spoken digits, audio to integer network: accuracy and cost per neuron type (issue #6).

``python -m bench.fsdd`` takes, for each neuron type, the network trained by
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
* the hardware columns (RTL accuracy on a subset, resources, Fmax, cycles per sample), filled
  only from measurements; "not yet measured" otherwise.

Writes ``docs/fsdd_results.md`` (the table and the settings) and ``build/bench/fsdd.json``.
``--quick`` trains small networks for two epochs on a subset (a smoke run of the whole
pipeline, a couple of minutes); it writes ``build/bench/fsdd_quick.json`` and
``build/bench/fsdd_quick.md`` and leaves the docs alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import BENCH_DIR, format_table, write_results
from golden.data import REPO_ROOT
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

NOT_MEASURED = "not yet measured"
DOCS = REPO_ROOT / "docs"
TRAIN_DIR = REPO_ROOT / "build" / "train"
DEFAULT_NEURONS = ("csilif", "silif", "rlif")
#: Neuron state words per neuron and the format fields that hold them, by integer kind.
STATE_WORDS = {
    "csilif": ("state_fmt", "state_fmt"),            # re, im
    "silif": ("state_fmt", "state_fmt"),             # u, w
    "refractory_lif": ("state_fmt", "refr_fmt"),     # u, R (and the previous spike bit)
    "li_readout": ("state_fmt",),                    # u
}


def quick_config(neuron: str) -> TrainConfig:
    return TrainConfig(neuron=neuron, hidden=32, epochs=2, train_limit=300, test_limit=100)


def obtain_model(config: TrainConfig, out_dir: Path, retrain: bool, log=print):
    """``(model, config, history, train_data, test_data, reused)``.

    A finished checkpoint in ``out_dir`` whose settings equal ``config`` in everything but the
    number of epochs is reused (the table states each row's epochs); anything else is trained
    afresh with ``config``.
    """
    checkpoint = out_dir / "checkpoint.pt"
    if checkpoint.is_file() and not retrain:
        model, saved, history = load_checkpoint(checkpoint)
        if dataclasses.replace(saved, epochs=config.epochs) == config and len(history) == saved.epochs:
            log(f"{config.neuron}: reusing {checkpoint} ({saved.epochs} epochs)")
            train_data = load_speech_data("train", saved.bin_ms, saved.window_ms, saved.train_limit)
            test_data = load_speech_data("test", saved.bin_ms, saved.window_ms, saved.test_limit)
            return model, saved, history, train_data, test_data, True
        log(f"{config.neuron}: {checkpoint} holds other settings or an unfinished run; training afresh")
    result = train(config, out_dir, log=log)
    return result.model, config, result.history, result.train_data, result.test_data, False


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
    """Neuron state words and bits (plus the per-neuron accumulator bits) over all layers."""
    words = bits = acc = 0
    for layer in params.layers:
        fmts = [getattr(layer.neuron, name) for name in STATE_WORDS[layer.kind]]
        words += layer.n_out * len(fmts)
        bits += layer.n_out * (sum(f.width for f in fmts) + (1 if layer.kind == "refractory_lif" else 0))
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
    generated Verilog on Icarus (``sim/tb_processor.py``) and compare every spike, readout
    membrane, score and the decision with :func:`golden.network.run_network`.

    Each recording's cochlea events inside the window go in as channel events with their own
    ticks, then END. Returns ``{"identical": k, "runs": n, "first_mismatch": text or None}``.
    """
    import pickle
    from golden.data.cochlea import encode_fsdd
    from golden.network import run_network
    from hw.processor.network import NetworkProcessor
    from sim.processor_model import expected_from_trace
    from sim.runner import SIM_BUILD, CocotbFailure, run_cocotb

    encoded = encode_fsdd("test")
    build_name = f"fsdd/{neuron}"
    build = SIM_BUILD / build_name
    build.mkdir(parents=True, exist_ok=True)
    params_path = build / "params.pkl"
    params_path.write_bytes(pickle.dumps(params))
    dut = NetworkProcessor(params, n_steps=n_steps, lanes=lanes)
    identical, first = 0, None
    for i in spread_indices(len(encoded), n_recordings):
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
        start = time.perf_counter()
        try:
            run_cocotb(dut, test_module="sim.tb_processor", build_name=build_name, config=config,
                       testcase="processor_matches_golden")
            failures = []
        except CocotbFailure as exc:
            failures = [str(exc)]
        name = encoded.names[int(i)]
        if failures:
            first = first or f"{name}: {failures[0]}"
            log(f"{neuron} RTL {name}: MISMATCH ({time.perf_counter() - start:.0f} s)\n{failures[0][:600]}")
        else:
            identical += 1
            log(f"{neuron} RTL {name}: identical to the golden network ({time.perf_counter() - start:.0f} s)")
    return {"identical": identical, "runs": len(spread_indices(len(encoded), n_recordings)), "first_mismatch": first}


def measure(neuron: str, config: TrainConfig, out_dir: Path, retrain: bool, log=print, rtl: int = 0,
            lanes: int = 8) -> dict:
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
        "luts": NOT_MEASURED,
        "fmax_mhz": NOT_MEASURED,
        "cycles_per_sample": NOT_MEASURED,
    }
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
        if rtl:
            outcome = rtl_subset(neuron, params, config.n_steps, rtl, lanes, log)
            row["rtl_acc_subset"] = f"{outcome['identical']} of {outcome['runs']} identical"
            row["rtl_first_mismatch"] = outcome["first_mismatch"]
    row["bench_seconds"] = time.perf_counter() - start
    return row


COLUMNS = ["neuron", "epochs", "parameters", "float_acc", "int_acc", "agreement", "rtl_acc_subset", "state_words",
           "state_bits", "spike_rate", "synops_per_sample", "dense_macs_per_sample", "luts", "fmax_mhz",
           "cycles_per_sample"]


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{int(value):,}"
    if isinstance(value, list):
        return " / ".join(f"{v:.3f}" for v in value)
    return str(value)


def markdown(rows: list[dict], config_text: str, quick: bool) -> str:
    head = ["neuron", "epochs", "parameters", "float acc (%)", "integer acc (%)", "int == float (%)", "RTL == golden (subset)",
            "state words", "state bits", "spikes / neuron / step (L1 / L2)", "synaptic ops / sample",
            "dense MACs / sample", "LUTs", "Fmax (MHz)", "cycles / sample"]
    lines = [
        "# FSDD spoken digits: float, integer and hardware results" + (" (quick run)" if quick else ""),
        "",
        "Written by `python -m bench.fsdd` " + ("--quick " if quick else "") + f"on {time.strftime('%Y-%m-%d %H:%M %Z')}; "
        "JSON in `build/bench/fsdd" + ("_quick" if quick else "") + ".json`. How the networks are trained and "
        "exported: [training.md](training.md). Data: Free Spoken Digit Dataset (Jakobovski, CC BY-SA 4.0), "
        "official split (index 0-4 test: 250 recordings; 5-49 train: 2,250), encoded by the cochlea of "
        "[data.md](data.md).",
        "",
        config_text,
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c)) for c in COLUMNS) + " |")
    lines += [
        "",
        "Columns: *float acc* is the trained float32 network in eval mode (batch norm with running "
        "statistics, no dropout), decision argmax of the summed readout membrane (D16); *integer acc* "
        "the exported integer network (`golden.network.run_network`, bit-exact model of the hardware); "
        "*int == float* how many test decisions of the integer network equal those of the folded float64 "
        "network; *parameters* trainable float parameters; *state words/bits* neuron state the hardware "
        "keeps for all layers (C-SiLIF: re, im; SiLIF: u, w; refractory LIF: u, R and the previous "
        "spike; readout: u); *synaptic ops* weight-column additions per test recording (one per "
        "input event or spike and target neuron), beside the dense count `T * sum(n_in * n_out)`; "
        "*spikes / neuron / step* of the two hidden layers, integer model where exported. "
        f"Hardware columns say \"{NOT_MEASURED}\" until an RTL simulation and a build of that "
        "network have been run; no number here is estimated.",
    ]
    mismatches = [r for r in rows if r.get("rtl_first_mismatch")]
    if mismatches:
        lines += ["", "## RTL mismatches", ""]
        lines += [f"* {r['neuron']}: {' '.join(r['rtl_first_mismatch'][:1200].split())}" for r in mismatches]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fsdd", description=__doc__.split("\n\n")[0])
    parser.add_argument("--neurons", nargs="+", choices=sorted(NEURON_CHOICES), default=list(DEFAULT_NEURONS))
    parser.add_argument("--quick", action="store_true", help="small networks, 2 epochs, subset (smoke run)")
    parser.add_argument("--retrain", action="store_true", help="train even when a matching checkpoint exists")
    parser.add_argument("--rtl", type=int, default=0, metavar="N",
                        help="run N test recordings through the processor's Verilog (Icarus) for --rtl-neurons")
    parser.add_argument("--rtl-neurons", nargs="+", choices=sorted(NEURON_CHOICES), default=["csilif"])
    parser.add_argument("--lanes", type=int, default=8, help="neuron lanes per layer of the simulated processor")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    log = lambda *a: print(*a, flush=True)  # noqa: E731
    rows = []
    for neuron in args.neurons:
        config = quick_config(neuron) if args.quick else TrainConfig(neuron=neuron)
        out_dir = TRAIN_DIR / ("quick" if args.quick else "") / neuron
        rtl = args.rtl if neuron in args.rtl_neurons else 0
        rows.append(measure(neuron, config, out_dir, args.retrain, log, rtl=rtl, lanes=args.lanes))
        if not args.quick:
            (DOCS / "img").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out_dir / "curves.png", DOCS / "img" / f"fsdd_curves_{neuron}.png")
    ref = quick_config("csilif") if args.quick else TrainConfig()
    config_text = (
        f"Settings: 32 cochlea channels -> {ref.hidden} -> {ref.hidden} -> 10 (two hidden SNNLayer blocks, "
        f"leaky-integrator readout), {ref.bin_ms} ms steps over a {ref.window_ms} ms window "
        f"({ref.n_steps} steps), epochs as in the table, batch {ref.batch_size}, Adam lr {ref.lr} (cosine), "
        f"dropout {ref.dropout}, loss {ref.loss}, seed {ref.seed}, {ref.threads} CPU threads"
        + (f", {ref.train_limit} train / {ref.test_limit} test recordings" if args.quick else "") + "."
    )
    name = "fsdd_quick" if args.quick else "fsdd"
    write_results(name, rows, meta={"config": config_text}, columns=COLUMNS)
    text = markdown(rows, config_text, args.quick)
    if not args.quick:
        text += "\n" + "\n".join(f"![learning curves, {r['neuron']}](img/fsdd_curves_{r['neuron']}.png)" for r in rows) + "\n"
    target = (BENCH_DIR / f"{name}.md") if args.quick else (DOCS / "fsdd_results.md")
    target.write_text(text)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
