"""The commands' shared argument checks and their one error exit.

Every ``python -m ...`` command of the project parses its arguments with these ``type=``
validators, so a bad value is refused while parsing, with ``error: argument --x: <what to
fix>`` and exit status 2, before anything runs. :func:`run_main` wraps a command's ``main``:
a :class:`~golden.errors.SpikestreamError` or an :class:`OSError` that escapes becomes one line
on stderr and exit status 2, Ctrl-C exit status 130; nothing reaches the user as a traceback
(an unexpected exception is reported as a bug in one line, its traceback shown only with
``SPIKESTREAM_TRACEBACK=1``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from .errors import SpikestreamError

__all__ = [
    "EXIT_USAGE",
    "int_range",
    "positive_int",
    "non_negative_int",
    "finite_float",
    "positive_float",
    "fraction",
    "existing_file",
    "existing_dir",
    "output_file",
    "output_dir",
    "upper_choice",
    "ulx3s_variant",
    "bench_name",
    "run_main",
]

EXIT_USAGE = 2  # bad arguments or input files (argparse's own status)
EXIT_INTERRUPTED = 130
EXIT_BUG = 70  # EX_SOFTWARE: an exception that is not a known input problem
#: Largest integer any count or size argument takes (2**31 - 1): beyond it nothing here fits.
MAX_INT = 2**31 - 1
_MAX_DIGITS = 40  # an argument with more characters is not a number any option takes


def _int(text: str) -> int:
    text = str(text).strip()
    if len(text) > _MAX_DIGITS:
        raise argparse.ArgumentTypeError(f"{text[:20]}...: not an integer of at most {_MAX_DIGITS} digits")
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, not {text!r}") from None


def int_range(lo: int, hi: int = MAX_INT, what: str = "an integer"):
    """A ``type=`` that takes an integer in ``lo..hi``."""

    def parse(text: str) -> int:
        value = _int(text)
        if value < lo and hi == MAX_INT:
            raise argparse.ArgumentTypeError(f"must be at least {lo}, not {value}")
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be {what} in {lo}..{hi}, not {value}")
        return value

    parse.__name__ = "integer"
    return parse


positive_int = int_range(1, what="a positive integer")
non_negative_int = int_range(0, what="an integer >= 0")


def _float(text: str) -> float:
    text = str(text).strip()
    if len(text) > _MAX_DIGITS:
        raise argparse.ArgumentTypeError(f"{text[:20]}...: not a number of at most {_MAX_DIGITS} characters")
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, not {text!r}")
    return value


def finite_float(text: str) -> float:
    """A ``type=`` for a finite float (no ``inf``, no ``nan``)."""
    return _float(text)


def positive_float(text: str) -> float:
    """A ``type=`` for a finite float above 0."""
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a number above 0")
    return value


def fraction(text: str) -> float:
    """A ``type=`` for a finite float in [0, 1) (a dropout rate)."""
    value = _float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text} must lie in [0, 1)")
    return value


def unit_interval(text: str) -> float:
    """A ``type=`` for a finite float in [0, 1] (an exponent or weight that 0 turns off)."""
    value = _float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} must lie in [0, 1]")
    return value


def existing_file(text: str) -> Path:
    """A ``type=`` for an input file that exists and is a regular file."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a directory, not a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text}: not readable (permissions)")
    return path


def existing_dir(text: str) -> Path:
    """A ``type=`` for an input folder that exists."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    return path


def bench_name(text: str) -> str:
    """A ``type=`` for a result name (``build/bench/<name>.json``): letters, digits, ``_``, ``-``, ``.``."""
    if not text or len(text) > 100 or text.startswith(".") or not all(c.isalnum() or c in "_-." for c in text):
        raise argparse.ArgumentTypeError(f"{text!r}: use a plain name of letters, digits, _, - and . (no folders)")
    return text


def _named(text: str, what: str) -> Path:
    if not str(text).strip():
        raise argparse.ArgumentTypeError(f"an empty {what} name")
    return Path(text)


def output_file(text: str) -> Path:
    """A ``type=`` for a file to write: not an existing directory, not an empty name."""
    path = _named(text, "file")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a directory; give a file name inside it")
    if path.parent.exists() and not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {path.parent} is a file, not a folder")
    return path


def output_dir(text: str) -> Path:
    """A ``type=`` for a folder to write into: not an existing file."""
    path = _named(text, "folder")
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file, not a folder")
    return path


def upper_choice(choices, what: str = "value"):
    """A ``type=`` that takes one of ``choices`` whatever its case (``85f`` -> ``85F``)."""
    choices = tuple(choices)

    def parse(text: str) -> str:
        value = str(text).strip().upper()
        if value not in choices:
            raise argparse.ArgumentTypeError(f"unknown {what} {text!r}; choose from {', '.join(choices)}")
        return value

    parse.__name__ = what
    return parse


def ulx3s_variant(text: str) -> str:
    """A ``type=`` for a ULX3S FPGA size, ``12F`` ... ``85F`` (any case)."""
    from .fit import DEVICES

    return upper_choice(DEVICES, "variant")(text)


def run_main(main, argv=None) -> int:
    """Run a command's ``main(argv)`` and turn what escapes into one line and an exit status
    (a ``main`` that returns no int exits 0)."""
    prog = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "spikestream"
    try:
        status = main(argv)
        return status if isinstance(status, int) else 0
    except SpikestreamError as error:
        print(f"error: {error}", file=sys.stderr)
    except OSError as error:
        where = f"{error.filename}: " if getattr(error, "filename", None) else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print("error: out of memory; try a smaller input", file=sys.stderr)
    except Exception as error:  # noqa: BLE001 - the last line of defence against a traceback
        if os.environ.get("SPIKESTREAM_TRACEBACK"):
            raise
        print(f"internal error in {prog} (a bug, please report it): {type(error).__name__}: {error}; "
              f"rerun with SPIKESTREAM_TRACEBACK=1 for the traceback", file=sys.stderr)
        return EXIT_BUG
    return EXIT_USAGE
