#!/usr/bin/env bash
# Set up everything spikestream needs on a fresh Debian machine with Python 3.11:
# a virtual environment in .venv with the pinned packages of pyproject.toml, and
# Icarus Verilog (Debian package `iverilog`) for the cocotb testbenches.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "bootstrap: spikestream needs Python 3.11; '$PYTHON' is $("$PYTHON" --version 2>&1)." >&2
    echo "bootstrap: install python3.11 or set PYTHON=/path/to/python3.11" >&2
    exit 1
fi

if ! command -v iverilog >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: installing Icarus Verilog (Debian package iverilog)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog >/dev/null
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null && command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: installing Icarus Verilog with sudo (Debian package iverilog)"
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog >/dev/null
    else
        echo "bootstrap: Icarus Verilog is missing and cannot be installed by this script." >&2
        echo "bootstrap: install it yourself: 'sudo apt-get install iverilog' (Debian/Ubuntu)," >&2
        echo "bootstrap: then run this command again. The cocotb testbenches need it." >&2
        exit 1
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv"
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "bootstrap: installing Debian's python3-venv"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            "$PYTHON" -m venv .venv
        else
            echo "bootstrap: '$PYTHON -m venv' failed: install the venv module ('sudo apt-get install python3-venv') and run again." >&2
            exit 1
        fi
    fi
fi
stamp=.venv/.spikestream-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "bootstrap: installing pinned Python packages (torch CPU wheel, Amaranth, YoWASP, cocotb)"
    .venv/bin/python -m pip install -q --upgrade pip
    # torch first and alone, pinned, so that no other requirement can pull a CUDA build.
    .venv/bin/python -m pip install -q torch==2.13.0
    .venv/bin/python -m pip install -q -e '.[dev]'
    # Norse for the NIR round-trip tests, without its torchvision requirement (no torchvision
    # build matches torch 2.13.0; norse.torch does not import it). Its other requirements are
    # the dev extras above.
    .venv/bin/python -m pip install -q --no-deps norse==1.1.0
    touch "$stamp"
fi
echo "bootstrap: environment ready (.venv)"
