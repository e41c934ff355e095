"""Time-multiplexed plain LIF core (per-neuron threshold, leak and input scale).

The hardware mirror of :meth:`golden.lif.LIFParams.step`; the golden model's docstring is the
specification, this module only schedules it.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, unsigned
from amaranth.lib import data

from golden.lif import NEURON_KIND, LIFParams
from hw.arith import saturate, sum_shifted
from hw.cores.neuron_core import NeuronCore, stage_registers
from hw.ecp5 import registered_partial_products
from hw.memories import parameter_memory, state_memory

__all__ = ["LIFCore"]


class LIFCore(NeuronCore):
    """``params.n_neurons`` LIF neurons sharing one pipelined datapath.

    Each beat on :attr:`i_current` updates one neuron with its input current ``x`` for the
    current time step. With ``Cl``, ``Cs`` the fractional bits of the leak and the scale and
    ``C = max(Cl, Cs)``::

        v = sat(round_C(leak*u << (C-Cl) + scale*x << (C-Cs)))
        s = v > threshold                                               # strict
        u = s ? (reset_to_value ? reset : v - threshold) : v

    ``round_C`` rounds half up (decision 'Rounding') once, on the exact full-width sum; ``sat`` clamps to
    ``state_fmt`` (decision 'Saturation', :func:`hw.arith.saturate`). ``threshold``, ``leak`` and ``scale`` are
    per-neuron words of a read-only parameter memory; the reset choice and value are
    constants of the layer. The state memory (``u``) starts at zero (decision 'Zero initial state') from the bitstream /
    simulation initial value; the domain reset clears the pipeline and
    :attr:`saturation_count` but not the state memory. Neuron indices ``>= n_neurons`` are a
    caller error.

    Parameters
    ----------
    params : LIFParams
        Formats, per-neuron coefficients (the parameter memory's initial contents), reset.
    emit_state, clearable : bool
        As for :class:`~hw.cores.neuron_core.NeuronCore`.

    Members
    -------
    The members of :class:`~hw.cores.neuron_core.NeuronCore` (``i_current``, ``o_spike``,
    ``o_state`` with ``emit_state``, ``saturation_count``); ``o_state`` carries
    ``{neuron, u: state_fmt, spike, saturated}``, ``saturated`` when the ``v`` clamp acted.

    Timing
    ------
    * **Latency**: :attr:`latency` (11) cycles from accepting a beat to its output beats.
    * **Throughput**: one update per clock while the outputs are ready and consecutive beats
      name neurons that are not in flight.
    * **Read-after-write hazards** stall: ``i_current.ready`` is low while the offered neuron
      is in one of the :attr:`hazard_stages` (10) pipeline stages, the write-back stage
      included (the state read port is not transparent).
    * **Backpressure**: as every :class:`~hw.cores.neuron_core.NeuronCore`: the pipeline
      advances only when every pending output beat has been (or is being) accepted.

    Pipeline (stage ``k`` holds a beat ``k`` cycles after it was accepted; both multiplies have
    registered operands and go through MULT18X18Ds with their three registers,
    :func:`hw.ecp5.registered_partial_products`)::

        0  accept: address the state and parameter memories
        1  memory words read (u, threshold, leak, scale)
        2  memory words in the block RAMs' output registers (multiplier operands)
        3  operands in the multipliers' input registers (leak with biased 18-bit slices of u,
           scale with 17-bit slices of x)
        4  partial products in the multipliers' pipeline registers
        5  partial products in the multipliers' output registers
        6  both products summed (full width, the slice bias removed)
        7  aligned sum plus the rounding constant, >> C
        8  v saturated
        9  v > threshold; v - threshold (exact)
        10 u after the reset
        -  write-back, into the output register (11)
    """

    #: Cycles from accepting an input beat to its output beats being valid.
    latency = 11
    #: Pipeline stages (1..hazard_stages) whose neuron may not be offered again yet: all of
    #: them, the write-back stage (10) included.
    hazard_stages = 10

    params_class = LIFParams

    def state_fields(self, params: LIFParams) -> dict:
        """``o_state`` words, in this order."""
        return {"u": params.state_fmt.shape()}

    @property
    def state_row_layout(self) -> data.StructLayout:
        """One word of the state memory: ``{u}`` (after the reset)."""
        return data.StructLayout({"u": self._params.state_fmt.shape()})

    @property
    def param_row_layout(self) -> data.StructLayout:
        """One word of the parameter memory: ``{threshold, leak, scale}``."""
        p = self._params
        return data.StructLayout({"threshold": p.state_fmt.shape(), "leak": p.coef_fmt.shape(),
                                  "scale": p.scale_fmt.shape()})

    # --- hardware -------------------------------------------------------------------------
    def elaborate(self, platform):
        p = self._params
        m = Module()
        coef_bits = p.coef_frac_bits
        stages = self.latency - 1  # last pipeline stage index (write-back)

        state_rd, state_wr = state_memory(m, "state_mem", shape=self.state_row_layout, depth=p.n_neurons,
                                          output_register=True)
        param_rd = parameter_memory(m, "param_mem", shape=self.param_row_layout, init=[
            {"threshold": int(th), "leak": int(lk), "scale": int(sc)}
            for th, lk, sc in zip(p.threshold_q, p.leak_q, p.scale_q)
        ], output_register=True)

        advance, valid, neuron = self.pipeline_control(m, stages, (state_rd, param_rd))
        stage = stage_registers(m, advance)

        # Stage 1: memory words read (in the block RAMs' read registers) with the beat's current.
        current_1 = stage("current_1", self.i_current.payload.current, p.input_fmt.shape())

        # Stage 2: the memory words out of the block RAMs' output registers (hw.memories,
        # output_register=True): no logic behind the block RAMs, and registered operands.
        u_2 = state_rd.data.u
        threshold_2 = param_rd.data.threshold
        leak_2 = param_rd.data.leak
        scale_2 = param_rd.data.scale
        current_2 = stage("current_2", current_1)

        # Stages 3 to 5: both products as partial products through the input (3), pipeline (4)
        # and output (5) registers of their multipliers (hw.ecp5.registered_partial_products:
        # the unsigned leak meets biased 18-bit slices of u, whose bias term rides along).
        leak_u_5 = registered_partial_products(m, "leak_u", leak_2, u_2, en=advance)
        scale_x_5 = registered_partial_products(m, "scale_x", scale_2, current_2, en=advance)
        threshold_5 = threshold_2
        for k in (3, 4, 5):
            threshold_5 = stage(f"threshold_{k}", threshold_5)

        # Stage 6: the products summed at full width.
        leak_u_6 = stage("leak_u_6", sum_shifted(leak_u_5))
        scale_x_6 = stage("scale_x_6", sum_shifted(scale_x_5))
        threshold_6 = stage("threshold_6", threshold_5)

        # Stage 7: one sum aligned to C fractional bits, rounded once.
        total = (leak_u_6 << (coef_bits - p.coef_fmt.frac_bits)) + (scale_x_6 << (coef_bits - p.scale_fmt.frac_bits))
        v_rounded_7 = stage("v_rounded_7", (total + (1 << (coef_bits - 1))) >> coef_bits)
        threshold_7 = stage("threshold_7", threshold_6)

        # Stage 8: v saturated.
        v_next, v_clamped = saturate(v_rounded_7, p.state_fmt)
        v_8 = stage("v_8", v_next, p.state_fmt.shape())
        saturated_8 = stage("saturated_8", v_clamped, unsigned(1))
        threshold_8 = stage("threshold_8", threshold_7)

        # Stage 9: the strict compare and the subtraction (exact; used only when v > threshold > 0,
        # where it lies in (0, v) and fits state_fmt).
        spike_9 = stage("spike_9", v_8 > threshold_8, unsigned(1))
        v_minus_threshold_9 = stage("v_minus_threshold_9", (v_8 - threshold_8)[:p.state_fmt.width].as_signed())
        v_9 = stage("v_9", v_8)
        saturated_9 = stage("saturated_9", saturated_8)

        # Stage 10: the reset.
        after = Const(p.reset_q, p.state_fmt.shape()) if p.reset_to_value else v_minus_threshold_9
        u_10 = stage("u_10", Mux(spike_9, after, v_9), p.state_fmt.shape())
        spike_10 = stage("spike_10", spike_9)
        saturated_10 = stage("saturated_10", saturated_9)

        # Write-back and output register.
        self.write_back(m, state_wr, neuron=neuron[stages], enable=valid[stages] & advance, fields={"u": u_10})
        self.output_register(m, advance, valid=valid[stages], neuron=neuron[stages], fields={"u": u_10},
                             spike=spike_10, saturated=saturated_10)
        return m


#: This module's entry in the core registry (:func:`hw.cores.core_classes`): the kind and its core.
NEURON_CORE = (NEURON_KIND, LIFCore)
