"""Export of a float network to the integer network: batch-norm fold, calibrated formats, and
float vs integer agreement (the float-vs-fixed tier; fixed vs hardware is exact elsewhere)."""

import numpy as np
import pytest
import torch
from torch import nn

from golden.csilif import CSiLIF
from golden.export import FloatNetwork, export_network, int_bits_for
from golden.fixed import QFormat
from golden.layers import LIReadout, SNNLayer, fold_batchnorm
from golden.model_file import load_model, save_model
from golden.network import run_network
from golden.refractory_lif import RefractoryLIF
from golden.silif import SiLIF

N_IN, N_CLASSES, STEPS = 24, 4, 15


def synthetic_counts(n, seed):
    """Poisson event counts; class ``k`` fires a quarter of the channels at a high rate."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_CLASSES, n)
    rates = np.full((N_CLASSES, N_IN), 0.1)
    for k in range(N_CLASSES):
        rates[k, k * N_IN // N_CLASSES:(k + 1) * N_IN // N_CLASSES] = 0.8
    counts = rng.poisson(np.repeat(rates[labels][:, None, :], STEPS, axis=1))
    return torch.as_tensor(counts, dtype=torch.int64), torch.as_tensor(labels)


def make_network(neuron_cls, seed=0, train_steps=0):
    torch.manual_seed(seed)
    net = FloatNetwork([SNNLayer(N_IN, neuron_cls(16)), SNNLayer(16, LIReadout(N_CLASSES))])
    counts, labels = synthetic_counts(48, seed=seed + 100)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    net.train()
    for _ in range(max(train_steps, 1)):  # at least one pass, so batch norm has running statistics
        loss = nn.functional.cross_entropy(net.scores(counts.float(), "softmax_sum"), labels)
        optimiser.zero_grad()
        if train_steps:
            loss.backward()
            optimiser.step()
    return net.eval()


def float_predictions(net, counts):
    with torch.no_grad():
        return net.double().scores(counts.double()).argmax(dim=-1)


def test_batchnorm_fold_is_exact_in_float():
    torch.manual_seed(3)
    layer = SNNLayer(10, LIReadout(6)).double()
    with torch.no_grad():
        layer.norm.running_mean.uniform_(-2, 2)
        layer.norm.running_var.uniform_(0.1, 3)
        layer.norm.weight.uniform_(0.5, 2)
        layer.norm.bias.uniform_(-1, 1)
    layer.eval()
    x = torch.rand(3, 7, 10, dtype=torch.float64) * 4
    weight, bias = fold_batchnorm(layer.linear.weight, layer.norm)
    with torch.no_grad():
        reference = layer.currents(x)
    folded = x @ weight.T + bias
    assert torch.allclose(folded, reference, rtol=0, atol=1e-12)
    net = FloatNetwork([layer])
    assert torch.allclose(net.trace(x)[0]["currents"], net.trace(x, folded=False)[0]["currents"], rtol=0, atol=1e-12)


def test_export_trained_csilif_agrees_with_float():
    net = make_network(CSiLIF, seed=0, train_steps=12)
    calib, _ = synthetic_counts(32, seed=1)
    params, report = export_network(net, calib, bin_ticks=1000, provenance={"test": "csilif"})
    assert params.kinds == ["csilif", "li_readout"]
    assert report.prediction_agreement >= 0.9
    for layer in report.layers:
        assert layer["current_saturations"] == 0 and layer["neuron_saturations"] == 0
    assert report.layers[0]["spike_agreement"] > 0.95
    # Held-out samples: integer and float decisions agree on most.
    test, _ = synthetic_counts(40, seed=2)
    agree = (run_network(params, test).prediction == float_predictions(net, test)).double().mean()
    assert agree >= 0.85, float(agree)
    # Formats: one fractional-bit count per layer, the C-SiLIF input a single 18-bit port.
    hidden = params.layers[0]
    assert hidden.neuron.input_fmt.width == 18
    frac = {hidden.weight_fmt.frac_bits, hidden.bias_fmt.frac_bits, hidden.neuron.state_fmt.frac_bits,
            hidden.neuron.input_fmt.frac_bits}
    assert len(frac) == 1
    assert params.provenance["test"] == "csilif" and params.provenance["calibration_samples"] == 32
    assert "layers[0] csilif" in str(report)


def test_export_silif_reports_decays_rounding_to_one(tmp_path):
    net = make_network(SiLIF, seed=1)
    with torch.no_grad():
        net.layers[0].neuron.log_rate_u[2] = -12.0  # alpha = exp(-exp(-12) * 0.004): rounds to 1 in uQ0.18
    calib, _ = synthetic_counts(24, seed=3)
    params, report = export_network(net, calib, bin_ticks=500)
    assert report.layers[0]["decays_rounded_to_one"]["alpha"] == 1
    assert params.layers[0].neuron.alpha_q[2] == (1 << 18) - 1
    assert "decays rounded to 1 (clamped below): alpha 1" in str(report)
    assert report.prediction_agreement >= 0.8
    # The exported network goes through a model file unchanged.
    loaded = load_model(save_model(tmp_path / "silif.safetensors", params))
    assert run_network(params, calib).first_mismatch(run_network(loaded, calib)) is None


class RefractoryLIFNeuron(RefractoryLIF):
    """The float refractory LIF with the ``n_neurons`` attribute SNNLayer needs."""

    @property
    def n_neurons(self):
        return self.n_channels


def test_export_refractory_lif():
    net = make_network(RefractoryLIFNeuron, seed=2, train_steps=4)
    calib, _ = synthetic_counts(24, seed=4)
    params, report = export_network(net, calib, bin_ticks=100)
    hidden = params.layers[0].neuron
    assert params.kinds == ["refractory_lif", "li_readout"]
    assert (hidden.tau_q, hidden.tau_r_q) == (round(0.1 * 2**18), round(0.9 * 2**18))
    assert report.layers[0]["decays_rounded_to_one"] == {"tau": 0, "tau_r": 0}
    assert set(report.layers[0]["max_abs"]) >= {"v", "refr", "u"}
    assert report.layers[0]["spike_agreement"] > 0.95 and report.prediction_agreement >= 0.8
    assert report.layers[0]["current_saturations"] == report.layers[0]["neuron_saturations"] == 0


def test_int_bits_for():
    assert int_bits_for(0.0) == 1
    assert int_bits_for(0.9) == 1  # sQ1.f holds [-1, 1)
    assert int_bits_for(1.0) == 2
    assert int_bits_for(3.9, headroom=2.0) == 4
    assert int_bits_for(0.1, minimum=3) == 3
    for value in (0.3, 1.5, 7.99, 100.0):
        bits = int_bits_for(value)
        assert QFormat(bits, 8).max_value >= value - 2**-8
        assert bits == 1 or QFormat(bits - 1, 8).max_value < value


def test_export_refuses_bad_input():
    net = make_network(CSiLIF)
    counts, _ = synthetic_counts(4, seed=0)
    with pytest.raises(ValueError, match=r"integer counts of shape \(B, T, 24\)"):
        export_network(net, counts.float(), bin_ticks=10)
    with pytest.raises(ValueError, match="leaving .* fractional bits of a 5-bit input; raise input_width"):
        export_network(net, counts, bin_ticks=10, input_width={"csilif": 5})
    with pytest.raises(ValueError, match="needs a FloatNetwork"):
        export_network(nn.Linear(2, 2), counts, bin_ticks=10)
    with pytest.raises(ValueError, match="LIReadout block must be the last one"):
        FloatNetwork([SNNLayer(4, LIReadout(3)), SNNLayer(3, LIReadout(2))])
    with pytest.raises(ValueError, match=r"layers\[1\] takes 5 inputs but layers\[0\] has 16 neurons"):
        FloatNetwork([SNNLayer(4, CSiLIF(16)), SNNLayer(5, LIReadout(2))])
