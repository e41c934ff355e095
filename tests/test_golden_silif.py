"""Golden SiLIF / cAdLIF / readout models: float dynamics, integer bit-exactness, export."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from golden.fixed import QFormat
from golden.layers import (
    LIReadout,
    LIReadoutParams,
    SNNLayer,
    fold_batchnorm,
    quantize_decay,
    readout_scores,
    run_readout_int,
    spike_boxcar,
)
from golden.silif import (
    CADLIF_RANGES,
    CAdLIF,
    SiLIF,
    SiLIFParams,
    eigenvalues,
    run_int,
    second_order_run,
    transition_matrix,
)


def _col(*values):
    """A (1, T, 1) float64 current sequence."""
    return torch.tensor(values, dtype=torch.float64).reshape(1, -1, 1)


# --- surrogate ------------------------------------------------------------------------------------
def test_spike_forward_is_strict_and_gradient_is_boxcar():
    z = torch.tensor([-0.6, -0.5, -0.4999, 0.0, 1e-9, 0.5, 0.5001], dtype=torch.float64, requires_grad=True)
    s = spike_boxcar(z)
    assert s.tolist() == [0, 0, 0, 0, 1, 1, 1]
    s.sum().backward()
    assert z.grad.tolist() == [0, 0, 1, 1, 1, 1, 0]


# --- float dynamics, hand-computed ---------------------------------------------------------------
def test_update_order_reset_and_values_by_hand():
    """alpha = beta = a = 1/2, b = 1, x = 4, 0, 0 (worked on paper):

    t1: w = 0,                          u = 0.5*0 + 0.5*(4 - 0) = 2       -> spike
    t2: w = 0.5*0 + 0.5*2 + 1*1 = 2,    u = 0.5*(2 - 1) + 0.5*(0 - 2) = -0.5
    t3: w = 0.5*2 + 0.5*(-0.5) = 0.75,  u = 0.5*(-0.5) + 0.5*(0 - 0.75) = -0.625
    (u from the OLD w at t2 would give 0.5; without the reset -0.25.)
    """
    tr = second_order_run(_col(4, 0, 0), 0.5, 0.5, 0.5, 1.0)
    assert tr.w.flatten().tolist() == [0.0, 2.0, 0.75]
    assert tr.u.flatten().tolist() == [2.0, -0.5, -0.625]
    assert tr.s.flatten().tolist() == [1.0, 0.0, 0.0]


def test_threshold_is_strict():
    # alpha = 0, no adaptation: u_t = x_t exactly.
    tr = second_order_run(_col(1.0, 1.0 + 2**-40, 0.999), 0.0, 0.0, 0.0, 0.0)
    assert tr.s.flatten().tolist() == [0.0, 1.0, 0.0]


def test_silif_reparametrisation_and_reference_init():
    torch.manual_seed(0)
    neuron = SiLIF(4000)
    assert torch.allclose(neuron.log_dt, torch.full((4000,), math.log(0.004)))
    c = neuron.decays()
    alpha_lo, alpha_hi = math.exp(-250 * 0.004), math.exp(-10 * 0.004)
    beta_lo, beta_hi = math.exp(-10 * 0.004), math.exp(-2.5 * 0.004)
    tol = 1e-6
    assert alpha_lo - tol <= c["alpha"].min() and c["alpha"].max() <= alpha_hi + tol
    assert beta_lo - tol <= c["beta"].min() and c["beta"].max() <= beta_hi + tol
    # Uniform in log-rate: the initial alpha spans almost the whole [0.368, 0.961] range.
    assert c["alpha"].min() < 0.40 and c["alpha"].max() > 0.95
    assert torch.allclose(c["gain"], 1 - c["alpha"], atol=1e-12)
    expected_alpha = torch.exp(-torch.exp(neuron.log_rate_u.double()) * torch.exp(neuron.log_dt.double()))
    assert torch.allclose(c["alpha"], expected_alpha, rtol=1e-12)
    with torch.no_grad():
        neuron.a.fill_(1.7)
        neuron.b.fill_(-0.3)
    assert neuron.coefficients()["a"].max() == 1.0 and neuron.coefficients()["b"].min() == 0.0


def test_cadlif_clamps_every_coefficient():
    neuron = CAdLIF(64)
    with torch.no_grad():
        for name in CADLIF_RANGES:
            getattr(neuron, name).fill_(5.0)
    c = neuron.coefficients()
    for name, (lo, hi) in CADLIF_RANGES.items():
        assert torch.all(c[name] == hi), name
    x = torch.randn(2, 7, 64)
    assert neuron(x).shape == (2, 7, 64)


@pytest.mark.parametrize("neuron_cls", [SiLIF, CAdLIF, LIReadout])
def test_gradients_flow_through_the_layer(neuron_cls):
    torch.manual_seed(1)
    layer = SNNLayer(20, neuron_cls(16), dropout=0.1)
    x = torch.rand(4, 30, 20) * 3
    out = layer(x)
    (out.sum() if neuron_cls is not LIReadout else readout_scores(out, "softmax_sum")[:, 0].sum()).backward()
    for name, param in layer.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, f"no gradient reaches {name}"


def test_snn_layer_uses_xavier_for_silif_and_bn_over_batch_and_time():
    layer = SNNLayer(100, SiLIF(50))
    bound = math.sqrt(6 / (100 + 50))
    assert layer.linear.weight.abs().max() <= bound
    assert layer.linear.bias is None
    assert layer.norm.momentum == 0.05 and layer.norm.eps == 1e-5
    x = torch.rand(3, 9, 100)
    cur = layer.currents(x)  # training mode: normalised over the 27 (batch*time) rows
    assert torch.allclose(cur.reshape(-1, 50).mean(0), torch.zeros(50), atol=1e-5)


def test_fold_batchnorm_equals_eval_batchnorm():
    torch.manual_seed(2)
    layer = SNNLayer(12, SiLIF(8))
    with torch.no_grad():
        layer.norm.weight.uniform_(0.5, 2)
        layer.norm.bias.uniform_(-1, 1)
    layer.train()
    for _ in range(5):
        layer.currents(torch.rand(4, 10, 12) * 2)
    layer.eval()
    weight, bias = fold_batchnorm(layer.linear.weight, layer.norm)
    assert all(torch.equal(a, b) for a, b in zip((weight, bias), layer.folded()))
    x = torch.rand(2, 6, 12)
    expected = layer.currents(x).double()
    assert torch.allclose(x.double() @ weight.T + bias, expected, atol=1e-5)


def test_fold_batchnorm_without_affine_and_without_statistics():
    weight = torch.randn(4, 3)
    norm = nn.BatchNorm1d(4, affine=False)
    norm.running_mean.copy_(torch.tensor([0.0, 1.0, -1.0, 2.0]))
    norm.running_var.copy_(torch.tensor([1.0, 4.0, 0.25, 1.0]))
    folded_w, folded_b = fold_batchnorm(weight, norm.eval())
    x = torch.randn(5, 3)
    assert torch.allclose(x.double() @ folded_w.T + folded_b, norm(x @ weight.T).double(), atol=1e-5)
    with pytest.raises(ValueError, match="running statistics"):
        fold_batchnorm(weight, nn.BatchNorm1d(4, track_running_stats=False))
    with pytest.raises(ValueError, match="3 rows"):
        fold_batchnorm(torch.randn(3, 3), norm)


def test_layer_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_neurons"):
        SNNLayer(3, nn.Identity())
    with pytest.raises(ValueError, match="dropout"):
        SNNLayer(3, SiLIF(2), dropout=1.5)
    with pytest.raises(ValueError, match="batch, time"):
        SNNLayer(3, SiLIF(2)).currents(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="mode"):
        readout_scores(torch.zeros(1, 2, 3), "max")


# --- eigenvalues (paper Figure 2) -----------------------------------------------------------------
def trained_looking_silif(n: int, seed: int) -> dict:
    """Coefficients spread like the released SSC checkpoints (NEURON_MATH §1.8)."""
    rng = np.random.default_rng(seed)
    dt = np.exp(rng.uniform(math.log(4.7e-4), math.log(0.073), n))
    alpha = np.exp(-np.exp(rng.uniform(math.log(1.0), math.log(2000.0), n)) * dt)
    beta = np.exp(-np.exp(rng.uniform(math.log(1e-4), math.log(10.0), n)) * dt)
    return {"alpha": alpha, "beta": beta, "a": rng.uniform(0, 1, n), "b": rng.uniform(0, 2, n)}


def test_silif_eigenvalues_fill_the_real_positive_half_of_the_unit_disc():
    for coef in (SiLIF(2000).decays(), trained_looking_silif(5000, seed=3)):
        lam = eigenvalues(coef["alpha"], coef["beta"], coef["a"])
        assert (lam.abs() < 1).all(), "SiLIF must stay stable"
        assert (lam.real > 0).all(), "figure 2: SiLIF eigenvalues lie in the right half plane"
    # Trained-looking SiLIF covers both regimes: integrators (real) and resonators (complex).
    complex_fraction = float((lam.imag.abs() > 1e-9).double().mean())
    assert 0.05 < complex_fraction < 0.95
    assert lam.real.min() < 0.2 and lam.abs().max() > 0.99


def test_cadlif_eigenvalues_are_concentrated_near_one():
    c = CAdLIF(2000).decays()
    lam = eigenvalues(c["alpha"], c["beta"], c["a"])
    assert (lam.abs() < 1).all() and (lam.real > 0.3).all()


def test_implemented_transition_matrix_reproduces_the_recurrence():
    coef = {k: torch.as_tensor(v[:3]) for k, v in trained_looking_silif(3, seed=4).items()}
    mat = transition_matrix(coef["alpha"], coef["beta"], coef["a"], form="implemented")
    u0, w0 = torch.tensor([0.3, -0.2, 0.7], dtype=torch.float64), torch.tensor([0.1, 0.4, -0.3], dtype=torch.float64)
    w1 = coef["beta"] * w0 + coef["a"] * u0
    u1 = coef["alpha"] * u0 + (1 - coef["alpha"]) * (0 - w1)
    stacked = torch.einsum("nij,nj->ni", mat, torch.stack([u0, w0], -1))
    assert torch.allclose(stacked, torch.stack([u1, w1], -1))


# --- integer model --------------------------------------------------------------------------------
def scalar_reference(params: SiLIFParams, currents: np.ndarray):
    """An independent per-neuron Python-int implementation of the SiLIFParams docstring."""
    steps, n_neurons = currents.shape
    F, Cd, Ca = params.frac_bits, params.decay_fmt.frac_bits, params.a_fmt.frac_bits
    C = max(Cd, Ca)
    one = 1 << F
    lo, hi = params.state_fmt.min_int, params.state_fmt.max_int
    out = {k: np.zeros((steps, n_neurons), dtype=np.int64) for k in ("u", "w", "s", "sat")}
    for n in range(n_neurons):
        u = w = 0
        s = False
        for t in range(steps):
            acc = int(params.beta_q[n]) * w * 2 ** (C - Cd) + int(params.a_q[n]) * u * 2 ** (C - Ca)
            acc += int(params.b_q[n]) * 2**C if s else 0
            w_raw = (acc + 2 ** (C - 1)) // 2**C
            w_new = min(max(w_raw, lo), hi)
            acc = int(params.alpha_q[n]) * (u - (one if s else 0)) + int(params.gain_q[n]) * (int(currents[t, n]) - w_new)
            u_raw = (acc + 2 ** (Cd - 1)) // 2**Cd
            u = min(max(u_raw, lo), hi)
            w = w_new
            s = u > one
            out["u"][t, n], out["w"][t, n], out["s"][t, n] = u, w, s
            out["sat"][t, n] = (w_raw != w_new) or (u_raw != u)
    return out


def random_int_params(n, seed, **formats):
    rng = np.random.default_rng(seed)
    return SiLIFParams.from_float(
        rng.uniform(0, 0.999, n), rng.uniform(0.9, 1.0, n), rng.uniform(0, 1, n), rng.uniform(0, 2, n), **formats
    )


@pytest.mark.parametrize(
    "formats",
    [
        {},
        {"decay_fmt": QFormat(0, 16, signed=False), "a_fmt": QFormat(2, 16, signed=True)},  # C = Cd = Ca
        {
            "input_fmt": QFormat(6, 10),
            "state_fmt": QFormat(5, 10),
            "b_fmt": QFormat(2, 10, signed=False),
            "a_fmt": QFormat(1, 20, signed=False),  # C > Cd: the w sum is shifted
        },
    ],
)
def test_integer_model_equals_scalar_reference(formats):
    params = random_int_params(7, seed=11, **formats)
    gen = torch.Generator().manual_seed(5)
    x = (torch.randn(60, 7, generator=gen, dtype=torch.float64) * 4 / params.input_fmt.lsb).round().to(torch.int64)
    x = x.clamp(params.input_fmt.min_int, params.input_fmt.max_int)
    trace = run_int(params, x)
    ref = scalar_reference(params, x.numpy())
    assert np.array_equal(trace.u.numpy(), ref["u"])
    assert np.array_equal(trace.w.numpy(), ref["w"])
    assert np.array_equal(trace.s.numpy(), ref["s"].astype(bool))
    assert np.array_equal(trace.saturated.numpy(), ref["sat"].astype(bool))
    assert trace.s.any() and not trace.s.all()


def test_integer_model_is_vectorised_over_batch():
    params = random_int_params(5, seed=2)
    x = torch.randint(-3 << 14, 3 << 14, (3, 2, 20, 5))
    batched = run_int(params, x)
    for i in range(3):
        for j in range(2):
            single = run_int(params, x[i, j])
            assert torch.equal(batched.u[i, j], single.u) and torch.equal(batched.s[i, j], single.s)


def test_integer_tracks_float_within_the_rounding_bound():
    """Same (quantised) coefficients in float64: the only differences are the two roundings per
    step, each at most 1/2 LSB. Propagating them through the recurrence gives a per-step bound
    e_w' = beta e_w + a e_u + 1/2, e_u' = alpha e_u + gain e_w' + 1/2 (LSB), valid while the spike
    trains agree (they do, with this drive)."""
    params = random_int_params(32, seed=7)
    f = params.coefficients_float()
    gen = torch.Generator().manual_seed(8)
    x_q = (torch.randn(200, 32, generator=gen, dtype=torch.float64) * 2 / params.input_fmt.lsb).round().to(torch.int64)
    trace = run_int(params, x_q)
    x = params.input_fmt.to_float(x_q).unsqueeze(0)
    ft = second_order_run(x, *(torch.as_tensor(f[k]) for k in ("alpha", "beta", "a", "b")))
    assert torch.equal(ft.s[0].bool(), trace.s), "spike trains should agree for this drive"
    lsb = params.state_fmt.lsb
    err_u = (params.state_fmt.to_float(trace.u) - ft.u[0]).abs() / lsb
    err_w = (params.state_fmt.to_float(trace.w) - ft.w[0]).abs() / lsb
    bound_u = torch.zeros(32, dtype=torch.float64)
    bound_w = torch.zeros(32, dtype=torch.float64)
    a, alpha, beta, gain = (torch.as_tensor(f[k]) for k in ("a", "alpha", "beta", "gain"))
    for t in range(200):
        bound_w = beta * bound_w + a * bound_u + 0.5
        bound_u = alpha * bound_u + gain * bound_w + 0.5
        assert (err_w[t] <= bound_w + 1e-6).all() and (err_u[t] <= bound_u + 1e-6).all(), t
    assert trace.s.any()
    # And against the unquantised float coefficients: a few LSB of coefficient error on top.
    assert float(err_u.max()) < float(bound_u.max())


def test_export_from_module_matches_float_closely():
    torch.manual_seed(3)
    neuron = SiLIF(64)
    params = SiLIFParams.from_module(neuron)
    x = torch.rand(1, 100, 64, dtype=torch.float64) * 3
    with torch.no_grad():
        c = neuron.decays()
        ft = second_order_run(x, c["alpha"], c["beta"], c["a"], c["b"])
    trace = run_int(params, params.input_fmt.quantize(x[0]))
    agree = ft.s[0].bool() == trace.s
    assert agree.double().mean() > 0.99
    # On neurons whose spike trains agree, u stays within a few LSB (input, coefficient and
    # state quantisation together; measured 3e-4 = 5 LSB).
    same = agree.all(dim=0)
    assert same.sum() >= 60
    assert (params.state_fmt.to_float(trace.u) - ft.u[0])[:, same].abs().max() < 16 * params.state_fmt.lsb


def test_folded_layer_with_exported_neuron_behaves_like_the_float_layer():
    """Train-mode statistics, eval, fold batch norm (D5), export the coefficients (D11): the
    folded currents through the integer neuron spike like the float layer."""
    torch.manual_seed(6)
    layer = SNNLayer(30, SiLIF(24))
    x = (torch.rand(4, 60, 30) < 0.3).float() * 2  # event counts
    for _ in range(3):
        layer(x)
    layer.eval()
    weight, bias = layer.folded()
    params = SiLIFParams.from_module(layer.neuron)
    trace = run_int(params, params.input_fmt.quantize(x.double() @ weight.T + bias))
    with torch.no_grad():
        spikes = layer(x)
    assert (spikes.bool() == trace.s).double().mean() > 0.99
    assert trace.s.any()


def test_decays_stay_below_one_and_rounding_to_one_is_reported():
    beta = np.array([0.5, 1 - 1e-7, 1.0, 1 - 2**-19, 1 - 2**-17])
    params = SiLIFParams.from_float(np.full(5, 0.5), beta, np.zeros(5), np.zeros(5))
    one = 1 << 18
    assert params.beta_q.tolist() == [one // 2, one - 1, one - 1, one - 1, one - 2]
    assert params.rounded_to_one["beta"].tolist() == [False, True, True, True, False]
    report = params.quantization_report()
    assert "3/5 beta rounded to 1.0 in uQ0.18" in report and "saturation" in report
    assert SiLIFParams.from_float(np.full(2, 0.5), np.full(2, 0.5), np.zeros(2), np.zeros(2)).quantization_report() == ""
    q, flags = quantize_decay(np.array([0.0, 0.25, 0.9999999]), QFormat(0, 8, signed=False))
    assert q.tolist() == [0, 64, 255] and flags.tolist() == [False, False, True]


def test_beta_rounded_to_one_makes_w_an_exact_integrator():
    """beta clamped to 1 - 2**-18: beta_q * w rounds back to w for |w| <= 8 (sQ.14), so
    w_t = w_{t-1} + a*u_{t-1} exactly; the a*u feedback still settles w at the drive."""
    params = SiLIFParams.from_float([0.0], [1.0], [1.0], [0.0])
    assert params.rounded_to_one["beta"].all()
    x = torch.full((60, 1), int(0.9 * (1 << 14)), dtype=torch.int64)  # below threshold
    trace = run_int(params, x)
    w, u = trace.w[:, 0], trace.u[:, 0]
    assert torch.equal(w[1:] - w[:-1], u[:-1])
    assert abs(int(w[-1]) - int(x[0, 0])) <= 2 and not trace.s.any()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alpha_q": [1 << 18]}, "alpha_q must lie in"),
        ({"gain_q": [-1]}, "gain_q must lie in"),
        ({"b_q": [1, 2]}, "one entry per neuron"),
        ({"a_q": [1 << 18]}, "a_q has values outside"),
        ({"b_fmt": QFormat(2, 16, signed=False)}, "share one number of fractional bits"),
        ({"decay_fmt": QFormat(1, 17)}, "decay_fmt must be unsigned"),
        ({"state_fmt": QFormat(1, 14), "input_fmt": QFormat(1, 14)}, "hold the threshold"),
        ({"state_fmt": QFormat(30, 30), "input_fmt": QFormat(30, 30), "b_fmt": QFormat(2, 30, signed=False)}, "too wide"),
    ],
)
def test_params_reject_bad_values(kwargs, match):
    base = {"alpha_q": [1], "beta_q": [1], "gain_q": [1], "a_q": [1], "b_q": [1]}
    with pytest.raises(ValueError, match=match):
        SiLIFParams(**{**base, **kwargs})


def test_run_rejects_bad_currents():
    params = random_int_params(3, seed=0)
    with pytest.raises(ValueError, match="shape"):
        run_int(params, torch.zeros(4, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="outside"):
        run_int(params, torch.full((4, 3), 1 << 30, dtype=torch.int64))
    with pytest.raises(ValueError, match="outside"):
        params.step(params.initial_state(), torch.full((3,), -(1 << 30), dtype=torch.int64))


@pytest.mark.parametrize("sign", [-1, 1])
def test_drive_beyond_the_state_format_saturates_at_both_ends(sign):
    """State sQ6.14 (+-32) fed from sQ10.14 currents: u pins at the rail, every clamp counted."""
    state = QFormat(6, 14)
    params = SiLIFParams.from_float(
        [0.5, 0.9, 0.0], [0.95, 0.99, 1.0], [0.0, 0.3, 0.0], [0.0, 1.0, 2.0], state_fmt=state
    )
    x = torch.full((100, 3), sign * 400 << 14, dtype=torch.int64)
    trace = run_int(params, x)
    rail = state.max_int if sign > 0 else state.min_int
    assert (trace.u[-1] == rail).all()
    assert bool(trace.s[-1].all()) == (sign > 0)
    assert trace.saturated[-1].all() and trace.saturation_count >= 3 * 50


# --- readout --------------------------------------------------------------------------------------
def test_readout_float_and_integer_agree_and_decide_by_membrane_sum():
    torch.manual_seed(4)
    readout = LIReadout(10)
    alpha = readout.decays()["alpha"].numpy()
    params = LIReadoutParams.from_float(alpha)
    x = torch.randn(5, 80, 10, dtype=torch.float64) * 2
    x_q = params.input_fmt.quantize(x)
    trace = run_readout_int(params, x_q)
    with torch.no_grad():
        u_float = readout(params.input_fmt.to_float(x_q).float()).double()
    assert (params.state_fmt.to_float(trace.u) - u_float).abs().max() < 1e-3
    assert torch.equal(trace.scores, trace.u.sum(dim=-2))
    assert torch.equal(trace.prediction, trace.scores.argmax(-1))
    # Scalar recomputation of one neuron (D1 rounding, one rounding per step).
    u, lsb_bits = 0, params.coef_fmt.frac_bits
    for t in range(80):
        acc = int(params.alpha_q[3]) * u + int(params.gain_q[3]) * int(x_q[1, t, 3])
        u = (acc + (1 << (lsb_bits - 1))) >> lsb_bits
        assert u == int(trace.u[1, t, 3])


def test_readout_clamps_alpha_and_rejects_bad_params():
    readout = LIReadout(3)
    with torch.no_grad():
        readout.alpha.fill_(2.0)
    assert torch.allclose(readout.clamped_alpha(), torch.full((3,), math.exp(-1 / 25)))
    with pytest.raises(ValueError, match="alpha_q and gain_q"):
        LIReadoutParams(alpha_q=[1, 2], gain_q=[1])
    with pytest.raises(ValueError, match="gain_q must lie"):
        LIReadoutParams(alpha_q=[1], gain_q=[1 << 18])
    with pytest.raises(ValueError, match="shape"):
        run_readout_int(LIReadoutParams(alpha_q=[1], gain_q=[1]), torch.zeros(3, 2, dtype=torch.int64))


# --- checked-in corner vectors --------------------------------------------------------------------
def test_corner_vectors_match_the_golden_model():
    """The checked-in expectations equal today's golden model (regenerate deliberately:
    ``python -m sim.tb_silif --write-vectors``) and the cases still exercise what they claim."""
    from sim.tb_silif import SILIF_KIND, corner_cases, load_corner_cases

    loaded = {case.name: case for case in load_corner_cases()}
    assert set(loaded) == {case.name for case in corner_cases()}
    for name, case in loaded.items():
        fresh = SILIF_KIND.state_fields(case.golden())
        assert set(fresh) == set(case.expected)
        for key, value in case.expected.items():
            assert np.array_equal(np.asarray(fresh[key], dtype=np.int64), value), (name, key)
    sat = loaded["saturation_both_ends"].expected
    fmt = loaded["saturation_both_ends"].params.state_fmt
    assert (sat["u"] == fmt.max_int).any() and (sat["u"] == fmt.min_int).any()
    assert (loaded["large_negative_drive"].expected["u"] == loaded["large_negative_drive"].params.state_fmt.min_int).any()
    assert (loaded["beta_rounds_to_one"].params.beta_q[:3] == (1 << 18) - 1).all()
    ties = loaded["exact_ties"].expected
    assert ties["spike"][0].tolist() == [0, 1, 0, 0] and ties["u"][0, 2:].tolist() == [2, -1]
