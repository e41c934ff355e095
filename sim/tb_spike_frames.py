"""cocotb testbench of SPIKE output on the generated Verilog of :class:`ProcessorLink` (Icarus).

Run through :func:`sim.runner.run_cocotb` from ``tests/test_spike_frames.py``. The configuration::

    {"divisor": int, "frames": hex str, "n_scores": int, "max_cycles": int, "out_path": str}

* **Driver**: the host-to-board byte stream ``frames`` as 8N1 on ``rx``, ``divisor`` clock
  cycles per bit, one idle bit between bytes (the line never pauses inside a frame).
* **Monitor**: ``tx`` sampled in the middle of each bit; bytes through the golden
  :class:`golden.protocol.FrameParser` into typed results, in arrival order.
* Once ``n_scores`` SCORES frames have arrived (so every spike of every sample has been queued
  or dropped), a READ_STATUS frame follows; the run ends when its STATUS frame has arrived and
  the line has been idle for 40 bit times, or after ``max_cycles``. The results, the parser's
  counters and the ``spikes_dropped`` and ``samples_done`` ports are written as JSON to
  ``out_path``; the pytest side checks them against the golden network.
"""

from __future__ import annotations

import json

import cocotb
from cocotb.triggers import ClockCycles

from golden.protocol import (
    RESULT_PAYLOAD_LENGTHS, FrameParser, Scores, Spike, Status, decode_result, encode_read_status,
)
from sim.runner import load_config
from sim.uart import start_link, uart_send


def result_record(result) -> dict:
    """A typed result as JSON."""
    if isinstance(result, Spike):
        return {"kind": "spike", "layer": result.layer, "neuron": result.neuron, "time": result.time}
    if isinstance(result, Scores):
        return {"kind": "scores", "scores": list(result.scores), "argmax": result.argmax}
    assert isinstance(result, Status)
    return {"kind": "status", "counters": result.counters, "version": result.version}


@cocotb.test()
async def spike_frames(dut):
    config = load_config()
    divisor = config["divisor"]
    received = await start_link(dut, divisor)
    await uart_send(dut, bytes.fromhex(config["frames"]), divisor)

    parser = FrameParser(RESULT_PAYLOAD_LENGTHS)
    results = []
    step = 10 * divisor
    idle = 0
    status_asked = False
    for _ in range(config["max_cycles"] // step):
        await ClockCycles(dut.clk, step)
        got_bytes = bool(received)
        while received:
            frame = parser.feed(received.pop(0))
            if frame is not None:
                results.append(decode_result(*frame))
        idle = 0 if got_bytes or int(dut.tx.value) == 0 else idle + 1
        if not status_asked and sum(isinstance(r, Scores) for r in results) >= config["n_scores"]:
            status_asked = True
            await uart_send(dut, encode_read_status(), divisor)
        if any(isinstance(r, Status) for r in results) and idle >= 4:
            break
    with open(config["out_path"], "w") as f:
        json.dump({"results": [result_record(r) for r in results], "parser_counters": parser.counters,
                   "spikes_dropped": int(dut.spikes_dropped.value),
                   "samples_done": int(dut.samples_done.value)}, f)
