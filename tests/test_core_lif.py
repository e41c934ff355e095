# amaranth: UnusedElaboratable=no
"""LIF core in amaranth.sim against the bit-exact golden model (every state word and spike), and
the golden model's own properties."""

import pytest
import torch

from golden.fixed import QFormat
from golden.lif import LIF, LIFParams, run_int
from sim.harness import STALLS, simulate_case, simulate_flipped
from sim.tb_lif import random_case


@pytest.mark.parametrize("n, steps, stalls, reset, shuffle", [
    (16, 10, "full_rate", None, False),           # reset by subtraction
    (16, 8, "idle_backpressure", 0.25, True),     # reset to a value, any order
    (3, 10, "backpressure", None, False),         # fewer neurons than hazard stages: stalls
    (9, 8, "full_rate", -0.5, False),             # hazard_stages + 1: read right after write-back
])
def test_core_matches_golden(n, steps, stalls, reset, shuffle):
    case = random_case(n + steps, n, steps, shuffle=shuffle, reset=reset, drive=3.0)
    case.inputs_q[2] = case.params.input_fmt.max_int  # drive v into the clamp
    idle_prob, backpressure_prob = STALLS[stalls]
    simulate_case(case, idle_prob=idle_prob, backpressure_prob=backpressure_prob, seed=n)
    trace = case.golden()
    assert trace.saturation_count > 0
    assert 0 < int(trace.s.sum()) < trace.s.numel()


def test_checker_catches_a_flipped_bit():
    flip = {"port": "o_state", "field": "u", "bit": 0, "step": 3, "neuron": 5}
    simulate_flipped(random_case(4, 8, 6), flip)


def test_core_wide_formats():
    """24-bit state and current, 18-bit coefficients: every multiply is split into partial products."""
    case = random_case(1, 6, 8, state_fmt=QFormat(6, 18), input_fmt=QFormat(6, 18), scale_fmt=QFormat(3, 15))
    simulate_case(case, backpressure_prob=0.1)


def test_golden_reset_rules():
    """Strict threshold; subtraction keeps the excess, reset to a value sets it."""
    fmt = QFormat(4, 8)
    formats = dict(input_fmt=fmt, state_fmt=fmt, coef_fmt=QFormat(0, 8, signed=False), scale_fmt=QFormat(2, 8))
    sub = LIFParams.from_float(threshold=[1.0], leak=[0.5], scale=1.0, **formats)
    to_value = LIFParams.from_float(threshold=[1.0], leak=[0.5], scale=1.0, reset=-0.25, **formats)
    x = fmt.quantize(torch.tensor([[1.0], [1.5], [0.0]]))
    t_sub, t_val = run_int(sub, x), run_int(to_value, x)
    assert t_sub.s[:, 0].tolist() == [False, True, False]  # 1.0 is not above 1.0; 0.5 + 1.5 = 2 is
    assert t_sub.u[:, 0].tolist() == [256, 256, 128]  # 2.0 - 1.0 = 1.0, then leaks to 0.5
    assert t_val.u[:, 0].tolist() == [256, -64, -32]


def test_float_module_matches_integer_model_closely():
    """The float LIF and the integer model agree up to rounding (same equations)."""
    torch.manual_seed(0)
    module = LIF(8, reset=None).double()
    currents = torch.rand(2, 30, 8, dtype=torch.float64) * 0.6
    params = LIFParams.from_module(module)
    trace = run_int(params, params.input_fmt.quantize(currents))
    float_spikes = module(currents).bool()
    assert (float_spikes == trace.s).double().mean() > 0.98
    module(currents).sum().backward()  # the surrogate gradient reaches every parameter
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
