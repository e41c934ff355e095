"""cocotb on Icarus: the generated Verilog of the whole event processor against the golden network.

Each configuration is one simulator run under ``build/sim/processor/<name>/``; the testbench is
``sim/tb_processor.py``. Random networks come in through the channel-event input, the real
N-MNIST recording through the camera input and the default network's input map.
"""

import dataclasses
import pickle
import shutil

import numpy as np
import pytest

from golden.data.events import read_nmnist
from golden.network import default_network, run_network
from hw.processor.network import NetworkProcessor
from sim.processor_model import (
    counts_to_beats, dhlif_network, expected_from_trace, mixed_format_network, random_counts, random_network,
)
from sim.runner import SIM_BUILD, CocotbFailure, run_cocotb

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog (iverilog) not installed")


def run_processor(name, params, beats, expected, *, n_steps, lanes=1, cores=None, idle_prob=0.0, backpressure_prob=0.0,
                  max_cycles=400_000, expected_drops=None):
    build = SIM_BUILD / "processor" / name
    build.mkdir(parents=True, exist_ok=True)
    params_path = build / "params.pkl"
    params_path.write_bytes(pickle.dumps(params))
    config = {
        "params_path": str(params_path), "n_steps": n_steps, "lanes": lanes, "cores": cores, "beats": beats,
        "expected": dataclasses.asdict(expected) | {"readout_u": np.asarray(expected.readout_u).tolist()},
        "idle_prob": idle_prob, "backpressure_prob": backpressure_prob, "seed": 11, "max_cycles": max_cycles,
        "expected_drops": expected_drops or {},
    }
    dut = NetworkProcessor(params, n_steps=n_steps, lanes=lanes, cores=cores)
    run_cocotb(dut, test_module="sim.tb_processor", build_name=f"processor/{name}", config=config)


def test_random_network_and_checker_fails_on_one_bit():
    params = random_network(21, hidden=(("refractory_lif", 9),))
    counts = random_counts(params, 8, seed=22)
    trace = run_network(params, counts)
    expected = expected_from_trace(trace)
    beats = counts_to_beats(counts, params.bin_ticks, seed=23)
    run_processor("random_small", params, beats, expected, n_steps=8)
    expected.readout_u[5, 2] ^= 1
    with pytest.raises(CocotbFailure, match="readout step 5 neuron 2"):
        run_processor("random_small", params, beats, expected, n_steps=8)


@pytest.mark.parametrize("lanes,cores", [(3, None), (4, 2)])  # (4, 2): two lanes serialised into each core
def test_two_hidden_layers_lanes_stalls_and_drops(lanes, cores):
    params = random_network(31, hidden=(("silif", 10), ("csilif", 6)), readout_int_bits=2)
    counts = random_counts(params, 7, seed=32, empty_prob=0.3)
    expected = expected_from_trace(run_network(params, counts))
    beats = counts_to_beats(counts, params.bin_ticks, seed=33)
    end = beats.pop()
    first = next(k for k, b in enumerate(beats) if b["tick"] > 0)
    beats[first + 1:first + 1] = [
        {"kind": 0, "channel": params.n_inputs, "tick": beats[first]["tick"]},
        {"kind": 0, "channel": 0, "tick": beats[first]["tick"] - 1},
    ]
    beats += [{"kind": 0, "channel": 1, "tick": 7 * params.bin_ticks}, end]
    run_processor(f"random_two_hidden_l{lanes}_c{cores or lanes}", params, beats, expected, n_steps=7, lanes=lanes,
                  cores=cores, idle_prob=0.2,
                  backpressure_prob=0.3,
                  expected_drops={"dropped_out_of_range": 1, "dropped_backwards": 1, "dropped_late": 1})


def test_per_layer_weight_formats_in_verilog():
    """A scaled 9-bit layer (MULT18X18D slices in the drain), a 4-bit layer with a right shift
    and a tied readout, through Icarus at 2 lanes with stalls."""
    params = mixed_format_network(51)
    counts = random_counts(params, 8, seed=52)
    expected = expected_from_trace(run_network(params, counts))
    beats = counts_to_beats(counts, params.bin_ticks, seed=53)
    run_processor("per_layer_weight_formats", params, beats, expected, n_steps=8, lanes=2, idle_prob=0.1,
                  backpressure_prob=0.2)


def test_dhlif_layer_in_verilog():
    """dhlif (D = 3 branches, drive and membrane clamps) -> silif -> li_readout through Icarus at
    2 lanes with stalls: every spike, readout membrane, score and counter."""
    params = dhlif_network(63, then=(("silif", 6),))
    counts = random_counts(params, 6, seed=64)
    counts[2] = 0
    counts[2, int(np.abs(params.layers[0].weight_q).max(axis=0).argmax())] = params.max_events_per_step
    expected = expected_from_trace(run_network(params, counts))
    assert expected.current_saturation[0] > 0 and expected.neuron_saturation[0] > 0
    assert all(sum(len(row) for row in layer) > 0 for layer in expected.spikes)
    beats = counts_to_beats(counts, params.bin_ticks, seed=63)
    run_processor("dhlif_silif", params, beats, expected, n_steps=6, lanes=2, idle_prob=0.1, backpressure_prob=0.2)


#: Steps of the real recording simulated (10 ms each): all of its 311 ms, 4325 events.
NMNIST_STEPS = 32


def test_nmnist_recording_default_network(shared_data):
    recording = read_nmnist(shared_data / "events" / "nmnist_sample.bin")
    params = default_network()
    events = recording.events
    trace = run_network(params, events, NMNIST_STEPS)
    expected = expected_from_trace(trace)
    assert sum(len(row) for row in expected.spikes[0]) > 0, "the default network should spike on N-MNIST"
    window = events[events["t"] < NMNIST_STEPS * params.bin_ticks]
    beats = [{"kind": 0, "x": int(e["x"]), "y": int(e["y"]), "polarity": int(e["p"]), "tick": int(e["t"])}
             for e in window]
    beats.append({"kind": 1, "x": 0, "y": 0, "polarity": 0, "tick": 0})
    run_processor("nmnist_default", params, beats, expected, n_steps=NMNIST_STEPS, lanes=4, max_cycles=200_000)


def test_through_uart_framing():
    """Two samples and a RESET-ended one as UART frames into ProcessorLink; SCORES frames vs golden."""
    from hw.boards.ulx3s_processor import ProcessorLink

    params = random_network(41, hidden=(("refractory_lif", 6),), n_inputs=6, max_events_per_step=4)
    n_steps = 4
    clk_freq, baud = 10e6, 1e6
    samples = []
    for seed in (42, 43, 44):
        counts = random_counts(params, n_steps, seed=seed)
        trace = run_network(params, counts)
        beats = counts_to_beats(counts, params.bin_ticks, seed=seed)[:-1]
        samples.append({"events": [(b["channel"], 0, 0, b["tick"]) for b in beats], "reset": seed == 43,
                        "scores": [int(v) for v in trace.scores], "argmax": int(trace.prediction)})
    config = {"link": {"divisor": int(clk_freq // baud), "samples": samples, "max_cycles": 2_000_000}}
    dut = ProcessorLink(params, n_steps=n_steps, clk_freq=clk_freq, baud=baud)
    run_cocotb(dut, test_module="sim.tb_processor", build_name="processor/uart_link", config=config,
               testcase="link_matches_golden")


def test_many_weight_banks_in_verilog():
    """A hidden layer of 2200 inputs at 1 lane: its weights in 18 banks behind per-group address
    registers, selected in three levels (hw.arith.pipelined_tree_select), through Icarus with
    stalls."""
    from hw.processor.synapse import bank_select_stages

    params = random_network(71, n_inputs=2200, hidden=(("refractory_lif", 8),))
    assert bank_select_stages(params.layers[0], 1) == 4
    counts = random_counts(params, 6, seed=72)
    expected = expected_from_trace(run_network(params, counts))
    assert sum(len(row) for row in expected.spikes[0]) > 0
    beats = counts_to_beats(counts, params.bin_ticks, seed=73)
    run_processor("many_weight_banks", params, beats, expected, n_steps=6, idle_prob=0.1, backpressure_prob=0.2)
