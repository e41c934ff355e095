"""Building blocks of the formal checkers: previous-cycle values and the stream rules.

Amaranth 0.5 has no ``Past``: :func:`past` registers a value in the checker itself. The reset of
the ``sync`` domain is held low by every checker (:func:`hold_reset_low`): a reset returns a
block to its initial state, which the bounded check starts from anyway, and a scoreboard
cleared by it would only hide the properties.
"""

from amaranth.hdl import Assert, Assume, ResetSignal, Signal, Value

__all__ = ["hold_reset_low", "past", "started", "assume_stream_rules", "assert_stream_rules"]


def hold_reset_low(m):
    """Assume that the ``sync`` domain's reset is never asserted."""
    m.d.comb += Assume(~ResetSignal("sync"))


def past(m, value, name=None):
    """``value`` one cycle ago (its initial value in the first cycle), as a register in ``m``."""
    previous = Signal(value.shape(), name=name)
    m.d.sync += previous.eq(value)
    return previous


def started(m):
    """A 1-bit register that is low in the first cycle only (the cycle without a past)."""
    flag = Signal(name="started")
    m.d.sync += flag.eq(1)
    return flag


def _stream_rules(m, stream, check, prefix):
    """``check`` (``Assume`` or ``Assert``) the two waiting rules of :mod:`amaranth.lib.stream`:
    a ``valid`` beat not taken (``ready`` low) stays ``valid``, and its payload does not change."""
    was_waiting = past(m, stream.valid & ~stream.ready, name=f"{prefix}_was_waiting")
    was_payload = past(m, Value.cast(stream.payload), name=f"{prefix}_was_payload")
    with m.If(started(m) & was_waiting):
        m.d.comb += [
            check(stream.valid, f"{prefix}: valid holds until ready"),
            check(Value.cast(stream.payload) == was_payload, f"{prefix}: payload stable while waiting"),
        ]


def assume_stream_rules(m, stream, prefix="i"):
    """Constrain an input ``stream`` of the block under check to the stream rules."""
    _stream_rules(m, stream, Assume, prefix)


def assert_stream_rules(m, stream, prefix="o"):
    """Prove that an output ``stream`` of the block under check follows the stream rules."""
    _stream_rules(m, stream, Assert, prefix)
