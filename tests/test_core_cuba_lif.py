# amaranth: UnusedElaboratable=no
"""CubaLIF and IF cores in amaranth.sim against their bit-exact golden models (every state word
and spike), and the golden models' own properties."""

import numpy as np
import pytest
import torch

from golden.cuba_lif import CubaLIF, CubaLIFParams, run_int as run_cuba
from golden.fixed import QFormat
from golden.integrate_fire import IF, IFParams
from golden.lif import run_int as run_lif
from hw.cores.cuba_lif import CubaLIFCore
from test_core_lif import random_currents, simulate


def random_cuba(n: int, seed: int, reset=None, **formats) -> CubaLIFParams:
    rng = np.random.default_rng(seed)
    return CubaLIFParams.from_float(threshold=rng.uniform(0.2, 1.5, n), leak=rng.uniform(0.0, 0.999, n),
                                    syn=rng.uniform(0.0, 0.999, n), scale=rng.uniform(-1.0, 1.9, n), reset=reset,
                                    **formats)


@pytest.mark.parametrize("n, steps, idle, backpressure, reset", [
    (16, 10, 0.0, 0.0, None),    # full rate, reset by subtraction
    (16, 8, 0.3, 0.3, 0.25),     # idle cycles and backpressure, reset to a value
    (5, 8, 0.0, 0.2, None),      # fewer neurons than hazard stages: stalls
    (13, 6, 0.0, 0.0, -0.5),     # hazard_stages + 1: read right after write-back
])
def test_cuba_core_matches_golden(n, steps, idle, backpressure, reset):
    params = random_cuba(n, seed=n + steps, reset=reset)
    currents = random_currents(params, steps, seed=n)
    currents[2] = params.input_fmt.max_int  # drive i and v into the clamp
    trace = run_cuba(params, currents)
    states, spikes, saturation = simulate(params, currents, idle=idle, backpressure=backpressure, seed=n,
                                          core_class=CubaLIFCore)
    got = [(b["neuron"], b["i"], b["u"], b["spike"], b["saturated"]) for b in states]
    want = [(i, int(trace.i[t, i]), int(trace.u[t, i]), int(trace.s[t, i]), int(trace.saturated[t, i]))
            for t in range(steps) for i in range(n)]
    assert got == want
    assert [b["neuron"] for b in spikes] == [i for t in range(steps) for i in range(n) if trace.s[t, i]]
    assert saturation == trace.saturation_count > 0
    assert 0 < int(trace.s.sum()) < trace.s.numel()


def test_if_core_is_the_lif_core_with_leak_one():
    """The IF kind runs on the LIF core; with the leak one the membrane only integrates."""
    rng = np.random.default_rng(2)
    params = IFParams.from_float(threshold=rng.uniform(0.5, 2.0, 10), scale=rng.uniform(-0.5, 1.0, 10), reset=0.0)
    currents = random_currents(params, 9, seed=4, scale=0.5)
    trace = run_lif(params, currents)
    states, _, _ = simulate(params, currents, backpressure=0.2)
    assert [b["u"] for b in states] == [int(trace.u[t, i]) for t in range(9) for i in range(10)]
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
