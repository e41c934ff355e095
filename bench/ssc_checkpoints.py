"""The SSM-inspired-LIF authors' SSC networks (SiLIF and C-SiLIF, 140-512-512-35) as integer networks.

``python -m bench.ssc_checkpoints`` imports each checkpoint (:mod:`golden.ssc_checkpoint`) at
several weight settings (the formats tied to the core input, ``--weight-bits`` widths, and the
widths the fit-aware export picks for ``--device`` and ``--lanes``; each with and without
per-row scales) and drives the integer network and the project's float network
(the float modules holding the checkpoint, float64) with seeded synthetic SSC-shaped input
(:mod:`golden.data.synthetic_ssc`: 700 channels of sparse Poisson events at 1-5 % per 4 ms bin
with a speech-like envelope, pooled 5 by 5 to 140 inputs, ``--steps`` steps of 4 ms, ``--batch``
samples). Per setting it reports, per layer:

* spike agreement of the integer layer with the float layer, **isolated** (each integer layer fed
  the float network's input spikes to that layer) and **chained** (fed the integer layer before
  it), and the first step where they differ (over the whole batch);
* the integer network's current and neuron saturation counts (chained);
* the weight format and the DP16KD of the fit check (``golden.fit.estimate_fit`` on ``--device``
  with ``--lanes``);

and per network: the agreement of the integer predictions with the float ones, whether it fits,
and the compute time per 1.2 s sample at ``--clock-mhz``, ``--lanes`` and ``--cores`` from the
processor's cycle model (:func:`hw.board_model.estimate_cycles` on the chained trace).
Calibration uses ``--calibration`` other samples (seed + ``golden.ssc_checkpoint.CALIBRATION_SEED``, 1000).
Results: ``build/bench/ssc_checkpoints.json``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from bench.common import format_table, write_results
from golden.cli import int_range, non_negative_int, positive_float, positive_int, run_main, ulx3s_variant
from golden.data import data_root
from golden.data.synthetic_ssc import ssc_like_counts
from golden.errors import SpikestreamError
from golden.export import WEIGHT_BITS_RANGE, FloatNetwork
from golden.fit import estimate_fit
from golden.kinds import network_kinds
from golden.layers import readout_scores
from golden.network import run_network
from golden.ssc_checkpoint import (CALIBRATION_SEED, DEFAULT_BIN_TICKS, DEFAULT_STEPS, float_network, import_checkpoint,
                                   load_state_dict)
from hw.board_model import estimate_cycles

NETWORKS = {"silif": "ssc_silif.pth", "csilif": "ssc_csilif.pth"}
#: A 1.2 s SSC sample.
SAMPLE_SECONDS = 1.2
COLUMNS = ["network", "weights", "row_scale", "rounding", "weight_fmt", "isolated_pct", "chained_pct",
           "first_diff_isolated", "first_diff_chained", "saturations", "DP16KD", "fits", "predictions_equal_pct",
           "ms_per_sample"]


def float_reference(model: FloatNetwork, counts: np.ndarray) -> list[dict]:
    """The float64 network's per-layer trace (currents, output spikes or readout membrane)."""
    return model.double().eval().trace(torch.from_numpy(counts).to(torch.float64))


def layer_spikes(layer, x: torch.Tensor) -> tuple[torch.Tensor, object]:
    """One integer layer on int64 inputs ``(B, T, n_in)``: ``(spikes, neuron trace)``; the sum
    ``bias_q + W_q @ x`` as :func:`golden.network.run_network` forms it, then
    :meth:`~golden.network.LayerParams.current`."""
    acc = torch.from_numpy(layer.bias_q) + torch.from_numpy(np.matmul(x.numpy(), layer.weight_q.T))
    current, _ = layer.current(acc)
    trace = network_kinds()[layer.kind].run_int(layer.neuron, current)
    return trace.s, trace


def _first_diff(a: torch.Tensor, b: torch.Tensor):
    """First step (axis -2) where two ``(B, T, n)`` spike tensors differ, or None."""
    steps = (a.bool() != b.bool()).any(dim=-1).any(dim=0).nonzero()
    return int(steps[0]) if steps.numel() else None


def evaluate(name: str, path, *, bits, row_scale: bool, feedback: bool, counts: np.ndarray, reference: list[dict],
             args) -> dict:
    fit_aware = bits == "fit"
    params, report = import_checkpoint(path, name, weight_bits=None if fit_aware else bits, row_scale=row_scale,
                                       device=args.device if fit_aware else None, lanes=args.lanes,
                                       n_steps=counts.shape[-2], bin_ticks=DEFAULT_BIN_TICKS,
                                       calibration_samples=args.calibration, seed=args.seed + CALIBRATION_SEED,
                                       error_feedback=feedback)
    chained = run_network(params, counts)
    fit = estimate_fit(params, args.device, lanes=args.lanes, cores=args.cores)
    layers, x = [], torch.from_numpy(counts)
    hidden = params.layers[:-1]
    for l, layer in enumerate(hidden):
        float_spikes = reference[l]["output"].bool()
        isolated, _ = layer_spikes(layer, x)
        int_spikes = chained.layers[l].spikes
        layers.append({
            "weight_fmt": str(layer.weight_fmt) + (f"x{layer.row_scale_fmt}" if layer.scaled else ""),
            "isolated": float((isolated.bool() == float_spikes).double().mean()),
            "chained": float((int_spikes.bool() == float_spikes).double().mean()),
            "first_diff_isolated": _first_diff(isolated, float_spikes),
            "first_diff_chained": _first_diff(int_spikes, float_spikes),
            "float_rate": float(float_spikes.double().mean()),
            "current_saturations": chained.layers[l].current_saturation_count,
            "neuron_saturations": chained.layers[l].neuron_saturation_count,
            "dp16kd": fit.layers[l].dp16kd,
        })
        x = float_spikes.to(torch.int64)
    readout = params.layers[-1]
    layers.append({"weight_fmt": str(readout.weight_fmt) + (f"x{readout.row_scale_fmt}" if readout.scaled else ""),
                   "current_saturations": chained.layers[-1].current_saturation_count,
                   "neuron_saturations": chained.layers[-1].neuron_saturation_count, "dp16kd": fit.layers[-1].dp16kd})
    float_prediction = readout_scores(reference[-1]["u"]).argmax(dim=-1)
    equal = float((float_prediction == chained.prediction).double().mean())
    cycles = estimate_cycles(params, chained, lanes=args.lanes, cores=args.cores)
    # The cycle model is per step of the sample; a 1.2 s sample is SAMPLE_SECONDS / bin of them.
    steps_per_sample = SAMPLE_SECONDS * 1e6 / DEFAULT_BIN_TICKS
    ms = cycles * steps_per_sample / counts.shape[-2] / (args.clock_mhz * 1e3)
    pct = lambda key: " / ".join(f"{100 * layer[key]:.3f}" for layer in layers[:-1])  # noqa: E731
    return {
        "network": name,
        "weights": ("tied" if bits is None else
                    "fit " + "/".join(str(layer.weight_fmt.width) for layer in params.layers) if fit_aware else bits),
        "row_scale": row_scale,
        "rounding": "GPTQ" if feedback else "nearest",
        "weight_fmt": " / ".join(layer["weight_fmt"] for layer in layers),
        "isolated_pct": pct("isolated"),
        "chained_pct": pct("chained"),
        "first_diff_isolated": " / ".join(str(layer["first_diff_isolated"]) for layer in layers[:-1]),
        "first_diff_chained": " / ".join(str(layer["first_diff_chained"]) for layer in layers[:-1]),
        "saturations": " / ".join(f"{layer['current_saturations']},{layer['neuron_saturations']}" for layer in layers),
        "DP16KD": fit.dp16kd,
        "fits": fit.fits,
        "predictions_equal_pct": round(100 * equal, 2),
        "ms_per_sample": round(ms, 2),
        "layers": layers,
        "cycles_per_step": round(cycles / counts.shape[-2], 1),
        "fit_problems": fit.problems,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ssc_checkpoints", description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", choices=sorted(NETWORKS), default=sorted(NETWORKS))
    parser.add_argument("--weight-bits", nargs="*", type=int_range(*WEIGHT_BITS_RANGE, what="a weight width"),
                        default=[], help="common weight widths to try besides the fit-aware ones (default: "
                                         "none)")
    parser.add_argument("--row-scale", choices=("both", "on", "off"), default="both",
                        help="with and/or without per-row scales (default %(default)s)")
    parser.add_argument("--no-tied", action="store_true", help="leave out the formats tied to the core input")
    parser.add_argument("--no-fit", action="store_true", help="leave out the fit-aware widths for --device")
    parser.add_argument("--rounding", choices=("both", "nearest", "gptq"), default="both",
                        help="weights rounded each to nearest and/or with error feedback (GPTQ; not for tied formats)")
    parser.add_argument("--batch", type=positive_int, default=16, help="samples (default %(default)s)")
    parser.add_argument("--steps", type=int_range(2, 65535, "a step count"), default=DEFAULT_STEPS)
    parser.add_argument("--calibration", type=positive_int, default=8, help="calibration samples (default %(default)s)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--device", type=ulx3s_variant, default="85F")
    parser.add_argument("--lanes", type=positive_int, default=1)
    parser.add_argument("--cores", type=positive_int, default=None)
    parser.add_argument("--clock-mhz", type=positive_float, default=100.0)
    parser.add_argument("--quick", action="store_true", help="4 samples of 60 steps, 4 calibration samples")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.steps, args.calibration = 4, 60, 4
    folder = data_root() / "ssm_lif_ssc"
    if not folder.is_dir():
        raise SpikestreamError(f"the SSC checkpoints are not at {folder} (see ../shared/data/ssm_lif_ssc/SOURCE.md)")
    counts = ssc_like_counts(args.batch, args.steps, DEFAULT_BIN_TICKS, seed=args.seed)
    scales = {"both": (False, True), "on": (True,), "off": (False,)}[args.row_scale]
    roundings = {"both": (False, True), "nearest": (False,), "gptq": (True,)}[args.rounding]
    # Error feedback is tried with row scales (and without them only when they are off).
    combos = [(s, f) for s in scales for f in roundings if s or not f or args.row_scale == "off"]
    settings = (([] if args.no_tied else [(None, False, False)])
                + [(b, s, f) for b in ([] if args.no_fit else ["fit"]) + args.weight_bits for s, f in combos])
    rows = []
    for name in args.networks:
        path = folder / NETWORKS[name]
        reference = float_reference(float_network(load_state_dict(path), name, source=str(path)), counts)
        for bits, row_scale, feedback in settings:
            rows.append(evaluate(name, path, bits=bits, row_scale=row_scale, feedback=feedback, counts=counts,
                                 reference=reference, args=args))
            print(format_table([rows[-1]], COLUMNS), flush=True)
    print()
    write_results("ssc_checkpoints", rows, meta={
        "batch": args.batch, "steps": args.steps, "bin_ticks": DEFAULT_BIN_TICKS, "seed": args.seed,
        "calibration_samples": args.calibration, "device": args.device, "lanes": args.lanes, "cores": args.cores,
        "clock_mhz": args.clock_mhz,
        "input": "synthetic SSC-shaped events (golden.data.synthetic_ssc), 700 channels pooled 5 by 5 to 140",
        "ms_per_sample": "cycle model of docs/processor.md summed over layers (upper bound), per 1.2 s sample",
    }, columns=COLUMNS)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
