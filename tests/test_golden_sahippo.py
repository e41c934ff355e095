"""SA-HiPPO golden model: LegS/NPLR numbers, dense vs structured forms, event-driven vs FFT,
integer model vs an independent Python-int reference and vs float, and the S4D block."""

import numpy as np
import pytest
import scipy.linalg
import torch

from golden.fixed import QFormat
from golden.hippo import legs_matrices, nplr
from golden.sahippo import (
    SAHiPPOLayer,
    SAHiPPOParams,
    compare_traces,
    contractive_step,
    dense_transition,
    quantize_complex_decay,
    run_dense,
    run_int,
    run_structured,
    spike_aware_matrix,
    structured_step,
    taylor2_substeps,
    warped_step,
)
from golden.spike_ssm_block import S4D, SpikeSSMBlock


# --- HiPPO-LegS and its NPLR form ----------------------------------------------------------
def test_legs_entries():
    a, b, p = legs_matrices(4)
    assert a[0, 0] == -1 and a[3, 3] == -4 and a[0, 1] == 0
    assert a[2, 1] == pytest.approx(-np.sqrt(5 * 3))
    assert b[2] == pytest.approx(np.sqrt(5)) and p[1] == pytest.approx(np.sqrt(1.5))


@pytest.mark.parametrize("n, max_imag", [(8, 20), (16, 81), (32, 325), (64, 1303)])
def test_nplr_matches_neuron_math(n, max_imag):
    rng = np.random.default_rng(1234)
    s = nplr(n)
    skew = s.a + np.outer(s.p, s.p) + 0.5 * np.eye(n)
    assert np.allclose(skew, -skew.T)
    assert np.allclose(s.lam.real, -0.5)
    assert round(float(np.abs(s.lam.imag).max())) == max_imag
    assert np.allclose(s.v_half.conj().T @ s.v_half, np.eye(n // 2), atol=1e-12)
    x = rng.standard_normal(n)
    z = s.to_modes(x)
    assert np.allclose(s.to_dense(z), x, atol=1e-12)
    mz = s.lam * z - s.p_t * (2 * np.real(np.sum(s.p_t.conj() * z)))
    assert np.allclose(s.to_dense(mz), s.a @ x, atol=1e-9 * n * n)
    assert np.allclose(s.b_t, s.to_modes(s.b))


@pytest.mark.parametrize("bad", [7, 0, 1])
def test_nplr_rejects_odd_order(bad):
    with pytest.raises(ValueError, match="even integer"):
        nplr(bad)


# --- dense reference -----------------------------------------------------------------------
def test_spike_aware_matrix_scalar_alpha_is_warped_step():
    a, _, _ = legs_matrices(8)
    dt, alpha = 0.7, 1.3
    assert np.allclose(spike_aware_matrix(a, alpha, dt) * dt, a * warped_step(dt, alpha))
    assert np.allclose(dense_transition(a, alpha, dt), scipy.linalg.expm(a * warped_step(dt, alpha)))


def test_general_alpha_keeps_triangular_spectrum():
    rng = np.random.default_rng(1234)
    a, _, _ = legs_matrices(8)
    alpha = rng.uniform(0.1, 2.0, (8, 8))
    dt = 0.9
    eig = np.sort(np.linalg.eigvals(spike_aware_matrix(a, alpha, dt)).real)
    assert np.allclose(eig, np.sort(-(np.arange(8) + 1) * np.exp(-np.diag(alpha) * dt)))
    m = spike_aware_matrix(a, alpha, dt) * dt
    assert np.allclose(dense_transition(a, alpha, dt, "taylor2"), np.eye(8) + m + m @ m / 2)
    with pytest.raises(ValueError, match="alpha must be"):
        spike_aware_matrix(a, np.ones((3, 3)), dt)
    with pytest.raises(ValueError, match="unknown dense transition"):
        dense_transition(a, 1.0, dt, "euler")


# --- structured forms ----------------------------------------------------------------------
def test_plain_structured_taylor2_is_dense_taylor2_in_the_eigenbasis():
    rng = np.random.default_rng(1234)
    n = 16
    iv, w = rng.integers(1, 5, 30).astype(float), rng.standard_normal(30)
    xd = run_dense(n, 0.5, iv, w, "taylor2", dt_scale=0.003)
    zs = run_structured(n, 0.5, iv, w, "taylor2", dt_scale=0.003, step_fraction=None)
    assert np.allclose(nplr(n).to_dense(zs), xd, rtol=1e-9, atol=1e-9)


def test_contractive_step_is_the_2norm_stable_region():
    for n in (8, 16, 32):
        a, _, _ = legs_matrices(n)
        h = contractive_step(n)
        norm = lambda h: np.linalg.norm(np.eye(n) + h * a + 0.5 * h * h * a @ a, 2)  # noqa: E731
        assert norm(h) <= 1 + 1e-9 and norm(1.01 * h) > 1
        assert h * n < 2  # stricter than the spectral condition h N <= 2
    assert list(taylor2_substeps(np.array([0.0, 1e-9, h, 1.5 * h]), 32)) == [0, 1, 1, 2]
    with pytest.raises(ValueError, match="step_fraction"):
        taylor2_substeps(0.1, 8, 1.5)


@pytest.mark.parametrize("n", [8, 16])
def test_substepped_taylor2_tracks_expm_and_plain_taylor_diverges(n):
    rng = np.random.default_rng(1234)
    iv, w = rng.integers(1, 8, 40).astype(float), rng.standard_normal(40)
    alpha, scale = 0.5, 0.05
    xd = run_dense(n, alpha, iv, w, "expm", scale)
    err = lambda z: np.linalg.norm(nplr(n).to_dense(z) - xd) / np.linalg.norm(xd)  # noqa: E731
    coarse = err(run_structured(n, alpha, iv, w, "taylor2", scale, 1.0))
    fine = err(run_structured(n, alpha, iv, w, "taylor2", scale, 0.1))
    plain = err(run_structured(n, alpha, iv, w, "taylor2", scale, None))
    assert fine < coarse < 0.2 and fine < 0.02
    assert plain > 1.0 > coarse


def test_zoh_is_exact_for_the_normal_part():
    rng = np.random.default_rng(1234)
    n = 16
    s = nplr(n)
    normal = s.a + np.outer(s.p, s.p)
    x = rng.standard_normal(n)
    g = 0.37
    z = structured_step(s.to_modes(x), g, "zoh", s)
    assert np.allclose(s.to_dense(z), scipy.linalg.expm(normal * g) @ x, atol=1e-10)
    with pytest.raises(ValueError, match="unknown SA-HiPPO discretisation"):
        structured_step(z, g, "euler", s)


def test_long_gap_freezes_memory():
    g_long = warped_step(1e4, 1.0)
    assert g_long < 1e-300 or g_long == 0
    assert warped_step(1.0, 1.0) == pytest.approx(np.exp(-1.0))


# --- event-driven layer and FFT training path ----------------------------------------------
def _grid_events(u):
    b, h, length = u.shape
    ticks = torch.arange(1, length + 1).repeat_interleave(h).expand(b, -1)
    ch = torch.arange(h).repeat(length).expand(b, -1)
    return ticks, ch, u.permute(0, 2, 1).reshape(b, -1)


@pytest.mark.parametrize("method", ["taylor2", "zoh"])
def test_fft_convolution_equals_event_recurrence(method):
    rng = np.random.default_rng(1234)
    h, n, length = 3, 16, 48
    layer = SAHiPPOLayer(h, n, method, alpha=[2.0, 4.0, 8.0], dt_scale=[0.01, 0.03, 0.1])
    u = torch.tensor(rng.standard_normal((2, h, length)))
    y_grid = layer.forward_grid(u)
    y_ev, _, _ = layer.forward_events(*_grid_events(u))
    y_ev = y_ev.reshape(2, length, h).permute(0, 2, 1)
    assert torch.allclose(y_grid, y_ev, rtol=1e-10, atol=1e-10)
    y_grid.square().sum().backward()
    assert layer.log_alpha.grad is not None and torch.all(layer.log_alpha.grad != 0)


def test_event_layer_rejects_bad_streams():
    layer = SAHiPPOLayer(2, 8)
    with pytest.raises(ValueError, match="non-decreasing"):
        layer.forward_events([3, 2], [0, 1], [1.0, 1.0])
    with pytest.raises(ValueError, match="channel out of range"):
        layer.forward_events([1, 2], [0, 2], [1.0, 1.0])
    with pytest.raises(ValueError, match="one shape"):
        layer.forward_events([1, 2], [0], [1.0, 1.0])
    with pytest.raises(ValueError, match="grid input"):
        layer.forward_grid(torch.zeros(1, 3, 4))


def test_channels_are_independent():
    layer = SAHiPPOLayer(2, 8, alpha=1.0, dt_scale=0.1)
    y_mixed, _, z_mixed = layer.forward_events([1, 2, 5, 9], [0, 1, 0, 1], [1.0, -2.0, 0.5, 1.0])
    y_alone, _, z_alone = layer.forward_events([1, 5], [0, 0], [1.0, 0.5])
    assert torch.allclose(y_mixed[[0, 2]], y_alone)
    assert torch.allclose(z_mixed[0], z_alone[0])


# --- integer model -------------------------------------------------------------------------
def _rnd(x, n):
    return x if n == 0 else (x + (1 << (n - 1))) >> n


def _sat(x, fmt):
    return min(max(x, fmt.min_int), fmt.max_int)


def _reference_event(p: SAHiPPOParams, z, ch, dt, w):
    """Independent scalar Python-int transcription of the SAHiPPOParams docstring."""
    fc, fs, fin = p.coef_fmt.frac_bits, p.state_fmt.frac_bits, p.input_fmt.frac_bits
    m = p.n_modes
    lam = [tuple(int(v) for v in p.lam_q[n]) for n in range(m)]
    pp = [tuple(int(v) for v in p.p_q[n]) for n in range(m)]

    def gen(v):
        r = _sat(_rnd(sum(pp[n][0] * v[n][0] + pp[n][1] * v[n][1] for n in range(m)), fc - 1), p.work_fmt)
        out = []
        for n in range(m):
            re = lam[n][0] * v[n][0] - lam[n][1] * v[n][1] - pp[n][0] * r
            im = lam[n][0] * v[n][1] + lam[n][1] * v[n][0] - pp[n][1] * r
            out.append((_sat(_rnd(re, fc), p.work_fmt), _sat(_rnd(im, fc), p.work_fmt)))
        return out

    if p.g_q[ch, dt] != 0:
        if p.method == "zoh":
            fd, b, g = p.decay_fmt.frac_bits, p.decay_digit_bits, int(p.g_q[ch, dt])
            new = []
            for n in range(m):
                dr = di = None
                for k in range(p.decay_digits):
                    v = (g >> (k * b)) & ((1 << b) - 1)
                    if v:
                        fr, fi = (int(x) for x in p.decay_q[k, v, n])
                        if dr is None:
                            dr, di = fr, fi
                        else:
                            dr, di = _rnd(dr * fr - di * fi, fd), _rnd(dr * fi + di * fr, fd)
                new.append((_sat(_rnd(dr * z[n][0] - di * z[n][1], fd), p.state_fmt), _sat(_rnd(dr * z[n][1] + di * z[n][0], fd), p.state_fmt)))
            z = new
        else:
            hq, fg = int(p.g_sub_q[ch, dt]), p.g_sub_fmt.frac_bits
            for _ in range(int(p.substeps[ch, dt])):
                u1 = [tuple(_sat(_rnd(hq * c, fg), p.work_fmt) for c in v) for v in gen(z)]
                t2 = [tuple(_sat(_rnd(hq * c, fg + 1), p.work_fmt) for c in v) for v in gen(u1)]
                z = [tuple(_sat(z[n][k] + u1[n][k] + t2[n][k], p.state_fmt) for k in range(2)) for n in range(m)]
    z = [tuple(_sat(z[n][k] + _rnd(int(p.b_q[n, k]) * w, fc + fin - fs), p.state_fmt) for k in range(2)) for n in range(m)]
    acc = 2 * sum(int(p.c_q[ch, n, 0]) * z[n][0] - int(p.c_q[ch, n, 1]) * z[n][1] for n in range(m))
    acc += (int(p.d_q[ch]) * w) << (fs - fin)
    y = _sat(_rnd(acc, p.out_coef_fmt.frac_bits + fs - p.out_fmt.frac_bits), p.out_fmt)
    return z, y


def _layer_and_stream(method, n=8, h=2, k=40, dt_max=32, seed=0):
    layer = SAHiPPOLayer(h, n, method, alpha=[0.8, 3.0][:h], dt_scale=[0.02, 0.1][:h], threshold=0.2, seed=seed)
    params = SAHiPPOParams.from_layer(layer, dt_max=dt_max)
    rng = np.random.default_rng(seed)
    ticks = np.sort(rng.integers(0, 8 * k, k))
    channels = rng.integers(0, h, k)
    weights_q = params.input_fmt.quantize(rng.standard_normal(k))
    return layer, params, ticks, channels, weights_q


@pytest.mark.parametrize("method", ["taylor2", "zoh"])
def test_integer_model_matches_python_int_reference(method):
    _, params, ticks, channels, weights_q = _layer_and_stream(method)
    trace = run_int(params, ticks, channels, weights_q)
    z_all = {c: [(0, 0)] * params.n_modes for c in range(params.n_channels)}
    t_last = dict.fromkeys(range(params.n_channels), 0)
    for k, (t, c, w) in enumerate(zip(ticks.tolist(), channels.tolist(), weights_q.tolist())):
        dt = min(t - t_last[c], params.dt_max)
        t_last[c] = t
        z_all[c], y = _reference_event(params, z_all[c], c, dt, w)
        assert trace.dt[k] == dt
        assert trace.y[k] == y, f"event {k}"
        assert trace.z[k].tolist() == [list(v) for v in z_all[c]], f"event {k}"
        assert trace.spike[k] == (y > params.threshold_q[c])


@pytest.mark.parametrize("method", ["taylor2", "zoh"])
def test_integer_model_tracks_float_within_quantum(method):
    layer, params, ticks, channels, weights_q = _layer_and_stream(method, n=16, k=120, dt_max=128)
    trace = run_int(params, ticks, channels, weights_q)
    with torch.no_grad():
        y, _, _ = layer.forward_events(torch.tensor(ticks), torch.tensor(channels), torch.tensor(params.input_fmt.to_float(weights_q)))
    y_int = params.out_fmt.to_float(trace.y)
    scale = float(np.abs(y.numpy()).max())
    assert np.abs(y_int - y.numpy()).max() < 2e-3 * scale + 64 * params.out_fmt.lsb
    assert trace.saturation_count == 0


def test_interval_clipped_at_dt_max():
    _, params, _, _, _ = _layer_and_stream("taylor2", h=1, dt_max=16)
    a = run_int(params, [3, 20], [0, 0], [4096, 4096])
    b = run_int(params, [3, 300], [0, 0], [4096, 4096])
    assert a.dt.tolist() == [3, 16] == b.dt.tolist()
    assert compare_traces(a, b) is None


def test_checker_reports_a_single_bit_flip():
    _, params, ticks, channels, weights_q = _layer_and_stream("zoh")
    good = run_int(params, ticks, channels, weights_q)
    bad = run_int(params, ticks, channels, weights_q)
    bad.z[17, 2, 1] ^= 1
    assert compare_traces(good, good) is None
    assert compare_traces(good, bad).startswith("event 17: z differs")


def test_saturation_is_clamped_and_counted():
    layer = SAHiPPOLayer(1, 8, "zoh", alpha=0.5, dt_scale=0.01)
    params = SAHiPPOParams.from_layer(layer, dt_max=8, state_fmt=QFormat.parse("sQ3.14"), work_fmt=QFormat.parse("sQ20.14"))
    weights = np.full(30, params.input_fmt.max_int)
    trace = run_int(params, np.arange(30), np.zeros(30, dtype=int), weights)
    assert trace.saturation_count > 0
    assert params.state_fmt.contains(trace.z)


def test_decays_stay_inside_unit_circle():
    fmt = QFormat.parse("sQ1.17")
    q = quantize_complex_decay(np.array([1.0, 0.9999999, -1.0, 0.7071068 + 0.7071068j]), fmt)
    assert np.all(q[:, 0] ** 2 + q[:, 1] ** 2 < (1 << 34))
    _, params, _, _, _ = _layer_and_stream("zoh", n=32)
    one = 1 << params.decay_fmt.frac_bits
    assert np.all(params.decay_q[..., 0] ** 2 + params.decay_q[..., 1] ** 2 < one * one)
    assert np.all(params.g_q[:, 0] == 0)


def test_integer_model_rejects_bad_input():
    _, params, ticks, channels, weights_q = _layer_and_stream("taylor2")
    with pytest.raises(ValueError, match="input_fmt"):
        run_int(params, [1], [0], [params.input_fmt.max_int + 1])
    with pytest.raises(ValueError, match="non-decreasing"):
        run_int(params, [5, 4], [0, 0], [1, 1])
    with pytest.raises(ValueError, match="channel out of range"):
        run_int(params, [1], [5], [1])
    with pytest.raises(ValueError, match="beyond g_fmt"):
        SAHiPPOParams.from_float(8, 0.01, 1.0, np.zeros((1, 8)), [0.0], [1.0], 64, g_fmt=QFormat.parse("uQ2.20"))
    with pytest.raises(ValueError, match="unknown format names"):
        SAHiPPOParams.from_float(8, 1.0, 1.0, np.zeros((1, 8)), [0.0], [1.0], 8, state_format=QFormat.parse("sQ8.8"))
    with pytest.raises(ValueError, match="overflow"):
        SAHiPPOParams.from_float(8, 1.0, 1.0, np.zeros((1, 8)), [0.0], [1.0], 8, work_fmt=QFormat.parse("sQ30.14"))


# --- SPikE-SSM block -----------------------------------------------------------------------
def test_s4d_fft_equals_recurrence():
    rng = np.random.default_rng(1234)
    s4d = S4D(4, 16)
    u = torch.tensor(rng.standard_normal((2, 64, 4)))
    assert torch.allclose(s4d(u), s4d.recurrence(u), atol=1e-12)


def test_spike_ssm_block_runs_both_paths():
    rng = np.random.default_rng(1234)
    class Threshold(torch.nn.Module):
        def forward(self, y):
            return (y > 0.5).to(y.dtype)

    block = SpikeSSMBlock(4, 16, neuron=Threshold())
    u = torch.tensor(rng.standard_normal((2, 32, 4)))
    assert torch.allclose(block(u), block(u, recurrent=True), atol=1e-12)
    assert block(u).shape == u.shape


def test_table_sizes_are_reported():
    _, zoh, _, _, _ = _layer_and_stream("zoh", n=16, h=2, dt_max=31)
    assert zoh.decay_digits == 3 and zoh.decay_digit_bits == 8
    rows = zoh.decay_rows
    assert rows == [max((int(g) >> shift) & 255 for g in zoh.g_q.reshape(-1)) + 1 for shift in (0, 8, 16)]
    assert zoh.table_bits == {"g": 2 * 32 * 24, "decay": sum(rows) * 8 * 2 * 18}
    _, tay, _, _, _ = _layer_and_stream("taylor2", n=16, h=2, dt_max=31)
    assert tay.max_substeps == int(tay.substeps.max()) >= 1
    assert tay.table_bits["g_sub"] == 2 * 32 * 24
    assert tay.table_bits["substeps"] == 2 * 32 * tay.max_substeps.bit_length()


@pytest.mark.parametrize("method", ["taylor2", "zoh"])
def test_default_formats_hold_at_n64(method):
    layer = SAHiPPOLayer(1, 64, method, alpha=30.0, dt_scale=0.01)
    params = SAHiPPOParams.from_layer(layer, dt_max=255)
    rng = np.random.default_rng(64)
    ticks = np.sort(rng.integers(0, 600, 24))
    weights_q = params.input_fmt.quantize(rng.standard_normal(24))
    trace = run_int(params, ticks, np.zeros(24, dtype=int), weights_q)
    with torch.no_grad():
        y, _, _ = layer.forward_events(torch.tensor(ticks), torch.zeros(24, dtype=torch.int64), torch.tensor(params.input_fmt.to_float(weights_q)))
    scale = float(np.abs(y.numpy()).max())
    assert np.abs(params.out_fmt.to_float(trace.y) - y.numpy()).max() < 2e-3 * scale
    assert trace.saturation_count == 0


def test_spike_ssm_block_with_refractory_lif():
    block = SpikeSSMBlock(4, 16)
    u = torch.tensor(np.random.default_rng(5).standard_normal((2, 40, 4)) * 3)
    out = block(u)
    assert torch.allclose(out, block(u, recurrent=True), atol=1e-10)
    out.square().sum().backward()
    assert block.s4d.log_dt.grad is not None and block.neuron.v_th.grad is not None


@pytest.mark.parametrize("method", ["taylor2", "zoh"])
def test_integer_corners_zero_input_and_same_tick(method):
    _, params, _, _, _ = _layer_and_stream(method, h=1)
    zero = run_int(params, [0, 5, 40, 41], [0, 0, 0, 0], [0, 0, 0, 0])
    assert not zero.z.any() and not zero.y.any() and not zero.spike.any()
    one = params.input_fmt.quantize(1.0)
    first = run_int(params, [7], [0], [one])
    both = run_int(params, [7, 7], [0, 0], [one, one])
    assert both.dt.tolist() == [7, 0]
    jump = (params.b_q * one + (1 << (params.coef_fmt.frac_bits + params.input_fmt.frac_bits - params.state_fmt.frac_bits - 1))) >> (
        params.coef_fmt.frac_bits + params.input_fmt.frac_bits - params.state_fmt.frac_bits
    )
    assert np.array_equal(both.z[1], first.z[0] + jump)


def test_composed_decays_stay_within_a_few_lsb_of_the_exact_decay():
    _, params, _, _, _ = _layer_and_stream("zoh", n=32, h=2, dt_max=40)
    lam = nplr(32).lam
    fd = params.decay_fmt.frac_bits
    worst = 0.0
    for g_q in params.g_q.reshape(-1):
        if g_q == 0:
            continue
        exact = np.exp(lam * params.g_fmt.to_float(int(g_q)))
        d = params.composed_decay(int(g_q))
        err = np.abs((d[:, 0] + 1j * d[:, 1]) / (1 << fd) - exact) * (1 << fd)
        worst = max(worst, float(err.max()))
        assert np.all(d[:, 0] ** 2 + d[:, 1] ** 2 < (1 << 2 * fd))
    # three digits: one table rounding (<= 0.71 LSB) per factor, one per product
    assert 0 < worst < 4.0


def test_decay_digit_bits_are_checked():
    args = (8, 1.0, 0.05, np.zeros((1, 8)), [0.0], [1.0], 8)
    assert SAHiPPOParams.from_float(*args, method="zoh", decay_digit_bits=12).decay_digits == 2
    with pytest.raises(ValueError, match="decay_digit_bits must be"):
        SAHiPPOParams.from_float(*args, method="zoh", decay_digit_bits=0)
    with pytest.raises(ValueError, match="fewer, wider digits"):
        SAHiPPOParams.from_float(*args, method="zoh", decay_digit_bits=4)
