"""Resources and Fmax of each neuron core alone on the ULX3S 85F: ``python -m bench.core_fit``.

Each row is one full Yosys -> nextpnr build of :func:`hw.boards.core_fit.CoreFitTop`: the core,
the PLL that makes the requested clock, and :class:`hw.boards.stimulus.NeuronStimulus` (an LFSR
and a neuron counter on the input, every output folded into one register driving LED 0), so
what the report counts is the core plus a few dozen LUTs and flip-flops of stimulus. Rows are
built one after another (each takes minutes on a small machine), or ``--jobs`` side by side.
Fmax moves with placement: ``--seeds 1 2 3`` builds each core and size once per nextpnr seed and
adds a summary row per core and size (median, lowest, highest, spread, seeds meeting the clock).
Results go to ``build/bench/core_fit.json``; each build's files and ``report.md`` stay in
``build/core_fit/<core>-<n>-seed<seed>/``.

Every spiking kind of the registry (:mod:`golden.kinds`) with default-network parameters joins the
table; its core comes from :func:`hw.cores.core_classes`.
"""

from __future__ import annotations

import argparse
import functools

import numpy as np

from bench.common import FIT_ROOT, build_failure, build_fit, format_table, run_builds, summarise_seeds, write_fit_results
from golden.cli import non_negative_int, positive_float, positive_int, run_main, ulx3s_variant
from golden.kinds import network_kinds
from golden.network import default_hidden_kinds
from hw.bitstream import BuildError
from hw.boards.core_fit import CoreFitTop
from hw.cores import core_classes

NEURON_COUNTS = (256, 1024, 4096)
QUICK_NEURON_COUNTS = (256,)
SUMMARY_COLUMNS = ["core", "n_neurons", "seeds", "target_mhz", "fmax_median_mhz", "fmax_min_mhz", "fmax_max_mhz",
                   "spread_mhz", "met"]
COLUMNS = ["core", "n_neurons", "seed", "LUT4", "FF", "MULT18X18D", "DP16KD", "fmax_mhz", "target_mhz", "met", "build_s", "limit"]


def build_core(name: str, n_neurons: int):
    """The kind's core (spikes only) for ``n_neurons`` neurons with its default-network parameters
    (``default_params``, seed 0; resources depend on the formats, the parameters are memory
    contents), and the default stimulus current width: currents in [-2, 2)."""
    params = network_kinds()[name].default_params(np.random.default_rng(0), n_neurons)
    return core_classes()[name](params, emit_state=False), params.input_fmt.frac_bits + 2


#: The cores of the spiking kinds that the default network can build (:mod:`golden.kinds`).
CORES = default_hidden_kinds()


def fit_row(name: str, n_neurons: int, seed: int, *, clock_hz: float, variant: str) -> dict:
    """Build one core at one size with one placement seed; returns its table row (a failed build:
    no Fmax, not met, the error in ``limit``)."""
    core, narrow_current_bits = build_core(name, n_neurons)
    try:
        _, row = build_fit(
            lambda pll_config: CoreFitTop(core, narrow_current_bits=narrow_current_bits, pll_config=pll_config),
            FIT_ROOT / f"{name}-{n_neurons}-seed{seed}", design=f"{name} n_neurons={n_neurons} (core fit)",
            clock_hz=clock_hz, variant=variant, seed=seed)
    except BuildError as error:
        row = {"fmax_mhz": None, "target_mhz": clock_hz / 1e6, "met": False, "limit": build_failure(error)}
    return {"core": name, "n_neurons": n_neurons, "seed": seed, **row}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.core_fit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"only n_neurons={QUICK_NEURON_COUNTS[0]}")
    parser.add_argument(
        "--cores", nargs="+", choices=list(CORES), default=list(CORES), help="cores to fit (default: all)"
    )
    parser.add_argument(
        "--neurons", nargs="+", type=positive_int, metavar="N", help=f"neuron counts (default: {' '.join(map(str, NEURON_COUNTS))})"
    )
    parser.add_argument("--clock-mhz", type=positive_float, default=100.0, metavar="F", help="target clock (default: %(default)g)")
    parser.add_argument("--variant", type=ulx3s_variant, default="85F", help="ULX3S variant (default: %(default)s)")
    parser.add_argument("--seeds", nargs="+", type=non_negative_int, default=[1], metavar="SEED",
                        help="nextpnr placement seeds (default: 1)")
    parser.add_argument("--jobs", type=positive_int, default=1, help="builds side by side (default: 1)")
    args = parser.parse_args(argv)
    counts = args.neurons or (QUICK_NEURON_COUNTS if args.quick else NEURON_COUNTS)
    tasks = [(name, n_neurons, seed) for seed in args.seeds for name in args.cores for n_neurons in counts]
    summarise = functools.partial(summarise_seeds, keys=("core", "n_neurons"))
    rows = []
    status = 0

    def record(row: dict) -> None:
        nonlocal status
        rows.append(row)
        rows.sort(key=lambda r: (args.cores.index(r["core"]), r["n_neurons"], args.seeds.index(r["seed"])))
        status = write_fit_results(
            "core_fit", rows, variant=args.variant, clock_mhz=args.clock_mhz, seed=args.seeds, columns=COLUMNS,
            summary=summarise(rows),
            what="core + EHXPLLL + NeuronStimulus (32-bit LFSR, neuron counter, output XOR to one LED)",
            lut4="nextpnr TRELLIS_COMB cells (a CCU2C carry cell counts as two)",
        )

    run_builds(functools.partial(fit_row, clock_hz=args.clock_mhz * 1e6, variant=args.variant), tasks,
               jobs=args.jobs, record=record)
    if len(args.seeds) > 1:
        print()
        print(format_table(summarise(rows), SUMMARY_COLUMNS))
    return status


if __name__ == "__main__":
    raise SystemExit(run_main(main))
