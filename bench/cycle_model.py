"""The host's board-time estimate against the simulated processor: cycles per sample, model and amaranth.sim.

Usage::

    python -m bench.cycle_model [--models FILE ...] [--recordings 3] [--lanes 8]

For each model file (default: the shipped ``models/fsdd_*.safetensors``) and each of
``--recordings`` test recordings spread over the official FSDD test split, the cochlea events
inside the model's window go into :class:`hw.processor.network.NetworkProcessor` in
``amaranth.sim`` back to back (channel input, no idle cycles, no stall on the scores), then END;
the clock cycles from the first accepted input beat to the SCORES beat
(:func:`hw.processor.cycles.simulated_cycles`) are compared with
:func:`hw.board_model.estimate_cycles` on the golden trace of the same events (what
``hw.host`` prints as the board time). Writes ``build/bench/cycle_model.json``. Each
recording is 2 to 5 CPU minutes of simulation at 8 lanes (more at 1 lane).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.common import write_results
from golden.cli import existing_file, int_range, positive_int, run_main
from golden.data.cochlea import encode_fsdd
from golden.model_file import load_model
from golden.network import run_network
from golden.train import spread_indices
from hw.board_model import estimate_cycles, model_steps
from hw.host import cochlea_for
from hw.processor.cycles import simulated_cycles

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = sorted((REPO / "models").glob("fsdd_*.safetensors"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cycle_model", description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", type=existing_file, default=DEFAULT_MODELS, metavar="FILE",
                        help="model files (default: models/fsdd_*.safetensors)")
    parser.add_argument("--recordings", type=positive_int, default=3, help="test recordings per model (default 3)")
    parser.add_argument("--lanes", type=int_range(1, 256, "a lane count"), default=8, help="processor lanes (default 8)")
    args = parser.parse_args(argv)
    if not args.models:
        parser.error("no model files: pass --models")
    rows = []
    for model in args.models:
        params = load_model(model)
        n_steps = model_steps(params)
        encoded = encode_fsdd("test", cochlea_for(params))
        for i in spread_indices(len(encoded), args.recordings):
            events = encoded.events_of(int(i))
            events = events[events["t"] < n_steps * params.bin_ticks]
            estimate = estimate_cycles(params, run_network(params, events, n_steps), lanes=args.lanes)
            start = time.perf_counter()
            simulated = simulated_cycles(params, events, n_steps, lanes=args.lanes)
            rows.append({"model": Path(model).name, "recording": str(encoded.names[int(i)]), "events": len(events),
                         "lanes": args.lanes, "simulated": simulated, "estimate": estimate,
                         "error": round(estimate / simulated - 1, 4), "sim_s": round(time.perf_counter() - start, 1)})
            print(f"{rows[-1]['model']} {rows[-1]['recording']}: simulated {simulated}, estimated {estimate}", flush=True)
    errors = [row["error"] for row in rows]
    write_results("cycle_model", rows, {"what": "hw.board_model.estimate_cycles against amaranth.sim of "
                                                "NetworkProcessor, first input beat to SCORES, no stalls",
                                        "error_min": min(errors), "error_median": float(np.median(errors)),
                                        "error_max": max(errors)})
    print(f"estimate / simulated - 1: min {min(errors):+.1%}, median {np.median(errors):+.1%}, max {max(errors):+.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
