"""Amaranth mirrors of the fixed-point rules in :mod:`golden.fixed`.

Rounding (D1) needs no mirror: :func:`golden.fixed.round_shift` is a plain expression that
Amaranth evaluates with the same arithmetic shift. Saturation (D2) needs a comparator and
a multiplexer, built here.
"""

from amaranth.hdl import Const, Mux

from golden.fixed import QFormat, round_shift

__all__ = ["round_shift", "saturate"]


def saturate(value, fmt: QFormat):
    """Clamp Amaranth ``value`` (any width, exact) to ``fmt`` (D2).

    Returns ``(clamped, saturated)``: ``clamped`` has ``fmt.shape()``, ``saturated`` is a
    1-bit value that is high when clamping happened. Purely combinational.
    """
    lo = Const(fmt.min_int, fmt.shape())
    hi = Const(fmt.max_int, fmt.shape())
    too_low = value < fmt.min_int
    too_high = value > fmt.max_int
    low_bits = value[: fmt.width].as_signed() if fmt.signed else value[: fmt.width]
    return Mux(too_low, lo, Mux(too_high, hi, low_bits)), too_low | too_high
