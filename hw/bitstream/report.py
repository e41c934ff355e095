"""What a bitstream build reports: utilisation, Fmax per clock, timing verdict, tools, stage times.

The numbers come from nextpnr's machine-readable report (``--report``), never from scraping its
log. :class:`BuildReport` is written beside the bitstream as ``report.json`` and ``report.md``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from golden.files import write_text

__all__ = [
    "UTILISATION_BELS",
    "ClockTiming",
    "BuildReport",
    "utilisation",
    "clock_timings",
    "critical_path",
    "describe_path",
    "timing_met",
]

#: Reported resource -> nextpnr ECP5 bel type. A ``TRELLIS_COMB`` is one LUT4 (a ``CCU2C`` carry
#: cell occupies two of them); a ``TRELLIS_FF`` is one flip-flop.
UTILISATION_BELS = {
    "LUT4": "TRELLIS_COMB",
    "FF": "TRELLIS_FF",
    "MULT18X18D": "MULT18X18D",
    "DP16KD": "DP16KD",
}


def utilisation(nextpnr_report: dict) -> dict[str, dict[str, int]]:
    """``{"LUT4": {"used": .., "available": ..}, ...}`` from a nextpnr report."""
    table = nextpnr_report.get("utilization", {})
    result = {}
    for name, bel in UTILISATION_BELS.items():
        entry = table.get(bel, {"used": 0, "available": 0})
        result[name] = {"used": int(entry["used"]), "available": int(entry["available"])}
    return result


@dataclass(frozen=True)
class ClockTiming:
    """Achieved against constrained frequency of one clock net, in MHz."""

    clock: str
    fmax_mhz: float
    constraint_mhz: float

    @property
    def met(self) -> bool:
        return self.fmax_mhz >= self.constraint_mhz

    @property
    def slack_ns(self) -> float:
        """Period margin: constrained period minus the achieved critical path delay."""
        return 1e3 / self.constraint_mhz - 1e3 / self.fmax_mhz

    def as_dict(self) -> dict:
        return {**asdict(self), "met": self.met, "slack_ns": round(self.slack_ns, 3)}


def clock_timings(nextpnr_report: dict) -> list[ClockTiming]:
    """One :class:`ClockTiming` per clock in the report's ``fmax`` table."""
    return [
        ClockTiming(clock=name, fmax_mhz=float(entry["achieved"]), constraint_mhz=float(entry["constraint"]))
        for name, entry in sorted(nextpnr_report.get("fmax", {}).items())
    ]


def timing_met(clocks: list[ClockTiming]) -> bool:
    """True when there is at least one constrained clock and every clock meets its constraint."""
    return bool(clocks) and all(clock.met for clock in clocks)


def critical_path(nextpnr_report: dict, clock: str | None = None) -> dict | None:
    """The worst intra-clock critical path as a summary, or ``None`` if the report has none.

    Returns ``{"clock", "delay_ns", "clock_to_out_ns", "logic_ns", "routing_ns", "hops", "start",
    "end", "cells"}``: total delay; the start cell's clock-to-out delay (large for an
    unregistered block RAM or multiplier output); all cell delay (clock-to-out, logic, setup)
    and routing delay; the start and end cells and the cells along the path.
    """
    best = None
    for path in nextpnr_report.get("critical_paths", []):
        if path.get("from") != path.get("to"):
            continue
        if clock is not None and path.get("from") != clock:
            continue
        steps = path.get("path", [])
        if not steps:
            continue
        delay = sum(float(step.get("delay", 0.0)) for step in steps)
        if best is None or delay > best["delay_ns"]:
            routing = sum(float(step.get("delay", 0.0)) for step in steps if step.get("type") == "routing")
            cells = []
            for step in steps:
                cell = step.get("to", {}).get("cell")
                if cell and (not cells or cells[-1] != cell):
                    cells.append(cell)
            first = steps[0]
            best = {
                "clock": path.get("from"),
                "delay_ns": round(delay, 3),
                "clock_to_out_ns": round(float(first.get("delay", 0.0)) if first.get("type") == "clk-to-q" else 0.0, 3),
                "logic_ns": round(delay - routing, 3),
                "routing_ns": round(routing, 3),
                "hops": sum(1 for step in steps if step.get("type") == "routing"),
                "start": first.get("from", {}).get("cell"),
                "end": steps[-1].get("to", {}).get("cell"),
                "cells": cells,
            }
    return best


def describe_path(path: dict | None) -> str:
    """What bounds Fmax, in words, from a :func:`critical_path` summary: end points, the hard
    blocks it passes, and its split into clock-to-out, logic and setup, and routing."""
    if path is None:
        return "no critical path reported"
    hard_blocks = [kind for kind in ("MULT18X18D", "DP16KD") if any(kind in cell for cell in path["cells"])]
    through = f" through {' and '.join(hard_blocks)}" if hard_blocks else ""
    return (
        f"{path['start']} -> {path['end']}{through}: {path['delay_ns']} ns = {path['clock_to_out_ns']} ns "
        f"clock-to-out + {round(path['logic_ns'] - path['clock_to_out_ns'], 3)} ns logic/setup + "
        f"{path['routing_ns']} ns routing over {path['hops']} nets"
    )


@dataclass
class BuildReport:
    """Everything ``report.json`` holds; :meth:`markdown` renders ``report.md``.

    Parameters
    ----------
    design : str
        What was built (e.g. ``"refractory_lif n_neurons=256"``).
    board, device, package : str
        ``"ulx3s"``, ``"LFE5U-85F"``, ``"CABGA381"``.
    requested_clock_mhz : float
        The clock the user asked for; ``pll`` holds what the PLL makes.
    tools : dict
        ``{tool name: {"path": .., "version": ..}}``.
    stages : list of dict
        ``{"name", "seconds", "command", "log"}`` per toolchain stage, in order.
    throughput : list of dict
        For a processor build: :func:`hw.processor.cycles.throughput` at the built clock and at
        the achieved Fmax (cycles and microseconds per input event, step and sample, synaptic
        operations per second); empty for other designs.
    """

    design: str
    board: str
    device: str
    package: str
    speed_grade: str
    requested_clock_mhz: float
    pll: dict
    utilisation: dict = field(default_factory=dict)
    clocks: list = field(default_factory=list)
    timing_met: bool = False
    critical_path: dict | None = None
    bitstream: str | None = None
    tools: dict = field(default_factory=dict)
    stages: list = field(default_factory=list)
    total_seconds: float = 0.0
    throughput: list = field(default_factory=list)

    @classmethod
    def from_nextpnr(cls, nextpnr_report: dict, **fields) -> "BuildReport":
        """Fill utilisation, clocks, the timing verdict and the critical path from nextpnr's report."""
        clocks = clock_timings(nextpnr_report)
        return cls(
            utilisation=utilisation(nextpnr_report),
            clocks=[clock.as_dict() for clock in clocks],
            timing_met=timing_met(clocks),
            critical_path=critical_path(nextpnr_report),
            **fields,
        )

    def as_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> dict:
        """The build as one table row.

        ``LUT4``, ``FF``, ``MULT18X18D``, ``DP16KD`` used; ``fmax_mhz`` of the clock with the
        least slack (``None`` without a constrained clock) and ``target_mhz``, what the PLL makes
        (MHz, rounded to 2 and 3 decimals); ``met``; ``build_s``, the elaboration and toolchain
        seconds; ``limit``, what bounds Fmax in words (:func:`describe_path`); the
        ``critical_path`` itself; the device's ``available`` count of each resource.
        """
        clock = min(self.clocks, key=lambda c: c["slack_ns"]) if self.clocks else None
        return {
            **{resource: entry["used"] for resource, entry in self.utilisation.items()},
            "fmax_mhz": round(clock["fmax_mhz"], 2) if clock else None,
            "target_mhz": round(self.pll["output_mhz"], 3),
            "met": self.timing_met,
            "build_s": round(self.total_seconds, 1),
            "limit": describe_path(self.critical_path),
            "critical_path": self.critical_path,
            "available": {resource: entry["available"] for resource, entry in self.utilisation.items()},
        }

    def markdown(self) -> str:
        verdict = "met" if self.timing_met else "**NOT MET**"
        lines = [
            f"# Build report: {self.design}",
            "",
            f"- Board: {self.board}, device {self.device} ({self.package}, speed {self.speed_grade})",
            f"- Clock: requested {self.requested_clock_mhz:g} MHz, PLL makes {self.pll.get('output_mhz', 0):.4g} MHz "
            f"(CLKI_DIV={self.pll.get('clki_div')}, CLKFB_DIV={self.pll.get('clkfb_div')}, "
            f"CLKOP_DIV={self.pll.get('clkop_div')}, VCO {self.pll.get('vco_mhz', 0):.4g} MHz)",
            f"- Timing: {verdict}",
            *self._placement_line(),
            f"- Bitstream: `{self.bitstream}`",
            "",
            "## Utilisation",
            "",
            "| resource | used | available | % |",
            "|---|---:|---:|---:|",
        ]
        for name, entry in self.utilisation.items():
            share = 100.0 * entry["used"] / entry["available"] if entry["available"] else 0.0
            lines.append(f"| {name} | {entry['used']} | {entry['available']} | {share:.1f} |")
        lines += ["", "## Clocks", "", "| clock | Fmax (MHz) | constraint (MHz) | slack (ns) | met |", "|---|---:|---:|---:|---|"]
        for clock in self.clocks:
            lines.append(
                f"| `{clock['clock']}` | {clock['fmax_mhz']:.2f} | {clock['constraint_mhz']:.2f} | "
                f"{clock['slack_ns']:.3f} | {'yes' if clock['met'] else '**no**'} |"
            )
        if self.critical_path:
            path = self.critical_path
            lines += [
                "",
                "## Critical path",
                "",
                f"{path['delay_ns']} ns on `{path['clock']}` ({path['logic_ns']} ns in cells, of which "
                f"{path['clock_to_out_ns']} ns clock-to-out; {path['routing_ns']} ns routing over {path['hops']} nets) "
                f"from `{path['start']}` to `{path['end']}`.",
            ]
        lines += self._throughput_lines()
        lines += ["", "## Stages", "", "| stage | seconds | log |", "|---|---:|---|"]
        for stage in self.stages:
            log = f"`{stage['log']}`" if stage["log"] else "-"
            lines.append(f"| {stage['name']} | {stage['seconds']:.1f} | {log} |")
        lines += ["", f"Total: {self.total_seconds:.1f} s", "", "## Tools", ""]
        lines += [f"- {name}: `{tool['path']}` ({tool['version']})" for name, tool in self.tools.items()]
        return "\n".join(lines) + "\n"

    def _throughput_lines(self) -> list[str]:
        """The ``## Throughput`` table, one column per clock of :attr:`throughput`."""
        if not self.throughput:
            return []
        first = self.throughput[0]
        rows = [
            ("cycles / input event (layer 0 fan-out)", lambda t: f"{t['cycles_per_event']:g}"),
            ("us / input event", lambda t: f"{t['us_per_event']:.4g}"),
            ("cycles / time step", lambda t: f"{t['cycles_per_step']:g}"),
            ("us / time step", lambda t: f"{t['us_per_step']:.4g}"),
            ("latency, last event -> decision (cycles / us)", lambda t: f"{t['latency_cycles']} / {t['latency_us']:.4g}"),
            (f"sample without events, {first['n_steps']} steps (cycles / us)",
             lambda t: f"{t['empty_sample_cycles']:,} / {t['empty_sample_us']:,.1f}"),
            (f"sample at the event bound, {first['bound_sample_events']:,} events (cycles / us)",
             lambda t: f"{t['bound_sample_cycles']:,} / {t['bound_sample_us']:,.1f}"),
            ("synaptic operations while events stream (GSOP/s)", lambda t: f"{t['gsop_per_s']:.4g}"),
            ("peak, lanes adds per cycle (GSOP/s)", lambda t: f"{t['gsop_per_s_peak']:.4g}"),
        ]
        header = " | ".join(f"at {t['clock_mhz']:.4g} MHz ({t['label']})" for t in self.throughput)
        lines = [
            "",
            "## Throughput",
            "",
            "From the processor's cycles in amaranth.sim (`hw.processor.cycles`, docs/processor.md); a "
            "sample costs its events' fan-out, every step's close and the latency (cycles / sample = "
            "events x cycles / event + steps x cycles / step + latency).",
            "",
            f"| | {header} |",
            "|---|" + "---:|" * len(self.throughput),
        ]
        lines += [f"| {name} | " + " | ".join(cell(t) for t in self.throughput) + " |" for name, cell in rows]
        return lines

    def _placement_line(self) -> list[str]:
        """``- Place and route: seed S, router R`` from the nextpnr command, when it was recorded."""
        for stage in self.stages:
            command = stage.get("command") or []
            if command and command[0] == "nextpnr-ecp5":
                options = dict(zip(command[1:], command[2:]))
                return [f"- Place and route: seed {options.get('--seed', '?')}, {options.get('--router', 'router1')}"]
        return []

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        """Write ``report.json`` and ``report.md`` into ``out_dir``; returns both paths."""
        out_dir = Path(out_dir)
        json_path = out_dir / "report.json"
        md_path = out_dir / "report.md"
        write_text(json_path, json.dumps(self.as_dict(), indent=2) + "\n")
        write_text(md_path, self.markdown())
        return json_path, md_path
