"""SA-HiPPO, the spike-aware HiPPO state of FLAMES (NEURON_MATH §3.2, docs/decisions.md).

Four layers of the same model, from the paper's general form to the integers the hardware
computes. ``docs/sahippo.md`` explains every choice and measures what each step loses.

1. **Dense reference (float64).** The paper's ``A_S(dt) = A o F(dt)``,
   ``F_ij = exp(-alpha_ij dt)`` with a general ``alpha`` (scalar, (N,) rows or (N, N)), and
   two transitions: the second-order Taylor step of its Eq. 5,
   ``I + M + M^2/2`` with ``M = A_S(dt) dt``, and the exact ``expm(M)``
   (:func:`dense_transition`, :func:`run_dense`).
2. **Structured (float).** One ``alpha`` per channel, so ``A_S(dt) dt = A g(dt)`` with
   ``g(dt) = tau exp(-alpha tau)``, ``tau = dt * dt_scale`` (:func:`warped_step`). The state is
   ``N/2`` complex modes in the eigenbasis of the normal part of LegS with the rank-1
   correction ``P`` (Q = P, decision 'Eigenbasis and two discretisations', :mod:`golden.hippo`). Two discretisations
   (:func:`structured_step`):

   * ``taylor2``: ``z += h Mz + h/2 M(h Mz)`` with ``Mz = Lambda z - P_t 2Re(P_t^H z)``, two
     structured products per sub-step. The step is split into
     ``K = ceil(g / (step_fraction * h_max(N)))`` equal sub-steps (:func:`taylor2_substeps`).
     The stable region is the 2-norm one: ``A`` is dissipative (``A + A^T = -I - 2PP^T``),
     so the exact flow never grows a state, and ``h_max(N)`` (:func:`contractive_step`) is
     the largest step for which ``||I + hA + h^2 A^2 / 2||_2 <= 1``. The spectral condition
     ``h N <= 2`` is not enough: LegS is so non-normal that spectrally stable Taylor steps
     amplify states by many orders of magnitude (``docs/sahippo.md``, question 2).
   * ``zoh``: ``z *= exp(Lambda g)``, exact for the diagonal part; the rank-1 term is dropped.

3. **Event-driven layer (torch, differentiable)**, :class:`SAHiPPOLayer`: ``H`` independent
   channels, each updated only when it receives an event, with ``dt`` = ticks since its
   previous update (0 before its first). At an event of weight ``w`` (decision 'Event input')::

       z_h <- step(z_h, g_h(dt));  z_h <- z_h + B_t w
       y    = 2 Re(C_t[h] . z_h) + D[h] w;   spike = [y > threshold[h]]

   On a regular grid (an event on every channel at every tick) the layer is linear time
   invariant and runs as an FFT convolution (:meth:`SAHiPPOLayer.forward_grid`) for training.
4. **Integer model (bit-exact specification of the core)**, :class:`SAHiPPOParams` and
   :func:`run_int`. Tables indexed by ``(channel, clipped tick interval)`` hold ``g``, the
   Taylor sub-step count and sub-step, or the ``N/2`` quantised complex decays
   ``exp(Lambda g)``; see :class:`SAHiPPOParams` for formats and the exact operation order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from functools import lru_cache

import numpy as np
import scipy.linalg
import torch
from torch import nn

from .fixed import QFormat, round_shift
from .kinds import LayerRules, ModelFields, NeuronKind
from .hippo import NPLR, legs_matrices, nplr

__all__ = [
    "NEURON_KIND",
    "DISCRETISATIONS",
    "DEFAULT_DECAY_DIGIT_BITS",
    "DEFAULT_STEP_FRACTION",
    "contractive_step",
    "warped_step",
    "spike_aware_matrix",
    "dense_transition",
    "run_dense",
    "taylor2_substeps",
    "structured_step",
    "run_structured",
    "SAHiPPOLayer",
    "SAHiPPOParams",
    "SAHiPPOTrace",
    "run_int",
    "compare_traces",
    "quantize_complex_decay",
    "SAHiPPOLayerTrace",
]

DISCRETISATIONS = ("taylor2", "zoh")
DEFAULT_STEP_FRACTION = 1.0
#: Bits of one digit of ``g_q`` in the zoh decay composition (decision 'Composed decay tables').
DEFAULT_DECAY_DIGIT_BITS = 8


def _check_method(method: str) -> None:
    if method not in DISCRETISATIONS:
        raise ValueError(f"unknown SA-HiPPO discretisation {method!r}: use one of {DISCRETISATIONS}")


def warped_step(dt, alpha, dt_scale=1.0):
    """``g(dt) = tau exp(-alpha tau)`` with ``tau = dt * dt_scale`` (decision 'One decay rate per channel').

    ``A_S(dt) dt = A g(dt)`` when ``alpha`` is one scalar per channel. ``g`` peaks at
    ``tau = 1/alpha`` with value ``1/(e alpha)``; ``alpha = 0`` gives the plain fixed-step
    HiPPO, ``g = tau``. Works on floats, numpy arrays and torch tensors.
    """
    tau = dt * dt_scale
    if isinstance(tau, torch.Tensor):
        return tau * torch.exp(-alpha * tau)
    return tau * np.exp(-np.asarray(alpha) * tau)


# --- 1. dense reference ----------------------------------------------------------------------
def spike_aware_matrix(a: np.ndarray, alpha, dt: float) -> np.ndarray:
    """``A_S(dt) = A o exp(-alpha dt)``; ``alpha`` is a scalar, an (N,) row vector or (N, N)."""
    alpha = np.asarray(alpha, dtype=np.float64)
    if alpha.ndim == 1:
        alpha = alpha[:, None]
    if alpha.ndim > 2 or (alpha.ndim == 2 and alpha.shape[0] not in (1, a.shape[0])):
        raise ValueError(f"alpha must be a scalar, (N,) or (N, N) with N = {a.shape[0]}; got shape {alpha.shape}")
    if np.any(alpha < 0):
        raise ValueError("alpha must be >= 0 (a negative alpha makes F grow with the interval)")
    return a * np.exp(-alpha * dt)


def dense_transition(a: np.ndarray, alpha, dt: float, method: str = "expm") -> np.ndarray:
    """Dense transition over one interval: ``expm(M)`` or Eq. 5's ``I + M + M^2/2``, ``M = A_S(dt) dt``."""
    m = spike_aware_matrix(a, alpha, dt) * dt
    if method == "expm":
        return scipy.linalg.expm(m)
    if method == "taylor2":
        return np.eye(a.shape[0]) + m + 0.5 * (m @ m)
    raise ValueError(f"unknown dense transition {method!r}: use 'expm' or 'taylor2'")


def run_dense(n_state: int, alpha, intervals, weights, method: str = "expm", dt_scale: float = 1.0) -> np.ndarray:
    """Dense SA-HiPPO over one event stream: ``x <- T(dt) x + B w`` per event.

    ``intervals`` are the (possibly non-integer) gaps before each event in ticks,
    ``weights`` the event weights. Returns the states after each event, (K, N).
    """
    a, b, _ = legs_matrices(n_state)
    x = np.zeros(n_state)
    out = []
    cache: dict[float, np.ndarray] = {}
    for dt, w in zip(np.asarray(intervals, dtype=np.float64), np.asarray(weights, dtype=np.float64)):
        if dt not in cache:
            cache[dt] = dense_transition(a, alpha, dt * dt_scale, method)
        x = cache[dt] @ x + b * w
        out.append(x)
    return np.array(out).reshape(-1, n_state)


# --- 2. structured -------------------------------------------------------------------------
@lru_cache(maxsize=None)
def contractive_step(n_state: int) -> float:
    """``h_max(N)``: the largest ``h`` with ``||I + hA + h^2 A^2/2||_2 <= 1`` on ``(0, h]``.

    Found by a geometric scan of ``h ||A||_2`` over ``[1e-3, 4]`` and bisection on the first
    non-contractive interval (float64, relative precision 1e-9). About ``0.49 / ||A||_2`` at
    ``N = 64`` and ``1.8 / ||A||_2`` at ``N = 8``.
    """
    a, _, _ = legs_matrices(n_state)
    eye = np.eye(n_state)
    a2 = a @ a
    norm_a = np.linalg.norm(a, 2)

    def contractive(h: float) -> bool:
        return np.linalg.norm(eye + h * a + 0.5 * h * h * a2, 2) <= 1.0 + 1e-12

    grid = np.geomspace(1e-3, 4.0, 400) / norm_a
    bad = [i for i, h in enumerate(grid) if not contractive(h)]
    if not bad or bad[0] == 0:
        raise ValueError(f"cannot bracket the contractive Taylor-2 step of LegS order {n_state}")
    lo, hi = grid[bad[0] - 1], grid[bad[0]]
    while hi - lo > 1e-9 * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if contractive(mid) else (lo, mid)
    return float(lo)


def taylor2_substeps(g, n_state: int, step_fraction: float = DEFAULT_STEP_FRACTION):
    """Sub-step count ``K = ceil(g / (step_fraction * h_max(N)))`` (0 where ``g == 0``), int64 numpy.

    ``step_fraction`` in ``(0, 1]``; 1 takes the largest contractive step
    (:func:`contractive_step`), smaller values buy accuracy with more sub-steps.
    """
    if not 0 < step_fraction <= 1:
        raise ValueError(f"step_fraction must lie in (0, 1] (1 = the largest contractive step), not {step_fraction}")
    g = np.asarray(g.detach() if isinstance(g, torch.Tensor) else g, dtype=np.float64)
    if np.any(g < 0) or not np.all(np.isfinite(g)):
        raise ValueError("warped steps g must be finite and >= 0")
    h = step_fraction * contractive_step(n_state)
    return np.ceil(g / h - 1e-9).astype(np.int64).clip(min=0)


def _generator(z, lam, p_t):
    """``M z = Lambda z - P_t 2Re(P_t^H z)`` over the last axis (numpy or torch)."""
    rank1 = 2.0 * (p_t.conj() * z).sum(-1).real
    return lam * z - p_t * rank1[..., None]


def structured_step(
    z,
    g,
    method: str,
    system: NPLR,
    step_fraction: float | None = DEFAULT_STEP_FRACTION,
):
    """Advance modes ``z`` (..., N/2) over warped steps ``g`` (broadcast to z's batch shape).

    ``method='taylor2'`` sub-steps per :func:`taylor2_substeps`; ``step_fraction=None``
    applies one plain Taylor-2 step however large (to measure its divergence). ``'zoh'``
    multiplies by ``exp(Lambda g)``. Works on numpy arrays and torch tensors (differentiable
    in ``z`` and ``g``).
    """
    _check_method(method)
    is_torch = isinstance(z, torch.Tensor)
    xp = torch if is_torch else np
    lam = torch.tensor(system.lam, dtype=z.dtype) if is_torch else system.lam
    p_t = torch.tensor(system.p_t, dtype=z.dtype) if is_torch else system.p_t
    if not is_torch:
        g = np.asarray(g, dtype=np.float64)
    if method == "zoh":
        return z * xp.exp(lam * g[..., None])
    if step_fraction is None:
        counts = (np.asarray(g.detach() if is_torch else g) > 0).astype(np.int64)
    else:
        counts = taylor2_substeps(g, system.n_state, step_fraction)
    counts = np.array(np.broadcast_to(counts, z.shape[:-1]))
    k_max = int(counts.max()) if counts.size else 0
    if k_max == 0:
        return z
    if is_torch:
        h = g / torch.as_tensor(counts).clamp(min=1)
    else:
        h = g / np.maximum(counts, 1)
    h = h[..., None]
    k_min = int(counts.min())
    for i in range(k_max):
        u1 = h * _generator(z, lam, p_t)
        new = z + u1 + 0.5 * h * _generator(u1, lam, p_t)
        if i < k_min:
            z = new
        else:
            active = (i < counts)[..., None]
            z = torch.where(torch.as_tensor(active), new, z) if is_torch else np.where(active, new, z)
    return z


def run_structured(
    n_state: int,
    alpha: float,
    intervals,
    weights,
    method: str = "taylor2",
    dt_scale: float = 1.0,
    step_fraction: float | None = DEFAULT_STEP_FRACTION,
) -> np.ndarray:
    """Structured SA-HiPPO over one event stream; returns modes after each event, (K, N/2)."""
    system = nplr(n_state)
    z = np.zeros(system.n_modes, dtype=np.complex128)
    out = []
    for dt, w in zip(np.asarray(intervals, dtype=np.float64), np.asarray(weights, dtype=np.float64)):
        z = structured_step(z, warped_step(dt, alpha, dt_scale), method, system, step_fraction) + system.b_t * w
        out.append(z)
    return np.array(out).reshape(-1, system.n_modes)


# --- 3. event-driven layer -------------------------------------------------------------------
class SAHiPPOLayer(nn.Module):
    """``H`` SA-HiPPO channels of order ``N`` (float64, differentiable), event-driven or on a grid.

    Parameters
    ----------
    n_channels : int
        ``H``; each channel has its own state, ``alpha``, ``dt_scale``, ``C``, ``D`` and threshold.
    n_state : int
        ``N`` (even); the state is ``N/2`` complex modes.
    method : str
        ``'taylor2'`` (rank-1 kept, sub-stepped) or ``'zoh'`` (diagonal only); see
        decision 'Eigenbasis and two discretisations'.
    alpha, dt_scale : float or sequence
        Initial decay rate and time units per tick, per channel (both learnt in log form).
    step_fraction : float
        Taylor-2 sub-step bound, see :func:`taylor2_substeps`.
    threshold : float
        Soma threshold: an event spikes when ``y > threshold`` (strict).
    """

    def __init__(
        self,
        n_channels: int,
        n_state: int,
        method: str = "taylor2",
        alpha=1.0,
        dt_scale=1.0,
        step_fraction: float = DEFAULT_STEP_FRACTION,
        threshold: float = 1.0,
        seed: int = 0,
    ):
        _check_method(method)
        if n_channels < 1:
            raise ValueError(f"n_channels must be >= 1, not {n_channels}")
        system = nplr(n_state)  # validates n_state
        alpha_arr = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (n_channels,))
        scale_arr = np.broadcast_to(np.asarray(dt_scale, dtype=np.float64), (n_channels,))
        if np.any(alpha_arr <= 0) or np.any(scale_arr <= 0):
            raise ValueError("alpha and dt_scale must be > 0 (alpha = 0 is the plain HiPPO: use a tiny alpha)")
        super().__init__()
        self.system = system
        self.method = method
        self.step_fraction = step_fraction
        gen = torch.Generator().manual_seed(seed)
        self.log_alpha = nn.Parameter(torch.log(torch.tensor(alpha_arr.copy())))
        self.log_dt_scale = nn.Parameter(torch.log(torch.tensor(scale_arr.copy())))
        self.c = nn.Parameter(torch.randn(n_channels, n_state, generator=gen, dtype=torch.float64) / math.sqrt(n_state))
        self.d = nn.Parameter(torch.randn(n_channels, generator=gen, dtype=torch.float64))
        self.register_buffer("threshold", torch.full((n_channels,), float(threshold), dtype=torch.float64))
        self.register_buffer("lam", torch.tensor(system.lam))
        self.register_buffer("p_t", torch.tensor(system.p_t))
        self.register_buffer("b_t", torch.tensor(system.b_t))
        self.register_buffer("v_half", torch.tensor(system.v_half))

    @property
    def n_channels(self) -> int:
        return int(self.d.shape[0])

    @property
    def n_state(self) -> int:
        return self.system.n_state

    @property
    def alpha(self) -> torch.Tensor:
        return torch.exp(self.log_alpha)

    @property
    def dt_scale(self) -> torch.Tensor:
        return torch.exp(self.log_dt_scale)

    @property
    def c_t(self) -> torch.Tensor:
        """``C V_half`` (H, N/2) complex, so ``C x = 2 Re(c_t . z)``."""
        return self.c.to(torch.complex128) @ self.v_half

    def g(self, dt: torch.Tensor, channel: torch.Tensor) -> torch.Tensor:
        """Warped step of ``channel`` for tick interval ``dt`` (same shapes)."""
        return warped_step(dt.to(torch.float64), self.alpha[channel], self.dt_scale[channel])

    def forward_events(self, ticks, channels, weights):
        """Event-driven recurrence over streams of shape (..., K), sorted by tick per stream.

        Returns ``(y, spikes, z)``: outputs and spikes per event (..., K) and the final modes
        (..., H, N/2). Zero initial state and last update time 0.
        """
        ticks = torch.as_tensor(ticks, dtype=torch.int64)
        channels = torch.as_tensor(channels, dtype=torch.int64)
        weights = torch.as_tensor(weights, dtype=torch.float64)
        if not (ticks.shape == channels.shape == weights.shape):
            raise ValueError(f"ticks, channels and weights need one shape; got {ticks.shape}, {channels.shape}, {weights.shape}")
        if channels.numel() and (channels.min() < 0 or channels.max() >= self.n_channels):
            raise ValueError(f"event channel out of range 0..{self.n_channels - 1}")
        if ticks.numel() and (ticks.min() < 0 or torch.any(ticks[..., 1:] < ticks[..., :-1])):
            raise ValueError("event ticks must be >= 0 and non-decreasing within each stream")
        batch = ticks.shape[:-1]
        flat_t, flat_c, flat_w = (x.reshape(-1, x.shape[-1]) for x in (ticks, channels, weights))
        n_batch = flat_t.shape[0]
        rows = torch.arange(n_batch)
        z = torch.zeros(n_batch, self.n_channels, self.system.n_modes, dtype=torch.complex128)
        t_last = torch.zeros(n_batch, self.n_channels, dtype=torch.int64)
        c_t = self.c_t
        ys = []
        for k in range(flat_t.shape[-1]):
            ch, t, w = flat_c[:, k], flat_t[:, k], flat_w[:, k]
            dt = t - t_last[rows, ch]
            zk = structured_step(z[rows, ch], self.g(dt, ch), self.method, self.system, self.step_fraction)
            zk = zk + self.b_t * w[:, None].to(torch.complex128)
            z = z.index_put((rows, ch), zk)
            t_last = t_last.index_put((rows, ch), t)
            ys.append(2.0 * (c_t[ch] * zk).sum(-1).real + self.d[ch] * w)
        y = torch.stack(ys, -1) if ys else torch.zeros(n_batch, 0, dtype=torch.float64)
        y = y.reshape(*batch, -1)
        spikes = y > self.threshold[channels]
        return y, spikes, z.reshape(*batch, self.n_channels, self.system.n_modes)

    def kernel(self, length: int) -> torch.Tensor:
        """Impulse response on a one-tick grid, (H, L): ``K_l = 2 Re(C_t Abar^l B_t)``, ``K_0`` without D."""
        if length < 1:
            raise ValueError(f"kernel length must be >= 1, not {length}")
        g = self.g(torch.ones(self.n_channels, dtype=torch.int64), torch.arange(self.n_channels))
        c_t = self.c_t
        if self.method == "zoh":
            powers = torch.exp(self.lam[None, :, None] * g[:, None, None] * torch.arange(length, dtype=torch.float64))
            return 2.0 * torch.einsum("hn,hnl->hl", c_t * self.b_t, powers).real
        z = self.b_t.expand(self.n_channels, -1)
        out = []
        for _ in range(length):
            out.append(2.0 * (c_t * z).sum(-1).real)
            z = structured_step(z, g, self.method, self.system, self.step_fraction)
        return torch.stack(out, -1)

    def forward_grid(self, u: torch.Tensor) -> torch.Tensor:
        """Training path: ``u`` (B, H, L), an event of weight ``u[:, h, l]`` on every channel at
        every tick ``l + 1``. Returns ``y`` (B, H, L) by FFT convolution, equal to
        :meth:`forward_events` on the same grid."""
        if u.ndim != 3 or u.shape[1] != self.n_channels:
            raise ValueError(f"grid input must be (batch, {self.n_channels}, length), got {tuple(u.shape)}")
        u = u.to(torch.float64)
        length = u.shape[-1]
        k = self.kernel(length)
        n_fft = 2 * length
        y = torch.fft.irfft(torch.fft.rfft(u, n_fft) * torch.fft.rfft(k, n_fft), n_fft)[..., :length]
        return y + self.d[:, None] * u


# --- 4. integer model ------------------------------------------------------------------------
def _q(text: str) -> QFormat:
    return QFormat.parse(text)


def quantize_complex_decay(decay: np.ndarray, fmt: QFormat) -> np.ndarray:
    """Complex decays (...) to (..., 2) ints in ``fmt`` with ``|d_q| < 1`` strictly (decision 'Declared formats').

    Each component rounds half up; while the quantised magnitude is >= 1, the larger
    component steps one LSB toward zero.
    """
    one = 1 << fmt.frac_bits
    q = np.stack([fmt.quantize(np.real(decay)), fmt.quantize(np.imag(decay))], -1).astype(np.int64)
    while True:
        bad = (q[..., 0] ** 2 + q[..., 1] ** 2) >= one * one
        if not bad.any():
            return q
        larger = np.abs(q[..., 0]) >= np.abs(q[..., 1])
        for comp, mask in ((0, bad & larger), (1, bad & ~larger)):
            q[..., comp] -= np.sign(q[..., comp]) * mask


@dataclass
class SAHiPPOParams:
    """Integer SA-HiPPO layer: the bit-exact specification of the event-driven core.

    Per event ``(tick t, channel h, weight w_q)``, in this order:

    1. ``dt = min(t - t_last[h], dt_max)``; ``t_last[h] = t`` (both start at 0).
    2. Decay, by table lookup at ``[h, dt]``:

       * ``taylor2``: ``K = substeps[h, dt]`` sub-steps of ``h_q = g_sub_q[h, dt]``
         (``g_sub_fmt``), each (all sums at full width, one rounding per component, decision 'Complex products')::

             r0 = rnd(sum_n Pre*zre + Pim*zim, Fc - 1)          # 2 Re(P^H z), work_fmt
             m1 = rnd(Lam*z - P*r0, Fc)  per component            # M z, work_fmt
             u1 = rnd(h_q * m1, Fg)                               # h M z, work_fmt
             r1 = rnd(sum_n Pre*u1re + Pim*u1im, Fc - 1)          # work_fmt
             m2 = rnd(Lam*u1 - P*r1, Fc)                          # work_fmt
             t2 = rnd(h_q * m2, Fg + 1)                           # h/2 M u1, work_fmt
             z  = sat(z + u1 + t2)                                # state_fmt

         ``rnd(x, n)`` is :func:`golden.fixed.round_shift`; every ``work_fmt`` value is
         saturated (and counted) too. ``K = 0`` (``g_q = 0``) leaves ``z`` unchanged.
       * ``zoh``: ``z = sat(rnd(d * z, Fd))`` (complex, four products), skipped when
         ``g_q[h, dt] = 0`` (the identity is not representable with ``|d| < 1``). The decay
         ``d = exp(Lambda g_q)`` is composed from digit tables shared by every channel
         (decision 'Composed decay tables'): with ``b = decay_digit_bits``, the digits
         ``g_k = (g_q >> k b) mod 2^b`` of the table's ``g_q``, and ``D_k[v] =
         decay_q[k, v] = exp(Lambda v 2^(k b) 2^-Fg)``::

             d = D_k0[g_k0]                                   # k0 the lowest non-zero digit
             d = rnd(d * D_k[g_k], Fd)  for each later k with g_k != 0, in increasing k

         (complex, four products, one rounding per component); a zero digit contributes no
         product (its factor, the identity, has no entry).
    3. Input jump: ``z = sat(z + rnd(B_t * w_q, Fc + Fin - Fs))`` (decision 'Event input').
    4. Output: ``y = sat(rnd(2 sum_n (Cre zre - Cim zim) + (D w_q << (Fs - Fin)), Foc + Fs - Fout))``
       in ``out_fmt``; ``spike = y > threshold_q[h]`` (strict).

    An event "saturates" when any clamp in it acted; the core counts such events.

    Parameters
    ----------
    method : str
        ``'taylor2'`` or ``'zoh'``.
    lam_q, p_q, b_q : np.ndarray (N/2, 2)
        ``Lambda``, ``P_t``, ``B_t`` as (re, im) in ``coef_fmt`` (shared by every channel).
    c_q : np.ndarray (H, N/2, 2)
        ``C_t`` per channel in ``out_coef_fmt``.
    d_q : np.ndarray (H,)
        ``D`` in ``out_coef_fmt``.
    threshold_q : np.ndarray (H,)
        Soma threshold in ``out_fmt``.
    g_q : np.ndarray (H, dt_max + 1)
        ``g(dt)`` per channel in ``g_fmt``; column ``dt_max`` serves every longer interval.
    substeps, g_sub_q : np.ndarray (H, dt_max + 1)
        Taylor-2 sub-step count and sub-step (``g_sub_fmt``).
    decay_q : np.ndarray (n_digits, 2^b, N/2, 2)
        ``exp(Lambda v 2^(k b) 2^-Fg)`` per digit position ``k``, digit value ``v`` and mode, in
        ``decay_fmt`` with ``|d| < 1``; row ``v = 0`` is never read (zeros). ``b`` is
        :attr:`decay_digit_bits`, ``n_digits b >= g_fmt.width``.
    input_fmt, state_fmt, work_fmt, coef_fmt, g_fmt, g_sub_fmt, decay_fmt, out_coef_fmt, out_fmt : QFormat
        Defaults ``sQ4.12``, ``sQ10.14``, ``sQ20.14``, ``sQ12.12``, ``uQ4.20``, ``uQ0.24``,
        ``sQ1.17``, ``sQ4.14``, ``sQ10.14``.
    """

    method: str
    lam_q: np.ndarray
    p_q: np.ndarray
    b_q: np.ndarray
    c_q: np.ndarray
    d_q: np.ndarray
    threshold_q: np.ndarray
    g_q: np.ndarray
    substeps: np.ndarray
    g_sub_q: np.ndarray
    decay_q: np.ndarray
    input_fmt: QFormat = field(default_factory=lambda: _q("sQ4.12"))
    state_fmt: QFormat = field(default_factory=lambda: _q("sQ10.14"))
    work_fmt: QFormat = field(default_factory=lambda: _q("sQ20.14"))
    coef_fmt: QFormat = field(default_factory=lambda: _q("sQ12.12"))
    g_fmt: QFormat = field(default_factory=lambda: _q("uQ4.20"))
    g_sub_fmt: QFormat = field(default_factory=lambda: _q("uQ0.24"))
    decay_fmt: QFormat = field(default_factory=lambda: _q("sQ1.17"))
    out_coef_fmt: QFormat = field(default_factory=lambda: _q("sQ4.14"))
    out_fmt: QFormat = field(default_factory=lambda: _q("sQ10.14"))

    def __post_init__(self):
        _check_method(self.method)
        for f in fields(self):
            if f.name.endswith("_q") or f.name == "substeps":
                setattr(self, f.name, np.asarray(getattr(self, f.name), dtype=np.int64))
        m = self.lam_q.shape[0]
        h = self.d_q.shape[0]
        expected = {
            "lam_q": (m, 2),
            "p_q": (m, 2),
            "b_q": (m, 2),
            "c_q": (h, m, 2),
            "d_q": (h,),
            "threshold_q": (h,),
            "g_q": (h, self.dt_max + 1),
            "substeps": (h, self.dt_max + 1),
            "g_sub_q": (h, self.dt_max + 1),
        }
        if self.decay_q.ndim != 4 or self.decay_q.shape[2:] != (m, 2):
            raise ValueError(f"decay_q must have shape (digits, 2^bits, {m}, 2), got {self.decay_q.shape}")
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} must have shape {shape} (H={h}, N/2={m}), got {getattr(self, name).shape}")
        if self.dt_max < 1:
            raise ValueError("dt_max must be >= 1 tick")
        fs, fin = self.state_fmt.frac_bits, self.input_fmt.frac_bits
        if self.work_fmt.frac_bits != fs:
            raise ValueError(f"work_fmt must share state_fmt's fractional bits ({fs}); got {self.work_fmt}")
        if fs < fin:
            raise ValueError(f"state_fmt needs at least as many fractional bits as input_fmt ({fin}); got {self.state_fmt}")
        if self.g_fmt.signed or self.g_sub_fmt.signed:
            raise ValueError("g_fmt and g_sub_fmt must be unsigned")
        for name, fmt in (
            ("lam_q", self.coef_fmt),
            ("p_q", self.coef_fmt),
            ("b_q", self.coef_fmt),
            ("c_q", self.out_coef_fmt),
            ("d_q", self.out_coef_fmt),
            ("threshold_q", self.out_fmt),
            ("g_q", self.g_fmt),
            ("g_sub_q", self.g_sub_fmt),
            ("decay_q", self.decay_fmt),
        ):
            if not fmt.contains(getattr(self, name)):
                raise ValueError(f"{name} has values outside its format {fmt}")
        one = 1 << self.decay_fmt.frac_bits
        if np.any((self.decay_q[..., 0] ** 2 + self.decay_q[..., 1] ** 2) >= one * one):
            raise ValueError("every quantised decay must have |d| < 1 (decision 'Declared formats')")
        b = self.decay_digit_bits
        if self.decay_q.shape[1] != 1 << b or b < 1 or self.decay_digits * b < self.g_fmt.width:
            raise ValueError(
                f"decay_q must hold 2^b rows per digit and enough digits for g_fmt {self.g_fmt} "
                f"({self.g_fmt.width} bits); got shape {self.decay_q.shape}"
            )
        # A product of the running decay (|d| < 1) and a later digit's factor, rounded, must
        # stay inside the unit circle: every factor after the lowest digit keeps 4 LSB of margin.
        later = self.decay_q[1:, 1:]
        if np.any(later[..., 0] ** 2 + later[..., 1] ** 2 > (one - 4) ** 2):
            raise ValueError(
                f"decay_digit_bits {b} with g_fmt {self.g_fmt} and decay_fmt {self.decay_fmt}: a digit above the "
                "lowest decays by less than 4 LSB, so a composed decay could reach |d| >= 1; use fewer, wider digits"
            )
        if np.any(self.substeps < 0) or np.any((self.substeps == 0) != (self.g_q == 0)):
            raise ValueError("substeps must be >= 1 exactly where g_q > 0")
        # int64 headroom of the widest full-width sum (the rank-1 reductions over N/2 modes).
        widest = 2 * m * (1 << (self.coef_fmt.width - 1)) * (1 << (self.work_fmt.width - 1))
        if widest >= 1 << 63:
            raise ValueError(
                f"coef_fmt {self.coef_fmt} x work_fmt {self.work_fmt} over {m} modes can overflow 64-bit sums; "
                "narrow one of them"
            )

    @property
    def dt_max(self) -> int:
        """Largest tick interval with its own table column; longer intervals are clipped to it."""
        return int(self.g_q.shape[1] - 1) if self.g_q.ndim == 2 else 0

    @property
    def decay_digit_bits(self) -> int:
        """Bits ``b`` of one digit of ``g_q``: each digit table has ``2^b`` rows."""
        return int(self.decay_q.shape[1]).bit_length() - 1

    @property
    def decay_digits(self) -> int:
        """Digit tables composed per decay: ``ceil(g_fmt.width / b)``."""
        return int(self.decay_q.shape[0])

    def g_digits(self, g_q) -> np.ndarray:
        """The digits ``(..., decay_digits)`` of ``g_q`` (``(g_q >> k b) mod 2^b``)."""
        b = self.decay_digit_bits
        shifts = b * np.arange(self.decay_digits)
        return (np.asarray(g_q, dtype=np.int64)[..., None] >> shifts) & ((1 << b) - 1)

    @property
    def decay_rows(self) -> list[int]:
        """Rows of each digit table the layer's ``g_q`` reaches: one more than its largest digit
        (the rows a core stores; at least 1)."""
        return [int(v) + 1 for v in self.g_digits(self.g_q).reshape(-1, self.decay_digits).max(0)]

    @property
    def n_channels(self) -> int:
        return int(self.d_q.shape[0])

    @property
    def n_neurons(self) -> int:
        """``n_channels`` (the name the network's layers use)."""
        return self.n_channels

    @property
    def n_modes(self) -> int:
        return int(self.lam_q.shape[0])

    @property
    def n_state(self) -> int:
        return 2 * self.n_modes

    @property
    def max_substeps(self) -> int:
        """Worst-case Taylor-2 sub-steps per event (the core's worst-case decay latency in passes)."""
        return int(self.substeps.max())

    @property
    def table_bits(self) -> dict[str, int]:
        """Bits of each lookup table the core holds for its method, ``H x (dt_max + 1)`` rows each.

        ``zoh``: ``g`` (``H x (dt_max + 1)`` rows) and the digit tables of complex decays
        (:attr:`decay_rows` rows of ``N/2`` each, shared by every channel). ``taylor2``: ``g``,
        the sub-step and the count (``H x (dt_max + 1)`` rows each).
        """
        rows = self.n_channels * (self.dt_max + 1)
        bits = {"g": rows * self.g_fmt.width}
        if self.method == "zoh":
            bits["decay"] = sum(self.decay_rows) * self.n_modes * 2 * self.decay_fmt.width
        else:
            bits["g_sub"] = rows * self.g_sub_fmt.width
            bits["substeps"] = rows * max(1, self.max_substeps.bit_length())
        return bits

    @classmethod
    def from_float(
        cls,
        n_state: int,
        alpha,
        dt_scale,
        c,
        d,
        threshold,
        dt_max: int,
        method: str = "taylor2",
        step_fraction: float = DEFAULT_STEP_FRACTION,
        decay_digit_bits: int = DEFAULT_DECAY_DIGIT_BITS,
        **formats: QFormat,
    ) -> "SAHiPPOParams":
        """Quantise a float layer. ``alpha``, ``dt_scale``, ``d``, ``threshold``: (H,); ``c``: (H, N) dense real.

        ``g`` is quantised first; the sub-steps and the digit tables of decays are computed
        from the quantised ``g`` so both discretisations see the same warped step.
        ``decay_digit_bits`` is ``b`` of the zoh decay composition (default 8: three digit
        tables of 256 rows for the 24-bit ``g_fmt``).
        """
        _check_method(method)
        if int(dt_max) < 1:
            raise ValueError(f"dt_max must be >= 1 tick, not {dt_max}")
        if not isinstance(decay_digit_bits, (int, np.integer)) or not 1 <= decay_digit_bits <= 12:
            raise ValueError(f"decay_digit_bits must be an int in 1..12, not {decay_digit_bits!r}")
        system = nplr(n_state)
        d = np.atleast_1d(np.asarray(d, dtype=np.float64))
        h = d.shape[0]
        alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (h,))
        dt_scale = np.broadcast_to(np.asarray(dt_scale, dtype=np.float64), (h,))
        threshold = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (h,))
        c = np.asarray(c, dtype=np.float64).reshape(h, n_state)
        if np.any(alpha < 0) or np.any(dt_scale <= 0):
            raise ValueError("alpha must be >= 0 and dt_scale > 0")
        fmt = {f.name: f.default_factory() for f in fields(cls) if f.name.endswith("_fmt")}
        unknown = set(formats) - set(fmt)
        if unknown:
            raise ValueError(f"unknown format names {sorted(unknown)}; known: {sorted(fmt)}")
        fmt.update(formats)

        def cq(values, f):
            return np.stack([f.quantize(np.real(values)), f.quantize(np.imag(values))], -1)

        dts = np.arange(int(dt_max) + 1, dtype=np.float64)
        g_float = warped_step(dts[None, :], alpha[:, None], dt_scale[:, None])
        if np.any(g_float > fmt["g_fmt"].max_value):
            raise ValueError(f"g(dt) reaches {g_float.max():.4g}, beyond g_fmt {fmt['g_fmt']}: widen g_fmt or raise alpha")
        g_q = fmt["g_fmt"].quantize(g_float)
        g_real = fmt["g_fmt"].to_float(g_q)
        substeps = taylor2_substeps(g_real, n_state, step_fraction)
        g_sub_q = fmt["g_sub_fmt"].quantize(g_real / np.maximum(substeps, 1))
        digits = -(-fmt["g_fmt"].width // decay_digit_bits)
        steps = np.arange(1 << decay_digit_bits)[None, :] * 2.0 ** (
            decay_digit_bits * np.arange(digits)[:, None] - fmt["g_fmt"].frac_bits)
        decay_q = quantize_complex_decay(np.exp(system.lam[None, None, :] * steps[:, :, None]), fmt["decay_fmt"])
        decay_q[:, 0] = 0
        return cls(
            method=method,
            lam_q=cq(system.lam, fmt["coef_fmt"]),
            p_q=cq(system.p_t, fmt["coef_fmt"]),
            b_q=cq(system.b_t, fmt["coef_fmt"]),
            c_q=cq(c @ system.v_half, fmt["out_coef_fmt"]),
            d_q=fmt["out_coef_fmt"].quantize(d),
            threshold_q=fmt["out_fmt"].quantize(threshold),
            g_q=g_q,
            substeps=substeps,
            g_sub_q=g_sub_q,
            decay_q=decay_q,
            **fmt,
        )

    @classmethod
    def from_layer(cls, layer: SAHiPPOLayer, dt_max: int, decay_digit_bits: int = DEFAULT_DECAY_DIGIT_BITS,
                   **formats: QFormat) -> "SAHiPPOParams":
        """Quantise a trained :class:`SAHiPPOLayer` (its method and Taylor-2 step fraction)."""
        with torch.no_grad():
            return cls.from_float(
                layer.n_state,
                layer.alpha.numpy(),
                layer.dt_scale.numpy(),
                layer.c.numpy(),
                layer.d.numpy(),
                layer.threshold.numpy(),
                dt_max,
                method=layer.method,
                step_fraction=layer.step_fraction,
                decay_digit_bits=decay_digit_bits,
                **formats,
            )

    # --- integer arithmetic ----------------------------------------------------------------
    def _generator_q(self, z: np.ndarray, sat: list) -> tuple[np.ndarray, np.ndarray]:
        """``(r, M z)`` in work_fmt for modes ``z`` (N/2, 2)."""
        fc = self.coef_fmt.frac_bits
        lam, p = self.lam_q, self.p_q
        r, s0 = self.work_fmt.saturate(round_shift(int((p[:, 0] * z[:, 0] + p[:, 1] * z[:, 1]).sum()), fc - 1))
        re = lam[:, 0] * z[:, 0] - lam[:, 1] * z[:, 1] - p[:, 0] * r
        im = lam[:, 0] * z[:, 1] + lam[:, 1] * z[:, 0] - p[:, 1] * r
        m, s1 = self.work_fmt.saturate(round_shift(np.stack([re, im], -1), fc))
        sat.append(s0 or bool(s1.any()))
        return r, m

    def composed_decay(self, g_q: int) -> np.ndarray:
        """``exp(Lambda g_q)`` (N/2, 2) in ``decay_fmt``, composed from the digit tables (zoh,
        step 2 of the class docstring); ``g_q > 0``."""
        fd = self.decay_fmt.frac_bits
        d = None
        for k, v in enumerate(self.g_digits(g_q)):
            if v == 0:
                continue
            f = self.decay_q[k, v]
            if d is None:
                d = f
                continue
            re = d[:, 0] * f[:, 0] - d[:, 1] * f[:, 1]
            im = d[:, 0] * f[:, 1] + d[:, 1] * f[:, 0]
            d = round_shift(np.stack([re, im], -1), fd)
        if d is None:
            raise ValueError("composed_decay needs g_q > 0 (g_q = 0 skips the decay)")
        return d

    def decay(self, z: np.ndarray, channel: int, dt: int) -> tuple[np.ndarray, bool]:
        """Step 2 of the event for one channel's modes ``z`` (N/2, 2); returns ``(z, saturated)``."""
        sat: list = []
        if self.g_q[channel, dt] == 0:
            return z, False
        if self.method == "zoh":
            d = self.composed_decay(int(self.g_q[channel, dt]))
            re = d[:, 0] * z[:, 0] - d[:, 1] * z[:, 1]
            im = d[:, 0] * z[:, 1] + d[:, 1] * z[:, 0]
            z, s = self.state_fmt.saturate(round_shift(np.stack([re, im], -1), self.decay_fmt.frac_bits))
            return z, bool(s.any())
        fg = self.g_sub_fmt.frac_bits
        h_q = int(self.g_sub_q[channel, dt])
        for _ in range(int(self.substeps[channel, dt])):
            _, m1 = self._generator_q(z, sat)
            u1, s1 = self.work_fmt.saturate(round_shift(h_q * m1, fg))
            _, m2 = self._generator_q(u1, sat)
            t2, s2 = self.work_fmt.saturate(round_shift(h_q * m2, fg + 1))
            z, s3 = self.state_fmt.saturate(z + u1 + t2)
            sat.append(bool(s1.any() or s2.any() or s3.any()))
        return z, any(sat)

    def event(self, z: np.ndarray, channel: int, dt: int, weight_q: int) -> tuple[np.ndarray, int, bool, bool]:
        """Steps 2-4 for one event on one channel's modes; returns ``(z, y_q, spike, saturated)``."""
        fc, fs, fin = self.coef_fmt.frac_bits, self.state_fmt.frac_bits, self.input_fmt.frac_bits
        z, sat_decay = self.decay(z, channel, dt)
        jump = round_shift(self.b_q * int(weight_q), fc + fin - fs)
        z, s_in = self.state_fmt.saturate(z + jump)
        c = self.c_q[channel]
        acc = 2 * int((c[:, 0] * z[:, 0] - c[:, 1] * z[:, 1]).sum()) + ((int(self.d_q[channel]) * int(weight_q)) << (fs - fin))
        y, s_out = self.out_fmt.saturate(round_shift(acc, self.out_coef_fmt.frac_bits + fs - self.out_fmt.frac_bits))
        return z, y, y > int(self.threshold_q[channel]), bool(sat_decay or s_in.any() or s_out)


@dataclass
class SAHiPPOTrace:
    """What the core emits per event, plus the state it writes back.

    ``dt`` (K,) clipped interval; ``z`` (K, N/2, 2) the event channel's modes after the event;
    ``y`` (K,) in out_fmt; ``spike`` (K,) bool; ``saturated`` (K,) bool; ``final_z`` (H, N/2, 2);
    ``clipped`` (K,) bool: the interval exceeded ``dt_max`` and was clipped to it.
    """

    dt: np.ndarray
    z: np.ndarray
    y: np.ndarray
    spike: np.ndarray
    saturated: np.ndarray
    final_z: np.ndarray
    clipped: np.ndarray

    @property
    def clipped_count(self) -> int:
        """Events whose interval was clipped (what the core's ``clipped_count`` counts)."""
        return int(self.clipped.sum())

    @property
    def saturation_count(self) -> int:
        """Events in which any clamp acted (what the core's counter counts)."""
        return int(self.saturated.sum())


def run_int(params: SAHiPPOParams, ticks, channels, weights_q) -> SAHiPPOTrace:
    """Bit-exact integer model over one event stream (ticks non-decreasing, ints)."""
    ticks = np.asarray(ticks, dtype=np.int64).reshape(-1)
    channels = np.asarray(channels, dtype=np.int64).reshape(-1)
    weights_q = np.asarray(weights_q, dtype=np.int64).reshape(-1)
    if not (ticks.shape == channels.shape == weights_q.shape):
        raise ValueError("ticks, channels and weights_q need the same length")
    if ticks.size and (ticks.min() < 0 or np.any(np.diff(ticks) < 0)):
        raise ValueError("event ticks must be >= 0 and non-decreasing")
    if channels.size and (channels.min() < 0 or channels.max() >= params.n_channels):
        raise ValueError(f"event channel out of range 0..{params.n_channels - 1}")
    if not params.input_fmt.contains(weights_q):
        raise ValueError(f"event weights outside input_fmt {params.input_fmt}")
    z_all = np.zeros((params.n_channels, params.n_modes, 2), dtype=np.int64)
    t_last = np.zeros(params.n_channels, dtype=np.int64)
    n = ticks.size
    dts = np.zeros(n, dtype=np.int64)
    zs = np.zeros((n, params.n_modes, 2), dtype=np.int64)
    ys = np.zeros(n, dtype=np.int64)
    spikes = np.zeros(n, dtype=bool)
    sats = np.zeros(n, dtype=bool)
    clipped = np.zeros(n, dtype=bool)
    for k in range(n):
        ch = int(channels[k])
        elapsed = int(ticks[k] - t_last[ch])
        dt = min(elapsed, params.dt_max)
        t_last[ch] = ticks[k]
        z, y, spike, sat = params.event(z_all[ch], ch, dt, int(weights_q[k]))
        z_all[ch] = z
        dts[k], zs[k], ys[k], spikes[k], sats[k], clipped[k] = dt, z, y, spike, sat, elapsed > params.dt_max
    return SAHiPPOTrace(dt=dts, z=zs, y=ys, spike=spikes, saturated=sats, final_z=z_all, clipped=clipped)


def compare_traces(expected: SAHiPPOTrace, actual: SAHiPPOTrace) -> str | None:
    """``None`` when two traces agree bit for bit, else a message naming the first mismatch."""
    if expected.y.shape != actual.y.shape:
        return f"event counts differ: {expected.y.shape[0]} vs {actual.y.shape[0]}"
    for k in range(expected.y.shape[0]):
        for name in ("dt", "z", "y", "spike", "saturated"):
            a, b = getattr(expected, name)[k], getattr(actual, name)[k]
            if not np.array_equal(a, b):
                return f"event {k}: {name} differs: expected {np.asarray(a).tolist()}, got {np.asarray(b).tolist()}"
    return None


# ============================================================================================
# The SA-HiPPO memory as a network layer, and its registration (golden.kinds)
# ============================================================================================

#: Bits of a channel's ``t_last`` in the processor: a step counter.
T_LAST_BITS = 16


@dataclass
class SAHiPPOLayerTrace:
    """An SA-HiPPO memory layer over one sample, torch tensors with the step axis first.

    ``event`` (T, H) where a channel had an event; ``dt`` (T, H) its clipped interval (0 where
    none); ``clipped`` (T, H) where the interval exceeded ``dt_max``; ``z`` (T, H, N/2, 2) every
    channel's modes after the step (held between events); ``y``, ``spike``, ``saturated``
    (T, H) the event's soma output, spike and clamp flag (0 where none).
    """

    event: torch.Tensor
    dt: torch.Tensor
    clipped: torch.Tensor
    z: torch.Tensor
    y: torch.Tensor
    spike: torch.Tensor
    saturated: torch.Tensor


def _run_layer(layer, x):
    """Events from the previous layer's output ``x`` (T, H): one per nonzero ``x[k, h]``.

    Time base: the processor's step counter. An event at step ``k`` has tick ``k + 1`` (ticks
    count steps from 1, the zero start is tick 0), events of one step ordered by channel; its
    weight is ``sat(input_fmt, W[h, h] * x[k, h])`` (one spike: ``W[h, h]``), the saturation
    flagged in the layer's input flags. The interval is clipped at ``dt_max`` and counted.
    """
    params = layer.neuron
    x = np.asarray(x, dtype=np.int64)
    steps, h = x.shape
    weights, flags = params.input_fmt.saturate(np.diagonal(layer.weight_q)[None, :] * x)
    weights = np.asarray(weights, dtype=np.int64)
    ks, chs = np.nonzero(x)
    ticks = ks + 1
    trace = run_int(params, ticks, chs, weights[ks, chs])
    event = np.zeros((steps, h), dtype=bool)
    event[ks, chs] = True
    dense = {name: np.zeros((steps, h), dtype=dtype) for name, dtype in
             (("dt", np.int64), ("clipped", bool), ("y", np.int64), ("spike", bool), ("saturated", bool))}
    for name, value in (("dt", trace.dt), ("clipped", trace.clipped), ("y", trace.y), ("spike", trace.spike),
                        ("saturated", trace.saturated)):
        dense[name][ks, chs] = value
    z = np.zeros((steps, h, params.n_modes, 2), dtype=np.int64)
    state = np.zeros((h, params.n_modes, 2), dtype=np.int64)
    j = 0
    for k in range(steps):
        while j < ks.size and ks[j] == k:
            state[chs[j]] = trace.z[j]
            j += 1
        z[k] = state
    out = SAHiPPOLayerTrace(torch.from_numpy(event), *(torch.from_numpy(dense[n]) for n in ("dt", "clipped")),
                            torch.from_numpy(z), *(torch.from_numpy(dense[n]) for n in ("y", "spike", "saturated")))
    return torch.from_numpy(weights), torch.from_numpy(np.asarray(flags)), out


def _layer_output(trace):
    """Per step, the modes of the channels that had an event (0 elsewhere): ``(..., T, H * N/2 * 2)``."""
    posted = torch.where(trace.event[..., None, None], trace.z, torch.zeros_like(trace.z))
    return posted.reshape(*posted.shape[:-3], -1)


def _check_layer(layer, where: str) -> None:
    params = layer.neuron
    w = layer.weight_q
    if w.shape[0] != w.shape[1]:
        raise ValueError(f"{where}.weight_q: an SA-HiPPO layer has one channel per input, so a square "
                         f"weight matrix; got {w.shape}")
    if np.any(w - np.diag(np.diagonal(w))):
        raise ValueError(f"{where}.weight_q: an SA-HiPPO layer connects input h to channel h only; "
                         "off-diagonal weights must be 0")
    if np.any(layer.bias_q != 0):
        raise ValueError(f"{where}.bias_q: an SA-HiPPO layer has no bias; all entries must be 0")
    frac = params.input_fmt.frac_bits
    if not layer.weight_fmt.frac_bits == layer.bias_fmt.frac_bits == frac:
        raise ValueError(f"{where}: weight_fmt {layer.weight_fmt}, bias_fmt {layer.bias_fmt} and neuron.input_fmt "
                         f"{params.input_fmt} must share one number of fractional bits")


def _accumulator_range(layer, max_events):
    diag = np.diagonal(layer.weight_q) * (1 if max_events is None else int(max_events))
    return min(0, int(diag.min())), max(0, int(diag.max()))


def _fit(layer):
    """The modes, ``t_last`` and the lookup tables (:attr:`SAHiPPOParams.table_bits`) of one core."""
    p = layer.neuron
    rows = p.n_channels * (p.dt_max + 1)
    memories = [("core state", p.n_channels * p.n_modes, 2 * p.state_fmt.width, True),
                ("t_last", p.n_channels, T_LAST_BITS, True),
                ("core params", p.n_channels, p.n_modes * 2 * p.out_coef_fmt.width + p.out_coef_fmt.width
                 + p.out_fmt.width, False)]
    for name, bits in p.table_bits.items():
        depth = sum(p.decay_rows) * p.n_modes if name == "decay" else rows
        memories.append((f"{name} table", depth, bits // depth, False))
    products = [(p.decay_fmt.width, p.state_fmt.width)] * 4 + [(p.coef_fmt.width, p.input_fmt.width)] * 2 \
        + [(p.out_coef_fmt.width, p.state_fmt.width)] * 2 + [(p.out_coef_fmt.width, p.input_fmt.width)]
    if p.method == "zoh":  # the composition of the digit tables' factors: four products per later digit
        products += [(p.decay_fmt.width, p.decay_fmt.width)] * 4 * (p.decay_digits - 1)
    return memories, products, 2739


NEURON_KIND = NeuronKind(
    name="sahippo",
    params_class=SAHiPPOParams,
    run_int=run_int,
    float_modules=(SAHiPPOLayer,),
    model_fields=ModelFields(
        formats=("input_fmt", "state_fmt", "work_fmt", "coef_fmt", "g_fmt", "g_sub_fmt", "decay_fmt",
                 "out_coef_fmt", "out_fmt"),
        arrays={"lam_q": "coef_fmt", "p_q": "coef_fmt", "b_q": "coef_fmt", "c_q": "out_coef_fmt",
                "d_q": "out_coef_fmt", "threshold_q": "out_fmt", "g_q": "g_fmt", "substeps": None,
                "g_sub_q": "g_sub_fmt", "decay_q": "decay_fmt"},
        array_shapes=lambda n_out: {name: None for name in ("lam_q", "p_q", "b_q", "c_q", "g_q", "substeps",
                                                             "g_sub_q", "decay_q")},
        enums={"method": DISCRETISATIONS},
    ),
    layer=LayerRules(
        run=_run_layer,
        check=_check_layer,
        output_width=lambda params: params.n_channels * params.n_modes * 2,
        output=_layer_output,
        accumulator_range=_accumulator_range,
        counters=lambda trace: {"clipped_interval": int(trace.clipped.sum()), "saturated": int(trace.saturated.sum())},
        fit=_fit,
        output_fmt=lambda params: params.state_fmt,
    ),
)
