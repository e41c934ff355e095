"""C-SiLIF golden models: the float module against hand-computed dynamics, the integer model
against an independent Python-int reference and the float model, decay quantisation, and the
checked-in corner vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from golden.csilif import CSiLIF, CSiLIFParams, quantize_complex_decay, run_int
from golden.fixed import QFormat
from sim.tb_csilif import CSILIF_KIND, corner_cases, load_corner_cases, random_case


def make_module(lam_magnitude, omega_dt, gain, dt=1.0):
    """A CSiLIF whose decays are ``lam_magnitude * exp(i*omega_dt)`` (float64)."""
    n = len(gain)
    module = CSiLIF(n).double()
    with torch.no_grad():
        module.theta_dt.fill_(math.log(dt))
        module.theta_r.copy_(torch.log(-torch.log(torch.tensor(lam_magnitude, dtype=torch.float64)) / dt))
        module.omega.copy_(torch.tensor(omega_dt, dtype=torch.float64) / dt)
        module.gain.copy_(torch.tensor(gain, dtype=torch.float64))
    return module


# --- float module --------------------------------------------------------------------------------
def test_reference_initialisation():
    module = CSiLIF(256, dt_min=0.01, dt_max=0.5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(module.theta_r, torch.full((256,), math.log(0.5)))
    assert torch.allclose(module.omega, torch.full((256,), math.pi))
    dt = torch.exp(module.theta_dt)
    assert dt.min() >= 0.01 - 1e-7 and dt.max() <= 0.5 + 1e-6
    assert dt.min() < 0.02 and dt.max() > 0.3  # log-uniform over the whole range
    assert module.gain.min() >= 0 and module.gain.max() < 1
    lam_r, lam_i = module.decay()
    lam = torch.complex(lam_r, lam_i)
    # S4D-Lin A = -1/2 + i*pi: lambda = exp(A*dt), a quarter-turn at most for dt <= 1/2.
    expected = torch.exp(torch.complex(torch.full_like(dt, -0.5), torch.full_like(dt, math.pi)) * dt)
    assert torch.allclose(lam, expected, atol=1e-6)


def test_hand_computed_real_decay_and_strict_threshold():
    """lambda = 0.5, b = 1: update order (reset before decay), half reset, strict Re u > 1/2."""
    module = make_module([0.5], [0.0], [1.0])
    x = torch.tensor([[0.6], [0.0], [0.45], [0.25], [0.3]], dtype=torch.float64)
    s, re, im = module(x, return_states=True)
    # t0: 0.6 > 1/2 fires; t1: 0.5*(0.6 - 0.5) = 0.05; t2: 0.025 + 0.45 = 0.475;
    # t3: 0.2375 + 0.25 = 0.4875; t4: 0.24375 + 0.3 = 0.54375 fires.
    assert torch.allclose(re[:, 0], torch.tensor([0.6, 0.05, 0.475, 0.4875, 0.54375], dtype=torch.float64))
    assert s[:, 0].tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]
    assert torch.all(im.abs() < 1e-15)
    # Exactly 1/2 does not fire (strict inequality).
    tie = make_module([0.5], [0.0], [1.0])(torch.tensor([[0.5], [0.25]], dtype=torch.float64))
    assert tie[:, 0].tolist() == [0.0, 0.0]


def test_hand_computed_rotation():
    """lambda = 0.5i: the state turns a quarter each step and shrinks by half."""
    module = make_module([0.5], [math.pi / 2], [1.0])
    x = torch.tensor([[1.0], [0.0], [0.0], [0.0]], dtype=torch.float64)
    s, re, im = module(x, return_states=True)
    # t0: u = 1 (fires); t1: 0.5i * (1 - 1/2) = 0.25i; t2: 0.5i * 0.25i = -0.125; t3: -0.0625i.
    assert torch.allclose(re[:, 0], torch.tensor([1.0, 0.0, -0.125, 0.0], dtype=torch.float64), atol=1e-15)
    assert torch.allclose(im[:, 0], torch.tensor([0.0, 0.25, 0.0, -0.0625], dtype=torch.float64), atol=1e-15)
    assert s[:, 0].tolist() == [1.0, 0.0, 0.0, 0.0]


def test_matches_complex_reference_form():
    """The real form equals the reference's complex update ``u = lam*(u - s/2) + b*x``."""
    torch.manual_seed(0)
    module = CSiLIF(6, dt_max=5.0).double()
    x = torch.randn(3, 30, 6, dtype=torch.float64)
    s, re, im = module(x, return_states=True)
    lam = torch.complex(*module.decay())
    u = torch.zeros(3, 6, dtype=torch.complex128)
    spike = torch.zeros(3, 6, dtype=torch.float64)
    for t in range(30):
        u = lam * (u - 0.5 * spike) + module.gain * x[:, t]
        spike = (2 * u.real - 1 > 0).double()
        assert torch.allclose(u.real, re[:, t]) and torch.allclose(u.imag, im[:, t])
        assert torch.equal(spike, s[:, t])


def test_gradients_flow():
    torch.manual_seed(1)
    module = CSiLIF(16, dt_max=0.5)
    x = torch.randn(4, 40, 16) * 0.8 + 0.3
    spikes = module(x)
    assert 0 < spikes.mean() < 1
    (spikes * torch.linspace(0, 1, 40).view(1, 40, 1)).sum().backward()
    for name, param in module.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, f"no gradient reaches {name}"


def test_bad_float_arguments():
    with pytest.raises(ValueError, match="at least one neuron"):
        CSiLIF(0)
    with pytest.raises(ValueError, match="dt_min"):
        CSiLIF(4, dt_min=0.5, dt_max=0.1)
    with pytest.raises(ValueError, match="channels"):
        CSiLIF(4)(torch.zeros(1, 3, 5))


# --- eigenvalues (paper Figure 2) ------------------------------------------------------------------
def trained_like_module(n=4096, seed=0):
    """Parameters spread like the released SSC checkpoint (NEURON_MATH §1.8): Delta in
    [0.0019, 49], frequencies and decay rates such that lambda covers the unit disc."""
    g = torch.Generator().manual_seed(seed)
    module = CSiLIF(n, generator=g).double()
    with torch.no_grad():
        module.theta_dt.uniform_(math.log(0.0019), math.log(49.0), generator=g)
        module.theta_r.uniform_(math.log(1e-4), math.log(2.0), generator=g)
        module.omega.uniform_(-8.0, 8.0, generator=g)
    return module


def test_eigenvalues_fill_the_unit_disc():
    """C-SiLIF decays land anywhere inside the unit disc (Figure 2), never on or outside it;
    the reference initialisation instead keeps them in the first quadrant."""
    lam = torch.complex(*trained_like_module().decay()).detach().numpy()
    assert np.abs(lam).max() < 1
    angle = np.angle(lam)
    for lo in (-np.pi, -np.pi / 2, 0, np.pi / 2):
        assert ((angle >= lo) & (angle < lo + np.pi / 2)).sum() > 100, f"quadrant at {lo:.2f} empty"
    assert np.abs(lam).min() < 0.05 and np.abs(lam).max() > 0.999
    assert lam.real.min() < -0.85 and lam.real.max() > 0.999
    init = torch.complex(*CSiLIF(512).decay()).detach().numpy()
    assert np.all(init.real >= 0) and np.all(init.imag > 0)
    params = CSiLIFParams.from_module(trained_like_module())
    limit = (1 << params.coef_fmt.frac_bits) - 1
    assert np.all(params.decay_re_q**2 + params.decay_im_q**2 <= limit * limit)


# --- decay quantisation ---------------------------------------------------------------------------
def test_quantize_complex_decay_rounds_half_up_and_stays_inside():
    fmt = QFormat(1, 17)
    limit = (1 << 17) - 1
    lr, li, shrunk = quantize_complex_decay([0.5 + 2**-18, -0.25 - 2**-18, 0.3], [-2**-18, 0.0, 0.4], fmt)
    assert lr.tolist() == [65537, -32768, 39322] and li.tolist() == [0, 0, 52429]
    assert not shrunk.any()
    # Exactly 1, exactly -1, within half a quantum of the circle, and on the diagonal: shrunk.
    mag = 1 - 2**-20
    values = [1.0, -1.0, mag * math.cos(1.0), mag / math.sqrt(2)]
    imag = [0.0, 0.0, mag * math.sin(1.0), -mag / math.sqrt(2)]
    lr, li, shrunk = quantize_complex_decay(values, imag, fmt)
    assert shrunk.tolist() == [True, True, True, True]
    assert lr[0] == limit and li[0] == 0 and lr[1] == -limit
    assert np.all(lr**2 + li**2 <= limit * limit)
    # Shrinking is radial and minimal: at most one quantum per component below the bound.
    assert np.all(np.hypot(lr, li) > limit - 2)
    # Random decays over the disc and right at its edge.
    rng = np.random.default_rng(0)
    r = np.concatenate([rng.uniform(0, 1, 5000), 1 - rng.uniform(0, 2**-15, 5000)])
    phi = rng.uniform(-np.pi, np.pi, r.size)
    lr, li, shrunk = quantize_complex_decay(r * np.cos(phi), r * np.sin(phi), fmt)
    assert np.all(lr**2 + li**2 <= limit * limit)
    assert shrunk[5000:].sum() > 1000 and shrunk[:5000].sum() == 0
    plain = ~shrunk
    assert np.all(lr[plain] == np.floor(r[plain] * np.cos(phi[plain]) * 2**17 + 0.5))


def test_quantize_reports_neurons():
    params = CSiLIFParams.from_float([0.9, 1.0, 0.2, -1.0], [0.1, 0.0, 0.0, 0.0], [1.0, 0.5, 4.5, -1.5])
    assert params.shrunk_neurons == [1, 3]
    assert np.all(np.abs(params.decay) < 1)
    assert params.gain_q.tolist() == [16384, 8192, 73728, -24576]


def test_bad_params_rejected():
    with pytest.raises(ValueError, match="inside the unit circle"):
        CSiLIFParams([(1 << 17) - 1], [1], [0])
    with pytest.raises(ValueError, match="one entry per neuron"):
        CSiLIFParams([0, 0], [0], [0])
    with pytest.raises(ValueError, match="gain_fmt"):
        CSiLIFParams.from_float([0.5], [0.0], [9.0])
    with pytest.raises(ValueError, match="unstable"):
        CSiLIFParams.from_float([0.9], [0.9], [1.0])
    with pytest.raises(ValueError, match="threshold 1/2"):
        CSiLIFParams([0], [0], [0], state_fmt=QFormat(12, 0))
    with pytest.raises(ValueError, match="signed"):
        CSiLIFParams([0], [0], [0], coef_fmt=QFormat(1, 17, signed=False))
    with pytest.raises(ValueError, match="outside"):
        CSiLIFParams([0], [0], [1 << 20])
    params = CSiLIFParams([0], [0], [0])
    with pytest.raises(ValueError, match="shape"):
        run_int(params, torch.zeros(3, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="integers"):
        run_int(params, torch.zeros(3, 1))
    with pytest.raises(ValueError, match="outside"):
        run_int(params, torch.full((3, 1), 1 << 20))


# --- integer model ----------------------------------------------------------------------------------
def reference_step_python(params: CSiLIFParams, re, im, s, x):
    """Independent scalar reference of the integer semantics in plain Python ints."""
    f = params.state_fmt.frac_bits
    p_bits = params.product_frac_bits
    out = []
    for n in range(params.n_neurons):
        lr, li, b = int(params.decay_re_q[n]), int(params.decay_im_q[n]), int(params.gain_q[n])
        u = re[n] - (1 << (f - 1) if s[n] else 0)
        scale_decay = 2 ** (p_bits - params.coef_fmt.frac_bits - f)
        scale_input = 2 ** (p_bits - params.gain_fmt.frac_bits - params.input_fmt.frac_bits)
        total_re = (lr * u - li * im[n]) * scale_decay + b * x[n] * scale_input
        total_im = (li * u + lr * im[n]) * scale_decay
        half = 2 ** (p_bits - f - 1)
        new_re = math.floor((total_re + half) / 2 ** (p_bits - f))
        new_im = math.floor((total_im + half) / 2 ** (p_bits - f))
        lo, hi = params.state_fmt.min_int, params.state_fmt.max_int
        clamped_re, clamped_im = min(max(new_re, lo), hi), min(max(new_im, lo), hi)
        out.append((clamped_re, clamped_im, clamped_re > (1 << (f - 1)), new_re != clamped_re or new_im != clamped_im))
    return out


@pytest.mark.parametrize(
    "formats",
    [{}, {"state_fmt": QFormat(5, 9), "input_fmt": QFormat(4, 14), "coef_fmt": QFormat(1, 15)}],
    ids=["default", "narrow"],
)
def test_integer_model_matches_python_reference(formats):
    case = random_case(10, 6, 40, drive=2.0, **formats)
    trace = case.golden()
    p = case.params
    re, im, s = [0] * p.n_neurons, [0] * p.n_neurons, [False] * p.n_neurons
    for t in range(case.steps):
        step = reference_step_python(p, re, im, s, case.inputs_q[t].tolist())
        re, im, s, sat = map(list, zip(*step))
        assert trace.re[t].tolist() == re and trace.im[t].tolist() == im
        assert trace.s[t].tolist() == s and trace.saturated[t].tolist() == sat
    assert trace.s.any() and (formats == {} or trace.saturated.any())


def test_integer_model_vectorised_over_batch():
    case = random_case(11, 5, 20)
    rng = np.random.default_rng(0)
    batch = torch.as_tensor(rng.integers(-6000, 6000, (2, 3, 20, 5)))
    trace = run_int(case.params, batch)
    for i in range(2):
        for j in range(3):
            single = run_int(case.params, batch[i, j])
            assert torch.equal(trace.re[i, j], single.re) and torch.equal(trace.im[i, j], single.im)
            assert torch.equal(trace.s[i, j], single.s) and torch.equal(trace.saturated[i, j], single.saturated)


def test_integer_model_tracks_float_within_quanta():
    """Integer vs float (original, unquantised lambda and b) on identical inputs: while the spikes
    agree, |u_int - u_float| stays within the bound accumulated from the stated quanta
    (one rounding of at most LSB/sqrt(2) per step, plus the quantisation of lambda and b); a spike
    may differ only where float Re u lies within that bound of 1/2."""
    torch.manual_seed(3)
    module = CSiLIF(64, dt_min=0.01, dt_max=2.0).double()
    with torch.no_grad():
        module.gain.uniform_(-1.5, 4.5)
    params = CSiLIFParams.from_module(module)
    x_q = params.input_fmt.quantize(torch.randn(200, 64, dtype=torch.float64) * 0.7 + 0.1)
    s_f, re_f, im_f = (v.detach() for v in module(params.input_fmt.to_float(x_q), return_states=True))
    trace = run_int(params, x_q)
    lsb = params.state_fmt.lsb
    u_f = torch.complex(re_f, im_f).numpy()
    u_i = torch.complex(params.state_fmt.to_float(trace.re), params.state_fmt.to_float(trace.im)).numpy()
    lam_q = params.decay
    lam_f = torch.complex(*module.decay()).detach().numpy()
    d_lam = np.abs(lam_q - lam_f)
    d_gain = np.abs(params.gain - module.gain.detach().numpy())
    x = params.input_fmt.to_float(x_q.numpy())
    s_f = s_f.numpy().astype(bool)
    s_i = trace.s.numpy()
    bound = np.zeros(64)
    live = np.ones(64, dtype=bool)  # neurons whose spike trains still agree
    u_prev_reset = np.zeros(64)
    compared = 0
    for t in range(200):
        bound = np.abs(lam_q) * bound + d_lam * np.abs(u_prev_reset) + d_gain * np.abs(x[t]) + lsb / np.sqrt(2)
        err = np.abs(u_i[t] - u_f[t])
        assert np.all(err[live] <= bound[live] * (1 + 1e-9) + 1e-12), f"step {t}: error above the bound"
        compared += live.sum()
        differ = live & (s_i[t] != s_f[t])
        assert np.all(np.abs(u_f[t].real[differ] - 0.5) <= bound[differ]), "spike differs far from the threshold"
        live &= ~differ
        u_prev_reset = u_f[t] - 0.5 * s_f[t]
    assert live.mean() > 0.8 and compared > 0.8 * 200 * 64
    assert s_i.sum() > 100
    # The bound is tens of quanta at most (1/(1 - |lambda|) amplifies near-unit modes), not vacuous.
    assert np.median(bound) < 32 * lsb and bound.max() < 256 * lsb


# --- checked-in corner vectors ------------------------------------------------------------------------
@pytest.mark.parametrize("case", load_corner_cases(), ids=lambda case: case.name)
def test_corner_vectors_are_golden(case):
    """The checked-in vectors equal today's golden model (regenerate on a deliberate change)."""
    fresh = CSILIF_KIND.state_fields(case.golden())
    assert set(fresh) == set(case.expected)
    for name, value in case.expected.items():
        assert np.array_equal(np.asarray(fresh[name], dtype=np.int64), value), name


def test_corner_vectors_cover_what_they_claim():
    cases = {case.name: case for case in corner_cases()}
    assert set(cases) == {case.name for case in load_corner_cases()}
    limit = (1 << 17) - 1
    near = cases["near_unit"].params
    assert np.all(np.hypot(near.decay_re_q, near.decay_im_q) > limit - 1)
    assert cases["near_unit"].golden().s.any()
    assert np.all(cases["near_minus_one"].params.decay_re_q[:2] < -limit + 1001)
    low = cases["large_negative_drive"].golden()
    assert (low.re == CSiLIFParams([0], [0], [0]).state_fmt.min_int).any() and low.saturated.any()
    both = cases["saturation_both_ends"]
    trace = both.golden()
    fmt = both.params.state_fmt
    for part in (trace.re, trace.im):
        assert (part == fmt.max_int).any() and (part == fmt.min_int).any()
    ties = cases["exact_ties"].golden()
    half = cases["exact_ties"].params.half_q
    assert (ties.re[:, 0] == half).any() and not ties.s[:, 0].any() and ties.s[:, 1].any()
    assert ties.re[0, 2] == 1 and ties.re[0, 3] == 0 and ties.re[1, 2] == 2 and ties.re[1, 3] == -1
