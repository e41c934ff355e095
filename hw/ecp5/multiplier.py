"""Multipliers on ECP5 ``MULT18X18D``s with their input, pipeline and output registers on.

Yosys maps a ``*`` into a ``MULT18X18D`` with every register left in fabric (3.9 ns
combinational inside the block plus the routing to and from it). :class:`Multiplier`
instantiates the primitive with ``REG_INPUTA_CLK``, ``REG_INPUTB_CLK``, ``REG_PIPELINE_CLK``
and ``REG_OUTPUT_CLK`` all on ``CLK0`` and their clock enables on ``CE0``; everywhere but on
ECP5 it elaborates three plain registers around a ``*``, the same cycle timing.
:class:`WideMultiplier` builds a product of wider operands from 18-bit ones.

Primitive facts relied on (Yosys ``techlibs/lattice/cells_bb_ecp5.v`` for the ports and
parameters, ``dsp_map_18x18.v`` for how Yosys itself drives them):

* ``A0..A17``, ``B0..B17`` are the operands, ``P0..P35`` the 36-bit product; ``SIGNEDA``
  / ``SIGNEDB`` (high: two's complement) say how each operand is read. ``C``, ``SOURCEA``,
  ``SOURCEB`` (the pre-adder and cascade inputs) are tied low.
* Each register's ``REG_*_CLK`` / ``_CE`` / ``_RST`` parameters name which of ``CLK0..3``,
  ``CE0..3``, ``RST0..3`` it uses; here all use ``CLK0``, ``CE0`` (the component's ``en``) and
  ``RST0`` (tied low: never reset, ``RESETMODE = "SYNC"``).

Signedness and the 18-bit operand split: an operand fits one port when it is signed of at most
18 bits or unsigned of at most 18 bits. When the operands' signedness differs, the unsigned one
(at most 17 bits) is zero-extended and both ports read two's complement, so the primitive is
never used with mixed ``SIGNEDA``/``SIGNEDB``. A wider operand is split (:func:`hw.arith.operand_parts`)
into its low 17 bits, unsigned, and the signed rest, split again while wider than 18 bits.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.arith import MULTIPLIER_PORT_BITS, biased_slices, operand_parts
from hw.ecp5.platform import is_ecp5

__all__ = ["Multiplier", "WideMultiplier", "registered_partial_products", "registered_product"]

#: Bits of a MULT18X18D product.
_PRODUCT_BITS = 2 * MULTIPLIER_PORT_BITS


def _multiplier_members(a: Shape, b: Shape) -> dict:
    """``a``, ``b``, ``en`` (default 1) and ``p``, the exact product: the sum of the widths,
    signed if either operand is."""
    return {"a": In(a), "b": In(b), "en": In(1, init=1), "p": Out(Shape(a.width + b.width, a.signed or b.signed))}


class Multiplier(wiring.Component):
    """``p = a * b``, exact, through one MULT18X18D with all three register levels.

    Parameters
    ----------
    a_shape, b_shape : shape-like
        The operands: signed or unsigned, at most 18 bits each; when their signedness differs
        the unsigned one is at most 17 bits (split wider operands, or use :class:`WideMultiplier`).
    domain : str
        Clock domain of the registers.

    Members
    -------
    a : ``In(a_shape)``
    b : ``In(b_shape)``
    en : ``In(1, init=1)``
        Clock enable of every register (the primitive's ``CE0``): the pipeline moves on the
        clock edges at which it is high and holds otherwise.
    p : ``Out(signed or unsigned(a.width + b.width))``
        The product, signed if either operand is.

    Timing
    ------
    :attr:`latency` (3) enabled clock edges: operands present at enabled edge ``k`` are
    registered (input registers), multiplied into the pipeline register at the next enabled
    edge and registered in the output register at the one after; ``p`` shows their product
    right after that third edge. Never reset (the domain's reset does not touch the registers);
    ``p`` is 0 before the first products in the model and unspecified in hardware.
    """

    #: Enabled clock edges from operands to their product: input, pipeline and output registers.
    latency = 3

    def __init__(self, a_shape, b_shape, *, domain: str = "sync"):
        a_shape, b_shape = Shape.cast(a_shape), Shape.cast(b_shape)
        for name, shape, other in (("a_shape", a_shape, b_shape), ("b_shape", b_shape, a_shape)):
            problem = None
            if not 1 <= shape.width <= MULTIPLIER_PORT_BITS:
                problem = f"{name} must be 1 to {MULTIPLIER_PORT_BITS} bits wide, not {shape}"
            elif not shape.signed and other.signed and shape.width > MULTIPLIER_PORT_BITS - 1:
                problem = (f"{name} {shape} meets a signed operand: an unsigned operand then has at most "
                           f"{MULTIPLIER_PORT_BITS - 1} bits (split it, or use WideMultiplier)")
            if problem:
                self._MustUse__silence = True  # refused, so never elaborated: no UnusedElaboratable warning
                raise ValueError(problem)
        self._domain = domain
        super().__init__(_multiplier_members(a_shape, b_shape))

    def _mult18x18d(self, **parameters_and_ports):
        """The MULT18X18D (``Instance`` keyword arguments); the tests model it here in Amaranth."""
        return Instance("MULT18X18D", **parameters_and_ports)

    def elaborate(self, platform):
        m = Module()
        a_shape, b_shape = self.a.shape(), self.b.shape()
        if not is_ecp5(platform):
            a_q = Signal(a_shape, reset_less=True, name="a_input")
            b_q = Signal(b_shape, reset_less=True, name="b_input")
            pipeline = Signal(self.p.shape(), reset_less=True, name="pipeline")
            output = Signal(self.p.shape(), reset_less=True, name="output")
            with m.If(self.en):
                m.d[self._domain] += [a_q.eq(self.a), b_q.eq(self.b), pipeline.eq(a_q * b_q), output.eq(pipeline)]
            m.d.comb += self.p.eq(output)
            return m

        # Both ports two's complement unless both operands are unsigned (then both unsigned).
        ports_signed = a_shape.signed or b_shape.signed
        port_shape = Shape(MULTIPLIER_PORT_BITS, ports_signed)
        a_port, b_port = Signal(port_shape, name="a_port"), Signal(port_shape, name="b_port")
        product = Signal(_PRODUCT_BITS, name="product")
        m.d.comb += [a_port.eq(self.a), b_port.eq(self.b), self.p.eq(product[:len(self.p)])]
        registers = {}
        for register in ("INPUTA", "INPUTB", "PIPELINE", "OUTPUT"):
            registers.update({f"p_REG_{register}_CLK": "CLK0", f"p_REG_{register}_CE": "CE0",
                              f"p_REG_{register}_RST": "RST0"})
        m.submodules.mult18x18d = self._mult18x18d(
            **registers,
            p_RESETMODE="SYNC",
            i_CLK0=ClockSignal(self._domain),
            i_CE0=self.en,
            i_RST0=Const(0),
            i_SIGNEDA=Const(int(ports_signed)),
            i_SIGNEDB=Const(int(ports_signed)),
            i_SOURCEA=Const(0),
            i_SOURCEB=Const(0),
            **{f"i_A{bit}": a_port[bit] for bit in range(MULTIPLIER_PORT_BITS)},
            **{f"i_B{bit}": b_port[bit] for bit in range(MULTIPLIER_PORT_BITS)},
            **{f"i_C{bit}": Const(0) for bit in range(MULTIPLIER_PORT_BITS)},
            **{f"o_P{bit}": product[bit] for bit in range(_PRODUCT_BITS)},
        )
        return m


def registered_product(m, name: str, a, b, *, en):
    """``a * b`` through a :class:`Multiplier` (operands of at most 18 bits, as it takes them),
    added to ``m.submodules`` as ``name`` with its registers enabled by ``en`` (a pipeline's
    advance); returns its product ``p``, which shows the operands of an enabled edge
    :attr:`Multiplier.latency` (3) enabled edges later: a core's products of stage ``k``
    operands belong to stage ``k + 3``."""
    m.submodules[name] = multiplier = Multiplier(a.shape(), b.shape())
    m.d.comb += [multiplier.a.eq(a), multiplier.b.eq(b), multiplier.en.eq(en)]
    return multiplier.p


def registered_partial_products(m, name: str, coef, operand, *, en, slice_bits: int = MULTIPLIER_PORT_BITS - 1,
                                fabric_registers: int = 0, addend: int = 0):
    """``coef * operand + addend`` (``coef`` at most 18 bits, ``addend`` a non-negative
    integer constant) as partial products through :func:`registered_product` (submodules
    ``{name}_{shift}``), :attr:`Multiplier.latency` enabled edges after the operands, plus
    ``fabric_registers``. Returns ``[(term, shift)]`` with ``coef * operand + addend ==
    sum(term << shift)`` (:func:`hw.arith.sum_shifted`) for the operands of that edge.

    An unsigned coefficient beside a signed operand meets the operand's biased 18-bit slices
    (:func:`hw.arith.biased_slices`: both ports unsigned), and one more term, ``addend - (coef
    << (W-1))``, removes the bias, computed from the coefficient and registered along with the
    products, so ``addend`` (a rounding constant, say) costs no adder in the sum; otherwise the
    operand is cut into ``slice_bits``-bit parts (:func:`hw.arith.operand_parts`) and a non-zero
    ``addend`` is one more, constant, term. With ``fabric_registers`` every term but that
    constant then passes that many fabric registers (enabled by ``en``), so the route out of a
    multiplier ends in a register and a sum of the terms starts from registers placed by the
    fabric's logic. These and the bias term's registers are reset-less data registers (a
    pipeline's valid flags say when they count): with a reset on the fabric registers, Yosys
    0.70's ABC9 fails an assertion on the leaky-integrator readout core, whose state memory is
    LUT RAM."""

    def delayed(register_name, value):
        register = Signal.like(value, name=register_name, reset_less=True)
        with m.If(en):
            m.d.sync += register.eq(value)
        return register

    if addend < 0:
        raise ValueError(f"addend must be a non-negative integer, not {addend}")
    biased = operand.shape().signed and not coef.shape().signed
    slices = biased_slices(operand) if biased else operand_parts(operand, max_bits=slice_bits)
    parts = [(registered_product(m, f"{name}_{shift}", part, coef, en=en), shift) for part, shift in slices]
    if biased:
        offset = Const(addend) - (coef << (len(operand) - 1))
        for k in range(Multiplier.latency):
            offset = delayed(f"{name}_offset_{k + 1}", offset)
        parts.append((offset, 0))
    for k in range(fabric_registers):
        parts = [(delayed(f"{name}_part_{index}_fabric_{k + 1}", term), shift)
                 for index, (term, shift) in enumerate(parts)]
    if addend and not biased:
        parts.append((Const(addend), 0))  # a constant: no register to pass
    return parts


def _as_signed(shape: Shape, value):
    """``value`` as a signed value: itself if signed, else zero-extended by one bit."""
    return value if shape.signed else Cat(value, Const(0, 1)).as_signed()


class WideMultiplier(wiring.Component):
    """``p = a * b``, exact, for operands of any width: one :class:`Multiplier` per pair of
    18-bit parts, their products summed at full width in one more register.

    Each operand is split as the module docstring says (an unsigned operand first given a zero
    sign bit); operands that fit one port give one :class:`Multiplier`. A core that sums
    partial products of several multiplies anyway may rather split them itself
    (:func:`hw.arith.partial_products`) and give each part a :class:`Multiplier`.

    Members
    -------
    a, b, en, p
        As :class:`Multiplier`.

    Timing
    ------
    :attr:`latency` (4) enabled clock edges: the multipliers' three, then the sum register.
    Never reset; ``p`` is 0 before the first products in the model, unspecified in hardware.
    """

    #: Enabled clock edges from operands to their product.
    latency = Multiplier.latency + 1

    def __init__(self, a_shape, b_shape, *, domain: str = "sync"):
        a_shape, b_shape = Shape.cast(a_shape), Shape.cast(b_shape)
        self._domain = domain
        super().__init__(_multiplier_members(a_shape, b_shape))

    def _parts(self):
        a_shape, b_shape = self.a.shape(), self.b.shape()
        if not (a_shape.signed or b_shape.signed) and max(a_shape.width, b_shape.width) <= MULTIPLIER_PORT_BITS:
            return [(self.a, 0)], [(self.b, 0)]
        return operand_parts(_as_signed(a_shape, self.a)), operand_parts(_as_signed(b_shape, self.b))

    @property
    def multiplier_count(self) -> int:
        """MULT18X18D primitives used on ECP5."""
        a_parts, b_parts = self._parts()
        return len(a_parts) * len(b_parts)

    def elaborate(self, platform):
        m = Module()
        a_parts, b_parts = self._parts()
        terms = []
        for a_part, a_shift in a_parts:
            for b_part, b_shift in b_parts:
                name = f"mult_{a_shift}_{b_shift}"
                m.submodules[name] = mult = Multiplier(a_part.shape(), b_part.shape(), domain=self._domain)
                m.d.comb += [mult.a.eq(a_part), mult.b.eq(b_part), mult.en.eq(self.en)]
                terms.append(mult.p << (a_shift + b_shift))
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        product = Signal(self.p.shape(), reset_less=True, name="product")
        with m.If(self.en):
            m.d[self._domain] += product.eq(total)
        m.d.comb += self.p.eq(product)
        return m
