"""SiLIF neuron (SSM-inspired LIF, Algorithm 1 as implemented) and the cAdLIF baseline.

NEURON_MATH §1.3-§1.4, docs/decisions.md. Float modules (trainable, boxcar surrogate)
and the bit-exact integer model the hardware core mirrors.

Dynamics, per neuron and step, in this order (decision 'SiLIF update order')::

    w_t = beta * w_{t-1} + a * u_{t-1} + b * s_{t-1}          # old u, old s
    u_t = alpha * (u_{t-1} - s_{t-1}) + (1 - alpha) * (x_t - w_t)   # the NEW w
    s_t = [u_t > 1]                                          # strict

SiLIF reparametrises ``alpha = exp(-exp(theta_alpha) * dt)`` and ``beta = exp(-exp(theta_beta)
* dt)`` with a trainable per-neuron ``dt = exp(theta_dt)``; ``a`` and ``b`` are clamped to
[0, 1] and [0, 2]. cAdLIF trains ``alpha, beta, a, b`` directly and clamps them.

Integer semantics of :class:`SiLIFParams` (the specification the core implements bit for bit):

* ``x`` (input current, ``input_fmt``), ``u`` and ``w`` (``state_fmt``) and ``b`` (``b_fmt``)
  share ``F`` fractional bits; the threshold is exactly ``1 << F``.
* ``alpha``, ``beta`` and ``gain = 1 - alpha`` are precomputed off-line and stored in the
  unsigned ``decay_fmt`` (default ``uQ0.18``). Each is quantised half up from float64 and, when
  it would round to 1.0, clamped to ``1 - 2**-18`` so every decay is strictly below 1
  (NEURON_MATH §4.6); such decays are recorded in :attr:`SiLIFParams.rounded_to_one`.
  A ``beta`` clamped that way makes ``w`` an exact integrator for ``|w| <= 2**(Cd-1-F)``
  (``beta_q * w`` rounds back to ``w``; 8.0 with the defaults): only the ``a*u`` feedback
  and saturation bound it.
* ``a`` is stored in ``a_fmt`` (default ``uQ1.17``, so ``a = 1`` is exact).
* Each update equation is one sum of products at full width, rounded ONCE half up, then
  saturated to ``state_fmt``; with ``C = max(decay frac, a frac)``::

      w_t = sat(round_C(beta_q*w << (C-Cd) + a_q*u << (C-Ca) + (s ? b_q << C : 0)))
      u_t = sat(round_Cd(alpha_q*(u - (s ? 1<<F : 0)) + gain_q*(x - w_t)))
      s_t = u_t > (1 << F)

  ``u - s`` and ``x - w_t`` are exact (one bit wider than the state).
* An update "saturates" when either clamp acted; the hardware counts such updates.
* Zero initial state: ``u = w = 0``, no previous spike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from .fixed import QFormat, int_bits_for, round_shift
from .kinds import ModelFields, NeuronKind
from .layers import quantize_decay, spike_boxcar

__all__ = [
    "SILIF_INIT",
    "CADLIF_RANGES",
    "SiLIF",
    "CAdLIF",
    "SecondOrderFloatTrace",
    "second_order_run",
    "transition_matrix",
    "eigenvalues",
    "SiLIFParams",
    "SiLIFState",
    "SiLIFTrace",
    "run_int",
    "NEURON_KIND",
]

#: Reference initialisation of SiLIF (S:278-288): log dt constant, log rates uniform, a and b uniform.
SILIF_INIT = {
    "log_dt": math.log(0.004),
    "log_rate_u": (math.log(10.0), math.log(250.0)),
    "log_rate_w": (math.log(2.5), math.log(10.0)),
    "a": (0.0, 1.0),
    "b": (0.0, 2.0),
}

#: cAdLIF clamp (and uniform init) ranges (S:811-828).
CADLIF_RANGES = {"alpha": (0.36, 0.96), "beta": (0.96, 0.99), "a": (0.0, 1.0), "b": (0.0, 2.0)}

THRESHOLD = 1.0


@dataclass
class SecondOrderFloatTrace:
    """Float states at every step, shape ``(B, T, H)``: membrane ``u``, adaptation ``w``, spikes ``s``."""

    u: torch.Tensor
    w: torch.Tensor
    s: torch.Tensor


def second_order_run(x: torch.Tensor, alpha, beta, a, b) -> SecondOrderFloatTrace:
    """Float SiLIF / cAdLIF recurrence over ``x`` of shape ``(B, T, H)`` from zero state.

    Coefficients broadcast against ``(B, H)``. Differentiable (boxcar surrogate, no detach).
    """
    if x.dim() != 3:
        raise ValueError(f"expected currents of shape (batch, time, neurons), got {tuple(x.shape)}")
    u = x.new_zeros(x.shape[0], x.shape[2])
    w = torch.zeros_like(u)
    s = torch.zeros_like(u)
    us, ws, ss = [], [], []
    for t in range(x.shape[1]):
        w = beta * w + a * u + b * s
        u = alpha * (u - s) + (1 - alpha) * (x[:, t] - w)
        s = spike_boxcar(u - THRESHOLD)
        us.append(u)
        ws.append(w)
        ss.append(s)
    return SecondOrderFloatTrace(u=torch.stack(us, 1), w=torch.stack(ws, 1), s=torch.stack(ss, 1))


class _SecondOrderNeuron(nn.Module):
    """Shared forward of SiLIF and cAdLIF; subclasses define :meth:`coefficients`."""

    linear_init = "xavier_uniform"

    def __init__(self, n_neurons: int):
        super().__init__()
        if not isinstance(n_neurons, int) or n_neurons < 1:
            raise ValueError(f"n_neurons must be a positive int, not {n_neurons!r}")
        self.n_neurons = n_neurons

    def coefficients(self) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self, x: torch.Tensor) -> SecondOrderFloatTrace:
        """All states at all steps for currents ``x`` ``(B, T, H)``."""
        if x.shape[-1] != self.n_neurons:
            raise ValueError(f"currents have {x.shape[-1]} channels, the neuron layer has {self.n_neurons}")
        c = self.coefficients()
        return second_order_run(x, c["alpha"], c["beta"], c["a"], c["b"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes ``(B, T, H)`` for currents ``x`` ``(B, T, H)``."""
        return self.run(x).s

    def decays(self) -> dict[str, torch.Tensor]:
        """The float64 coefficients the hardware receives: alpha, beta, gain = 1-alpha, a, b."""
        with torch.no_grad():
            c = {k: v.detach().to(torch.float64) for k, v in self.coefficients().items()}
        c["gain"] = 1.0 - c["alpha"]
        return c

    def eigenvalues(self, form: str = "figure2") -> torch.Tensor:
        """Per-neuron eigenvalues of the 2x2 transition matrix (see :func:`transition_matrix`)."""
        c = self.decays()
        return eigenvalues(c["alpha"], c["beta"], c["a"], form=form)


class SiLIF(_SecondOrderNeuron):
    """SiLIF neuron layer, float (NEURON_MATH §1.4, Algorithm 1 as implemented).

    Trainable per neuron (reference names in brackets): ``log_dt`` [dt], ``log_rate_u``
    [alpha] = log(1/tau_u), ``log_rate_w`` [beta] = log(1/tau_w), ``a``, ``b``. Initialised as
    :data:`SILIF_INIT`; ``a`` and ``b`` clamped to [0, 1] and [0, 2] on every forward; alpha
    and beta are not clamped (the exponentials keep them in (0, 1)). Zero initial state.
    """

    def __init__(self, n_neurons: int):
        super().__init__(n_neurons)
        self.log_dt = nn.Parameter(torch.full((n_neurons,), SILIF_INIT["log_dt"]))
        self.log_rate_u = nn.Parameter(torch.empty(n_neurons).uniform_(*SILIF_INIT["log_rate_u"]))
        self.log_rate_w = nn.Parameter(torch.empty(n_neurons).uniform_(*SILIF_INIT["log_rate_w"]))
        self.a = nn.Parameter(torch.empty(n_neurons).uniform_(*SILIF_INIT["a"]))
        self.b = nn.Parameter(torch.empty(n_neurons).uniform_(*SILIF_INIT["b"]))

    def coefficients(self) -> dict[str, torch.Tensor]:
        dt = torch.exp(self.log_dt)
        rate_u_dt = torch.exp(self.log_rate_u) * dt
        return {
            "alpha": torch.exp(-rate_u_dt),
            "beta": torch.exp(-torch.exp(self.log_rate_w) * dt),
            "a": self.a.clamp(*SILIF_INIT["a"]),
            "b": self.b.clamp(*SILIF_INIT["b"]),
        }

    def decays(self) -> dict[str, torch.Tensor]:
        """As the base class, with ``gain = -expm1(-exp(theta_alpha) dt)`` computed in float64
        without the cancellation of ``1 - alpha`` when alpha is close to 1."""
        c = super().decays()
        with torch.no_grad():
            rate_u_dt = torch.exp(self.log_rate_u.detach().double()) * torch.exp(self.log_dt.detach().double())
            c["alpha"] = torch.exp(-rate_u_dt)
            c["gain"] = -torch.expm1(-rate_u_dt)
            c["beta"] = torch.exp(-torch.exp(self.log_rate_w.detach().double()) * torch.exp(self.log_dt.detach().double()))
        return c


class CAdLIF(_SecondOrderNeuron):
    """cAdLIF baseline, float only (NEURON_MATH §1.3): alpha, beta, a, b trained directly,
    initialised uniformly over and clamped to :data:`CADLIF_RANGES`. Zero initial state."""

    def __init__(self, n_neurons: int):
        super().__init__(n_neurons)
        for name, rng in CADLIF_RANGES.items():
            setattr(self, name, nn.Parameter(torch.empty(n_neurons).uniform_(*rng)))

    def coefficients(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name).clamp(*rng) for name, rng in CADLIF_RANGES.items()}


def transition_matrix(alpha, beta, a, form: str = "figure2") -> torch.Tensor:
    """Per-neuron 2x2 state transition of ``[u; w]``, shape ``(H, 2, 2)`` (float64).

    ``"figure2"``: ``[[alpha, alpha-1], [(1-beta)*a, beta]]``, the matrix of the authors'
    eigenvalue script (NEURON_MATH §1.3), used for the paper's Figure 2.
    ``"implemented"``: the matrix of the recurrence as coded (w updated first, u from the new
    w): ``[[alpha - (1-alpha)*a, -(1-alpha)*beta], [a, beta]]``.
    """
    alpha, beta, a = (torch.as_tensor(v, dtype=torch.float64) for v in (alpha, beta, a))
    if form == "figure2":
        rows = [[alpha, alpha - 1], [(1 - beta) * a, beta]]
    elif form == "implemented":
        rows = [[alpha - (1 - alpha) * a, -(1 - alpha) * beta], [a, beta]]
    else:
        raise ValueError(f"unknown transition matrix form {form!r}: use 'figure2' or 'implemented'")
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def eigenvalues(alpha, beta, a, form: str = "figure2") -> torch.Tensor:
    """Complex eigenvalues ``(H, 2)`` of :func:`transition_matrix`."""
    return torch.linalg.eigvals(transition_matrix(alpha, beta, a, form=form))


# --- integer model --------------------------------------------------------------------------------


@dataclass
class SiLIFParams:
    """Integer parameters of one SiLIF layer; builds the golden model and the hardware core.

    Parameters
    ----------
    alpha_q, beta_q, gain_q : np.ndarray of int64, shape (n_neurons,)
        ``alpha``, ``beta`` and ``1 - alpha`` in ``decay_fmt``, each in ``[0, 1)``.
    a_q : np.ndarray of int64, shape (n_neurons,)
        Adaptation coupling ``a`` in ``a_fmt``.
    b_q : np.ndarray of int64, shape (n_neurons,)
        Spike-triggered adaptation ``b`` in ``b_fmt``.
    input_fmt : QFormat
        Input current ``x`` = folded ``W in + bias`` (default ``sQ10.14``).
    state_fmt : QFormat
        ``u`` and ``w`` (default ``sQ10.14``: +-512, LSB 6.1e-5, NEURON_MATH §1.9).
    decay_fmt : QFormat
        Unsigned decays (default ``uQ0.18``, one 18-bit multiplier port).
    a_fmt : QFormat
        Default ``uQ1.17`` (a in [0, 1] with 1 exact).
    b_fmt : QFormat
        Default ``uQ2.14`` (b in [0, 2]); must share fractional bits with ``state_fmt``.
    rounded_to_one : dict of str to np.ndarray of bool
        Which decays rounded to 1.0 and were clamped below it during :meth:`from_float`
        (empty arrays when the params were built from integers).
    """

    alpha_q: np.ndarray
    beta_q: np.ndarray
    gain_q: np.ndarray
    a_q: np.ndarray
    b_q: np.ndarray
    input_fmt: QFormat = field(default_factory=lambda: QFormat(10, 14))
    state_fmt: QFormat = field(default_factory=lambda: QFormat(10, 14))
    decay_fmt: QFormat = field(default_factory=lambda: QFormat(0, 18, signed=False))
    a_fmt: QFormat = field(default_factory=lambda: QFormat(1, 17, signed=False))
    b_fmt: QFormat = field(default_factory=lambda: QFormat(2, 14, signed=False))
    rounded_to_one: dict = field(default_factory=dict)

    _ARRAYS: ClassVar[tuple[str, ...]] = ("alpha_q", "beta_q", "gain_q", "a_q", "b_q")

    def __post_init__(self):
        for name in self._ARRAYS:
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.int64).reshape(-1))
        sizes = {name: getattr(self, name).shape[0] for name in self._ARRAYS}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"every SiLIF parameter needs one entry per neuron; got sizes {sizes}")
        if self.n_neurons < 1:
            raise ValueError("a SiLIF layer needs at least one neuron")
        frac = {str(f): f.frac_bits for f in (self.input_fmt, self.state_fmt, self.b_fmt)}
        if len(set(frac.values())) != 1:
            raise ValueError(
                f"input_fmt, state_fmt and b_fmt must share one number of fractional bits; got {', '.join(frac)}"
            )
        if not self.state_fmt.signed or self.state_fmt.max_int <= self.threshold_q:
            raise ValueError(f"state_fmt {self.state_fmt} must be signed and hold the threshold 1.0 with room above")
        if self.decay_fmt.signed or self.decay_fmt.frac_bits < 1:
            raise ValueError(f"decay_fmt must be unsigned with fractional bits (decays lie in [0, 1)); got {self.decay_fmt}")
        one = 1 << self.decay_fmt.frac_bits
        for name in ("alpha_q", "beta_q", "gain_q"):
            value = getattr(self, name)
            if np.any(value < 0) or np.any(value >= one):
                raise ValueError(
                    f"{name} must lie in [0, 1) of {self.decay_fmt} (stored 0..{one - 1}); "
                    "quantise with SiLIFParams.from_float, which clamps decays that round to 1"
                )
        for name, fmt in (("a_q", self.a_fmt), ("b_q", self.b_fmt)):
            if not fmt.contains(getattr(self, name)):
                raise ValueError(f"{name} has values outside {fmt}")
        widest = self.state_fmt.width + 1 + max(self.decay_fmt.width, self.a_fmt.width) + self.coef_frac_bits
        if widest > 62:
            raise ValueError(f"formats too wide for int64 products ({widest} bits); narrow state_fmt or the coefficients")

    @classmethod
    def from_float(cls, alpha, beta, a, b, gain=None, **formats) -> "SiLIFParams":
        """Quantise float64 coefficients (round half up; decays clamped below 1, decision 'Declared formats').

        ``gain`` defaults to ``1 - alpha``; pass the exact value (e.g. ``-expm1(-r)``) when
        available. ``a`` and ``b`` saturate to their formats. Which decays rounded to 1.0 is
        kept in :attr:`rounded_to_one` (see :meth:`quantization_report`).
        """
        zeros = np.zeros(1)
        probe = cls(zeros, zeros, zeros, zeros, zeros, **formats)
        alpha = np.asarray(alpha, dtype=np.float64).reshape(-1)
        gain = 1.0 - alpha if gain is None else np.asarray(gain, dtype=np.float64).reshape(-1)
        quantized, flags = {}, {}
        for name, value in (("alpha", alpha), ("beta", beta), ("gain", gain)):
            quantized[name], flags[name] = quantize_decay(np.asarray(value, dtype=np.float64).reshape(-1), probe.decay_fmt)
        return cls(
            alpha_q=quantized["alpha"],
            beta_q=quantized["beta"],
            gain_q=quantized["gain"],
            a_q=probe.a_fmt.quantize(np.asarray(a, dtype=np.float64).reshape(-1)),
            b_q=probe.b_fmt.quantize(np.asarray(b, dtype=np.float64).reshape(-1)),
            rounded_to_one=flags,
            **formats,
        )

    @classmethod
    def from_module(cls, neuron: _SecondOrderNeuron, **formats) -> "SiLIFParams":
        """Export a trained :class:`SiLIF` (or :class:`CAdLIF`) layer's coefficients
        (decision 'Precomputed coefficients')."""
        c = {k: v.numpy() for k, v in neuron.decays().items()}
        return cls.from_float(c["alpha"], c["beta"], c["a"], c["b"], gain=c["gain"], **formats)

    def quantization_report(self) -> str:
        """One line per decay kind that rounded to 1.0 (empty string when none did)."""
        lines = []
        for name, mask in self.rounded_to_one.items():
            count = int(np.count_nonzero(mask))
            if count:
                lines.append(
                    f"{count}/{mask.size} {name} rounded to 1.0 in {self.decay_fmt}; clamped to "
                    f"1-2**-{self.decay_fmt.frac_bits}"
                    + (" (w integrates small values exactly; only the a*u feedback and saturation bound it)" if name == "beta" else "")
                )
        return "\n".join(lines)

    # --- derived facts ---------------------------------------------------------------------
    @property
    def n_neurons(self) -> int:
        return int(self.alpha_q.shape[0])

    @property
    def frac_bits(self) -> int:
        """``F``: fractional bits of x, u, w and b."""
        return self.state_fmt.frac_bits

    @property
    def threshold_q(self) -> int:
        """The threshold 1.0 in ``state_fmt``."""
        return 1 << self.state_fmt.frac_bits

    @property
    def coef_frac_bits(self) -> int:
        """``C``: the common fractional bits of the product sums (one rounding by ``C``)."""
        return max(self.decay_fmt.frac_bits, self.a_fmt.frac_bits)

    def coefficients_float(self) -> dict[str, np.ndarray]:
        """The float64 values the integer model actually applies."""
        return {
            "alpha": self.decay_fmt.to_float(self.alpha_q),
            "beta": self.decay_fmt.to_float(self.beta_q),
            "gain": self.decay_fmt.to_float(self.gain_q),
            "a": self.a_fmt.to_float(self.a_q),
            "b": self.b_fmt.to_float(self.b_q),
        }

    # --- integer golden step ---------------------------------------------------------------
    def initial_state(self, batch_shape=()) -> "SiLIFState":
        """Zero state."""
        shape = (*batch_shape, self.n_neurons)
        zeros = torch.zeros(shape, dtype=torch.int64)
        return SiLIFState(u=zeros, w=zeros.clone(), s=torch.zeros(shape, dtype=torch.bool))

    def _tensors(self):
        """Per-neuron constants of :meth:`_step`: alpha, gain, and beta, a, b pre-aligned to
        ``C`` fractional bits (``beta << (C-Cd)``, ``a << (C-Ca)``, ``b << C``; exact)."""
        c = self.coef_frac_bits
        t = {name: torch.as_tensor(getattr(self, name)) for name in self._ARRAYS}
        return (
            t["alpha_q"],
            t["gain_q"],
            t["beta_q"] << (c - self.decay_fmt.frac_bits),
            t["a_q"] << (c - self.a_fmt.frac_bits),
            t["b_q"] << c,
        )

    def step(self, state: "SiLIFState", current_q: torch.Tensor):
        """One step for every neuron (vectorised over leading batch dims).

        ``current_q``: int64 ``(..., n_neurons)`` in ``input_fmt``.
        Returns ``(new_state, saturated)``; ``new_state.s`` holds the spikes.
        """
        current_q = torch.as_tensor(current_q, dtype=torch.int64)
        if not self.input_fmt.contains(current_q):
            raise ValueError(f"input current outside {self.input_fmt}")
        return self._step(state, current_q, self._tensors())

    def _step(self, state, x, tensors):
        alpha, gain, beta_c, a_c, b_c = tensors
        acc_w = beta_c * state.w + a_c * state.u + state.s * b_c
        w, sat_w = self.state_fmt.saturate(round_shift(acc_w, self.coef_frac_bits))
        u_reset = state.u - state.s * self.threshold_q
        # Both u products carry Cd fractional bits: rounding by Cd equals shifting up to C first.
        acc_u = alpha * u_reset + gain * (x - w)
        u, sat_u = self.state_fmt.saturate(round_shift(acc_u, self.decay_fmt.frac_bits))
        return SiLIFState(u=u, w=w, s=u > self.threshold_q), sat_w | sat_u


@dataclass
class SiLIFState:
    """Integer state between steps: ``u``, ``w`` (int64, ``state_fmt``), ``s`` (bool)."""

    u: torch.Tensor
    w: torch.Tensor
    s: torch.Tensor


@dataclass
class SiLIFTrace:
    """Every state at every step, shape ``(..., T, n_neurons)``, as the core emits them."""

    u: torch.Tensor
    w: torch.Tensor
    s: torch.Tensor
    saturated: torch.Tensor

    @property
    def saturation_count(self) -> int:
        """Neuron updates in which any clamp acted (what the core's counter counts)."""
        return int(self.saturated.sum())


def run_int(params: SiLIFParams, currents_q: torch.Tensor) -> SiLIFTrace:
    """Sequential bit-exact SiLIF over time, vectorised over batch and neurons.

    ``currents_q``: int64 ``(..., T, n_neurons)`` in ``params.input_fmt``.
    """
    currents_q = torch.as_tensor(currents_q, dtype=torch.int64)
    if currents_q.dim() < 2 or currents_q.shape[-1] != params.n_neurons:
        raise ValueError(f"currents must have shape (..., T, {params.n_neurons}); got {tuple(currents_q.shape)}")
    if not params.input_fmt.contains(currents_q):
        raise ValueError(f"input currents outside {params.input_fmt}")
    steps = currents_q.shape[-2]
    state = params.initial_state(currents_q.shape[:-2])
    out_shape = (*currents_q.shape[:-2], steps, params.n_neurons)
    trace = SiLIFTrace(
        u=torch.empty(out_shape, dtype=torch.int64),
        w=torch.empty(out_shape, dtype=torch.int64),
        s=torch.empty(out_shape, dtype=torch.bool),
        saturated=torch.empty(out_shape, dtype=torch.bool),
    )
    tensors = params._tensors()
    for t in range(steps):
        state, sat = params._step(state, currents_q[..., t, :], tensors)
        trace.u[..., t, :] = state.u
        trace.w[..., t, :] = state.w
        trace.s[..., t, :] = state.s
        trace.saturated[..., t, :] = sat
    return trace



# ============================================================================================
# Registration (golden.kinds)
# ============================================================================================


def _quantize(module: _SecondOrderNeuron, input_fmt: QFormat, max_abs: dict, headroom: float):
    """Export formats: states with room for ``headroom`` times the calibrated ``|u|``, ``|w|``;
    decays ``uQ0.18``, ``a`` ``uQ1.17``, ``b`` ``uQ2.F``."""
    frac = input_fmt.frac_bits
    state = max(max_abs["u"], max_abs["w"])
    formats = dict(input_fmt=input_fmt, state_fmt=QFormat(int_bits_for(state, headroom, minimum=3), frac),
                   decay_fmt=QFormat(0, 18, signed=False), a_fmt=QFormat(1, 17, signed=False),
                   b_fmt=QFormat(2, frac, signed=False))
    params = SiLIFParams.from_module(module, **formats)
    rounded = {name: int(np.count_nonzero(mask)) for name, mask in params.rounded_to_one.items()}
    return params, formats, rounded


def _float_trace(module: _SecondOrderNeuron, currents: torch.Tensor) -> dict:
    run = module.run(currents)
    return {"output": run.s, "u": run.u, "w": run.w}


def _products(p: SiLIFParams) -> list:
    s = p.state_fmt.width
    return [(s, p.decay_fmt.width), (s, p.a_fmt.width), (s + 1, p.decay_fmt.width),
            (max(p.input_fmt.width, s) + 1, p.decay_fmt.width)]


NEURON_KIND = NeuronKind(
    name="silif",
    params_class=SiLIFParams,
    run_int=run_int,
    float_modules=(SiLIF, CAdLIF),
    model_fields=ModelFields(
        formats=("input_fmt", "state_fmt", "decay_fmt", "a_fmt", "b_fmt"),
        arrays={"alpha_q": "decay_fmt", "beta_q": "decay_fmt", "gain_q": "decay_fmt", "a_q": "a_fmt", "b_q": "b_fmt"},
        decays=("alpha_q", "beta_q", "gain_q"),
        masks=("rounded_to_one.alpha", "rounded_to_one.beta", "rounded_to_one.gain"),
        mask_value=lambda p, mask: p.rounded_to_one.get(mask.split(".")[1]),
        mask_kwargs=lambda masks: {"rounded_to_one": {mask.split(".")[1]: v for mask, v in masks.items()}},
    ),
    state_words=lambda p: {"u": p.state_fmt, "w": p.state_fmt, "spike": 1},
    param_words=lambda p: {"alpha": p.decay_fmt, "beta": p.decay_fmt, "gain": p.decay_fmt, "a": p.a_fmt, "b": p.b_fmt},
    products=_products,
    core_lut4=750,
    quantize=_quantize,
    float_trace=_float_trace,
    default_params=lambda rng, n: SiLIFParams.from_float(
        alpha=rng.uniform(0.80, 0.95, n), beta=rng.uniform(0.90, 0.98, n),
        a=rng.uniform(0.0, 0.5, n), b=rng.uniform(0.0, 1.0, n),
    ),
    example_params=lambda rng, n: SiLIFParams.from_float(
        alpha=rng.uniform(0.6, 0.95, n), beta=rng.uniform(0.6, 0.98, n),
        a=rng.uniform(0.0, 0.5, n), b=rng.uniform(0.0, 1.0, n),
    ),
    train_choices={"silif": SiLIF, "cadlif": CAdLIF},
)
