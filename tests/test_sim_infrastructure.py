"""The shared testbench pieces: payload packing and stream ports (sim.stream), the scoreboard
(sim.checker), the harness's expectations (sim.harness) and step cases (sim.step_case)."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from sim.checker import MismatchError, Scoreboard, check_value, finish_all
from sim.harness import Expectation, check_flip_reported, simulate
from sim.step_case import params_from_json, params_to_json
from sim.stream import pack, stream_ports, unpack

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


def test_stream_ports_come_from_the_signature(never_elaborated):
    from sim.tb_csilif import random_case

    with never_elaborated():  # only its signature is read
        core = random_case(0, 3, 1).core(emit_state=False)
        inputs, outputs = stream_ports(core)
        del core
    assert list(inputs) == ["i_current"] and list(outputs) == ["o_spike"]
    assert set(dict(inputs["i_current"].payload.shape())) == {"neuron", "current"}


def test_flip_bit_is_reported_with_its_beat_context_and_field():
    expectation = Expectation({"o_test": [({"a": 1}, {"step": 0}), ({"a": 2}, {"step": 1})]})
    flip = {"port": "o_test", "field": "a", "bit": 0, "step": 1}
    expectation.flip_bit(**flip)
    board = Scoreboard("o_test")
    board.expect_all(expectation.beats["o_test"])
    board.observe({"a": 1})
    board.observe({"a": 2})
    with pytest.raises(MismatchError) as info:
        board.finish()
    assert "o_test beat 1 (step=1): field 'a'" in check_flip_reported(info.value, flip)
    with pytest.raises(ValueError, match="no expected o_test beat"):
        expectation.flip_bit("o_test", "a", 0, step=7)


def test_step_case_params_round_trip_and_continuation():
    from sim.tb_silif import load_corner_cases

    case = load_corner_cases()[0]
    again = params_from_json(type(case.params), params_to_json(case.params))
    assert params_to_json(again) == params_to_json(case.params)
    whole = case.kind.case("whole", case.params, np.concatenate([case.inputs_q, case.inputs_q]))
    second = case.continued([case])
    assert [record for record, _ in second.expectation().beats["o_state"]] == [
        record for record, _ in whole.expectation().beats["o_state"][len(case.feed()) :]
    ]


def test_harness_refuses_a_stimulus_for_missing_ports(never_elaborated):
    from sim.tb_csilif import random_case

    case = random_case(0, 2, 1)
    with never_elaborated(), pytest.raises(ValueError, match="input streams are \\['i_current'\\]"):
        simulate(case.core(), {"i_other": []}, case.expectation())


@pytest.mark.parametrize("command,message", [("bench.soak", "cannot run the soak: "),
                                             ("bench.rtl_fsdd", "cannot run the RTL FSDD bench: ")])
def test_verilator_benches_without_the_tools_say_so_in_one_line(command, message, monkeypatch, capsys):
    import importlib

    from golden.cli import EXIT_USAGE, run_main
    from sim import verilator

    monkeypatch.setattr(verilator, "missing_tools", lambda: "make is not installed")
    module = importlib.import_module(command)
    assert run_main(module.main, ["--model"] if command == "bench.soak" else ["--model", "README.md"]) == EXIT_USAGE
    assert capsys.readouterr().err.strip().endswith(message + "make is not installed")
