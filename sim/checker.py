"""Exact, in-order comparison of the beats a design emits with the beats a golden model predicts.

A :class:`Scoreboard` holds the expected records of one output stream, each with a *context*
(labels such as ``step`` and ``neuron`` that say where the beat comes from but are not part of
the payload). Observed records are compared field by field, exactly, against the next expected
record as they arrive; :meth:`Scoreboard.finish` then raises :class:`MismatchError` if any field
differed, a beat was missing or an extra beat arrived. The message names the stream, the beat
index, the context and the field with both values, e.g.::

    o_state: 1 mismatch(es) in 512 beat(s)
      o_state beat 37 (step=2, neuron=5): field 'u' expected -1234 (0x3ffb2e), got -1233 (0x3ffb2f)

The scoreboard is independent of the simulator: the ``amaranth.sim`` and cocotb testbenches
feed it from their stream sinks (``on_beat=scoreboard.observe``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["Mismatch", "MismatchError", "Scoreboard", "check_value", "finish_all"]


@dataclass
class Mismatch:
    """One difference between an expected and an observed beat (or a missing / extra beat)."""

    stream: str
    index: int | None
    context: dict
    field: str | None
    expected: object
    actual: object

    def __str__(self) -> str:
        where = ", ".join(f"{key}={value}" for key, value in self.context.items())
        where = f" ({where})" if where else ""
        beat = "" if self.index is None else f" beat {self.index}"
        if self.field is None:
            return f"{self.stream}{beat}{where}: expected {self.expected}, got {self.actual}"
        return (
            f"{self.stream}{beat}{where}: field {self.field!r} "
            f"expected {_show(self.expected)}, got {_show(self.actual)}"
        )


class MismatchError(AssertionError):
    """Raised by :meth:`Scoreboard.finish`; :attr:`mismatches` lists every difference found."""

    def __init__(self, message: str, mismatches: list[Mismatch]):
        super().__init__(message)
        self.mismatches = mismatches


@dataclass
class Scoreboard:
    """Expected beats of one stream, compared exactly and in order with the observed ones.

    Parameters
    ----------
    name : str
        Stream name used in reports (``"o_state"``).
    max_report : int
        How many mismatches the error message lists (all are kept in ``mismatches``).
    """

    name: str
    max_report: int = 10
    mismatches: list[Mismatch] = field(default_factory=list)
    observed: int = 0
    _pending: deque = field(default_factory=deque)

    def expect(self, record: Mapping, **context) -> None:
        """Queue the next expected beat; ``context`` labels it in reports (``step=3, neuron=7``)."""
        self._pending.append((dict(record), context))

    def expect_all(self, records: Iterable[tuple[Mapping, Mapping]]) -> None:
        """Queue ``(record, context)`` pairs."""
        for record, context in records:
            self.expect(record, **context)

    @property
    def outstanding(self) -> int:
        """Expected beats not yet observed."""
        return len(self._pending)

    def observe(self, record: Mapping) -> None:
        """Compare one observed beat with the next expected one (every expected field, exactly)."""
        index = self.observed
        self.observed += 1
        if not self._pending:
            self.mismatches.append(Mismatch(self.name, index, {}, None, "no further beat", dict(record)))
            return
        expected, context = self._pending.popleft()
        for key, value in expected.items():
            if key not in record:
                self.mismatches.append(Mismatch(self.name, index, context, key, value, "<field absent>"))
            elif _norm(record[key]) != _norm(value):
                self.mismatches.append(Mismatch(self.name, index, context, key, value, record[key]))

    def errors(self) -> list[Mismatch]:
        """Mismatches so far plus one entry per expected beat that never arrived."""
        missing = [
            Mismatch(self.name, self.observed + i, context, None, record, "nothing (beat missing)")
            for i, (record, context) in enumerate(self._pending)
        ]
        return self.mismatches + missing

    def report(self) -> str:
        """Human-readable summary; empty string when everything matched."""
        errors = self.errors()
        if not errors:
            return ""
        lines = [f"{self.name}: {len(errors)} mismatch(es) in {self.observed} observed beat(s)"]
        lines += [f"  {error}" for error in errors[: self.max_report]]
        if len(errors) > self.max_report:
            lines.append(f"  ... {len(errors) - self.max_report} more")
        return "\n".join(lines)

    def finish(self) -> None:
        """Raise :class:`MismatchError` unless every expected beat arrived and matched."""
        message = self.report()
        if message:
            raise MismatchError(message, self.errors())


def check_value(name: str, expected, actual) -> list[Mismatch]:
    """Compare one scalar (e.g. a final counter); returns ``[]`` or one :class:`Mismatch`."""
    if _norm(expected) == _norm(actual):
        return []
    return [Mismatch(name, None, {}, None, expected, actual)]


def finish_all(scoreboards: Iterable[Scoreboard], extra: Iterable[Mismatch] = ()) -> None:
    """Raise one :class:`MismatchError` covering several scoreboards and extra checks."""
    scoreboards = list(scoreboards)
    extra = list(extra)
    reports = [board.report() for board in scoreboards]
    reports += [str(mismatch) for mismatch in extra]
    reports = [r for r in reports if r]
    if reports:
        errors = [e for board in scoreboards for e in board.errors()] + extra
        raise MismatchError("\n".join(reports), errors)


def _norm(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Mapping):
        return {k: _norm(v) for k, v in value.items()}
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _show(value) -> str:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return f"{value} ({value:#x})" if value >= 0 else f"{value} (-{-value:#x})"
    return repr(value)
