"""The ULX3S board (Lattice ECP5, caBGA381): platforms and the top that runs a neuron core on it.

Platforms come from amaranth-boards. :func:`ulx3s_platform` returns one whose ``required_tools``
lists ``openFPGALoader`` only when the build will program the board, so building a bitstream
never needs the programmer.

:class:`ULX3SNeuronTop` puts one neuron core on the board:

* clock: the 25 MHz oscillator (``clk25``) feeds an ``EHXPLLL`` (:class:`hw.pll_ecp5.ECP5PLL`)
  that makes the ``sync`` clock; the ``sync`` reset is held while the PLL is unlocked or the
  F1 button (``button_fire`` 0) is pressed, and released synchronously;
* stimulus: :class:`hw.boards.stimulus.NeuronStimulus` drives every neuron once per time step,
  one beat per clock, with pseudo-random currents;
* LEDs 0-6: bits 25-31 of the spike counter (LED 0 toggles every ``2**25`` spikes), or of the
  saturation counter while switch 0 is on; LED 7: lit once any update has saturated;
* switch 1: full-width random currents (drives the core into saturation).
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, Mux, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer
from amaranth_boards.ulx3s import (
    ULX3S_12F_Platform,
    ULX3S_25F_Platform,
    ULX3S_45F_Platform,
    ULX3S_85F_Platform,
)

from hw.boards.stimulus import attach_stimulus
from hw.pll_ecp5 import ECP5PLL, PLLConfig
from hw.toolchain import PROGRAMMER

__all__ = ["VARIANTS", "BOARD_CLOCK_HZ", "ulx3s_platform", "add_pll_sync_domain", "ULX3SNeuronTop"]

#: ULX3S variant name -> amaranth-boards platform class.
VARIANTS = {
    "12F": ULX3S_12F_Platform,
    "25F": ULX3S_25F_Platform,
    "45F": ULX3S_45F_Platform,
    "85F": ULX3S_85F_Platform,
}
BOARD_CLOCK_HZ = 25e6
SPIKE_COUNT_WIDTH = 32
LED_COUNTER_BITS = slice(25, 32)


def ulx3s_platform(variant: str = "85F", *, program: bool = False):
    """An amaranth-boards ULX3S platform for ``variant`` (``"12F"``, ``"25F"``, ``"45F"``, ``"85F"``).

    ``openFPGALoader`` stays in ``required_tools`` only with ``program=True``.
    """
    try:
        base = VARIANTS[variant]
    except KeyError:
        raise ValueError(f"unknown ULX3S variant {variant!r}; choose one of {', '.join(VARIANTS)}") from None

    class Platform(base):
        @property
        def required_tools(self):
            tools = super().required_tools
            return tools if program else [tool for tool in tools if tool != PROGRAMMER]

    Platform.__name__ = Platform.__qualname__ = f"ULX3S_{variant}_Platform"
    return Platform()


def add_pll_sync_domain(m: Module, platform, pll_config: PLLConfig) -> None:
    """Create the ``sync`` domain in ``m``: ``clk25`` through an ``EHXPLLL`` as ``pll_config`` says.

    nextpnr derives the ``sync`` clock constraint from the 25 MHz input constraint and the PLL's
    dividers (its log says "Derived frequency constraint"). The ``sync`` reset is
    asserted asynchronously while the PLL is unlocked or the F1 button is pressed, and released
    synchronously to ``sync``.
    """
    m.submodules.clk25 = clk25 = io.Buffer("i", platform.request("clk25", 0, dir="-"))
    m.submodules.reset_button = reset_button = io.Buffer("i", platform.request("button_fire", 0, dir="-"))
    m.submodules.pll = pll = ECP5PLL(pll_config)
    m.d.comb += pll.clk_in.eq(clk25.i)
    m.domains.sync = ClockDomain("sync")
    m.d.comb += ClockSignal("sync").eq(pll.clk_out)
    m.submodules.reset_sync = ResetSynchronizer(~pll.locked | reset_button.i, domain="sync")


class ULX3SNeuronTop(Elaboratable):
    """A neuron core on the ULX3S, clocked by the PLL and fed by on-chip stimulus.

    Parameters
    ----------
    core : wiring.Component
        A neuron core following the project's core convention (``i_current`` / ``o_spike``
        streams, ``current_layout``, ``spike_layout``, ``n_neurons``, ``saturation_count``).
    narrow_current_bits : int
        Width of the default stimulus current (``F + 2`` gives currents in ``[-2, 2)``).
    pll_config : PLLConfig
        Makes the ``sync`` clock from the 25 MHz oscillator, e.g.
        ``solve_pll(BOARD_CLOCK_HZ, 100e6)``.
    """

    def __init__(self, core, *, narrow_current_bits: int, pll_config: PLLConfig):
        if pll_config.input_hz != BOARD_CLOCK_HZ:
            raise ValueError(f"the ULX3S PLL input is the {BOARD_CLOCK_HZ / 1e6:g} MHz oscillator, not {pll_config.input_hz / 1e6:g} MHz")
        self.core = core
        self.narrow_current_bits = narrow_current_bits
        self.pll_config = pll_config

    def elaborate(self, platform):
        m = Module()
        add_pll_sync_domain(m, platform, self.pll_config)
        leds = [io.Buffer("o", platform.request("led", k, dir="-")) for k in range(8)]
        m.submodules.show_saturation = show_saturation = io.Buffer("i", platform.request("switch", 0, dir="-"))
        m.submodules.wide_currents = wide_currents = io.Buffer("i", platform.request("switch", 1, dir="-"))
        for k, led in enumerate(leds):
            m.submodules[f"led_{k}"] = led

        m.submodules.core = core = self.core
        stimulus = attach_stimulus(m, core, narrow_current_bits=self.narrow_current_bits)
        m.d.comb += stimulus.wide_currents.eq(wide_currents.i)

        spike_count = Signal(SPIKE_COUNT_WIDTH)
        with m.If(stimulus.spike_accepted):
            m.d.sync += spike_count.eq(spike_count + 1)

        shown = Mux(show_saturation.i, core.saturation_count[LED_COUNTER_BITS], spike_count[LED_COUNTER_BITS])
        m.d.comb += [led.o.eq(shown[k]) for k, led in enumerate(leds[:7])]
        m.d.comb += leds[7].o.eq(core.saturation_count != 0)
        return m
