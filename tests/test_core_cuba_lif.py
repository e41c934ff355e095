# amaranth: UnusedElaboratable=no
"""CubaLIF and IF cores in amaranth.sim against their bit-exact golden models (every state word
and spike), and the golden models' own properties."""

import pytest
import torch

from golden.cuba_lif import CubaLIF, CubaLIFParams, run_int as run_cuba
from golden.fixed import QFormat
from golden.integrate_fire import IF, IFParams
from golden.lif import run_int as run_lif
from sim.harness import STALLS, simulate_case, simulate_flipped
from sim.tb_lif import CUBA_LIF_KIND, IF_KIND, random_case


@pytest.mark.parametrize("n, steps, stalls, reset, shuffle", [
    (16, 10, "full_rate", None, False),           # reset by subtraction
    (16, 8, "idle_backpressure", 0.25, True),     # reset to a value, any order
    (5, 8, "backpressure", None, False),          # fewer neurons than hazard stages: stalls
    (13, 6, "full_rate", -0.5, False),            # hazard_stages + 1: read right after write-back
])
def test_cuba_core_matches_golden(n, steps, stalls, reset, shuffle):
    case = random_case(n + steps, n, steps, kind=CUBA_LIF_KIND, shuffle=shuffle, reset=reset, drive=3.0)
    case.inputs_q[2] = case.params.input_fmt.max_int  # drive i and v into the clamp
    idle_prob, backpressure_prob = STALLS[stalls]
    simulate_case(case, idle_prob=idle_prob, backpressure_prob=backpressure_prob, seed=n)
    trace = case.golden()
    assert trace.saturation_count > 0
    assert 0 < int(trace.s.sum()) < trace.s.numel()


def test_cuba_checker_catches_a_flipped_bit():
    flip = {"port": "o_state", "field": "i", "bit": 0, "step": 3, "neuron": 5}
    simulate_flipped(random_case(4, 8, 6, kind=CUBA_LIF_KIND), flip)


def test_if_core_is_the_lif_core_with_leak_one():
    """The IF kind runs on the LIF core; with the leak one the membrane only integrates."""
    case = random_case(2, 10, 9, kind=IF_KIND, reset=0.0, drive=0.5, shuffle=False)
    simulate_case(case, backpressure_prob=0.2)
    params, currents, trace = case.params, torch.as_tensor(case.inputs_q), case.golden()
    # No leak: without a spike, u is the running sum of the rounded scaled inputs.
    scaled = torch.floor(torch.as_tensor(params.scale_q) * currents.double() / 2**16 + 0.5).to(torch.int64)
    silent = ~trace.s.any(dim=0)
    assert silent.any()
    assert trace.u[:, silent].equal(scaled[:, silent].cumsum(dim=0))


def test_if_params_refuse_a_leak():
    params = IFParams.from_float(threshold=[1.0])
    with pytest.raises(ValueError, match="leak_q is one"):
        IFParams(params.threshold_q, params.leak_q - 1, params.scale_q)


def test_cuba_golden_order():
    """The membrane integrates the NEW current; reset to a value; strict threshold."""
    fmt = QFormat(4, 8)
    formats = dict(input_fmt=fmt, state_fmt=fmt, coef_fmt=QFormat(0, 8, signed=False), scale_fmt=QFormat(2, 8))
    params = CubaLIFParams.from_float(threshold=[1.0], leak=[0.5], syn=[0.5], reset=0.0, **formats)
    x = fmt.quantize(torch.tensor([[1.0], [0.5], [0.0]]))
    trace = run_cuba(params, x)
    assert trace.i[:, 0].tolist() == [256, 256, 128]       # 1, 0.5 + 0.5, 0.5
    assert trace.s[:, 0].tolist() == [False, True, False]  # v = 1 (not above), 0.5 + 1 = 1.5
    assert trace.u[:, 0].tolist() == [256, 0, 128]


@pytest.mark.parametrize("module_class, params_class, runner", [(CubaLIF, CubaLIFParams, run_cuba),
                                                                (IF, IFParams, run_lif)])
def test_float_module_matches_integer_model_closely(module_class, params_class, runner):
    torch.manual_seed(0)
    module = module_class(8, reset=None).double()
    currents = torch.rand(2, 30, 8, dtype=torch.float64) * 0.3
    params = params_class.from_module(module)
    trace = runner(params, params.input_fmt.quantize(currents))
    assert (module(currents).bool() == trace.s).double().mean() > 0.98
    module(currents).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
