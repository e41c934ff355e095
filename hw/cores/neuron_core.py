"""Ports and derived facts shared by the time-multiplexed, current-driven neuron cores.

Every such core takes one ``(neuron, current)`` beat per neuron update on ``i_current``, emits
``{neuron}`` on ``o_spike`` for each update that fired, optionally every update on ``o_state``
(``{neuron, <state fields>, spike, saturated}``), and counts saturated updates in
``saturation_count``. A core subclasses :class:`NeuronCore`, names its parameter class and its
state fields, and writes the datapath in ``elaborate``.
"""

from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.arith import COUNTER_WIDTH

__all__ = ["COUNTER_WIDTH", "NeuronCore"]


class NeuronCore(wiring.Component):
    """Base of the refractory LIF, SiLIF and C-SiLIF cores.

    Subclasses set :attr:`params_class` and implement :meth:`state_fields`.
    """

    params_class: type = object

    def __init__(self, params, *, emit_state: bool = True):
        if not isinstance(params, self.params_class):
            raise TypeError(f"params must be a {self.params_class.__name__}, not {type(params).__name__}")
        self._params = params
        self._emit_state = bool(emit_state)
        index_shape = unsigned(self.index_bits)
        self._current_layout = data.StructLayout({"neuron": index_shape, "current": params.input_fmt.shape()})
        self._spike_layout = data.StructLayout({"neuron": index_shape})
        self._state_layout = data.StructLayout(
            {"neuron": index_shape, **self.state_fields(params), "spike": unsigned(1), "saturated": unsigned(1)}
        )
        members = {
            "i_current": In(stream.Signature(self._current_layout)),
            "o_spike": Out(stream.Signature(self._spike_layout)),
        }
        if self._emit_state:
            members["o_state"] = Out(stream.Signature(self._state_layout))
        members["saturation_count"] = Out(COUNTER_WIDTH)
        super().__init__(members)

    def state_fields(self, params) -> dict:
        """The core's state words reported on ``o_state`` (between ``neuron`` and ``spike``)."""
        raise NotImplementedError

    @property
    def params(self):
        return self._params

    @property
    def emit_state(self) -> bool:
        return self._emit_state

    @property
    def n_neurons(self) -> int:
        return self._params.n_neurons

    @property
    def index_bits(self) -> int:
        """Width of a neuron index (at least 1)."""
        return max(1, (self._params.n_neurons - 1).bit_length())

    @property
    def current_layout(self) -> data.StructLayout:
        """Payload of ``i_current``: ``{neuron, current}``."""
        return self._current_layout

    @property
    def spike_layout(self) -> data.StructLayout:
        """Payload of ``o_spike``: ``{neuron}``."""
        return self._spike_layout

    @property
    def state_layout(self) -> data.StructLayout:
        """Payload of ``o_state``: ``{neuron, <state fields>, spike, saturated}``."""
        return self._state_layout
