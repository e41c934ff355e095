"""Unit tests of the fixed-point vocabulary (golden/fixed.py, DECISIONS D1/D2).

Three tiers: hand-written cases for every rule (exact halves, negative halves, flags),
an independent cross-check against fxpmath with explicitly chosen modes, and the Amaranth
mirror ``hw.arith.saturate`` simulated exhaustively against ``QFormat.saturate``.
"""

from fractions import Fraction

import numpy as np
import pytest
import torch
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator
from fxpmath import Fxp

from golden.fixed import QFormat, mul_round, round_shift
from hw.arith import saturate as hw_saturate


def exact_round_half_up(value: int, n: int) -> int:
    """Reference for D1 with rational arithmetic: floor(value / 2**n + 1/2)."""
    return int(np.floor(Fraction(value, 1 << n) + Fraction(1, 2)))


# --- D1 rounding -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, n, expected",
    [
        (1, 1, 1),  # +0.5 -> 1
        (-1, 1, 0),  # -0.5 -> 0 (half up, not away from zero)
        (3, 1, 2),  # +1.5 -> 2
        (-3, 1, -1),  # -1.5 -> -1
        (5, 1, 3),  # +2.5 -> 3 (not half to even)
        (-5, 1, -2),
        (2, 2, 1),  # +0.5
        (-2, 2, 0),  # -0.5
        (-6, 2, -1),  # -1.5
        (-7, 2, -2),  # -1.75
        (7, 0, 7),
        (-7, 0, -7),
        (3, -2, 12),  # negative n shifts left, exactly
    ],
)
def test_round_shift_cases(value, n, expected):
    assert round_shift(value, n) == expected


def test_round_shift_matches_rational_reference_on_all_kinds():
    values = np.arange(-300, 301, dtype=np.int64)
    for n in range(1, 6):
        expected = np.array([exact_round_half_up(int(v), n) for v in values])
        assert np.array_equal(round_shift(values, n), expected)
        assert torch.equal(round_shift(torch.from_numpy(values), n), torch.from_numpy(expected))
        assert [round_shift(int(v), n) for v in values] == expected.tolist()


def test_mul_round_is_one_rounding_of_the_full_product():
    rng = np.random.default_rng(1)
    a = rng.integers(-(1 << 23), 1 << 23, size=2000)
    b = rng.integers(0, 1 << 18, size=2000)
    got = mul_round(torch.from_numpy(a), torch.from_numpy(b), 18)
    expected = [exact_round_half_up(int(x) * int(y), 18) for x, y in zip(a, b)]
    assert got.tolist() == expected
    # tau_q * u for the default decay: 26214 * 5 = 131070 -> 0.49999 LSB rounds to 0, 10 -> 1
    assert mul_round(5, 26214, 18) == 0 and mul_round(10, 26214, 18) == 1


# --- D2 saturation ---------------------------------------------------------------------------
def test_saturate_flags_on_every_kind():
    fmt = QFormat.parse("sQ3.8")  # 11 bits: -1024 .. 1023
    assert (fmt.min_int, fmt.max_int) == (-1024, 1023)
    assert fmt.saturate(1023) == (1023, False)
    assert fmt.saturate(1024) == (1023, True)
    assert fmt.saturate(-1024) == (-1024, False)
    assert fmt.saturate(-1025) == (-1024, True)
    values = np.array([-5000, -1025, -1024, 0, 1023, 1024, 5000])
    clamped, flag = fmt.saturate(values)
    assert clamped.tolist() == [-1024, -1024, -1024, 0, 1023, 1023, 1023]
    assert flag.tolist() == [True, True, False, False, False, True, True]
    t_clamped, t_flag = fmt.saturate(torch.from_numpy(values))
    assert t_clamped.tolist() == clamped.tolist() and t_flag.tolist() == flag.tolist()
    unsigned_fmt = QFormat.parse("uQ0.4")
    assert unsigned_fmt.saturate(-1) == (0, True) and unsigned_fmt.saturate(16) == (15, True)


# --- quantisation ------------------------------------------------------------------------------
def test_quantize_exact_halves_round_up():
    fmt = QFormat.parse("sQ3.2")  # LSB 0.25
    halves = [0.125, -0.125, 0.375, -0.375, 0.625, -0.625]
    assert [fmt.quantize(x) for x in halves] == [1, 0, 2, -1, 3, -2]
    assert fmt.quantize(np.array(halves)).tolist() == [1, 0, 2, -1, 3, -2]
    assert fmt.quantize(torch.tensor(halves)).tolist() == [1, 0, 2, -1, 3, -2]
    assert fmt.quantize(100.0) == fmt.max_int and fmt.quantize(-100.0) == fmt.min_int
    assert fmt.quantize(torch.tensor([100.0])).dtype == torch.int64


def test_quantized_default_decays():
    coef = QFormat.parse("uQ0.18")
    assert coef.quantize(0.1) == 26214  # 26214.4
    assert coef.quantize(0.9) == 235930  # 235929.6
    assert coef.to_float(26214) == 26214 / 2**18


# --- description ------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["sQ8.16", "uQ0.18", "sQ1.0", "uQ12.3"])
def test_parse_and_str_round_trip(text):
    fmt = QFormat.parse(text)
    assert str(fmt) == text and QFormat.parse(f"  {fmt}  ") == fmt


def test_describe_values():
    fmt = QFormat.parse("sQ8.16")
    assert fmt.width == 24 and fmt.lsb == 2.0**-16
    assert fmt.max_value == pytest.approx(128 - 2.0**-16) and fmt.min_value == -128.0
    assert fmt.shape() == signed(24) and QFormat.parse("uQ0.18").shape() == unsigned(18)


@pytest.mark.parametrize("text", ["Q8.16", "sQ8", "sq8.16", "sQ-1.3", "s Q8.16", ""])
def test_parse_rejects_bad_text(text):
    with pytest.raises(ValueError, match="expected e.g."):
        QFormat.parse(text)


@pytest.mark.parametrize(
    "args, match",
    [((0, 8, True), "sign bit"), ((4, -1, True), "frac_bits"), ((40, 30, True), "width"), ((0, 0, False), "width")],
)
def test_bad_formats_raise(args, match):
    with pytest.raises(ValueError, match=match):
        QFormat(*args)


@pytest.mark.parametrize("text", ["sQ2.3", "uQ2.3"])
def test_bit_patterns_round_trip_exhaustively(text):
    fmt = QFormat.parse(text)
    patterns = {fmt.to_unsigned_bits(v) for v in range(fmt.min_int, fmt.max_int + 1)}
    assert patterns == set(range(1 << fmt.width))
    for v in range(fmt.min_int, fmt.max_int + 1):
        assert fmt.from_unsigned_bits(fmt.to_unsigned_bits(v)) == v
    if fmt.signed:
        assert fmt.to_unsigned_bits(-1) == (1 << fmt.width) - 1


# --- independent cross-check against fxpmath ---------------------------------------------------
@pytest.mark.parametrize("text", ["sQ8.16", "sQ3.8", "uQ0.18", "uQ4.6"])
def test_quantize_matches_fxpmath(text):
    """fxpmath truncates by default; round half up is floor(x + LSB/2) with rounding='floor'."""
    fmt = QFormat.parse(text)
    rng = np.random.default_rng(7)
    span = 1.5 * max(abs(fmt.min_value), fmt.max_value)
    values = rng.uniform(-span, span, size=3000)
    # exact halves and the format edges, where the rounding mode matters most
    k = rng.integers(fmt.min_int, fmt.max_int, size=200)
    values = np.concatenate([values, (k + 0.5) * fmt.lsb, [fmt.max_value, fmt.min_value, 0.0]])
    ref = Fxp(values + fmt.lsb / 2, signed=fmt.signed, n_word=fmt.width, n_frac=fmt.frac_bits,
              rounding="floor", overflow="saturate")
    assert np.array_equal(np.asarray(ref.val, dtype=np.int64), fmt.quantize(values))


# --- Amaranth mirror -----------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["sQ2.2", "uQ2.2"])
def test_hw_saturate_matches_golden_exhaustively(text):
    fmt = QFormat.parse(text)
    m = Module()
    value = Signal(signed(9))
    clamped = Signal(fmt.shape())
    flag = Signal()
    out, sat = hw_saturate(value, fmt)
    m.d.comb += [clamped.eq(out), flag.eq(sat)]
    mismatches = []

    async def testbench(ctx):
        for x in range(-256, 256):
            ctx.set(value, x)
            expected = fmt.saturate(x)
            got = (ctx.get(clamped), bool(ctx.get(flag)))
            if got != expected:
                mismatches.append((x, got, expected))

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    assert mismatches == []
