"""NIR (Neuromorphic Intermediate Representation) in and out.

``python -m golden.nir import GRAPH.nir --out MODEL.safetensors [--dt SECONDS] [--source S]
[--calibrate FILE ...] [--bin-ticks N] [--device 85F] [--force]`` reads a NIR graph, turns it
into the project's float network (:class:`golden.export.FloatNetwork`), quantises it with
:func:`golden.export.export_network` (formats sized on the ``--calibrate`` data, else on random
spikes) and writes a model file; it prints a summary of everything approximated. ``python -m golden.nir
export MODEL.safetensors --out GRAPH.nir [--dt SECONDS] [--force]`` writes a model file's network as
NIR. Neither overwrites an existing ``--out`` without ``--force``, and each writes under a
temporary name first.

Discretisation (``docs/byo_network.md`` has the table). NIR's neurons are continuous-time;
each framework writes and reads them with its own rule, chosen with ``source``:

* ``snntorch`` and ``nir`` (forward Euler, step ``dt``; snnTorch writes with ``dt = 1e-4``):
  ``leak = 1 - dt/tau``, input gain ``r*dt/tau``; a CubaLIF's current ``syn = 1 - dt/tau_syn``
  with input gain ``w_in*dt/tau_syn``; an IF's gain ``r*dt``.
* ``norse`` (Norse writes ``tau = dt/tau_inv``, ``dt = 1e-3``, and steps ``v += dt*tau_inv*(...)``):
  ``leak = 1 - dt**2/tau``, gain ``r*dt**2/tau``; an IF's gain ``r``. Norse's ``LIFCell``
  (NIR ``CubaLIF``) steps ``i += x``, ``v += dt*tau_mem_inv*((v_leak - v) + i)``, then
  ``i -= dt*tau_syn_inv*i``: the ``cuba_lif`` kind with ``syn = 1 - dt**2/tau_syn``, input
  gain ``w_in`` and ``scale = r*dt**2/tau_mem``.

Camera input: an ``Input`` of shape ``(C, H, W)`` (a leading batch dimension of 1 dropped;
C = 2 polarity planes, OFF then ON, or C = 1 for both together) becomes the network's
:class:`~golden.data.events.InputMap`, and a ``SumPool2d`` directly after it becomes the map's
pooling (kernel = stride, no padding, a sensor that is a multiple of the kernel: the map keeps
partial edge cells, SumPool2d drops them). The map's channel order is the flattening of the
pooled ``(C, H', W')`` frame, NIR's ``Flatten``.

Every gain is folded into the preceding affine layer (exact per neuron in float), ``v_leak``
of a LIF into its bias. Errors name the node and the reason (:class:`NIRImportError`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from .cuba_lif import CubaLIF, CubaLIFParams
from .data.events import InputMap
from .export import FloatNetwork, export_network
from .integrate_fire import IF, IFParams
from .layers import LIReadout, LIReadoutParams, SNNLayer
from .lif import LIF, LIF_MIN_THRESHOLD, LIFParams
from .network import DEFAULT_MAX_EVENTS_PER_STEP, NetworkParams

__all__ = ["NIRImportError", "ImportSummary", "SOURCES", "float_network_from_nir", "import_nir",
           "network_to_nir", "main"]

#: Discretisation rules by source framework, and the ``dt`` each writes with by default.
SOURCES = {"snntorch": 1e-4, "nir": 1e-4, "norse": 1e-3}
#: The readout decay of a readout appended to a graph that ends in a spiking layer.
APPENDED_READOUT_ALPHA = 0.9


class NIRImportError(ValueError):
    """A graph the import cannot take: the message names the node and the reason."""


class LIReadoutUnclamped(LIReadout):
    """:class:`~golden.layers.LIReadout` with the imported ``alpha`` as it is (no training clamp)."""

    def clamped_alpha(self) -> torch.Tensor:
        return self.alpha


@dataclasses.dataclass
class ImportSummary:
    """What the import did: one line per layer, and everything approximated."""

    layers: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    #: The camera input's map (pooling, polarity planes) where the graph's Input is ``(C, H, W)``.
    input_map: InputMap | None = None

    def text(self) -> str:
        return "\n".join(["layers:", *(f"  {line}" for line in self.layers), "approximations and notes:",
                          *(f"  {line}" for line in self.notes or ["none"])])


def _arr(node, name, n=None):
    value = np.asarray(getattr(node, name), dtype=np.float64).reshape(-1)
    return np.broadcast_to(value, (n,)).copy() if n is not None and value.size == 1 else value


def _one_value(name, where, values):
    if not np.all(values == values.flat[0]):
        raise NIRImportError(f"{where}: {name} differs between neurons; a layer has one reset value")
    return float(values.flat[0])


def _decay(name, where, ratio):
    """``1 - ratio``, checked to be a decay."""
    if np.any(ratio <= 0) or np.any(ratio > 1):
        raise NIRImportError(f"{where}: {name} = 1 - dt/tau outside [0, 1) (tau shorter than dt, or not positive)")
    return 1.0 - ratio


def _chain(graph):
    """The graph's nodes in order from its Input to its Output; refuses branches and cycles."""
    import nir

    nodes = graph.nodes
    succ, pred = {}, {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
        pred.setdefault(b, []).append(a)
    inputs = [name for name, node in nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise NIRImportError(f"graph: needs exactly one Input node, has {len(inputs)}")
    order, seen, name = [], set(), inputs[0]
    while True:
        if name in seen:
            raise NIRImportError(f"{name}: recurrent edge (a cycle back to {name}); only feed-forward chains are supported")
        seen.add(name)
        order.append(name)
        if len(pred.get(name, [])) > 1:
            raise NIRImportError(f"{name}: {len(pred[name])} incoming edges (a recurrent edge or a merge)")
        nxt = succ.get(name, [])
        if not nxt:
            break
        if len(nxt) > 1:
            raise NIRImportError(f"{name}: {len(nxt)} outgoing edges; only a chain is supported")
        name = nxt[0]
    if not isinstance(nodes[order[-1]], nir.Output):
        raise NIRImportError(f"{order[-1]}: the chain from the Input ends here, not in an Output node")
    if len(order) != len(nodes):
        rest = sorted(set(nodes) - set(order))
        raise NIRImportError(f"{rest[0]}: not on the chain from the Input to the Output")
    return [(name, nodes[name]) for name in order]


def _camera_input(name, node):
    """``(channels, height, width)`` of a camera Input node (``(C, H, W)``, C = 1 or 2), or None
    for a flat Input of channel events. A leading batch dimension of 1 (Norse writes one) is
    dropped."""
    shape = np.asarray(node.input_type["input"]).reshape(-1)
    if shape.size in (2, 4) and shape[0] == 1:
        shape = shape[1:]
    if shape.size == 1:
        return None
    if shape.size != 3 or shape[0] not in (1, 2) or np.any(shape < 1):
        raise NIRImportError(f"{name}: input of shape {tuple(int(v) for v in shape)}; the processor takes channel "
                             "events (one dimension) or camera events (C, H, W) with C = 1 or 2 polarity planes")
    return tuple(int(v) for v in shape)


def _pooled_input(name, node, camera):
    """The :class:`InputMap` doing a SumPool2d on the camera input ``(C, H, W)``."""
    channels, height, width = camera
    kernel, stride, padding = (np.broadcast_to(np.asarray(getattr(node, k), dtype=np.int64).reshape(-1), (2,))
                               for k in ("kernel_size", "stride", "padding"))
    if np.any(padding != 0):
        raise NIRImportError(f"{name}: SumPool2d padding {tuple(padding)}; the input map pools without padding")
    if np.any(stride != kernel):
        raise NIRImportError(f"{name}: SumPool2d stride {tuple(stride)} differs from its kernel {tuple(kernel)}; the "
                             "input map pools non-overlapping cells")
    if height % kernel[0] or width % kernel[1]:
        raise NIRImportError(f"{name}: a {width}x{height} sensor is not a multiple of the SumPool2d kernel "
                             f"{tuple(kernel)} (height, width); SumPool2d drops the partial edge cells, the input map "
                             "keeps them")
    return InputMap((width, height), pool=(int(kernel[1]), int(kernel[0])), split_polarity=channels == 2)


def float_network_from_nir(graph, dt: float | None = None, source: str = "snntorch"):
    """The float network a NIR graph describes: ``(FloatNetwork, ImportSummary)``.

    Raises :class:`NIRImportError` naming the node on anything it cannot take.
    """
    import nir

    if source not in SOURCES:
        raise NIRImportError(f"source: one of {', '.join(SOURCES)}, not {source!r}")
    dt = SOURCES[source] if dt is None else float(dt)
    if not dt > 0:
        raise NIRImportError(f"dt: must be positive, not {dt}")
    norse = source == "norse"
    step = dt * dt if norse else dt  # what multiplies 1/tau
    summary = ImportSummary()
    summary.notes.append(f"discretised by the {source} rule with dt = {dt:g} s")
    blocks = []
    weight = bias = None
    col_scale = None  # a Scale between a spiking layer (or the input) and the next affine

    camera = None  # (C, H, W) of a camera Input, until a Flatten, a pooling or an affine layer
    first_affine = None
    for name, node in _chain(graph):
        kind = type(node).__name__
        if isinstance(node, nir.Input):
            camera = _camera_input(name, node)
            if camera is not None:
                summary.input_map = InputMap((camera[2], camera[1]), split_polarity=camera[0] == 2)
            continue
        if isinstance(node, nir.SumPool2d):
            if camera is None:
                raise NIRImportError(f"{name}: SumPool2d is supported only on the camera input (C, H, W), directly "
                                     "after the Input, where the input map does it")
            summary.input_map = _pooled_input(name, node, camera)
            camera = None
            continue
        camera = None
        if isinstance(node, (nir.Output, nir.Flatten)):
            continue
        if isinstance(node, nir.Scale):
            s = _arr(node, "scale")
            if weight is None:
                col_scale = s if col_scale is None else col_scale * s
            else:
                weight, bias = weight * s.reshape(-1, 1), bias * s
            continue
        if isinstance(node, (nir.Affine, nir.Linear)):
            if weight is not None:
                raise NIRImportError(f"{name}: two affine layers in a row (no neuron between them)")
            first_affine = first_affine or name
            weight = np.asarray(node.weight, dtype=np.float64)
            if weight.ndim != 2:
                raise NIRImportError(f"{name}: weight of shape {weight.shape}; only dense 2-D weights are supported")
            bias = (np.asarray(node.bias, dtype=np.float64).reshape(-1).copy() if isinstance(node, nir.Affine)
                    else np.zeros(weight.shape[0]))
            if col_scale is not None:
                weight, col_scale = weight * col_scale.reshape(1, -1), None
            continue
        if not isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.Threshold)):
            raise NIRImportError(f"{name}: {kind} nodes are not supported (supported: Input, Output, Affine, Linear, "
                                 "LIF, CubaLIF, IF, LI, Flatten, Scale, Threshold, and SumPool2d on the camera input)")
        if weight is None:
            raise NIRImportError(f"{name}: a {kind} needs an Affine or Linear node before it")
        n = weight.shape[0]
        if isinstance(node, nir.LIF):
            tau = _arr(node, "tau", n)
            leak = _decay("leak", name, step / tau)
            gain = _arr(node, "r", n) * step / tau
            v_leak = _arr(node, "v_leak", n)
            bias = bias + v_leak / np.where(gain == 0, 1, _arr(node, "r", n))  # (dt/tau) v_leak == gain * v_leak / r
            module, line = LIF(n, reset=_one_value("v_reset", name, _arr(node, "v_reset", n))), "lif"
            params = {"leak": leak, "threshold": _arr(node, "v_threshold", n), "scale": np.ones(n)}
        elif isinstance(node, nir.CubaLIF):
            if np.any(_arr(node, "v_leak", n) != 0):
                raise NIRImportError(f"{name}: v_leak != 0 in a CubaLIF cannot be folded into a bias exactly")
            tau_syn, tau_mem = _arr(node, "tau_syn", n), _arr(node, "tau_mem", n)
            # folded into the affine layer; Norse adds the input to the current unscaled (i += x)
            gain = _arr(node, "w_in", n) * (1.0 if norse else step / tau_syn)
            module, line = CubaLIF(n, reset=_one_value("v_reset", name, _arr(node, "v_reset", n))), "cuba_lif"
            params = {"syn": _decay("syn", name, step / tau_syn), "leak": _decay("leak", name, step / tau_mem),
                      "threshold": _arr(node, "v_threshold", n), "scale": _arr(node, "r", n) * step / tau_mem}
        elif isinstance(node, nir.IF):
            gain = _arr(node, "r", n) * (1.0 if norse else dt)
            module, line = IF(n, reset=_one_value("v_reset", name, _arr(node, "v_reset", n))), "if"
            params = {"threshold": _arr(node, "v_threshold", n), "scale": np.ones(n)}
        elif isinstance(node, nir.Threshold):
            gain = np.ones(n)
            module, line = LIF(n, reset=0.0), "lif (Threshold: leak 0, reset 0)"
            params = {"leak": np.zeros(n), "threshold": _arr(node, "threshold", n), "scale": np.ones(n)}
            summary.notes.append(f"{name}: Threshold fires on x > threshold (strict), NIR's Heaviside at equality may differ")
        else:  # LI: the readout u = alpha*u + (1-alpha)*x; r and v_leak folded into the affine layer
            tau = _arr(node, "tau", n)
            alpha = _decay("alpha", name, step / tau)
            gain = _arr(node, "r", n)
            bias = bias + _arr(node, "v_leak", n) / np.where(gain == 0, 1, gain)
            module, line = LIReadoutUnclamped(n), "li_readout"
            params = {"alpha": alpha}
        if "threshold" in params and np.any(params["threshold"] <= 0):
            raise NIRImportError(f"{name}: v_threshold must be positive")
        for pname, limit in (("leak", 0.999), ("syn", 0.999)):
            if pname in params and np.any(params[pname] > limit):
                summary.notes.append(f"{name}: {int(np.sum(params[pname] > limit))} {pname} decays above {limit} "
                                     f"are clamped to {limit} (the float module's training clamp)")
        if "threshold" in params and np.any(params["threshold"] < LIF_MIN_THRESHOLD):
            summary.notes.append(f"{name}: thresholds below {LIF_MIN_THRESHOLD} are raised to it (the float module's clamp)")
        weight, bias = weight * gain.reshape(-1, 1), bias * gain
        with torch.no_grad():
            for pname, value in params.items():
                getattr(module, pname).copy_(torch.as_tensor(value))
        blocks.append(_block(weight, bias, module))
        summary.layers.append(f"{name}: {kind} -> {line}, {weight.shape[1]} -> {n}")
        weight = bias = None
    if weight is not None:
        raise NIRImportError("graph: ends in an affine layer without a neuron after it")
    if not blocks:
        raise NIRImportError("graph: no neuron layer")
    input_map = summary.input_map
    if input_map is not None:
        n_in = blocks[0].linear.in_features
        if n_in != input_map.n_channels:
            raise NIRImportError(f"{first_affine}: takes {n_in} inputs, the camera input gives "
                                 f"{input_map.n_channels} ({input_map.n_polarities} x {input_map.pooled_size[1]} x "
                                 f"{input_map.pooled_size[0]})")
        (width, height), (pool_x, pool_y) = input_map.sensor_size, input_map.pool
        summary.notes.append(f"camera input {width}x{height}, {input_map.n_polarities} polarity plane(s), pooled "
                             f"{pool_x}x{pool_y} by the input map: {input_map.n_channels} channels"
                             + ("" if input_map.split_polarity else "; ON and OFF events share a channel"))
    if not isinstance(blocks[-1].neuron, LIReadout):
        n = blocks[-1].neuron.n_neurons
        readout = LIReadoutUnclamped(n)
        with torch.no_grad():
            readout.alpha.fill_(APPENDED_READOUT_ALPHA)
        blocks.append(_block(np.eye(n), np.zeros(n), readout))
        summary.notes.append(f"the graph ends in a spiking layer: a readout (alpha {APPENDED_READOUT_ALPHA}, identity "
                             "weights) was appended; the imported layers' spikes are unchanged")
    for i, block in enumerate(blocks[:-1]):
        if isinstance(block.neuron, LIReadout):
            raise NIRImportError(f"layer {i}: an LI node is only supported as the last neuron layer (the readout)")
    return FloatNetwork(blocks).double().eval(), summary


def _block(weight, bias, neuron) -> SNNLayer:
    """An :class:`SNNLayer` computing ``weight @ x + bias`` exactly (batch norm the identity)."""
    block = SNNLayer(weight.shape[1], neuron)
    with torch.no_grad():
        block.linear.weight.copy_(torch.as_tensor(weight))
        block.norm.weight.fill_(1.0)
        block.norm.bias.copy_(torch.as_tensor(bias))
        block.norm.running_mean.zero_()
        block.norm.running_var.fill_(1.0)
    block.norm.eps = 0.0
    return block


def _checked_counts(counts: np.ndarray, n_inputs: int, where: str) -> np.ndarray:
    """Calibration counts as ``(B, T, n_inputs)`` int64: non-negative integers, ``(T, n)`` taken as one sample."""
    if counts.dtype.kind not in "iu" or counts.ndim not in (2, 3) or counts.shape[-1] != n_inputs or 0 in counts.shape:
        raise NIRImportError(f"{where}: needs non-negative integer counts of shape (T, {n_inputs}) or "
                             f"(B, T, {n_inputs}); got {counts.dtype} {counts.shape}")
    if np.any(counts < 0):
        raise NIRImportError(f"{where}: counts must be non-negative")
    return counts.reshape(-1, *counts.shape[-2:]).astype(np.int64)


def calibration_from_files(paths, n_inputs: int, input_map: InputMap | None, bin_ticks: int) -> np.ndarray:
    """``(B, T, n_inputs)`` calibration counts from files, one sample per file (the shorter
    zero-padded at the end).

    A graph with channel input takes ``.npy`` integer counts ``(T, n_inputs)`` or
    ``(B, T, n_inputs)``; a graph with camera input (an input map) takes event files
    (``.bin`` N-MNIST, ``.aedat4``, ``.npy`` / ``.csv`` event tables), mapped and binned in
    steps of ``bin_ticks`` from each file's first event.
    """
    from .data.events import bin_events, read_aedat4, read_event_table, read_nmnist

    samples = []
    for path in paths:
        path = Path(path)
        if input_map is None:
            if path.suffix != ".npy":
                raise NIRImportError(f"{path}: a graph with channel input calibrates on .npy counts (T, {n_inputs}) "
                                     f"or (B, T, {n_inputs})")
            try:
                array = np.load(path, allow_pickle=False)
            except (ValueError, OSError, EOFError) as error:
                raise NIRImportError(f"{path}: not a .npy array ({error})") from None
            samples.extend(_checked_counts(array, n_inputs, str(path)))
            continue
        readers = {".bin": lambda p: read_nmnist(p).events, ".aedat4": lambda p: read_aedat4(p).events,
                   ".npy": read_event_table, ".csv": read_event_table}
        if path.suffix not in readers:
            raise NIRImportError(f"{path}: a graph with camera input calibrates on event files "
                                 f"({', '.join(readers)})")
        events = readers[path.suffix](path)
        if not len(events):
            raise NIRImportError(f"{path}: no events")
        try:
            channels = input_map(events)
        except ValueError as error:
            raise NIRImportError(f"{path}: {error}") from None
        samples.append(bin_events(channels, input_map.n_channels, bin_ticks))
    steps = max(sample.shape[0] for sample in samples)
    return np.stack([np.pad(sample, ((0, steps - sample.shape[0]), (0, 0))) for sample in samples])


def import_nir(graph, *, dt: float | None = None, source: str = "snntorch", calibration_counts=None,
               calibration_files=None, bin_ticks: int = 1000, max_events_per_step: int | None = None, seed: int = 0):
    """A NIR graph (or a path) -> ``(NetworkParams, FloatNetwork, ImportSummary)``.

    ``calibration_counts`` (int ``(B, T, n_inputs)``) or ``calibration_files``
    (:func:`calibration_from_files`) size the formats; left out, 16 samples of 50 steps of
    random spikes (each input spiking with probability 0.2) are used and the summary says so.
    ``bin_ticks`` is the step length in event ticks (microseconds).
    """
    import nir

    if not hasattr(graph, "nodes"):
        try:
            graph = nir.read(str(graph))
        except Exception as error:  # the file's own reader: any failure is "not a NIR file"
            raise NIRImportError(f"{graph}: cannot read as a NIR graph ({type(error).__name__}: {error})") from None
    model, summary = float_network_from_nir(graph, dt, source)
    if calibration_files:
        if calibration_counts is not None:
            raise NIRImportError("calibration: pass counts or files, not both")
        calibration_counts = calibration_from_files(calibration_files, model.n_inputs, summary.input_map, bin_ticks)
        b, t = calibration_counts.shape[:2]
        summary.notes.append(f"formats calibrated on {b} sample(s) of {t} steps from the calibration files")
    if calibration_counts is None:
        rng = np.random.default_rng(seed)
        calibration_counts = (rng.random((16, 50, model.n_inputs)) < 0.2).astype(np.int64)
        summary.notes.append("formats calibrated on random input spikes (p = 0.2); pass calibration data (--calibrate) "
                             "for real data")
    counts = _checked_counts(np.asarray(calibration_counts), model.n_inputs, "calibration counts")
    max_events = max_events_per_step or max(int(counts.sum(axis=-1).max()), model.n_inputs, 1)
    max_events = min(max_events, DEFAULT_MAX_EVENTS_PER_STEP) if max_events_per_step is None else max_events
    try:
        params, report = export_network(model, counts, bin_ticks=bin_ticks, max_events_per_step=max_events,
                                        provenance={"source": "golden.nir", "nir_source": source, "dt": float(dt or SOURCES[source])})
    except ValueError as error:
        raise NIRImportError(f"quantisation: {error}") from None
    if summary.input_map is not None:
        params = dataclasses.replace(params, input_map=summary.input_map)
    for i, entry in enumerate(report.layers):
        rounded = {k: v for k, v in entry["decays_rounded_to_one"].items() if v}
        if rounded:
            summary.notes.append(f"layers[{i}]: decays rounded to one and clamped below it: {rounded}")
        summary.notes.append(f"layers[{i}] {entry['kind']}: weights rounded by up to {entry['weight_error']:.3g}; "
                             + ", ".join(f"{k} {v}" for k, v in entry["formats"].items()))
        if "spike_agreement" in entry:
            summary.notes.append(f"layers[{i}]: integer spikes agree with float on {100 * entry['spike_agreement']:.2f} % "
                                 "of the calibration steps")
    return params, model, summary


# --- export ---------------------------------------------------------------------------------


def network_to_nir(params: NetworkParams, dt: float = 1e-4, include_readout: bool = True, target: str = "snntorch"):
    """A spikestream network as a NIR graph (forward Euler with ``dt``; per-neuron scales folded
    into the affine layers).

    ``target`` picks how the input gain ``r*dt/tau`` is written: ``"snntorch"`` writes
    ``r = tau/dt`` (gain one, what snnTorch's reader requires); ``"norse"`` writes ``r = 1``
    (Norse's reader ignores ``r``) and multiplies the affine layer by ``tau/dt`` instead.

    Kinds NIR can express: ``lif``, ``cuba_lif`` and ``if`` resetting to a value, and the
    ``li_readout`` (as LI). Anything else raises ``ValueError`` naming the layer and the kind.
    """
    import nir

    if target not in ("snntorch", "norse"):
        raise ValueError(f"target: 'snntorch' or 'norse', not {target!r}")
    nodes, chain = {"input": nir.Input(input_type=np.array([params.n_inputs]))}, ["input"]
    layers = params.layers if include_readout else params.layers[:-1]
    for i, layer in enumerate(layers):
        p = layer.neuron
        weight = layer.weight_fmt.to_float(layer.weight_q).astype(np.float64)
        bias = layer.bias_fmt.to_float(layer.bias_q).astype(np.float64)
        if layer.scaled:  # the per-row scale multiplies the whole sum, bias included
            row_scale = layer.row_scale_fmt.to_float(layer.row_scale_q)
            weight, bias = weight * row_scale[:, None], bias * row_scale
        if type(p) in (LIFParams, CubaLIFParams, IFParams) and not p.reset_to_value:
            raise ValueError(f"layers[{i}]: the {layer.kind} layer resets by subtraction; NIR's neurons reset to a value")
        if type(p) is LIFParams or type(p) is IFParams:
            scale = p.scale_fmt.to_float(p.scale_q)
            weight, bias = weight * scale[:, None], bias * scale
            threshold = p.state_fmt.to_float(p.threshold_q)
            reset = np.full(p.n_neurons, p.state_fmt.to_float(p.reset_q))
            if type(p) is IFParams:
                neuron = nir.IF(r=np.full(p.n_neurons, 1.0 / dt), v_threshold=threshold, v_reset=reset)
            else:
                leak = p.coef_fmt.to_float(p.leak_q)
                tau = dt / (1.0 - leak)
                r = tau / dt
                if target == "norse":
                    weight, bias, r = weight * r[:, None], bias * r, np.ones(p.n_neurons)
                neuron = nir.LIF(tau=tau, r=r, v_leak=np.zeros(p.n_neurons), v_threshold=threshold, v_reset=reset)
        elif type(p) is CubaLIFParams:
            leak, syn = p.coef_fmt.to_float(p.leak_q), p.coef_fmt.to_float(p.syn_q)
            tau_mem, tau_syn = dt / (1.0 - leak), dt / (1.0 - syn)
            neuron = nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=p.scale_fmt.to_float(p.scale_q) * tau_mem / dt,
                                 v_leak=np.zeros(p.n_neurons), v_threshold=p.state_fmt.to_float(p.threshold_q),
                                 v_reset=np.full(p.n_neurons, p.state_fmt.to_float(p.reset_q)), w_in=tau_syn / dt)
        elif type(p) is LIReadoutParams:
            alpha, gain = p.coef_fmt.to_float(p.alpha_q), p.coef_fmt.to_float(p.gain_q)
            tau = dt / (1.0 - alpha)
            neuron = nir.LI(tau=tau, r=gain * tau / dt, v_leak=np.zeros(p.n_neurons))
        else:
            raise ValueError(f"layers[{i}]: NIR cannot express the {layer.kind} kind (no NIR node with its dynamics)")
        nodes[f"affine{i}"], nodes[f"neuron{i}"] = nir.Affine(weight=weight, bias=bias), neuron
        chain += [f"affine{i}", f"neuron{i}"]
    nodes["output"] = nir.Output(output_type=np.array([layers[-1].n_out]))
    chain.append("output")
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain[:-1], chain[1:])))


# --- command line ---------------------------------------------------------------------------


def main(argv=None) -> int:
    from .cli import existing_file, output_file, positive_float, positive_int, upper_choice
    from .files import atomic_write, check_output
    from .fit import DEVICES

    parser = argparse.ArgumentParser(prog="python -m golden.nir", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="NIR graph -> model file")
    imp.add_argument("graph", type=existing_file)
    imp.add_argument("--out", required=True, type=output_file)
    imp.add_argument("--dt", type=positive_float, default=None, help="seconds per step (default: the source's own)")
    imp.add_argument("--source", choices=sorted(SOURCES), default="snntorch", help="the framework that wrote the graph")
    imp.add_argument("--device", default=None, type=upper_choice(sorted(DEVICES), "device"),
                     help="run the fit check for this ECP5 size (12F, 25F, 45F, 85F)")
    imp.add_argument("--calibrate", nargs="+", type=existing_file, default=None, metavar="FILE",
                     help="size the integer formats on real data, one sample per file: .npy counts (T, n_inputs) or "
                          "(B, T, n_inputs) for channel input; event files (.bin, .aedat4, .npy, .csv) for camera "
                          "input (default: random spikes)")
    imp.add_argument("--bin-ticks", type=positive_int, default=1000,
                     help="event ticks (microseconds) per time step (default: %(default)s)")
    exp = sub.add_parser("export", help="model file -> NIR graph")
    exp.add_argument("model", type=existing_file)
    exp.add_argument("--out", required=True, type=output_file)
    exp.add_argument("--dt", type=positive_float, default=1e-4, help="seconds per step (default: %(default)s)")
    for command in (imp, exp):
        command.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    args = parser.parse_args(argv)

    from .model_file import load_model, save_model

    try:
        inputs = [args.graph, *(args.calibrate or [])] if args.command == "import" else [args.model]
        check_output(args.out, inputs=inputs, force=args.force)
        if args.command == "import":
            params, _, summary = import_nir(args.graph, dt=args.dt, source=args.source,
                                            calibration_files=args.calibrate, bin_ticks=args.bin_ticks)
            save_model(args.out, params)
            print(summary.text())
            if args.device:
                from .fit import estimate_fit

                report = estimate_fit(params, args.device)
                print(f"fit on {args.device}: {'fits' if report.fits else 'does NOT fit'}")
            print(f"wrote {args.out}")
        else:
            import nir

            graph = network_to_nir(load_model(args.model), dt=args.dt)
            with atomic_write(args.out, "w+b") as handle:
                nir.write(handle, graph)
            print(f"wrote {args.out}")
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from .cli import run_main

    sys.exit(run_main(main))
