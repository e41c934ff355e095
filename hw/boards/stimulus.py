"""On-chip stimulus for a core on a board: pseudo-random inputs in, outputs folded to a bit.

A bitstream needs the core's inputs driven and its outputs observed, or synthesis removes it.
Each stimulus here drives its core from a 32-bit LFSR and folds everything the core emits into
one register, so a board top (or a resource build, :mod:`hw.boards.core_fit`) keeps the whole
core alive with a few dozen LUTs of its own: :class:`NeuronStimulus` for the neuron cores'
``{neuron, current}`` input, :class:`EventStimulus` for the SA-HiPPO core's events,
:class:`DriveStimulus` for the DH-LIF core's branch drives.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from hw.arith import index_bits
from golden.dhlif import drive_format

__all__ = [
    "NeuronStimulus",
    "EventStimulus",
    "DriveStimulus",
    "LFSR_SEED",
    "LFSR_TAPS",
    "attach_stimulus",
    "fold_activity",
    "lfsr_next",
]

#: Galois feedback mask of the 32-bit maximal-length LFSR x^32 + x^22 + x^2 + x + 1.
LFSR_TAPS = 0x80200003
LFSR_SEED = 0xACE1_2468


def lfsr_next(lfsr):
    """The next state of the 32-bit Galois LFSR ``lfsr`` (taps :data:`LFSR_TAPS`)."""
    return (lfsr >> 1) ^ Mux(lfsr[0], LFSR_TAPS, 0)


def fold_activity(m, activity, observed, *counters):
    """Fold every payload ``observed`` (a stream, always ready) emits and the ``counters`` into
    the register ``activity``, so that nothing the design computes can be optimised away."""
    bit = Mux(observed.valid, observed.payload.as_value().xor() ^ 1, 0)
    for counter in counters:
        bit = bit ^ counter.xor()
    m.d.sync += activity.eq(activity ^ bit)


class NeuronStimulus(wiring.Component):
    """Feeds ``{neuron, current}`` beats to a core, one per clock, and observes its outputs.

    Neurons are visited in order ``0 .. n_neurons - 1`` (one time step per sweep). Each beat's
    current is the low bits of a 32-bit Galois LFSR (:data:`LFSR_TAPS`, advanced once per
    accepted beat), read as a signed number: ``narrow_current_bits`` wide (sign-extended) while
    :attr:`wide_currents` is low, the full width of the ``current`` field while it is high (large
    enough to make the core saturate).

    Parameters
    ----------
    current_layout : data.StructLayout
        The core's input payload; needs fields ``neuron`` (unsigned) and ``current`` (signed).
    spike_layout : data.StructLayout
        The core's spike payload.
    n_neurons : int
        Neurons per time step.
    narrow_current_bits : int
        Width of the default current range, e.g. ``F + 2`` for currents in ``[-2, 2)`` with ``F``
        fractional bits.

    Members
    -------
    o_current : ``Out(stream.Signature(current_layout))``
        Always valid; advances on each transfer (honours backpressure).
    i_spike : ``In(stream.Signature(spike_layout))``
        Always ready.
    saturation_count : ``In(32)``
        The core's saturation counter, folded into :attr:`activity`.
    wide_currents : ``In(1)``
        Selects the full-width current range; may come straight from a switch (it passes a
        two-flip-flop synchroniser, so it takes effect 2 cycles later).
    spike_accepted : ``Out(1)``
        High in each cycle in which a spike beat transfers.
    activity : ``Out(1)``
        Registered XOR of every spike payload and of the saturation counter: one pin that
        depends on everything the core emits.
    """

    def __init__(self, current_layout, spike_layout, n_neurons: int, *, narrow_current_bits: int):
        if not isinstance(current_layout, data.StructLayout) or set(current_layout.members) != {"neuron", "current"}:
            raise ValueError(f"current_layout must be a StructLayout with fields neuron and current, not {current_layout!r}")
        current_width = current_layout["current"].shape.width
        if not 1 <= n_neurons <= 2 ** current_layout["neuron"].shape.width:
            raise ValueError(f"n_neurons={n_neurons} does not fit the layout's neuron field")
        if not 2 <= narrow_current_bits <= current_width:
            raise ValueError(f"narrow_current_bits={narrow_current_bits} must lie in 2..{current_width} (the current field width)")
        if current_width > 32:
            raise ValueError(f"currents wider than the 32-bit LFSR ({current_width} bits) are not supported")
        self.n_neurons = int(n_neurons)
        self.narrow_current_bits = int(narrow_current_bits)
        super().__init__(
            {
                "o_current": Out(stream.Signature(current_layout)),
                "i_spike": In(stream.Signature(spike_layout)),
                "saturation_count": In(32),
                "wide_currents": In(1),
                "spike_accepted": Out(1),
                "activity": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        current_shape = self.o_current.payload.current.shape()
        lfsr = Signal(32, init=LFSR_SEED)
        neuron = Signal(unsigned(index_bits(self.n_neurons)))

        wide_currents = Signal()
        m.submodules.wide_currents_sync = FFSynchronizer(self.wide_currents, wide_currents)
        narrow = lfsr[: self.narrow_current_bits].as_signed()
        wide = lfsr[: current_shape.width].as_signed()
        m.d.comb += [
            self.o_current.valid.eq(1),
            self.o_current.payload.neuron.eq(neuron),
            self.o_current.payload.current.eq(Mux(wide_currents, wide, narrow)),
        ]
        with m.If(self.o_current.ready):
            m.d.sync += [
                lfsr.eq(lfsr_next(lfsr)),
                neuron.eq(Mux(neuron == self.n_neurons - 1, 0, neuron + 1)),
            ]

        m.d.comb += [
            self.i_spike.ready.eq(1),
            self.spike_accepted.eq(self.i_spike.valid),
        ]
        fold_activity(m, self.activity, self.i_spike, self.saturation_count)
        return m


def attach_stimulus(m: Module, core, *, narrow_current_bits: int) -> NeuronStimulus:
    """Add a :class:`NeuronStimulus` to ``m`` and connect it to ``core``.

    ``core`` needs the neuron core convention: ``i_current`` / ``o_spike`` streams with
    ``current_layout`` / ``spike_layout`` properties, ``n_neurons`` and ``saturation_count``.
    Returns the stimulus; its ``wide_currents`` input is left for the caller to drive.
    """
    stimulus = NeuronStimulus(
        core.current_layout, core.spike_layout, core.n_neurons, narrow_current_bits=narrow_current_bits
    )
    m.submodules.stimulus = stimulus
    wiring.connect(m, stimulus.o_current, core.i_current)
    wiring.connect(m, core.o_spike, stimulus.i_spike)
    m.d.comb += stimulus.saturation_count.eq(core.saturation_count)
    return stimulus


def _stimulus_members(into_core, out_of_core, counters) -> dict:
    """The members of a stimulus: ``into_core = (name, layout)``, the stream it drives into the
    core; ``out_of_core``, the stream it takes from the core (always ready); the core's 32-bit
    ``counters``; and ``activity``, the bit all of them fold into."""
    return {
        into_core[0]: Out(stream.Signature(into_core[1])),
        out_of_core[0]: In(stream.Signature(out_of_core[1])),
        **{name: In(32) for name in counters},
        "activity": Out(1),
    }


class EventStimulus(wiring.Component):
    """Feeds events to a :class:`hw.cores.sahippo.SAHiPPOCore` and folds everything it emits into one bit.

    Each accepted event advances a 32-bit Galois LFSR (:data:`LFSR_TAPS`); its bits give the
    channel, the weight (signed, full ``input_fmt`` width) and the tick step: 0 to 7 ticks, or
    100 more when three further bits are zero (beyond ``dt_max``), so ticks never decrease.

    Members
    -------
    o_event : ``Out(stream.Signature(core.event_layout))``
        Always valid.
    i_output : ``In(stream.Signature(core.output_layout))``
        Always ready.
    saturation_count, backwards_count : ``In(32)``
        The core's counters.
    activity : ``Out(1)``
        Registered XOR of every output payload and both counters.
    """

    def __init__(self, core):
        self._core = core
        super().__init__(_stimulus_members(("o_event", core.event_layout), ("i_output", core.output_layout),
                                           ("saturation_count", "backwards_count")))

    def elaborate(self, platform):
        m = Module()
        core = self._core
        lfsr = Signal(32, init=LFSR_SEED)
        tick = Signal(core.tick_bits)
        weight_width = core.params.input_fmt.width
        step = Mux(lfsr[11:14] == 0, lfsr[8:11] + 100, lfsr[8:11])
        m.d.comb += [
            self.o_event.valid.eq(1),
            self.o_event.payload.channel.eq(lfsr[: core.channel_bits]),
            self.o_event.payload.tick.eq(tick),
            self.o_event.payload.weight.eq(lfsr[16 : 16 + weight_width].as_signed()),
        ]
        with m.If(self.o_event.ready):
            m.d.sync += [lfsr.eq(lfsr_next(lfsr)), tick.eq(tick + step)]
        m.d.comb += self.i_output.ready.eq(1)
        fold_activity(m, self.activity, self.i_output, self.saturation_count, self.backwards_count)
        return m


class DriveStimulus(wiring.Component):
    """Feeds branch drives to a :class:`hw.cores.dhlif.DHLIFCore`, one neuron per clock, and folds its outputs into one bit.

    Neurons are visited in order ``0 .. H - 1`` (one step per sweep). Drive ``d`` of each beat
    is the 32-bit Galois LFSR (:data:`LFSR_TAPS`, advanced once per accepted beat) rotated left
    by ``8 d``, its low ``frac_bits + 2`` bits read as a signed number (drives in ``[-2, 2)``,
    sign-extended to :func:`golden.dhlif.drive_format`).

    Members
    -------
    o_drive : ``Out(stream.Signature(core.drive_layout))``
        Always valid; advances on each transfer (honours backpressure).
    i_spike : ``In(stream.Signature(core.spike_layout))``
        Always ready.
    saturation_count : ``In(32)``
        The core's saturation counter.
    activity : ``Out(1)``
        Registered XOR of every spike payload and of the saturation counter.
    """

    def __init__(self, core):
        self._core = core
        super().__init__(_stimulus_members(("o_drive", core.drive_layout), ("i_spike", core.spike_layout),
                                           ("saturation_count",)))

    def elaborate(self, platform):
        m = Module()
        core = self._core
        lfsr = Signal(32, init=LFSR_SEED)
        neuron = Signal(unsigned(core.index_bits))
        drive_bits = drive_format(core.params).frac_bits + 2
        m.d.comb += [self.o_drive.valid.eq(1), self.o_drive.payload.neuron.eq(neuron)]
        for d in range(core.n_branches):
            m.d.comb += getattr(self.o_drive.payload, f"drive_{d}").eq(lfsr.rotate_left(8 * d)[:drive_bits].as_signed())
        with m.If(self.o_drive.ready):
            m.d.sync += [
                lfsr.eq(lfsr_next(lfsr)),
                neuron.eq(Mux(neuron == core.n_neurons - 1, 0, neuron + 1)),
            ]
        m.d.comb += self.i_spike.ready.eq(1)
        fold_activity(m, self.activity, self.i_spike, self.saturation_count)
        return m
