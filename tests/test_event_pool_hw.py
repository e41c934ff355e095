# amaranth: UnusedElaboratable=no
"""amaranth.sim: the event-pooling readout block alone (hw.processor.event_pool), fed the SA-HiPPO
memory layer's posted modes of a FLAMES network, against golden.network.run_network's scores."""

import numpy as np
import pytest
import torch

from golden.flames import FlamesConfig, FlamesFSDD, export_flames, flames_network
from golden.network import run_network
from golden.event_pool import SCORE_EXTRA_BITS
from hw.processor.event_pool import EventPoolReadout
from hw.processor.time_bins import STEP_BITS
from sim.stream import SimStreamSink, SimStreamSource, run_simulation


@pytest.fixture(scope="module")
def flames_params():
    torch.manual_seed(3)
    model = FlamesFSDD(FlamesConfig(hidden=6, n_branches=4, n_state=8, bin_ms=20, window_ms=240, seed=3))
    with torch.no_grad():  # a readout that is not all zeros before training
        model.readout.weight.normal_(0.0, 0.5)
        model.readout.bias.normal_(0.0, 0.5)
    flames = export_flames(model.eval())
    return flames_network(flames, bin_ticks=20_000, max_events_per_step=640)


def mode_beats(trace, sample):
    """The SA-HiPPO layer's posted modes of one sample as mode beats, step by step, channel order."""
    memory = trace.layers[1].neuron
    event, z = memory.event[sample].numpy(), memory.z[sample].numpy()
    n_modes = z.shape[2]
    return [{"index": h * n_modes + n, "re": int(z[k, h, n, 0]), "im": int(z[k, h, n, 1])}
            for k in range(event.shape[0]) for h in np.flatnonzero(event[k]) for n in range(n_modes)]


def run_block(dut, samples, *, emits, idle_prob=0.0, backpressure=0.0):
    """Each sample's beats, then a finish (``emits[i]``); returns the scores beats."""
    scores = []
    sink = SimStreamSink(dut.o_scores, backpressure_prob=backpressure, seed=2, on_beat=scores.append)

    async def drive(ctx):
        for beats, emit in zip(samples, emits):
            await SimStreamSource(dut.i, beats, idle_prob=idle_prob, seed=len(beats)).run(ctx)
            await SimStreamSource(dut.i_finish, [{"emit": emit}]).run(ctx)
        await ctx.tick().repeat(dut.finish_cycles + 40)

    run_simulation(dut, [drive], background=[sink.run])
    return scores


def test_pooled_sums_hold_a_sample_of_the_most_steps_the_processor_counts(flames_params):
    """A pooled sum adds one word per step: its width (the fit check's too) covers the step counter's range."""
    readout = EventPoolReadout(flames_params.layers[-1])
    assert SCORE_EXTRA_BITS >= STEP_BITS
    assert readout.pool_bits == flames_params.layers[-1].neuron.input_fmt.width + SCORE_EXTRA_BITS


def test_event_pool_block_matches_golden_scores(flames_params):
    """Three samples back to back (the second's scores dropped): every score and the decision
    bit for bit, the pooled sums and scores cleared between samples."""
    params = flames_params
    assert params.kinds == ["dhlif", "sahippo", "event_pool"]
    rng = np.random.default_rng(4)
    counts = rng.poisson(2.0, (3, 12, params.n_inputs)).astype(np.int64)
    trace = run_network(params, counts)
    samples = [mode_beats(trace, s) for s in range(3)]
    assert all(samples), "every sample should post modes"
    dut = EventPoolReadout(params.layers[2])
    got = run_block(dut, samples, emits=[1, 0, 1], idle_prob=0.2, backpressure=0.3)
    want = trace.scores.numpy()
    assert [[b["scores"][c] for c in range(want.shape[1])] for b in got] == [want[0].tolist(), want[2].tolist()]
    assert [b["argmax"] for b in got] == [int(trace.prediction[0]), int(trace.prediction[2])]
    assert want[0].tolist() != want[2].tolist()


@pytest.mark.parametrize("idle_prob", [0.0, 0.3])
def test_event_pool_block_repeated_words_take_the_forwarded_sum(flames_params, idle_prob):
    """Beats on one word one, two, three and four beats apart (the pooled sum still on its way
    to the block RAM is forwarded): the scores equal ``W @ P + b`` of the pooled sums."""
    layer = flames_params.layers[2]
    rng = np.random.default_rng(9)
    words = [5, 5, 6, 5, 7, 8, 5, 1, 2, 3, 5, 5, 5, 0, 5] * 3
    beats = [{"index": k, "re": int(rng.integers(-3000, 3000)), "im": int(rng.integers(-3000, 3000))} for k in words]
    pooled = np.zeros(layer.n_in, dtype=np.int64)
    for beat in beats:
        pooled[2 * beat["index"]] += beat["re"]
        pooled[2 * beat["index"] + 1] += beat["im"]
    want = np.asarray(layer.weight_q, dtype=np.int64) @ pooled + np.asarray(layer.bias_q, dtype=np.int64)
    got = run_block(EventPoolReadout(layer), [beats], emits=[1], idle_prob=idle_prob)
    assert [got[0]["scores"][c] for c in range(layer.n_out)] == want.tolist()


def _readout_block(params, bias, weights=None):
    """The readout of ``params`` with its bias (and weights) replaced."""
    from dataclasses import replace

    from golden.network import NetworkParams

    readout = params.layers[2]
    weights = readout.weight_q if weights is None else np.asarray(weights, dtype=np.int64)
    tied = NetworkParams(n_inputs=params.n_inputs, bin_ticks=params.bin_ticks, layers=params.layers[:2] + [
        replace(readout, weight_q=weights, bias_q=np.asarray(bias, dtype=np.int64), acc_bits=None)],
        max_events_per_step=params.max_events_per_step)
    return EventPoolReadout(tied.layers[2])


def test_event_pool_block_ties_pick_the_first_class(flames_params):
    """No modes at all: the scores are the biases; equal biases tie and the first index wins."""
    bias = [-5] * flames_params.layers[2].n_out
    bias[3] = bias[7] = 9
    got = run_block(_readout_block(flames_params, bias), [[]], emits=[1])
    assert [got[0]["scores"][c] for c in range(len(bias))] == bias
    assert got[0]["argmax"] == 3


@pytest.mark.parametrize("weight_5, weight_rest, bias_5, bias_rest", [
    (1000, 1000, 7, 3),            # scores near 2**35: equal high halves, the low halves decide
    (-1000, -1000, 7, 3),          # the same below zero
    (1001, 1000, -(1 << 29), 1 << 29),  # the high halves decide against the low halves
    (0, -1, 0, 0),                 # zero against negative scores
    (1000, 1000, 3, 3),            # all equal: the first class
])
def test_event_pool_block_argmax_across_the_split_compare(flames_params, weight_5, weight_rest, bias_5, bias_rest):
    """The argmax compares the scores' high and low halves separately: with scores of about
    ``2**35`` (four beats of the largest mode word on feature 0), the largest wins wherever the
    halves differ, with either sign, and the first of equals."""
    layer = flames_params.layers[2]
    fmt = layer.neuron.input_fmt
    weights = np.zeros((layer.n_out, layer.n_in), dtype=np.int64)
    weights[:, 0] = weight_rest
    weights[5, 0] = weight_5
    bias = np.full(layer.n_out, bias_rest, dtype=np.int64)
    bias[5] = bias_5
    beats = [{"index": 0, "re": fmt.max_int, "im": 0}] * 4
    want = weights[:, 0] * 4 * fmt.max_int + bias
    got = run_block(_readout_block(flames_params, bias, weights), [beats], emits=[1])
    assert [got[0]["scores"][c] for c in range(layer.n_out)] == want.tolist()
    assert got[0]["argmax"] == int(np.argmax(want))


def test_event_pool_block_refuses_other_layers(flames_params):
    with pytest.raises(ValueError, match="event_pool"):
        EventPoolReadout(flames_params.layers[0])
