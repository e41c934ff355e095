"""The FLAMES-style stack (golden/flames.py, bench/flames_fsdd.py): float event memory, export,
integer model, and the DH-LIF and SA-HiPPO cores in amaranth.sim on one recording."""

import dataclasses

import numpy as np
import pytest
import torch

from bench.flames_fsdd import main, rtl_recording, simulate_sahippo
from golden.data.cochlea import CochleaParams
from golden.flames import (
    FlamesConfig,
    FlamesFSDD,
    event_memory,
    export_flames,
    flames_data,
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
    """The fields of golden.train.SpeechData that train_flames reads (no augmented copies)."""

    def __init__(self, counts, labels):
        self.counts, self.labels = counts, labels
        self.augmented = None

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


def test_config_refuses_bad_data_settings():
    with pytest.raises(ValueError, match="split must be one of"):
        FlamesConfig(split="alice")
    with pytest.raises(ValueError, match="augment must be"):
        FlamesConfig(augment=-1)
    with pytest.raises(ValueError, match="channel_norm must lie"):
        FlamesConfig(channel_norm=2.0)
    assert FlamesConfig(channel_norm=0.5).cochlea.channel_norm == 0.5
    assert FlamesConfig().cochlea.key == CochleaParams().key


@pytest.mark.parametrize("argv, message", [
    (["--folds", "--export", "x.safetensors"], "--folds measures leave-one-speaker-out accuracy only"),
    (["--folds", "--fit"], "--folds measures leave-one-speaker-out accuracy only"),
    (["--folds", "alice"], "argument --folds: invalid choice: 'alice'"),
    (["--channel-norm", "1.5"], "argument --channel-norm: 1.5 must lie in [0, 1]"),
    (["--augment", "-1"], "argument --augment"),
])
def test_cli_refuses_bad_loso_arguments(argv, message, usage_error):
    assert message in usage_error(main, argv)


def test_loso_folds_test_on_the_held_out_speaker(shared_data, tmp_path, monkeypatch, capsys):
    """Two tiny LOSO folds on real recordings: each tests on its held-out speaker only, the JSON
    and the table hold both, and a second run reuses the finished checkpoints."""
    import json

    import bench.common
    import bench.flames_fsdd as flames_bench

    monkeypatch.setattr(flames_bench, "LOSO_DIR", tmp_path / "loso")
    monkeypatch.setattr(bench.common, "BENCH_DIR", tmp_path / "bench")
    config = FlamesConfig(**{**TINY, "window_ms": 800}, train_limit=40, test_limit=20)
    for speaker in ("george", "theo"):
        train, test = flames_data(dataclasses.replace(config, split=speaker))
        assert all(speaker in name for name in test.names) and not any(speaker in name for name in train.names)
    assert flames_bench.run_loso(config, ["george", "theo"], retrain=False, command="test", int_limit=10) == 0
    out = capsys.readouterr().out
    assert "| flames h8 e1 a0 n40 | 1 | 0 | " in out
    (path,) = (tmp_path / "bench").glob("flames_fsdd_loso_*.json")
    folds = json.loads(path.read_text())["meta"]["loso"]["flames h8 e1 a0 n40"]
    assert [f["speaker"] for f in folds] == ["george", "theo"]
    assert all(f["n_test"] == 20 and f["n_int"] == 10 for f in folds)
    assert all(0 <= f["float_acc"] <= 100 and 0 <= f["int_acc"] <= 100 for f in folds)
    flames_bench.run_loso(config, ["george"], retrain=False, command="test")
    out = capsys.readouterr().out
    assert "reusing" in out and "on 20 (float" in out


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
        def expectation(self):
            expectation = super().expectation()
            expectation.beats["o_state"][5][0]["im"] ^= 1
            return expectation

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


# --- hardware fit (bench.flames_fsdd.fit_dhlif, bench.sahippo_core.fit_row) ---------------------
def test_drive_stimulus_visits_every_neuron_with_bounded_drives():
    """The DH-LIF fit stimulus offers neurons 0..H-1 in turn, drives in [-2, 2), not all alike."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.sim import Simulator

    from bench.flames_fsdd import dhlif_fit_params
    from hw.boards.stimulus import DriveStimulus
    from hw.cores.dhlif import DHLIFCore

    core = DHLIFCore(dhlif_fit_params(5, 2), emit_state=False)
    m = Module()
    m.submodules.core = core
    m.submodules.stimulus = stimulus = DriveStimulus(core)
    wiring.connect(m, stimulus.o_drive, core.i_drive)
    wiring.connect(m, core.o_spike, stimulus.i_spike)
    m.d.comb += stimulus.saturation_count.eq(core.saturation_count)
    beats = []

    async def tb(ctx):
        for _ in range(60):
            if ctx.get(stimulus.o_drive.valid) and ctx.get(stimulus.o_drive.ready):
                payload = ctx.get(stimulus.o_drive.payload)
                beats.append((payload.neuron, payload.drive_0, payload.drive_1))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    assert len(beats) >= 20
    assert [b[0] for b in beats] == [i % 5 for i in range(len(beats))]
    two = 2 << core.params.current_fmt.frac_bits
    drives = [d for b in beats for d in b[1:]]
    assert all(-two <= d < two for d in drives) and len(set(drives)) > len(drives) // 2
    assert any(b[1] != b[2] for b in beats)


def test_dhlif_fit_top_elaborates_for_the_85f(tmp_path):
    """The DH-LIF fit top (core, PLL, drive stimulus, LED) prepares a build."""
    from bench.flames_fsdd import dhlif_fit_params
    from hw.boards.core_fit import DHLIFFitTop
    from hw.bitstream import run_build
    from hw.boards.ulx3s import BOARD_CLOCK_HZ, ulx3s_platform
    from hw.cores.dhlif import DHLIFCore
    from hw.pll_ecp5 import solve_pll

    pll = solve_pll(BOARD_CLOCK_HZ, 100e6)
    core = DHLIFCore(dhlif_fit_params(8, 4), emit_state=False)
    run_build(DHLIFFitTop(core, pll_config=pll), ulx3s_platform("85F"), tmp_path, design="dhlif fit",
                       requested_clock_hz=100e6, pll=pll, dry_run=True, router="router2")
    assert (tmp_path / "top.il").is_file() and "router2" in (tmp_path / "build_top.sh").read_text()


def test_fits_refuse_an_unknown_router(tmp_path):
    from bench.flames_fsdd import fit_dhlif
    from bench.sahippo_core import fit_row

    with pytest.raises(ValueError, match="router must be one of"):
        fit_dhlif(8, 4, router="router3", build_dir=tmp_path)
    with pytest.raises(ValueError, match="router must be one of"):
        fit_row(16, n_channels=4, dt_max=15, clock_hz=100e6, variant="85F", seed=1, router="router3",
                build_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_hardware_cells_sum_luts_and_take_the_slower_core():
    from bench.flames_fsdd import NOT_MEASURED, hardware_text

    common = {"FF": 10, "MULT18X18D": 2, "DP16KD": 3, "met": False, "build_s": 60.0, "router": "router2",
              "limit": "a -> b", "routed": True}
    sahippo = {**common, "n_state": 32, "n_channels": 112, "dt_max": 40, "LUT4": 4000, "fmax_mhz": 60.5}
    dhlif = {**common, "n_neurons": 112, "n_branches": 4, "LUT4": 900, "fmax_mhz": 95.0}
    assert hardware_text({})[:2] == (NOT_MEASURED, NOT_MEASURED)
    lut, fmax, text = hardware_text({"sahippo": sahippo, "dhlif": dhlif})
    assert lut.startswith("4,900 (") and fmax.startswith("60.5 (SA-HiPPO")
    assert "| DH-LIF | H = 112, D = 4 | 900 |" in text
    unrouted = {"n_state": 32, "n_channels": 112, "dt_max": 40, "routed": False, "router": "router2",
                "note": "overused arcs"}
    lut, fmax, text = hardware_text({"sahippo": unrouted, "dhlif": dhlif})
    assert "DH-LIF core only" in lut and "not routed" in text and "overused arcs" in text
    assert fmax == "95.0 (DH-LIF core); SA-HiPPO not yet measured (not routed)"
    placed = {**unrouted, "LUT4": 7000, "FF": 7, "MULT18X18D": 18, "DP16KD": 156, "build_s": 2553.0}
    lut, fmax, text = hardware_text({"sahippo": placed, "dhlif": dhlif})
    assert lut == "7,900 (7,000 SA-HiPPO (placed, not routed) + 900 DH-LIF)"
    assert "| 2,553 (stopped) |" in text and "156 of the 208 DP16KD" in text


def test_placed_figures_read_an_unfinished_nextpnr_log(tmp_path):
    from bench.flames_fsdd import placed_figures

    log = tmp_path / "top.tim"
    log.write_text("Info: \t              DP16KD:     156/    208    75%\n"
                   "Info: \t          MULT18X18D:      18/    156    11%\n"
                   "Info: \t          TRELLIS_FF:    7714/  83640     9%\n"
                   "Info: \t        TRELLIS_COMB:    7647/  83640     9%\n"
                   "Info: Max frequency for clock '$glbnet$core.clk': 46.88 MHz (FAIL at 100.00 MHz)\n"
                   "Info:     iter=1 wires=256401 overused=27824 overuse=44125 archfail=NA\n"
                   "Info:     iter=2 wires=283663 overused=24450 overuse=30028 archfail=NA\n")
    figures = placed_figures(log)
    assert figures == {"LUT4": 7647, "FF": 7714, "MULT18X18D": 18, "DP16KD": 156, "placement_estimate_mhz": 46.88,
                       "last_router_iteration": {"iteration": 2, "wires": 283663, "overused": 24450,
                                                 "overuse": 30028}}
    assert placed_figures(tmp_path / "missing.tim") == {}
