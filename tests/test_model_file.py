"""Model files: round trip, and every way a file can be wrong is reported with its field path."""

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest

from golden.model_file import (
    FORMAT_VERSION,
    _sha256,
    ModelFileError,
    load_model,
    read_manifest,
    save_model,
    to_manifest,
    write_raw,
)
from golden.data.events import ChannelPool, channel_events
from golden.fixed import QFormat
from golden.kinds import step_kinds
from golden.network import LayerParams, NetworkParams, counts_from_events, default_network, run_network

REPO = Path(__file__).resolve().parents[1]

KINDS = ("csilif", "silif", "refractory_lif")


@pytest.fixture
def base():
    """A small refractory-LIF network (it has scalar neuron fields) with its manifest and arrays."""
    params = default_network(seed=4, hidden_kind="refractory_lif", n_hidden=6)
    manifest, arrays = to_manifest(params)
    return params, manifest, arrays


def _reseal(manifest, arrays, name):
    """Recompute the checksum of one array after an edit, so later checks get to see it."""
    manifest["arrays"][name]["sha256"] = _sha256(arrays[name])


def _fails(tmp_path, manifest, arrays, pattern):
    path = write_raw(tmp_path / "broken.safetensors", manifest, arrays)
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert message.startswith(str(path) + ": "), message
    assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    return message


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip(tmp_path, kind):
    params = default_network(seed=9, hidden_kind=kind, n_hidden=10)
    path = save_model(tmp_path / "net.safetensors", params)
    loaded = load_model(path)
    assert loaded.n_inputs == params.n_inputs and loaded.bin_ticks == params.bin_ticks
    assert loaded.max_events_per_step == params.max_events_per_step
    assert loaded.input_map == params.input_map
    assert loaded.provenance == params.provenance
    for a, b in zip(params.layers, loaded.layers):
        assert a.kind == b.kind and a.acc_bits == b.acc_bits
        assert (a.weight_fmt, a.bias_fmt) == (b.weight_fmt, b.bias_fmt)
        assert np.array_equal(a.weight_q, b.weight_q) and np.array_equal(a.bias_q, b.bias_q)
        for name, value in vars(a.neuron).items():
            other = getattr(b.neuron, name)
            if isinstance(value, np.ndarray):
                assert np.array_equal(value, other), name
            elif isinstance(value, dict):
                assert value.keys() == other.keys() and all(np.array_equal(value[k], other[k]) for k in value), name
            else:
                assert value == other, name
    counts = np.random.default_rng(0).poisson(0.5, size=(8, params.n_inputs))
    assert run_network(params, counts).first_mismatch(run_network(loaded, counts)) is None
    manifest = read_manifest(path)
    assert manifest["format"] == "spikestream-model" and manifest["version"] == FORMAT_VERSION
    assert manifest["layers"][0]["neuron"]["kind"] == kind


def test_channel_input_without_input_map_round_trips(tmp_path):
    params = default_network(n_hidden=3)
    params.input_map = None
    assert load_model(save_model(tmp_path / "m.safetensors", params)).input_map is None


def test_channel_pool_round_trips_and_pools_events(tmp_path):
    params = default_network(n_hidden=3)
    params.input_map = None
    params.channel_pool = ChannelPool(n_sources=5 * params.n_inputs - 2, pool=5)
    loaded = load_model(save_model(tmp_path / "m.safetensors", params))
    assert loaded.channel_pool == params.channel_pool
    sources = np.array([0, 4, 5, params.channel_pool.n_sources - 1])
    events = channel_events(sources, [0, 1, 2, 3])
    counts = counts_from_events(loaded, events, n_steps=1)
    assert counts[0, 0] == 2 and counts[0, 1] == 1 and counts[0, params.n_inputs - 1] == 1
    assert "channel_pool" not in to_manifest(default_network(n_hidden=3))[0]  # older files: no field


@pytest.mark.parametrize("doc, pattern", [
    ({"n_sources": 700, "pool": 0}, r"channel_pool\.pool: must be a positive integer, not 0"),
    ({"n_sources": 700}, r"channel_pool\.pool: missing"),
    ({"n_sources": 700, "pool": 5, "stride": 5}, r"channel_pool\.stride: unknown field"),
    ({"n_sources": 700, "pool": 5}, r"channel_pool: pools 700 sources into 140 channels but n_inputs is 162"),
])
def test_wrong_channel_pool(tmp_path, base, doc, pattern):
    _, manifest, arrays = base
    manifest["input_map"] = None
    manifest["channel_pool"] = doc
    _fails(tmp_path, manifest, arrays, pattern)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "nothing.safetensors")


@pytest.mark.parametrize("keep", [0, 5, 8, 100, -1])
def test_truncated_file(tmp_path, base, keep):
    params, _, _ = base
    raw = save_model(tmp_path / "m.safetensors", params).read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(raw[: keep if keep >= 0 else len(raw) + keep])
    with pytest.raises(ModelFileError, match=r"truncated"):
        load_model(cut)


def test_corrupted_array_bytes_name_the_array(tmp_path, base):
    params, manifest, arrays = base
    raw = bytearray(save_model(tmp_path / "m.safetensors", params).read_bytes())
    raw[-3] ^= 0x10  # inside the last tensor's data
    (tmp_path / "bad.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match=r"layers\[\d\]\.[\w.]+: corrupted: SHA-256"):
        load_model(tmp_path / "bad.safetensors")


def test_corrupted_header(tmp_path, base):
    params, _, _ = base
    raw = bytearray(save_model(tmp_path / "m.safetensors", params).read_bytes())
    raw[9] = ord("}")
    (tmp_path / "bad.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="header: corrupted"):
        load_model(tmp_path / "bad.safetensors")


def test_plain_safetensors_file_is_not_a_model(tmp_path):
    from safetensors.numpy import save_file

    save_file({"w": np.zeros(3)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ModelFileError, match="not a spikestream model file"):
        load_model(tmp_path / "plain.safetensors")


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_wrong_version(tmp_path, base, version):
    _, manifest, arrays = base
    manifest["version"] = version
    _fails(tmp_path, manifest, arrays, r"version: this reader reads format version 1 only, the file has")


def test_wrong_format_name(tmp_path, base):
    _, manifest, arrays = base
    manifest["format"] = "onnx"
    _fails(tmp_path, manifest, arrays, r"format: must be 'spikestream-model'")


@pytest.mark.parametrize(
    "path, pattern",
    [
        (["n_inputs"], r": n_inputs: missing"),
        (["bin_ticks"], r": bin_ticks: missing"),
        (["input_map"], r": input_map: missing"),
        (["provenance"], r": provenance: missing"),
        (["layers"], r": layers: missing"),
        (["layers", 0, "acc_bits"], r"layers\[0\]\.acc_bits: missing"),
        (["layers", 1, "weight_fmt"], r"layers\[1\]\.weight_fmt: missing"),
        (["layers", 0, "neuron", "kind"], r"layers\[0\]\.neuron\.kind: missing"),
        (["layers", 0, "neuron", "formats", "refr_fmt"], r"layers\[0\]\.neuron\.formats\.refr_fmt: missing"),
        (["layers", 0, "neuron", "scalars", "tau_r_q"], r"layers\[0\]\.neuron\.scalars\.tau_r_q: missing"),
        (["arrays", "layers[0].neuron.v_th_q"], r"arrays\.layers\[0\]\.neuron\.v_th_q: missing from the manifest"),
        (["input_map", "pool"], r"input_map\.pool: missing"),
    ],
)
def test_missing_field(tmp_path, base, path, pattern):
    _, manifest, arrays = base
    node = manifest
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    _fails(tmp_path, manifest, arrays, pattern)


def test_array_missing_from_file(tmp_path, base):
    _, manifest, arrays = base
    del arrays["layers[1].bias_q"]
    _fails(tmp_path, manifest, arrays, r"layers\[1\]\.bias_q: array missing from the file")


def test_unknown_fields_and_arrays(tmp_path, base):
    _, manifest, arrays = base
    m = copy.deepcopy(manifest)
    m["layers"][0]["neuron"]["scalars"]["tau_x_q"] = 3
    _fails(tmp_path, m, arrays, r"layers\[0\]\.neuron\.scalars\.tau_x_q: unknown field")
    m = copy.deepcopy(manifest)
    m["learning_rate"] = 0.1
    _fails(tmp_path, m, arrays, r": learning_rate: unknown field")
    a = dict(arrays, extra=np.zeros(2, dtype=np.int64))
    _fails(tmp_path, manifest, a, r": extra: array in the file but not in the manifest")


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (lambda m: m.__setitem__("n_inputs", "162"), r"n_inputs: must be a positive integer, not '162'"),
        (lambda m: m.__setitem__("bin_ticks", 0), r"bin_ticks: must be a positive integer, not 0"),
        (lambda m: m.__setitem__("max_events_per_step", True), r"max_events_per_step: must be a positive integer"),
        (lambda m: m["layers"][0].__setitem__("weight_fmt", "sQ2,12"), r"layers\[0\]\.weight_fmt: cannot parse"),
        (lambda m: m["layers"][1]["neuron"]["formats"].__setitem__("coef_fmt", 18),
         r"layers\[1\]\.neuron\.formats\.coef_fmt: must be a format string"),
        (lambda m: m["layers"][0]["neuron"].__setitem__("kind", "izhikevich"),
         r"layers\[0\]\.neuron\.kind: unknown neuron kind 'izhikevich'; known: refractory_lif, silif, csilif, li_readout"),
        (lambda m: m["input_map"].__setitem__("split_polarity", "yes"), r"input_map\.split_polarity: must be true or false"),
        (lambda m: m["input_map"].__setitem__("pool", [2, 2]), r"input_map: maps to 578 channels but n_inputs is 162"),
        (lambda m: m.__setitem__("provenance", "a string"), r"provenance: must be a JSON object"),
    ],
)
def test_wrong_type_or_value(tmp_path, base, edit, pattern):
    _, manifest, arrays = base
    edit(manifest)
    _fails(tmp_path, manifest, arrays, pattern)


def test_value_out_of_format_range(tmp_path, base):
    _, manifest, arrays = base
    m = copy.deepcopy(manifest)
    m["layers"][0]["neuron"]["scalars"]["tau_q"] = 1 << 18
    _fails(tmp_path, m, arrays, r"layers\[0\]\.neuron\.tau_q: value 262144 is outside a decay in \[0, 1\) of uQ0\.18")
    a = dict(arrays)
    a["layers[0].weight_q"] = arrays["layers[0].weight_q"].copy()
    a["layers[0].weight_q"][2, 7] = 1 << 18  # 4.0, beyond sQ2.16
    m = copy.deepcopy(manifest)
    _reseal(m, a, "layers[0].weight_q")
    _fails(tmp_path, m, a, r"layers\[0\]\.weight_q: value 262144 \(entry 331, 1 such\) is outside sQ2\.16")
    a = dict(arrays)
    a["layers[1].neuron.alpha_q"] = arrays["layers[1].neuron.alpha_q"].copy()
    a["layers[1].neuron.alpha_q"][3] = -1
    m = copy.deepcopy(manifest)
    _reseal(m, a, "layers[1].neuron.alpha_q")
    _fails(tmp_path, m, a, r"layers\[1\]\.neuron\.alpha_q: value -1 \(entry 3, 1 such\) is outside a decay in \[0, 1\)")


def test_wrong_shape_and_dtype(tmp_path, base):
    _, manifest, arrays = base
    m = copy.deepcopy(manifest)
    m["arrays"]["layers[0].bias_q"]["shape"] = [7]
    _fails(tmp_path, m, arrays, r"layers\[0\]\.bias_q: shape must be \[6\] \(from the layer sizes\)")
    a = dict(arrays)
    a["layers[0].bias_q"] = arrays["layers[0].bias_q"][:5]
    m = copy.deepcopy(manifest)
    m["arrays"]["layers[0].bias_q"]["shape"] = [6]
    _fails(tmp_path, m, a, r"layers\[0\]\.bias_q: stored shape is \[5\], must be \[6\]")
    a = dict(arrays)
    a["layers[0].weight_q"] = arrays["layers[0].weight_q"].astype(np.int32)
    _fails(tmp_path, manifest, a, r"layers\[0\]\.weight_q: stored dtype is int32, must be int64")
    m = copy.deepcopy(manifest)
    m["arrays"]["layers[0].weight_q"]["dtype"] = "float32"
    _fails(tmp_path, m, arrays, r"arrays\.layers\[0\]\.weight_q\.dtype: must be 'int64'")


def test_inconsistent_sizes_between_layers(tmp_path, base):
    _, manifest, arrays = base
    m = copy.deepcopy(manifest)
    m["layers"][1]["n_in"] = 5
    _fails(tmp_path, m, arrays, r"layers\[1\]\.n_in: is 5 but layers\[0\]\.n_out is 6: layers do not chain")
    m = copy.deepcopy(manifest)
    m["n_inputs"] = 161
    _fails(tmp_path, m, arrays, r"layers\[0\]\.n_in: is 162 but n_inputs is 161")
    m = copy.deepcopy(manifest)
    m["layers"][0]["n_out"] = 5
    _fails(tmp_path, m, arrays, r"layers\[0\]\.weight_q: shape must be \[5, 162\]")


def test_inconsistent_formats_and_widths(tmp_path, base):
    _, manifest, arrays = base
    m = copy.deepcopy(manifest)
    m["layers"][0]["bias_fmt"] = "sQ3.15"
    _fails(tmp_path, m, arrays, r"layers\[0\]\.bias_fmt: sQ3\.15 must have the fractional bits of weight_fmt sQ2\.16")
    m = copy.deepcopy(manifest)
    m["layers"][0]["acc_bits"] = 10
    _fails(tmp_path, m, arrays, r"layers\[0\]\.acc_bits: 10 bits cannot hold the accumulator range")
    m = copy.deepcopy(manifest)
    m["layers"][0]["neuron"]["formats"]["coef_fmt"] = "sQ1.18"
    _fails(tmp_path, m, arrays, r"layers\[0\]\.neuron: coef_fmt must be unsigned")
    m = copy.deepcopy(manifest)
    m["layers"] = m["layers"][:1]
    _fails(tmp_path, m, arrays, r"arrays\.layers\[1\]\.bias_q: not a field of this network")


def test_save_refuses_unserialisable_provenance(tmp_path):
    params = default_network(n_hidden=2)
    params.provenance = {"when": object()}
    with pytest.raises(ModelFileError, match="not JSON-serialisable"):
        save_model(tmp_path / "m.safetensors", params)


def test_manifest_is_plain_json(tmp_path, base):
    params, _, _ = base
    manifest = read_manifest(save_model(tmp_path / "m.safetensors", params))
    text = json.dumps(manifest)
    assert '"weight_fmt": "sQ2.16"' in text and '"kind": "li_readout"' in text


def test_command_line_writes_and_checks(tmp_path, capsys):
    from golden.model_file import main

    path = tmp_path / "default.safetensors"
    assert main(["default", str(path), "--hidden", "silif", "--seed", "2"]) == 0
    assert load_model(path).kinds == ["silif", "li_readout"]
    capsys.readouterr()
    assert main(["check", str(path), "--device", "12F"]) == 0
    out = capsys.readouterr().out
    assert "layers[0] silif: 162 -> 32" in out and "fit check on LFE5U-12F (fits)" in out
    assert main(["check", str(path), "--device", "12F", "--lanes", "4"]) == 1
    assert "error: network does not fit LFE5U-12F: MULT18X18D" in capsys.readouterr().err
    path.write_bytes(path.read_bytes()[:-10])
    assert main(["check", str(path)]) == 1
    assert f"error: {path}: array data: truncated" in capsys.readouterr().err


def test_ill_typed_array_entry_and_metadata(tmp_path, base):
    _, manifest, arrays = base
    m = copy.deepcopy(manifest)
    m["arrays"]["layers[0].bias_q"]["shape"] = 6
    _fails(tmp_path, m, arrays, r"arrays\.layers\[0\]\.bias_q\.shape: must be a list of integers, not 6")
    m = copy.deepcopy(manifest)
    del m["arrays"]["layers[0].bias_q"]["sha256"]
    _fails(tmp_path, m, arrays, r"arrays\.layers\[0\]\.bias_q\.sha256: missing")


# --- Manifest digests, bounded reading, the command's refusals ----------------------------
def _edit_header(path, old: bytes, new: bytes):
    """Replace bytes of the file's header in place (same length: the header length stays right)."""
    assert len(old) == len(new)
    raw = path.read_bytes()
    assert old in raw, old
    path.write_bytes(raw.replace(old, new, 1))


def test_an_edited_manifest_value_is_refused_naming_the_field(tmp_path):
    from golden.model_file import save_model

    path = save_model(tmp_path / "net.safetensors", default_network())
    ticks = str(read_manifest(path)["bin_ticks"])
    edited = ticks[:-1] + str((int(ticks[-1]) + 1) % 10)
    _edit_header(path, f'\\"bin_ticks\\": {ticks},'.encode(), f'\\"bin_ticks\\": {edited},'.encode())
    with pytest.raises(ModelFileError, match=r"bin_ticks: corrupted: SHA-256 of the manifest value does not match"):
        load_model(path)


def test_an_edited_format_is_refused_naming_the_field(tmp_path):
    from golden.model_file import save_model

    path = save_model(tmp_path / "net.safetensors", default_network())
    _edit_header(path, b'\\"weight_fmt\\": \\"sQ', b'\\"weight_fmt\\": \\"uQ')
    with pytest.raises(ModelFileError, match=r"layers\[0\]\.weight_fmt: corrupted"):
        load_model(path)


def test_a_file_without_manifest_digest_loads_with_a_warning(tmp_path):
    from golden.model_file import ModelFileWarning, to_manifest, write_raw

    manifest, arrays = to_manifest(default_network())
    path = write_raw(tmp_path / "old.safetensors", manifest, arrays, digest=False)
    with pytest.warns(ModelFileWarning, match="no digest"):
        load_model(path)


def _scaled(params):
    """``params`` with 4-bit weights and a per-row scale on its hidden layer."""
    hidden = params.layers[0]
    fmt = QFormat(1, 3)
    scale = np.arange(hidden.n_out, dtype=np.int64) * 37 % 200 + 1
    params.layers[0] = LayerParams(np.clip(hidden.weight_q >> 13, -8, 7), hidden.bias_q >> 13, fmt, fmt,
                                   hidden.neuron, row_scale_q=scale, row_scale_fmt=QFormat(2, 6, signed=False))
    return NetworkParams(params.n_inputs, params.bin_ticks, params.layers, input_map=params.input_map,
                         max_events_per_step=params.max_events_per_step, provenance=params.provenance)


def test_per_layer_weight_format_and_row_scale_round_trip(tmp_path):
    params = _scaled(default_network(seed=3, hidden_kind="silif", n_hidden=5))
    path = save_model(tmp_path / "scaled.safetensors", params)
    manifest = read_manifest(path)
    assert manifest["layers"][0]["row_scale_fmt"] == "uQ2.6" and "row_scale_fmt" not in manifest["layers"][1]
    loaded = load_model(path)
    hidden = loaded.layers[0]
    assert hidden.row_scale_fmt == QFormat(2, 6, signed=False) and hidden.weight_fmt == QFormat(1, 3)
    assert np.array_equal(hidden.row_scale_q, params.layers[0].row_scale_q)
    assert hidden.current_shift == 3 + 6 - hidden.neuron.input_fmt.frac_bits
    assert loaded.layers[1].row_scale_q is None
    counts = np.random.default_rng(1).poisson(0.3, size=(6, params.n_inputs))
    assert run_network(params, counts).first_mismatch(run_network(loaded, counts)) is None


def test_row_scale_fields_are_checked(tmp_path):
    manifest, arrays = to_manifest(_scaled(default_network(seed=3, hidden_kind="silif", n_hidden=5)))
    m = copy.deepcopy(manifest)
    m["layers"][0]["row_scale_fmt"] = "sQ2.6"
    _fails(tmp_path, m, arrays, r"layers\[0\]\.row_scale_fmt: must be an unsigned QFormat of at most 18 bits")
    m = copy.deepcopy(manifest)
    m["layers"][0]["row_scale_fmt"] = 8
    _fails(tmp_path, m, arrays, r"layers\[0\]\.row_scale_fmt: must be a format string")
    m = copy.deepcopy(manifest)
    del m["layers"][0]["row_scale_fmt"]
    _fails(tmp_path, m, arrays, r"arrays\.layers\[0\]\.row_scale_q: not a field of this network")
    m = copy.deepcopy(manifest)
    del m["arrays"]["layers[0].row_scale_q"]
    _fails(tmp_path, m, arrays, r"arrays\.layers\[0\]\.row_scale_q: missing from the manifest")
    a = dict(arrays)
    a["layers[0].row_scale_q"] = arrays["layers[0].row_scale_q"].copy()
    a["layers[0].row_scale_q"][2] = 256
    m = copy.deepcopy(manifest)
    _reseal(m, a, "layers[0].row_scale_q")
    _fails(tmp_path, m, a, r"layers\[0\]\.row_scale_q: values 1\.\.256 outside uQ2\.6 \(0\.\.255\)")


def test_shipped_models_carry_digests():
    import warnings

    for path in sorted((REPO / "models").glob("*.safetensors")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            params = load_model(path)
        # Written before per-row scales: no scale, the per-step layers' weights aligned to the
        # cores' input formats (kinds with their own layer rule, FLAMES's, have no such shift).
        step_layers = [layer for layer in params.layers if layer.kind in step_kinds()]
        assert all(not layer.scaled and layer.current_shift == 0 for layer in step_layers), path
        assert all("row_scale_fmt" not in layer for layer in read_manifest(path)["layers"]), path


@pytest.mark.parametrize("header, message", [
    (b'{"a": ' * 200 + b'1' + b'}' * 200, "nested too deeply"),
    (b'{"__metadata__": {"x": "1"}, "n": ' + b'9' * 5000 + b'}', "integer of 5000 digits"),
    (b'{"x": NaN}', "not a number JSON allows"),
])
def test_hostile_headers_are_refused(tmp_path, header, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_sizes_are_checked_from_the_header_before_reading(tmp_path, monkeypatch):
    import golden.model_file as model_file

    header = b'{"w": {"dtype": "I64", "shape": [1000000000], "data_offsets": [0, 8000000000]}}'
    path = tmp_path / "huge.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 64)
    with pytest.raises(ModelFileError, match="no 'spikestream.manifest' entry"):
        load_model(path)
    path.write_bytes(b"\0" * 64)
    monkeypatch.setattr(model_file, "MAX_FILE_BYTES", 32)
    with pytest.raises(ModelFileError, match="larger than any model file"):
        load_model(path)


def test_command_default_refuses_an_existing_file(tmp_path, usage_error):
    from golden.model_file import main

    path = tmp_path / "mine.safetensors"
    path.write_bytes(b"precious")
    assert "exists; pass --force" in usage_error(main, ["default", str(path)])
    assert path.read_bytes() == b"precious"
    assert main(["default", str(path), "--force"]) == 0 and load_model(path).n_inputs > 0
    assert "is a directory" in usage_error(main, ["default", str(tmp_path)])
