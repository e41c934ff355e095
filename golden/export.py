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
3. **Choose formats** (decision 'Declared formats'). All of a layer's currents, weights, bias and states share ``F``
   fractional bits. The current format gets ``int_bits(headroom * max|current|)`` integer
   bits (sign included) and ``F = input_width - that`` fractional bits, where ``input_width``
   is the multiplier-friendly width of the core's input (each kind's ``input_width``: 18 bits
   for C-SiLIF, 24 otherwise).
   Weight and bias formats get just enough integer bits for their largest value, states
   ``int_bits(headroom * max|state|)`` (at least what the threshold needs; the refractory
   LIF's ``v``/``u``, ``R`` and threshold formats at least 2 integer bits).
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
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .data.events import InputMap
from .fixed import QFormat, int_bits_for
from .kinds import network_kinds
from .layers import SNNLayer, readout_scores
from .network import DEFAULT_MAX_EVENTS_PER_STEP, LayerParams, NetworkParams, run_network

__all__ = ["FloatNetwork", "CalibrationReport", "export_network", "float_trace", "int_bits_for", "DEFAULT_INPUT_WIDTH"]

#: Fewest fractional bits export accepts (fewer would quantise currents more coarsely than 1/16).
MIN_FRAC_BITS = 4


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
    """

    layers: list = field(default_factory=list)
    n_samples: int = 0
    prediction_agreement: float = float("nan")

    def __str__(self) -> str:
        lines = [f"calibration on {self.n_samples} samples: integer vs float predictions agree on "
                 f"{self.prediction_agreement:.1%}"]
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

    Raises
    ------
    ValueError
        On an unsupported neuron, non-integer or mis-shaped calibration data, or currents too
        large for the input width (the message names the layer and the numbers).
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

    layers, report = [], CalibrationReport(n_samples=int(counts.shape[0]))
    for i, (block, calib) in enumerate(zip(work.layers, float_trace)):
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
        # Weights and bias are known exactly: enough integer bits for their largest rounded value.
        weight_fmt = QFormat(int_bits_for(max_abs["weight"] + 2.0**-frac), frac)
        bias_fmt = QFormat(int_bits_for(max_abs["bias"] + 2.0**-frac), frac)
        input_fmt = QFormat(current_int, frac)
        neuron, formats, rounded = kind.quantize(block.neuron, input_fmt, max_abs, headroom)
        layer = LayerParams(weight_fmt.quantize(weight), bias_fmt.quantize(bias), weight_fmt, bias_fmt, neuron)
        layers.append(layer)
        report.layers.append({
            "kind": name,
            "formats": {"weight_fmt": str(weight_fmt), "bias_fmt": str(bias_fmt),
                        **{field_name: str(fmt) for field_name, fmt in formats.items()}},
            "max_abs": max_abs,
            "weight_error": float(np.abs(weight_fmt.to_float(layer.weight_q) - weight).max()),
            "decays_rounded_to_one": rounded,
        })

    params = NetworkParams(
        n_inputs=model.n_inputs,
        bin_ticks=bin_ticks,
        layers=layers,
        input_map=input_map,
        max_events_per_step=max_events_per_step,
        provenance={
            "source": "golden.export.export_network",
            "calibration_samples": int(counts.shape[0]),
            "headroom": float(headroom),
            **(provenance or {}),
        },
    )
    int_trace = run_network(params, counts)
    for i, (entry, layer_trace, calib) in enumerate(zip(report.layers, int_trace.layers, float_trace)):
        entry["current_saturations"] = layer_trace.current_saturation_count
        entry["neuron_saturations"] = layer_trace.neuron_saturation_count
        if not layer_trace.is_readout:
            entry["spike_agreement"] = float((layer_trace.spikes == calib["output"].bool()).double().mean())
    float_prediction = readout_scores(float_trace[-1]["u"]).argmax(dim=-1)
    report.prediction_agreement = float((float_prediction == int_trace.prediction).double().mean())
    return params, report
