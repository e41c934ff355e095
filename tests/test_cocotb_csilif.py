"""cocotb on Icarus: the generated Verilog of the C-SiLIF core against the golden model.

One build directory per case under ``build/sim/csilif/``, so ``pytest -n 2`` is safe. Each run
applies every stall pattern of :data:`sim.harness.STALLS` in turn (``sim/tb_core.py``); the
cases come from ``sim/tb_csilif.py``.
"""

import shutil

import pytest

from golden.fixed import QFormat
from sim.harness import STALLS, nudged, run_case_cocotb
from sim.runner import CocotbFailure
from sim.step_case import side_by_side
from sim.tb_csilif import load_corner_cases, random_case

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) not installed")

NARROW = dict(input_fmt=QFormat(4, 10), state_fmt=QFormat(4, 9), coef_fmt=QFormat(1, 15), gain_fmt=QFormat(3, 13))


def corner_groups():
    """The checked-in corner cases, those sharing formats side by side in one layer (one build
    each), named by their state format."""
    groups = {}
    for case in load_corner_cases():
        groups.setdefault(str(case.params.state_fmt), []).append(case)
    return {f"corners_{fmt}": (lambda cases=cases: side_by_side("corners", cases)) for fmt, cases in groups.items()}


CASES = {
    "small": lambda: random_case(20, 12, 12),
    "hazard": lambda: random_case(21, 2, 16, shuffle=False),
    "large": lambda: random_case(22, 300, 3),
    "narrow": lambda: random_case(23, 16, 16, drive=3.0, **NARROW),
    **corner_groups(),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow if n == "large" else ()) for n in CASES])
def test_generated_verilog_matches_golden(name):
    """Every stall pattern in turn; the small case also proves the checker fails on one flipped bit."""
    flip = {"port": "o_state", "field": "re", "bit": 0, "step": 5, "neuron": 7} if name == "small" else None
    run_case_cocotb(CASES[name](), build_name=f"csilif/{name}", testcase=None, stalls=STALLS, seed=7, flip=flip)


@pytest.mark.slow
def test_spikes_only_core():
    run_case_cocotb(CASES["small"](), build_name="csilif/small-spikes", stalls=STALLS, seed=3, emit_state=False)


def test_failure_reaches_pytest():
    """A model that disagrees with the hardware fails the pytest test with the checker's message."""
    case = CASES["small"]()
    wrong = nudged(case, "gain_q", index=3)
    with pytest.raises(CocotbFailure, match=r"o_state beat \d+ \(step=\d+, neuron=3\): field 're'"):
        run_case_cocotb(wrong, core=case.core(), build_name="csilif/wrong_model")
