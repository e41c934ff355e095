"""Amaranth mirrors of the fixed-point rules in :mod:`golden.fixed`.

Rounding needs no mirror: :func:`golden.fixed.round_shift` is a plain expression that
Amaranth evaluates with the same arithmetic shift. Saturation needs a comparator and
a multiplexer, built here.
"""

from amaranth.hdl import Cat, Const, Mux

from golden.fixed import QFormat, round_shift
from golden.protocol import COUNTER_WIDTH

__all__ = ["COUNTER_WIDTH", "MULTIPLIER_PORT_BITS", "all_of", "any_of", "operand_parts", "partial_products",
           "round_shift", "saturate", "times_constant",
           "tree_select"]


def saturate(value, fmt: QFormat):
    """Clamp Amaranth ``value`` (any width, exact) to ``fmt``.

    Returns ``(clamped, saturated)``: ``clamped`` has ``fmt.shape()``, ``saturated`` is a
    1-bit value that is high when clamping happened. Purely combinational.
    """
    lo = Const(fmt.min_int, fmt.shape())
    hi = Const(fmt.max_int, fmt.shape())
    too_low = value < fmt.min_int
    too_high = value > fmt.max_int
    low_bits = value[: fmt.width].as_signed() if fmt.signed else value[: fmt.width]
    return Mux(too_low, lo, Mux(too_high, hi, low_bits)), too_low | too_high


#: Operand width of one signed port of an ECP5 MULT18X18D.
MULTIPLIER_PORT_BITS = 18
_LOW_BITS = MULTIPLIER_PORT_BITS - 1


def any_of(terms):
    """OR of 1-bit Amaranth values (0 for none)."""
    return Cat(*terms).any()


def all_of(terms):
    """AND of 1-bit Amaranth values (1 for none)."""
    return Cat(*terms).all()


def tree_select(index, values):
    """``values[index]`` as a balanced tree of 2:1 multiplexers, one level per bit of ``index``
    (a plain expression, so Verilog simulators know it from time 0; ``ceil(log2(len(values)))``
    levels where a Mux chain has one per value). An index beyond the last value selects the
    last value or one of its copies."""
    values = list(values)
    level = 0
    while len(values) > 1:
        if len(values) % 2:
            values.append(values[-1])
        values = [Mux(index[level], values[k + 1], values[k]) for k in range(0, len(values), 2)]
        level += 1
    return values[0]


def times_constant(value, factor: int):
    """``value * factor`` for a constant ``factor >= 0`` from shifts and a balanced tree of adds
    (``factor``'s canonical signed digits, e.g. ``176 = 256 - 64 - 16``), not a MULT18X18D,
    whose placement far from its operands costs ~7 ns of routing on the ECP5. The result is
    signed and exact; assign it to a signal wide enough for the product."""
    if not isinstance(factor, int) or factor < 0:
        raise ValueError(f"factor must be a non-negative int, not {factor!r}")
    terms, shift = [], 0
    while factor:
        if factor & 1:
            digit = 2 - (factor & 3)  # +1 or -1: no two adjacent non-zero digits
            terms.append((value << shift) if digit > 0 else -(value << shift))
            factor -= digit
        factor >>= 1
        shift += 1
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        terms = [terms[k] + terms[k + 1] if k + 1 < len(terms) else terms[k] for k in range(0, len(terms), 2)]
    return terms[0]


def operand_parts(operand):
    """``[(part, shift)]`` with ``operand == sum(part << shift)``, each part fitting one 18-bit
    signed multiplier port: the operand itself, or its low 17 bits (unsigned) and the signed
    upper bits (split again while wider)."""
    parts, shift = [], 0
    while len(operand) > MULTIPLIER_PORT_BITS:
        parts.append((operand[:_LOW_BITS], shift))
        operand = operand[_LOW_BITS:].as_signed()
        shift += _LOW_BITS
    return parts + [(operand, shift)]


def partial_products(a, b):
    """``[(product, shift)]`` with ``a * b == sum(product << shift)``, each product one MULT18X18D.

    Register each product straight out of the multiplier and sum them a stage later: Yosys does
    not pack pipeline registers into the ECP5 multiplier, so this is how a product reaches
    ~120 MHz."""
    return [(pa * pb, sa + sb) for pa, sa in operand_parts(a) for pb, sb in operand_parts(b)]
