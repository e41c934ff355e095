"""What every benchmark shares: a plain-text table on stdout, a JSON file under build/bench/, and
the ULX3S build that measures a board top's resources and Fmax."""

from __future__ import annotations

import json
import platform
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import torch

from golden.files import write_text
from hw.bitstream import DEFAULT_LUT_MAPPER, DEFAULT_ROUTER, check_router, run_build
from hw.boards.ulx3s import BOARD_CLOCK_HZ, ulx3s_platform
from hw.pll_ecp5 import solve_pll

BENCH_DIR = Path(__file__).resolve().parent.parent / "build" / "bench"
#: Where the fit builds keep their files, one directory per design and size.
FIT_ROOT = Path(__file__).resolve().parent.parent / "build" / "core_fit"


def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Render ``rows`` as an aligned text table (floats with 4 significant digits)."""
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0])

    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return "" if value is None else str(value)

    body = [[cell(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in body)) for i, col in enumerate(columns)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in body)])


def machine_info() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": platform.processor(),
        "torch_threads": torch.get_num_threads(),
    }


def write_results(name: str, rows: list[dict], meta: dict | None = None, columns: list[str] | None = None) -> Path:
    """Print the table and write ``build/bench/<name>.json``; returns the JSON path."""
    print(format_table(rows, columns))
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    path = BENCH_DIR / f"{name}.json"
    payload = {
        "benchmark": name,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "meta": meta or {},
        "rows": rows,
    }
    write_text(path, json.dumps(payload, indent=2, default=str))
    print(f"\nwrote {path}")
    return path


def write_fit_results(name: str, rows: list[dict], *, variant: str, clock_mhz: float, seed: int | list[int],
                      columns: list[str], **meta) -> int:
    """:func:`write_results` for a table of ULX3S fit builds (the board, device, requested clock
    and seed or seeds go into its meta beside ``meta``); returns the command's exit status: 0 when every
    row met timing, 1 otherwise."""
    meta = {"board": "ulx3s", "device": ulx3s_platform(variant).device, "clock_mhz": clock_mhz, "seed": seed, **meta}
    write_results(name, rows, meta=meta, columns=columns)
    return 0 if all(row.get("met") for row in rows) else 1


def summarise_seeds(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """Per design (the row columns ``keys`` name it): the median, lowest and highest Fmax over its
    seeds, the spread (highest minus lowest) and how many seeds met the clock. A failed build (no
    Fmax) counts as not met and stays out of the statistics."""
    summary = []
    for design in dict.fromkeys(tuple(row[key] for key in keys) for row in rows):
        mine = [row for row in rows if tuple(row[key] for key in keys) == design]
        fmax = [row["fmax_mhz"] for row in mine if row["fmax_mhz"] is not None]
        summary.append({
            **dict(zip(keys, design)),
            "seeds": ",".join(str(row["seed"]) for row in mine),
            "target_mhz": mine[0]["target_mhz"],
            "fmax_median_mhz": round(statistics.median(fmax), 2) if fmax else None,
            "fmax_min_mhz": min(fmax, default=None),
            "fmax_max_mhz": max(fmax, default=None),
            "spread_mhz": round(max(fmax) - min(fmax), 2) if fmax else None,
            "met": f"{sum(bool(row['met']) for row in mine)}/{len(mine)}",
        })
    return summary


def run_builds(build, tasks: list[tuple], *, jobs: int, record) -> None:
    """``record(build(*task))`` for every task: in order with ``jobs`` 1, else ``jobs`` builds side
    by side (each build is single-threaded), recorded as they finish."""
    if jobs <= 1:
        for task in tasks:
            record(build(*task))
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for future in as_completed([pool.submit(build, *task) for task in tasks]):
            record(future.result())


def build_failure(error: Exception) -> str:
    """The ``limit`` cell of a build that failed: its error's first line."""
    return f"build failed: {str(error).splitlines()[0]}"


def build_fit(make_top, build_dir, *, design: str, clock_hz: float, variant: str = "85F", seed: int = 1,
              router: str = DEFAULT_ROUTER, lut_mapper: str = DEFAULT_LUT_MAPPER):
    """One Yosys -> nextpnr -> ecppack build of a ULX3S board top; returns ``(top, row)``.

    ``make_top(pll_config)`` makes the top once the PLL for ``clock_hz`` is solved and the
    router checked (so a bad router name fails before any design is built). ``row`` is the
    report's :meth:`hw.bitstream.BuildReport.summary`; ``router`` and ``lut_mapper`` go to
    :func:`hw.bitstream.run_build`.
    """
    check_router(router)
    pll_config = solve_pll(BOARD_CLOCK_HZ, clock_hz)
    top = make_top(pll_config)
    result = run_build(top, ulx3s_platform(variant), build_dir, design=design, requested_clock_hz=clock_hz,
                       pll=pll_config, seed=seed, router=router, lut_mapper=lut_mapper)
    return top, result.report.summary()
