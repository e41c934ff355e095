"""Leaky-integrator readout core with class scores and argmax (decision 'Readout decision').

The hardware mirror of :meth:`golden.layers.LIReadoutParams.step` plus the decision of
:class:`golden.layers.LIReadoutTrace`; the golden model's docstring is the specification, this
module only schedules it.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from golden.fixed import QFormat
from golden.layers import NEURON_KIND, LIReadoutParams
from hw.arith import any_of, count_saturating, registered_greater, saturate, sum_shifted, tree_select
from hw.cores.neuron_core import CoreBase
from hw.ecp5 import registered_partial_products
from hw.memories import parameter_memory, state_memory

__all__ = ["LIReadoutCore"]

#: Operand slice that, with an 18-bit signed coefficient, fits one ECP5 MULT18X18D.
_SLICE_BITS = 17
#: Extra integer bits of a class score over the membrane: sums of up to 2**16 steps are exact.
DEFAULT_SCORE_EXTRA_BITS = 16
#: Pipeline stages after the accepting cycle; the last one writes back (see the class docstring).
_STAGES = 9


class LIReadoutCore(CoreBase):
    """``params.n_neurons`` leaky-integrator output neurons, their class scores and the argmax.

    Each beat on :attr:`i_current` updates one neuron with its input current ``x`` for the
    current time step (``F`` fractional bits shared by ``x`` and ``u``, ``C`` those of
    ``coef_fmt``)::

        u     = sat_state(round_C(alpha * u + gain * x))    # both products exact, one rounding
        score = sat_score(score + u)                         # exact while no clamp acts

    ``round_C`` is :func:`golden.fixed.round_shift` (round half up) of the exact sum of the
    two full-width products; ``sat`` is :func:`hw.arith.saturate`. ``alpha`` and
    ``gain = 1 - alpha`` are per-neuron words of a read-only parameter memory. Membranes and
    scores start at zero.

    A beat on :attr:`i_finish` ends the sample: once every accepted update has been written
    back, the core scans the scores (three cycles per class; the first index wins ties, as
    :attr:`golden.layers.LIReadoutTrace.prediction`), offers ``{argmax, scores}`` on
    :attr:`o_scores` when ``emit`` is set, then clears every membrane and score to zero for the
    next sample. ``i_current`` is not ready from the moment the finish beat is accepted until
    the clear is done (about ``6 + 4 * n_neurons`` cycles after the last update in flight has been
    written back, plus any wait on :attr:`o_scores`).

    The core builds on :class:`hw.cores.neuron_core.CoreBase` (input stream, accept with the
    read-after-write stall, write-back with the clear); its clear is ``i_finish``, which zeroes
    the scores with the membranes, so it has no ``clear`` member.

    Parameters
    ----------
    params : LIReadoutParams
        Formats and per-neuron ``alpha``, ``gain`` (the parameter memory's initial contents).
    score_fmt : QFormat, optional
        Signed score format; defaults to ``state_fmt`` widened by 16 integer bits (exact for
        samples of up to 65536 steps). A score that leaves it saturates and counts.
    hazard_check : bool
        As :class:`~hw.cores.neuron_core.CoreBase`: ``False`` for a parent that never offers a
        neuron again while its previous update is in flight (the processor's readout layer);
        ``i_current.ready`` is then high exactly while no finish is under way and the output
        register can take a beat.

    Members
    -------
    i_current : ``In(stream.Signature(current_layout))``
        ``{neuron: unsigned(index_bits), current: input_fmt}`` (:class:`CoreBase`).
    o_state : ``Out(stream.Signature(state_layout))``
        ``{neuron, u: state_fmt, saturated: 1}``: one beat per update, in input order.
    i_finish : ``In(stream.Signature(finish_layout))``
        ``{emit: 1}``: end the sample; ``emit = 0`` clears without offering scores (a reset).
    o_scores : ``Out(stream.Signature(scores_layout))``
        ``{argmax: unsigned(index_bits), scores: score_fmt x n_neurons}``, one beat per
        finished sample with ``emit`` set.
    saturation_count : ``Out(32)``
        Updates in which the membrane clamp acted, plus score additions that clamped; sticks at
        ``2**32 - 1``.

    Timing
    ------
    * **Latency**: :attr:`latency` (10) cycles from accepting a beat to its :attr:`o_state` beat.
    * **Throughput**: one update per clock while :attr:`o_state` is ready and consecutive beats
      name neurons that are not in flight; a neuron offered again within :attr:`hazard_stages`
      beats stalls ``i_current.ready`` (no forwarding; the write-back reaches a same-cycle read
      through a transparent read port).
    * **Backpressure**: the pipeline moves as a whole and advances only when the output
      register's state beat has been (or is being) accepted; ``i_current.ready`` depends
      combinationally on ``o_state.ready`` and (with ``hazard_check``) ``i_current.payload.neuron``.

    Pipeline::

        0  accept: address the state and parameter memories
        1  memory words arrive (u, alpha, gain)
        2  multiplier operands registered (alpha and gain in the block RAM's output register)
        3  operand slices in the multipliers' input registers (hw.ecp5.Multiplier: biased 18-bit
           slices beside an unsigned coefficient, 17-bit slices beside a signed one)
        4  partial products in the multipliers' pipeline registers
        5  partial products in the multipliers' output registers
        6  partial products in fabric registers (the route out of a multiplier is a cycle of
           its own); the bias term of alpha*u carries the rounding constant 2**(C-1)
        7  products alpha*u (+ the rounding constant) and gain*x registered (full width, the
           slice bias subtracted)
        8  sum shifted down to F fractional bits (rounded half up: the constant rode along)
        9  saturated; write-back; into the output register (10)
        A  (score pipeline, beside the output register) neuron, u and the neuron's score registered
        B  score + u registered
        C  score saturated and stored; clamp flags registered for the counter
    """

    params_class = LIReadoutParams
    #: Cycles from accepting an input beat to its output beat being valid.
    latency = 10
    #: Pipeline stages (1..hazard_stages) whose neuron may not be offered again yet.
    hazard_stages = 8

    def __init__(self, params: LIReadoutParams, *, score_fmt: QFormat | None = None, hazard_check: bool = True):
        self._score_fmt = score_fmt
        super().__init__(params, hazard_check=hazard_check)

    def state_fields(self, params) -> dict:
        """The membrane ``{u: state_fmt}``."""
        return {"u": params.state_fmt.shape()}

    def output_members(self) -> dict:
        """``o_state``, ``i_finish`` and ``o_scores``; resolves and checks ``score_fmt``."""
        p = self._params
        score_fmt = self._score_fmt
        if score_fmt is None:
            score_fmt = QFormat(p.state_fmt.int_bits + DEFAULT_SCORE_EXTRA_BITS, p.state_fmt.frac_bits)
        if not isinstance(score_fmt, QFormat) or not score_fmt.signed or score_fmt.width < p.state_fmt.width:
            raise ValueError(
                f"score_fmt must be a signed QFormat at least as wide as state_fmt {p.state_fmt}, not {score_fmt}"
            )
        if score_fmt.frac_bits != p.state_fmt.frac_bits:
            raise ValueError(f"score_fmt {score_fmt} must have the fractional bits of state_fmt {p.state_fmt}")
        self._score_fmt = score_fmt
        index_shape = unsigned(self.index_bits)
        self._state_layout = data.StructLayout(
            {"neuron": index_shape, **self.state_fields(p), "saturated": unsigned(1)}
        )
        self._finish_layout = data.StructLayout({"emit": unsigned(1)})
        self._scores_layout = data.StructLayout(
            {"argmax": index_shape, "scores": data.ArrayLayout(score_fmt.shape(), p.n_neurons)}
        )
        return {
            "o_state": Out(stream.Signature(self._state_layout)),
            "i_finish": In(stream.Signature(self._finish_layout)),
            "o_scores": Out(stream.Signature(self._scores_layout)),
        }

    # --- derived facts --------------------------------------------------------------------
    @property
    def score_fmt(self) -> QFormat:
        return self._score_fmt

    @property
    def state_layout(self) -> data.StructLayout:
        """Payload of ``o_state``: ``{neuron, u, saturated}``."""
        return self._state_layout

    @property
    def finish_layout(self) -> data.StructLayout:
        return self._finish_layout

    @property
    def scores_layout(self) -> data.StructLayout:
        return self._scores_layout

    # --- hardware -------------------------------------------------------------------------
    def elaborate(self, platform):
        p = self._params
        m = Module()
        n = p.n_neurons
        coef_bits = p.coef_fmt.frac_bits
        coef_shape = p.coef_fmt.shape()
        index_shape = unsigned(self.index_bits)

        state_rd, state_wr = state_memory(m, "state_mem", shape=data.StructLayout(self.state_fields(p)), depth=n,
                                          read="transparent")
        param_layout = data.StructLayout({"alpha": coef_shape, "gain": coef_shape})
        param_rd = parameter_memory(m, "param_mem", shape=param_layout,
                                    init=[{"alpha": int(a), "gain": int(g)} for a, g in zip(p.alpha_q, p.gain_q)],
                                    output_register=True)

        scores = [Signal(self._score_fmt.shape(), name=f"score_{k}") for k in range(n)]

        # Sample control: RUN accepts updates; FINISH waits for the pipeline to drain, SCAN finds
        # the argmax, EMIT offers the scores, CLEAR zeroes membranes and scores.
        running = Signal(init=1)
        clearing = Signal()
        index = Signal(range(n + 1))
        advance, valid, neuron = self.pipeline_control(m, _STAGES, (state_rd, param_rd), accepting=running)

        # Stage 1 -> 2: operands; the parameters in the block RAM's output register (hw.memories,
        # output_register=True), the membrane in a fabric register behind the transparent read.
        current_1 = Signal(p.input_fmt.shape())
        u_2 = Signal(p.state_fmt.shape())
        alpha_2, gain_2 = param_rd.data.alpha, param_rd.data.gain
        current_2 = Signal(p.input_fmt.shape())
        with m.If(advance):
            m.d.sync += [
                current_1.eq(self.i_current.payload.current),
                u_2.eq(state_rd.data.u),
                current_2.eq(current_1),
            ]
        # Stages 3 to 5: partial products through the input (3), pipeline (4) and output (5)
        # registers of their multipliers (hw.ecp5.Multiplier, one MULT18X18D each): an unsigned
        # coefficient meets the operand's biased 18-bit slices (hw.arith.biased_slices; the
        # bias times the coefficient, less the rounding constant of the sum for alpha*u, rides
        # along as one more term), a signed one its 17-bit slices. Stage 6: the partial
        # products in fabric registers; stage 7: the full products; stage 8: their exact sum
        # shifted down (one rounding, half up); stage 9: saturated.
        rounding = 1 << (coef_bits - 1) if coef_bits else 0
        products = []
        for operand, coef, name, addend in ((u_2, alpha_2, "decay", rounding), (current_2, gain_2, "drive", 0)):
            full = sum_shifted(registered_partial_products(m, name, coef, operand, en=advance, slice_bits=_SLICE_BITS,
                                                           fabric_registers=1, addend=addend))
            full_7 = Signal.like(full, name=f"{name}_7")
            with m.If(advance):
                m.d.sync += full_7.eq(full)
            products.append(full_7)
        decay_7, drive_7 = products
        shifted_8 = Signal.like((decay_7 + drive_7) >> coef_bits)
        with m.If(advance):
            m.d.sync += shifted_8.eq((decay_7 + drive_7) >> coef_bits)
        u_next, u_clamped = saturate(shifted_8, p.state_fmt)
        u_9 = Signal(p.state_fmt.shape())
        u_clamped_9 = Signal()
        with m.If(advance):
            m.d.sync += [u_9.eq(u_next), u_clamped_9.eq(u_clamped)]

        # Write-back and output register.
        write_back = Signal()
        m.d.comb += write_back.eq(valid[_STAGES] & advance)
        sweep = Signal(self.clear_layout)  # the clear sweep overrides the write-back
        m.d.comb += [sweep.active.eq(clearing), sweep.neuron.eq(index)]
        self.write_back(m, state_wr, neuron=neuron[_STAGES], enable=write_back, fields={"u": u_9}, clear=sweep)

        # Score update, beside the write-back: A registers (neuron, u) and the neuron's score
        # (a multiplexer tree), B adds them, C saturates and stores the sum. A neuron's updates
        # are at least hazard_stages + 1 cycles apart, so A always reads the score that C stored
        # for the previous update.
        score_shape = self._score_fmt.shape()
        score_valid_a = Signal()
        score_neuron_a = Signal(index_shape)
        score_u_a = Signal(p.state_fmt.shape())
        score_a = Signal(score_shape)
        score_valid_b = Signal()
        score_neuron_b = Signal(index_shape)
        score_sum_b = Signal(signed(score_shape.width + 1))
        m.d.sync += [
            score_valid_a.eq(write_back),
            score_neuron_a.eq(neuron[_STAGES]),
            score_u_a.eq(u_9),
            score_a.eq(tree_select(neuron[_STAGES], scores)),
            score_valid_b.eq(score_valid_a),
            score_neuron_b.eq(score_neuron_a),
            score_sum_b.eq(score_a + score_u_a),
        ]
        score_next, score_clamped = saturate(score_sum_b, self._score_fmt)
        for k, score in enumerate(scores):
            with m.If(score_valid_b & (score_neuron_b == k)):
                m.d.sync += score.eq(score_next)

        out_state = Signal(self._state_layout)
        state_pending = Signal()
        m.d.comb += [
            advance.eq(~state_pending | self.o_state.ready),
            self.o_state.valid.eq(state_pending),
            self.o_state.payload.eq(out_state),
        ]
        with m.If(advance):
            m.d.sync += [
                out_state.neuron.eq(neuron[_STAGES]),
                out_state.u.eq(u_9),
                out_state.saturated.eq(u_clamped_9),
                state_pending.eq(valid[_STAGES]),
            ]
        # Saturation counter, from registered clamp flags (off the datapath's timing paths).
        clamps = Signal(2)
        m.d.sync += clamps.eq(Cat(write_back & u_clamped_9, score_valid_b & score_clamped))
        count_saturating(m, self.saturation_count, clamps[0] + clamps[1], when=clamps.any())

        # Finish: drain, scan, emit, clear.
        in_flight = any_of([*(valid[k] for k in range(1, _STAGES + 1)), score_valid_a, score_valid_b])
        # The drain is judged from a register of in_flight (its OR of every stage's valid flag
        # stays off the scan's registers, timing), after one cycle in DRAIN: by then the register
        # has seen the last beat accepted before the finish, and no beat enters after it.
        in_flight_seen = Signal()
        drain_waited = Signal()
        m.d.sync += in_flight_seen.eq(in_flight)
        emit = Signal()
        scan_phase = Signal(range(3))
        best_index = Signal(index_shape)
        best_score = Signal(self._score_fmt.shape())
        candidate = Signal(self._score_fmt.shape())
        greater = registered_greater(m, candidate, best_score, en=scan_phase == 1, name="scan")
        takes = (index == 0) | greater  # strictly greater replaces: the first index wins ties
        out_scores = Signal(self._scores_layout)
        scores_valid = Signal()
        m.d.comb += [
            self.o_scores.payload.eq(out_scores),
            self.o_scores.valid.eq(scores_valid),
            self.i_finish.ready.eq(running),  # high exactly in the RUN state
        ]
        with m.FSM(name="sample"):
            with m.State("RUN"):
                with m.If(self.i_finish.valid):
                    m.d.sync += [running.eq(0), emit.eq(self.i_finish.payload.emit), drain_waited.eq(0)]
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.sync += drain_waited.eq(1)
                with m.If(drain_waited & ~in_flight_seen):
                    m.d.sync += [index.eq(0), scan_phase.eq(0)]
                    m.next = "SCAN"
            with m.State("SCAN"):
                # Three cycles per class: its score into the candidate register (a multiplexer
                # tree), the compare with the best into flag registers (hw.arith.registered_greater),
                # then the best takes the candidate if it is greater (the first class always).
                with m.Switch(scan_phase):
                    with m.Case(0):
                        m.d.sync += [candidate.eq(tree_select(index, scores)), scan_phase.eq(1)]
                    with m.Case(1):
                        m.d.sync += scan_phase.eq(2)
                    with m.Default():
                        m.d.sync += [scan_phase.eq(0), index.eq(index + 1)]
                        with m.If(takes):
                            m.d.sync += [best_index.eq(index), best_score.eq(candidate)]
                        with m.If(index == n - 1):
                            m.next = "RESULT"
            with m.State("RESULT"):
                m.d.sync += [out_scores.argmax.eq(best_index), out_scores.scores.eq(Cat(*scores)),
                             scores_valid.eq(emit)]
                m.next = "EMIT"
            with m.State("EMIT"):
                with m.If(~scores_valid | self.o_scores.ready):
                    m.d.sync += [index.eq(0), scores_valid.eq(0), clearing.eq(1)]
                    m.next = "CLEAR"
            with m.State("CLEAR"):
                for score in scores:
                    m.d.sync += score.eq(0)
                m.d.sync += index.eq(index + 1)
                with m.If(index == n - 1):
                    m.d.sync += [running.eq(1), clearing.eq(0)]
                    m.next = "RUN"
        return m


#: This module's entry in the core registry (:func:`hw.cores.core_classes`): the kind and its core.
NEURON_CORE = (NEURON_KIND, LIReadoutCore)
