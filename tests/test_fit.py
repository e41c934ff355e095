"""Fit check: memory mapping against what Yosys chose, multipliers against measured builds, and
refusals with the numbers."""

import json

import numpy as np
import pytest
from amaranth.hdl import Fragment

from golden.csilif import CSiLIFParams
from golden.fit import DEVICES, FitError, check_fit, estimate_fit, map_memory, mult18_count, weight_bank_depth
from golden.fixed import QFormat
from golden.layers import LIReadoutParams
from golden.network import LayerParams, NetworkParams, default_network
from golden.refractory_lif import RefractoryLIFParams
from golden.silif import SiLIFParams

# (depth, width, written) -> (kind, DP16KD) as Yosys synth_ecp5 mapped an Amaranth memory of
# that shape (one sync read port, plus one write port when written).
YOSYS_SWEEP = [
    ((16, 49, True), ("lutram", 0)),
    ((32, 49, True), ("lutram", 0)),
    ((48, 49, True), ("lutram", 0)),
    ((64, 49, True), ("dp16kd", 2)),
    ((256, 49, True), ("dp16kd", 2)),
    ((64, 8, True), ("lutram", 0)),
    ((64, 128, True), ("dp16kd", 4)),
    ((32, 60, False), ("logic", 0)),
    ((64, 60, False), ("logic", 0)),
    ((96, 60, False), ("dp16kd", 2)),
    ((100, 16, False), ("logic", 0)),
    ((128, 16, False), ("logic", 0)),
    ((162, 16, False), ("dp16kd", 1)),
    ((512, 14, False), ("dp16kd", 1)),
    ((32, 300, False), ("logic", 0)),
]


@pytest.mark.parametrize("shape, expected", YOSYS_SWEEP)
def test_memory_mapping_follows_yosys(shape, expected):
    depth, width, written = shape
    kind, blocks, luts = map_memory(depth, width, written=written)
    assert (kind, blocks) == expected
    assert (luts > 0) == (kind != "dp16kd")


def test_block_ram_count_is_never_below_yosys():
    # Yosys packed 5184x14 into 5 blocks (mixed shapes); the estimate takes the best single shape.
    assert map_memory(5184, 14, written=False) == ("dp16kd", 6, 0)
    assert map_memory(4096, 49, written=True)[1] == 12  # measured: refractory LIF state at 4096 neurons


def _layer(neuron, n_in=4):
    n = neuron.n_neurons
    frac = neuron.input_fmt.frac_bits
    fmt = QFormat(2, frac)
    return LayerParams(np.zeros((n, n_in), dtype=np.int64), np.zeros(n, dtype=np.int64), fmt, fmt, neuron)


def _network(hidden, readout_classes=2):
    readout = LIReadoutParams.from_float(alpha=np.full(readout_classes, 0.9))
    return NetworkParams(n_inputs=4, bin_ticks=10, layers=[_layer(hidden), _layer(readout, hidden.n_neurons)])


@pytest.mark.parametrize(
    "hidden, measured",
    [
        (RefractoryLIFParams.from_float(v_th=np.ones(8), u_th=np.full(8, 0.5)), 4),  # bench core_fit
        (SiLIFParams.from_float(np.full(8, 0.9), np.full(8, 0.9), np.zeros(8), np.zeros(8)), 8),  # bench core_fit
        (CSiLIFParams.from_float(np.full(8, 0.9), np.zeros(8), np.ones(8)), 9),  # C-SiLIF OOC build
    ],
)
def test_multipliers_match_measured_cores(hidden, measured):
    report = estimate_fit(_network(hidden))
    assert report.layers[0].mult18x18d == measured
    assert report.layers[1].mult18x18d == 4  # readout: alpha*u (24x18) and gain*x (24x18)
    assert estimate_fit(_network(hidden), lanes=[3, 1]).layers[0].mult18x18d == 3 * measured


def test_mult18_count():
    assert [mult18_count(18, 18), mult18_count(19, 18), mult18_count(25, 18), mult18_count(37, 36)] == [1, 2, 2, 6]


@pytest.mark.parametrize("device", sorted(DEVICES))
def test_default_network_fits_every_ulx3s(device):
    report = check_fit(default_network(), device)
    assert report.fits and not report.problems
    assert report.dp16kd == 6 and report.mult18x18d == 13  # the builds in docs/processor.md: 6 and 13
    json.dumps(report.to_dict())
    assert f"fit check on {DEVICES[device].name} (fits)" in str(report)


def test_default_network_fits_85f_comfortably():
    usage = estimate_fit(default_network(), "85F").usage()
    assert all(need < 0.1 * have for need, have in usage.values()), usage


def test_too_many_weights_is_refused_with_numbers():
    hidden = CSiLIFParams.from_float(np.full(512, 0.9), np.zeros(512), np.ones(512))
    layer = LayerParams(np.zeros((512, 2312), dtype=np.int64), np.zeros(512, dtype=np.int64),
                        QFormat(2, 12), QFormat(2, 12), hidden)
    readout = LIReadoutParams.from_float(alpha=np.full(10, 0.9))
    params = NetworkParams(n_inputs=2312, bin_ticks=10, layers=[layer, _layer(readout, 512)])
    with pytest.raises(FitError) as info:
        check_fit(params, "85F")
    message = str(info.value)
    blocks = info.value.report.dp16kd
    assert blocks > 208
    assert message.startswith(f"network does not fit LFE5U-85F: DP16KD {blocks} needed > 208 available")
    assert "layers[0] weights 1183744x14: " in message
    assert isinstance(info.value, ValueError)


def test_too_many_lanes_is_refused_on_multipliers():
    params = default_network()
    with pytest.raises(FitError, match=r"MULT18X18D 292 needed > 156 available \(layers\[0\] csilif x32 cores: 288"):
        check_fit(params, "85F", lanes=[32, 1])
    with pytest.raises(FitError, match=r"LFE5U-12F: .*MULT18X18D 40 needed > 28 available"):
        check_fit(params, "12F", lanes=[4, 1])


def test_multipliers_follow_cores_not_lanes():
    params = default_network()  # 32 C-SiLIF neurons (9 MULT18X18D per core) + readout (4)
    assert estimate_fit(params, lanes=16).mult18x18d == 16 * 9 + 4
    report = check_fit(params, "85F", lanes=16, cores=2)
    assert report.mult18x18d == 2 * 9 + 4
    assert (report.layers[0].lanes, report.layers[0].cores, report.layers[1].cores) == (16, 2, 1)
    state = [m for m in report.layers[0].memories if m.name.endswith("state")]
    assert [m.depth for m in state] == [16, 16]  # 32 neurons over 2 cores
    assert check_fit(params, "12F", lanes=16, cores=1).fits  # 16 lanes fit the smallest part with one core
    with pytest.raises(ValueError, match=r"layers\[0\]: cores \(3\) must divide lanes \(4\)"):
        estimate_fit(params, lanes=4, cores=3)


def test_weight_memory_counts_the_synapse_banks():
    """176 x 176 weights of 15 bits at one lane: 31 banks of 1024x18 (Yosys does not put 15 16384x1
    blocks side by side for a wide word, which would be 30), as hw.processor.synapse builds them."""
    from hw.processor.synapse import SynapseStage

    hidden = CSiLIFParams.from_float(np.full(176, 0.9), np.zeros(176), np.ones(176))
    layer = LayerParams(np.zeros((176, 176), dtype=np.int64), np.zeros(176, dtype=np.int64),
                        QFormat(3, 12), QFormat(3, 12), hidden)
    readout = LIReadoutParams.from_float(alpha=np.full(10, 0.9))
    params = NetworkParams(n_inputs=176, bin_ticks=10, layers=[layer, _layer(readout, 176)])
    weights = estimate_fit(params).layers[0].memories[0]
    assert (weights.name, weights.depth, weights.width, weights.dp16kd) == ("weights", 176 * 176, 15, 31)
    syn = SynapseStage(params.layers[0])
    words = len(syn.weight_words())
    Fragment.get(syn, None)  # used, so no UnusedElaboratable warning
    assert -(-words // weight_bank_depth(words, 15)) == 31  # the synapse's banks, one block each


def test_spike_fifos_take_one_block_each():
    params = default_network()
    base = estimate_fit(params).dp16kd
    report = estimate_fit(params, spike_layers="all")
    fifo = next(m for m in report.layers[0].memories if m.name == "spike FIFO")
    assert (report.dp16kd - base, fifo.kind, fifo.depth) == (1, "dp16kd", 63)
    assert estimate_fit(params, spike_layers=[0]).dp16kd == base + 1
    with pytest.raises(ValueError, match="1 is not a hidden layer index"):
        estimate_fit(params, spike_layers=[1])


def test_spike_fifo_entry_matches_the_board_top():
    from golden import fit
    from hw.boards import ulx3s_processor
    from hw.processor.time_bins import STEP_BITS

    assert (fit._SPIKE_ENTRY_STEP_BITS, fit._SPIKE_ENTRY_TAG_BITS) == (STEP_BITS, ulx3s_processor._SAMPLE_TAG_BITS)


def test_bad_arguments():
    params = default_network(n_hidden=4)
    with pytest.raises(ValueError, match="unknown device '99F'"):
        estimate_fit(params, "99F")
    assert estimate_fit(params, "LFE5U-45F").device.name == "LFE5U-45F"
    with pytest.raises(ValueError, match="one positive int per layer"):
        estimate_fit(params, lanes=[1])
    with pytest.raises(ValueError, match="one positive int per layer"):
        estimate_fit(params, lanes=0)


@pytest.mark.slow
def test_block_rams_and_multipliers_match_a_real_synthesis(tmp_path):
    """Yosys synth_ecp5 of the default network's board top at 16 lanes into 2 cores (about 2-4 min):
    its DP16KD and MULT18X18D cells are what the fit check counts (7 and 22 when written)."""
    import re
    import subprocess

    from hw import build
    from hw.toolchain import find_tool

    assert build.main(["--model", "default", "--lanes", "16", "--cores", "2", "--dry-run", "--out", str(tmp_path)]) == 0
    subprocess.run([find_tool("yosys"), "-q", "-l", "top.rpt", "top.ys"], cwd=tmp_path, check=True, timeout=1800)
    text = (tmp_path / "top.rpt").read_text()
    cells = {name: int(count) for count, name in re.findall(r"^\s+(\d+)\s+(DP16KD|MULT18X18D)\s*$", text, re.M)}
    report = estimate_fit(default_network(), lanes=16, cores=2)
    assert cells == {"DP16KD": report.dp16kd, "MULT18X18D": report.mult18x18d}



def _narrow_network(seed=0):
    """64 -> 100 refractory LIF (4-bit weights: 4096x4 blocks) -> 50 C-SiLIF (9-bit weights with an
    18-bit row scale: 2048x9 blocks, multipliers in the drain) -> 10 readout, random weights (a
    constant ROM would be optimised away)."""
    from golden.kinds import network_kinds

    rng = np.random.default_rng(seed)
    kinds = network_kinds()
    w4, w9, scale_fmt = QFormat(1, 3), QFormat(3, 6), QFormat(2, 16, signed=False)
    readout = LIReadoutParams.from_float(alpha=np.full(10, 0.9))
    w13 = QFormat(3, readout.input_fmt.frac_bits)
    layers = [
        LayerParams(rng.integers(-8, 8, (100, 64)), rng.integers(-8, 8, 100), w4, w4,
                    kinds["refractory_lif"].example_params(rng, 100)),
        LayerParams(rng.integers(-256, 256, (50, 100)), rng.integers(-256, 256, 50), w9, w9,
                    kinds["csilif"].example_params(rng, 50),
                    row_scale_q=rng.integers(0, 1 << 18, 50), row_scale_fmt=scale_fmt),
        LayerParams(rng.integers(-4000, 4000, (10, 50)), rng.integers(-4000, 4000, 10), w13, w13, readout),
    ]
    return NetworkParams(n_inputs=64, bin_ticks=50, layers=layers, max_events_per_step=16)


def test_narrow_weights_pack_into_block_ram_rows():
    """4-bit weights 4096 and 9-bit weights 2048 to a DP16KD: 8 x 4 and 4 x 9 bits per 36-bit row."""
    report = estimate_fit(_narrow_network())
    weights = [next(m for m in layer.memories if m.name == "weights") for layer in report.layers[:2]]
    assert [(m.depth, m.width, m.dp16kd) for m in weights] == [(6400, 4, 2), (5000, 9, 3)]
    scale = next(m for m in report.layers[1].memories if m.name == "row scale")
    assert (scale.depth, scale.width) == (50, 18)
    hidden = _narrow_network().layers[1]
    assert hidden.acc_bits <= 18 and report.layers[1].mult18x18d == 9 + 1  # the C-SiLIF core's 9, one slice


@pytest.mark.slow
def test_narrow_and_scaled_layers_match_a_real_synthesis(tmp_path):
    """Yosys synth_ecp5 of the board top of :func:`_narrow_network` (about 2-4 min): DP16KD and
    MULT18X18D as the fit check counts them, with 4-bit and 9-bit weight banks and the row-scale
    multiplier."""
    import re
    import subprocess

    from golden.model_file import save_model
    from hw import build
    from hw.toolchain import find_tool

    params = _narrow_network()
    model = save_model(tmp_path / "narrow.safetensors", params)
    out = tmp_path / "build"
    assert build.main(["--model", str(model), "--dry-run", "--out", str(out)]) == 0
    subprocess.run([find_tool("yosys"), "-q", "-l", "top.rpt", "top.ys"], cwd=out, check=True, timeout=1800)
    text = (out / "top.rpt").read_text()
    cells = {name: int(count) for count, name in re.findall(r"^\s+(\d+)\s+(DP16KD|MULT18X18D)\s*$", text, re.M)}
    report = estimate_fit(params)
    assert cells == {"DP16KD": report.dp16kd, "MULT18X18D": report.mult18x18d}
