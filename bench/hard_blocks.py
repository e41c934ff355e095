"""Fmax of the issue-12 measurement design, inferred vs ECP5 hard blocks: ``python -m bench.hard_blocks``.

The design (:class:`hw.ecp5.multiply_accumulate.MemoryMultiplyAccumulate`) reads four 1024x18
memories every clock, multiplies them in two pairs and accumulates both products in 48 bits.
Each row is one Yosys ``synth_ecp5`` and one out-of-context ``nextpnr-ecp5`` place and route
(85F, speed grade 6, one seed) of one variant:

- ``inferred``: Amaranth memories and ``*`` with fabric registers (what Yosys makes of them);
- ``bram_outreg``: :class:`hw.ecp5.BlockRAM` with its output register, the multiply in fabric;
- ``hard``: :class:`hw.ecp5.BlockRAM` with its output register and :class:`hw.ecp5.Multiplier`
  with its input, pipeline and output registers.

Results go to ``build/bench/hard_blocks.json``; each build's files stay in
``build/hard_blocks/<variant>/``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path

from amaranth.back import rtlil

from bench.common import write_results
from golden.cli import non_negative_int, positive_float, run_main
from golden.files import write_text
from hw.boards.ulx3s import ulx3s_platform
from hw.ecp5.multiply_accumulate import MemoryMultiplyAccumulate
from hw.toolchain import find_tool

BUILD_ROOT = Path(__file__).resolve().parent.parent / "build" / "hard_blocks"
#: Variant name -> MemoryMultiplyAccumulate arguments.
VARIANTS = {
    "inferred": {"hard_memories": False, "hard_multipliers": False},
    "bram_outreg": {"hard_memories": True, "hard_multipliers": False},
    "hard": {"hard_memories": True, "hard_multipliers": True},
}
COLUMNS = ["variant", "fmax_mhz", "LUT4", "FF", "DP16KD", "MULT18X18D", "synth_s", "pnr_s", "critical_path"]


def _critical_path(report: dict) -> str:
    """First and last cell of nextpnr's first critical path, with its total delay."""
    paths = report.get("critical_paths") or []
    if not paths:
        return "none reported"
    steps = paths[0]["path"]
    delay = sum(step["delay"] for step in steps)
    return f"{steps[0]['from']['cell']} -> {steps[-1]['to']['cell']} ({delay:.2f} ns)"


def build_row(variant: str, *, seed: int, clock_mhz: float) -> dict:
    """Synthesise and place one variant out of context; returns its table row."""
    out = BUILD_ROOT / variant
    top = MemoryMultiplyAccumulate(**VARIANTS[variant])
    write_text(out / "top.il", rtlil.convert(top, name="top", platform=ulx3s_platform("85F")))
    start = time.monotonic()
    subprocess.run([find_tool("yosys"), "-q", "-l", "top.rpt", "-p", "read_rtlil top.il; synth_ecp5 -top top -json top.json"],
                   cwd=out, check=True)
    synth_s = time.monotonic() - start
    start = time.monotonic()
    subprocess.run(
        [find_tool("nextpnr-ecp5"), "--85k", "--package", "CABGA381", "--speed", "6", "--out-of-context",
         "--json", "top.json", "--freq", str(clock_mhz), "--seed", str(seed), "--report", "report.json",
         "--log", "top.tim", "--timing-allow-fail", "--quiet"],
        cwd=out, check=True,
    )
    pnr_s = time.monotonic() - start
    report = json.loads((out / "report.json").read_text())
    used = {name: entry["used"] for name, entry in report["utilization"].items()}
    fmax = min((clock["achieved"] for clock in report["fmax"].values()), default=None)
    return {
        "variant": variant,
        "fmax_mhz": round(fmax, 2) if fmax is not None else None,
        "LUT4": used.get("TRELLIS_COMB"),
        "FF": used.get("TRELLIS_FF"),
        "DP16KD": used.get("DP16KD"),
        "MULT18X18D": used.get("MULT18X18D"),
        "synth_s": round(synth_s, 1),
        "pnr_s": round(pnr_s, 1),
        "critical_path": _critical_path(report),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hard_blocks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="variants to build (default: all)")
    parser.add_argument("--seed", type=non_negative_int, default=1, help="nextpnr placement seed (default: %(default)s)")
    parser.add_argument("--clock-mhz", type=positive_float, default=200.0, metavar="F",
                        help="nextpnr's target clock (default: %(default)g)")
    args = parser.parse_args(argv)
    rows = [build_row(variant, seed=args.seed, clock_mhz=args.clock_mhz) for variant in args.variants]
    write_results("hard_blocks", rows, meta={"device": "LFE5U-85F-6 CABGA381", "seed": args.seed,
                                             "target_mhz": args.clock_mhz, "out_of_context": True},
                  columns=COLUMNS)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
