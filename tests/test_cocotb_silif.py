"""cocotb on Icarus: the generated Verilog of the SiLIF core against the golden model.

One build directory per configuration and stall pattern under ``build/sim/silif/``, so
``pytest -n 2`` is safe. The testbench, cases and corner vectors live in ``sim/tb_silif.py``.
"""

import shutil

import pytest

from golden.fixed import QFormat
from hw.cores.silif import SiLIFCore
from sim.runner import CocotbFailure, run_cocotb
from sim.tb_silif import SiLIFCase, case_config, load_corner_cases, random_case

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) not installed")

STALLS = {"full_rate": (0.0, 0.0), "idle_backpressure": (0.3, 0.4)}
NARROW = {"input_fmt": QFormat(8, 12), "state_fmt": QFormat(5, 12), "b_fmt": QFormat(2, 12, signed=False),
          "decay_fmt": QFormat(0, 16, signed=False), "a_fmt": QFormat(1, 17, signed=False)}



def corners_default_formats():
    """Every checked-in corner case in the default formats, in one build."""
    cases = [case for case in load_corner_cases() if case.params.state_fmt == QFormat(10, 14)]
    return SiLIFCase.side_by_side("corners_default_formats", cases)


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
# Each Icarus run costs ~15 s on a shared 2-core machine: the default set runs every case once
# (stall pattern chosen per case); the other combinations are `slow`.
DEFAULT_RUNS = {
    ("small", "idle_backpressure"),
    ("hazard", "full_rate"),
    ("narrow", "idle_backpressure"),
    ("corners_default_formats", "idle_backpressure"),
    ("corner_saturation_both_ends", "full_rate"),
}


def run(name, case, *, stalls, testcase="matches_golden", seed=0, **extra):
    idle_prob, backpressure_prob = STALLS[stalls]
    return run_cocotb(
        SiLIFCore(case.params),
        test_module="sim.tb_silif",
        build_name=f"silif/{name}-{stalls}-{testcase}",
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
    run(name, CASES[name](), stalls=stalls, seed=7)


def test_checker_catches_one_flipped_bit():
    flip = {"step": 5, "neuron": 7, "field": "w", "bit": 0}
    run("checker", CASES["small"](), stalls="idle_backpressure", testcase="checker_reports_flipped_bit", flip=flip)


def test_failure_reaches_pytest():
    """A model that disagrees with the hardware fails the pytest test with the checker's message."""
    case = CASES["small"]()
    config = case_config(case)
    config["case"]["gain_q"][0] += 1
    with pytest.raises(CocotbFailure, match=r"o_state beat \d+ \(step=\d+, neuron=0\): field 'u'"):
        run_cocotb(
            SiLIFCore(case.params),
            test_module="sim.tb_silif",
            build_name="silif/wrong_model",
            config=config,
            test_filter=r"\.matches_golden$",
        )
