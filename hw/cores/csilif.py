"""Time-multiplexed C-SiLIF core (SSM-inspired LIF, NEURON_MATH §1.5, docs/decisions.md).

The hardware mirror of :meth:`golden.csilif.CSiLIFParams.step`; the golden model's docstring is
the specification, this module only schedules it.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, signed, unsigned
from amaranth.lib import data

from golden.csilif import NEURON_KIND, CSiLIFParams
from hw.arith import operand_parts, saturate, sum_shifted
from hw.cores.neuron_core import NeuronCore, stage_registers
from hw.ecp5 import registered_product
from hw.memories import parameter_memory, state_memory

__all__ = ["CSiLIFCore"]


class CSiLIFCore(NeuronCore):
    """``params.n_neurons`` C-SiLIF neurons (one complex mode each) sharing one pipelined datapath.

    Each beat on :attr:`i_current` updates one neuron with its input current ``x`` for the
    current time step (formats from ``params``: ``x`` in ``input_fmt``, ``Re u``/``Im u`` in
    ``state_fmt`` with ``F`` fractional bits, ``lambda_r``/``lambda_i`` in ``coef_fmt``, ``b`` in
    ``gain_fmt``; ``P`` = :attr:`CSiLIFParams.product_frac_bits`)::

        u'     = Re u - (s_prev ? 1/2 : 0)                                 # exact half reset
        Re u   = sat(round_{P->F}(lambda_r*u' - lambda_i*Im u + b*x))      # decision 'Complex products': one rounding
        Im u   = sat(round_{P->F}(lambda_i*u' + lambda_r*Im u))
        s      = (Re u > 1/2)                                              # strict, exact

    Five real products per update, each at full width: the four of the complex decay (no
    three-multiply trick) and ``b*x``; each component sums its products at full width and
    rounds once, half up; ``sat`` is :func:`hw.arith.saturate`. A time step is one beat
    per neuron, in any order; a neuron's state advances exactly when a beat for it is accepted.
    The state memory holds ``u' = Re u - s/2`` (the half reset is applied at write-back, one
    integer bit wider than ``state_fmt``) and ``Im u``, and starts at zero from the bitstream /
    simulation initial value; the domain reset clears the pipeline and :attr:`saturation_count`
    but not the state memory. The per-neuron ``lambda_r``, ``lambda_i`` and ``b`` are the initial
    contents of a read-only parameter memory (precomputed off-line). Neuron indices
    ``>= n_neurons`` are a caller error (the update then reads and writes an undefined word).

    Parameters
    ----------
    params : CSiLIFParams
        Formats and per-neuron decays and gains.
    emit_state, clearable : bool
        As for :class:`~hw.cores.neuron_core.NeuronCore`.

    Members
    -------
    Those of :class:`~hw.cores.neuron_core.NeuronCore`, with
    o_state
        ``{neuron, re: state_fmt, im: state_fmt, spike: 1, saturated: 1}``: one beat per update,
        in input order. Present only with ``emit_state=True``.
    saturation_count
        Number of updates in which either clamp acted; sticks at ``2**32 - 1``.

    Timing
    ------
    * **Latency**: :attr:`latency` (9) cycles: a beat accepted on clock edge ``k`` makes its
      output beats valid from edge ``k + latency`` on.
    * **Throughput**: one update per clock while the outputs are ready and no neuron is offered
      again within :attr:`hazard_stages` (8) beats of its previous update.
    * **Read-after-write hazards** are resolved by stalling: ``i_current.ready`` is low while
      the offered neuron is in one of the :attr:`hazard_stages` pipeline stages, the write-back
      stage (8) included: the state read port is not transparent, so the block RAM output goes
      straight into a register (no bypass multiplexer behind it). A neuron's next update is
      accepted ``hazard_stages + 1`` (9) cycles after its previous one at the earliest. With
      ``n_neurons <= hazard_stages`` (or a neuron repeated within that many beats) the core
      runs slower than one update per clock, never wrong.
    * **Backpressure**: as every :class:`~hw.cores.neuron_core.NeuronCore`
      (:meth:`~hw.cores.neuron_core.NeuronCore.output_register`).

    Pipeline (stage ``k`` holds a beat ``k`` cycles after it was accepted)::

        0  accept: address the state and parameter memories
        1  memory words read (u' = Re u - s_prev/2, Im u, lambda_r, lambda_i, b)
        2  parameters in the block RAM's output register, state words registered (the
           multiplier operands)
        3  operands in the multipliers' input registers (hw.ecp5.Multiplier: one MULT18X18D per
           partial product, each at most 18x18: the 25-bit u' and 24-bit Im u are split into 17
           low (unsigned) and the upper (signed) bits)
        4  partial products in the multipliers' pipeline registers
        5  partial products in the multipliers' output registers
        6  per component, partial products of equal weight summed; b*x aligned to P fractional
           bits and the rounding constant join the low group
        7  the groups added at full width and shifted down to F fractional bits (one rounding
           per component)
        8  saturate both components; spike compare (exact, in parallel)
        -  write-back of (Re u - s/2, Im u), into the output register (9)
    """

    #: Cycles from accepting an input beat to its output beats being valid.
    latency = 9
    #: Pipeline stages (1..hazard_stages) whose neuron may not be offered again yet: all of
    #: them, the write-back stage (8) included.
    hazard_stages = 8

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
        stages = self.latency - 1  # last pipeline stage index (write-back)

        state_rd, state_wr = state_memory(m, "state_mem", shape=self.state_row_layout, depth=p.n_neurons)
        param_rd = parameter_memory(m, "param_mem", shape=self.param_row_layout, init=self.parameter_words(),
                                    output_register=True)

        # Stage 0: accept, stalling on a read-after-write hazard; every stage register moves
        # when `advance` is high (the output register can take a beat).
        advance, valid, neuron = self.pipeline_control(m, stages, (state_rd, param_rd))
        stage = stage_registers(m, advance)

        # Stage 1: memory words read (in the block RAMs' read registers) with the beat's current.
        current_1 = stage("current_1", self.i_current.payload.current, p.input_fmt.shape())

        # Stage 2: the multiplier operands; u' = Re u - s_prev/2 comes from the memory, so no
        # logic follows the block RAMs. The parameters leave the block RAM's output register
        # (hw.memories, output_register=True); the state word is registered in fabric: with the
        # state memory's output register too, Yosys 0.70 fails an assertion in ABC9
        # (abc_ops reintegration) on the default network's board top, where the state memory
        # is LUT RAM.
        u_reset_2, im_2 = stage("u_reset_2", state_rd.data.u_reset), stage("im_2", state_rd.data.im)
        decay_re_2, decay_im_2, gain_2 = param_rd.data.decay_re, param_rd.data.decay_im, param_rd.data.gain
        current_2 = stage("current_2", current_1)

        # Stages 3 to 5: the five real products, each decay product as partial products of
        # at most 18x18 bits (one MULT18X18D each, hw.ecp5.Multiplier; an operand wider than a
        # multiplier port is split into its low 17 bits (unsigned) and the signed rest), through
        # the multipliers' own input (3), pipeline (4) and output (5) registers.
        def product(name, a, b):
            return registered_product(m, f"{name}_product", a, b, en=advance)

        products = {}
        for name, coef, operand in (
            ("rr", decay_re_2, u_reset_2),
            ("ii", decay_im_2, im_2),
            ("ir", decay_im_2, u_reset_2),
            ("ri", decay_re_2, im_2),
        ):
            products[name] = [(product(f"{name}_{shift}", coef, part), shift) for part, shift in operand_parts(operand)]
        bx_5 = product("bx", gain_2, current_2)

        # Stage 6: the partial products of each component summed per weight 2**shift. The
        # unshifted group also takes b*x, aligned to P fractional bits, and the rounding
        # constant 2**(P-F-1) (decision 'Rounding'); the other groups wait for stage 7. All exact.
        round_const = (1 << (p.round_bits - 1)) if p.round_bits > 0 else 0
        groups = {}
        for component, terms in (("re", (("rr", 1), ("ii", -1))), ("im", (("ir", 1), ("ri", 1)))):
            by_shift = {}
            for name, sign in terms:
                for partial, shift in products[name]:
                    term = partial if sign > 0 else -partial
                    by_shift[shift] = term if shift not in by_shift else by_shift[shift] + term
            extra = (bx_5 << p.input_shift) + round_const if component == "re" else Const(round_const)
            by_shift[0] = (by_shift.get(0, Const(0)) << p.decay_shift) + extra
            groups[component] = [(stage(f"{component}_{shift}_6", total), shift) for shift, total in sorted(by_shift.items())]

        # Stage 7: the groups at full width, one floor shift each: round half up to F bits.
        rounded = {}
        for component, parts in groups.items():
            # the shift-0 group is already aligned to P fractional bits
            total = sum_shifted([(group, shift + p.decay_shift if shift else 0) for group, shift in parts])
            rounded[component] = stage(f"{component}_7", total >> p.round_bits)

        # Stage 8: saturate; the strict spike compare runs on the unclamped value, which
        # gives the same answer because clamping is monotonic and 1/2 lies inside state_fmt.
        re_sat, re_clamped = saturate(rounded["re"], p.state_fmt)
        im_sat, im_clamped = saturate(rounded["im"], p.state_fmt)
        re_8 = stage("re_8", re_sat, p.state_fmt.shape())
        im_8 = stage("im_8", im_sat, p.state_fmt.shape())
        spike_8 = stage("spike_8", rounded["re"] > p.half_q, unsigned(1))
        saturated_8 = stage("saturated_8", re_clamped | im_clamped, unsigned(1))

        # Write-back of the half-reset state for the next step (exact), and output register.
        self.write_back(m, state_wr, neuron=neuron[stages], enable=valid[stages] & advance,
                        fields={"u_reset": re_8 - Mux(spike_8, p.half_q, 0), "im": im_8})
        self.output_register(
            m, advance, valid=valid[stages], neuron=neuron[stages], fields={"re": re_8, "im": im_8},
            spike=spike_8, saturated=saturated_8,
        )
        return m


#: This module's entry in the core registry (:func:`hw.cores.core_classes`): the kind and its core.
NEURON_CORE = (NEURON_KIND, CSiLIFCore)
