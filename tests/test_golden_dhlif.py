"""DH-LIF golden model: hand-computed float dynamics, integer vs Python-int reference and vs
float, strict threshold and saturation corners, spatial pooling and event-pooling readout."""

import numpy as np
import pytest
import torch

from golden.dhlif import (
    DHLIF,
    DHLIFParams,
    FlamesNetwork,
    branch_slices,
    run_int,
    spatial_pool,
)
from golden.fixed import QFormat


def test_branch_slices_are_disjoint_and_cover():
    slices = branch_slices(10, 4)
    covered = [j for s in slices for j in range(10)[s]]
    assert covered == list(range(10))
    with pytest.raises(ValueError, match="n_branches"):
        branch_slices(3, 4)


def test_float_layer_matches_hand_recurrence():
    layer = DHLIF(4, 1, n_branches=2, tau_branch=(2.0, 8.0), tau_soma=4.0, threshold=1.0)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, 0.25, 1.0, -0.5]]))
    p = torch.tensor([[[1, 0, 0, 0], [0, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]]], dtype=torch.float64)
    a = np.exp(-1 / np.array([2.0, 8.0]))
    b = np.exp(-1 / 4.0)
    i, u, s, spikes = np.zeros(2), 0.0, 0.0, []
    for x in p[0].numpy():
        i = a * i + np.array([0.5 * x[0] + 0.25 * x[1], 1.0 * x[2] - 0.5 * x[3]])
        u = b * u + i.sum() - 1.0 * s
        s = float(u > 1.0)
        spikes.append(s)
    assert layer(p)[0, :, 0].tolist() == spikes
    assert sum(spikes) >= 1


def _params(n_in=12, n_out=6, scale=3.0, seed=0, **formats):
    layer = DHLIF(n_in, n_out, seed=seed)
    with torch.no_grad():
        layer.weight.mul_(scale)
    return DHLIFParams.from_layer(layer, **formats)


def _reference(params: DHLIFParams, counts):
    """Independent scalar Python-int transcription of the module docstring."""
    c = params.decay_fmt.frac_bits
    rnd = lambda x: (x + (1 << (c - 1))) >> c  # noqa: E731
    sat = lambda x, f: min(max(x, f.min_int), f.max_int)  # noqa: E731
    h, d = params.n_neurons, params.n_branches
    bounds = [k * params.in_features // d for k in range(d + 1)]
    i = [[0] * d for _ in range(h)]
    u, s = [0] * h, [False] * h
    out = []
    for p in counts.tolist():
        for n in range(h):
            for k in range(d):
                drive = sum(int(params.weight_q[n, j]) * p[j] for j in range(bounds[k], bounds[k + 1]))
                i[n][k] = sat(rnd(int(params.branch_decay_q[n, k]) * i[n][k]) + drive, params.current_fmt)
            u[n] = sat(rnd(int(params.soma_decay_q[n]) * u[n]) + sum(i[n]) - params.threshold_q * s[n], params.membrane_fmt)
            s[n] = u[n] > params.threshold_q
        out.append((list(u), list(s)))
    return out


def test_integer_matches_python_int_reference():
    rng = np.random.default_rng(7)
    params = _params()
    counts = rng.poisson(0.5, (60, 12))
    trace = run_int(params, counts)
    for t, (u, s) in enumerate(_reference(params, counts)):
        assert trace.membrane[t].tolist() == u, f"tick {t}"
        assert trace.spike[t].tolist() == s, f"tick {t}"
    assert trace.spike.sum() > 10


def test_integer_tracks_float_layer():
    rng = np.random.default_rng(7)
    params = _params(seed=3)
    counts = rng.poisson(0.4, (200, 12))
    trace = run_int(params, counts)
    layer = params.to_float_layer()
    with torch.no_grad():
        spikes = layer(torch.tensor(counts)[None])[0].numpy().astype(bool)
    assert (spikes != trace.spike).mean() < 0.01
    assert trace.spike.sum() > 50


def test_threshold_is_strict_and_soft_reset_subtracts():
    one = 1 << 12
    params = DHLIFParams(
        weight_q=[[one, one]], branch_decay_q=[[0, 0]], soma_decay_q=[0], threshold_q=one
    )
    trace = run_int(params, np.array([[1, 0], [1, 1], [0, 0]]))
    assert trace.membrane[:, 0].tolist() == [one, 2 * one, -one]
    assert trace.spike[:, 0].tolist() == [False, True, False]


def test_saturation_clamps_and_counts():
    params = _params(scale=20.0, current_fmt=QFormat.parse("sQ3.12"), membrane_fmt=QFormat.parse("sQ3.12"))
    trace = run_int(params, np.full((20, 12), 5))
    assert trace.saturation_count > 0
    assert params.membrane_fmt.contains(trace.membrane) and params.current_fmt.contains(trace.current)


def test_bad_parameters_and_inputs():
    params = _params()
    with pytest.raises(ValueError, match="non-negative integer"):
        run_int(params, -np.ones((3, 12), dtype=int))
    with pytest.raises(ValueError, match="counts must be"):
        run_int(params, np.ones((3, 5), dtype=int))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        DHLIFParams([[1, 1]], [[1 << 16, 0]], [0], 1)
    with pytest.raises(ValueError, match="share fractional bits"):
        DHLIFParams([[1, 1]], [[0, 0]], [0], 1, weight_fmt=QFormat.parse("sQ4.10"))


def test_spatial_pool_sums_windows():
    x = np.arange(2 * 4 * 6).reshape(1, -1)
    pooled = spatial_pool(x, (2, 4, 6), 2)
    grid = x.reshape(2, 4, 6)
    assert pooled.shape == (1, 2 * 2 * 3)
    assert pooled[0, 0] == grid[0, :2, :2].sum() and pooled[0, -1] == grid[1, 2:, 4:].sum()
    assert torch.equal(spatial_pool(torch.tensor(x), (2, 4, 6), 2), torch.tensor(pooled))
    with pytest.raises(ValueError, match="must divide"):
        spatial_pool(x, (2, 4, 6), 4)


def test_flames_network_trains_end_to_end():
    torch.manual_seed(0)
    net = FlamesNetwork(16, (1, 4, 4), 2, n_state=8, n_classes=2)
    labels = torch.arange(16) % 2
    counts = torch.poisson(0.1 + 0.4 * labels[:, None, None].to(torch.float64).expand(16, 30, 16))
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(counts), labels)
        loss.backward()
        losses.append(loss.item())
        opt.step()
    assert net.ssm.log_alpha.grad is not None and net.dendrites.weight.grad.abs().sum() > 0
    assert losses[-1] < 0.5 * losses[0]
    with pytest.raises(ValueError, match="must divide"):
        FlamesNetwork(16, (1, 4, 4), 3, n_state=8, n_classes=2)
