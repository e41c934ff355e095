"""Throughput of the bit-exact integer golden models on the CPU, in neuron-steps per second.

``python -m bench.golden_speed`` runs each neuron type's ``run_int`` (every state at every step
recorded, as the tests use it) on N = 512 neurons, T = 1,000 steps and a batch of 32, from
seeded random parameters and currents, and reports the best of ``--repeat`` runs: wall time
(what the target is about) and process CPU time (which stays meaningful on a machine shared
with other jobs). The issue's target is >= 10 million neuron-steps per second per type. Types whose golden module is not in
the tree yet are listed with a note instead of a figure. Results: a table on stdout and
``build/bench/golden_speed.json``.
"""

from __future__ import annotations

import argparse
import importlib
import time

import numpy as np
import torch

from bench.common import write_results
from golden.cli import positive_int, run_main

TARGET = 10e6


def _refractory_lif(n_neurons, rng):
    from golden.refractory_lif import RefractoryLIFParams, run_int

    params = RefractoryLIFParams.from_float(rng.uniform(0.5, 1.5, n_neurons), rng.uniform(0.0, 1.0, n_neurons))
    return params, run_int, params.input_fmt


def _silif(n_neurons, rng):
    from golden.silif import SiLIFParams, run_int

    params = SiLIFParams.from_float(
        rng.uniform(0.0, 1.0, n_neurons), rng.uniform(0.9, 1.0, n_neurons),
        rng.uniform(0, 1, n_neurons), rng.uniform(0, 2, n_neurons),
    )
    return params, run_int, params.input_fmt


def _csilif(n_neurons, rng):
    from golden.csilif import CSiLIFParams, run_int

    magnitude, angle = rng.uniform(0, 1, n_neurons), rng.uniform(-np.pi, np.pi, n_neurons)
    params = CSiLIFParams.from_float(magnitude * np.cos(angle), magnitude * np.sin(angle), rng.uniform(0, 2, n_neurons))
    return params, run_int, params.input_fmt


def _readout(n_neurons, rng):
    from golden.layers import LIReadoutParams, run_readout_int

    params = LIReadoutParams.from_float(rng.uniform(0.8187, 0.9608, n_neurons))
    return params, run_readout_int, params.input_fmt


#: name -> (golden module that must exist, builder returning (params, run_int, input_fmt))
NEURON_TYPES = {
    "refractory_lif": ("golden.refractory_lif", _refractory_lif),
    "silif": ("golden.silif", _silif),
    "csilif": ("golden.csilif", _csilif),
    "li_readout": ("golden.layers", _readout),
}


def measure(name: str, *, n_neurons: int, steps: int, batch: int, repeat: int, seed: int = 0) -> dict:
    """Best-of-``repeat`` wall time of one ``run_int`` call on ``(batch, steps, n_neurons)`` currents."""
    module, build = NEURON_TYPES[name]
    row = {"neuron": name, "N": n_neurons, "T": steps, "batch": batch}
    try:
        importlib.import_module(module)
    except ModuleNotFoundError:
        return {**row, "seconds": None, "cpu_seconds": None, "neuron_steps_per_s": None,
                "neuron_steps_per_cpu_s": None, "meets_10M": None, "note": f"{module} absent"}
    rng = np.random.default_rng(seed)
    params, run_int, input_fmt = build(n_neurons, rng)
    gen = torch.Generator().manual_seed(seed)
    currents = torch.randn(batch, steps, n_neurons, generator=gen, dtype=torch.float64) * 2.0
    currents_q = input_fmt.quantize(currents)
    best, best_cpu = float("inf"), float("inf")
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        run_int(params, currents_q)
        best = min(best, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    work = batch * steps * n_neurons
    rate = work / best
    return {
        **row,
        "seconds": best,
        "cpu_seconds": best_cpu,
        "neuron_steps_per_s": rate,
        "neuron_steps_per_cpu_s": work / best_cpu,
        "meets_10M": rate >= TARGET,
        "note": "",
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=positive_int, default=512)
    parser.add_argument("--steps", type=positive_int, default=1000)
    parser.add_argument("--batch", type=positive_int, default=32)
    parser.add_argument("--repeat", type=positive_int, default=2, help="runs per type; the best is reported")
    parser.add_argument("--types", nargs="+", choices=list(NEURON_TYPES), default=list(NEURON_TYPES))
    args = parser.parse_args(argv)
    rows = [
        measure(name, n_neurons=args.neurons, steps=args.steps, batch=args.batch, repeat=args.repeat)
        for name in args.types
    ]
    meta = {"target_neuron_steps_per_s": TARGET, "what": "golden run_int, every state recorded, int64 torch on CPU"}
    write_results("golden_speed", rows, meta)
    return rows


if __name__ == "__main__":
    raise SystemExit(run_main(main))
