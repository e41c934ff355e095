"""Time-multiplexed SiLIF core (SSM-inspired LIF, NEURON_MATH §1.4, DECISIONS D10-D11).

The hardware mirror of :meth:`golden.silif.SiLIFParams.step`; the golden model's docstring is
the specification, this module only schedules it.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.silif import SiLIFParams
from hw.arith import saturate

__all__ = ["SiLIFCore"]

_COUNTER_WIDTH = 32


class SiLIFCore(wiring.Component):
    """``params.n_neurons`` SiLIF neurons sharing one pipelined datapath.

    Each beat on :attr:`i_current` updates one neuron with its input current ``x`` (the
    BN-folded linear output, bias included) for the current time step, in the order of D10.
    With ``F`` the fractional bits of ``x``, ``u``, ``w``, ``b``; ``Cd`` those of the decays,
    ``Ca`` those of ``a`` and ``C = max(Cd, Ca)``::

        w = sat(round_C(beta*w << (C-Cd) + a*u << (C-Ca) + (s_prev ? b << C : 0)))
        u = sat(round_Cd(alpha*(u - (s_prev ? 1.0 : 0)) + gain*(x - w)))      # the new w
        s = u > 1.0                                                             # strict

    ``round_n`` rounds half up (D1) once per equation, on the exact full-width sum;
    ``sat`` clamps to ``state_fmt`` (D2, :func:`hw.arith.saturate`). ``alpha``, ``beta``,
    ``gain = 1 - alpha``, ``a`` and ``b`` are per-neuron words of a read-only parameter memory
    (the precomputed coefficients of D11). A time step is one beat per neuron, in any order; a
    neuron's state advances exactly when a beat for it is accepted. The state memory (``u``,
    ``w``, previous spike) starts at zero (D3) from the bitstream / simulation initial value; the
    domain reset clears the pipeline and :attr:`saturation_count` but not the state memory.
    Neuron indices ``>= n_neurons`` are a caller error.

    Parameters
    ----------
    params : SiLIFParams
        Formats and per-neuron coefficients (the parameter memory's initial contents).
    emit_state : bool
        Add the :attr:`o_state` port that reports every update (for verification and
        debugging); without it the core only emits spikes.

    Members
    -------
    i_current : ``In(stream.Signature(current_layout))``
        ``{neuron: unsigned(index_bits), current: input_fmt}``.
    o_spike : ``Out(stream.Signature(spike_layout))``
        ``{neuron}``: one beat per update that fired, in input order.
    o_state : ``Out(stream.Signature(state_layout))``
        ``{neuron, u: state_fmt, w: state_fmt, spike: 1, saturated: 1}``: one beat per update,
        in input order. Present only with ``emit_state=True``.
    saturation_count : ``Out(32)``
        Number of updates in which the ``w`` or the ``u`` clamp acted; sticks at ``2**32 - 1``.

    Timing
    ------
    * **Latency**: :attr:`latency` (11) cycles from accepting a beat to its output beats.
    * **Throughput**: one update per clock while the outputs are ready and consecutive beats
      name neurons that are not in flight.
    * **Read-after-write hazards** stall: ``i_current.ready`` is low while the offered neuron
      is in one of the first :attr:`hazard_stages` (9) pipeline stages. The write-back reaches a
      same-cycle read through a transparent read port. With ``n_neurons <= hazard_stages`` the
      core runs slower than one update per clock, never wrong.
    * **Backpressure**: the pipeline moves as a whole. Its last stage is an output register
      offering the spike (if any) and the state beat (if ``emit_state``) at once; the pipeline
      advances only in a cycle in which every pending output beat has been (or is being)
      accepted; each output may be accepted in a different cycle. ``i_current.ready`` depends
      combinationally on the output readies and ``i_current.payload.neuron`` (never on
      ``i_current.valid``); the outputs' ``valid`` are registers.

    Pipeline (stage ``k`` holds a beat ``k`` cycles after it was accepted; every multiply has
    registered operands and a registered product, so each maps onto MULT18X18D blocks with no
    logic between them)::

        0  accept: address the state and parameter memories
        1  memory words arrive (u, w, s_prev, alpha, beta, gain, a, b)
        2  memory words registered (multiplier operands)
        3  products beta*w, a*u (full width); u - s_prev (exact), s_prev ? b : 0
        4  partial w sum beta*w + a*u; product alpha*(u - s) (full width)
        5  w rounded: partial + (b_inc << C | 2**(C-1)), >> C; alpha*(u - s) + rounding constant
        6  w saturated
        7  x - w (exact)
        8  product gain*(x - w)
        9  u sum (already carrying the rounding constant), >> Cd
        10 u saturated; spike = rounded u > 1.0 (equal to the saturated u's compare)
        -  write-back, into the output register (11)
    """

    #: Cycles from accepting an input beat to its output beats being valid.
    latency = 11
    #: Pipeline stages (1..hazard_stages) whose neuron may not be offered again yet; the last
    #: stage (10) writes back in the cycle a new read of its neuron happens (transparent port).
    hazard_stages = 9

    def __init__(self, params: SiLIFParams, *, emit_state: bool = True):
        if not isinstance(params, SiLIFParams):
            raise TypeError(f"params must be a SiLIFParams, not {type(params).__name__}")
        self._params = params
        self._emit_state = bool(emit_state)
        index_shape = unsigned(self.index_bits)
        state_shape = params.state_fmt.shape()
        self._current_layout = data.StructLayout({"neuron": index_shape, "current": params.input_fmt.shape()})
        self._spike_layout = data.StructLayout({"neuron": index_shape})
        self._state_layout = data.StructLayout(
            {"neuron": index_shape, "u": state_shape, "w": state_shape, "spike": unsigned(1), "saturated": unsigned(1)}
        )
        members = {
            "i_current": In(stream.Signature(self._current_layout)),
            "o_spike": Out(stream.Signature(self._spike_layout)),
        }
        if self._emit_state:
            members["o_state"] = Out(stream.Signature(self._state_layout))
        members["saturation_count"] = Out(_COUNTER_WIDTH)
        super().__init__(members)

    # --- derived facts --------------------------------------------------------------------
    @property
    def params(self) -> SiLIFParams:
        return self._params

    @property
    def emit_state(self) -> bool:
        return self._emit_state

    @property
    def n_neurons(self) -> int:
        return self._params.n_neurons

    @property
    def index_bits(self) -> int:
        """Width of a neuron index (at least 1)."""
        return max(1, (self._params.n_neurons - 1).bit_length())

    @property
    def current_layout(self) -> data.StructLayout:
        """Payload of :attr:`i_current`: ``{neuron, current}``."""
        return self._current_layout

    @property
    def spike_layout(self) -> data.StructLayout:
        """Payload of :attr:`o_spike`: ``{neuron}``."""
        return self._spike_layout

    @property
    def state_layout(self) -> data.StructLayout:
        """Payload of :attr:`o_state`: ``{neuron, u, w, spike, saturated}``."""
        return self._state_layout

    @property
    def state_row_layout(self) -> data.StructLayout:
        """One word of the state memory: ``{u, w, spike}`` (spike = previous step's spike)."""
        shape = self._params.state_fmt.shape()
        return data.StructLayout({"u": shape, "w": shape, "spike": unsigned(1)})

    @property
    def param_row_layout(self) -> data.StructLayout:
        """One word of the parameter memory: ``{alpha, beta, gain, a, b}``."""
        p = self._params
        decay = p.decay_fmt.shape()
        return data.StructLayout(
            {"alpha": decay, "beta": decay, "gain": decay, "a": p.a_fmt.shape(), "b": p.b_fmt.shape()}
        )

    # --- hardware -------------------------------------------------------------------------
    def elaborate(self, platform):
        p = self._params
        m = Module()
        coef_bits = p.coef_frac_bits
        decay_bits = p.decay_fmt.frac_bits
        shift_decay = coef_bits - decay_bits
        shift_a = coef_bits - p.a_fmt.frac_bits
        stages = self.latency - 1  # last pipeline stage index (write-back)

        m.submodules.state_mem = state_mem = memory.Memory(
            shape=self.state_row_layout, depth=p.n_neurons, init=[]
        )
        m.submodules.param_mem = param_mem = memory.Memory(
            shape=self.param_row_layout,
            depth=p.n_neurons,
            init=[
                {"alpha": int(al), "beta": int(be), "gain": int(g), "a": int(a), "b": int(b)}
                for al, be, g, a, b in zip(p.alpha_q, p.beta_q, p.gain_q, p.a_q, p.b_q)
            ],
        )
        state_wr = state_mem.write_port()
        state_rd = state_mem.read_port(transparent_for=(state_wr,))
        param_rd = param_mem.read_port()

        # Every stage register moves when `advance` is high (the output register can take a beat).
        advance = Signal()
        index_shape = unsigned(self.index_bits)
        valid = [None] + [Signal(name=f"valid_{k}") for k in range(1, stages + 1)]
        neuron = [None] + [Signal(index_shape, name=f"neuron_{k}") for k in range(1, stages + 1)]
        with m.If(advance):
            m.d.sync += [valid[1].eq(self.i_current.valid & self.i_current.ready), neuron[1].eq(self.i_current.payload.neuron)]
            for k in range(2, stages + 1):
                m.d.sync += [valid[k].eq(valid[k - 1]), neuron[k].eq(neuron[k - 1])]

        def stage(name, value, shape=None):
            """A pipeline register named ``<name>`` loaded with ``value`` when the pipeline advances."""
            reg = Signal(shape if shape is not None else value.shape(), name=name)
            with m.If(advance):
                m.d.sync += reg.eq(value)
            return reg

        # Stage 0: accept, stalling on a read-after-write hazard.
        hazard = Signal()
        m.d.comb += hazard.eq(
            _any(valid[k] & (neuron[k] == self.i_current.payload.neuron) for k in range(1, self.hazard_stages + 1))
        )
        m.d.comb += [
            self.i_current.ready.eq(advance & ~hazard),
            state_rd.addr.eq(self.i_current.payload.neuron),
            state_rd.en.eq(advance),
            param_rd.addr.eq(self.i_current.payload.neuron),
            param_rd.en.eq(advance),
        ]

        # Stage 1: memory words arrive with the beat's current.
        current_1 = stage("current_1", self.i_current.payload.current, p.input_fmt.shape())

        # Stage 2: the memory words registered as they are (no logic behind the block RAMs).
        row, coef = state_rd.data, param_rd.data
        u_2 = stage("u_2", row.u)
        w_2 = stage("w_2", row.w)
        spike_prev_2 = stage("spike_prev_2", row.spike, unsigned(1))
        alpha_2 = stage("alpha_2", coef.alpha)
        beta_2 = stage("beta_2", coef.beta)
        gain_2 = stage("gain_2", coef.gain)
        a_2 = stage("a_2", coef.a)
        b_2 = stage("b_2", coef.b)
        current_2 = stage("current_2", current_1)

        # Stage 3: the two w products of the old state, full width; u - s_prev (exact, one bit
        # wider than u) and the spike-triggered increment s_prev ? b : 0 beside them.
        threshold = Const(p.threshold_q, p.state_fmt.shape())
        beta_w_3 = stage("beta_w_3", beta_2 * w_2)
        a_u_3 = stage("a_u_3", a_2 * u_2)
        u_reset_3 = stage("u_reset_3", u_2 - Mux(spike_prev_2, threshold, 0))
        b_increment_3 = stage("b_increment_3", Mux(spike_prev_2, b_2, 0), p.b_fmt.shape())
        alpha_3 = stage("alpha_3", alpha_2)
        gain_3 = stage("gain_3", gain_2)
        current_3 = stage("current_3", current_2)

        # Stage 4: partial w sum; the product alpha*(u - s), full width.
        partial_w_4 = stage("partial_w_4", (beta_w_3 << shift_decay) + (a_u_3 << shift_a))
        alpha_u_4 = stage("alpha_u_4", alpha_3 * u_reset_3)
        b_increment_4 = stage("b_increment_4", b_increment_3)
        gain_4 = stage("gain_4", gain_3)
        current_4 = stage("current_4", current_3)

        # Stage 5: w rounded once (D1). b << C and 2**(C-1) occupy disjoint bits: one operand.
        rounding_w = Cat(Const(1 << (coef_bits - 1), coef_bits), b_increment_4)
        w_rounded_5 = stage("w_rounded_5", (partial_w_4 + rounding_w) >> coef_bits)
        # alpha*(u - s) picks up the u equation's rounding constant while it waits for gain*(x - w).
        alpha_u_rounding_5 = stage("alpha_u_rounding_5", alpha_u_4 + (1 << (decay_bits - 1)))
        gain_5 = stage("gain_5", gain_4)
        current_5 = stage("current_5", current_4)

        # Stage 6: w saturated (D2).
        w_next, w_clamped = saturate(w_rounded_5, p.state_fmt)
        w_6 = stage("w_6", w_next, p.state_fmt.shape())
        w_clamped_6 = stage("w_clamped_6", w_clamped, unsigned(1))
        alpha_u_rounding_6 = stage("alpha_u_rounding_6", alpha_u_rounding_5)
        gain_6 = stage("gain_6", gain_5)
        current_6 = stage("current_6", current_5)

        # Stage 7: x - w, exact.
        drive_7 = stage("drive_7", current_6 - w_6)
        w_7 = stage("w_7", w_6)
        w_clamped_7 = stage("w_clamped_7", w_clamped_6)
        alpha_u_rounding_7 = stage("alpha_u_rounding_7", alpha_u_rounding_6)
        gain_7 = stage("gain_7", gain_6)

        # Stage 8: gain*(x - w), full width.
        gain_drive_8 = stage("gain_drive_8", gain_7 * drive_7)
        w_8 = stage("w_8", w_7)
        w_clamped_8 = stage("w_clamped_8", w_clamped_7)
        alpha_u_rounding_8 = stage("alpha_u_rounding_8", alpha_u_rounding_7)

        # Stage 9: u sum, rounded once (the constant rode along since stage 4).
        u_rounded_9 = stage("u_rounded_9", (alpha_u_rounding_8 + gain_drive_8) >> decay_bits)
        w_9 = stage("w_9", w_8)
        w_clamped_9 = stage("w_clamped_9", w_clamped_8)

        # Stage 10: u saturated; the strict compare on the unsaturated u gives the same spike
        # because the threshold lies strictly inside state_fmt.
        u_next, u_clamped = saturate(u_rounded_9, p.state_fmt)
        u_10 = stage("u_10", u_next, p.state_fmt.shape())
        spike_10 = stage("spike_10", u_rounded_9 > p.threshold_q, unsigned(1))
        saturated_10 = stage("saturated_10", w_clamped_9 | u_clamped, unsigned(1))
        w_10 = stage("w_10", w_9)

        # Write-back and output register.
        m.d.comb += [
            state_wr.addr.eq(neuron[stages]),
            state_wr.data.u.eq(u_10),
            state_wr.data.w.eq(w_10),
            state_wr.data.spike.eq(spike_10),
            state_wr.en.eq(valid[stages] & advance),
        ]

        out_state = Signal(self._state_layout)
        spike_pending = Signal()
        state_pending = Signal()
        spike_done = ~spike_pending | self.o_spike.ready
        state_done = ~state_pending | self.o_state.ready if self._emit_state else Const(1)
        m.d.comb += [
            advance.eq(spike_done & state_done),
            self.o_spike.valid.eq(spike_pending),
            self.o_spike.payload.neuron.eq(out_state.neuron),
        ]
        if self._emit_state:
            m.d.comb += [self.o_state.valid.eq(state_pending), self.o_state.payload.eq(out_state)]
        with m.If(advance):
            m.d.sync += [
                out_state.neuron.eq(neuron[stages]),
                out_state.u.eq(u_10),
                out_state.w.eq(w_10),
                out_state.spike.eq(spike_10),
                out_state.saturated.eq(saturated_10),
                spike_pending.eq(valid[stages] & spike_10),
                state_pending.eq(valid[stages] if self._emit_state else 0),
            ]
            with m.If(valid[stages] & saturated_10 & (self.saturation_count != (1 << _COUNTER_WIDTH) - 1)):
                m.d.sync += self.saturation_count.eq(self.saturation_count + 1)
        with m.Else():
            with m.If(self.o_spike.ready):
                m.d.sync += spike_pending.eq(0)
            if self._emit_state:
                with m.If(self.o_state.ready):
                    m.d.sync += state_pending.eq(0)
        return m


def _any(terms):
    """OR of Amaranth 1-bit values."""
    result = Const(0, 1)
    for term in terms:
        result = result | term
    return result
