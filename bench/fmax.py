"""Fmax of the processor's board tops over placement seeds: ``python -m bench.fmax``.

Each row is one full Yosys -> nextpnr -> ecppack build of the ULX3S processor top (UART link,
decoder, encoder, processor, PLL; :class:`hw.boards.ulx3s_processor.ULX3SProcessorTop`) for one
network and one nextpnr placement seed, at the processor's default clock
(``hw.build.DEFAULT_PROCESSOR_CLOCK_MHZ``) unless ``--clock-mhz`` says otherwise. Fmax moves with
placement, so each network gets a summary row: the median Fmax over its seeds, the lowest and
highest, the spread (highest minus lowest) and how many seeds met the clock.

Networks: ``default`` (the default build's model, ``hw.build.DEFAULT_MODEL``), ``silif``,
``csilif``, ``rlif``, ``flames`` (``models/fsdd_<kind>.safetensors``) and ``embedded`` (the small
embedded default network). The builds go seed by seed (every network's seed 1, then seed 2, ...), and
``build/bench/fmax.json`` is rewritten after each one with the rows so far, so a run stopped early
keeps a table of every network at the seeds it reached; each build's files and ``report.md`` stay
in ``build/fmax/<network>-seed<seed>/``. ``--jobs N`` runs N builds side by side (each is
single-threaded).
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from bench.common import build_failure, build_fit, format_table, run_builds, summarise_seeds, write_fit_results
from golden.cli import non_negative_int, positive_float, positive_int, run_main, ulx3s_variant
from hw.bitstream import DEFAULT_ROUTER, ROUTERS, BuildError
from hw.boards.ulx3s_processor import ULX3SProcessorTop
from hw.build import DEFAULT_MODEL, DEFAULT_PROCESSOR_CLOCK_MHZ, load_network, steps_of

BUILD_ROOT = Path(__file__).resolve().parent.parent / "build" / "fmax"
MODELS = Path(__file__).resolve().parent.parent / "models"
#: Network name -> what ``hw.build --model`` takes.
NETWORKS = {
    "default": str(DEFAULT_MODEL),
    "silif": str(MODELS / "fsdd_silif.safetensors"),
    "csilif": str(MODELS / "fsdd_csilif.safetensors"),
    "rlif": str(MODELS / "fsdd_rlif.safetensors"),
    "flames": str(MODELS / "fsdd_flames.safetensors"),
    "embedded": "default",
}
SEEDS = (1, 2, 3)
COLUMNS = ["network", "seed", "LUT4", "FF", "MULT18X18D", "DP16KD", "fmax_mhz", "target_mhz", "met", "build_s", "limit"]
SUMMARY_COLUMNS = ["network", "seeds", "target_mhz", "fmax_median_mhz", "fmax_min_mhz", "fmax_max_mhz",
                   "spread_mhz", "met"]


def build_row(network: str, seed: int, *, clock_mhz: float, variant: str, router: str) -> dict:
    """One build of the processor top for ``network`` with placement ``seed``; returns its row."""
    model = NETWORKS[network]
    params = load_network(model)
    n_steps = steps_of(params, None)
    try:
        _, row = build_fit(
            lambda pll_config: ULX3SProcessorTop(params, n_steps=n_steps, pll_config=pll_config),
            BUILD_ROOT / f"{network}-seed{seed}", design=f"processor {Path(model).name} lanes=1 seed={seed}",
            clock_hz=clock_mhz * 1e6, variant=variant, seed=seed, router=router,
        )
    except BuildError as error:
        row = {"fmax_mhz": None, "target_mhz": clock_mhz, "met": False, "limit": build_failure(error)}
    row.pop("critical_path", None)
    row.pop("available", None)
    return {"network": network, "seed": seed, **row}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fmax", description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", choices=list(NETWORKS), default=["default", "rlif"],
                        help="networks to build (default: %(default)s)")
    parser.add_argument("--seeds", nargs="+", type=non_negative_int, default=list(SEEDS),
                        help="nextpnr placement seeds (default: 1 2 3)")
    parser.add_argument("--clock-mhz", type=positive_float, default=DEFAULT_PROCESSOR_CLOCK_MHZ,
                        help="requested clock (default: the processor's default, %(default)g)")
    parser.add_argument("--variant", type=ulx3s_variant, default="85F")
    parser.add_argument("--router", choices=ROUTERS, default=DEFAULT_ROUTER)
    parser.add_argument("--jobs", type=positive_int, default=1, help="builds side by side (default: 1)")
    args = parser.parse_args(argv)
    tasks = [(network, seed) for seed in args.seeds for network in args.networks]
    options = {"clock_mhz": args.clock_mhz, "variant": args.variant, "router": args.router}
    rows = []

    summarise = functools.partial(summarise_seeds, keys=("network",))
    status = 0

    def record(row: dict) -> None:
        nonlocal status
        rows.append(row)
        rows.sort(key=lambda r: (args.networks.index(r["network"]), args.seeds.index(r["seed"])))
        status = write_fit_results("fmax", rows, variant=args.variant, clock_mhz=args.clock_mhz, seed=args.seeds,
                                   columns=COLUMNS, summary=summarise(rows), router=args.router)

    run_builds(functools.partial(build_row, **options), tasks, jobs=args.jobs, record=record)
    print()
    print(format_table(summarise(rows), SUMMARY_COLUMNS))
    return status


if __name__ == "__main__":
    raise SystemExit(run_main(main))
