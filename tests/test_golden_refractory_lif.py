"""Golden refractory LIF (D7, D8): PMBC against the sequential models, float against integer.

Tiers (as in hls4ml): integer PMBC == integer sequential exactly, in every state; float PMBC
== float sequential spike for spike; float vs integer within a derived number of LSB.
"""

import numpy as np
import pytest
import torch

import golden.refractory_lif as rlif
from golden.fixed import QFormat
from golden.refractory_lif import (
    RefractoryLIF,
    RefractoryLIFParams,
    RefractoryLIFTrace,
    decay_scan,
    pmbc_spikes,
    run_int,
    run_int_pmbc,
    run_int_spikes,
)

TRACE_FIELDS = ("v", "refr", "u", "s", "saturated")
NARROW = {name: QFormat.parse("sQ3.8") for name in ("input_fmt", "state_fmt", "refr_fmt", "threshold_fmt")}


def random_params(n, seed, **formats):
    rng = np.random.default_rng(seed)
    return RefractoryLIFParams.from_float(rng.uniform(0.6, 1.4, n), rng.uniform(0.2, 0.8, n), **formats)


def random_currents(params, shape, seed, scale=1.0, mean=0.3):
    gen = torch.Generator().manual_seed(seed)
    return params.input_fmt.quantize(torch.randn(shape, generator=gen, dtype=torch.float64) * scale + mean)


def assert_same_trace(pmbc, sequential):
    for name in TRACE_FIELDS:
        a, b = getattr(pmbc, name), getattr(sequential, name)
        assert a.shape == b.shape and torch.equal(a, b), f"{name} differs at {(a != b).nonzero()[:5].tolist()}"


# --- parameters ---------------------------------------------------------------------------------
def test_default_decays_are_quantised_as_documented():
    params = RefractoryLIFParams.from_float([1.0], [0.5])
    assert (params.tau_q, params.tau_r_q) == (26214, 235930)
    assert params.tau == 26214 / 2**18 and params.tau_r == 235930 / 2**18
    assert (params.v_th_q[0], params.u_th_q[0]) == (65536, 32768)


def test_to_params_exports_the_trained_values():
    model = RefractoryLIF(3)
    with torch.no_grad():
        model.v_th.copy_(torch.tensor([1.0, 0.75, 2.0]))
    params = model.to_params()
    assert params.v_th_q.tolist() == [65536, 49152, 131072] and params.u_th_q.tolist() == [32768] * 3
    assert (params.tau_q, params.tau_r_q) == (26214, 235930)
    narrow = model.to_params(**NARROW)
    assert narrow.state_fmt == QFormat.parse("sQ3.8") and narrow.v_th_q.tolist() == [256, 192, 512]


# --- parallel scan ------------------------------------------------------------------------------
@pytest.mark.parametrize("decay", [0.0, 0.1, 0.9, 0.999])
@pytest.mark.parametrize("length", [1, 63, 64, 65, 4097])
def test_decay_scan_matches_the_loop(decay, length):
    x = torch.randn(3, length, dtype=torch.float64, generator=torch.Generator().manual_seed(length))
    expected, acc = torch.empty_like(x), torch.zeros(3, dtype=torch.float64)
    for t in range(length):
        acc = decay * acc + x[:, t]
        expected[:, t] = acc
    got = decay_scan(x, decay)
    assert torch.allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert torch.equal(got[:, 0], x[:, 0])  # the first step is exact


# --- integer PMBC == integer sequential, every state ------------------------------------------------
@pytest.mark.parametrize(
    "shape, scale, mean",
    [((3, 1, 5), 1.0, 0.3), ((2, 17, 4), 1.0, 0.3), ((4, 1000, 8), 1.0, 0.5), ((2, 1000, 6), 3.0, 0.0),
     ((1, 8192, 4), 1.0, 0.3)],
)
def test_int_pmbc_equals_sequential(shape, scale, mean):
    params = random_params(shape[-1], seed=shape[1])
    currents = random_currents(params, shape, seed=sum(shape), scale=scale, mean=mean)
    sequential = run_int(params, currents)
    result = run_int_pmbc(params, currents)
    assert_same_trace(result.trace, sequential)
    assert torch.equal(result.spikes, sequential.s)
    assert 1 <= result.pmbc_sweeps <= shape[1] and 1 <= result.relax_sweeps <= shape[1] + 1
    assert sequential.s.any() and not sequential.s.all()


def test_trace_checker_reports_one_flipped_bit():
    params = random_params(3, seed=8)
    currents = random_currents(params, (2, 50, 3), seed=8)
    sequential = run_int(params, currents)
    assert_same_trace(run_int_pmbc(params, currents).trace, sequential)
    for name in TRACE_FIELDS:
        perturbed = RefractoryLIFTrace(**{n: getattr(sequential, n).clone() for n in TRACE_FIELDS})
        field = getattr(perturbed, name)
        field[1, 37, 2] ^= True if field.dtype == torch.bool else 1
        with pytest.raises(AssertionError, match=name):
            assert_same_trace(perturbed, sequential)


def test_int_pmbc_spikes_only_and_run_int_spikes():
    params = random_params(5, seed=3)
    currents = random_currents(params, (2, 3, 700, 5), seed=3)  # two leading batch dims
    sequential = run_int(params, currents)
    result = run_int_pmbc(params, currents.to(torch.int32), spikes_only=True)
    assert result.trace is None and torch.equal(result.spikes, sequential.s)
    assert torch.equal(run_int_spikes(params, currents.to(torch.int32)), sequential.s)


def test_int_pmbc_across_channel_chunks(monkeypatch):
    monkeypatch.setattr(rlif, "_CHUNK_ELEMENTS", 2 * 300 * 2)  # two channels per chunk
    params = random_params(7, seed=11)
    currents = random_currents(params, (2, 300, 7), seed=11)
    assert_same_trace(run_int_pmbc(params, currents).trace, run_int(params, currents))


def test_relaxation_is_exact_from_any_guess_and_its_check_can_fail():
    """Jacobi needs no good guess (only speed depends on it); stopping it early trips the check."""
    params = random_params(4, seed=5)
    currents = random_currents(params, (8, 200, 4), seed=5)
    rows = rlif._to_rows(currents)
    vth, uth = torch.as_tensor(params.v_th_q).repeat(8), torch.as_tensor(params.u_th_q).repeat(8)
    gen = torch.Generator().manual_seed(0)
    garbage = (torch.randint(-50000, 50000, rows.shape, generator=gen),
               torch.randint(0, 50000, rows.shape, generator=gen),
               torch.randint(0, 2, rows.shape, generator=gen).bool())
    u, refr, s, v, sat, sweeps, _ = rlif._relax_rows(params, rows, vth, uth, *garbage)
    expected = run_int(params, currents)
    assert torch.equal(rlif._from_rows(u, 8), expected.u) and torch.equal(rlif._from_rows(s, 8), expected.s)
    assert torch.equal(rlif._from_rows(refr, 8), expected.refr) and torch.equal(rlif._from_rows(v, 8), expected.v)
    assert sweeps <= 201
    with pytest.raises(RuntimeError, match="verification"):
        rlif._relax_rows(params, rows, vth, uth, *garbage, max_sweeps=2)


# --- hand-made corner cases ----------------------------------------------------------------------
def test_fires_at_equality_after_silence():
    params = random_params(2, seed=1)
    currents = torch.zeros(1, 6000, 2, dtype=torch.int64)
    currents[0, 0, 0] = params.v_th_q[0]  # v - R - v_th == 0 at t = 0: fires (D7)
    currents[0, 0, 1] = params.v_th_q[1] - 1  # one LSB short: silent
    currents[0, 5000, 1] = params.v_th_q[1]  # after a long silence: fires
    sequential = run_int(params, currents)
    assert sequential.s.nonzero().tolist() == [[0, 0, 0], [0, 5000, 1]]
    assert_same_trace(run_int_pmbc(params, currents).trace, sequential)
    # the refractory pulse never decays below 5 LSB: round(0.9 R) == R for R <= 5 (half up)
    assert sequential.refr[0, -1, 0] == 5


def test_float_fires_at_equality_in_both_modes():
    model = RefractoryLIF(2).double()
    current = torch.zeros(1, 6000, 2, dtype=torch.float64)
    current[0, 0, 0] = 1.0
    current[0, 0, 1] = 1.0 - 2.0**-40
    current[0, 5000, 1] = 1.0
    for mode in ("sequential", "pmbc"):
        assert model(current, mode).nonzero().tolist() == [[0, 0, 0], [0, 5000, 1]], mode


def test_long_silences_between_bursts():
    params = random_params(3, seed=2)
    currents = random_currents(params, (2, 4000, 3), seed=2, scale=2.0, mean=0.5)
    currents[:, 200:1800] = 0
    currents[:, 2500:3900] = 0
    assert_same_trace(run_int_pmbc(params, currents).trace, run_int(params, currents))


@pytest.mark.parametrize("sign", [1, -1])
def test_saturation_of_v_u_and_refr_at_both_ends(sign):
    """sQ3.8 holds [-4, 4): drive v, u and R into both clamps and compare every state."""
    fmt = NARROW["state_fmt"]
    params = RefractoryLIFParams(
        v_th_q=[13, 256, 900], u_th_q=[sign * 1000, sign * 64, sign * 1023], tau_q=26214, tau_r_q=235930, **NARROW
    )
    gen = torch.Generator().manual_seed(4)
    currents = torch.randint(fmt.min_int, fmt.max_int + 1, (3, 600, 3), generator=gen)
    currents[:, 100:150] = fmt.max_int  # v clamps high
    currents[:, 300:350] = fmt.min_int  # v and u clamp low
    sequential = run_int(params, currents)
    assert_same_trace(run_int_pmbc(params, currents).trace, sequential)
    assert sequential.saturated.any()
    assert (sequential.v == fmt.max_int).any() and (sequential.v == fmt.min_int).any()
    assert (sequential.u == fmt.min_int).any()
    refr_edge = fmt.max_int if sign > 0 else fmt.min_int
    assert (sequential.refr == refr_edge).any()


# --- float PMBC == float sequential ----------------------------------------------------------------
@pytest.mark.parametrize("shape, scale, mean", [((2, 1, 3), 1.0, 0.3), ((3, 1000, 5), 1.0, 0.5),
                                                ((2, 3000, 4), 2.0, 0.0), ((1, 8192, 4), 1.0, 0.3)])
def test_float_pmbc_equals_sequential(shape, scale, mean):
    model = RefractoryLIF(shape[-1], v_th_init=0.9, u_th_init=0.4).double()
    with torch.no_grad():
        model.v_th.mul_(torch.linspace(0.8, 1.2, shape[-1], dtype=torch.float64))
    gen = torch.Generator().manual_seed(shape[1])
    current = torch.randn(shape, generator=gen, dtype=torch.float64) * scale + mean
    with torch.no_grad():
        seq, seq_states = model(current, "sequential", return_states=True)
        par, par_states = model(current, "pmbc", return_states=True)
    assert torch.equal(seq, par)
    assert 1 <= model.last_pmbc_sweeps <= shape[1]
    for name in ("v", "refr", "u"):
        assert torch.allclose(seq_states[name], par_states[name], rtol=0, atol=1e-9), name


def test_float_pmbc_across_channel_chunks(monkeypatch):
    monkeypatch.setattr(rlif, "_CHUNK_ELEMENTS", 2 * 3 * 300)
    current = torch.randn(3, 300, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(9)) + 0.4
    model = RefractoryLIF(7).double()
    spikes, sweeps = pmbc_spikes(current, model.v_th.detach(), model.u_th.detach(), 0.1, 0.9)
    with torch.no_grad():
        assert torch.equal(spikes.double(), model(current, "sequential"))


# --- float vs integer ------------------------------------------------------------------------------
@pytest.mark.parametrize("quantised_input", [True, False])
def test_float_and_integer_agree_within_the_rounding_bound(quantised_input):
    """Before a neuron's first spike divergence and without saturation, each rounding adds at
    most 1/2 LSB and the error then decays by the state's own decay, so

        |u_float - u_int| <= 0.5 / (1 - tau) LSB        (0.556 LSB for tau_q = 26214 / 2**18)
        |R_float - R_int| <= 0.5 / (1 - tau_r) LSB      (5.0001 LSB for tau_r_q = 235930 / 2**18)

    with the float model given the exactly quantised coefficients. An unquantised float input
    adds its own 1/2 LSB per step to u and v: 1.0 / (1 - tau).
    """
    params = random_params(6, seed=21)
    lsb = params.state_fmt.lsb
    model = RefractoryLIF(6, tau=params.tau, tau_r=params.tau_r).double()
    with torch.no_grad():
        model.v_th.copy_(torch.as_tensor(params.v_th_q * lsb))
        model.u_th.copy_(torch.as_tensor(params.u_th_q * lsb))
    gen = torch.Generator().manual_seed(21)
    current = torch.randn(4, 3000, 6, generator=gen, dtype=torch.float64) + 0.3
    currents_q = params.input_fmt.quantize(current)
    if quantised_input:
        current = currents_q.double() * lsb
    with torch.no_grad():
        spikes, states = model(current, "sequential", return_states=True)
    trace = run_int(params, currents_q)
    assert not trace.saturated.any()
    diverged = (spikes.bool() != trace.s).cumsum(dim=1) > 0
    agree = ~diverged
    assert agree.float().mean() > 0.05  # enough steps are compared
    input_term = 0.0 if quantised_input else 0.5
    bound_u = (0.5 + input_term) / (1 - params.tau) + 1e-6
    bound_r = 0.5 / (1 - params.tau_r) + 1e-6
    err_u = (states["u"] / lsb - trace.u)[agree].abs().max()
    err_v = (states["v"] / lsb - trace.v)[agree].abs().max()
    err_r = (states["refr"] / lsb - trace.refr)[agree].abs().max()
    assert err_u <= bound_u and err_v <= bound_u and err_r <= bound_r, (err_u, err_v, err_r)


# --- gradients -------------------------------------------------------------------------------------
def test_surrogate_is_piecewise_quadratic_alpha_one():
    model = RefractoryLIF(4).double()
    current = torch.tensor([[[1.3, 0.5, 2.5, 1.0]]], dtype=torch.float64, requires_grad=True)  # x = I - 1
    for mode in ("sequential", "pmbc"):
        current.grad = None
        spikes = model(current, mode)
        assert spikes.tolist() == [[[1.0, 0.0, 1.0, 1.0]]]
        spikes.sum().backward()
        assert torch.allclose(current.grad, torch.tensor([[[0.7, 0.5, 0.0, 1.0]]], dtype=torch.float64))


@pytest.mark.parametrize("mode", ["sequential", "pmbc"])
def test_gradients_reach_thresholds_and_input(mode):
    model = RefractoryLIF(5)
    current = (torch.randn(2, 300, 5, generator=torch.Generator().manual_seed(2)) + 0.5).requires_grad_()
    weights = torch.linspace(-1.0, 2.0, 300)[None, :, None]
    spikes = model(current, mode)
    assert spikes.dtype == current.dtype
    (spikes * weights).sum().backward()
    for grad in (model.v_th.grad, model.u_th.grad, current.grad):
        assert grad is not None and torch.isfinite(grad).all() and (grad != 0).any()


# --- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [({"n_channels": 0}, "n_channels"), ({"n_channels": 2, "tau": 1.0}, "tau"),
     ({"n_channels": 2, "tau_r": -0.1}, "tau_r"), ({"n_channels": 2, "v_th_init": 0.0}, "v_th_init"),
     ({"n_channels": 2, "u_th_init": -1.0}, "u_th_init")],
)
def test_bad_module_params_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RefractoryLIF(**kwargs)


def test_bad_calls_raise():
    model = RefractoryLIF(3)
    with pytest.raises(ValueError, match="mode"):
        model(torch.zeros(1, 4, 3), "parallel")
    with pytest.raises(ValueError, match="shape"):
        model(torch.zeros(1, 4, 2))
    with pytest.raises(ValueError, match="floating"):
        model(torch.zeros(1, 4, 3, dtype=torch.int64))
    with torch.no_grad():
        model.v_th.fill_(300.0)
    with pytest.raises(ValueError, match="widen threshold_fmt"):
        model.to_params()
    params = random_params(3, seed=0)
    with pytest.raises(ValueError, match="shape"):
        run_int_pmbc(params, torch.zeros(1, 4, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="integers"):
        run_int_pmbc(params, torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match="outside"):
        run_int_pmbc(params, torch.full((1, 4, 3), 1 << 30))
    with pytest.raises(ValueError, match="one entry per neuron"):
        RefractoryLIFParams(v_th_q=[1, 2], u_th_q=[1], tau_q=1, tau_r_q=1)
    with pytest.raises(ValueError, match="decay must be < 1"):
        RefractoryLIFParams(v_th_q=[1], u_th_q=[1], tau_q=1 << 18, tau_r_q=1)


@pytest.mark.parametrize("tau, tau_r", [(0.0, 0.0), (0.0, 0.99), (0.95, 0.5)])
def test_pmbc_with_edge_decays(tau, tau_r):
    """No memory at all, a long refractory memory, a slow membrane: both PMBC paths stay exact."""
    model = RefractoryLIF(3, tau=tau, tau_r=tau_r).double()
    current = torch.randn(2, 300, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) + 0.4
    with torch.no_grad():
        assert torch.equal(model(current, "pmbc"), model(current, "sequential"))
    params = model.to_params()
    currents_q = params.input_fmt.quantize(current)
    assert_same_trace(run_int_pmbc(params, currents_q).trace, run_int(params, currents_q))
