"""cocotb testbench of the whole streaming event processor on its generated Verilog (Icarus).

Run through :func:`sim.runner.run_cocotb` from ``tests/test_cocotb_processor.py``; the JSON
configuration names a pickled :class:`golden.network.NetworkParams` and carries the stimulus and
the golden expectation::

    {"params_path": str, "n_steps": int, "lanes": int, "cores": int or null, "beats": [{...input beat...}, ...],
     "expected": <sim.processor_model.Expected as a dict>, "idle_prob": float,
     "backpressure_prob": float, "seed": int, "max_cycles": int}

* **Driver** :class:`sim.stream.CocotbStreamDriver` sends the input beats (channel events, or
  camera events through the processor's input map) with seeded idle cycles.
* **Monitors**: one coroutine samples the observation ports every cycle (each hidden layer's
  output commands, every readout membrane update) into :class:`sim.processor_model.Observed`;
  :class:`sim.stream.CocotbStreamMonitor` takes the class scores with seeded backpressure.
* **Model**: :func:`golden.network.run_network`, evaluated by the pytest side.
* **Checker**: :func:`sim.processor_model.compare`, every spike of every layer and step, every
  readout membrane, the scores, the argmax and the per-layer saturation counters.
"""

from __future__ import annotations

import pickle

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from hw.processor.network import NetworkProcessor
from sim.processor_model import Expected, Observed, compare
from sim.runner import load_config
from sim.stream import CocotbStreamDriver, CocotbStreamMonitor, array_values, unpack
from sim.uart import start_link, uart_send


def expected_from_json(record: dict) -> Expected:
    return Expected(
        n_steps=record["n_steps"], spikes=record["spikes"], readout_u=np.asarray(record["readout_u"], dtype=np.int64),
        scores=record["scores"], argmax=record["argmax"], current_saturation=record["current_saturation"],
        neuron_saturation=record["neuron_saturation"],
    )


@cocotb.test()
async def processor_matches_golden(dut):
    config = load_config()
    if "link" in config:
        return
    with open(config["params_path"], "rb") as f:
        params = pickle.load(f)
    model = NetworkProcessor(params, n_steps=config["n_steps"], lanes=config["lanes"],
                             cores=config.get("cores"))  # layouts only
    expected = expected_from_json(config["expected"])
    n_hidden = len(params.layers) - 1

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.i__valid.value = 0
    dut.i__payload.value = 0
    dut.o_scores__ready.value = 0
    dut.n_steps.value = config["n_steps"]  # a top-level input: its Amaranth init does not drive the port
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0

    observed = Observed(n_hidden=n_hidden, n_classes=params.n_classes)
    scores = []
    driver = CocotbStreamDriver(dut, "i", model.i.payload.shape(), dut.clk, idle_prob=config["idle_prob"],
                                seed=config["seed"])
    monitor = CocotbStreamMonitor(dut, "o_scores", model.o_scores.payload.shape(), dut.clk,
                                  backpressure_prob=config["backpressure_prob"], seed=config["seed"] + 1,
                                  on_beat=scores.append)
    cocotb.start_soon(monitor.run())
    tap_layout = model.layer_taps.shape() if n_hidden else None
    readout_layout = model.readout_tap.shape()

    def tap_word(name, cycle):
        value = getattr(dut, name).value
        if not value.is_resolvable:
            raise AssertionError(f"{name} has X or Z bits {cycle} cycles after reset: {value}")
        return int(value)

    async def watch_taps():
        cycle = 0
        while True:
            await RisingEdge(dut.clk)
            cycle += 1
            if n_hidden:
                taps = unpack(tap_layout, tap_word("layer_taps", cycle))
                for k in range(n_hidden):
                    tap = taps[f"layer_{k}"]
                    if tap["valid"]:
                        observed.layer_beat(k, tap["close"], tap["last"], tap["index"])
            tap = unpack(readout_layout, tap_word("readout_tap", cycle))
            if tap["valid"]:
                observed.readout_beat(tap["neuron"], tap["u"])

    cocotb.start_soon(watch_taps())
    await driver.send(config["beats"])
    for _ in range(config["max_cycles"]):
        if scores:
            break
        await RisingEdge(dut.clk)
    await ClockCycles(dut.clk, 10)
    if scores:
        observed.scores_beat(scores[0])
    counters = {name: array_values(unpack(getattr(model, name).shape(), int(getattr(dut, name).value)))
                for name in ("current_saturation", "neuron_saturation")}
    errors = compare(expected, observed, counters=counters)
    for name in ("dropped_backwards", "dropped_out_of_range", "dropped_late"):
        want = config.get("expected_drops", {}).get(name)
        got = int(getattr(dut, name).value)
        if want is not None and got != want:
            errors.append(f"{name}: expected {want}, got {got}")
    assert not errors, "processor differs from the golden network:\n" + "\n".join(errors)


# --- through the UART framing ----------------------------------------------------------------
@cocotb.test()
async def link_matches_golden(dut):
    """Samples sent as EVENT / END_OF_SAMPLE / RESET / READ_STATUS frames; SCORES frames checked."""
    from golden.protocol import (
        RESULT_PAYLOAD_LENGTHS, FrameParser, Scores, Status, decode_result, encode_end_of_sample, encode_event,
        encode_read_status, encode_reset,
    )

    config = load_config()
    if "link" not in config:
        return
    link = config["link"]
    divisor = link["divisor"]
    received = await start_link(dut, divisor)

    frames = b""
    for sample in link["samples"]:
        for x, y, p, t in sample["events"]:
            frames += encode_event(x, y, p, t)
        frames += encode_reset() if sample["reset"] else encode_end_of_sample()
    frames += encode_read_status()
    await uart_send(dut, frames, divisor)
    results = []
    parser = FrameParser(RESULT_PAYLOAD_LENGTHS)
    wanted = sum(1 for s in link["samples"] if not s["reset"]) + 1
    for _ in range(link["max_cycles"] // 100):
        await ClockCycles(dut.clk, 100)
        while received:
            frame = parser.feed(received.pop(0))
            if frame is not None:
                results.append(decode_result(*frame))
        if len(results) >= wanted:
            break
    expected = [Scores(tuple(s["scores"]), s["argmax"]) for s in link["samples"] if not s["reset"]]
    got_scores = [r for r in results if isinstance(r, Scores)]
    statuses = [r for r in results if isinstance(r, Status)]
    assert got_scores == expected, f"SCORES frames: expected {expected}, got {got_scores}"
    assert len(statuses) == 1 and statuses[0].counters["frames_ok"] == len(frames_split(frames)), statuses
    assert int(dut.samples_done.value) == len(link["samples"])


def frames_split(data: bytes) -> list:
    """Frames in a byte string of whole, well-formed frames (SYNC, CMD, LEN, payload, CRC)."""
    frames, k = [], 0
    while k < len(data):
        length = data[k + 2]
        frames.append(data[k:k + 5 + length])
        k += 5 + length
    return frames
