"""Refractory LIF neuron of SPikE-SSM (NEURON_MATH §2.2, DECISIONS D7-D8).

Per channel, per time step, in this order (D7)::

    v_t = tau * u_{t-1} + I_t                   # charge
    R_t = tau_r * R_{t-1} + U_th * s_{t-1}      # refractory pulse
    s_t = [v_t - R_t - v_th >= 0]               # fires at equality
    u_t = v_t - v_th * s_t                      # soft reset

Integer semantics (the specification the hardware mirrors bit for bit):

* ``I``, ``v``/``u``, ``R``, ``v_th`` and ``U_th`` share one number of fractional bits ``F``
  (their integer bits may differ), so additions need no alignment.
* ``tau`` and ``tau_r`` are unsigned ``uQ0.C`` coefficients; each product ``coef * state`` is
  formed at full width and rounded once, half up, back to ``F`` fractional bits (D1).
* ``v`` is saturated to ``state_fmt`` after the charge, ``R`` to ``refr_fmt``, and ``u`` to
  ``state_fmt`` after the reset (D2). The spike comparison ``v - R - v_th >= 0`` is exact
  (full width, no saturation). An update "saturates" when any of the three clamps acted;
  the hardware counts such updates.
* Zero initial state (D3): ``u = R = 0`` and no previous spike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .fixed import QFormat, mul_round

__all__ = ["RefractoryLIFParams", "RefractoryLIFState", "RefractoryLIFTrace", "run_int"]

DEFAULT_TAU = 0.1
DEFAULT_TAU_R = 0.9
DEFAULT_V_TH = 1.0
DEFAULT_U_TH = 0.5


@dataclass
class RefractoryLIFParams:
    """Integer parameters of one refractory LIF layer; builds both the golden model and the core.

    Parameters
    ----------
    v_th_q : np.ndarray of int64, shape (n_neurons,)
        Firing threshold per channel, stored in ``threshold_fmt``.
    u_th_q : np.ndarray of int64, shape (n_neurons,)
        Refractory magnitude per channel, stored in ``threshold_fmt``.
    tau_q, tau_r_q : int
        Membrane and refractory decays, stored in ``coef_fmt`` (unsigned, < 1).
    input_fmt : QFormat
        Input current ``I`` (default ``sQ8.16``).
    state_fmt : QFormat
        Membrane ``v`` and ``u`` (default ``sQ8.16``: |u| <= 1.11 |I|max, NEURON_MATH §2.6).
    refr_fmt : QFormat
        Refractory pulse ``R`` (default ``sQ8.16``: R <= 10 U_th for tau_r = 0.9).
    threshold_fmt : QFormat
        ``v_th`` and ``U_th`` (default ``sQ8.16``).
    coef_fmt : QFormat
        Decays (default ``uQ0.18``, one multiplier port).
    """

    v_th_q: np.ndarray
    u_th_q: np.ndarray
    tau_q: int
    tau_r_q: int
    input_fmt: QFormat = field(default_factory=lambda: QFormat(8, 16))
    state_fmt: QFormat = field(default_factory=lambda: QFormat(8, 16))
    refr_fmt: QFormat = field(default_factory=lambda: QFormat(8, 16))
    threshold_fmt: QFormat = field(default_factory=lambda: QFormat(8, 16))
    coef_fmt: QFormat = field(default_factory=lambda: QFormat(0, 18, signed=False))

    def __post_init__(self):
        self.v_th_q = np.asarray(self.v_th_q, dtype=np.int64).reshape(-1)
        self.u_th_q = np.asarray(self.u_th_q, dtype=np.int64).reshape(-1)
        if self.v_th_q.shape != self.u_th_q.shape:
            raise ValueError(
                f"v_th_q and u_th_q need one entry per neuron; got {self.v_th_q.shape[0]} and {self.u_th_q.shape[0]}"
            )
        if self.n_neurons < 1:
            raise ValueError("a refractory LIF layer needs at least one neuron")
        frac = {str(f): f.frac_bits for f in (self.input_fmt, self.state_fmt, self.refr_fmt, self.threshold_fmt)}
        if len(set(frac.values())) != 1:
            raise ValueError(
                "input_fmt, state_fmt, refr_fmt and threshold_fmt must share one number of fractional bits; "
                f"got {', '.join(frac)}"
            )
        if self.coef_fmt.signed:
            raise ValueError(f"coef_fmt must be unsigned (decays lie in [0, 1)); got {self.coef_fmt}")
        for name in ("tau_q", "tau_r_q"):
            value = int(getattr(self, name))
            setattr(self, name, value)
            if not 0 <= value < (1 << self.coef_fmt.frac_bits):
                raise ValueError(f"{name}={value} is outside [0, 1) in {self.coef_fmt}: the decay must be < 1")
        for name in ("v_th_q", "u_th_q"):
            if not self.threshold_fmt.contains(getattr(self, name)):
                raise ValueError(f"{name} has values outside {self.threshold_fmt}")

    @classmethod
    def from_float(
        cls,
        v_th,
        u_th,
        tau: float = DEFAULT_TAU,
        tau_r: float = DEFAULT_TAU_R,
        **formats: QFormat,
    ) -> "RefractoryLIFParams":
        """Quantise float parameters (round half up, D1). ``v_th``/``u_th`` are per-channel arrays."""
        probe = cls(v_th_q=np.zeros(1), u_th_q=np.zeros(1), tau_q=0, tau_r_q=0, **formats)
        return cls(
            v_th_q=probe.threshold_fmt.quantize(np.asarray(v_th, dtype=np.float64)),
            u_th_q=probe.threshold_fmt.quantize(np.asarray(u_th, dtype=np.float64)),
            tau_q=probe.coef_fmt.quantize(float(tau)),
            tau_r_q=probe.coef_fmt.quantize(float(tau_r)),
            **formats,
        )

    @property
    def n_neurons(self) -> int:
        return int(self.v_th_q.shape[0])

    @property
    def frac_bits(self) -> int:
        """Fractional bits shared by I, v, u, R, v_th and U_th."""
        return self.state_fmt.frac_bits

    @property
    def tau(self) -> float:
        """The decay the integer model actually applies (``tau_q * 2**-C``)."""
        return self.coef_fmt.to_float(self.tau_q)

    @property
    def tau_r(self) -> float:
        return self.coef_fmt.to_float(self.tau_r_q)

    # --- integer golden step --------------------------------------------------------------
    def step(self, state: "RefractoryLIFState", current_q: torch.Tensor):
        """One time step for all neurons (vectorised over any leading batch dims).

        ``current_q`` is int64 with last dimension ``n_neurons`` in ``input_fmt``.
        Returns ``(new_state, v, saturated)``; ``new_state.s`` holds the spikes.
        """
        if not self.input_fmt.contains(current_q):
            raise ValueError(f"input current outside {self.input_fmt}")
        v_th = torch.as_tensor(self.v_th_q)
        u_th = torch.as_tensor(self.u_th_q)
        c = self.coef_fmt.frac_bits
        v, sat_v = self.state_fmt.saturate(mul_round(state.u, self.tau_q, c) + current_q)
        refr, sat_r = self.refr_fmt.saturate(mul_round(state.refr, self.tau_r_q, c) + torch.where(state.s, u_th, 0))
        s = (v - refr - v_th) >= 0
        u, sat_u = self.state_fmt.saturate(v - torch.where(s, v_th, 0))
        return RefractoryLIFState(u=u, refr=refr, s=s), v, sat_v | sat_r | sat_u

    def initial_state(self, batch_shape=()) -> "RefractoryLIFState":
        """Zero state (D3)."""
        shape = (*batch_shape, self.n_neurons)
        zeros = torch.zeros(shape, dtype=torch.int64)
        return RefractoryLIFState(u=zeros, refr=zeros.clone(), s=torch.zeros(shape, dtype=torch.bool))


@dataclass
class RefractoryLIFState:
    """Integer state between steps: ``u`` (state_fmt), ``refr`` = R (refr_fmt), ``s`` (bool)."""

    u: torch.Tensor
    refr: torch.Tensor
    s: torch.Tensor


@dataclass
class RefractoryLIFTrace:
    """Every state at every step, shape ``(..., T, n_neurons)``, as the hardware emits them."""

    v: torch.Tensor
    refr: torch.Tensor
    u: torch.Tensor
    s: torch.Tensor
    saturated: torch.Tensor

    @property
    def saturation_count(self) -> int:
        """Number of neuron updates in which any clamp acted (what the core's counter counts)."""
        return int(self.saturated.sum())


def run_int(params: RefractoryLIFParams, currents_q: torch.Tensor) -> RefractoryLIFTrace:
    """Sequential bit-exact integer model over time.

    ``currents_q``: int64, shape ``(..., T, n_neurons)`` in ``params.input_fmt``.
    Returns the trace of every state at every step.
    """
    currents_q = torch.as_tensor(currents_q, dtype=torch.int64)
    if currents_q.shape[-1] != params.n_neurons:
        raise ValueError(f"currents have {currents_q.shape[-1]} channels, params have {params.n_neurons}")
    state = params.initial_state(currents_q.shape[:-2])
    vs, rs, us, ss, sats = [], [], [], [], []
    for t in range(currents_q.shape[-2]):
        state, v, sat = params.step(state, currents_q[..., t, :])
        vs.append(v)
        rs.append(state.refr)
        us.append(state.u)
        ss.append(state.s)
        sats.append(sat)
    stack = lambda xs: torch.stack(xs, dim=-2)  # noqa: E731
    return RefractoryLIFTrace(v=stack(vs), refr=stack(rs), u=stack(us), s=stack(ss), saturated=stack(sats))
