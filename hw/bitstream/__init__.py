"""From a board top to a bitstream and its report; the command line is ``python -m hw.build``.

:func:`run_build` takes any board top, so a new design plugs in by building its own top and
calling it; :mod:`hw.build` is the command line for the designs that
exist today (see ``docs/build.md``).
"""

from .flow import (BUILD_MARKER, DEFAULT_LUT_MAPPER, DEFAULT_ROUTER, LUT_MAPPERS, ROUTERS, SYNTHESIS_TOOLS, BuildDirError,
                   BuildError, BuildResult, Stage, check_build_dir, check_router, claim_build_dir, program_board, run_build,
                   toolchain_stages)
from .report import BuildReport, ClockTiming, clock_timings, critical_path, describe_path, timing_met, utilisation

__all__ = [
    "BUILD_MARKER",
    "BuildDirError",
    "check_build_dir",
    "claim_build_dir",
    "DEFAULT_LUT_MAPPER",
    "DEFAULT_ROUTER",
    "LUT_MAPPERS",
    "ROUTERS",
    "SYNTHESIS_TOOLS",
    "BuildError",
    "BuildResult",
    "BuildReport",
    "ClockTiming",
    "Stage",
    "check_router",
    "clock_timings",
    "critical_path",
    "describe_path",
    "program_board",
    "run_build",
    "timing_met",
    "toolchain_stages",
    "utilisation",
]
