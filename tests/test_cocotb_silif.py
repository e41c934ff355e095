"""cocotb on Icarus: the generated Verilog of the SiLIF core against the golden model.

One build directory per case under ``build/sim/silif/``, so ``pytest -n 2`` is safe. Each run
applies every stall pattern of :data:`sim.harness.STALLS` in turn (``sim/tb_core.py``); the
cases and corner vectors come from ``sim/tb_silif.py``.
"""

import shutil

import pytest

from golden.fixed import QFormat
from sim.harness import STALLS, nudged, run_case_cocotb
from sim.runner import CocotbFailure
from sim.step_case import side_by_side
from sim.tb_silif import load_corner_cases, random_case

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) not installed")

NARROW = {"input_fmt": QFormat(8, 12), "state_fmt": QFormat(5, 12), "b_fmt": QFormat(2, 12, signed=False),
          "decay_fmt": QFormat(0, 16, signed=False), "a_fmt": QFormat(1, 17, signed=False)}


def corners_default_formats():
    """Every checked-in corner case in the default formats, in one build."""
    cases = [case for case in load_corner_cases() if case.params.state_fmt == QFormat(10, 14)]
    return side_by_side("corners_default_formats", cases)


def corner(name):
    return lambda: next(case for case in load_corner_cases() if case.name == name)


CASES = {
    "small": lambda: random_case(30, 12, 12),
    "hazard": lambda: random_case(31, 3, 16, shuffle=False),
    "large": lambda: random_case(32, 600, 2, drive=3.0),
    "narrow": lambda: random_case(33, 16, 16, drive=6.0, **NARROW),
    "corners_default_formats": corners_default_formats,
    "corner_saturation_both_ends": corner("saturation_both_ends"),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow if n == "large" else ()) for n in CASES])
def test_generated_verilog_matches_golden(name):
    """Every stall pattern in turn; the small case also proves the checker fails on one flipped bit."""
    flip = {"port": "o_state", "field": "w", "bit": 0, "step": 5, "neuron": 7} if name == "small" else None
    run_case_cocotb(CASES[name](), build_name=f"silif/{name}", testcase=None, stalls=STALLS, seed=7, flip=flip)


def test_failure_reaches_pytest():
    """A model that disagrees with the hardware fails the pytest test with the checker's message."""
    case = CASES["small"]()
    wrong = nudged(case, "gain_q", index=0)
    with pytest.raises(CocotbFailure, match=r"o_state beat \d+ \(step=\d+, neuron=0\): field 'u'"):
        run_case_cocotb(wrong, core=case.core(), build_name="silif/wrong_model")
