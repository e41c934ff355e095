"""Ports and derived facts shared by the time-multiplexed neuron cores.

Every such core takes one ``{neuron, <input fields>}`` beat per neuron update on its input
stream (``i_current``, or ``i_drive`` for DH-LIF), emits ``{neuron}`` on ``o_spike`` for each
update that fired, optionally every update on ``o_state`` (``{neuron, <state fields>, spike,
saturated}``), takes an optional ``clear`` of its state memory, and counts saturated updates in
``saturation_count``. A core subclasses :class:`NeuronCore`, declares its parameter class,
input stream, latency, hazard window, input and state fields, takes its memories from
:mod:`hw.memories`, and writes the datapath in ``elaborate``; :func:`pipeline_control`,
:meth:`CoreBase.write_back` and :meth:`NeuronCore.output_register` give it the control every
such core shares (stage registers, accept with the read-after-write stall, write-back with the
clear, output register with backpressure). The leaky-integrator readout builds on their common
base :class:`CoreBase` (input stream, state fields, clear, accept and write-back) with its own
outputs.
"""

from __future__ import annotations

from amaranth.hdl import Const, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.arith import COUNTER_WIDTH, any_of, count_saturating, index_bits

__all__ = ["COUNTER_WIDTH", "CoreBase", "NeuronCore", "output_register", "pipeline_control", "stage_registers",
           "write_back"]


def stage_registers(m, advance, *, reset_less: bool = False):
    """``stage(name, value, shape=None)``: a pipeline register named ``name`` (of ``value``'s
    shape unless ``shape`` is given) loaded with ``value`` in every cycle ``advance`` is high;
    with ``reset_less`` the domain reset leaves it alone (a data register whose stage has its
    own valid flag)."""

    def stage(name, value, shape=None):
        reg = Signal(shape if shape is not None else value.shape(), name=name, reset_less=reset_less)
        with m.If(advance):
            m.d.sync += reg.eq(value)
        return reg

    return stage


def pipeline_control(m, source, *, stages: int, hazard_stages: int, read_ports, accepting=None,
                     hazard_check: bool = True):
    """Stage registers of a time-multiplexed core, stage 0's accept with its read-after-write
    stall, and the read ports.

    ``source`` is the core's input stream (payload with a ``neuron`` field). Creates ``advance``
    (driven by the core's output register: high when it can take a beat, and then every stage
    register moves) and, per stage ``k = 1..stages``, ``valid[k]`` and ``neuron[k]`` (index 0 is
    ``None``). Stage 0 accepts the offered beat when ``advance`` (and ``accepting``, if given)
    is high and its neuron is in none of the stages ``1..hazard_stages`` with ``valid`` set:
    that neuron's previous update has not been written back yet (without ``hazard_check``, the
    parent's promise that this never happens, stage 0 accepts without that compare).
    ``read_ports`` (the state and parameter memories' read ports, :mod:`hw.memories`) are
    addressed with the offered neuron and enabled with ``advance``, so their data belong to the
    beat in stage 1.

    Returns ``(advance, valid, neuron)``. ``source.ready`` depends combinationally on
    ``advance`` and ``source.payload.neuron`` (only on ``advance`` and ``accepting`` without
    ``hazard_check``), never on ``source.valid``.
    """
    if not 1 <= hazard_stages <= stages:
        raise ValueError(f"hazard_stages must be in 1..{stages}, not {hazard_stages}")
    offered = source.payload.neuron
    advance = Signal()
    index_shape = offered.shape()
    valid = [None] + [Signal(name=f"valid_{k}") for k in range(1, stages + 1)]
    neuron = [None] + [Signal(index_shape, name=f"neuron_{k}") for k in range(1, stages + 1)]
    with m.If(advance):
        m.d.sync += [valid[1].eq(source.valid & source.ready), neuron[1].eq(offered)]
        for k in range(2, stages + 1):
            m.d.sync += [valid[k].eq(valid[k - 1]), neuron[k].eq(neuron[k - 1])]

    accept = advance if accepting is None else advance & accepting
    if hazard_check:
        hazard = Signal()
        m.d.comb += hazard.eq(any_of(valid[k] & (neuron[k] == offered) for k in range(1, hazard_stages + 1)))
        accept = accept & ~hazard
    m.d.comb += source.ready.eq(accept)
    for port in read_ports:
        m.d.comb += [port.addr.eq(offered), port.en.eq(advance)]
    return advance, valid, neuron


def write_back(m, port, *, addr, enable, fields, clear_active=None, clear_addr=None):
    """Drive a state memory's write port: ``fields`` (a dict naming every field of the memory's
    layout, or one value for a memory of plain words) at ``addr`` when ``enable`` is high, or
    zero at ``clear_addr`` while ``clear_active`` is high (a write in that cycle is lost, so a
    parent raises it only while no update is in flight). The per-sample clear of every core with
    a ``clear`` member (decision 'Per-sample state clear')."""
    if isinstance(port.data.shape(), data.Layout):
        words = {name for name, _ in port.data.shape()}
        if not isinstance(fields, dict) or set(fields) != words:
            raise ValueError(f"fields must name the state memory's words {sorted(words)}, not {fields!r}")
        targets = [(getattr(port.data, name), value) for name, value in fields.items()]
    else:
        targets = [(port.data, fields)]
    if clear_active is None:
        m.d.comb += [port.addr.eq(addr), port.en.eq(enable)]
        m.d.comb += [target.eq(value) for target, value in targets]
        return
    # Plain expressions (no m.If on comb): the generated Verilog knows them from time 0.
    m.d.comb += [port.addr.eq(Mux(clear_active, clear_addr, addr)), port.en.eq(clear_active | enable)]
    m.d.comb += [target.eq(Mux(clear_active, 0, value)) for target, value in targets]


def output_register(core, m, advance, *, valid, neuron, fields: dict, spike, saturated):
    """The output register of a spiking core (a :class:`NeuronCore`): see
    :meth:`NeuronCore.output_register`."""
    emit_state = core.emit_state
    out_state = Signal(core.state_layout)
    spike_pending = Signal()
    state_pending = Signal()
    # The skid register: the last stage's update, taken while the output register's beats wait.
    skid_state = Signal(core.state_layout)
    skid_full = Signal()
    spike_done = ~spike_pending | core.o_spike.ready
    state_done = ~state_pending | core.o_state.ready if emit_state else Const(1)
    leaves = spike_done & state_done  # the output register is free at this edge
    m.d.comb += [
        advance.eq(~skid_full),
        core.o_spike.valid.eq(spike_pending),
        core.o_spike.payload.neuron.eq(out_state.neuron),
    ]
    if emit_state:
        m.d.comb += [core.o_state.valid.eq(state_pending), core.o_state.payload.eq(out_state)]
    last_state = Signal(core.state_layout)  # the last stage's update, as the outputs carry it
    m.d.comb += [
        last_state.neuron.eq(neuron),
        *(getattr(last_state, name).eq(value) for name, value in fields.items()),
        last_state.spike.eq(spike),
        last_state.saturated.eq(saturated),
    ]
    with m.If(leaves):
        with m.If(skid_full):
            m.d.sync += [out_state.eq(skid_state), spike_pending.eq(skid_state.spike),
                         state_pending.eq(1 if emit_state else 0), skid_full.eq(0)]
        with m.Else():
            m.d.sync += [out_state.eq(last_state), spike_pending.eq(valid & spike),
                         state_pending.eq(valid if emit_state else 0)]
    with m.Else():
        with m.If(core.o_spike.ready):
            m.d.sync += spike_pending.eq(0)
        if emit_state:
            with m.If(core.o_state.ready):
                m.d.sync += state_pending.eq(0)
        # An update with an output beat to give (every valid one with emit_state, else a spike).
        with m.If(~skid_full & valid & (Const(1) if emit_state else spike)):
            m.d.sync += [skid_state.eq(last_state), skid_full.eq(1)]
    with m.If(advance):
        count_saturating(m, core.saturation_count, valid & saturated)


class CoreBase(wiring.Component):
    """The contract every time-multiplexed core shares (the spiking cores and the leaky-integrator
    readout): one ``{neuron, <input fields>}`` input stream, an optional ``clear`` of the state
    memory, a saturation counter, and the accept and write-back control.

    A subclass declares, as class attributes, :attr:`params_class`, :attr:`input_name` (its
    input stream member), :attr:`latency` and :attr:`hazard_stages`, and implements
    :meth:`input_fields` (if not the default ``current``), :meth:`state_fields` and
    :meth:`output_members`.

    Parameters
    ----------
    params
        An instance of :attr:`params_class` (``n_neurons`` and the formats).
    clearable : bool
        Add the :attr:`clear` port, through which a parent zeroes the state memory.
    hazard_check : bool
        Stall a neuron offered while its previous update is in flight (the read-after-write
        compare against :attr:`hazard_stages` stages). ``False`` only for a parent that never
        offers a neuron again before its previous update has left the core (the processor's
        spiking layers: a step's drain starts after every update of the previous step was
        counted out of the cores); the core's input ``ready`` is then its pipeline's advance, a
        register.

    Members
    -------
    <input_name> : ``In(stream.Signature(input_layout))``
        ``{neuron, <input fields>}``: one beat per neuron update.
    clear : ``In(clear_layout)``
        ``{active, neuron}``: in a cycle with ``active`` high, the state memory's write port
        writes zero at ``neuron`` instead of the pipeline's write-back (a write-back in that
        cycle is lost, so raise it only while no update is in flight). Only with
        ``clearable=True``.
    saturation_count : ``Out(32)``
        Updates in which a clamp acted; sticks at ``2**32 - 1``.
    """

    params_class: type = object
    #: Name of the input stream member.
    input_name: str = "i_current"
    #: Clocks from an input beat's transfer to its output beats being valid.
    latency: int = 0
    #: Pipeline stages (1..hazard_stages) whose neuron may not be offered again yet.
    hazard_stages: int = 0

    def __init__(self, params, *, clearable: bool = False, hazard_check: bool = True):
        if not isinstance(params, self.params_class):
            raise TypeError(f"params must be a {self.params_class.__name__}, not {type(params).__name__}")
        self._params = params
        self._clearable = bool(clearable)
        self._hazard_check = bool(hazard_check)
        index_shape = unsigned(self.index_bits)
        self._input_layout = data.StructLayout({"neuron": index_shape, **self.input_fields(params)})
        self._clear_layout = data.StructLayout({"active": unsigned(1), "neuron": index_shape})
        members = {self.input_name: In(stream.Signature(self._input_layout)), **self.output_members()}
        if self._clearable:
            members["clear"] = In(self._clear_layout)
        members["saturation_count"] = Out(COUNTER_WIDTH)
        super().__init__(members)

    def input_fields(self, params) -> dict:
        """The input beat's words (after ``neuron``): ``{current: input_fmt}``."""
        return {"current": params.input_fmt.shape()}

    def state_fields(self, params) -> dict:
        """The core's state words, as its state memory stores them and ``o_state`` reports them
        (after ``neuron``)."""
        raise NotImplementedError

    def output_members(self) -> dict:
        """The subclass's members between the input stream and ``clear``, by name (called once
        :attr:`params` is set)."""
        raise NotImplementedError

    @property
    def params(self):
        return self._params

    @property
    def clearable(self) -> bool:
        return self._clearable

    @property
    def n_neurons(self) -> int:
        return self._params.n_neurons

    @property
    def index_bits(self) -> int:
        """Width of a neuron index (at least 1)."""
        return index_bits(self._params.n_neurons)

    @property
    def input_stream(self):
        """The input stream member (the one named :attr:`input_name`)."""
        return getattr(self, self.input_name)

    @property
    def input_layout(self) -> data.StructLayout:
        """Payload of the input stream: ``{neuron, <input fields>}``."""
        return self._input_layout

    @property
    def current_layout(self) -> data.StructLayout:
        """Payload of ``i_current`` (the input layout of a current-driven core)."""
        return self._input_layout

    @property
    def clear_layout(self) -> data.StructLayout:
        """Shape of ``clear``: ``{active, neuron}``."""
        return self._clear_layout

    # --- shared hardware ------------------------------------------------------------------
    def pipeline_control(self, m, stages: int, read_ports, *, accepting=None):
        """:func:`pipeline_control` on the input stream with :attr:`hazard_stages` and
        :attr:`hazard_check`."""
        return pipeline_control(m, self.input_stream, stages=stages, hazard_stages=self.hazard_stages,
                                read_ports=read_ports, accepting=accepting, hazard_check=self._hazard_check)

    def write_back(self, m, port, *, neuron, enable, fields: dict, clear=None):
        """Drive the state memory's write port: the words ``fields`` (by name; every field of the
        memory's layout) at ``neuron`` when ``enable`` is high, or zero at ``clear.neuron`` while
        ``clear.active`` is high.

        ``clear`` (a value of :attr:`clear_layout`) is the :attr:`clear` member with
        ``clearable``, else none unless the core sweeps its own state (the readout)."""
        if clear is None and self._clearable:
            clear = self.clear
        write_back(m, port, addr=neuron, enable=enable, fields=fields,
                   clear_active=None if clear is None else clear.active,
                   clear_addr=None if clear is None else clear.neuron)


class NeuronCore(CoreBase):
    """Base of the time-multiplexed spiking cores (refractory LIF, SiLIF, C-SiLIF, DH-LIF, LIF,
    IF, CubaLIF): :class:`CoreBase` with spike and state outputs.

    Parameters
    ----------
    params
        An instance of :attr:`params_class` (``n_neurons`` and the formats).
    emit_state : bool
        Add the :attr:`o_state` port that reports every update.
    clearable, hazard_check : bool
        As :class:`CoreBase`.

    Members
    -------
    <input_name>, clear, saturation_count
        As :class:`CoreBase`.
    o_spike : ``Out(stream.Signature(spike_layout))``
        ``{neuron}``: one beat per update that fired, in input order.
    o_state : ``Out(stream.Signature(state_layout))``
        ``{neuron, <state fields>, spike, saturated}``: one beat per update, in input order.
        Only with ``emit_state=True``.
    """

    def __init__(self, params, *, emit_state: bool = True, clearable: bool = False, hazard_check: bool = True):
        self._emit_state = bool(emit_state)
        super().__init__(params, clearable=clearable, hazard_check=hazard_check)

    def output_members(self) -> dict:
        """``o_spike``, and ``o_state`` with ``emit_state``."""
        index_shape = unsigned(self.index_bits)
        self._spike_layout = data.StructLayout({"neuron": index_shape})
        self._state_layout = data.StructLayout(
            {"neuron": index_shape, **self.state_fields(self._params), "spike": unsigned(1), "saturated": unsigned(1)}
        )
        outputs = {"o_spike": Out(stream.Signature(self._spike_layout))}
        if self._emit_state:
            outputs["o_state"] = Out(stream.Signature(self._state_layout))
        return outputs

    @classmethod
    def branch_inputs(cls, params) -> dict | None:
        """The input fields that sum their own input slice of the layer's weights, each with its
        clamp: ``{field: (slice, QFormat)}`` for :class:`hw.processor.synapse.SynapseStage`;
        ``None`` (the default) for one ``current`` per neuron over every input."""
        return None

    @property
    def emit_state(self) -> bool:
        return self._emit_state

    @property
    def spike_layout(self) -> data.StructLayout:
        """Payload of ``o_spike``: ``{neuron}``."""
        return self._spike_layout

    @property
    def state_layout(self) -> data.StructLayout:
        """Payload of ``o_state``: ``{neuron, <state fields>, spike, saturated}``."""
        return self._state_layout

    # --- shared hardware ------------------------------------------------------------------
    def parameter_words(self) -> list[dict]:
        """The parameter memory's contents: per neuron, each field of the subclass's
        ``param_row_layout`` from the parameter object's per-neuron array of that name plus ``_q``."""
        columns = {name: getattr(self._params, f"{name}_q") for name, _ in self.param_row_layout}
        return [{name: int(column[i]) for name, column in columns.items()} for i in range(self.n_neurons)]

    def output_register(self, m, advance, *, valid, neuron, fields: dict, spike, saturated):
        """The output register behind the last stage, its skid register, its backpressure, and
        the saturation counter.

        ``valid``, ``neuron`` and the ``fields`` (the :meth:`state_fields` words, by name),
        ``spike`` and ``saturated`` are the last stage's values. The output register offers the
        spike (if any) on ``o_spike`` and the update on ``o_state`` (with ``emit_state``) at once;
        each output may take its beat in a different cycle, and nothing is lost or repeated. An
        update that arrives while the output register's beats wait goes to a skid register, and
        the pipeline holds while that is full: ``advance`` is that register's inverse, so no
        output ``ready`` reaches the stage enables, the read ports or the input's ``ready``
        (timing). With every output ready the pipeline advances in every cycle; an output that
        stalls costs one extra cycle when the skid register empties. The outputs' ``valid`` are
        registers. ``saturation_count`` counts the updates with ``saturated`` set and sticks at
        ``2**COUNTER_WIDTH - 1``.
        """
        expected = set(self.state_fields(self._params))
        if set(fields) != expected:
            raise ValueError(f"fields must name the state fields {sorted(expected)}, not {sorted(fields)}")
        output_register(self, m, advance, valid=valid, neuron=neuron, fields=fields, spike=spike,
                        saturated=saturated)
