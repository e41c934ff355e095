"""Time-multiplexed DH-LIF core: dendritic branches and a soma (FLAMES, NEURON_MATH §3.3, docs/decisions.md).

The hardware mirror of :func:`golden.dhlif.run_int`; the golden model's docstring is the
specification, this module only schedules it. The synaptic sums (``W p`` over each branch's
input slice) are formed upstream; :func:`golden.dhlif.branch_drives` computes exactly what the
core expects on its input, in :func:`golden.dhlif.drive_format`.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, unsigned
from amaranth.lib import data

from golden.dhlif import NEURON_KIND, DHLIFParams, drive_format
from hw.arith import any_of, saturate
from hw.cores.neuron_core import NeuronCore, stage_registers
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
        Formats, decays and threshold (the parameter memory's initial contents). The weights
        stay upstream (:func:`golden.dhlif.branch_drives`).
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
    * **Latency**: :attr:`latency` (8) cycles from accepting a beat to its output beats.
    * **Throughput**: one update per clock while the outputs are ready and consecutive beats
      name neurons that are not in flight.
    * **Read-after-write hazards** stall: ``i_drive.ready`` is low while the offered neuron is
      in pipeline stages 1 .. :attr:`hazard_stages` (6); the write-back (stage 7) reaches a
      same-cycle read through a transparent read port. With ``n_neurons <= hazard_stages``
      the core runs slower than one update per clock, never wrong.
    * **Backpressure**: the pipeline moves as a whole; it advances only in a cycle in which
      every pending output beat has been (or is being) accepted. ``i_drive.ready`` depends
      combinationally on the output readies and ``i_drive.payload.neuron`` (never on
      ``i_drive.valid``); the outputs' ``valid`` are registers.

    Pipeline (stage ``k`` holds a beat ``k`` cycles after it was accepted)::

        0  accept: address the state and parameter memories
        1  memory words arrive
        2  memory words registered (multiplier operands)
        3  products alpha_d*i_d, beta*u (full width); s_prev ? theta : 0
        4  round_C(alpha_d*i_d) + drive_d; round_C(beta*u) - reset
        5  i_d clamped
        6  round_C(beta*u) - reset + sum_d i_d (exact)
        7  u clamped, spike; write-back, into the output register (8)
    """

    #: Cycles from accepting an input beat to its output beats being valid.
    latency = 8
    #: Pipeline stages (1..hazard_stages) whose neuron may not be offered again yet.
    hazard_stages = 6

    params_class = DHLIFParams
    input_name = "i_drive"

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
                                          read="transparent")
        param_rd = parameter_memory(m, "param_mem", shape=self.param_row_layout, init=[
            {**{f"alpha_{d}": int(p.branch_decay_q[h, d]) for d in branches}, "beta": int(p.soma_decay_q[h])}
            for h in range(p.n_neurons)
        ], output_register=True)

        # Stage 0: accept, stalling on a read-after-write hazard; every stage register moves
        # when `advance` is high (the output register can take a beat).
        advance, valid, neuron = self.pipeline_control(m, stages, (state_rd, param_rd))
        stage = stage_registers(m, advance)

        # Stage 1: memory words arrive with the beat's drives.
        drive_shape = drive_format(p).shape()
        drive_1 = [stage(f"drive_{d}_1", self.i_drive.payload[f"drive_{d}"], drive_shape) for d in branches]

        # Stage 2: memory words registered as they are (multiplier operands): the state words in
        # fabric registers behind the transparent read, the parameters in the block RAM's output
        # register (hw.memories, output_register=True).
        row, coef = state_rd.data, param_rd.data
        current_2 = [stage(f"current_{d}_2", row[f"current_{d}"]) for d in branches]
        alpha_2 = [coef[f"alpha_{d}"] for d in branches]
        u_2 = stage("u_2", row.u)
        beta_2 = coef.beta
        spike_prev_2 = stage("spike_prev_2", row.spike, unsigned(1))
        drive_2 = [stage(f"drive_{d}_2", drive_1[d]) for d in branches]

        # Stage 3: decay products at full width; the soft-reset amount.
        threshold = Const(p.threshold_q, p.membrane_fmt.shape())
        alpha_i_3 = [stage(f"alpha_i_{d}_3", alpha_2[d] * current_2[d]) for d in branches]
        beta_u_3 = stage("beta_u_3", beta_2 * u_2)
        reset_3 = stage("reset_3", Mux(spike_prev_2, threshold, 0), p.membrane_fmt.shape())
        drive_3 = [stage(f"drive_{d}_3", drive_2[d]) for d in branches]

        # Stage 4: each product rounded once, then the exact additions.
        current_sum_4 = [
            stage(f"current_sum_{d}_4", ((alpha_i_3[d] + rounding) >> decay_bits) + drive_3[d]) for d in branches
        ]
        u_partial_4 = stage("u_partial_4", ((beta_u_3 + rounding) >> decay_bits) - reset_3)

        # Stage 5: branch currents clamped.
        current_5, current_clamped_5 = [], []
        for d in branches:
            value, clamped = saturate(current_sum_4[d], p.current_fmt)
            current_5.append(stage(f"current_{d}_5", value, p.current_fmt.shape()))
            current_clamped_5.append(clamped)
        any_current_clamped_5 = stage("any_current_clamped_5", any_of(current_clamped_5), unsigned(1))
        u_partial_5 = stage("u_partial_5", u_partial_4)

        # Stage 6: soma sum, exact.
        u_sum = u_partial_5
        for d in branches:
            u_sum = u_sum + current_5[d]
        u_sum_6 = stage("u_sum_6", u_sum)
        current_6 = [stage(f"current_{d}_6", current_5[d]) for d in branches]
        any_current_clamped_6 = stage("any_current_clamped_6", any_current_clamped_5)

        # Stage 7: membrane clamped; strict threshold on the clamped membrane (as the model).
        u_next, u_clamped = saturate(u_sum_6, p.membrane_fmt)
        u_7 = stage("u_7", u_next, p.membrane_fmt.shape())
        spike_7 = stage("spike_7", u_next > threshold, unsigned(1))
        saturated_7 = stage("saturated_7", any_current_clamped_6 | u_clamped, unsigned(1))
        current_7 = [stage(f"current_{d}_7", current_6[d]) for d in branches]

        # Write-back and output register.
        self.write_back(m, state_wr, neuron=neuron[stages], enable=valid[stages] & advance,
                        fields={**{f"current_{d}": current_7[d] for d in branches}, "u": u_7, "spike": spike_7})
        self.output_register(m, advance, valid=valid[stages], neuron=neuron[stages],
                             fields={"u": u_7, **{f"current_{d}": current_7[d] for d in branches}}, spike=spike_7,
                             saturated=saturated_7)
        return m


#: This module's entry in the core registry (:func:`hw.cores.core_classes`): the kind and its core.
NEURON_CORE = (NEURON_KIND, DHLIFCore)
