"""Throughput of the bit-exact integer golden models on the CPU, in neuron-steps per second.

``python -m bench.golden_speed`` runs each neuron type's ``run_int`` (every state at every step
recorded, as the tests use it) on N = 512 neurons, T = 1,000 steps and a batch of 32, from
seeded random parameters (each kind's default-network parameters) and currents, and reports the
best of ``--repeat`` runs: wall time (what the target is about) and process CPU time (which stays
meaningful on a machine shared with other jobs). The issue's target is >= 10 million neuron-steps
per second per type. Results: a table on stdout and
``build/bench/golden_speed.json``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench.common import write_results
from golden.cli import positive_int, run_main
from golden.kinds import network_kinds

TARGET = 10e6


#: Every network kind with default-network parameters (:mod:`golden.kinds`).
NEURON_TYPES = tuple(name for name, kind in network_kinds().items() if kind.default_params is not None)


def measure(name: str, *, n_neurons: int, steps: int, batch: int, repeat: int, seed: int = 0) -> dict:
    """Best-of-``repeat`` wall time of one ``run_int`` call on ``(batch, steps, n_neurons)`` currents."""
    kind = network_kinds()[name]
    row = {"neuron": name, "N": n_neurons, "T": steps, "batch": batch}
    params = kind.default_params(np.random.default_rng(seed), n_neurons)
    run_int, input_fmt = kind.run_int, params.input_fmt
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
