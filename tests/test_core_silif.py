"""SiLIF core in amaranth.sim against the bit-exact golden model (every state word and spike)."""

import numpy as np
import pytest
import torch
from amaranth.back import verilog

from golden.fixed import QFormat
from golden.silif import SiLIFParams
from hw.cores.silif import SiLIFCore
from sim.harness import STALLS, simulate_case, simulate_flipped
from sim.step_case import feed_order
from sim.tb_silif import SILIF_KIND


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


def make_case(params, currents, *, shuffle=False, seed=0):
    return SILIF_KIND.case("random", params, currents, feed_order(currents.shape[0], params.n_neurons, shuffle=shuffle, seed=seed))


@pytest.mark.parametrize(
    "n_neurons, steps, stalls, shuffle",
    [
        (16, 12, "full_rate", False),
        (16, 10, "idle_backpressure", True),  # idle cycles, backpressure, any order
        (3, 12, "backpressure", False),  # fewer neurons than hazard stages: stalls
        (13, 8, "full_rate", False),  # hazard_stages + 1: back to back, read right after write-back
        (16, 10, "idle", True),
    ],
)
def test_core_matches_golden(n_neurons, steps, stalls, shuffle):
    params = random_params(n_neurons, seed=n_neurons)
    case = make_case(params, random_currents(params, steps, seed=steps), shuffle=shuffle, seed=1)
    idle_prob, backpressure_prob = STALLS[stalls]
    simulate_case(case, idle_prob=idle_prob, backpressure_prob=backpressure_prob, seed=1)
    assert case.golden().s.any(), "test drive should make some neurons spike"


def test_core_saturates_both_ends_and_counts():
    """Narrow state format: w and u hit both rails; the counter matches the golden count."""
    fmt = QFormat(4, 10)
    params = random_params(8, seed=5, input_fmt=fmt, state_fmt=fmt, b_fmt=QFormat(2, 10, signed=False))
    case = make_case(params, random_currents(params, 12, seed=3, scale=12.0))
    simulate_case(case, seed=2, backpressure_prob=0.2)
    trace = case.golden()
    assert trace.saturation_count > 0
    assert (trace.u == fmt.max_int).any() and (trace.u == fmt.min_int).any()


def test_core_runs_one_update_per_clock_without_hazards():
    """With ready outputs and a neuron revisited right after its write-back, every cycle accepts a beat."""
    params = random_params(SiLIFCore.hazard_stages + 1, seed=3)  # 13: neuron 0 returns after its write-back
    case = make_case(params, np.full((4, params.n_neurons), 1 << 14))
    accepted = simulate_case(case).accepted_at["i_current"]
    assert accepted == list(range(len(accepted)))


def test_core_without_state_port_emits_spikes():
    params = random_params(12, seed=9)
    case = make_case(params, random_currents(params, 8, seed=4))
    simulate_case(case, core=case.core(emit_state=False), seed=3, backpressure_prob=0.3)


def test_checker_sees_a_single_bit_error():
    """The comparison can fail: flip one LSB of one state word and it is reported."""
    params = random_params(4, seed=1)
    flip = {"port": "o_state", "field": "u", "bit": 0, "step": 1, "neuron": 1}
    simulate_flipped(make_case(params, random_currents(params, 4, seed=1)), flip)


def test_core_converts_to_verilog():
    params = random_params(32, seed=0)
    text = verilog.convert(SiLIFCore(params), name="silif_core")
    assert "module silif_core" in text


def test_core_rejects_wrong_params(never_elaborated):
    with never_elaborated(), pytest.raises(TypeError, match="SiLIFParams"):
        SiLIFCore(object())
