"""ECP5 hard blocks: block RAM with its output register, multipliers with their registers.

Each component instantiates the ECP5 primitive (``DP16KD``, ``MULT18X18D``) when elaborated for
an ECP5 platform (:func:`is_ecp5`), and everywhere else (``amaranth.sim``, Verilog for cocotb,
``platform=None``) elaborates a behavioural model with exactly the same cycle timing: Yosys ships
no simulation model of either primitive. The semantics relied on are written down in each
module and in ``docs/hard_blocks.md``.
"""

from hw.ecp5.block_ram import BlockRAM, block_ram_tiles
from hw.ecp5.multiplier import Multiplier, WideMultiplier, registered_partial_products, registered_product
from hw.ecp5.platform import is_ecp5

__all__ = ["is_ecp5", "BlockRAM", "block_ram_tiles", "Multiplier", "WideMultiplier", "registered_partial_products",
           "registered_product"]
