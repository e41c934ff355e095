"""Refractory LIF neuron of SPikE-SSM (NEURON_MATH §2.2, docs/decisions.md).

Per channel, per time step, in this order (decision 'Refractory LIF equations')::

    v_t = tau * u_{t-1} + I_t                   # charge
    R_t = tau_r * R_{t-1} + U_th * s_{t-1}      # refractory pulse
    s_t = [v_t - R_t - v_th >= 0]               # fires at equality
    u_t = v_t - v_th * s_t                      # soft reset

Integer semantics (the specification the hardware mirrors bit for bit):

* ``I``, ``v``/``u``, ``R``, ``v_th`` and ``U_th`` share one number of fractional bits ``F``
  (their integer bits may differ), so additions need no alignment.
* ``tau`` and ``tau_r`` are unsigned ``uQ0.C`` coefficients; each product ``coef * state`` is
  formed at full width and rounded once, half up, back to ``F`` fractional bits.
* ``v`` is saturated to ``state_fmt`` after the charge, ``R`` to ``refr_fmt``, and ``u`` to
  ``state_fmt`` after the reset (decision 'Saturation'). The spike comparison ``v - R - v_th >= 0`` is exact
  (full width, no saturation). An update "saturates" when any of the three clamps acted;
  the hardware counts such updates.
* Zero initial state: ``u = R = 0`` and no previous spike.

What lives here:

* :class:`RefractoryLIFParams` (builds the golden step and the hardware core), :func:`run_int`
  (sequential, every state) and :func:`run_int_spikes` (sequential, spikes only);
* :class:`RefractoryLIF`, the trainable float layer, with a sequential mode (BPTT) and a PMBC
  mode (parallel spikes, surrogate gradients with the reset path detached);
* :func:`pmbc_spikes`, float parallel max-min boundary compression (NEURON_MATH §2.3);
* :func:`run_int_pmbc`, the integer model without a time loop: float PMBC guess, exact sparse
  Jacobi relaxation, dense verification; spike for spike and state for state equal to
  :func:`run_int` (decision 'PMBC equals sequential').

``docs/neurons/refractory_lif.md`` derives the exactness arguments and the float/integer error bound.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch

from .fixed import QFormat, int_bits_for, mul_round
from .kinds import ModelFields, NeuronKind
from .layers import quantize_decay

__all__ = [
    "RefractoryLIFParams",
    "RefractoryLIFState",
    "RefractoryLIFTrace",
    "run_int",
    "run_int_spikes",
    "run_int_pmbc",
    "PMBCResult",
    "RefractoryLIF",
    "pmbc_spikes",
    "surrogate_spike",
    "decay_scan",
    "RefractoryLIFNeuron",
    "NEURON_KIND",
]

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
        """Quantise float parameters (round half up). ``v_th``/``u_th`` are per-channel arrays.

        Raises ``ValueError`` instead of saturating when a threshold does not fit
        ``threshold_fmt`` or a decay lies outside ``[0, 1)``.
        """
        probe = cls(v_th_q=np.zeros(1), u_th_q=np.zeros(1), tau_q=0, tau_r_q=0, **formats)
        fmt = probe.threshold_fmt
        for name, values in (("v_th", v_th), ("u_th", u_th)):
            values = np.asarray(values, dtype=np.float64)
            if not np.all(np.isfinite(values)) or values.min() < fmt.min_value or values.max() > fmt.max_value:
                raise ValueError(
                    f"{name} spans [{values.min():g}, {values.max():g}], outside threshold_fmt {fmt} "
                    f"([{fmt.min_value:g}, {fmt.max_value:g}]): widen threshold_fmt's integer bits"
                )
        for name, value in (("tau", tau), ("tau_r", tau_r)):
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"{name}={value} must lie in [0, 1)")
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
        u, refr, s, v, saturated = _step_int(
            self, state.u, state.refr, state.s, current_q, torch.as_tensor(self.v_th_q), torch.as_tensor(self.u_th_q)
        )
        return RefractoryLIFState(u=u, refr=refr, s=s), v, saturated

    def initial_state(self, batch_shape=()) -> "RefractoryLIFState":
        """Zero state."""
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
    currents_q = _check_currents(params, currents_q).to(torch.int64)
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


def _step_int(params: RefractoryLIFParams, u, refr, s, current_q, v_th, u_th):
    """The integer update of :meth:`RefractoryLIFParams.step` on plain tensors.

    All arguments broadcast elementwise (``v_th``/``u_th`` may be per-element gathers), so the
    sequential loop, the relaxation sweeps of :func:`run_int_pmbc` and its dense verification
    share this one body. Returns ``(u, refr, s, v, saturated)``.
    """
    c = params.coef_fmt.frac_bits
    v, sat_v = params.state_fmt.saturate(mul_round(u, params.tau_q, c) + current_q)
    refr, sat_r = params.refr_fmt.saturate(mul_round(refr, params.tau_r_q, c) + torch.where(s, u_th, 0))
    spike = (v - refr - v_th) >= 0
    u, sat_u = params.state_fmt.saturate(v - torch.where(spike, v_th, 0))
    return u, refr, spike, v, sat_v | sat_r | sat_u


def _check_currents(params: RefractoryLIFParams, currents_q) -> torch.Tensor:
    currents_q = torch.as_tensor(currents_q)
    if currents_q.dtype.is_floating_point or currents_q.dtype == torch.bool:
        raise ValueError(f"currents_q must hold integers in {params.input_fmt}, not {currents_q.dtype}")
    if currents_q.dim() < 2 or currents_q.shape[-1] != params.n_neurons:
        raise ValueError(
            f"currents_q needs shape (..., T, {params.n_neurons}); got {tuple(currents_q.shape)}"
        )
    if not params.input_fmt.contains(currents_q):
        raise ValueError(f"input current outside {params.input_fmt}")
    return currents_q


def run_int_spikes(params: RefractoryLIFParams, currents_q: torch.Tensor) -> torch.Tensor:
    """Sequential integer model keeping only the spikes (bool, shape of ``currents_q``).

    Same loop as :func:`run_int` without the five full traces, so long sequences fit in memory
    (at T = 64K, 16 x 256 neurons, one int64 trace is 2 GiB). ``currents_q`` may be any integer
    dtype; each step is widened to int64.
    """
    currents_q = _check_currents(params, currents_q)
    state = params.initial_state(currents_q.shape[:-2])
    spikes = torch.empty(currents_q.shape, dtype=torch.bool)
    for t in range(currents_q.shape[-2]):
        state, _, _ = params.step(state, currents_q[..., t, :].to(torch.int64))
        spikes[..., t, :] = state.s
    return spikes


# ==========================================================================================
# Float model: sequential reference and parallel max-min boundary compression (PMBC)
# ==========================================================================================

_SCAN_BLOCK = 64
# PMBC works on tiles of this many steps: a sweep recomputes only tiles that hold an
# undecided step, from per-tile summaries carried across tiles by a short scan.
_PMBC_TILE = 16
# Rows per chunk are chosen so that one float64 (rows, T) array stays near 64 MiB.
_CHUNK_ELEMENTS = 1 << 23
# Powers of a decay below this are taken as zero: they change no float64 sum of terms of
# ordinary size, and keeping them would make the products subnormal, which costs x86 CPUs
# about a hundred times the time of a normal multiply.
_NEGLIGIBLE_POWER = 2.0**-200


def _powers(decay: float, exponents: torch.Tensor) -> torch.Tensor:
    """``decay ** exponents`` in float64, with powers below :data:`_NEGLIGIBLE_POWER` set to 0."""
    p = float(decay) ** exponents.to(torch.float64)
    return torch.where(p < _NEGLIGIBLE_POWER, torch.zeros((), dtype=torch.float64), p)


def decay_scan(x: torch.Tensor, decay: float, block: int = _SCAN_BLOCK) -> torch.Tensor:
    """Inclusive first-order scan ``y_t = decay * y_{t-1} + x_t`` (``y_{-1} = 0``) along the last dim.

    Parallel in time: blocks of ``block`` steps are solved by one matrix product with the
    lower-triangular Toeplitz matrix of powers of ``decay``, and the block carries by the same
    scan (decay ``decay**block``) one level up. Every power is <= 1, so nothing overflows at any
    length; an input that is exactly zero contributes exactly zero, and ``y_0 = x_0`` exactly.
    Differentiable in ``x``. ``x`` is a 2-D (rows, T) floating tensor.
    """
    rows, length = x.shape
    if length <= block:
        t = torch.arange(length)
        lag = t[None, :] - t[:, None]  # [i, t] = t - i
        toeplitz = torch.where(lag >= 0, _powers(decay, lag.clamp(min=0)), 0.0).to(x.dtype)
        return x @ toeplitz
    n_blocks = -(-length // block)
    padded = torch.nn.functional.pad(x, (0, n_blocks * block - length)).reshape(rows * n_blocks, block)
    local = decay_scan(padded, decay, block).reshape(rows, n_blocks, block)
    block_ends = decay_scan(local[..., -1], float(_powers(decay, torch.tensor(block))), block)
    carry_in = torch.nn.functional.pad(block_ends[:, :-1], (1, 0))
    powers = _powers(decay, torch.arange(1, block + 1)).to(x.dtype)
    y = local + carry_in[..., None] * powers
    return y.reshape(rows, n_blocks * block)[:, :length]


def _reset_sums(spikes: torch.Tensor, tau: float, tau_r: float):
    """Strictly causal sums of past spikes, float64 (rows, T).

    Returns ``(a, b)`` with ``a_t = sum_{i<t} tau**(t-i) s_i`` and ``b_t = sum_{i<t} tau_r**(t-1-i) s_i``,
    so the reset-and-refractory term is ``m_t = v_th * a_t + U_th * b_t`` and ``R_t = U_th * b_t``.
    """
    spikes_f = spikes.to(torch.float64)
    a = tau * decay_scan(spikes_f, tau)
    b = decay_scan(spikes_f, tau_r)
    shift = lambda y: torch.nn.functional.pad(y[:, :-1], (1, 0))  # noqa: E731
    return shift(a), shift(b)


class _TileTables:
    """Lookup tables over every bit pattern of one PMBC tile (:data:`_PMBC_TILE` steps).

    A tile's decided-1 and undecided masks are kept packed as integers, bit ``i`` for step
    ``i`` of the tile. For a pattern ``p``: ``in_a[p, t] = sum_{i<t, bit i} tau**(t-i)``,
    ``in_b[p, t] = sum_{i<t, bit i} tau_r**(t-1-i)`` (the in-tile parts of the reset sums),
    ``end_a[p] = sum_i tau**(b-1-i) bit_i`` and ``end_b[p]`` likewise (the tile's summary,
    carried to later tiles), ``bits[p]`` the unpacked mask and ``low[p]`` its lowest set bit.
    """

    def __init__(self, tau: float, tau_r: float, b: int = _PMBC_TILE):
        codes = torch.arange(1 << b)
        self.weights = (1 << torch.arange(b)).to(torch.int32)
        self.bits = (codes[:, None] >> torch.arange(b)) & 1 == 1
        lag = torch.arange(b)[None, :] - torch.arange(b)[:, None]  # [i, t] = t - i
        zero = torch.zeros((), dtype=torch.float64)
        bits_f = self.bits.to(torch.float64)
        self.in_a = bits_f @ torch.where(lag > 0, _powers(tau, lag.clamp(min=0)), zero)
        self.in_b = bits_f @ torch.where(lag > 0, _powers(tau_r, (lag - 1).clamp(min=0)), zero)
        offset = torch.arange(b)
        self.end_a = bits_f @ _powers(tau, b - 1 - offset)
        self.end_b = bits_f @ _powers(tau_r, b - 1 - offset)
        self.low = self.bits.to(torch.uint8).argmax(dim=1)
        self.carry_a = _powers(tau, offset + 1)  # weight of everything before the tile
        self.carry_b = _powers(tau_r, offset)
        self.tile_decay_a = float(_powers(tau, torch.tensor(b)))
        self.tile_decay_b = float(_powers(tau_r, torch.tensor(b)))

    def pack(self, mask: torch.Tensor) -> torch.Tensor:
        return (mask.to(torch.int32) * self.weights).sum(dim=-1, dtype=torch.int32)


@functools.lru_cache(maxsize=8)
def _tile_tables(tau: float, tau_r: float, b: int) -> _TileTables:
    """Tables are 16 MiB for 16-step tiles and take tens of ms to build: keep a few."""
    return _TileTables(tau, tau_r, b)


def _pmbc_rows(drive: torch.Tensor, v_th: torch.Tensor, u_th: torch.Tensor, tau: float, tau_r: float):
    """PMBC on independent rows: drive ``k`` (rows, T) float64, per-row thresholds (rows,).

    Tri-state sweeps of NEURON_MATH §2.3 with ``lo``/``hi`` the reset sums over past steps
    decided 1 / decided 1 or undecided. Time is cut into tiles of :data:`_PMBC_TILE` steps
    whose masks are packed into integers; a sweep recomputes only tiles that still hold an
    undecided step: the in-tile part of the sums by table lookup (:class:`_TileTables`), the
    part from before the tile by the carry of two decay scans over per-tile summaries (one
    value per tile, 1/16 of a dense pass). The first sweep, with nothing decided, is in
    closed form (``lo = 0``, ``hi`` the prefix sums of ``c``). In every row the earliest undecided step has only
    decided predecessors, so there ``lo == hi`` and it is decided by ``k - lo >= v_th``
    outright: every sweep decides at least one step per unfinished row, which bounds the
    sweeps by T whatever float rounding does. Returns ``(spikes, sweeps)``.
    """
    rows, length = drive.shape
    b = _PMBC_TILE
    tables = _tile_tables(tau, tau_r, b)
    n_tiles = -(-length // b)
    valid = torch.zeros(n_tiles * b, dtype=torch.bool)
    valid[:length] = True
    drive = torch.nn.functional.pad(drive, (0, n_tiles * b - length)).view(rows, n_tiles, b)
    # Sweep 1 in closed form: nothing is decided yet, so lo = 0 and hi_t = sum_{j=1..t} c_j
    # = v_th sum_{j=1..t} tau**j + U_th sum_{j=1..t} tau_r**(j-1); at t = 0 both are exactly 0.
    steps = torch.arange(n_tiles * b, dtype=torch.float64)
    geo_a = tau * (1.0 - tau**steps) / (1.0 - tau)
    geo_b = (1.0 - tau_r**steps) / (1.0 - tau_r)
    margin = drive.view(rows, -1) - v_th[:, None]
    fire = valid & (margin - (v_th[:, None] * geo_a + u_th[:, None] * geo_b) >= 0)
    undecided = valid & ~fire & (margin >= 0)
    del margin
    # packed masks, [0]: decided 1, [1]: undecided; padding steps are decided 0
    codes = torch.stack([tables.pack(fire.view(rows, n_tiles, b)), tables.pack(undecided.view(rows, n_tiles, b))])
    del fire, undecided
    sum_a = tables.end_a[codes.long()]  # (2, rows, n_tiles) tile summaries
    sum_b = tables.end_b[codes.long()]
    sweeps = 1
    while True:
        tile_open = codes[1] != 0
        open_rows = tile_open.any(dim=1).nonzero().squeeze(1)
        if open_rows.numel() == 0:
            return tables.bits[codes[0].long()].view(rows, -1)[:, :length], sweeps
        sweeps += 1
        n_open = open_rows.numel()
        active = tile_open[open_rows].nonzero()
        r, k = open_rows[active[:, 0]], active[:, 1]
        # exclusive scans of the tile summaries: everything before each tile, open rows only
        # (blocks of 16 tiles: this runs every sweep, and 64-wide blocks cost 4x the products)
        before_a = decay_scan(sum_a[:, open_rows].reshape(2 * n_open, n_tiles), tables.tile_decay_a, b)
        before_b = decay_scan(sum_b[:, open_rows].reshape(2 * n_open, n_tiles), tables.tile_decay_b, b)
        before_a = torch.nn.functional.pad(before_a[:, :-1], (1, 0)).view(2, n_open, n_tiles)[:, active[:, 0], k]
        before_b = torch.nn.functional.pad(before_b[:, :-1], (1, 0)).view(2, n_open, n_tiles)[:, active[:, 0], k]
        ones_c, und_c = codes[0, r, k].long(), codes[1, r, k].long()
        vth, uth = v_th[r, None], u_th[r, None]
        m_lo = vth * (tables.in_a[ones_c] + before_a[0, :, None] * tables.carry_a)
        m_lo += uth * (tables.in_b[ones_c] + before_b[0, :, None] * tables.carry_b)
        m_und = vth * (tables.in_a[und_c] + before_a[1, :, None] * tables.carry_a)
        m_und += uth * (tables.in_b[und_c] + before_b[1, :, None] * tables.carry_b)
        margin_lo = drive[r, k] - m_lo - vth  # >= 0: fires even with least reset
        und = tables.bits[und_c]
        fire = und & (margin_lo - m_und >= 0)
        decided = fire | (und & (margin_lo < 0))
        first_of_row = torch.ones_like(r, dtype=torch.bool)
        first_of_row[1:] = r[1:] != r[:-1]
        heads = first_of_row.nonzero().squeeze(1)
        head_step = tables.low[und_c[heads]].long()
        fire[heads, head_step] = margin_lo[heads, head_step] >= 0
        decided[heads, head_step] = True
        new_ones = ones_c | tables.pack(fire)
        new_und = und_c & ~tables.pack(decided)
        codes[0, r, k] = new_ones.to(torch.int32)
        codes[1, r, k] = new_und.to(torch.int32)
        sum_a[0, r, k] = tables.end_a[new_ones]
        sum_a[1, r, k] = tables.end_a[new_und]
        sum_b[0, r, k] = tables.end_b[new_ones]
        sum_b[1, r, k] = tables.end_b[new_und]


def _channel_chunks(batch: int, length: int, channels: int):
    """Channel slices whose (batch * channels, T) float64 rows stay near :data:`_CHUNK_ELEMENTS`."""
    per_chunk = max(1, _CHUNK_ELEMENTS // max(1, batch * length))
    return [slice(c0, min(channels, c0 + per_chunk)) for c0 in range(0, channels, per_chunk)]


def _to_rows(x: torch.Tensor) -> torch.Tensor:
    """(B, T, C) -> (B*C, T), row ``b*C + c``."""
    batch, length, channels = x.shape
    return x.permute(0, 2, 1).reshape(batch * channels, length)


def _from_rows(x: torch.Tensor, batch: int) -> torch.Tensor:
    """(B*C, T) -> (B, T, C)."""
    return x.reshape(batch, -1, x.shape[-1]).permute(0, 2, 1)


def pmbc_spikes(current: torch.Tensor, v_th, u_th, tau: float, tau_r: float):
    """Float PMBC spikes of the refractory LIF, without gradients.

    Parameters
    ----------
    current : torch.Tensor, float, shape (batch, T, channels)
    v_th, u_th : per-channel thresholds, shape (channels,)
    tau, tau_r : float decays in [0, 1)

    Returns
    -------
    spikes : torch.BoolTensor, shape (batch, T, channels)
        Equal to the sequential float recurrence except where a membrane margin lies within
        float64 rounding (about 1e-15 of the drive) of zero.
    sweeps : int
        Tri-state sweeps the slowest row needed (<= T).

    The drive ``k`` is a float64 :func:`decay_scan` of the input; channels are processed in
    chunks so that the working set stays near 64 MiB per float64 array at any length.
    """
    batch, length, channels = current.shape
    v_th = torch.as_tensor(v_th, dtype=torch.float64).reshape(-1)
    u_th = torch.as_tensor(u_th, dtype=torch.float64).reshape(-1)
    spikes = torch.empty(current.shape, dtype=torch.bool)
    sweeps = 0
    with torch.no_grad():
        for chunk in _channel_chunks(batch, length, channels):
            rows = _to_rows(current[:, :, chunk]).to(torch.float64)
            drive = decay_scan(rows, float(tau))
            found, n = _pmbc_rows(drive, v_th[chunk].repeat(batch), u_th[chunk].repeat(batch), float(tau), float(tau_r))
            spikes[:, :, chunk] = _from_rows(found, batch)
            sweeps = max(sweeps, n)
    return spikes, sweeps


class _SurrogateSpike(torch.autograd.Function):
    """Heaviside ``x >= 0`` forward, ``max(0, 1 - |x|)`` backward (piecewise quadratic, alpha = 1).

    With ``decided`` given, the forward value is ``decided`` itself (spikes found by PMBC) and
    only the backward uses ``x``: the forward spikes then equal the PMBC spikes exactly even
    where the recomputed ``x`` differs from the PMBC margin by float rounding.
    """

    @staticmethod
    def forward(ctx, x, decided=None):
        ctx.save_for_backward(x)
        spikes = (x >= 0) if decided is None else decided
        return spikes.to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (1.0 - x.abs()).clamp(min=0.0), None


def surrogate_spike(x: torch.Tensor, decided: torch.Tensor | None = None) -> torch.Tensor:
    """Spike ``[x >= 0]`` (or the given ``decided`` spikes) with the SDN surrogate gradient (§2.4)."""
    return _SurrogateSpike.apply(x, decided)


class RefractoryLIF(torch.nn.Module):
    """Float refractory LIF layer (decision 'Refractory LIF equations'), trainable per-channel ``v_th``, ``U_th``.

    Equations as :class:`RefractoryLIFParams`, in float without rounding or saturation. The
    surrogate argument is ``x = v - R - v_th`` (not divided by ``v_th``).

    Parameters
    ----------
    n_channels : int
        Channels (neurons) of the layer.
    tau, tau_r : float
        Membrane and refractory decays in [0, 1); fixed buffers (decision 'Refractory LIF equations'), not trained.
    v_th_init, u_th_init : float
        Initial threshold (> 0) and refractory magnitude (>= 0).

    ``forward(current, mode, return_states)`` takes ``current`` of shape (batch, T, channels)
    and returns spikes of the same shape (0./1. in ``current``'s dtype), plus a dict of
    ``v``, ``refr`` and ``u`` when ``return_states``.

    * ``mode="sequential"``: the time loop; gradients flow through the surrogate, the soft
      reset and the refractory pulse (nothing detached).
    * ``mode="pmbc"``: spikes by :func:`pmbc_spikes` (no gradient), then the surrogate
      argument ``x_t = k_t - m_t(s) - v_th`` is recomputed differentiably with the spikes inside
      ``m_t`` detached, and the surrogate returns exactly the PMBC spikes. So gradients reach
      ``current`` through ``k``, and ``v_th``/``U_th`` through ``m`` and the threshold, but not
      through the reset path ``s -> m`` (unlike the sequential mode). ``last_pmbc_sweeps`` holds
      the sweep count of the last call. Internally float64.
    """

    MODES = ("sequential", "pmbc")

    def __init__(self, n_channels: int, tau: float = DEFAULT_TAU, tau_r: float = DEFAULT_TAU_R,
                 v_th_init: float = DEFAULT_V_TH, u_th_init: float = DEFAULT_U_TH):
        if not isinstance(n_channels, int) or n_channels < 1:
            raise ValueError(f"n_channels must be a positive int, not {n_channels!r}")
        for name, value in (("tau", tau), ("tau_r", tau_r)):
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"{name}={value} must lie in [0, 1): a decay >= 1 never forgets")
        if not float(v_th_init) > 0.0:
            raise ValueError(f"v_th_init={v_th_init} must be > 0")
        if not float(u_th_init) >= 0.0:
            raise ValueError(f"u_th_init={u_th_init} must be >= 0 (the refractory pulse raises the threshold)")
        super().__init__()
        self.n_channels = n_channels
        self.v_th = torch.nn.Parameter(torch.full((n_channels,), float(v_th_init)))
        self.u_th = torch.nn.Parameter(torch.full((n_channels,), float(u_th_init)))
        self.register_buffer("tau", torch.tensor(float(tau), dtype=torch.float64))
        self.register_buffer("tau_r", torch.tensor(float(tau_r), dtype=torch.float64))
        self.last_pmbc_sweeps: int | None = None

    def extra_repr(self) -> str:
        return f"{self.n_channels}, tau={float(self.tau)}, tau_r={float(self.tau_r)}"

    def forward(self, current: torch.Tensor, mode: str = "sequential", return_states: bool = False):
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, not {mode!r}")
        if not torch.is_tensor(current) or not current.is_floating_point():
            raise ValueError("current must be a floating-point tensor of shape (batch, T, channels)")
        if current.dim() != 3 or current.shape[-1] != self.n_channels:
            raise ValueError(f"current needs shape (batch, T, {self.n_channels}); got {tuple(current.shape)}")
        if mode == "sequential":
            return self._sequential(current, return_states)
        return self._pmbc(current, return_states)

    def _wants_grad(self, current) -> bool:
        return torch.is_grad_enabled() and (
            current.requires_grad or self.v_th.requires_grad or self.u_th.requires_grad
        )

    def _sequential(self, current, return_states):
        tau, tau_r = float(self.tau), float(self.tau_r)
        batch, length, _ = current.shape
        dtype = torch.promote_types(current.dtype, self.v_th.dtype)
        v_th, u_th = self.v_th.to(dtype), self.u_th.to(dtype)
        u = torch.zeros(batch, self.n_channels, dtype=dtype)
        refr = torch.zeros_like(u)
        s = torch.zeros_like(u)
        # without autograd, spikes go straight into the output (no list of T tensors)
        out = None if self._wants_grad(current) else torch.empty(current.shape, dtype=current.dtype)
        spikes, vs, rs, us = [], [], [], []
        for t in range(length):
            v = tau * u + current[:, t]
            refr = tau_r * refr + u_th * s
            s = surrogate_spike(v - refr - v_th)
            u = v - v_th * s
            if out is None:
                spikes.append(s)
            else:
                out[:, t] = s
            if return_states:
                vs.append(v)
                rs.append(refr)
                us.append(u)
        if out is None:
            out = torch.stack(spikes, dim=1).to(current.dtype)
        if not return_states:
            return out
        stack = lambda xs: torch.stack(xs, dim=1)  # noqa: E731
        return out, {"v": stack(vs), "refr": stack(rs), "u": stack(us)}

    def _pmbc(self, current, return_states):
        tau, tau_r = float(self.tau), float(self.tau_r)
        batch = current.shape[0]
        spikes, self.last_pmbc_sweeps = pmbc_spikes(
            current.detach(), self.v_th.detach(), self.u_th.detach(), tau, tau_r
        )
        if not self._wants_grad(current) and not return_states:
            return spikes.to(current.dtype)
        s_rows = _to_rows(spikes)
        a, b = _reset_sums(s_rows, tau, tau_r)
        v_th = self.v_th.to(torch.float64).repeat(batch)[:, None]
        u_th = self.u_th.to(torch.float64).repeat(batch)[:, None]
        v = decay_scan(_to_rows(current).to(torch.float64), tau) - v_th * a
        refr = u_th * b
        out = surrogate_spike(v - refr - v_th, s_rows)
        result = _from_rows(out, batch).to(current.dtype)
        if not return_states:
            return result
        u = v - v_th * s_rows.to(torch.float64)
        states = {name: _from_rows(x, batch).to(current.dtype) for name, x in (("v", v), ("refr", refr), ("u", u))}
        return result, states

    def to_params(self, **formats: QFormat) -> RefractoryLIFParams:
        """Quantised export (round half up) to the integer model / hardware parameters.

        ``formats`` are passed to :meth:`RefractoryLIFParams.from_float`; a threshold that does
        not fit ``threshold_fmt`` raises ``ValueError`` instead of saturating silently.
        """
        fmt = RefractoryLIFParams(v_th_q=np.zeros(1), u_th_q=np.zeros(1), tau_q=0, tau_r_q=0, **formats).threshold_fmt
        for name in ("v_th", "u_th"):
            values = getattr(self, name).detach().double()
            if bool((values > fmt.max_value).any() or (values < fmt.min_value).any()):
                raise ValueError(
                    f"{name} has values outside {fmt} [{fmt.min_value}, {fmt.max_value}]: widen threshold_fmt"
                )
        return RefractoryLIFParams.from_float(
            self.v_th.detach().double().numpy(), self.u_th.detach().double().numpy(),
            tau=float(self.tau), tau_r=float(self.tau_r), **formats,
        )


# ==========================================================================================
# Integer PMBC: float PMBC guess, exact sparse Jacobi relaxation, dense verification
# ==========================================================================================


@dataclass
class PMBCResult:
    """Output of :func:`run_int_pmbc`.

    ``spikes`` (bool, shape of the currents) always; ``trace`` with every state (identical to
    :func:`run_int`) unless ``spikes_only``. ``pmbc_sweeps``: tri-state sweeps of the float guess
    (slowest row). ``relax_sweeps``: Jacobi sweeps until no state changed (slowest chunk, the
    first dense sweep included, the verification sweep not). ``relax_updates``: neuron-steps
    recomputed by all relaxation sweeps together (``T * neurons`` for the first sweep alone).
    """

    spikes: torch.Tensor
    trace: RefractoryLIFTrace | None
    pmbc_sweeps: int
    relax_sweeps: int
    relax_updates: int


def _relax_rows(params: RefractoryLIFParams, currents: torch.Tensor, v_th: torch.Tensor, u_th: torch.Tensor,
                guess_u: torch.Tensor, guess_refr: torch.Tensor, guess_s: torch.Tensor, max_sweeps: int | None = None):
    """Exact integer trajectories of independent rows by sparse Jacobi relaxation.

    All arrays are (rows, T) except the per-row thresholds (rows,). Column 0 of the padded
    (rows, T + 1) arrays holds the zero initial state, so the predecessor of flat
    position ``p`` is ``p - 1``. A sweep recomputes ``state_t = step(state_{t-1}, I_t)`` for
    every position of its worklist from the previous iterate (gather all, then write all);
    the next worklist is the successors of the positions whose state changed. Jacobi on a
    causal recurrence makes positions ``< n`` exact after ``n`` sweeps whatever the guess, so
    it ends within T + 1 sweeps at the unique sequential solution; saturation does not
    matter, since the argument needs no linearity. A final dense sweep checks that every
    position satisfies the recurrence and yields ``v`` and the saturation flags; it raises
    ``RuntimeError`` if not (``max_sweeps``, default T + 1, exists so tests can stop the
    relaxation early and see the check fire). Returns ``(u, refr, s, v, saturated, sweeps, updates)``.
    """
    rows, length = currents.shape
    width = length + 1
    pad = lambda x: torch.nn.functional.pad(x, (1, 0))  # noqa: E731
    cur, u, refr, s = pad(currents), pad(guess_u), pad(guess_refr), pad(guess_s)
    vth_col, uth_col = v_th[:, None], u_th[:, None]

    def dense_sweep():
        return _step_int(params, u[:, :-1], refr[:, :-1], s[:, :-1], cur[:, 1:], vth_col, uth_col)

    new_u, new_refr, new_s, _, _ = dense_sweep()
    changed = (new_u != u[:, 1:]) | (new_refr != refr[:, 1:]) | (new_s != s[:, 1:])
    u[:, 1:], refr[:, 1:], s[:, 1:] = new_u, new_refr, new_s
    # successors of changed positions; flat index of column t + 2 in the padded layout
    work = (changed[:, :-1].nonzero() * torch.tensor([width, 1])).sum(dim=1) + 2
    sweeps, updates = 1, rows * length
    flat_u, flat_refr, flat_s, flat_cur = u.view(-1), refr.view(-1), s.view(-1), cur.view(-1)
    max_sweeps = length + 1 if max_sweeps is None else max_sweeps
    while work.numel() and sweeps < max_sweeps:
        sweeps += 1
        updates += work.numel()
        prev = work - 1
        row = work // width
        new_u, new_refr, new_s, _, _ = _step_int(
            params, flat_u[prev], flat_refr[prev], flat_s[prev], flat_cur[work], v_th[row], u_th[row]
        )
        changed = (new_u != flat_u[work]) | (new_refr != flat_refr[work]) | (new_s != flat_s[work])
        flat_u[work], flat_refr[work], flat_s[work] = new_u, new_refr, new_s
        nxt = work[changed] + 1
        work = nxt[nxt % width != 0]
    check_u, check_refr, check_s, v, saturated = dense_sweep()
    if not (torch.equal(check_u, u[:, 1:]) and torch.equal(check_refr, refr[:, 1:]) and torch.equal(check_s, s[:, 1:])):
        raise RuntimeError("integer PMBC verification sweep failed: a state does not satisfy the recurrence (a bug)")
    return u[:, 1:], refr[:, 1:], s[:, 1:], v, saturated, sweeps, updates


def run_int_pmbc(params: RefractoryLIFParams, currents_q: torch.Tensor, spikes_only: bool = False) -> PMBCResult:
    """Parallel integer model: the exact spikes (and states) of :func:`run_int`, found without a time loop.

    Three stages per chunk of channels (decision 'PMBC equals sequential'):

    1. Float PMBC (:func:`pmbc_spikes` machinery) on the linear model with the exactly
       quantised coefficients (``tau_q / 2**C``, ``v_th_q``, ``U_th_q``, input in LSB units),
       giving a spike guess and from it float ``u`` and ``R`` trajectories.
    2. Those trajectories, rounded half up and saturated, start an exact sparse Jacobi
       relaxation of the integer recurrence (:func:`_relax_rows`). Rounding after each product
       and saturation make the integer dynamics non-linear, so the guess is usually off by a
       few LSB and sometimes by a spike; relaxation repairs both.
    3. One dense sweep proves the fixed point: every step satisfies the recurrence, so the
       result is the sequential solution by uniqueness. Exactness is checked, not assumed.

    ``currents_q``: integers in ``params.input_fmt``, shape (..., T, n_neurons), any integer
    dtype (int32 saves memory on long inputs). ``spikes_only`` drops the full trace.
    """
    currents_q = _check_currents(params, currents_q)
    lead_shape = currents_q.shape[:-2]
    length, channels = currents_q.shape[-2:]
    flat = currents_q.reshape(-1, length, channels)
    batch = flat.shape[0]
    v_th_q = torch.as_tensor(params.v_th_q)
    u_th_q = torch.as_tensor(params.u_th_q)
    tau, tau_r = params.tau, params.tau_r
    spikes = torch.empty(flat.shape, dtype=torch.bool)
    names = ("v", "refr", "u", "saturated")
    trace = None if spikes_only else {
        n: torch.empty(flat.shape, dtype=torch.bool if n == "saturated" else torch.int64) for n in names
    }
    pmbc_sweeps = relax_sweeps = updates = 0
    for chunk in _channel_chunks(batch, length, channels):
        rows = _to_rows(flat[:, :, chunk]).to(torch.int64)
        vth_rows = v_th_q[chunk].repeat(batch)
        uth_rows = u_th_q[chunk].repeat(batch)
        # stage 1: float PMBC in LSB units
        drive = decay_scan(rows.to(torch.float64), tau)
        vth_f, uth_f = vth_rows.to(torch.float64), uth_rows.to(torch.float64)
        guess_s, n_pmbc = _pmbc_rows(drive, vth_f, uth_f, tau, tau_r)
        a, b = _reset_sums(guess_s, tau, tau_r)
        guess_u = drive - vth_f[:, None] * (a + guess_s.to(torch.float64))
        guess_refr = uth_f[:, None] * b
        del drive, a, b
        to_int = lambda x, fmt: fmt.saturate(torch.floor(x + 0.5).to(torch.int64))[0]  # noqa: E731
        # stages 2 and 3
        u, refr, s, v, sat, n_relax, n_updates = _relax_rows(
            params, rows, vth_rows, uth_rows,
            to_int(guess_u, params.state_fmt), to_int(guess_refr, params.refr_fmt), guess_s,
        )
        spikes[:, :, chunk] = _from_rows(s, batch)
        if trace is not None:
            for name, x in zip(names, (v, refr, u, sat)):
                trace[name][:, :, chunk] = _from_rows(x, batch)
        pmbc_sweeps = max(pmbc_sweeps, n_pmbc)
        relax_sweeps = max(relax_sweeps, n_relax)
        updates += n_updates
    shape = (*lead_shape, length, channels)
    full = None
    if trace is not None:
        full = RefractoryLIFTrace(
            v=trace["v"].reshape(shape), refr=trace["refr"].reshape(shape), u=trace["u"].reshape(shape),
            s=spikes.reshape(shape), saturated=trace["saturated"].reshape(shape),
        )
    return PMBCResult(spikes=spikes.reshape(shape), trace=full, pmbc_sweeps=pmbc_sweeps,
                      relax_sweeps=relax_sweeps, relax_updates=updates)


# ============================================================================================
# Registration (golden.kinds)
# ============================================================================================


class RefractoryLIFNeuron(RefractoryLIF):
    """:class:`RefractoryLIF` with the ``n_neurons`` interface of :class:`~golden.layers.SNNLayer`
    (sequential mode: gradients through the reset path)."""

    linear_init = "xavier_uniform"

    @property
    def n_neurons(self) -> int:
        return self.n_channels

    def forward(self, current: torch.Tensor, mode: str = "sequential", return_states: bool = False):
        return super().forward(current, mode=mode, return_states=return_states)


def _quantize(module: RefractoryLIF, input_fmt: QFormat, max_abs: dict, headroom: float):
    """Export formats: ``v``/``u`` and ``R`` with room for ``headroom`` times their calibrated
    magnitudes, thresholds as wide as the largest needs (each at least 2 integer bits); decays
    ``uQ0.18``."""
    frac = input_fmt.frac_bits
    threshold = float(max(module.v_th.detach().abs().max(), module.u_th.detach().abs().max()))
    formats = dict(
        input_fmt=input_fmt,
        state_fmt=QFormat(int_bits_for(max(max_abs["v"], max_abs["u"]), headroom, minimum=2), frac),
        refr_fmt=QFormat(int_bits_for(max_abs["refr"], headroom, minimum=2), frac),
        threshold_fmt=QFormat(int_bits_for(threshold + 2.0**-frac, minimum=2), frac),
        coef_fmt=QFormat(0, 18, signed=False),
    )
    params = module.to_params(**formats)
    rounded = {
        name: int(np.count_nonzero(quantize_decay(float(getattr(module, name)), formats["coef_fmt"])[1]))
        for name in ("tau", "tau_r")
    }
    return params, formats, rounded


def _float_trace(module: RefractoryLIF, currents: torch.Tensor) -> dict:
    spikes, states = module(currents, mode="sequential", return_states=True)
    return {"output": spikes, **states}


def _example_params(rng, n: int) -> RefractoryLIFParams:
    return RefractoryLIFParams.from_float(
        v_th=rng.uniform(0.3, 1.0, n), u_th=rng.uniform(0.0, 0.5, n), tau=float(rng.uniform(0.1, 0.7)),
        tau_r=float(rng.uniform(0.3, 0.9)),
        input_fmt=QFormat(4, 8), state_fmt=QFormat(4, 8), refr_fmt=QFormat(4, 8), threshold_fmt=QFormat(4, 8),
        coef_fmt=QFormat(0, 10, signed=False),
    )


NEURON_KIND = NeuronKind(
    name="refractory_lif",
    params_class=RefractoryLIFParams,
    run_int=run_int,
    float_modules=(RefractoryLIF,),
    model_fields=ModelFields(
        formats=("input_fmt", "state_fmt", "refr_fmt", "threshold_fmt", "coef_fmt"),
        arrays={"v_th_q": "threshold_fmt", "u_th_q": "threshold_fmt"},
        scalars={"tau_q": "coef_fmt", "tau_r_q": "coef_fmt"},
        decays=("tau_q", "tau_r_q"),
    ),
    state_words=lambda p: {"u": p.state_fmt, "refr": p.refr_fmt, "spike": 1},
    param_words=lambda p: {"v_th": p.threshold_fmt, "u_th": p.threshold_fmt},
    products=lambda p: [(p.state_fmt.width, p.coef_fmt.width), (p.refr_fmt.width, p.coef_fmt.width)],
    core_lut4=650,
    quantize=_quantize,
    float_trace=_float_trace,
    default_params=lambda rng, n: RefractoryLIFParams.from_float(v_th=np.ones(n), u_th=np.full(n, 0.5), tau=0.5),
    example_params=_example_params,
    train_choices={"rlif": RefractoryLIFNeuron},
)
