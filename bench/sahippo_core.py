"""Resources, Fmax and events per second of the SA-HiPPO core (zoh) on the ULX3S 85F:
``python -m bench.sahippo_core``.

Each row is one full Yosys -> nextpnr build of a top holding only the core (``emit_state``
off), the PLL that makes the requested clock, and :class:`EventStimulus` (an LFSR making
events on random channels with non-decreasing ticks, bursts and long gaps, every output folded
into one register driving LED 0). Rows are built one after another, with the helpers of
:mod:`bench.core_fit` (:func:`~bench.core_fit.limit_of`, the same PLL, platform and report).
``events_per_s`` is ``fmax / cycles_per_event`` (``N/2`` clocks per event, any channel mix,
outputs always ready). Results go to ``build/bench/sahippo_core.json``; each build stays in
``build/core_fit/sahippo-<N>-h<H>/`` unless the caller names another directory.

nextpnr routes these builds with router2 by default (``--router``): the core's zoh decay table
is ``H x (dt_max + 1) x N/2`` words spread over dozens of DP16KD block RAMs, all feeding the
same few multipliers, and router1 (nextpnr's default, one arc at a time) was still ripping up
half of its arcs after 45 minutes at H = 64, N = 32, where router2 (all nets at once) converges.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from amaranth.hdl import Elaboratable, Module, Mux, Signal
from amaranth.lib import io, stream, wiring
from amaranth.lib.wiring import In, Out

from bench.common import write_results
from bench.core_fit import BUILD_ROOT, limit_of
from golden.cli import non_negative_int, positive_float, positive_int, run_main, ulx3s_variant
from golden.sahippo import SAHiPPOParams
from hw.bitstream import ROUTERS, BuildError, run_build
from hw.boards.stimulus import LFSR_SEED, fold_activity, lfsr_next
from hw.boards.ulx3s import BOARD_CLOCK_HZ, add_pll_sync_domain, ulx3s_platform
from hw.cores.sahippo import SAHiPPOCore
from hw.pll_ecp5 import PLLConfig, solve_pll

STATE_SIZES = (16, 32, 64)
N_CHANNELS = 16
DT_MAX = 63
#: router2: see the module docstring (router1 does not finish on the larger decay tables).
ROUTER = "router2"
COLUMNS = [
    "n_state", "n_channels", "dt_max", "LUT4", "FF", "MULT18X18D", "DP16KD", "fmax_mhz", "target_mhz", "met",
    "cycles_per_event", "mevents_per_s", "build_s", "limit",
]


def sahippo_params(n_state: int, n_channels: int = N_CHANNELS, dt_max: int = DT_MAX) -> SAHiPPOParams:
    """Seeded zoh layer (resources do not depend on the values: they are memory contents)."""
    rng = np.random.default_rng(0)
    return SAHiPPOParams.from_float(
        n_state,
        alpha=rng.uniform(0.5, 3.0, n_channels),
        dt_scale=rng.uniform(0.02, 0.2, n_channels),
        c=rng.standard_normal((n_channels, n_state)) / np.sqrt(n_state),
        d=rng.standard_normal(n_channels),
        threshold=rng.uniform(0.05, 0.3, n_channels),
        dt_max=dt_max,
        method="zoh",
    )


class EventStimulus(wiring.Component):
    """Feeds events to a :class:`SAHiPPOCore` and folds everything it emits into one bit.

    Each accepted event advances a 32-bit Galois LFSR (:data:`hw.boards.stimulus.LFSR_TAPS`);
    its bits give the channel, the weight (signed, full ``input_fmt`` width) and the tick
    step: 0 to 7 ticks, or 100 more when three further bits are zero (beyond ``dt_max``), so
    ticks never decrease.

    Members
    -------
    o_event : ``Out(stream.Signature(core.event_layout))``
        Always valid.
    i_output : ``In(stream.Signature(core.output_layout))``
        Always ready.
    saturation_count, backwards_count : ``In(32)``
        The core's counters.
    activity : ``Out(1)``
        Registered XOR of every output payload and both counters.
    """

    def __init__(self, core: SAHiPPOCore):
        self._core = core
        super().__init__(
            {
                "o_event": Out(stream.Signature(core.event_layout)),
                "i_output": In(stream.Signature(core.output_layout)),
                "saturation_count": In(32),
                "backwards_count": In(32),
                "activity": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        core = self._core
        lfsr = Signal(32, init=LFSR_SEED)
        tick = Signal(core.tick_bits)
        weight_width = core.params.input_fmt.width
        step = Mux(lfsr[11:14] == 0, lfsr[8:11] + 100, lfsr[8:11])
        m.d.comb += [
            self.o_event.valid.eq(1),
            self.o_event.payload.channel.eq(lfsr[: core.channel_bits]),
            self.o_event.payload.tick.eq(tick),
            self.o_event.payload.weight.eq(lfsr[16 : 16 + weight_width].as_signed()),
        ]
        with m.If(self.o_event.ready):
            m.d.sync += [lfsr.eq(lfsr_next(lfsr)), tick.eq(tick + step)]
        m.d.comb += self.i_output.ready.eq(1)
        fold_activity(m, self.activity, self.i_output, self.saturation_count, self.backwards_count)
        return m


class StimulusFitTop(Elaboratable):
    """A core on the ULX3S with the PLL, an on-chip stimulus and one LED (its ``activity``).

    ``into_core`` names the stimulus's source port and the core's sink port it drives,
    ``out_of_core`` the core's output port and the stimulus port that takes it; the core
    counters named in ``counters`` are fed to the stimulus's ports of the same names, so that
    nothing the core computes can be optimised away.
    """

    def __init__(self, core, stimulus, *, pll_config: PLLConfig, into_core: tuple[str, str],
                 out_of_core: tuple[str, str], counters: tuple[str, ...] = ()):
        self.core, self.stimulus = core, stimulus
        self.pll_config = pll_config
        self.into_core, self.out_of_core, self.counters = into_core, out_of_core, counters

    def elaborate(self, platform):
        m = Module()
        add_pll_sync_domain(m, platform, self.pll_config)
        m.submodules.core = core = self.core
        m.submodules.stimulus = stimulus = self.stimulus
        wiring.connect(m, getattr(stimulus, self.into_core[0]), getattr(core, self.into_core[1]))
        wiring.connect(m, getattr(core, self.out_of_core[0]), getattr(stimulus, self.out_of_core[1]))
        m.d.comb += [getattr(stimulus, name).eq(getattr(core, name)) for name in self.counters]
        m.submodules.activity_led = activity_led = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.d.comb += activity_led.o.eq(stimulus.activity)
        return m


def SAHiPPOFitTop(core: SAHiPPOCore, *, pll_config: PLLConfig) -> StimulusFitTop:  # noqa: N802 (a top, like a class)
    """The SA-HiPPO core on the ULX3S with the PLL, :class:`EventStimulus` and one LED."""
    return StimulusFitTop(core, EventStimulus(core), pll_config=pll_config, into_core=("o_event", "i_event"),
                          out_of_core=("o_output", "i_output"), counters=("saturation_count", "backwards_count"))


def fit_row(n_state: int, *, n_channels: int, dt_max: int, clock_hz: float, variant: str, seed: int,
            router: str = ROUTER, build_dir=None) -> dict:
    """Build the core for one size; returns its table row.

    ``build_dir`` defaults to ``build/core_fit/sahippo-<N>-h<H>/`` (one directory per size, so
    builds of different sizes do not overwrite each other); ``router`` is nextpnr's router,
    one of :data:`hw.bitstream.ROUTERS`.
    """
    if router not in ROUTERS:
        raise ValueError(f"router must be one of {', '.join(ROUTERS)}, not {router!r}")
    core = SAHiPPOCore(sahippo_params(n_state, n_channels, dt_max), emit_state=False)
    pll_config = solve_pll(BOARD_CLOCK_HZ, clock_hz)
    if build_dir is None:
        build_dir = BUILD_ROOT / f"sahippo-{n_state}-h{n_channels}"
    start = time.monotonic()
    result = run_build(
        SAHiPPOFitTop(core, pll_config=pll_config),
        ulx3s_platform(variant),
        build_dir,
        design=f"sahippo zoh N={n_state} H={n_channels} dt_max={dt_max} (core fit)",
        requested_clock_hz=clock_hz,
        pll=pll_config,
        seed=seed,
        router=router,
    )
    report = result.report
    clock = min(report.clocks, key=lambda c: c["slack_ns"]) if report.clocks else None
    fmax = clock["fmax_mhz"] if clock else None
    return {
        "n_state": n_state,
        "n_channels": n_channels,
        "dt_max": dt_max,
        **{resource: report.utilisation[resource]["used"] for resource in ("LUT4", "FF", "MULT18X18D", "DP16KD")},
        "fmax_mhz": round(fmax, 2) if fmax else None,
        "target_mhz": round(pll_config.output_hz / 1e6, 3),
        "met": report.timing_met,
        "cycles_per_event": core.cycles_per_event,
        "mevents_per_s": round(fmax / core.cycles_per_event, 3) if fmax else None,
        "build_s": round(time.monotonic() - start, 1),
        "router": router,
        "seed": seed,
        "build_dir": str(build_dir),
        "limit": limit_of(report),
        "critical_path": report.critical_path,
        "available": {resource: entry["available"] for resource, entry in report.utilisation.items()},
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
                        help="nextpnr router (default: %(default)s; router1 does not finish on large decay tables)")
    args = parser.parse_args(argv)
    rows = []
    for n_state in args.states:
        try:
            rows.append(fit_row(n_state, n_channels=args.channels, dt_max=args.dt_max,
                                clock_hz=args.clock_mhz * 1e6, variant=args.variant, seed=args.seed,
                                router=args.router))
        except BuildError as error:
            rows.append({"n_state": n_state, "limit": f"build failed: {str(error).splitlines()[0]}"})
    write_results(
        "sahippo_core",
        rows,
        meta={
            "board": "ulx3s",
            "device": ulx3s_platform(args.variant).device,
            "clock_mhz": args.clock_mhz,
            "seed": args.seed,
            "router": args.router,
            "what": "SA-HiPPO zoh core (no o_state) + EHXPLLL + EventStimulus (LFSR events, outputs XOR to one LED)",
            "events_per_s": "fmax / cycles_per_event (N/2 clocks per event, outputs always ready)",
        },
        columns=COLUMNS,
    )
    return 0 if all(row.get("met") for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(run_main(main))
