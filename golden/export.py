"""Float network -> integer :class:`~golden.network.NetworkParams` (batch norm folded, decays
precomputed, formats chosen by calibration).

The float network is a :class:`FloatNetwork`: :class:`~golden.layers.SNNLayer` blocks
(``Linear(no bias) -> BatchNorm1d -> neuron -> Dropout``) whose neurons are the float modules
of the registered spiking kinds (:mod:`golden.kinds`: :class:`~golden.silif.SiLIF`,
:class:`~golden.silif.CAdLIF`, :class:`~golden.csilif.CSiLIF`,
:class:`~golden.refractory_lif.RefractoryLIFNeuron`, :class:`~golden.lif.LIF`), ending in a
block whose neuron is the :class:`~golden.layers.LIReadout`. Its input is event counts per step and channel, as the
integer network's.

:func:`export_network` does, per layer:

1. **Fold batch norm** into the weights and a per-neuron bias
   (:func:`~golden.layers.fold_batchnorm`); dropout is the identity.
2. **Calibrate**: run the folded float network (float64) on sample inputs and take the
   largest ``|current|`` and ``|state|`` each layer reaches.
3. **Choose formats** (decision 'Declared formats'). A layer's currents and states share ``F``
   fractional bits. The current format gets ``int_bits(headroom * max|current|)`` integer
   bits (sign included) and ``F = input_width - that`` fractional bits, where ``input_width``
   is the multiplier-friendly width of the core's input (each kind's ``input_width``: 18 bits
   for C-SiLIF, 24 otherwise). States get ``int_bits(headroom * max|state|)`` (at least what
   the threshold needs; the refractory LIF's ``v``/``u``, ``R`` and threshold formats at least
   2 integer bits).
   Weights and bias (decision 'Per-layer weight formats'), by default, share ``F`` with just
   enough integer bits for their largest value. With ``weight_bits=B`` the weights get ``B``
   bits and the fractional bits ``f_w`` that just hold the layer's largest ``|weight|``,
   independent of ``F`` (:func:`weight_formats`); with ``row_scale=True`` each row is divided by
   its own scale (its largest ``|weight|``, rounded up to the unsigned 18-bit ``row_scale_fmt``)
   and the weights fill ``sQ1.(B-1)``. ``B`` may differ per layer. With ``device=`` the widths
   are chosen so that the network passes the fit check on that device: the widest width common
   to all layers (at most 16, or the widths given) that fits, then each layer, the one with the
   least weight block RAM first, widened while the network still fits
   (:attr:`CalibrationReport.fit_choice` says what was chosen and why).
4. **Precompute decays** from the trained parametrisation and quantise them with the
   cores' own ``from_module`` / ``from_float`` (round half up, decays that round to 1 clamped
   below it and reported).
5. **Check**: run the integer network on the same samples and report, per layer, the
   saturation counts and how many spikes agree with the float model, and overall how many
   predictions (argmax of the summed readout membrane) agree.

It returns the parameters and a :class:`CalibrationReport`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .data.events import ChannelPool, InputMap
from .fit import FitError, estimate_fit
from .fixed import QFormat, int_bits_for
from .kinds import network_kinds
from .layers import SNNLayer, readout_scores
from .network import DEFAULT_MAX_EVENTS_PER_STEP, ROW_SCALE_MAX_BITS, LayerParams, NetworkParams, run_network

__all__ = ["FloatNetwork", "CalibrationReport", "WeightFormats", "export_network", "float_trace", "int_bits_for",
           "weight_formats", "DEFAULT_INPUT_WIDTH", "WEIGHT_BITS_RANGE"]

#: Fewest fractional bits export accepts (fewer would quantise currents more coarsely than 1/16).
MIN_FRAC_BITS = 4
#: Weight widths ``weight_bits`` may take, narrowest and widest.
WEIGHT_BITS_RANGE = (2, 16)


#: Width of each core's input current (``input_fmt``) the export aims for, by neuron kind.
DEFAULT_INPUT_WIDTH = {name: kind.input_width for name, kind in network_kinds().items()}


def _float_kind(neuron: nn.Module):
    """The registered kind a float neuron module exports to."""
    for kind in network_kinds().values():
        if isinstance(neuron, kind.float_modules) and kind.quantize is not None:
            return kind
    names = ", ".join(cls.__name__ for kind in network_kinds().values() if kind.quantize is not None
                      for cls in kind.float_modules)
    raise ValueError(f"cannot export neuron module {type(neuron).__name__}: supported are {names}")


def float_trace(neuron: nn.Module, currents: torch.Tensor) -> dict[str, torch.Tensor]:
    """A float neuron module's ``{"output", <states>}`` on currents ``(B, T, n)``, by its kind."""
    return _float_kind(neuron).float_trace(neuron, currents)


@dataclass
class WeightFormats:
    """One layer's quantised weights and bias, with their formats and optional per-row scale
    (the weight fields of :class:`~golden.network.LayerParams`)."""

    weight_q: np.ndarray
    bias_q: np.ndarray
    weight_fmt: QFormat
    bias_fmt: QFormat
    row_scale_q: np.ndarray | None = None
    row_scale_fmt: QFormat | None = None

    def layer_fields(self) -> dict:
        """Keyword arguments of :class:`~golden.network.LayerParams`."""
        return {"weight_q": self.weight_q, "bias_q": self.bias_q, "weight_fmt": self.weight_fmt,
                "bias_fmt": self.bias_fmt, "row_scale_q": self.row_scale_q, "row_scale_fmt": self.row_scale_fmt}

    def real_weights(self) -> np.ndarray:
        """The weights the integer layer applies, in real units (row scale included)."""
        weight = self.weight_fmt.to_float(self.weight_q)
        if self.row_scale_q is not None:
            weight = weight * self.row_scale_fmt.to_float(self.row_scale_q)[:, None]
        return weight


def _unsigned_int_bits(value: float) -> int:
    """Integer bits of an unsigned format holding ``value`` (0 for values below 1)."""
    return max(0, math.floor(math.log2(value)) + 1) if value > 0 else 0


def _error_feedback_quantize(weight: np.ndarray, bias: np.ndarray, weight_fmt: QFormat, bias_fmt: QFormat,
                             inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantise ``weight`` ``(n_out, n_in)`` in ``weight_fmt`` and ``bias`` in ``bias_fmt`` (same
    fractional bits) one column at a time, each column's rounding error spread over the columns
    not yet quantised (GPTQ, Frantar et al. 2023), so that ``(W - W_q) @ x + (b - b_q)`` stays
    small for inputs like ``inputs`` ``(..., n_in)``. The bias is a column whose input is always 1,
    quantised first; the weight columns follow, the most active input first. The inputs' second
    moment ``H = X^T X / N`` gets 1 % of its mean diagonal added."""
    x = np.asarray(inputs, dtype=np.float64).reshape(-1, weight.shape[1])
    x = np.concatenate([np.ones((len(x), 1)), x], axis=1)
    hessian = x.T @ x / max(len(x), 1)
    order = np.concatenate([[0], 1 + np.argsort(-np.diag(hessian)[1:], kind="stable")])
    hessian = hessian[np.ix_(order, order)]
    hessian[np.diag_indices_from(hessian)] += 0.01 * float(np.mean(np.diag(hessian)))
    upper = np.linalg.cholesky(np.linalg.inv(hessian)).T
    work = np.concatenate([np.asarray(bias, dtype=np.float64)[:, None], np.asarray(weight, dtype=np.float64)],
                          axis=1)[:, order]
    out = np.empty(work.shape, dtype=np.int64)
    for j in range(work.shape[1]):
        fmt = bias_fmt if j == 0 else weight_fmt
        out[:, j] = fmt.quantize(work[:, j])
        error = (work[:, j] - fmt.to_float(out[:, j])) / upper[j, j]
        work[:, j + 1:] -= np.outer(error, upper[j, j + 1:])
    restored = np.empty_like(out)
    restored[:, order] = out
    return restored[:, 1:], restored[:, 0]


def weight_formats(weight: np.ndarray, bias: np.ndarray, *, bits: int | None, frac_bits: int,
                   row_scale: bool = False, inputs: np.ndarray | None = None) -> WeightFormats:
    """Quantise one layer's float weights ``(n_out, n_in)`` and bias ``(n_out,)``.

    ``bits=None``: weights and bias in ``frac_bits`` fractional bits (the core's input format's),
    with just enough integer bits. ``bits=B``: ``B``-bit weights whose fractional bits ``f_w``
    are the most that still hold the largest rounded ``|weight|``; bias in ``f_w`` with the
    integer bits it needs. ``row_scale``: row ``i`` is scaled by ``S_i = max_j |W_ij| /
    (1 - 2**-(B-1))``, rounded up to the unsigned :data:`~golden.network.ROW_SCALE_MAX_BITS`-bit
    ``row_scale_fmt`` whose integer bits hold the largest ``S_i``; weights ``W_ij / S_i`` and bias
    ``b_i / S_i`` are then quantised (round half up) in ``sQ1.(B-1)`` and ``f_w = B - 1``
    fractional bits. A row of zeros gets scale 1. With ``inputs`` (the layer's calibration
    inputs ``(..., n_in)``) the weights and bias are rounded with error feedback
    (:func:`_error_feedback_quantize`) instead of each to its nearest value.

    Raises
    ------
    ValueError
        When ``B`` is outside :data:`WEIGHT_BITS_RANGE`, or ``B`` bits cannot hold the largest
        weight even without fractional bits (naming both).
    """
    weight = np.asarray(weight, dtype=np.float64)
    bias = np.asarray(bias, dtype=np.float64)
    if bits is None:
        if row_scale:
            raise ValueError("row scales need a weight width (weight_bits)")
        frac = int(frac_bits)
        weight_fmt = QFormat(int_bits_for(np.abs(weight).max() + 2.0**-frac), frac)
    else:
        lo, hi = WEIGHT_BITS_RANGE
        if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not lo <= bits <= hi:
            raise ValueError(f"weight_bits must be an integer in {lo}..{hi}, not {bits!r}")
        bits = int(bits)
        if row_scale:
            frac = bits - 1
            weight_fmt = QFormat(1, frac)
            row_max = np.abs(weight).max(axis=1)
            scale = np.where(row_max > 0, row_max / (1.0 - 2.0**-frac), 1.0)
            int_bits = _unsigned_int_bits(scale.max())
            while True:
                scale_fmt = QFormat(int_bits, ROW_SCALE_MAX_BITS - int_bits, signed=False)
                scale_q = np.ceil(scale * 2.0**scale_fmt.frac_bits).astype(np.int64)
                if scale_q.max() <= scale_fmt.max_int:
                    break
                int_bits += 1
            real_scale = scale_fmt.to_float(scale_q)
            scaled_bias = bias / real_scale
            bias_fmt = QFormat(int_bits_for(np.abs(scaled_bias).max() + 2.0**-frac), frac)
            weight_q, bias_q = _quantize(weight / real_scale[:, None], scaled_bias, weight_fmt, bias_fmt, inputs)
            return WeightFormats(weight_q, bias_q, weight_fmt, bias_fmt, scale_q, scale_fmt)
        max_w = float(np.abs(weight).max())
        frac = bits - int_bits_for(max_w)
        while frac >= 0 and int_bits_for(max_w + 2.0**-frac) + frac > bits:
            frac -= 1
        if frac < 0:
            raise ValueError(f"weights reach {max_w:.4g}: {bits} bits cannot hold them even as integers; "
                             f"use more weight bits or row scales")
        weight_fmt = QFormat(bits - frac, frac)
    bias_fmt = QFormat(int_bits_for(np.abs(bias).max() + 2.0**-frac), frac)
    return WeightFormats(*_quantize(weight, bias, weight_fmt, bias_fmt, inputs), weight_fmt, bias_fmt)


def _quantize(weight, bias, weight_fmt: QFormat, bias_fmt: QFormat, inputs) -> tuple[np.ndarray, np.ndarray]:
    """``(weight_q, bias_q)``: each to its nearest value, or with error feedback on ``inputs``."""
    if inputs is None:
        return weight_fmt.quantize(weight), bias_fmt.quantize(bias)
    return _error_feedback_quantize(weight, bias, weight_fmt, bias_fmt, inputs)


class FloatNetwork(nn.Module):
    """A float network of :class:`~golden.layers.SNNLayer` blocks ending in an LIReadout block.

    Parameters
    ----------
    layers : sequence of SNNLayer
        Spiking blocks (float modules of the registered spiking kinds), then one block with an
        :class:`~golden.layers.LIReadout` neuron. Sizes must chain.

    ``forward(x)`` maps counts ``(B, T, n_inputs)`` (float) to the readout membrane
    ``(B, T, n_classes)``; :meth:`trace` returns every layer's currents and states.
    """

    def __init__(self, layers):
        super().__init__()
        layers = list(layers)
        if not layers:
            raise ValueError("FloatNetwork needs at least the readout block")
        for i, layer in enumerate(layers):
            if not isinstance(layer, SNNLayer):
                raise ValueError(f"layers[{i}] must be an SNNLayer, not {type(layer).__name__}")
            kind = _float_kind(layer.neuron)
            if kind.readout != (i == len(layers) - 1):
                readout = " or ".join(k.float_modules[0].__name__ for k in network_kinds().values()
                                      if k.readout and k.quantize is not None)
                raise ValueError(f"layers[{i}]: the {readout} block must be the last one and only the last one")
            if i and layer.linear.in_features != layers[i - 1].neuron.n_neurons:
                raise ValueError(
                    f"layers[{i}] takes {layer.linear.in_features} inputs but layers[{i - 1}] has "
                    f"{layers[i - 1].neuron.n_neurons} neurons"
                )
        self.layers = nn.ModuleList(layers)

    @property
    def n_inputs(self) -> int:
        return self.layers[0].linear.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def scores(self, x: torch.Tensor, mode: str = "membrane_sum") -> torch.Tensor:
        """Class scores (see :func:`~golden.layers.readout_scores`)."""
        return readout_scores(self(x), mode)

    @torch.no_grad()
    def trace(self, x: torch.Tensor, folded: bool = True) -> list[dict[str, torch.Tensor]]:
        """Per layer ``{"currents", "output", <states>}`` for counts ``x`` ``(B, T, n_inputs)``.

        With ``folded`` the currents are ``W' x + bias'`` from :meth:`SNNLayer.folded` (what the
        integer network computes); otherwise the block's own ``BN(W x)`` in its current mode.
        States: each kind's ``float_trace`` (e.g. ``u``, ``w`` for SiLIF, ``re``, ``im`` for C-SiLIF,
        ``u`` for the readout).
        """
        out = []
        for layer in self.layers:
            if folded:
                weight, bias = layer.folded()
                currents = x.to(weight.dtype) @ weight.T + bias
            else:
                currents = layer.currents(x)
            entry = float_trace(layer.neuron, currents)
            entry["currents"] = currents
            out.append(entry)
            x = entry["output"]
        return out


@dataclass
class CalibrationReport:
    """What :func:`export_network` chose and how well the integer network follows the float one.

    Attributes
    ----------
    layers : list of dict
        Per layer: ``kind``, ``formats`` (name -> format string), ``max_abs`` (calibration
        magnitudes of weight, bias, current and each state), ``weight_error`` (largest
        ``|W_q - W'|`` in real units), ``decays_rounded_to_one`` (name -> count),
        ``current_saturations`` / ``neuron_saturations`` (integer run on the calibration
        samples), ``spike_agreement`` (fraction of equal spikes, spiking layers).
    n_samples : int
    prediction_agreement : float
        Fraction of calibration samples whose integer prediction equals the float one.
    fit_choice : str
        With ``device``: the weight width chosen and why (empty otherwise).
    fit : FitReport or None
        With ``device``: the fit check of the chosen network.
    """

    layers: list = field(default_factory=list)
    n_samples: int = 0
    prediction_agreement: float = float("nan")
    fit_choice: str = ""
    fit: object = None

    def __str__(self) -> str:
        lines = [f"calibration on {self.n_samples} samples: integer vs float predictions agree on "
                 f"{self.prediction_agreement:.1%}"]
        if self.fit_choice:
            lines.append(self.fit_choice)
        for i, layer in enumerate(self.layers):
            fmts = ", ".join(f"{k} {v}" for k, v in layer["formats"].items())
            lines.append(f"layers[{i}] {layer['kind']}: {fmts}")
            mags = ", ".join(f"|{k}| {v:.4g}" for k, v in layer["max_abs"].items())
            lines.append(f"    max {mags}; weight error <= {layer['weight_error']:.3g}")
            lines.append(
                f"    saturations: current {layer['current_saturations']}, neuron {layer['neuron_saturations']}"
                + (f"; spikes agree {layer['spike_agreement']:.1%}" if "spike_agreement" in layer else "")
            )
            rounded = {k: v for k, v in layer["decays_rounded_to_one"].items() if v}
            if rounded:
                lines.append("    decays rounded to 1 (clamped below): "
                             + ", ".join(f"{k} {v}" for k, v in rounded.items()))
        return "\n".join(lines)


def export_network(
    model: FloatNetwork,
    calibration_counts,
    *,
    bin_ticks: int,
    input_map: InputMap | None = None,
    max_events_per_step: int = DEFAULT_MAX_EVENTS_PER_STEP,
    headroom: float = 2.0,
    input_width: dict | None = None,
    provenance: dict | None = None,
    weight_bits=None,
    row_scale: bool = False,
    device: str | None = None,
    lanes: int = 1,
    cores: int | None = None,
    channel_pool: ChannelPool | None = None,
    error_feedback: bool = False,
) -> tuple[NetworkParams, CalibrationReport]:
    """Export a trained float network to integer parameters, calibrated on sample inputs.

    Parameters
    ----------
    model : FloatNetwork
        Read only (a float64 copy is evaluated in inference mode).
    calibration_counts : int array or tensor, shape (B, T, n_inputs)
        Representative event counts per step and channel.
    bin_ticks, input_map, max_events_per_step
        The input side of the resulting :class:`NetworkParams`.
    headroom : float
        Factor applied to calibrated current and state magnitudes before choosing integer
        bits (2.0: one extra bit).
    input_width : dict, optional
        Overrides of :data:`DEFAULT_INPUT_WIDTH` by kind.
    provenance : dict, optional
        Extra JSON-able facts to keep with the parameters.
    weight_bits : int or sequence of int, optional
        Weight width, 2..16, of every layer or of each layer, its fractional bits chosen per
        layer from the data (:func:`weight_formats`); default: the weights share the core
        input's fractional bits.
    row_scale : bool
        Per-row scales (needs ``weight_bits`` or ``device``).
    device : str, optional
        ``"12F"`` ... ``"85F"``: choose per-layer widths (at most ``weight_bits``, default 16)
        so that the network fits the device with ``lanes`` and ``cores``
        (:func:`golden.fit.estimate_fit`), as the module docstring says.
    channel_pool : ChannelPool, optional
        The input side of the resulting :class:`NetworkParams` (channel events pooled).
    error_feedback : bool
        Round each layer's weights with error feedback on its calibration inputs (GPTQ,
        :func:`weight_formats`) rather than each to its nearest value (needs ``weight_bits`` or
        ``device``).

    Raises
    ------
    ValueError
        On an unsupported neuron, non-integer or mis-shaped calibration data, currents too
        large for the input width, weights that ``weight_bits`` cannot hold (the message names
        the layer and the numbers); :class:`~golden.fit.FitError` when no weight width fits
        ``device``.
    """
    if not isinstance(model, FloatNetwork):
        raise ValueError(f"export_network needs a FloatNetwork, not {type(model).__name__}")
    if headroom < 1:
        raise ValueError(f"headroom must be >= 1, not {headroom}")
    widths = dict(DEFAULT_INPUT_WIDTH, **(input_width or {}))
    counts = torch.as_tensor(np.asarray(calibration_counts) if not isinstance(calibration_counts, torch.Tensor)
                             else calibration_counts)
    if counts.is_floating_point() or counts.dim() != 3 or counts.shape[-1] != model.n_inputs:
        raise ValueError(
            f"calibration_counts must be integer counts of shape (B, T, {model.n_inputs}); "
            f"got {counts.dtype} {tuple(counts.shape)}"
        )
    counts = counts.to(torch.int64)
    work = copy.deepcopy(model).double().eval()
    float_trace = work.trace(counts.to(torch.float64))

    report = CalibrationReport(n_samples=int(counts.shape[0]))
    folded, neurons, layer_inputs = [], [], []
    x = counts.to(torch.float64)
    for i, (block, calib) in enumerate(zip(work.layers, float_trace)):
        layer_inputs.append(x.numpy())
        x = calib["output"]
        kind = _float_kind(block.neuron)
        name = kind.name
        weight, bias = (t.numpy() for t in block.folded())
        max_abs = {
            "weight": float(np.abs(weight).max()),
            "bias": float(np.abs(bias).max()),
            "current": float(calib["currents"].abs().max()),
        }
        for state, value in calib.items():  # the kind's float states
            if state not in ("output", "currents"):
                max_abs[state] = float(value.abs().max())
        current_int = int_bits_for(max_abs["current"], headroom)
        frac = widths[name] - current_int
        if frac < MIN_FRAC_BITS:
            raise ValueError(
                f"layers[{i}]: currents reach {max_abs['current']:.4g} (x{headroom} headroom needs {current_int} integer "
                f"bits), leaving {frac} fractional bits of a {widths[name]}-bit input; raise input_width[{name!r}]"
            )
        input_fmt = QFormat(current_int, frac)
        neuron, formats, rounded = kind.quantize(block.neuron, input_fmt, max_abs, headroom)
        folded.append((weight, bias))
        neurons.append(neuron)
        report.layers.append({
            "kind": name,
            "formats": {field_name: str(fmt) for field_name, fmt in formats.items()},
            "max_abs": max_abs,
            "decays_rounded_to_one": rounded,
        })

    cache = {}

    def network(bits, feedback=error_feedback):
        """The network at per-layer widths ``bits``; ``feedback=False`` rounds to nearest (the
        fit search: formats, and so resources, do not depend on the rounding)."""
        layers = []
        for i, ((weight, bias), neuron, layer_bits) in enumerate(zip(folded, neurons, bits)):
            key = (i, layer_bits, feedback)
            if key not in cache:
                inputs = layer_inputs[i] if feedback and layer_bits is not None else None
                cache[key] = weight_formats(weight, bias, bits=layer_bits, inputs=inputs,
                                            frac_bits=neuron.input_fmt.frac_bits, row_scale=row_scale)
            layers.append(LayerParams(neuron=neuron, **cache[key].layer_fields()))
        return NetworkParams(
            n_inputs=model.n_inputs,
            bin_ticks=bin_ticks,
            layers=layers,
            input_map=input_map,
            channel_pool=channel_pool,
            max_events_per_step=max_events_per_step,
            provenance={
                "source": "golden.export.export_network",
                "calibration_samples": int(counts.shape[0]),
                "headroom": float(headroom),
                "weight_bits": list(bits),
                "row_scale": bool(row_scale),
                "error_feedback": bool(error_feedback),
                **(provenance or {}),
            },
        )

    if (row_scale or error_feedback) and weight_bits is None and device is None:
        raise ValueError("row_scale and error_feedback need weight_bits or device")
    n_layers = len(folded)
    if device is not None and weight_bits is None:
        weight_bits = WEIGHT_BITS_RANGE[1]
    if weight_bits is None or isinstance(weight_bits, (int, np.integer)):
        weight_bits = [weight_bits] * n_layers
    weight_bits = list(weight_bits)
    if len(weight_bits) != n_layers:
        raise ValueError(f"weight_bits: give one width or one per layer ({n_layers}), not {len(weight_bits)}")
    if device is None:
        params = network(weight_bits)
    else:
        params = _fit_weight_bits(network, report, weight_bits, device, lanes, cores)
    for entry, layer, (weight, _) in zip(report.layers, params.layers, folded):
        entry["formats"] = {"weight_fmt": str(layer.weight_fmt), "bias_fmt": str(layer.bias_fmt),
                            **({"row_scale_fmt": str(layer.row_scale_fmt)} if layer.scaled else {}),
                            **entry["formats"]}
        applied = WeightFormats(layer.weight_q, layer.bias_q, layer.weight_fmt, layer.bias_fmt,
                                layer.row_scale_q, layer.row_scale_fmt).real_weights()
        entry["weight_error"] = float(np.abs(applied - weight).max())
    int_trace = run_network(params, counts)
    for i, (entry, layer_trace, calib) in enumerate(zip(report.layers, int_trace.layers, float_trace)):
        entry["current_saturations"] = layer_trace.current_saturation_count
        entry["neuron_saturations"] = layer_trace.neuron_saturation_count
        if not layer_trace.is_readout:
            entry["spike_agreement"] = float((layer_trace.spikes == calib["output"].bool()).double().mean())
    float_prediction = readout_scores(float_trace[-1]["u"]).argmax(dim=-1)
    report.prediction_agreement = float((float_prediction == int_trace.prediction).double().mean())
    return params, report


def _weight_blocks(fit, i: int) -> int:
    return sum(m.dp16kd for m in fit.layers[i].memories if m.name == "weights")


def _fit_weight_bits(network, report: CalibrationReport, widest: list, device, lanes, cores) -> NetworkParams:
    """The network of per-layer weight widths (at most ``widest``) that fits ``device``: the
    widest common width that fits, then each layer, the one with the least weight block RAM
    first, widened while the network still fits. Records the choice in ``report``."""
    widest = [int(b) for b in widest]
    first_problems, fit, bits = None, None, None
    for common in range(max(widest), WEIGHT_BITS_RANGE[0] - 1, -1):
        bits = [min(common, b) for b in widest]
        try:
            fit = estimate_fit(network(bits, False), device, lanes=lanes, cores=cores)
        except ValueError as exc:  # too few bits for the largest weight: narrower cannot hold it either
            raise FitError(f"no weight widths fit {device} with {lanes} lanes: "
                           f"{'; '.join(fit.problems) if fit else ''} at {common + 1} bits, and {exc}", fit) from None
        if first_problems is None:
            first_problems = "; ".join(fit.problems)
        if fit.fits:
            break
    if not fit.fits:
        raise FitError(f"no weight widths fit {fit.device.name} with {lanes} lanes: at {WEIGHT_BITS_RANGE[0]} bits "
                       + "; ".join(fit.problems), fit)
    limits = []
    for i in sorted(range(len(bits)), key=lambda k: _weight_blocks(fit, k)):
        while bits[i] < widest[i]:
            wider = list(bits)
            wider[i] += 1
            trial = estimate_fit(network(wider, False), device, lanes=lanes, cores=cores)
            if not trial.fits:
                limits.append(f"layers[{i}] at {wider[i]} bits: " + "; ".join(trial.problems))
                break
            bits, fit = wider, trial
    widths = " / ".join(str(b) for b in bits)
    why = (f"the widest asked for ({' / '.join(map(str, widest))}) fit" if bits == widest else
           f"at {' / '.join(map(str, widest))} bits {first_problems}; one bit more does not fit: " + ", ".join(limits))
    report.fit_choice = (f"weights of {widths} bits (layers 0..{len(bits) - 1}) chosen for {fit.device.name} with "
                         f"{lanes} lanes: {why}; chosen: DP16KD {fit.dp16kd}/{fit.device.dp16kd}, MULT18X18D "
                         f"{fit.mult18x18d}/{fit.device.mult18x18d}, ~LUT4 {fit.lut4}/{fit.device.lut4}")
    report.fit = fit
    return network(bits)
