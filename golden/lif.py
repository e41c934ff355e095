"""Plain leaky integrate-and-fire neuron (LIF): per-neuron threshold, leak and input scale.

Per neuron and step, in this order::

    v_t = leak * u_{t-1} + scale * x_t          # leak and integrate
    s_t = [v_t > threshold]                     # strict, as snnTorch, Norse and NIR
    u_t = v_t - threshold   if s_t and the layer resets by subtraction
          reset             if s_t and the layer resets to a value
          v_t               otherwise

The reset acts in the step that fired. The reset choice (``reset_to_value``) and the reset
value are per layer; threshold, leak and scale are per neuron.

Integer semantics of :class:`LIFParams` (the specification the core ``hw/cores/lif.py``
implements bit for bit):

* ``x`` (``input_fmt``), ``u``, ``v``, the threshold and the reset value (all ``state_fmt``)
  share ``F`` fractional bits.
* ``leak`` is unsigned in ``coef_fmt`` (default ``uQ0.18``), in ``[0, 1)``; ``scale`` is
  signed in ``scale_fmt`` (default ``sQ2.16``). With ``C = max(frac(coef_fmt),
  frac(scale_fmt))`` the update is one sum of products at full width, rounded ONCE half up
  (decision 'Rounding') and saturated to ``state_fmt`` (decision 'Saturation')::

      v_t = sat(round_C(leak_q*u << (C-Cl) + scale_q*x << (C-Cs)))
      s_t = v_t > threshold_q
      u_t = s_t ? (reset_to_value ? reset_q : v_t - threshold_q) : v_t

  The threshold is positive, so ``v_t - threshold_q`` lies in ``(0, v_t)`` and needs no clamp.
* An update "saturates" when the ``v`` clamp acted; the hardware counts such updates.
* Zero initial state (decision 'Zero initial state'): ``u = 0``.

:class:`LIF` is the trainable float module (boxcar surrogate gradient, the reset path kept
in the graph). ``docs/neurons/lif.md`` has the formats, the rounding and the core's latency.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import torch
from torch import nn

from .fixed import QFormat, int_bits_for, round_shift
from .kinds import ModelFields, NeuronKind
from .layers import quantize_decay, spike_boxcar

__all__ = ["LIF", "lif_float_run", "export_formats", "LIFParams", "LIFState", "LIFTrace", "run_int", "NEURON_KIND"]

#: Float module initial ranges: leak uniform in this range, threshold 1, scale 1.
LIF_LEAK_INIT = (0.8, 0.95)
#: Smallest threshold the float module trains to (the integer model needs a positive one).
LIF_MIN_THRESHOLD = 0.05


class ThresholdLayer(nn.Module):
    """What the float LIF, IF and CubaLIF layers share: ``n_neurons``, the ``reset`` choice
    (``None``: by subtraction; a float: to that value) and the trainable per-neuron ``threshold``
    and input ``scale`` (both initialised to one)."""

    def __init__(self, n_neurons: int, reset: float | None = None):
        super().__init__()
        if not isinstance(n_neurons, int) or n_neurons < 1:
            raise ValueError(f"n_neurons must be a positive int, not {n_neurons!r}")
        self.n_neurons = n_neurons
        self.reset = None if reset is None else float(reset)
        self.threshold = nn.Parameter(torch.ones(n_neurons))
        self.scale = nn.Parameter(torch.ones(n_neurons))


class LIF(ThresholdLayer):
    """Float LIF layer for training, ``n_neurons`` neurons.

    Trainable per neuron: ``leak`` (clamped to ``[0, 0.999]``), ``threshold`` (clamped to at
    least :data:`LIF_MIN_THRESHOLD`) and ``scale``. ``reset`` is ``None`` (reset by
    subtraction) or the float value the membrane is set to after a spike. ``forward(x)`` maps
    currents ``(B, T, n)`` to spikes; :meth:`run` also returns ``v`` and ``u``.
    """

    def __init__(self, n_neurons: int, reset: float | None = None):
        super().__init__(n_neurons, reset)
        self.leak = nn.Parameter(torch.empty(n_neurons).uniform_(*LIF_LEAK_INIT))

    def coefficients(self) -> dict[str, torch.Tensor]:
        """The clamped ``leak``, ``threshold`` and ``scale`` the forward pass applies."""
        return {"leak": self.leak.clamp(0.0, 0.999), "threshold": self.threshold.clamp(min=LIF_MIN_THRESHOLD),
                "scale": self.scale}

    def run(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"s", "v", "u"}``, each ``(B, T, n)``, for currents ``x`` ``(B, T, n)``."""
        return lif_float_run(self, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)["s"]


def lif_float_run(module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The float LIF equations of ``module`` (its ``coefficients()``, ``reset``, ``n_neurons``)
    on currents ``x`` ``(B, T, n)``: ``{"s", "v", "u"}``, each ``(B, T, n)``."""
    if x.shape[-1] != module.n_neurons:
        raise ValueError(f"currents have {x.shape[-1]} channels, the neuron layer has {module.n_neurons}")
    c = module.coefficients()
    u = x.new_zeros(x.shape[0], module.n_neurons)
    out = {"s": [], "v": [], "u": []}
    for t in range(x.shape[1]):
        v = c["leak"] * u + c["scale"] * x[:, t]
        s = spike_boxcar(v - c["threshold"])
        u = v - c["threshold"] * s if module.reset is None else v * (1 - s) + module.reset * s
        for name, value in (("s", s), ("v", v), ("u", u)):
            out[name].append(value)
    return {name: torch.stack(values, dim=1) for name, values in out.items()}


@dataclass
class LIFParams:
    """Integer parameters of one LIF layer; builds the golden model and the hardware core.

    Parameters
    ----------
    threshold_q : np.ndarray of int64, shape (n_neurons,)
        Firing threshold per neuron in ``state_fmt``, positive.
    leak_q : np.ndarray of int64, shape (n_neurons,)
        Leak per neuron in ``coef_fmt``, in ``[0, 1)``.
    scale_q : np.ndarray of int64, shape (n_neurons,)
        Input scale per neuron in ``scale_fmt``.
    reset_q : int
        The membrane after a spike when ``reset_to_value``, in ``state_fmt``.
    reset_to_value : bool
        Reset to ``reset_q`` (True) or by subtracting the threshold (False, the default).
    input_fmt : QFormat
        Input current ``x`` (default ``sQ8.16``); shares fractional bits with ``state_fmt``.
    state_fmt : QFormat
        ``v``, ``u``, threshold and reset value (default ``sQ8.16``).
    coef_fmt : QFormat
        Unsigned leak format (default ``uQ0.18``, one multiplier port).
    scale_fmt : QFormat
        Signed input scale format (default ``sQ2.16``, one multiplier port).
    """

    threshold_q: np.ndarray
    leak_q: np.ndarray
    scale_q: np.ndarray
    reset_q: int = 0
    reset_to_value: bool = False
    input_fmt: QFormat = field(default_factory=lambda: QFormat(8, 16))
    state_fmt: QFormat = field(default_factory=lambda: QFormat(8, 16))
    coef_fmt: QFormat = field(default_factory=lambda: QFormat(0, 18, signed=False))
    scale_fmt: QFormat = field(default_factory=lambda: QFormat(2, 16))

    def __post_init__(self):
        for name in ("threshold_q", "leak_q", "scale_q"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64).reshape(-1))
        sizes = {name: getattr(self, name).shape[0] for name in ("threshold_q", "leak_q", "scale_q")}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"every LIF parameter needs one entry per neuron; got sizes {sizes}")
        if self.n_neurons < 1:
            raise ValueError("a LIF layer needs at least one neuron")
        self.reset_q = int(self.reset_q)
        if not isinstance(self.reset_to_value, (bool, np.bool_)):
            raise ValueError(f"reset_to_value must be True or False, not {self.reset_to_value!r}")
        self.reset_to_value = bool(self.reset_to_value)
        if self.input_fmt.frac_bits != self.state_fmt.frac_bits:
            raise ValueError(f"input_fmt {self.input_fmt} and state_fmt {self.state_fmt} must share fractional bits")
        if not self.state_fmt.signed:
            raise ValueError(f"state_fmt must be signed, not {self.state_fmt}")
        if self.coef_fmt.signed or self.coef_fmt.frac_bits < 1:
            raise ValueError(f"coef_fmt must be unsigned with fractional bits (the leak lies in [0, 1)); got {self.coef_fmt}")
        if not self.scale_fmt.signed:
            raise ValueError(f"scale_fmt must be signed, not {self.scale_fmt}")
        self._check_leak()
        if np.any(self.threshold_q <= 0) or not self.state_fmt.contains(self.threshold_q):
            raise ValueError(f"threshold_q must be positive and inside {self.state_fmt}")
        if not self.scale_fmt.contains(self.scale_q):
            raise ValueError(f"scale_q has values outside {self.scale_fmt}")
        if not self.state_fmt.contains(self.reset_q):
            raise ValueError(f"reset_q={self.reset_q} is outside {self.state_fmt}")
        c = self.coef_frac_bits
        driven = max(self.input_fmt.width, self.driven_width)
        widest = 1 + max(self.state_fmt.width + self.coef_fmt.width + c - self.coef_fmt.frac_bits,
                         driven + self.scale_fmt.width + c - self.scale_fmt.frac_bits)
        if widest > 62:
            raise ValueError(f"formats too wide for int64 products ({widest} bits); narrow state_fmt or the coefficients")

    #: Width of the value the scale multiplies besides ``x`` (a subclass that feeds the
    #: membrane from a state, as :class:`golden.cuba_lif.CubaLIFParams`, sets its own).
    driven_width = 0

    def _check_leak(self):
        """The leak is a decay: ``[0, 1)`` of ``coef_fmt`` (decision 'Declared formats')."""
        if np.any(self.leak_q < 0) or np.any(self.leak_q >= 1 << self.coef_fmt.frac_bits):
            raise ValueError(f"leak_q must lie in [0, 1) of {self.coef_fmt}")

    @classmethod
    def from_float(cls, threshold, leak, scale=1.0, reset: float | None = None, **formats) -> "LIFParams":
        """Quantise float parameters (round half up; a leak that rounds to 1 is clamped below it,
        decision 'Declared formats').

        ``threshold``, ``leak`` and ``scale`` are per neuron (a scalar ``scale`` applies to every
        neuron); ``reset`` ``None`` resets by subtraction, a float resets to that value.
        """
        probe = cls([1], [0], [0], **formats)
        threshold = np.asarray(threshold, dtype=np.float64).reshape(-1)
        leak_q, _ = quantize_decay(np.asarray(leak, dtype=np.float64).reshape(-1), probe.coef_fmt)
        scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), threshold.shape)
        return cls(
            threshold_q=probe.state_fmt.quantize(threshold),
            leak_q=leak_q,
            scale_q=probe.scale_fmt.quantize(scale),
            reset_q=0 if reset is None else int(probe.state_fmt.quantize(float(reset))),
            reset_to_value=reset is not None,
            **formats,
        )

    @classmethod
    def from_module(cls, module: LIF, **formats) -> "LIFParams":
        """Export a trained :class:`LIF` (its clamped coefficients)."""
        with torch.no_grad():
            c = {name: value.detach().to(torch.float64).numpy() for name, value in module.coefficients().items()}
        return cls.from_float(c["threshold"], c["leak"], c["scale"], reset=module.reset, **formats)

    # --- derived facts ---------------------------------------------------------------------
    @property
    def n_neurons(self) -> int:
        return int(self.threshold_q.shape[0])

    @property
    def coef_frac_bits(self) -> int:
        """``C``: the fractional bits of the product sum (one rounding by ``C``)."""
        return max(self.coef_fmt.frac_bits, self.scale_fmt.frac_bits)

    # --- integer golden step ---------------------------------------------------------------
    @staticmethod
    def trace_class():
        """The trace :func:`run_int` returns."""
        return LIFTrace

    def initial_state(self, batch_shape=()) -> "LIFState":
        """Zero membrane (decision 'Zero initial state')."""
        return LIFState(u=torch.zeros((*batch_shape, self.n_neurons), dtype=torch.int64))

    def _tensors(self):
        """``leak << (C-Cl)``, ``scale << (C-Cs)`` (exact) and the threshold."""
        c = self.coef_frac_bits
        return (torch.as_tensor(self.leak_q) << (c - self.coef_fmt.frac_bits),
                torch.as_tensor(self.scale_q) << (c - self.scale_fmt.frac_bits),
                torch.as_tensor(self.threshold_q))

    def step(self, state: "LIFState", current_q: torch.Tensor):
        """One step for every neuron; returns ``(new_state, spikes, saturated)``."""
        current_q = torch.as_tensor(current_q, dtype=torch.int64)
        if not self.input_fmt.contains(current_q):
            raise ValueError(f"input current outside {self.input_fmt}")
        return self._step(state, current_q, self._tensors())

    def _step(self, state, x, tensors):
        leak, scale, threshold = tensors
        v, saturated = self.state_fmt.saturate(round_shift(leak * state.u + scale * x, self.coef_frac_bits))
        s = v > threshold
        after = torch.full_like(v, self.reset_q) if self.reset_to_value else v - threshold
        return LIFState(u=torch.where(s, after, v)), s, saturated


@dataclass
class LIFState:
    """Membrane ``u`` after the reset (int64, ``state_fmt``)."""

    u: torch.Tensor


@dataclass
class LIFTrace:
    """Every state at every step, shape ``(..., T, n_neurons)``, as the core emits them."""

    u: torch.Tensor
    s: torch.Tensor
    saturated: torch.Tensor

    @property
    def saturation_count(self) -> int:
        return int(self.saturated.sum())


def run_int(params: LIFParams, currents_q):
    """Sequential bit-exact LIF over time; ``currents_q`` int64 ``(..., T, n_neurons)`` in ``input_fmt``.

    Returns a :class:`LIFTrace` (a subclass's ``trace_class``: every field of its state, ``s``
    and ``saturated``, e.g. :class:`golden.cuba_lif.CubaLIFTrace`)."""
    currents_q = torch.as_tensor(currents_q, dtype=torch.int64)
    if currents_q.dim() < 2 or currents_q.shape[-1] != params.n_neurons:
        raise ValueError(f"currents must have shape (..., T, {params.n_neurons}); got {tuple(currents_q.shape)}")
    if not params.input_fmt.contains(currents_q):
        raise ValueError(f"input currents outside {params.input_fmt}")
    state = params.initial_state(currents_q.shape[:-2])
    tensors = params._tensors()
    trace_class = params.trace_class()
    out = {f.name: [] for f in fields(trace_class)}
    for t in range(currents_q.shape[-2]):
        state, s, saturated = params._step(state, currents_q[..., t, :], tensors)
        values = {**vars(state), "s": s, "saturated": saturated}
        for name, steps in out.items():
            steps.append(values[name])
    return trace_class(**{name: torch.stack(steps, dim=-2) for name, steps in out.items()})


# ============================================================================================
# Registration (golden.kinds)
# ============================================================================================


def export_formats(module, input_fmt: QFormat, max_abs: dict, headroom: float, coef_fmt: QFormat,
                   states=("v", "u")) -> dict:
    """Export formats of a LIF-type float module (LIF, IF, CubaLIF): the state with room for
    ``headroom`` times the calibrated magnitude of ``states`` and for the threshold and reset
    value; ``coef_fmt`` for the decays; scale 18 bits with the integer bits its largest value needs."""
    frac = input_fmt.frac_bits
    c = {name: value.detach().to(torch.float64) for name, value in module.coefficients().items()}
    fixed = max(float(c["threshold"].max()), abs(module.reset or 0.0)) + 2.0**-frac
    largest = max(max_abs[name] for name in states)
    state_int = max(int_bits_for(largest, headroom, minimum=2), int_bits_for(fixed, minimum=2))
    scale_int = int_bits_for(float(c["scale"].abs().max()) + 2.0**-14, minimum=2)
    return dict(input_fmt=input_fmt, state_fmt=QFormat(state_int, frac), coef_fmt=coef_fmt,
                scale_fmt=QFormat(scale_int, 18 - scale_int))


def _quantize(module: LIF, input_fmt: QFormat, max_abs: dict, headroom: float):
    """Export formats (:func:`export_formats`, leak ``uQ0.18``) and parameters."""
    formats = export_formats(module, input_fmt, max_abs, headroom, QFormat(0, 18, signed=False))
    params = LIFParams.from_module(module, **formats)
    leak = module.coefficients()["leak"].detach().to(torch.float64).numpy()
    rounded = {"leak": int(np.count_nonzero(quantize_decay(leak, formats["coef_fmt"])[1]))}
    return params, formats, rounded


def _float_trace(module: LIF, currents: torch.Tensor) -> dict:
    run = module.run(currents)
    return {"output": run["s"], "v": run["v"], "u": run["u"]}


def _example_params(rng, n: int) -> LIFParams:
    """Narrow formats, half the layers reset to a value (so both reset paths are exercised)."""
    reset = float(rng.uniform(-0.5, 0.25)) if rng.random() < 0.5 else None
    return LIFParams.from_float(threshold=rng.uniform(0.3, 1.0, n), leak=rng.uniform(0.3, 0.95, n),
                                scale=rng.uniform(-0.5, 1.5, n), reset=reset,
                                input_fmt=QFormat(4, 8), state_fmt=QFormat(4, 8), coef_fmt=QFormat(0, 10, signed=False),
                                scale_fmt=QFormat(2, 8))


NEURON_KIND = NeuronKind(
    name="lif",
    params_class=LIFParams,
    run_int=run_int,
    float_modules=(LIF,),
    model_fields=ModelFields(
        formats=("input_fmt", "state_fmt", "coef_fmt", "scale_fmt"),
        arrays={"threshold_q": "state_fmt", "leak_q": "coef_fmt", "scale_q": "scale_fmt"},
        scalars={"reset_q": "state_fmt"},
        flags=("reset_to_value",),
        decays=("leak_q",),
    ),
    state_words=lambda p: {"u": p.state_fmt},
    param_words=lambda p: {"threshold": p.state_fmt, "leak": p.coef_fmt, "scale": p.scale_fmt},
    products=lambda p: [(p.state_fmt.width, p.coef_fmt.width), (p.input_fmt.width, p.scale_fmt.width)],
    core_lut4=400,  # Yosys synth_ecp5, N = 256: 254 LUT4 + 71 CCU2C (2 LUT4 sites each)
    quantize=_quantize,
    float_trace=_float_trace,
    default_params=lambda rng, n: LIFParams.from_float(threshold=np.ones(n), leak=rng.uniform(0.80, 0.95, n),
                                                       scale=rng.uniform(0.2, 0.5, n)),
    example_params=_example_params,
    train_choices={"lif": LIF},
)
