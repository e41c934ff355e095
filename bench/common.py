"""What every benchmark shares: a plain-text table on stdout and a JSON file under build/bench/."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

from golden.files import write_text

BENCH_DIR = Path(__file__).resolve().parent.parent / "build" / "bench"


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
