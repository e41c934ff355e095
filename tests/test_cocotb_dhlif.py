"""cocotb on Icarus: the generated Verilog of the DH-LIF core against the golden model.

One build directory per configuration and stall pattern under ``build/sim/dhlif/``, so
``pytest -n 2`` is safe. The testbench and cases live in ``sim/tb_dhlif.py``.
"""

import shutil

import pytest

from golden.fixed import QFormat
from hw.cores.dhlif import DHLIFCore
from sim.runner import CocotbFailure, run_cocotb
from sim.tb_dhlif import case_config, random_case

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) not installed")

STALLS = {"full_rate": (0.0, 0.0), "idle_backpressure": (0.3, 0.4)}
NARROW = {"weight_fmt": QFormat(3, 8), "current_fmt": QFormat(3, 8), "membrane_fmt": QFormat(4, 8),
          "decay_fmt": QFormat(0, 12, signed=False)}

CASES = {
    "small": lambda: random_case(40, 12, 16, 4, 12),
    "hazard": lambda: random_case(41, 3, 6, 2, 16, shuffle=False),
    "narrow": lambda: random_case(42, 6, 8, 4, 12, rate=6.0, **NARROW),
    "large": lambda: random_case(43, 300, 64, 4, 3),
}
# Each Icarus run costs ~15 s on a shared 2-core machine: one stall pattern per case by default.
DEFAULT_RUNS = {("small", "idle_backpressure"), ("hazard", "full_rate"), ("narrow", "idle_backpressure")}


def run(name, case, *, stalls, testcase="matches_golden", seed=0, **extra):
    idle_prob, backpressure_prob = STALLS[stalls]
    return run_cocotb(
        DHLIFCore(case.params),
        test_module="sim.tb_dhlif",
        build_name=f"dhlif/{name}-{stalls}-{testcase}",
        config=case_config(case, idle_prob=idle_prob, backpressure_prob=backpressure_prob, seed=seed, **extra),
        test_filter=rf"\.{testcase}$",
    )


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
    assert trace.spike.any()
    if name == "narrow":
        assert trace.saturation_count > 0
    run(name, case, stalls=stalls, seed=7)


def test_checker_catches_one_flipped_bit():
    flip = {"step": 5, "neuron": 7, "field": "current_1", "bit": 0}
    run("checker", CASES["small"](), stalls="idle_backpressure", testcase="checker_reports_flipped_bit", flip=flip)


def test_failure_reaches_pytest():
    """A model that disagrees with the hardware fails the pytest test with the checker's message."""
    case = CASES["small"]()
    config = case_config(case)
    config["case"]["soma_decay_q"][0] += 1
    with pytest.raises(CocotbFailure, match=r"o_state beat \d+ \(step=\d+, neuron=0\): field 'u'"):
        run_cocotb(
            DHLIFCore(case.params),
            test_module="sim.tb_dhlif",
            build_name="dhlif/wrong_model",
            config=config,
            test_filter=r"\.matches_golden$",
        )
