"""Synapse stage of one layer: weight columns in block RAM, per-neuron accumulators, lanes.

Mirrors ``acc = bias_q + W_q @ x; current_q = sat(input_fmt, round_shift(acc * row_scale_q,
shift))`` of :func:`golden.network.run_network` (:meth:`golden.network.LayerParams.current`):
every input event (or spike) ``j`` adds the weight column ``W_q[:, j]`` to the accumulators, so a
count of ``c`` is ``c`` adds, which equals ``W_q @ x`` exactly because the accumulator cannot
overflow (:attr:`golden.network.LayerParams.acc_bits` is sized for the declared event bound).
The per-row scale (one multiply per neuron per step) and the shift
(:attr:`~golden.network.LayerParams.current_shift`, through :func:`golden.fixed.round_shift`
itself) are applied when a step's sums drain.

A core that takes several sums per neuron (the ``D`` dendritic branches of DH-LIF) names them
and their input slices (:meth:`hw.cores.neuron_core.NeuronCore.branch_inputs`); the stage then
keeps one accumulator per neuron and branch, and an event adds its weight to its input's branch
only, which is :func:`golden.dhlif._run_layer`'s ``sum_{j in slice d} W[h, j] x_j``.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.fit import weight_bank_depth
from golden.fixed import round_shift
from golden.network import LayerParams
from hw.arith import (COUNTER_WIDTH, SELECT_WAYS, all_of, any_of, count_saturating, index_bits, pipelined_tree_select,
                      saturate, select_stages, sum_shifted, times_constant)
from hw.ecp5 import Multiplier, registered_partial_products
from hw.memories import parameter_banks, parameter_memory, state_memory

__all__ = ["bank_select_stages", "drain_extra_stages", "synapse_command_layout", "weight_bank_depth", "SynapseStage",
           "input_branch"]


def drain_extra_stages(scaled: bool, shift: int) -> int:
    """Drain stages of a synapse stage beyond the read of the accumulator and bias words: a
    register of ``acc + bias`` (1); with a per-row scale the :class:`~hw.ecp5.Multiplier`
    pipeline and a register of the summed partial products (4 more); with a right shift
    (``shift > 0``) a register of the rounded shift (1 more). The saturation then takes a
    register to a register: 1, 2, 5 or 6."""
    return 1 + (Multiplier.latency + 1 if scaled else 0) + (1 if shift > 0 else 0)


def bank_select_stages(layer: LayerParams, lanes: int) -> int:
    """Cycles a synapse stage's weight-bank select adds to an event row's accumulate and to the
    wait of a close behind an event: 0 for up to SELECT_WAYS (4) banks; beyond that two (the
    banks' per-group address registers, and a fabric register behind each bank's output) plus
    the select's registered levels before its last (:func:`hw.arith.select_stages`): 3 up to
    16 banks, 4 up to 64, 5 up to 256."""
    words = layer.n_in * -(-layer.n_out // lanes)
    banks = -(-words // weight_bank_depth(words, lanes * layer.weight_fmt.width))
    return select_stages(banks) + (2 if banks > SELECT_WAYS else 0)


def synapse_command_layout(n_in: int) -> data.StructLayout:
    """Payload of a layer's command stream.

    ``close = 0``: an event (or spike) on input ``index``. ``close = 1``: the step ends (``index``
    is ignored); ``last`` marks the close of the sample's final step.
    """
    return data.StructLayout(
        {"close": unsigned(1), "last": unsigned(1), "index": unsigned(index_bits(n_in))}
    )


def input_branch(index, slices):
    """The branch (position in ``slices``, disjoint contiguous input slices in order) of input
    ``index``: the count of later slices whose start it has reached (constant compares and adds)."""
    return sum((index >= s.start for s in slices[1:]), Const(0, range(len(slices))))


class SynapseStage(wiring.Component):
    """Fan each input event out over its weight column into ``lanes`` accumulators per cycle.

    Neuron ``i`` of the layer is lane ``i % lanes``, row ``i // lanes``; there are
    ``rows = ceil(n_out / lanes)`` rows. The weight memory holds one word of ``lanes`` weights
    per (input, row), column-major (address ``j * rows + row``); the accumulator memory holds one
    word of ``lanes`` signed ``acc_bits`` accumulators per row and starts at zero.

    * **Event** (``close = 0``): ``rows`` cycles, one read-modify-write of a row per cycle
      (the next event is accepted in the cycle the last row issues, so back-to-back events
      cost exactly ``rows`` cycles each). The weight memory is split into banks of one block
      RAM depth each (:func:`weight_bank_depth`); every bank's read data is registered in its
      block RAM's output register (``hw.memories``, ``output_register=True``), then the bank is
      selected in levels of at most ``SELECT_WAYS`` (4) banks, each level into a fabric register
      (:func:`hw.arith.pipelined_tree_select`). With more than 4 banks each group of 4 also
      reads from an address register of its own, a cycle after the row issues, so no net
      reaches every bank, and each bank's word passes a fabric register of its own before the
      select. ``S =`` :attr:`select_stages` cycles (0 for up to 4 banks, 3 up to 16, 4 up to
      64) delay the weights, and the accumulator row is read ``S`` cycles after the row
      issues (with the weights where ``S = 0``), through its own output register and then a
      fabric register, so both words meet in the adder and the route out of the block RAM
      ends in a register. A row's sum is formed from registers, registered in fabric (so no
      path runs from the block RAM's output through the adder back into its input) and
      written four cycles after its accumulator read; a read one to four cycles too early for
      the previous sum of its row takes that sum forwarded (the read port is not transparent:
      its data goes straight from the block RAM into its output register; a read at the edge
      of the write is undefined and discarded).
    * **Close** (``close = 1``, accepted only while :attr:`close_allowed` is high and no event
      row is in flight, up to ``4 + S`` cycles after the last row issued): every row is read,
      ``sat(input_fmt, round_shift((acc + bias) * scale, shift))`` (counted) is offered on the
      lane outputs, and the row is cleared to zero. One row per cycle while the lane outputs are
      ready. :attr:`closed` pulses for one cycle when the close is accepted and :attr:`last`
      holds the accepted command's ``last`` flag. The drain's extra stages
      (:attr:`drain_extra_stages`): a register of ``acc + bias``; for a scaled layer then the
      :class:`~hw.ecp5.Multiplier` pipeline (3; per lane ``ceil(acc_bits / 18)`` MULT18X18D,
      the sum cut into 18-bit slices beside the unsigned scale) and a register of the summed
      partial products; for a right shift then a register of the rounded shift (a left shift
      is wiring): 1, 2, 5 or 6 stages, so the saturation's compares always start from a
      register. The scale ROM holds one word of ``lanes`` scales per row, read with the bias.
    * **Branches** (``branches`` given): each accumulator word holds ``D`` sums per lane
      (branch ``d`` of lane ``l`` at ``l * D + d``); an event on input ``j`` adds its weight to
      the sum of the branch whose input slice holds ``j`` (the others add 0), with the same
      cycles. A close offers every sum of a row in one lane beat, each clamped to the branch
      format (no bias, no scale, no shift: the layer's weights carry the core's fractional
      bits); a beat whose clamp acted on any branch counts once.

    Parameters
    ----------
    layer : LayerParams
        Weights, biases, formats and ``acc_bits`` (set by :class:`golden.network.NetworkParams`).
    lanes : int
        Accumulators updated per cycle, and the number of lane output streams (>= 1).
    branches : dict of str to (slice, QFormat), optional
        Output field -> its input slice and clamp format, one per branch (the core's
        :meth:`~hw.cores.neuron_core.NeuronCore.branch_inputs`); the slices are disjoint,
        contiguous and in input order. Left out: one ``current`` per neuron, as above.

    Members
    -------
    i : ``In(stream.Signature(synapse_command_layout(n_in)))``
        Events and step closes, in order. Never accepts a command while a close is draining.
    o_current : ``Out(stream.Signature({neuron: row index, current: input_fmt})).array(lanes)``
        Per lane, one beat per row that holds a neuron of that lane, in row order; ``neuron`` is
        the row (the lane core's local index: global neuron ``row * lanes + lane``). With
        ``branches``: ``{neuron, <one field per branch in its format>}``.
    close_allowed : ``In(1)``
        The layer downstream finished the previous step; a close waits for it.
    closed : ``Out(1)``
        High in the cycle a close command is accepted.
    last : ``Out(1)``
        ``last`` flag of the most recently accepted close.
    draining : ``Out(1)``
        High from a close's acceptance until its last row has been offered and taken.
    saturation_count : ``Out(32)``
        Lane beats whose clamp changed a value; sticks at ``2**32 - 1``.

    Timing
    ------
    Event: ``rows`` cycles per event; a row's sum is written ``5 + S`` cycles after the row
    issues (``S =`` :attr:`select_stages`). Close: ``rows + 3 + drain_extra_stages``
    cycles from acceptance to the last row's beats being valid when every lane output is ready; a
    lane output that stalls stops every lane (the rows move together). A close waits for the
    last event's rows: up to ``4 + S`` cycles after its last row issued.
    """

    def __init__(self, layer: LayerParams, *, lanes: int = 1, branches: dict | None = None):
        if not isinstance(layer, LayerParams):
            raise TypeError(f"layer must be a golden.network.LayerParams, not {type(layer).__name__}")
        if not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"lanes must be a positive int, not {lanes!r}")
        if layer.acc_bits is None:
            raise ValueError("layer.acc_bits is unset: build the layer inside a golden.network.NetworkParams")
        self._layer = layer
        self._lanes = lanes
        self._branched = branches is not None
        if branches is None:
            self._fields = {"current": layer.neuron.input_fmt}
            self._slices = (slice(0, layer.n_in),)
            self._scaled, self._shift = layer.scaled, layer.current_shift
        else:
            self._fields = {name: fmt for name, (_, fmt) in branches.items()}
            self._slices = tuple(sl for sl, _ in branches.values())
            bounds = [0] + [sl.stop for sl in self._slices]
            if not self._slices or [sl.start for sl in self._slices] != bounds[:-1] or bounds[-1] != layer.n_in \
                    or any(sl.stop <= sl.start for sl in self._slices):
                raise ValueError(f"branches must be non-empty, contiguous input slices in order covering the "
                                 f"layer's {layer.n_in} inputs, not {list(self._slices)}")
            if layer.scaled or np.any(layer.bias_q):
                raise ValueError("a layer with branches has no bias and no row scale")
            self._scaled, self._shift = False, 0
        self._command_layout = synapse_command_layout(layer.n_in)
        self._current_layout = data.StructLayout(
            {"neuron": unsigned(self.row_bits), **{name: fmt.shape() for name, fmt in self._fields.items()}}
        )
        super().__init__({
            "i": In(stream.Signature(self._command_layout)),
            "o_current": Out(stream.Signature(self._current_layout)).array(lanes),
            "close_allowed": In(1),
            "closed": Out(1),
            "last": Out(1),
            "draining": Out(1),
            "saturation_count": Out(COUNTER_WIDTH),
        })

    # --- derived facts --------------------------------------------------------------------
    @property
    def layer(self) -> LayerParams:
        return self._layer

    @property
    def lanes(self) -> int:
        return self._lanes

    @property
    def rows(self) -> int:
        """Accumulator words: ``ceil(n_out / lanes)``; also the cycles one event costs."""
        return -(-self._layer.n_out // self._lanes)

    @property
    def branches(self) -> int:
        """Sums per neuron (``D``; 1 without ``branches``)."""
        return len(self._slices)

    @property
    def drain_extra_stages(self) -> int:
        """Drain stages beyond the read of the accumulator and bias words (:func:`drain_extra_stages`)."""
        return drain_extra_stages(self._scaled, self._shift)

    @property
    def select_stages(self) -> int:
        """Cycles the weight-bank select adds to the accumulate (:func:`bank_select_stages`)."""
        return bank_select_stages(self._layer, self._lanes)

    @property
    def row_bits(self) -> int:
        return index_bits(self.rows)

    @property
    def command_layout(self) -> data.StructLayout:
        return self._command_layout

    @property
    def current_layout(self) -> data.StructLayout:
        """Payload of each lane output: ``{neuron, current}`` or ``{neuron, <branch fields>}``."""
        return self._current_layout

    def lane_neurons(self, lane: int) -> int:
        """Neurons of lane ``lane``: ``#{i < n_out : i % lanes == lane}``."""
        return len(range(lane, self._layer.n_out, self._lanes))

    def weight_words(self) -> list[list[int]]:
        """Initial weight memory: word ``j * rows + row`` holds ``W[row*lanes + lane, j]`` per lane."""
        w = self._layer.weight_q
        words = []
        for j in range(self._layer.n_in):
            for row in range(self.rows):
                words.append([int(w[i, j]) if (i := row * self._lanes + lane) < self._layer.n_out else 0
                              for lane in range(self._lanes)])
        return words

    def bias_words(self) -> list[list[int]]:
        return self._row_words(self._layer.bias_q)

    def row_scale_words(self) -> list[list[int]]:
        """Initial scale memory of a scaled layer: word ``row`` holds ``row_scale_q[row*lanes + lane]``."""
        return self._row_words(self._layer.row_scale_q)

    def _row_words(self, values) -> list[list[int]]:
        return [[int(values[i]) if (i := row * self._lanes + lane) < self._layer.n_out else 0
                 for lane in range(self._lanes)] for row in range(self.rows)]

    # --- hardware -------------------------------------------------------------------------
    def elaborate(self, platform):
        layer, lanes, rows, n_branches = self._layer, self._lanes, self.rows, self.branches
        m = Module()
        acc_shape = signed(layer.acc_bits)

        weight_layout = data.ArrayLayout(layer.weight_fmt.shape(), lanes)
        # One accumulator per lane and branch: branch d of lane l at l * n_branches + d.
        sums = lanes * n_branches
        acc_layout = data.ArrayLayout(acc_shape, sums)
        bias_layout = data.ArrayLayout(layer.bias_fmt.shape(), lanes)
        weight_words = self.weight_words()
        bank_depth = weight_bank_depth(len(weight_words), weight_layout.size)
        # Every memory's read data are registered twice, the second time in the block RAM's own
        # output register (hw.memories, output_register=True): nothing sits on the slow block
        # RAM output path. The weights (after their select) and the accumulator word enter a
        # fabric register before the adder, so no route out of a block RAM ends in the adder.
        weight_banks = parameter_banks(m, "weight_bank", shape=weight_layout, init=weight_words,
                                       bank_depth=bank_depth, output_register=True)
        acc_rd, acc_wr = state_memory(m, "acc_mem", shape=acc_layout, depth=rows, output_register=True)
        if not self._branched:
            bias_rd = parameter_memory(m, "bias_mem", shape=bias_layout, init=self.bias_words(), output_register=True)

        last_row = rows - 1
        # Accumulate: `busy` while rows of the latched event are being issued; the weight read
        # of a row is issued with it (stage 0; stage 1 from the banks' own address registers
        # where there are more than SELECT_WAYS banks), its bank selected in the levels of
        # hw.arith.pipelined_tree_select into `weight_in`, the accumulator read issued in stage
        # `read` (stage 0, with the weight read, where the select adds no stage), its
        # word registered in fabric (`acc_in`) in stage `read + 3`, the sum formed there,
        # registered and written back in stage `write` (`read + 4`).
        busy = Signal()
        # The row wraps to 0 after an event's last row and waits there, so an accept need not
        # load it: `row` and `issuing_last_row` (registered `row == last_row`, no row compare on
        # `ready`) change only while `busy`, and the accept's fan-out stays off them (timing).
        row = Signal(range(rows))
        issuing_last_row = Signal(init=last_row == 0)
        weight_addr = Signal(range(max(2, len(weight_words))))
        bank_bits = (bank_depth - 1).bit_length()
        n_banks = len(weight_banks)
        issue = 1 if n_banks > SELECT_WAYS else 0
        if issue:
            # Each group of SELECT_WAYS banks (the select's first-level groups) reads from an
            # address register of its own, loaded with the address where the address is in the
            # group and with 0 elsewhere: registers that differ, so Yosys keeps one per group
            # (it merges equal flip-flops, `keep` or not) and no address net reaches every bank.
            group_bits = SELECT_WAYS.bit_length() - 1
            group_addr = [Signal(bank_bits, reset_less=True, name=f"weight_addr_{g}")
                          for g in range(-(-n_banks // SELECT_WAYS))]
            m.d.sync += [own.eq(Mux((weight_addr >> (bank_bits + group_bits)) == g, weight_addr[:bank_bits], 0))
                         for g, own in enumerate(group_addr)]
            bank_addr = [group_addr[k // SELECT_WAYS] for k in range(n_banks)]
        else:
            bank_addr = [weight_addr[:bank_bits]] * n_banks
        # Beyond SELECT_WAYS banks each bank's word also passes a fabric register of its own
        # (`weight_word_k`) before the select: banks spread over the device, and the route from
        # a far bank to its select group is a cycle of its own.
        landing = issue
        # The read's bank, one stage per stage until a cycle before its data (the select's index
        # leads its values by one cycle).
        bank = [weight_addr >> bank_bits] + [Signal(range(max(2, n_banks)), name=f"bank_{k}")
                                             for k in range(1, issue + landing + 2)]
        m.d.sync += [later.eq(earlier) for earlier, later in zip(bank, bank[1:])]
        # Stage `issue + 2`: every bank's read data leave its block RAM's output register (an
        # unregistered DP16KD output costs ~5.6 ns, so nothing else sits on that path), into its
        # fabric register where there is one, and enter the bank select, SELECT_WAYS banks per
        # registered level; its last level is registered in `weight_in`, `select_latency + 1`
        # cycles later.
        words = [port.data for port in weight_banks]
        if landing:
            landed = [Signal.like(word, reset_less=True, name=f"weight_word_{k}") for k, word in enumerate(words)]
            m.d.sync += [register.eq(word) for register, word in zip(landed, words)]
            words = landed
        selected, select_latency = pipelined_tree_select(m, bank[-1], words, ways=SELECT_WAYS, name="weight_select")
        selected = data.View(weight_layout, selected)
        read = issue + landing + select_latency
        write = read + 4
        stages = write + 3
        valid = [busy] + [Signal(name=f"add{k}_valid") for k in range(1, stages)]
        at_row = [row] + [Signal(range(rows), name=f"add{k}_row") for k in range(1, stages)]
        weight_in = Signal(data.ArrayLayout(layer.weight_fmt.shape(), sums))
        add_sum = Signal(acc_layout)
        last_sum = Signal(acc_layout)
        older_sum = Signal(acc_layout)
        oldest_sum = Signal(acc_layout)
        acc_in = Signal(acc_layout)
        # Drain: `draining` from an accepted close until its last row has been taken.
        issuing = Signal()
        drain_row = Signal(range(rows))
        read_valid = Signal()
        read_row = Signal(range(rows))
        sum_valid = Signal()
        sum_row = Signal(range(rows))
        pending = Signal(lanes)
        out_row = Signal(range(rows))
        out_words = Signal(data.ArrayLayout(data.StructLayout(
            {name: fmt.shape() for name, fmt in self._fields.items()}), lanes))
        advance = Signal()

        command = self.i.payload
        idle_for_event = ~busy | issuing_last_row
        event_in_flight = any_of(valid[:write + 1])
        m.d.comb += self.i.ready.eq(
            ~self.draining & Mux(command.close, ~event_in_flight & self.close_allowed, idle_for_event)
        )
        accept = self.i.valid & self.i.ready
        # An event's accept, written without the close's terms (the in-flight OR stays off the
        # event path's registers: timing).
        accept_event = self.i.valid & ~command.close & ~self.draining & idle_for_event
        m.d.comb += self.closed.eq(accept & command.close)

        # Event path: issue one row per cycle from registers.
        # With branches, the event's branch rides along its rows (stages 0 .. the select's last level).
        branch = ([Signal(range(n_branches), name=f"branch_{k}") for k in range(3 + read)]
                  if n_branches > 1 else None)
        with m.If(busy):
            m.d.sync += [row.eq(Mux(issuing_last_row, 0, row + 1)),
                         issuing_last_row.eq(Mux(issuing_last_row, last_row == 0, row == last_row - 1))]
        with m.If(accept_event):
            m.d.sync += [busy.eq(1), weight_addr.eq(times_constant(command.index, rows))]
            if branch:
                m.d.sync += branch[0].eq(input_branch(command.index, self._slices))
        with m.Elif(busy):
            with m.If(issuing_last_row):
                m.d.sync += busy.eq(0)
            with m.Else():
                m.d.sync += weight_addr.eq(weight_addr + 1)
        # The accumulator word, read in stage `read`, leaves its output register in stage
        # `read + 2` into a fabric register (`acc_in`, stage `read + 3`, with the selected
        # weights): the route out of the block RAM ends in a register, and every operand of
        # the adder is a register. The sum is registered (`last_sum`, stage `write`) and
        # written from that register, so the block RAM's output and input are never on one
        # path. The write of a row lands four cycles after its accumulator read, so a read
        # issued one to four cycles after a read of the same row misses that write (or, issued
        # at the edge of the write, reads an undefined word): the newest such sum is forwarded.
        m.d.sync += [valid[k].eq(valid[k - 1]) for k in range(1, stages)]
        m.d.sync += [at_row[k].eq(at_row[k - 1]) for k in range(1, stages)]
        m.d.sync += [acc_in.eq(acc_rd.data), last_sum.eq(add_sum), older_sum.eq(last_sum), oldest_sum.eq(older_sum)]
        if branch:
            m.d.sync += [later.eq(earlier) for earlier, later in zip(branch, branch[1:])]
        # The selected weights, each into its event's branch (0 into the others).
        for lane in range(lanes):
            for d in range(n_branches):
                weight = Mux(branch[-1] == d, selected[lane], 0) if branch else selected[lane]
                m.d.sync += weight_in[lane * n_branches + d].eq(weight)
        # The banks read every cycle: no event is in flight while a close drains.
        for port, addr in zip(weight_banks, bank_addr):
            m.d.comb += [port.addr.eq(addr), port.en.eq(1)]
        # Forwarding is decided and its sum chosen a stage early, in stage `read + 2` (the row
        # compares stay off the adder's path): the sum being formed now (one row ahead), the
        # one being written (two rows ahead, `last_sum`), or the one written one or two cycles
        # before (three and four rows ahead, `older_sum` and `oldest_sum`), the newest first.
        # The row compares themselves are registered a stage earlier still, in stage `read + 1`
        # against the rows one stage behind (the stages move every cycle), so only their
        # registered hits select the sum.
        forward = Signal()
        forward_sum = Signal(acc_layout)
        ahead = [Signal(name=f"forward_hit_{k}") for k in (3, 4, 5, 6)]
        m.d.sync += [hit.eq(valid[read + k - 1] & (at_row[read + k - 1] == at_row[read + 1]))
                     for hit, k in zip(ahead, (3, 4, 5, 6))]
        chosen = oldest_sum
        for hit, newer in reversed(list(zip(ahead, (add_sum, last_sum, older_sum)))):
            chosen = Mux(hit, newer, chosen)
        m.d.sync += [forward.eq(any_of(ahead)), forward_sum.eq(chosen)]
        for k in range(sums):
            m.d.comb += add_sum[k].eq(Mux(forward, forward_sum[k], acc_in[k]) + weight_in[k])

        # Drain path, moving as a whole when every pending lane beat is taken.
        m.d.comb += advance.eq(all_of(~pending[lane] | self.o_current[lane].ready for lane in range(lanes)))
        with m.If(self.closed):
            m.d.sync += [self.draining.eq(1), issuing.eq(1), drain_row.eq(0), self.last.eq(command.last)]
        with m.Elif(self.draining & advance):
            m.d.sync += [
                read_valid.eq(issuing), read_row.eq(drain_row),
                sum_valid.eq(read_valid), sum_row.eq(read_row),
            ]
            with m.If(issuing):
                with m.If(drain_row == last_row):
                    m.d.sync += issuing.eq(0)
                with m.Else():
                    m.d.sync += drain_row.eq(drain_row + 1)

        # Memory ports: the accumulate path owns them outside a drain (plain expressions, no comb
        # processes, so Verilog simulators know them from time 0).
        draining = self.draining
        m.d.comb += [
            acc_rd.addr.eq(Mux(draining, drain_row, at_row[read])),
            acc_rd.en.eq(~draining | advance),
            acc_wr.addr.eq(Mux(draining, read_row, at_row[write])),
            acc_wr.en.eq(Mux(draining, read_valid & advance, valid[write])),
            acc_wr.data.eq(Mux(draining, 0, last_sum)),
        ]

        # Drain: from the memories' output registers, (acc + bias) per lane (a branched layer: its
        # sums as they are), then the extra stages (drain_extra_stages), every register loaded
        # with the drain's advance.
        step = self.draining & advance
        acc_word = acc_rd.data
        if self._branched:
            values = None
        else:
            m.d.comb += [bias_rd.addr.eq(drain_row), bias_rd.en.eq(step)]
            values = [acc_rd.data[lane] + bias_rd.data[lane] for lane in range(lanes)]
        stage_valid, stage_row, stage_valids = sum_valid, sum_row, [read_valid, sum_valid]

        def next_stage(name):
            valid, at_row = Signal(name=f"{name}_valid"), Signal(range(rows), name=f"{name}_row")
            with m.If(step):
                m.d.sync += [valid.eq(stage_valid), at_row.eq(stage_row)]
            stage_valids.append(valid)
            return valid, at_row

        def registered(name, shape, words):
            regs = [Signal(shape, name=f"{name}_{lane}") for lane in range(lanes)]
            with m.If(step):
                m.d.sync += [reg.eq(word) for reg, word in zip(regs, words)]
            return regs

        shift = self._shift
        if not self._branched:
            # acc + bias fits acc_bits (NetworkParams sizes it for the biased sum); registered, so
            # the adder's carry chain and the saturation's compares are never in one cycle.
            values = registered("biased_sum", acc_shape, values)
            if self._scaled:
                scale_rd = parameter_memory(m, "row_scale_mem", shape=data.ArrayLayout(layer.row_scale_fmt.shape(), lanes),
                                            init=self.row_scale_words(), output_register=True)
                m.d.comb += [scale_rd.addr.eq(drain_row), scale_rd.en.eq(step)]
                scales = registered("row_scale", layer.row_scale_fmt.shape(), [scale_rd.data[lane] for lane in range(lanes)])
            stage_valid, stage_row = next_stage("biased")
        if self._scaled:
            parts = [registered_partial_products(m, f"row_scale_mult_{lane}", scales[lane], values[lane], en=step)
                     for lane in range(lanes)]
            for k in range(Multiplier.latency):
                stage_valid, stage_row = next_stage(f"scale_{k}")
            values = registered("scaled_sum", signed(layer.scaled_bits), [sum_shifted(p) for p in parts])
            stage_valid, stage_row = next_stage("scaled")
        if not self._branched:
            values = [round_shift(value, shift) for value in values]  # a left shift is wiring
            if shift > 0:
                # The rounding adder of a right shift in a stage of its own, before the saturation.
                values = registered("shifted_sum", values[0].shape(), values)
                stage_valid, stage_row = next_stage("shifted")
        with m.If(step & ~issuing & ~any_of(stage_valids)):
            m.d.sync += self.draining.eq(0)

        clamped = []
        for lane in range(lanes):
            if self._branched:
                lane_values = [acc_word[lane * n_branches + d] for d in range(n_branches)]
            else:
                lane_values = [values[lane]]
            words = [saturate(value, fmt) for value, fmt in zip(lane_values, self._fields.values())]
            present = Signal(name=f"present_{lane}")
            m.d.comb += present.eq((stage_row * lanes + lane) < layer.n_out)
            clamped.append(any_of(clamp for _, clamp in words) & present)
            with m.If(self.draining & advance):
                m.d.sync += [out_words[lane][name].eq(value) for name, (value, _) in zip(self._fields, words)]
                m.d.sync += pending[lane].eq(stage_valid & present)
            with m.Elif(self.o_current[lane].ready):
                m.d.sync += pending[lane].eq(0)
            m.d.comb += [
                self.o_current[lane].valid.eq(pending[lane]),
                self.o_current[lane].payload.neuron.eq(out_row),
                *(self.o_current[lane].payload[name].eq(out_words[lane][name]) for name in self._fields),
            ]
        with m.If(self.draining & advance):
            m.d.sync += out_row.eq(stage_row)

        # Saturation counter from registered clamp flags (off the drain's timing path).
        clamped_row = Signal(lanes)
        m.d.sync += clamped_row.eq(Mux(self.draining & advance & stage_valid, Cat(*clamped), 0))
        n_clamped = sum((clamped_row[lane] for lane in range(lanes)), Const(0, range(lanes + 1)))
        count_saturating(m, self.saturation_count, n_clamped, when=clamped_row.any())
        return m
