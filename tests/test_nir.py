# amaranth: UnusedElaboratable=no
"""NIR round trips against the frameworks themselves: snnTorch and Norse networks exported to NIR
and imported here (float and integer), spikestream networks exported to NIR and run by snnTorch
and Norse, the command line's errors, and one imported network through the processor."""

import re

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")
snn = pytest.importorskip("snntorch")
norse = pytest.importorskip("norse.torch")

from snntorch import utils as snn_utils  # noqa: E402
from snntorch.export_nir import export_to_nir  # noqa: E402

from golden.lif import LIFParams  # noqa: E402
from golden.network import run_network  # noqa: E402
from golden.nir import NIRImportError, import_nir, main, network_to_nir  # noqa: E402

#: Float spikes of the imported network vs the framework's own simulation.
MIN_FRAMEWORK_AGREEMENT = 0.999
#: Integer spikes vs float spikes of the imported network (docs/byo_network.md).
MIN_INTEGER_AGREEMENT = 0.99
#: A float spike that differs must sit at the threshold up to float rounding of the parameters.
TIE = 1e-4

STEPS, BATCH = 40, 8


def _input_spikes(n_in, seed=0, p=0.25):
    rng = np.random.default_rng(seed)
    return (rng.random((BATCH, STEPS, n_in)) < p).astype(np.int64)


def _check_agreement(name, theirs, ours, membrane, threshold):
    """>= 99.9 % equal spikes; every neuron's first difference is a tie at the threshold."""
    theirs, ours = theirs.bool(), ours.bool()
    agreement = float((theirs == ours).double().mean())
    diff = (theirs != ours)
    for b, i in {(int(b), int(i)) for b, _, i in diff.nonzero()}:
        t = int(diff[b, :, i].nonzero()[0])
        margin = abs(float(membrane[b, t, i]) - float(threshold[i]))
        assert margin < TIE, f"{name}: sample {b} neuron {i} step {t} differs {margin:.3g} away from the threshold"
    assert agreement >= MIN_FRAMEWORK_AGREEMENT, f"{name}: {agreement:.4%}"
    return agreement


def _snntorch_network():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(12, 10),
        snn.Leaky(beta=torch.rand(10) * 0.3 + 0.6, threshold=torch.ones(10), init_hidden=True, reset_mechanism="zero",
                  reset_delay=False),
        torch.nn.Linear(10, 6),
        snn.Synaptic(alpha=torch.rand(6) * 0.4 + 0.4, beta=torch.rand(6) * 0.2 + 0.75, threshold=torch.ones(6),
                     init_hidden=True, reset_mechanism="zero", reset_delay=False, output=True),
    )


def _run_snntorch(net, spikes):
    """Per spiking layer ``(B, T, n)`` spikes of an snnTorch Sequential, in its own float32."""
    layers = [m for m in net if isinstance(m, snn.SpikingNeuron)]
    out = {id(m): [] for m in layers}
    for m in layers:
        m.register_forward_hook(lambda mod, _, result: out[id(mod)].append(result[0] if isinstance(result, tuple)
                                                                           else result))
    snn_utils.reset(net)
    with torch.no_grad():
        for t in range(spikes.shape[1]):
            net(torch.as_tensor(spikes[:, t], dtype=torch.float32))
    return [torch.stack(out[id(m)], dim=1) for m in layers]


def test_snntorch_network_through_nir():
    net = _snntorch_network()
    graph = export_to_nir(net, torch.zeros(12))
    spikes = _input_spikes(12)
    params, model, summary = import_nir(graph, source="snntorch", calibration_counts=spikes)
    theirs = _run_snntorch(net, spikes)
    float_trace = model.trace(torch.as_tensor(spikes, dtype=torch.float64))
    int_trace = run_network(params, spikes)
    for i, (layer_theirs, layer_float, layer_int) in enumerate(zip(theirs, float_trace, int_trace.layers)):
        threshold = model.layers[i].neuron.coefficients()["threshold"].detach()
        agreement = _check_agreement(f"snntorch layer {i}", layer_theirs, layer_float["output"], layer_float["v"],
                                     threshold)
        integer = float((layer_int.spikes == layer_float["output"].bool()).double().mean())
        print(f"snntorch layer {i}: float vs snnTorch {agreement:.4%}, integer vs float {integer:.4%}")
        assert integer >= MIN_INTEGER_AGREEMENT
        assert 0 < int(layer_theirs.sum()) < layer_theirs.numel()


def _norse_cell(cell, n):
    if cell == "LIFBoxCell":
        return norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.rand(n) * 100 + 50, v_th=torch.full((n,), 0.3),
                                                       v_leak=torch.zeros(n)))
    return norse.LIFCell(norse.LIFParameters(tau_syn_inv=torch.rand(n) * 100 + 100,
                                             tau_mem_inv=torch.rand(n) * 100 + 50, v_th=torch.full((n,), 0.3),
                                             v_leak=torch.zeros(n), v_reset=torch.zeros(n)))


@pytest.mark.parametrize("cell,gains", [("LIFBoxCell", (6.0, 10.0)), ("LIFCell", (3.0, 4.0))])
def test_norse_network_through_nir(cell, gains):
    """Norse LIFBoxCell (NIR LIF) and LIFCell (NIR CubaLIF, imported as cuba_lif) networks."""
    torch.manual_seed(1)
    model = norse.SequentialState(torch.nn.Linear(12, 10), _norse_cell(cell, 10), torch.nn.Linear(10, 6),
                                  _norse_cell(cell, 6))
    with torch.no_grad():  # currents that make both layers spike at a moderate rate
        model[0].weight.mul_(gains[0])
        model[2].weight.mul_(gains[1])
    graph = norse.to_nir(model, torch.zeros(1, 12))
    spikes = _input_spikes(12, seed=1, p=0.4)
    params, float_model, _ = import_nir(graph, source="norse", calibration_counts=spikes)
    assert [layer.kind for layer in params.layers[:-1]] == ["lif" if cell == "LIFBoxCell" else "cuba_lif"] * 2
    layers = [m for m in model if type(m).__name__ == cell]
    out = {id(m): [] for m in layers}
    for m in layers:
        m.register_forward_hook(lambda mod, _, result: out[id(mod)].append(result[0]))
    state = None
    with torch.no_grad():
        for t in range(STEPS):
            _, state = model(torch.as_tensor(spikes[:, t], dtype=torch.float32), state)
    float_trace = float_model.trace(torch.as_tensor(spikes, dtype=torch.float64))
    int_trace = run_network(params, spikes)
    for i, m in enumerate(layers):
        theirs = torch.stack(out[id(m)], dim=1)
        threshold = float_model.layers[i].neuron.coefficients()["threshold"].detach()
        agreement = _check_agreement(f"norse {cell} layer {i}", theirs, float_trace[i]["output"], float_trace[i]["v"],
                                     threshold)
        integer = float((int_trace.layers[i].spikes == float_trace[i]["output"].bool()).double().mean())
        print(f"norse {cell} layer {i}: float vs Norse {agreement:.4%}, integer vs float {integer:.4%}")
        assert integer >= MIN_INTEGER_AGREEMENT
        assert 0 < int(theirs.sum()) < theirs.numel()


def _spikestream_lif_network():
    """12 inputs -> 9 LIF (reset to zero, one threshold: snnTorch's reader needs both) -> 3 readout."""
    from golden.fixed import QFormat
    from golden.layers import LIReadoutParams
    from golden.network import LayerParams, NetworkParams

    rng = np.random.default_rng(5)
    fmt, weight_fmt = QFormat(8, 16), QFormat(2, 16)
    lif = LIFParams.from_float(threshold=np.full(9, 0.75), leak=rng.uniform(0.5, 0.95, 9), scale=rng.uniform(0.5, 1.5, 9),
                               reset=0.0, input_fmt=fmt, state_fmt=fmt)
    readout = LIReadoutParams.from_float(alpha=rng.uniform(0.8, 0.95, 3), input_fmt=fmt, state_fmt=fmt)
    layers = [LayerParams(weight_fmt.quantize(rng.normal(0.2, 0.5, (9, 12))), weight_fmt.quantize(rng.normal(0, 0.1, 9)),
                          weight_fmt, weight_fmt, lif),
              LayerParams(weight_fmt.quantize(rng.normal(0, 0.5, (3, 9))), np.zeros(3, dtype=np.int64), weight_fmt,
                          weight_fmt, readout)]
    return NetworkParams(n_inputs=12, bin_ticks=1000, layers=layers, max_events_per_step=12)


@pytest.mark.parametrize("framework", ["snntorch", "norse"])
def test_spikestream_network_runs_in_the_framework(framework):
    params = _spikestream_lif_network()
    counts = _input_spikes(12, seed=2)
    ours = run_network(params, counts).layers[0]
    dt = 1e-4 if framework == "snntorch" else 1e-3  # snnTorch's reader assumes 1e-4
    graph = network_to_nir(params, dt=dt, include_readout=False, target=framework)
    x = torch.as_tensor(counts, dtype=torch.float32)
    if framework == "snntorch":
        from snntorch.import_nir import import_from_nir

        net = import_from_nir(graph)
        snn_utils.reset(net)
        with torch.no_grad():
            theirs = torch.stack([net(x[:, t])[0] for t in range(STEPS)], dim=1)
    else:
        net = norse.from_nir(graph, dt=dt)
        state, steps = None, []
        with torch.no_grad():
            for t in range(STEPS):
                z, state = net(x[:, t], state)
                steps.append(z)
        theirs = torch.stack(steps, dim=1)
    agreement = float((theirs.bool() == ours.spikes).double().mean())
    print(f"spikestream lif -> NIR -> {framework}: {agreement:.4%} of spikes equal")
    assert agreement >= MIN_FRAMEWORK_AGREEMENT, agreement
    assert 0 < int(ours.spikes.sum()) < ours.spikes.numel()


def test_command_line_round_trip(tmp_path, capsys):
    """import writes a model file and prints the summary and the fit; export writes it back as NIR."""
    graph_path, model_path, back_path = tmp_path / "net.nir", tmp_path / "net.safetensors", tmp_path / "back.nir"
    nir.write(str(graph_path), export_to_nir(_snntorch_network(), torch.zeros(12)))
    assert main(["import", str(graph_path), "--out", str(model_path), "--device", "12F"]) == 0
    out = capsys.readouterr().out
    assert "1: LIF -> lif, 12 -> 10" in out and "3: CubaLIF -> cuba_lif, 10 -> 6" in out and "readout" in out
    assert "fit on 12F: fits" in out
    assert main(["export", str(model_path), "--out", str(back_path)]) == 0
    kinds = [type(node).__name__ for node in nir.read(str(back_path)).nodes.values()]
    assert sorted(kinds) == sorted(["Input", "Affine", "LIF", "Affine", "CubaLIF", "Affine", "LI", "Output"])
    # An existing output is kept unless --force; an output equal to the input is refused.
    written = back_path.read_bytes()
    assert main(["export", str(model_path), "--out", str(back_path)]) == 2
    assert "pass --force" in capsys.readouterr().err and back_path.read_bytes() == written
    assert main(["export", str(model_path), "--out", str(back_path), "--force"]) == 0
    assert main(["import", str(graph_path), "--out", str(graph_path), "--force"]) == 2
    assert "is also an input file" in capsys.readouterr().err


def test_import_errors_name_the_node(tmp_path):
    w = np.ones((3, 4))
    lif = nir.LIF(tau=np.full(3, 1e-3), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3))
    recurrent = nir.NIRGraph(nodes={"input": nir.Input(np.array([4])), "w": nir.Affine(w, np.zeros(3)), "lif": lif,
                                    "back": nir.Linear(np.eye(3)), "output": nir.Output(np.array([3]))},
                             edges=[("input", "w"), ("w", "lif"), ("lif", "back"), ("back", "lif"), ("lif", "output")],
                             type_check=False)
    with pytest.raises(NIRImportError, match="lif: 2 incoming|back"):
        import_nir(recurrent)
    conv = nir.NIRGraph(nodes={"input": nir.Input(np.array([4])), "c": nir.Delay(np.ones(4)),
                               "output": nir.Output(np.array([4]))},
                        edges=[("input", "c"), ("c", "output")], type_check=False)
    with pytest.raises(NIRImportError, match="c: Delay nodes are not supported"):
        import_nir(conv)
    path = tmp_path / "recurrent.nir"
    nir.write(str(path), recurrent)
    assert main(["import", str(path), "--out", str(tmp_path / "m.safetensors")]) == 2


def test_export_refuses_kinds_nir_cannot_express():
    from sim.processor_model import random_network

    with pytest.raises(ValueError, match="silif"):
        network_to_nir(random_network(1, hidden=(("silif", 4),)))


def test_imported_network_through_the_verilog_and_the_build(tmp_path, capsys):
    """snnTorch -> NIR file -> ``golden.nir import`` -> model file -> the processor's generated
    Verilog under cocotb/Icarus equals :func:`run_network` (every spike, readout membrane, score
    and the decision); ``hw.build --model`` of that file elaborates (dry run)."""
    import shutil

    from test_cocotb_processor import run_processor

    from golden.model_file import load_model
    from hw import build
    from sim.processor_model import counts_to_beats, expected_from_trace

    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog (iverilog) not installed")
    graph_path, model_path = tmp_path / "snntorch.nir", tmp_path / "imported.safetensors"
    net = _snntorch_network()
    with torch.no_grad():  # stronger weights: both layers spike within the few steps simulated
        net[0].weight.mul_(3.0)
        net[2].weight.mul_(1.5)
    nir.write(str(graph_path), export_to_nir(net, torch.zeros(12)))
    assert main(["import", str(graph_path), "--out", str(model_path)]) == 0
    params = load_model(model_path)
    counts = _input_spikes(12, seed=3)[3, :6]
    trace = run_network(params, counts)
    assert all(layer.spikes.any() for layer in trace.layers[:-1]), "both imported spiking layers should spike"
    beats = counts_to_beats(counts, params.bin_ticks, seed=6)
    run_processor("nir_imported_snntorch", params, beats, expected_from_trace(trace), n_steps=counts.shape[0],
                  lanes=2, idle_prob=0.2, backpressure_prob=0.3)
    capsys.readouterr()
    out = tmp_path / "build"
    assert build.main(["--model", str(model_path), "--dry-run", "--steps", str(counts.shape[0]),
                       "--out", str(out)]) == 0
    assert "fit check" in capsys.readouterr().out and (out / "top.il").exists()


def _camera_graph(kernel=(2, 2), stride=(2, 2), padding=(0, 0), shape=(2, 34, 34), n_in=None, seed=7):
    """Input (C, H, W) -> SumPool2d -> Flatten -> Affine -> LIF -> Affine -> LI -> Output."""
    rng = np.random.default_rng(seed)
    c, h, w = shape
    n_in = n_in or c * (h // kernel[0]) * (w // kernel[1])
    nodes = {
        "input": nir.Input(input_type=np.array(shape)),
        "pool": nir.SumPool2d(kernel_size=np.array(kernel), stride=np.array(stride), padding=np.array(padding)),
        "flat": nir.Flatten(input_type={"input": np.array([c, h // kernel[0], w // kernel[1]])}, start_dim=0),
        "fc1": nir.Affine(weight=rng.normal(0.05, 0.3, (8, n_in)), bias=np.zeros(8)),
        "lif": nir.LIF(tau=np.full(8, 1e-3), r=np.full(8, 10.0), v_leak=np.zeros(8), v_threshold=np.ones(8),
                       v_reset=np.zeros(8)),
        "fc2": nir.Affine(weight=rng.normal(0, 0.5, (4, 8)), bias=np.zeros(4)),
        "li": nir.LI(tau=np.full(4, 1e-3), r=np.ones(4), v_leak=np.zeros(4)),
        "output": nir.Output(output_type=np.array([4])),
    }
    order = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order[:-1], order[1:])), type_check=False)


def test_sumpool_on_camera_input_becomes_the_input_map(shared_data, tmp_path, capsys):
    """A leading SumPool2d (2x2) on N-MNIST's (2, 34, 34) input: the model file carries the
    pooling input map, and the counts the network sees from the real recording equal NIR's
    SumPool2d (torch sum pooling of per-step event frames) flattened as (C, H', W')."""
    from golden.data.events import read_nmnist
    from golden.model_file import load_model

    graph_path, model_path = tmp_path / "camera.nir", tmp_path / "camera.safetensors"
    nir.write(str(graph_path), _camera_graph())
    recording = shared_data / "events" / "nmnist_sample.bin"
    assert main(["import", str(graph_path), "--out", str(model_path), "--calibrate", str(recording),
                 "--bin-ticks", "10000"]) == 0
    assert "formats calibrated on 1 sample(s) of 32 steps from the calibration files" in capsys.readouterr().out
    params = load_model(model_path)
    assert params.input_map is not None and params.input_map.pool == (2, 2) and params.n_inputs == 578
    assert params.bin_ticks == 10000
    events = read_nmnist(recording).events
    steps = 12
    trace = run_network(params, events, steps)
    frames = np.zeros((steps, 2, 34, 34), dtype=np.int64)  # (T, C, H, W), C = polarity
    step = events["t"] // params.bin_ticks
    keep = step < steps
    np.add.at(frames, (step[keep], events["p"][keep], events["y"][keep], events["x"][keep]), 1)
    pooled = torch.nn.functional.avg_pool2d(torch.as_tensor(frames, dtype=torch.float64), 2) * 4
    np.testing.assert_array_equal(trace.counts.numpy(), pooled.reshape(steps, -1).round().long().numpy())
    assert int(trace.counts.sum()) > 0 and trace.layers[0].spikes.any()


@pytest.mark.parametrize("graph,message", [
    (lambda: _camera_graph(stride=(1, 1), n_in=2 * 33 * 33), "pool: SumPool2d stride .* differs from its kernel"),
    (lambda: _camera_graph(padding=(1, 1)), "pool: SumPool2d padding"),
    (lambda: _camera_graph(kernel=(4, 4), stride=(4, 4)), "pool: a 34x34 sensor is not a multiple"),
    (lambda: _camera_graph(shape=(3, 34, 34)), "input: input of shape \\(3, 34, 34\\)"),
    (lambda: _camera_graph(n_in=100), "fc1: takes 100 inputs, the camera input gives 578"),
])
def test_camera_input_refusals(graph, message):
    with pytest.raises(NIRImportError, match=message):
        import_nir(graph())


def test_sumpool_elsewhere_is_refused():
    graph = nir.NIRGraph(nodes={"input": nir.Input(np.array([578])), "flat": nir.Flatten({"input": np.array([578])}, 0),
                                "pool": nir.SumPool2d(np.array([2, 2]), np.array([2, 2]), np.array([0, 0])),
                                "output": nir.Output(np.array([578]))},
                         edges=[("input", "flat"), ("flat", "pool"), ("pool", "output")], type_check=False)
    with pytest.raises(NIRImportError, match="pool: SumPool2d is supported only on the camera input"):
        import_nir(graph)


def test_calibrate_on_counts_files(tmp_path, capsys):
    """--calibrate: .npy counts for a channel-input graph; other files and shapes are refused."""
    graph_path, model_path = tmp_path / "net.nir", tmp_path / "net.safetensors"
    nir.write(str(graph_path), export_to_nir(_snntorch_network(), torch.zeros(12)))
    spikes = _input_spikes(12)
    np.save(tmp_path / "a.npy", spikes[:4])
    np.save(tmp_path / "b.npy", spikes[4, :30])
    assert main(["import", str(graph_path), "--out", str(model_path), "--calibrate", str(tmp_path / "a.npy"),
                 str(tmp_path / "b.npy")]) == 0
    assert "formats calibrated on 5 sample(s) of 40 steps from the calibration files" in capsys.readouterr().out
    np.save(tmp_path / "wide.npy", spikes[:, :, :5])
    (tmp_path / "c.csv").write_text("1,2,0,5\n")
    for name, message in (("wide.npy", r"wide.npy: needs non-negative integer counts of shape \(T, 12\)"),
                          ("c.csv", "c.csv: a graph with channel input calibrates on .npy counts")):
        assert main(["import", str(graph_path), "--out", str(model_path), "--force", "--calibrate",
                     str(tmp_path / name)]) == 2
        assert re.search(message, capsys.readouterr().err)
