"""Event-driven SA-HiPPO cores (FLAMES, NEURON_MATH §3.2, docs/decisions.md).

The hardware mirror of :meth:`golden.sahippo.SAHiPPOParams.event`; the golden model's
docstring is the specification, this module only schedules it. Each event looks up its
channel's last update time and turns the clipped interval into a table row (a front end both
cores share). :class:`SAHiPPOCore` (``zoh``) then streams the channel's ``N/2`` complex modes
through one pipelined datapath, one mode per clock; :class:`SAHiPPOTaylor2Core` (``taylor2``)
runs the sub-stepped Taylor step in four sequential passes over the modes per sub-step. Both
emit ``y`` and the soma's spike once the last mode has passed. :func:`sahippo_core` picks the
core for a layer's method.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.fixed import round_shift
from golden.sahippo import NEURON_KIND, SAHiPPOParams
from hw.arith import (
    COUNTER_WIDTH,
    MULTIPLIER_PORT_BITS,
    count_saturating,
    index_bits,
    operand_parts,
    saturate,
    sum_shifted,
    times_constant,
)
from hw.cores.neuron_core import stage_registers, write_back
from hw.ecp5.multiplier import Multiplier, registered_product
from hw.memories import parameter_banks, parameter_memory, state_memory

__all__ = ["SAHiPPOCore", "SAHiPPOTaylor2Core", "sahippo_core"]

#: Words of one decay-table bank: one DP16KD at 36 bits.
_DECAY_BANK_WORDS = 512
#: Pipeline stage of each digit's table word (bank words at 2, pairs of banks at 3).
_FACTOR_STAGE = 4
#: Pipeline stages of one decay composition step: the products (:attr:`Multiplier.latency`),
#: their sums, then the sums rounded.
_COMPOSE_STAGES = Multiplier.latency + 2
#: Distances (stages) from a mode's state read to an update of the same word ahead of it whose
#: new value it takes forwarded (:attr:`SAHiPPOCore.hazard_stages` + 1 .. the write-back's).
_FORWARD_DISTANCES = (10, 11, 12)


class SAHiPPOCore(wiring.Component):
    """``params.n_channels`` SA-HiPPO channels of order ``N``, updated event by event (``zoh``).

    Per accepted event ``(channel h, tick t, weight w)``, with ``Fd``, ``Fc``, ``Fin``, ``Fs``,
    ``Foc``, ``Fout`` the fractional bits of ``decay_fmt``, ``coef_fmt``, ``input_fmt``,
    ``state_fmt``, ``out_coef_fmt`` and ``out_fmt`` (exactly :class:`golden.sahippo.SAHiPPOParams`)::

        dt   = min(t - t_last[h], dt_max);  t_last[h] = t                 # both start at 0
        d_n  = D_k0[g_k0, n];  d_n = rnd(d_n * D_k[g_k, n], Fd) for each later non-zero digit
        z_n  = sat(rnd(d_n * z_n, Fd))   unless g_q[h, dt] = 0             # four products each
        z_n  = sat(z_n + rnd(B_n * w, Fc + Fin - Fs))                        # input jump (decision 'Event input')
        y    = sat(rnd(2 sum_n (Cre_hn zre_n - Cim_hn zim_n) + (D_h w << (Fs - Fin)), Foc + Fs - Fout))
        spike = y > threshold_h                                               # strict

    ``rnd`` rounds half up once on the full-width sum; ``sat`` clamps to ``state_fmt`` /
    ``out_fmt`` (decision 'Saturation'); ``g_k`` are the ``decay_digit_bits``-bit digits of
    ``g_q[h, dt]`` and ``D_k`` the digit tables ``decay_q[k]`` (decision 'Composed decay tables').
    The tables live in block RAM: ``t_last`` (H words), ``g_q`` addressed
    ``h * (dt_max + 1) + dt``, one decay table per digit addressed ``(g_k, n)`` and holding
    :attr:`golden.sahippo.SAHiPPOParams.decay_rows` rows (shared by every channel), the modes
    ``z`` addressed ``(h, n)``, ``C`` per ``(h, n)``, ``B`` per ``n``, ``D`` and the threshold
    per ``h``. The mode index takes ``ceil(log2(N/2))`` address bits, so for ``N/2``
    not a power of two the tables keep unused words. State memories start at zero; the
    domain reset clears the pipeline and the counters, not the memories.

    Ticks must not decrease (per core, as in :func:`golden.sahippo.run_int`) and must fit
    ``tick_bits``; an event whose tick is below its channel's last update time is dropped
    (no output, no state change) and counted in :attr:`backwards_count`. An event whose
    interval ``t - t_last[h]`` exceeds ``dt_max`` is clipped and counted in
    :attr:`clipped_count` (the golden layer's ``clipped_interval``).

    Parameters
    ----------
    params : SAHiPPOParams
        A ``zoh`` layer (a ``taylor2`` layer raises ``ValueError``: see :class:`SAHiPPOTaylor2Core`)
        with a ``decay_fmt`` of at most 18 bits (one multiplier port).
    tick_bits : int
        Width of the event tick (default 32).
    emit_state : bool
        Add :attr:`o_state`, one beat per updated mode (verification and debugging).
    clearable : bool
        Add :attr:`clear`, through which a parent zeroes the state between samples.

    Members
    -------
    i_event : ``In(stream.Signature(event_layout))``
        ``{channel, tick: unsigned(tick_bits), weight: input_fmt}``.
    o_output : ``Out(stream.Signature(output_layout))``
        ``{channel, dt: unsigned, y: out_fmt, spike, saturated}``, one beat per event in input
        order; ``dt`` is the clipped interval, ``saturated`` says a clamp acted in the event.
    o_state : ``Out(stream.Signature(state_layout))``
        ``{channel, mode, re: state_fmt, im: state_fmt}``, the updated modes of each event in
        mode order. Only with ``emit_state=True``.
    clear : ``In(clear_layout)``
        ``{active, channel, mode}``: in a cycle with ``active`` high, mode ``mode`` of channel
        ``channel`` and the channel's ``t_last`` are written zero instead of any update's
        write (an update's write in that cycle is lost, so raise it only while no event is in
        the core). A sweep over every ``(channel, mode)`` (``n_channels * N/2`` cycles) returns
        the core to its initial state. Only with ``clearable=True``.
    saturation_count : ``Out(32)``
        Events in which any clamp acted (as :attr:`golden.sahippo.SAHiPPOTrace.saturation_count`).
    backwards_count : ``Out(32)``
        Events dropped for a tick below their channel's last update time.
    clipped_count : ``Out(32)``
        Events whose interval exceeded ``dt_max`` (clipped to it).
    The counters stick at ``2**32 - 1``.

    Timing
    ------
    * **Throughput**: one mode per clock, so one event per ``N/2`` clocks while the outputs
      are ready (from one channel or many when ``N/2 > hazard_stages``, see below); the event
      front end (``t_last`` read through the block RAM's output register, interval registered,
      clip, table row read through its output register) takes :attr:`front_end_cycles` (7)
      clocks and overlaps the previous event's modes, so events with ``N/2 < 8`` run at one
      per 8 clocks (:attr:`cycles_per_event` = ``max(N/2, 8)``). An event dropped for a
      backwards tick holds the front end 4 clocks.
    * **Latency**: an event accepted while the core is idle gives its first ``o_state`` beat
      after ``front_end_cycles + 1 + mode_latency`` clocks and its ``o_output`` beat ``N/2 - 1``
      clocks after that (:attr:`mode_latency` = ``23 + 5 (decay_digits - 1)``: 33 with the
      three digit tables of the default formats, so 41 clocks to the first state beat).
    * **Read-after-write hazards**: a mode's state is read at stage ``r`` (:attr:`read_stage`)
      and its update written back at ``r + 12``. The sequencer does not issue a mode while the
      same ``(channel, mode)`` is in pipeline stages 1 .. :attr:`hazard_stages` (9) after issue;
      an update 10, 11 or 12 stages ahead has not reached the memory at the read (at 12 it is
      written in the read's cycle), so its new value is forwarded into stage ``r + 3``. One
      channel's same mode is therefore updated at most every ``hazard_stages + 1`` (10) clocks:
      consecutive events on one channel stall only when ``N/2 <= hazard_stages``, and for
      larger ``N/2`` neither the hazard check nor (for ``N/2 > 12``) the forwarding is built.
    * **Backpressure**: the mode pipeline moves as a whole and advances only in a cycle in
      which every pending output beat has been (or is being) accepted; the front end then
      holds one decoded event and ``i_event.ready`` drops. ``i_event.ready`` depends only on
      front-end registers (never on ``i_event.valid``); outputs' ``valid`` are registers.

    Mode pipeline (stage ``k`` holds a mode ``k`` cycles after it was issued; for ``K`` =
    ``decay_digits`` the stages ``r`` .. ``r + 22`` below run from ``r = 1 + 5 (K - 1)``)::

        0  issue mode n of the current event: address every bank of every digit table
        2  each bank's word out of its block RAM output register
        3  each pair of banks picked by one registered flag per bank (registered)
        4  the pairs ORed: each digit's word (registered); the first factor d = D_0[g_0, n]
        4 + 5j .. 8 + 5j  (j = 0 .. K - 2) d * D_(j+1): four products on MULT18X18Ds with their
           registers (3 stages), both sums (1 stage), both rounded, or d / D_(j+1) as is where
           a digit is 0 (1 stage)
        r     address z and B (the mode's read: :attr:`hazard_stages` are counted from issue)
        r+2   z and B out of their memories' output registers
        r+3   registered (z forwarded from r+12 .. r+14 where the update is in flight); the
              composed decay d meets them: every multiplier operand is a register
        r+6   decay*z (four products), B*w on MULT18X18Ds with their registers, as 18x18 partials
        r+7   partials of equal weight summed
        r+8   full-width sums
        r+9   rounding constants added, one floor shift each (or z as is when g = 0)
        r+10  clamped; C and D addressed
        r+11  + jump (exact)
        r+12  clamped: the new mode, written back; C and D out of their output registers
        r+13  C, D, z registered
        r+16  Cre zre - Cim zim, D*w on MULT18X18Ds with their registers, as 18x18 partials
        r+17  partials of equal weight summed
        r+18  full-width sums; threshold addressed
        r+19  y accumulator: D*w << (Fs-Fin) on the first mode, + 2 (Cre zre - Cim zim) per mode
        r+20  y rounded; threshold out of its output register
        r+21  y clamped; threshold registered
        r+22  output register: state beat per mode, output beat (with spike) per last mode

    A rounding constant is added in a stage of its own, after the full-width sum.
    Every product is a :class:`hw.ecp5.multiplier.Multiplier` (a MULT18X18D with its input,
    pipeline and output registers) fed from fabric registers; an operand wider than an 18-bit
    multiplier port is split into its low 17 bits (unsigned) and the signed rest, so each partial
    product is one MULT18X18D. Every memory of the mode pipeline (digit tables, ``z``, ``B``,
    ``C``, ``D``, threshold) is read through an output register.
    """

    #: The discretisation this core computes.
    method = "zoh"
    #: Pipeline stages after issue (1..hazard_stages) whose (channel, mode) the sequencer may not
    #: issue again yet (10 .. 12 stages ahead are forwarded; see the class docstring's Timing).
    hazard_stages = 9
    #: Clocks the front end needs per event (accept, t_last lookup, interval, clip, table row
    #: read through the output register, word).
    front_end_cycles = 7

    def __init__(self, params: SAHiPPOParams, *, tick_bits: int = 32, emit_state: bool = True,
                 clearable: bool = False):
        if not isinstance(params, SAHiPPOParams):
            raise TypeError(f"params must be a SAHiPPOParams, not {type(params).__name__}")
        if params.method != self.method:
            raise ValueError(
                f"{type(self).__name__} implements the {self.method!r} discretisation only; got method "
                f"{params.method!r} (use sahippo_core(params), which picks the core for the layer's method)"
            )
        if not isinstance(tick_bits, int) or not 1 <= tick_bits <= 62:
            raise ValueError(f"tick_bits must be an int in 1..62, not {tick_bits!r}")
        if tick_bits < params.dt_max.bit_length():
            raise ValueError(f"tick_bits {tick_bits} cannot hold dt_max = {params.dt_max}")
        if self.method == "zoh" and params.decay_fmt.width > MULTIPLIER_PORT_BITS:
            raise ValueError(f"decay_fmt {params.decay_fmt} is wider than one {MULTIPLIER_PORT_BITS}-bit multiplier port")
        self._params = params
        self._tick_bits = tick_bits
        self._emit_state = bool(emit_state)
        self._clearable = bool(clearable)
        channel_shape = unsigned(self.channel_bits)
        self._event_layout = data.StructLayout(
            {"channel": channel_shape, "tick": unsigned(tick_bits), "weight": params.input_fmt.shape()}
        )
        self._output_layout = data.StructLayout(
            {
                "channel": channel_shape,
                "dt": unsigned(self.dt_bits),
                "y": params.out_fmt.shape(),
                "spike": unsigned(1),
                "saturated": unsigned(1),
            }
        )
        self._state_layout = data.StructLayout(
            {
                "channel": channel_shape,
                "mode": unsigned(self.mode_bits),
                "re": params.state_fmt.shape(),
                "im": params.state_fmt.shape(),
            }
        )
        self._clear_layout = data.StructLayout(
            {"active": unsigned(1), "channel": channel_shape, "mode": unsigned(self.mode_bits)})
        members = {
            "i_event": In(stream.Signature(self._event_layout)),
            "o_output": Out(stream.Signature(self._output_layout)),
        }
        if self._emit_state:
            members["o_state"] = Out(stream.Signature(self._state_layout))
        if self._clearable:
            members["clear"] = In(self._clear_layout)
        members["saturation_count"] = Out(COUNTER_WIDTH)
        members["backwards_count"] = Out(COUNTER_WIDTH)
        members["clipped_count"] = Out(COUNTER_WIDTH)
        super().__init__(members)

    # --- derived facts --------------------------------------------------------------------
    @property
    def params(self) -> SAHiPPOParams:
        return self._params

    @property
    def emit_state(self) -> bool:
        return self._emit_state

    @property
    def clearable(self) -> bool:
        return self._clearable

    @property
    def tick_bits(self) -> int:
        return self._tick_bits

    @property
    def n_modes(self) -> int:
        return self._params.n_modes

    @property
    def channel_bits(self) -> int:
        """Width of a channel index (at least 1)."""
        return index_bits(self._params.n_channels)

    @property
    def mode_bits(self) -> int:
        """Width of a mode index (at least 1); the low address bits of every per-mode table."""
        return index_bits(self._params.n_modes)

    @property
    def dt_bits(self) -> int:
        """Width of a clipped interval ``0 .. dt_max``."""
        return self._params.dt_max.bit_length()

    @property
    def read_stage(self) -> int:
        """Pipeline stage at which a mode reads its state: three stages before its decay is
        composed, so that ``z`` meets it as a register."""
        return _FACTOR_STAGE - 3 + _COMPOSE_STAGES * (self._params.decay_digits - 1)

    @property
    def mode_latency(self) -> int:
        """Clocks from issuing a mode into the pipeline to its beat in the output register."""
        return 22 + self.read_stage

    @property
    def table_rows(self) -> int:
        """Rows of the decay table: one per channel and clipped interval."""
        return self._params.n_channels * (self._params.dt_max + 1)

    @property
    def cycles_per_event(self) -> int:
        """Steady-state clocks per event without backpressure or hazards."""
        return max(self.n_modes, self.front_end_cycles + 1)

    @property
    def event_layout(self) -> data.StructLayout:
        """Payload of :attr:`i_event`: ``{channel, tick, weight}``."""
        return self._event_layout

    @property
    def output_layout(self) -> data.StructLayout:
        """Payload of :attr:`o_output`: ``{channel, dt, y, spike, saturated}``."""
        return self._output_layout

    @property
    def state_layout(self) -> data.StructLayout:
        """Payload of :attr:`o_state`: ``{channel, mode, re, im}``."""
        return self._state_layout

    @property
    def clear_layout(self) -> data.StructLayout:
        """Shape of :attr:`clear`: ``{active, channel, mode}``."""
        return self._clear_layout

    def _write_state(self, m, state_wr, *, channel, mode, enable, re, im) -> None:
        """The modes' write port: ``(re, im)`` at ``(channel, mode)`` when ``enable`` is high, or,
        with ``clearable``, the clear's zero write (:func:`hw.cores.neuron_core.write_back`)."""
        clear = {"clear_active": self.clear.active, "clear_addr": Cat(self.clear.mode, self.clear.channel)} \
            if self._clearable else {}
        write_back(m, state_wr, addr=Cat(mode, channel), enable=enable, fields={"re": re, "im": im}, **clear)

    def _complex_layout(self, fmt) -> data.StructLayout:
        return data.StructLayout({"re": fmt.shape(), "im": fmt.shape()})

    def _mode_table(self, values, rows: int) -> list[dict]:
        """``values[row, n, (re, im)]`` laid out at address ``row << mode_bits | n``."""
        stride = 1 << self.mode_bits
        table = [{"re": 0, "im": 0} for _ in range(rows * stride)]
        for row in range(rows):
            for n in range(self.n_modes):
                table[row * stride + n] = {"re": int(values[row][n][0]), "im": int(values[row][n][1])}
        return table

    # --- hardware -------------------------------------------------------------------------
    def _front_end(self, m: Module, row_word_shape, row_words: list) -> SimpleNamespace:
        """The event front end: ``t_last`` lookup, clipped interval, table row, one row word.

        Builds the ``t_last`` memory and a per-row memory of ``row_word_shape`` holding
        ``row_words`` (row ``h * (dt_max + 1) + dt``), both block RAMs read through their output
        registers. Returns the holding register as a namespace ``full, channel, dt, word,
        weight``; the back end clears ``full`` when it takes the event (the front end only sets
        it, and only while it is clear).

        One event at a time passes the :attr:`front_end_cycles` states, each a register stage:
        ``ACCEPT`` (``t_last[h]`` read), ``LOOKUP`` (block RAM output register; the row base
        ``h * (dt_max + 1)`` from shifts and adds), ``INTERVAL`` (``t - t_last[h]`` registered
        with its borrow), ``CLIP`` (clipped at ``dt_max``, and the table row's address
        registered; or the event dropped), ``ROW`` (``t_last[h] = t`` written, from a registered
        write enable) and ``ROW_WAIT`` (table row read), ``WORD`` (word into the holding
        register). Both block RAMs' address and write-enable ports are driven by registers, not
        by the state decode or an adder. ``t_last`` is written in ``ROW`` and read again at the
        earliest in the next ``ACCEPT``, three clocks later, so back-to-back events of one
        channel need no forwarding and no read meets a write to its word.
        """
        p = self._params
        rows = self.table_rows
        dt_bits = self.dt_bits
        channel_shape, dt_shape = unsigned(self.channel_bits), unsigned(dt_bits)
        t_last_rd, t_last_wr = state_memory(m, "t_last_mem", shape=unsigned(self._tick_bits), depth=p.n_channels,
                                            output_register=True)
        row_rd = parameter_memory(m, "row_mem", shape=row_word_shape, init=row_words, output_register=True)

        # One decoded event waits in `pending_*` for the back end.
        pending_full = Signal()
        pending_channel = Signal(channel_shape)
        pending_dt = Signal(dt_shape)
        pending_word = Signal(row_word_shape)
        pending_weight = Signal(p.input_fmt.shape())

        fe_channel = Signal(channel_shape)
        fe_tick = Signal(unsigned(self._tick_bits))
        fe_weight = Signal(p.input_fmt.shape())
        fe_elapsed = Signal(signed(self._tick_bits + 1))  # t - t_last[h]; negative: a backwards tick
        fe_dt = Signal(dt_shape)
        fe_row_base = Signal(range(rows))
        fe_row_addr = Signal(range(rows))  # fe_row_base + the clipped dt

        # `ready` and the t_last read are driven outside the state cases: a plain continuous
        # assignment in the Verilog, so Icarus evaluates it at time 0 (an `always @*` process
        # whose inputs never change would leave it at X).
        accepting = Signal()
        looking_up = Signal()
        t_last_write = Signal()  # registered in CLIP: the write happens in ROW
        reading_row = Signal()
        m.d.comb += [
            self.i_event.ready.eq(accepting & ~pending_full),
            t_last_rd.addr.eq(self.i_event.payload.channel),
            t_last_rd.en.eq(accepting | looking_up),
            row_rd.addr.eq(fe_row_addr),
            row_rd.en.eq(reading_row),
        ]
        with m.FSM(name="front_end") as front_end:
            with m.State("ACCEPT"):
                with m.If(self.i_event.valid & ~pending_full):
                    m.d.sync += [
                        fe_channel.eq(self.i_event.payload.channel),
                        fe_tick.eq(self.i_event.payload.tick),
                        fe_weight.eq(self.i_event.payload.weight),
                    ]
                    m.next = "LOOKUP"
            with m.State("LOOKUP"):
                m.d.sync += fe_row_base.eq(times_constant(fe_channel, p.dt_max + 1))
                m.next = "INTERVAL"
            with m.State("INTERVAL"):
                m.d.sync += fe_elapsed.eq(fe_tick - t_last_rd.data)
                m.next = "CLIP"
            with m.State("CLIP"):
                clipped_dt = Mux(fe_elapsed > p.dt_max, p.dt_max, fe_elapsed[:dt_bits])
                m.d.sync += [fe_dt.eq(clipped_dt), fe_row_addr.eq(fe_row_base + clipped_dt)]
                with m.If(fe_elapsed < 0):
                    count_saturating(m, self.backwards_count, Const(1, 1))
                    m.next = "ACCEPT"
                with m.Else():
                    m.d.sync += t_last_write.eq(1)
                    count_saturating(m, self.clipped_count, fe_elapsed > p.dt_max)
                    m.next = "ROW"
            with m.State("ROW"):
                m.d.sync += t_last_write.eq(0)
                m.next = "ROW_WAIT"
            with m.State("ROW_WAIT"):
                m.next = "WORD"
            with m.State("WORD"):
                m.d.sync += [
                    pending_full.eq(1),
                    pending_channel.eq(fe_channel),
                    pending_dt.eq(fe_dt),
                    pending_word.eq(row_rd.data),
                    pending_weight.eq(fe_weight),
                ]
                m.next = "ACCEPT"
        m.d.comb += [
            accepting.eq(front_end.ongoing("ACCEPT")),
            looking_up.eq(front_end.ongoing("LOOKUP")),
            reading_row.eq(front_end.ongoing("ROW") | front_end.ongoing("ROW_WAIT")),
        ]
        clear = {"clear_active": self.clear.active, "clear_addr": self.clear.channel} if self._clearable else {}
        write_back(m, t_last_wr, addr=fe_channel, enable=t_last_write, fields=fe_tick, **clear)
        return SimpleNamespace(
            full=pending_full, channel=pending_channel, dt=pending_dt, word=pending_word,
            weight=pending_weight,
        )

    def elaborate(self, platform):
        p = self._params
        m = Module()
        n_modes, mode_bits, dt_bits = self.n_modes, self.mode_bits, self.dt_bits
        channel_shape, mode_shape, dt_shape = unsigned(self.channel_bits), unsigned(mode_bits), unsigned(dt_bits)
        fd, fc, fin, fs = p.decay_fmt.frac_bits, p.coef_fmt.frac_bits, p.input_fmt.frac_bits, p.state_fmt.frac_bits
        foc, fout = p.out_coef_fmt.frac_bits, p.out_fmt.frac_bits
        state_shape = p.state_fmt.shape()

        # --- memories ---------------------------------------------------------------------
        read = self.read_stage  # the stage that reads z and B; old stage s is s + read
        last = self.mode_latency - 1
        # One decay table per digit of g_q, each in banks of one DP16KD (512 x 36 bits) with
        # its output register; the bank multiplexer is registered after it.
        decay_layout = self._complex_layout(p.decay_fmt)
        digit_banks = [
            parameter_banks(m, f"decay_{k}_bank", shape=decay_layout,
                            init=self._mode_table(p.decay_q[k, :used], used),
                            bank_depth=_DECAY_BANK_WORDS, output_register=True)
            for k, used in enumerate(p.decay_rows)
        ]
        # Every memory of the mode pipeline is read through an output register (latency 2).
        state_rd, state_wr = state_memory(m, "state_mem", shape=self._complex_layout(p.state_fmt),
                                          depth=p.n_channels << mode_bits, output_register=True)
        c_rd = parameter_memory(m, "c_mem", shape=self._complex_layout(p.out_coef_fmt),
                                init=self._mode_table(p.c_q, p.n_channels), output_register=True)
        b_rd = parameter_memory(m, "b_mem", shape=self._complex_layout(p.coef_fmt),
                                init=self._mode_table(p.b_q[None], 1), output_register=True)
        d_rd = parameter_memory(m, "d_mem", shape=p.out_coef_fmt.shape(), init=[int(v) for v in p.d_q],
                                output_register=True)
        threshold_rd = parameter_memory(m, "threshold_mem", shape=p.out_fmt.shape(),
                                        init=[int(v) for v in p.threshold_q], output_register=True)

        g_shape = unsigned(p.g_fmt.width)
        pending = self._front_end(m, g_shape, [int(g) for g in p.g_q.reshape(-1)])
        pending_full, pending_channel = pending.full, pending.channel
        pending_dt, pending_g, pending_weight = pending.dt, pending.word, pending.weight

        # --- mode sequencer ----------------------------------------------------------------
        advance = Signal()
        current_valid = Signal()
        # Only the valid flags, the output's pending flags and the counters are reset: every data
        # register belongs to a stage whose valid flag says whether it holds a mode.
        current_channel = Signal(channel_shape, reset_less=True)
        current_dt = Signal(dt_shape, reset_less=True)
        current_g = Signal(g_shape, reset_less=True)
        current_weight = Signal(p.input_fmt.shape(), reset_less=True)
        current_mode = Signal(mode_shape, reset_less=True)

        valid = [None] + [Signal(name=f"valid_{k}") for k in range(1, last + 1)]
        channel = [None] + [Signal(channel_shape, name=f"channel_{k}", reset_less=True) for k in range(1, last + 1)]
        mode = [None] + [Signal(mode_shape, name=f"mode_{k}", reset_less=True) for k in range(1, last + 1)]
        first = [None] + [Signal(name=f"first_{k}", reset_less=True) for k in range(1, last + 1)]
        final = [None] + [Signal(name=f"final_{k}", reset_less=True) for k in range(1, last + 1)]
        dt = [None] + [Signal(dt_shape, name=f"dt_{k}", reset_less=True) for k in range(1, last + 1)]
        weight_stages = read + 13  # the stage of the D * w operands
        weight = [None] + [Signal(p.input_fmt.shape(), name=f"weight_{k}", reset_less=True)
                           for k in range(1, weight_stages + 1)]

        # A mode's previous update on its channel is at least N/2 stages ahead of it, so the
        # hazard check exists only for N/2 <= hazard_stages.
        hazard = Const(0, 1)
        if n_modes <= self.hazard_stages:
            for k in range(1, self.hazard_stages + 1):
                hazard = hazard | (valid[k] & (channel[k] == current_channel) & (mode[k] == current_mode))
        issue = Signal()
        issue_final = Signal(reset_less=True)  # current_mode == n_modes - 1, kept as a register
        m.d.comb += issue.eq(current_valid & advance & ~hazard)

        take_pending = Signal()
        m.d.comb += take_pending.eq(pending_full & (~current_valid | (issue & issue_final)))
        with m.If(take_pending):
            m.d.sync += [
                pending_full.eq(0),
                current_valid.eq(1),
                current_channel.eq(pending_channel),
                current_dt.eq(pending_dt),
                current_g.eq(pending_g),
                current_weight.eq(pending_weight),
                current_mode.eq(0),
                issue_final.eq(n_modes == 1),
            ]
        with m.Elif(issue):
            with m.If(issue_final):
                m.d.sync += current_valid.eq(0)
            with m.Else():
                m.d.sync += [current_mode.eq(current_mode + 1), issue_final.eq(current_mode == n_modes - 2)]

        # Stage 0: issue, addressing every bank of every digit table.
        bank_bits = (_DECAY_BANK_WORDS - 1).bit_length()
        b = p.decay_digit_bits
        digits = [current_g[k * b:(k + 1) * b] for k in range(p.decay_digits)]
        digit_addresses = [Cat(current_mode, digit) for digit in digits]
        for banks, address in zip(digit_banks, digit_addresses):
            for bank_rd in banks:
                m.d.comb += [bank_rd.addr.eq(address[:bank_bits]), bank_rd.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [
                valid[1].eq(issue),
                channel[1].eq(current_channel),
                mode[1].eq(current_mode),
                first[1].eq(current_mode == 0),
                final[1].eq(issue_final),
                dt[1].eq(current_dt),
                weight[1].eq(current_weight),
            ]
            for k in range(2, last + 1):
                m.d.sync += [
                    valid[k].eq(valid[k - 1]),
                    channel[k].eq(channel[k - 1]),
                    mode[k].eq(mode[k - 1]),
                    first[k].eq(first[k - 1]),
                    final[k].eq(final[k - 1]),
                    dt[k].eq(dt[k - 1]),
                ]
            for k in range(2, weight_stages + 1):
                m.d.sync += weight[k].eq(weight[k - 1])

        stage = stage_registers(m, advance, reset_less=True)

        def delayed(name, value, stages):
            for k in range(stages):
                value = stage(f"{name}_d{k}", value)
            return value

        # Stages 1-4: each digit's bank words out of their output registers (stage 2); each pair
        # of banks picked by one registered flag per bank and registered (stage 3), the pairs
        # ORed and registered (stage 4), with the digit's "is zero" flag. No select bit drives
        # more than one word's worth of LUTs, and each stage is one LUT per bit.
        factors, zero = [], []
        for k, (banks, address, digit) in enumerate(zip(digit_banks, digit_addresses, digits)):
            picked = []
            for j, bank_rd in enumerate(banks):
                data = bank_rd.data.as_value()
                if len(banks) > 1:
                    selected_2 = delayed(f"bank_{k}_{j}_selected", address[bank_bits:] == j, 2)
                    data = data & selected_2.replicate(len(data))
                picked.append(data)
            pairs = [stage(f"banks_{k}_{j}_3", picked[j] | picked[j + 1] if j + 1 < len(picked) else picked[j])
                     for j in range(0, len(picked), 2)]
            word = pairs[0]
            for pair in pairs[1:]:
                word = word | pair
            factors.append(stage(f"factor_{k}_{_FACTOR_STAGE}", word, decay_layout))
            zero.append(delayed(f"digit_zero_{k}", digit == 0, _FACTOR_STAGE))

        # Stages 4 .. read + 3: d = D_0, then d = rnd(d * D_k, Fd) per later digit, each step
        # four products on MULT18X18Ds (Multiplier.latency stages), the two sums (one stage),
        # then rounded, or the other factor as is where a digit is zero or d is still the
        # identity (one stage).
        rounding_d = 1 << (fd - 1) if fd else 0
        decay_c, identity = factors[0], zero[0]
        for k in range(1, p.decay_digits):
            factor = delayed(f"factor_{k}", factors[k], _COMPOSE_STAGES * (k - 1))
            factor_zero = delayed(f"digit_zero_{k}_wait", zero[k], _COMPOSE_STAGES * (k - 1))
            products = {
                name: registered_product(m, f"compose_{k}_{name}", x, y, en=advance)
                for name, x, y in (("rr", decay_c.re, factor.re), ("ii", decay_c.im, factor.im),
                                   ("ri", decay_c.re, factor.im), ("ir", decay_c.im, factor.re))
            }
            lag = Multiplier.latency + 1
            decay_lag = delayed(f"compose_{k}_decay", decay_c.as_value(), lag)
            factor_lag = delayed(f"compose_{k}_factor", factor.as_value(), lag)
            identity_lag = delayed(f"compose_{k}_identity", identity, lag)
            factor_zero_lag = delayed(f"compose_{k}_zero", factor_zero, lag)
            sum_re = stage(f"compose_{k}_sum_re", products["rr"] - products["ii"])
            sum_im = stage(f"compose_{k}_sum_im", products["ri"] + products["ir"])
            composed = Signal(decay_layout, name=f"composed_{k}")
            m.d.comb += [
                composed.re.eq((sum_re + rounding_d) >> fd),
                composed.im.eq((sum_im + rounding_d) >> fd),
            ]
            decay_c = stage(f"decay_{k}_composed",
                            Mux(identity_lag, factor_lag, Mux(factor_zero_lag, decay_lag, composed.as_value())),
                            decay_layout)
            identity = stage(f"identity_{k}", identity_lag & factor_zero_lag)

        def products_on_multipliers(name, terms):
            """``sum(sign * a * b)`` of registered operands as partial products of at most 18 x 18
            bits (:func:`hw.arith.partial_products`), each on a MULT18X18D with its registers
            (:func:`registered_product`): the products of stage ``s`` operands show in stage
            ``s + 3``. Returns ``[(product, sign, shift)]``."""
            return [(registered_product(m, f"{name}_{index}_{shift_a}_{shift_b}", part_a, part_b, en=advance), sign,
                     shift_a + shift_b)
                    for index, (sign, a, b) in enumerate(terms)
                    for part_a, shift_a in operand_parts(a) for part_b, shift_b in operand_parts(b)]

        def group_by_weight(name, partials):
            """Registers of the partials of equal weight ``2**shift`` summed (exact).
            Returns ``[(register, shift)]``."""
            groups = {}
            for product, sign, shift in partials:
                term = product if sign > 0 else -product
                groups[shift] = term if shift not in groups else groups[shift] + term
            return [(stage(f"{name}_{shift}", total), shift) for shift, total in sorted(groups.items())]

        def shifted(value, n):
            return value >> n if n > 0 else value << -n

        # Stage read (r): z and B addressed for the mode now in this stage; both read through an
        # output register (r + 2) and registered in fabric (r + 3), where the composed decay is.
        m.d.comb += [
            state_rd.addr.eq(Cat(mode[read], channel[read])),
            state_rd.en.eq(advance),
            b_rd.addr.eq(mode[read]),
            b_rd.en.eq(advance),
        ]
        r = read
        # The update of the same (channel, mode) 10, 11 or 12 stages ahead has not reached the
        # memory at the read (at 12 it is written in the read's cycle): its new value is
        # forwarded from stage r + 12, r + 13 or r + 14 into stage r + 3. Closer ones the
        # sequencer never issues; at most one matches. The pipeline moves as a whole, so the
        # distance is compared a stage early (r + 1) and registered.
        forwards = []
        if n_modes <= self.hazard_stages + len(_FORWARD_DISTANCES):
            for distance in _FORWARD_DISTANCES:
                ahead = r + 1 + distance
                match = valid[ahead] & (channel[ahead] == channel[r + 1]) & (mode[ahead] == mode[r + 1])
                forwards.append(stage(f"forward_{distance}_2", match))
        z_word = state_rd.data
        z_re_3 = Signal(state_shape, name="z_re_3", reset_less=True)
        z_im_3 = Signal(state_shape, name="z_im_3", reset_less=True)
        b_re_3 = stage("b_re_3", b_rd.data.re)
        b_im_3 = stage("b_im_3", b_rd.data.im)
        decay_re_3, decay_im_3 = decay_c.re, decay_c.im
        skip_3 = identity

        # Stages r + 4 .. r + 6: the four real products of decay * z and the two of B * w on the
        # multipliers.
        decay_re_6 = products_on_multipliers("decay_re", [(1, decay_re_3, z_re_3), (-1, decay_im_3, z_im_3)])
        decay_im_6 = products_on_multipliers("decay_im", [(1, decay_re_3, z_im_3), (1, decay_im_3, z_re_3)])
        jump_re_6 = products_on_multipliers("jump_re", [(1, b_re_3, weight[r + 3])])
        jump_im_6 = products_on_multipliers("jump_im", [(1, b_im_3, weight[r + 3])])
        z_re_6 = delayed("z_re_wait", z_re_3, 3)
        z_im_6 = delayed("z_im_wait", z_im_3, 3)
        skip_6 = delayed("skip_wait", skip_3, 3)

        # Stage r + 7: partials of equal weight summed; r + 8: full-width sums.
        decay_re_8 = stage("decay_re_8", sum_shifted(group_by_weight("decay_re_7", decay_re_6)))
        decay_im_8 = stage("decay_im_8", sum_shifted(group_by_weight("decay_im_7", decay_im_6)))
        jump_re_8 = stage("jump_re_8", sum_shifted(group_by_weight("jump_re_7", jump_re_6)))
        jump_im_8 = stage("jump_im_8", sum_shifted(group_by_weight("jump_im_7", jump_im_6)))
        z_re_8 = delayed("z_re_wait_8", z_re_6, 2)
        z_im_8 = delayed("z_im_wait_8", z_im_6, 2)
        skip_8 = delayed("skip_wait_8", skip_6, 2)

        # Stage r + 9: each sum rounded once (rounding constant, floor shift). The decayed mode
        # is z unchanged where g = 0 (the identity has no table entry).
        jump_shift = fc + fin - fs
        rounding_j = 1 << (jump_shift - 1) if jump_shift > 0 else 0
        decayed_re_9 = stage("decayed_re_9", Mux(skip_8, z_re_8, (decay_re_8 + rounding_d) >> fd))
        decayed_im_9 = stage("decayed_im_9", Mux(skip_8, z_im_8, (decay_im_8 + rounding_d) >> fd))
        jump_re_9 = stage("jump_re_9", shifted(jump_re_8 + rounding_j, jump_shift))
        jump_im_9 = stage("jump_im_9", shifted(jump_im_8 + rounding_j, jump_shift))

        # Stage r + 10: clamped; C and D of this mode addressed (read through output registers).
        decayed_re, clamped_re = saturate(decayed_re_9, p.state_fmt)
        decayed_im, clamped_im = saturate(decayed_im_9, p.state_fmt)
        decayed_re_10 = stage("decayed_re_10", decayed_re, state_shape)
        decayed_im_10 = stage("decayed_im_10", decayed_im, state_shape)
        decay_clamped_10 = stage("decay_clamped_10", clamped_re | clamped_im, unsigned(1))
        jump_re_10 = stage("jump_re_10", jump_re_9)
        jump_im_10 = stage("jump_im_10", jump_im_9)
        m.d.comb += [
            c_rd.addr.eq(Cat(mode[r + 10], channel[r + 10])),
            c_rd.en.eq(advance),
            d_rd.addr.eq(channel[r + 10]),
            d_rd.en.eq(advance),
        ]

        # Stage r + 11: input jump added, exact.
        jumped_re_11 = stage("jumped_re_11", decayed_re_10 + jump_re_10)
        jumped_im_11 = stage("jumped_im_11", decayed_im_10 + jump_im_10)
        decay_clamped_11 = stage("decay_clamped_11", decay_clamped_10)

        # Stage r + 12: clamped: the new mode, written back (r + hazard_stages); C and D arrive.
        new_re, jump_clamped_re = saturate(jumped_re_11, p.state_fmt)
        new_im, jump_clamped_im = saturate(jumped_im_11, p.state_fmt)
        z_re_12 = stage("z_re_12", new_re, state_shape)
        z_im_12 = stage("z_im_12", new_im, state_shape)
        clamped_12 = stage("clamped_12", decay_clamped_11 | jump_clamped_re | jump_clamped_im, unsigned(1))
        self._write_state(m, state_wr, channel=channel[r + 12], mode=mode[r + 12], enable=valid[r + 12] & advance,
                          re=z_re_12, im=z_im_12)

        # Stage r + 13: the output products' operands registered.
        z_re_13 = stage("z_re_13", z_re_12)
        z_im_13 = stage("z_im_13", z_im_12)
        z_re_14, z_im_14 = stage("z_re_14", z_re_13), stage("z_im_14", z_im_13)
        read_re, read_im = z_word.re, z_word.im
        for forward, (source_re, source_im) in zip(reversed(forwards), [(z_re_14, z_im_14), (z_re_13, z_im_13),
                                                                        (z_re_12, z_im_12)]):
            read_re, read_im = Mux(forward, source_re, read_re), Mux(forward, source_im, read_im)
        with m.If(advance):
            m.d.sync += [z_re_3.eq(read_re), z_im_3.eq(read_im)]
        c_re_13 = stage("c_re_13", c_rd.data.re)
        c_im_13 = stage("c_im_13", c_rd.data.im)
        d_13 = stage("d_13", d_rd.data)

        # Stages r + 14 .. r + 16: Cre zre - Cim zim and D w on the multipliers; r + 17: partials
        # of equal weight summed; r + 18: full-width sums.
        c_z_16 = products_on_multipliers("c_z", [(1, c_re_13, z_re_13), (-1, c_im_13, z_im_13)])
        d_w_16 = products_on_multipliers("d_w", [(1, d_13, weight[r + 13])])
        m.d.comb += [threshold_rd.addr.eq(channel[r + 18]), threshold_rd.en.eq(advance)]
        c_z_18 = stage("c_z_18", sum_shifted(group_by_weight("c_z_17", c_z_16)))
        d_w_18 = stage("d_w_18", sum_shifted(group_by_weight("d_w_17", d_w_16)))
        clamped_18 = delayed("clamped_wait", clamped_12, 6)
        z_re_18 = delayed("z_re_out", z_re_14, 4)
        z_im_18 = delayed("z_im_out", z_im_14, 4)

        # Stage r + 19: y accumulated at full width over the event's modes; clamp flags ORed.
        product_bits = p.out_coef_fmt.width + p.state_fmt.width
        acc_bits = max(product_bits + 1 + mode_bits, p.out_coef_fmt.width + p.input_fmt.width - 1 + fs - fin) + 3
        y_acc_19 = Signal(signed(acc_bits), reset_less=True)
        event_clamped_19 = Signal(reset_less=True)
        with m.If(advance & valid[r + 18]):
            start = Mux(first[r + 18], d_w_18 << (fs - fin), y_acc_19)
            m.d.sync += [
                y_acc_19.eq(start + (c_z_18 << 1)),
                event_clamped_19.eq(Mux(first[r + 18], 0, event_clamped_19) | clamped_18),
            ]
        z_re_19 = stage("z_re_19", z_re_18)
        z_im_19 = stage("z_im_19", z_im_18)

        # Stage r + 20: y rounded once.
        y_rounded_20 = stage("y_rounded_20", round_shift(y_acc_19, foc + fs - fout))
        event_clamped_20 = stage("event_clamped_20", event_clamped_19)
        z_re_20 = stage("z_re_20", z_re_19)
        z_im_20 = stage("z_im_20", z_im_19)

        # Stage r + 21: y clamped; the threshold registered.
        y_next, y_clamped = saturate(y_rounded_20, p.out_fmt)
        y_21 = stage("y_21", y_next, p.out_fmt.shape())
        saturated_21 = stage("saturated_21", event_clamped_20 | y_clamped, unsigned(1))
        threshold_21 = stage("threshold_21", threshold_rd.data)
        z_re_21 = stage("z_re_21", z_re_20)
        z_im_21 = stage("z_im_21", z_im_20)

        # Output register (r + 22): a state beat per mode, an output beat per event (its last mode).
        out_output = Signal(self._output_layout, reset_less=True)
        out_state = Signal(self._state_layout, reset_less=True)
        output_pending = Signal()
        state_pending = Signal()
        output_done = ~output_pending | self.o_output.ready
        state_done = ~state_pending | self.o_state.ready if self._emit_state else Const(1)
        m.d.comb += [
            advance.eq(output_done & state_done),
            self.o_output.valid.eq(output_pending),
            self.o_output.payload.eq(out_output),
        ]
        if self._emit_state:
            m.d.comb += [self.o_state.valid.eq(state_pending), self.o_state.payload.eq(out_state)]
        event_done = valid[last] & final[last]
        with m.If(advance):
            m.d.sync += [
                out_output.channel.eq(channel[last]),
                out_output.dt.eq(dt[last]),
                out_output.y.eq(y_21),
                out_output.spike.eq(y_21 > threshold_21),
                out_output.saturated.eq(saturated_21),
                out_state.channel.eq(channel[last]),
                out_state.mode.eq(mode[last]),
                out_state.re.eq(z_re_21),
                out_state.im.eq(z_im_21),
                output_pending.eq(event_done),
                state_pending.eq(valid[last] if self._emit_state else 0),
            ]
            count_saturating(m, self.saturation_count, event_done & saturated_21)
        with m.Else():
            with m.If(self.o_output.ready):
                m.d.sync += output_pending.eq(0)
            if self._emit_state:
                with m.If(self.o_state.ready):
                    m.d.sync += state_pending.eq(0)
        return m


class SAHiPPOTaylor2Core(SAHiPPOCore):
    """``params.n_channels`` SA-HiPPO channels of order ``N``, updated event by event (``taylor2``).

    Same ports, front end, tables for ``C``, ``B``, ``D``, threshold and the same output step
    as :class:`SAHiPPOCore`; the decay is the sub-stepped second-order Taylor step of
    :class:`golden.sahippo.SAHiPPOParams` with the rank-1 term kept. The row word of the front
    end holds ``substeps[h, dt]`` and ``g_sub_q[h, dt]``; ``Lambda`` and ``P`` are per-mode
    tables; a scratch memory holds ``u1`` (``N/2`` words). Per sub-step, four passes over the
    modes (the rank-1 reductions need every mode before the next pass can start)::

        A   r0 = sat_W(rnd(sum_n Pre zre + Pim zim, Fc - 1))
        B   u1_n = sat_W(rnd(h_q sat_W(rnd(Lam z_n - P_n r0, Fc)), Fg))      -> scratch
        A'  r1 = sat_W(rnd(sum_n Pre u1re + Pim u1im, Fc - 1))
        C   z_n = sat_S(z_n + u1_n + sat_W(rnd(h_q sat_W(rnd(Lam u1_n - P_n r1, Fc)), Fg + 1)))

    then one pass D: ``z_n = sat_S(z_n + rnd(B_n w))``, ``y`` accumulated, one ``o_state`` beat
    per mode, and the ``o_output`` beat. ``sat_W`` / ``sat_S`` clamp to ``work_fmt`` /
    ``state_fmt``; every clamp is counted in the event's ``saturated`` flag.

    Timing
    ------
    A sequential datapath, not a pipeline: one event at a time, each mode of each pass takes
    :attr:`cycles_per_mode` (6) clocks (address, products, sums, rounding and clamp, second
    product, rounding and clamp), plus one clock per pass. An event with ``K`` sub-steps takes
    about ``6 (4 K + 1) N/2`` clocks; the next event's front end (``front_end_cycles``, 7 clocks)
    overlaps it. Backpressure
    holds the datapath in pass D until the state beat or the output beat is taken.
    ``i_event.ready`` is low while a decoded event waits.
    """

    method = "taylor2"
    #: Clocks per mode per pass.
    cycles_per_mode = 6

    @property
    def substep_bits(self) -> int:
        return max(1, self._params.max_substeps.bit_length())

    @property
    def cycles_per_event(self) -> int:
        """Clocks for an event with the largest sub-step count (without backpressure)."""
        passes = 4 * self._params.max_substeps + 1
        return passes * (self.cycles_per_mode * self.n_modes + 1) + 1

    def elaborate(self, platform):
        p = self._params
        m = Module()
        n_modes, mode_bits = self.n_modes, self.mode_bits
        fc, fin, fs = p.coef_fmt.frac_bits, p.input_fmt.frac_bits, p.state_fmt.frac_bits
        fg, foc, fout = p.g_sub_fmt.frac_bits, p.out_coef_fmt.frac_bits, p.out_fmt.frac_bits
        work_shape, state_shape = p.work_fmt.shape(), p.state_fmt.shape()

        row_layout = data.StructLayout({"substeps": unsigned(self.substep_bits), "g_sub": p.g_sub_fmt.shape()})
        pending = self._front_end(
            m,
            row_layout,
            [{"substeps": int(k), "g_sub": int(g)} for k, g in zip(p.substeps.reshape(-1), p.g_sub_q.reshape(-1))],
        )

        state_rd, state_wr = state_memory(m, "state_mem", shape=self._complex_layout(p.state_fmt),
                                          depth=p.n_channels << mode_bits, read="old")
        u1_rd, u1_wr = state_memory(m, "u1_mem", shape=self._complex_layout(p.work_fmt), depth=1 << mode_bits, read="old")
        coef_layout = data.StructLayout({"lam": self._complex_layout(p.coef_fmt), "p": self._complex_layout(p.coef_fmt),
                                         "b": self._complex_layout(p.coef_fmt)})
        stride = 1 << mode_bits
        coef_words = [{"lam": {"re": 0, "im": 0}, "p": {"re": 0, "im": 0}, "b": {"re": 0, "im": 0}} for _ in range(stride)]
        for n in range(n_modes):
            coef_words[n] = {
                name: {"re": int(table[n, 0]), "im": int(table[n, 1])}
                for name, table in (("lam", p.lam_q), ("p", p.p_q), ("b", p.b_q))
            }
        coef_rd = parameter_memory(m, "coef_mem", shape=coef_layout, init=coef_words)
        c_rd = parameter_memory(m, "c_mem", shape=self._complex_layout(p.out_coef_fmt),
                                init=self._mode_table(p.c_q, p.n_channels))
        d_rd = parameter_memory(m, "d_mem", shape=p.out_coef_fmt.shape(), init=[int(v) for v in p.d_q])
        threshold_rd = parameter_memory(m, "threshold_mem", shape=p.out_fmt.shape(), init=[int(v) for v in p.threshold_q])

        # The event being processed.
        busy = Signal()
        channel = Signal(unsigned(self.channel_bits))
        dt = Signal(unsigned(self.dt_bits))
        weight = Signal(p.input_fmt.shape())
        substeps_left = Signal(unsigned(self.substep_bits))
        h_q = Signal(p.g_sub_fmt.shape())
        mode = Signal(unsigned(mode_bits))
        phase = Signal(range(self.cycles_per_mode + 1))
        PASS_A, PASS_B, PASS_A1, PASS_C, PASS_D = range(5)
        pass_ = Signal(range(5))
        r0 = Signal(work_shape)
        r1 = Signal(work_shape)
        clamped = Signal()
        reduce_bits = p.coef_fmt.width + p.work_fmt.width + 2 + mode_bits
        reduction = Signal(signed(reduce_bits))
        y_bits = max(p.out_coef_fmt.width + p.state_fmt.width + 1 + mode_bits,
                     p.out_coef_fmt.width + p.input_fmt.width - 1 + fs - fin) + 3
        y_acc = Signal(signed(y_bits))

        # Every table is read at the current mode; words are valid from phase 1 on.
        m.d.comb += [
            state_rd.addr.eq(Cat(mode, channel)), state_rd.en.eq(1),
            u1_rd.addr.eq(mode), u1_rd.en.eq(1),
            coef_rd.addr.eq(mode), coef_rd.en.eq(1),
            c_rd.addr.eq(Cat(mode, channel)), c_rd.en.eq(1),
            d_rd.addr.eq(channel), d_rd.en.eq(1),
            threshold_rd.addr.eq(channel), threshold_rd.en.eq(1),
        ]
        z, u1, coef, c = state_rd.data, u1_rd.data, coef_rd.data, c_rd.data
        from_u1 = (pass_ == PASS_A1) | (pass_ == PASS_C)
        source_re = Mux(from_u1, u1.re, z.re)
        source_im = Mux(from_u1, u1.im, z.im)
        r = Mux(pass_ == PASS_C, r1, r0)

        # Datapath registers.
        term_re = Signal(signed(2 * p.coef_fmt.width + p.work_fmt.width + 2))
        term_im = Signal(signed(2 * p.coef_fmt.width + p.work_fmt.width + 2))
        m_re, m_im = Signal(work_shape), Signal(work_shape)
        hm_re = Signal(signed(p.g_sub_fmt.width + p.work_fmt.width + 1))
        hm_im = Signal(signed(p.g_sub_fmt.width + p.work_fmt.width + 1))
        t2_re, t2_im = Signal(work_shape), Signal(work_shape)
        z_re, z_im = Signal(state_shape), Signal(state_shape)
        u1_re, u1_im = Signal(work_shape), Signal(work_shape)
        c_z = Signal(signed(p.out_coef_fmt.width + p.state_fmt.width + 2))
        # The mode written back this cycle (phase 3 of pass D, phase 5 of pass C).
        write_state = Signal()
        write_re, write_im = Signal(state_shape), Signal(state_shape)

        # Outputs: registers offered until taken.
        out_output = Signal(self._output_layout)
        out_state = Signal(self._state_layout)
        output_pending = Signal()
        state_pending = Signal()
        m.d.comb += [self.o_output.valid.eq(output_pending), self.o_output.payload.eq(out_output)]
        with m.If(self.o_output.ready):
            m.d.sync += output_pending.eq(0)
        if self._emit_state:
            m.d.comb += [self.o_state.valid.eq(state_pending), self.o_state.payload.eq(out_state)]
            with m.If(self.o_state.ready):
                m.d.sync += state_pending.eq(0)
            state_free = ~state_pending | self.o_state.ready
        else:
            state_free = Const(1)

        def start_pass(which):
            m.d.sync += [pass_.eq(which), mode.eq(0), phase.eq(0), reduction.eq(0)]

        def flag(value):
            m.d.sync += clamped.eq(clamped | value)

        final_mode = mode == n_modes - 1

        def mode_done():
            with m.If(final_mode):
                m.d.sync += phase.eq(self.cycles_per_mode)  # the end-of-pass step
            with m.Else():
                m.d.sync += [mode.eq(mode + 1), phase.eq(0)]

        with m.If(~busy):
            with m.If(pending.full):
                word = pending.word
                m.d.sync += [
                    pending.full.eq(0),
                    busy.eq(1),
                    channel.eq(pending.channel),
                    dt.eq(pending.dt),
                    weight.eq(pending.weight),
                    substeps_left.eq(word.substeps),
                    h_q.eq(word.g_sub),
                    clamped.eq(0),
                ]
                start_pass(Mux(word.substeps == 0, PASS_D, PASS_A))
        with m.Elif(phase == 1):
            # Products at full width, one sum per component.
            with m.Switch(pass_):
                with m.Case(PASS_A, PASS_A1):
                    m.d.sync += term_re.eq(coef.p.re * source_re + coef.p.im * source_im)
                with m.Case(PASS_B, PASS_C):
                    m.d.sync += [
                        term_re.eq(coef.lam.re * source_re - coef.lam.im * source_im - coef.p.re * r),
                        term_im.eq(coef.lam.re * source_im + coef.lam.im * source_re - coef.p.im * r),
                    ]
                with m.Case(PASS_D):
                    m.d.sync += [term_re.eq(coef.b.re * weight), term_im.eq(coef.b.im * weight)]
            m.d.sync += [z_re.eq(z.re), z_im.eq(z.im), u1_re.eq(u1.re), u1_im.eq(u1.im), phase.eq(2)]
        with m.Elif(phase == 2):
            with m.Switch(pass_):
                with m.Case(PASS_A, PASS_A1):
                    m.d.sync += reduction.eq(reduction + term_re)
                    mode_done()
                with m.Case(PASS_B, PASS_C):
                    value_re, clamp_re = saturate(round_shift(term_re, fc), p.work_fmt)
                    value_im, clamp_im = saturate(round_shift(term_im, fc), p.work_fmt)
                    m.d.sync += [m_re.eq(value_re), m_im.eq(value_im), phase.eq(3)]
                    flag(clamp_re | clamp_im)
                with m.Case(PASS_D):
                    value_re, clamp_re = saturate(z_re + round_shift(term_re, fc + fin - fs), p.state_fmt)
                    value_im, clamp_im = saturate(z_im + round_shift(term_im, fc + fin - fs), p.state_fmt)
                    m.d.sync += [z_re.eq(value_re), z_im.eq(value_im), phase.eq(3)]
                    flag(clamp_re | clamp_im)
        with m.Elif(phase == 3):
            with m.If(pass_ == PASS_D):
                # The new mode: written back, offered on o_state, into y.
                m.d.comb += [write_re.eq(z_re), write_im.eq(z_im), write_state.eq(1)]
                m.d.sync += [c_z.eq(c.re * z_re - c.im * z_im), phase.eq(4)]
            with m.Else():
                m.d.sync += [hm_re.eq(h_q * m_re), hm_im.eq(h_q * m_im), phase.eq(4)]
        with m.Elif(phase == 4):
            with m.Switch(pass_):
                with m.Case(PASS_B):
                    value_re, clamp_re = saturate(round_shift(hm_re, fg), p.work_fmt)
                    value_im, clamp_im = saturate(round_shift(hm_im, fg), p.work_fmt)
                    m.d.comb += [u1_wr.addr.eq(mode), u1_wr.data.re.eq(value_re), u1_wr.data.im.eq(value_im),
                                 u1_wr.en.eq(1)]
                    flag(clamp_re | clamp_im)
                    mode_done()
                with m.Case(PASS_C):
                    value_re, clamp_re = saturate(round_shift(hm_re, fg + 1), p.work_fmt)
                    value_im, clamp_im = saturate(round_shift(hm_im, fg + 1), p.work_fmt)
                    m.d.sync += [t2_re.eq(value_re), t2_im.eq(value_im), phase.eq(5)]
                    flag(clamp_re | clamp_im)
                with m.Case(PASS_D):
                    with m.If(state_free):
                        start = Mux(mode == 0, (d_rd.data * weight) << (fs - fin), y_acc)
                        m.d.sync += y_acc.eq(start + (c_z << 1))
                        if self._emit_state:
                            m.d.sync += [
                                state_pending.eq(1),
                                out_state.channel.eq(channel),
                                out_state.mode.eq(mode),
                                out_state.re.eq(z_re),
                                out_state.im.eq(z_im),
                            ]
                        mode_done()
        with m.Elif(phase == 5):
            value_re, clamp_re = saturate(z_re + u1_re + t2_re, p.state_fmt)
            value_im, clamp_im = saturate(z_im + u1_im + t2_im, p.state_fmt)
            m.d.comb += [write_re.eq(value_re), write_im.eq(value_im), write_state.eq(1)]
            flag(clamp_re | clamp_im)
            mode_done()
        with m.Elif(phase == self.cycles_per_mode):
            # End of a pass.
            with m.Switch(pass_):
                with m.Case(PASS_A, PASS_A1):
                    value, clamp = saturate(round_shift(reduction, fc - 1), p.work_fmt)
                    with m.If(pass_ == PASS_A):
                        m.d.sync += r0.eq(value)
                        start_pass(PASS_B)
                    with m.Else():
                        m.d.sync += r1.eq(value)
                        start_pass(PASS_C)
                    flag(clamp)
                with m.Case(PASS_B):
                    start_pass(PASS_A1)
                with m.Case(PASS_C):
                    m.d.sync += substeps_left.eq(substeps_left - 1)
                    start_pass(Mux(substeps_left == 1, PASS_D, PASS_A))
                with m.Case(PASS_D):
                    with m.If(~output_pending | self.o_output.ready):
                        y_value, y_clamp = saturate(round_shift(y_acc, foc + fs - fout), p.out_fmt)
                        m.d.sync += [
                            output_pending.eq(1),
                            out_output.channel.eq(channel),
                            out_output.dt.eq(dt),
                            out_output.y.eq(y_value),
                            out_output.spike.eq(y_value > threshold_rd.data),
                            out_output.saturated.eq(clamped | y_clamp),
                            busy.eq(0),
                        ]
                        count_saturating(m, self.saturation_count, clamped | y_clamp)
        with m.Else():  # phase 0: the tables are being addressed
            m.d.sync += phase.eq(1)
        self._write_state(m, state_wr, channel=channel, mode=mode, enable=write_state, re=write_re, im=write_im)
        return m


def sahippo_core(params: SAHiPPOParams, **kwargs) -> SAHiPPOCore:
    """The core for the layer's discretisation: :class:`SAHiPPOCore` (``zoh``) or
    :class:`SAHiPPOTaylor2Core` (``taylor2``); ``kwargs`` go to its constructor."""
    if not isinstance(params, SAHiPPOParams):
        raise TypeError(f"params must be a SAHiPPOParams, not {type(params).__name__}")
    return (SAHiPPOTaylor2Core if params.method == "taylor2" else SAHiPPOCore)(params, **kwargs)


#: This module's entry in the core registry (:func:`hw.cores.core_classes`): the kind and its core.
NEURON_CORE = (NEURON_KIND, sahippo_core)
