"""Dendritic DH-LIF layer of FLAMES, spatial pooling and the event-pooling readout (NEURON_MATH §3.3).

Per neuron ``h`` with ``D`` dendritic branches, each branch ``d`` sees only its own disjoint,
contiguous slice of the ``C`` inputs (slice ``d`` is ``[d*C//D, (d+1)*C//D)``). Per tick, in
this order (decision 'Dendrite equations', FLAMES' seed form: no ``(1 - alpha_d)`` input factor)::

    i_d(t+1) = alpha_d * i_d(t) + sum_{j in slice d} W[h, j] p_j(t)     # branch currents
    u(t+1)   = beta * u(t) + sum_d i_d(t+1) - theta * s(t)              # soma, soft reset
    s(t+1)   = [u(t+1) > theta]                                         # strict threshold

``alpha_d = exp(-1/tau_d)`` (heterogeneous per branch), ``beta = exp(-1/tau_s)``. Zero initial
state (decision 'Zero initial state').

Integer semantics (:class:`DHLIFParams`): inputs ``p`` are non-negative integer event
counts; weights, currents, membrane and threshold share ``F`` fractional bits, so the
synaptic sums are exact integer sums. Each decay product is formed at full width and rounded
once, half up (decision 'Rounding'); ``i_d`` is saturated to ``current_fmt`` and ``u`` to ``membrane_fmt`` after
each update; ``sum_d i_d`` and the spike compare are exact. A neuron-tick "saturates"
when any clamp acted.

Pipeline pieces (FLAMES: events -> DH-LIF -> spatial pooling -> SA-HiPPO -> LayerNorm ->
event-pooling readout): :func:`spatial_pool` sums spikes over non-overlapping ``k x k``
windows of a ``(channels, height, width)`` neuron grid (exact on integers);
:class:`EventPoolReadout` averages features over events and applies a linear classifier (its
integer form is the ``event_pool`` kind, :mod:`golden.event_pool`). :class:`FlamesNetwork`
chains the whole pipeline in float for training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .fixed import QFormat, mul_round
from .kinds import LayerRules, ModelFields, NeuronKind
from .layers import quantize_decay, spike_boxcar

__all__ = [
    "NEURON_KIND",
    "branch_slices",
    "DHLIF",
    "DHLIFParams",
    "DHLIFTrace",
    "run_int",
    "spatial_pool",
    "EventPoolReadout",
    "FlamesNetwork",
    "DHLIFLayerTrace",
    "branch_drives",
    "drive_format",
]


def branch_slices(in_features: int, n_branches: int) -> list[slice]:
    """Disjoint contiguous input slices, one per branch, covering all inputs."""
    if n_branches < 1 or in_features < n_branches:
        raise ValueError(f"need 1 <= n_branches <= in_features, got {n_branches} branches for {in_features} inputs")
    bounds = [d * in_features // n_branches for d in range(n_branches + 1)]
    return [slice(bounds[d], bounds[d + 1]) for d in range(n_branches)]


def _branch_drive(weight, p, slices):
    """``sum_{j in slice d} W[h, j] p_j`` for every branch: (..., H, D) from p (..., C)."""
    return torch.stack([p[..., s] @ weight[:, s].T for s in slices], -1)


class DHLIF(nn.Module):
    """Float DH-LIF layer (trainable weights and time constants, boxcar surrogate spikes).

    Parameters
    ----------
    in_features, n_neurons, n_branches : int
        ``C``, ``H`` and ``D`` (default 4, decision 'Dendrite equations').
    tau_branch : tuple of float
        Branch time constants in ticks, log-spaced from the first to the second over the ``D``
        branches (the same for every neuron at init; trained per neuron and branch).
    tau_soma : float
        Soma time constant in ticks.
    threshold : float
        ``theta``.
    """

    def __init__(
        self,
        in_features: int,
        n_neurons: int,
        n_branches: int = 4,
        tau_branch: tuple[float, float] = (2.0, 32.0),
        tau_soma: float = 8.0,
        threshold: float = 1.0,
        seed: int = 0,
    ):
        self.slices = branch_slices(in_features, n_branches)
        if min(tau_branch) <= 0 or tau_soma <= 0 or threshold <= 0:
            raise ValueError("time constants and threshold must be > 0")
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        bound = 1.0 / math.sqrt(in_features / n_branches)
        self.weight = nn.Parameter((torch.rand(n_neurons, in_features, generator=gen, dtype=torch.float64) * 2 - 1) * bound)
        taus = torch.tensor(np.geomspace(tau_branch[0], tau_branch[1], n_branches), dtype=torch.float64)
        self.log_tau_branch = nn.Parameter(torch.log(taus).expand(n_neurons, -1).clone())
        self.log_tau_soma = nn.Parameter(torch.full((n_neurons,), math.log(tau_soma), dtype=torch.float64))
        self.threshold = float(threshold)

    @property
    def branch_decay(self) -> torch.Tensor:
        """``alpha_d`` (H, D)."""
        return torch.exp(-1.0 / torch.exp(self.log_tau_branch))

    @property
    def soma_decay(self) -> torch.Tensor:
        """``beta`` (H,)."""
        return torch.exp(-1.0 / torch.exp(self.log_tau_soma))

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        """Spikes (B, T, H) from input counts ``p`` (B, T, C)."""
        p = p.to(torch.float64)
        drive = _branch_drive(self.weight, p, self.slices)
        alpha, beta = self.branch_decay, self.soma_decay
        i = torch.zeros_like(drive[:, 0])
        u = torch.zeros_like(drive[:, 0, :, 0])
        s = torch.zeros_like(u)
        out = []
        for t in range(p.shape[1]):
            i = alpha * i + drive[:, t]
            u = beta * u + i.sum(-1) - self.threshold * s
            s = spike_boxcar(u - self.threshold)
            out.append(s)
        return torch.stack(out, 1)


@dataclass
class DHLIFParams:
    """Integer DH-LIF layer; the bit-exact specification of the dendritic core.

    Parameters
    ----------
    weight_q : np.ndarray (H, C)
        Synaptic weights in ``weight_fmt``.
    branch_decay_q : np.ndarray (H, D)
        ``alpha_d`` in ``decay_fmt`` (unsigned, < 1).
    soma_decay_q : np.ndarray (H,)
        ``beta`` in ``decay_fmt``.
    threshold_q : int
        ``theta`` in ``membrane_fmt`` (> 0).
    weight_fmt, current_fmt, membrane_fmt : QFormat
        Defaults ``sQ4.12``, ``sQ10.12``, ``sQ10.12`` (one number of fractional bits).
    decay_fmt : QFormat
        Default ``uQ0.16``.
    """

    weight_q: np.ndarray
    branch_decay_q: np.ndarray
    soma_decay_q: np.ndarray
    threshold_q: int
    weight_fmt: QFormat = field(default_factory=lambda: QFormat.parse("sQ4.12"))
    current_fmt: QFormat = field(default_factory=lambda: QFormat.parse("sQ10.12"))
    membrane_fmt: QFormat = field(default_factory=lambda: QFormat.parse("sQ10.12"))
    decay_fmt: QFormat = field(default_factory=lambda: QFormat.parse("uQ0.16"))

    def __post_init__(self):
        self.weight_q = np.asarray(self.weight_q, dtype=np.int64)
        self.branch_decay_q = np.asarray(self.branch_decay_q, dtype=np.int64)
        self.soma_decay_q = np.asarray(self.soma_decay_q, dtype=np.int64).reshape(-1)
        self.threshold_q = int(self.threshold_q)
        if self.weight_q.ndim != 2 or self.branch_decay_q.ndim != 2:
            raise ValueError("weight_q must be (H, C) and branch_decay_q (H, D)")
        h = self.weight_q.shape[0]
        if self.branch_decay_q.shape[0] != h or self.soma_decay_q.shape[0] != h:
            raise ValueError(
                f"weight_q, branch_decay_q and soma_decay_q need one row per neuron; got {h}, "
                f"{self.branch_decay_q.shape[0]}, {self.soma_decay_q.shape[0]}"
            )
        self.slices = branch_slices(self.in_features, self.n_branches)
        fracs = {str(f): f.frac_bits for f in (self.weight_fmt, self.current_fmt, self.membrane_fmt)}
        if len(set(fracs.values())) != 1:
            raise ValueError(f"weight_fmt, current_fmt and membrane_fmt must share fractional bits; got {', '.join(fracs)}")
        if self.decay_fmt.signed:
            raise ValueError(f"decay_fmt must be unsigned, got {self.decay_fmt}")
        one = 1 << self.decay_fmt.frac_bits
        for name in ("branch_decay_q", "soma_decay_q"):
            value = getattr(self, name)
            if np.any(value < 0) or np.any(value >= one):
                raise ValueError(f"{name} must lie in [0, 1) in {self.decay_fmt}")
        if not self.weight_fmt.contains(self.weight_q):
            raise ValueError(f"weight_q has values outside {self.weight_fmt}")
        if not 0 < self.threshold_q <= self.membrane_fmt.max_int:
            raise ValueError(f"threshold_q must be > 0 and fit {self.membrane_fmt}")

    @classmethod
    def from_layer(cls, layer: DHLIF, **formats: QFormat) -> "DHLIFParams":
        """Quantise a float :class:`DHLIF` (round half up; decays kept < 1)."""
        probe = cls(np.zeros((1, len(layer.slices))), np.zeros((1, len(layer.slices))), np.zeros(1), 1, **formats)
        with torch.no_grad():
            alpha_q, _ = quantize_decay(layer.branch_decay.numpy(), probe.decay_fmt)
            beta_q, _ = quantize_decay(layer.soma_decay.numpy(), probe.decay_fmt)
            return cls(
                weight_q=probe.weight_fmt.quantize(layer.weight.numpy()),
                branch_decay_q=alpha_q,
                soma_decay_q=beta_q,
                threshold_q=probe.membrane_fmt.quantize(layer.threshold),
                **formats,
            )

    @property
    def n_neurons(self) -> int:
        return int(self.weight_q.shape[0])

    @property
    def in_features(self) -> int:
        return int(self.weight_q.shape[1])

    @property
    def n_branches(self) -> int:
        return int(self.branch_decay_q.shape[1])

    def to_float_layer(self) -> DHLIF:
        """A float :class:`DHLIF` holding exactly this layer's quantised values."""
        layer = DHLIF(self.in_features, self.n_neurons, self.n_branches)
        with torch.no_grad():
            layer.weight.copy_(torch.as_tensor(self.weight_fmt.to_float(self.weight_q)))
            alpha = torch.as_tensor(self.decay_fmt.to_float(self.branch_decay_q))
            beta = torch.as_tensor(self.decay_fmt.to_float(self.soma_decay_q))
            layer.log_tau_branch.copy_(torch.log(-1.0 / torch.log(alpha)))
            layer.log_tau_soma.copy_(torch.log(-1.0 / torch.log(beta)))
        layer.threshold = self.membrane_fmt.to_float(self.threshold_q)
        return layer


@dataclass
class DHLIFTrace:
    """Every state at every tick: ``current`` (T, H, D), ``membrane`` (T, H), ``spike`` (T, H),
    ``saturated`` (T, H)."""

    current: np.ndarray
    membrane: np.ndarray
    spike: np.ndarray
    saturated: np.ndarray

    @property
    def saturation_count(self) -> int:
        return int(self.saturated.sum())


def _counts(params: DHLIFParams, counts) -> np.ndarray:
    """``counts`` as int64 ``(T, C)``, or a ``ValueError`` naming what is wrong."""
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.shape[1] != params.in_features:
        raise ValueError(f"counts must be (T, {params.in_features}), got {counts.shape}")
    if not np.issubdtype(counts.dtype, np.integer) or np.any(counts < 0):
        raise ValueError("DH-LIF inputs are non-negative integer event counts")
    return counts.astype(np.int64)


def run_int(params: DHLIFParams, counts) -> DHLIFTrace:
    """Bit-exact DH-LIF over input counts ``(T, C)`` (non-negative integers)."""
    counts = _counts(params, counts)
    c = params.decay_fmt.frac_bits
    h, d = params.n_neurons, params.n_branches
    i = np.zeros((h, d), dtype=np.int64)
    u = np.zeros(h, dtype=np.int64)
    s = np.zeros(h, dtype=bool)
    out = {k: [] for k in ("current", "membrane", "spike", "saturated")}
    for p in counts:
        drive = np.stack([params.weight_q[:, sl] @ p[sl] for sl in params.slices], -1)
        i, sat_i = params.current_fmt.saturate(mul_round(params.branch_decay_q, i, c) + drive)
        u, sat_u = params.membrane_fmt.saturate(
            mul_round(params.soma_decay_q, u, c) + i.sum(-1) - params.threshold_q * s.astype(np.int64)
        )
        s = u > params.threshold_q
        for k, v in (("current", i), ("membrane", u), ("spike", s), ("saturated", sat_i.any(-1) | sat_u)):
            out[k].append(v)
    t = counts.shape[0]
    empty = {"current": (t, h, d), "membrane": (t, h), "spike": (t, h), "saturated": (t, h)}
    return DHLIFTrace(**{k: np.array(v).reshape(empty[k]) for k, v in out.items()})


def spatial_pool(spikes, grid: tuple[int, int, int], kernel: int):
    """Sum over non-overlapping ``kernel x kernel`` windows of a ``(channels, height, width)`` grid.

    ``spikes`` (..., channels*height*width), numpy or torch, flattened channel-major. Returns
    (..., channels*(height//kernel)*(width//kernel)); exact on integers.
    """
    ch, hgt, wid = grid
    if kernel < 1 or hgt % kernel or wid % kernel:
        raise ValueError(f"pooling kernel {kernel} must divide the grid height {hgt} and width {wid}")
    if spikes.shape[-1] != ch * hgt * wid:
        raise ValueError(f"last dimension {spikes.shape[-1]} is not channels*height*width = {ch * hgt * wid}")
    lead = tuple(spikes.shape[:-1])
    x = spikes.reshape(*lead, ch, hgt // kernel, kernel, wid // kernel, kernel)
    return x.sum(-1).sum(-2).reshape(*lead, -1)


class EventPoolReadout(nn.Module):
    """Event pooling then a linear classifier: ``logits = W mean_t(f_t) + b``.

    ``forward(features (B, T, F))`` -> logits (B, n_classes).
    """

    def __init__(self, in_features: int, n_classes: int):
        super().__init__()
        self.linear = nn.Linear(in_features, n_classes, dtype=torch.float64)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features.to(torch.float64).mean(1))


class FlamesNetwork(nn.Module):
    """The FLAMES pipeline in float, for training on CPU (NEURON_MATH §3.3).

    ``counts (B, T, C)`` -> :class:`DHLIF` with ``grid = (channels, height, width)`` neurons
    -> :func:`spatial_pool` over ``pool x pool`` windows -> :class:`golden.sahippo.SAHiPPOLayer`
    with one channel per pooled neuron, run on the tick grid by FFT
    (:meth:`~golden.sahippo.SAHiPPOLayer.forward_grid`) -> ``LayerNorm`` over channels ->
    :class:`EventPoolReadout`. The SA-HiPPO output ``y`` enters the LayerNorm directly; the
    soma threshold belongs to the event-driven core, where ``y`` is thresholded per event.

    Returns logits ``(B, n_classes)``.
    """

    def __init__(
        self,
        in_features: int,
        grid: tuple[int, int, int],
        pool: int,
        n_state: int,
        n_classes: int,
        method: str = "zoh",
        n_branches: int = 4,
        seed: int = 0,
    ):
        from .sahippo import SAHiPPOLayer

        ch, hgt, wid = grid
        if pool < 1 or hgt % pool or wid % pool:
            raise ValueError(f"pooling kernel {pool} must divide the grid height {hgt} and width {wid}")
        super().__init__()
        self.grid, self.pool = grid, pool
        self.dendrites = DHLIF(in_features, ch * hgt * wid, n_branches, seed=seed)
        n_pooled = ch * (hgt // pool) * (wid // pool)
        self.ssm = SAHiPPOLayer(n_pooled, n_state, method, alpha=1.0, dt_scale=0.01, seed=seed)
        self.norm = nn.LayerNorm(n_pooled, dtype=torch.float64)
        self.readout = EventPoolReadout(n_pooled, n_classes)

    def forward(self, counts: torch.Tensor) -> torch.Tensor:
        spikes = self.dendrites(counts)
        pooled = spatial_pool(spikes, self.grid, self.pool)
        y = self.ssm.forward_grid(pooled.transpose(1, 2)).transpose(1, 2)
        return self.readout(self.norm(y))


# ============================================================================================
# The DH-LIF network layer and its registration (golden.kinds)
# ============================================================================================

@dataclass
class DHLIFLayerTrace:
    """A DH-LIF network layer over one sample, torch tensors with the step axis first:
    ``current`` (T, H, D), ``membrane`` (T, H), ``s`` (T, H) spikes, ``saturated`` (T, H)."""

    current: torch.Tensor
    membrane: torch.Tensor
    s: torch.Tensor
    saturated: torch.Tensor


def drive_format(params: DHLIFParams) -> QFormat:
    """Format of one branch drive (the core's input, ``hw.cores.dhlif.DHLIFCore``): ``current_fmt``
    with two more integer bits.

    Two extra integer bits make clamping the drive exact: a drive beyond this format pushes
    the branch current beyond ``current_fmt`` whatever the decayed current is, so the clamped
    and the exact drive saturate the current to the same rail and both raise the flag.
    """
    fmt = params.current_fmt
    return QFormat(fmt.int_bits + 2, fmt.frac_bits, fmt.signed)


def branch_drives(params: DHLIFParams, counts) -> tuple[np.ndarray, np.ndarray]:
    """Branch drives ``sum_{j in slice d} W[h, j] p_j(t)`` (T, H, D), clamped to :func:`drive_format`,
    and where the clamp acted (T, H, D).

    ``counts`` (T, C) are the non-negative integer input event counts of :func:`run_int`; the
    drives are what the synapse stage presents to the core (the clamp changes no state).
    """
    counts = _counts(params, counts)
    drive = np.stack([counts[:, sl] @ params.weight_q[:, sl].T for sl in params.slices], -1)
    clamped, flags = drive_format(params).saturate(drive)
    shape = (counts.shape[0], params.n_neurons, params.n_branches)
    return clamped.reshape(shape), np.asarray(flags).reshape(shape)


def _run_layer(layer, x):
    """The network layer: ``x`` (T, C) counts or spikes -> branch drives, their clamp flags, the trace.

    The layer's ``weight_q`` is the core's (``layer.neuron.weight_q``); the drives are
    :func:`branch_drives`, a neuron's flag set when the clamp acted on any of its branches.
    """
    params = layer.neuron
    x = np.asarray(x, dtype=np.int64)
    drives, clamped = branch_drives(params, x)
    trace = run_int(params, x)
    out = DHLIFLayerTrace(*(torch.from_numpy(np.ascontiguousarray(v)) for v in
                            (trace.current, trace.membrane, trace.spike, trace.saturated)))
    return torch.from_numpy(drives), torch.from_numpy(clamped.any(-1)), out


def _check_layer(layer, where: str) -> None:
    params = layer.neuron
    if layer.weight_q is not params.weight_q and not np.array_equal(layer.weight_q, params.weight_q):
        raise ValueError(f"{where}.weight_q: a DH-LIF layer's weights are its core's (neuron.weight_q)")
    if np.any(layer.bias_q != 0):
        raise ValueError(f"{where}.bias_q: a DH-LIF layer has no bias; all entries must be 0")
    if layer.weight_fmt != params.weight_fmt:
        raise ValueError(f"{where}.weight_fmt: {layer.weight_fmt} must be the core's weight_fmt {params.weight_fmt}")
    if layer.bias_fmt.frac_bits != params.weight_fmt.frac_bits:
        raise ValueError(f"{where}.bias_fmt: {layer.bias_fmt} must have the weights' {params.weight_fmt.frac_bits} "
                         "fractional bits")


def _accumulator_range(layer, max_events):
    """One branch sum per neuron and branch: bounded by the whole row's sum (``LayerParams.accumulator_range``)."""
    w = layer.weight_q
    if max_events is None:
        hi, lo = np.clip(w, 0, None).sum(axis=1), np.clip(w, None, 0).sum(axis=1)
    else:
        hi = int(max_events) * np.clip(w.max(axis=1), 0, None)
        lo = int(max_events) * np.clip(w.min(axis=1), None, 0)
    return min(0, int(lo.min())), max(0, int(hi.max()))


def _fit(layer):
    """Weights one per add (one lane), D branch accumulators per neuron, the core's state and parameter words."""
    p = layer.neuron
    state = (p.n_branches * p.current_fmt.width + p.membrane_fmt.width + 1)
    param = (p.n_branches + 1) * p.decay_fmt.width
    memories = [("weights", layer.n_in * layer.n_out, layer.weight_fmt.width, False),
                ("branch accumulators", layer.n_out, p.n_branches * layer.acc_bits, True),
                ("core state", layer.n_out, state, True),
                ("core params", layer.n_out, param, False)]
    products = [(p.current_fmt.width, p.decay_fmt.width)] * p.n_branches + [(p.membrane_fmt.width, p.decay_fmt.width)]
    return memories, products, 1157


LAYER_RULES = LayerRules(
    run=_run_layer,
    check=_check_layer,
    output_width=lambda params: params.n_neurons,
    output=lambda trace: trace.s,
    accumulator_range=_accumulator_range,
    counters=lambda trace: {"saturated": int(trace.saturated.sum())},
    fit=_fit,
)

NEURON_KIND = NeuronKind(
    name="dhlif",
    params_class=DHLIFParams,
    run_int=run_int,
    float_modules=(DHLIF,),
    model_fields=ModelFields(
        formats=("weight_fmt", "current_fmt", "membrane_fmt", "decay_fmt"),
        arrays={"branch_decay_q": "decay_fmt", "soma_decay_q": "decay_fmt"},
        scalars={"threshold_q": "membrane_fmt"},
        decays=("branch_decay_q", "soma_decay_q"),
        layer_weight="weight_q",
        array_shapes=lambda n_out: {"branch_decay_q": None},
    ),
    layer=LAYER_RULES,
)
