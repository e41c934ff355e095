"""The streaming event processor: cycle costs by lanes and cores, and its fit on the ULX3S 85F.

``python -m bench.processor`` measures, in ``amaranth.sim`` on the real processor, for the
default network (162 -> 32 C-SiLIF -> 10) and a larger one (162 -> 256 -> 256 refractory LIF ->
10; ``large_2x256_scaled``: the same with 8-bit hidden weights and a per-row scale;
``dhlif_112x4``: FLAMES' DH-LIF layer, 32 -> 112 neurons x 4 branches -> 10), as the
synapse lanes go from 1 to 16 (``--cores``: neuron cores per hidden layer, swept with each lanes
value it divides; default as many as lanes):

* cycles per input event (a burst of events inside one step, first to last taken by layer 0);
* cycles per time step (empty steps: every layer drains, updates and closes);
* latency from the last event of a sample to its decision (the scores beat), with the last
  event in the sample's last step;
* synaptic operations per second at the clock: one accumulator add per lane per cycle while
  events stream (``lanes * clock``), and at the measured per-event cost.

``--fit`` adds full Yosys -> nextpnr builds of the ULX3S board top (UART link, decoder, encoder,
processor) on the 85F: LUT4, FF, MULT18X18D, DP16KD, Fmax (minutes each; ``--fit-lanes``
chooses which), and for each build the synaptic throughput at its Fmax from the simulated cycles
per event. ``--jobs N`` runs simulations and builds side by side (each build is single-threaded:
on a 16-core machine the whole lanes sweep takes about as long as its largest build). Results go
to ``build/bench/processor.json``.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from bench.common import build_fit, write_results
from golden.cli import non_negative_int, positive_float, positive_int, run_main, ulx3s_variant
from golden.dhlif import DHLIF, DHLIFParams
from golden.fixed import QFormat
from golden.layers import LIReadoutParams
from golden.network import DEFAULT_INPUT_MAP, LayerParams, NetworkParams, default_network
from golden.refractory_lif import RefractoryLIFParams
from hw.bitstream import DEFAULT_LUT_MAPPER, DEFAULT_ROUTER, LUT_MAPPERS, ROUTERS
from hw.boards.ulx3s_processor import ULX3SProcessorTop
from hw.processor.cycles import measure_cycles

BUILD_ROOT = Path(__file__).resolve().parent.parent / "build" / "processor_fit"
LANES = (1, 2, 4, 8, 16)
COLUMNS = ["network", "lanes", "cores", "cycles_per_event", "cycles_per_step", "latency_cycles", "latency_us",
           "event_layer0_us", "gsop_per_s_peak"]
FIT_COLUMNS = ["network", "lanes", "cores", "router", "LUT4", "FF", "MULT18X18D", "DP16KD", "fmax_mhz", "met",
               "gsop_per_s_at_fmax", "build_s"]


def large_network(seed: int = 0, n_hidden: int = 256) -> NetworkParams:
    """162 -> ``n_hidden`` -> ``n_hidden`` refractory LIF -> 10 readout, seeded random weights."""
    rng = np.random.default_rng(seed)
    layers = []
    n_prev = DEFAULT_INPUT_MAP.n_channels
    for _ in range(2):
        neuron = RefractoryLIFParams.from_float(v_th=np.ones(n_hidden), u_th=np.full(n_hidden, 0.5), tau=0.5)
        frac = neuron.input_fmt.frac_bits
        w_fmt, b_fmt = QFormat(2, frac), QFormat(3, frac)
        layers.append(LayerParams(w_fmt.quantize(rng.normal(0, 0.1, (n_hidden, n_prev))),
                                  b_fmt.quantize(rng.normal(-0.05, 0.05, n_hidden)), w_fmt, b_fmt, neuron))
        n_prev = n_hidden
    readout = LIReadoutParams.from_float(alpha=rng.uniform(0.82, 0.96, 10))
    frac = readout.input_fmt.frac_bits
    w_fmt = QFormat(2, frac)
    layers.append(LayerParams(w_fmt.quantize(rng.normal(0, 0.2, (10, n_prev))),
                              w_fmt.quantize(rng.normal(0, 0.05, 10)), w_fmt, w_fmt, readout))
    return NetworkParams(n_inputs=DEFAULT_INPUT_MAP.n_channels, bin_ticks=10_000,
                         layers=layers, input_map=DEFAULT_INPUT_MAP)


def large_network_scaled(seed: int = 0, n_hidden: int = 256) -> NetworkParams:
    """:func:`large_network` with 8-bit hidden weights ``sQ1.7`` and a per-row scale ``uQ0.18``
    (each row's largest ``|w|``): the same shape and event costs, plus the drain's multiply."""
    base = large_network(seed, n_hidden)
    w_fmt, b_fmt, s_fmt = QFormat(1, 7), QFormat(5, 7), QFormat(0, 18, signed=False)
    layers = []
    for layer in base.layers[:-1]:
        weight, bias = layer.weight_fmt.to_float(layer.weight_q), layer.bias_fmt.to_float(layer.bias_q)
        scale = s_fmt.quantize(np.abs(weight).max(axis=1))
        real = s_fmt.to_float(scale)
        layers.append(LayerParams(w_fmt.quantize(weight / real[:, None]), b_fmt.quantize(bias / real), w_fmt, b_fmt,
                                  layer.neuron, row_scale_q=scale, row_scale_fmt=s_fmt))
    return NetworkParams(n_inputs=base.n_inputs, bin_ticks=base.bin_ticks, layers=layers + base.layers[-1:],
                         input_map=base.input_map)


def dhlif_network(seed: int = 0, n_hidden: int = 112, n_branches: int = 4) -> NetworkParams:
    """32 FSDD channels -> ``n_hidden`` DH-LIF neurons x ``n_branches`` branches -> 10 readout: the
    FLAMES network's DH-LIF layer (``golden.flames``, default formats), seeded random weights, the
    readout in place of its SA-HiPPO memory and event pooling."""
    rng = np.random.default_rng(seed)
    n_in = 32
    neuron = DHLIFParams.from_layer(DHLIF(n_in, n_hidden, n_branches, seed=seed))
    dendrites = LayerParams(neuron.weight_q, np.zeros(n_hidden, dtype=np.int64), neuron.weight_fmt, neuron.weight_fmt,
                            neuron)
    readout = LIReadoutParams.from_float(alpha=rng.uniform(0.82, 0.96, 10))
    w_fmt = QFormat(2, readout.input_fmt.frac_bits)
    layers = [dendrites, LayerParams(w_fmt.quantize(rng.normal(0, 0.2, (10, n_hidden))),
                                     w_fmt.quantize(rng.normal(0, 0.05, 10)), w_fmt, w_fmt, readout)]
    return NetworkParams(n_inputs=n_in, bin_ticks=20_000, layers=layers, max_events_per_step=640)


NETWORKS = {"default": default_network, "large_2x256": large_network, "large_2x256_scaled": large_network_scaled,
            "dhlif_112x4": dhlif_network}


def fit(name: str, params: NetworkParams, lanes: int, *, cores: int | None = None, clock_hz: float, variant: str,
        seed: int, router: str = DEFAULT_ROUTER, lut_mapper: str = DEFAULT_LUT_MAPPER) -> dict:
    """One full build of the ULX3S processor top; returns its table row."""
    cores = lanes if cores is None else cores
    _, row = build_fit(
        lambda pll_config: ULX3SProcessorTop(params, n_steps=32, pll_config=pll_config, lanes=lanes, cores=cores),
        BUILD_ROOT / f"{name}-lanes{lanes}-cores{cores}", design=f"processor {name} lanes={lanes} cores={cores}",
        clock_hz=clock_hz, variant=variant, seed=seed, router=router, lut_mapper=lut_mapper,
    )
    return {"network": name, "lanes": lanes, "cores": cores, "router": router, **row}


def _sim_row(name: str, lanes: int, cores: int, clock_mhz: float) -> dict:
    params = NETWORKS[name]()
    row = {"network": name, "lanes": lanes, "cores": cores, **measure_cycles(params, lanes, cores=cores)}
    row["latency_us"] = round(row["latency_cycles"] / clock_mhz, 2)
    row["event_layer0_us"] = round(row["cycles_per_event"] / clock_mhz, 3)
    row["gsop_per_s_peak"] = round(min(lanes, params.layers[0].n_out) * clock_mhz / 1e3, 3)
    return row


def _fit_row(name: str, lanes: int, cores: int, clock_mhz: float, variant: str, seed: int, router: str,
             lut_mapper: str) -> dict:
    return fit(name, NETWORKS[name](), lanes, cores=cores, clock_hz=clock_mhz * 1e6, variant=variant, seed=seed,
               router=router, lut_mapper=lut_mapper)


def _run_all(jobs: int, tasks: list) -> list:
    """Run ``(function, *args)`` tasks, ``jobs`` at a time in worker processes; results in task order."""
    if jobs <= 1:
        results = []
        for function, *args in tasks:
            results.append(function(*args))
            print(results[-1], flush=True)
        return results
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(function, *args) for function, *args in tasks]
        for future in as_completed(futures):
            print(future.result(), flush=True)
        return [future.result() for future in futures]


def at_fmax(sim_rows: list[dict], fit_rows: list[dict]) -> None:
    """Add the synaptic throughput at each built configuration's Fmax to its fit row.

    ``gsop_per_s_at_fmax``: layer 0's fan-out per input event over the measured cycles per event
    (the simulated row with the same network, lanes and cores), at Fmax; without such a row,
    ``min(lanes, n_out0)`` adds per cycle (the synapse's rate, ``ceil(n_out0 / lanes)`` cycles
    per event) at Fmax.
    """
    cycles = {(r["network"], r["lanes"], r["cores"]): r["cycles_per_event"] for r in sim_rows}
    for row in fit_rows:
        if not row["fmax_mhz"]:
            continue
        fan_out = NETWORKS[row["network"]]().layers[0].n_out
        key = (row["network"], row["lanes"], row["cores"])
        if key in cycles:
            row["cycles_per_event"] = cycles[key]
            row["gsop_per_s_at_fmax"] = round(fan_out / cycles[key] * row["fmax_mhz"] / 1e3, 3)
        else:
            row["gsop_per_s_at_fmax"] = round(fan_out / -(-fan_out // row["lanes"]) * row["fmax_mhz"] / 1e3, 3)


def _cores_for(lanes: int, cores: list[int] | None) -> list[int]:
    """The core counts swept with ``lanes``: ``[lanes]`` by default, else those dividing ``lanes``."""
    return [lanes] if cores is None else [c for c in cores if lanes % c == 0]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.processor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", choices=list(NETWORKS), default=list(NETWORKS))
    parser.add_argument("--lanes", nargs="+", type=positive_int, default=list(LANES))
    parser.add_argument("--clock-mhz", type=positive_float, default=100.0, help="clock for the us / GSOP columns and --fit")
    parser.add_argument("--fit", action="store_true", help="also build the board top on the 85F (minutes each)")
    parser.add_argument("--fit-lanes", nargs="+", type=positive_int, default=[1, 4])
    parser.add_argument("--cores", nargs="+", type=positive_int, default=None,
                        help="neuron cores per hidden layer, swept like the lanes (default: as many as lanes); "
                             "a value that does not divide a configuration's lanes skips that configuration")
    parser.add_argument("--no-sim", action="store_true", help="skip the simulated cycle counts (fit rows only)")
    parser.add_argument("--jobs", type=positive_int, default=1,
                        help="simulations and builds run side by side (one core each; default 1)")
    parser.add_argument("--variant", type=ulx3s_variant, default="85F")
    parser.add_argument("--seed", type=non_negative_int, default=1)
    parser.add_argument("--router", choices=ROUTERS, default=DEFAULT_ROUTER,
                        help="nextpnr router for --fit (default: %(default)s; router2 for 8 or more lanes)")
    parser.add_argument("--lut-mapper", choices=LUT_MAPPERS, default=DEFAULT_LUT_MAPPER,
                        help="Yosys LUT mapper for --fit (default: %(default)s; abc for the large network at 16 "
                             "lanes, where Yosys 0.70's abc9 aborts)")
    args = parser.parse_args(argv)
    clock_mhz = args.clock_mhz
    tasks = [] if args.no_sim else [(_sim_row, name, lanes, cores, clock_mhz)
                                    for name in args.networks for lanes in args.lanes
                                    for cores in _cores_for(lanes, args.cores)]
    n_sim = len(tasks)
    if args.fit:
        # Longest builds first, so the pool's last minutes are not one big build alone.
        tasks += [(_fit_row, name, lanes, cores, clock_mhz, args.variant, args.seed, args.router, args.lut_mapper)
                  for name in reversed(args.networks) for lanes in sorted(args.fit_lanes, reverse=True)
                  for cores in _cores_for(lanes, args.cores)]
    results = _run_all(args.jobs, tasks)
    rows, fit_rows = results[:n_sim], results[n_sim:]
    at_fmax(rows, fit_rows)
    columns = COLUMNS if not fit_rows else COLUMNS + [c for c in FIT_COLUMNS if c not in COLUMNS]
    write_results("processor", rows + fit_rows, meta={
        "clock_mhz": clock_mhz,
        "what": "cycles from amaranth.sim of NetworkProcessor (channel input, no stalls); fit rows: ULX3S top "
                "(UART link + processor) built with Yosys + nextpnr-ecp5",
        "gsop_per_s_peak": "lanes accumulator adds per cycle while events stream, at clock_mhz",
        "gsop_per_s_at_fmax": "layer 0 fan-out / measured cycles per event, at the build's Fmax",
    }, columns=columns)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
