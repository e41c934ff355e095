"""Fit check: will a network's event processor fit the chosen ECP5 before place and route?

:func:`estimate_fit` counts, per layer of a :class:`~golden.network.NetworkParams`, the memories
and multipliers of the processor that ``hw.processor`` builds from it, and an (order of
magnitude) LUT figure; :func:`check_fit` compares the totals with the device and raises
:class:`FitError`, with the numbers, when the network cannot fit.

What is counted (``L`` lanes per layer, ``R = ceil(n_out / L)`` accumulator rows):

* **Synapse stage** of every layer: the weight ROM (``n_in * R`` words of ``L`` weights,
  column-major), the bias ROM (``R`` words of ``L`` biases) and the accumulator RAM (``R``
  words of ``L`` ``acc_bits`` sums).
* **Neuron cores**: ``L`` lane cores per spiking layer (``ceil(n_out / L)`` neurons each) and
  one readout core; each has a state RAM and a parameter ROM one word per neuron, with the
  word layouts of ``hw/cores`` (e.g. C-SiLIF: ``(state+1) + state`` bits of state, ``2*coef +
  gain`` bits of parameters).
* **Multipliers**: per core, each product of an ``a``-bit by a ``b``-bit operand costs
  ``ceil(a/18) * ceil(b/18)`` MULT18X18D, which reproduces the measured builds (refractory
  LIF 4, SiLIF 8, C-SiLIF 9 at default formats). The synapse stages only add.

How a memory maps (:func:`map_memory`) follows what Yosys ``synth_ecp5`` chose in a sweep of
memory shapes: a block RAM needs ``min over DP16KD shapes (16384x1, 8192x2, 4096x4, 2048x9,
1024x18, 512x36) of ceil(depth/d) * ceil(width/w)`` blocks; a written memory goes to LUT RAM
(``ceil(depth/16) * ceil(width/4)`` TRELLIS_DPR16X4) while that is at most 20 of them per block
RAM it would take, a read-only one to logic while ``width * ceil(depth/16)`` LUTs are at most
150 per block RAM. The LUT figure adds measured core sizes (refractory LIF ~650, SiLIF ~750,
C-SiLIF ~800 LUT4) and rough terms for the synapse stages, the readout's score registers and
the fixed infrastructure (UART link, time bins, input map); it is a guide (+-30 %), the block
RAM and multiplier counts are the figures to trust.

Device capacities (:data:`DEVICES`) are the ECP5 data sheet's (FPGA-DS-02012, table 1.1) and,
for LUT4, the counts nextpnr reports. The LFE5U-12F is a 25F die that nextpnr places with 25F
resources; this check holds it to its data-sheet 12k LUTs and 32 block RAMs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .network import LayerParams, NetworkParams

__all__ = [
    "Device",
    "DEVICES",
    "DP16KD_SHAPES",
    "MemoryEstimate",
    "LayerEstimate",
    "FitReport",
    "FitError",
    "map_memory",
    "mult18_count",
    "estimate_fit",
    "check_fit",
]


@dataclass(frozen=True)
class Device:
    """Capacities of one ECP5 device: LUT4s, DP16KD block RAMs (18 Kbit) and MULT18X18D."""

    name: str
    lut4: int
    dp16kd: int
    mult18x18d: int


#: ULX3S variants: LFE5U-12F / 25F / 45F / 85F.
DEVICES = {
    "12F": Device("LFE5U-12F", lut4=12_000, dp16kd=32, mult18x18d=28),
    "25F": Device("LFE5U-25F", lut4=24_288, dp16kd=56, mult18x18d=28),
    "45F": Device("LFE5U-45F", lut4=43_848, dp16kd=108, mult18x18d=72),
    "85F": Device("LFE5U-85F", lut4=83_640, dp16kd=208, mult18x18d=156),
}

#: (depth, width) configurations of one DP16KD (512x36 as a pseudo dual port).
DP16KD_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))

# Mapping thresholds calibrated against Yosys synth_ecp5 (see the module docstring).
_LUTRAM_PER_BRAM = 20
_ROM_LUTS_PER_BRAM = 150
# One TRELLIS_DPR16X4 occupies about 1.5 slices: 3 LUT4 sites.
_LUT4_PER_LUTRAM = 3
# Measured core sizes (LUT4, build/core_fit and the C-SiLIF out-of-context build), per instance.
_CORE_LUT4 = {"refractory_lif": 650, "silif": 750, "csilif": 800, "li_readout": 400}
# UART link, frame decoder/encoder, time-bin controller, input map, PLL glue.
_INFRASTRUCTURE_LUT4 = 1500
# Readout core: extra score bits per class (hw.cores.li_readout.DEFAULT_SCORE_EXTRA_BITS).
_SCORE_EXTRA_BITS = 16
# Warn (in the report) above this fraction of any resource.
TIGHT_FRACTION = 0.8


def map_memory(depth: int, width: int, *, written: bool) -> tuple[str, int, int]:
    """Where a ``depth`` x ``width`` memory lands: ``(kind, dp16kd, lut4)``.

    ``kind`` is ``"dp16kd"``, ``"lutram"`` or ``"logic"``; ``written`` tells a RAM (state,
    accumulators) from a ROM (weights, parameters).
    """
    if depth < 1 or width < 1:
        raise ValueError(f"memory shape must be positive, not {depth}x{width}")
    blocks = min(math.ceil(depth / d) * math.ceil(width / w) for d, w in DP16KD_SHAPES)
    if written:
        cells = math.ceil(depth / 16) * math.ceil(width / 4)
        if cells <= _LUTRAM_PER_BRAM * blocks:
            return "lutram", 0, cells * _LUT4_PER_LUTRAM
    else:
        luts = width * math.ceil(depth / 16)
        if luts <= _ROM_LUTS_PER_BRAM * blocks:
            return "logic", 0, luts
    return "dp16kd", blocks, 0


def mult18_count(a_bits: int, b_bits: int) -> int:
    """MULT18X18D blocks for one ``a_bits`` x ``b_bits`` product: ``ceil(a/18) * ceil(b/18)``."""
    return math.ceil(a_bits / 18) * math.ceil(b_bits / 18)


@dataclass
class MemoryEstimate:
    """One memory: its name, shape, whether it is written, and where it maps."""

    name: str
    depth: int
    width: int
    written: bool
    kind: str
    dp16kd: int
    lut4: int


@dataclass
class LayerEstimate:
    """Resources of one layer (synapse stage plus its cores)."""

    index: int
    kind: str
    lanes: int
    memories: list = field(default_factory=list)
    mult18x18d: int = 0
    lut4: int = 0

    @property
    def dp16kd(self) -> int:
        return sum(mem.dp16kd for mem in self.memories)


@dataclass
class FitReport:
    """Estimated resources of a network on a device, and whether it fits."""

    device: Device
    layers: list
    infrastructure_lut4: int = _INFRASTRUCTURE_LUT4

    @property
    def lut4(self) -> int:
        return self.infrastructure_lut4 + sum(layer.lut4 for layer in self.layers)

    @property
    def dp16kd(self) -> int:
        return sum(layer.dp16kd for layer in self.layers)

    @property
    def mult18x18d(self) -> int:
        return sum(layer.mult18x18d for layer in self.layers)

    def usage(self) -> dict[str, tuple[int, int]]:
        """Resource -> ``(estimated, available)``."""
        return {
            "LUT4": (self.lut4, self.device.lut4),
            "DP16KD": (self.dp16kd, self.device.dp16kd),
            "MULT18X18D": (self.mult18x18d, self.device.mult18x18d),
        }

    @property
    def problems(self) -> list[str]:
        """One line per resource the network needs more of than the device has."""
        return [f"{name} {need} needed > {have} available" for name, (need, have) in self.usage().items() if need > have]

    @property
    def tight(self) -> list[str]:
        """Resources used above :data:`TIGHT_FRACTION` (but within the device)."""
        return [name for name, (need, have) in self.usage().items() if TIGHT_FRACTION * have < need <= have]

    @property
    def fits(self) -> bool:
        return not self.problems

    def largest_consumers(self, resource: str, n: int = 3) -> list[str]:
        """The ``n`` largest users of ``"DP16KD"`` / ``"MULT18X18D"`` / ``"LUT4"``, as text."""
        items = []
        for layer in self.layers:
            if resource == "DP16KD":
                items += [(m.dp16kd, f"layers[{layer.index}] {m.name} {m.depth}x{m.width}") for m in layer.memories]
            elif resource == "MULT18X18D":
                items.append((layer.mult18x18d, f"layers[{layer.index}] {layer.kind} x{layer.lanes} lanes"))
            else:
                items.append((layer.lut4, f"layers[{layer.index}] {layer.kind} x{layer.lanes} lanes"))
        items.sort(key=lambda item: -item[0])
        return [f"{text}: {count}" for count, text in items[:n] if count]

    def __str__(self) -> str:
        lines = [f"fit check on {self.device.name} ({'fits' if self.fits else 'DOES NOT FIT'}):"]
        for name, (need, have) in self.usage().items():
            pct = 100.0 * need / have
            lines.append(f"  {name:<10} {need:>7} / {have:<7} ({pct:5.1f} %)" + ("  <- too many" if need > have else ""))
        for layer in self.layers:
            mems = ", ".join(f"{m.name} {m.depth}x{m.width}->{m.kind}" + (f" {m.dp16kd}" if m.dp16kd else "")
                             for m in layer.memories)
            lines.append(f"  layers[{layer.index}] {layer.kind} x{layer.lanes}: MULT18X18D {layer.mult18x18d}, "
                         f"DP16KD {layer.dp16kd}, ~LUT4 {layer.lut4}; {mems}")
        lines.append("  (LUT4 is a rough estimate, +-30 %; block RAM and multipliers follow the synthesised shapes)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "device": self.device.name,
            "fits": self.fits,
            "usage": {name: {"estimated": need, "available": have} for name, (need, have) in self.usage().items()},
            "layers": [
                {"index": layer.index, "kind": layer.kind, "lanes": layer.lanes, "mult18x18d": layer.mult18x18d,
                 "dp16kd": layer.dp16kd, "lut4": layer.lut4,
                 "memories": [vars(m).copy() for m in layer.memories]}
                for layer in self.layers
            ],
        }


class FitError(ValueError):
    """The network does not fit the device; ``report`` holds the estimate."""

    def __init__(self, message: str, report: FitReport):
        super().__init__(message)
        self.report = report


def _core_words(layer: LayerParams) -> tuple[int, int, list[tuple[int, int]]]:
    """``(state bits, parameter bits, products as (a_bits, b_bits))`` of one core of the layer."""
    p = layer.neuron
    kind = layer.kind
    if kind == "refractory_lif":
        state = p.state_fmt.width + p.refr_fmt.width + 1
        param = 2 * p.threshold_fmt.width
        products = [(p.state_fmt.width, p.coef_fmt.width), (p.refr_fmt.width, p.coef_fmt.width)]
    elif kind == "silif":
        s = p.state_fmt.width
        state = 2 * s + 1
        param = 3 * p.decay_fmt.width + p.a_fmt.width + p.b_fmt.width
        products = [(s, p.decay_fmt.width), (s, p.a_fmt.width), (s + 1, p.decay_fmt.width),
                    (max(p.input_fmt.width, s) + 1, p.decay_fmt.width)]
    elif kind == "csilif":
        s = p.state_fmt.width
        state = (s + 1) + s
        param = 2 * p.coef_fmt.width + p.gain_fmt.width
        products = [(s + 1, p.coef_fmt.width)] * 4 + [(p.input_fmt.width, p.gain_fmt.width)]
    else:  # li_readout
        state = p.state_fmt.width
        param = 2 * p.coef_fmt.width
        products = [(p.state_fmt.width, p.coef_fmt.width), (p.input_fmt.width, p.coef_fmt.width)]
    return state, param, products


def _layer_estimate(index: int, layer: LayerParams, lanes: int) -> LayerEstimate:
    lanes = min(lanes, layer.n_out)
    rows = math.ceil(layer.n_out / lanes)
    est = LayerEstimate(index=index, kind=layer.kind, lanes=lanes)

    def add(name, depth, width, written):
        kind, blocks, luts = map_memory(depth, width, written=written)
        est.memories.append(MemoryEstimate(name, depth, width, written, kind, blocks, luts))

    add("weights", layer.n_in * rows, lanes * layer.weight_fmt.width, False)
    add("bias", rows, lanes * layer.bias_fmt.width, False)
    add("accumulators", rows, lanes * layer.acc_bits, True)
    state_bits, param_bits, products = _core_words(layer)
    cores = 1 if layer.is_readout else lanes
    neurons_per_core = layer.n_out if layer.is_readout else rows
    for core in range(cores):
        suffix = f"[{core}]" if cores > 1 else ""
        add(f"core{suffix} state", neurons_per_core, state_bits, True)
        add(f"core{suffix} params", neurons_per_core, param_bits, False)
    est.mult18x18d = cores * sum(mult18_count(a, b) for a, b in products)
    lut4 = cores * _CORE_LUT4[layer.kind] + 2 * lanes * layer.acc_bits + 150
    if layer.is_readout:
        lut4 += 2 * layer.n_out * (layer.neuron.state_fmt.width + _SCORE_EXTRA_BITS)
    est.lut4 = lut4 + sum(m.lut4 for m in est.memories)
    return est


def _lanes_list(params: NetworkParams, lanes) -> list[int]:
    n = len(params.layers)
    if lanes is None:
        lanes = 1
    if isinstance(lanes, int) and not isinstance(lanes, bool):
        lanes = [lanes] * n
    lanes = list(lanes)
    if len(lanes) != n or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in lanes):
        raise ValueError(f"lanes must be a positive int or one positive int per layer ({n}), not {lanes!r}")
    return lanes


def _device(device) -> Device:
    if isinstance(device, Device):
        return device
    key = str(device).upper().removeprefix("LFE5U-")
    if key not in DEVICES:
        raise ValueError(f"unknown device {device!r}: use one of {', '.join(DEVICES)} (ULX3S variants)")
    return DEVICES[key]


def estimate_fit(params: NetworkParams, device="85F", *, lanes=None) -> FitReport:
    """Estimate the processor's resources for ``params`` on ``device`` (``"12F"`` ... ``"85F"``).

    ``lanes``: neuron lanes per layer (an int for all layers, or one per layer; default 1).
    """
    if not isinstance(params, NetworkParams):
        raise ValueError(f"estimate_fit needs NetworkParams, not {type(params).__name__}")
    lanes = _lanes_list(params, lanes)
    layers = [_layer_estimate(i, layer, n) for i, (layer, n) in enumerate(zip(params.layers, lanes))]
    return FitReport(device=_device(device), layers=layers)


def check_fit(params: NetworkParams, device="85F", *, lanes=None) -> FitReport:
    """:func:`estimate_fit`, raising :class:`FitError` when a resource is over the device's.

    The message gives every resource that is short with its numbers and the largest users,
    e.g. ``"network does not fit LFE5U-12F: DP16KD 40 needed > 32 available (layers[0] weights
    5184x56: 20, ...)"``.
    """
    report = estimate_fit(params, device, lanes=lanes)
    if not report.fits:
        details = []
        for name, (need, have) in report.usage().items():
            if need > have:
                users = "; ".join(report.largest_consumers(name))
                details.append(f"{name} {need} needed > {have} available ({users})")
        raise FitError(f"network does not fit {report.device.name}: " + ", ".join(details), report)
    return report
