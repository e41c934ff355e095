"""From an Amaranth top to an ECP5 bitstream, one timed stage at a time.

Amaranth's build plan (``platform.prepare``) writes the design and its scripts (``top.il``,
``top.debug.v``, ``top.ys``, ``top.lpf``, ``build_top.sh``); this module then runs the three
toolchain stages itself, so each one is timed, reported and logged on its own:

1. synthesis: ``yosys -q -l top.rpt top.ys`` (``synth_ecp5``) -> ``top.json``
2. place and route: ``nextpnr-ecp5 ... --report top.nextpnr.json --timing-allow-fail``
   -> ``top.config`` (log ``top.tim``). Timing is judged from the report, not by nextpnr's
   exit status, so a design that misses timing still gets a full report.
3. bitstream: ``ecppack --compress`` -> ``top.bit``
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.build.run import LocalBuildProducts

from golden.errors import SpikestreamError
from golden.files import write_text
from hw.pll_ecp5 import PLLConfig
from hw.toolchain import PROGRAMMER, configure_environment, tool_version

from .report import BuildReport

__all__ = [
    "CONSTRAINTS_DIR",
    "DEFAULT_LUT_MAPPER",
    "DEFAULT_ROUTER",
    "LUT_MAPPERS",
    "ROUTERS",
    "SYNTHESIS_TOOLS",
    "BUILD_MARKER",
    "BuildDirError",
    "BuildError",
    "BuildResult",
    "check_build_dir",
    "claim_build_dir",
    "Stage",
    "check_router",
    "toolchain_stages",
    "run_build",
    "program_board",
]

CONSTRAINTS_DIR = Path(__file__).resolve().parents[2] / "constraints"
SYNTHESIS_TOOLS = ("yosys", "nextpnr-ecp5", "ecppack")
HEARTBEAT_S = 30.0
#: The file that marks a folder as a build folder of this project: :func:`run_build` writes into
#: (and deletes earlier build products from) a folder only when it is empty, carries this marker,
#: or ``force`` is given.
BUILD_MARKER = ".spikestream-build"
#: nextpnr-ecp5's routers. router1 (nextpnr's default) rips up and reroutes one arc at a time; it
#: is fast on small designs but can crawl for hours on designs dense in multipliers or block-RAM
#: tables. router2 negotiates all nets at once (PathFinder) and converges on those.
ROUTERS = ("router1", "router2")
DEFAULT_ROUTER = "router1"
#: Yosys LUT mappers. ``abc9`` is synth_ecp5's own; Yosys 0.70's abc9 aborts on some large tops
#: (``GetSize(conn.first) == GetSize(conn.second)`` in rtlil.cc: the 162-256-256-10 network at 16
#: lanes), where the classic ``abc`` maps them.
LUT_MAPPERS = ("abc9", "abc")
DEFAULT_LUT_MAPPER = "abc9"


def synthesis_overrides(name: str, lut_mapper: str) -> dict:
    """Amaranth build overrides that make ``{name}.ys`` map LUTs with ``lut_mapper``.

    ``abc9`` changes nothing. ``abc`` runs synth_ecp5 up to its LUT mapping, maps the LUTs with
    the classic ``abc`` (LUT4, up to LUT7 through the PFU muxes, as synth_ecp5 does), then runs
    synth_ecp5's remaining steps.
    """
    if lut_mapper not in LUT_MAPPERS:
        raise ValueError(f"lut_mapper must be one of {', '.join(LUT_MAPPERS)}, not {lut_mapper!r}")
    if lut_mapper == "abc9":
        return {}
    return {
        "synth_opts": "-run :map_luts",
        "script_after_synth": "\n".join([
            "techmap -map +/lattice/latches_map.v",
            "abc -dress -lut 4:7",
            "clean",
            f"synth_ecp5 -run map_cells: -top {name}",
        ]),
    }

# nextpnr-ecp5 names for the devices and packages of the boards this project targets.
_NEXTPNR_DEVICE = {"LFE5U-12F": "--12k", "LFE5U-25F": "--25k", "LFE5U-45F": "--45k", "LFE5U-85F": "--85k"}
_NEXTPNR_PACKAGE = {"BG256": "CABGA256", "BG381": "CABGA381", "BG554": "CABGA554", "BG756": "CABGA756"}


class BuildError(RuntimeError):
    """A toolchain stage failed; the message names the stage, its log and the log's last lines."""


@dataclass(frozen=True)
class Stage:
    """One toolchain step: ``tool`` run with ``args`` in the build directory.

    ``log`` is the tool's own log file, ``console`` the file its stdout and stderr go to.
    """

    name: str
    tool: str
    args: tuple[str, ...]
    log: str
    console: str


@dataclass
class BuildResult:
    """What :func:`run_build` produced: the files written and, unless a dry run, the report."""

    out_dir: Path
    files: list[str]
    report: BuildReport | None = None
    report_paths: tuple[Path, ...] = field(default_factory=tuple)


def check_router(router: str) -> None:
    """Raise ``ValueError`` unless ``router`` is one of :data:`ROUTERS`."""
    if router not in ROUTERS:
        raise ValueError(f"router must be one of {', '.join(ROUTERS)}, not {router!r}")


def toolchain_stages(platform, name: str = "top", *, seed: int = 1, router: str = DEFAULT_ROUTER) -> list[Stage]:
    """The synthesis, place-and-route and bitstream stages for ``platform`` (ECP5, Trellis flow).

    ``seed`` is nextpnr's placement seed, ``router`` one of :data:`ROUTERS`.
    """
    check_router(router)
    try:
        device = _NEXTPNR_DEVICE[platform.device]
        package = _NEXTPNR_PACKAGE[platform.package]
    except KeyError:
        raise ValueError(f"no nextpnr-ecp5 device/package known for {platform.device} {platform.package}") from None
    return [
        Stage("synthesis", "yosys", ("-q", "-l", f"{name}.rpt", f"{name}.ys"), f"{name}.rpt", f"{name}.yosys.log"),
        Stage(
            "place and route",
            "nextpnr-ecp5",
            (
                "--quiet",
                "--log", f"{name}.tim",
                device,
                "--package", package,
                "--speed", str(platform.speed),
                "--json", f"{name}.json",
                "--lpf", f"{name}.lpf",
                "--textcfg", f"{name}.config",
                "--report", f"{name}.nextpnr.json",
                "--timing-allow-fail",
                "--seed", str(seed),
                "--router", router,
            ),
            f"{name}.tim",
            f"{name}.nextpnr.log",
        ),
        Stage(
            "bitstream",
            "ecppack",
            ("--compress", "--input", f"{name}.config", "--bit", f"{name}.bit"),
            f"{name}.ecppack.log",
            f"{name}.ecppack.log",
        ),
    ]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run_stage(stage: Stage, index: int, count: int, tool_path: str, out_dir: Path) -> float:
    """Run one stage in ``out_dir``; returns its wall time in seconds."""
    _say(f"[{index}/{count}] {stage.name} ({stage.tool}) ...")
    start = time.monotonic()
    console = out_dir / stage.console
    with open(console, "w") as console_file:
        process = subprocess.Popen([tool_path, *stage.args], cwd=out_dir, stdout=console_file, stderr=subprocess.STDOUT)
        while True:
            try:
                returncode = process.wait(timeout=HEARTBEAT_S)
                break
            except subprocess.TimeoutExpired:
                _say(f"      {stage.name}: {time.monotonic() - start:.0f} s ...")
    elapsed = time.monotonic() - start
    if returncode != 0:
        tail = []
        for path in (out_dir / stage.log, console):
            if path.is_file():
                tail = path.read_text(errors="replace").splitlines()[-25:] or tail
        raise BuildError(
            f"{stage.name} failed ({stage.tool} exit status {returncode}); full log: {out_dir / stage.log}\n"
            + "\n".join(tail)
        )
    _say(f"      {stage.name} done in {elapsed:.1f} s")
    return elapsed


class BuildDirError(SpikestreamError):
    """The build folder holds files this project did not make (no :data:`BUILD_MARKER`)."""


def check_build_dir(out_dir, *, force: bool = False) -> Path:
    """Refuse ``out_dir`` as a build folder before anything is built or written: a file in the
    way, or a folder that exists, is not empty and has no :data:`BUILD_MARKER` (unless
    ``force``: the build overwrites and deletes files by name there). Returns the path.

    Raises
    ------
    BuildDirError
        For a file in the way, or a foreign non-empty folder without ``force``.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BuildDirError(f"{out_dir}: is a file, not a build folder; pick another --out")
    if out_dir.is_dir() and not (out_dir / BUILD_MARKER).is_file() and any(out_dir.iterdir()) and not force:
        raise BuildDirError(
            f"{out_dir}: not empty and not a build folder of this project (no {BUILD_MARKER} file); "
            "its files would be overwritten: pick another --out, empty it, or pass --force")
    return out_dir


def claim_build_dir(out_dir, *, force: bool = False) -> Path:
    """Make ``out_dir`` a build folder (:func:`check_build_dir` first): create it (or take an
    empty one) and write the marker. Returns the path."""
    out_dir = check_build_dir(out_dir, force=force)
    marker = out_dir / BUILD_MARKER
    out_dir.mkdir(parents=True, exist_ok=True)
    if not marker.is_file():
        write_text(marker, "made by spikestream's hw.build: its files may be overwritten by the next build\n")
    return out_dir


def run_build(
    top,
    platform,
    out_dir,
    *,
    design: str,
    requested_clock_hz: float,
    pll: PLLConfig,
    board: str = "ulx3s",
    name: str = "top",
    dry_run: bool = False,
    seed: int = 1,
    router: str = DEFAULT_ROUTER,
    lut_mapper: str = DEFAULT_LUT_MAPPER,
    force: bool = False,
) -> BuildResult:
    """Elaborate ``top`` for ``platform`` into ``out_dir`` and, unless ``dry_run``, build a bitstream.

    Parameters
    ----------
    top : Elaboratable
        The board top (it requests its own pins and makes its clock domains).
    platform : LatticeECP5Platform
        A fresh platform instance (a platform prepares one design only).
    out_dir : path
        Build directory; created if missing. Generated files, tool logs, ``top.bit``,
        ``report.json`` and ``report.md`` end up here.
    design : str
        Human-readable name of the design, for the report.
    requested_clock_hz : float
        Clock the user asked for; ``pll`` is the configuration that makes it.
    board : str
        Board name for the report; ``constraints/<board>.lpf`` is appended to the generated LPF.
    dry_run : bool
        Stop after writing the design files and scripts (no toolchain needed).
    seed : int
        nextpnr placement seed.
    router : str
        nextpnr router, one of :data:`ROUTERS` (router2 for designs dense in multipliers or
        block RAMs, where router1 can take hours).
    lut_mapper : str
        Yosys LUT mapper, one of :data:`LUT_MAPPERS` (:func:`synthesis_overrides`).
    force : bool
        Build into ``out_dir`` even when it is not empty and carries no build marker
        (:func:`claim_build_dir`).

    Raises
    ------
    hw.toolchain.ToolNotFoundError
        Before elaboration, when a toolchain program is missing (not in a dry run).
    BuildDirError
        When ``out_dir`` holds files and no build marker, and ``force`` is not given.
    BuildError
        When a toolchain stage fails.
    """
    tool_paths = {} if dry_run else configure_environment(SYNTHESIS_TOOLS)
    stages = toolchain_stages(platform, name, seed=seed, router=router)
    overrides = synthesis_overrides(name, lut_mapper)
    out_dir = claim_build_dir(out_dir, force=force)

    _say(f"elaborating {design} for {platform.device} ...")
    start = time.monotonic()
    preferences = (CONSTRAINTS_DIR / f"{board}.lpf").read_text()
    plan = platform.prepare(
        top,
        name,
        debug_verilog=True,
        add_preferences=preferences,
        # So that Amaranth's build_top.sh reproduces the stages run here.
        nextpnr_opts=f"--report {name}.nextpnr.json --timing-allow-fail --seed {seed} --router {router}",
        **overrides,
    )
    out_dir = Path(plan.extract(str(out_dir)))
    elaboration_s = time.monotonic() - start
    files = sorted(plan.files)
    _say(f"      wrote {', '.join(files)} to {out_dir} in {elaboration_s:.1f} s")
    result = BuildResult(out_dir=out_dir, files=files)
    if dry_run:
        return result

    # Products of an earlier build in the same directory must not pass for this one's.
    for stale in (f"{name}.json", f"{name}.config", f"{name}.nextpnr.json", f"{name}.bit", "report.json", "report.md"):
        (out_dir / stale).unlink(missing_ok=True)
    stage_records = [{"name": "elaboration", "seconds": round(elaboration_s, 2), "command": None, "log": None}]
    for index, stage in enumerate(stages, start=1):
        seconds = _run_stage(stage, index, len(stages), tool_paths[stage.tool], out_dir)
        stage_records.append(
            {"name": stage.name, "seconds": round(seconds, 2), "command": [stage.tool, *stage.args], "log": stage.log}
        )

    nextpnr_report = json.loads((out_dir / f"{name}.nextpnr.json").read_text())
    report = BuildReport.from_nextpnr(
        nextpnr_report,
        design=design,
        board=board,
        device=platform.device,
        package=_NEXTPNR_PACKAGE[platform.package],
        speed_grade=str(platform.speed),
        requested_clock_mhz=requested_clock_hz / 1e6,
        pll=pll.as_dict(),
        bitstream=str(out_dir / f"{name}.bit"),
        tools={tool: {"path": path, "version": tool_version(tool, path)} for tool, path in tool_paths.items()},
        stages=stage_records,
        total_seconds=round(sum(record["seconds"] for record in stage_records), 2),
    )
    result.report = report
    result.report_paths = report.write(out_dir)
    return result


def program_board(platform, out_dir, name: str = "top") -> None:
    """Load ``out_dir/<name>.bit`` into the board's SRAM with openFPGALoader."""
    configure_environment([PROGRAMMER])
    _say(f"programming {platform.device} with {out_dir}/{name}.bit ...")
    platform.toolchain_program(LocalBuildProducts(str(out_dir)), name)
