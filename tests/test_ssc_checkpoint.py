"""The SSC checkpoint importer: every layer's shapes and parameters against the authors' state_dict,
the per-layer weight formats and row scales of the export, and the command line's errors."""

import numpy as np
import pytest
import torch

from golden.csilif import CSiLIF
from golden.export import weight_formats
from golden.fit import estimate_fit
from golden.layers import LIReadout, fold_batchnorm
from golden.model_file import load_model
from golden.silif import SiLIF
from golden.ssc_checkpoint import NEURON_PARAMETERS, CheckpointError, float_network, import_checkpoint, load_state_dict
from golden.ssc_checkpoint import main as importer_main

FILES = {"silif": "ssc_silif.pth", "csilif": "ssc_csilif.pth"}
MODULES = {"silif": SiLIF, "csilif": CSiLIF}


@pytest.fixture(scope="module")
def checkpoints(shared_data):
    folder = shared_data / "ssm_lif_ssc"
    if not folder.is_dir():
        pytest.skip(f"the SSC checkpoints are not at {folder}")
    return folder


def _state(checkpoints, kind):
    return load_state_dict(checkpoints / FILES[kind])


@pytest.mark.parametrize("kind", sorted(FILES))
def test_float_network_holds_the_state_dict(checkpoints, kind):
    """140 -> 512 -> 512 -> 35; every parameter and batch-norm statistic equal to its key."""
    state = _state(checkpoints, kind)
    net = float_network(state, kind)
    assert [(b.linear.in_features, b.linear.out_features) for b in net.layers] == [(140, 512), (512, 512), (512, 35)]
    _, mapping = NEURON_PARAMETERS[kind]
    for i, block in enumerate(net.layers):
        readout = i == len(net.layers) - 1
        assert isinstance(block.neuron, LIReadout if readout else MODULES[kind])
        assert torch.equal(block.linear.weight, state[f"snn.{i}.W.weight"])
        for key in ("weight", "bias", "running_mean", "running_var"):
            assert torch.equal(getattr(block.norm, key), state[f"snn.{i}.norm.{key}"]), (i, key)
        for key, name in ({"alpha": "alpha"} if readout else mapping).items():
            assert torch.equal(getattr(block.neuron, name), state[f"snn.{i}.{key}"]), (i, key)
        assert not block.training


@pytest.mark.parametrize("kind, bits, row_scale", [("silif", None, False), ("csilif", 8, True)])
def test_import_quantises_every_layer_from_the_state_dict(checkpoints, tmp_path, kind, bits, row_scale):
    """The integer layers apply the batch-norm-folded state_dict weights within half a weight LSB
    (times the row scale), with the input side of the authors (700 channels pooled 5 by 5)."""
    state = _state(checkpoints, kind)
    params, report = import_checkpoint(checkpoints / FILES[kind], kind, weight_bits=bits, row_scale=row_scale,
                                       n_steps=20, calibration_samples=2)
    assert params.n_inputs == 140 and params.channel_pool.n_sources == 700 and params.channel_pool.pool == 5
    assert [layer.kind for layer in params.layers] == [kind, kind, "li_readout"]
    net = float_network(state, kind)
    for i, (layer, block) in enumerate(zip(params.layers, net.layers)):
        weight, bias = (t.numpy() for t in fold_batchnorm(state[f"snn.{i}.W.weight"], block.norm))
        assert layer.weight_q.shape == weight.shape and layer.bias_q.shape == bias.shape
        scale = layer.row_scale_fmt.to_float(layer.row_scale_q)[:, None] if layer.scaled else 1.0
        if bits is not None:
            assert layer.weight_fmt.width == bits
        assert layer.scaled == row_scale
        applied = layer.weight_fmt.to_float(layer.weight_q) * scale
        assert np.all(np.abs(applied - weight) <= layer.weight_fmt.lsb / 2 * scale + 1e-12), i
        applied_bias = layer.bias_fmt.to_float(layer.bias_q) * np.reshape(scale, -1)
        assert np.allclose(applied_bias, bias, atol=float(np.max(layer.bias_fmt.lsb / 2 * scale)) + 1e-12), i
        assert layer.neuron.n_neurons == weight.shape[0]
    model = tmp_path / "m.safetensors"
    assert importer_main([str(checkpoints / FILES[kind]), "--kind", kind, "--out", str(model), "--steps", "20",
                          "--calibration-samples", "2", "--weight-bits", "6", "--row-scale"]) == 0
    loaded = load_model(model)
    assert loaded.channel_pool == params.channel_pool and loaded.layers[1].weight_fmt.width == 6
    assert loaded.provenance["kind"] == kind and loaded.provenance["checkpoint"] == FILES[kind]


def test_fit_aware_import_picks_the_widest_weights_that_fit(checkpoints, capsys):
    params, report = import_checkpoint(checkpoints / FILES["csilif"], "csilif", device="85F", row_scale=True,
                                       n_steps=20, calibration_samples=2)
    bits = [layer.weight_fmt.width for layer in params.layers]
    assert report.fit.fits and estimate_fit(params, "85F").fits
    assert f"weights of {' / '.join(map(str, bits))} bits (layers 0..2) chosen for LFE5U-85F" in report.fit_choice
    assert "at 16 / 16 / 16 bits DP16KD" in report.fit_choice
    for i in range(3):  # one bit more on any layer does not fit
        if bits[i] < 16:
            assert f"layers[{i}] at {bits[i] + 1} bits: DP16KD" in report.fit_choice
            wider = list(bits)
            wider[i] += 1
            again, _ = import_checkpoint(checkpoints / FILES["csilif"], "csilif", weight_bits=wider, row_scale=True,
                                         n_steps=20, calibration_samples=2)
            assert not estimate_fit(again, "85F").fits


def test_errors_name_the_key(checkpoints, tmp_path, capsys, usage_error):
    state = dict(_state(checkpoints, "csilif"))
    with pytest.raises(CheckpointError, match=r"snn\.0\.dt: missing \(the checkpoint has the csilif parameters: "
                                              r"import it with --kind csilif\)"):
        float_network(state, "silif")
    broken = dict(state)
    del broken["snn.1.norm.running_var"]
    with pytest.raises(CheckpointError, match=r"snn\.1\.norm\.running_var: missing"):
        float_network(broken, "csilif")
    broken = dict(state, **{"snn.1.W.weight": torch.zeros(512, 500)})
    with pytest.raises(CheckpointError, match=r"snn\.1\.W\.weight: torch.float32 of shape \(512, 500\), expected .* "
                                              r"\(512, 512\)"):
        float_network(broken, "csilif")
    broken = dict(state, **{"snn.0.b": torch.zeros(3)})
    with pytest.raises(CheckpointError, match=r"snn\.0\.b: .* shape \(3,\), expected .*\(512,\)"):
        float_network(broken, "csilif")
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    out = tmp_path / "m.safetensors"
    from golden.cli import run_main
    assert run_main(importer_main, [str(path), "--kind", "csilif", "--out", str(out)]) == 2
    assert "snn.0.b:" in capsys.readouterr().err and not out.exists()
    out.write_text("mine")
    assert "exists" in usage_error(importer_main, [str(checkpoints / FILES["csilif"]), "--kind", "csilif",
                                                   "--out", str(out)])
    assert out.read_text() == "mine"


def test_weight_formats_choices():
    rng = np.random.default_rng(0)
    weight = rng.normal(0, 1, (6, 9)) * np.array([0.01, 0.1, 1, 3, 5, 0.5])[:, None]
    bias = rng.normal(0, 1, 6)
    plain = weight_formats(weight, bias, bits=8, frac_bits=12)
    assert plain.weight_fmt.width == 8 and plain.row_scale_q is None
    assert plain.weight_fmt.contains(plain.weight_q) and plain.weight_fmt.quantize(np.abs(weight).max()) < 128
    scaled = weight_formats(weight, bias, bits=8, frac_bits=12, row_scale=True)
    assert str(scaled.weight_fmt) == "sQ1.7" and scaled.row_scale_fmt.width == 18 and not scaled.row_scale_fmt.signed
    assert np.abs(scaled.weight_q).max(axis=1).min() >= 126  # each row's largest weight fills the width
    assert np.abs(scaled.real_weights() - weight).max() < np.abs(plain.real_weights() - weight).max()
    tied = weight_formats(weight, bias, bits=None, frac_bits=12)
    assert tied.weight_fmt.frac_bits == tied.bias_fmt.frac_bits == 12
    # Error feedback: the same formats, a smaller output error on inputs like the calibration ones.
    wide, wide_bias = rng.normal(0, 1, (8, 64)), rng.normal(0, 1, 8)
    inputs = (rng.random((2000, 64)) < 0.3).astype(float)
    nearest = weight_formats(wide, wide_bias, bits=4, frac_bits=12, row_scale=True)
    fed = weight_formats(wide, wide_bias, bits=4, frac_bits=12, row_scale=True, inputs=inputs)
    assert fed.weight_fmt == nearest.weight_fmt and np.array_equal(fed.row_scale_q, nearest.row_scale_q)
    scale = nearest.row_scale_fmt.to_float(nearest.row_scale_q)

    def output_error(q):
        applied_bias = q.bias_fmt.to_float(q.bias_q) * scale
        return np.square(inputs @ (q.real_weights() - wide).T + (applied_bias - wide_bias)).mean()

    assert output_error(fed) < 0.85 * output_error(nearest)  # 0.74 with this seed
    with pytest.raises(ValueError, match="weight_bits must be an integer in 2..16"):
        weight_formats(weight, bias, bits=17, frac_bits=12)
    with pytest.raises(ValueError, match="weights reach 300: 4 bits cannot hold them"):
        weight_formats(weight * 0 + 300, bias, bits=4, frac_bits=12)
