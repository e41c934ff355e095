"""Fit check: will a network's event processor fit the chosen ECP5 before place and route?

:func:`estimate_fit` counts, per layer of a :class:`~golden.network.NetworkParams`, the memories
and multipliers of the processor that ``hw.processor`` builds from it, and an (order of
magnitude) LUT figure; :func:`check_fit` compares the totals with the device and raises
:class:`FitError`, with the numbers, when the network cannot fit.

What is counted (``L`` synapse lanes and ``C`` neuron cores per layer, ``R = ceil(n_out / L)``
accumulator rows):

* **Synapse stage** of every layer: the weight ROM (``n_in * R`` words of ``L`` weights,
  column-major, split into banks of one DP16KD depth as ``hw/processor/synapse.py`` builds
  it: :func:`weight_bank_depth`), the bias ROM (``R`` words of ``L`` biases), the
  accumulator RAM (``R`` words of ``L`` ``acc_bits`` sums) and, in a layer with a per-row
  scale, the scale ROM (``R`` words of ``L`` scales). A weight word of ``L`` weights of ``w``
  bits lands in the DP16KD shape that holds it in the fewest blocks (:func:`map_memory`), so
  narrow weights share a block's 36-bit rows: 8 x 4, 4 x 9 or 2 x 18 bits (the 4096x4,
  2048x9 and 1024x18 shapes hold 4, 2 and 1 words per 18-bit half-row).
* **Neuron cores**: ``C`` cores per spiking layer (``ceil(n_out / C)`` neurons each; ``C``
  defaults to ``L`` and divides it) and one readout core; each has a state RAM and a parameter
  ROM one word per neuron, with the word layouts each kind declares for its core
  (:class:`golden.kinds.NeuronKind` ``state_words`` / ``param_words``; e.g. C-SiLIF: ``(state+1)
  + state`` bits of state, ``2*coef + gain`` bits of parameters).
* **Spike FIFOs** of the board top's SPIKE frames (``spike_layers``): one FIFO of
  ``{neuron, step, sample tag}`` entries per chosen hidden layer (one DP16KD at the default
  64 entries).
* **Multipliers**: per core, each product of an ``a``-bit by a ``b``-bit operand costs
  ``ceil(a/18) * ceil(b/18)`` MULT18X18D, which reproduces the measured builds (refractory
  LIF 4, SiLIF 8, C-SiLIF 9 at default formats). The synapse stages only add, except in a
  layer with a per-row scale: ``ceil(acc_bits / 18)`` MULT18X18D per lane (the sum cut into
  18-bit slices beside the unsigned scale, ``hw.processor.synapse``).

How a memory maps (:func:`map_memory`) follows what Yosys ``synth_ecp5`` chose in a sweep of
memory shapes: a block RAM needs ``min over DP16KD shapes (16384x1, 8192x2, 4096x4, 2048x9,
1024x18, 512x36) no narrower than min(width, 9) of ceil(depth/d) * ceil(width/w)`` blocks
(Yosys cascades 2048x9 blocks in depth rather than put 16384x1 blocks side by side for a wide
word); a written memory goes to LUT RAM
(``ceil(depth/16) * ceil(width/4)`` TRELLIS_DPR16X4) while that is at most 20 of them per block
RAM it would take, a read-only one to logic while ``width * ceil(depth/16)`` LUTs are at most
150 per block RAM. The LUT figure adds the core sizes the kinds declare (``core_lut4``, measured:
refractory LIF ~650, SiLIF ~750, C-SiLIF ~800 LUT4) and rough terms for the synapse stages, the readout's score registers and
the fixed infrastructure (UART link, time bins, input map); it is a guide (+-30 %), the block
RAM and multiplier counts are the figures to trust.

Device capacities (:data:`DEVICES`) are the ECP5 data sheet's (FPGA-DS-02012, table 1.1) and,
for LUT4, the counts nextpnr reports. The LFE5U-12F is a 25F die that nextpnr places with 25F
resources; this check holds it to its data-sheet 12k LUTs and 32 block RAMs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .kinds import network_kinds, word_bits
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
    "weight_bank_depth",
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
# UART link, frame decoder/encoder, time-bin controller, input map, PLL glue.
_INFRASTRUCTURE_LUT4 = 1500
# Readout core: extra score bits per class (hw.cores.li_readout.DEFAULT_SCORE_EXTRA_BITS).
_SCORE_EXTRA_BITS = 16
# Warn (in the report) above this fraction of any resource.
TIGHT_FRACTION = 0.8
# A spike FIFO entry of the board top beside the neuron index: the step (hw.processor.time_bins.STEP_BITS)
# and the sample tag (hw.boards.ulx3s_processor._SAMPLE_TAG_BITS).
_SPIKE_ENTRY_STEP_BITS = 16
_SPIKE_ENTRY_TAG_BITS = 8
#: Entries of each spike FIFO of the board top (``ProcessorLink``'s default ``spike_fifo_depth``).
DEFAULT_SPIKE_FIFO_DEPTH = 64


def _block_shapes(width: int) -> list[tuple[int, int]]:
    """The DP16KD shapes Yosys uses for a ``width``-bit word: none narrower than ``min(width, 9)``."""
    return [shape for shape in DP16KD_SHAPES if shape[1] >= min(width, 9)]


def weight_bank_depth(depth: int, width: int) -> int:
    """Words per weight-memory bank, so that Yosys maps every bank one DP16KD deep.

    A bank's read data then comes straight out of its block RAMs into a register (no
    multiplexer between banks on that path). Of the DP16KD shapes Yosys uses for the word
    (:func:`_block_shapes`), the one storing ``depth`` x ``width`` in the fewest blocks, the
    shallowest on a tie (a bank as deep as a wider shape's block could again be cascaded).
    ``hw.processor.synapse.SynapseStage`` builds its banks with it.
    """
    return min(_block_shapes(width), key=lambda shape: (-(-depth // shape[0]) * -(-width // shape[1]), shape[0]))[0]


def map_memory(depth: int, width: int, *, written: bool) -> tuple[str, int, int]:
    """Where a ``depth`` x ``width`` memory lands: ``(kind, dp16kd, lut4)``.

    ``kind`` is ``"dp16kd"``, ``"lutram"`` or ``"logic"``; ``written`` tells a RAM (state,
    accumulators) from a ROM (weights, parameters).
    """
    if depth < 1 or width < 1:
        raise ValueError(f"memory shape must be positive, not {depth}x{width}")
    blocks = min(math.ceil(depth / d) * math.ceil(width / w) for d, w in _block_shapes(width))
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
    cores: int
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
                items.append((layer.mult18x18d, f"layers[{layer.index}] {layer.kind} x{layer.cores} cores"))
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
            lines.append(f"  layers[{layer.index}] {layer.kind} x{layer.lanes} lanes x{layer.cores} cores: "
                         f"MULT18X18D {layer.mult18x18d}, "
                         f"DP16KD {layer.dp16kd}, ~LUT4 {layer.lut4}; {mems}")
        lines.append("  (LUT4 is a rough estimate, +-30 %; block RAM and multipliers follow the synthesised shapes)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "device": self.device.name,
            "fits": self.fits,
            "usage": {name: {"estimated": need, "available": have} for name, (need, have) in self.usage().items()},
            "layers": [
                {"index": layer.index, "kind": layer.kind, "lanes": layer.lanes, "cores": layer.cores,
                 "mult18x18d": layer.mult18x18d,
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
    """``(state bits, parameter bits, products as (a_bits, b_bits))`` of one core of the layer,
    from the word layouts and products its kind declares (:class:`golden.kinds.NeuronKind`)."""
    kind = network_kinds()[layer.kind]
    p = layer.neuron
    return word_bits(kind.state_words(p)), word_bits(kind.param_words(p)), list(kind.products(p))


def _weight_memory(depth: int, width: int) -> MemoryEstimate:
    """The weight ROM as the synapse builds it: banks of :func:`weight_bank_depth` words, each mapped alone."""
    bank = weight_bank_depth(depth, width)
    banks = [map_memory(min(bank, depth - start), width, written=False) for start in range(0, depth, bank)]
    kind = "dp16kd" if any(b[0] == "dp16kd" for b in banks) else banks[0][0]
    return MemoryEstimate("weights", depth, width, False, kind, sum(b[1] for b in banks), sum(b[2] for b in banks))


def _layer_estimate(index: int, layer: LayerParams, lanes: int, cores: int,
                    spike_fifo_depth: int | None) -> LayerEstimate:
    lanes = min(lanes, layer.n_out)
    cores = 1 if layer.is_readout else min(cores, layer.n_out)
    rows = math.ceil(layer.n_out / lanes)
    est = LayerEstimate(index=index, kind=layer.kind, lanes=lanes, cores=cores)

    def add(name, depth, width, written):
        kind, blocks, luts = map_memory(depth, width, written=written)
        est.memories.append(MemoryEstimate(name, depth, width, written, kind, blocks, luts))

    est.memories.append(_weight_memory(layer.n_in * rows, lanes * layer.weight_fmt.width))
    add("bias", rows, lanes * layer.bias_fmt.width, False)
    add("accumulators", rows, lanes * layer.acc_bits, True)
    if layer.scaled:
        add("row scale", rows, lanes * layer.row_scale_fmt.width, False)
    if spike_fifo_depth is not None:  # SyncFIFOBuffered: one entry is its output register
        add("spike FIFO", spike_fifo_depth - 1,
            max(1, (layer.n_out - 1).bit_length()) + _SPIKE_ENTRY_STEP_BITS + _SPIKE_ENTRY_TAG_BITS, True)
    state_bits, param_bits, products = _core_words(layer)
    neurons_per_core = math.ceil(layer.n_out / cores)
    for core in range(cores):
        suffix = f"[{core}]" if cores > 1 else ""
        add(f"core{suffix} state", neurons_per_core, state_bits, True)
        add(f"core{suffix} params", neurons_per_core, param_bits, False)
    est.mult18x18d = cores * sum(mult18_count(a, b) for a, b in products)
    if layer.scaled:
        est.mult18x18d += lanes * math.ceil(layer.acc_bits / 18)
    lut4 = cores * network_kinds()[layer.kind].core_lut4 + 2 * lanes * layer.acc_bits + 150
    if layer.is_readout:
        lut4 += 2 * layer.n_out * (layer.neuron.state_fmt.width + _SCORE_EXTRA_BITS)
    est.lut4 = lut4 + sum(m.lut4 for m in est.memories)
    return est


def _per_layer(params: NetworkParams, values, name: str, default) -> list[int]:
    n = len(params.layers)
    if values is None:
        values = default
    if isinstance(values, int) and not isinstance(values, bool):
        values = [values] * n
    values = list(values)
    if len(values) != n or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ValueError(f"{name} must be a positive int or one positive int per layer ({n}), not {values!r}")
    return values


def _spike_fifo_depths(params: NetworkParams, spike_layers, depth: int) -> list[int | None]:
    n_hidden = len(params.layers) - 1
    if spike_layers is None:
        spike_layers = ()
    elif spike_layers == "all":
        spike_layers = range(n_hidden)
    chosen = set(spike_layers)
    bad = sorted(chosen - set(range(n_hidden)), key=repr)
    if bad:
        raise ValueError(f"spike_layers: {bad[0]!r} is not a hidden layer index of this network "
                         f"(0..{n_hidden - 1}, or 'all')")
    return [depth if k in chosen else None for k in range(len(params.layers))]


def _device(device) -> Device:
    if isinstance(device, Device):
        return device
    key = str(device).upper().removeprefix("LFE5U-")
    if key not in DEVICES:
        raise ValueError(f"unknown device {device!r}: use one of {', '.join(DEVICES)} (ULX3S variants)")
    return DEVICES[key]


def estimate_fit(params: NetworkParams, device="85F", *, lanes=None, cores=None, spike_layers=None,
                 spike_fifo_depth: int = DEFAULT_SPIKE_FIFO_DEPTH) -> FitReport:
    """Estimate the processor's resources for ``params`` on ``device`` (``"12F"`` ... ``"85F"``).

    ``lanes``: synapse lanes per layer (an int for all layers, or one per layer; default 1).
    ``cores``: neuron cores per spiking layer (likewise; default: the lanes; each layer caps
    both at its width, and its cores must divide its lanes; the readout has one core).
    ``spike_layers``: hidden layers whose spikes the board top sends as SPIKE frames (``"all"``
    or indices; default none), each with a FIFO of ``spike_fifo_depth`` entries.
    """
    if not isinstance(params, NetworkParams):
        raise ValueError(f"estimate_fit needs NetworkParams, not {type(params).__name__}")
    lanes = _per_layer(params, lanes, "lanes", 1)
    cores = _per_layer(params, cores, "cores", lanes)
    for k, (layer, n_lanes, n_cores) in enumerate(zip(params.layers[:-1], lanes, cores)):
        capped_lanes, capped_cores = min(n_lanes, layer.n_out), min(n_cores, layer.n_out)
        if capped_lanes % capped_cores:
            raise ValueError(f"layers[{k}]: cores ({capped_cores}) must divide lanes ({capped_lanes}) "
                             f"(both capped at the layer's {layer.n_out} neurons)")
    fifos = _spike_fifo_depths(params, spike_layers, spike_fifo_depth)
    layers = [_layer_estimate(i, layer, n_lanes, n_cores, fifo)
              for i, (layer, n_lanes, n_cores, fifo) in enumerate(zip(params.layers, lanes, cores, fifos))]
    return FitReport(device=_device(device), layers=layers)


def check_fit(params: NetworkParams, device="85F", *, lanes=None, cores=None, spike_layers=None,
              spike_fifo_depth: int = DEFAULT_SPIKE_FIFO_DEPTH) -> FitReport:
    """:func:`estimate_fit`, raising :class:`FitError` when a resource is over the device's.

    The message gives every resource that is short with its numbers and the largest users,
    e.g. ``"network does not fit LFE5U-12F: DP16KD 40 needed > 32 available (layers[0] weights
    5184x56: 20, ...)"``.
    """
    report = estimate_fit(params, device, lanes=lanes, cores=cores, spike_layers=spike_layers,
                          spike_fifo_depth=spike_fifo_depth)
    if not report.fits:
        details = []
        for name, (need, have) in report.usage().items():
            if need > have:
                users = "; ".join(report.largest_consumers(name))
                details.append(f"{name} {need} needed > {have} available ({users})")
        raise FitError(f"network does not fit {report.device.name}: " + ", ".join(details), report)
    return report


def check_core_fit(kind: str, neuron, n_neurons: int, device="85F") -> FitReport:
    """The fit check of one stand-alone neuron core of ``n_neurons`` (``hw.build`` without a model).

    ``neuron`` is a parameter object of the kind (only its formats are read, so one neuron is
    enough). Raises :class:`FitError` with the numbers and the largest ``n_neurons`` that fits.
    """
    if not isinstance(n_neurons, int) or n_neurons < 1:
        raise ValueError(f"n_neurons must be a positive integer, not {n_neurons!r}")
    device = _device(device)
    spec = network_kinds()[kind]
    state_bits, param_bits = word_bits(spec.state_words(neuron)), word_bits(spec.param_words(neuron))
    products = list(spec.products(neuron))

    def report_for(n: int) -> FitReport:
        est = LayerEstimate(index=0, kind=kind, lanes=1, cores=1)
        for name, width, written in (("core state", state_bits, True), ("core params", param_bits, False)):
            mapped, blocks, luts = map_memory(n, width, written=written)
            est.memories.append(MemoryEstimate(name, n, width, written, mapped, blocks, luts))
        est.mult18x18d = sum(mult18_count(a, b) for a, b in products)
        est.lut4 = spec.core_lut4 + sum(m.lut4 for m in est.memories)
        return FitReport(device=device, layers=[est])

    report = report_for(n_neurons)
    if not report.fits:
        lo, hi = 0, n_neurons  # largest n with report_for(n).fits lies in [lo, hi)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if report_for(mid).fits else (lo, mid)
        short = [f"{name} {need} needed > {have} available"
                 for name, (need, have) in report.usage().items() if need > have]
        hint = f"at most {lo} neurons fit" if lo else "no core of this kind fits"
        raise FitError(f"a {kind} core of {n_neurons} neurons does not fit {device.name}: {', '.join(short)}; "
                       f"{hint} (--neurons)", report)
    return report
