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

__all__ = ["LIFCore", "membrane_stages", "product_parts"]


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
    * **Backpressure**: as every :class:`~hw.cores.neuron_core.NeuronCore`
      (:meth:`~hw.cores.neuron_core.NeuronCore.output_register`).

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
    # The IF kind (golden/integrate_fire.py) is this core with every leak word one.
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
        stages = self.latency - 1  # last pipeline stage index (write-back)

        state_rd, state_wr = state_memory(m, "state_mem", shape=self.state_row_layout, depth=p.n_neurons)
        param_rd = parameter_memory(m, "param_mem", shape=self.param_row_layout, init=self.parameter_words())

        advance, valid, neuron = self.pipeline_control(m, stages, (state_rd, param_rd))
        state_word_1 = state_rd.data
        stage = stage_registers(m, advance)

        # Stage 1: memory words arrive with the beat's current.
        current_1 = stage("current_1", self.i_current.payload.current, p.input_fmt.shape())

        # Stage 2: the memory words registered as they are (no logic behind the block RAMs).
        u_8, spike_8, saturated_8 = membrane_stages(
            stage, p, 2, u=stage("u_2", state_word_1.u), threshold=stage("threshold_2", param_rd.data.threshold),
            leak=stage("leak_2", param_rd.data.leak), scale=stage("scale_2", param_rd.data.scale),
            drive=stage("current_2", current_1))

        # Write-back and output register.
        self.write_back(m, state_wr, neuron=neuron[stages], enable=valid[stages] & advance, fields={"u": u_8})
        self.output_register(m, advance, valid=valid[stages], neuron=neuron[stages], fields={"u": u_8},
                             spike=spike_8, saturated=saturated_8)
        return m


def product_parts(stage, name, a, b):
    """``a * b`` as registered partial products ``[(register, shift)]`` (:func:`hw.arith.partial_products`)."""
    return [(stage(f"{name}_{shift}_{i}", part), shift) for i, (part, shift) in enumerate(partial_products(a, b))]


def membrane_stages(stage, p: LIFParams, first: int, *, u, threshold, leak, scale, drive):
    """The LIF membrane update of :meth:`golden.lif.LIFParams.step` as six pipeline stages
    after stage ``first``, which holds the registered operands: ``u``, ``threshold``, ``leak``,
    ``scale`` (memory words) and ``drive`` (the value the scale multiplies: the input current
    of the LIF and IF cores, the synaptic current of the CubaLIF core). Stage by stage
    (``k = first``)::

        k+1  partial products of leak*u and scale*drive
        k+2  both products summed (full width)
        k+3  aligned sum plus the rounding constant, >> C
        k+4  v saturated
        k+5  v > threshold; v - threshold (exact)
        k+6  u after the reset

    ``stage`` is the core's :func:`~hw.cores.neuron_core.stage_registers`. Returns the stage
    ``k+6`` registers ``(u, spike, saturated)``.
    """
    coef_bits = p.coef_frac_bits
    k = first
    leak_u = product_parts(stage, f"leak_u_{k + 1}", leak, u)
    scale_x = product_parts(stage, f"scale_x_{k + 1}", scale, drive)
    threshold = stage(f"threshold_{k + 1}", threshold)

    leak_u = stage(f"leak_u_{k + 2}", sum_shifted(leak_u))
    scale_x = stage(f"scale_x_{k + 2}", sum_shifted(scale_x))
    threshold = stage(f"threshold_{k + 2}", threshold)

    # One sum aligned to C fractional bits, rounded once.
    total = (leak_u << (coef_bits - p.coef_fmt.frac_bits)) + (scale_x << (coef_bits - p.scale_fmt.frac_bits))
    v_rounded = stage(f"v_rounded_{k + 3}", (total + (1 << (coef_bits - 1))) >> coef_bits)
    threshold = stage(f"threshold_{k + 3}", threshold)

    v_next, v_clamped = saturate(v_rounded, p.state_fmt)
    v = stage(f"v_{k + 4}", v_next, p.state_fmt.shape())
    saturated = stage(f"saturated_{k + 4}", v_clamped, unsigned(1))
    threshold = stage(f"threshold_{k + 4}", threshold)

    # The strict compare and the subtraction (exact; used only when v > threshold > 0, where it
    # lies in (0, v) and fits state_fmt).
    spike = stage(f"spike_{k + 5}", v > threshold, unsigned(1))
    v_minus_threshold = stage(f"v_minus_threshold_{k + 5}", (v - threshold)[:p.state_fmt.width].as_signed())
    v = stage(f"v_{k + 5}", v)
    saturated = stage(f"saturated_{k + 5}", saturated)

    after = Const(p.reset_q, p.state_fmt.shape()) if p.reset_to_value else v_minus_threshold
    return (stage(f"u_{k + 6}", Mux(spike, after, v), p.state_fmt.shape()), stage(f"spike_{k + 6}", spike),
            stage(f"saturated_{k + 6}", saturated))


#: This module's entry in the core registry (:func:`hw.cores.core_classes`): the kind and its core.
NEURON_CORE = (NEURON_KIND, LIFCore)
