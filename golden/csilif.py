"""C-SiLIF neuron: one complex state-space mode per neuron (NEURON_MATH §1.5, docs/decisions.md).

Float model (training), as the authors' code implements Algorithm 2, per neuron::

    lambda = exp((-exp(theta_r) + i*omega) * exp(theta_dt))     # |lambda| < 1
    u_t    = lambda * (u_{t-1} - 1/2 * s_{t-1}) + b * x_t        # u complex; b, x real
    s_t    = [Re u_t > 1/2]                                      # strict (decision 'SiLIF update order')

with zero initial state, the "half reset" (reset factor 1/2, because the output is
``2 Re u`` and half of the spike is fed back) and the S4D-Lin initialisation
``A = -1/2 + i*pi`` for every neuron, ``Delta`` log-uniform in ``[dt_min, dt_max]``,
``b ~ U[0, 1)``.

Integer semantics (the specification the hardware mirrors bit for bit), in real form:

* ``x`` is in ``input_fmt``, ``Re u`` and ``Im u`` in ``state_fmt`` (``F`` fractional bits,
  ``F >= 1`` so that 1/2 is exact), ``lambda_r`` and ``lambda_i`` in the signed ``coef_fmt``
  (``C`` fractional bits), ``b`` in the signed ``gain_fmt`` (``G`` fractional bits).
* Half reset, exact: ``u' = Re u_{t-1} - 2**(F-1) * s_{t-1}`` (one bit wider than the state,
  never saturated).
* All products are formed at full width and aligned to ``P = max(C + F, G + F_x)`` fractional
  bits by an exact left shift. Each component sums its products at full width and is rounded
  **once**, half up, back to ``F`` fractional bits (decisions 'Rounding' and 'Complex products')::

      Re u_t = sat(round_P->F(lambda_r*u' - lambda_i*Im u_{t-1} + b*x_t))
      Im u_t = sat(round_P->F(lambda_i*u' + lambda_r*Im u_{t-1}))

  The input term ``b*x`` joins the real sum before the single rounding (not rounded on its own),
  so a step with ``lambda = 0`` gives exactly ``round(b*x)``.
* ``sat`` clamps each component to ``state_fmt``. An update "saturates" when either clamp
  acted; the hardware counts such updates.
* Spike ``s_t = [Re u_t > 2**(F-1)]`` on the saturated state: a strict, exact comparison
  (decision 'SiLIF update order').
* Decays are quantised so that ``|lambda_q| <= 1 - 2**-C`` (strictly inside the unit circle):
  each component is rounded half up; a neuron whose rounded decay would reach the bound is
  shrunk radially (components truncated toward zero) and reported in
  :attr:`CSiLIFParams.decay_shrunk`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .fixed import QFormat, int_bits_for, round_shift
from .kinds import ModelFields, NeuronKind
from .layers import spike_boxcar

__all__ = [
    "CSiLIF",
    "CSiLIFParams",
    "CSiLIFState",
    "CSiLIFTrace",
    "run_int",
    "quantize_complex_decay",
    "NEURON_KIND",
]

DEFAULT_THETA_R = math.log(0.5)
"""S4D-Lin real part: ``-exp(theta_r) = -1/2``."""
DEFAULT_OMEGA = math.pi
"""S4D-Lin imaginary part of mode n = 1."""
DEFAULT_DT_MIN = 0.01
DEFAULT_DT_MAX = 0.5
RESET_FACTOR = 0.5
"""Half reset: ``u - 1/2 * s`` before the decay."""
THRESHOLD = 0.5
"""Spike iff ``Re u > 1/2`` (the code writes ``2 Re u - 1 > 0``)."""


# --------------------------------------------------------------------------------------------
# Float model
# --------------------------------------------------------------------------------------------
class CSiLIF(nn.Module):
    """Float C-SiLIF cell for training (NEURON_MATH §1.5), one complex mode per neuron.

    Parameters
    ----------
    n_neurons : int
        Number of neurons ``H``.
    dt_min, dt_max : float
        Range of the log-uniform initial step ``Delta`` (reference defaults 0.01 and 0.5;
        the SSC-4ms configuration uses ``dt_max = 5``).
    generator : torch.Generator, optional
        Source of randomness for the initialisation.

    Members
    -------
    theta_r : nn.Parameter, shape (H,)
        ``log_log_alpha``; the continuous-time decay rate is ``exp(theta_r)`` (init ``log 0.5``).
    omega : nn.Parameter, shape (H,)
        ``alpha_img``; the continuous-time frequency (init ``pi``).
    theta_dt : nn.Parameter, shape (H,)
        ``log_dt``; the step is ``exp(theta_dt)`` (init ``U[log dt_min, log dt_max]``).
    gain : nn.Parameter, shape (H,)
        The trainable real input gain ``b`` (init ``U[0, 1)``).

    The forward pass takes input currents ``x`` of shape ``(..., T, H)`` (the output of the
    layer's folded linear map) and returns the spikes, shape ``(..., T, H)``, in the dtype of
    ``x``. Gradients flow through the boxcar surrogate of :mod:`golden.layers` and through the
    reset (nothing is detached), as in the reference code.
    """

    def __init__(
        self,
        n_neurons: int,
        dt_min: float = DEFAULT_DT_MIN,
        dt_max: float = DEFAULT_DT_MAX,
        generator: torch.Generator | None = None,
    ):
        if int(n_neurons) < 1:
            raise ValueError(f"CSiLIF needs at least one neuron, not n_neurons={n_neurons}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"CSiLIF needs 0 < dt_min <= dt_max; got dt_min={dt_min}, dt_max={dt_max}")
        super().__init__()
        n = int(n_neurons)
        self.n_neurons = n
        log_dt = torch.rand(n, generator=generator, dtype=torch.float64) * (math.log(dt_max) - math.log(dt_min))
        self.theta_r = nn.Parameter(torch.full((n,), DEFAULT_THETA_R))
        self.omega = nn.Parameter(torch.full((n,), DEFAULT_OMEGA))
        self.theta_dt = nn.Parameter((log_dt + math.log(dt_min)).to(torch.get_default_dtype()))
        self.gain = nn.Parameter(torch.rand(n, generator=generator))

    def decay(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lambda_r, lambda_i)``, the real and imaginary parts of the discrete decay."""
        dt = torch.exp(self.theta_dt)
        magnitude = torch.exp(-torch.exp(self.theta_r) * dt)
        angle = self.omega * dt
        return magnitude * torch.cos(angle), magnitude * torch.sin(angle)

    def forward(self, currents: torch.Tensor, return_states: bool = False):
        """Run the cell over time.

        Parameters
        ----------
        currents : torch.Tensor, shape (..., T, H)
            Real input currents ``x_t``.
        return_states : bool
            Also return ``(re, im)``, each of shape ``(..., T, H)``.
        """
        if currents.shape[-1] != self.n_neurons:
            raise ValueError(f"currents have {currents.shape[-1]} channels, CSiLIF has {self.n_neurons} neurons")
        dtype = currents.dtype
        lam_r, lam_i = (part.to(dtype) for part in self.decay())
        gain = self.gain.to(dtype)
        batch = currents.shape[:-2]
        re = currents.new_zeros((*batch, self.n_neurons))
        im = torch.zeros_like(re)
        s = torch.zeros_like(re)
        spikes, res, ims = [], [], []
        for t in range(currents.shape[-2]):
            u_reset = re - RESET_FACTOR * s
            re, im = lam_r * u_reset - lam_i * im + gain * currents[..., t, :], lam_i * u_reset + lam_r * im
            s = spike_boxcar(2 * re - 2 * THRESHOLD)
            spikes.append(s)
            res.append(re)
            ims.append(im)
        out = torch.stack(spikes, dim=-2)
        if return_states:
            return out, torch.stack(res, dim=-2), torch.stack(ims, dim=-2)
        return out


# --------------------------------------------------------------------------------------------
# Integer model
# --------------------------------------------------------------------------------------------
def quantize_complex_decay(lam_r, lam_i, coef_fmt: QFormat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantise complex decays so that ``|lambda_q| <= 1 - 2**-C`` in ``coef_fmt``.

    Each component is rounded half up. Where the rounded pair reaches the bound
    (``lr**2 + li**2 > (2**C - 1)**2``, e.g. every decay within half a quantum of the unit
    circle, and ``lambda = -1`` which ``sQ1.C`` holds exactly), the float decay is scaled to
    magnitude ``1 - 2**-C`` and both components are truncated toward zero.

    Returns
    -------
    (lr_q, li_q, shrunk) : int64 arrays and a bool array, one entry per neuron; ``shrunk``
        marks the neurons whose decay was pulled inside the bound.
    """
    if not coef_fmt.signed or coef_fmt.int_bits < 1:
        raise ValueError(f"coef_fmt must be signed with at least the sign bit (e.g. sQ1.17), not {coef_fmt}")
    lam_r = np.asarray(lam_r, dtype=np.float64).reshape(-1)
    lam_i = np.asarray(lam_i, dtype=np.float64).reshape(-1)
    if lam_r.shape != lam_i.shape:
        raise ValueError(f"lambda_r and lambda_i need one entry per neuron; got {lam_r.size} and {lam_i.size}")
    if not (np.isfinite(lam_r).all() and np.isfinite(lam_i).all()):
        raise ValueError("decays must be finite")
    unstable = np.flatnonzero(np.hypot(lam_r, lam_i) > 1 + 1e-9)
    if unstable.size:
        raise ValueError(
            f"decays of neurons {unstable[:8].tolist()} have |lambda| > 1 (unstable); "
            "a C-SiLIF decay exp((-exp(theta_r) + i*omega) * dt) always lies inside the unit disc"
        )
    limit = (1 << coef_fmt.frac_bits) - 1
    scale_c = float(1 << coef_fmt.frac_bits)
    # Round half up without clamping first, so that a decay rounding to exactly 1 is reported.
    lr = np.floor(lam_r * scale_c + 0.5).astype(np.int64)
    li = np.floor(lam_i * scale_c + 0.5).astype(np.int64)
    shrunk = lr * lr + li * li > limit * limit
    if shrunk.any():
        magnitude = np.hypot(lam_r[shrunk], lam_i[shrunk])
        scale = np.where(magnitude > 0, limit / np.maximum(magnitude, 1e-300), 0.0)
        lr[shrunk] = np.fix(lam_r[shrunk] * scale).astype(np.int64)
        li[shrunk] = np.fix(lam_i[shrunk] * scale).astype(np.int64)
        # float64 scaling can leave a pair one quantum outside; step the larger part inward.
        while True:
            over = lr * lr + li * li > limit * limit
            if not over.any():
                break
            bigger_re = np.abs(lr) >= np.abs(li)
            lr = np.where(over & bigger_re, lr - np.sign(lr), lr)
            li = np.where(over & ~bigger_re, li - np.sign(li), li)
    return lr, li, shrunk


@dataclass
class CSiLIFParams:
    """Integer parameters of one C-SiLIF layer; builds both the golden model and the core.

    Parameters
    ----------
    decay_re_q, decay_im_q : np.ndarray of int64, shape (n_neurons,)
        ``lambda_r`` and ``lambda_i`` per neuron in ``coef_fmt``, with
        ``decay_re_q**2 + decay_im_q**2 <= (2**C - 1)**2`` (checked).
    gain_q : np.ndarray of int64, shape (n_neurons,)
        Input gain ``b`` per neuron in ``gain_fmt``.
    input_fmt : QFormat
        Input current ``x`` (default ``sQ6.12``: 18 bits, one multiplier port; BN-normalised
        currents rarely leave ±32).
    state_fmt : QFormat
        ``Re u`` and ``Im u`` (default ``sQ12.12``: synthetic runs reach |u| ~ 1.3e3,
        NEURON_MATH §1.8-1.9; saturation beyond ±2048).
    coef_fmt : QFormat
        ``lambda_r`` and ``lambda_i`` (default ``sQ1.17``, one 18-bit multiplier port).
    gain_fmt : QFormat
        ``b`` (default ``sQ4.14``: the released SSC checkpoint has ``b`` in [-1.5, 4.8], which
        ``sQ3.15`` would clip).
    decay_shrunk : np.ndarray of bool, shape (n_neurons,), optional
        Which decays :func:`quantize_complex_decay` pulled inside the unit circle (report only).
    """

    decay_re_q: np.ndarray
    decay_im_q: np.ndarray
    gain_q: np.ndarray
    input_fmt: QFormat = field(default_factory=lambda: QFormat(6, 12))
    state_fmt: QFormat = field(default_factory=lambda: QFormat(12, 12))
    coef_fmt: QFormat = field(default_factory=lambda: QFormat(1, 17))
    gain_fmt: QFormat = field(default_factory=lambda: QFormat(4, 14))
    decay_shrunk: np.ndarray | None = None

    def __post_init__(self):
        self.decay_re_q = np.asarray(self.decay_re_q, dtype=np.int64).reshape(-1)
        self.decay_im_q = np.asarray(self.decay_im_q, dtype=np.int64).reshape(-1)
        self.gain_q = np.asarray(self.gain_q, dtype=np.int64).reshape(-1)
        sizes = {self.decay_re_q.size, self.decay_im_q.size, self.gain_q.size}
        if len(sizes) != 1:
            raise ValueError(
                "decay_re_q, decay_im_q and gain_q need one entry per neuron; got "
                f"{self.decay_re_q.size}, {self.decay_im_q.size} and {self.gain_q.size}"
            )
        if self.n_neurons < 1:
            raise ValueError("a C-SiLIF layer needs at least one neuron")
        for name in ("input_fmt", "state_fmt", "coef_fmt", "gain_fmt"):
            if not getattr(self, name).signed:
                raise ValueError(f"{name} must be signed, not {getattr(self, name)}")
        if self.state_fmt.frac_bits < 1:
            raise ValueError(f"state_fmt needs >= 1 fractional bit so that the threshold 1/2 is exact; got {self.state_fmt}")
        if self.state_fmt.max_int <= self.half_q:
            raise ValueError(f"state_fmt {self.state_fmt} cannot hold values above the threshold 1/2")
        if self.sum_width > 62:
            raise ValueError(f"formats too wide: the full-width sums need {self.sum_width} bits, int64 holds 62")
        for name, fmt in (("decay_re_q", self.coef_fmt), ("decay_im_q", self.coef_fmt), ("gain_q", self.gain_fmt)):
            if not fmt.contains(getattr(self, name)):
                raise ValueError(f"{name} has values outside {fmt}")
        limit = (1 << self.coef_fmt.frac_bits) - 1
        outside = np.flatnonzero(self.decay_re_q**2 + self.decay_im_q**2 > limit * limit)
        if outside.size:
            raise ValueError(
                f"decays of neurons {outside[:8].tolist()} have |lambda_q| > 1 - 2**-{self.coef_fmt.frac_bits}: "
                "quantise them with CSiLIFParams.from_float (quantize_complex_decay), which keeps them inside the unit circle"
            )
        if self.decay_shrunk is None:
            self.decay_shrunk = np.zeros(self.n_neurons, dtype=bool)
        self.decay_shrunk = np.asarray(self.decay_shrunk, dtype=bool).reshape(-1)
        if self.decay_shrunk.size != self.n_neurons:
            raise ValueError(f"decay_shrunk needs {self.n_neurons} entries, not {self.decay_shrunk.size}")

    @classmethod
    def from_float(cls, decay_re, decay_im, gain, **formats) -> "CSiLIFParams":
        """Quantise float decays and gains (decisions 'Rounding' and 'Precomputed coefficients').

        ``decay_re``/``decay_im`` are ``lambda_r``/``lambda_i`` per neuron, quantised with
        :func:`quantize_complex_decay`; ``gain`` is ``b``, rounded half up. A gain outside
        ``gain_fmt`` raises ``ValueError`` (widen ``gain_fmt``) rather than clipping silently.
        """
        probe = cls(decay_re_q=[0], decay_im_q=[0], gain_q=[0], **formats)
        lr, li, shrunk = quantize_complex_decay(decay_re, decay_im, probe.coef_fmt)
        gain = np.asarray(gain, dtype=np.float64).reshape(-1)
        too_big = np.flatnonzero((gain < probe.gain_fmt.min_value) | (gain > probe.gain_fmt.max_value))
        if too_big.size:
            raise ValueError(
                f"input gains of neurons {too_big[:8].tolist()} (e.g. {gain[too_big[0]]:.4g}) are outside "
                f"gain_fmt {probe.gain_fmt}: pass a wider gain_fmt"
            )
        return cls(lr, li, probe.gain_fmt.quantize(gain), decay_shrunk=shrunk, **formats)

    @classmethod
    def from_module(cls, module: CSiLIF, **formats) -> "CSiLIFParams":
        """Export a trained :class:`CSiLIF` (the exp/log reparametrisation stays in training,
        decision 'Precomputed coefficients')."""
        with torch.no_grad():
            lam_r, lam_i = (p.detach().to(torch.float64).cpu().numpy() for p in module.decay())
            gain = module.gain.detach().to(torch.float64).cpu().numpy()
        return cls.from_float(lam_r, lam_i, gain, **formats)

    # --- derived facts -------------------------------------------------------------------
    @property
    def n_neurons(self) -> int:
        return int(self.gain_q.shape[0])

    @property
    def half_q(self) -> int:
        """1/2 in ``state_fmt``: the reset amount and the threshold."""
        return 1 << (self.state_fmt.frac_bits - 1)

    @property
    def product_frac_bits(self) -> int:
        """``P``: fractional bits of the full-width sums before the single rounding."""
        return max(
            self.coef_fmt.frac_bits + self.state_fmt.frac_bits,
            self.gain_fmt.frac_bits + self.input_fmt.frac_bits,
        )

    @property
    def sum_width(self) -> int:
        """Signed bits of the full-width real sum (two decay products, one input product)."""
        decay_product = self.coef_fmt.width + self.state_fmt.width + 1 + self.decay_shift
        input_product = self.gain_fmt.width + self.input_fmt.width + self.input_shift
        return max(decay_product + 1, input_product) + 1

    @property
    def decay_shift(self) -> int:
        """Left shift aligning a ``lambda * state`` product to ``P`` fractional bits."""
        return self.product_frac_bits - self.coef_fmt.frac_bits - self.state_fmt.frac_bits

    @property
    def input_shift(self) -> int:
        """Left shift aligning the ``b * x`` product to ``P`` fractional bits."""
        return self.product_frac_bits - self.gain_fmt.frac_bits - self.input_fmt.frac_bits

    @property
    def round_bits(self) -> int:
        """Fractional bits dropped by the single rounding, ``P - F``."""
        return self.product_frac_bits - self.state_fmt.frac_bits

    @property
    def decay(self) -> np.ndarray:
        """The complex decays the integer model actually applies."""
        return self.coef_fmt.to_float(self.decay_re_q) + 1j * self.coef_fmt.to_float(self.decay_im_q)

    @property
    def gain(self) -> np.ndarray:
        """The gains the integer model actually applies."""
        return self.gain_fmt.to_float(self.gain_q)

    @property
    def shrunk_neurons(self) -> list[int]:
        """Indices of neurons whose decay quantisation was pulled inside the unit circle."""
        return np.flatnonzero(self.decay_shrunk).tolist()

    # --- integer golden step ---------------------------------------------------------------
    def step(self, state: "CSiLIFState", current_q: torch.Tensor):
        """One time step for all neurons (vectorised over any leading batch dims).

        ``current_q`` is int64 with last dimension ``n_neurons`` in ``input_fmt``.
        Returns ``(new_state, saturated)``; ``new_state.s`` holds the spikes.
        """
        current_q = torch.as_tensor(current_q, dtype=torch.int64)
        if not self.input_fmt.contains(current_q):
            raise ValueError(f"input current outside {self.input_fmt}")
        lam_r = torch.as_tensor(self.decay_re_q)
        lam_i = torch.as_tensor(self.decay_im_q)
        gain = torch.as_tensor(self.gain_q)
        u_reset = state.re - torch.where(state.s, self.half_q, 0)
        sum_re = ((lam_r * u_reset - lam_i * state.im) << self.decay_shift) + ((gain * current_q) << self.input_shift)
        sum_im = (lam_i * u_reset + lam_r * state.im) << self.decay_shift
        re, sat_re = self.state_fmt.saturate(round_shift(sum_re, self.round_bits))
        im, sat_im = self.state_fmt.saturate(round_shift(sum_im, self.round_bits))
        return CSiLIFState(re=re, im=im, s=re > self.half_q), sat_re | sat_im

    def initial_state(self, batch_shape=()) -> "CSiLIFState":
        """Zero state: ``u = 0``, no previous spike."""
        shape = (*batch_shape, self.n_neurons)
        zeros = torch.zeros(shape, dtype=torch.int64)
        return CSiLIFState(re=zeros, im=zeros.clone(), s=torch.zeros(shape, dtype=torch.bool))


@dataclass
class CSiLIFState:
    """Integer state between steps: ``re``, ``im`` (state_fmt) and the spike ``s`` (bool)."""

    re: torch.Tensor
    im: torch.Tensor
    s: torch.Tensor


@dataclass
class CSiLIFTrace:
    """Every state at every step, shape ``(..., T, n_neurons)``, as the hardware emits them."""

    re: torch.Tensor
    im: torch.Tensor
    s: torch.Tensor
    saturated: torch.Tensor

    @property
    def saturation_count(self) -> int:
        """Number of neuron updates in which a clamp acted (what the core's counter counts)."""
        return int(self.saturated.sum())


def run_int(params: CSiLIFParams, currents_q) -> CSiLIFTrace:
    """Sequential bit-exact integer model over time, vectorised over batch and neurons.

    ``currents_q``: int64, shape ``(..., T, n_neurons)`` in ``params.input_fmt``.
    Returns the trace of every state at every step.
    """
    currents_q = torch.as_tensor(np.asarray(currents_q) if not isinstance(currents_q, torch.Tensor) else currents_q)
    if currents_q.is_floating_point():
        raise ValueError("currents_q must hold integers in input_fmt; quantise floats with input_fmt.quantize")
    currents_q = currents_q.to(torch.int64)
    if currents_q.dim() < 2 or currents_q.shape[-1] != params.n_neurons:
        raise ValueError(
            f"currents_q must have shape (..., T, {params.n_neurons}); got {tuple(currents_q.shape)}"
        )
    if not params.input_fmt.contains(currents_q):
        raise ValueError(f"input currents outside {params.input_fmt}")
    state = params.initial_state(currents_q.shape[:-2])
    res, ims, ss, sats = [], [], [], []
    for t in range(currents_q.shape[-2]):
        state, sat = params.step(state, currents_q[..., t, :])
        res.append(state.re)
        ims.append(state.im)
        ss.append(state.s)
        sats.append(sat)
    stack = lambda xs: torch.stack(xs, dim=-2)  # noqa: E731
    return CSiLIFTrace(re=stack(res), im=stack(ims), s=stack(ss), saturated=stack(sats))


# ============================================================================================
# Registration (golden.kinds)
# ============================================================================================


def _quantize(module: CSiLIF, input_fmt: QFormat, max_abs: dict, headroom: float):
    """Export formats: states with room for ``headroom`` times the calibrated ``|re|``, ``|im|``;
    decays ``sQ1.17``; the gain 18 bits with the integer bits its largest value needs."""
    frac = input_fmt.frac_bits
    state = max(max_abs["re"], max_abs["im"])
    state_fmt = QFormat(int_bits_for(state, headroom, minimum=2), frac)
    gain = float(module.gain.detach().abs().max())
    gain_int = int_bits_for(gain + 2.0**-14, minimum=2)
    formats = dict(input_fmt=input_fmt, state_fmt=state_fmt, coef_fmt=QFormat(1, 17),
                   gain_fmt=QFormat(gain_int, 18 - gain_int))
    params = CSiLIFParams.from_module(module, **formats)
    return params, formats, {"decay": int(params.decay_shrunk.sum())}


def _float_trace(module: CSiLIF, currents: torch.Tensor) -> dict:
    spikes, re, im = module(currents, return_states=True)
    return {"output": spikes, "re": re, "im": im}


def _default_params(rng, n: int) -> CSiLIFParams:
    magnitude = rng.uniform(0.80, 0.95, n)
    angle = rng.uniform(0.05, 0.6, n)
    return CSiLIFParams.from_float(magnitude * np.cos(angle), magnitude * np.sin(angle), rng.uniform(0.25, 0.5, n))


def _example_params(rng, n: int) -> CSiLIFParams:
    magnitude = rng.uniform(0.6, 0.95, n)
    angle = rng.uniform(0.05, 0.8, n)
    return CSiLIFParams.from_float(magnitude * np.cos(angle), magnitude * np.sin(angle), rng.uniform(0.5, 1.0, n))


NEURON_KIND = NeuronKind(
    name="csilif",
    params_class=CSiLIFParams,
    run_int=run_int,
    float_modules=(CSiLIF,),
    model_fields=ModelFields(
        formats=("input_fmt", "state_fmt", "coef_fmt", "gain_fmt"),
        arrays={"decay_re_q": "coef_fmt", "decay_im_q": "coef_fmt", "gain_q": "gain_fmt"},
        masks=("decay_shrunk",),
        mask_value=lambda p, mask: p.decay_shrunk,
        mask_kwargs=lambda masks: {"decay_shrunk": masks["decay_shrunk"]} if "decay_shrunk" in masks else {},
    ),
    # The real part is stored half-reset (u_reset = Re u - s/2), one bit wider than state_fmt.
    state_words=lambda p: {"u_reset": p.state_fmt.width + 1, "im": p.state_fmt},
    param_words=lambda p: {"decay_re": p.coef_fmt, "decay_im": p.coef_fmt, "gain": p.gain_fmt},
    products=lambda p: [(p.state_fmt.width + 1, p.coef_fmt.width)] * 4 + [(p.input_fmt.width, p.gain_fmt.width)],
    core_lut4=800,
    input_width=18,
    quantize=_quantize,
    float_trace=_float_trace,
    default_params=_default_params,
    example_params=_example_params,
    train_choices={"csilif": CSiLIF},
)
