"""The shared testbench pieces: payload packing (sim.stream) and the scoreboard (sim.checker)."""

import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from sim.checker import MismatchError, Scoreboard, check_value, finish_all
from sim.stream import pack, unpack

INNER = data.StructLayout({"re": signed(5), "im": signed(5)})
LAYOUT = data.StructLayout({"neuron": unsigned(3), "value": signed(6), "pair": INNER, "flag": unsigned(1)})


def test_pack_unpack_round_trip_with_signed_and_nested_fields():
    record = {"neuron": 5, "value": -32, "pair": {"re": -1, "im": 15}, "flag": 1}
    bits = pack(LAYOUT, record)
    assert unpack(LAYOUT, bits) == record
    # The offsets come from the layout: value starts after the 3 neuron bits.
    assert (bits >> LAYOUT["value"].offset) & 0x3F == (-32) & 0x3F
    assert data.Const(LAYOUT, bits).pair.re == -1


@pytest.mark.parametrize(
    "record,message",
    [
        ({"neuron": 8, "value": 0, "pair": {"re": 0, "im": 0}, "flag": 0}, r"neuron=8 does not fit"),
        ({"neuron": 0, "value": 32, "pair": {"re": 0, "im": 0}, "flag": 0}, r"value=32 does not fit"),
        ({"neuron": 0, "value": 0, "pair": {"re": -17, "im": 0}, "flag": 0}, r"pair\.re=-17 does not fit"),
        ({"neuron": 0, "pair": {"re": 0, "im": 0}, "flag": 0}, r"missing \['value'\]"),
        ({"neuron": 0, "value": 0, "pair": {"re": 0, "im": 0}, "flag": 0, "x": 1}, r"unknown \['x'\]"),
    ],
)
def test_pack_rejects_bad_records(record, message):
    with pytest.raises(ValueError, match=message):
        pack(LAYOUT, record)


def test_scoreboard_passes_exact_beats():
    board = Scoreboard("o_test")
    board.expect({"a": 1, "b": -2}, step=0)
    board.expect({"a": 3, "b": 4}, step=1)
    board.observe({"a": 1, "b": -2})
    board.observe({"a": 3, "b": 4})
    board.finish()


def test_scoreboard_names_field_missing_and_extra_beats():
    board = Scoreboard("o_test")
    board.expect({"a": 1, "b": -2}, step=0, neuron=4)
    board.expect({"a": 3, "b": 4}, step=1, neuron=4)
    board.observe({"a": 1, "b": -3})
    with pytest.raises(MismatchError) as info:
        board.finish()
    text = str(info.value)
    assert "o_test beat 0 (step=0, neuron=4): field 'b' expected -2" in text and "got -3" in text
    assert "beat missing" in text and len(info.value.mismatches) == 2

    extra = Scoreboard("o_test")
    extra.observe({"a": 1})
    with pytest.raises(MismatchError, match="expected no further beat"):
        extra.finish()


def test_finish_all_includes_scalar_checks():
    board = Scoreboard("o_test")
    finish_all([board], check_value("count", 3, 3))
    with pytest.raises(MismatchError, match="^count: expected 3, got 2$"):
        finish_all([board], check_value("count", 3, 2))
