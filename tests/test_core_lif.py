# amaranth: UnusedElaboratable=no
"""LIF core in amaranth.sim against the bit-exact golden model (every state word and spike), and
the golden model's own properties."""

import numpy as np
import pytest
import torch
from amaranth.sim import Simulator

from golden.fixed import QFormat
from golden.lif import LIF, LIFParams, run_int
from hw.cores.lif import LIFCore
from sim.stream import SimStreamSink, SimStreamSource


def random_params(n: int, seed: int, reset=None, **formats) -> LIFParams:
    rng = np.random.default_rng(seed)
    return LIFParams.from_float(threshold=rng.uniform(0.2, 1.5, n), leak=rng.uniform(0.0, 0.999, n),
                                scale=rng.uniform(-1.0, 1.9, n), reset=reset, **formats)


def random_currents(params: LIFParams, steps: int, seed: int, scale: float = 2.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    raw = torch.randn(steps, params.n_neurons, generator=gen, dtype=torch.float64) * scale / params.input_fmt.lsb
    return raw.round().to(torch.int64).clamp(params.input_fmt.min_int, params.input_fmt.max_int)


def simulate(params, currents, *, idle=0.0, backpressure=0.0, seed=0):
    """Every neuron once per step, in order, with idle input cycles and backpressure on both
    outputs; returns ``(state beats, spike beats, saturation_count)``."""
    dut = LIFCore(params)
    steps, n = currents.shape
    beats = [{"neuron": i, "current": int(currents[t, i])} for t in range(steps) for i in range(n)]
    source = SimStreamSource(dut.i_current, beats, idle_prob=idle, seed=seed)
    states = SimStreamSink(dut.o_state, backpressure_prob=backpressure, seed=seed + 1)
    spikes = SimStreamSink(dut.o_spike, backpressure_prob=backpressure, seed=seed + 2)
    final = {}

    async def finish(ctx):
        while len(states.beats) < len(beats):
            await ctx.tick()
        for _ in range(2 * dut.latency):  # spike beats may still wait on backpressure
            await ctx.tick()
        final["saturation"] = ctx.get(dut.saturation_count)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source.run)
    sim.add_testbench(finish)
    sim.add_testbench(states.run, background=True)
    sim.add_testbench(spikes.run, background=True)
    sim.run()
    return states.beats, spikes.beats, final["saturation"]


@pytest.mark.parametrize("n, steps, idle, backpressure, reset", [
    (16, 10, 0.0, 0.0, None),    # full rate, reset by subtraction
    (16, 8, 0.3, 0.3, 0.25),     # idle cycles and backpressure, reset to a value
    (3, 10, 0.0, 0.2, None),     # fewer neurons than hazard stages: stalls
    (9, 8, 0.0, 0.0, -0.5),      # hazard_stages + 1: read right after write-back
])
def test_core_matches_golden(n, steps, idle, backpressure, reset):
    params = random_params(n, seed=n + steps, reset=reset)
    currents = random_currents(params, steps, seed=n)
    currents[2] = params.input_fmt.max_int  # drive v into the clamp
    trace = run_int(params, currents)
    states, spikes, saturation = simulate(params, currents, idle=idle, backpressure=backpressure, seed=n)
    got = [(b["neuron"], b["u"], b["spike"], b["saturated"]) for b in states]
    want = [(i, int(trace.u[t, i]), int(trace.s[t, i]), int(trace.saturated[t, i]))
            for t in range(steps) for i in range(n)]
    assert got == want
    assert [b["neuron"] for b in spikes] == [i for t in range(steps) for i in range(n) if trace.s[t, i]]
    assert saturation == trace.saturation_count > 0
    assert 0 < int(trace.s.sum()) < trace.s.numel()


def test_core_wide_formats():
    """24-bit state and current, 18-bit coefficients: every multiply is split into partial products."""
    params = random_params(6, seed=1, state_fmt=QFormat(6, 18), input_fmt=QFormat(6, 18), scale_fmt=QFormat(3, 15))
    currents = random_currents(params, 8, seed=3)
    trace = run_int(params, currents)
    states, _, _ = simulate(params, currents, backpressure=0.1)
    assert [b["u"] for b in states] == [int(trace.u[t, i]) for t in range(8) for i in range(6)]


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
