"""The host side of the UART link for cocotb testbenches: 8N1 bytes in and out of a board top.

Shared by the processor link and spike-frame testbenches. The top has ``clk``, ``rst``, ``rx``
(board input) and ``tx`` (board output); ``divisor`` is clock cycles per bit.
"""

from __future__ import annotations

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge


async def uart_send(dut, data: bytes, divisor: int):
    """Drive 8N1 bytes on ``rx``, ``divisor`` clock cycles per bit, one idle bit between bytes."""
    for byte in data:
        for bit in [0] + [(byte >> k) & 1 for k in range(8)] + [1, 1]:
            dut.rx.value = bit
            await ClockCycles(dut.clk, divisor)


async def uart_receive(dut, divisor: int, out: list):
    """Sample 8N1 bytes from ``tx`` in the middle of each bit into ``out``."""
    while True:
        await RisingEdge(dut.clk)
        if int(dut.tx.value) == 0:
            await ClockCycles(dut.clk, divisor // 2)
            byte = 0
            for k in range(8):
                await ClockCycles(dut.clk, divisor)
                byte |= int(dut.tx.value) << k
            await ClockCycles(dut.clk, divisor)  # stop bit
            out.append(byte)


async def start_link(dut, divisor: int) -> list:
    """Start a 100 MHz clock, hold ``rst`` for 3 cycles with ``rx`` idle, then receive ``tx``.

    Returns the list :func:`uart_receive` appends the board's bytes to.
    """
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rx.value = 1
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    received: list = []
    cocotb.start_soon(uart_receive(dut, divisor, received))
    return received
