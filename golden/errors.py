"""The project's one error class for bad input: files, arguments, frames.

Every reader and every command raises :class:`SpikestreamError` (or a subclass: model files,
event files, protocol frames, output paths) for a problem of its input, with a one-line message
that names the file or argument and what to fix. It is a :class:`ValueError`, so callers that
catch ``ValueError`` keep working. The commands turn it into ``error: <message>`` and exit
status 2 (:func:`golden.cli.run_main`); anything else that escapes is a bug.
"""

from __future__ import annotations

__all__ = ["SpikestreamError"]


class SpikestreamError(ValueError):
    """Bad input (a file, an argument, a frame): the message says what is wrong and what to fix."""
