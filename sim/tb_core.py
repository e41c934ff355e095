"""The cocotb testbench of every core, on its generated Verilog (Icarus).

Run through :func:`sim.harness.run_case_cocotb`, which writes the configuration
(:func:`sim.harness.cocotb_config`): the case, the stall patterns, a seed, the core's keyword
arguments and, for the checker test, a ``flip`` (``port``, ``field``, ``bit`` and the beat's
context labels). The core is built again here from the case, for its stream ports and payload
layouts; :func:`sim.harness.run_on_dut` drives and checks it.

``matches_golden`` runs once per stall pattern, in order, in this one simulator process (torch
takes seconds to import). The DUT's state memories survive a reset, so each run after the first
continues from the steps already applied (``case.continued``); a case without ``continued``
runs one pattern per process.
"""

from __future__ import annotations

import cocotb

from sim.checker import MismatchError
from sim.harness import case_from_config, check_flip_reported, run_on_dut
from sim.runner import load_config

_CONFIG = load_config()
_STALLS = _CONFIG["stalls"]
#: The cases this simulator process has applied to the DUT, in order.
_APPLIED: list = []


async def _run(dut, stalls: str, seed: int, flip: dict | None = None) -> None:
    case = case_from_config(_CONFIG)
    if _APPLIED:
        if not hasattr(case, "continued"):
            raise RuntimeError(f"{type(case).__name__} cannot continue a run: give one stall pattern per process")
        case = case.continued(_APPLIED)
    _APPLIED.append(case_from_config(_CONFIG))
    expectation = case.expectation()
    if flip is not None:
        expectation.flip_bit(**flip)
    idle_prob, backpressure_prob = _STALLS[stalls]
    await run_on_dut(
        dut, case.core(**_CONFIG["core"]), case.stimulus(), expectation,
        idle_prob=idle_prob, backpressure_prob=backpressure_prob, seed=seed, label=f"{case.name} {stalls}",
    )


@cocotb.test()
@cocotb.parametrize(stalls=[cocotb.Param(value=name, name=name) for name in _STALLS])
async def matches_golden(dut, stalls):
    """Every beat of every output stream and every counter equal the golden model."""
    await _run(dut, stalls, int(_CONFIG["seed"]) + 10 * list(_STALLS).index(stalls))


@cocotb.test()
@cocotb.skipif("flip" not in _CONFIG, reason="no 'flip' in the configuration")
async def checker_reports_flipped_bit(dut):
    """One golden bit flipped: the run must fail with exactly that mismatch, naming its beat,
    context and field."""
    try:
        await _run(dut, next(iter(_STALLS)), 99, _CONFIG["flip"])
    except MismatchError as error:
        dut._log.info("checker reported, as it must:\n%s", check_flip_reported(error, _CONFIG["flip"]))
    else:
        raise AssertionError("the checker accepted a golden trace with a flipped bit")
