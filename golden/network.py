"""The golden integer network: event counts in, spikes layer by layer, class scores out.

This is the bit-exact specification of the streaming event processor. A network is
a chain of fully connected layers; every layer but the last ends in a spiking neuron core (any
spiking kind of the registry, :mod:`golden.kinds`), the last in the leaky-integrator readout
(:class:`~golden.layers.LIReadoutParams`, decision 'Readout decision').

Integer semantics
-----------------
* **Time.** An input event with tick ``t`` (relative to the sample start) belongs to step
  ``k = t // bin_ticks``; a sample of ``T`` steps covers ticks ``[0, T*bin_ticks)``. Empty
  steps still advance every neuron.
* **Per step ``k``, layer by layer.** The layer input ``x`` is the event-count vector of step
  ``k`` for layer 0 (non-negative ints, duplicates summed) or the spike vector (0/1) of the
  previous layer at the *same* step. Then::

      acc       = bias_q + W_q @ x                            # exact (int64)
      acc       = acc * row_scale_q      (scaled layers only)  # exact, one product per neuron
      current_q = sat(neuron.input_fmt, round_shift(acc, shift))  # counted per layer
      state     = neuron.step(state, current_q)               # the core's own integer step

  ``W_q`` is in ``weight_fmt``, ``bias_q`` in ``bias_fmt``; the two share ``f_w`` fractional
  bits, chosen per layer, independent of the core's ``f_in = neuron.input_fmt.frac_bits``.
  The optional per-row scale ``row_scale_q`` (unsigned ``row_scale_fmt``, ``f_s`` fractional
  bits) multiplies each neuron's sum once per step. :attr:`LayerParams.current_shift` is
  ``shift = f_w + f_s - f_in`` (``f_s = 0`` unscaled) and :func:`golden.fixed.round_shift`
  aligns the sum to ``f_in``: round half up for ``shift > 0``, exact otherwise. With ``f_w ==
  f_in`` and no scale the shift is 0 and ``current_q = sat(input_fmt, acc)``.
* **Decision.** Scores are ``sum_k u_k`` of the readout membrane (exact, wide); the prediction
  is their argmax, the first index winning ties.
* **Accumulator width.** The hardware adds one weight column per input event (a count of
  ``c`` is ``c`` additions, identical to ``W_q @ x`` because the sum is exact). Each layer's
  :attr:`LayerParams.acc_bits` is the signed width that holds ``W_q @ x`` and
  ``bias_q + W_q @ x`` for every admissible input: at most
  :attr:`NetworkParams.max_events_per_step` events per step into layer 0, any 0/1 spike
  vector into later layers. :class:`NetworkParams` computes it (or checks a declared one), so
  the hardware accumulator cannot overflow; :func:`run_network` refuses a step with more
  events than declared.

* **Kinds with their own layer rule.** A kind that declares :class:`golden.kinds.LayerRules`
  (DH-LIF, the SA-HiPPO memory, the event-pooling readout of a FLAMES network) runs its rule
  over the whole sample instead of the step above, and says what it passes on and how wide its
  accumulator is; ``docs/model_file.md`` states each rule.

:func:`run_network` returns a :class:`NetworkTrace` holding, per layer, the currents, their
saturation flags and the core's full ``run_int`` trace, so a mismatch with the hardware points
at one layer, one step and one state word (:meth:`NetworkTrace.first_mismatch`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import torch

from .data.events import CHANNEL_EVENT_DTYPE, ChannelPool, InputMap, bin_events
from .fixed import QFormat, round_shift
from .kinds import NeuronKind, network_kinds
from .layers import NEURON_KIND as LI_READOUT

__all__ = [
    "NEURON_KINDS",
    "neuron_kind",
    "signed_bits",
    "LayerParams",
    "NetworkParams",
    "LayerTrace",
    "NetworkTrace",
    "counts_from_events",
    "run_network",
    "default_network",
    "default_hidden_kinds",
    "DEFAULT_BIN_TICKS",
    "DEFAULT_MAX_EVENTS_PER_STEP",
    "ROW_SCALE_MAX_BITS",
]

#: Neuron kind name (as written in model files) -> integer parameter class, from :mod:`golden.kinds`.
NEURON_KINDS: dict[str, type] = {name: kind.params_class for name, kind in network_kinds().items()}

#: Default time-bin width of :func:`default_network`: 10 ms of microsecond ticks.
DEFAULT_BIN_TICKS = 10_000
#: Widest per-row scale: one MULT18X18D operand.
ROW_SCALE_MAX_BITS = 18
#: Default bound on input events per step (the real N-MNIST sample peaks at 318 per 10 ms).
DEFAULT_MAX_EVENTS_PER_STEP = 2048


def neuron_kind(neuron) -> str:
    """The kind name of a neuron parameter object (a key of :data:`NEURON_KINDS`)."""
    return _layer_kind(neuron).name


def _layer_kind(neuron) -> NeuronKind:
    for kind in network_kinds().values():
        if type(neuron) is kind.params_class:
            return kind
    raise ValueError(
        f"unknown neuron parameter type {type(neuron).__name__}: expected one of "
        + ", ".join(cls.__name__ for cls in NEURON_KINDS.values())
    )


def signed_bits(lo: int, hi: int) -> int:
    """Smallest two's complement width holding every integer in ``[lo, hi]`` (at least 1)."""
    lo, hi = int(lo), int(hi)
    need_hi = hi.bit_length() + 1 if hi > 0 else 1
    need_lo = (-lo - 1).bit_length() + 1 if lo < 0 else 1
    return max(need_hi, need_lo)


@dataclass
class LayerParams:
    """One fully connected layer and its neuron core.

    Parameters
    ----------
    weight_q : np.ndarray of int64, shape (n_out, n_in)
        Weights (batch norm folded in) in ``weight_fmt``.
    bias_q : np.ndarray of int64, shape (n_out,)
        Per-neuron bias (the folded batch-norm shift) in ``bias_fmt``.
    weight_fmt, bias_fmt : QFormat
        Signed formats sharing one number of fractional bits ``f_w`` (any, independent of
        ``neuron.input_fmt``).
    neuron : the parameters of a kind of :data:`NEURON_KINDS`
        The layer's neuron core, ``n_out`` neurons.
    acc_bits : int, optional
        Signed width of the hardware accumulator (``bias_q + W_q @ x``, before the row
        scale). Left out, :class:`NetworkParams` sets it to the width the layer needs; given,
        it is checked to be enough.
    row_scale_q : np.ndarray of int64, shape (n_out,), optional
        Per-neuron scale of the accumulated sum, non-negative, in ``row_scale_fmt``.
    row_scale_fmt : QFormat, optional
        Unsigned format of the scales, at most :data:`ROW_SCALE_MAX_BITS` bits (one
        MULT18X18D operand). Both row-scale fields are given, or neither.

    Raises
    ------
    ValueError
        On wrong shapes, values outside their formats, fractional bits of weights and biases
        that differ, or a row scale without its format; the message names the field (prefixed
        ``layers[i].`` when checked by :class:`NetworkParams`).
    """

    weight_q: np.ndarray
    bias_q: np.ndarray
    weight_fmt: QFormat
    bias_fmt: QFormat
    neuron: object
    acc_bits: int | None = None
    row_scale_q: np.ndarray | None = None
    row_scale_fmt: QFormat | None = None

    def __post_init__(self):
        self.weight_q = np.asarray(self.weight_q)
        self.bias_q = np.asarray(self.bias_q)
        if self.row_scale_q is not None:
            self.row_scale_q = np.asarray(self.row_scale_q)
        self.check("layer")

    def check(self, where: str) -> None:
        """Validate the layer; error messages start with ``where`` (e.g. ``layers[1]``)."""
        kind = neuron_kind(self.neuron)  # raises on an unknown neuron type
        for name in ("weight_q", "bias_q"):
            value = getattr(self, name)
            if value.dtype.kind not in "iu":
                raise ValueError(f"{where}.{name}: must hold integers, not {value.dtype}")
            setattr(self, name, value.astype(np.int64))
        if self.weight_q.ndim != 2 or 0 in self.weight_q.shape:
            raise ValueError(f"{where}.weight_q: needs shape (n_out, n_in) with both > 0, got {self.weight_q.shape}")
        n_out = self.weight_q.shape[0]
        if self.bias_q.shape != (n_out,):
            raise ValueError(f"{where}.bias_q: needs shape ({n_out},) (one per output neuron), got {self.bias_q.shape}")
        if self.neuron.n_neurons != n_out:
            raise ValueError(
                f"{where}.neuron: the {kind} core has {self.neuron.n_neurons} neurons but weight_q has {n_out} rows"
            )
        for name in ("weight_fmt", "bias_fmt"):
            fmt = getattr(self, name)
            if not isinstance(fmt, QFormat) or not fmt.signed:
                raise ValueError(f"{where}.{name}: must be a signed QFormat, not {fmt}")
        rules = _layer_kind(self.neuron).layer
        if rules is not None:
            rules.check(self, where)
        elif self.weight_fmt.frac_bits != self.bias_fmt.frac_bits:
            raise ValueError(
                f"{where}.bias_fmt: {self.bias_fmt} must have the fractional bits of weight_fmt {self.weight_fmt} "
                f"({self.weight_fmt.frac_bits})"
            )
        self._check_row_scale(where, n_out)
        for name, fmt in (("weight_q", self.weight_fmt), ("bias_q", self.bias_fmt)):
            value = getattr(self, name)
            if not fmt.contains(value):
                raise ValueError(
                    f"{where}.{name}: values {int(value.min())}..{int(value.max())} outside {fmt} "
                    f"({fmt.min_int}..{fmt.max_int})"
                )
        if self.acc_bits is not None:
            if not isinstance(self.acc_bits, (int, np.integer)) or not 2 <= int(self.acc_bits) <= 62:
                raise ValueError(f"{where}.acc_bits: must be an int in 2..62, not {self.acc_bits!r}")
            self.acc_bits = int(self.acc_bits)

    def _check_row_scale(self, where: str, n_out: int) -> None:
        scale, fmt = self.row_scale_q, self.row_scale_fmt
        if scale is None and fmt is None:
            return
        if scale is None or fmt is None:
            given, missing = ("row_scale_q", "row_scale_fmt") if fmt is None else ("row_scale_fmt", "row_scale_q")
            raise ValueError(f"{where}.{missing}: missing; {given} is given, and the two come together")
        if not isinstance(fmt, QFormat) or fmt.signed or fmt.width > ROW_SCALE_MAX_BITS:
            raise ValueError(
                f"{where}.row_scale_fmt: must be an unsigned QFormat of at most {ROW_SCALE_MAX_BITS} bits "
                f"(one multiplier operand), not {fmt}"
            )
        scale = np.asarray(scale)
        if scale.dtype.kind not in "iu":
            raise ValueError(f"{where}.row_scale_q: must hold integers, not {scale.dtype}")
        if scale.shape != (n_out,):
            raise ValueError(f"{where}.row_scale_q: needs shape ({n_out},) (one per output neuron), got {scale.shape}")
        if not fmt.contains(scale):
            raise ValueError(
                f"{where}.row_scale_q: values {int(scale.min())}..{int(scale.max())} outside {fmt} "
                f"({fmt.min_int}..{fmt.max_int})"
            )
        self.row_scale_q = scale.astype(np.int64)

    # --- derived facts ---------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """Neuron kind name (key of :data:`NEURON_KINDS`)."""
        return neuron_kind(self.neuron)

    @property
    def n_in(self) -> int:
        return int(self.weight_q.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.weight_q.shape[0])

    @property
    def is_readout(self) -> bool:
        return _layer_kind(self.neuron).readout

    @property
    def scaled(self) -> bool:
        """Whether the layer has a per-row scale."""
        return self.row_scale_q is not None

    @property
    def current_shift(self) -> int:
        """Fractional bits dropped from the (scaled) sum to reach the core's input format:
        ``f_w + f_s - f_in`` (``f_s = 0`` unscaled); negative means a left shift."""
        scale_frac = self.row_scale_fmt.frac_bits if self.scaled else 0
        return self.weight_fmt.frac_bits + scale_frac - self.neuron.input_fmt.frac_bits

    @property
    def scaled_bits(self) -> int:
        """Signed width of the sum after the row scale and before the shift: ``acc_bits``, plus
        the scale's width when scaled (a signed by unsigned product)."""
        if self.acc_bits is None:
            raise ValueError("acc_bits is unset: build the layer inside a NetworkParams")
        return self.acc_bits + (self.row_scale_fmt.width if self.scaled else 0)

    def current(self, acc):
        """``sat(input_fmt, round_shift(acc * row_scale_q, current_shift))`` of an int64 torch
        tensor of sums ``(..., n_out)``: the currents and their saturation flags."""
        if self.scaled:
            acc = acc * torch.from_numpy(self.row_scale_q)
        return self.neuron.input_fmt.saturate(round_shift(acc, self.current_shift))

    @property
    def n_outputs(self) -> int:
        """Values the layer passes on per step (the next layer's ``n_in``): ``n_out``, or what
        the kind's :class:`~golden.kinds.LayerRules` say (an SA-HiPPO memory passes its modes)."""
        rules = _layer_kind(self.neuron).layer
        return self.n_out if rules is None else int(rules.output_width(self.neuron))

    def accumulator_range(self, max_events: int | None) -> tuple[int, int]:
        """``(lo, hi)`` over every value of ``W_q @ x`` and ``bias_q + W_q @ x``.

        ``max_events`` given: ``x`` is any non-negative count vector summing to at most that
        (layer 0). ``None``: ``x`` is any 0/1 vector (a spike vector). A kind with its own
        layer rule bounds its own accumulator (:attr:`golden.kinds.LayerRules.accumulator_range`).
        """
        rules = _layer_kind(self.neuron).layer
        if rules is not None:
            return rules.accumulator_range(self, max_events)
        w = self.weight_q
        if max_events is None:
            hi = np.clip(w, 0, None).sum(axis=1)
            lo = np.clip(w, None, 0).sum(axis=1)
        else:
            hi = int(max_events) * np.clip(w.max(axis=1), 0, None)
            lo = int(max_events) * np.clip(w.min(axis=1), None, 0)
        his = [int(v) for v in np.concatenate([hi, hi + self.bias_q, [0]])]
        los = [int(v) for v in np.concatenate([lo, lo + self.bias_q, [0]])]
        # Python ints: no int64 overflow whatever the formats.
        return min(los), max(his)


@dataclass
class NetworkParams:
    """A whole network: input side, layers, and the bounds the hardware is sized for.

    Parameters
    ----------
    n_inputs : int
        Input channels (after the input map, when there is one).
    bin_ticks : int
        Time-bin width in event ticks (microseconds by default): one network step.
    layers : list of LayerParams
        Every layer but the last spiking, the last a :class:`~golden.layers.LIReadoutParams`.
    input_map : InputMap, optional
        Camera events -> channels; its ``n_channels`` must equal ``n_inputs``.
    max_events_per_step : int
        Most input events one step may carry (sizes layer 0's accumulator).
    provenance : dict
        Free-form JSON-able description of where the parameters came from (kept by model files).
    channel_pool : ChannelPool, optional
        Source channel events -> input channels (``pool`` adjacent sources summed); its
        ``n_channels`` must equal ``n_inputs``. A network has an ``input_map`` or a
        ``channel_pool``, not both.

    Raises
    ------
    ValueError
        Naming the field (``layers[i].…``) on any inconsistency: sizes that do not chain, a
        readout that is not last, a declared ``acc_bits`` too narrow, a wrong input map.
    """

    n_inputs: int
    bin_ticks: int
    layers: list
    input_map: InputMap | None = None
    max_events_per_step: int = DEFAULT_MAX_EVENTS_PER_STEP
    provenance: dict = field(default_factory=dict)
    channel_pool: ChannelPool | None = None

    def __post_init__(self):
        for name in ("n_inputs", "bin_ticks", "max_events_per_step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}: must be a positive int, not {value!r}")
            setattr(self, name, int(value))
        self.layers = list(self.layers)
        if not self.layers:
            raise ValueError("layers: a network needs at least the readout layer")
        if self.input_map is not None:
            if not isinstance(self.input_map, InputMap):
                raise ValueError(f"input_map: must be an InputMap or None, not {type(self.input_map).__name__}")
            if self.input_map.n_channels != self.n_inputs:
                raise ValueError(
                    f"input_map: maps to {self.input_map.n_channels} channels but n_inputs is {self.n_inputs}"
                )
        if self.channel_pool is not None:
            if not isinstance(self.channel_pool, ChannelPool):
                raise ValueError(f"channel_pool: must be a ChannelPool or None, not {type(self.channel_pool).__name__}")
            if self.input_map is not None:
                raise ValueError("channel_pool: a network takes camera events (input_map) or pooled channel "
                                 "events (channel_pool), not both")
            if self.channel_pool.n_channels != self.n_inputs:
                raise ValueError(
                    f"channel_pool: pools {self.channel_pool.n_sources} sources into {self.channel_pool.n_channels} "
                    f"channels but n_inputs is {self.n_inputs}"
                )
        n_prev, prev_name = self.n_inputs, "n_inputs"
        words_fmt = None  # the format of the previous layer's words, None for spikes or counts
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            where = f"layers[{i}]"
            if not isinstance(layer, LayerParams):
                raise ValueError(f"{where}: must be a LayerParams, not {type(layer).__name__}")
            layer.check(where)
            rules = _layer_kind(layer.neuron).layer
            if words_fmt is not None and (rules is None or getattr(layer.neuron, "input_fmt", None) != words_fmt):
                raise ValueError(f"{where}.neuron: takes the {words_fmt} words of layers[{i - 1}]; it must be a kind "
                                 f"that reads words (event_pool) with input_fmt {words_fmt}")
            if layer.n_in != n_prev:
                raise ValueError(f"{where}.weight_q: has {layer.n_in} columns but {prev_name} is {n_prev}")
            if i == last and not layer.is_readout:
                readout = " or ".join(name for name, kind in network_kinds().items() if kind.readout)
                raise ValueError(f"{where}.neuron: the last layer must be the {readout}, not {layer.kind}")
            if i != last and layer.is_readout:
                raise ValueError(f"{where}.neuron: {layer.kind} is only allowed as the last layer")
            lo, hi = layer.accumulator_range(self.max_events_per_step if i == 0 else None)
            need = signed_bits(lo, hi)
            if need > 62:
                raise ValueError(f"{where}: the accumulator needs {need} bits, more than int64 arithmetic allows")
            if layer.acc_bits is None:
                layer.acc_bits = need
            elif layer.acc_bits < need:
                bound = f"{self.max_events_per_step} events per step" if i == 0 else "one spike per input"
                raise ValueError(
                    f"{where}.acc_bits: {layer.acc_bits} bits cannot hold the accumulator range {lo}..{hi} "
                    f"reachable with {bound}; it needs {need}"
                )
            aligned = 0 if rules is not None else layer.scaled_bits + max(0, -layer.current_shift)
            if aligned > 62:
                raise ValueError(
                    f"{where}: the scaled and shifted sum needs {aligned} bits, more than int64 arithmetic allows; "
                    f"narrow row_scale_fmt or the weights' fractional bits"
                )
            words_fmt = rules.output_fmt(layer.neuron) if rules is not None and rules.output_fmt else None
            n_prev = layer.n_outputs
            prev_name = f"layers[{i}] n_out" if n_prev == layer.n_out else f"layers[{i}]'s output width ({layer.kind})"

    @property
    def n_classes(self) -> int:
        return self.layers[-1].n_out

    @property
    def kinds(self) -> list[str]:
        return [layer.kind for layer in self.layers]


# ============================================================================================
# Traces
# ============================================================================================


@dataclass
class LayerTrace:
    """One layer over a whole sample, every tensor shaped ``(..., T, n_out)``.

    Attributes
    ----------
    kind : str
        Neuron kind of the layer.
    currents : torch.Tensor of int64
        ``sat(input_fmt, round_shift((bias_q + W_q @ x) * row_scale_q, shift))`` fed to the
        core at each step (:meth:`LayerParams.current`).
    current_saturated : torch.Tensor of bool
        Where that saturation clamped.
    neuron : trace dataclass
        The kind's own ``run_int`` trace (``SiLIFTrace``, ``LIReadoutTrace``, ...): every
        state word at every step.
    """

    kind: str
    currents: torch.Tensor
    current_saturated: torch.Tensor
    neuron: object

    @property
    def is_readout(self) -> bool:
        return network_kinds()[self.kind].readout

    @property
    def spikes(self) -> torch.Tensor:
        """Spikes (bool) of a spiking layer (an SA-HiPPO memory: its soma spikes)."""
        if self.is_readout:
            raise ValueError("the readout layer does not spike; use .output (its membrane)")
        return self.neuron.s if hasattr(self.neuron, "s") else self.neuron.spike

    @property
    def output(self) -> torch.Tensor:
        """What the layer passes on: spikes (bool), the readout membrane (int64), or what the
        kind's layer rule says (the SA-HiPPO memory's posted modes)."""
        rules = network_kinds()[self.kind].layer
        if rules is not None:
            return rules.output(self.neuron)
        return self.neuron.u if self.is_readout else self.neuron.s

    def counters(self) -> dict[str, int]:
        """The layer's saturation and bad-input counters: ``current`` (input clamps), ``neuron``
        (core updates in which a clamp acted), and the kind's own (``clipped_interval`` of an
        SA-HiPPO memory)."""
        out = {"current": self.current_saturation_count, "neuron": self.neuron_saturation_count}
        rules = network_kinds()[self.kind].layer
        if rules is not None:
            out.update({name: value for name, value in rules.counters(self.neuron).items() if name != "saturated"})
        return out

    @property
    def current_saturation_count(self) -> int:
        """Clamped currents (the layer's input-side saturation counter)."""
        return int(self.current_saturated.sum())

    @property
    def neuron_saturation_count(self) -> int:
        """Neuron updates in which a state clamp acted (the core's counter)."""
        return int(self.neuron.saturated.sum())

    def state_fields(self) -> dict[str, torch.Tensor]:
        """``currents``, then every field of the core trace, in order (for comparisons)."""
        out = {"currents": self.currents, "current_saturated": self.current_saturated}
        out.update({f.name: getattr(self.neuron, f.name) for f in fields(self.neuron)})
        return out


@dataclass
class NetworkTrace:
    """Everything :func:`run_network` computed for one sample (or a batch).

    Attributes
    ----------
    counts : torch.Tensor of int64, shape (..., T, n_inputs)
        Input events per step and channel.
    layers : list of LayerTrace
        One per layer, in order.
    """

    counts: torch.Tensor
    layers: list

    @property
    def readout(self) -> LayerTrace:
        return self.layers[-1]

    @property
    def scores(self) -> torch.Tensor:
        """``sum_k u_k`` of the readout membrane, int64 ``(..., n_classes)`` (exact); the
        event-pooling readout's own scores (:mod:`golden.event_pool`)."""
        rules = network_kinds()[self.readout.kind].layer
        if rules is not None:
            return rules.scores(self.readout.neuron)
        return self.readout.neuron.u.sum(dim=-2)

    @property
    def prediction(self) -> torch.Tensor:
        """Argmax of :attr:`scores`, the first index winning ties."""
        scores = self.scores
        best = scores.max(dim=-1, keepdim=True).values
        idx = torch.arange(scores.shape[-1]).expand_as(scores)
        return torch.where(scores == best, idx, scores.shape[-1]).min(dim=-1).values

    @property
    def n_steps(self) -> int:
        return int(self.counts.shape[-2])

    def saturation_counts(self) -> list[dict[str, int]]:
        """Per layer: ``{"current": ..., "neuron": ...}`` saturation counts."""
        return [
            {"current": layer.current_saturation_count, "neuron": layer.neuron_saturation_count}
            for layer in self.layers
        ]

    def counters(self) -> list[dict[str, int]]:
        """Per layer: :meth:`LayerTrace.counters` (the saturation counts and the kind's own counters)."""
        return [layer.counters() for layer in self.layers]

    def first_mismatch(self, other: "NetworkTrace", fields=None) -> str | None:
        """Where ``other`` first differs from this trace, or ``None`` when they are identical.

        Layers are compared in order, each field of a layer in order, and within a field the
        earliest step wins, so the answer points at the first wrong word:
        ``"layers[1].re step 4 neuron 7: expected 812, got 813"``. A field with more axes than
        ``(..., step, neuron)`` (a DH-LIF layer's branch currents, an SA-HiPPO layer's modes)
        gives the rest as an element of its trailing shape:
        ``"layers[0].current step 4 neuron 7 element [2] of (4,): ..."``. ``fields`` limits the
        comparison to those names (e.g. ``{"currents", "s", "u"}`` for what a hardware tap
        observes); by default every field of :meth:`LayerTrace.state_fields` is compared.
        """
        n_batch = self.counts.dim() - 2  # counts are (..., T, n_inputs)
        if len(self.layers) != len(other.layers):
            return f"layers: expected {len(self.layers)}, got {len(other.layers)}"
        for i, (mine, theirs) in enumerate(zip(self.layers, other.layers)):
            a, b = mine.state_fields(), theirs.state_fields()
            for name, want in a.items():
                if fields is not None and name not in fields:
                    continue
                got = b.get(name)
                if got is None:
                    return f"layers[{i}].{name}: missing"
                if tuple(got.shape) != tuple(want.shape):
                    return f"layers[{i}].{name}: shape expected {tuple(want.shape)}, got {tuple(got.shape)}"
                diff = (want.to(torch.int64) != got.to(torch.int64)).nonzero()
                if diff.numel():
                    index = tuple(int(v) for v in diff[0])
                    where = _where(index, tuple(want.shape), n_batch)
                    return (
                        f"layers[{i}].{name} {where}: expected {int(want[index])}, got {int(got[index])}"
                    )
        return None


def _where(index: tuple, shape: tuple, n_batch: int) -> str:
    """``batch b .. step k neuron n`` for ``index`` into a field of ``shape``, and
    ``element [..] of (..)`` for the axes after the neuron's."""
    labels = ("batch",) * n_batch + ("step", "neuron")
    where = " ".join(f"{label} {v}" for label, v in zip(labels, index))
    rest = index[len(labels):]
    if rest:
        where += f" element [{', '.join(map(str, rest))}] of {tuple(shape[len(labels):])}"
    return where


# ============================================================================================
# Running
# ============================================================================================


def counts_from_events(params: NetworkParams, events: np.ndarray, n_steps: int, *, t_start: int = 0) -> np.ndarray:
    """Per-step event counts ``(n_steps, n_inputs)`` int64 from one sample's events.

    ``events`` are channel events (:data:`~golden.data.events.CHANNEL_EVENT_DTYPE`: source
    channels pooled by the network's ``channel_pool`` when it has one) or, when the network has
    an ``input_map``, camera events (:data:`~golden.data.events.CAMERA_EVENT_DTYPE` or tonic's
    dtypes, :func:`~golden.data.events.as_camera_events`).
    Event ``t`` belongs to step ``(t - t_start) // bin_ticks``; events at or after
    ``t_start + n_steps * bin_ticks`` lie outside the sample and are left out.

    Raises
    ------
    ValueError
        On another dtype, camera events without an input map, a channel ``>= n_inputs``, or an
        event before ``t_start``.
    """
    if int(n_steps) < 1:
        raise ValueError(f"n_steps must be positive, not {n_steps}")
    if events.dtype != CHANNEL_EVENT_DTYPE:
        if events.dtype.fields is None or not {"x", "y", "t", "p"} <= set(events.dtype.fields):
            raise ValueError(f"events must be camera events (fields x, y, t, p) or CHANNEL_EVENT_DTYPE arrays, "
                             f"not {events.dtype}")
        if params.input_map is None:
            raise ValueError("camera events need a network with an input_map; pass channel events instead")
        events = params.input_map(events)
    elif params.channel_pool is not None:
        events = params.channel_pool(events)
    return bin_events(events, params.n_inputs, params.bin_ticks, t_start=int(t_start), n_bins=int(n_steps))


def _as_counts(params: NetworkParams, counts_or_events, n_steps, t_start) -> torch.Tensor:
    if isinstance(counts_or_events, np.ndarray) and counts_or_events.dtype.names is not None:
        if n_steps is None:
            raise ValueError("n_steps is required for event input (the sample covers ticks [0, n_steps*bin_ticks))")
        counts = counts_from_events(params, counts_or_events, n_steps, t_start=t_start)
        return torch.from_numpy(counts)
    counts = torch.as_tensor(np.asarray(counts_or_events) if not isinstance(counts_or_events, torch.Tensor)
                             else counts_or_events)
    if counts.is_floating_point() or counts.dtype == torch.bool or counts.is_complex():
        raise ValueError(f"counts must be integers, not {counts.dtype}")
    counts = counts.to(torch.int64)
    if counts.dim() < 2 or counts.shape[-1] != params.n_inputs:
        raise ValueError(f"counts need shape (..., T, {params.n_inputs}), got {tuple(counts.shape)}")
    if n_steps is not None and counts.shape[-2] != int(n_steps):
        raise ValueError(f"counts hold {counts.shape[-2]} steps but n_steps is {n_steps}")
    if counts.shape[-2] < 1:
        raise ValueError("counts need at least one step")
    if bool((counts < 0).any()):
        raise ValueError("counts must be non-negative (events per step and channel)")
    return counts


def run_network(params: NetworkParams, counts_or_events, n_steps: int | None = None, *, t_start: int = 0) -> NetworkTrace:
    """Run the integer network bit-exactly over one sample or a batch.

    Parameters
    ----------
    params : NetworkParams
    counts_or_events : array of int, shape (..., T, n_inputs), or an event array
        Event counts per step and channel (any leading batch dims), or one sample's events
        (see :func:`counts_from_events`).
    n_steps : int, optional
        Steps to run; required for events, checked against ``T`` for counts.
    t_start : int
        Tick of the sample start (events only).

    Returns
    -------
    NetworkTrace

    Raises
    ------
    ValueError
        On malformed input, or a step carrying more than ``params.max_events_per_step`` events
        (the hardware's accumulators are only sized for that many).
    """
    counts = _as_counts(params, counts_or_events, n_steps, t_start)
    per_step = counts.sum(dim=-1)
    if bool((per_step > params.max_events_per_step).any()):
        index = tuple((per_step > params.max_events_per_step).nonzero()[0].tolist())
        sample = f"sample {index[:-1]} " if len(index) > 1 else ""
        raise ValueError(
            f"{sample}step {index[-1]} carries {int(per_step[index])} events, more than max_events_per_step="
            f"{params.max_events_per_step} the accumulators are sized for"
        )
    x = counts
    traces = []
    for layer in params.layers:
        rules = _layer_kind(layer.neuron).layer
        if rules is not None:
            trace = _run_rules(layer, rules, x)
            traces.append(trace)
            x = rules.output(trace.neuron).to(torch.int64)
            continue
        weight = torch.from_numpy(layer.weight_q)
        acc = torch.from_numpy(layer.bias_q) + _int_matmul(x, weight)
        current, saturated = layer.current(acc)
        neuron_trace = _layer_kind(layer.neuron).run_int(layer.neuron, current)
        traces.append(LayerTrace(kind=layer.kind, currents=current, current_saturated=saturated, neuron=neuron_trace))
        if not layer.is_readout:
            x = neuron_trace.s.to(torch.int64)
    return NetworkTrace(counts=counts, layers=traces)


def _run_rules(layer: LayerParams, rules, x: torch.Tensor) -> LayerTrace:
    """A layer of a kind with its own rule, sample by sample over the batch dims of ``x``."""
    lead = tuple(x.shape[:-2])
    flat = x.reshape(-1, *x.shape[-2:])
    runs = [rules.run(layer, sample.numpy()) for sample in flat]

    def stack(values):
        return torch.stack(list(values)).reshape(*lead, *values[0].shape)

    neuron = type(runs[0][2])(**{f.name: stack([getattr(r[2], f.name) for r in runs]) for f in fields(runs[0][2])})
    return LayerTrace(kind=layer.kind, currents=stack([r[0] for r in runs]),
                      current_saturated=stack([r[1] for r in runs]), neuron=neuron)


def _int_matmul(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Exact ``x @ weight.T`` for int64 tensors (numpy's integer matmul: no float rounding)."""
    return torch.from_numpy(np.matmul(x.numpy(), weight.numpy().T))


# ============================================================================================
# The embedded default network
# ============================================================================================

#: Camera input of :func:`default_network`: the 34x34 N-MNIST sensor, 4x4 pooling -> 2x9x9.
DEFAULT_INPUT_MAP = InputMap(sensor_size=(34, 34), pool=(4, 4), split_polarity=True)
DEFAULT_HIDDEN = 32
DEFAULT_CLASSES = 10


def default_network(seed: int = 0, hidden_kind: str = "csilif", n_hidden: int = DEFAULT_HIDDEN) -> NetworkParams:
    """A small embedded network that builds out of the box: 162 -> ``n_hidden`` -> 10.

    N-MNIST camera events, pooled 4x4 per polarity (162 channels), 10 ms steps, one hidden
    spiking layer of ``hidden_kind`` (any kind of :func:`default_hidden_kinds`) and a
    10-class leaky-integrator readout. Weights are seeded random (not trained: the predictions
    mean nothing), drawn so that the hidden layer spikes at a moderate rate on real N-MNIST
    recordings; the same ``seed`` always gives the same parameters.
    """
    kinds = default_hidden_kinds()
    if hidden_kind not in kinds:
        raise ValueError(f"hidden_kind must be one of {', '.join(map(repr, kinds))}, not {hidden_kind!r}")
    if not isinstance(n_hidden, int) or n_hidden < 1:
        raise ValueError(f"n_hidden must be a positive int, not {n_hidden!r}")
    rng = np.random.default_rng(seed)
    n_in = DEFAULT_INPUT_MAP.n_channels
    neuron = network_kinds()[hidden_kind].default_params(rng, n_hidden)
    frac = neuron.input_fmt.frac_bits
    weight_fmt, bias_fmt = QFormat(2, frac), QFormat(3, frac)
    w_hidden = rng.normal(0.0, 0.1, (n_hidden, n_in))
    b_hidden = rng.normal(-0.05, 0.05, n_hidden)
    hidden = LayerParams(weight_fmt.quantize(w_hidden), bias_fmt.quantize(b_hidden), weight_fmt, bias_fmt, neuron)

    readout_neuron = LI_READOUT.default_params(rng, DEFAULT_CLASSES)
    rfrac = readout_neuron.input_fmt.frac_bits
    rw_fmt, rb_fmt = QFormat(2, rfrac), QFormat(2, rfrac)
    readout = LayerParams(
        rw_fmt.quantize(rng.normal(0.0, 0.4, (DEFAULT_CLASSES, n_hidden))),
        rb_fmt.quantize(rng.normal(0.0, 0.05, DEFAULT_CLASSES)),
        rw_fmt,
        rb_fmt,
        readout_neuron,
    )
    return NetworkParams(
        n_inputs=n_in,
        bin_ticks=DEFAULT_BIN_TICKS,
        layers=[hidden, readout],
        input_map=DEFAULT_INPUT_MAP,
        max_events_per_step=DEFAULT_MAX_EVENTS_PER_STEP,
        provenance={"source": "golden.network.default_network", "seed": int(seed), "hidden_kind": hidden_kind,
                    "trained": False},
    )


def default_hidden_kinds() -> tuple[str, ...]:
    """The spiking kinds :func:`default_network` builds a hidden layer of (those with ``default_params``)."""
    return tuple(name for name, kind in network_kinds().items() if not kind.readout and kind.default_params)
