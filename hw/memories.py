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

from amaranth.hdl import Shape, Signal
from amaranth.lib import memory

from golden.fit import map_memory
from hw.ecp5 import BlockRAM

__all__ = ["READ_MODES", "parameter_banks", "parameter_memory", "state_memory"]

#: Read-during-write behaviour of a state memory's read port, by name (see :func:`state_memory`).
READ_MODES = ("registered", "transparent", "old")


def _in_block_ram(shape, depth: int, *, written: bool) -> bool:
    """Whether :func:`golden.fit.map_memory` (and so Yosys) puts the memory in block RAM."""
    return map_memory(depth, Shape.cast(shape).width, written=written)[0] == "dp16kd"


def _registered(m, name: str, port):
    """``port`` (a read port with ``addr``, ``en``, ``data``) with its data registered once more
    while ``en`` is high."""
    word = Signal(port.data.shape(), reset_less=True, name=f"{name}_output")
    with m.If(port.en):
        m.d.sync += word.eq(port.data)
    return SimpleNamespace(addr=port.addr, en=port.en, data=word)


def _block_ram(m, name: str, *, shape, depth: int, init):
    """A :class:`hw.ecp5.BlockRAM` with its output register; returns its read and write ports."""
    m.submodules[name] = ram = BlockRAM(shape=shape, depth=depth, init=init, output_register=True)
    return ram.read, ram.write


def state_memory(m, name: str, *, shape, depth: int, read: str = "registered", output_register: bool = False):
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

    ``output_register=True`` (latency 2, see the module docstring) needs ``read="registered"``:
    a block RAM's read of the word written at the same edge is undefined in hardware (the
    behavioural model returns the old word), so the caller must forward or discard such reads.
    """
    if read not in READ_MODES:
        raise ValueError(f"read must be one of {READ_MODES}, not {read!r}")
    if output_register:
        if read != "registered":
            raise ValueError(f"output_register needs read='registered', not {read!r}")
        if _in_block_ram(shape, depth, written=True):
            return _block_ram(m, name, shape=shape, depth=depth, init=[])
        read_port, write = state_memory(m, name, shape=shape, depth=depth)
        return _registered(m, name, read_port), write
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


def parameter_memory(m, name: str, *, shape, init: list, output_register: bool = False):
    """A read-only memory holding the words ``init`` (one per address); returns its synchronous
    read port (latency 1, or 2 with ``output_register``: see the module docstring). Where
    :func:`golden.fit.map_memory` puts the ROM in logic, the memory carries Yosys's
    ``rom_style = "logic"``, so Yosys does too."""
    if _in_block_ram(shape, len(init), written=False):
        if output_register:
            return _block_ram(m, name, shape=shape, depth=len(init), init=init)[0]
        attrs = None
    else:
        # Logic, as golden.fit counts it: near the fit check's threshold Yosys's own cost model
        # can pick a block RAM, which it maps without the output register.
        attrs = {"rom_style": "logic"}
    m.submodules[name] = mem = memory.Memory(shape=shape, depth=len(init), init=init, attrs=attrs)
    port = mem.read_port()
    return _registered(m, name, port) if output_register else port


def parameter_banks(m, name: str, *, shape, init: list, bank_depth: int, output_register: bool = False) -> list:
    """The words ``init`` as read-only banks of ``bank_depth`` words (the last one may be
    shorter), submodules ``{name}_0, {name}_1, ...``: bank ``k`` holds addresses
    ``k * bank_depth ..``. Returns one synchronous read port per bank (latency 1, or 2 with
    ``output_register``); address each with the low ``log2(bank_depth)`` bits and pick the bank
    by the rest."""
    return [parameter_memory(m, f"{name}_{bank}", shape=shape, init=init[start : start + bank_depth],
                             output_register=output_register)
            for bank, start in enumerate(range(0, len(init), bank_depth))]
