"""The registry of neuron kinds: every fact about a kind is declared once, beside its parameter class.

Each neuron module (``golden/silif.py``, ``golden/lif.py``, ...) ends with one
:class:`NeuronKind` named ``NEURON_KIND``: the kind name written in model files, the integer
parameter class, the trainable float modules, the bit-exact ``run_int``, the model-file fields,
the word layouts of the core's state and parameter memories, and the hooks the export, the
default network and the tests use. :func:`neuron_kinds` collects them from the modules named in
:data:`KIND_MODULES`; every table over kinds (the network's, the model file's, the fit check's,
the export's, the training command's, the processor's, the benches') is derived from it.

The hardware side registers each kind's core in :mod:`hw.cores` (``golden/`` never imports
``hw/``).

Adding a kind: write ``golden/<kind>.py`` with its ``NEURON_KIND``, name the module in
:data:`KIND_MODULES`, write ``hw/cores/<kind>.py`` with its ``NEURON_CORE`` and name it in
``hw.cores.CORE_MODULES``; ``tests/test_kinds.py`` then runs it through the model file, the fit
check, the integer network and the processor.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from typing import Callable

from .fixed import QFormat

__all__ = ["ModelFields", "LayerRules", "NeuronKind", "KIND_MODULES", "neuron_kinds", "network_kinds", "step_kinds", "word_bits"]

#: The golden modules that declare a ``NEURON_KIND`` (one line per kind).
KIND_MODULES = ("refractory_lif", "silif", "csilif", "layers", "dhlif", "sahippo", "lif", "integrate_fire",
                "cuba_lif", "event_pool")


@dataclass(frozen=True)
class ModelFields:
    """What a kind stores in a model file (``docs/model_file.md``).

    Attributes
    ----------
    formats : tuple of str
        The parameter class's :class:`~golden.fixed.QFormat` fields.
    arrays : dict of str to str
        Per-neuron int64 arrays -> the format field that holds them.
    scalars : dict of str to str
        Integer fields -> the format field that holds them.
    flags : tuple of str
        Boolean fields, stored among the scalars as 0 or 1.
    decays : tuple of str
        The arrays and scalars that must lie in ``[0, 1)`` of their format.
    masks : tuple of str
        Optional per-neuron bool arrays kept for the quantisation report.
    mask_value : callable ``(params, mask) -> array or None``
        Reads a mask off the parameters.
    mask_kwargs : callable ``(masks: dict) -> dict``
        The parameter class's keyword arguments holding the masks read from a file.
    layer_weight : str or None
        The parameter class's keyword that takes the layer's ``weight_q`` (a kind whose core
        holds the synaptic weights itself, such as DH-LIF); the weights are stored once, as the
        layer's.
    array_shapes : callable ``(n_out) -> dict``
        Arrays whose shape is not ``(n_out,)``: name -> shape, or ``None`` for a shape taken from
        the manifest and checked by the parameter class. A format field of ``None`` in
        ``arrays`` leaves the range check to the parameter class too.
    enums : dict of str to tuple of str
        String fields with a fixed set of values, stored among the scalars as strings.
    """

    formats: tuple
    arrays: dict
    scalars: dict = field(default_factory=dict)
    flags: tuple = ()
    decays: tuple = ()
    masks: tuple = ()
    mask_value: Callable = lambda params, mask: None
    mask_kwargs: Callable = lambda masks: {}
    layer_weight: str | None = None
    array_shapes: Callable = lambda n_out: {}
    enums: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LayerRules:
    """How a layer of a kind runs when it is not a fully connected layer feeding a per-step core.

    The kinds without rules (LIF, SiLIF, C-SiLIF, ..., the leaky-integrator readout) run the
    network's default step: ``current = sat(input_fmt, bias_q + W_q @ x)``, then ``run_int``.
    A kind with rules (DH-LIF, the SA-HiPPO memory, the event-pooling readout) runs its own
    rule over the whole sample, and says what it passes on.

    Attributes
    ----------
    run : callable ``(layer, x) -> (currents, current_saturated, trace)``
        ``x`` int64 ``(T, n_in)`` (one sample: the network loops over a batch); the layer's
        inputs, its input-side saturation flags ``(T, n_out)`` and the trace of its core, whose
        fields are torch tensors with the step axis first.
    check : callable ``(layer, where)``
        Extra validation of a layer of the kind (raises ``ValueError`` naming ``where``); it
        replaces the default rule that weights, bias and ``neuron.input_fmt`` share their
        fractional bits.
    output_width : callable ``(neuron) -> int``
        Values per step the layer passes on (the next layer's ``n_in``).
    output : callable ``(trace) -> tensor (..., T, output_width)``
        What the layer passes on per step (spikes 0/1, or words for the readout).
    accumulator_range : callable ``(layer, max_events, previous) -> (lo, hi)``
        The range of the layer's accumulator (``max_events`` for layer 0, else ``None``;
        ``previous`` the layer before it or ``None``).
    scores : callable ``(trace) -> tensor (..., n_classes)`` or None
        A readout's class scores (exact integers).
    output_fmt : callable ``(neuron) -> QFormat`` or None
        The format of the words the layer passes on; ``None`` for spikes (0/1). The next layer
        must then be a kind with rules whose ``neuron.input_fmt`` is that format.
    counters : callable ``(trace) -> dict of str to int``
        The layer's bad-input counters (clipped intervals, saturated events, ...), as the
        hardware counts them.
    fit : callable ``(layer) -> (memories, products, lut4)``
        The fit check's estimate of the layer: memories as ``(name, depth, width, written)``,
        the multiplies as ``(a_bits, b_bits)``, and LUT4 besides the memories.
    """

    run: Callable
    check: Callable
    output_width: Callable
    output: Callable
    accumulator_range: Callable
    counters: Callable
    fit: Callable
    scores: Callable | None = None
    output_fmt: Callable | None = None


@dataclass(frozen=True)
class NeuronKind:
    """The facts of one neuron kind.

    Attributes
    ----------
    name : str
        The kind name written in model files (``"silif"``).
    params_class : type
        Integer parameter class (builds the golden model and the hardware core).
    run_int : callable ``(params, currents_q) -> trace``
        Bit-exact sequential model; the trace has ``saturated`` and, for a spiking kind, ``s``.
    float_modules : tuple of type
        Trainable float modules that export to this kind (first one: the kind's own).
    model_fields : ModelFields or None
        Model-file fields; ``None`` for a kind the network and the model file do not take.
    readout : bool
        The network's last layer (the non-spiking readout).
    state_words, param_words : callable ``(params) -> dict`` or None
        One word of the core's state / parameter memory: field name -> :class:`QFormat` or a
        bit count (an unsigned field). The fit check sizes the memories from them; the core's
        memory layouts are the same (``tests/test_kinds.py`` checks it).
    products : callable ``(params) -> list of (a_bits, b_bits)`` or None
        The multiplies of one core (the fit check counts MULT18X18D from them).
    core_lut4 : int or None
        Measured LUT4 of one core (the fit check's LUT figure).
    input_width : int
        Width of ``input_fmt`` the export aims for (18 fits one MULT18X18D port).
    quantize : callable ``(module, input_fmt, max_abs, headroom) -> (params, formats, rounded)`` or None
        The export's format choice and quantisation of a trained float module: the params, the
        formats by name, and the count of decays rounded to one by name.
    float_trace : callable ``(module, currents) -> dict`` or None
        The float module run on currents ``(B, T, n)``: ``{"output", <states>}``.
    default_params : callable ``(rng, n) -> params`` or None
        A hidden layer of :func:`golden.network.default_network` (default formats).
    example_params : callable ``(rng, n) -> params`` or None
        A small random layer whose neurons spike often (:func:`sim.processor_model.random_network`).
    train_choices : dict of str to type
        ``python -m golden.train --neuron`` choices -> float module class.
    layer : LayerRules or None
        The kind's own layer rule (DH-LIF, SA-HiPPO memory, event-pooling readout); ``None``
        for the default fully connected, per-step layer.
    """

    name: str
    params_class: type
    run_int: Callable
    float_modules: tuple = ()
    model_fields: ModelFields | None = None
    readout: bool = False
    state_words: Callable | None = None
    param_words: Callable | None = None
    products: Callable | None = None
    core_lut4: int | None = None
    input_width: int = 24
    quantize: Callable | None = None
    float_trace: Callable | None = None
    default_params: Callable | None = None
    example_params: Callable | None = None
    train_choices: dict = field(default_factory=dict)
    layer: LayerRules | None = None

    @property
    def in_network(self) -> bool:
        """The network and the model file take this kind."""
        return self.model_fields is not None


def word_bits(words: dict) -> int:
    """Bits of one memory word declared as field -> :class:`QFormat` or unsigned bit count."""
    return sum(value.width if isinstance(value, QFormat) else int(value) for value in words.values())


@functools.cache
def neuron_kinds() -> dict[str, NeuronKind]:
    """Every registered kind by name, collected from the ``NEURON_KIND`` of :data:`KIND_MODULES`."""
    kinds = {}
    for module in KIND_MODULES:
        kind = importlib.import_module(f"{__package__}.{module}").NEURON_KIND
        if kind.name in kinds:
            raise ValueError(f"neuron kind {kind.name!r} declared twice (golden.{module})")
        kinds[kind.name] = kind
    return kinds


def network_kinds() -> dict[str, NeuronKind]:
    """The kinds a network layer (and a model file) may use, by name."""
    return {name: kind for name, kind in neuron_kinds().items() if kind.in_network}


def step_kinds() -> dict[str, NeuronKind]:
    """The network kinds that run the default fully connected, per-step layer (no :class:`LayerRules`)."""
    return {name: kind for name, kind in network_kinds().items() if kind.layer is None}
