"""The FLAMES-style stack (golden/flames.py, bench/flames_fsdd.py): float event memory, export,
integer model, and the DH-LIF and SA-HiPPO cores in amaranth.sim on one recording."""

import copy

import numpy as np
import pytest
import torch

from bench.flames_fsdd import rtl_recording, simulate_sahippo
from golden.flames import (
    FlamesConfig,
    FlamesFSDD,
    event_memory,
    export_flames,
    parameter_count,
    run_flames_int,
    spike_events,
    train_flames,
)
from golden.sahippo import SAHiPPOLayer
from sim.checker import MismatchError
from sim.tb_sahippo import SAHiPPOCase

TINY = dict(hidden=8, n_branches=4, n_state=8, bin_ms=20, window_ms=400, epochs=1, batch_size=8, threads=1)


class _Data:
    """The two fields of golden.train.SpeechData that train_flames reads."""

    def __init__(self, counts, labels):
        self.counts, self.labels = counts, labels

    def __len__(self):
        return int(self.labels.shape[0])


def _synthetic(n, steps, seed):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    rates = torch.rand(10, 32, generator=gen) * 3
    counts = torch.poisson(rates[labels][:, None, :].expand(n, steps, 32).contiguous(), generator=gen)
    return _Data(counts.to(torch.int64), labels)


@pytest.fixture(scope="module")
def tiny():
    """A tiny network after one epoch on synthetic counts, and its integer export."""
    config = FlamesConfig(**TINY)
    data = _synthetic(32, config.n_steps, seed=1)
    torch.manual_seed(0)
    before = FlamesFSDD(config).state_dict()
    model, history = train_flames(config, data, _synthetic(10, config.n_steps, seed=2), log=lambda *a: None)
    return config, data, before, model, history, export_flames(model)


def test_event_memory_is_the_event_path():
    """The batched spike-gated recurrence equals SAHiPPOLayer.forward_events on the same events."""
    layer = SAHiPPOLayer(3, 8, "zoh", alpha=[0.5, 1.0, 2.0], dt_scale=[0.05, 0.1, 0.2], seed=3)
    with torch.no_grad():
        layer.d.zero_()
    gen = torch.Generator().manual_seed(4)
    spikes = (torch.rand(2, 15, 3, generator=gen) < 0.4).to(torch.float64)
    with torch.no_grad():
        total = event_memory(spikes, layer, dt_max=15)
        check_against_events(layer, spikes, total)


def check_against_events(layer, spikes, total):
    for b in range(spikes.shape[0]):
        ticks, channels = spike_events(spikes[b].numpy())
        y, _, _ = layer.forward_events(ticks, channels, np.ones(ticks.size))
        for h in range(layer.n_channels):
            expected = float(y[torch.as_tensor(channels == h)].sum())
            got = float(2.0 * (layer.c_t[h] * total[b, h]).sum().real)
            assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_event_memory_refuses_bad_input():
    layer = SAHiPPOLayer(3, 8, "zoh")
    with pytest.raises(ValueError, match="spikes must be"):
        event_memory(torch.zeros(2, 5, 4), layer, 5)
    with pytest.raises(ValueError, match="zoh"):
        event_memory(torch.zeros(2, 5, 3), SAHiPPOLayer(3, 8, "taylor2"), 5)


def test_config_refuses_bad_sizes():
    with pytest.raises(ValueError, match="even order"):
        FlamesConfig(n_state=7)
    with pytest.raises(ValueError, match="bin_ms"):
        FlamesConfig(bin_ms=0)


def test_tiny_network_trains_and_exports(tiny):
    config, data, before, model, history, net = tiny
    assert len(history) == 1 and np.isfinite(history[0]["train_loss"])
    after = model.state_dict()
    assert not torch.equal(before["dendrites.weight"], after["dendrites.weight"])
    assert not torch.equal(before["memory.log_alpha"], after["memory.log_alpha"])
    assert parameter_count(model) == 8 * 32 + 8 * 4 + 8 + 2 * 8 + 10 * 8 * 8 + 10
    assert net.sahippo.dt_max == config.n_steps and net.sahippo.method == "zoh"
    assert net.readout_weight_q.shape == (10, 64)


def test_integer_model_is_deterministic_and_refuses_bad_counts(tiny):
    _, data, _, _, _, net = tiny
    counts = data.counts[0].numpy()
    a, b = run_flames_int(net, counts), run_flames_int(net, counts.copy())
    assert np.array_equal(a.scores, b.scores) and np.array_equal(a.sahippo.z, b.sahippo.z)
    assert a.ticks.size == int(a.dhlif.spike.sum()) > 0
    with pytest.raises(ValueError, match="counts must be"):
        run_flames_int(net, counts[:, :31])


def test_float_and_integer_agree(tiny):
    """Where the float and integer DH-LIF spike alike, the summed memory states agree to the
    quantisation error, and most decisions agree."""
    _, data, _, model, _, net = tiny
    with torch.no_grad():
        features, spikes = model.features(data.counts.to(torch.float64))
        decisions = model(data.counts.to(torch.float64)).argmax(-1).numpy()
    lsb = 2.0 ** -net.sahippo.state_fmt.frac_bits
    same_raster, agree = 0, 0
    for i in range(len(data)):
        result = run_flames_int(net, data.counts[i].numpy())
        agree += result.decision == decisions[i]
        if np.array_equal(result.dhlif.spike, spikes[i].numpy() > 0):
            same_raster += 1
            err = np.abs(result.features_q * lsb - features[i].numpy()).max()
            scale = np.abs(features[i].numpy()).max()
            assert err <= 1e-3 * scale + 1e-2, (i, err, scale)
    assert same_raster >= len(data) // 2
    assert agree >= 0.8 * len(data)


def test_one_recording_through_the_cores(tiny):
    _, data, _, _, _, net = tiny
    row = rtl_recording(net, data.counts[3].numpy(), "synthetic-3")
    assert row["decision_rtl"] == row["decision_golden"]
    assert row["events"] > 0
    assert row["dhlif_cycles"] >= net.dhlif.n_neurons * data.counts.shape[1]
    assert row["sahippo_cycles"] >= row["events"] * net.sahippo.n_modes


def test_checker_sees_one_flipped_state_bit(tiny):
    _, data, _, _, _, net = tiny
    result = run_flames_int(net, data.counts[3].numpy())

    class Flipped(SAHiPPOCase):
        def expected_beats(self):
            states, outputs, count = super().expected_beats()
            states = copy.deepcopy(states)
            states[5][0]["im"] ^= 1
            return states, outputs, count

    case = Flipped("flip", net.sahippo, result.ticks, result.channels, result.weights_q)
    with pytest.raises(MismatchError, match="field 'im'"):
        simulate_sahippo(case)


def test_real_recording_through_the_cores(shared_data, tiny):
    """One real FSDD test recording (cochlea counts) through both cores, bit for bit."""
    from golden.train import load_speech_data

    config, _, _, _, _, net = tiny
    recording = load_speech_data("test", config.bin_ms, config.window_ms, limit=1)
    row = rtl_recording(net, recording.counts[0].numpy(), recording.names[0])
    assert row["decision_rtl"] == row["decision_golden"] and row["events"] > 0
