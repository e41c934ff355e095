"""Resources and Fmax of each neuron core alone on the ULX3S 85F: ``python -m bench.core_fit``.

Each row is one full Yosys -> nextpnr build of a top holding only the core, the PLL that makes
the requested clock, and :class:`hw.boards.stimulus.NeuronStimulus` (an LFSR and a neuron
counter on the input, every output folded into one register driving LED 0), so what the
report counts is the core plus a few dozen LUTs and flip-flops of stimulus. Rows are built one
after another (each takes minutes on a small machine). Results go to
``build/bench/core_fit.json``; each build's files and ``report.md`` stay in
``build/core_fit/<core>-<n>/``.

A new core joins the table with one line in :data:`CORES`: its name and a factory that builds
it for ``n_neurons`` and says how wide the default stimulus current is.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io

from bench.common import write_results
from golden.cli import non_negative_int, positive_float, positive_int, run_main, ulx3s_variant
from golden.csilif import CSiLIFParams
from golden.refractory_lif import RefractoryLIFParams
from golden.silif import SiLIFParams
from hw.bitstream import BuildError, run_build
from hw.boards.stimulus import attach_stimulus
from hw.boards.ulx3s import BOARD_CLOCK_HZ, add_pll_sync_domain, ulx3s_platform
from hw.cores.csilif import CSiLIFCore
from hw.cores.refractory_lif import RefractoryLIFCore
from hw.cores.silif import SiLIFCore
from hw.pll_ecp5 import PLLConfig, solve_pll

BUILD_ROOT = Path(__file__).resolve().parent.parent / "build" / "core_fit"
NEURON_COUNTS = (256, 1024, 4096)
QUICK_NEURON_COUNTS = (256,)
COLUMNS = ["core", "n_neurons", "LUT4", "FF", "MULT18X18D", "DP16KD", "fmax_mhz", "target_mhz", "met", "build_s", "limit"]


def refractory_lif(n_neurons: int):
    """Refractory LIF core (spikes only), default parameters (D7); stimulus currents in [-2, 2)."""
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


class CoreFitTop(Elaboratable):
    """A core on the ULX3S with nothing else that costs resources: PLL, stimulus, one LED.

    Parameters
    ----------
    core : wiring.Component
        A neuron core following the project's core convention.
    narrow_current_bits : int
        Default stimulus current width (see :class:`hw.boards.stimulus.NeuronStimulus`).
    pll_config : PLLConfig
        Makes the core clock from the 25 MHz oscillator.
    """

    def __init__(self, core, *, narrow_current_bits: int, pll_config: PLLConfig):
        self.core = core
        self.narrow_current_bits = narrow_current_bits
        self.pll_config = pll_config

    def elaborate(self, platform):
        m = Module()
        add_pll_sync_domain(m, platform, self.pll_config)
        m.submodules.core = self.core
        stimulus = attach_stimulus(m, self.core, narrow_current_bits=self.narrow_current_bits)
        # A switch (not a constant) selects the current range, so both ranges stay in the design.
        m.submodules.wide_currents = wide_currents = io.Buffer("i", platform.request("switch", 1, dir="-"))
        m.submodules.activity_led = activity_led = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.d.comb += [stimulus.wide_currents.eq(wide_currents.i), activity_led.o.eq(stimulus.activity)]
        return m


def limit_of(report) -> str:
    """What bounds Fmax (met or not), from the critical path: end points, logic / routing split."""
    path = report.critical_path
    if path is None:
        return "no critical path reported"
    hard_blocks = [kind for kind in ("MULT18X18D", "DP16KD") if any(kind in cell for cell in path["cells"])]
    through = f" through {' and '.join(hard_blocks)}" if hard_blocks else ""
    return (
        f"{path['start']} -> {path['end']}{through}: {path['delay_ns']} ns = {path['clock_to_out_ns']} ns "
        f"clock-to-out + {round(path['logic_ns'] - path['clock_to_out_ns'], 3)} ns logic/setup + "
        f"{path['routing_ns']} ns routing over {path['hops']} nets"
    )


def fit_row(name: str, n_neurons: int, *, clock_hz: float, variant: str, seed: int) -> dict:
    """Build one core at one size; returns its table row."""
    core, narrow_current_bits = CORES[name](n_neurons)
    pll_config = solve_pll(BOARD_CLOCK_HZ, clock_hz)
    top = CoreFitTop(core, narrow_current_bits=narrow_current_bits, pll_config=pll_config)
    start = time.monotonic()
    result = run_build(
        top,
        ulx3s_platform(variant),
        BUILD_ROOT / f"{name}-{n_neurons}",
        design=f"{name} n_neurons={n_neurons} (core fit)",
        requested_clock_hz=clock_hz,
        pll=pll_config,
        seed=seed,
    )
    report = result.report
    clock = min(report.clocks, key=lambda c: c["slack_ns"]) if report.clocks else None
    return {
        "core": name,
        "n_neurons": n_neurons,
        **{resource: report.utilisation[resource]["used"] for resource in ("LUT4", "FF", "MULT18X18D", "DP16KD")},
        "fmax_mhz": round(clock["fmax_mhz"], 2) if clock else None,
        "target_mhz": round(pll_config.output_hz / 1e6, 3),
        "met": report.timing_met,
        "build_s": round(time.monotonic() - start, 1),
        "limit": limit_of(report),
        "critical_path": report.critical_path,
        "available": {resource: entry["available"] for resource, entry in report.utilisation.items()},
    }


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
    raise SystemExit(run_main(main))
