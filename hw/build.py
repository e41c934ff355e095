"""``python -m hw.build``: build (and optionally load) a ULX3S bitstream with a neuron core inside.

The command line only picks the design and the board; :mod:`hw.bitstream` runs the toolchain
and writes the reports. See ``docs/build.md`` for the board top, the reports and the exit
statuses.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from golden.refractory_lif import RefractoryLIFParams
from hw.bitstream import SYNTHESIS_TOOLS, BuildError, program_board, run_build
from hw.boards.ulx3s import BOARD_CLOCK_HZ, VARIANTS, ULX3SNeuronTop, ulx3s_platform
from hw.cores.refractory_lif import RefractoryLIFCore
from hw.pll_ecp5 import PLLConfig, solve_pll
from hw.toolchain import PROGRAMMER, ToolNotFoundError, configure_environment

EXIT_OK = 0
EXIT_FAILED = 1  # a toolchain stage failed, or timing was missed without --allow-timing-fail
EXIT_USAGE = 2  # bad arguments or a missing tool (argparse also exits 2)

DEFAULT_CLOCK_MHZ = 100.0
DEFAULT_NEURONS = 256


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hw.build",
        description=(
            "Build a bitstream for an FPGA board with a refractory LIF neuron core inside, fed by "
            "on-chip pseudo-random currents, its spike and saturation counts shown on the LEDs. "
            "Runs Yosys, nextpnr-ecp5 and ecppack (the YoWASP builds from the virtual environment "
            "unless YOSYS, NEXTPNR_ECP5 or ECPPACK name other programs) and writes report.json and "
            "report.md (utilisation, Fmax, timing verdict) beside the bitstream."
        ),
        epilog=(
            "exit status: 0 built (and timing met, or --allow-timing-fail); 1 a toolchain stage "
            "failed or timing was missed; 2 bad arguments or a missing tool."
        ),
    )
    parser.add_argument("--board", choices=["ulx3s"], default="ulx3s", help="target board (default: %(default)s)")
    parser.add_argument(
        "--variant",
        choices=list(VARIANTS),
        default="85F",
        help="ULX3S FPGA size: LFE5U-12F, -25F, -45F or -85F (default: %(default)s)",
    )
    parser.add_argument(
        "--clock-mhz",
        type=float,
        default=DEFAULT_CLOCK_MHZ,
        metavar="F",
        help="core clock made by the PLL from the 25 MHz oscillator, in MHz (default: %(default)g)",
    )
    parser.add_argument(
        "--neurons",
        type=int,
        default=DEFAULT_NEURONS,
        metavar="N",
        help="neurons in the core, time-multiplexed on one datapath (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="build directory for generated files, logs, bitstream and reports (default: build/<board>-<variant>/)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="only elaborate and write the Verilog, LPF and scripts; run no toolchain",
    )
    parser.add_argument(
        "--allow-timing-fail",
        action="store_true",
        help="exit 0 even when the design misses the requested clock (the report still says so)",
    )
    parser.add_argument(
        "--program",
        action="store_true",
        help=f"load the bitstream into the board's SRAM afterwards (needs {PROGRAMMER})",
    )
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (default: %(default)s)")
    return parser


def refractory_lif_top(n_neurons: int, pll_config: PLLConfig) -> tuple[str, ULX3SNeuronTop]:
    """The ULX3S top around a refractory LIF core with the default parameters (D7)."""
    params = RefractoryLIFParams.from_float(v_th=np.ones(n_neurons), u_th=np.full(n_neurons, 0.5))
    core = RefractoryLIFCore(params, emit_state=False)
    top = ULX3SNeuronTop(core, narrow_current_bits=params.frac_bits + 2, pll_config=pll_config)
    return f"refractory_lif n_neurons={n_neurons}", top


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.neurons < 1:
        parser.error(f"--neurons must be at least 1, not {args.neurons}")
    if args.dry_run and args.program:
        parser.error("--program needs a bitstream: drop --dry-run")
    out_dir = args.out or Path("build") / f"{args.board}-{args.variant}"
    clock_hz = args.clock_mhz * 1e6

    try:
        if not args.dry_run:  # every missing tool is reported before anything is elaborated
            configure_environment([*SYNTHESIS_TOOLS, *([PROGRAMMER] if args.program else [])])
        pll_config = solve_pll(BOARD_CLOCK_HZ, clock_hz)
        design, top = refractory_lif_top(args.neurons, pll_config)
    except ToolNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as error:
        parser.error(str(error))

    platform = ulx3s_platform(args.variant, program=args.program)
    try:
        result = run_build(
            top,
            platform,
            out_dir,
            design=design,
            requested_clock_hz=clock_hz,
            pll=pll_config,
            dry_run=args.dry_run,
            seed=args.seed,
        )
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED

    if result.report is None:
        print(f"dry run: design files in {result.out_dir}")
        return EXIT_OK
    status = report_verdict(result.report, allow_timing_fail=args.allow_timing_fail)
    if status == EXIT_OK and args.program:
        try:
            program_board(platform, result.out_dir)
        except subprocess.CalledProcessError as error:
            print(f"error: {PROGRAMMER} failed (exit status {error.returncode}); is the board connected?", file=sys.stderr)
            return EXIT_FAILED
    return status


def report_verdict(report, *, allow_timing_fail: bool) -> int:
    """Print the build summary; return the exit status it implies (timing decides)."""
    for clock in report.clocks:
        print(
            f"clock {clock['clock']}: Fmax {clock['fmax_mhz']:.2f} MHz, constraint {clock['constraint_mhz']:.2f} MHz"
            f" -> {'met' if clock['met'] else 'NOT MET'}"
        )
    used = ", ".join(f"{name} {entry['used']}/{entry['available']}" for name, entry in report.utilisation.items())
    print(f"utilisation: {used}")
    print(f"bitstream: {report.bitstream}")
    if report.timing_met:
        return EXIT_OK
    worst = min(report.clocks, key=lambda clock: clock["slack_ns"], default=None)
    banner = "=" * 72
    what = (
        f"{worst['clock']} reaches {worst['fmax_mhz']:.2f} MHz of the {worst['constraint_mhz']:.2f} MHz requested"
        if worst
        else "no constrained clock found in the nextpnr report"
    )
    print(f"{banner}\nTIMING NOT MET: {what}.", file=sys.stderr)
    if allow_timing_fail:
        print("Continuing because of --allow-timing-fail; the bitstream may not work.", file=sys.stderr)
    else:
        print("Lower --clock-mhz, or pass --allow-timing-fail to accept it.", file=sys.stderr)
    print(banner, file=sys.stderr)
    return EXIT_OK if allow_timing_fail else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
