"""Resources and Fmax of each neuron core alone on the ULX3S 85F: ``python -m bench.core_fit``.

Each row is one full Yosys -> nextpnr build of :func:`hw.boards.core_fit.CoreFitTop`: the core,
the PLL that makes the requested clock, and :class:`hw.boards.stimulus.NeuronStimulus` (an LFSR
and a neuron counter on the input, every output folded into one register driving LED 0), so
what the report counts is the core plus a few dozen LUTs and flip-flops of stimulus. Rows are
built one after another (each takes minutes on a small machine). Results go to
``build/bench/core_fit.json``; each build's files and ``report.md`` stay in
``build/core_fit/<core>-<n>/``.

Every spiking kind of the registry (:mod:`golden.kinds`) with default-network parameters joins the
table; its core comes from :func:`hw.cores.core_classes`.
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.common import FIT_ROOT, build_failure, build_fit, write_fit_results
from golden.cli import non_negative_int, positive_float, positive_int, run_main, ulx3s_variant
from golden.kinds import network_kinds
from golden.network import default_hidden_kinds
from hw.bitstream import BuildError
from hw.boards.core_fit import CoreFitTop
from hw.cores import core_classes

NEURON_COUNTS = (256, 1024, 4096)
QUICK_NEURON_COUNTS = (256,)
COLUMNS = ["core", "n_neurons", "LUT4", "FF", "MULT18X18D", "DP16KD", "fmax_mhz", "target_mhz", "met", "build_s", "limit"]


def build_core(name: str, n_neurons: int):
    """The kind's core (spikes only) for ``n_neurons`` neurons with its default-network parameters
    (``default_params``, seed 0; resources depend on the formats, the parameters are memory
    contents), and the default stimulus current width: currents in [-2, 2)."""
    params = network_kinds()[name].default_params(np.random.default_rng(0), n_neurons)
    return core_classes()[name](params, emit_state=False), params.input_fmt.frac_bits + 2


#: The cores of the spiking kinds that the default network can build (:mod:`golden.kinds`).
CORES = default_hidden_kinds()


def fit_row(name: str, n_neurons: int, *, clock_hz: float, variant: str, seed: int) -> dict:
    """Build one core at one size; returns its table row."""
    core, narrow_current_bits = build_core(name, n_neurons)
    _, row = build_fit(lambda pll_config: CoreFitTop(core, narrow_current_bits=narrow_current_bits, pll_config=pll_config),
                       FIT_ROOT / f"{name}-{n_neurons}", design=f"{name} n_neurons={n_neurons} (core fit)",
                       clock_hz=clock_hz, variant=variant, seed=seed)
    return {"core": name, "n_neurons": n_neurons, **row}


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
    parser.add_argument("--seed", type=non_negative_int, default=1, help="nextpnr placement seed (default: %(default)s)")
    args = parser.parse_args(argv)
    counts = args.neurons or (QUICK_NEURON_COUNTS if args.quick else NEURON_COUNTS)

    rows = []
    for name in args.cores:
        for n_neurons in counts:
            try:
                rows.append(fit_row(name, n_neurons, clock_hz=args.clock_mhz * 1e6, variant=args.variant, seed=args.seed))
            except BuildError as error:
                rows.append({"core": name, "n_neurons": n_neurons, "limit": build_failure(error)})
    return write_fit_results(
        "core_fit", rows, variant=args.variant, clock_mhz=args.clock_mhz, seed=args.seed, columns=COLUMNS,
        what="core + EHXPLLL + NeuronStimulus (32-bit LFSR, neuron counter, output XOR to one LED)",
        lut4="nextpnr TRELLIS_COMB cells (a CCU2C carry cell counts as two)",
    )

if __name__ == "__main__":
    raise SystemExit(run_main(main))
