"""Time-multiplexed SiLIF core (SSM-inspired LIF, NEURON_MATH §1.4, docs/decisions.md).

The hardware mirror of :meth:`golden.silif.SiLIFParams.step`; the golden model's docstring is
the specification, this module only schedules it.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, unsigned
from amaranth.lib import data

from golden.silif import NEURON_KIND, SiLIFParams
from hw.arith import saturate, sum_shifted
from hw.cores.neuron_core import NeuronCore, stage_registers
from hw.ecp5 import registered_partial_products
from hw.memories import parameter_memory, state_memory

__all__ = ["SiLIFCore"]



class SiLIFCore(NeuronCore):
    """``params.n_neurons`` SiLIF neurons sharing one pipelined datapath.

    Each beat on :attr:`i_current` updates one neuron with its input current ``x`` (the
    BN-folded linear output, bias included) for the current time step, in the order of
    decision 'SiLIF update order'. With ``F`` the fractional bits of ``x``, ``u``, ``w``, ``b``;
    ``Cd`` those of the decays, ``Ca`` those of ``a`` and ``C = max(Cd, Ca)``::

        w = sat(round_C(beta*w << (C-Cd) + a*u << (C-Ca) + (s_prev ? b << C : 0)))
        u = sat(round_Cd(alpha*(u - (s_prev ? 1.0 : 0)) + gain*(x - w)))      # the new w
        s = u > 1.0                                                             # strict

    ``round_n`` rounds half up once per equation, on the exact full-width sum;
    ``sat`` clamps to ``state_fmt`` (:func:`hw.arith.saturate`). ``alpha``, ``beta``,
    ``gain = 1 - alpha``, ``a`` and ``b`` are per-neuron words of a read-only parameter memory
    (the precomputed coefficients of). A time step is one beat per neuron, in any order; a
    neuron's state advances exactly when a beat for it is accepted. The state memory (``u``,
    ``w``, previous spike) starts at zero from the bitstream / simulation initial value; the
    domain reset clears the pipeline and :attr:`saturation_count` but not the state memory.
    Neuron indices ``>= n_neurons`` are a caller error.

    Parameters
    ----------
    params : SiLIFParams
        Formats and per-neuron coefficients (the parameter memory's initial contents).
    emit_state, clearable : bool
        As for :class:`~hw.cores.neuron_core.NeuronCore`.

    Members
    -------
    Those of :class:`~hw.cores.neuron_core.NeuronCore`, with
    o_state
        ``{neuron, u: state_fmt, w: state_fmt, spike: 1, saturated: 1}``: one beat per update,
        in input order. Present only with ``emit_state=True``.
    saturation_count
        Number of updates in which the ``w`` or the ``u`` clamp acted; sticks at ``2**32 - 1``.

    Timing
    ------
    * **Latency**: :attr:`latency` (19) cycles from accepting a beat to its output beats.
    * **Throughput**: one update per clock while the outputs are ready and consecutive beats
      name neurons that are not in flight.
    * **Read-after-write hazards** stall: ``i_current.ready`` is low while the offered neuron
      is in one of the :attr:`hazard_stages` (18) pipeline stages, the write-back stage
      included (the state read port is not transparent, so nothing but a register follows the
      block RAM output). With ``n_neurons <= hazard_stages`` the core runs slower than one
      update per clock, never wrong.
    * **Backpressure**: as every :class:`~hw.cores.neuron_core.NeuronCore`
      (:meth:`~hw.cores.neuron_core.NeuronCore.output_register`).

    Pipeline (stage ``k`` holds a beat ``k`` cycles after it was accepted). Every multiply is
    split into 18-bit partial products, each a ``MULT18X18D`` with its input, pipeline and output
    registers (:func:`hw.ecp5.registered_partial_products`: the unsigned coefficient meets the
    biased 18-bit slices of the signed operand), so the products of stage ``k`` operands are in
    stage ``k + 3``. They go into fabric registers a stage later and are summed the stage after
    that: the route out of a multiplier is a cycle of its own, and no carry chain follows a
    multiplier or its route in the same cycle::

        0  accept: address the state and parameter memories
        1  memory words read (u, w, s_prev, alpha, beta, gain, a, b)
        2  memory words in the block RAMs' output registers (operands of beta*w, a*u)
        3  u - s_prev (exact; operand of alpha*(u - s)), s_prev ? b : 0
        5  partial products of beta*w, a*u out of the multipliers
        6  partial products of beta*w, a*u in fabric registers; those of alpha*(u - s) out
        7  beta*w, a*u summed (full width); partial products of alpha*(u - s) in fabric
        8  partial w sum beta*w + a*u; alpha*(u - s) + the u rounding constant summed (the
           constant rides in the bias term of alpha*(u - s)'s partial products)
        9  w rounded: partial + (b_inc << C | 2**(C-1)), >> C
        10 w saturated
        11 x - w (exact; operand of gain*(x - w))
        14 partial products of gain*(x - w) out
        15 partial products of gain*(x - w) in fabric registers
        16 gain*(x - w) summed (full width)
        17 u sum (already carrying the rounding constant), >> Cd
        18 u saturated; spike = rounded u > 1.0 (equal to the saturated u's compare)
        -  write-back, into the output register (19)
    """

    #: Cycles from accepting an input beat to its output beats being valid.
    latency = 19
    #: Pipeline stages (1..hazard_stages) whose neuron may not be offered again yet: all of
    #: them, the write-back stage (18) included, because the state read port is not
    #: transparent (no bypass multiplexer behind the block RAM output).
    hazard_stages = 18

    params_class = SiLIFParams

    def state_fields(self, params: SiLIFParams) -> dict:
        """``o_state`` words, in this order."""
        return {"u": params.state_fmt.shape(), "w": params.state_fmt.shape()}

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

        state_rd, state_wr = state_memory(m, "state_mem", shape=self.state_row_layout, depth=p.n_neurons,
                                          output_register=True)
        param_rd = parameter_memory(m, "param_mem", shape=self.param_row_layout, init=self.parameter_words(),
                                    output_register=True)

        # Stage 0: accept, stalling on a read-after-write hazard; every stage register moves
        # when `advance` is high (the output register can take a beat).
        advance, valid, neuron = self.pipeline_control(m, stages, (state_rd, param_rd))
        stage = stage_registers(m, advance)

        def products(name, coef, operand, addend=0):
            """``coef * operand + addend`` as registered partial products (hw.ecp5), each also in
            a fabric register: ``[(term, shift)]`` four stages after the operands, summed by
            :func:`hw.arith.sum_shifted`."""
            return registered_partial_products(m, name, coef, operand, en=advance, fabric_registers=1,
                                               addend=addend)

        def delay(name, value, stages_from, stages_to, shape=None):
            """``value`` of stage ``stages_from`` carried along to stage ``stages_to``."""
            for k in range(stages_from + 1, stages_to + 1):
                value = stage(f"{name}_{k}", value, shape)
            return value

        # Stage 1: memory words read (in the block RAMs' read registers) with the beat's current.
        current_1 = stage("current_1", self.i_current.payload.current, p.input_fmt.shape())

        # Stage 2: the memory words out of the block RAMs' output registers (hw.memories,
        # output_register=True): no logic behind the block RAMs. They are the operands of the
        # two w products (out of the multipliers in stage 5, in fabric registers in stage 6).
        row, coef = state_rd.data, param_rd.data
        u_2, w_2, spike_prev_2 = row.u, row.w, row.spike
        alpha_2, beta_2, gain_2, a_2, b_2 = coef.alpha, coef.beta, coef.gain, coef.a, coef.b
        beta_w_6 = products("beta_w", beta_2, w_2)
        a_u_6 = products("a_u", a_2, u_2)

        # Stage 3: u - s_prev (exact, one bit wider than u), the operand of alpha*(u - s) (out
        # of the multipliers in stage 6, in fabric registers in stage 7), whose terms carry the
        # u equation's rounding constant (in the bias term: no adder of its own); the
        # spike-triggered increment s_prev ? b : 0 beside it.
        threshold = Const(p.threshold_q, p.state_fmt.shape())
        u_reset_3 = stage("u_reset_3", u_2 - Mux(spike_prev_2, threshold, 0))
        b_increment_3 = stage("b_increment_3", Mux(spike_prev_2, b_2, 0), p.b_fmt.shape())
        alpha_3 = stage("alpha_3", alpha_2)
        alpha_u_7 = products("alpha_u", alpha_3, u_reset_3, addend=1 << (decay_bits - 1))

        # Stage 7: the w products summed at full width.
        beta_w_7 = stage("beta_w_7", sum_shifted(beta_w_6))
        a_u_7 = stage("a_u_7", sum_shifted(a_u_6))

        # Stage 8: partial w sum beta*w + a*u; alpha*(u - s) plus the u equation's rounding
        # constant summed, waiting for gain*(x - w).
        partial_w_8 = stage("partial_w_8", (beta_w_7 << shift_decay) + (a_u_7 << shift_a))
        alpha_u_rounding_8 = stage("alpha_u_rounding_8", sum_shifted(alpha_u_7))
        b_increment_8 = delay("b_increment", b_increment_3, 3, 8)

        # Stage 9: w rounded once. b << C and 2**(C-1) occupy disjoint bits: one operand.
        rounding_w = Cat(Const(1 << (coef_bits - 1), coef_bits), b_increment_8)
        w_rounded_9 = stage("w_rounded_9", (partial_w_8 + rounding_w) >> coef_bits)

        # Stage 10: w saturated.
        w_next, w_clamped = saturate(w_rounded_9, p.state_fmt)
        w_10 = stage("w_10", w_next, p.state_fmt.shape())
        w_clamped_10 = stage("w_clamped_10", w_clamped, unsigned(1))

        # Stage 11: x - w, exact: the operand of gain*(x - w) (out of the multipliers in
        # stage 14, in fabric registers in stage 15).
        current_10 = delay("current", current_1, 1, 10)
        drive_11 = stage("drive_11", current_10 - w_10)
        gain_11 = delay("gain", gain_2, 2, 11)
        gain_drive_15 = products("gain_drive", gain_11, drive_11)

        # Stage 16: gain*(x - w) summed at full width.
        gain_drive_16 = stage("gain_drive_16", sum_shifted(gain_drive_15))
        alpha_u_rounding_16 = delay("alpha_u_rounding", alpha_u_rounding_8, 8, 16)
        w_16 = delay("w", w_10, 10, 16)
        w_clamped_16 = delay("w_clamped", w_clamped_10, 10, 16)

        # Stage 17: u sum, rounded once (the constant rode along since stage 8).
        u_rounded_17 = stage("u_rounded_17", (alpha_u_rounding_16 + gain_drive_16) >> decay_bits)
        w_17 = stage("w_17", w_16)
        w_clamped_17 = stage("w_clamped_17", w_clamped_16)

        # Stage 18: u saturated; the strict compare on the unsaturated u gives the same spike
        # because the threshold lies strictly inside state_fmt.
        u_next, u_clamped = saturate(u_rounded_17, p.state_fmt)
        u_18 = stage("u_18", u_next, p.state_fmt.shape())
        spike_18 = stage("spike_18", u_rounded_17 > p.threshold_q, unsigned(1))
        saturated_18 = stage("saturated_18", w_clamped_17 | u_clamped, unsigned(1))
        w_18 = stage("w_18", w_17)

        # Write-back and output register.
        self.write_back(m, state_wr, neuron=neuron[stages], enable=valid[stages] & advance,
                        fields={"u": u_18, "w": w_18, "spike": spike_18})

        self.output_register(
            m, advance, valid=valid[stages], neuron=neuron[stages], fields={"u": u_18, "w": w_18},
            spike=spike_18, saturated=saturated_18,
        )
        return m


#: This module's entry in the core registry (:func:`hw.cores.core_classes`): the kind and its core.
NEURON_CORE = (NEURON_KIND, SiLIFCore)
