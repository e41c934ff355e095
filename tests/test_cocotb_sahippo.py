"""cocotb on Icarus: the generated Verilog of the SA-HiPPO cores (zoh, taylor2) against the golden model.

One build directory per case and stall pattern under ``build/sim/sahippo/``, so ``pytest -n 2``
is safe: the core's channel state survives a reset, so each stall pattern needs its own
simulator process. The testbench is ``sim/tb_core.py``, the cases come from ``sim/tb_sahippo.py``.
"""

import shutil

import pytest

from golden.fixed import QFormat
from sim.harness import STALLS, nudged, run_case_cocotb
from sim.runner import CocotbFailure
from sim.tb_sahippo import corner_case, digit_case, random_case

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) not installed")

NARROW = {"state_fmt": QFormat.parse("sQ2.14"), "out_fmt": QFormat.parse("sQ2.14")}

CASES = {
    "n16": lambda: random_case(50, 16, 3, 12, 40),
    "n8_same_channel_stalls": lambda: random_case(51, 8, 2, 5, 40),
    "narrow": lambda: random_case(52, 8, 2, 6, 30, scale=6.0, **NARROW),
    "corners": corner_case,
    "digits": digit_case,
    "n64": lambda: random_case(53, 64, 4, 31, 24),
    "n24_one_channel": lambda: random_case(55, 24, 1, 5, 30),  # each mode reads a forwarded update
    "taylor2_n8": lambda: random_case(54, 8, 2, 6, 24, method="taylor2"),
    "taylor2_corners": lambda: corner_case(method="taylor2"),
}
# Each Icarus run costs ~15 s on a shared 2-core machine: one stall pattern per case by default.
DEFAULT_RUNS = {
    ("n16", "idle_backpressure"),
    ("n8_same_channel_stalls", "full_rate"),
    ("narrow", "idle_backpressure"),
    ("corners", "idle_backpressure"),
    ("digits", "backpressure"),
    ("n24_one_channel", "full_rate"),
    ("taylor2_n8", "idle_backpressure"),
}


@pytest.mark.parametrize(
    "name, stalls",
    [
        pytest.param(name, stalls, marks=() if (name, stalls) in DEFAULT_RUNS else pytest.mark.slow)
        for name in CASES
        for stalls in STALLS
    ],
)
def test_generated_verilog_matches_golden(name, stalls):
    case = CASES[name]()
    trace = case.golden()
    assert {0, 1, case.params.dt_max} <= set(trace.dt.tolist())
    if name == "narrow":
        assert trace.saturation_count > 0
    run_case_cocotb(case, build_name=f"sahippo/{name}-{stalls}", stalls=(stalls,), seed=7)


def test_checker_catches_one_flipped_bit():
    flip = {"port": "o_state", "field": "re", "bit": 0, "event": 9, "mode": 3}
    run_case_cocotb(CASES["n8_same_channel_stalls"](), build_name="sahippo/checker",
                    testcase="checker_reports_flipped_bit", stalls=("idle_backpressure",), flip=flip)


def test_failure_reaches_pytest():
    """A model that disagrees with the hardware fails the pytest test with the checker's message."""
    case = CASES["n8_same_channel_stalls"]()
    wrong = nudged(case, "d_q", index=1)
    with pytest.raises(CocotbFailure, match=r"o_output beat \d+ \(event=\d+\): field 'y'"):
        run_case_cocotb(wrong, core=case.core(), build_name="sahippo/wrong_model")
