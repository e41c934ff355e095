"""The processor's cycle costs, measured on the real processor in ``amaranth.sim``, and what they
mean in time at a clock.

:func:`simulated_cycles` runs one sample's channel events through
:class:`hw.processor.network.NetworkProcessor` and counts its cycles (``bench.cycle_model``
compares them with the host's estimate). :func:`measure_cycles` runs the processor for one
configuration (channel-event input, no idle cycles, no stalls): a burst of events in step 0,
empty steps, one event in the last step, then END. :func:`throughput` turns those cycles into microseconds,
samples and synaptic operations per second at a clock. ``bench.processor`` tabulates both;
``hw.build`` puts them in a processor build's report at the built clock and at its Fmax.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Const
from amaranth.sim import Simulator

from golden.network import NetworkParams
from hw.processor.network import NetworkProcessor

__all__ = ["measure_cycles", "sample_cycles", "simulated_cycles", "throughput"]


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
    rng = np.random.default_rng(seed)
    last_step = n_steps - 1
    # Step 0: a burst of events; steps 1..T-2 empty; one event in the last step, then END.
    ticks = list(range(n_events)) + [last_step * params.bin_ticks]
    channels = list(rng.integers(0, params.n_inputs, n_events)) + [0]
    # Events are timed where layer 0's synapse takes them (behind the input FIFO, the time
    # bins and their output FIFO); the step closes that pass there are not counted.
    taken, scores = _simulate(params, channels, ticks, n_steps=n_steps, lanes=lanes, cores=cores, at_layer0=True)
    first_event, burst_end, last_event = taken[0], taken[n_events - 1], taken[n_events]
    per_event = (burst_end - first_event) / (n_events - 1)
    latency = scores - last_event
    # Empty steps between the burst and the last event: from the burst's end to the last event's
    # acceptance the processor closes step 0 (with the burst's spikes) and steps 1..T-2.
    empty_steps = max(1, last_step - 1)
    per_step = (last_event - burst_end) / (empty_steps + 1)
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


def _simulate(params: NetworkParams, channels, ticks, *, n_steps: int, lanes: int, cores: int | None,
              at_layer0: bool) -> tuple[list[int], int]:
    """Run one sample through :class:`NetworkProcessor` in ``amaranth.sim``: channel events
    ``(channels[k], ticks[k])`` back to back, then END, no idle cycles, no stall on the scores.

    Returns the cycles at which beats were taken (every beat at the processor's input; with
    ``at_layer0`` the events where layer 0's synapse takes them, step closes not counted) and the
    cycle of the SCORES beat.
    """
    dut = NetworkProcessor(params, n_steps=n_steps, lanes=lanes, cores=cores, camera_input=False)
    beats = [(0, int(c), int(t)) for c, t in zip(channels, ticks, strict=True)] + [(1, 0, 0)]
    taken, marks = [], {}

    async def testbench(ctx):
        ctx.set(dut.o_scores.ready, 1)
        for kind, channel, tick in beats:
            ctx.set(dut.i.payload.kind, kind)
            ctx.set(dut.i.payload.channel, channel)
            ctx.set(dut.i.payload.tick, tick)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def monitor(ctx):
        port = (dut.hidden[0] if dut.hidden else dut.readout).i if at_layer0 else dut.i
        close = port.payload.close if at_layer0 else Const(0)
        cycle = 0
        while True:
            _, _, valid, ready, closing, scores = await ctx.tick().sample(port.valid, port.ready, close,
                                                                           dut.o_scores.valid)
            cycle += 1
            if valid and ready and not closing:
                taken.append(cycle)
            if scores:
                marks["scores"] = cycle
                return

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench, background=True)
    sim.add_testbench(monitor)
    sim.run()
    return taken, marks["scores"]


def simulated_cycles(params: NetworkParams, events: np.ndarray, n_steps: int, *, lanes: int,
                     cores: int | None = None) -> int:
    """Cycles from the first accepted input beat to the SCORES beat of one sample in ``amaranth.sim``
    (channel input, events back to back, then END; no stall on the scores).

    ``events``: channel events (:data:`~golden.data.events.CHANNEL_EVENT_DTYPE`) inside the window.
    """
    taken, scores = _simulate(params, events["channel"], events["t"], n_steps=n_steps, lanes=lanes, cores=cores,
                              at_layer0=False)
    return scores - taken[0]
