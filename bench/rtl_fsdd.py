"""The FSDD test split (250 recordings) of each shipped model through the processor RTL on Verilator.

``python -m bench.rtl_fsdd [--model FILE ...] [--lanes L] [--recordings N]`` builds
:class:`hw.processor.network.NetworkProcessor` for each model file (default: every
``models/*.safetensors``) with the C++ stream harness of :mod:`sim.verilator`, sends it the
cochlea events of every test recording (or the first ``N``) inside the model's window
(``n_steps`` of its provenance), back to back, each recording ended by END, and compares with
:func:`golden.network.run_network` on the same events: every hidden spike, every readout
membrane (a FLAMES model: every SA-HiPPO mode beat and soma output, and the clipped intervals),
the scores, the prediction and the saturation counters of each recording
(:func:`bench.soak.check`).

Table (stdout, ``build/bench/rtl_fsdd.json``): recordings, recordings identical in every word,
predictions that agree, the RTL's and the golden network's test accuracy, clock cycles and
cycles per recording. Exit status 1 when any recording differs.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from bench.common import write_results
from bench.soak import Stimulus, check, golden_expectation, processor_harness
from golden.cli import existing_file, positive_int, run_main
from golden.data import REPO_ROOT
from golden.errors import SpikestreamError
from golden.network import counts_from_events
from hw.processor.network import NetworkProcessor
from sim.processor_model import time_bin_fates
from sim.verilator import require_tools

MODELS = sorted((REPO_ROOT / "models").glob("*.safetensors"))


def first_recordings(encoded, n: int | None):
    """The first ``n`` recordings of an encoded split (all of them for ``None``)."""
    if n is None or n >= len(encoded):
        return encoded
    end = int(encoded.offsets[n])
    return dataclasses.replace(encoded, names=encoded.names[:n], speakers=encoded.speakers[:n],
                               digits=encoded.digits[:n], indices=encoded.indices[:n], n_ticks=encoded.n_ticks[:n],
                               offsets=encoded.offsets[:n + 1], events=encoded.events[:end])


def fsdd_stimulus(params, n_steps: int, encoded) -> Stimulus:
    """Every test recording's events inside the window, back to back, each followed by END."""
    kinds, channels, ticks, counts = [], [], [], []
    window = n_steps * params.bin_ticks
    for i in range(len(encoded)):
        events = encoded.events_of(i)
        events = events[events["t"] < window]
        counts.append(counts_from_events(params, events, n_steps))
        kinds += [np.zeros(len(events), dtype=np.int64), np.ones(1, dtype=np.int64)]
        channels += [events["channel"].astype(np.int64), np.zeros(1, dtype=np.int64)]
        ticks += [events["t"].astype(np.int64), np.zeros(1, dtype=np.int64)]
    kind, channel, tick = np.concatenate(kinds), np.concatenate(channels), np.concatenate(ticks)
    counts = np.stack(counts)
    mirrored, fates = time_bin_fates(params, n_steps, kind, channel, tick)
    if not np.array_equal(mirrored, counts) or (fates >= 0).any():
        raise SpikestreamError("the time-bin rule and golden.network.counts_from_events disagree on the FSDD events")
    return Stimulus(kind=kind, channel=channel, tick=tick, gaps=np.zeros(len(kind), dtype=np.int64), counts=counts,
                    drops=fates[fates >= 0])


def run_model(path: Path, encoded, lanes: int, log=print) -> dict:
    from golden.model_file import load_model

    params = load_model(path)
    n_steps = int((params.provenance or {}).get("n_steps", 40))
    dut = NetworkProcessor(params, n_steps=n_steps, lanes=lanes)
    harness = processor_harness(dut, f"{path.stem}_lanes{lanes}")
    harness.build(log=log)
    stimulus = fsdd_stimulus(params, n_steps, encoded)
    expected = golden_expectation(params, stimulus.counts)
    log(f"{path.name}: {len(encoded)} recordings, {stimulus.n_events:,} events; simulating")
    words = harness.pack({"kind": stimulus.kind, "channel": stimulus.channel, "tick": stimulus.tick})
    run = harness.run(harness.build_dir / "run", words, stimulus.gaps, constants=[n_steps],
                      expected_beats=len(encoded), log=log)
    result = check(dut, n_steps, stimulus, run, expected)
    for message in result["first"]:
        log(f"{path.name}: MISMATCH {message}")
    labels = np.asarray(encoded.digits)
    n = len(encoded)
    rtl_argmax = np.full(n, -1)
    rtl_argmax[:len(result["argmax"])] = result["argmax"][:n]
    return {
        "model": path.name, "lanes": lanes, "steps": n_steps, "recordings": n, "events": stimulus.n_events,
        "identical": n - len(result["bad_samples"] & set(range(n))),
        "predictions_agree": int((rtl_argmax == expected["argmax"]).sum()),
        "rtl_acc": round(float((rtl_argmax == labels).mean()) * 100, 1),
        "golden_acc": round(float((expected["argmax"] == labels).mean()) * 100, 1),
        "mismatches": result["mismatches"], "cycles": run.cycles, "cycles_per_recording": round(run.cycles / n),
        "sim_s": round(run.seconds, 1), "first_mismatch": "; ".join(result["first"]) or None,
    }


COLUMNS = ["model", "lanes", "recordings", "events", "identical", "predictions_agree", "rtl_acc", "golden_acc",
           "mismatches", "cycles", "cycles_per_recording", "sim_s"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rtl_fsdd", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=existing_file, nargs="+", default=MODELS,
                        help="model files (default: every models/*.safetensors)")
    parser.add_argument("--lanes", type=positive_int, default=8, help="synapse lanes per layer (default %(default)s)")
    parser.add_argument("--recordings", type=positive_int, default=None,
                        help="the first N test recordings only (default: all 250)")
    args = parser.parse_args(argv)
    require_tools("run the RTL FSDD bench")
    from golden.data.cochlea import encode_fsdd

    start = time.perf_counter()
    encoded = first_recordings(encode_fsdd("test"), args.recordings)
    rows = [run_model(Path(path), encoded, args.lanes) for path in args.model]
    write_results("rtl_fsdd", rows, meta={
        "what": "FSDD test split through NetworkProcessor on Verilator (sim/verilator.py) against "
                "golden.network.run_network: every spike, readout membrane, score and saturation count",
        "seconds": round(time.perf_counter() - start),
    }, columns=COLUMNS)
    return 1 if any(r["mismatches"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
