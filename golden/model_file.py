"""Model files: one versioned file holding a whole integer network (format version 1).

A model file is a standard `safetensors <https://huggingface.co/docs/safetensors>`_ file:

* its tensors are the network's integer arrays, each named by its field path
  (``layers[0].weight_q``, ``layers[0].neuron.decay_re_q``, ...), ``int64`` (``bool`` for the
  quantisation-report masks);
* its header metadata holds ``spikestream.manifest``: a JSON document with the
  format name and version, the input side (``n_inputs``, ``bin_ticks``,
  ``max_events_per_step``, ``input_map``), per layer the sizes, formats (strings such as
  ``"sQ8.16"``), accumulator width and neuron kind with every scalar parameter, the
  provenance, and for every array its shape, dtype and SHA-256;
* and ``spikestream.manifest_sha256``: the SHA-256 of every manifest value by its field path
  (``bin_ticks``, ``layers[0].neuron.scalars.tau_q``, ...), so that an edited manifest is
  refused naming the field, as an edited array is. A file without it (written before
  digests) loads with a :class:`ModelFileWarning`.

The container is checked from its header before the arrays are read: sizes (at most
:data:`MAX_FILE_BYTES`), the number of arrays, the JSON's nesting depth and integer sizes are
bounded, so a huge or hostile file is refused without being read whole.

``docs/model_file.md`` documents every field. :func:`save_model` writes a file from
:class:`~golden.network.NetworkParams`; :func:`load_model` reads one back. Every problem with
a file (missing, truncated, corrupted bytes, wrong format or version, a missing, unknown or
ill-typed field, a shape, dtype or value that does not fit, layers that do not chain, an
unknown neuron kind) raises :class:`ModelFileError`, whose message starts with the file and
names the field path, e.g. ``model.safetensors: layers[1].neuron.tau_q: ...``.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import warnings
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as _st_load
from safetensors.numpy import save as _st_save

from .data.events import ChannelPool, InputMap
from .errors import SpikestreamError
from .files import write_bytes
from .fixed import QFormat
from .kinds import network_kinds
from .network import LayerParams, NetworkParams

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST_KEY",
    "DIGEST_KEY",
    "MAX_FILE_BYTES",
    "ModelFileError",
    "ModelFileWarning",
    "manifest_digests",
    "save_model",
    "load_model",
    "read_manifest",
    "to_manifest",
    "from_manifest",
    "write_raw",
    "read_raw",
]

FORMAT_NAME = "spikestream-model"
FORMAT_VERSION = 1
#: safetensors header metadata key holding the JSON manifest.
MANIFEST_KEY = "spikestream.manifest"
#: safetensors header metadata key holding the manifest's digests (:func:`manifest_digests`).
DIGEST_KEY = "spikestream.manifest_sha256"
#: Largest model file read: a network an ECP5 holds is a few MB of int64 arrays.
MAX_FILE_BYTES = 256 * 1024 * 1024
# safetensors: 8-byte little-endian header length; a header larger than this is not ours.
_MAX_HEADER_BYTES = 16 * 1024 * 1024
# Bounds of the header's JSON: arrays in a file, nesting depth, digits of an integer.
_MAX_ARRAYS = 4096
_MAX_DEPTH = 32
_MAX_INT_DIGITS = 30
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2, "U32": 4, "I32": 4,
                "F32": 4, "U64": 8, "I64": 8, "F64": 8}


class ModelFileError(SpikestreamError):
    """A model file that cannot be read; the message names the file and the field path."""


class ModelFileWarning(UserWarning):
    """A model file that loads but is not fully checked (no manifest digest: written before digests)."""


class _FieldError(ValueError):
    """Internal: a problem at a field path, turned into :class:`ModelFileError` with the file."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}")


# What each neuron kind stores is its ModelFields (golden.kinds): formats, per-neuron arrays,
# integer scalars, boolean flags (stored among the scalars as 0/1), decays that must lie in
# [0, 1), and optional per-neuron bool masks kept for the quantisation report.

_TOP_KEYS = {"format", "version", "n_inputs", "bin_ticks", "max_events_per_step", "input_map", "channel_pool",
             "provenance", "layers", "arrays"}
_LAYER_KEYS = {"n_in", "n_out", "weight_fmt", "bias_fmt", "acc_bits", "neuron", "row_scale_fmt"}
_NEURON_KEYS = {"kind", "formats", "scalars"}
_INPUT_MAP_KEYS = {"sensor_size", "pool", "split_polarity"}
_CHANNEL_POOL_KEYS = {"n_sources", "pool"}
_ARRAY_KEYS = {"shape", "dtype", "sha256"}


def _sha256(array: np.ndarray) -> str:
    """SHA-256 of the array's bytes as stored: little-endian int64, or one byte per bool."""
    stored = array.astype(np.uint8) if array.dtype == bool else array.astype("<i8")
    return hashlib.sha256(np.ascontiguousarray(stored).tobytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# NetworkParams -> manifest + arrays
# --------------------------------------------------------------------------------------------
def to_manifest(params: NetworkParams) -> tuple[dict, dict[str, np.ndarray]]:
    """The manifest (a JSON-able dict) and the named arrays that :func:`save_model` writes."""
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for i, layer in enumerate(params.layers):
        where = f"layers[{i}]"
        spec = network_kinds()[layer.kind].model_fields
        neuron = layer.neuron
        arrays[f"{where}.weight_q"] = layer.weight_q
        arrays[f"{where}.bias_q"] = layer.bias_q
        if layer.scaled:
            arrays[f"{where}.row_scale_q"] = layer.row_scale_q
        for name in spec.arrays:
            arrays[f"{where}.neuron.{name}"] = np.asarray(getattr(neuron, name))
        for mask in spec.masks:
            value = spec.mask_value(neuron, mask)
            if value is not None and np.size(value):
                arrays[f"{where}.neuron.{mask}"] = np.asarray(value, dtype=bool).reshape(-1)
        doc = {
            "n_in": layer.n_in,
            "n_out": layer.n_out,
            "weight_fmt": str(layer.weight_fmt),
            "bias_fmt": str(layer.bias_fmt),
            "acc_bits": int(layer.acc_bits),
            "neuron": {
                "kind": layer.kind,
                "formats": {name: str(getattr(neuron, name)) for name in spec.formats},
                "scalars": {**{name: int(getattr(neuron, name)) for name in (*spec.scalars, *spec.flags)},
                            **{name: str(getattr(neuron, name)) for name in spec.enums}},
            },
        }
        if layer.scaled:
            doc["row_scale_fmt"] = str(layer.row_scale_fmt)
        layers.append(doc)
    input_map = None
    if params.input_map is not None:
        input_map = {
            "sensor_size": list(params.input_map.sensor_size),
            "pool": list(params.input_map.pool),
            "split_polarity": bool(params.input_map.split_polarity),
        }
    arrays = {name: np.ascontiguousarray(a, dtype=bool if a.dtype == bool else np.int64) for name, a in arrays.items()}
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "n_inputs": params.n_inputs,
        "bin_ticks": params.bin_ticks,
        "max_events_per_step": params.max_events_per_step,
        "input_map": input_map,
        "provenance": params.provenance,
        "layers": layers,
        "arrays": {
            name: {"shape": list(a.shape), "dtype": "bool" if a.dtype == bool else "int64", "sha256": _sha256(a)}
            for name, a in arrays.items()
        },
    }
    if params.channel_pool is not None:  # written only when there is one: older files load unchanged
        manifest["channel_pool"] = {"n_sources": params.channel_pool.n_sources, "pool": params.channel_pool.pool}
    return manifest, arrays


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def manifest_digests(manifest) -> dict[str, str]:
    """SHA-256 of every leaf value of the manifest by its field path.

    Paths name fields as the errors do: ``bin_ticks``, ``layers[0].neuron.scalars.tau_q``,
    ``arrays.layers[0].weight_q.sha256``; an empty object or list is a leaf of its own.
    """
    digests: dict[str, str] = {}
    stack = [("", manifest)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, dict) and value:
            stack += [(f"{where}.{key}" if where else str(key), item) for key, item in value.items()]
        elif isinstance(value, list) and value:
            stack += [(f"{where}[{i}]", item) for i, item in enumerate(value)]
        else:
            digests[where or "manifest"] = hashlib.sha256(_canonical(value).encode()).hexdigest()
    return dict(sorted(digests.items()))


def write_raw(path, manifest: dict, arrays: dict[str, np.ndarray], *, digest: bool = True) -> Path:
    """Write a manifest and arrays as a model file without any checking (tests use it to
    write deliberately broken files); with its digests unless ``digest=False``. The file is
    written under a temporary name and renamed. Returns the path."""
    path = Path(path)
    try:
        metadata = {MANIFEST_KEY: json.dumps(manifest, sort_keys=True, allow_nan=False)}
        if digest:
            metadata[DIGEST_KEY] = json.dumps(manifest_digests(manifest), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: manifest is not JSON-serialisable ({exc}); check provenance") from None
    return write_bytes(path, _st_save(dict(arrays), metadata=metadata))


def save_model(path, params: NetworkParams) -> Path:
    """Write ``params`` as a version-1 model file (conventionally ``*.safetensors``).

    The file is re-read and compared before returning, so a file this function wrote always
    loads. Returns the path.

    Raises
    ------
    ModelFileError
        If the provenance is not JSON-serialisable or the written file does not read back.
    """
    if not isinstance(params, NetworkParams):
        raise ModelFileError(f"{path}: save_model needs NetworkParams, not {type(params).__name__}")
    manifest, arrays = to_manifest(params)
    path = write_raw(path, manifest, arrays)
    load_model(path)
    return path


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits (at most {_MAX_INT_DIGITS})")
    return int(text)


def _reject_constant(text: str):
    raise ValueError(f"{text} is not a number JSON allows")


def _parse_json(text, what: str, path: Path):
    """JSON with bounded integers, no NaN/Infinity, bounded nesting; a ModelFileError otherwise."""
    try:
        value = json.loads(text, parse_int=_parse_int, parse_constant=_reject_constant)
    except RecursionError:
        raise ModelFileError(f"{path}: {what}: nested too deeply (at most {_MAX_DEPTH} levels)") from None
    except (UnicodeDecodeError, ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: {what}: corrupted, not JSON ({exc})") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise ModelFileError(f"{path}: {what}: nested too deeply (at most {_MAX_DEPTH} levels)")
        if isinstance(item, dict):
            stack += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            stack += [(v, depth + 1) for v in item]
        elif isinstance(item, float) and not math.isfinite(item):
            raise ModelFileError(f"{path}: {what}: a number out of range ({item})")
    return value


def _check_tensor_entries(header: dict, header_len: int, file_size: int, path: Path) -> None:
    """Every array's dtype, shape and byte range from the header agree with the file's size."""
    tensors = {name: entry for name, entry in header.items() if name != "__metadata__"}
    if len(tensors) > _MAX_ARRAYS:
        raise ModelFileError(f"{path}: header: {len(tensors)} arrays, a model file has at most {_MAX_ARRAYS}")
    end = 0
    for name, entry in tensors.items():
        where = f"{path}: {name}"
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
            raise ModelFileError(f"{where}: header entry must have dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in _DTYPE_BYTES:
            raise ModelFileError(f"{where}: header dtype {dtype!r} is not a safetensors dtype")
        if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                                  for n in shape):
            raise ModelFileError(f"{where}: header shape must be a list of sizes, not {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) for n in offsets) and 0 <= offsets[0] <= offsets[1]):
            raise ModelFileError(f"{where}: header data_offsets must be [begin, end], not {offsets!r}")
        if (offsets[1] - offsets[0]) != math.prod(shape) * _DTYPE_BYTES[dtype]:
            raise ModelFileError(f"{where}: header byte range {offsets} does not hold shape {shape} of {dtype}")
        end = max(end, offsets[1])
    if 8 + header_len + end > file_size:
        raise ModelFileError(f"{path}: array data: truncated: the header announces {end} bytes of arrays, "
                             f"the file holds {file_size - 8 - header_len}")


def _check_manifest_digest(manifest, metadata: dict, path: Path) -> None:
    """Compare the manifest with its digests; warn for a file that has none."""
    if DIGEST_KEY not in metadata:
        warnings.warn(f"{path}: the manifest has no digest ({DIGEST_KEY}); the file was written before "
                      "manifest digests and an edit of it would go unnoticed: write it again with "
                      "golden.model_file.save_model", ModelFileWarning, stacklevel=4)
        return
    text = metadata[DIGEST_KEY]
    expected = _parse_json(text, DIGEST_KEY, path) if isinstance(text, str) else None
    if not isinstance(expected, dict) or not all(isinstance(v, str) for v in expected.values()):
        raise ModelFileError(f"{path}: {DIGEST_KEY}: corrupted, must be an object of SHA-256 digests")
    actual = manifest_digests(manifest)
    for where in sorted(set(actual) | set(expected)):
        if where not in expected:
            raise ModelFileError(f"{path}: {where}: not covered by the manifest digest (a field added to the manifest)")
        if where not in actual:
            raise ModelFileError(f"{path}: {where}: missing from the manifest but covered by its digest "
                                 "(a field removed from the manifest)")
        if actual[where] != expected[where]:
            raise ModelFileError(f"{path}: {where}: corrupted: SHA-256 of the manifest value does not match "
                                 f"{DIGEST_KEY}.{where}")


def read_raw(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read the manifest (parsed JSON, digests checked, fields not) and the arrays of a model file.

    Checks the container: the file exists, is not too large, is not truncated, its header
    parses within bounds (depth, integer size, array count) and agrees with the file's size, it
    has a manifest that matches its digests, and the tensor data are complete. The arrays are
    read only after the header has been checked.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    file_size = path.stat().st_size
    if file_size > MAX_FILE_BYTES:
        raise ModelFileError(f"{path}: {file_size} bytes, larger than any model file ({MAX_FILE_BYTES} bytes at most)")
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ModelFileError(f"{path}: truncated: {len(head)} bytes, a model file starts with an 8-byte header length")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > _MAX_HEADER_BYTES:
            raise ModelFileError(f"{path}: not a model file (header length field says {header_len} bytes)")
        if 8 + header_len > file_size:
            raise ModelFileError(
                f"{path}: truncated: the header announces {header_len} bytes but the file ends after {file_size - 8}"
            )
        header_bytes = handle.read(header_len)
        try:
            header_text = header_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ModelFileError(f"{path}: header: corrupted, not JSON ({exc})") from None
        header = _parse_json(header_text, "header", path)
        if not isinstance(header, dict):
            raise ModelFileError(f"{path}: header: corrupted, not a JSON object")
        metadata = header.get("__metadata__") or {}
        if not isinstance(metadata, dict) or not isinstance(metadata.get(MANIFEST_KEY), str):
            raise ModelFileError(
                f"{path}: header: no {MANIFEST_KEY!r} entry; this is not a spikestream model file "
                "(write one with golden.model_file.save_model)"
            )
        unknown = sorted(set(metadata) - {MANIFEST_KEY, DIGEST_KEY})
        if unknown:
            raise ModelFileError(f"{path}: header: unknown metadata entry {unknown[0]!r} (a model file has "
                                 f"{MANIFEST_KEY!r} and {DIGEST_KEY!r} only)")
        manifest = _parse_json(metadata[MANIFEST_KEY], "manifest", path)
        _check_manifest_digest(manifest, metadata, path)
        _check_tensor_entries(header, header_len, file_size, path)
        raw = head + header_bytes + handle.read()
    try:
        arrays = _st_load(raw)
    except SafetensorError as exc:
        raise ModelFileError(f"{path}: array data: truncated or corrupted ({exc})") from None
    except Exception as exc:  # the reader raises assorted errors on malformed headers
        raise ModelFileError(f"{path}: array data: unreadable ({type(exc).__name__}: {exc})") from None
    return manifest, arrays


def read_manifest(path) -> dict:
    """The parsed manifest of a model file (container checked, fields not)."""
    return read_raw(path)[0]


def load_model(path) -> NetworkParams:
    """Read a model file into :class:`~golden.network.NetworkParams`.

    Raises
    ------
    ModelFileError
        On any problem, naming the file and the field path.
    """
    path = Path(path)
    manifest, arrays = read_raw(path)
    return from_manifest(manifest, arrays, source=str(path))


def from_manifest(manifest: dict, arrays: dict[str, np.ndarray], source: str = "model") -> NetworkParams:
    """Check a manifest and its arrays field by field and build the network."""
    try:
        return _build(manifest, arrays)
    except _FieldError as exc:
        raise ModelFileError(f"{source}: {exc}") from None


def _require(obj: dict, key: str, where: str, kinds, what: str):
    if key not in obj:
        raise _FieldError(f"{where}.{key}" if where else key, "missing")
    value = obj[key]
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise _FieldError(f"{where}.{key}" if where else key, f"must be {what}, not {value!r}")
    if not isinstance(value, kinds):
        raise _FieldError(f"{where}.{key}" if where else key, f"must be {what}, not {value!r}")
    return value


def _no_unknown(obj: dict, allowed: set, where: str):
    unknown = sorted(set(obj) - allowed)
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise _FieldError(name, f"unknown field (format version {FORMAT_VERSION} has {', '.join(sorted(allowed))})")


def _positive_int(obj: dict, key: str, where: str) -> int:
    value = _require(obj, key, where, int, "a positive integer")
    if value < 1:
        raise _FieldError(f"{where}.{key}" if where else key, f"must be a positive integer, not {value}")
    return value


def _format(text, where: str) -> QFormat:
    if not isinstance(text, str):
        raise _FieldError(where, f"must be a format string such as 'sQ8.16', not {text!r}")
    try:
        return QFormat.parse(text)
    except (ValueError, TypeError) as exc:
        raise _FieldError(where, str(exc)) from None


def _check_range(value, fmt: QFormat, where: str, decay: bool = False):
    lo, hi = fmt.min_int, fmt.max_int
    if decay:
        lo, hi = max(lo, 0), min(hi, (1 << fmt.frac_bits) - 1)
    arr = np.asarray(value)
    bad = np.flatnonzero((arr.reshape(-1) < lo) | (arr.reshape(-1) > hi))
    if bad.size:
        first = int(arr.reshape(-1)[bad[0]])
        at = f" (entry {int(bad[0])}, {bad.size} such)" if arr.ndim else ""
        rule = f"a decay in [0, 1) of {fmt}" if decay else str(fmt)
        raise _FieldError(where, f"value {first}{at} is outside {rule}, allowed {lo}..{hi}")


def _array(manifest_arrays: dict, arrays: dict, name: str, shape: tuple, dtype: str = "int64") -> np.ndarray:
    if name not in manifest_arrays:
        raise _FieldError(f"arrays.{name}", "missing from the manifest")
    entry = manifest_arrays[name]
    if not isinstance(entry, dict):
        raise _FieldError(f"arrays.{name}", f"must be an object with {', '.join(sorted(_ARRAY_KEYS))}")
    _no_unknown(entry, _ARRAY_KEYS, f"arrays.{name}")
    for key in sorted(_ARRAY_KEYS):
        if key not in entry:
            raise _FieldError(f"arrays.{name}.{key}", "missing")
    if not isinstance(entry["shape"], list) or not all(isinstance(v, int) for v in entry["shape"]):
        raise _FieldError(f"arrays.{name}.shape", f"must be a list of integers, not {entry['shape']!r}")
    if entry["dtype"] != dtype:
        raise _FieldError(f"arrays.{name}.dtype", f"must be {dtype!r}, not {entry['dtype']!r}")
    if shape is None:  # a shape the parameter class checks (golden.kinds.ModelFields.array_shapes)
        shape = tuple(entry["shape"])
    if list(entry["shape"]) != list(shape):
        raise _FieldError(name, f"shape must be {list(shape)} (from the layer sizes), the manifest says {entry['shape']}")
    if name not in arrays:
        raise _FieldError(name, "array missing from the file")
    value = arrays[name]
    want = np.dtype(bool) if dtype == "bool" else np.dtype(np.int64)
    if value.dtype != want:
        raise _FieldError(name, f"stored dtype is {value.dtype}, must be {want}")
    if tuple(value.shape) != tuple(shape):
        raise _FieldError(name, f"stored shape is {list(value.shape)}, must be {list(shape)}")
    if _sha256(value) != entry["sha256"]:
        raise _FieldError(name, "corrupted: SHA-256 of the stored bytes does not match arrays." + name + ".sha256")
    return value


def _build(manifest, arrays) -> NetworkParams:
    if not isinstance(manifest, dict):
        raise _FieldError("manifest", "must be a JSON object")
    fmt_name = manifest.get("format")
    if fmt_name != FORMAT_NAME:
        raise _FieldError("format", f"must be {FORMAT_NAME!r}, not {fmt_name!r}")
    version = manifest.get("version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise _FieldError(
            "version", f"this reader reads format version {FORMAT_VERSION} only, the file has {version!r}"
        )
    _no_unknown(manifest, _TOP_KEYS, "")
    n_inputs = _positive_int(manifest, "n_inputs", "")
    bin_ticks = _positive_int(manifest, "bin_ticks", "")
    max_events = _positive_int(manifest, "max_events_per_step", "")
    if "provenance" not in manifest:
        raise _FieldError("provenance", "missing")
    provenance = manifest["provenance"]
    if not isinstance(provenance, dict):
        raise _FieldError("provenance", f"must be a JSON object, not {provenance!r}")
    input_map = _input_map(manifest)
    channel_pool = _channel_pool(manifest)
    manifest_arrays = _require(manifest, "arrays", "", dict, "an object mapping array names to shape/dtype/sha256")
    layer_docs = _require(manifest, "layers", "", list, "a list of layers")
    if not layer_docs:
        raise _FieldError("layers", "empty: a network needs at least the readout layer")

    layers, expected = [], set()
    n_prev, prev_name = n_inputs, "n_inputs"
    for i, doc in enumerate(layer_docs):
        where = f"layers[{i}]"
        if not isinstance(doc, dict):
            raise _FieldError(where, "must be a JSON object")
        _no_unknown(doc, _LAYER_KEYS, where)
        n_in = _positive_int(doc, "n_in", where)
        n_out = _positive_int(doc, "n_out", where)
        if n_in != n_prev:
            raise _FieldError(f"{where}.n_in", f"is {n_in} but {prev_name} is {n_prev}: layers do not chain")
        weight_fmt = _format(_require(doc, "weight_fmt", where, str, "a format string"), f"{where}.weight_fmt")
        bias_fmt = _format(_require(doc, "bias_fmt", where, str, "a format string"), f"{where}.bias_fmt")
        acc_bits = _require(doc, "acc_bits", where, int, "an integer")
        weight = _array(manifest_arrays, arrays, f"{where}.weight_q", (n_out, n_in))
        bias = _array(manifest_arrays, arrays, f"{where}.bias_q", (n_out,))
        _check_range(weight, weight_fmt, f"{where}.weight_q")
        _check_range(bias, bias_fmt, f"{where}.bias_q")
        expected |= {f"{where}.weight_q", f"{where}.bias_q"}
        row_scale, row_scale_fmt = None, None
        if "row_scale_fmt" in doc:
            row_scale_fmt = _format(_require(doc, "row_scale_fmt", where, str, "a format string"),
                                    f"{where}.row_scale_fmt")
            row_scale = _array(manifest_arrays, arrays, f"{where}.row_scale_q", (n_out,))  # LayerParams checks it
            expected.add(f"{where}.row_scale_q")
        neuron, names = _neuron(doc, where, n_out, manifest_arrays, arrays, weight)
        expected |= names
        try:
            layers.append(LayerParams(weight, bias, weight_fmt, bias_fmt, neuron, acc_bits=acc_bits,
                                      row_scale_q=row_scale, row_scale_fmt=row_scale_fmt))
        except ValueError as exc:
            text = str(exc)
            if text.startswith("layer"):
                text = where + text[len("layer"):]
            raise _FieldError(*text.split(": ", 1)) from None
        n_prev = layers[-1].n_outputs
        prev_name = f"{where}.n_out" if n_prev == n_out else f"{where}'s output width ({layers[-1].kind})"

    extra = sorted(set(manifest_arrays) - expected)
    if extra:
        raise _FieldError(f"arrays.{extra[0]}", "not a field of this network (unknown array)")
    extra = sorted(set(arrays) - expected)
    if extra:
        raise _FieldError(extra[0], "array in the file but not in the manifest")
    try:
        return NetworkParams(
            n_inputs=n_inputs, bin_ticks=bin_ticks, layers=layers, input_map=input_map,
            max_events_per_step=max_events, provenance=provenance, channel_pool=channel_pool,
        )
    except ValueError as exc:
        text = str(exc)
        where, _, problem = text.partition(": ")
        raise _FieldError(where, problem) from None


def _input_map(manifest: dict):
    if "input_map" not in manifest:
        raise _FieldError("input_map", "missing (write null for channel input without a camera map)")
    doc = manifest["input_map"]
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise _FieldError("input_map", "must be null or an object with sensor_size, pool, split_polarity")
    _no_unknown(doc, _INPUT_MAP_KEYS, "input_map")
    pairs = {}
    for key in ("sensor_size", "pool"):
        value = _require(doc, key, "input_map", list, "a list of two positive integers [x, y]")
        if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            raise _FieldError(f"input_map.{key}", f"must be two positive integers [x, y], not {value!r}")
        pairs[key] = tuple(value)
    split = _require(doc, "split_polarity", "input_map", bool, "true or false")
    return InputMap(sensor_size=pairs["sensor_size"], pool=pairs["pool"], split_polarity=split)


def _channel_pool(manifest: dict):
    doc = manifest.get("channel_pool")  # optional: absent means no channel pooling
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise _FieldError("channel_pool", "must be an object with n_sources, pool (or absent)")
    _no_unknown(doc, _CHANNEL_POOL_KEYS, "channel_pool")
    values = {key: _positive_int(doc, key, "channel_pool") for key in ("n_sources", "pool")}
    return ChannelPool(**values)


def _neuron(layer_doc: dict, where: str, n_out: int, manifest_arrays: dict, arrays: dict, weight: np.ndarray):
    nwhere = f"{where}.neuron"
    doc = _require(layer_doc, "neuron", where, dict, "an object")
    _no_unknown(doc, _NEURON_KEYS, nwhere)
    kind = _require(doc, "kind", nwhere, str, "a neuron kind name")
    kinds = network_kinds()
    if kind not in kinds:
        raise _FieldError(f"{nwhere}.kind", f"unknown neuron kind {kind!r}; known: {', '.join(kinds)}")
    spec = kinds[kind].model_fields
    formats_doc = _require(doc, "formats", nwhere, dict, "an object of format strings")
    _no_unknown(formats_doc, set(spec.formats), f"{nwhere}.formats")
    formats = {}
    for name in spec.formats:
        formats[name] = _format(_require(formats_doc, name, f"{nwhere}.formats", str, "a format string"),
                                f"{nwhere}.formats.{name}")
    scalars_doc = _require(doc, "scalars", nwhere, dict, "an object of integers")
    _no_unknown(scalars_doc, {*spec.scalars, *spec.flags, *spec.enums}, f"{nwhere}.scalars")
    kwargs, names = dict(formats), set()
    if spec.layer_weight is not None:
        kwargs[spec.layer_weight] = weight
    for name, fmt_field in spec.scalars.items():
        value = _require(scalars_doc, name, f"{nwhere}.scalars", int, "an integer")
        if fmt_field is not None:
            _check_range(value, formats[fmt_field], f"{nwhere}.{name}", decay=name in spec.decays)
        kwargs[name] = value
    for name, choices in spec.enums.items():
        value = _require(scalars_doc, name, f"{nwhere}.scalars", str, f"one of {', '.join(map(repr, choices))}")
        if value not in choices:
            raise _FieldError(f"{nwhere}.{name}", f"must be one of {', '.join(map(repr, choices))}, not {value!r}")
        kwargs[name] = value
    for name in spec.flags:
        value = _require(scalars_doc, name, f"{nwhere}.scalars", int, "0 or 1")
        if value not in (0, 1):
            raise _FieldError(f"{nwhere}.{name}", f"must be 0 or 1, not {value}")
        kwargs[name] = bool(value)
    shapes = spec.array_shapes(n_out)
    for name, fmt_field in spec.arrays.items():
        full = f"{nwhere}.{name}"
        value = _array(manifest_arrays, arrays, full, shapes.get(name, (n_out,)))
        if fmt_field is not None:
            _check_range(value, formats[fmt_field], full, decay=name in spec.decays)
        kwargs[name] = value
        names.add(full)
    masks = {}
    for mask in spec.masks:
        full = f"{nwhere}.{mask}"
        if full in manifest_arrays:
            masks[mask] = _array(manifest_arrays, arrays, full, (n_out,), dtype="bool")
            names.add(full)
    kwargs.update(spec.mask_kwargs(masks))
    try:
        neuron = kinds[kind].params_class(**kwargs)
    except ValueError as exc:
        raise _FieldError(nwhere, str(exc)) from None
    return neuron, names


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------
def _summary(params: NetworkParams) -> str:
    lines = [f"inputs {params.n_inputs}, step {params.bin_ticks} ticks, at most {params.max_events_per_step} "
             f"events per step" + (f", input map {params.input_map}" if params.input_map else "")
             + (f", channel pool {params.channel_pool}" if params.channel_pool else "")]
    for i, layer in enumerate(params.layers):
        core_input = getattr(layer.neuron, "input_fmt", None)  # a DH-LIF core takes its branch sums
        scale = f", row scale {layer.row_scale_fmt}" if layer.scaled else ""
        shift = f", shift {layer.current_shift}" if network_kinds()[layer.kind].layer is None else ""
        lines.append(f"layers[{i}] {layer.kind}: {layer.n_in} -> {layer.n_out}, weights {layer.weight_fmt}, "
                     f"bias {layer.bias_fmt}{scale}, accumulator {layer.acc_bits} bits{shift}"
                     + (f", input {core_input}" if core_input is not None else ""))
    if params.provenance:
        lines.append(f"provenance: {json.dumps(params.provenance, sort_keys=True)}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """``python -m golden.model_file check FILE`` / ``default OUT``; see ``docs/model_file.md``."""
    import argparse
    import sys

    from .cli import existing_file, non_negative_int, output_file, positive_int, upper_choice
    from .files import check_output
    from .fit import DEVICES, FitError, check_fit
    from .network import default_hidden_kinds, default_network

    parser = argparse.ArgumentParser(prog="python -m golden.model_file", description="Check or write model files.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="load a model file, print its summary and the fit check")
    check.add_argument("file", type=existing_file)
    check.add_argument("--device", default="85F", type=upper_choice(sorted(DEVICES), "device"),
                       help="ULX3S FPGA size: 12F, 25F, 45F or 85F (default 85F)")
    check.add_argument("--lanes", type=positive_int, default=1, help="neuron lanes per layer (default 1)")
    write = sub.add_parser("default", help="write the embedded default network")
    write.add_argument("out", type=output_file)
    write.add_argument("--seed", type=non_negative_int, default=0)
    write.add_argument("--hidden", default="csilif", choices=default_hidden_kinds())
    write.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)
    try:
        if args.command == "default":
            try:
                check_output(args.out, force=args.force)
            except SpikestreamError as exc:
                parser.error(str(exc))
            path = save_model(args.out, default_network(seed=args.seed, hidden_kind=args.hidden))
            print(f"wrote {path}")
            return 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ModelFileWarning)
            params = load_model(args.file)
        for warning in caught:
            print(f"warning: {warning.message}", file=sys.stderr)
        print(_summary(params))
        print(check_fit(params, args.device, lanes=args.lanes))
    except (ModelFileError, FitError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from .cli import run_main

    raise SystemExit(run_main(main))
