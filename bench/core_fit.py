"""Resources and Fmax of each neuron core alone on the ULX3S 85F: ``python -m bench.core_fit``.

Each row is one full Yosys -> nextpnr build of :func:`hw.boards.core_fit.CoreFitTop`: the core,
the PLL that makes the requested clock, and :class:`hw.boards.stimulus.NeuronStimulus` (an LFSR
and a neuron counter on the input, every output folded into one register driving LED 0), so
what the report counts is the core plus a few dozen LUTs and flip-flops of stimulus. Rows are
built one after another (each takes minutes on a small machine). Results go to
``build/bench/core_fit.json``; each build's files and ``report.md`` stay in
``build/core_fit/<core>-<n>/``.

A new core joins the table with one line in :data:`CORES`: its name and a factory that builds
it for ``n_neurons`` and says how wide the default stimulus current is.
"""

from __future__ import annotations

import argparse

import numpy as np

from bench.common import FIT_ROOT, build_fit, write_results
from golden.csilif import CSiLIFParams
from golden.refractory_lif import RefractoryLIFParams
from golden.silif import SiLIFParams
from hw.bitstream import BuildError
from hw.boards.core_fit import CoreFitTop
from hw.boards.ulx3s import ulx3s_platform
from hw.cores.csilif import CSiLIFCore
from hw.cores.refractory_lif import RefractoryLIFCore
from hw.cores.silif import SiLIFCore

NEURON_COUNTS = (256, 1024, 4096)
QUICK_NEURON_COUNTS = (256,)
COLUMNS = ["core", "n_neurons", "LUT4", "FF", "MULT18X18D", "DP16KD", "fmax_mhz", "target_mhz", "met", "build_s", "limit"]


def refractory_lif(n_neurons: int):
    """Refractory LIF core (spikes only), the default parameters of decision 'Refractory LIF equations';
    stimulus currents in [-2, 2)."""
    params = RefractoryLIFParams.from_float(v_th=np.ones(n_neurons), u_th=np.full(n_neurons, 0.5))
    return RefractoryLIFCore(params, emit_state=False), params.frac_bits + 2


def silif(n_neurons: int):
    """SiLIF core (spikes only), seeded coefficients over the trained range (resources do not
    depend on them: they are memory contents); stimulus currents in [-2, 2)."""
    rng = np.random.default_rng(0)
    params = SiLIFParams.from_float(
        alpha=rng.uniform(0.0, 0.999, n_neurons),
        beta=rng.uniform(0.9, 1.0, n_neurons),
        a=rng.uniform(0.0, 1.0, n_neurons),
        b=rng.uniform(0.0, 2.0, n_neurons),
    )
    return SiLIFCore(params, emit_state=False), params.input_fmt.frac_bits + 2


def csilif(n_neurons: int):
    """C-SiLIF core (spikes only), seeded decays of modulus 0.5-0.99 and gains in [-1.5, 4.8];
    stimulus currents in [-2, 2)."""
    rng = np.random.default_rng(0)
    modulus, angle = rng.uniform(0.5, 0.99, n_neurons), rng.uniform(0.0, np.pi / 4, n_neurons)
    params = CSiLIFParams.from_float(
        decay_re=modulus * np.cos(angle), decay_im=modulus * np.sin(angle), gain=rng.uniform(-1.5, 4.8, n_neurons)
    )
    return CSiLIFCore(params, emit_state=False), params.input_fmt.frac_bits + 2


#: Core name -> factory(n_neurons) returning ``(core, narrow_current_bits)``.
CORES = {
    "refractory_lif": refractory_lif,
    "silif": silif,
    "csilif": csilif,
}


def fit_row(name: str, n_neurons: int, *, clock_hz: float, variant: str, seed: int) -> dict:
    """Build one core at one size; returns its table row."""
    core, narrow_current_bits = CORES[name](n_neurons)
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
        "--neurons", nargs="+", type=int, metavar="N", help=f"neuron counts (default: {' '.join(map(str, NEURON_COUNTS))})"
    )
    parser.add_argument("--clock-mhz", type=float, default=100.0, metavar="F", help="target clock (default: %(default)g)")
    parser.add_argument("--variant", default="85F", help="ULX3S variant (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default: %(default)s)")
    args = parser.parse_args(argv)
    counts = args.neurons or (QUICK_NEURON_COUNTS if args.quick else NEURON_COUNTS)

    rows = []
    for name in args.cores:
        for n_neurons in counts:
            try:
                rows.append(fit_row(name, n_neurons, clock_hz=args.clock_mhz * 1e6, variant=args.variant, seed=args.seed))
            except BuildError as error:
                rows.append({"core": name, "n_neurons": n_neurons, "limit": f"build failed: {str(error).splitlines()[0]}"})
    write_results(
        "core_fit",
        rows,
        meta={
            "board": "ulx3s",
            "device": ulx3s_platform(args.variant).device,
            "clock_mhz": args.clock_mhz,
            "seed": args.seed,
            "what": "core + EHXPLLL + NeuronStimulus (32-bit LFSR, neuron counter, output XOR to one LED)",
            "lut4": "nextpnr TRELLIS_COMB cells (a CCU2C carry cell counts as two)",
        },
        columns=COLUMNS,
    )
    return 0 if all(row.get("met") for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
