"""Library stream blocks: a queue, a register stage and a lowest-valid arbiter, joined to their
neighbours with :func:`amaranth.lib.wiring.connect`.

All follow :mod:`amaranth.lib.stream`'s transfer rules; their stream members are named ``i``
(input) and ``o`` (output).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Shape, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hw.arith import any_of, index_bits, tree_select

__all__ = ["LowestValidArbiter", "StreamQueue", "StreamRegister"]


class StreamQueue(wiring.Component):
    """A first-in first-out queue of ``depth`` beats between two streams of one payload shape.

    The storage is :class:`amaranth.lib.fifo.SyncFIFOBuffered` (its ``w_stream`` / ``r_stream``
    interfaces), so both ``i.ready`` and ``o.valid`` are registers: a queue between two blocks
    keeps the downstream block's ``ready`` logic out of the upstream block's cycle.

    Parameters
    ----------
    shape : shape-castable
        Payload of both streams.
    depth : int
        Beats the queue holds. One beat per cycle needs ``depth >= 3``: at depth 2 the inner
        FIFO has one entry, and its ``w_rdy`` is low while that entry moves into the output
        register, so the queue passes one beat every two cycles.

    Members
    -------
    i : ``In(stream.Signature(shape))``
    o : ``Out(stream.Signature(shape))``
        The beats of ``i`` in order.

    Timing
    ------
    A beat taken on ``i`` at clock edge ``k`` is offered on ``o`` from edge ``k + 2`` on (when
    the queue was empty); one beat per cycle in and out from ``depth = 3``.
    """

    def __init__(self, shape, *, depth: int):
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive int, not {depth!r}")
        self._depth = depth
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self.i.payload.shape()).width
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=width, depth=self._depth)
        w_stream, r_stream = fifo.w_stream, fifo.r_stream
        m.d.comb += [
            w_stream.payload.eq(self.i.payload),
            w_stream.valid.eq(self.i.valid),
            self.i.ready.eq(w_stream.ready),
            self.o.payload.eq(r_stream.payload),
            self.o.valid.eq(r_stream.valid),
            r_stream.ready.eq(self.o.ready),
        ]
        return m


class StreamRegister(wiring.Component):
    """A register stage of two beats between two streams: ``o.valid``, ``o.payload`` and
    ``i.ready`` are registers, and ``o.ready`` reaches only the output register's load.

    Where a consumer's ``ready`` is a long function of the payload it is offered (a neuron
    core's read-after-write compare), this keeps that ``ready`` out of a queue's internals: it
    only chooses whether the output register loads. The second beat (the skid register) holds
    the beat taken while the output register could not load, so ``i.ready`` need not wait for
    ``o.ready``.

    Parameters
    ----------
    shape : shape-castable
        Payload of both streams.

    Members
    -------
    i : ``In(stream.Signature(shape))``
    o : ``Out(stream.Signature(shape))``
        The beats of ``i`` in order.

    Timing
    ------
    A beat taken on ``i`` at clock edge ``k`` is offered on ``o`` from edge ``k + 1`` on (when
    the stage was empty); one beat per cycle while ``o.ready`` stays high. After a cycle of
    ``o`` not ready with a beat waiting on ``i``, ``i`` pauses for one cycle while the skid
    register empties.
    """

    def __init__(self, shape):
        self._shape = shape
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        skid_valid = Signal()
        skid = Signal(self._shape, name="skid")
        load = ~self.o.valid | self.o.ready  # the output register's beat leaves (or it has none)
        m.d.comb += self.i.ready.eq(~skid_valid)
        # The skid register copies the input whenever it is empty, so o.ready reaches only its
        # valid flag and the output register (timing); its data count only with skid_valid.
        with m.If(~skid_valid):
            m.d.sync += skid.eq(self.i.payload)
        with m.If(load):
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid), self.o.valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & ~skid_valid):
            m.d.sync += skid_valid.eq(1)
        return m


class LowestValidArbiter(wiring.Component):
    """Forwards the beat of the lowest-numbered input stream whose ``valid`` is high, with its number.

    Purely combinational, as plain expressions (Verilog simulators know them from time 0): the
    choice is a balanced tree (``ceil(log2(n))`` levels of 2:1 multiplexers, each pair taking
    its lower half's index when that half has a valid stream), and each payload field is
    selected by :func:`hw.arith.tree_select`, not a chain of one multiplexer per input.

    Parameters
    ----------
    layout : data.StructLayout
        Payload of every input (without an ``index`` field).
    n : int
        Number of inputs.

    Members
    -------
    i : ``In(stream.Signature(layout)).array(n)``
    o : ``Out(stream.Signature(output_layout))``
        ``{index, <layout's fields>}``: the chosen input's number and payload. ``i[k].ready`` is
        ``o.ready`` while input ``k`` is the chosen one; ``o.valid`` is high while any input is.
    """

    def __init__(self, layout: data.StructLayout, n: int):
        if not isinstance(layout, data.StructLayout) or "index" in layout.members:
            raise ValueError(f"layout must be a StructLayout without an index field, not {layout!r}")
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, not {n!r}")
        self._layout = layout
        self._output_layout = data.StructLayout({"index": unsigned(index_bits(n)), **dict(layout.members)})
        super().__init__({
            "i": In(stream.Signature(layout)).array(n),
            "o": Out(stream.Signature(self._output_layout)),
        })

    @property
    def output_layout(self) -> data.StructLayout:
        """Payload of :attr:`o`: ``{index, <layout's fields>}``."""
        return self._output_layout

    def elaborate(self, platform):
        m = Module()
        inputs = list(self.i)
        bits = len(self.o.payload.index)
        nodes = [(beat.valid, Const(0, bits)) for beat in inputs]  # (any valid, index within the node)
        level = 0
        while len(nodes) > 1:
            if len(nodes) % 2:
                nodes.append((Const(0, 1), Const(0, bits)))
            nodes = [(lo_valid | hi_valid, Mux(lo_valid, lo_index, hi_index | (1 << level)))
                     for (lo_valid, lo_index), (hi_valid, hi_index) in zip(nodes[0::2], nodes[1::2])]
            level += 1
        chosen = nodes[0][1]
        m.d.comb += [
            self.o.valid.eq(any_of(beat.valid for beat in inputs)),
            self.o.payload.index.eq(chosen),
        ]
        for field in self._layout.members:
            m.d.comb += self.o.payload[field].eq(tree_select(chosen, [beat.payload[field] for beat in inputs]))
        for k, beat in enumerate(inputs):
            m.d.comb += beat.ready.eq((chosen == k) & self.o.ready)
        return m
