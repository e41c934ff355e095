"""The project's one fixed-point vocabulary (docs/decisions.md, 'Rounding', 'Saturation', 'Declared formats').

Every number that crosses the golden model / hardware boundary has a :class:`QFormat`:
signedness, integer bits (the sign bit counts as an integer bit, so ``sQ8.16`` is 24 bits
wide) and fractional bits. A value ``x`` in format ``Qm.f`` is stored as the integer
``round(x * 2**f)``.

Two rules, written here once and mirrored in ``hw/``:

* **Rounding.** Dropping ``n`` fractional bits rounds half up:
  ``(x + 2**(n-1)) >> n`` with ``>>`` the arithmetic (floor) shift. :func:`round_shift`
  is that expression and nothing else, so the same function body works on Python ints,
  numpy and torch integer arrays, and Amaranth values (whose ``>>`` on a signed value is
  arithmetic too).
* **Saturation.** A state is clamped to its format after each update, never wrapped;
  :meth:`QFormat.saturate` returns the clamped value and a flag saying whether clamping
  happened, which the hardware counts.

Quantising floats (:meth:`QFormat.quantize`) uses the same round-half-up rule:
``floor(x * 2**f + 1/2)``, then saturation. ``torch.round`` / ``np.round`` (half to even)
and fxpmath's default (truncation) are deliberately not used on the bit-exact path.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["QFormat", "round_shift", "mul_round", "int_bits_for"]


def round_shift(value, n: int):
    """Drop ``n`` fractional bits with round-half-up: ``(value + 2**(n-1)) >> n``.

    ``n == 0`` returns ``value`` unchanged; ``n < 0`` shifts left (exact). Works on
    Python ints, numpy / torch integer arrays and Amaranth values alike.
    """
    if n < 0:
        return value << (-n)
    if n == 0:
        return value
    return (value + (1 << (n - 1))) >> n


def mul_round(a, b, n: int):
    """Product ``a * b`` at full width, then :func:`round_shift` by ``n``."""
    return round_shift(a * b, n)


def int_bits_for(max_abs: float, headroom: float = 1.0, minimum: int = 1) -> int:
    """Integer bits (sign included) of a signed format holding ``headroom * max_abs`` (at least ``minimum``)."""
    value = float(max_abs) * float(headroom)
    if not math.isfinite(value):
        raise ValueError(f"calibration found a non-finite magnitude ({max_abs}); check the float model")
    bits = math.floor(math.log2(value)) + 2 if value > 0 else 1
    return max(bits, minimum)


_FORMAT_RE = re.compile(r"^([su])Q(\d+)\.(\d+)$")


@dataclass(frozen=True)
class QFormat:
    """A two's complement (or unsigned) fixed-point format ``[s|u]Q<int_bits>.<frac_bits>``.

    Parameters
    ----------
    int_bits : int
        Integer bits, the sign bit included for signed formats.
    frac_bits : int
        Fractional bits; the value of one LSB is ``2**-frac_bits``.
    signed : bool
        Two's complement if true.
    """

    int_bits: int
    frac_bits: int
    signed: bool = True

    def __post_init__(self):
        if not isinstance(self.int_bits, int) or not isinstance(self.frac_bits, int):
            raise TypeError(f"QFormat bit counts must be ints, not {self.int_bits!r}, {self.frac_bits!r}")
        if self.frac_bits < 0:
            raise ValueError(f"QFormat frac_bits must be >= 0, not {self.frac_bits}")
        if self.signed and self.int_bits < 1:
            raise ValueError(f"a signed QFormat needs int_bits >= 1 for the sign bit, not {self.int_bits}")
        if self.width < 1 or self.width > 62:
            raise ValueError(f"QFormat width must be 1..62 bits (int64 arithmetic), not {self.width}")

    # --- description -------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> "QFormat":
        """Parse ``"sQ8.16"`` / ``"uQ0.18"``; raises ``ValueError`` naming the expected form."""
        match = _FORMAT_RE.match(text.strip())
        if match is None:
            raise ValueError(f"cannot parse fixed-point format {text!r}: expected e.g. 'sQ8.16' or 'uQ0.18'")
        sign, int_bits, frac_bits = match.groups()
        return cls(int(int_bits), int(frac_bits), signed=(sign == "s"))

    def __str__(self) -> str:
        return f"{'s' if self.signed else 'u'}Q{self.int_bits}.{self.frac_bits}"

    @property
    def width(self) -> int:
        """Total bits."""
        return self.int_bits + self.frac_bits

    @property
    def min_int(self) -> int:
        """Smallest stored integer."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        """Largest stored integer."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def lsb(self) -> float:
        """Real value of one LSB."""
        return 2.0 ** -self.frac_bits

    @property
    def min_value(self) -> float:
        return self.min_int * self.lsb

    @property
    def max_value(self) -> float:
        return self.max_int * self.lsb

    def shape(self):
        """The Amaranth shape that holds this format (``signed(width)`` / ``unsigned(width)``)."""
        from amaranth.hdl import signed, unsigned

        return signed(self.width) if self.signed else unsigned(self.width)

    # --- integer rules -----------------------------------------------------------------
    def saturate(self, value):
        """Clamp integer ``value`` to this format. Returns ``(clamped, saturated_flag)``.

        Accepts Python ints, numpy arrays and torch tensors; the flag has the same kind.
        """
        lo, hi = self.min_int, self.max_int
        if isinstance(value, torch.Tensor):
            return value.clamp(lo, hi), (value < lo) | (value > hi)
        if isinstance(value, np.ndarray):
            return np.clip(value, lo, hi), (value < lo) | (value > hi)
        value = int(value)
        return min(max(value, lo), hi), bool(value < lo or value > hi)

    def contains(self, value) -> bool:
        """True when every element of integer ``value`` is representable."""
        if isinstance(value, torch.Tensor):
            return bool(((value >= self.min_int) & (value <= self.max_int)).all())
        arr = np.asarray(value)
        return bool(((arr >= self.min_int) & (arr <= self.max_int)).all())

    def quantize(self, value):
        """Float to stored integer: ``floor(value * 2**frac_bits + 1/2)`` (decision 'Rounding'), then saturate.

        Returns a torch int64 tensor for torch input, a numpy int64 array for array input,
        and a Python int for a scalar.
        """
        scale = float(1 << self.frac_bits)
        if isinstance(value, torch.Tensor):
            raw = torch.floor(value.to(torch.float64) * scale + 0.5).to(torch.int64)
            return self.saturate(raw)[0]
        if isinstance(value, np.ndarray):
            raw = np.floor(value.astype(np.float64) * scale + 0.5).astype(np.int64)
            return self.saturate(raw)[0]
        return self.saturate(int(np.floor(float(value) * scale + 0.5)))[0]

    def to_float(self, value):
        """Stored integer to real value (exact in float64 up to 53 bits)."""
        if isinstance(value, torch.Tensor):
            return value.to(torch.float64) * self.lsb
        if isinstance(value, np.ndarray):
            return value.astype(np.float64) * self.lsb
        return float(value) * self.lsb

    def to_unsigned_bits(self, value: int) -> int:
        """Two's complement bit pattern of a stored integer (for packing hardware words)."""
        return int(value) & ((1 << self.width) - 1)

    def from_unsigned_bits(self, bits: int) -> int:
        """Inverse of :meth:`to_unsigned_bits`."""
        bits = int(bits) & ((1 << self.width) - 1)
        if self.signed and bits >> (self.width - 1):
            bits -= 1 << self.width
        return bits
