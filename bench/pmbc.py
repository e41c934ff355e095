"""PMBC against the sequential loop for the refractory LIF, float and integer (decision 'PMBC equals sequential').

For each sequence length: wall time of the sequential loop and of PMBC, the speed-up
(sequential / PMBC, below 1 is a slowdown), the PMBC tri-state sweeps, for the integer path
the Jacobi relaxation sweeps and the relaxed neuron-steps per neuron-step, and whether the
spikes are identical. Spikes-only paths throughout, so 64K x 16 x 256 fits in a few GiB.

    python -m bench.pmbc                      # L = 1K, 8K, 64K; batch 16; 256 channels
    python -m bench.pmbc --quick              # seconds, for a smoke test
    python -m bench.pmbc --lengths 8192 --channels 64

Input: i.i.d. Gaussian currents (mean 0.3, std 1), thresholds v_th spread over [0.8, 1.2],
U_th = 0.5, tau = 0.1, tau_r = 0.9; float paths in float64, integer paths in the default
formats (sQ8.16, decays uQ0.18). Writes build/bench/pmbc.json (``--output`` renames it).
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import write_results
from golden.cli import bench_name, non_negative_int, positive_int, run_main
from golden.refractory_lif import RefractoryLIF, run_int_pmbc, run_int_spikes

COLUMNS = ["path", "L", "batch", "channels", "spike_rate", "seq_s", "pmbc_s", "speedup", "pmbc_sweeps",
           "relax_sweeps", "relax_updates_per_step", "identical"]


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def bench_length(length: int, batch: int, channels: int, seed: int, paths: tuple[str, ...]) -> list[dict]:
    gen = torch.Generator().manual_seed(seed + length)
    current = torch.randn(batch, length, channels, generator=gen) + 0.3  # float32 storage
    model = RefractoryLIF(channels).double()
    with torch.no_grad():
        model.v_th.copy_(torch.linspace(0.8, 1.2, channels, dtype=torch.float64))
    common = {"L": length, "batch": batch, "channels": channels}
    rows = []
    with torch.no_grad():
        if "float" in paths:
            seq, seq_s = _timed(lambda: model(current, "sequential"))
            par, pmbc_s = _timed(lambda: model(current, "pmbc"))
            rows.append({"path": "float64", **common, "spike_rate": float(seq.mean()), "seq_s": seq_s,
                         "pmbc_s": pmbc_s, "speedup": seq_s / pmbc_s, "pmbc_sweeps": model.last_pmbc_sweeps,
                         "relax_sweeps": None, "relax_updates_per_step": None,
                         "identical": bool(torch.equal(seq, par))})
            del seq, par
        if "int" in paths:
            params = model.to_params()
            currents_q = torch.empty(current.shape, dtype=torch.int32)
            for b in range(batch):
                currents_q[b] = params.input_fmt.quantize(current[b]).to(torch.int32)
            del current
            seq, seq_s = _timed(lambda: run_int_spikes(params, currents_q))
            res, pmbc_s = _timed(lambda: run_int_pmbc(params, currents_q, spikes_only=True))
            rows.append({"path": "int sQ8.16", **common, "spike_rate": float(seq.float().mean()), "seq_s": seq_s,
                         "pmbc_s": pmbc_s, "speedup": seq_s / pmbc_s, "pmbc_sweeps": res.pmbc_sweeps,
                         "relax_sweeps": res.relax_sweeps,
                         "relax_updates_per_step": res.relax_updates / currents_q.numel(),
                         "identical": bool(torch.equal(seq, res.spikes))})
    for row in rows:
        print(", ".join(f"{k}={row[k]:.4g}" if isinstance(row[k], float) else f"{k}={row[k]}" for k in COLUMNS),
              flush=True)
    return rows


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="python -m bench.pmbc", description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=positive_int, nargs="+", default=[1024, 8192, 65536], help="sequence lengths")
    parser.add_argument("--batch", type=positive_int, default=16)
    parser.add_argument("--channels", type=positive_int, default=256)
    parser.add_argument("--paths", nargs="+", choices=["float", "int"], default=["float", "int"])
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="lengths 256 and 1024, batch 2, 16 channels")
    parser.add_argument("--output", type=bench_name, default="pmbc", help="results go to build/bench/<output>.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.lengths, args.batch, args.channels = [256, 1024], 2, 16
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for length in args.lengths:
        rows += bench_length(length, args.batch, args.channels, args.seed, tuple(args.paths))
    meta = {"batch": args.batch, "channels": args.channels, "lengths": args.lengths, "seed": args.seed,
            "input": "N(0.3, 1) currents; v_th linspace(0.8, 1.2); U_th 0.5; tau 0.1; tau_r 0.9",
            "note": "speedup = sequential time / PMBC time; < 1 means PMBC is slower on this machine"}
    print()
    write_results(args.output, rows, meta, columns=COLUMNS)
    return rows


if __name__ == "__main__":
    raise SystemExit(run_main(main))
