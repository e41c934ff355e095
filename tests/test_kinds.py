# amaranth: UnusedElaboratable=no
"""Every registered neuron kind, end to end: registry, model file, fit check, export, integer
network and the processor in amaranth.sim. A kind registered but not wired somewhere fails here."""

import numpy as np
import pytest
import torch
from amaranth.hdl import Shape

from golden.export import FloatNetwork, export_network
from golden.fit import estimate_fit
from golden.fixed import QFormat
from golden.kinds import network_kinds, neuron_kinds, step_kinds, word_bits
from golden.layers import LIReadout, SNNLayer
from golden.model_file import load_model, save_model, to_manifest
from golden.network import default_hidden_kinds, default_network, run_network
from golden.train import NEURON_CHOICES
from hw.cores import KINDS_WITHOUT_CORE, core_classes
from sim.processor_model import random_counts, random_network
from test_processor_amaranth import check_processor

# The kinds of the default per-step layer; the FLAMES kinds with their own layer rules (DH-LIF,
# SA-HiPPO memory, event pooling) are tested in test_flames_network.py.
NETWORK_KINDS = sorted(step_kinds())
SPIKING_KINDS = sorted(name for name, kind in step_kinds().items() if not kind.readout)


def _network(kind_name: str, seed: int = 3):
    """A small random network whose hidden layer (or, for a readout kind, whose readout) is of the kind."""
    kind = network_kinds()[kind_name]
    params = random_network(seed, hidden=() if kind.readout else ((kind_name, 7),))
    assert params.kinds[0 if not kind.readout else -1] == kind_name, f"random_network does not build {kind_name}"
    return params


def _layer_of(params, kind_name):
    return next(layer for layer in params.layers if layer.kind == kind_name)


def test_every_kind_has_a_core_and_every_core_a_kind():
    assert sorted([*core_classes(), *KINDS_WITHOUT_CORE]) == sorted(neuron_kinds())
    for name, kind in neuron_kinds().items():
        assert kind.name == name and (kind.float_modules or kind.layer), f"{name}: needs a float module"


@pytest.mark.parametrize("kind_name", NETWORK_KINDS)
def test_kind_declares_what_the_network_needs(kind_name):
    kind = network_kinds()[kind_name]
    for fact in ("state_words", "param_words", "products", "core_lut4", "quantize", "float_trace"):
        assert getattr(kind, fact) is not None, f"{kind_name}: {fact} not declared"
    if not kind.readout:
        assert kind.example_params is not None, f"{kind_name}: example_params not declared"
        assert any(module_kind == kind_name for _, module_kind in NEURON_CHOICES.values()), \
            f"{kind_name}: no training choice"


@pytest.mark.parametrize("kind_name", NETWORK_KINDS)
def test_model_file_round_trip(kind_name, tmp_path):
    params = _network(kind_name)
    loaded = load_model(save_model(tmp_path / f"{kind_name}.safetensors", params))
    manifest, arrays = to_manifest(params)
    manifest_back, arrays_back = to_manifest(loaded)
    assert manifest_back == manifest
    assert arrays_back.keys() == arrays.keys()
    assert all(np.array_equal(arrays[name], arrays_back[name]) for name in arrays)
    counts = random_counts(params, 6, seed=1)
    assert run_network(params, counts).first_mismatch(run_network(loaded, counts)) is None


@pytest.mark.parametrize("kind_name", NETWORK_KINDS)
def test_fit_check_sizes_the_core_memories_from_the_declared_words(kind_name):
    kind = network_kinds()[kind_name]
    params = _network(kind_name)
    index = params.kinds.index(kind_name)
    layer = params.layers[index]
    report = estimate_fit(params, "12F")
    widths = {m.name: m.width for m in report.layers[index].memories}
    assert widths["core state"] == word_bits(kind.state_words(layer.neuron))
    assert widths["core params"] == word_bits(kind.param_words(layer.neuron))
    assert report.layers[index].mult18x18d >= 1


@pytest.mark.parametrize("kind_name", NETWORK_KINDS)
def test_declared_words_are_the_core_memory_layouts(kind_name):
    """The fit check's word layouts are the core's own (where the core names them)."""
    kind = network_kinds()[kind_name]
    neuron = _layer_of(_network(kind_name), kind_name).neuron
    core = core_classes()[kind_name](neuron)
    for words, layout_name in ((kind.state_words, "state_row_layout"), (kind.param_words, "param_row_layout")):
        layout = getattr(core, layout_name, None)
        if layout is None:
            continue
        declared = {name: value.width if isinstance(value, QFormat) else value for name, value in words(neuron).items()}
        assert {name: Shape.cast(field.shape).width for name, field in layout} == declared, layout_name


@pytest.mark.parametrize("kind_name", NETWORK_KINDS)
def test_integer_network_runs_the_kind(kind_name):
    kind = network_kinds()[kind_name]
    params = _network(kind_name)
    counts = random_counts(params, 8, seed=2)
    trace = run_network(params, counts)
    index = params.kinds.index(kind_name)
    direct = kind.run_int(params.layers[index].neuron, trace.layers[index].currents)
    assert trace.layers[index].kind == kind_name
    assert trace.layers[index].neuron.saturated.equal(direct.saturated)
    if not kind.readout:
        assert 0 < int(trace.layers[index].spikes.sum()) < trace.layers[index].spikes.numel()


@pytest.mark.parametrize("kind_name", SPIKING_KINDS)
def test_export_quantises_the_kind(kind_name):
    """A trained float module of every training choice of the kind exports to the kind."""
    for choice, (module_class, exported) in NEURON_CHOICES.items():
        if exported != kind_name:
            continue
        torch.manual_seed(0)
        model = FloatNetwork([SNNLayer(6, module_class(5)), SNNLayer(5, LIReadout(3))])
        counts = torch.randint(0, 3, (4, 10, 6))
        params, report = export_network(model, counts, bin_ticks=100, max_events_per_step=18)
        assert params.kinds[0] == kind_name, choice
        assert report.layers[0]["kind"] == kind_name


@pytest.mark.parametrize("kind_name", default_hidden_kinds())
def test_default_network_builds_each_kind(kind_name):
    params = default_network(seed=1, hidden_kind=kind_name, n_hidden=8)
    assert params.kinds[0] == kind_name
    assert estimate_fit(params, "12F").fits


@pytest.mark.parametrize("kind_name", NETWORK_KINDS)
def test_processor_is_bit_exact(kind_name):
    params = _network(kind_name, seed=4)
    counts = random_counts(params, 6, seed=5)
    check_processor(params, counts, idle_prob=0.2, backpressure=0.3, seed=6)
