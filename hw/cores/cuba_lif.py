"""Time-multiplexed current-based LIF core (a synaptic current feeding the plain LIF membrane).

The hardware mirror of :meth:`golden.cuba_lif.CubaLIFParams.step`; the golden model's docstring
is the specification. The membrane half is the LIF core's (:func:`hw.cores.lif.membrane_stages`).
SiLIF's two-state datapath cannot serve: its second state is fed by the membrane and the
spike, not by the input, and its threshold is fixed at one.
"""

from __future__ import annotations

from amaranth.hdl import Module, unsigned
from amaranth.lib import data

from golden.cuba_lif import NEURON_KIND, CubaLIFParams
from hw.arith import saturate, sum_shifted
from hw.cores.lif import membrane_stages, product_parts
from hw.cores.neuron_core import NeuronCore, stage_registers
from hw.memories import parameter_memory, state_memory

__all__ = ["CubaLIFCore"]


class CubaLIFCore(NeuronCore):
    """``params.n_neurons`` CubaLIF neurons sharing one pipelined datapath.

    Each beat on :attr:`i_current` updates one neuron with its input current ``x``. With
    ``Cl`` the fractional bits of ``coef_fmt``::

        i = sat(round_Cl(syn*i + x << Cl))
        v, s, u = the LIF core's update with x := i   (hw/cores/lif.py)

    Each rounding is half up (decision 'Rounding'), each ``sat`` a clamp to ``state_fmt``
    (decision 'Saturation'). ``threshold``, ``leak``, ``syn`` and ``scale`` are per-neuron words
    of a read-only parameter memory; the reset choice and value are constants of the layer. The
    state memory (``{i, u}``) starts at zero (decision 'Zero initial state').

    Members
    -------
    The members of :class:`~hw.cores.neuron_core.NeuronCore`; ``o_state`` carries
    ``{neuron, i, u, spike, saturated}``, ``saturated`` when either clamp acted.

    Timing
    ------
    * **Latency**: :attr:`latency` (13) cycles from accepting a beat to its output beats.
    * **Throughput**: one update per clock while the outputs are ready and consecutive beats
      name neurons that are not in flight.
    * **Read-after-write hazards** stall for :attr:`hazard_stages` (12) stages, the write-back
      stage included, as in every :class:`~hw.cores.neuron_core.NeuronCore`.

    Pipeline::

        0   accept: address the state and parameter memories
        1   memory words arrive (i, u, threshold, leak, syn, scale)
        2   memory words registered (multiplier operands)
        3   partial products of syn*i
        4   summed (full width)
        5   plus x << Cl and the rounding constant, >> Cl
        6   i saturated
        7-12  the LIF membrane stages (hw.cores.lif.membrane_stages) driven by i
        -   write-back, into the output register (13)
    """

    latency = 13
    hazard_stages = 12

    params_class = CubaLIFParams

    def state_fields(self, params: CubaLIFParams) -> dict:
        """``o_state`` words, in this order."""
        return {"i": params.state_fmt.shape(), "u": params.state_fmt.shape()}

    @property
    def state_row_layout(self) -> data.StructLayout:
        """One word of the state memory: ``{i, u}``."""
        return data.StructLayout(self.state_fields(self._params))

    @property
    def param_row_layout(self) -> data.StructLayout:
        """One word of the parameter memory: ``{threshold, leak, syn, scale}``."""
        p = self._params
        return data.StructLayout({"threshold": p.state_fmt.shape(), "leak": p.coef_fmt.shape(),
                                  "syn": p.coef_fmt.shape(), "scale": p.scale_fmt.shape()})

    def elaborate(self, platform):
        p = self._params
        m = Module()
        stages = self.latency - 1
        cl = p.coef_fmt.frac_bits

        state_rd, state_wr = state_memory(m, "state_mem", shape=self.state_row_layout, depth=p.n_neurons)
        param_rd = parameter_memory(m, "param_mem", shape=self.param_row_layout, init=self.parameter_words())

        advance, valid, neuron = self.pipeline_control(m, stages, (state_rd, param_rd))
        state_word_1 = state_rd.data
        stage = stage_registers(m, advance)

        def delayed(name, value, first, last):
            """``value`` registered at ``first`` and carried to stage ``last``."""
            for k in range(first, last + 1):
                value = stage(f"{name}_{k}", value)
            return value

        # Stage 1: memory words arrive with the beat's current.
        current_1 = stage("current_1", self.i_current.payload.current, p.input_fmt.shape())

        # Stage 2: the memory words registered as they are.
        i_2 = stage("i_2", state_word_1.i)
        syn_2 = stage("syn_2", param_rd.data.syn)
        current_2 = stage("current_2", current_1)

        # Stages 3-6: the synaptic current.
        syn_i_3 = product_parts(stage, "syn_i_3", syn_2, i_2)
        current_3 = stage("current_3", current_2)
        syn_i_4 = stage("syn_i_4", sum_shifted(syn_i_3))
        current_4 = stage("current_4", current_3)
        i_rounded_5 = stage("i_rounded_5", (syn_i_4 + (current_4 << cl) + (1 << (cl - 1))) >> cl)
        i_next, i_clamped = saturate(i_rounded_5, p.state_fmt)
        i_6 = stage("i_6", i_next, p.state_fmt.shape())
        saturated_i_6 = stage("saturated_i_6", i_clamped, unsigned(1))

        # Stages 7-12: the LIF membrane driven by i (operands carried to stage 6).
        words = {name: delayed(name, value, 2, 6) for name, value in (
            ("u", state_word_1.u), ("threshold", param_rd.data.threshold), ("leak", param_rd.data.leak),
            ("scale", param_rd.data.scale))}
        u_12, spike_12, saturated_v_12 = membrane_stages(stage, p, 6, drive=i_6, **words)
        i_12 = delayed("i_carried", i_6, 7, 12)
        saturated_i_12 = delayed("saturated_i", saturated_i_6, 7, 12)
        saturated_12 = saturated_i_12 | saturated_v_12

        # Write-back and output register.
        self.write_back(m, state_wr, neuron=neuron[stages], enable=valid[stages] & advance,
                        fields={"i": i_12, "u": u_12})
        self.output_register(m, advance, valid=valid[stages], neuron=neuron[stages],
                             fields={"i": i_12, "u": u_12}, spike=spike_12, saturated=saturated_12)
        return m


#: This module's entry in the core registry (:func:`hw.cores.core_classes`): the kind and its core.
NEURON_CORE = (NEURON_KIND, CubaLIFCore)
