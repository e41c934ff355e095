"""The hard-block measurement design: four block RAMs feeding two multipliers and an accumulator.

Built with the hard blocks of :mod:`hw.ecp5` or with what Yosys infers from plain Amaranth
(``memory.Memory`` and ``*`` with registers in fabric), so the two can be synthesised, placed
and compared (``bench/hard_blocks.py``), and so a test can check in Yosys's netlist that the
hard blocks keep their registers (``tests/test_ecp5_hard_blocks.py``).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from hw.ecp5.block_ram import BlockRAM
from hw.ecp5.multiplier import Multiplier

__all__ = ["MemoryMultiplyAccumulate"]


class MemoryMultiplyAccumulate(wiring.Component):
    """``acc += m0[addr] * m1[addr] + m2[addr] * m3[addr]`` every clock, signed 18-bit words.

    Parameters
    ----------
    hard_memories : bool
        ``True``: :class:`~hw.ecp5.BlockRAM` with its output register (latency 2); ``False``:
        inferred memories (latency 1).
    hard_multipliers : bool
        ``True``: :class:`~hw.ecp5.Multiplier` (registers in the MULT18X18D); ``False``: ``*``
        between an operand register and two product registers in fabric, as the cores wrote
        products before the hard blocks.
    depth : int
        Words of each memory (1024: one DP16KD each).

    Members
    -------
    read_addr : ``In(address)``
        The address read from all four memories every clock.
    write_addr, write_data : ``In(address)``, ``In(signed(18))``
    write_en : ``In(4)``
        One write enable per memory.
    acc : ``Out(signed(48))``
        The running sum (wraps), never reset.
    """

    def __init__(self, *, hard_memories: bool, hard_multipliers: bool, depth: int = 1024):
        self._hard_memories = bool(hard_memories)
        self._hard_multipliers = bool(hard_multipliers)
        self._depth = depth
        address = (depth - 1).bit_length()
        super().__init__({
            "read_addr": In(address),
            "write_addr": In(address),
            "write_data": In(signed(18)),
            "write_en": In(4),
            "acc": Out(signed(48)),
        })

    def elaborate(self, platform):
        m = Module()
        words = []
        for index in range(4):
            if self._hard_memories:
                m.submodules[f"mem_{index}"] = mem = BlockRAM(shape=signed(18), depth=self._depth, output_register=True)
                write, read = mem.write, mem.read
            else:
                m.submodules[f"mem_{index}"] = mem = memory.Memory(shape=signed(18), depth=self._depth, init=[])
                write, read = mem.write_port(), mem.read_port()
            m.d.comb += [
                write.addr.eq(self.write_addr),
                write.data.eq(self.write_data),
                write.en.eq(self.write_en[index]),
                read.addr.eq(self.read_addr),
            ]
            words.append(read.data)

        products = []
        for index in range(2):
            a, b = words[2 * index], words[2 * index + 1]
            if self._hard_multipliers:
                m.submodules[f"mult_{index}"] = mult = Multiplier(signed(18), signed(18))
                m.d.comb += [mult.a.eq(a), mult.b.eq(b)]
                products.append(mult.p)
            else:
                a_q, b_q = Signal(signed(18), name=f"a_{index}"), Signal(signed(18), name=f"b_{index}")
                p_1, p_2 = Signal(signed(36), name=f"p_{index}_1"), Signal(signed(36), name=f"p_{index}_2")
                m.d.sync += [a_q.eq(a), b_q.eq(b), p_1.eq(a_q * b_q), p_2.eq(p_1)]
                products.append(p_2)

        total = Signal(signed(37))
        acc = Signal(signed(48))
        m.d.sync += [total.eq(products[0] + products[1]), acc.eq(acc + total)]
        m.d.comb += self.acc.eq(acc)
        return m

