"""Board tops that put one core alone on the ULX3S, for resource and Fmax builds.

Each top holds the core, the PLL that makes the requested clock, an on-chip stimulus of
:mod:`hw.boards.stimulus` and one LED (the stimulus's ``activity``), so that what a build
report counts is the core plus a few dozen LUTs and flip-flops of stimulus. ``python -m
bench.core_fit``, ``bench.sahippo_core`` and ``bench.flames_fsdd --fit`` build them.
"""

from __future__ import annotations

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io, wiring

from hw.boards.stimulus import DriveStimulus, EventStimulus, NeuronStimulus
from hw.boards.ulx3s import add_pll_sync_domain
from hw.pll_ecp5 import PLLConfig

__all__ = ["StimulusFitTop", "CoreFitTop", "SAHiPPOFitTop", "DHLIFFitTop"]


class StimulusFitTop(Elaboratable):
    """A core on the ULX3S with the PLL, an on-chip stimulus and one LED (its ``activity``).

    ``into_core`` names the stimulus's source port and the core's sink port it drives,
    ``out_of_core`` the core's output port and the stimulus port that takes it; the core
    counters named in ``counters`` are fed to the stimulus's ports of the same names, so that
    nothing the core computes can be optimised away. The stimulus inputs named in ``switches``
    come from switches 1, 2, ... (a switch, not a constant, so both settings stay in the design).
    """

    def __init__(self, core, stimulus, *, pll_config: PLLConfig, into_core: tuple[str, str],
                 out_of_core: tuple[str, str], counters: tuple[str, ...] = (), switches: tuple[str, ...] = ()):
        self.core, self.stimulus = core, stimulus
        self.pll_config = pll_config
        self.into_core, self.out_of_core, self.counters, self.switches = into_core, out_of_core, counters, switches

    def elaborate(self, platform):
        m = Module()
        add_pll_sync_domain(m, platform, self.pll_config)
        m.submodules.core = core = self.core
        m.submodules.stimulus = stimulus = self.stimulus
        wiring.connect(m, getattr(stimulus, self.into_core[0]), getattr(core, self.into_core[1]))
        wiring.connect(m, getattr(core, self.out_of_core[0]), getattr(stimulus, self.out_of_core[1]))
        m.d.comb += [getattr(stimulus, name).eq(getattr(core, name)) for name in self.counters]
        for number, name in enumerate(self.switches, start=1):
            m.submodules[name] = switch = io.Buffer("i", platform.request("switch", number, dir="-"))
            m.d.comb += getattr(stimulus, name).eq(switch.i)
        m.submodules.activity_led = activity_led = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.d.comb += activity_led.o.eq(stimulus.activity)
        return m


def CoreFitTop(core, *, narrow_current_bits: int, pll_config: PLLConfig) -> StimulusFitTop:  # noqa: N802 (a top, like a class)
    """A neuron core (``i_current`` / ``o_spike``) with :class:`NeuronStimulus`; switch 1 selects
    the full-width currents, ``narrow_current_bits`` is the default current width."""
    stimulus = NeuronStimulus(core.current_layout, core.spike_layout, core.n_neurons,
                              narrow_current_bits=narrow_current_bits)
    return StimulusFitTop(core, stimulus, pll_config=pll_config, into_core=("o_current", "i_current"),
                          out_of_core=("o_spike", "i_spike"), counters=("saturation_count",),
                          switches=("wide_currents",))


def SAHiPPOFitTop(core, *, pll_config: PLLConfig) -> StimulusFitTop:  # noqa: N802 (a top, like a class)
    """The SA-HiPPO core with :class:`EventStimulus`."""
    return StimulusFitTop(core, EventStimulus(core), pll_config=pll_config, into_core=("o_event", "i_event"),
                          out_of_core=("o_output", "i_output"), counters=("saturation_count", "backwards_count"))


def DHLIFFitTop(core, *, pll_config: PLLConfig) -> StimulusFitTop:  # noqa: N802 (a top, like a class)
    """The DH-LIF core with :class:`DriveStimulus`."""
    return StimulusFitTop(core, DriveStimulus(core), pll_config=pll_config, into_core=("o_drive", "i_drive"),
                          out_of_core=("o_spike", "i_spike"), counters=("saturation_count",))
