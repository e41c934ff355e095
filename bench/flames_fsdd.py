"""The FLAMES-style SA-HiPPO stack on the spoken digits: ``python -m bench.flames_fsdd``.

Trains :class:`golden.flames.FlamesFSDD` (or reuses ``build/train/flames/checkpoint.pt`` when its
configuration matches; ``--retrain`` forces training), exports it to the bit-exact integer
network (:func:`golden.flames.export_flames`), measures float and integer test accuracy on the
official FSDD test split, then runs ``--rtl`` test recordings through the DH-LIF and SA-HiPPO
cores in ``amaranth.sim`` (:func:`rtl_recording`: every DH-LIF state beat, every SA-HiPPO mode
of every event and every output beat compared bit for bit with the golden model; the RTL's own
spikes drive the SA-HiPPO core; the decision is recomputed from the RTL's state words) and
counts the clock cycles each core takes. Hardware resources and Fmax come from one nextpnr
build of each core at the network's size on the ULX3S 85F (``--fit``: the SA-HiPPO core by
:func:`bench.sahippo_core.fit_row`, the DH-LIF core by :func:`fit_dhlif`; each row cached in
``build/bench/flames_fsdd_fit.json``, so the cores can be built one at a time). ``--reuse-rtl``
takes the RTL rows of the previous run when the integer network is the same (to refresh the
table without simulating).

Writes ``build/bench/flames_fsdd.json``, ``docs/fsdd_flames.md`` and
``docs/img/fsdd_flames_curves.png``.

``--folds [SPEAKER ...]`` measures leave-one-speaker-out accuracy instead (no RTL, fit, export or
doc): one network per held-out speaker (all five when none is named), trained on the other four
speakers' recordings (``golden.train.split_mask``) with the same recipe and seed
(checkpoints in ``build/train/flames/loso/<tag>/<speaker>/``, reused when finished with the same
settings), then float and integer accuracy on all of that speaker's recordings. ``--augment K``
and ``--channel-norm P`` (training data: augmented copies as ``golden.train``; the cochlea's
per-channel gain normalisation) apply to either mode. The LOSO run prints the table of
``docs/fsdd_results.md`` and writes ``build/bench/flames_fsdd_loso_<tag>.json``, from which
``python -m bench.fsdd`` takes the row when all five folds are there.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bench.common import BENCH_DIR, FIT_ROOT, build_failure, build_fit, write_results
from golden.cli import non_negative_int, output_file, positive_int, run_main, unit_interval
from golden.data import REPO_ROOT
from golden.flames import (
    FlamesConfig,
    FlamesInt,
    export_flames,
    flames_data,
    flames_network,
    load_flames,
    parameter_count,
    run_flames_int,
    spike_events,
    train_flames,
)
from golden.dhlif import DHLIF, DHLIFParams
from golden.errors import SpikestreamError
from golden.files import check_output, save_figure, write_text
from golden.model_file import load_model, save_model
from golden.network import run_network
from golden.data.fsdd import FSDD_SPEAKERS
from golden.train import N_CHANNELS, TICK_US, spread_indices
from hw.bitstream import ROUTERS, BuildError
from hw.boards.core_fit import DHLIFFitTop
from hw.cores.dhlif import DHLIFCore
from sim.checker import check_value, finish_all
from sim.harness import simulate_case
from sim.step_case import StepCase
from sim.tb_dhlif import DHLIF_KIND
from sim.tb_sahippo import SAHiPPOCase

TRAIN_DIR = REPO_ROOT / "build" / "train" / "flames"
LOSO_DIR = TRAIN_DIR / "loso"
FIT_JSON = BENCH_DIR / "flames_fsdd_fit.json"
DOC = REPO_ROOT / "docs" / "fsdd_flames.md"
PLOT = REPO_ROOT / "docs" / "img" / "fsdd_flames_curves.png"
COLUMNS = [
    "neuron", "epochs", "parameters", "float_acc", "int_acc", "int_eq_float", "rtl", "state_words", "state_bits",
    "spikes_per_neuron_step", "synaptic_ops", "dense_macs", "LUT4", "fmax_mhz", "cycles_per_sample",
]
NOT_MEASURED = "not yet measured"
#: nextpnr router for the fits: router2, which negotiates all nets at once (router1 did not
#: route SA-HiPPO cores whose block RAMs all feed a few multipliers).
FIT_ROUTER = "router2"
FIT_CLOCK_HZ = 100e6
FIT_VARIANT = "85F"
FIT_SEED = 1


# --- RTL ------------------------------------------------------------------------------------
def simulate_dhlif(case: StepCase) -> dict:
    """The DH-LIF core on one case; every state and spike beat checked (raises ``MismatchError``).

    Returns ``{"cycles", "spike" (T, H) bool from the RTL's state beats}``.
    """
    run = simulate_case(case)
    raster = np.zeros((case.steps, case.params.n_neurons), dtype=bool)
    for (t, n), record in zip(case.feed(), run.beats["o_state"]):
        raster[t, n] = bool(record["spike"])
    return {"cycles": run.cycles, "spike": raster}


def simulate_sahippo(case: SAHiPPOCase) -> dict:
    """The SA-HiPPO core on one event stream; every mode and output beat checked.

    Returns ``{"cycles", "z" (K, N/2, 2) from the RTL's state beats}``.
    """
    run = simulate_case(case)
    z = np.array([[r["re"], r["im"]] for r in run.beats["o_state"]], dtype=np.int64)
    return {"cycles": run.cycles, "z": z.reshape(len(case.ticks), case.params.n_modes, 2)}


def rtl_recording(net: FlamesInt, counts, name: str = "recording") -> dict:
    """One recording through both cores, each checked bit for bit against the golden model.

    The SA-HiPPO events come from the DH-LIF core's own spikes, and the decision from the
    SA-HiPPO core's own state words through the integer readout. Raises
    :class:`sim.checker.MismatchError` on the first layer that differs. Returns cycles per core,
    event count and the RTL and golden decisions.
    """
    golden = run_flames_int(net, counts)
    dh = simulate_dhlif(DHLIF_KIND.case(f"{name}-dhlif", net.dhlif, np.asarray(counts, dtype=np.int64)))
    mismatch = check_value("DH-LIF spike raster", golden.dhlif.spike.tolist(), dh["spike"].tolist())
    finish_all([], mismatch)
    ticks, channels = spike_events(dh["spike"])
    weights = np.full(ticks.shape, net.weight_one_q, dtype=np.int64)
    sa = simulate_sahippo(SAHiPPOCase(f"{name}-sahippo", net.sahippo, ticks, channels, weights))
    features = np.zeros((net.sahippo.n_channels, net.sahippo.n_modes, 2), dtype=np.int64)
    np.add.at(features, channels, sa["z"])
    scores = net.readout_weight_q @ features.reshape(-1) + net.readout_bias_q
    decision = int(np.argmax(scores))
    finish_all([], check_value("scores", golden.scores.tolist(), scores.tolist()))
    return {
        "name": name,
        "events": int(ticks.size),
        "dhlif_cycles": dh["cycles"],
        "sahippo_cycles": sa["cycles"],
        "decision_rtl": decision,
        "decision_golden": golden.decision,
    }


# --- hardware fit ---------------------------------------------------------------------------
def dhlif_fit_params(n_neurons: int, n_branches: int) -> DHLIFParams:
    """Seeded DH-LIF layer (resources do not depend on the values: decays are memory contents,
    the weights stay upstream of the core)."""
    return DHLIFParams.from_layer(DHLIF(32, n_neurons, n_branches, seed=0))


def fit_dhlif(n_neurons: int, n_branches: int, *, clock_hz: float = FIT_CLOCK_HZ, variant: str = FIT_VARIANT,
              seed: int = FIT_SEED, router: str = FIT_ROUTER, build_dir=None) -> dict:
    """One Yosys/nextpnr build of the DH-LIF core alone (``emit_state`` off); returns its row.

    ``build_dir`` defaults to ``build/core_fit/dhlif-<H>x<D>/``.
    """
    params = dhlif_fit_params(n_neurons, n_branches)
    build_dir = FIT_ROOT / f"dhlif-{n_neurons}x{n_branches}" if build_dir is None else build_dir
    _, row = build_fit(lambda pll_config: DHLIFFitTop(DHLIFCore(params, emit_state=False), pll_config=pll_config),
                       build_dir, design=f"dhlif H={n_neurons} D={n_branches} (core fit)", clock_hz=clock_hz,
                       variant=variant, seed=seed, router=router)
    return {"n_neurons": n_neurons, "n_branches": n_branches, "router": router, "seed": seed,
            "build_dir": str(build_dir), **row}


@dataclass(frozen=True)
class FitCore:
    """What ``--fit`` needs of one core of the stack.

    ``key(config, dt_max)``: the sizes a cached fit row must match to belong to ``config``;
    ``build_dir(config)``: where it is built; ``build(config, dt_max, router)``: the build, returning
    its row; ``size(row)``: the row's sizes in words."""

    title: str
    key: Callable[[FlamesConfig, int], dict]
    build_dir: Callable[[FlamesConfig], Path]
    build: Callable[[FlamesConfig, int, str], dict]
    size: Callable[[dict], str]
    memory_note: Callable[[dict], str | None] = lambda fit: None


def _sahippo_memory_note(fit: dict) -> str | None:
    """What the decay table costs, once a build has counted its block RAMs."""
    if fit.get("DP16KD") is None:
        return None
    return (f"The SA-HiPPO core takes {fit['DP16KD']} of the 208 DP16KD: its zoh decays are composed from three "
            "digit tables of g shared by every channel (decision 'Composed decay tables'), beside the g table "
            "(H x (dt_max + 1) words), the state and C (H x N/2 complex words each).")


def _build_sahippo(config: FlamesConfig, dt_max: int, router: str) -> dict:
    from bench.sahippo_core import fit_row

    return fit_row(config.n_state, n_channels=config.hidden, dt_max=dt_max, clock_hz=FIT_CLOCK_HZ, variant=FIT_VARIANT,
                   seed=FIT_SEED, router=router, build_dir=FIT_CORES["sahippo"].build_dir(config))


#: Cores built by ``--fit``, in the order they run.
FIT_CORES = {
    "sahippo": FitCore(
        "SA-HiPPO",
        key=lambda config, dt_max: {"n_state": config.n_state, "n_channels": config.hidden, "dt_max": dt_max},
        build_dir=lambda config: FIT_ROOT / f"sahippo-{config.n_state}-h{config.hidden}",
        build=_build_sahippo,
        size=lambda fit: f"H = {fit['n_channels']}, N = {fit['n_state']}, dt_max = {fit['dt_max']}",
        memory_note=_sahippo_memory_note,
    ),
    "dhlif": FitCore(
        "DH-LIF",
        key=lambda config, dt_max: {"n_neurons": config.hidden, "n_branches": config.n_branches},
        build_dir=lambda config: FIT_ROOT / f"dhlif-{config.hidden}x{config.n_branches}",
        build=lambda config, dt_max, router: fit_dhlif(config.hidden, config.n_branches, router=router,
                                                       build_dir=FIT_CORES["dhlif"].build_dir(config)),
        size=lambda fit: f"H = {fit['n_neurons']}, D = {fit['n_branches']}",
    ),
}


def placed_figures(nextpnr_log) -> dict:
    """What a nextpnr log (``top.tim``) of a build that did not finish routing still tells.

    Resources after packing (``LUT4`` = TRELLIS_COMB, ``FF``, ``MULT18X18D``, ``DP16KD``), the
    post-placement Fmax estimate (not a routed Fmax) and router2's last iteration
    (``{"iteration", "wires", "overused", "overuse"}``); missing entries are left out.
    """
    import re

    text = Path(nextpnr_log).read_text() if Path(nextpnr_log).is_file() else ""
    figures = {}
    for key, cell in (("LUT4", "TRELLIS_COMB"), ("FF", "TRELLIS_FF"), ("MULT18X18D", "MULT18X18D"),
                      ("DP16KD", "DP16KD")):
        found = re.search(rf"^Info:\s+{cell}:\s+(\d+)/", text, re.MULTILINE)
        if found:
            figures[key] = int(found.group(1))
    estimate = re.search(r"Max frequency for clock '[^']*': ([\d.]+) MHz", text)
    if estimate:
        figures["placement_estimate_mhz"] = float(estimate.group(1))
    iterations = re.findall(r"iter=(\d+) wires=(\d+) overused=(\d+) overuse=(\d+)", text)
    if iterations:
        figures["last_router_iteration"] = dict(zip(("iteration", "wires", "overused", "overuse"),
                                                    map(int, iterations[-1])))
    return figures


def unrouted_row(core: str, config: FlamesConfig, dt_max: int, router: str, why: str, seconds: float) -> dict:
    """The fit row of a build that stopped before routing finished (``why``: how it stopped)."""
    figures = placed_figures(FIT_CORES[core].build_dir(config) / "top.tim")
    note = why
    if "placement_estimate_mhz" in figures:
        note += (f" After placement nextpnr estimated {figures['placement_estimate_mhz']} MHz (an estimate, not a "
                 "routed Fmax).")
    last = figures.get("last_router_iteration")
    if last:
        note += (f" {router} at iteration {last['iteration']}: {last['overused']:,} of {last['wires']:,} wires "
                 f"overused (total overuse {last['overuse']:,}).")
    return {**FIT_CORES[core].key(config, dt_max), **figures, "routed": False, "router": router, "seed": FIT_SEED,
            "build_s": round(seconds, 1), "note": note}


def run_fits(cores, config: FlamesConfig, dt_max: int, router: str) -> dict:
    """Build ``cores`` (names from :data:`FIT_CORES`) one after another; each row (or the
    failure, with what the nextpnr log still tells) is written to
    ``build/bench/flames_fsdd_fit.json`` as soon as it is known."""
    for core in cores:
        print(f"fit: building the {core} core ({router}) ...", flush=True)
        start = time.monotonic()
        try:
            row = FIT_CORES[core].build(config, dt_max, router)
            row["routed"] = True
        except BuildError as error:
            row = unrouted_row(core, config, dt_max, router, build_failure(error) + ".",
                               time.monotonic() - start)
        save_fit(core, row)
    return load_fits()


def save_fit(core: str, row: dict) -> None:
    """Store one core's fit row (dated) in ``build/bench/flames_fsdd_fit.json``."""
    fits = load_fits()
    fits[core] = {**row, "date": time.strftime("%Y-%m-%dT%H:%M", time.gmtime())}
    write_text(FIT_JSON, json.dumps(fits, indent=2, default=str))


def load_fits() -> dict:
    """Cached fit rows by core name (``{}`` when none)."""
    if not FIT_JSON.is_file():
        return {}
    fits = json.loads(FIT_JSON.read_text())
    return {core: row for core, row in fits.items() if core in FIT_CORES and isinstance(row, dict)}


# --- figures --------------------------------------------------------------------------------
def state_figures(net: FlamesInt, tick_bits: int = 32) -> dict:
    """State words and bits the hardware keeps: DH-LIF (D currents, u, previous spike per neuron),
    SA-HiPPO (N/2 complex modes and ``t_last`` per channel), readout (H*N feature sums)."""
    dh, sa = net.dhlif, net.sahippo
    h, d = dh.n_neurons, dh.n_branches
    acc_bits = sa.state_fmt.width + int(np.ceil(np.log2(net.n_steps)))
    words = {"dhlif": h * (d + 2), "sahippo": h * (sa.n_state + 1), "readout": h * sa.n_state}
    bits = {
        "dhlif": h * (d * dh.current_fmt.width + dh.membrane_fmt.width + 1),
        "sahippo": h * (sa.n_state * sa.state_fmt.width + tick_bits),
        "readout": h * sa.n_state * acc_bits,
    }
    return {"words": words, "bits": bits}


def _plot(history: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    ax_loss.plot(epochs, [r["test_loss"] for r in history], "s-", label="test")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross entropy")
    ax_loss.legend()
    ax_acc.plot(epochs, [100 * r["train_acc"] for r in history], "o-", label="train")
    ax_acc.plot(epochs, [100 * r["test_acc"] for r in history], "s-", label="test")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy (%)")
    ax_acc.legend()
    fig.suptitle("FSDD, FLAMES-style stack: DH-LIF -> SA-HiPPO (zoh) -> readout")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def _load_or_train(config: FlamesConfig, train_data, test_data, retrain: bool, out_dir: Path = TRAIN_DIR):
    checkpoint = out_dir / "checkpoint.pt"
    if checkpoint.is_file() and not retrain:
        model, history = load_flames(checkpoint)
        if asdict(model.config) == asdict(config) and len(history) == config.epochs:
            print(f"reusing {checkpoint} (same configuration; --retrain to train again)")
            return model, history
    return train_flames(config, train_data, test_data, out_dir=out_dir, log=lambda *a: print(*a, flush=True))


def split_decisions(model, net: FlamesInt, test_data, int_rows=None) -> tuple[np.ndarray, list]:
    """Float decisions (eval mode, float64) of every recording of ``test_data`` and integer
    results (:func:`run_flames_int`) of the rows ``int_rows`` (default: all)."""
    with torch.no_grad():
        float_logits = torch.cat([model(test_data.counts[i:i + 125].to(torch.float64))
                                  for i in range(0, len(test_data), 125)])
    rows = range(len(test_data)) if int_rows is None else int_rows
    results = [run_flames_int(net, test_data.counts[int(i)].numpy()) for i in rows]
    return float_logits.argmax(-1).numpy(), results


def loso_tag(config: FlamesConfig) -> str:
    """Name of a LOSO recipe: its JSON file, its checkpoint folder and its row in the table
    (``flames h<H> e<epochs> a<augmented copies>``, `` cn<P>`` with the channel normalisation,
    `` n<N>`` when training on N recordings of the fold's training part)."""
    norm = f" cn{config.channel_norm:g}" if config.channel_norm else ""
    limit = f" n{config.train_limit}" if config.train_limit else ""
    return f"flames h{config.hidden} e{config.epochs} a{config.augment}{norm}{limit}"


def loso_fold(config: FlamesConfig, retrain: bool, int_limit: int | None = None) -> dict:
    """One fold (``config.split`` is the held-out speaker): train or reuse its checkpoint, export,
    and measure float accuracy on the held-out speaker's recordings and integer accuracy on
    ``int_limit`` of them (spread over the list; all by default); the fold's entry of
    :func:`bench.fsdd.loso_table` (``float_acc_int_rows``: the float accuracy on the rows the
    integer model ran)."""
    train_data, test_data = flames_data(config)
    out_dir = LOSO_DIR / loso_tag(config).replace(" ", "_") / config.split
    model, history = _load_or_train(config, train_data, test_data, retrain, out_dir)
    rows = spread_indices(len(test_data), int_limit)
    start = time.perf_counter()
    float_dec, results = split_decisions(model, export_flames(model), test_data, rows)
    int_dec = np.array([r.decision for r in results])
    labels = test_data.labels.numpy()
    fold = {"speaker": config.split, "epochs": len(history), "train_seconds": sum(h["seconds"] for h in history),
            "n_train": len(train_data), "n_test": len(test_data), "n_int": len(rows), "augment": config.augment,
            "channel_norm": config.channel_norm,
            "float_acc": 100 * float((float_dec == labels).mean()),
            "int_acc": 100 * float((int_dec == labels[rows]).mean()),
            "float_acc_int_rows": 100 * float((float_dec[rows] == labels[rows]).mean()),
            "agreement": 100 * float((int_dec == float_dec[rows]).mean()),
            "eval_seconds": time.perf_counter() - start}
    print(f"{loso_tag(config)} LOSO {config.split}: float {fold['float_acc']:.1f} %, integer {fold['int_acc']:.1f} % "
          f"on {len(rows)} (float {fold['float_acc_int_rows']:.1f} % on those), {fold['train_seconds']:.0f} s training, "
          f"{fold['eval_seconds']:.0f} s evaluation", flush=True)
    return fold


def run_loso(config: FlamesConfig, speakers, retrain: bool, command: str, int_limit: int | None = None) -> int:
    """Every fold of ``speakers``; prints the LOSO table and writes its JSON (after each fold, so
    an interrupted run keeps the folds it finished)."""
    from bench.fsdd import loso_summary, loso_table

    tag = loso_tag(config)
    name = "flames_fsdd_loso_" + tag.replace(" ", "_")
    if list(speakers) != list(FSDD_SPEAKERS):
        name += "_" + "_".join(speakers)
    folds = []
    for speaker in speakers:
        folds.append(loso_fold(dataclasses.replace(config, split=speaker), retrain, int_limit))
        loso = {tag: folds}
        write_results(name, [], meta={"config": asdict(config), "command": command, "loso": loso,
                                      "loso_summary": {tag: loso_summary(folds)}})
    print("\n".join(loso_table(loso, {})))
    return 0


def export_model(path, net: FlamesInt, config: FlamesConfig, row: dict, int_dec, test_data) -> None:
    """Write the model file and check it: read back, every test recording through
    :func:`golden.network.run_network` gives the decision of :func:`golden.flames.run_flames_int`."""
    provenance = {"source": "golden.flames.flames_network", "trained_by": "python -m bench.flames_fsdd",
                  "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
                  "dataset": "FSDD (cochlea encoding)", "n_steps": config.n_steps,
                  "float_acc": row["float_acc"], "int_acc": row["int_acc"]}
    params = flames_network(net, bin_ticks=config.bin_ms * TICK_US, max_events_per_step=N_CHANNELS * config.bin_ms,
                            provenance=provenance)
    loaded = load_model(save_model(path, params))
    decisions = np.array([int(run_network(loaded, test_data.counts[i]).prediction) for i in range(len(test_data))])
    if not np.array_equal(decisions, int_dec):
        raise SpikestreamError(f"{path}: the model file's decisions differ from run_flames_int on "
                               f"{int((decisions != int_dec).sum())} test recordings")
    print(f"wrote {path}: run_network decides all {len(decisions)} test recordings as run_flames_int "
          f"({100 * float((decisions == test_data.labels.numpy()).mean()):.1f} %)")


def _cell(value, fmt="{}"):
    return NOT_MEASURED if value is None else fmt.format(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flames_fsdd", description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=positive_int, default=6)
    parser.add_argument("--hidden", type=positive_int, default=64)
    parser.add_argument("--n-state", type=positive_int, default=32)
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--retrain", action="store_true", help="train even when a matching checkpoint exists")
    parser.add_argument("--rtl", type=non_negative_int, default=5, metavar="K", help="test recordings run through the cores (0: none)")
    parser.add_argument("--reuse-rtl", action="store_true",
                        help="take the RTL rows of the last run when its integer network is the same (no simulation)")
    parser.add_argument("--fit", nargs="*", choices=FIT_CORES, metavar="CORE",
                        help=f"run the nextpnr build of these cores ({', '.join(FIT_CORES)}; none named: both), "
                             "one after the other (tens of minutes each)")
    parser.add_argument("--router", choices=ROUTERS, default=FIT_ROUTER,
                        help="nextpnr router of the fits (default: %(default)s: router1 does not finish the "
                             "SA-HiPPO decay tables)")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/fsdd_flames.md and its plot")
    parser.add_argument("--export", type=output_file, metavar="FILE",
                        help="write the integer network as a model file (golden.flames.flames_network), checked "
                             "by golden.network.run_network on the whole test split")
    parser.add_argument("--force", action="store_true", help="overwrite the --export file when it exists")
    parser.add_argument("--folds", nargs="*", choices=FSDD_SPEAKERS, default=None, metavar="SPEAKER",
                        help=f"leave-one-speaker-out folds of these held-out speakers instead of the official split "
                             f"(none named: all of {' '.join(FSDD_SPEAKERS)}); no RTL, fit, export or doc")
    parser.add_argument("--augment", type=non_negative_int, default=0, metavar="K",
                        help="augmented copies of each training recording (golden.data.augment; default %(default)s)")
    parser.add_argument("--train-limit", type=positive_int, default=None, metavar="N",
                        help="train on N recordings of the training part, spread over speakers and digits (screening)")
    parser.add_argument("--int-limit", type=positive_int, default=None, metavar="N",
                        help="with --folds: run the integer model on N of the held-out speaker's recordings, spread "
                             "over them (default: all 500; the float model always runs on all)")
    parser.add_argument("--channel-norm", type=unit_interval, default=0.0, metavar="P",
                        help="the cochlea's per-channel gain normalisation exponent in [0, 1] "
                             "(golden.data.cochlea; default %(default)s: off)")
    args = parser.parse_args(argv)
    if args.folds is not None and (args.export is not None or args.fit is not None):
        parser.error("--folds measures leave-one-speaker-out accuracy only: no --export or --fit with it")
    if args.export is not None:
        try:
            check_output(args.export, force=args.force)
        except SpikestreamError as exc:
            parser.error(str(exc))
    torch.set_num_threads(args.threads)
    config = FlamesConfig(hidden=args.hidden, n_state=args.n_state, epochs=args.epochs, threads=args.threads,
                          augment=args.augment, channel_norm=args.channel_norm, train_limit=args.train_limit)
    if args.folds is not None:
        command = " ".join(["python -m bench.flames_fsdd", *(sys.argv[1:] if argv is None else argv)])
        return run_loso(config, args.folds or FSDD_SPEAKERS, args.retrain, command, args.int_limit)
    train_data, test_data = flames_data(config)
    model, history = _load_or_train(config, train_data, test_data, args.retrain)
    net = export_flames(model)

    # Float and integer accuracy on the whole test split.
    start = time.perf_counter()
    float_dec, results = split_decisions(model, net, test_data)
    labels = test_data.labels.numpy()
    int_dec = np.array([r.decision for r in results])
    n_test = len(labels)
    steps, h = config.n_steps, config.hidden
    events = np.array([r.ticks.size for r in results])
    input_events = test_data.counts.sum(dim=(1, 2)).numpy()
    spike_rate = float(events.sum() / (n_test * steps * h))
    with torch.no_grad():
        float_spikes = torch.cat([model.dendrites(test_data.counts[i:i + 125].to(torch.float64))
                                  for i in range(0, len(test_data), 125)]).numpy() > 0
    raster_equal = int(sum(np.array_equal(r.dhlif.spike, float_spikes[i]) for i, r in enumerate(results)))
    saturations = {"dhlif": int(sum(r.dhlif.saturation_count for r in results)),
                   "sahippo": int(sum(r.sahippo.saturation_count for r in results))}
    print(f"float {100 * (float_dec == labels).mean():.1f} %, integer {100 * (int_dec == labels).mean():.1f} %, "
          f"equal decisions {100 * (int_dec == float_dec).mean():.1f} % ({time.perf_counter() - start:.1f} s)")

    # RTL on a subset of the test split (or the rows of the last run of this same integer network).
    digest = hashlib.sha256(json.dumps(net.to_json(), sort_keys=True).encode()).hexdigest()[:16]
    rtl_rows = []
    previous = BENCH_DIR / "flames_fsdd.json"
    if args.reuse_rtl and previous.is_file():
        old = json.loads(previous.read_text())["meta"]
        if old.get("network_digest") == digest and old.get("rtl"):
            rtl_rows = old["rtl"]
            print(f"reusing {len(rtl_rows)} RTL recordings of the same network from {previous}")
    for i in np.linspace(0, n_test - 1, args.rtl).round().astype(int) if args.rtl and not rtl_rows else []:
        t0 = time.perf_counter()
        row = rtl_recording(net, test_data.counts[int(i)].numpy(), test_data.names[int(i)])
        row["seconds"] = round(time.perf_counter() - t0, 1)
        print(f"RTL {row['name']}: {row['events']} events, DH-LIF {row['dhlif_cycles']} + SA-HiPPO "
              f"{row['sahippo_cycles']} cycles, decision {row['decision_rtl']} (golden {row['decision_golden']}), "
              f"{row['seconds']} s", flush=True)
        rtl_rows.append(row)

    # Hardware fit (each core alone at this size), or the cached rows of an earlier fit.
    if args.fit is not None:
        run_fits(args.fit or FIT_CORES, config, net.sahippo.dt_max, args.router)
    fits = {}
    for core, fit in load_fits().items():
        if all(fit.get(k) == v for k, v in FIT_CORES[core].key(config, net.sahippo.dt_max).items()):
            fits[core] = fit
        else:
            print(f"ignoring the {core} row of {FIT_JSON}: built for another size")
    routed = [fits[c] for c in FIT_CORES if c in fits and fits[c].get("routed") and fits[c].get("fmax_mhz")]
    complete = len(routed) == len(FIT_CORES)

    state = state_figures(net)
    n_state = config.n_state
    ops = {
        "dhlif_synapses": float(input_events.mean() * h),
        "sahippo_mode_updates": float(events.mean() * n_state // 2),
        "readout_macs": 10 * h * n_state,
    }
    dense = {"dhlif": steps * 32 * h, "sahippo": steps * h * n_state // 2, "readout": 10 * h * n_state}
    cycles = None
    if rtl_rows:
        cycles = float(np.mean([r["dhlif_cycles"] + r["sahippo_cycles"] for r in rtl_rows]))
    row = {
        "neuron": "flames (DH-LIF + SA-HiPPO zoh)",
        "epochs": len(history),
        "parameters": parameter_count(model),
        "float_acc": round(100 * float((float_dec == labels).mean()), 1),
        "int_acc": round(100 * float((int_dec == labels).mean()), 1),
        "int_eq_float": round(100 * float((int_dec == float_dec).mean()), 1),
        "rtl": (f"{sum(r['decision_rtl'] == r['decision_golden'] for r in rtl_rows)} of {len(rtl_rows)} identical"
                if rtl_rows else NOT_MEASURED),
        "state_words": sum(state["words"].values()),
        "state_bits": sum(state["bits"].values()),
        "spikes_per_neuron_step": round(spike_rate, 3),
        "synaptic_ops": int(round(sum(ops.values()))),
        "dense_macs": sum(dense.values()),
        "LUT4": sum(fits[c]["LUT4"] for c in FIT_CORES) if all(fits.get(c, {}).get("LUT4") for c in FIT_CORES) else None,
        "fmax_mhz": min(f["fmax_mhz"] for f in routed) if complete else None,
        "cycles_per_sample": round(cycles) if cycles is not None else None,
    }
    meta = {
        "config": asdict(config),
        "network_digest": digest,
        "formats": {"readout": str(net.readout_fmt), "sahippo_state": str(net.sahippo.state_fmt),
                    "dhlif_membrane": str(net.dhlif.membrane_fmt),
                    "dhlif_weight": str(net.dhlif.weight_fmt), "dhlif_decay": str(net.dhlif.decay_fmt)},
        "state": state,
        "synaptic_ops": ops,
        "dense_macs": dense,
        "saturations_over_test_split": saturations,
        "raster_equal": raster_equal,
        "n_test": n_test,
        "events_per_recording": {"mean": float(events.mean()), "max": int(events.max())},
        "rtl": rtl_rows,
        "fits": fits,
        "history": history,
    }
    if args.export is not None:
        export_model(args.export, net, config, row, int_dec, test_data)
    write_results("flames_fsdd", [row], meta=meta, columns=COLUMNS)
    if not args.no_doc:
        _plot(history, PLOT)
        write_doc(row, meta)
    return 0


def hardware_text(fits: dict) -> tuple[str, str, str]:
    """The table's LUT and Fmax cells and the hardware paragraph, from the cached fit rows.

    LUTs: the cores' sum; Fmax: the slower core's (the stack runs in one clock domain). Both
    say *not yet measured* until every core of :data:`FIT_CORES` has routed.
    """
    routed = {c: f for c, f in fits.items() if f.get("routed") and f.get("fmax_mhz")}
    counted = {c: f for c, f in fits.items() if f.get("LUT4") is not None}
    if len(counted) == len(FIT_CORES):
        # LUT4 is counted after packing, so a build stopped while routing still gives it.
        luts = " + ".join(f"{counted[c]['LUT4']:,} {FIT_CORES[c].title}{'' if c in routed else ' (placed, not routed)'}"
                          for c in FIT_CORES)
        lut_cell = f"{sum(f['LUT4'] for f in counted.values()):,} ({luts})"
    else:
        lut_cell = ", ".join(f"{f['LUT4']:,} ({FIT_CORES[c].title} core only)" for c, f in counted.items()) or NOT_MEASURED
    if len(routed) == len(FIT_CORES):
        slow = min(FIT_CORES, key=lambda c: routed[c]["fmax_mhz"])
        fmax_cell = f"{routed[slow]['fmax_mhz']} ({FIT_CORES[slow].title} core)"
    elif routed:
        fmax_cell = "; ".join([f"{f['fmax_mhz']} ({FIT_CORES[c].title} core)" for c, f in routed.items()]
                              + [f"{FIT_CORES[c].title} {NOT_MEASURED} (not routed)" for c in fits if c not in routed])
    else:
        fmax_cell = NOT_MEASURED
    if not fits:
        return lut_cell, fmax_cell, "No build of this configuration yet: LUTs and Fmax are **not yet measured** (`--fit`)."
    rows = ["| core | size | LUT4 | FF | MULT18X18D | DP16KD (of 208) | Fmax (MHz) | 100 MHz met | build time (s) | router |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for core in FIT_CORES:
        fit = fits.get(core)
        if fit is None:
            rows.append(f"| {FIT_CORES[core].title} | | not built | | | | | | | |")
            continue
        if fit.get("routed"):
            rows.append(f"| {FIT_CORES[core].title} | {FIT_CORES[core].size(fit)} | {fit['LUT4']:,} | {fit['FF']:,} "
                        f"| {fit['MULT18X18D']} | {fit['DP16KD']} | {fit['fmax_mhz']} | {'yes' if fit['met'] else 'no'} "
                        f"| {fit['build_s']:,.0f} | {fit['router']} |")
            notes.append(f"{FIT_CORES[core].title} critical path: {fit['limit']}.")
        else:
            placed = {k: fit.get(k) for k in ("LUT4", "FF", "MULT18X18D", "DP16KD")}
            cells = " | ".join("" if v is None else f"{v:,}" for v in placed.values())
            seconds = f"{fit['build_s']:,.0f} (stopped)" if fit.get("build_s") is not None else ""
            rows.append(f"| {FIT_CORES[core].title} | {FIT_CORES[core].size(fit)} | {cells} | not routed | - "
                        f"| {seconds} | {fit.get('router', '')} |")
            notes.append(f"{FIT_CORES[core].title}: **not routed**: {fit['note']}")
        note = FIT_CORES[core].memory_note(fit)
        if note:
            notes.append(note)
    text = (f"One Yosys/nextpnr build of each core alone at this size (ULX3S 85F, {FIT_CLOCK_HZ / 1e6:.0f} MHz "
            f"target, seed {FIT_SEED}, `emit_state` off, an LFSR stimulus and one LED; "
            "`bench.sahippo_core.fit_row` and `bench.flames_fsdd.fit_dhlif`, rows in "
            "`build/bench/flames_fsdd_fit.json`). LUT4 counts nextpnr's TRELLIS_COMB cells; the build "
            "time is Yosys + nextpnr + ecppack on the shared 2-core machine while other builds ran.\n\n"
            + "\n".join(rows) + "\n\n" + " ".join(notes)
            + "\n\nThe table's LUTs are the two cores' sum and its Fmax the slower core's (one clock for "
            "the stack). Not built: the DH-LIF synapse stage (the branch sums `W p`, 32 weights per "
            "neuron, which the RTL runs take from `golden.dhlif.branch_drives`) and the readout (one "
            "accumulator per feature beside the SA-HiPPO state stream, then a 10-row dot product "
            "over the H x N sums): both are small multiply-accumulate loops over block-RAM words, "
            "not counted here.")
    return lut_cell, fmax_cell, text



def write_doc(row: dict, meta: dict) -> None:
    """``docs/fsdd_flames.md``: the table row, then the architecture and its deviations."""
    cfg = meta["config"]
    rtl = meta["rtl"]
    lut_cell, fmax_cell, hw = hardware_text(meta["fits"])
    table = (
        "| neuron | epochs | parameters | float acc (%) | integer acc (%) | int == float (%) | RTL == golden (subset) "
        "| state words | state bits | spikes / neuron / step | synaptic ops / sample | dense MACs / sample | LUTs "
        "| Fmax (MHz) | cycles / sample |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        f"| {row['neuron']} | {row['epochs']} | {row['parameters']:,} | {row['float_acc']} | {row['int_acc']} "
        f"| {row['int_eq_float']} | {row['rtl']} | {row['state_words']:,} | {row['state_bits']:,} "
        f"| {row['spikes_per_neuron_step']} | {row['synaptic_ops']:,} | {row['dense_macs']:,} "
        f"| {lut_cell} | {fmax_cell} | {_cell(row['cycles_per_sample'], '{:,}')} |"
    )
    if rtl:
        ev = [r["events"] for r in rtl]
        sa = [r["sahippo_cycles"] for r in rtl]
        cyc = (f"DH-LIF {rtl[0]['dhlif_cycles']:,} on every recording; SA-HiPPO {min(sa):,} to {max(sa):,} "
               f"for {min(ev):,} to {max(ev):,} events (per recording in the JSON)")
        rtl_text = (f"{len(rtl)} test recordings (spread over the split) ran through both cores in `amaranth.sim`; "
                    f"every DH-LIF state beat (4 currents, membrane, spike, saturation flag per neuron and step), "
                    f"every SA-HiPPO mode of every event and every output beat equal the golden integer model, "
                    f"the SA-HiPPO core is driven by the DH-LIF core's own spikes, and the scores computed from the "
                    f"core's state words equal the golden scores. Cycles (DH-LIF + SA-HiPPO, one core after the "
                    f"other): {cyc}.")
    else:
        rtl_text = "No RTL run yet (`--rtl K`)."
    minutes = sum(r["seconds"] for r in meta["history"]) / 60
    ops = meta["synaptic_ops"]
    dense = meta["dense_macs"]
    state = meta["state"]
    text = f"""# FSDD spoken digits: the FLAMES-style SA-HiPPO stack

Written by `python -m bench.flames_fsdd` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; JSON in
`build/bench/flames_fsdd.json`. Same data, split and columns as [fsdd_results.md](fsdd_results.md)
(official split: 2,250 train, 250 test recordings; cochlea of [data.md](data.md), 32 channels).

{table}

![learning curves](img/fsdd_flames_curves.png)

## Network

    cochlea counts, {cfg['window_ms'] // cfg['bin_ms']} steps of {cfg['bin_ms']} ms, 32 channels
      -> DH-LIF, {cfg['hidden']} neurons x {cfg['n_branches']} dendritic branches (golden.dhlif)
      -> {cfg['hidden']} SA-HiPPO memories, one per neuron, zoh, order N = {cfg['n_state']} (golden.sahippo)
         event = a spike of that neuron (weight 1), decay over the inter-spike interval
      -> event pooling: each memory's state summed over its own events ({cfg['hidden']} x {cfg['n_state'] // 2} complex)
      -> batch normalisation (folded on export) -> linear readout -> argmax of 10 scores

Module `golden/flames.py`. Each DH-LIF branch sees its own contiguous {32 // cfg['n_branches']} of the 32 cochlea
channels. A spike of neuron `h` at step `t` is the SA-HiPPO event `(tick t + 1, channel h, weight
1)`; the memory of channel `h` is updated only then, with the spike-aware warped step
`g(dt) = tau exp(-alpha tau)`, `tau = dt * dt_scale` over the interval `dt` since its previous
event (`alpha`, `dt_scale` trained per channel; `dt_max` = {cfg['window_ms'] // cfg['bin_ms']} steps, so no interval is
clipped). Training runs this event recurrence itself on the step grid for a whole batch
(`golden.flames.event_memory`, checked against `SAHiPPOLayer.forward_events` in
`tests/test_flames.py`): the FFT path of `forward_grid` puts an event on every channel at every
step and so cannot see inter-spike intervals. Adam (lr {cfg['lr']}, cosine), batch {cfg['batch_size']},
{cfg['epochs']} epochs, float64, seed {cfg['seed']}, {cfg['threads']} threads; DH-LIF spikes with the boxcar surrogate.
The readout takes the memories' state: `features = sum over events of z` (real and imaginary
parts of every mode of every channel), normalised, `Linear({cfg['hidden'] * cfg['n_state']}, 10)`.

**Integer model** (`export_flames`, `run_flames_int`): the DH-LIF layer is
`golden.dhlif.DHLIFParams` (weights {meta['formats']['dhlif_weight']}, currents and membrane
{meta['formats']['dhlif_membrane']}, decays {meta['formats']['dhlif_decay']}), the memories `golden.sahippo.SAHiPPOParams` (zoh, `g` indexed by channel and
interval, decays composed from three digit tables of `g`, state {meta['formats']['sahippo_state']}), both run by their bit-exact `run_int`. The
readout folds the normalisation into the weights (`W / sd`, `b - W mu / sd`), quantises them to
{meta['formats']['readout']} and adds the bias at the product's fractional bits to the exact dot
product with the summed state words: no rounding at all after the cores. Saturations over the
whole test split (updates in which a clamp acted): DH-LIF {meta['saturations_over_test_split']['dhlif']} neuron
updates, SA-HiPPO {meta['saturations_over_test_split']['sahippo']} events. *int == float*: the float and the integer
DH-LIF give the same spike raster on {meta['raster_equal']} of the {meta['n_test']} test recordings; where
they differ, a flipped spike moves a whole SA-HiPPO event, which is where decisions part.

**Model file** (`models/fsdd_flames.safetensors`, [model_file.md](model_file.md)):
`python -m bench.flames_fsdd --hidden 112 --rtl 0 --no-doc --export models/fsdd_flames.safetensors`
trains (or reuses the checkpoint) and writes the integer network with
`golden.flames.flames_network`: a `dhlif` layer, a `sahippo` memory layer (events from the
DH-LIF spikes, intervals from the step counter) and an `event_pool` readout. The command reads
the file back and checks that `golden.network.run_network` decides every test recording as
`run_flames_int` does. The processor runs the whole network (`docs/processor.md`: the DH-LIF
layer, then the SA-HiPPO memory layer and the event-pooling readout as its end); its Verilog
against `run_network` on the test split: `python -m bench.rtl_fsdd --model
models/fsdd_flames.safetensors` ([reliability.md](reliability.md)).

**RTL.** {rtl_text}

## Hardware

{hw}

## Columns

* *parameters*: trainable float parameters (DH-LIF weights and time constants, the memories'
  `alpha` and `dt_scale`, readout weights and biases; the unused SA-HiPPO soma `C`, `D` and the
  normalisation statistics are not counted): `H (32 + D + 1) + 2 H + 10 H N + 10`
  = {row['parameters']:,} at H = {cfg['hidden']}, D = {cfg['n_branches']}, N = {cfg['n_state']}. The readout's `10 H N` is most of
  it, so the ~40k budget of the other rows fixes `H N` near 3,600 whichever way it is split, and
  with it the SA-HiPPO state (`H x N/2` complex words). N stays at 32 (16 clocks per
  event, the order the SA-HiPPO core was verified and built at before); H = 112 is the multiple
  of 16 nearest 40k (40,218; H = 96 gives 34,474, H = 128 45,962).
* *state words / bits*: DH-LIF {state['words']['dhlif']:,} words / {state['bits']['dhlif']:,} bits (4 currents, membrane,
  previous spike per neuron); SA-HiPPO {state['words']['sahippo']:,} / {state['bits']['sahippo']:,} (N/2 complex modes and a
  32-bit `t_last` per channel); readout accumulators {state['words']['readout']:,} / {state['bits']['readout']:,} (one sum per
  feature, state width + 6 bits).
* *synaptic ops / sample* (test-split mean): DH-LIF weight additions (input events x {cfg['hidden']} neurons)
  {ops['dhlif_synapses']:,.0f}; SA-HiPPO complex mode updates (events x N/2) {ops['sahippo_mode_updates']:,.0f};
  readout MACs {ops['readout_macs']:,}. *Dense MACs*: DH-LIF {dense['dhlif']:,} (every input every step),
  SA-HiPPO {dense['sahippo']:,} (every mode every step), readout {dense['readout']:,}.
* *spikes / neuron / step*: DH-LIF spikes of the integer model over the test split (each is one
  SA-HiPPO event); {meta['events_per_recording']['mean']:.0f} events per recording on average, at most
  {meta['events_per_recording']['max']}.
* *cycles / sample*: mean over the RTL recordings of the DH-LIF core's cycles (one neuron update
  per clock, {cfg['hidden']} x {cfg['window_ms'] // cfg['bin_ms']} updates) plus the SA-HiPPO core's (N/2 = {cfg['n_state'] // 2} clocks per event), the
  cores run one after the other; the readout (accumulation beside the state stream, then
  {dense['readout']:,} MACs) is not built and not counted.

## Deviations from FLAMES

* **No convolutional front end, no spatial pooling, no LayerNorm.** The input is the 32-channel
  cochlea, so the DH-LIF layer is fully connected per branch; each neuron feeds its own memory.
  The readout's batch normalisation folds into integer weights; a LayerNorm does not.
* **Readout from the memory state, not from the SA-HiPPO soma.** The cores compute `y` and a
  soma spike per event; here `C = D = 0` (so `y = 0`, never a spike) and the state words of the
  core's `o_state` stream are summed per feature. A deployed design would add the accumulators
  beside that stream; they exist only in the golden model so far.
* **zoh, not Taylor-2.** The diagonal zoh discretisation (rank-1 term of LegS dropped, [Eigenbasis and two discretisations](decisions.md#eigenbasis-and-two-discretisations)):
  N/2 clocks per event instead of four passes per sub-step.
* **Coarse time base.** {cfg['bin_ms']} ms steps (the cochlea's 1 ms ticks binned), as the other FSDD rows; the
  SA-HiPPO ticks are these steps.
* **Small.** One DH-LIF layer of {cfg['hidden']} neurons and {cfg['epochs']} epochs: training took
  {minutes:.0f} minutes on 2 threads of the shared 2-core machine while other builds ran (epoch
  times in the JSON history).
"""
    write_text(DOC, text)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    raise SystemExit(run_main(main))
