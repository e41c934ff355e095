"""Import the SSM-inspired-LIF authors' Spiking Speech Commands checkpoints as model files.

``python -m golden.ssc_checkpoint CHECKPOINT --kind silif|csilif --out MODEL.safetensors
[--device 85F] [--weight-bits B [B ...]] [--row-scale] [--error-feedback] [--lanes L] [--force]`` reads the checkpoint's
``state_dict`` (the format and mapping of ``../shared/data/ssm_lif_ssc/SOURCE.md``), builds the
project's float network from it (:func:`float_network`), exports it with
:func:`golden.export.export_network` (batch norm folded, formats calibrated on synthetic
SSC-shaped input, :mod:`golden.data.synthetic_ssc`), writes the model file and prints the
calibration report and the fit check.

The checkpoint: hidden layers ``snn.0 .. snn.{L-2}``, each ``W.weight`` ``(n_out, n_in)`` (no
bias), ``norm.{weight, bias, running_mean, running_var}`` (BatchNorm1d) and the neuron's
parameters; the readout ``snn.{L-1}``: ``W.weight``, ``norm.*`` and ``alpha``. Mapping onto the
float modules:

* SiLIF (:class:`golden.silif.SiLIF`): ``dt, alpha, beta, a, b`` -> ``log_dt, log_rate_u,
  log_rate_w, a, b``;
* C-SiLIF (:class:`golden.csilif.CSiLIF`): ``log_dt, log_log_alpha, alpha_img, b`` ->
  ``theta_dt, theta_r, omega, gain``;
* readout (:class:`golden.layers.LIReadout`): ``alpha`` -> ``alpha``;
* every layer: ``W.weight`` -> ``linear.weight``, ``norm.*`` -> ``norm.*`` (eval mode).

The input side is the authors': 700 cochlea channels summed 5 by 5 into 140 inputs
(:data:`~golden.data.synthetic_ssc.SSC_POOL`, stored as the model's ``channel_pool``) and
300 steps of 4 ms (``--bin-ticks``; ``--authors-binning`` takes their ``np.digitize`` bin width
where it is a whole number of ticks, see ``docs/ssc_checkpoints.md``).

A key that is missing or has the wrong shape raises :class:`CheckpointError` naming it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import torch

from .csilif import CSiLIF
from .data.events import digitize_bin_ticks
from .data.synthetic_ssc import SSC_DURATION_TICKS, SSC_POOL, ssc_like_counts
from .errors import SpikestreamError
from .export import WEIGHT_BITS_RANGE, FloatNetwork, export_network
from .fit import DEVICES, FitError, estimate_fit
from .layers import LIReadout, SNNLayer
from .silif import SiLIF

__all__ = ["CheckpointError", "NEURON_PARAMETERS", "load_state_dict", "float_network", "import_checkpoint", "main"]

#: Per hidden kind: the float module and checkpoint key -> module parameter (SOURCE.md).
NEURON_PARAMETERS = {
    "silif": (SiLIF, {"dt": "log_dt", "alpha": "log_rate_u", "beta": "log_rate_w", "a": "a", "b": "b"}),
    "csilif": (CSiLIF, {"log_dt": "theta_dt", "log_log_alpha": "theta_r", "alpha_img": "omega", "b": "gain"}),
}
_READOUT_PARAMETERS = {"alpha": "alpha"}
_NORM_KEYS = ("weight", "bias", "running_mean", "running_var")
#: The authors' configuration: 300 steps over 1.2 s (4 ms), pooled 700 -> 140 channels.
DEFAULT_STEPS = 300
DEFAULT_BIN_TICKS = 4_000
#: Bound on input events per step the accumulators are sized for (the synthetic input peaks near 40).
DEFAULT_MAX_EVENTS_PER_STEP = 512


class CheckpointError(SpikestreamError):
    """A checkpoint that cannot be imported; the message names the file and the key."""


def load_state_dict(path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a ``.pth`` file (read with ``weights_only=True``: no code runs)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a file that is not a checkpoint
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(f"{path}: not a PyTorch state_dict ({type(exc).__name__}: {first_line})") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise CheckpointError(f"{path}: not a state_dict (a mapping of names to tensors), but {type(state).__name__}")
    return state


def _layer_count(state: dict) -> int:
    n = 0
    while f"snn.{n}.W.weight" in state:
        n += 1
    return n


def _tensor(state: dict, key: str, shape: tuple, source: str, hint: str = "") -> torch.Tensor:
    if key not in state:
        raise CheckpointError(f"{source}: {key}: missing{hint}")
    value = state[key]
    if tuple(value.shape) != tuple(shape) or not value.is_floating_point():
        raise CheckpointError(f"{source}: {key}: {value.dtype} of shape {tuple(value.shape)}, expected a float "
                              f"tensor of shape {tuple(shape)}")
    return value


def float_network(state: dict, kind: str, *, source: str = "checkpoint") -> FloatNetwork:
    """The project's float network holding the checkpoint's parameters (float32, eval mode).

    Raises
    ------
    CheckpointError
        On an unknown ``kind``, a missing key, a key of the wrong shape or dtype, or keys the
        mapping does not use (each named).
    """
    if kind not in NEURON_PARAMETERS:
        raise CheckpointError(f"unknown kind {kind!r}: choose {' or '.join(NEURON_PARAMETERS)}")
    module_class, mapping = NEURON_PARAMETERS[kind]
    n_layers = _layer_count(state)
    if n_layers < 2:
        raise CheckpointError(f"{source}: snn.{n_layers}.W.weight: missing (a network needs at least one hidden "
                              "layer and the readout, snn.0 ... snn.N)")
    others = [name for name in NEURON_PARAMETERS if name != kind]
    used, layers = set(), []
    n_in = int(state["snn.0.W.weight"].shape[1])
    for i in range(n_layers):
        prefix = f"snn.{i}"
        n_out = int(state[f"{prefix}.W.weight"].shape[0])
        readout = i == n_layers - 1
        weight = _tensor(state, f"{prefix}.W.weight", (n_out, n_in), source)
        neuron = LIReadout(n_out) if readout else module_class(n_out)
        params = _READOUT_PARAMETERS if readout else mapping
        hint = ""
        if not readout:
            for other in others:
                if all(f"{prefix}.{key}" in state for key in NEURON_PARAMETERS[other][1]):
                    hint = f" (the checkpoint has the {other} parameters: import it with --kind {other})"
        layer = SNNLayer(n_in, neuron)
        with torch.no_grad():
            layer.linear.weight.copy_(weight)
            for key, name in params.items():
                getattr(neuron, name).copy_(_tensor(state, f"{prefix}.{key}", (n_out,), source, hint))
            for key in _NORM_KEYS:
                getattr(layer.norm, key).copy_(_tensor(state, f"{prefix}.norm.{key}", (n_out,), source))
            if f"{prefix}.norm.num_batches_tracked" in state:
                layer.norm.num_batches_tracked.copy_(state[f"{prefix}.norm.num_batches_tracked"])
        used |= {f"{prefix}.W.weight", f"{prefix}.norm.num_batches_tracked",
                 *(f"{prefix}.{key}" for key in params), *(f"{prefix}.norm.{key}" for key in _NORM_KEYS)}
        layers.append(layer)
        n_in = n_out
    unused = sorted(set(state) - used)
    if unused:
        raise CheckpointError(f"{source}: {unused[0]}: not a parameter of a {kind} network of {n_layers} layers "
                              f"({len(unused)} such keys)")
    return FloatNetwork(layers).eval()


#: Seed of the calibration samples: apart from ``bench.ssc_checkpoints``' evaluation samples
#: (seed 0), so that an imported model is never calibrated on the samples it is measured on.
CALIBRATION_SEED = 1000


def import_checkpoint(path, kind: str, *, weight_bits=None, row_scale: bool = False,
                      device: str | None = None, lanes: int = 1, n_steps: int = DEFAULT_STEPS,
                      bin_ticks: int = DEFAULT_BIN_TICKS, calibration_samples: int = 16, seed: int = CALIBRATION_SEED,
                      max_events_per_step: int = DEFAULT_MAX_EVENTS_PER_STEP, error_feedback: bool = False):
    """Checkpoint -> ``(NetworkParams, CalibrationReport)``: :func:`float_network`, then
    :func:`golden.export.export_network` calibrated on ``calibration_samples`` synthetic
    SSC-shaped samples of ``n_steps`` steps (``seed``), with the authors' channel pooling."""
    path = Path(path)
    model = float_network(load_state_dict(path), kind, source=str(path))
    counts = ssc_like_counts(calibration_samples, n_steps, bin_ticks, seed=seed)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    provenance = {"checkpoint": path.name, "checkpoint_sha256": digest, "kind": kind,
                  "origin": "Maxtimer97/SSM-inspired-LIF (MIT License, copyright 2025 Maxime Fabre)",
                  "calibration": f"{calibration_samples} synthetic SSC-shaped samples, seed {seed}",
                  "n_steps": int(n_steps)}
    return export_network(model, counts, bin_ticks=bin_ticks, channel_pool=SSC_POOL,
                          max_events_per_step=max_events_per_step, weight_bits=weight_bits, row_scale=row_scale,
                          device=device, lanes=lanes, provenance=provenance, error_feedback=error_feedback)


def main(argv=None) -> int:
    from .cli import existing_file, int_range, non_negative_int, output_file, positive_int, upper_choice
    from .files import check_output
    from .model_file import save_model

    parser = argparse.ArgumentParser(prog="python -m golden.ssc_checkpoint", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=existing_file, help="the authors' .pth state_dict")
    parser.add_argument("--kind", required=True, choices=sorted(NEURON_PARAMETERS), help="hidden neuron kind")
    parser.add_argument("--out", required=True, type=output_file, help="model file to write (.safetensors)")
    parser.add_argument("--device", type=upper_choice(sorted(DEVICES), "device"), default=None,
                        help="pick the widest weights that fit this ULX3S FPGA size (12F, 25F, 45F, 85F); the fit "
                             "check is also run against it (default: check against 85F, weights as --weight-bits)")
    parser.add_argument("--weight-bits", nargs="+", type=int_range(*WEIGHT_BITS_RANGE, what="a weight width"),
                        default=None, metavar="B",
                        help="weight width, 2..16, of every layer (one value) or of each layer (with --device: the "
                             "widest tried); default: the weights share the core input's fractional bits")
    parser.add_argument("--row-scale", action="store_true", help="per-row (per-neuron) weight scales")
    parser.add_argument("--error-feedback", action="store_true",
                        help="round the weights with error feedback on the calibration inputs (GPTQ) instead of "
                             "each to its nearest value")
    parser.add_argument("--lanes", type=positive_int, default=1, help="synapse lanes per layer for the fit check")
    parser.add_argument("--steps", type=int_range(2, 65535, "a step count"), default=DEFAULT_STEPS,
                        help="steps per calibration sample (default %(default)s)")
    parser.add_argument("--bin-ticks", type=positive_int, default=DEFAULT_BIN_TICKS,
                        help="step width in microsecond ticks (default %(default)s: 4 ms)")
    parser.add_argument("--authors-binning", action="store_true",
                        help="step width of the authors' np.digitize over linspace(0, 1.2 s, steps): refused when "
                             "it is not a whole number of ticks")
    parser.add_argument("--calibration-samples", type=positive_int, default=16)
    parser.add_argument("--seed", type=non_negative_int, default=CALIBRATION_SEED,
                        help="seed of the calibration samples (default %(default)s: apart from "
                             "bench.ssc_checkpoints' evaluation samples, seed 0)")
    parser.add_argument("--max-events-per-step", type=positive_int, default=DEFAULT_MAX_EVENTS_PER_STEP)
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    args = parser.parse_args(argv)
    if (args.row_scale or args.error_feedback) and args.weight_bits is None and args.device is None:
        parser.error("--row-scale and --error-feedback need --weight-bits or --device")
    try:
        check_output(args.out, inputs=[args.checkpoint], force=args.force)
    except SpikestreamError as exc:
        parser.error(str(exc))
    bin_ticks = digitize_bin_ticks(args.steps, SSC_DURATION_TICKS) if args.authors_binning else args.bin_ticks
    weight_bits = args.weight_bits[0] if args.weight_bits and len(args.weight_bits) == 1 else args.weight_bits
    try:
        params, report = import_checkpoint(
            args.checkpoint, args.kind, weight_bits=weight_bits, row_scale=args.row_scale, device=args.device,
            lanes=args.lanes, n_steps=args.steps, bin_ticks=bin_ticks, calibration_samples=args.calibration_samples,
            seed=args.seed, max_events_per_step=args.max_events_per_step, error_feedback=args.error_feedback)
    except FitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        raise CheckpointError(f"{args.checkpoint}: {exc}") from None
    path = save_model(args.out, params)
    print(report)
    fit = report.fit or estimate_fit(params, args.device or "85F", lanes=args.lanes)
    print(fit)
    print(f"wrote {path}")
    return 0 if fit.fits else 1


if __name__ == "__main__":
    from .cli import run_main

    raise SystemExit(run_main(main))
