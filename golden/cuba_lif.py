"""Current-based LIF neuron (CubaLIF): a synaptic current state feeding the plain LIF membrane.

Per neuron and step, in this order::

    i_t = syn * i_{t-1} + x_t                   # the synaptic current takes the input
    v_t = leak * u_{t-1} + scale * i_t          # the membrane integrates the NEW current
    s_t = [v_t > threshold]                     # strict
    u_t = v_t - threshold  or  reset   if s_t, else v_t

This is snnTorch's ``Synaptic`` with ``reset_delay=False`` and NIR's ``CubaLIF`` under the
forward-Euler rule ``docs/byo_network.md`` gives. The membrane half is the plain LIF's
(:mod:`golden.lif`) with the current ``i_t`` in place of ``x_t``.

Integer semantics of :class:`CubaLIFParams` (the specification ``hw/cores/cuba_lif.py``
implements bit for bit): a :class:`~golden.lif.LIFParams` plus ``syn_q``, the per-neuron
current decay in ``coef_fmt`` (``[0, 1)``). ``i`` is held in ``state_fmt``; with ``Cl`` the
fractional bits of ``coef_fmt``::

    i_t = sat(round_Cl(syn_q*i + x << Cl))           # one rounding, then the state clamp
    v_t, s_t, u_t = the LIF step (golden.lif) with x := i_t

An update "saturates" when either clamp acted. Zero initial state: ``i = u = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from .fixed import QFormat, round_shift
from .kinds import NeuronKind
from .layers import quantize_decay, spike_boxcar
from .lif import LIF_LEAK_INIT, LIF_MIN_THRESHOLD, LIFParams, LIFState, ThresholdLayer, export_formats, run_int
from .lif import NEURON_KIND as LIF_KIND

__all__ = ["CubaLIF", "CubaLIFParams", "CubaLIFState", "CubaLIFTrace", "run_int", "NEURON_KIND"]  # run_int: golden.lif's

#: Float module initial range of the current decay.
CUBA_SYN_INIT = (0.5, 0.9)


class CubaLIF(ThresholdLayer):
    """Float CubaLIF layer for training, ``n_neurons`` neurons.

    Trainable per neuron: ``syn`` and ``leak`` (clamped to ``[0, 0.999]``), ``threshold``
    (at least :data:`golden.lif.LIF_MIN_THRESHOLD`) and ``scale``; ``reset`` ``None`` resets by
    subtraction, a float to that value. :meth:`run` returns ``{"s", "i", "v", "u"}``.
    """

    def __init__(self, n_neurons: int, reset: float | None = None):
        super().__init__(n_neurons, reset)
        self.syn = nn.Parameter(torch.empty(n_neurons).uniform_(*CUBA_SYN_INIT))
        self.leak = nn.Parameter(torch.empty(n_neurons).uniform_(*LIF_LEAK_INIT))

    def coefficients(self) -> dict[str, torch.Tensor]:
        """The clamped ``syn``, ``leak``, ``threshold`` and ``scale`` the forward pass applies."""
        return {"syn": self.syn.clamp(0.0, 0.999), "leak": self.leak.clamp(0.0, 0.999),
                "threshold": self.threshold.clamp(min=LIF_MIN_THRESHOLD), "scale": self.scale}

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"s", "i", "v", "u"}``, each ``(B, T, n)``, for currents ``x`` ``(B, T, n)``."""
        if x.shape[-1] != self.n_neurons:
            raise ValueError(f"currents have {x.shape[-1]} channels, the neuron layer has {self.n_neurons}")
        c = self.coefficients()
        i = x.new_zeros(x.shape[0], self.n_neurons)
        u = torch.zeros_like(i)
        out = {"s": [], "i": [], "v": [], "u": []}
        for t in range(x.shape[1]):
            i = c["syn"] * i + x[:, t]
            v = c["leak"] * u + c["scale"] * i
            s = spike_boxcar(v - c["threshold"])
            u = v - c["threshold"] * s if self.reset is None else v * (1 - s) + self.reset * s
            for name, value in (("s", s), ("i", i), ("v", v), ("u", u)):
                out[name].append(value)
        return {name: torch.stack(values, dim=1) for name, values in out.items()}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)["s"]


@dataclass
class CubaLIFParams(LIFParams):
    """Integer parameters of one CubaLIF layer: :class:`~golden.lif.LIFParams` (threshold,
    leak, scale, reset, formats) plus ``syn_q``, the current decay per neuron in ``coef_fmt``
    (keyword only). ``i`` shares ``state_fmt``."""

    syn_q: np.ndarray = field(kw_only=True)

    def __post_init__(self):
        self.syn_q = np.asarray(self.syn_q, dtype=np.int64).reshape(-1)
        super().__post_init__()
        if self.syn_q.shape != self.leak_q.shape:
            raise ValueError(f"syn_q needs one entry per neuron ({self.n_neurons}), got {self.syn_q.shape[0]}")
        if np.any(self.syn_q < 0) or np.any(self.syn_q >= 1 << self.coef_fmt.frac_bits):
            raise ValueError(f"syn_q must lie in [0, 1) of {self.coef_fmt}")

    @property
    def driven_width(self) -> int:
        """The scale multiplies the current ``i`` (``state_fmt``)."""
        return self.state_fmt.width

    @classmethod
    def from_float(cls, threshold, leak, syn, scale=1.0, reset: float | None = None, **formats) -> "CubaLIFParams":
        """Quantise float parameters (round half up; decays that round to 1 are clamped below it)."""
        lif = LIFParams.from_float(threshold, leak, scale, reset, **formats)
        syn_q, _ = quantize_decay(np.broadcast_to(np.asarray(syn, dtype=np.float64), lif.leak_q.shape), lif.coef_fmt)
        return cls(threshold_q=lif.threshold_q, leak_q=lif.leak_q, scale_q=lif.scale_q, reset_q=lif.reset_q,
                   reset_to_value=lif.reset_to_value, syn_q=syn_q, **formats)

    @classmethod
    def from_module(cls, module: CubaLIF, **formats) -> "CubaLIFParams":
        """Export a trained :class:`CubaLIF` (its clamped coefficients)."""
        with torch.no_grad():
            c = {name: value.detach().to(torch.float64).numpy() for name, value in module.coefficients().items()}
        return cls.from_float(c["threshold"], c["leak"], c["syn"], c["scale"], reset=module.reset, **formats)

    def initial_state(self, batch_shape=()) -> "CubaLIFState":
        """Zero current and membrane."""
        zeros = torch.zeros((*batch_shape, self.n_neurons), dtype=torch.int64)
        return CubaLIFState(u=zeros, i=zeros.clone())

    def _step(self, state, x, tensors):
        syn, membrane = tensors[0], tensors[1:]
        cl = self.coef_fmt.frac_bits
        i, saturated_i = self.state_fmt.saturate(round_shift(syn * state.i + (x << cl), cl))
        after, s, saturated_v = super()._step(LIFState(u=state.u), i, membrane)
        return CubaLIFState(u=after.u, i=i), s, saturated_i | saturated_v

    def _tensors(self):
        return (torch.as_tensor(self.syn_q), *super()._tensors())

    @staticmethod
    def trace_class():
        return CubaLIFTrace


@dataclass
class CubaLIFState:
    """Membrane ``u`` after the reset and current ``i`` (int64, ``state_fmt``)."""

    u: torch.Tensor
    i: torch.Tensor


@dataclass
class CubaLIFTrace:
    """Every state at every step, shape ``(..., T, n_neurons)``, as the core emits them."""

    i: torch.Tensor
    u: torch.Tensor
    s: torch.Tensor
    saturated: torch.Tensor

    @property
    def saturation_count(self) -> int:
        return int(self.saturated.sum())


# ============================================================================================
# Registration (golden.kinds)
# ============================================================================================


def _quantize(module: CubaLIF, input_fmt: QFormat, max_abs: dict, headroom: float):
    """Export formats as the LIF's (:func:`golden.lif.export_formats`), the state also holding
    the calibrated ``|i|``."""
    formats = export_formats(module, input_fmt, max_abs, headroom, QFormat(0, 18, signed=False), states=("v", "u", "i"))
    params = CubaLIFParams.from_module(module, **formats)
    c = module.coefficients()
    rounded = {name: int(np.count_nonzero(quantize_decay(c[name].detach().to(torch.float64).numpy(),
                                                         formats["coef_fmt"])[1])) for name in ("syn", "leak")}
    return params, formats, rounded


def _float_trace(module: CubaLIF, currents: torch.Tensor) -> dict:
    run = module.run(currents)
    return {"output": run["s"], "i": run["i"], "v": run["v"], "u": run["u"]}


def _example_params(rng, n: int) -> CubaLIFParams:
    """Narrow formats, half the layers reset to a value (so both reset paths are exercised)."""
    reset = float(rng.uniform(-0.5, 0.25)) if rng.random() < 0.5 else None
    return CubaLIFParams.from_float(threshold=rng.uniform(0.3, 1.0, n), leak=rng.uniform(0.3, 0.95, n),
                                    syn=rng.uniform(0.2, 0.8, n), scale=rng.uniform(-0.5, 1.0, n), reset=reset,
                                    input_fmt=QFormat(4, 8), state_fmt=QFormat(4, 8),
                                    coef_fmt=QFormat(0, 10, signed=False), scale_fmt=QFormat(2, 8))


NEURON_KIND = NeuronKind(
    name="cuba_lif",
    params_class=CubaLIFParams,
    run_int=run_int,
    float_modules=(CubaLIF,),
    model_fields=replace(LIF_KIND.model_fields, arrays={**LIF_KIND.model_fields.arrays, "syn_q": "coef_fmt"},
                         decays=("leak_q", "syn_q")),
    state_words=lambda p: {"i": p.state_fmt, "u": p.state_fmt},
    param_words=lambda p: {"threshold": p.state_fmt, "leak": p.coef_fmt, "syn": p.coef_fmt, "scale": p.scale_fmt},
    products=lambda p: [(p.state_fmt.width, p.coef_fmt.width), (p.state_fmt.width, p.coef_fmt.width),
                        (p.state_fmt.width, p.scale_fmt.width)],
    core_lut4=560,  # estimate: the LIF core's 400 plus the current's product sum, rounding and clamp
    quantize=_quantize,
    float_trace=_float_trace,
    default_params=lambda rng, n: CubaLIFParams.from_float(threshold=np.ones(n), leak=rng.uniform(0.80, 0.95, n),
                                                           syn=rng.uniform(0.5, 0.8, n), scale=rng.uniform(0.1, 0.25, n)),
    example_params=_example_params,
    train_choices={"cuba_lif": CubaLIF},
)
