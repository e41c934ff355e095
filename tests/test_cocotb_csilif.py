"""cocotb on Icarus: the generated Verilog of the C-SiLIF core against the golden model.

One build directory per configuration and stall pattern under ``build/sim/csilif/``, so
``pytest -n 2`` is safe. The testbench itself is ``sim/tb_csilif.py``.
"""

import shutil

import pytest

from golden.fixed import QFormat
from hw.cores.csilif import CSiLIFCore
from sim.runner import CocotbFailure, run_cocotb
from sim.tb_csilif import case_config, load_corner_cases, merge_cases, random_case

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) not installed")

STALLS = {"full_rate": (0.0, 0.0), "idle_backpressure": (0.3, 0.4)}
NARROW = dict(input_fmt=QFormat(4, 10), state_fmt=QFormat(4, 9), coef_fmt=QFormat(1, 15), gain_fmt=QFormat(3, 13))



def corner_groups():
    """The checked-in corner cases, those sharing formats merged into one layer (one build each),
    named by their state format."""
    groups = {}
    for case in load_corner_cases():
        key = tuple(str(getattr(case.params, f)) for f in ("input_fmt", "state_fmt", "coef_fmt", "gain_fmt"))
        groups.setdefault(key, []).append(case)
    return {
        f"corners_{key[1]}": (lambda cases=cases: merge_cases("corners", cases)) for key, cases in groups.items()
    }


CONFIGS = {
    "small": lambda: random_case(20, 12, 12),
    "hazard": lambda: random_case(21, 2, 16, shuffle=False),
    "large": lambda: random_case(22, 300, 3),
    "narrow": lambda: random_case(23, 16, 16, drive=3.0, **NARROW),
    **corner_groups(),
}
#: Runs in the default (fast) set; every other configuration/stall pair is marked slow.
FAST = {("small", "full_rate"), ("small", "idle_backpressure")} | {
    (name, "idle_backpressure") for name in CONFIGS if name != "large"
}
PAIRS = [
    pytest.param(name, stalls, marks=() if (name, stalls) in FAST else pytest.mark.slow)
    for name in CONFIGS
    for stalls in STALLS
]


def run(name, case, *, stalls, testcase="matches_golden", seed=0, emit_state=True, **extra):
    idle_prob, backpressure_prob = STALLS[stalls]
    return run_cocotb(
        CSiLIFCore(case.params, emit_state=emit_state),
        test_module="sim.tb_csilif",
        build_name=f"csilif/{name}-{stalls}-{testcase}-{'state' if emit_state else 'spikes'}",
        config=case_config(
            case, idle_prob=idle_prob, backpressure_prob=backpressure_prob, seed=seed, emit_state=emit_state, **extra
        ),
        testcase=testcase,
    )


@pytest.mark.parametrize("config,stalls", PAIRS)
def test_generated_verilog_matches_golden(config, stalls):
    run(config, CONFIGS[config](), stalls=stalls, seed=7)


@pytest.mark.slow
def test_spikes_only_core():
    run("small", CONFIGS["small"](), stalls="idle_backpressure", seed=3, emit_state=False)


def test_checker_catches_one_flipped_bit():
    flip = {"step": 5, "neuron": 7, "field": "re", "bit": 0}
    run("small", CONFIGS["small"](), stalls="idle_backpressure", testcase="checker_reports_flipped_bit", flip=flip)


def test_failure_reaches_pytest():
    """A model that disagrees with the hardware fails the pytest test with the checker's message."""
    case = CONFIGS["small"]()
    config = case_config(case)
    config["case"]["gain_q"][3] += 1
    with pytest.raises(CocotbFailure, match=r"o_state beat \d+ \(step=\d+, neuron=3\): field 're'"):
        run_cocotb(
            CSiLIFCore(case.params),
            test_module="sim.tb_csilif",
            build_name="csilif/wrong_model",
            config=config,
            testcase="matches_golden",
        )
