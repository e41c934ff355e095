"""The processor's cycle costs, measured on the real processor in ``amaranth.sim``, and what they
mean in time at a clock.

:func:`measure_cycles` runs :class:`hw.processor.network.NetworkProcessor` for one configuration
(channel-event input, no idle cycles, no stalls): a burst of events in step 0, empty steps, one
event in the last step, then END. :func:`throughput` turns those cycles into microseconds,
samples and synaptic operations per second at a clock. ``bench.processor`` tabulates both;
``hw.build`` puts them in a processor build's report at the built clock and at its Fmax.
"""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from golden.network import NetworkParams
from hw.processor.network import NetworkProcessor

__all__ = ["measure_cycles", "sample_cycles", "throughput"]


def measure_cycles(params: NetworkParams, lanes: int, *, cores: int | None = None, n_events: int = 120,
                   n_steps: int = 6, seed: int = 0) -> dict:
    """Cycle costs of one processor configuration, from a simulation of the processor itself.

    Returns ``{"cycles_per_event", "cycles_per_step", "latency_cycles"}``:

    * ``cycles_per_event``: cycles between consecutive input events of a burst inside one step,
      where layer 0's synapse takes them (``ceil(n_out0 / lanes)``: one row of ``lanes``
      accumulator adds per cycle);
    * ``cycles_per_step``: cycles per time step over the close of the burst's step (with the
      spikes it caused in the later layers) and the empty steps after it;
    * ``latency_cycles``: from the last event of a sample (in its last step) to the scores beat.

    ``n_events`` random channels in step 0 (at least 2), ``n_steps`` steps (at least 3).
    """
    if n_events < 2 or n_steps < 3:
        raise ValueError(f"need at least 2 events and 3 steps, not {n_events} and {n_steps}")
    dut = NetworkProcessor(params, n_steps=n_steps, lanes=lanes, cores=cores, camera_input=False)
    rng = np.random.default_rng(seed)
    bin_ticks = params.bin_ticks
    last_step = n_steps - 1
    # Step 0: a burst of events; steps 1..T-2 empty; one event in the last step, then END.
    beats = [{"kind": 0, "channel": int(c), "tick": k} for k, c in enumerate(rng.integers(0, params.n_inputs, n_events))]
    beats.append({"kind": 0, "channel": 0, "tick": last_step * bin_ticks})
    beats.append({"kind": 1, "channel": 0, "tick": 0})
    marks = {}

    async def testbench(ctx):
        ctx.set(dut.o_scores.ready, 1)
        for beat in beats:
            for name, value in beat.items():
                ctx.set(getattr(dut.i.payload, name), value)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def monitor(ctx):
        # Events are timed where layer 0's synapse takes them (behind the input FIFO, the time
        # bins and their output FIFO); the step closes that pass there are not counted.
        port = (dut.hidden[0] if dut.hidden else dut.readout).i
        cycle, taken = 0, 0
        while True:
            _, _, valid, ready, close, scores = await ctx.tick().sample(port.valid, port.ready, port.payload.close,
                                                                         dut.o_scores.valid)
            cycle += 1
            if valid and ready and not close:
                if taken == 0:
                    marks["first_event"] = cycle
                if taken == n_events - 1:
                    marks["burst_end"] = cycle
                if taken == n_events:
                    marks["last_event"] = cycle
                taken += 1
            if scores:
                marks["scores"] = cycle
                return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench, background=True)
    sim.add_testbench(monitor)
    sim.run()
    per_event = (marks["burst_end"] - marks["first_event"]) / (n_events - 1)
    latency = marks["scores"] - marks["last_event"]
    # Empty steps between the burst and the last event: from the burst's end to the last event's
    # acceptance the processor closes step 0 (with the burst's spikes) and steps 1..T-2.
    empty_steps = max(1, last_step - 1)
    per_step = (marks["last_event"] - marks["burst_end"]) / (empty_steps + 1)
    return {"cycles_per_event": round(per_event, 2), "cycles_per_step": round(per_step, 1), "latency_cycles": latency}


def sample_cycles(costs: dict, *, n_steps: int, n_events: int) -> float:
    """Cycles of one sample of ``n_steps`` steps carrying ``n_events`` input events, from
    :func:`measure_cycles`'s costs: the events' fan-out, every step's close and the latency to
    the decision. Later layers' spike fan-out beyond the measurement's is not included."""
    return n_events * costs["cycles_per_event"] + n_steps * costs["cycles_per_step"] + costs["latency_cycles"]


def throughput(costs: dict, params: NetworkParams, *, lanes: int, n_steps: int, clock_mhz: float) -> dict:
    """:func:`measure_cycles`'s costs at ``clock_mhz``: microseconds per input event, per step
    and per sample, and synaptic operations per second.

    Two samples bound the rest: ``empty`` (``n_steps`` steps, no event) and ``bound``
    (``params.max_events_per_step`` events in every step, the most the processor accepts).
    ``gsop_per_s`` is layer 0's fan-out per input event over the cycles it takes (the rate
    while events stream); ``gsop_per_s_peak`` ``min(lanes, n_out0)`` adds per cycle.
    """
    fan_out = params.layers[0].n_out
    us = 1.0 / clock_mhz
    bound_events = params.max_events_per_step * n_steps
    empty = sample_cycles(costs, n_steps=n_steps, n_events=0)
    bound = sample_cycles(costs, n_steps=n_steps, n_events=bound_events)
    return {
        "clock_mhz": round(clock_mhz, 3),
        "n_steps": n_steps,
        **costs,
        "us_per_event": round(costs["cycles_per_event"] * us, 4),
        "us_per_step": round(costs["cycles_per_step"] * us, 3),
        "latency_us": round(costs["latency_cycles"] * us, 3),
        "empty_sample_cycles": round(empty),
        "empty_sample_us": round(empty * us, 1),
        "bound_sample_events": bound_events,
        "bound_sample_cycles": round(bound),
        "bound_sample_us": round(bound * us, 1),
        "gsop_per_s": round(fan_out / costs["cycles_per_event"] * clock_mhz / 1e3, 4),
        "gsop_per_s_peak": round(min(lanes, fan_out) * clock_mhz / 1e3, 4),
    }
