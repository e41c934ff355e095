"""The memories of the cores and the synapse stage: state RAMs and parameter ROMs, built here only.

Every core and the synapse stage take their block RAMs from :func:`state_memory`,
:func:`parameter_memory` and :func:`parameter_banks`, so a change of how a memory is built (the
read register, the collision semantics, an instantiated primitive) is made in this module.
Each function adds its :class:`amaranth.lib.memory.Memory` to ``m.submodules`` under ``name``
and returns read and write ports with the members of Amaranth's synchronous ports: a read
port's ``addr`` and ``en`` (driven by the caller) and ``data``, valid the cycle after an enabled
read; a write port's ``addr``, ``data`` and ``en``.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Signal
from amaranth.lib import memory

__all__ = ["READ_MODES", "parameter_banks", "parameter_memory", "state_memory"]

#: Read-during-write behaviour of a state memory's read port, by name (see :func:`state_memory`).
READ_MODES = ("registered", "transparent", "old")


def state_memory(m, name: str, *, shape, depth: int, read: str = "registered"):
    """A read-write memory of ``depth`` words of ``shape`` with zero initial contents (decision 'Zero initial state').

    Returns ``(read_port, write_port)``; the read port's data arrive one cycle after a read
    with ``en`` high. ``read`` says what a read in the cycle of a write to the same word returns:

    * ``"registered"``: anything. The memory carries Yosys's ``no_rw_check`` attribute, and its
      read is a combinational read port plus a plain register loaded while ``en`` is high, so
      Yosys merges the two into the block RAM's read port itself (``memory_dff``), where it
      applies the attribute. Without it Yosys keeps old-data semantics on such a collision by
      emulation (a registered address compare, the write data and a multiplexer LUT on every
      output bit), which puts a LUT between the block RAM output and its register. A
      synchronous Amaranth read port reaches Yosys already merged, with the collision semantics
      fixed, and gets that emulation. In simulation the read returns the old word. For callers
      that never read a word in the cycle it is written, or discard such a read.
    * ``"transparent"``: the word being written (a read port transparent for the write port).
    * ``"old"``: the word before the write (a plain synchronous read port).
    """
    if read not in READ_MODES:
        raise ValueError(f"read must be one of {READ_MODES}, not {read!r}")
    attrs = {"no_rw_check": 1} if read == "registered" else None
    m.submodules[name] = mem = memory.Memory(shape=shape, depth=depth, init=[], attrs=attrs)
    write = mem.write_port()
    if read == "transparent":
        return mem.read_port(transparent_for=(write,)), write
    if read == "old":
        return mem.read_port(), write
    port = mem.read_port(domain="comb")
    word = Signal(port.data.shape(), reset_less=True, name=f"{name}_word")
    enable = Signal(name=f"{name}_read_en")
    with m.If(enable):
        m.d.sync += word.eq(port.data)
    return SimpleNamespace(addr=port.addr, en=enable, data=word), write


def parameter_memory(m, name: str, *, shape, init: list):
    """A read-only memory holding the words ``init`` (one per address); returns its synchronous
    read port."""
    m.submodules[name] = mem = memory.Memory(shape=shape, depth=len(init), init=init)
    return mem.read_port()


def parameter_banks(m, name: str, *, shape, init: list, bank_depth: int) -> list:
    """The words ``init`` as read-only banks of ``bank_depth`` words (the last one may be
    shorter), submodules ``{name}_0, {name}_1, ...``: bank ``k`` holds addresses
    ``k * bank_depth ..``. Returns one synchronous read port per bank; address each with the
    low ``log2(bank_depth)`` bits and pick the bank by the rest."""
    return [parameter_memory(m, f"{name}_{bank}", shape=shape, init=init[start : start + bank_depth])
            for bank, start in enumerate(range(0, len(init), bank_depth))]
