"""SiLIF core in amaranth.sim against the bit-exact golden model (every state word and spike)."""

import gc
import random
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from amaranth.back import verilog
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator

from golden.fixed import QFormat
from golden.silif import SiLIFParams, run_int
from hw.cores.silif import SiLIFCore


def random_params(n_neurons: int, seed: int, **formats) -> SiLIFParams:
    """Coefficients spread over the whole trained range, b up to 2, a over [0, 1]."""
    rng = np.random.default_rng(seed)
    alpha = rng.uniform(0.0, 0.999, n_neurons)
    beta = rng.uniform(0.9, 1.0, n_neurons)
    return SiLIFParams.from_float(
        alpha, beta, rng.uniform(0, 1, n_neurons), rng.uniform(0, 2, n_neurons), **formats
    )


def random_currents(params: SiLIFParams, steps: int, seed: int, scale: float = 3.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    lsb = params.input_fmt.lsb
    raw = torch.randn(steps, params.n_neurons, generator=gen, dtype=torch.float64) * scale / lsb
    return raw.round().to(torch.int64).clamp(params.input_fmt.min_int, params.input_fmt.max_int)


def simulate(params, currents, *, seed=0, idle=0.0, backpressure=0.0, shuffle=False, emit_state=True):
    """Drive ``currents`` (T, N) through the core; returns (state beats, spike beats, saturation_count).

    Each step presents every neuron once (in a random order when ``shuffle``), with random idle
    cycles on the input and random backpressure on both outputs.
    """
    dut = SiLIFCore(params, emit_state=emit_state)
    rng = random.Random(seed)
    steps, n_neurons = currents.shape
    order = []
    for t in range(steps):
        neurons = list(range(n_neurons))
        if shuffle:
            rng.shuffle(neurons)
        order += [(t, n) for n in neurons]
    states, spikes = [], []
    expected_beats = len(order)

    async def producer(ctx):
        for t, n in order:
            while rng.random() < idle:
                await ctx.tick()
            ctx.set(dut.i_current.payload, {"neuron": n, "current": int(currents[t, n])})
            ctx.set(dut.i_current.valid, 1)
            await ctx.tick().until(dut.i_current.ready)
            ctx.set(dut.i_current.valid, 0)

    def consumer(port, sink):
        async def run(ctx):
            while True:
                ready = rng.random() >= backpressure
                ctx.set(port.ready, ready)
                _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
                if ready and valid:
                    sink.append(payload)

        return run

    saturation = []

    async def finish(ctx):
        # The counter is updated when a beat enters the output register, before it is offered.
        if emit_state:
            while len(states) < expected_beats:
                await ctx.tick()
        else:
            await ctx.tick().repeat(expected_beats * 4 + 10 * dut.latency)
        saturation.append(ctx.get(dut.saturation_count))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(finish)
    if emit_state:
        sim.add_testbench(consumer(dut.o_state, states), background=True)
    sim.add_testbench(consumer(dut.o_spike, spikes), background=True)
    sim.run()
    return order, states, spikes, saturation[0]


def check_against_golden(params, currents, order, states, spikes, saturation_count):
    trace = run_int(params, currents)
    assert len(states) == len(order)
    mismatches = []
    for (t, n), beat in zip(order, states):
        got = (beat.neuron, beat.u, beat.w, beat.spike, beat.saturated)
        want = (n, int(trace.u[t, n]), int(trace.w[t, n]), int(trace.s[t, n]), int(trace.saturated[t, n]))
        if got != want:
            mismatches.append((t, n, got, want))
    assert not mismatches, f"{len(mismatches)} mismatching updates, first {mismatches[:3]}"
    expected_spikes = [n for t, n in order if trace.s[t, n]]
    assert [beat.neuron for beat in spikes] == expected_spikes
    assert saturation_count == trace.saturation_count
    return trace


@pytest.mark.parametrize(
    "n_neurons, steps, idle, backpressure, shuffle",
    [
        (16, 12, 0.0, 0.0, False),  # full rate
        (16, 10, 0.3, 0.3, True),  # idle cycles, backpressure, any order
        (3, 12, 0.0, 0.2, False),  # fewer neurons than hazard stages: stalls
        (13, 8, 0.0, 0.0, False),  # hazard_stages + 1: back to back, read right after write-back
    ],
)
def test_core_matches_golden(n_neurons, steps, idle, backpressure, shuffle):
    params = random_params(n_neurons, seed=n_neurons)
    currents = random_currents(params, steps, seed=steps)
    order, states, spikes, sat = simulate(params, currents, seed=1, idle=idle, backpressure=backpressure, shuffle=shuffle)
    trace = check_against_golden(params, currents, order, states, spikes, sat)
    assert trace.s.any(), "test drive should make some neurons spike"


def test_core_saturates_both_ends_and_counts():
    """Narrow state format: w and u hit both rails; the counter matches the golden count."""
    fmt = QFormat(4, 10)
    params = random_params(8, seed=5, input_fmt=fmt, state_fmt=fmt, b_fmt=QFormat(2, 10, signed=False))
    currents = random_currents(params, 12, seed=3, scale=12.0)
    order, states, spikes, sat = simulate(params, currents, seed=2, backpressure=0.2)
    trace = check_against_golden(params, currents, order, states, spikes, sat)
    assert trace.saturation_count > 0
    assert (trace.u == fmt.max_int).any() and (trace.u == fmt.min_int).any()


def test_core_runs_one_update_per_clock_without_hazards():
    """With ready outputs and a neuron revisited right after its write-back, every cycle accepts a beat."""
    params = random_params(SiLIFCore.hazard_stages + 1, seed=3)  # 13: neuron 0 returns after its write-back
    dut = SiLIFCore(params)
    accepted = []

    async def bench(ctx):
        ctx.set(dut.o_state.ready, 1)
        ctx.set(dut.o_spike.ready, 1)
        for beat in range(4 * params.n_neurons):
            ctx.set(dut.i_current.payload, {"neuron": beat % params.n_neurons, "current": 1 << 14})
            ctx.set(dut.i_current.valid, 1)
            _, _, ready = await ctx.tick().sample(dut.i_current.ready)
            accepted.append(ready)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert all(accepted)


def test_core_without_state_port_emits_spikes():
    params = random_params(12, seed=9)
    currents = random_currents(params, 8, seed=4)
    order, _, spikes, _ = simulate(params, currents, seed=3, emit_state=False, backpressure=0.3)
    trace = run_int(params, currents)
    assert [beat.neuron for beat in spikes] == [n for t, n in order if trace.s[t, n]]


def test_checker_sees_a_single_bit_error():
    """The comparison can fail: flip one LSB of one state word and it is reported."""
    params = random_params(4, seed=1)
    currents = random_currents(params, 4, seed=1)
    order, states, spikes, sat = simulate(params, currents)
    beat = states[5]
    states[5] = SimpleNamespace(neuron=beat.neuron, u=beat.u ^ 1, w=beat.w, spike=beat.spike, saturated=beat.saturated)
    with pytest.raises(AssertionError, match="1 mismatching"):
        check_against_golden(params, currents, order, states, spikes, sat)


def test_core_converts_to_verilog():
    params = random_params(32, seed=0)
    text = verilog.convert(SiLIFCore(params), name="silif_core")
    assert "module silif_core" in text


def test_core_rejects_wrong_params():
    with warnings.catch_warnings():
        # The half-built component is never elaborated; that is the point.
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="SiLIFParams"):
            SiLIFCore(object())
        gc.collect()
