"""The golden integer network against a per-step, per-event reference built from the cores' own
integer steps; event input against count input; the default network on real N-MNIST data."""

import numpy as np
import pytest
import torch

from golden.csilif import CSiLIFParams
from golden.data.events import CAMERA_EVENT_DTYPE, InputMap, channel_events, read_nmnist
from golden.fixed import QFormat
from golden.layers import LIReadoutParams
from golden.network import (
    DEFAULT_BIN_TICKS,
    LayerParams,
    NetworkParams,
    counts_from_events,
    default_network,
    run_network,
    signed_bits,
)

HIDDEN_KINDS = ("csilif", "silif", "refractory_lif")


def reference_run(params: NetworkParams, counts: np.ndarray) -> dict:
    """Step by step, layer by layer, like the hardware: one weight column added per event or
    spike (Python ints, so nothing can overflow), bias added at step close, saturation to the
    core's input format, then the core's own ``.step()``. Returns per layer the currents and the
    state after each step (as lists over steps)."""
    states = [layer.neuron.initial_state() for layer in params.layers]
    out = [{"currents": [], "states": []} for _ in params.layers]
    for k in range(counts.shape[0]):
        events = [j for j in range(params.n_inputs) for _ in range(int(counts[k, j]))]
        for i, layer in enumerate(params.layers):
            acc = [0] * layer.n_out
            for j in events:
                for n in range(layer.n_out):
                    acc[n] += int(layer.weight_q[n, j])
            fmt = layer.neuron.input_fmt
            current = torch.tensor([fmt.saturate(a + int(b))[0] for a, b in zip(acc, layer.bias_q)], dtype=torch.int64)
            result = layer.neuron.step(states[i], current)
            states[i] = result[0]
            out[i]["currents"].append(current)
            out[i]["states"].append(states[i])
            if not layer.is_readout:
                events = [n for n in range(layer.n_out) if bool(states[i].s[n])]
    return out


@pytest.mark.parametrize("kind", HIDDEN_KINDS)
def test_network_matches_per_event_reference(kind):
    params = default_network(seed=3, hidden_kind=kind, n_hidden=12)
    rng = np.random.default_rng(5)
    counts = rng.poisson(0.6, size=(10, params.n_inputs)).astype(np.int64)
    counts[3] = 0  # an empty step still advances every neuron
    trace = run_network(params, counts)
    ref = reference_run(params, counts)
    for i, layer in enumerate(trace.layers):
        assert torch.equal(layer.currents, torch.stack(ref[i]["currents"])), f"layers[{i}].currents"
        for name in ("u", "refr", "s", "w", "re", "im"):
            if hasattr(layer.neuron, name) and hasattr(ref[i]["states"][0], name):
                want = torch.stack([getattr(s, name) for s in ref[i]["states"]])
                assert torch.equal(getattr(layer.neuron, name), want), f"layers[{i}].{name}"
    assert trace.layers[0].spikes.any(), "the test drive must make the hidden layer spike"
    u = trace.readout.neuron.u
    assert torch.equal(trace.scores, u.sum(dim=0))


def test_batch_equals_single_samples():
    params = default_network(seed=1, n_hidden=8)
    counts = np.random.default_rng(0).poisson(0.4, size=(3, 7, params.n_inputs))
    batch = run_network(params, counts)
    for b in range(3):
        one = run_network(params, counts[b])
        for i in range(len(params.layers)):
            for name, value in one.layers[i].state_fields().items():
                assert torch.equal(batch.layers[i].state_fields()[name][b], value), (b, i, name)
        assert int(batch.prediction[b]) == int(one.prediction)


def test_first_mismatch_points_at_the_flipped_word():
    params = default_network(seed=2, n_hidden=8)
    counts = np.random.default_rng(1).poisson(0.5, size=(6, params.n_inputs))
    a = run_network(params, counts)
    b = run_network(params, counts)
    assert a.first_mismatch(b) is None
    b.layers[0].neuron.im[4, 5] ^= 1
    assert a.first_mismatch(b) == (
        f"layers[0].im step 4 neuron 5: expected {int(a.layers[0].neuron.im[4, 5])}, got {int(b.layers[0].neuron.im[4, 5])}"
    )
    assert a.first_mismatch(b, fields={"currents", "s", "u"}) is None  # im not compared
    c = run_network(params, counts)
    c.layers[1].currents[0, 2] += 1
    assert a.first_mismatch(c).startswith("layers[1].currents step 0 neuron 2:")


def _nmnist_path(shared_data):
    return shared_data / "events" / "nmnist_sample.bin"


def test_event_path_equals_count_path(shared_data):
    params = default_network()
    events = read_nmnist(_nmnist_path(shared_data)).events
    n_steps = 20  # 200 ms: the events after it lie outside the sample and are left out
    # Counts by hand, event by event, from the spec: k = t // bin_ticks, channel = (p*H'+y//4)*W'+x//4.
    counts = np.zeros((n_steps, params.n_inputs), dtype=np.int64)
    for x, y, t, p in zip(events["x"], events["y"], events["t"], events["p"]):
        k = int(t) // params.bin_ticks
        if k < n_steps:
            counts[k, (int(p) * 9 + int(y) // 4) * 9 + int(x) // 4] += 1
    assert np.array_equal(counts_from_events(params, events, n_steps), counts)
    by_camera = run_network(params, events, n_steps)
    by_counts = run_network(params, counts)
    assert by_counts.first_mismatch(by_camera) is None
    channel = params.input_map(events)
    by_channel = run_network(params, channel, n_steps)
    assert by_counts.first_mismatch(by_channel) is None
    # Shifted ticks with the matching sample start give the same result.
    shifted = channel.copy()
    shifted["t"] += 1_000_000
    assert by_counts.first_mismatch(run_network(params, shifted, n_steps, t_start=1_000_000)) is None


@pytest.mark.parametrize("kind", HIDDEN_KINDS)
def test_default_network_spikes_on_real_nmnist(shared_data, kind):
    params = default_network(hidden_kind=kind)
    events = read_nmnist(_nmnist_path(shared_data)).events
    trace = run_network(params, events, 32)
    spikes = trace.layers[0].spikes
    rate = float(spikes.float().mean())
    assert 0.02 < rate < 0.6, rate
    assert int((spikes.sum(dim=0) > 0).sum()) >= params.layers[0].n_out // 2
    assert trace.saturation_counts() == [{"current": 0, "neuron": 0}, {"current": 0, "neuron": 0}]
    assert len(set(trace.scores.tolist())) > 1


def test_default_network_is_deterministic():
    a, b = default_network(seed=7), default_network(seed=7)
    assert all(np.array_equal(x.weight_q, y.weight_q) for x, y in zip(a.layers, b.layers))
    assert not np.array_equal(a.layers[0].weight_q, default_network(seed=8).layers[0].weight_q)
    assert a.bin_ticks == DEFAULT_BIN_TICKS and a.n_inputs == 162 and a.n_classes == 10


# --- accumulator width, saturation, decision ------------------------------------------------------


def test_signed_bits():
    assert [signed_bits(0, 0), signed_bits(-1, 0), signed_bits(0, 1), signed_bits(-128, 127), signed_bits(-129, 0),
            signed_bits(0, 128)] == [1, 1, 2, 8, 9, 9]


def test_acc_bits_hold_the_worst_case_input():
    params = default_network(seed=0, n_hidden=16)
    layer = params.layers[0]
    bits = layer.acc_bits
    lo_int, hi_int = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    worst_hi = max(params.max_events_per_step * int(max(layer.weight_q[n].max(), 0)) + max(int(layer.bias_q[n]), 0)
                   for n in range(layer.n_out))
    worst_lo = min(params.max_events_per_step * int(min(layer.weight_q[n].min(), 0)) + min(int(layer.bias_q[n]), 0)
                   for n in range(layer.n_out))
    assert lo_int <= worst_lo and worst_hi <= hi_int
    # ... and one bit fewer would not: the width is tight.
    assert worst_lo < lo_int // 2 or worst_hi > hi_int // 2
    # The worst case runs: every event of one step on the strongest column.
    n, j = np.unravel_index(np.argmax(layer.weight_q), layer.weight_q.shape)
    counts = np.zeros((1, params.n_inputs), dtype=np.int64)
    counts[0, j] = params.max_events_per_step
    run_network(params, counts)
    counts[0, j] += 1
    with pytest.raises(ValueError, match=r"^step 0 carries 2049 events, more than max_events_per_step=2048"):
        run_network(params, counts)
    with pytest.raises(ValueError, match=r"^sample \(1,\) step 0 carries 2049 events"):
        run_network(params, np.stack([np.zeros_like(counts), counts]))
    readout = params.layers[1]
    assert readout.acc_bits == signed_bits(
        min(0, int(np.clip(readout.weight_q, None, 0).sum(axis=1).min() + min(0, readout.bias_q.min()))),
        max(int((np.clip(readout.weight_q, 0, None).sum(axis=1) + np.clip(readout.bias_q, 0, None)).max()), 0),
    )


def _tiny(weight_q, bias_q, readout_w, readout_b, n_hidden=3, frac=12):
    neuron = CSiLIFParams.from_float(np.full(n_hidden, 0.9), np.full(n_hidden, 0.1), np.ones(n_hidden))
    fmt = QFormat(8, frac)
    readout = LIReadoutParams.from_float(alpha=np.full(len(readout_b), 0.9))
    rfmt = QFormat(6, 14)
    return NetworkParams(
        n_inputs=np.asarray(weight_q).shape[1], bin_ticks=100, max_events_per_step=64,
        layers=[LayerParams(weight_q, bias_q, fmt, fmt, neuron),
                LayerParams(readout_w, readout_b, rfmt, rfmt, readout)],
    )


def test_current_saturation_is_counted():
    big = (1 << 18)  # 64.0 in Q.12, beyond the C-SiLIF input format sQ6.12 (+-32)
    params = _tiny([[big, 1], [-big, 0], [1, 1]], [0, 0, 0], np.zeros((2, 3), dtype=np.int64), [0, 0])
    counts = np.array([[1, 0], [0, 1], [2, 0], [0, 0]])
    trace = run_network(params, counts)
    fmt = params.layers[0].neuron.input_fmt
    assert trace.layers[0].current_saturation_count == 4  # steps 0 and 2, neurons 0 and 1
    assert trace.layers[0].currents[0].tolist() == [fmt.max_int, fmt.min_int, 1]
    assert trace.layers[0].current_saturated[:, :2].tolist() == [[True, True], [False, False], [True, True], [False, False]]


# --- per-layer weight formats and row scales ---------------------------------------------------

W4 = QFormat(1, 3)  # 4-bit weights, f_w = 3
W4_WEIGHTS = [[3, -5], [7, 1], [-8, -8]]
W4_BIAS = [1, 0, -1]
W4_COUNTS = np.array([[1, 1], [2, 0]])  # sums [-1, 8, -17] then [7, 14, -17]


def _one_layer(weight_fmt, input_frac, row_scale_q=None, row_scale_fmt=None):
    """A 2 -> 3 C-SiLIF layer of 4-bit weights whose core reads currents with ``input_frac``
    fractional bits, and a zero readout."""
    neuron = CSiLIFParams.from_float(np.full(3, 0.9), np.full(3, 0.1), np.ones(3), input_fmt=QFormat(8, input_frac))
    readout = LIReadoutParams.from_float(alpha=np.full(2, 0.9))
    rfmt = QFormat(6, 14)
    hidden = LayerParams(W4_WEIGHTS, W4_BIAS, weight_fmt, weight_fmt, neuron,
                         row_scale_q=row_scale_q, row_scale_fmt=row_scale_fmt)
    zeros = np.zeros((2, 3), dtype=np.int64)
    return NetworkParams(n_inputs=2, bin_ticks=100, max_events_per_step=4,
                         layers=[hidden, LayerParams(zeros, [0, 0], rfmt, rfmt, readout)])


def test_narrow_weights_shift_right_rounding_half_up():
    params = _one_layer(W4, input_frac=2)  # shift 3 - 2 = 1
    assert params.layers[0].current_shift == 1
    trace = run_network(params, W4_COUNTS)
    # -1/2 -> 0, 8/2 -> 4, -17/2 -> -8 (half up); 7/2 -> 4, 14/2 -> 7.
    assert trace.layers[0].currents.tolist() == [[0, 4, -8], [4, 7, -8]]


def test_narrow_weights_shift_left_exactly():
    params = _one_layer(W4, input_frac=12)  # shift 3 - 12 = -9
    assert params.layers[0].current_shift == -9
    trace = run_network(params, W4_COUNTS)
    assert trace.layers[0].currents.tolist() == [[-512, 4096, -17 * 512], [7 * 512, 14 * 512, -17 * 512]]


def test_row_scale_multiplies_the_sum_then_rounds():
    # Scales 1.0, 1.5 and 1/16 in uQ2.4: shift 3 + 4 - 2 = 5.
    params = _one_layer(W4, input_frac=2, row_scale_q=[16, 24, 1], row_scale_fmt=QFormat(2, 4, signed=False))
    assert params.layers[0].current_shift == 5
    assert params.layers[0].scaled_bits == params.layers[0].acc_bits + 6
    trace = run_network(params, W4_COUNTS)
    # [-16, 192, -17] / 32 -> [0, 6, -1];  [112, 336, -17] / 32 -> [4 (3.5 up), 11 (10.5 up), -1].
    assert trace.layers[0].currents.tolist() == [[0, 6, -1], [4, 11, -1]]


def test_scaled_current_saturates_and_counts():
    params = _one_layer(W4, input_frac=2, row_scale_q=[1023, 0, 1023], row_scale_fmt=QFormat(10, 0, signed=False))
    trace = run_network(params, W4_COUNTS)  # shift 3 - 2 = 1; sQ8.2 holds -512..511
    assert trace.layers[0].currents.tolist() == [[-511, 0, -512], [511, 0, -512]]
    assert trace.layers[0].current_saturation_count == 3


def test_row_scale_validation():
    neuron = CSiLIFParams.from_float(np.full(3, 0.9), np.full(3, 0.1), np.ones(3))
    uq = QFormat(2, 4, signed=False)
    with pytest.raises(ValueError, match=r"layer\.row_scale_fmt: missing; row_scale_q is given"):
        LayerParams(W4_WEIGHTS, W4_BIAS, W4, W4, neuron, row_scale_q=[1, 1, 1])
    with pytest.raises(ValueError, match=r"layer\.row_scale_q: missing; row_scale_fmt is given"):
        LayerParams(W4_WEIGHTS, W4_BIAS, W4, W4, neuron, row_scale_fmt=uq)
    with pytest.raises(ValueError, match=r"layer\.row_scale_fmt: must be an unsigned QFormat of at most 18 bits"):
        LayerParams(W4_WEIGHTS, W4_BIAS, W4, W4, neuron, row_scale_q=[1, 1, 1], row_scale_fmt=QFormat(2, 4))
    with pytest.raises(ValueError, match=r"layer\.row_scale_fmt: must be an unsigned QFormat of at most 18 bits"):
        LayerParams(W4_WEIGHTS, W4_BIAS, W4, W4, neuron, row_scale_q=[1, 1, 1],
                    row_scale_fmt=QFormat(3, 16, signed=False))
    with pytest.raises(ValueError, match=r"layer\.row_scale_q: needs shape \(3,\)"):
        LayerParams(W4_WEIGHTS, W4_BIAS, W4, W4, neuron, row_scale_q=[1, 1], row_scale_fmt=uq)
    with pytest.raises(ValueError, match=r"layer\.row_scale_q: values -1\.\.64 outside uQ2\.4 \(0\.\.63\)"):
        LayerParams(W4_WEIGHTS, W4_BIAS, W4, W4, neuron, row_scale_q=[-1, 64, 1], row_scale_fmt=uq)
    with pytest.raises(ValueError, match=r"layer\.row_scale_q: must hold integers"):
        LayerParams(W4_WEIGHTS, W4_BIAS, W4, W4, neuron, row_scale_q=[1.0, 1.0, 1.0], row_scale_fmt=uq)


def test_prediction_first_index_wins_ties():
    zeros = np.zeros((3, 2), dtype=np.int64)
    params = _tiny(zeros, [0, 0, 0], np.zeros((4, 3), dtype=np.int64), [0, 500, 0, 500])
    trace = run_network(params, np.zeros((3, 2), dtype=np.int64))
    assert trace.scores.tolist()[1] == trace.scores.tolist()[3] > 0
    assert int(trace.prediction) == 1
    params = _tiny(zeros, [0, 0, 0], np.zeros((4, 3), dtype=np.int64), [0, 0, 0, 0])
    assert int(run_network(params, np.zeros((2, 2), dtype=np.int64)).prediction) == 0


# --- validation -----------------------------------------------------------------------------------


def test_validation_names_the_field():
    good = default_network(n_hidden=4)
    hidden, readout = good.layers
    with pytest.raises(ValueError, match=r"layers\[0\]\.weight_q: has 162 columns but n_inputs is 100"):
        NetworkParams(100, 10, [hidden, readout])
    with pytest.raises(ValueError, match=r"layers\[1\]\.neuron: li_readout is only allowed as the last layer"):
        NetworkParams(162, 10, [hidden, readout, readout])
    with pytest.raises(ValueError, match=r"layers\[0\]\.neuron: the last layer must be the li_readout"):
        NetworkParams(162, 10, [hidden])
    with pytest.raises(ValueError, match=r"layer\.bias_fmt: sQ3\.12 must have the fractional bits of weight_fmt sQ2\.13"):
        LayerParams(hidden.weight_q, hidden.bias_q, QFormat(2, 13), hidden.bias_fmt, hidden.neuron)
    with pytest.raises(ValueError, match=r"layer\.weight_q: values .* outside sQ2\.12"):
        LayerParams(hidden.weight_q * 16, hidden.bias_q, hidden.weight_fmt, hidden.bias_fmt, hidden.neuron)
    with pytest.raises(ValueError, match=r"layer\.bias_q: needs shape \(4,\)"):
        LayerParams(hidden.weight_q, hidden.bias_q[:3], hidden.weight_fmt, hidden.bias_fmt, hidden.neuron)
    narrow = LayerParams(hidden.weight_q, hidden.bias_q, hidden.weight_fmt, hidden.bias_fmt, hidden.neuron, acc_bits=12)
    with pytest.raises(ValueError, match=r"layers\[0\]\.acc_bits: 12 bits cannot hold .* 2048 events per step"):
        NetworkParams(162, 10, [narrow, readout])
    with pytest.raises(ValueError, match="input_map: maps to 2312 channels"):
        NetworkParams(162, 10, [hidden, readout], input_map=InputMap((34, 34)))
    with pytest.raises(ValueError, match="bin_ticks: must be a positive int"):
        NetworkParams(162, 0, [hidden, readout])


def test_bad_input_is_refused():
    params = default_network(n_hidden=4)
    with pytest.raises(ValueError, match="must be integers"):
        run_network(params, np.zeros((3, 162)))
    with pytest.raises(ValueError, match="non-negative"):
        run_network(params, -np.ones((3, 162), dtype=np.int64))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., T, 162\)"):
        run_network(params, np.zeros((3, 10), dtype=np.int64))
    with pytest.raises(ValueError, match="n_steps is required"):
        run_network(params, channel_events([1], [5]))
    with pytest.raises(ValueError, match="out of range"):
        run_network(params, channel_events([162], [5]), 2)
    params.input_map = None
    with pytest.raises(ValueError, match="need a network with an input_map"):
        run_network(params, np.zeros(2, dtype=CAMERA_EVENT_DTYPE), 2)
