"""Resources, Fmax and events per second of the SA-HiPPO core (zoh) on the ULX3S 85F:
``python -m bench.sahippo_core``.

Each row is one full Yosys -> nextpnr build of :func:`hw.boards.core_fit.SAHiPPOFitTop`: the
core (``emit_state`` off), the PLL that makes the requested clock, and
:class:`hw.boards.stimulus.EventStimulus` (an LFSR making events on random channels with
non-decreasing ticks, bursts and long gaps, every output folded into one register driving
LED 0). Rows are built one after another by :func:`bench.common.build_fit`.
``events_per_s`` is ``fmax / cycles_per_event`` (``N/2`` clocks per event, any channel mix,
outputs always ready). Results go to ``build/bench/sahippo_core.json``; each build stays in
``build/core_fit/sahippo-<N>-h<H>/`` unless the caller names another directory.

nextpnr routes these builds with router2 by default (``--router``): the core's block RAMs
(digit tables of decays, ``g``, state, ``C``) all feed the same few multipliers, where
router1 (nextpnr's default, one arc at a time) converges slowly and router2 (all nets at once)
does better.
"""

from __future__ import annotations

import argparse

from bench.common import FIT_ROOT, build_failure, build_fit, write_fit_results
from golden.cli import non_negative_int, positive_float, positive_int, run_main, ulx3s_variant
from golden.sahippo import SAHiPPOParams
from hw.bitstream import ROUTERS, BuildError
from hw.boards.core_fit import SAHiPPOFitTop
from hw.cores.sahippo import SAHiPPOCore
from sim.tb_sahippo import zoh_params

STATE_SIZES = (16, 32, 64)
N_CHANNELS = 16
DT_MAX = 63
#: router2: see the module docstring.
ROUTER = "router2"
COLUMNS = [
    "n_state", "n_channels", "dt_max", "LUT4", "FF", "MULT18X18D", "DP16KD", "fmax_mhz", "target_mhz", "met",
    "cycles_per_event", "mevents_per_s", "build_s", "limit",
]


def sahippo_params(n_state: int, n_channels: int = N_CHANNELS, dt_max: int = DT_MAX) -> SAHiPPOParams:
    """Seeded zoh layer (resources do not depend on the values: they are memory contents)."""
    return zoh_params(n_state, n_channels, dt_max, seed=0)


def fit_row(n_state: int, *, n_channels: int, dt_max: int, clock_hz: float, variant: str, seed: int,
            router: str = ROUTER, build_dir=None) -> dict:
    """Build the core for one size; returns its table row.

    ``build_dir`` defaults to ``build/core_fit/sahippo-<N>-h<H>/`` (one directory per size, so
    builds of different sizes do not overwrite each other); ``router`` is nextpnr's router,
    one of :data:`hw.bitstream.ROUTERS`.
    """
    params = sahippo_params(n_state, n_channels, dt_max)
    if build_dir is None:
        build_dir = FIT_ROOT / f"sahippo-{n_state}-h{n_channels}"
    top, row = build_fit(lambda pll_config: SAHiPPOFitTop(SAHiPPOCore(params, emit_state=False), pll_config=pll_config),
                         build_dir, design=f"sahippo zoh N={n_state} H={n_channels} dt_max={dt_max} (core fit)",
                         clock_hz=clock_hz, variant=variant, seed=seed, router=router)
    cycles_per_event = top.core.cycles_per_event
    return {
        "n_state": n_state,
        "n_channels": n_channels,
        "dt_max": dt_max,
        **row,
        "cycles_per_event": cycles_per_event,
        "mevents_per_s": round(row["fmax_mhz"] / cycles_per_event, 3) if row["fmax_mhz"] else None,
        "router": router,
        "seed": seed,
        "build_dir": str(build_dir),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sahippo_core", description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", nargs="+", type=positive_int, default=list(STATE_SIZES), metavar="N",
                        help="state sizes N (default: %(default)s)")
    parser.add_argument("--channels", type=positive_int, default=N_CHANNELS, help="channels H (default: %(default)s)")
    parser.add_argument("--dt-max", type=positive_int, default=DT_MAX, help="table clip dt_max (default: %(default)s)")
    parser.add_argument("--clock-mhz", type=positive_float, default=100.0, metavar="F", help="target clock (default: %(default)g)")
    parser.add_argument("--variant", type=ulx3s_variant, default="85F", help="ULX3S variant (default: %(default)s)")
    parser.add_argument("--seed", type=non_negative_int, default=1, help="nextpnr placement seed (default: %(default)s)")
    parser.add_argument("--router", choices=ROUTERS, default=ROUTER,
                        help="nextpnr router (default: %(default)s; see the module docstring)")
    args = parser.parse_args(argv)
    rows = []
    for n_state in args.states:
        try:
            rows.append(fit_row(n_state, n_channels=args.channels, dt_max=args.dt_max,
                                clock_hz=args.clock_mhz * 1e6, variant=args.variant, seed=args.seed,
                                router=args.router))
        except BuildError as error:
            rows.append({"n_state": n_state, "limit": build_failure(error)})
    return write_fit_results(
        "sahippo_core", rows, variant=args.variant, clock_mhz=args.clock_mhz, seed=args.seed, columns=COLUMNS,
        router=args.router,
        what="SA-HiPPO zoh core (no o_state) + EHXPLLL + EventStimulus (LFSR events, outputs XOR to one LED)",
        events_per_s="fmax / cycles_per_event (N/2 clocks per event, outputs always ready)",
    )

if __name__ == "__main__":
    raise SystemExit(run_main(main))
