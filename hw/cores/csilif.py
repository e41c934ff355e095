"""Time-multiplexed C-SiLIF core (SSM-inspired LIF, NEURON_MATH §1.5, DECISIONS D4, D10-D11).

The hardware mirror of :meth:`golden.csilif.CSiLIFParams.step`; the golden model's docstring is
the specification, this module only schedules it.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory

from golden.csilif import CSiLIFParams
from hw.arith import any_of, operand_parts, saturate
from hw.cores.neuron_core import COUNTER_WIDTH, NeuronCore

__all__ = ["CSiLIFCore"]


class CSiLIFCore(NeuronCore):
    """``params.n_neurons`` C-SiLIF neurons (one complex mode each) sharing one pipelined datapath.

    Each beat on :attr:`i_current` updates one neuron with its input current ``x`` for the
    current time step (formats from ``params``: ``x`` in ``input_fmt``, ``Re u``/``Im u`` in
    ``state_fmt`` with ``F`` fractional bits, ``lambda_r``/``lambda_i`` in ``coef_fmt``, ``b`` in
    ``gain_fmt``; ``P`` = :attr:`CSiLIFParams.product_frac_bits`)::

        u'     = Re u - (s_prev ? 1/2 : 0)                                 # exact half reset
        Re u   = sat(round_{P->F}(lambda_r*u' - lambda_i*Im u + b*x))      # D4: one rounding
        Im u   = sat(round_{P->F}(lambda_i*u' + lambda_r*Im u))
        s      = (Re u > 1/2)                                              # strict, exact (D10)

    Five real products per update, each at full width: the four of the complex decay (no
    three-multiply trick, D4) and ``b*x``; each component sums its products at full width and
    rounds once, half up (D1); ``sat`` is :func:`hw.arith.saturate` (D2). A time step is one beat
    per neuron, in any order; a neuron's state advances exactly when a beat for it is accepted.
    The state memory holds ``u' = Re u - s/2`` (the half reset is applied at write-back, one
    integer bit wider than ``state_fmt``) and ``Im u``, and starts at zero (D3) from the bitstream /
    simulation initial value; the domain reset clears the pipeline and :attr:`saturation_count`
    but not the state memory. The per-neuron ``lambda_r``, ``lambda_i`` and ``b`` are the initial
    contents of a read-only parameter memory (precomputed off-line, D11). Neuron indices
    ``>= n_neurons`` are a caller error (the update then reads and writes an undefined word).

    Parameters
    ----------
    params : CSiLIFParams
        Formats and per-neuron decays and gains.
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
        ``{neuron, re: state_fmt, im: state_fmt, spike: 1, saturated: 1}``: one beat per update,
        in input order. Present only with ``emit_state=True``.
    saturation_count : ``Out(32)``
        Number of updates in which either clamp acted; sticks at ``2**32 - 1``.

    Timing
    ------
    * **Latency**: :attr:`latency` (7) cycles: a beat accepted on clock edge ``k`` makes its
      output beats valid from edge ``k + latency`` on.
    * **Throughput**: one update per clock while the outputs are ready and consecutive beats
      name neurons that are not in flight.
    * **Read-after-write hazards** are resolved by stalling, not forwarding: ``i_current.ready``
      is low while the offered neuron is still in one of the first :attr:`hazard_stages`
      pipeline stages. The write-back stage's write reaches a same-cycle read through a
      transparent read port. So with ``n_neurons <= hazard_stages`` (or a neuron repeated within
      that many beats) the core runs slower than one update per clock, never wrong.
    * **Backpressure**: the pipeline moves as a whole. Its last stage is an output register that
      offers the spike (if any) and the state beat (if ``emit_state``) at the same time; the
      pipeline advances only in the cycle in which every pending output beat of that register
      has been (or is being) accepted. Each output may be accepted in a different cycle; nothing
      is lost or repeated. ``i_current.ready`` depends combinationally on ``o_spike.ready``,
      ``o_state.ready`` and ``i_current.payload.neuron`` (never on ``i_current.valid``); the
      outputs' ``valid`` are registers.

    Pipeline (stage ``k`` holds a beat ``k`` cycles after it was accepted)::

        0  accept: address the state and parameter memories
        1  memory words arrive (u' = Re u - s_prev/2, Im u, lambda_r, lambda_i, b)
        2  multiplier operands registered
        3  partial products registered, each at most 18x18 (one MULT18X18D): the 25-bit u' and
           24-bit Im u are split into 17 low (unsigned) and the upper (signed) bits
        4  per component, partial products of equal weight summed; b*x aligned to P fractional
           bits and the rounding constant join the low group
        5  the groups added at full width and shifted down to F fractional bits (one rounding
           per component)
        6  saturate both components; spike compare (exact, in parallel)
        -  write-back of (Re u - s/2, Im u), into the output register (7)
    """

    #: Cycles from accepting an input beat to its output beats being valid.
    latency = 7
    #: Pipeline stages (1..hazard_stages) whose neuron may not be offered again yet.
    hazard_stages = 5

    params_class = CSiLIFParams

    def state_fields(self, params: CSiLIFParams) -> dict:
        """``o_state`` words, in this order."""
        return {"re": params.state_fmt.shape(), "im": params.state_fmt.shape()}

    @property
    def state_row_layout(self) -> data.StructLayout:
        """One word of the state memory: ``{u_reset, im}``, with ``u_reset = Re u - s/2`` already
        half-reset at write-back (``state_fmt`` plus one integer bit), so the memory output
        feeds the multiplier operand registers without logic in between."""
        fmt = self._params.state_fmt
        return data.StructLayout({"u_reset": signed(fmt.width + 1), "im": fmt.shape()})

    @property
    def param_row_layout(self) -> data.StructLayout:
        """One word of the parameter memory: ``{decay_re, decay_im}`` in ``coef_fmt``, ``gain``."""
        p = self._params
        return data.StructLayout(
            {"decay_re": p.coef_fmt.shape(), "decay_im": p.coef_fmt.shape(), "gain": p.gain_fmt.shape()}
        )

    # --- hardware -------------------------------------------------------------------------
    def elaborate(self, platform):
        p = self._params
        m = Module()
        n_stages = 6

        m.submodules.state_mem = state_mem = memory.Memory(
            shape=self.state_row_layout, depth=p.n_neurons, init=[]
        )
        m.submodules.param_mem = param_mem = memory.Memory(
            shape=self.param_row_layout,
            depth=p.n_neurons,
            init=[
                {"decay_re": int(lr), "decay_im": int(li), "gain": int(b)}
                for lr, li, b in zip(p.decay_re_q, p.decay_im_q, p.gain_q)
            ],
        )
        state_wr = state_mem.write_port()
        state_rd = state_mem.read_port(transparent_for=(state_wr,))
        param_rd = param_mem.read_port()

        # Every stage register moves when `advance` is high (the output register can take a beat).
        advance = Signal()
        index_shape = unsigned(self.index_bits)
        valid = [None] + [Signal(name=f"valid_{k}") for k in range(1, n_stages + 1)]
        neuron = [None] + [Signal(index_shape, name=f"neuron_{k}") for k in range(1, n_stages + 1)]
        with m.If(advance):
            m.d.sync += valid[1].eq(self.i_current.valid & self.i_current.ready)
            m.d.sync += neuron[1].eq(self.i_current.payload.neuron)
            for k in range(2, n_stages + 1):
                m.d.sync += [valid[k].eq(valid[k - 1]), neuron[k].eq(neuron[k - 1])]

        # Stage 0: accept, stalling on a read-after-write hazard.
        hazard = Signal()
        m.d.comb += hazard.eq(
            any_of(valid[k] & (neuron[k] == self.i_current.payload.neuron) for k in range(1, self.hazard_stages + 1))
        )
        m.d.comb += [
            self.i_current.ready.eq(advance & ~hazard),
            state_rd.addr.eq(self.i_current.payload.neuron),
            state_rd.en.eq(advance),
            param_rd.addr.eq(self.i_current.payload.neuron),
            param_rd.en.eq(advance),
        ]

        # Stage 1: memory words arrive with the beat's current.
        current_1 = Signal(p.input_fmt.shape())
        with m.If(advance):
            m.d.sync += current_1.eq(self.i_current.payload.current)

        # Stage 2: multiplier operands registered (u' = Re u - s_prev/2 comes from the memory).
        u_reset_2 = Signal(self.state_row_layout["u_reset"].shape)
        im_2 = Signal(p.state_fmt.shape())
        decay_re_2 = Signal(p.coef_fmt.shape())
        decay_im_2 = Signal(p.coef_fmt.shape())
        gain_2 = Signal(p.gain_fmt.shape())
        current_2 = Signal(p.input_fmt.shape())
        with m.If(advance):
            m.d.sync += [
                u_reset_2.eq(state_rd.data.u_reset),
                im_2.eq(state_rd.data.im),
                decay_re_2.eq(param_rd.data.decay_re),
                decay_im_2.eq(param_rd.data.decay_im),
                gain_2.eq(param_rd.data.gain),
                current_2.eq(current_1),
            ]

        # Stage 3: the five real products (D4), each decay product as registered partial products
        # of at most 18x18 bits (one MULT18X18D each): an operand wider than a multiplier port is
        # split into its low 17 bits (unsigned) and the signed rest.
        products = {}
        for name, coef, operand in (
            ("rr", decay_re_2, u_reset_2),
            ("ii", decay_im_2, im_2),
            ("ir", decay_im_2, u_reset_2),
            ("ri", decay_re_2, im_2),
        ):
            products[name] = []
            for part, shift in operand_parts(operand):
                partial = Signal.like(coef * part, name=f"{name}_{shift}_3")
                with m.If(advance):
                    m.d.sync += partial.eq(coef * part)
                products[name].append((partial, shift))
        bx_3 = Signal.like(gain_2 * current_2)
        with m.If(advance):
            m.d.sync += bx_3.eq(gain_2 * current_2)

        # Stage 4: the partial products of each component summed per weight 2**shift. The
        # unshifted group also takes b*x, aligned to P fractional bits, and the rounding
        # constant 2**(P-F-1) (D1); the other groups wait for stage 5. All exact.
        round_const = (1 << (p.round_bits - 1)) if p.round_bits > 0 else 0
        groups = {}
        for component, terms in (("re", (("rr", 1), ("ii", -1))), ("im", (("ir", 1), ("ri", 1)))):
            by_shift = {}
            for name, sign in terms:
                for partial, shift in products[name]:
                    term = partial if sign > 0 else -partial
                    by_shift[shift] = term if shift not in by_shift else by_shift[shift] + term
            extra = (bx_3 << p.input_shift) + round_const if component == "re" else Const(round_const)
            by_shift[0] = (by_shift.get(0, Const(0)) << p.decay_shift) + extra
            groups[component] = []
            for shift, total in sorted(by_shift.items()):
                group = Signal.like(total, name=f"{component}_{shift}_4")
                with m.If(advance):
                    m.d.sync += group.eq(total)
                groups[component].append((group, shift))

        # Stage 5: the groups at full width, one floor shift each: round half up to F bits.
        rounded = {}
        for component, parts in groups.items():
            total = parts[0][0]  # shift 0, already aligned to P fractional bits
            for group, shift in parts[1:]:
                total = total + (group << (shift + p.decay_shift))
            rounded[component] = total >> p.round_bits
        re_5 = Signal.like(rounded["re"])
        im_5 = Signal.like(rounded["im"])
        with m.If(advance):
            m.d.sync += [re_5.eq(rounded["re"]), im_5.eq(rounded["im"])]

        # Stage 6: saturate (D2); the strict spike compare runs on the unclamped value, which
        # gives the same answer because clamping is monotonic and 1/2 lies inside state_fmt.
        re_sat, re_clamped = saturate(re_5, p.state_fmt)
        im_sat, im_clamped = saturate(im_5, p.state_fmt)
        re_6 = Signal(p.state_fmt.shape())
        im_6 = Signal(p.state_fmt.shape())
        spike_6 = Signal()
        saturated_6 = Signal()
        with m.If(advance):
            m.d.sync += [
                re_6.eq(re_sat),
                im_6.eq(im_sat),
                spike_6.eq(re_5 > p.half_q),
                saturated_6.eq(re_clamped | im_clamped),
            ]

        # Write-back of the half-reset state for the next step (exact), and output register.
        m.d.comb += [
            state_wr.addr.eq(neuron[6]),
            state_wr.data.u_reset.eq(re_6 - Mux(spike_6, p.half_q, 0)),
            state_wr.data.im.eq(im_6),
            state_wr.en.eq(valid[6] & advance),
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
                out_state.neuron.eq(neuron[6]),
                out_state.re.eq(re_6),
                out_state.im.eq(im_6),
                out_state.spike.eq(spike_6),
                out_state.saturated.eq(saturated_6),
                spike_pending.eq(valid[6] & spike_6),
                state_pending.eq(valid[6] if self._emit_state else 0),
            ]
            with m.If(valid[6] & saturated_6 & (self.saturation_count != (1 << COUNTER_WIDTH) - 1)):
                m.d.sync += self.saturation_count.eq(self.saturation_count + 1)
        with m.Else():
            with m.If(self.o_spike.ready):
                m.d.sync += spike_pending.eq(0)
            if self._emit_state:
                with m.If(self.o_state.ready):
                    m.d.sync += state_pending.eq(0)
        return m
