"""cocotb on Icarus: the generated Verilog of the LIF core (LIF and IF) and the CubaLIF core against
their golden models.

One build directory per case under ``build/sim/lif/``, so ``pytest -n 2`` is safe. Each run
applies every stall pattern of :data:`sim.harness.STALLS` in turn (``sim/tb_core.py``); the
cases come from ``sim/tb_lif.py``.
"""

import shutil

import pytest

from sim.harness import STALLS, run_case_cocotb
from sim.tb_lif import CUBA_LIF_KIND, IF_KIND, random_case

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) not installed")

CASES = {
    "subtract": lambda: random_case(40, 12, 10, drive=3.0),
    "reset_to_value": lambda: random_case(41, 12, 10, drive=3.0, reset=-0.25),
    "if": lambda: random_case(42, 12, 10, kind=IF_KIND, drive=0.5, reset=0.0),
    "cuba_lif": lambda: random_case(43, 14, 10, kind=CUBA_LIF_KIND, drive=3.0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_generated_verilog_matches_golden(name):
    """Every stall pattern in turn; the subtract case also proves the checker fails on one flipped bit."""
    flip = {"port": "o_state", "field": "u", "bit": 0, "step": 5, "neuron": 7} if name == "subtract" else None
    run_case_cocotb(CASES[name](), build_name=f"lif/{name}", testcase=None, stalls=STALLS, seed=7, flip=flip)
