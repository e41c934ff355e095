"""A simple dual-port block RAM (one write port, one read port) on ECP5 ``DP16KD``s.

On an ECP5 platform the memory is built from ``DP16KD`` primitives, each with its read-side
output register (``REGMODE = "OUTREG"``) when ``output_register=True``: Yosys 0.70 never sets
that register when it infers a block RAM, and the Trellis timing data give ~5.6 ns clock-to-out
without it, ~1.0 ns with it. Everywhere else the component elaborates an Amaranth
:class:`~amaranth.lib.memory.Memory` with a non-transparent synchronous read port, plus one
register behind it with ``output_register=True``: the same cycle timing.

Primitive facts relied on (Yosys ``techlibs/lattice/brams_16kd.txt`` and
``brams_map_16kd.v``, which map Yosys's own inferred memories onto ``DP16KD``; the initial
contents layout was checked against the ``INITVAL_xx`` Yosys writes, see
``tests/test_ecp5_hard_blocks.py``):

* One ``DP16KD`` holds 16 Kib (18 Kib with the ninth bit of each byte) in one of the shapes
  16384x1, 8192x2, 4096x4, 2048x9, 1024x18 or 512x36 (:data:`golden.fit.DP16KD_SHAPES`).
  Port A writes and port B reads (``DATA_WIDTH_A = DATA_WIDTH_B``); in the 36-bit shape (the
  pseudo dual-port ``PDPW16KD`` wiring) the word's low 18 bits go in on ``DIA0..17`` and come
  out on ``DOA0..17``, its high 18 bits on ``DIB0..17`` / ``DOB0..17``.
* Address ``ADx13..ADx0`` is a bit address into the 16 Ki cells: a word address of ``a`` bits
  sits in ``ADx13..ADx(14-a)``, the bits below it tied low, except the write port's byte
  (9-bit) enables: ``ADA1``/``ADA0`` in the 18-bit shape, ``ADA3..ADA0`` in the 36-bit shape,
  driven with the write enable as Yosys does (in the 36-bit shape they are the only write
  enable: ``WEA`` is tied high there).
* ``CEx`` enables the port's clocked read (or write), ``OCEx`` its output register (only used
  with ``REGMODE_x = "OUTREG"``); ``RSTx`` (synchronous, ``RESETMODE = "SYNC"``) is tied low:
  the read data are never reset. ``CSDECODE_x = "0b000"`` with ``CSx2..0`` tied low: every
  block is always selected; deeper memories select their block rows in fabric. ``WEB`` is tied
  low (port B only reads); ``WRITEMODE_A = "NORMAL"`` concerns port A's own read data, unused.
* Yosys's ECP5 memory library declares no behaviour for a read on one port of the word the
  other port writes in the same cycle, so Yosys treats it as undefined, and so does this
  component (below).

Word layout of the wrapper: a word of ``width`` bits is split into columns of the tile width,
column ``c`` holding bits ``c * tile_width ...`` (the last column partly used); a memory deeper
than one tile has several rows of tiles, row ``r`` holding words ``r * tile_depth ...``, each
row's write enable decoded from the high write-address bits and its read data selected by the
high read-address bits, registered alongside the read (a balanced tree of 2:1 multiplexers,
:func:`hw.arith.tree_select`, after the block RAMs' output).
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Const, Instance, Module, Shape, ShapeCastable, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import Out

from golden.fit import DP16KD_SHAPES
from hw.arith import tree_select
from hw.ecp5.platform import is_ecp5

__all__ = ["BlockRAM", "block_ram_tiles"]

#: Bits of a DP16KD address (a bit address into its 16 Ki data cells).
_ADDRESS_BITS = 14
#: The DP16KD's array as its ``INITVAL_xx`` parameters see it: 1024 rows of 18 bits, 16 rows
#: per parameter, each row in a 20-bit slot (two unused bits).
_ARRAY_ROWS = 1024
_ROW_BITS = 18
_ROWS_PER_INITVAL = 16
_INITVAL_SLOT_BITS = 20
#: Bits per byte of the 9- and 18-bit shapes (8 data bits and one more).
_BYTE_BITS = 9
#: Words of each DP16KD shape, by width.
_SHAPE_DEPTH = {width: depth for depth, width in DP16KD_SHAPES}


def block_ram_tiles(depth: int, width: int) -> tuple[int, int]:
    """``(tile_depth, tile_width)``: the DP16KD shape a ``depth`` x ``width`` :class:`BlockRAM`
    is built from. Of the shapes no narrower than ``min(width, 9)`` (the ones
    :func:`golden.fit.map_memory` counts), the one needing the fewest blocks, then the fewest
    rows of blocks (the deepest), so the count equals the fit estimate's."""
    if depth < 1 or width < 1:
        raise ValueError(f"memory shape must be positive, not {depth}x{width}")
    shapes = [shape for shape in DP16KD_SHAPES if shape[1] >= min(width, _BYTE_BITS)]
    return min(shapes, key=lambda shape: (-(-depth // shape[0]) * -(-width // shape[1]), -shape[0]))


def _cell_position(tile_width: int, word: int, bit: int) -> tuple[int, int]:
    """``(row, bit)`` in the DP16KD array (its ``INITVAL`` rows) of ``bit`` of word ``word``.

    18 bits: word ``k`` is row ``k``. 36 bits: row ``2k`` holds the low 18 bits, row ``2k + 1``
    the high. 9 bits: two words a row, the even word in bits 0..8. 1, 2, 4 bits: the words pack
    the 16 data bits of each row (bits 0..7 and 9..16, the ninth bit of each byte unused),
    lowest word lowest."""
    if tile_width == 36:
        return 2 * word + bit // _ROW_BITS, bit % _ROW_BITS
    if tile_width in (9, 18):
        per_row = _ROW_BITS // tile_width
        return word // per_row, (word % per_row) * tile_width + bit
    per_row = 16 // tile_width
    data_bit = (word % per_row) * tile_width + bit
    return word // per_row, data_bit + data_bit // 8


def _initvals(tile_width: int, words: list[int]) -> dict[str, Const]:
    """``INITVAL_00`` .. ``INITVAL_3F`` for one block holding ``words`` (``tile_width`` bits each)."""
    rows = [0] * _ARRAY_ROWS
    for word, value in enumerate(words):
        for bit in range(tile_width):
            if value >> bit & 1:
                row, position = _cell_position(tile_width, word, bit)
                rows[row] |= 1 << position
    params = {}
    for index in range(_ARRAY_ROWS // _ROWS_PER_INITVAL):
        value = 0
        for slot in range(_ROWS_PER_INITVAL):
            value |= rows[index * _ROWS_PER_INITVAL + slot] << (slot * _INITVAL_SLOT_BITS)
        params[f"p_INITVAL_{index:02X}"] = Const(value, _ROWS_PER_INITVAL * _INITVAL_SLOT_BITS)
    return params


def _raw_word(shape, value) -> int:
    """The bits of one initial word of ``shape`` (a shape or a layout) as a non-negative int."""
    width = Shape.cast(shape).width
    if isinstance(shape, ShapeCastable):
        const = Const.cast(shape.const(value))
    else:
        const = Const(0 if value is None else value, shape)
    return const.value & ((1 << width) - 1)


class BlockRAM(wiring.Component):
    """``depth`` words of ``shape``: one write port, one read port, optional output register.

    Parameters
    ----------
    shape : shape-like (a shape or a data layout)
        One word.
    depth : int
        Number of words.
    init : iterable
        Initial contents (as :class:`amaranth.lib.memory.Memory` takes them); missing words are 0.
    output_register : bool
        Register the read data a second time in the block RAM's own output register
        (``REGMODE = "OUTREG"``): read latency 2 instead of 1.
    domain : str
        Clock domain of both ports.

    Members
    -------
    write : ``Out(memory.WritePort.Signature(addr_width, shape))``
        ``addr``, ``data``, ``en`` (inputs): ``data`` is written to word ``addr`` on the clock edge
        at which ``en`` is high.
    read : ``Out(memory.ReadPort.Signature(addr_width, shape))``
        ``addr``, ``en`` (inputs, ``en`` defaults to 1) and ``data`` (output).

    Timing
    ------
    * **Read latency** :attr:`read_latency`: 1 without the output register, 2 with it, counted in
      clock edges at which ``read.en`` is high. The word at ``read.addr`` at such an edge ``k`` is
      on ``read.data`` after the next ``read_latency - 1`` enabled edges following ``k`` (right
      after ``k`` with latency 1). Every read register (the block RAM's read latch, its output
      register and the row select) loads only when ``read.en`` is high and holds otherwise, so
      a stalled pipeline holds its read data: drive ``read.en`` with the pipeline's advance.
    * **Read during write** (``transparent=False``): a read of a word in the cycle it is
      written returns the old word in the behavioural model; the hardware does not define it,
      so a design must not depend on it (stall or forward). A read one cycle after the write
      sees the new word. Other words are unaffected.
    * **Reset**: none. The domain's reset does not touch the contents, the read data or the
      output register. The contents start as ``init`` (from the bitstream); the read data are 0
      before the first reads in the model and unspecified in hardware.
    * Addresses ``>= depth`` are a caller error (undefined word, and a write may land anywhere).

    Every ``BlockRAM`` takes :attr:`block_count` DP16KDs on ECP5, however small: keep a plain
    ``memory.Memory`` for the memories :func:`golden.fit.map_memory` puts in LUT RAM or logic.
    """

    def __init__(self, *, shape, depth: int, init=(), output_register: bool = True, domain: str = "sync"):
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive int, not {depth!r}")
        self._data = memory.MemoryData(shape=shape, depth=depth, init=init)
        self._output_register = bool(output_register)
        self._domain = domain
        addr_width = (depth - 1).bit_length()
        super().__init__({
            "write": Out(memory.WritePort.Signature(addr_width=addr_width, shape=shape)),
            "read": Out(memory.ReadPort.Signature(addr_width=addr_width, shape=shape)),
        })

    @property
    def shape(self):
        return self._data.shape

    @property
    def depth(self) -> int:
        return self._data.depth

    @property
    def width(self) -> int:
        """Bits of one word."""
        return Shape.cast(self._data.shape).width

    @property
    def output_register(self) -> bool:
        return self._output_register

    @property
    def read_latency(self) -> int:
        """Enabled clock edges from a read address to its data: 1, or 2 with the output register."""
        return 2 if self._output_register else 1

    @property
    def tiles(self) -> tuple[int, int]:
        """``(tile_depth, tile_width)`` of the DP16KDs on ECP5 (:func:`block_ram_tiles`)."""
        return block_ram_tiles(self.depth, self.width)

    @property
    def block_count(self) -> int:
        """DP16KD primitives used on ECP5."""
        tile_depth, tile_width = self.tiles
        return -(-self.depth // tile_depth) * -(-self.width // tile_width)

    def elaborate(self, platform):
        if is_ecp5(platform):
            return self._elaborate_dp16kd()
        return self._elaborate_model()

    # --- behavioural model ----------------------------------------------------------------
    def _elaborate_model(self):
        m = Module()
        m.submodules.storage = storage = memory.Memory(data=self._data)
        write = storage.write_port(domain=self._domain)
        read = storage.read_port(domain=self._domain)  # not transparent: old word on a collision
        m.d.comb += [
            write.addr.eq(self.write.addr),
            write.data.eq(self.write.data),
            write.en.eq(self.write.en),
            read.addr.eq(self.read.addr),
            read.en.eq(self.read.en),
        ]
        if self._output_register:
            output = Signal(self.shape, reset_less=True, name="output_register")
            with m.If(self.read.en):
                m.d[self._domain] += output.eq(read.data)
            m.d.comb += self.read.data.eq(output)
        else:
            m.d.comb += self.read.data.eq(read.data)
        return m

    # --- ECP5 -----------------------------------------------------------------------------
    def _dp16kd(self, **parameters_and_ports):
        """One DP16KD (``Instance`` keyword arguments); the tests model it here in Amaranth."""
        return Instance("DP16KD", **parameters_and_ports)

    def _tile_ports(self, tile_width: int, write_enable, data_in, data_out, *, name: str) -> dict:
        """The ports of one DP16KD of ``tile_width``: port A writes ``data_in`` (36 bits, the
        low ``tile_width`` used) when ``write_enable`` is high, port B reads into ``data_out``."""
        word_address_low = _ADDRESS_BITS - (_SHAPE_DEPTH[tile_width] - 1).bit_length()
        clock = ClockSignal(self._domain)
        ports = {
            "i_CLKA": clock, "i_CLKB": clock,
            "i_RSTA": Const(0), "i_RSTB": Const(0),
            **{f"i_CS{port}{k}": Const(0) for port in "AB" for k in range(3)},
            "i_WEB": Const(0),
            "i_CEB": self.read.en, "i_OCEB": self.read.en,
        }
        # Port A as Yosys drives it for its own inferred memories: CEA high; WEA the write
        # enable, except in the 36-bit shape, where WEA is high and the four byte enables carry
        # the write enable. The 36-bit shape reads its low half out of DOA, so OCEA follows the
        # read enable there, as OCEB does.
        if tile_width == 36:
            ports.update({"i_WEA": Const(1), "i_CEA": Const(1), "i_OCEA": self.read.en})
            byte_enables = 4
        else:
            ports.update({"i_WEA": write_enable, "i_CEA": Const(1), "i_OCEA": Const(0)})
            byte_enables = 2 if tile_width == 18 else 0
        for bit in range(_ADDRESS_BITS):
            word_bit = bit - word_address_low
            if word_bit >= 0:
                ports[f"i_ADA{bit}"] = self.write.addr[word_bit] if word_bit < len(self.write.addr) else Const(0)
                ports[f"i_ADB{bit}"] = self.read.addr[word_bit] if word_bit < len(self.read.addr) else Const(0)
            else:
                ports[f"i_ADA{bit}"] = write_enable if bit < byte_enables else Const(0)
                ports[f"i_ADB{bit}"] = Const(0)
        wide = tile_width == 36
        for bit in range(_ROW_BITS):
            ports[f"i_DIA{bit}"] = data_in[bit]
            ports[f"i_DIB{bit}"] = data_in[_ROW_BITS + bit] if wide else Const(0)
            ports[f"o_DOA{bit}"] = data_out[bit] if wide else Signal(name=f"{name}_unused_doa{bit}")
            ports[f"o_DOB{bit}"] = data_out[_ROW_BITS + bit] if wide else data_out[bit]
        return ports

    def _elaborate_dp16kd(self):
        m = Module()
        tile_depth, tile_width = self.tiles
        tile_addr_bits = (tile_depth - 1).bit_length()
        rows = -(-self.depth // tile_depth)
        columns = -(-self.width // tile_width)
        words = [_raw_word(self.shape, value) for value in self._data.init]
        regmode = "OUTREG" if self._output_register else "NOREG"
        write_data = Signal(self.width)
        read_words = [Signal(self.width, name=f"row_{row}_data") for row in range(rows)]
        m.d.comb += write_data.eq(self.write.data)

        for row in range(rows):
            row_write = Signal(name=f"row_{row}_write")
            selected = self.write.addr[tile_addr_bits:] == row if rows > 1 else Const(1)
            m.d.comb += row_write.eq(self.write.en & selected)
            for column in range(columns):
                low = column * tile_width
                bits = min(tile_width, self.width - low)
                tile_words = [
                    word >> low & ((1 << bits) - 1)
                    for word in words[row * tile_depth:(row + 1) * tile_depth]
                ]
                data_in = Signal(36, name=f"tile_{row}_{column}_data_in")
                data_out = Signal(36, name=f"tile_{row}_{column}_data_out")
                m.d.comb += [
                    data_in.eq(write_data[low:low + bits]),
                    read_words[row][low:low + bits].eq(data_out[:bits]),
                ]
                ports = self._tile_ports(tile_width, row_write, data_in, data_out, name=f"tile_{row}_{column}")
                m.submodules[f"tile_{row}_{column}"] = self._dp16kd(
                    p_DATA_WIDTH_A=tile_width,
                    p_DATA_WIDTH_B=tile_width,
                    p_REGMODE_A=regmode,
                    p_REGMODE_B=regmode,
                    p_RESETMODE="SYNC",
                    p_ASYNC_RESET_RELEASE="SYNC",
                    p_CSDECODE_A="0b000",
                    p_CSDECODE_B="0b000",
                    p_WRITEMODE_A="NORMAL",
                    p_WRITEMODE_B="NORMAL",
                    p_GSR="AUTO",
                    **_initvals(tile_width, tile_words),
                    **ports,
                )

        if rows == 1:
            m.d.comb += self.read.data.eq(read_words[0])
            return m
        # The row of each read, registered along with the read itself.
        select = self.read.addr[tile_addr_bits:]
        for stage in range(self.read_latency):
            registered = Signal(len(select), reset_less=True, name=f"row_select_{stage + 1}")
            with m.If(self.read.en):
                m.d[self._domain] += registered.eq(select)
            select = registered
        m.d.comb += self.read.data.eq(tree_select(select, read_words))
        return m
