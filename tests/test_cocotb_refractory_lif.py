"""cocotb on Icarus: the generated Verilog of the refractory LIF core against the golden model.

One simulator run per case, each under ``build/sim/refractory_lif/<case>/`` (so ``pytest -n 2``
is safe). Inside a run ``sim/tb_core.py`` applies the stimulus once per stall pattern of
:data:`sim.harness.STALLS` (full rate, idle cycles on the input, backpressure on both outputs,
both) as one continuing sequence. The cases come from ``sim/tb_refractory_lif.py``.
"""

import shutil

import pytest

from sim.harness import STALLS, nudged, run_case_cocotb
from sim.runner import CocotbFailure
from sim.tb_refractory_lif import NARROW_FORMATS, load_corner_cases, random_case

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) not installed")

CASES = {
    "small": lambda: random_case(12, 12, seed=20, shuffle=True),
    "large": lambda: random_case(1024, 2, seed=21, shuffle=True),
    "narrow": lambda: random_case(16, 16, seed=22, shuffle=True, spread=4.0, **NARROW_FORMATS),
    **{f"corner_{case.name}": (lambda case=case: case) for case in load_corner_cases()},
}


@pytest.mark.parametrize("name", list(CASES))
def test_generated_verilog_matches_golden(name):
    """Every stall pattern in turn; the small case also proves the checker fails on one flipped bit."""
    flip = {"port": "o_state", "field": "refr", "bit": 0, "step": 5, "neuron": 7} if name == "small" else None
    run_case_cocotb(CASES[name](), build_name=f"refractory_lif/{name}", testcase=None, stalls=STALLS, seed=7, flip=flip)


@pytest.mark.parametrize("under_pytest", [True, False], ids=["under_pytest", "from_a_script"])
def test_mismatch_fails_pytest_with_location(under_pytest, monkeypatch):
    """A model that disagrees with the hardware raises the checker's message, also when
    ``run_cocotb`` is called from a script (cocotb_tools then does not exit on failure)."""
    if not under_pytest:
        monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    case = random_case(3, 3, seed=30, shuffle=True)
    wrong = nudged(case, "tau_q", by=4096)  # the model decays 1/64 faster than the hardware
    with pytest.raises(CocotbFailure, match=r"o_state beat \d+ \(step=\d+, neuron=\d+\): field 'v'"):
        run_case_cocotb(wrong, core=case.core(), build_name=f"refractory_lif/wrong_model_{under_pytest}")
