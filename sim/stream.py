"""Stream payloads and stream endpoints for testbenches, generic over any ``data.StructLayout``.

Three things, shared by every core's tests:

* :func:`pack` / :func:`unpack`: a payload record (a ``dict`` of field name to int, nested
  ``dict`` for nested layouts) to and from the flat bit vector of a ``StructLayout``. The field
  offsets, widths and signedness come from the layout that defined the port, never from
  hand-counted offsets. Signed fields decode to negative ints, an ``ArrayLayout`` field to a
  dict by index (:func:`array_values` makes it a list).
* :class:`SimStreamSource` / :class:`SimStreamSink`: ``amaranth.sim`` testbench endpoints for a
  ``stream.Interface`` with seeded random idle cycles (source) and backpressure (sink), and
  :func:`run_simulation`, which clocks a design and runs its testbenches.
* :class:`CocotbStreamDriver` / :class:`CocotbStreamMonitor`: the same endpoints for cocotb on
  generated Verilog, where a stream port ``name`` appears as ``name__payload``,
  ``name__valid`` and ``name__ready`` (Amaranth's flattening of a component's ports).
* :func:`stream_ports`: the ``In(stream.Signature)`` and ``Out(stream.Signature)`` members of a
  component's signature, which :mod:`sim.harness` gives a driver and a monitor each.

All endpoints follow the ``amaranth.lib.stream`` transfer rule: a beat moves on a clock edge at
which both ``valid`` and ``ready`` are high. A source never waits for ``ready`` before raising
``valid`` and holds its payload until the beat moves; a sink may drop ``ready`` at any time.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Iterable, Mapping

from amaranth.hdl import Shape
from amaranth.lib import data, stream, wiring
from amaranth.sim import Simulator

__all__ = [
    "stream_ports",
    "pack",
    "unpack",
    "array_values",
    "SimStreamSource",
    "SimStreamSink",
    "run_simulation",
    "CocotbStreamDriver",
    "CocotbStreamMonitor",
]


# --- the stream ports of a component ---------------------------------------------------------
def stream_ports(component: wiring.Component) -> tuple[dict, dict]:
    """``(inputs, outputs)``: the component's stream ports by member name, in signature order.

    ``inputs`` holds every ``In(stream.Signature(...))`` member, ``outputs`` every
    ``Out(stream.Signature(...))`` member, each as the port object (``port.payload.shape()`` is
    the layout that defined it). Other members (counters, plain signals) are left out.
    """
    inputs, outputs = {}, {}
    for name, member in component.signature.members.items():
        if not member.is_signature:
            continue
        unflipped = member.signature.flip() if member.flow == wiring.In else member.signature
        if isinstance(unflipped, stream.Signature):
            (inputs if member.flow == wiring.In else outputs)[name] = getattr(component, name)
    return inputs, outputs


# --- payload records ------------------------------------------------------------------------
def pack(layout: data.StructLayout, record: Mapping) -> int:
    """Flatten ``record`` (field name -> int or nested mapping) into the layout's bit vector.

    Every field of the layout must be given, and each value must fit its field's shape;
    otherwise ``ValueError`` names the field.
    """
    return _pack(layout, record, prefix="")


def _pack(layout: data.StructLayout, record: Mapping, prefix: str) -> int:
    names = [name for name, _ in layout]
    missing = [name for name in names if name not in record]
    extra = [name for name in record if name not in names]
    if missing or extra:
        raise ValueError(
            f"payload record does not match the layout: missing {[prefix + n for n in missing]}, "
            f"unknown {[prefix + n for n in extra]}"
        )
    bits = 0
    for name, field in layout:
        value = record[name]
        if isinstance(field.shape, data.Layout):
            field_bits = _pack(field.shape, value, prefix=f"{prefix}{name}.")
        else:
            shape = Shape.cast(field.shape)
            value = int(value)
            lo = -(1 << (shape.width - 1)) if shape.signed else 0
            hi = (1 << (shape.width - 1)) - 1 if shape.signed else (1 << shape.width) - 1
            if not lo <= value <= hi:
                raise ValueError(f"payload field {prefix}{name}={value} does not fit {shape!r} ([{lo}, {hi}])")
            field_bits = value & ((1 << shape.width) - 1)
        bits |= field_bits << field.offset
    return bits


def unpack(layout: data.StructLayout, bits: int) -> dict:
    """Decode the layout's bit vector into a record (signed fields as negative ints, enum fields as their values)."""
    return _const_to_record(data.Const(layout, int(bits)))


def array_values(record: Mapping) -> list:
    """An ``ArrayLayout`` value as :func:`unpack` gives it (a dict by index), as a list."""
    return [record[k] for k in sorted(record)]


def _const_to_record(const: data.Const) -> dict:
    record = {}
    for name, _ in const.shape():
        value = const[name]
        if isinstance(value, data.Const):
            record[name] = _const_to_record(value)
        else:
            record[name] = value.value if isinstance(value, enum.Enum) else int(value)
    return record


# --- amaranth.sim endpoints -------------------------------------------------------------------
class SimStreamSource:
    """Feeds records into a ``stream.Interface`` from an ``amaranth.sim`` testbench.

    Parameters
    ----------
    port : stream.Interface
        The design's input stream (its payload must be a ``StructLayout`` view).
    records : iterable of dict
        Payload records, sent in order.
    idle_prob : float
        Before each beat, insert idle cycles (``valid`` low) while a seeded coin with this
        probability comes up; 0 sends back to back.
    seed : int
        Seed of the idle pattern.

    Use as ``sim.add_testbench(source.run)``; :attr:`sent` counts beats transferred,
    :attr:`cycles` the clock cycles spent (idle, waiting and transferring: equal to ``sent``
    when the design took one beat per cycle), :attr:`accepted_at` lists the cycle (counted
    from 0) in which each beat moved, :attr:`done` turns true after the last beat.
    """

    def __init__(self, port, records: Iterable[Mapping], *, idle_prob: float = 0.0, seed: int = 0):
        _check_prob("idle_prob", idle_prob)
        self.port = port
        self.records = list(records)
        self.idle_prob = idle_prob
        self.rng = random.Random(seed)
        self.sent = 0
        self.cycles = 0
        self.accepted_at: list[int] = []
        self.done = False

    async def run(self, ctx):
        layout = self.port.payload.shape()
        for record in self.records:
            while self.idle_prob and self.rng.random() < self.idle_prob:
                ctx.set(self.port.valid, 0)
                await ctx.tick()
                self.cycles += 1
            ctx.set(self.port.payload.as_value(), pack(layout, record))
            ctx.set(self.port.valid, 1)
            while True:
                _, _, ready = await ctx.tick().sample(self.port.ready)
                self.cycles += 1
                if ready:
                    break
            self.sent += 1
            self.accepted_at.append(self.cycles - 1)
        ctx.set(self.port.valid, 0)
        self.done = True


class SimStreamSink:
    """Collects beats from a ``stream.Interface`` in an ``amaranth.sim`` background testbench.

    Parameters
    ----------
    port : stream.Interface
        The design's output stream.
    backpressure_prob : float
        Each cycle ``ready`` is low with this (seeded) probability; 0 is always ready.
    seed : int
        Seed of the backpressure pattern.
    on_beat : callable, optional
        Called with each received record (e.g. :meth:`sim.checker.Scoreboard.observe`).

    Use as ``sim.add_testbench(sink.run, background=True)``; :attr:`beats` lists the records.
    """

    def __init__(self, port, *, backpressure_prob: float = 0.0, seed: int = 0, on_beat: Callable | None = None):
        _check_prob("backpressure_prob", backpressure_prob)
        self.port = port
        self.backpressure_prob = backpressure_prob
        self.rng = random.Random(seed)
        self.on_beat = on_beat
        self.beats: list[dict] = []

    async def run(self, ctx):
        layout = self.port.payload.shape()
        while True:
            ready = not (self.backpressure_prob and self.rng.random() < self.backpressure_prob)
            ctx.set(self.port.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(self.port.valid, self.port.payload.as_value())
            if ready and valid:
                record = unpack(layout, payload)
                self.beats.append(record)
                if self.on_beat is not None:
                    self.on_beat(record)


def run_simulation(dut, testbenches: Iterable[Callable], background: Iterable[Callable] = ()) -> None:
    """Simulate ``dut`` in ``amaranth.sim`` with a 100 MHz ``sync`` clock until every testbench
    of ``testbenches`` has returned; those of ``background`` (endpoints' ``run``) run beside them."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for testbench in background:
        sim.add_testbench(testbench, background=True)
    for testbench in testbenches:
        sim.add_testbench(testbench)
    sim.run()


# --- cocotb endpoints ----------------------------------------------------------------------------
class _CocotbStream:
    """The ``<name>__{payload,valid,ready}`` handles of one stream port of a cocotb DUT."""

    def __init__(self, dut, name: str, layout: data.StructLayout, clock, seed: int):
        self.name = name
        self.payload = getattr(dut, f"{name}__payload")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.layout = layout
        self.clock = clock
        self.rng = random.Random(seed)


class CocotbStreamDriver(_CocotbStream):
    """Drives the stream port ``<name>__{payload,valid,ready}`` of a cocotb DUT.

    Parameters
    ----------
    dut : cocotb handle
        The toplevel.
    name : str
        The Amaranth port name (``"i_current"``).
    layout : data.StructLayout
        The payload layout, taken from the component that generated the Verilog.
    clock : cocotb handle
        The clock the stream is synchronous to.
    idle_prob : float
        Seeded probability of an idle cycle before each beat.
    seed : int
        Seed of the idle pattern.

    ``await driver.send(records)`` returns once every beat has been accepted.
    """

    def __init__(self, dut, name: str, layout: data.StructLayout, clock, *, idle_prob: float = 0.0, seed: int = 0):
        _check_prob("idle_prob", idle_prob)
        super().__init__(dut, name, layout, clock, seed)
        self.idle_prob = idle_prob
        self.sent = 0
        self.valid.value = 0

    async def send(self, records: Iterable[Mapping]):
        from cocotb.triggers import RisingEdge

        for record in records:
            while self.idle_prob and self.rng.random() < self.idle_prob:
                self.valid.value = 0
                await RisingEdge(self.clock)
            self.payload.value = pack(self.layout, record)
            self.valid.value = 1
            await RisingEdge(self.clock)
            while not int(self.ready.value):
                await RisingEdge(self.clock)
            self.sent += 1
        self.valid.value = 0


class CocotbStreamMonitor(_CocotbStream):
    """Receives beats on ``<name>__{payload,valid,ready}`` of a cocotb DUT, with backpressure.

    Parameters as for :class:`CocotbStreamDriver`, plus ``backpressure_prob`` (seeded
    probability that ``ready`` is low in a cycle) and ``on_beat`` (called with each record).
    Start with ``cocotb.start_soon(monitor.run())``; :attr:`beats` lists the records.
    """

    def __init__(
        self,
        dut,
        name: str,
        layout: data.StructLayout,
        clock,
        *,
        backpressure_prob: float = 0.0,
        seed: int = 0,
        on_beat: Callable | None = None,
    ):
        _check_prob("backpressure_prob", backpressure_prob)
        super().__init__(dut, name, layout, clock, seed)
        self.backpressure_prob = backpressure_prob
        self.on_beat = on_beat
        self.beats: list[dict] = []
        self.ready.value = 0

    async def run(self):
        from cocotb.triggers import RisingEdge

        while True:
            ready = not (self.backpressure_prob and self.rng.random() < self.backpressure_prob)
            self.ready.value = int(ready)
            await RisingEdge(self.clock)
            if ready and int(self.valid.value):
                record = unpack(self.layout, int(self.payload.value))
                self.beats.append(record)
                if self.on_beat is not None:
                    self.on_beat(record)


def _check_prob(name: str, value: float):
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), not {value}")
