"""Integrate-and-fire neuron (IF): the plain LIF (:mod:`golden.lif`) with no leak.

Per neuron and step::

    v_t = u_{t-1} + scale * x_t
    s_t = [v_t > threshold]                     # strict
    u_t = v_t - threshold  or  reset   if s_t, else v_t

It is the LIF rule and the LIF core (``hw/cores/lif.py``) with the leak fixed to one:
:class:`IFParams` is a :class:`~golden.lif.LIFParams` whose ``leak_q`` is exactly one in
``coef_fmt`` (default ``uQ1.17``, one integer bit so that one is exact), so the integer
semantics, the rounding and the core are those of ``golden/lif.py`` word for word
(``leak_q*u << (C-Cl)`` is ``u << C`` and rounds back to ``u`` exactly). ``docs/neurons/lif.md``
describes both.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from .fixed import QFormat
from .lif import LIF_MIN_THRESHOLD, LIFParams, ThresholdLayer, export_formats, lif_float_run
from .lif import NEURON_KIND as LIF_KIND

__all__ = ["IF", "IFParams", "NEURON_KIND"]

#: The leak format of an IF layer: one integer bit, so that the leak one is exact.
IF_COEF_FMT = QFormat(1, 17, signed=False)


class IF(ThresholdLayer):
    """Float IF layer for training: trainable per-neuron ``threshold`` (at least
    :data:`golden.lif.LIF_MIN_THRESHOLD`) and ``scale``; ``reset`` as :class:`golden.lif.LIF`."""

    def coefficients(self) -> dict[str, torch.Tensor]:
        """``leak`` (ones), the clamped ``threshold`` and ``scale`` the forward pass applies."""
        return {"leak": torch.ones_like(self.threshold), "threshold": self.threshold.clamp(min=LIF_MIN_THRESHOLD),
                "scale": self.scale}

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"s", "v", "u"}``, each ``(B, T, n)``, for currents ``x`` ``(B, T, n)``."""
        return lif_float_run(self, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)["s"]


@dataclass
class IFParams(LIFParams):
    """A :class:`~golden.lif.LIFParams` whose leak is one: ``leak_q`` holds ``1 << frac(coef_fmt)``
    for every neuron, ``coef_fmt`` (default ``uQ1.17``) has an integer bit."""

    coef_fmt: QFormat = field(default_factory=lambda: IF_COEF_FMT)

    def _check_leak(self):
        one = 1 << self.coef_fmt.frac_bits
        if self.coef_fmt.int_bits < 1 or not np.all(self.leak_q == one):
            raise ValueError(f"an IF layer's leak_q is one ({one} in {self.coef_fmt}, which needs an integer bit)")

    @classmethod
    def from_float(cls, threshold, scale=1.0, reset: float | None = None, **formats) -> "IFParams":
        """Quantise float ``threshold`` and ``scale`` (round half up); the leak is one."""
        coef_fmt = formats.setdefault("coef_fmt", IF_COEF_FMT)
        threshold = np.asarray(threshold, dtype=np.float64).reshape(-1)
        lif = LIFParams.from_float(threshold, np.zeros_like(threshold), scale, reset,
                                   **{**formats, "coef_fmt": QFormat(0, coef_fmt.frac_bits, signed=False)})
        return cls(threshold_q=lif.threshold_q, leak_q=np.full_like(lif.leak_q, 1 << coef_fmt.frac_bits),
                   scale_q=lif.scale_q, reset_q=lif.reset_q, reset_to_value=lif.reset_to_value, **formats)

    @classmethod
    def from_module(cls, module: IF, **formats) -> "IFParams":
        """Export a trained :class:`IF` (its clamped coefficients)."""
        with torch.no_grad():
            c = {name: value.detach().to(torch.float64).numpy() for name, value in module.coefficients().items()}
        return cls.from_float(c["threshold"], c["scale"], reset=module.reset, **formats)


# ============================================================================================
# Registration (golden.kinds)
# ============================================================================================


def _quantize(module: IF, input_fmt: QFormat, max_abs: dict, headroom: float):
    """Export formats as the LIF's (:func:`golden.lif.export_formats`), the leak format ``uQ1.17``."""
    formats = export_formats(module, input_fmt, max_abs, headroom, IF_COEF_FMT)
    return IFParams.from_module(module, **formats), formats, {}


def _float_trace(module: IF, currents: torch.Tensor) -> dict:
    run = module.run(currents)
    return {"output": run["s"], "v": run["v"], "u": run["u"]}


def _example_params(rng, n: int) -> IFParams:
    """Narrow formats, half the layers reset to a value (so both reset paths are exercised)."""
    reset = float(rng.uniform(-0.5, 0.25)) if rng.random() < 0.5 else None
    return IFParams.from_float(threshold=rng.uniform(0.3, 1.0, n), scale=rng.uniform(-0.5, 1.5, n), reset=reset,
                               input_fmt=QFormat(4, 8), state_fmt=QFormat(4, 8), coef_fmt=QFormat(1, 9, signed=False),
                               scale_fmt=QFormat(2, 8))


#: The LIF registration (golden.lif) with the IF's parameter class, float module and hooks; the
#: leak is one, not a decay, so the model file checks no decays.
NEURON_KIND = replace(
    LIF_KIND,
    name="if",
    params_class=IFParams,
    float_modules=(IF,),
    model_fields=replace(LIF_KIND.model_fields, decays=()),
    quantize=_quantize,
    float_trace=_float_trace,
    default_params=lambda rng, n: IFParams.from_float(threshold=np.ones(n), scale=rng.uniform(0.05, 0.15, n)),
    example_params=_example_params,
    train_choices={"if": IF},
)
