"""ECP5 ``EHXPLLL`` configuration: a divider solver and the primitive as a component.

Frequency plan (Lattice FPGA-TN-02200 "ECP5 sysCLOCK PLL/DLL Design and Usage Guide"; limits as
in Project Trellis' ``ecppll`` and Glasgow's ``gateware/pll/ecp5.py``), with the feedback taken
from ``CLKOP``::

    f_pfd   = f_in / CLKI_DIV           3.125 MHz <= f_pfd <= 400 MHz
    f_clkop = f_pfd * CLKFB_DIV         3.125 MHz <= f_clkop <= 400 MHz
    f_vco   = f_clkop * CLKOP_DIV       400 MHz <= f_vco <= 800 MHz

with ``CLKI_DIV`` and ``CLKOP_DIV`` in 1..128 and ``CLKFB_DIV`` in 1..80.
"""


from dataclasses import dataclass

from amaranth.hdl import Instance, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["PLLConfig", "solve_pll", "ECP5PLL"]

INPUT_HZ_RANGE = (8e6, 400e6)
PFD_HZ_RANGE = (3.125e6, 400e6)
OUTPUT_HZ_RANGE = (3.125e6, 400e6)
VCO_HZ_RANGE = (400e6, 800e6)
CLKI_DIVS = range(1, 129)
CLKFB_DIVS = range(1, 81)
CLKOP_DIVS = range(1, 129)
VCO_PREFERRED_HZ = 600e6


@dataclass(frozen=True)
class PLLConfig:
    """Dividers of one ``EHXPLLL`` with a single output, ``CLKOP``, which is also the feedback.

    Parameters
    ----------
    input_hz : float
        Reference clock frequency at ``CLKI``.
    clki_div, clkfb_div, clkop_div : int
        Input, feedback and output dividers.
    """

    input_hz: float
    clki_div: int
    clkfb_div: int
    clkop_div: int

    def __post_init__(self):
        for name, allowed in (("clki_div", CLKI_DIVS), ("clkfb_div", CLKFB_DIVS), ("clkop_div", CLKOP_DIVS)):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name}={value} is outside {allowed.start}..{allowed.stop - 1}")
        for name, value, (lo, hi) in (
            ("input", self.input_hz, INPUT_HZ_RANGE),
            ("phase detector", self.pfd_hz, PFD_HZ_RANGE),
            ("output", self.output_hz, OUTPUT_HZ_RANGE),
            ("VCO", self.vco_hz, VCO_HZ_RANGE),
        ):
            if not lo <= value <= hi:
                raise ValueError(f"{name} frequency {value / 1e6:.4g} MHz is outside {lo / 1e6:g}..{hi / 1e6:g} MHz")

    @property
    def pfd_hz(self) -> float:
        """Phase detector frequency ``input_hz / clki_div``."""
        return self.input_hz / self.clki_div

    @property
    def output_hz(self) -> float:
        """Frequency at ``CLKOP``: ``input_hz * clkfb_div / clki_div``."""
        return self.pfd_hz * self.clkfb_div

    @property
    def vco_hz(self) -> float:
        return self.output_hz * self.clkop_div

    @property
    def clkop_cphase(self) -> int:
        """Coarse phase of the feedback output, half its divider (what ``ecppll`` emits)."""
        return self.clkop_div // 2

    def error(self, target_hz: float) -> float:
        """Relative frequency error of ``CLKOP`` against ``target_hz``."""
        return abs(self.output_hz - target_hz) / target_hz

    def as_dict(self) -> dict:
        return {
            "input_mhz": self.input_hz / 1e6,
            "output_mhz": self.output_hz / 1e6,
            "vco_mhz": self.vco_hz / 1e6,
            "pfd_mhz": self.pfd_hz / 1e6,
            "clki_div": self.clki_div,
            "clkfb_div": self.clkfb_div,
            "clkop_div": self.clkop_div,
        }


def solve_pll(input_hz: float, output_hz: float, *, tolerance: float = 0.005) -> PLLConfig:
    """Dividers that make ``output_hz`` from ``input_hz`` within relative ``tolerance``.

    Among the valid configurations the one with the smallest frequency error wins; ties go to
    the highest phase detector frequency (smallest ``CLKI_DIV``), then the VCO nearest 600 MHz.

    Raises
    ------
    ValueError
        When a frequency is outside the PLL's range or no divider set is within ``tolerance``
        (the message names the nearest reachable frequency).
    """
    if not INPUT_HZ_RANGE[0] <= input_hz <= INPUT_HZ_RANGE[1]:
        raise ValueError(
            f"PLL input {input_hz / 1e6:g} MHz is outside {INPUT_HZ_RANGE[0] / 1e6:g}..{INPUT_HZ_RANGE[1] / 1e6:g} MHz"
        )
    if not OUTPUT_HZ_RANGE[0] <= output_hz <= OUTPUT_HZ_RANGE[1]:
        raise ValueError(
            f"PLL output {output_hz / 1e6:g} MHz is outside "
            f"{OUTPUT_HZ_RANGE[0] / 1e6:g}..{OUTPUT_HZ_RANGE[1] / 1e6:g} MHz; choose a clock in that range"
        )
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be >= 0, not {tolerance!r}")
    best, best_key = None, None
    for clki_div in CLKI_DIVS:
        pfd_hz = input_hz / clki_div
        if pfd_hz < PFD_HZ_RANGE[0]:
            break
        if pfd_hz > PFD_HZ_RANGE[1]:
            continue
        for clkfb_div in CLKFB_DIVS:
            clkop_hz = pfd_hz * clkfb_div
            if clkop_hz > OUTPUT_HZ_RANGE[1]:
                break
            if clkop_hz < OUTPUT_HZ_RANGE[0]:
                continue
            for clkop_div in CLKOP_DIVS:
                vco_hz = clkop_hz * clkop_div
                if vco_hz > VCO_HZ_RANGE[1]:
                    break
                if vco_hz < VCO_HZ_RANGE[0]:
                    continue
                key = (abs(clkop_hz - output_hz) / output_hz, clki_div, abs(vco_hz - VCO_PREFERRED_HZ))
                if best_key is None or key < best_key:
                    best, best_key = (clki_div, clkfb_div, clkop_div), key
    if best is None:  # pragma: no cover - every in-range output has some divider set
        raise ValueError(f"no EHXPLLL configuration makes {output_hz / 1e6:g} MHz from {input_hz / 1e6:g} MHz")
    config = PLLConfig(input_hz, *best)
    if config.error(output_hz) > tolerance:
        raise ValueError(
            f"the ECP5 PLL cannot make {output_hz / 1e6:g} MHz from {input_hz / 1e6:g} MHz within "
            f"{tolerance:.2%}; the nearest it reaches is {config.output_hz / 1e6:.6g} MHz"
        )
    return config


class ECP5PLL(wiring.Component):
    """One ``EHXPLLL`` producing ``clk_out`` from ``clk_in`` as :class:`PLLConfig` says.

    The frequencies are attached as ``FREQUENCY_PIN_*`` attributes, from which nextpnr derives
    the output clock constraint. ``locked`` is asynchronous to both clocks: synchronise it
    (e.g. as the source of a reset synchroniser) before use.

    Parameters
    ----------
    config : PLLConfig

    Members
    -------
    clk_in : In(1)
        Reference clock, ``config.input_hz``.
    reset : In(1)
        Asynchronous PLL reset, active high.
    clk_out : Out(1)
        ``config.output_hz``.
    locked : Out(1)
        High while the PLL is locked.
    """

    clk_in: In(1)
    reset: In(1)
    clk_out: Out(1)
    locked: Out(1)

    def __init__(self, config: PLLConfig):
        if not isinstance(config, PLLConfig):
            raise TypeError(f"config must be a PLLConfig (see solve_pll), not {config!r}")
        self.config = config
        super().__init__()

    def elaborate(self, platform):
        config = self.config
        m = Module()
        m.submodules.ehxplll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{config.input_hz / 1e6:.6f}",
            a_FREQUENCY_PIN_CLKOP=f"{config.output_hz / 1e6:.6f}",
            # Loop filter settings hard-coded by ecppll (and Glasgow) for every configuration.
            a_ICP_CURRENT="12",
            a_LPF_RESISTOR="8",
            a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="ENABLED",
            p_INTFB_WAKE="DISABLED",
            p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED",
            p_OUTDIVIDER_MUXA="DIVA",
            p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC",
            p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=config.clki_div,
            p_CLKOP_ENABLE="ENABLED",
            p_CLKOP_DIV=config.clkop_div,
            p_CLKOP_CPHASE=config.clkop_cphase,
            p_CLKOP_FPHASE=0,
            p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=config.clkfb_div,
            i_CLKI=self.clk_in,
            i_CLKFB=self.clk_out,
            i_RST=self.reset,
            i_STDBY=0,
            i_PHASESEL0=0,
            i_PHASESEL1=0,
            i_PHASEDIR=1,
            i_PHASESTEP=1,
            i_PHASELOADREG=1,
            i_PLLWAKESYNC=0,
            i_ENCLKOP=0,
            o_CLKOP=self.clk_out,
            o_LOCK=self.locked,
        )
        return m
