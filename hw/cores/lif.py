"""Time-multiplexed plain LIF core (per-neuron threshold, leak and input scale).

The hardware mirror of :meth:`golden.lif.LIFParams.step`; the golden model's docstring is the
specification, this module only schedules it.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, unsigned
from amaranth.lib import data

from golden.lif import NEURON_KIND, LIFParams
from hw.arith import partial_products, saturate, sum_shifted
from hw.cores.neuron_core import NeuronCore, stage_registers
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
    * **Latency**: :attr:`latency` (9) cycles from accepting a beat to its output beats.
    * **Throughput**: one update per clock while the outputs are ready and consecutive beats
      name neurons that are not in flight.
    * **Read-after-write hazards** stall: ``i_current.ready`` is low while the offered neuron
      is in one of the :attr:`hazard_stages` (8) pipeline stages, the write-back stage
      included (the state read port is not transparent).
    * **Backpressure**: as every :class:`~hw.cores.neuron_core.NeuronCore`: the pipeline
      advances only when every pending output beat has been (or is being) accepted.

    Pipeline (stage ``k`` holds a beat ``k`` cycles after it was accepted; both multiplies have
    registered operands and are split into 18x18 partial products, :func:`hw.arith.partial_products`,
    registered straight out of the multipliers and summed a stage later)::

        0  accept: address the state and parameter memories
        1  memory words arrive (u, threshold, leak, scale)
        2  memory words registered (multiplier operands)
        3  partial products of leak*u and scale*x
        4  both products summed (full width)
        5  aligned sum plus the rounding constant, >> C
        6  v saturated
        7  v > threshold; v - threshold (exact)
        8  u after the reset
        -  write-back, into the output register (9)
    """

    #: Cycles from accepting an input beat to its output beats being valid.
    latency = 9
    #: Pipeline stages (1..hazard_stages) whose neuron may not be offered again yet: all of
    #: them, the write-back stage (8) included.
    hazard_stages = 8

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

        state_rd, state_wr = state_memory(m, "state_mem", shape=self.state_row_layout, depth=p.n_neurons)
        param_rd = parameter_memory(m, "param_mem", shape=self.param_row_layout, init=[
            {"threshold": int(th), "leak": int(lk), "scale": int(sc)}
            for th, lk, sc in zip(p.threshold_q, p.leak_q, p.scale_q)
        ])

        advance, valid, neuron = self.pipeline_control(m, stages, (state_rd, param_rd))
        state_word_1 = state_rd.data
        stage = stage_registers(m, advance)

        def product_parts(name, a, b):
            """``a * b`` as registered partial products ``[(register, shift)]``."""
            return [(stage(f"{name}_{shift}_{i}", part), shift) for i, (part, shift) in enumerate(partial_products(a, b))]

        # Stage 1: memory words arrive with the beat's current.
        current_1 = stage("current_1", self.i_current.payload.current, p.input_fmt.shape())

        # Stage 2: the memory words registered as they are (no logic behind the block RAMs).
        u_2 = stage("u_2", state_word_1.u)
        threshold_2 = stage("threshold_2", param_rd.data.threshold)
        leak_2 = stage("leak_2", param_rd.data.leak)
        scale_2 = stage("scale_2", param_rd.data.scale)
        current_2 = stage("current_2", current_1)

        # Stage 3: both products as registered partial products.
        leak_u_3 = product_parts("leak_u_3", leak_2, u_2)
        scale_x_3 = product_parts("scale_x_3", scale_2, current_2)
        threshold_3 = stage("threshold_3", threshold_2)

        # Stage 4: the products summed at full width.
        leak_u_4 = stage("leak_u_4", sum_shifted(leak_u_3))
        scale_x_4 = stage("scale_x_4", sum_shifted(scale_x_3))
        threshold_4 = stage("threshold_4", threshold_3)

        # Stage 5: one sum aligned to C fractional bits, rounded once.
        total = (leak_u_4 << (coef_bits - p.coef_fmt.frac_bits)) + (scale_x_4 << (coef_bits - p.scale_fmt.frac_bits))
        v_rounded_5 = stage("v_rounded_5", (total + (1 << (coef_bits - 1))) >> coef_bits)
        threshold_5 = stage("threshold_5", threshold_4)

        # Stage 6: v saturated.
        v_next, v_clamped = saturate(v_rounded_5, p.state_fmt)
        v_6 = stage("v_6", v_next, p.state_fmt.shape())
        saturated_6 = stage("saturated_6", v_clamped, unsigned(1))
        threshold_6 = stage("threshold_6", threshold_5)

        # Stage 7: the strict compare and the subtraction (exact; used only when v > threshold > 0,
        # where it lies in (0, v) and fits state_fmt).
        spike_7 = stage("spike_7", v_6 > threshold_6, unsigned(1))
        v_minus_threshold_7 = stage("v_minus_threshold_7", (v_6 - threshold_6)[:p.state_fmt.width].as_signed())
        v_7 = stage("v_7", v_6)
        saturated_7 = stage("saturated_7", saturated_6)

        # Stage 8: the reset.
        after = Const(p.reset_q, p.state_fmt.shape()) if p.reset_to_value else v_minus_threshold_7
        u_8 = stage("u_8", Mux(spike_7, after, v_7), p.state_fmt.shape())
        spike_8 = stage("spike_8", spike_7)
        saturated_8 = stage("saturated_8", saturated_7)

        # Write-back and output register.
        self.write_back(m, state_wr, neuron=neuron[stages], enable=valid[stages] & advance, fields={"u": u_8})
        self.output_register(m, advance, valid=valid[stages], neuron=neuron[stages], fields={"u": u_8},
                             spike=spike_8, saturated=saturated_8)
        return m


#: This module's entry in the core registry (:func:`hw.cores.core_classes`): the kind and its core.
NEURON_CORE = (NEURON_KIND, LIFCore)
