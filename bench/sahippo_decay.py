"""What the composed zoh decay tables cost: ``python -m bench.sahippo_decay``.

The zoh core multiplies each mode by ``exp(Lambda g_q)``. The integer model composes that
decay from digit tables of ``g_q`` shared by every channel (decision 'Composed decay tables').
This bench compares, for the FLAMES memory size (``H = 112``, ``N = 32``, ``dt_max = 40``,
``alpha = 1`` and ``dt_scale`` log-spaced over ``[0.005, 0.1]`` as ``golden.flames`` starts
them), digit widths ``b`` against the per-(channel, interval) table that held one rounded decay
per entry (``dense table``, the baseline, computed here with the same
:func:`golden.sahippo.quantize_complex_decay`):

* the decay's error in LSBs of ``decay_fmt`` against ``exp(Lambda g_q)`` in float64, over every
  ``(channel, interval)`` of the layer (max and mean over modes and entries);
* the relative state error of :func:`golden.sahippo.run_int` against the exact float zoh
  recurrence on the same quantised ``g`` (the dense ``expm((A + P P^T) g)`` of docs/sahippo.md,
  which the modal ``exp(Lambda g)`` equals) over event streams of 2,000 unit events at random
  ticks ``1 .. 40`` on random channels: the FLAMES FSDD event rate (2,015 events per
  recording of 40 steps on average);
* the decay tables' words and the DP16KD they take (:func:`golden.fit.map_memory`);
* with ``--flames CHECKPOINT`` (a :func:`golden.flames.train_flames` checkpoint, e.g.
  ``build/train/flames/checkpoint.pt`` of ``python -m bench.flames_fsdd``): the FSDD test
  accuracy of that network in float and in integer with each design (``b = 8`` and the
  dense table), and how many decisions the two integer designs share.

Writes ``build/bench/sahippo_decay.json``. Seeded; about a minute (``--flames``: a few more).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from bench.common import write_results
from golden.cli import existing_file, positive_int, run_main
from golden.fit import map_memory
from golden.hippo import nplr
from golden.sahippo import DEFAULT_DECAY_DIGIT_BITS, SAHiPPOParams, quantize_complex_decay, run_int

H, N, DT_MAX = 112, 32, 40
DIGIT_BITS = (7, DEFAULT_DECAY_DIGIT_BITS, 12)
LAMBDA = nplr(N).lam


def flames_layer(digit_bits: int) -> SAHiPPOParams:
    """The FLAMES memories at their initial ``alpha`` and ``dt_scale`` (``C = D = 0``)."""
    return SAHiPPOParams.from_float(N, 1.0, np.geomspace(0.005, 0.1, H), np.zeros((H, N)), np.zeros(H), np.zeros(H),
                                    DT_MAX, method="zoh", decay_digit_bits=digit_bits)


class DenseTable(SAHiPPOParams):
    """The baseline: one rounded decay per ``g_q`` (a per-(channel, interval) table)."""

    def composed_decay(self, g_q: int) -> np.ndarray:
        return quantize_complex_decay(np.exp(LAMBDA * self.g_fmt.to_float(int(g_q))), self.decay_fmt)


def decay_errors(params: SAHiPPOParams) -> tuple[float, float]:
    """Max and mean ``|d_q - exp(Lambda g_q)|`` in decay LSBs over every non-zero table entry."""
    lam = nplr(params.n_state).lam
    one = 1 << params.decay_fmt.frac_bits
    errors = []
    for g_q in np.unique(params.g_q[params.g_q > 0]):
        d = params.composed_decay(int(g_q))
        exact = np.exp(lam * params.g_fmt.to_float(int(g_q)))
        errors.append(np.abs(d[:, 0] + 1j * d[:, 1] - exact * one))
    errors = np.concatenate(errors)
    return float(errors.max()), float(errors.mean())


def state_error(params: SAHiPPOParams, n_streams: int, n_events: int, n_ticks: int, seed: int) -> tuple[float, float]:
    """Relative state error (median, max over streams) of ``run_int`` against the float zoh
    recurrence on the same quantised ``g``."""
    system = nplr(params.n_state)
    fs = params.state_fmt.frac_bits
    rng = np.random.default_rng(seed)
    errors = []
    for _ in range(n_streams):
        ticks = np.sort(rng.integers(1, n_ticks + 1, n_events))
        channels = rng.integers(0, params.n_channels, n_events)
        weights_q = np.full(n_events, 1 << params.input_fmt.frac_bits)
        trace = run_int(params, ticks, channels, weights_q)
        z = np.zeros((params.n_channels, params.n_modes), dtype=complex)
        reference = np.zeros((n_events, params.n_modes), dtype=complex)
        t_last = np.zeros(params.n_channels, dtype=np.int64)
        for k, (t, h) in enumerate(zip(ticks, channels)):
            dt = min(int(t - t_last[h]), params.dt_max)
            t_last[h] = t
            g = params.g_fmt.to_float(int(params.g_q[h, dt]))
            z[h] = np.exp(system.lam * g) * z[h] + system.b_t
            reference[k] = z[h]
        got = (trace.z[..., 0] + 1j * trace.z[..., 1]) / (1 << fs)
        errors.append(np.linalg.norm(got - reference) / np.linalg.norm(reference))
    return float(np.median(errors)), float(np.max(errors))


def table_memory(params: SAHiPPOParams, rows: list[int]) -> dict:
    """Words and DP16KD of the decay tables with ``rows`` rows of ``N/2`` complex words each
    (one memory per entry of ``rows``, as the core builds them)."""
    width = 2 * params.decay_fmt.width
    stride = 1 << (params.n_modes - 1).bit_length()
    words = [r * stride for r in rows]
    return {"decay_words": sum(words),
            "decay_dp16kd": sum(map_memory(w, width, written=False)[1] for w in words)}


def flames_accuracy(checkpoint, limit: int | None) -> dict:
    """Float and integer FSDD test accuracy of a trained FLAMES network, the integer network
    with the composed decays (``b = 8``) and with the dense table."""
    import torch

    from golden.flames import export_flames, load_flames, run_flames_int
    from golden.train import load_speech_data

    model, history = load_flames(checkpoint)
    config = model.config
    test = load_speech_data("test", config.bin_ms, config.window_ms)
    n = len(test) if limit is None else min(limit, len(test))
    labels = test.labels.numpy()[:n]
    with torch.no_grad():
        float_dec = torch.cat([model(test.counts[i:min(i + 125, n)].to(torch.float64))
                               for i in range(0, n, 125)]).argmax(-1).numpy()
    net = export_flames(model)
    sa = net.sahippo
    dense_net = replace(net, sahippo=DenseTable(**{f: getattr(sa, f) for f in sa.__dataclass_fields__}))
    decisions = {name: np.array([run_flames_int(network, test.counts[i].numpy()).decision for i in range(n)])
                 for name, network in (("digits", net), ("dense", dense_net))}
    return {"checkpoint": str(checkpoint), "hidden": config.hidden, "n_state": config.n_state,
            "epochs_trained": len(history), "recordings": n, "float_acc": float((float_dec == labels).mean()),
            "int_acc_dense_table": float((decisions["dense"] == labels).mean()),
            "int_acc_digits_b8": float((decisions["digits"] == labels).mean()),
            "int_decisions_equal": float((decisions["dense"] == decisions["digits"]).mean())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sahippo_decay", description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=positive_int, default=3, help="event streams per design (default: %(default)s)")
    parser.add_argument("--events", type=positive_int, default=2000, help="events per stream (default: %(default)s)")
    parser.add_argument("--ticks", type=positive_int, default=40, help="ticks per stream (default: %(default)s)")
    parser.add_argument("--flames", type=existing_file, metavar="CHECKPOINT",
                        help="also measure FSDD accuracy of this trained FLAMES checkpoint with both designs")
    parser.add_argument("--flames-limit", type=positive_int, metavar="K", help="only the first K test recordings")
    args = parser.parse_args(argv)
    rows = []
    base = flames_layer(DEFAULT_DECAY_DIGIT_BITS)
    dense = DenseTable(**{f: getattr(base, f) for f in base.__dataclass_fields__})
    designs = [("dense table", dense, table_memory(base, [H * (DT_MAX + 1)]), 0)]
    for bits in DIGIT_BITS:
        params = flames_layer(bits)
        designs.append((f"digits b = {bits}", params, table_memory(params, params.decay_rows), params.decay_digits - 1))
    for name, params, memory, products in designs:
        worst, mean = decay_errors(params)
        median, peak = state_error(params, args.streams, args.events, args.ticks, seed=5)
        rows.append({"design": name, "digit_tables": 1 if name == "dense table" else params.decay_digits,
                     "products_per_mode": products, **memory, "decay_err_max_lsb": worst, "decay_err_mean_lsb": mean,
                     "state_rel_err_median": median, "state_rel_err_max": peak})
    flames = flames_accuracy(args.flames, args.flames_limit) if args.flames else None
    if flames:
        print(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in flames.items()))
    write_results("sahippo_decay", rows, {
        "flames": flames,
        "H": H, "N": N, "dt_max": DT_MAX, "alpha": 1.0, "dt_scale": "geomspace(0.005, 0.1, H)",
        "streams": args.streams, "events": args.events, "ticks": args.ticks,
        "reference": "float64 zoh recurrence on the same quantised g (exp(Lambda g) z + B_t per unit event)",
        "g_max": float(base.g_fmt.to_float(int(base.g_q.max()))),
    })
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
