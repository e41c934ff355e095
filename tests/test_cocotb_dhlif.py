"""cocotb on Icarus: the generated Verilog of the DH-LIF core against the golden model.

One build directory per case under ``build/sim/dhlif/``, so ``pytest -n 2`` is safe. Each run
applies every stall pattern of :data:`sim.harness.STALLS` in turn (``sim/tb_core.py``); the
cases come from ``sim/tb_dhlif.py``.
"""

import shutil

import pytest

from golden.fixed import QFormat
from sim.harness import STALLS, nudged, run_case_cocotb
from sim.runner import CocotbFailure
from sim.tb_dhlif import random_case

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) not installed")

NARROW = {"weight_fmt": QFormat(3, 8), "current_fmt": QFormat(3, 8), "membrane_fmt": QFormat(4, 8),
          "decay_fmt": QFormat(0, 12, signed=False)}

CASES = {
    "small": lambda: random_case(40, 12, 16, 4, 12),
    "hazard": lambda: random_case(41, 3, 6, 2, 16, shuffle=False),
    "narrow": lambda: random_case(42, 6, 8, 4, 12, rate=6.0, **NARROW),
    "large": lambda: random_case(43, 300, 64, 4, 3),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow if n == "large" else ()) for n in CASES])
def test_generated_verilog_matches_golden(name):
    """Every stall pattern in turn; the small case also proves the checker fails on one flipped bit."""
    case = CASES[name]()
    trace = case.golden()
    assert trace.spike.any()
    if name == "narrow":
        assert trace.saturation_count > 0
    flip = {"port": "o_state", "field": "current_1", "bit": 0, "step": 5, "neuron": 7} if name == "small" else None
    run_case_cocotb(case, build_name=f"dhlif/{name}", testcase=None, stalls=STALLS, seed=7, flip=flip)


def test_failure_reaches_pytest():
    """A model that disagrees with the hardware fails the pytest test with the checker's message."""
    case = CASES["small"]()
    wrong = nudged(case, "soma_decay_q", index=0)
    with pytest.raises(CocotbFailure, match=r"o_state beat \d+ \(step=\d+, neuron=0\): field 'u'"):
        run_case_cocotb(wrong, core=case.core(), build_name="dhlif/wrong_model")
