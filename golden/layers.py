"""Network pieces shared by every SSM-inspired LIF model (NEURON_MATH §1.1, §1.2, §1.6).

* :func:`spike_boxcar` - Heaviside forward ``s = [z > 0]`` with the boxcar surrogate gradient
  ``ds/dz = 1`` for ``-0.5 < z <= 0.5`` (§1.2, as in sparch / SSM-inspired-LIF).
* :class:`SNNLayer` - the reference network block ``Linear(no bias) -> BatchNorm1d over
  (batch*time) -> neuron -> Dropout`` (§1.1).
* :func:`fold_batchnorm` - the inference-time fold of batch norm into the weights plus a
  per-neuron bias (decision 'Batch norm folding', §1.1 [D]).
* :class:`LIReadout` (float) and :class:`LIReadoutParams` (integer, bit-exact, decision 'Readout decision') - the
  non-spiking leaky-integrator readout ``u_t = alpha*u_{t-1} + (1-alpha)*x_t``.

Every neuron module here takes the layer's input currents ``x`` with shape
``(batch, time, neurons)`` and returns a tensor of the same shape (spikes for spiking
neurons, the membrane for the readout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .fixed import QFormat, int_bits_for, round_shift
from .kinds import NeuronKind, ModelFields

__all__ = [
    "NEURON_KIND",
    "SpikeBoxcar",
    "spike_boxcar",
    "SNNLayer",
    "fold_batchnorm",
    "LIReadout",
    "readout_scores",
    "LIReadoutParams",
    "LIReadoutState",
    "LIReadoutTrace",
    "run_readout_int",
    "quantize_decay",
]

#: Readout decay clamp of the reference, ``[exp(-1/5), exp(-1/25)]`` (§1.6).
READOUT_ALPHA_RANGE = (math.exp(-1 / 5), math.exp(-1 / 25))


class SpikeBoxcar(torch.autograd.Function):
    """Heaviside spike with boxcar surrogate gradient (NEURON_MATH §1.2).

    Forward: ``1`` where ``z > 0`` (strict), else ``0``, in ``z``'s dtype.
    Backward: the incoming gradient passes where ``-0.5 < z <= 0.5`` and is zeroed elsewhere.
    """

    @staticmethod
    def forward(ctx, z):
        ctx.save_for_backward(z)
        return z.gt(0).to(z.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (z,) = ctx.saved_tensors
        window = (z > -0.5) & (z <= 0.5)
        return grad_output * window.to(grad_output.dtype)


def spike_boxcar(z: torch.Tensor) -> torch.Tensor:
    """``H(z)`` with the boxcar surrogate; call with ``z = u - threshold``."""
    return SpikeBoxcar.apply(z)


class SNNLayer(nn.Module):
    """The reference block ``Linear(no bias) -> BatchNorm1d -> neuron -> Dropout`` (§1.1).

    Parameters
    ----------
    in_features : int
        Input channels ``C``.
    neuron : nn.Module
        A neuron module with attribute ``n_neurons`` (``H``) mapping currents of shape
        ``(B, T, H)`` to an output of the same shape. If it has ``linear_init ==
        "xavier_uniform"`` the linear weight is initialised with ``xavier_uniform_`` (SiLIF,
        cAdLIF); otherwise the default ``nn.Linear`` init is kept (C-SiLIF, readout).
    dropout : float
        Dropout probability on the neuron output (training only; identity at inference).

    Batch norm uses ``momentum=0.05, eps=1e-5`` and normalises over batch and time together,
    exactly like the reference (the ``(B, T, H)`` tensor is viewed as ``(B*T, H)``).
    """

    def __init__(self, in_features: int, neuron: nn.Module, dropout: float = 0.0):
        super().__init__()
        n_neurons = getattr(neuron, "n_neurons", None)
        if not isinstance(n_neurons, int) or n_neurons < 1:
            raise ValueError(f"neuron module {type(neuron).__name__} must expose a positive int n_neurons")
        if in_features < 1:
            raise ValueError(f"in_features must be >= 1, not {in_features}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), not {dropout}")
        self.linear = nn.Linear(in_features, n_neurons, bias=False)
        if getattr(neuron, "linear_init", "default") == "xavier_uniform":
            nn.init.xavier_uniform_(self.linear.weight)
        self.norm = nn.BatchNorm1d(n_neurons, momentum=0.05, eps=1e-5)
        self.neuron = neuron
        self.dropout = nn.Dropout(dropout)

    def currents(self, x: torch.Tensor) -> torch.Tensor:
        """``BN(W x)`` for ``x`` of shape ``(B, T, C)``: the neuron's input currents ``(B, T, H)``."""
        if x.dim() != 3:
            raise ValueError(f"SNNLayer expects input of shape (batch, time, channels), got {tuple(x.shape)}")
        wx = self.linear(x)
        batch, steps, hidden = wx.shape
        return self.norm(wx.reshape(batch * steps, hidden)).reshape(batch, steps, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.neuron(self.currents(x)))

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference-time ``(weight, bias)`` with batch norm folded in (see :func:`fold_batchnorm`)."""
        return fold_batchnorm(self.linear.weight, self.norm)


def fold_batchnorm(weight: torch.Tensor, norm: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold an inference-mode batch norm into the preceding bias-free linear layer.

    With ``g = gamma / sqrt(running_var + eps)`` (``gamma = 1``, ``beta = 0`` without affine):
    ``W' = diag(g) W`` and ``bias' = beta - running_mean * g`` (NEURON_MATH §1.1 [D]), so
    ``W' x + bias' == norm.eval()(W x)``.

    Returns float64 tensors ``(W' (H, C), bias' (H,))``, detached.
    """
    weight = weight.detach().to(torch.float64)
    hidden = weight.shape[0]
    if norm.num_features != hidden:
        raise ValueError(f"batch norm has {norm.num_features} features but the weight has {hidden} rows")
    if norm.running_mean is None or norm.running_var is None:
        raise ValueError("batch norm has no running statistics (track_running_stats=False); cannot fold")
    mean = norm.running_mean.detach().to(torch.float64)
    var = norm.running_var.detach().to(torch.float64)
    if norm.affine:
        gamma = norm.weight.detach().to(torch.float64)
        beta = norm.bias.detach().to(torch.float64)
    else:
        gamma = torch.ones(hidden, dtype=torch.float64)
        beta = torch.zeros(hidden, dtype=torch.float64)
    gain = gamma / torch.sqrt(var + norm.eps)
    return weight * gain[:, None], beta - mean * gain


# --- leaky-integrator readout ------------------------------------------------------------------


class LIReadout(nn.Module):
    """Non-spiking leaky-integrator readout, float (NEURON_MATH §1.6).

    ``u_t = alpha * u_{t-1} + (1 - alpha) * x_t`` with ``u_0 = 0``; ``alpha`` (per output)
    is initialised uniformly in ``[exp(-1/5), exp(-1/25)]`` and clamped to that range on
    every forward. ``forward`` returns the membrane ``u`` of shape ``(B, T, n_neurons)``.
    """

    linear_init = "default"

    def __init__(self, n_neurons: int):
        super().__init__()
        if n_neurons < 1:
            raise ValueError(f"n_neurons must be >= 1, not {n_neurons}")
        self.n_neurons = n_neurons
        lo, hi = READOUT_ALPHA_RANGE
        self.alpha = nn.Parameter(torch.empty(n_neurons).uniform_(lo, hi))

    def clamped_alpha(self) -> torch.Tensor:
        return self.alpha.clamp(*READOUT_ALPHA_RANGE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.clamped_alpha()
        u = x.new_zeros(x.shape[0], self.n_neurons)
        out = []
        for t in range(x.shape[1]):
            u = alpha * u + (1 - alpha) * x[:, t]
            out.append(u)
        return torch.stack(out, dim=1)

    def decays(self) -> dict[str, torch.Tensor]:
        """Precomputed float64 coefficients the hardware receives: ``alpha``, ``gain`` = 1-alpha."""
        alpha = self.clamped_alpha().detach().to(torch.float64)
        return {"alpha": alpha, "gain": 1.0 - alpha}


def readout_scores(membrane: torch.Tensor, mode: str = "membrane_sum") -> torch.Tensor:
    """Class scores from the readout membrane ``(B, T, C_out)``.

    ``"membrane_sum"``: ``sum_t u_t`` - the deployed decision (argmax of this).
    ``"softmax_sum"``: ``sum_t softmax(u_t)`` - the reference training output (§1.1).
    """
    if mode == "membrane_sum":
        return membrane.sum(dim=1)
    if mode == "softmax_sum":
        return torch.softmax(membrane, dim=-1).sum(dim=1)
    raise ValueError(f"unknown readout score mode {mode!r}: use 'membrane_sum' or 'softmax_sum'")


def quantize_decay(value, fmt: QFormat) -> tuple[np.ndarray, np.ndarray]:
    """Quantise decays in ``[0, 1]`` to unsigned ``fmt`` so that every result is < 1.

    Rounds half up; a value that rounds to exactly 1.0 (or above) is clamped to
    ``1 - 2**-frac_bits`` (decision 'Declared formats', NEURON_MATH §4.6). Returns ``(decay_q, rounded_to_one)``;
    the boolean mask tells which entries were clamped so callers can report them.
    """
    if fmt.signed:
        raise ValueError(f"decay format must be unsigned, got {fmt}")
    value = np.asarray(value, dtype=np.float64)
    if np.any(value < 0) or np.any(value > 1) or not np.all(np.isfinite(value)):
        raise ValueError("decays must be finite and lie in [0, 1]")
    one = 1 << fmt.frac_bits
    raw = np.floor(value * one + 0.5).astype(np.int64)
    rounded_to_one = raw >= one
    return np.minimum(raw, min(one - 1, fmt.max_int)), rounded_to_one


@dataclass
class LIReadoutParams:
    """Integer parameters of the leaky-integrator readout (bit-exact golden model, decision 'Readout decision').

    Integer semantics, per step and output neuron::

        u_t = sat(round_half_up(alpha_q * u_{t-1} + gain_q * x_t, C))      # one rounding
        score = sum_t u_t                                                   # exact, wide
        class = argmax(score)                                               # first index on ties

    Parameters
    ----------
    alpha_q, gain_q : np.ndarray of int64, shape (n_neurons,)
        ``alpha`` and ``1 - alpha`` in ``coef_fmt``, each quantised from float, both < 1
        (decision 'Precomputed coefficients').
    input_fmt : QFormat
        Input current ``x`` (default ``sQ10.14``); must share fractional bits with ``state_fmt``.
    state_fmt : QFormat
        Membrane ``u`` (default ``sQ10.14``).
    coef_fmt : QFormat
        Unsigned coefficient format (default ``uQ0.18``).
    """

    alpha_q: np.ndarray
    gain_q: np.ndarray
    input_fmt: QFormat = field(default_factory=lambda: QFormat(10, 14))
    state_fmt: QFormat = field(default_factory=lambda: QFormat(10, 14))
    coef_fmt: QFormat = field(default_factory=lambda: QFormat(0, 18, signed=False))

    def __post_init__(self):
        self.alpha_q = np.asarray(self.alpha_q, dtype=np.int64).reshape(-1)
        self.gain_q = np.asarray(self.gain_q, dtype=np.int64).reshape(-1)
        if self.alpha_q.shape != self.gain_q.shape:
            raise ValueError(
                f"alpha_q and gain_q need one entry per neuron; got {self.alpha_q.shape[0]} and {self.gain_q.shape[0]}"
            )
        if self.n_neurons < 1:
            raise ValueError("a readout needs at least one neuron")
        if self.input_fmt.frac_bits != self.state_fmt.frac_bits:
            raise ValueError(
                f"input_fmt {self.input_fmt} and state_fmt {self.state_fmt} must share fractional bits"
            )
        if self.coef_fmt.signed:
            raise ValueError(f"coef_fmt must be unsigned; got {self.coef_fmt}")
        one = 1 << self.coef_fmt.frac_bits
        for name in ("alpha_q", "gain_q"):
            value = getattr(self, name)
            if np.any(value < 0) or np.any(value >= one):
                raise ValueError(f"{name} must lie in [0, 1) of {self.coef_fmt} (stored 0..{one - 1})")

    @classmethod
    def from_float(cls, alpha, **formats: QFormat) -> "LIReadoutParams":
        """Quantise float ``alpha`` (per neuron) and ``1 - alpha`` (both clamped below 1;
        decision 'Precomputed coefficients')."""
        probe = cls(alpha_q=np.zeros(1), gain_q=np.zeros(1), **formats)
        alpha = np.asarray(alpha, dtype=np.float64).reshape(-1)
        alpha_q, _ = quantize_decay(alpha, probe.coef_fmt)
        gain_q, _ = quantize_decay(1.0 - alpha, probe.coef_fmt)
        return cls(alpha_q=alpha_q, gain_q=gain_q, **formats)

    @property
    def n_neurons(self) -> int:
        return int(self.alpha_q.shape[0])

    def initial_state(self, batch_shape=()) -> "LIReadoutState":
        """Zero membrane."""
        return LIReadoutState(u=torch.zeros((*batch_shape, self.n_neurons), dtype=torch.int64))

    def step(self, state: "LIReadoutState", current_q: torch.Tensor):
        """One step for every neuron; returns ``(new_state, saturated)``."""
        if not self.input_fmt.contains(current_q):
            raise ValueError(f"readout input current outside {self.input_fmt}")
        acc = torch.as_tensor(self.alpha_q) * state.u + torch.as_tensor(self.gain_q) * current_q
        u, sat = self.state_fmt.saturate(round_shift(acc, self.coef_fmt.frac_bits))
        return LIReadoutState(u=u), sat


@dataclass
class LIReadoutState:
    """Readout membrane ``u`` (int64, ``state_fmt``)."""

    u: torch.Tensor


@dataclass
class LIReadoutTrace:
    """Every membrane at every step ``(..., T, n)``, the saturation flags, and the decision."""

    u: torch.Tensor
    saturated: torch.Tensor

    @property
    def scores(self) -> torch.Tensor:
        """``sum_t u_t`` (exact int64), shape ``(..., n)``."""
        return self.u.sum(dim=-2)

    @property
    def prediction(self) -> torch.Tensor:
        """``argmax`` of :attr:`scores` (first index on ties)."""
        return self.scores.argmax(dim=-1)

    @property
    def saturation_count(self) -> int:
        return int(self.saturated.sum())


def run_readout_int(params: LIReadoutParams, currents_q: torch.Tensor) -> LIReadoutTrace:
    """Bit-exact readout over time; ``currents_q`` int64 ``(..., T, n_neurons)`` in ``input_fmt``."""
    currents_q = torch.as_tensor(currents_q, dtype=torch.int64)
    if currents_q.dim() < 2 or currents_q.shape[-1] != params.n_neurons:
        raise ValueError(
            f"currents must have shape (..., T, {params.n_neurons}); got {tuple(currents_q.shape)}"
        )
    state = params.initial_state(currents_q.shape[:-2])
    us, sats = [], []
    for t in range(currents_q.shape[-2]):
        state, sat = params.step(state, currents_q[..., t, :])
        us.append(state.u)
        sats.append(sat)
    return LIReadoutTrace(u=torch.stack(us, dim=-2), saturated=torch.stack(sats, dim=-2))


# ============================================================================================
# Registration (golden.kinds)
# ============================================================================================


def _quantize_readout(module: LIReadout, input_fmt: QFormat, max_abs: dict, headroom: float):
    """Export formats: the membrane with room for ``headroom`` times the calibrated ``|u|``;
    coefficients ``uQ0.18``."""
    formats = dict(input_fmt=input_fmt, state_fmt=QFormat(int_bits_for(max_abs["u"], headroom), input_fmt.frac_bits),
                   coef_fmt=QFormat(0, 18, signed=False))
    decays = module.decays()
    params = LIReadoutParams.from_float(alpha=decays["alpha"].numpy(), **formats)
    rounded = {
        name: int(np.count_nonzero(quantize_decay(decays[name].numpy(), formats["coef_fmt"])[1]))
        for name in ("alpha", "gain")
    }
    return params, formats, rounded


def _readout_trace(module: LIReadout, currents: torch.Tensor) -> dict:
    u = module(currents)
    return {"output": u, "u": u}


NEURON_KIND = NeuronKind(
    name="li_readout",
    params_class=LIReadoutParams,
    run_int=run_readout_int,
    float_modules=(LIReadout,),
    readout=True,
    model_fields=ModelFields(
        formats=("input_fmt", "state_fmt", "coef_fmt"),
        arrays={"alpha_q": "coef_fmt", "gain_q": "coef_fmt"},
        decays=("alpha_q", "gain_q"),
    ),
    state_words=lambda p: {"u": p.state_fmt},
    param_words=lambda p: {"alpha": p.coef_fmt, "gain": p.coef_fmt},
    products=lambda p: [(p.state_fmt.width, p.coef_fmt.width), (p.input_fmt.width, p.coef_fmt.width)],
    core_lut4=400,
    quantize=_quantize_readout,
    float_trace=_readout_trace,
    default_params=lambda rng, n: LIReadoutParams.from_float(alpha=rng.uniform(0.82, 0.96, n)),
)
