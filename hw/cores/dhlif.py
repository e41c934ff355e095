"""Time-multiplexed DH-LIF core: dendritic branches and a soma (FLAMES, NEURON_MATH §3.3, docs/decisions.md).

The hardware mirror of :func:`golden.dhlif.run_int`; the golden model's docstring is the
specification, this module only schedules it. The synaptic sums (``W p`` over each branch's
input slice) are formed upstream; :func:`golden.dhlif.branch_drives` computes exactly what the
core expects on its input, in :func:`golden.dhlif.drive_format`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, unsigned
from amaranth.lib import data

from golden.dhlif import NEURON_KIND, DHLIFParams, drive_format
from hw.arith import MULTIPLIER_PORT_BITS, any_of, saturate, sum_shifted
from hw.cores.neuron_core import NeuronCore, stage_registers
from hw.ecp5 import registered_partial_products
from hw.memories import parameter_memory, state_memory

__all__ = ["DHLIFCore"]


class DHLIFCore(NeuronCore):
    """``params.n_neurons`` DH-LIF neurons with ``D`` dendritic branches sharing one pipelined datapath.

    Each beat on :attr:`i_drive` advances one neuron by one tick with its ``D`` branch
    drives, in the order of decision 'Dendrite equations'. With ``C`` the fractional bits of the
    decays and ``F`` those shared by drives, currents and membrane::

        i_d = sat_I(round_C(alpha_d * i_d) + drive_d)                 # every branch
        u   = sat_U(round_C(beta * u) + sum_d i_d - (s_prev ? theta : 0))
        s   = u > theta                                                # strict, on the clamped u

    ``round_C`` rounds the full-width product half up; ``sat_I`` / ``sat_U`` clamp to
    ``current_fmt`` / ``membrane_fmt`` (decision 'Saturation'). ``alpha_d`` and ``beta`` are per-neuron words of a
    read-only parameter memory. A tick is one beat per neuron, in any order. The state memory
    (``i_d``, ``u``, previous spike) starts at zero; the domain reset clears the pipeline
    and :attr:`saturation_count`, not the state memory. Neuron indices ``>= n_neurons`` are a
    caller error.

    Parameters
    ----------
    params : DHLIFParams
        Formats, decays and threshold (the parameter memory's initial contents); ``decay_fmt``
        of at most 17 bits. The weights stay upstream (:func:`golden.dhlif.branch_drives`).
    emit_state, clearable : bool
        As for :class:`~hw.cores.neuron_core.NeuronCore`.

    Members
    -------
    Those of :class:`~hw.cores.neuron_core.NeuronCore`, with
    i_drive : ``In(stream.Signature(input_layout))``
        ``{neuron, drive_0 .. drive_{D-1}}``, drives in :func:`golden.dhlif.drive_format`.
    o_state
        ``{neuron, current_0 .. current_{D-1}: current_fmt, u: membrane_fmt, spike, saturated}``,
        one beat per update in input order. Only with ``emit_state=True``.
    saturation_count
        Updates in which any current clamp or the membrane clamp acted; sticks at ``2**32 - 1``.

    Timing
    ------
    * **Latency**: :attr:`latency` (13) cycles from accepting a beat to its output beats.
    * **Throughput**: one update per clock while the outputs are ready and consecutive beats
      name neurons that are not in flight.
    * **Read-after-write hazards** stall: ``i_drive.ready`` is low while the offered neuron is
      in one of the :attr:`hazard_stages` (12) pipeline stages, the write-back stage included
      (the state read port is not transparent, so nothing but a register follows the block RAM
      output). With ``n_neurons <= hazard_stages`` the core runs slower than one update per
      clock, never wrong.
    * **Backpressure**: as every :class:`~hw.cores.neuron_core.NeuronCore`
      (:meth:`~hw.cores.neuron_core.NeuronCore.output_register`).

    Pipeline (stage ``k`` holds a beat ``k`` cycles after it was accepted). Every product is
    split into partial products, each a ``MULT18X18D`` with its input, pipeline and output
    registers (:func:`hw.ecp5.registered_partial_products`: the decay, at most 17 bits and given
    a zero sign bit, meets the 17-bit parts of the signed state word), so the products of stage 2
    operands are in stage 5. They go into fabric registers a stage later and are summed, with the
    rounding constant, the stage after that: the route out of a multiplier is a cycle of its own,
    and no carry chain follows a multiplier or its route in the same cycle::

        0  accept: address the state and parameter memories
        1  memory words read (in the block RAMs' read registers)
        2  memory words in the block RAMs' output registers (operands of alpha_d*i_d, beta*u)
        3  s_prev ? theta : 0
        5  partial products of alpha_d*i_d, beta*u out of the multipliers
        6  those partial products in fabric registers
        7  alpha_d*i_d + 2**(C-1), beta*u + 2**(C-1) summed (full width)
        8  round_C(alpha_d*i_d) + drive_d; round_C(beta*u) - reset (the sums >> C)
        9  i_d clamped
        10 the soma sum's halves: round_C(beta*u) - reset + the even branches; the odd branches
        11 round_C(beta*u) - reset + sum_d i_d (exact)
        12 u clamped, spike (u > theta on the exact sum, unless theta is the format's maximum);
           write-back, into the output register (13)
    """

    #: Cycles from accepting an input beat to its output beats being valid.
    latency = 13
    #: Pipeline stages (1..hazard_stages) whose neuron may not be offered again yet: all of
    #: them, the write-back stage (12) included, because the state read port is not
    #: transparent (no bypass multiplexer behind the block RAM output).
    hazard_stages = latency - 1

    params_class = DHLIFParams
    input_name = "i_drive"

    def __init__(self, params: DHLIFParams, **kwargs):
        if isinstance(params, DHLIFParams) and params.decay_fmt.width > MULTIPLIER_PORT_BITS - 1:
            raise ValueError(f"the DH-LIF core takes decays of at most {MULTIPLIER_PORT_BITS - 1} bits (one signed "
                             f"multiplier port with a zero sign bit), not {params.decay_fmt}")
        super().__init__(params, **kwargs)

    def input_fields(self, params: DHLIFParams) -> dict:
        """The input beat's words: ``{drive_0 .. drive_{D-1}}`` in :func:`golden.dhlif.drive_format`."""
        return {f"drive_{d}": drive_format(params).shape() for d in range(params.n_branches)}

    def state_fields(self, params: DHLIFParams) -> dict:
        """``o_state`` words, in this order: ``{current_0 .. current_{D-1}, u}``."""
        return {**{f"current_{d}": params.current_fmt.shape() for d in range(params.n_branches)},
                "u": params.membrane_fmt.shape()}

    @classmethod
    def branch_inputs(cls, params: DHLIFParams) -> dict:
        """``{drive_d: (input slice d, drive_format)}``: the synapse stage sums each branch's slice."""
        return {f"drive_{d}": (sl, drive_format(params)) for d, sl in enumerate(params.slices)}

    @property
    def n_branches(self) -> int:
        return self._params.n_branches

    @property
    def drive_layout(self) -> data.StructLayout:
        """Payload of :attr:`i_drive` (the input layout): ``{neuron, drive_0 .. drive_{D-1}}``."""
        return self._input_layout

    @property
    def state_row_layout(self) -> data.StructLayout:
        """One word of the state memory: ``{current_0 .. current_{D-1}, u, spike}`` (previous spike)."""
        p = self._params
        return data.StructLayout(
            {
                **{f"current_{d}": p.current_fmt.shape() for d in range(p.n_branches)},
                "u": p.membrane_fmt.shape(),
                "spike": unsigned(1),
            }
        )

    @property
    def param_row_layout(self) -> data.StructLayout:
        """One word of the parameter memory: ``{alpha_0 .. alpha_{D-1}, beta}``."""
        p = self._params
        shape = p.decay_fmt.shape()
        return data.StructLayout({**{f"alpha_{d}": shape for d in range(p.n_branches)}, "beta": shape})

    # --- hardware -------------------------------------------------------------------------
    def elaborate(self, platform):
        p = self._params
        m = Module()
        branches = range(p.n_branches)
        decay_bits = p.decay_fmt.frac_bits
        rounding = 1 << (decay_bits - 1) if decay_bits else 0
        stages = self.latency - 1  # last pipeline stage index (write-back)

        state_rd, state_wr = state_memory(m, "state_mem", shape=self.state_row_layout, depth=p.n_neurons,
                                          output_register=True)
        param_rd = parameter_memory(m, "param_mem", shape=self.param_row_layout, init=[
            {**{f"alpha_{d}": int(p.branch_decay_q[h, d]) for d in branches}, "beta": int(p.soma_decay_q[h])}
            for h in range(p.n_neurons)
        ], output_register=True)

        # Stage 0: accept, stalling on a read-after-write hazard; every stage register moves
        # when `advance` is high (the output register can take a beat).
        advance, valid, neuron = self.pipeline_control(m, stages, (state_rd, param_rd))
        stage = stage_registers(m, advance)

        def delay(name, value, stages_from, stages_to, shape=None):
            """``value`` of stage ``stages_from`` carried along to stage ``stages_to``."""
            for k in range(stages_from + 1, stages_to + 1):
                value = stage(f"{name}_{k}", value, shape)
            return value

        def rounded_product(name, coef, operand):
            """``coef * operand + 2**(C-1)`` (exact) in stage 7 for operands of stage 2: the
            unsigned decay, given a zero sign bit, meets the 17-bit parts of the state word
            (hw.ecp5.registered_partial_products), their products out in stage 5, in fabric
            registers in stage 6 and summed into a register. The rounding constant sits in the
            zero low bits of the second part's term (one operand) when it fits there, else it is
            one more term."""
            parts = registered_partial_products(m, name, Cat(coef, Const(0, 1)).as_signed(), operand, en=advance,
                                                fabric_registers=1)
            if len(parts) > 1 and parts[1][1] >= decay_bits:
                (low, _), (high, shift), *rest = parts
                parts = [(low, 0), (Cat(Const(rounding, shift), high).as_signed(), 0), *rest]
            else:
                parts = [*parts, (Const(rounding), 0)]
            return stage(f"{name}_7", sum_shifted(parts))

        # Stage 1: memory words read (in the block RAMs' read registers) with the beat's drives.
        drive_shape = drive_format(p).shape()
        drive_1 = [stage(f"drive_{d}_1", self.i_drive.payload[f"drive_{d}"], drive_shape) for d in branches]

        # Stage 2: the memory words out of the block RAMs' output registers (hw.memories,
        # output_register=True): the multipliers' operands and the previous spike.
        row, coef = state_rd.data, param_rd.data
        alpha_i_7 = [rounded_product(f"alpha_i_{d}", coef[f"alpha_{d}"], row[f"current_{d}"]) for d in branches]
        beta_u_7 = rounded_product("beta_u", coef.beta, row.u)

        # Stage 3: the soft-reset amount, from the registered previous spike.
        threshold = Const(p.threshold_q, p.membrane_fmt.shape())
        reset_3 = stage("reset_3", Mux(row.spike, threshold, 0), p.membrane_fmt.shape())
        reset_7 = delay("reset", reset_3, 3, 7)
        drive_7 = [delay(f"drive_{d}", drive_1[d], 1, 7) for d in branches]

        # Stage 8: each product rounded once (its rounding constant added in stage 7), then the
        # exact additions.
        current_sum_8 = [stage(f"current_sum_{d}_8", (alpha_i_7[d] >> decay_bits) + drive_7[d]) for d in branches]
        u_partial_8 = stage("u_partial_8", (beta_u_7 >> decay_bits) - reset_7)

        # Stage 9: branch currents clamped.
        current_9, current_clamped_9 = [], []
        for d in branches:
            value, clamped = saturate(current_sum_8[d], p.current_fmt)
            current_9.append(stage(f"current_{d}_9", value, p.current_fmt.shape()))
            current_clamped_9.append(clamped)
        any_current_clamped_9 = stage("any_current_clamped_9", any_of(current_clamped_9), unsigned(1))
        u_partial_9 = stage("u_partial_9", u_partial_8)

        # Stage 10: the soma sum's two halves, exact: u_partial with the even branches, the odd ones.
        halves = ([u_partial_9, *current_9[0::2]], current_9[1::2])
        u_half_10 = [stage(f"u_half_{k}_10", sum(terms[1:], terms[0])) for k, terms in enumerate(halves) if terms]

        # Stage 11: soma sum, exact.
        u_sum_11 = stage("u_sum_11", sum(u_half_10[1:], u_half_10[0]))
        any_current_clamped_11 = delay("any_current_clamped", any_current_clamped_9, 9, 11)

        # Stage 12: membrane clamped; the spike is the strict threshold on the clamped membrane (as
        # the model), taken from the exact sum: above the threshold, the clamped sum is too unless
        # the threshold is the format's maximum, where no membrane exceeds it.
        u_next, u_clamped = saturate(u_sum_11, p.membrane_fmt)
        u_12 = stage("u_12", u_next, p.membrane_fmt.shape())
        can_spike = p.threshold_q < p.membrane_fmt.max_int
        spike_12 = stage("spike_12", (u_sum_11 > p.threshold_q) if can_spike else Const(0, 1), unsigned(1))
        saturated_12 = stage("saturated_12", any_current_clamped_11 | u_clamped, unsigned(1))
        current_12 = [delay(f"current_{d}", current_9[d], 9, 12) for d in branches]

        # Write-back and output register.
        self.write_back(m, state_wr, neuron=neuron[stages], enable=valid[stages] & advance,
                        fields={**{f"current_{d}": current_12[d] for d in branches}, "u": u_12, "spike": spike_12})
        self.output_register(m, advance, valid=valid[stages], neuron=neuron[stages],
                             fields={"u": u_12, **{f"current_{d}": current_12[d] for d in branches}}, spike=spike_12,
                             saturated=saturated_12)
        return m


#: This module's entry in the core registry (:func:`hw.cores.core_classes`): the kind and its core.
NEURON_CORE = (NEURON_KIND, DHLIFCore)
