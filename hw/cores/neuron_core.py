"""Ports and derived facts shared by the time-multiplexed, current-driven neuron cores.

Every such core takes one ``(neuron, current)`` beat per neuron update on ``i_current``, emits
``{neuron}`` on ``o_spike`` for each update that fired, optionally every update on ``o_state``
(``{neuron, <state fields>, spike, saturated}``), and counts saturated updates in
``saturation_count``. A core subclasses :class:`NeuronCore`, names its parameter class and its
state fields, and writes the datapath in ``elaborate``; :meth:`NeuronCore.pipeline_control`
and :meth:`NeuronCore.output_register` give it the control every such core shares (stage
registers, accept with the read-after-write stall, output register with backpressure).
"""

from __future__ import annotations

from amaranth.hdl import Const, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.arith import COUNTER_WIDTH, any_of

__all__ = ["COUNTER_WIDTH", "NeuronCore", "output_register", "stage_registers"]


def stage_registers(m, advance):
    """``stage(name, value, shape=None)``: a pipeline register named ``name`` (of ``value``'s
    shape unless ``shape`` is given) loaded with ``value`` in every cycle ``advance`` is high."""

    def stage(name, value, shape=None):
        reg = Signal(shape if shape is not None else value.shape(), name=name)
        with m.If(advance):
            m.d.sync += reg.eq(value)
        return reg

    return stage


def output_register(core, m, advance, *, valid, neuron, fields: dict, spike, saturated):
    """The output register of a spiking core (a :class:`NeuronCore`, or the DH-LIF core):
    see :meth:`NeuronCore.output_register`. ``core`` has ``o_spike``, ``o_state`` (with
    ``_emit_state``), ``_state_layout`` ({neuron, fields..., spike, saturated}) and
    ``saturation_count``."""
    out_state = Signal(core._state_layout)
    spike_pending = Signal()
    state_pending = Signal()
    spike_done = ~spike_pending | core.o_spike.ready
    state_done = ~state_pending | core.o_state.ready if core._emit_state else Const(1)
    m.d.comb += [
        advance.eq(spike_done & state_done),
        core.o_spike.valid.eq(spike_pending),
        core.o_spike.payload.neuron.eq(out_state.neuron),
    ]
    if core._emit_state:
        m.d.comb += [core.o_state.valid.eq(state_pending), core.o_state.payload.eq(out_state)]
    with m.If(advance):
        m.d.sync += [
            out_state.neuron.eq(neuron),
            *(getattr(out_state, name).eq(value) for name, value in fields.items()),
            out_state.spike.eq(spike),
            out_state.saturated.eq(saturated),
            spike_pending.eq(valid & spike),
            state_pending.eq(valid if core._emit_state else 0),
        ]
        with m.If(valid & saturated & (core.saturation_count != (1 << COUNTER_WIDTH) - 1)):
            m.d.sync += core.saturation_count.eq(core.saturation_count + 1)
    with m.Else():
        with m.If(core.o_spike.ready):
            m.d.sync += spike_pending.eq(0)
        if core._emit_state:
            with m.If(core.o_state.ready):
                m.d.sync += state_pending.eq(0)


class NeuronCore(wiring.Component):
    """Base of the refractory LIF, SiLIF and C-SiLIF cores.

    Subclasses set :attr:`params_class` and :attr:`hazard_stages` and implement
    :meth:`state_fields`.
    """

    params_class: type = object
    #: Pipeline stages (1..hazard_stages) whose neuron may not be offered again yet. Every core
    #: sets it to its last stage (the write-back stage): the state memory's read port is not
    #: transparent, so a read in the cycle of the write-back would miss it.
    hazard_stages: int = 0

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

    # --- shared hardware ------------------------------------------------------------------
    def state_memory(self, shape) -> memory.Memory:
        """The state memory: ``n_neurons`` words of ``shape``, zero initial contents.

        Give it one combinational read port, addressed by :meth:`pipeline_control` and registered
        by :meth:`registered_read` (together a non-transparent synchronous read), and one write
        port (the write-back). It carries Yosys's ``no_rw_check`` attribute: a read in the
        cycle of a write to the same word may return anything. Without it Yosys keeps the
        read port's old-data semantics on such a collision by emulation (a registered address
        compare, the write data and a multiplexer LUT on every output bit), which puts a LUT
        between the block RAM output and its register, the slow path of the trained network
        tops. No core needs a defined result there: :meth:`pipeline_control` never accepts a
        beat whose neuron is in the write-back stage, and the read it issues for a beat it
        does not accept is discarded.
        """
        return memory.Memory(shape=shape, depth=self._params.n_neurons, init=[], attrs={"no_rw_check": 1})

    def pipeline_control(self, m, stages: int, read_ports):
        """Stage registers, stage 0's accept with its read-after-write stall, and the read ports.

        Creates ``advance`` (driven by :meth:`output_register`: high when the output register
        can take a beat, and then every stage register moves) and, per stage ``k = 1..stages``,
        ``valid[k]`` and ``neuron[k]`` (index 0 is ``None``). Stage 0 accepts the offered beat
        when ``advance`` is high and its neuron is in none of the stages ``1..hazard_stages``
        with ``valid`` set: that neuron's previous update has not been written back yet. The
        core's state read port is not transparent and a read that meets a write to its word is
        undefined (:meth:`state_memory`), which is why the window includes the write-back stage
        itself; a read one cycle later sees the write. ``read_ports`` (the
        state and parameter memories' read ports) are addressed with the offered neuron and
        enabled with ``advance``, so their data belong to the beat in stage 1.

        Returns ``(advance, valid, neuron)``. ``i_current.ready`` depends combinationally on
        ``advance`` and ``i_current.payload.neuron``, never on ``i_current.valid``.
        """
        if not 1 <= self.hazard_stages <= stages:
            raise ValueError(f"hazard_stages must be in 1..{stages}, not {self.hazard_stages}")
        offered = self.i_current.payload.neuron
        advance = Signal()
        index_shape = unsigned(self.index_bits)
        valid = [None] + [Signal(name=f"valid_{k}") for k in range(1, stages + 1)]
        neuron = [None] + [Signal(index_shape, name=f"neuron_{k}") for k in range(1, stages + 1)]
        with m.If(advance):
            m.d.sync += [valid[1].eq(self.i_current.valid & self.i_current.ready), neuron[1].eq(offered)]
            for k in range(2, stages + 1):
                m.d.sync += [valid[k].eq(valid[k - 1]), neuron[k].eq(neuron[k - 1])]

        hazard = Signal()
        m.d.comb += [
            hazard.eq(any_of(valid[k] & (neuron[k] == offered) for k in range(1, self.hazard_stages + 1))),
            self.i_current.ready.eq(advance & ~hazard),
        ]
        for port in read_ports:
            m.d.comb += port.addr.eq(offered)
            if port.domain != "comb":
                m.d.comb += port.en.eq(advance)
        return advance, valid, neuron

    def registered_read(self, m, port, advance):
        """The word of a combinational read port (``read_port(domain="comb")`` of
        :meth:`state_memory`) registered when ``advance`` is high: the behaviour of a
        non-transparent synchronous read port, data valid in stage 1.

        Written as a plain register behind an asynchronous read so that Yosys merges the two
        into the block RAM's read port itself (``memory_dff``), which is where it applies the
        memory's ``no_rw_check`` attribute; a synchronous Amaranth read port reaches Yosys
        already merged, with the collision semantics fixed, and gets the emulation logic.
        """
        word = Signal(port.data.shape(), reset_less=True, name="state_word_1")
        with m.If(advance):
            m.d.sync += word.eq(port.data)
        return word

    def output_register(self, m, advance, *, valid, neuron, fields: dict, spike, saturated):
        """The output register behind the last stage, its backpressure, and the saturation counter.

        ``valid``, ``neuron`` and the ``fields`` (the :meth:`state_fields` words, by name),
        ``spike`` and ``saturated`` are the last stage's values. The register offers the spike
        (if any) on ``o_spike`` and the update on ``o_state`` (with ``emit_state``) at once;
        ``advance`` is driven high in a cycle in which every pending output beat has been (or is
        being) accepted, so each output may take its beat in a different cycle and nothing is
        lost or repeated. The outputs' ``valid`` are registers. ``saturation_count`` counts
        the updates with ``saturated`` set and sticks at ``2**COUNTER_WIDTH - 1``.
        """
        expected = set(self.state_fields(self._params))
        if set(fields) != expected:
            raise ValueError(f"fields must name the state fields {sorted(expected)}, not {sorted(fields)}")
        output_register(self, m, advance, valid=valid, neuron=neuron, fields=fields, spike=spike,
                        saturated=saturated)

