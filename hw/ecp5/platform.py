"""Which platforms get the ECP5 primitives."""

from amaranth.vendor import LatticePlatform

__all__ = ["is_ecp5"]


def is_ecp5(platform) -> bool:
    """Whether ``platform`` builds for the ECP5 family (then the hard primitives are instantiated)."""
    return isinstance(platform, LatticePlatform) and platform.family == "ecp5"
