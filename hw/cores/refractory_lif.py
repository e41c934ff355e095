"""Time-multiplexed refractory LIF core (SPikE-SSM, NEURON_MATH §2.2, docs/decisions.md).

The hardware mirror of :class:`golden.refractory_lif.RefractoryLIFParams.step`; the golden
model's docstring is the specification, this module only schedules it.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, unsigned
from amaranth.lib import data

from golden.fixed import round_shift
from golden.refractory_lif import NEURON_KIND, RefractoryLIFParams
from hw.arith import biased_partial_operands, saturate, sum_shifted
from hw.cores.neuron_core import NeuronCore
from hw.ecp5 import registered_product
from hw.memories import parameter_memory, state_memory

__all__ = ["RefractoryLIFCore"]

#: Last computing stage: it writes back and feeds the output register.
_LAST_STAGE = 11


class RefractoryLIFCore(NeuronCore):
    """``params.n_neurons`` refractory LIF neurons sharing one pipelined datapath.

    Each beat on :attr:`i_current` updates one neuron with its input current for the current
    time step, in the order of decision 'Refractory LIF equations' (all formats from ``params``;
    ``F`` fractional bits shared by ``I``, ``v``, ``u``, ``R``, ``v_th``, ``U_th``; ``C`` fractional
    bits of ``coef_fmt``)::

        v = sat_state(round_C(tau * u) + I)                  # charge
        R = sat_refr(round_C(tau_r * R) + (s_prev ? U_th : 0))   # refractory pulse
        s = (v - R - v_th >= 0)                              # exact, fires at equality
        u = sat_state(v - (s ? v_th : 0))                    # soft reset

    ``round_C`` is :func:`golden.fixed.round_shift` (round half up) applied to the full-width
    product, ``sat_*`` is :func:`hw.arith.saturate`. A time step is one beat per neuron, in
    any order; a neuron's state advances exactly when a beat for it is accepted. State memories
    (``u``, ``R``, previous spike) start at zero from the bitstream / simulation initial
    value; the domain reset clears the pipeline and :attr:`saturation_count` but not the state
    memories. Neuron indices ``>= n_neurons`` are a caller error (the update then reads and
    writes an undefined word).

    Parameters
    ----------
    params : RefractoryLIFParams
        Formats, decays (compile-time constants) and per-neuron ``v_th``, ``U_th`` (the
        initial contents of a read-only parameter memory).
    emit_state, clearable : bool
        As for :class:`~hw.cores.neuron_core.NeuronCore`.

    Members
    -------
    Those of :class:`~hw.cores.neuron_core.NeuronCore`, with
    o_state
        ``{neuron, v: state_fmt, refr: refr_fmt, u: state_fmt, spike: 1, saturated: 1}``: one
        beat per update, in input order. Present only with ``emit_state=True``.
    saturation_count
        Number of updates in which any of the three clamps acted; sticks at ``2**32 - 1``.

    Notes
    -----
    Timing and flow control:

    * **Latency**: :attr:`latency` (12) cycles: a beat transferred on clock edge ``k`` has its
      output beats valid after edge ``k + latency - 1``, so they transfer on edge
      ``k + latency`` at the earliest.
    * **Throughput**: one update per clock while the outputs are ready and no neuron is offered
      again within :attr:`hazard_stages` beats of its previous update: visiting more than
      ``hazard_stages`` neurons in the same order every step runs at full rate; an order that
      changes between steps may stall a few cycles where a neuron ends one step and starts the
      next.
    * **Read-after-write hazards** are resolved by stalling, not forwarding: ``i_current.ready``
      is low while the offered neuron is still in one of the first :attr:`hazard_stages`
      pipeline stages (its previous update not yet written back; the last of them writes in the
      cycle it leaves, and the state memory's read port is not transparent, which keeps logic
      off the block RAM outputs). So with ``n_neurons <= hazard_stages`` (or a neuron repeated
      within that many beats) the core runs slower than one update per clock, never wrong.
    * **Backpressure**: as every :class:`~hw.cores.neuron_core.NeuronCore`
      (:meth:`~hw.cores.neuron_core.NeuronCore.output_register`).

    Pipeline (stage ``k`` holds a beat ``k`` cycles after it was accepted)::

        0  accept: address the state and parameter memories
        1  memory words read (u, R, s_prev, v_th, U_th)
        2  memory words in the block RAMs' output registers (the multiplier operand registers)
        3  slices of u and R with tau and tau_r in the multipliers' input registers
           (hw.ecp5.Multiplier, one MULT18X18D per 18x18 slice, see
           hw.arith.biased_partial_operands); U_th * s_prev chosen
        4  partial products in the multipliers' pipeline registers
        5  partial products in the multipliers' output registers
        6  partial products summed (exact); constant slice offsets moved onto I and U_th*s_prev
        7  products rounded to F fractional bits (round_shift)
        8  v and R at full width (exact adds)
        9  v and R saturated
        10 v - v_th (exact)
        11 spike test (v - v_th) - R >= 0 (exact) beside saturated v - v_th
        -  soft-reset mux, write-back, into the output register (12)
    """

    #: Clock edges from an input beat's transfer to the earliest transfer of its output beats.
    latency = _LAST_STAGE + 1
    #: Pipeline stages (1..hazard_stages) whose neuron may not be offered again yet.
    hazard_stages = _LAST_STAGE

    params_class = RefractoryLIFParams

    def state_fields(self, params: RefractoryLIFParams) -> dict:
        """``o_state`` words, in this order."""
        return {"v": params.state_fmt.shape(), "refr": params.refr_fmt.shape(), "u": params.state_fmt.shape()}

    @property
    def state_row_layout(self) -> data.StructLayout:
        """One word of the state memory: ``{u, refr, spike}`` (spike = previous step's spike)."""
        p = self._params
        return data.StructLayout({"u": p.state_fmt.shape(), "refr": p.refr_fmt.shape(), "spike": unsigned(1)})

    @property
    def param_row_layout(self) -> data.StructLayout:
        """One word of the parameter memory: ``{v_th, u_th}`` in ``threshold_fmt``."""
        shape = self._params.threshold_fmt.shape()
        return data.StructLayout({"v_th": shape, "u_th": shape})

    # --- hardware -------------------------------------------------------------------------
    def elaborate(self, platform):
        p = self._params
        m = Module()
        coef_bits = p.coef_fmt.frac_bits
        n_neurons = p.n_neurons

        state_rd, state_wr = state_memory(m, "state_mem", shape=self.state_row_layout, depth=n_neurons,
                                          output_register=True)
        param_rd = parameter_memory(m, "param_mem", shape=self.param_row_layout, init=self.parameter_words(),
                                    output_register=True)

        # Stage 0: accept, stalling on a read-after-write hazard; every stage register moves
        # when `advance` is high (the output register can take a beat).
        advance, valid, neuron = self.pipeline_control(m, _LAST_STAGE, (state_rd, param_rd))

        # Stage 1: memory words read (in the block RAMs' read registers) with the beat's current.
        current_1 = Signal(p.input_fmt.shape())
        with m.If(advance):
            m.d.sync += current_1.eq(self.i_current.payload.current)

        # Stage 2: memory words out of the block RAMs' output registers (hw.memories,
        # output_register=True): no logic after the block RAMs; these are also the multiplier
        # operand registers.
        u_2, refr_2, spike_prev_2 = state_rd.data.u, state_rd.data.refr, state_rd.data.spike
        u_th_2, v_th_2 = param_rd.data.u_th, param_rd.data.v_th
        current_2 = Signal(p.input_fmt.shape())
        with m.If(advance):
            m.d.sync += current_2.eq(current_1)

        # Stages 3 to 5: the slices of tau*u and tau_r*R through the input (3), pipeline (4)
        # and output (5) registers of their multipliers (hw.ecp5.Multiplier, one MULT18X18D
        # each); U_th * s_prev chosen beside them. value * coef == sum(part << shift) -
        # (offset << C), see hw.arith.biased_partial_operands.
        tau = Const(p.tau_q, p.coef_fmt.shape())
        tau_r = Const(p.tau_r_q, p.coef_fmt.shape())
        operands_u, offset_u = biased_partial_operands(u_2, tau, coef_bits)
        operands_r, offset_r = biased_partial_operands(refr_2, tau_r, coef_bits)
        parts_u_5 = [(registered_product(m, f"decay_u_part{i}", value, coef, en=advance), shift)
                     for i, (value, coef, shift) in enumerate(operands_u)]
        parts_r_5 = [(registered_product(m, f"decay_r_part{i}", value, coef, en=advance), shift)
                     for i, (value, coef, shift) in enumerate(operands_r)]
        refr_increment_3 = Signal(p.threshold_fmt.shape())
        v_th_3 = Signal.like(v_th_2)
        current_3 = Signal.like(current_2)
        with m.If(advance):
            m.d.sync += [
                refr_increment_3.eq(Mux(spike_prev_2, u_th_2, 0)),
                v_th_3.eq(v_th_2),
                current_3.eq(current_2),
            ]
        refr_increment_5, v_th_5, current_5 = refr_increment_3, v_th_3, current_3
        for k in (4, 5):
            carried = [Signal.like(value, name=f"{name}_{k}") for name, value in
                       (("refr_increment", refr_increment_5), ("v_th", v_th_5), ("current", current_5))]
            with m.If(advance):
                m.d.sync += [reg.eq(value) for reg, value in zip(carried, (refr_increment_5, v_th_5, current_5))]
            refr_increment_5, v_th_5, current_5 = carried

        # Stage 6: partial products summed; the offsets move onto the addends (exact: they are
        # whole multiples of 2**C, so they commute with the rounding shift).
        decay_u_full = sum_shifted(parts_u_5)
        decay_r_full = sum_shifted(parts_r_5)
        decay_u_6 = Signal.like(decay_u_full)
        decay_r_6 = Signal.like(decay_r_full)
        current_6 = Signal.like(current_5 - offset_u)
        refr_increment_6 = Signal.like(refr_increment_5 - offset_r)
        v_th_6 = Signal.like(v_th_5)
        with m.If(advance):
            m.d.sync += [
                decay_u_6.eq(decay_u_full),
                decay_r_6.eq(decay_r_full),
                current_6.eq(current_5 - offset_u),
                refr_increment_6.eq(refr_increment_5 - offset_r),
                v_th_6.eq(v_th_5),
            ]

        # Stage 7: products rounded back to F fractional bits.
        decay_u_7 = Signal.like(round_shift(decay_u_6, coef_bits))
        decay_r_7 = Signal.like(round_shift(decay_r_6, coef_bits))
        current_7 = Signal.like(current_6)
        refr_increment_7 = Signal.like(refr_increment_6)
        v_th_7 = Signal.like(v_th_6)
        with m.If(advance):
            m.d.sync += [
                decay_u_7.eq(round_shift(decay_u_6, coef_bits)),
                decay_r_7.eq(round_shift(decay_r_6, coef_bits)),
                current_7.eq(current_6),
                refr_increment_7.eq(refr_increment_6),
                v_th_7.eq(v_th_6),
            ]

        # Stage 8: charge and refractory pulse at full width (exact).
        v_full_8 = Signal.like(decay_u_7 + current_7)
        refr_full_8 = Signal.like(decay_r_7 + refr_increment_7)
        v_th_8 = Signal.like(v_th_7)
        with m.If(advance):
            m.d.sync += [
                v_full_8.eq(decay_u_7 + current_7),
                refr_full_8.eq(decay_r_7 + refr_increment_7),
                v_th_8.eq(v_th_7),
            ]

        # Stage 9: v and R saturated.
        v_next, v_clamped = saturate(v_full_8, p.state_fmt)
        refr_next, refr_clamped = saturate(refr_full_8, p.refr_fmt)
        v_9 = Signal(p.state_fmt.shape())
        refr_9 = Signal(p.refr_fmt.shape())
        v_or_refr_clamped_9 = Signal()
        v_th_9 = Signal.like(v_th_8)
        with m.If(advance):
            m.d.sync += [
                v_9.eq(v_next),
                refr_9.eq(refr_next),
                v_or_refr_clamped_9.eq(v_clamped | refr_clamped),
                v_th_9.eq(v_th_8),
            ]

        # Stage 10: v - v_th (exact), shared by the spike test and the soft reset.
        v_over_th_10 = Signal.like(v_9 - v_th_9)
        v_10 = Signal.like(v_9)
        refr_10 = Signal.like(refr_9)
        v_or_refr_clamped_10 = Signal()
        with m.If(advance):
            m.d.sync += [
                v_over_th_10.eq(v_9 - v_th_9),
                v_10.eq(v_9),
                refr_10.eq(refr_9),
                v_or_refr_clamped_10.eq(v_or_refr_clamped_9),
            ]

        # Stage 11: exact spike test (v - v_th) - R >= 0 beside the saturated soft-reset value.
        u_fired_next, u_fired_clamped = saturate(v_over_th_10, p.state_fmt)
        spike_11 = Signal()
        u_fired_11 = Signal(p.state_fmt.shape())
        u_fired_clamped_11 = Signal()
        v_11 = Signal.like(v_10)
        refr_11 = Signal.like(refr_10)
        v_or_refr_clamped_11 = Signal()
        with m.If(advance):
            m.d.sync += [
                spike_11.eq((v_over_th_10 - refr_10) >= 0),
                u_fired_11.eq(u_fired_next),
                u_fired_clamped_11.eq(u_fired_clamped),
                v_11.eq(v_10),
                refr_11.eq(refr_10),
                v_or_refr_clamped_11.eq(v_or_refr_clamped_10),
            ]

        # Soft-reset mux, write-back and output register.
        u_11 = Mux(spike_11, u_fired_11, v_11)
        saturated_11 = v_or_refr_clamped_11 | (spike_11 & u_fired_clamped_11)
        self.write_back(m, state_wr, neuron=neuron[_LAST_STAGE], enable=valid[_LAST_STAGE] & advance,
                        fields={"u": u_11, "refr": refr_11, "spike": spike_11})

        self.output_register(
            m, advance, valid=valid[_LAST_STAGE], neuron=neuron[_LAST_STAGE], fields={"v": v_11, "refr": refr_11, "u": u_11},
            spike=spike_11, saturated=saturated_11,
        )
        return m


#: This module's entry in the core registry (:func:`hw.cores.core_classes`): the kind and its core.
NEURON_CORE = (NEURON_KIND, RefractoryLIFCore)
