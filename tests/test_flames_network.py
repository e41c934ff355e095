"""A FLAMES network (DH-LIF -> SA-HiPPO memory -> event pooling) as a network of registered layer
kinds: the integer network equals golden.flames' integer path bit for bit, the model file stores
it, the fit check sizes it, and bad input is counted."""

import numpy as np
import pytest
import torch

from golden.errors import SpikestreamError
from golden.event_pool import EventPoolParams
from golden.fit import estimate_fit
from golden.fixed import QFormat
from golden.flames import FlamesConfig, FlamesFSDD, FlamesInt, export_flames, flames_network, run_flames_int
from golden.model_file import ModelFileError, _sha256, load_model, save_model, to_manifest, write_raw
from golden.network import LayerParams, NetworkParams, run_network
from golden.sahippo import SAHiPPOParams
from golden.sahippo import run_int as sahippo_run_int
from sim.processor_model import random_network

CONFIG = dict(hidden=6, n_branches=4, n_state=8, bin_ms=20, window_ms=240)


def _flames_int(seed=0, **overrides) -> FlamesInt:
    torch.manual_seed(seed)
    model = FlamesFSDD(FlamesConfig(**{**CONFIG, "seed": seed, **overrides}))
    with torch.no_grad():  # a readout that is not all zeros before training
        model.readout.weight.normal_(0.0, 0.5)
        model.readout.bias.normal_(0.0, 0.5)
    return export_flames(model.eval())


def _counts(n, steps, seed, rate=2.0):
    rng = np.random.default_rng(seed)
    return rng.poisson(rate, (n, steps, 32)).astype(np.int64)


@pytest.fixture(scope="module")
def net():
    flames = _flames_int()
    return flames, flames_network(flames, bin_ticks=20_000, max_events_per_step=640)


def test_network_equals_the_flames_integer_path(net):
    flames, params = net
    assert params.kinds == ["dhlif", "sahippo", "event_pool"]
    counts = _counts(4, flames.n_steps, seed=1)
    batch = run_network(params, counts)
    spiked = 0
    for i, sample in enumerate(counts):
        want = run_flames_int(flames, sample)
        trace = run_network(params, sample)
        dh, sa, pool = trace.layers
        assert np.array_equal(dh.spikes.numpy(), want.dhlif.spike)
        assert np.array_equal(dh.neuron.membrane.numpy(), want.dhlif.membrane)
        assert np.array_equal(dh.neuron.current.numpy(), want.dhlif.current)
        # Every SA-HiPPO event, in the order of the golden event list.
        ks, chs = np.nonzero(sa.neuron.event.numpy())
        assert np.array_equal(ks + 1, want.ticks) and np.array_equal(chs, want.channels)
        assert np.array_equal(sa.neuron.z.numpy()[ks, chs], want.sahippo.z)
        assert np.array_equal(sa.neuron.dt.numpy()[ks, chs], want.sahippo.dt)
        assert np.array_equal(sa.output.sum(0).numpy(), want.features_q)
        assert np.array_equal(trace.scores.numpy(), want.scores)
        assert int(trace.prediction) == want.decision
        assert trace.first_mismatch(run_network(params, sample)) is None
        for j, layer in enumerate(trace.layers):  # the batch run is the per-sample run
            for name, value in layer.state_fields().items():
                assert torch.equal(batch.layers[j].state_fields()[name][i], value), (j, name)
        spiked += want.ticks.size
    assert spiked > 0, "no DH-LIF spike: the test would not exercise the memory"


def test_model_file_round_trip(net, tmp_path):
    _, params = net
    loaded = load_model(save_model(tmp_path / "flames.safetensors", params))
    assert to_manifest(loaded)[0] == to_manifest(params)[0]
    counts = _counts(2, 12, seed=3)
    assert run_network(params, counts).first_mismatch(run_network(loaded, counts)) is None
    manifest, arrays = to_manifest(params)
    assert "layers[0].neuron.weight_q" not in arrays, "DH-LIF weights are stored once, as the layer's"
    assert manifest["layers"][1]["neuron"]["scalars"] == {"method": "zoh"}


@pytest.mark.parametrize("edit, field", [
    (lambda m, a: m["layers"][1]["neuron"]["scalars"].update(method="euler"), "layers[1].neuron.method"),
    (lambda m, a: a.__setitem__("layers[1].weight_q", a["layers[1].weight_q"] + 1), "layers[1].weight_q"),
    (lambda m, a: a.__setitem__("layers[0].bias_q", a["layers[0].bias_q"] + 1), "layers[0].bias_q"),
    (lambda m, a: m["layers"][2]["neuron"]["scalars"].update(n_classes=9), "layers[2].neuron"),
    (lambda m, a: m["layers"][2].update(n_in=7), "layers[2].n_in"),
])
def test_model_file_refuses_a_broken_flames_layer(net, tmp_path, edit, field):
    _, params = net
    manifest, arrays = to_manifest(params)
    edit(manifest, arrays)
    for name, array in arrays.items():  # keep the array digests right: the field check must catch it
        manifest["arrays"][name]["sha256"] = _sha256(array)
    path = write_raw(tmp_path / "broken.safetensors", manifest, arrays)
    with pytest.raises(ModelFileError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_model(path)


def _readout(flames, words_fmt):
    """The flames readout reading words of ``words_fmt``."""
    layer = flames_network(flames, bin_ticks=10, max_events_per_step=640).layers[2]
    frac = layer.weight_fmt.frac_bits + words_fmt.frac_bits
    return LayerParams(layer.weight_q, np.zeros(10, dtype=np.int64), layer.weight_fmt, QFormat(2, frac),
                       EventPoolParams(10, words_fmt))


def test_the_memory_words_go_to_a_readout_of_their_format(net):
    flames, params = net
    dh, memory, _ = params.layers
    with pytest.raises(ValueError, match=r"layers\[2\]\.neuron: takes the sQ10\.14 words of layers\[1\]"):
        NetworkParams(n_inputs=32, bin_ticks=10, layers=[dh, memory, _readout(flames, QFormat(8, 14))],
                      max_events_per_step=640)
    spiking = random_network(0, n_inputs=memory.n_outputs, hidden=(("lif", 4),)).layers
    with pytest.raises(ValueError, match=r"layers\[2\]\.neuron: takes the sQ10\.14 words"):
        NetworkParams(n_inputs=32, bin_ticks=10, layers=[dh, memory, *spiking], max_events_per_step=640)


def test_intervals_beyond_dt_max_are_clipped_and_counted(net):
    """dt_max = 3 steps: an interval of 10 steps is clipped to 3 and counted, as the golden core clips it."""
    flames, _ = net
    sa = flames.sahippo
    short = SAHiPPOParams.from_float(sa.n_state, np.full(sa.n_channels, 1.0), np.full(sa.n_channels, 0.05),
                                     c=np.zeros((sa.n_channels, sa.n_state)), d=np.zeros(sa.n_channels),
                                     threshold=np.zeros(sa.n_channels), dt_max=3, method="zoh")
    memory = LayerParams(np.diag(np.full(sa.n_channels, flames.weight_one_q)), np.zeros(sa.n_channels, dtype=np.int64),
                         sa.input_fmt, sa.input_fmt, short)
    params = NetworkParams(n_inputs=sa.n_channels, bin_ticks=10, layers=[memory, flames_network(
        flames, bin_ticks=10, max_events_per_step=640).layers[2]], max_events_per_step=8)
    spikes = np.zeros((16, sa.n_channels), dtype=np.int64)
    spikes[[0, 10, 12], 0] = 1   # channel 0: intervals 1, 10 (clipped), 2
    spikes[[5, 15], 1] = 1       # channel 1: intervals 6 (clipped), 10 (clipped)
    trace = run_network(params, spikes)
    layer = trace.layers[0]
    assert layer.counters()["clipped_interval"] == 3
    ks, chs = np.nonzero(spikes)
    golden = sahippo_run_int(short, ks + 1, chs, np.full(ks.size, flames.weight_one_q))
    assert np.array_equal(layer.neuron.dt.numpy()[ks, chs], golden.dt)
    assert golden.dt.max() == 3


def test_a_saturating_memory_is_counted(net):
    """Event weights at the top of input_fmt clamp (the layer's input counter) and drive the modes of
    a narrow state (sQ4.14) into its clamp (the core's counter), as golden's core counts them."""
    flames, _ = net
    h, n = flames.sahippo.n_channels, flames.sahippo.n_state
    sa = SAHiPPOParams.from_float(n, np.full(h, 1.0), np.full(h, 0.05), c=np.zeros((h, n)), d=np.zeros(h),
                                  threshold=np.zeros(h), dt_max=flames.n_steps, method="zoh",
                                  state_fmt=QFormat(4, 14), work_fmt=QFormat(14, 14))
    big = np.diag(np.full(sa.n_channels, sa.input_fmt.max_int))
    memory = LayerParams(big, np.zeros(sa.n_channels, dtype=np.int64), sa.input_fmt, sa.input_fmt, sa)
    readout = _readout(flames, sa.state_fmt)
    params = NetworkParams(n_inputs=sa.n_channels, bin_ticks=10, layers=[memory, readout], max_events_per_step=64)
    counts = np.full((flames.n_steps, sa.n_channels), 3, dtype=np.int64)
    trace = run_network(params, counts)
    layer = trace.layers[0]
    ks, chs = np.nonzero(counts)
    weights, clamped = sa.input_fmt.saturate(sa.input_fmt.max_int * counts[ks, chs])
    golden = sahippo_run_int(sa, ks + 1, chs, weights)
    assert layer.counters()["current"] == int(np.sum(clamped)) > 0
    assert layer.counters()["neuron"] == golden.saturation_count > 0


def test_fit_check_sizes_every_flames_layer(net):
    _, params = net
    report = estimate_fit(params, "85F")
    names = [{m.name for m in layer.memories} for layer in report.layers]
    assert {"weights", "branch accumulators", "core state", "core params"} <= names[0]
    assert {"core state", "t_last", "g table", "decay table"} <= names[1]
    assert names[2] == {"weights", "pooled sums"}
    assert all(layer.mult18x18d >= 1 for layer in report.layers)
    assert report.fits


def test_model_file_check_prints_it_and_the_build_prepares_it(net, tmp_path, capsys):
    """``golden.model_file check`` summarises a FLAMES file; ``hw.build --model --dry-run`` writes its design files."""
    from golden import model_file
    from hw import build

    _, params = net
    path = save_model(tmp_path / "flames.safetensors", params)
    assert model_file.main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "layers[0] dhlif: 32 -> 6" in out and "layers[1] sahippo: 6 -> 6" in out and "layers[2] event_pool: 48 -> 10" in out
    assert build.main(["--model", str(path), "--dry-run", "--out", str(tmp_path / "build")]) == 0
    assert (tmp_path / "build" / "top.il").is_file()


def test_bench_export_writes_a_checked_model_file(net, tmp_path):
    """``bench.flames_fsdd --export``: the file holds the network, its decisions checked against run_flames_int."""
    from bench.flames_fsdd import export_model

    flames, _ = net
    counts = torch.from_numpy(_counts(3, flames.n_steps, seed=7))
    int_dec = np.array([run_flames_int(flames, c.numpy()).decision for c in counts])
    data = type("Split", (), {"counts": counts, "labels": torch.tensor([0, 1, 2]), "__len__": lambda self: 3})()
    config = FlamesConfig(**CONFIG)
    path = tmp_path / "flames.safetensors"
    export_model(path, flames, config, {"float_acc": 1.0, "int_acc": 2.0}, int_dec, data)
    loaded = load_model(path)
    assert loaded.provenance["n_steps"] == flames.n_steps and loaded.bin_ticks == 20_000
    assert loaded.max_events_per_step == 640
    with pytest.raises(SpikestreamError, match="differ from run_flames_int on 1 test"):
        export_model(tmp_path / "again.safetensors", flames, config, {"float_acc": 1.0, "int_acc": 2.0},
                     np.where(np.arange(3) == 0, (int_dec + 1) % 10, int_dec), data)


def test_first_mismatch_names_the_trailing_axes_of_branch_currents_and_modes(net):
    """Fields with axes after (batch, step, neuron): a DH-LIF branch current, an SA-HiPPO mode."""
    flames, params = net
    counts = _counts(2, flames.n_steps, seed=3)
    want = run_network(params, counts)
    got = run_network(params, counts)
    got.layers[0].neuron.current[1, 4, 5, 2] += 1
    current = int(want.layers[0].neuron.current[1, 4, 5, 2])
    n_branches = CONFIG["n_branches"]
    assert want.first_mismatch(got) == (f"layers[0].current batch 1 step 4 neuron 5 element [2] of ({n_branches},): "
                                        f"expected {current}, got {current + 1}")
    got = run_network(params, counts)
    z = got.layers[1].neuron.z
    z[0, 3, 1, 2, 1] += 1
    mode = int(want.layers[1].neuron.z[0, 3, 1, 2, 1])
    assert want.first_mismatch(got) == (f"layers[1].z batch 0 step 3 neuron 1 element [2, 1] of {tuple(z.shape[3:])}: "
                                        f"expected {mode}, got {mode + 1}")
