"""Amaranth mirrors of the fixed-point rules in :mod:`golden.fixed`.

Rounding needs no mirror: :func:`golden.fixed.round_shift` is a plain expression that
Amaranth evaluates with the same arithmetic shift. Saturation needs a comparator and
a multiplexer, built here.

Beside them, the small pieces of arithmetic every core, the synapse stage and the processor
share: index widths (:func:`index_bits`), sticking event counters (:func:`count_saturating`),
products split for the 18x18 multipliers (:func:`operand_parts`, :func:`partial_products`,
:func:`biased_partial_operands`) and their sums (:func:`sum_shifted`), constant multiplies
(:func:`times_constant`) and multiplexer trees (:func:`tree_select`, and
:func:`pipelined_tree_select` with a register after every :data:`SELECT_WAYS`-way level).
"""

from amaranth.hdl import Cat, Const, Mux, Signal, Value

from golden.fixed import QFormat, round_shift
from golden.protocol import COUNTER_WIDTH

__all__ = ["COMPARE_PART_BITS", "COUNTER_WIDTH", "COUNTER_MAX", "MULTIPLIER_PORT_BITS", "SELECT_WAYS", "all_of",
           "any_of", "biased_partial_operands", "biased_slices", "count_saturating", "index_bits", "operand_parts",
           "partial_products", "pipelined_tree_select", "registered_greater", "round_shift", "saturate",
           "select_stages", "sum_shifted", "times_constant", "tree_select"]

#: The value at which every event counter (``COUNTER_WIDTH`` bits) sticks.
COUNTER_MAX = (1 << COUNTER_WIDTH) - 1


def index_bits(count: int) -> int:
    """Width of an index into ``count`` items: ``ceil(log2(count))``, at least 1."""
    return max(1, (int(count) - 1).bit_length())


def count_saturating(m, counter, amount, *, when=None):
    """Add ``amount`` to the ``COUNTER_WIDTH``-bit register ``counter`` (``m.d.sync``), sticking at
    :data:`COUNTER_MAX`.

    A 1-bit ``amount`` is an enable: the counter steps by one unless it is already at the
    maximum (a compare, no adder carry out). A wider ``amount`` (a count of events in one cycle)
    is added and the sum clamped, in cycles where ``when`` (default: ``amount`` non-zero) is high;
    the clamp reads the sum's bits above ``COUNTER_WIDTH`` (its carry out), so one carry chain
    is the whole path."""
    if len(amount) == 1:
        step = amount if when is None else amount & when
        with m.If(step & (counter != COUNTER_MAX)):
            m.d.sync += counter.eq(counter + 1)
    else:
        with m.If(amount.any() if when is None else when):
            total = counter + amount
            m.d.sync += counter.eq(Mux(total[COUNTER_WIDTH:].any(), COUNTER_MAX, total))


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


#: Widest part :func:`registered_greater` compares in one carry chain.
COMPARE_PART_BITS = 10


def registered_greater(m, a, b, *, en, name: str):
    """``a > b`` (signed) for the ``a`` and ``b`` of the cycle ``en`` was high, valid the cycle
    after: the operands are compared in parts of at most :data:`COMPARE_PART_BITS` bits, each
    part's ``greater`` (the top part signed) and, above the lowest part, its ``equal`` into flag
    registers (short carry chains, no wide compare into a wide register's enable); the returned
    expression joins the flags. ``a`` and ``b`` have one width."""
    a, b = Value.cast(a), Value.cast(b)
    if len(a) != len(b):
        raise ValueError(f"a and b must have one width, not {len(a)} and {len(b)}")
    n_parts = -(-len(a) // COMPARE_PART_BITS)
    bounds = [len(a) * k // n_parts for k in range(n_parts + 1)]
    greater = None
    for k, (low, high) in enumerate(zip(bounds, bounds[1:])):
        a_part, b_part = a[low:high], b[low:high]
        if k == n_parts - 1:
            a_part, b_part = a_part.as_signed(), b_part.as_signed()
        part_greater = Signal(name=f"{name}_greater_{k}")
        with m.If(en):
            m.d.sync += part_greater.eq(a_part > b_part)
        if greater is None:
            greater = part_greater
            continue
        part_equal = Signal(name=f"{name}_equal_{k}")
        with m.If(en):
            m.d.sync += part_equal.eq(a_part == b_part)
        greater = part_greater | (part_equal & greater)
    return greater


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


#: Ways of one registered level of :func:`pipelined_tree_select`. A 4-way select of one bit has
#: 6 inputs: one ECP5 LUT level plus the slice's PFU multiplexers, inside one PLC beside the
#: level's flip-flops. An 8-way select (11 inputs) is wider than the LUT7 the PFU multiplexers
#: build, so it takes two LUT levels and spans PLCs (decision 'Bank select in 4-way levels').
SELECT_WAYS = 4


def select_stages(count: int, ways: int = SELECT_WAYS) -> int:
    """Registered levels :func:`pipelined_tree_select` puts before its last select of ``count``
    values: ``ceil(log_ways(count)) - 1``, 0 for at most ``ways`` values."""
    stages = 0
    while count > ways:
        count = -(-count // ways)
        stages += 1
    return stages


def pipelined_tree_select(m, index, values, *, ways: int = SELECT_WAYS, name: str = "select"):
    """``values[index]`` in levels of at most ``ways``-way selects with a register (``m.d.sync``,
    no reset) after every level but the last, for an ``index`` given one cycle before the
    ``values`` it selects among (as a memory's read address comes before its data).

    Level ``k`` selects within consecutive groups of ``ways`` by the index's bits
    ``k * log2(ways) ..``. Each group takes them from a register of its own, loaded with them
    where the index's higher bits pick the group and with 0 elsewhere: registers that differ, so
    that synthesis keeps one per group (it merges equal flip-flops) and no index net reaches
    every group. Returns ``(selected, latency)``: ``selected`` is a plain expression, a
    :func:`tree_select` of at most ``ways`` registers by a register, equal to ``values[index]``
    of ``latency`` (:func:`select_stages`) cycles earlier (``index`` of the cycle before those
    values); register it to close the last level. With at most ``ways`` values ``latency`` is 0.
    The values have one shape; an index beyond the last value selects one of the values."""
    if not isinstance(ways, int) or ways < 2 or ways & (ways - 1):
        raise ValueError(f"ways must be a power of two >= 2, not {ways!r}")
    bits = ways.bit_length() - 1
    values = [Value.cast(value) for value in values]
    if len(values) == 1:
        return values[0], 0
    index = Value.cast(index)
    latency = 0
    while len(values) > ways:
        # `index` is one cycle ahead of `values`: each group's bits and the higher bits are
        # registered alongside the values, the higher bits a cycle ahead of this level's output.
        groups = [values[k:k + ways] for k in range(0, len(values), ways)]
        registers = [Signal(values[0].shape(), reset_less=True, name=f"{name}_{latency}_{g}")
                     for g in range(len(groups))]
        local = [Signal(bits, reset_less=True, name=f"{name}_{latency}_index_{g}") for g in range(len(groups))]
        higher = Signal(max(1, len(index) - bits), reset_less=True, name=f"{name}_{latency}_higher")
        m.d.sync += [own.eq(Mux(index[bits:] == g, index[:bits], 0)) for g, own in enumerate(local)]
        m.d.sync += higher.eq(index[bits:])
        m.d.sync += [register.eq(tree_select(own, group)) for register, own, group in zip(registers, local, groups)]
        values, index, latency = registers, higher, latency + 1
    last = Signal(len(index), reset_less=True, name=f"{name}_{latency}_index")
    m.d.sync += last.eq(index)
    return tree_select(last, values), latency


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


def operand_parts(operand, *, max_bits: int = MULTIPLIER_PORT_BITS):
    """``[(part, shift)]`` with ``operand == sum(part << shift)``, each part fitting one 18-bit
    signed multiplier port: the operand itself, or its low 17 bits (unsigned) and the signed
    upper bits (split again while wider than ``max_bits``; ``max_bits = 17`` leaves every part
    room for an 18-bit signed coefficient on the other port)."""
    parts, shift = [], 0
    while len(operand) > max_bits:
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


def sum_shifted(parts):
    """``sum(part << shift)`` of ``(part, shift)`` pairs, exact, in the given order: the full
    product of :func:`partial_products` (or of the pairs of :func:`biased_partial_operands`, plus its offset),
    once its parts are registered."""
    total = None
    for part, shift in parts:
        term = part << shift if shift else part
        total = term if total is None else total + term
    return total


def biased_slices(value) -> list:
    """``[(slice, shift)]``: the ``W``-bit signed ``value`` biased to unsigned (``value +
    2**(W-1)``, its sign bit inverted) and cut into unsigned slices of at most 18 bits, so
    ``value == sum(slice << shift) - 2**(W-1)``. Each slice fits an unsigned multiplier port
    beside an unsigned coefficient of up to 18 bits: ``value * coef == sum((slice * coef) <<
    shift) - (coef << (W-1))``."""
    width = len(value)
    biased = Cat(value[: width - 1], ~value[width - 1])
    return [(biased[low : low + MULTIPLIER_PORT_BITS], low) for low in range(0, width, MULTIPLIER_PORT_BITS)]


def biased_partial_operands(value, coef: Const, frac_bits: int):
    """Split ``value * coef`` (an unsigned constant ``coef`` of at most 18 bits) into products
    that each fit one 18x18 multiplier.

    Returns ``(operands, offset)``, ``operands`` as ``[(slice, coef, shift)]``, with ``value *
    coef == sum((slice * coef) << shift) - (offset << frac_bits)``: give each pair a multiplier
    (:func:`hw.ecp5.registered_product`) and sum the products with :func:`sum_shifted`. Yosys
    maps a product it has to split itself (a signed operand wider than 18 bits, or an unsigned
    18-bit coefficient next to a signed value) onto several multipliers *plus an adder in the
    same cycle*; splitting here lets every multiplier output go straight into a register. The
    value is biased to unsigned (``value + 2**(W-1)``, its sign bit inverted) and cut into
    18-bit slices, each multiplied unsigned by the coefficient; the bias times the coefficient
    is the offset, a whole multiple of ``2**frac_bits`` when ``W - 1 >= frac_bits``. Products
    that fit one multiplier as they are stay a single pair ``(value, coef, 0)``; those that
    cannot be split this way are split by :func:`operand_parts` (both operands as signed),
    offset 0.
    """
    width = len(value)
    if width <= MULTIPLIER_PORT_BITS and len(coef) < MULTIPLIER_PORT_BITS:
        return [(value, coef, 0)], 0
    if len(coef) > MULTIPLIER_PORT_BITS or width - 1 < frac_bits:
        def signed_parts(operand):
            return operand_parts(operand if operand.shape().signed else Cat(operand, Const(0, 1)).as_signed())
        return [(pv, pc, sv + sc) for pv, sv in signed_parts(value) for pc, sc in signed_parts(coef)], 0
    return [(part, coef, low) for part, low in biased_slices(value)], coef.value << (width - 1 - frac_bits)
