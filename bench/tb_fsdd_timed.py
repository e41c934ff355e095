"""cocotb test for :func:`bench.fsdd.rtl_subset`: the processor testbench, timed.

``processor_matches_golden_timed`` runs :func:`sim.tb_processor.processor_matches_golden` (every
spike, readout membrane, score and the decision against the golden network) and counts clock
cycles beside it: the rising edge at which the first input beat is accepted
(``i.valid & i.ready``) and the one at which the SCORES beat is taken
(``o_scores.valid & o_scores.ready``). It writes ``{"first_event": edge, "scores": edge,
"cycles": scores - first_event}`` (``None`` where a handshake never happened) to
``cycles.json`` beside the run's ``config.json``, also when the comparison fails.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.triggers import RisingEdge

import sim.tb_processor as tb_processor
from sim.runner import CONFIG_ENV

#: File the cycle counts go to, in the run's build directory.
CYCLES_FILE = "cycles.json"


@cocotb.test()
async def processor_matches_golden_timed(dut):
    edges = {"first_event": None, "scores": None}

    async def count_edges():
        edge = 0
        while edges["scores"] is None:
            await RisingEdge(dut.clk)
            edge += 1
            if edges["first_event"] is None and dut.i__valid.value == 1 and dut.i__ready.value == 1:
                edges["first_event"] = edge
            if dut.o_scores__valid.value == 1 and dut.o_scores__ready.value == 1:
                edges["scores"] = edge

    cocotb.start_soon(count_edges())
    try:
        await tb_processor.processor_matches_golden.func(dut)
    finally:
        cycles = None
        if edges["first_event"] is not None and edges["scores"] is not None:
            cycles = edges["scores"] - edges["first_event"]
        path = Path(os.environ[CONFIG_ENV]).parent / CYCLES_FILE
        path.write_text(json.dumps({**edges, "cycles": cycles}) + "\n")
