"""The event-pooling readout: a linear classifier over the summed SA-HiPPO state (``golden/flames.py``).

The last layer of a FLAMES network. Its input at step ``k`` is what the SA-HiPPO memory layer
passes on: the modes of every channel that had an event at that step, 0 elsewhere (so the sum
over the steps is each memory's state summed over its own events). With ``W_q`` the layer's
weights in ``weight_fmt`` and ``b_q`` its bias at ``weight_fmt.frac_bits + input_fmt.frac_bits``
fractional bits (the product's)::

    acc_k    = W_q @ x_k                          # exact, one per class and step
    u_k      = b_q + sum_{j <= k} acc_j           # the running score
    scores   = u_{T-1}                            # exact integers; the decision is the argmax

No rounding and no saturation: the scores are exact (the integer path of
:func:`golden.flames.run_flames_int`). :class:`EventPoolParams` holds only the number of
classes and the input words' format; the weights are the layer's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .fixed import QFormat
from .kinds import LayerRules, ModelFields, NeuronKind

__all__ = ["NEURON_KIND", "EventPoolParams", "EventPoolTrace", "run_int"]


@dataclass
class EventPoolParams:
    """The event-pooling readout of ``n_classes`` classes over words in ``input_fmt`` (default ``sQ10.14``, the SA-HiPPO state)."""

    n_classes: int
    input_fmt: QFormat = field(default_factory=lambda: QFormat.parse("sQ10.14"))

    def __post_init__(self):
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, (int, np.integer)) or self.n_classes < 1:
            raise ValueError(f"n_classes must be a positive int, not {self.n_classes!r}")
        self.n_classes = int(self.n_classes)
        if not isinstance(self.input_fmt, QFormat) or not self.input_fmt.signed:
            raise ValueError(f"input_fmt must be a signed QFormat, not {self.input_fmt}")

    @property
    def n_neurons(self) -> int:
        return self.n_classes


@dataclass
class EventPoolTrace:
    """``u`` (..., T, classes): the running score after each step; ``saturated``: all False (nothing clamps)."""

    u: torch.Tensor
    saturated: torch.Tensor


def run_int(params: EventPoolParams, acc) -> EventPoolTrace:
    """Running scores from the per-step products ``acc`` (T, classes) = ``W_q @ x_k`` (bias added by the layer)."""
    acc = torch.as_tensor(np.asarray(acc, dtype=np.int64))
    if acc.ndim != 2 or acc.shape[1] != params.n_classes:
        raise ValueError(f"acc must be (T, {params.n_classes}), got {tuple(acc.shape)}")
    return EventPoolTrace(acc.cumsum(0), torch.zeros(acc.shape, dtype=torch.bool))


def _run_layer(layer, x):
    x = np.asarray(x, dtype=np.int64)
    acc = x @ layer.weight_q.T
    trace = run_int(layer.neuron, acc)
    trace.u += torch.from_numpy(layer.bias_q)
    return torch.from_numpy(acc), torch.zeros(acc.shape, dtype=torch.bool), trace


def _check_layer(layer, where: str) -> None:
    frac = layer.weight_fmt.frac_bits + layer.neuron.input_fmt.frac_bits
    if layer.bias_fmt.frac_bits != frac:
        raise ValueError(f"{where}.bias_fmt: {layer.bias_fmt} must have the product's {frac} fractional bits "
                         f"(weight_fmt {layer.weight_fmt} x input_fmt {layer.neuron.input_fmt})")


def _accumulator_range(layer, max_events):
    """One step's ``W_q @ x`` plus the bias, ``x`` any vector of ``input_fmt`` words."""
    fmt, w = layer.neuron.input_fmt, layer.weight_q
    hi = np.maximum(w * fmt.max_int, w * fmt.min_int).sum(axis=1)
    lo = np.minimum(w * fmt.max_int, w * fmt.min_int).sum(axis=1)
    his = [int(v) for v in np.concatenate([hi, hi + layer.bias_q, [0]])]
    los = [int(v) for v in np.concatenate([lo, lo + layer.bias_q, [0]])]
    return min(los), max(his)


#: Extra score bits over one step's accumulator: 2**16 steps of a sample.
SCORE_EXTRA_BITS = 16


def _fit(layer):
    """The weight ROM (one word per feature: its weights of every class), the pooled sums (a complex word of two
    ``input_fmt`` sums widened by :data:`SCORE_EXTRA_BITS` for ``2**16`` steps, per pair of
    features), the score registers and one ``weight x pooled sum`` multiply."""
    pool_bits = layer.neuron.input_fmt.width + SCORE_EXTRA_BITS
    memories = [("weights", layer.n_in, layer.n_out * layer.weight_fmt.width, False),
                ("pooled sums", layer.n_in // 2, 2 * pool_bits, True)]
    lut4 = 2 * layer.n_out * (layer.acc_bits + SCORE_EXTRA_BITS) + 150
    return memories, [(layer.weight_fmt.width, pool_bits)], lut4


NEURON_KIND = NeuronKind(
    name="event_pool",
    params_class=EventPoolParams,
    run_int=run_int,
    readout=True,
    model_fields=ModelFields(formats=("input_fmt",), arrays={}, scalars={"n_classes": None}),
    layer=LayerRules(
        run=_run_layer,
        check=_check_layer,
        output_width=lambda params: params.n_classes,
        output=lambda trace: trace.u,
        accumulator_range=_accumulator_range,
        counters=lambda trace: {},
        fit=_fit,
        scores=lambda trace: trace.u[..., -1, :],
    ),
)
