"""golden.train: a tiny run on a few FSDD recordings writes checkpoint, history and curves, is
bit-reproducible with the same seed, reloads, and exports to a model file whose integer
network runs; bad settings are refused with messages that say what to fix."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from golden.data.cochlea import encode_fsdd
from golden.data.events import bin_events
from golden.model_file import load_model
from golden.network import run_network
from golden.train import (
    TrainConfig,
    build_network,
    export_trained,
    load_checkpoint,
    load_speech_data,
    main,
    parameter_count,
    train,
)

REPO = Path(__file__).resolve().parent.parent
TINY = dict(hidden=8, bin_ms=50, window_ms=500, epochs=1, batch_size=8, train_limit=24, test_limit=10, augment=0)


def quiet(*_args, **_kwargs):
    pass


@pytest.fixture(scope="module")
def tiny_run(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_csilif")
    return train(TrainConfig(neuron="csilif", seed=3, **TINY), out, log=quiet)


def test_tiny_run_writes_checkpoint_history_and_curves(tiny_run):
    out = tiny_run.out_dir
    assert (out / "checkpoint.pt").is_file() and (out / "curves.png").stat().st_size > 1000
    doc = json.loads((out / "history.json").read_text())
    assert doc["config"]["neuron"] == "csilif" and doc["config"]["seed"] == 3
    assert doc["parameters"] == parameter_count(tiny_run.model)
    (row,) = doc["history"]
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "test_acc_softmax_sum", "seconds"):
        assert np.isfinite(row[key]), key
    assert len(row["spike_rate"]) == 2
    assert len(tiny_run.train_data) == 24 and len(tiny_run.test_data) == 10


def test_same_seed_gives_bit_identical_weights_other_seed_does_not(tiny_run, tmp_path):
    again = train(TrainConfig(neuron="csilif", seed=3, **TINY), tmp_path / "again", log=quiet)
    first, second = tiny_run.model.state_dict(), again.model.state_dict()
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name
    other = train(TrainConfig(neuron="csilif", seed=4, **TINY), tmp_path / "other", log=quiet)
    assert not torch.equal(first["layers.0.linear.weight"], other.model.state_dict()["layers.0.linear.weight"])


def test_checkpoint_reloads_to_the_same_outputs(tiny_run):
    model, config, history = load_checkpoint(tiny_run.checkpoint)
    assert config == tiny_run.config and history == tiny_run.history
    x = tiny_run.test_data.counts[:4].float()
    with torch.no_grad():
        assert torch.equal(model(x), tiny_run.model.eval()(x))


def test_export_writes_a_model_file_whose_integer_network_runs(tiny_run, tmp_path):
    path = tmp_path / "tiny.safetensors"
    result = export_trained(tiny_run.model, tiny_run.config, tiny_run.train_data, tiny_run.test_data, path,
                            calibration=16, log=quiet)
    params = load_model(path)
    assert params.kinds == ["csilif", "csilif", "li_readout"]
    assert params.bin_ticks == 50_000 and params.max_events_per_step == 32 * 50
    assert params.provenance["config"]["neuron"] == "csilif"
    trace = run_network(params, tiny_run.test_data.counts)
    assert torch.equal(trace.prediction, result["trace"].prediction)
    assert result["int_acc"] == float((trace.prediction == tiny_run.test_data.labels).double().mean())
    assert 0.0 <= result["agreement"] <= 1.0 and len(result["saturations"]) == 3


def test_speech_data_is_the_binned_cochlea_encoding(shared_data):
    data = load_speech_data("test", bin_ms=20, window_ms=400, limit=12)
    encoded = encode_fsdd("test")
    names = list(encoded.names)
    cut = 0
    for row, name in enumerate(data.names):
        events = encoded.events_of(names.index(name))
        want = bin_events(events, 32, 20_000, t_start=0, n_bins=20)
        assert np.array_equal(data.counts[row].numpy(), want)
        cut += len(events) - int(want.sum())
        assert encoded.digits[names.index(name)] == int(data.labels[row])
    assert data.events_cut == cut > 0  # 400 ms cuts the longer recordings
    assert int(data.counts.sum(dim=-1).max()) <= TrainConfig(bin_ms=20, window_ms=400).max_events_per_step
    assert len(set(data.labels.tolist())) >= 5  # spread over the sorted list, not the first dozen


@pytest.mark.parametrize("neuron", ["silif", "cadlif", "rlif"])
def test_every_neuron_type_trains_a_step(neuron):
    torch.manual_seed(0)
    model = build_network(neuron, hidden=6)
    x = torch.poisson(torch.full((3, 7, 32), 0.5))
    out = model(x)
    assert out.shape == (3, 7, 10)
    torch.nn.functional.cross_entropy(out.mean(dim=1), torch.tensor([0, 1, 2])).backward()
    assert model.layers[0].linear.weight.grad.abs().sum() > 0


def test_refractory_lif_network_exports_and_its_integer_network_runs(tiny_run, tmp_path):
    torch.manual_seed(0)
    model = build_network("rlif", hidden=8)
    model.train()
    with torch.no_grad():  # batch norm running statistics from a few training recordings
        model(tiny_run.train_data.counts.float())
    model.eval()
    config = TrainConfig(neuron="rlif", **TINY)
    path = tmp_path / "rlif.safetensors"
    result = export_trained(model, config, tiny_run.train_data, tiny_run.test_data, path, calibration=16, log=quiet)
    params = load_model(path)
    assert params.kinds == ["refractory_lif", "refractory_lif", "li_readout"]
    assert params.layers[0].neuron.input_fmt.width == 24
    assert params.provenance["source"] == "golden.export.export_network"
    trace = run_network(params, tiny_run.test_data.counts)
    assert torch.equal(trace.prediction, result["trace"].prediction)
    assert all(s == {"current": 0, "neuron": 0} for s in result["saturations"])
    assert result["agreement"] >= 0.8


@pytest.mark.parametrize("changes, message", [
    (dict(neuron="lstm"), "neuron must be one of"),
    (dict(hidden=0), "hidden must be a positive int"),
    (dict(bin_ms=20, window_ms=810), "window_ms=810 must be a multiple of bin_ms=20"),
    (dict(dropout=1.0), r"dropout must lie in \[0, 1\)"),
    (dict(loss="mse"), "loss must be"),
    (dict(train_limit=3), "train_limit must be None or an int >= 10"),
    (dict(lr=0.0), "lr must be > 0"),
])
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)


def test_cli_help_and_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--neuron", "--epochs", "--seed", "--hidden", "--bin-ms", "--out", "--export"):
        assert option in text
    assert main(["--bin-ms", "20", "--window-ms", "810"]) == 2
    assert "window_ms=810 must be a multiple of bin_ms=20" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--lr", "inf"], "argument --lr: expected a finite number"),
    (["--lr", "0"], "argument --lr: 0 must be a number above 0"),
    (["--dropout", "1.5"], "argument --dropout: 1.5 must lie in [0, 1)"),
    (["--epochs", "0"], "argument --epochs: must be at least 1, not 0"),
    (["--hidden", "1e9"], "argument --hidden: expected an integer"),
])
def test_cli_refuses_bad_values_at_parse_time(argv, message, usage_error):
    assert message in usage_error(main, argv)


def test_cli_refuses_an_export_that_is_a_folder_or_exists(tmp_path, usage_error):
    assert "is a directory" in usage_error(main, ["--export", str(tmp_path)])
    existing = tmp_path / "net.safetensors"
    existing.write_bytes(b"precious")
    assert "exists; pass --force" in usage_error(main, ["--export", str(existing)])
    assert existing.read_bytes() == b"precious"


def _build_report(folder: Path, design: str, fmax_mhz: float = 76.8) -> Path:
    from hw.bitstream.report import BuildReport

    nextpnr = {
        "utilization": {"TRELLIS_COMB": {"used": 7259, "available": 83640}, "TRELLIS_FF": {"used": 5063, "available": 83640},
                        "MULT18X18D": {"used": 25, "available": 156}, "DP16KD": {"used": 45, "available": 208}},
        "fmax": {"$glbnet$link.clk": {"achieved": fmax_mhz, "constraint": 75.0}},
        "critical_paths": [{"from": "posedge clk", "to": "posedge clk", "path": [
            {"type": "clk-to-q", "delay": 5.6, "from": {"cell": "ram"}, "to": {"cell": "ram"}},
            {"type": "routing", "delay": 2.0, "from": {"cell": "ram"}, "to": {"cell": "lut"}},
            {"type": "logic", "delay": 0.4, "from": {"cell": "lut"}, "to": {"cell": "lut"}},
            {"type": "routing", "delay": 1.0, "from": {"cell": "lut"}, "to": {"cell": "ff"}},
            {"type": "setup", "delay": 0.1, "from": {"cell": "ff"}, "to": {"cell": "ff"}}]}],
    }
    folder.mkdir(parents=True)
    BuildReport.from_nextpnr(nextpnr, design=design, board="ulx3s", device="LFE5U-85F", package="CABGA381",
                             speed_grade="6", requested_clock_mhz=75.0, pll={"output_mhz": 75.0}).write(folder)
    return folder / "report.json"


def test_bench_reads_bitstream_reports_of_the_trained_networks(tmp_path):
    """bench.fsdd fills the bitstream columns from hw.build's report.json, for the right network only."""
    from bench.fsdd import NOT_BUILT, build_figures, build_paragraph, build_table, find_build

    good = _build_report(tmp_path / "ulx3s-85F-fsdd_silif", "processor fsdd_silif.safetensors (32-176-176-10, lanes=2, steps=40)")
    slow = _build_report(tmp_path / "other", "processor fsdd_rlif.safetensors (32-176-176-10, lanes=1, steps=40)", 60.0)
    assert find_build("silif", [good.parent, slow.parent]) == good
    assert find_build("csilif", [good.parent, slow.parent]) is None
    figures = build_figures(good)
    assert (figures["lanes"], figures["n_steps"], figures["clock_mhz"]) == (2, 40, 75.0)
    assert figures["used"] == {"LUT4": 7259, "FF": 5063, "MULT18X18D": 25, "DP16KD": 45}
    assert figures["available"]["DP16KD"] == 208 and figures["timing_met"] and figures["fmax_mhz"] == pytest.approx(76.8)
    assert figures["critical_path"]["delay_ns"] == pytest.approx(9.1)
    rlif = build_figures(slow)
    assert not rlif["timing_met"]
    rtl = [{"lanes": 2, "identical": 2, "runs": 2, "cycles": [1500, 3000], "hardware": "abc", "date": "today"}]
    rows = [{"neuron": "silif", "build": figures, "rtl": rtl}, {"neuron": "rlif", "build": rlif, "rtl": []},
            {"neuron": "csilif", "build": None, "rtl": []}]
    table = build_table(rows)
    assert "| 2,250 / 3,000 | 30 / 40 |" in table[2]  # cycles at the build's lanes, microseconds at 75 MHz
    assert "| 60.0 | **no** | not yet measured |" in table[3]
    assert table[4].startswith(f"| csilif | {NOT_BUILT} |")
    text = build_paragraph(rows[0])
    assert "**timing met** (Fmax 76.8 MHz)" in text and "LUT4 7,259 / 83,640" in text
    assert "Critical path 9.1 ns" in text and "from `ram` (5.6 ns clock-to-out)" in text and "to `ff`" in text
    assert "**timing NOT met**" in build_paragraph(rows[1])
    (tmp_path / "smoke").mkdir()
    (tmp_path / "smoke" / "report.json").write_text(json.dumps({"design": "refractory_lif n_neurons=256", "clocks": []}))
    with pytest.raises(ValueError, match="not a processor build report"):
        build_figures(tmp_path / "smoke" / "report.json")


#: The trained, quantised FSDD networks of docs/fsdd_results.md (python -m golden.train --neuron
#: <neuron> --export ...), checked in so that CI runs the deployment check on them.
TRAINED = {neuron: REPO / "models" / f"fsdd_{neuron}.safetensors" for neuron in ("csilif", "silif", "rlif")}
RTL_SUBSET = 5


@pytest.mark.slow
@pytest.mark.parametrize("neuron", sorted(TRAINED))
def test_trained_network_in_rtl_equals_golden_on_test_recordings(shared_data, neuron):
    """Deployment check: FSDD test recordings, spread over the test split, through the
    processor's Verilog (Icarus, 8 lanes) give every spike, readout membrane, score and decision
    of the golden integer network, and each takes a measured number of clock cycles. CI runs a
    subset of 5 per network (about a minute each); ``python -m bench.fsdd --rtl 20 --rtl-neurons
    csilif silif rlif`` runs 20."""
    from bench.fsdd import rtl_subset

    params = load_model(TRAINED[neuron])
    outcome = rtl_subset(neuron, params, params.provenance["n_steps"], RTL_SUBSET, lanes=8, log=quiet)
    assert outcome["identical"] == outcome["runs"] == RTL_SUBSET, outcome["first_mismatch"]
    assert len(outcome["cycles"]) == RTL_SUBSET and min(outcome["cycles"]) > 1000  # first event to SCORES beat


def test_fsdd_table_takes_the_complete_flames_loso_runs(tmp_path, monkeypatch):
    """bench.fsdd adds every FLAMES LOSO JSON that holds all five folds to its LOSO table."""
    import bench.fsdd
    from golden.data.fsdd import FSDD_SPEAKERS

    monkeypatch.setattr(bench.fsdd, "BENCH_DIR", tmp_path)

    def fold(speaker, acc):
        return {"speaker": speaker, "epochs": 6, "train_seconds": 100.0, "n_train": 2000, "n_test": 500,
                "augment": 0, "float_acc": acc, "int_acc": acc - 0.2, "agreement": 99.0}

    whole = {"flames h112 e6 a0": [fold(s, 80.0 + i) for i, s in enumerate(FSDD_SPEAKERS)]}
    part = {"flames h112 e6 a2": [fold("george", 90.0)]}
    for name, loso in (("flames_fsdd_loso_whole", whole), ("flames_fsdd_loso_part_george", part)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"meta": {"loso": loso}}))
    assert bench.fsdd.flames_loso() == whole
    text = "\n".join(bench.fsdd.loso_section(whole, []))
    assert "| flames h112 e6 a0 | 6 | 0 | 80.0 / 79.8 |" in text and "**82.0 / 81.8**" in text
    assert "python -m bench.flames_fsdd --hidden H" in text
