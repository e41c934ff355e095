"""cocotb on Icarus: the generated Verilog of the refractory LIF core against the golden model.

One simulator run per configuration, each under ``build/sim/refractory_lif/<config>/`` (so
``pytest -n 2`` is safe). Inside a run the cocotb tests apply the stimulus once per stall
pattern of :data:`STALLS` (full rate, idle cycles on the input, backpressure on both outputs,
both) as one continuing sequence. The testbench is ``sim/tb_refractory_lif.py``.
"""

import shutil

import numpy as np
import pytest

from hw.cores.refractory_lif import RefractoryLIFCore
from sim.refractory_lif_model import (
    NARROW_FORMATS,
    load_corner_vectors,
    params_to_json,
    random_currents,
    random_params,
)
from sim.runner import CocotbFailure, run_cocotb

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) not installed")

#: name -> (idle probability on i_current, backpressure probability on o_spike and o_state)
STALLS = {"full_rate": (0.0, 0.0), "idle": (0.3, 0.0), "backpressure": (0.0, 0.4), "idle_backpressure": (0.3, 0.4)}


def random_config(n_neurons, n_steps, seed, formats=None, spread=2.0):
    params = random_params(n_neurons, seed, **(formats or {}))
    return params, random_currents(params, n_steps, seed + 1, spread=spread), True


CONFIGS = {
    "small": lambda: random_config(12, 12, seed=20),
    "large": lambda: random_config(1024, 2, seed=21),
    "narrow": lambda: random_config(16, 16, seed=22, formats=NARROW_FORMATS, spread=4.0),
    **{
        f"corner_{case['name']}": (lambda case=case: (case["params"], case["currents_q"], False))
        for case in load_corner_vectors()
    },
}


def make_config(params, currents, shuffle, **extra):
    return {
        "params": params_to_json(params),
        "currents_q": np.asarray(currents).tolist(),
        "shuffle": shuffle,
        "seed": 7,
        "stalls": STALLS,
        **extra,
    }


@pytest.mark.parametrize("name", list(CONFIGS))
def test_generated_verilog_matches_golden(name):
    params, currents, shuffle = CONFIGS[name]()
    # The small configuration also proves the checker fails on one flipped golden bit.
    extra = {"flip": {"step": 5, "neuron": 7, "field": "refr", "bit": 0}} if name == "small" else {}
    run_cocotb(
        RefractoryLIFCore(params),
        test_module="sim.tb_refractory_lif",
        build_name=f"refractory_lif/{name}",
        config=make_config(params, currents, shuffle, **extra),
    )


@pytest.mark.parametrize("under_pytest", [True, False], ids=["under_pytest", "from_a_script"])
def test_mismatch_fails_pytest_with_location(under_pytest, monkeypatch):
    """A model that disagrees with the hardware raises the checker's message, also when
    ``run_cocotb`` is called from a script (cocotb_tools then does not exit on failure)."""
    if not under_pytest:
        monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)
    params, currents, shuffle = random_config(3, 3, seed=30)
    config = make_config(params, currents, shuffle)
    config["params"]["tau_q"] += 4096  # the model decays 1/64 faster than the hardware
    with pytest.raises(CocotbFailure, match=r"o_state beat \d+ \(step=\d+, neuron=\d+\): field 'v'"):
        run_cocotb(
            RefractoryLIFCore(params),
            test_module="sim.tb_refractory_lif",
            build_name=f"refractory_lif/wrong_model_{under_pytest}",
            config=config,
            test_filter=r"matches_golden/stalls=full_rate$",
        )
