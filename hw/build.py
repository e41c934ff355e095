"""``python -m hw.build``: build (and optionally load) a ULX3S bitstream.

By default the design is the streaming event processor behind the UART link for the best
shipped trained model (:data:`DEFAULT_MODEL`); ``--model FILE`` (or ``--model default``, the
small embedded default network) picks another network. A fit check refuses, with numbers, a
network the device cannot hold. ``--stimulus`` builds one refractory LIF core fed by on-chip
stimulus instead (the small design of the toolchain smoke test).

The command line only picks the design and the board; :mod:`hw.bitstream` runs the toolchain
and writes the reports, to which a processor build adds its throughput from the processor's
cycle costs (:mod:`hw.processor.cycles`). See ``docs/build.md`` for the board tops, the reports
and the exit statuses.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from golden.cli import existing_file, non_negative_int, output_dir, positive_float, positive_int, run_main, upper_choice
from golden.fit import FitError, check_core_fit, check_fit
from golden.model_file import load_model
from golden.network import default_network
from golden.refractory_lif import RefractoryLIFParams
from hw.bitstream import (DEFAULT_LUT_MAPPER, DEFAULT_ROUTER, LUT_MAPPERS, ROUTERS, SYNTHESIS_TOOLS, BuildError,
                          BuildDirError, check_build_dir, program_board, run_build)
from hw.board_model import DEFAULT_STEPS, model_steps
from hw.boards.ulx3s import BOARD_CLOCK_HZ, VARIANTS, ULX3SNeuronTop, ulx3s_platform
from hw.boards.ulx3s_processor import ULX3SProcessorTop
from hw.cores.refractory_lif import RefractoryLIFCore
from hw.pll_ecp5 import OUTPUT_HZ_RANGE, PLLConfig, solve_pll
from hw.processor.cycles import measure_cycles, throughput
from hw.processor.network import check_processor_runs
from hw.toolchain import PROGRAMMER, ToolNotFoundError, configure_environment

EXIT_OK = 0
EXIT_FAILED = 1  # a toolchain stage failed, or timing was missed without --allow-timing-fail
EXIT_USAGE = 2  # bad arguments or a missing tool (argparse also exits 2)

#: The model of the default build: of the shipped models (models/README.md), the most accurate
#: on the FSDD test split (99.6 %) and the one with the fewest synaptic operations per sample
#: (docs/fsdd_results.md).
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "fsdd_silif.safetensors"
#: The stimulus top's clock.
DEFAULT_CLOCK_MHZ = 100.0
#: The processor top's clock: a whole number of cycles per bit at 1 and 3 Mbaud, and at least 10 %
#: under the lowest Fmax of every shipped model's top over three placement seeds (docs/build.md,
#: bench.fmax).
DEFAULT_PROCESSOR_CLOCK_MHZ = 90.0
DEFAULT_NEURONS = 256
#: Events and steps of the simulation that measures a processor build's cycle costs for its
#: report (hw.processor.cycles.measure_cycles: the per-event cost is exact after two events).
REPORT_EVENTS = 8
REPORT_STEPS = 4


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hw.build",
        description=(
            "Build a bitstream for an FPGA board: by default the streaming event processor for the "
            "best shipped trained model behind the UART host link (after a fit check); with --model, "
            "for another network; with --stimulus, a refractory LIF neuron core fed by on-chip "
            "pseudo-random currents, its spike and saturation counts shown on the LEDs. "
            "Runs Yosys, nextpnr-ecp5 and ecppack (the YoWASP builds from the virtual environment "
            "unless YOSYS, NEXTPNR_ECP5 or ECPPACK name other programs) and writes report.json and "
            "report.md (utilisation, Fmax, timing verdict, stage times and, for the processor, cycles and "
            "microseconds per sample and per event and synaptic operations per second) beside the bitstream."
        ),
        epilog=(
            "exit status: 0 built (and timing met, or --allow-timing-fail); 1 a toolchain stage "
            "failed or timing was missed; 2 bad arguments or a missing tool."
        ),
    )
    parser.add_argument("--board", choices=["ulx3s"], default="ulx3s", help="target board (default: %(default)s)")
    parser.add_argument(
        "--variant",
        type=upper_choice(VARIANTS, "variant"),
        default="85F",
        help="ULX3S FPGA size: LFE5U-12F, -25F, -45F or -85F (default: %(default)s)",
    )
    parser.add_argument(
        "--clock-mhz",
        type=_clock_mhz_arg,
        metavar="F",
        help=(
            "core clock made by the PLL from the 25 MHz oscillator, in MHz (default: "
            f"{DEFAULT_PROCESSOR_CLOCK_MHZ:g}, or {DEFAULT_CLOCK_MHZ:g} with --stimulus)"
        ),
    )
    parser.add_argument(
        "--model",
        type=_model_arg,
        metavar="FILE",
        help=(
            "the network of the streaming event processor: a model file (golden.model_file format) "
            "or 'default' for the small embedded default network (default: "
            f"models/{DEFAULT_MODEL.name})"
        ),
    )
    parser.add_argument(
        "--stimulus",
        action="store_true",
        help="build one refractory LIF core fed by on-chip stimulus instead of the processor (a small design)",
    )
    parser.add_argument(
        "--lanes",
        type=positive_int,
        metavar="N",
        help="synapse accumulator lanes per layer, adds per cycle (default: 1)",
    )
    parser.add_argument(
        "--cores",
        type=positive_int,
        metavar="N",
        help="neuron cores per hidden layer; must divide --lanes (default: as many as lanes)",
    )
    parser.add_argument(
        "--steps",
        type=positive_int,
        metavar="T",
        help=(
            "time steps per sample (default: the model file's provenance n_steps, "
            f"else {DEFAULT_STEPS})"
        ),
    )
    parser.add_argument(
        "--spike-layers",
        type=spike_layers_arg,
        metavar="all|K[,K...]",
        help=(
            "hidden layers whose spikes the board sends as SPIKE frames, 'all' or "
            "indices such as 0,1 (default: none; docs/host_link.md)"
        ),
    )
    parser.add_argument(
        "--neurons",
        type=positive_int,
        metavar="N",
        help=f"with --stimulus: neurons in the core, time-multiplexed on one datapath (default: {DEFAULT_NEURONS})",
    )
    parser.add_argument(
        "--out",
        type=output_dir,
        metavar="DIR",
        help=(
            "build directory for generated files, logs, bitstream and reports (default: "
            "build/<board>-<variant>-<model name>/, or build/<board>-<variant>/ with --stimulus)"
        ),
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="only elaborate and write the Verilog, LPF and scripts; run no toolchain",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="build into an --out folder that is not empty and was not made by hw.build (its files may be overwritten)",
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
    parser.add_argument("--seed", type=non_negative_int, default=1, help="nextpnr placement seed (default: %(default)s)")
    parser.add_argument(
        "--router",
        choices=ROUTERS,
        default=DEFAULT_ROUTER,
        help=(
            "nextpnr router (default: %(default)s); router2 converges where router1 crawls for hours, "
            "on builds that fill most multipliers or block RAMs (many lanes, large networks)"
        ),
    )
    parser.add_argument(
        "--lut-mapper",
        choices=LUT_MAPPERS,
        default=DEFAULT_LUT_MAPPER,
        help=(
            "Yosys LUT mapper (default: %(default)s); abc where Yosys 0.70's abc9 aborts with an "
            "rtlil.cc assertion (seen on the 162-256-256-10 network at 16 lanes)"
        ),
    )
    return parser


def spike_layers_arg(text: str):
    """``--spike-layers``: ``"all"`` or comma-separated hidden layer indices."""
    if text == "all":
        return text
    try:
        return tuple(non_negative_int(part) for part in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected 'all' or hidden layer indices such as 0,1, not {text!r}") from None


def _clock_mhz_arg(text: str) -> float:
    """``--clock-mhz``: a clock the ECP5 PLL can output."""
    value = positive_float(text)
    low, high = (hz / 1e6 for hz in OUTPUT_HZ_RANGE)
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{text} MHz is outside {low:g}..{high:g} MHz, the PLL's output range")
    return value


def _model_arg(text: str) -> str:
    """``--model``: ``"default"`` or an existing model file."""
    return text if text == "default" else str(existing_file(text))


def refractory_lif_top(n_neurons: int, pll_config: PLLConfig) -> tuple[str, ULX3SNeuronTop]:
    """The ULX3S top around a refractory LIF core with default parameters."""
    params = RefractoryLIFParams.from_float(v_th=np.ones(n_neurons), u_th=np.full(n_neurons, 0.5))
    core = RefractoryLIFCore(params, emit_state=False)
    top = ULX3SNeuronTop(core, narrow_current_bits=params.frac_bits + 2, pll_config=pll_config)
    return f"refractory_lif n_neurons={n_neurons}", top


def load_network(model: str):
    """The network of a model file, or of ``"default"`` (the embedded default network)."""
    return default_network() if model == "default" else load_model(model)


def steps_of(params, n_steps: int | None) -> int:
    """``n_steps`` if given, else :func:`hw.board_model.model_steps` (the model file's provenance ``n_steps``,
    else :data:`~hw.board_model.DEFAULT_STEPS`)."""
    return n_steps if n_steps is not None else model_steps(params)


def processor_throughput(model: str, report, *, lanes: int, cores: int | None, n_steps: int | None) -> list[dict]:
    """The processor's throughput at the built clock and at the build's Fmax (if it has one):
    :func:`hw.processor.cycles.throughput` of the cycles measured in simulation."""
    params = load_network(model)
    n_steps = steps_of(params, n_steps)
    print(f"measuring the processor's cycle costs in simulation ({REPORT_EVENTS} events, {REPORT_STEPS} steps) ...",
          file=sys.stderr, flush=True)
    costs = measure_cycles(params, lanes, cores=cores, n_events=REPORT_EVENTS, n_steps=REPORT_STEPS)
    clocks = [("built clock", report.pll["output_mhz"])]
    fmax = min((clock["fmax_mhz"] for clock in report.clocks), default=None)
    if fmax:
        clocks.append(("Fmax", fmax))
    return [{"label": label, **throughput(costs, params, lanes=lanes, n_steps=n_steps, clock_mhz=mhz)}
            for label, mhz in clocks]


def processor_top(model: str, variant: str, pll_config: PLLConfig, *, lanes: int, n_steps: int | None,
                  cores: int | None = None, spike_layers=None):
    """The ULX3S processor top for a model file (or ``"default"``), after the fit check.

    Raises :class:`golden.model_file.ModelFileError` for a bad file and
    :class:`golden.fit.FitError` (with the numbers) for a network the device cannot hold.
    """
    params = load_network(model)
    n_steps = steps_of(params, n_steps)
    check_processor_runs(params)
    report = check_fit(params, variant, lanes=lanes, cores=cores, spike_layers=spike_layers)
    print(f"fit check for LFE5U-{variant}: " + ", ".join(f"{k} {need}/{have}" for k, (need, have) in report.usage().items()))
    top = ULX3SProcessorTop(params, n_steps=n_steps, pll_config=pll_config, lanes=lanes, cores=cores,
                            spike_layers=spike_layers)
    kinds = "-".join(str(layer.n_out) for layer in params.layers)
    cores_text = "" if cores is None else f", cores={cores}"
    return f"processor {Path(model).name} ({params.n_inputs}-{kinds}, lanes={lanes}{cores_text}, steps={n_steps})", top


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.dry_run and args.program:
        parser.error("--program needs a bitstream: drop --dry-run")
    if args.stimulus:
        for option, value in (("--model", args.model), ("--cores", args.cores), ("--steps", args.steps),
                              ("--spike-layers", args.spike_layers), ("--lanes", args.lanes)):
            if value is not None:
                parser.error(f"{option} is for the processor build: drop --stimulus")
    elif args.neurons is not None:
        parser.error("--neurons needs --stimulus (the single-core build)")
    model = str(DEFAULT_MODEL) if args.model is None else args.model
    lanes = 1 if args.lanes is None else args.lanes
    if args.cores is not None and lanes % args.cores:
        divisors = [d for d in range(1, lanes + 1) if lanes % d == 0]
        parser.error(f"--cores {args.cores} must divide --lanes {lanes}: cores ({args.cores}) must divide lanes "
                     f"({lanes}); try one of {', '.join(map(str, divisors[-6:]))}")
    default_mhz = DEFAULT_CLOCK_MHZ if args.stimulus else DEFAULT_PROCESSOR_CLOCK_MHZ
    clock_hz = (args.clock_mhz if args.clock_mhz is not None else default_mhz) * 1e6
    name = f"{args.board}-{args.variant}" + ("" if args.stimulus else f"-{Path(model).stem}")
    out_dir = args.out or Path("build") / name

    try:
        if not args.dry_run:  # every missing tool is reported before anything is elaborated
            configure_environment([*SYNTHESIS_TOOLS, *([PROGRAMMER] if args.program else [])])
        check_build_dir(out_dir, force=args.force)  # refused before anything is elaborated
        pll_config = solve_pll(BOARD_CLOCK_HZ, clock_hz)
        if args.stimulus:
            neurons = DEFAULT_NEURONS if args.neurons is None else args.neurons
            core_params = RefractoryLIFParams.from_float(v_th=np.ones(1), u_th=np.full(1, 0.5))
            check_core_fit("refractory_lif", core_params, neurons, args.variant)
            design, top = refractory_lif_top(neurons, pll_config)
        else:
            design, top = processor_top(model, args.variant, pll_config, lanes=lanes, n_steps=args.steps,
                                        cores=args.cores, spike_layers=args.spike_layers)
    except (ToolNotFoundError, BuildDirError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except FitError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as error:  # ModelFileError included: it names the field and the problem
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
            router=args.router,
            lut_mapper=args.lut_mapper,
            force=args.force,
        )
    except BuildDirError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED

    if result.report is None:
        print(f"dry run: design files in {result.out_dir}")
        return EXIT_OK
    if not args.stimulus:
        result.report.throughput = processor_throughput(model, result.report, lanes=lanes, cores=args.cores,
                                                        n_steps=args.steps)
        result.report.write(result.out_dir)
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
    sys.exit(run_main(main))
