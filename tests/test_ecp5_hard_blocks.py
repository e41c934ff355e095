"""The ECP5 hard blocks (hw.ecp5): behavioural models against the documented semantics
(docs/hard_blocks.md), the primitives' configuration when elaborated for ECP5, and (slow) Yosys's
netlist of a design using them."""

import json
import random
import subprocess

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.hdl import Cat, Const, Elaboratable, Fragment, Instance, Module, Signal, signed, unsigned
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from golden.fit import DP16KD_SHAPES, map_memory
from hw.boards.ulx3s import ulx3s_platform
from hw.arith import sum_shifted
from hw.ecp5 import BlockRAM, Multiplier, WideMultiplier, block_ram_tiles, is_ecp5, registered_partial_products
from hw.ecp5.block_ram import _SHAPE_DEPTH, _cell_position, _initvals
from hw.toolchain import find_tool

ECP5 = ulx3s_platform("85F")


def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def _instances(dut, platform=ECP5):
    """Every Instance in ``dut`` elaborated for ``platform``, depth first."""
    found = []

    def walk(fragment):
        if isinstance(fragment, Instance):
            found.append(fragment)
        for sub, _name, _src_loc in getattr(fragment, "subfragments", []):
            walk(sub)

    walk(Fragment.get(dut, platform))
    return found


# --- block RAM: behavioural model ------------------------------------------------------------


class _RamReference:
    """The documented semantics: a non-transparent read, then ``latency - 1`` more registers,
    every read register loading on edges with ``read.en`` high."""

    def __init__(self, depth, init, latency):
        self.words = list(init) + [0] * (depth - len(init))
        self.pipe = [0] * latency

    def edge(self, w_en, w_addr, w_data, r_en, r_addr):
        if r_en:
            self.pipe = [self.words[r_addr]] + self.pipe[:-1]  # old word on a collision
        if w_en:
            self.words[w_addr] = w_data
        return self.pipe[-1]


@pytest.mark.parametrize("output_register", [False, True])
def test_block_ram_read_latency_and_enable(output_register):
    dut = BlockRAM(shape=unsigned(16), depth=32, init=[100 + k for k in range(32)], output_register=output_register)
    assert dut.read_latency == (2 if output_register else 1)

    async def bench(ctx):
        ctx.set(dut.read.addr, 5)
        await ctx.tick()
        if output_register:
            assert ctx.get(dut.read.data) == 0  # read latch loaded, output register not yet
            ctx.set(dut.read.addr, 6)
            await ctx.tick()
        assert ctx.get(dut.read.data) == 105
        # read.en low: every read register holds, whatever the address does.
        ctx.set(dut.read.en, 0)
        ctx.set(dut.read.addr, 9)
        for _ in range(3):
            await ctx.tick()
            assert ctx.get(dut.read.data) == 105
        ctx.set(dut.read.en, 1)
        await ctx.tick()
        assert ctx.get(dut.read.data) == (106 if output_register else 109)

    _run(dut, bench)


@pytest.mark.parametrize("output_register", [False, True])
def test_block_ram_read_during_write_returns_old_word(output_register):
    """transparent=False: a read of the word written in the same cycle gives the old word, the
    next read the new one."""
    dut = BlockRAM(shape=unsigned(8), depth=4, init=[1, 2, 3, 4], output_register=output_register)

    async def bench(ctx):
        ctx.set(dut.write.addr, 1)
        ctx.set(dut.write.data, 0x55)
        ctx.set(dut.write.en, 1)
        ctx.set(dut.read.addr, 1)
        await ctx.tick()  # read and write of word 1 at the same edge
        ctx.set(dut.write.en, 0)
        for _ in range(dut.read_latency - 1):
            await ctx.tick()
        assert ctx.get(dut.read.data) == 2  # old word
        await ctx.tick()  # the read issued at the edge after the write's
        assert ctx.get(dut.read.data) == 0x55

    _run(dut, bench)


def _check_random_traffic(dut, init, rng, *, collisions: bool):
    """600 cycles of random writes and reads with random enables against :class:`_RamReference`,
    the initial contents read first; a read of the word written at the same edge only with
    ``collisions`` (the behavioural model defines it, the hardware does not)."""
    depth, width = dut.depth, dut.width
    reference = _RamReference(depth, init, dut.read_latency)

    async def bench(ctx):
        for cycle in range(600):
            ops = dict(w_en=cycle >= 100 and rng.random() < 0.4, w_addr=rng.randrange(depth),
                       w_data=rng.getrandbits(width), r_en=rng.random() < 0.7, r_addr=rng.randrange(depth))
            if rng.random() < 0.3:  # the neighbour word, or the same one
                ops["r_addr"] = ops["w_addr"] ^ (0 if collisions else 1) if ops["w_addr"] ^ 1 < depth else ops["w_addr"]
            if ops["r_addr"] == ops["w_addr"] and not collisions:
                ops["w_en"] = False
            ctx.set(dut.write.en, ops["w_en"])
            ctx.set(dut.write.addr, ops["w_addr"])
            ctx.set(dut.write.data, ops["w_data"])
            ctx.set(dut.read.en, ops["r_en"])
            ctx.set(dut.read.addr, ops["r_addr"])
            await ctx.tick()
            assert ctx.get(dut.read.data) == reference.edge(**ops), cycle

    _run(dut, bench)


@pytest.mark.parametrize("output_register", [False, True])
@pytest.mark.parametrize("depth, width", [(40, 12), (64, 49)])
def test_block_ram_random_against_reference(output_register, depth, width):
    rng = random.Random(depth * 100 + width + output_register)
    init = [rng.getrandbits(width) for _ in range(depth - 3)]
    dut = BlockRAM(shape=unsigned(width), depth=depth, init=init, output_register=output_register)
    _check_random_traffic(dut, init, rng, collisions=True)


def test_block_ram_takes_a_layout_and_its_init():
    layout = data.StructLayout({"u": signed(25), "im": signed(24)})
    dut = BlockRAM(shape=layout, depth=8, init=[{"u": -3, "im": 7}], output_register=True)

    async def bench(ctx):
        ctx.set(dut.read.addr, 0)
        await ctx.tick().repeat(2)
        word = ctx.get(dut.read.data)
        assert (word.u, word.im) == (-3, 7)

    _run(dut, bench)


# --- block RAM: the primitives on ECP5 -------------------------------------------------------


def test_platform_detection():
    assert is_ecp5(ECP5)
    assert not is_ecp5(None)


@pytest.mark.parametrize("depth, width", [(256, 49), (1024, 54), (4096, 49), (512, 14), (162, 16), (4096, 4), (64, 128)])
def test_block_ram_uses_as_many_dp16kd_as_the_fit_estimate(depth, width):
    dut = BlockRAM(shape=unsigned(width), depth=depth, init=[])
    instances = _instances(dut)
    assert {instance.type for instance in instances} == {"DP16KD"}
    kind, blocks, _luts = map_memory(depth, width, written=True)
    assert kind == "dp16kd" and len(instances) == dut.block_count == blocks
    tile_depth, tile_width = block_ram_tiles(depth, width)
    assert all(instance.parameters["DATA_WIDTH_B"] == tile_width for instance in instances)


@pytest.mark.parametrize("output_register, regmode", [(True, "OUTREG"), (False, "NOREG")])
def test_block_ram_regmode(output_register, regmode):
    for instance in _instances(BlockRAM(shape=unsigned(49), depth=1024, output_register=output_register)):
        assert instance.parameters["REGMODE_A"] == instance.parameters["REGMODE_B"] == regmode


def test_block_ram_tiles_fewest_blocks_then_fewest_rows():
    assert block_ram_tiles(256, 49) == (512, 36)    # 2 blocks, 1 row
    assert block_ram_tiles(1024, 54) == (1024, 18)  # 3 blocks
    assert block_ram_tiles(4096, 49) == (2048, 9)   # 12 blocks either way as x9 or x18: 2 rows, not 4
    assert block_ram_tiles(4096, 4) == (4096, 4)


# --- multipliers: behavioural models ---------------------------------------------------------

def _check_products(dut, pairs, *, stall_rng=None):
    """Feed ``pairs`` with ``en`` high (or random with ``stall_rng``) and check each product
    appears after exactly ``dut.latency`` enabled edges."""

    async def bench(ctx):
        pipe = [None] * dut.latency
        queue = list(pairs)
        while queue or any(entry is not None for entry in pipe):
            en = stall_rng is None or stall_rng.random() < 0.6
            pair = queue[0] if queue else (0, 0)
            ctx.set(dut.a, pair[0])
            ctx.set(dut.b, pair[1])
            ctx.set(dut.en, en)
            await ctx.tick()
            if en:
                pipe = [pair[0] * pair[1] if queue else None] + pipe[:-1]
                if queue:
                    queue.pop(0)
                if pipe[-1] is not None:
                    assert ctx.get(dut.p) == pipe[-1]
                    pipe[-1] = None

    _run(dut, bench)


def _operand_corners(shape):
    """Most negative, most positive, -1, 0, 1 of a signed shape; all ones, 0, 1 of an unsigned one."""
    if shape.signed:
        return [-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1, -1, 0, 1]
    return [(1 << shape.width) - 1, 0, 1]


def _draw(rng, shape):
    """A uniformly random value of ``shape``."""
    return rng.randrange(-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed else rng.getrandbits(shape.width)


def test_multiplier_latency_is_three():
    dut = Multiplier(signed(18), signed(18))

    async def bench(ctx):
        ctx.set(dut.a, -5)
        ctx.set(dut.b, 7)
        for edge in range(1, 4):
            await ctx.tick()
            ctx.set(dut.a, 0)
            assert (ctx.get(dut.p) == -35) == (edge == 3)

    _run(dut, bench)


@pytest.mark.parametrize("a_shape, b_shape", [
    (signed(18), signed(18)), (unsigned(18), unsigned(18)), (unsigned(17), signed(18)), (signed(9), unsigned(5)),
])
def test_multiplier_corners_and_random(a_shape, b_shape):
    rng = random.Random(a_shape.width * 31 + b_shape.width)
    pairs = [(a, b) for a in _operand_corners(a_shape) for b in _operand_corners(b_shape)]
    pairs += [(_draw(rng, a_shape), _draw(rng, b_shape)) for _ in range(200)]
    dut = Multiplier(a_shape, b_shape)
    assert dut.p.shape() == (signed if (a_shape.signed or b_shape.signed) else unsigned)(a_shape.width + b_shape.width)
    _check_products(dut, pairs, stall_rng=random.Random(1))


def test_multiplier_refuses_operands_that_do_not_fit_a_port():
    with pytest.raises(ValueError, match="1 to 18 bits"):
        Multiplier(signed(19), signed(18))
    with pytest.raises(ValueError, match="at most 17 bits"):
        Multiplier(unsigned(18), signed(18))


@pytest.mark.parametrize("a_shape, b_shape, multipliers", [
    (signed(25), signed(18), 2),   # C-SiLIF: u' (25 bits) x a decay
    (signed(36), unsigned(20), 6),
    (unsigned(18), signed(18), 2),
    (unsigned(18), unsigned(18), 1),
])
def test_wide_multiplier_is_exact(a_shape, b_shape, multipliers):
    rng = random.Random(a_shape.width + 7 * b_shape.width)

    pairs = [(a, b) for a in _operand_corners(a_shape) for b in _operand_corners(b_shape)]
    pairs += [(_draw(rng, a_shape), _draw(rng, b_shape)) for _ in range(150)]
    dut = WideMultiplier(a_shape, b_shape)
    assert dut.latency == 4 and dut.multiplier_count == multipliers
    _check_products(dut, pairs, stall_rng=random.Random(2))
    assert len([i for i in _instances(WideMultiplier(a_shape, b_shape)) if i.type == "MULT18X18D"]) == multipliers


@pytest.mark.parametrize("coef_shape", [unsigned(16), signed(18)])  # biased slices; signed parts
@pytest.mark.parametrize("fabric_registers", [0, 1])
@pytest.mark.parametrize("addend", [0, 1 << 14])  # a rounding constant: in the bias term; a term
def test_partial_products_sum_to_the_product_after_their_registers(coef_shape, fabric_registers, addend):
    """``registered_partial_products``: the terms' shifted sum is ``coef * operand + addend``
    exactly ``Multiplier.latency + fabric_registers`` edges after the operands, for a stream of
    pairs."""
    rng = random.Random(coef_shape.width + fabric_registers)
    operand_shape = signed(25)
    pairs = [(c, x) for c in _operand_corners(coef_shape) for x in _operand_corners(operand_shape)]
    pairs += [(_draw(rng, coef_shape), _draw(rng, operand_shape)) for _ in range(40)]
    m = Module()
    coef, operand = Signal(coef_shape), Signal(operand_shape)
    parts = registered_partial_products(m, "product", coef, operand, en=Const(1), fabric_registers=fabric_registers,
                                        addend=addend)
    total = Signal(signed(coef_shape.width + operand_shape.width + 2))
    m.d.comb += total.eq(sum_shifted(parts))
    latency = Multiplier.latency + fabric_registers

    async def bench(ctx):
        for t in range(len(pairs) + latency - 1):
            c, x = pairs[t] if t < len(pairs) else (0, 0)
            ctx.set(coef, c)
            ctx.set(operand, x)
            await ctx.tick()
            if t + 1 >= latency:
                c, x = pairs[t + 1 - latency]
                assert ctx.get(total) == c * x + addend, (t, c, x)

    _run(m, bench)


def test_partial_products_reject_a_negative_addend(never_elaborated):
    with never_elaborated(), pytest.raises(ValueError, match="addend must be a non-negative integer"):
        registered_partial_products(Module(), "product", Signal(16), Signal(signed(25)), en=Const(1), addend=-1)


# --- multipliers: the primitive on ECP5 ------------------------------------------------------


def test_multiplier_registers_are_on():
    (instance,) = _instances(Multiplier(signed(18), signed(18)))
    assert instance.type == "MULT18X18D"
    for register in ("INPUTA", "INPUTB", "PIPELINE", "OUTPUT"):
        assert instance.parameters[f"REG_{register}_CLK"] == "CLK0"
        assert instance.parameters[f"REG_{register}_CE"] == "CE0"


# --- Yosys's netlist -------------------------------------------------------------------------


def _synthesise(top, tmp_path, name="top"):
    """``synth_ecp5 -json`` of ``top`` elaborated for the ULX3S 85F; returns the top module's cells."""
    (tmp_path / f"{name}.il").write_text(rtlil.convert(top, name=name, platform=ECP5))
    subprocess.run(
        [find_tool("yosys"), "-q", "-p", f"read_rtlil {name}.il; synth_ecp5 -top {name} -json {name}.json"],
        cwd=tmp_path, check=True, capture_output=True, timeout=600,
    )
    return list(json.loads((tmp_path / f"{name}.json").read_text())["modules"][name]["cells"].values())


def hard_block_registers_lost(cells) -> list[str]:
    """What a netlist's block RAMs and multipliers lack: every DP16KD read through its output
    register (``REGMODE_B = OUTREG``), every MULT18X18D with its input, pipeline and output
    registers clocked."""
    lost = []
    for cell in cells:
        params = cell["parameters"]
        if cell["type"] == "DP16KD" and params.get("REGMODE_B") != "OUTREG":
            lost.append(f"DP16KD with REGMODE_B={params.get('REGMODE_B')}")
        if cell["type"] == "MULT18X18D":
            lost += [f"MULT18X18D with REG_{register}_CLK={params.get(f'REG_{register}_CLK')}"
                     for register in ("INPUTA", "INPUTB", "PIPELINE", "OUTPUT")
                     if params.get(f"REG_{register}_CLK") != "CLK0"]
    return lost


def _multiply_accumulate(hard: bool):
    from hw.ecp5.multiply_accumulate import MemoryMultiplyAccumulate

    return MemoryMultiplyAccumulate(hard_memories=hard, hard_multipliers=hard)


#: Designs whose Yosys netlist must keep every hard register: name -> (factory, DP16KD count,
#: MULT18X18D count). A design built on hw.ecp5 (a core, the synapse stage) joins with one line.
def _synapse(n_hidden: int, lanes: int):
    """The synapse stage of the default network's hidden layer (162 inputs)."""
    from golden.network import default_network
    from hw.processor.synapse import SynapseStage

    return SynapseStage(default_network(n_hidden=n_hidden).layers[0], lanes=lanes)


def _core(kind: str, n_neurons: int):
    """The core of neuron kind ``kind`` (its default parameters) for ``n_neurons`` neurons."""
    from golden.kinds import network_kinds
    from hw.cores import core_classes

    params = network_kinds()[kind].default_params(np.random.default_rng(0), n_neurons)
    return core_classes()[kind](params)


HARD_REGISTER_DESIGNS = {
    "multiply_accumulate": (lambda: _multiply_accumulate(True), 4, 2),
    # 1296x56 weights in 6 banks of one DP16KD (bias ROM in logic, accumulators in LUT RAM).
    "synapse_32_neurons_4_lanes": (lambda: _synapse(32, 4), 6, 0),
    # 10368x14 weights in 10 banks, the 64x23 accumulators in one DP16KD.
    "synapse_64_neurons_1_lane": (lambda: _synapse(64, 1), 11, 0),
    # 16 neurons (memories in LUT RAM and logic: its state memory is not on a BlockRAM, see
    # hw/cores/csilif.py); 8 partial decay products and b*x.
    "csilif_core_16": (lambda: _core("csilif", 16), 0, 9),
    # 1024 neurons: state and thresholds in 3 DP16KD each; two 18-bit slices of each decay product.
    "refractory_lif_core_1024": (lambda: _core("refractory_lif", 1024), 6, 4),
    # 1024 neurons: the 49-bit state word in 3 DP16KD, the 5 coefficients in 5; two biased
    # 18-bit slices of each of the four products.
    "silif_core_1024": (lambda: _core("silif", 1024), 8, 8),
    # 10 classes (memories in LUT RAM and logic): two biased 18-bit slices of u and of x.
    "li_readout_core_10": (lambda: _core("li_readout", 10), 0, 4),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(HARD_REGISTER_DESIGNS))
def test_yosys_netlist_keeps_the_hard_registers(tmp_path, name):
    """synth_ecp5 of each design keeps its block RAMs' output register and its multipliers'
    input, pipeline and output registers, and has the expected number of each."""
    factory, block_rams, multipliers = HARD_REGISTER_DESIGNS[name]
    cells = _synthesise(factory(), tmp_path)
    types = [cell["type"] for cell in cells]
    assert (types.count("DP16KD"), types.count("MULT18X18D")) == (block_rams, multipliers)
    assert hard_block_registers_lost(cells) == []


@pytest.mark.slow
def test_weight_banks_read_from_an_address_register_per_group(tmp_path):
    """synth_ecp5 keeps the synapse's address register of each group of 4 weight banks (10
    banks: 4 + 4 + 2) apart: each group's DP16KD read address comes straight from flip-flops
    of its own (Yosys merges equal flip-flops, so the registers must differ)."""
    cells = _synthesise(_synapse(64, 1), tmp_path)
    flip_flops = {cell["connections"]["Q"][0] for cell in cells if cell["type"] == "TRELLIS_FF"}
    groups = {}
    for cell in cells:
        if cell["type"] == "DP16KD":
            address = frozenset(bit for i in range(14) for bit in cell["connections"][f"ADB{i}"]
                                if isinstance(bit, int))
            if address <= flip_flops:
                groups[address] = groups.get(address, 0) + 1
    assert sorted(groups.values()) == [2, 4, 4]


@pytest.mark.slow
def test_yosys_netlist_check_sees_inferred_blocks(tmp_path):
    """The negative control: the measurement design inferred has its four block RAMs without the
    output register and its two multipliers without any of their registers."""
    cells = _synthesise(_multiply_accumulate(False), tmp_path)
    assert [cell["type"] for cell in cells].count("DP16KD") == 4
    assert len(hard_block_registers_lost(cells)) == 4 + 2 * 4


class _ParameterRom(wiring.Component):
    """One ROM from :func:`hw.memories.parameter_memory` with its output register, random words."""

    def __init__(self, depth, width):
        self._words = [int(w) for w in np.random.default_rng(depth * 131 + width).integers(0, 1 << width, depth)]
        super().__init__({"addr": In(range(depth)), "word": Out(width)})

    def elaborate(self, platform):
        from hw.memories import parameter_memory

        m = Module()
        read = parameter_memory(m, "rom", shape=len(self.word), init=self._words, output_register=True)
        m.d.comb += [read.addr.eq(self.addr), read.en.eq(1), self.word.eq(read.data)]
        return m


@pytest.mark.parametrize("depth, width", [(176, 13), (144, 16)])
def test_a_rom_the_fit_check_puts_in_logic_stays_in_logic(tmp_path, depth, width):
    """Near the fit check's ROM threshold Yosys's own choice is a DP16KD without its output
    register (a 176 x 13 bias ROM did that in a trained top); parameter_memory makes it follow
    the fit check instead."""
    assert map_memory(depth, width, written=False)[0] == "logic"
    types = [cell["type"] for cell in _synthesise(_ParameterRom(depth, width), tmp_path)]
    assert types.count("DP16KD") == 0 and types.count("LUT4") > 0


class _InferredMemories(wiring.Component):
    """One inferred memory per DP16KD shape, each exactly one block, with distinct contents."""

    def __init__(self):
        super().__init__({"read_addr": In(14), "write_en": In(1), "words": Out(sum(w for _d, w in DP16KD_SHAPES))})

    @staticmethod
    def contents(depth, width):
        return [(k * 0x9E3779B1 + 0x1234567) >> 3 & ((1 << width) - 1) for k in range(depth)]

    def elaborate(self, platform):
        m = Module()
        low = 0
        for depth, width in DP16KD_SHAPES:
            m.submodules[f"mem_{width}"] = mem = memory.Memory(shape=width, depth=depth, init=self.contents(depth, width))
            write, read = mem.write_port(), mem.read_port()
            m.d.comb += [write.addr.eq(self.read_addr), write.data.eq(self.read_addr), write.en.eq(self.write_en),
                         read.addr.eq(self.read_addr), self.words[low:low + width].eq(read.data)]
            low += width
        return m


@pytest.mark.slow
def test_initial_contents_layout_matches_yosys(tmp_path):
    """The INITVAL_xx the wrapper writes for each DP16KD shape are those Yosys writes for an
    inferred memory of that shape with the same contents (the array layout of each shape). The
    cells are told apart by their write width: Yosys reads the narrow shapes 18 bits wide and
    selects in fabric, and the layout of the array does not depend on the read width."""
    cells = [cell for cell in _synthesise(_InferredMemories(), tmp_path) if cell["type"] == "DP16KD"]
    by_width = {int(cell["parameters"]["DATA_WIDTH_A"], 2): cell["parameters"] for cell in cells}
    assert sorted(by_width) == sorted(width for _depth, width in DP16KD_SHAPES)
    for depth, width in DP16KD_SHAPES:
        expected = _initvals(width, _InferredMemories.contents(depth, width))
        for name, value in expected.items():
            assert int(by_width[width][name.removeprefix("p_")], 2) == value.value, (width, name)


# --- block RAM: the ECP5 construction, with the DP16KD modelled ------------------------------

class _DP16KDModel(Elaboratable):
    """The DP16KD as docs/hard_blocks.md describes it, for the configurations BlockRAM uses:
    port A writes, port B reads (non-transparent), bit addresses, the 36-bit data split, the
    INITVAL array layout and the output register."""

    def __init__(self, kwargs):
        self.kwargs = kwargs

    def elaborate(self, platform):
        kw = self.kwargs
        width = kw["p_DATA_WIDTH_A"]
        assert kw["p_DATA_WIDTH_B"] == width
        depth = _SHAPE_DEPTH[width]
        word_bits = (depth - 1).bit_length()
        rows = []
        for index in range(64):
            value = kw[f"p_INITVAL_{index:02X}"].value
            rows += [value >> (20 * slot) & 0x3FFFF for slot in range(16)]
        init = [sum((rows[r] >> b & 1) << bit for bit in range(width) for r, b in [_cell_position(width, k, bit)])
                for k in range(depth)]
        m = Module()
        m.submodules.array = array = memory.Memory(shape=width, depth=depth, init=init)
        write, read = array.write_port(), array.read_port()
        ada = Cat(*(kw[f"i_ADA{bit}"] for bit in range(14)))
        adb = Cat(*(kw[f"i_ADB{bit}"] for bit in range(14)))
        byte_enables = {36: 4, 18: 2}.get(width, 0)
        data_in = Cat(*(kw[f"i_DIA{bit}"] for bit in range(18)), *(kw[f"i_DIB{bit}"] for bit in range(18)))
        m.d.comb += [
            write.addr.eq(ada[14 - word_bits:]),
            write.data.eq(data_in[:width]),
            write.en.eq(kw["i_CEA"] & kw["i_WEA"] & (ada[:byte_enables].all() if byte_enables else 1)),
            read.addr.eq(adb[14 - word_bits:]),
            read.en.eq(kw["i_CEB"]),
        ]
        assert kw["i_WEB"].value == 0 and kw["i_RSTA"].value == 0 and kw["i_RSTB"].value == 0
        data_out = read.data
        if kw["p_REGMODE_B"] == "OUTREG":
            data_out = Signal(width)
            with m.If(kw["i_OCEB"]):
                m.d.sync += data_out.eq(read.data)
        outputs = [kw[f"o_DOA{bit}"] for bit in range(18)] + [kw[f"o_DOB{bit}"] for bit in range(18)]
        if width != 36:
            outputs = outputs[18:]
        m.d.comb += [port.eq(data_out[bit]) for bit, port in enumerate(outputs[:width])]
        return m


class _ModelledBlockRAM(BlockRAM):
    """BlockRAM's ECP5 construction (tiles, row decode, registered row select) around modelled DP16KDs."""

    def _dp16kd(self, **kwargs):
        return _DP16KDModel(kwargs)

    def elaborate(self, platform):
        return self._elaborate_dp16kd()


@pytest.mark.parametrize("output_register", [False, True])
@pytest.mark.parametrize("depth, width", [(1024, 18), (300, 40), (2100, 20), (4096, 49), (5000, 3)])
def test_block_ram_ecp5_construction_against_reference(output_register, depth, width):
    rng = random.Random(depth + width + output_register)
    init = [rng.getrandbits(width) for _ in range(depth)]
    dut = _ModelledBlockRAM(shape=unsigned(width), depth=depth, init=init, output_register=output_register)
    _check_random_traffic(dut, init, rng, collisions=False)


class _MULT18X18DModel(Elaboratable):
    """The MULT18X18D as docs/hard_blocks.md describes it, with every register on CLK0/CE0: the
    ports read as two's complement when SIGNEDA/SIGNEDB are high, P the 36-bit product."""

    def __init__(self, kwargs):
        self.kwargs = kwargs

    def elaborate(self, platform):
        kw = self.kwargs
        assert all(kw[f"p_REG_{register}_CLK"] == "CLK0" and kw[f"p_REG_{register}_CE"] == "CE0"
                   for register in ("INPUTA", "INPUTB", "PIPELINE", "OUTPUT"))
        m = Module()
        operands = []
        for port in "AB":
            bits = Cat(*(kw[f"i_{port}{bit}"] for bit in range(18)))
            operand = Signal(signed(19), name=f"{port.lower()}_input")
            signed_port = kw[f"i_SIGNED{port}"].value
            with m.If(kw["i_CE0"]):
                m.d.sync += operand.eq(bits.as_signed() if signed_port else bits)
            operands.append(operand)
        pipeline, output = Signal(signed(38)), Signal(signed(38))
        with m.If(kw["i_CE0"]):
            m.d.sync += [pipeline.eq(operands[0] * operands[1]), output.eq(pipeline)]
        m.d.comb += [kw[f"o_P{bit}"].eq(output[bit]) for bit in range(36)]
        return m


class _ModelledMultiplier(Multiplier):
    """Multiplier's ECP5 wiring (operand extension, SIGNEDA/B, product slice) around a modelled MULT18X18D."""

    def _mult18x18d(self, **kwargs):
        return _MULT18X18DModel(kwargs)

    def elaborate(self, platform):
        return super().elaborate(ECP5)


@pytest.mark.parametrize("a_shape, b_shape", [
    (signed(18), signed(18)), (unsigned(18), unsigned(18)), (unsigned(17), signed(18)), (signed(9), unsigned(5)),
])
def test_multiplier_ecp5_wiring_against_products(a_shape, b_shape):
    rng = random.Random(a_shape.width * 7 + b_shape.width)
    pairs = [(a, b) for a in _operand_corners(a_shape) for b in _operand_corners(b_shape)]
    pairs += [(_draw(rng, a_shape), _draw(rng, b_shape)) for _ in range(100)]
    _check_products(_ModelledMultiplier(a_shape, b_shape), pairs, stall_rng=random.Random(3))
