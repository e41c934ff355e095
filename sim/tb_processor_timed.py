"""cocotb test for :func:`bench.fsdd.rtl_subset`: the processor testbench, timed.

``processor_matches_golden_timed`` runs :func:`sim.tb_processor.processor_matches_golden` (every
spike, readout membrane, score and the decision against the golden network) and times it: the
rising clock edge at which the first input beat is accepted (``i.valid & i.ready``) and the one
at which the SCORES beat is taken (``o_scores.valid & o_scores.ready``), as edge numbers (sim
time over the clock period). In between it sleeps until ``o_scores.valid`` rises, so it adds no
per-cycle callback to the simulation. It writes ``{"first_event": edge, "scores": edge,
"cycles": scores - first_event}`` (``None`` where a handshake never happened) to ``cycles.json``
beside the run's ``config.json``, also when the comparison fails.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.simtime import get_sim_time
from cocotb.triggers import RisingEdge

import sim.tb_processor as tb_processor
from sim.runner import CONFIG_ENV

#: File the cycle counts go to, in the run's build directory.
CYCLES_FILE = "cycles.json"


async def _handshake(dut, valid, ready) -> int:
    """Wait for the next rising clock edge at which ``valid`` and ``ready`` are both high;
    returns its simulation time in ps."""
    while True:
        await RisingEdge(dut.clk)
        if valid.value == 1 and ready.value == 1:
            return get_sim_time("ps")


@cocotb.test()
async def processor_matches_golden_timed(dut):
    times = {}

    async def time_handshakes():
        # The clock period, from two edges (the testbench starts the clock).
        await RisingEdge(dut.clk)
        start = get_sim_time("ps")
        await RisingEdge(dut.clk)
        times["period"] = get_sim_time("ps") - start
        times["first_event"] = await _handshake(dut, dut.i__valid, dut.i__ready)
        # Few callbacks while the sample runs: wake up only when the scores become valid.
        if dut.o_scores__valid.value != 1:
            await RisingEdge(dut.o_scores__valid)
        times["scores"] = await _handshake(dut, dut.o_scores__valid, dut.o_scores__ready)

    cocotb.start_soon(time_handshakes())
    try:
        await tb_processor.processor_matches_golden.func(dut)
    finally:
        edges = {name: int(times[name] // times["period"]) if name in times else None
                 for name in ("first_event", "scores")}
        cycles = None
        if edges["first_event"] is not None and edges["scores"] is not None:
            cycles = edges["scores"] - edges["first_event"]
        path = Path(os.environ[CONFIG_ENV]).parent / CYCLES_FILE
        path.write_text(json.dumps({**edges, "cycles": cycles}) + "\n")
