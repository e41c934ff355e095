"""The event-pooling readout of a FLAMES network: pooled sums of the SA-HiPPO modes, then the scores.

The hardware form of :mod:`golden.event_pool`. Its input is what the SA-HiPPO memory layer
passes on, the modes of every channel that had an event at a step (0 elsewhere), and the
scores are ``b + sum_k W @ x_k``. Integer sums are linear, so ``sum_k W @ x_k = W @ sum_k x_k``
exactly: the block adds each posted mode into a pooled sum per feature (no multiply while the
modes stream) and forms ``W @ P + b`` once, after the sample's last step
(``docs/processor.md``, 'SA-HiPPO and event pooling in the processor').
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.event_pool import SCORE_EXTRA_BITS
from golden.network import LayerParams
from hw.arith import any_of, index_bits, registered_greater
from hw.ecp5.multiplier import WideMultiplier
from hw.memories import parameter_memory, state_memory

__all__ = ["EventPoolReadout"]


class EventPoolReadout(wiring.Component):
    """Pooled feature sums and the class scores of an ``event_pool`` layer.

    Feature ``f`` of the layer's input is the real (``f = 2k``) or imaginary (``f = 2k + 1``)
    part of complex word ``k = h * N/2 + n`` (mode ``n`` of SA-HiPPO channel ``h``, the order of
    the memory layer's output). With ``P`` the pooled sums, ``W`` the layer's weights
    (``weight_fmt``) and ``b`` its bias (at ``weight_fmt.frac_bits + input_fmt.frac_bits``
    fractional bits)::

        per mode beat {k, re, im}:  P[2k] += re;  P[2k+1] += im           # exact
        at the finish:              scores_c = b_c + sum_f W[c, f] * P[f]  # exact
                                    argmax   = first c of the largest score

    which equals :func:`golden.network.run_network`'s event-pooling scores bit for bit.

    Parameters
    ----------
    layer : LayerParams
        An ``event_pool`` layer (inside a :class:`golden.network.NetworkParams`, which sets its
        ``acc_bits``), ``n_in`` even.

    Members
    -------
    i : ``In(stream.Signature({index, re: input_fmt, im: input_fmt}))``
        One posted complex mode: ``index`` is ``k``. A word may come any number of times up to
        ``2**STEP_BITS - 1`` per sample (:data:`hw.processor.time_bins.STEP_BITS`) (the SA-HiPPO layer posts it once per step with an event).
    i_finish : ``In(stream.Signature({emit}))``
        The sample ended: taken once every mode beat before it has been added; with ``emit``
        the scores are offered, without it they are dropped. Either way ``P`` and the scores
        start the next sample at zero.
    o_scores : ``Out(stream.Signature({argmax, scores}))``
        One beat per emitting finish; scores signed ``acc_bits + SCORE_EXTRA_BITS`` bits (exact
        for ``2**16`` steps).

    Timing
    ------
    * **Mode beats**: one per clock (``i.ready`` is low only from a finish until its scores
      have left). A beat is registered, reads its pooled word, which leaves the block RAM's
      output register into a register two cycles later; its sum is formed from registers and
      written from a register. A beat on a word whose sum is still on its way (one to four beats
      behind) takes that sum forwarded.
    * **Finish**: taken when no mode beat is offered or on its way. Then ``n_in * n_classes``
      cycles of products, one multiply per clock on :class:`~hw.ecp5.multiplier.WideMultiplier`.
      The weights are in a ROM of one word per feature (its weights of every class), read once
      per feature and shifted one class per clock. Then the memories' 2 cycles, two register
      stages and the multiplier's 4 cycles of latency, ``2 * n_classes`` cycles of argmax, and the
      scores beat (:attr:`finish_cycles` in all). Each pooled word is cleared after its last
      read.
    """

    def __init__(self, layer: LayerParams):
        if not isinstance(layer, LayerParams) or layer.kind != "event_pool":
            raise ValueError(f"EventPoolReadout needs an event_pool LayerParams, not {getattr(layer, 'kind', layer)!r}")
        if layer.acc_bits is None:
            raise ValueError("layer.acc_bits is unset: build the layer inside a golden.network.NetworkParams")
        if layer.n_in % 2:
            raise ValueError(f"an event_pool layer reads complex words (re, im): n_in must be even, not {layer.n_in}")
        self._layer = layer
        in_fmt = layer.neuron.input_fmt
        n_classes = layer.n_out
        self._mode_layout = data.StructLayout(
            {"index": unsigned(index_bits(layer.n_in // 2)), "re": in_fmt.shape(), "im": in_fmt.shape()})
        self._scores_layout = data.StructLayout({"argmax": unsigned(index_bits(n_classes)),
                                                 "scores": data.ArrayLayout(signed(self.score_bits), n_classes)})
        super().__init__({
            "i": In(stream.Signature(self._mode_layout)),
            "i_finish": In(stream.Signature(data.StructLayout({"emit": unsigned(1)}))),
            "o_scores": Out(stream.Signature(self._scores_layout)),
        })

    @property
    def pool_bits(self) -> int:
        """Signed width of a pooled sum: ``input_fmt`` plus ``SCORE_EXTRA_BITS`` (one word per step,
        at most ``2**STEP_BITS`` steps a sample; the fit check counts the same width)."""
        return self._layer.neuron.input_fmt.width + SCORE_EXTRA_BITS

    @property
    def score_bits(self) -> int:
        """Signed width of a score: the layer's ``acc_bits`` plus ``SCORE_EXTRA_BITS``."""
        return self._layer.acc_bits + SCORE_EXTRA_BITS

    @property
    def finish_cycles(self) -> int:
        """Cycles from taking a finish to offering the scores."""
        return self._layer.n_in * self._layer.n_out + 4 + WideMultiplier.latency + 2 * self._layer.n_out + 2

    @property
    def mode_layout(self) -> data.StructLayout:
        return self._mode_layout

    @property
    def scores_layout(self) -> data.StructLayout:
        return self._scores_layout

    def elaborate(self, platform):
        layer = self._layer
        n_classes, n_words = layer.n_out, layer.n_in // 2
        in_shape = layer.neuron.input_fmt.shape()
        m = Module()
        pool_layout = data.ArrayLayout(signed(self.pool_bits), 2)
        pool_rd, pool_wr = state_memory(m, "pool_mem", shape=pool_layout, depth=n_words, output_register=True)
        # One ROM word per feature: its weights of every class (class 0 in the low bits).
        weight_row = data.ArrayLayout(layer.weight_fmt.shape(), n_classes)
        weight_rd = parameter_memory(m, "weight_mem", shape=weight_row, output_register=True, init=[
            [int(layer.weight_q[c, f]) for c in range(n_classes)] for f in range(layer.n_in)])
        sweeping = Signal()  # from a taken finish until its scores have left

        # Accumulate: a beat taken in cycle c is registered (stage 1) and reads its word; the
        # word leaves the block RAM's output register (and its row select) in stage 3 into a
        # register; the sum is formed from registers in stage 4, registered (`sums[0]`, stage 5)
        # and written from that register: the block RAM's output and input are never on one
        # path. A read issued one to four beats after a read of the same word misses that write
        # (or, at the edge of the write, reads an undefined word): the newest such sum is
        # forwarded, decided a stage early from registers.
        m.d.comb += self.i.ready.eq(~sweeping)
        take = self.i.valid & self.i.ready
        # Stage k of the accumulate path: add_valid[k], add_index[k] (k = 0: the beat being taken).
        payload = self.i.payload
        add_valid = [take, *(Signal(name=f"add_valid_{k}") for k in range(1, 8))]
        add_index = [payload.index, *(Signal(range(max(2, n_words)), name=f"add_index_{k}") for k in range(1, 8))]
        add_re = [payload.re, *(Signal(in_shape, name=f"add_re_{k}") for k in range(1, 5))]
        add_im = [payload.im, *(Signal(in_shape, name=f"add_im_{k}") for k in range(1, 5))]
        for k in range(1, 8):
            m.d.sync += [add_valid[k].eq(add_valid[k - 1]), add_index[k].eq(add_index[k - 1])]
        for k in range(1, 5):
            m.d.sync += [add_re[k].eq(add_re[k - 1]), add_im[k].eq(add_im[k - 1])]
        read_word = Signal(pool_layout)  # stage 4: the word as read
        m.d.sync += read_word.eq(pool_rd.data)
        add_sum = Signal(pool_layout)  # stage 4, combinational
        # sums[j]: the sum of the beat in stage 5 + j (sums[0] is written to the memory).
        sums = [Signal(pool_layout, name=f"sum_{5 + j}") for j in range(3)]
        m.d.sync += [sums[0].eq(add_sum), sums[1].eq(sums[0]), sums[2].eq(sums[1])]
        # The beat in stage 3 is one to four beats behind the beats now in stages 4 .. 7, whose
        # sums are add_sum and sums[0 .. 2]. Whether each of them names its word is registered
        # a stage early (stage 2 against stages 3 .. 6; every stage moves each cycle), so the
        # forwarding select comes from registers.
        newer = [add_sum, *sums]
        ahead = [Signal(name=f"ahead_{j}") for j in range(4)]
        m.d.sync += [ahead[j].eq(add_valid[3 + j] & (add_index[3 + j] == add_index[2])) for j in range(4)]
        forward = Signal()
        forward_sum = Signal(pool_layout)
        chosen = newer[-1]
        for j in reversed(range(3)):
            chosen = Mux(ahead[j], newer[j], chosen)
        m.d.sync += [forward.eq(any_of(ahead)), forward_sum.eq(chosen)]
        for k, part in enumerate((add_re[4], add_im[4])):
            m.d.comb += add_sum[k].eq(Mux(forward, forward_sum[k], read_word[k]) + part)

        # Sweep: issue (feature f, class c) in order, one per clock. The memories' words leave
        # their block RAMs' output registers into fabric registers (stage 3: the route out of a
        # block RAM is a cycle of its own); in stage 4 (registers) the feature's pooled sum, and
        # its weights of every class, loaded at class 0 and shifted one class per clock after;
        # their class-c pair enters the multiplier's input registers, and each product lands
        # WideMultiplier.latency cycles after that.
        issuing = Signal()
        feature = Signal(range(max(2, layer.n_in)))
        klass = Signal(range(max(2, n_classes)))
        # Stage k of the sweep: sweep_valid[k] (k = 0: the issue); the part (re/im) and the first
        # class of a feature to stage 3.
        sweep_valid = [issuing, *(Signal(name=f"sweep_valid_{k}") for k in range(1, 5 + WideMultiplier.latency))]
        sweep_part = [feature[0], *(Signal(name=f"sweep_part_{k}") for k in range(1, 4))]
        sweep_first = [klass == 0, *(Signal(name=f"sweep_first_{k}") for k in range(1, 4))]
        for k in range(1, len(sweep_valid)):
            m.d.sync += sweep_valid[k].eq(sweep_valid[k - 1])
        for k in range(1, 4):
            m.d.sync += [sweep_part[k].eq(sweep_part[k - 1]), sweep_first[k].eq(sweep_first[k - 1])]
        clear_valid = Signal()
        clear_addr = Signal(range(max(2, n_words)))
        m.d.sync += [clear_valid.eq(issuing & feature[0] & (klass == n_classes - 1)), clear_addr.eq(feature >> 1)]
        pool_word_3 = Signal(pool_layout)
        weight_word_3 = Signal(weight_row)
        m.d.sync += [pool_word_3.eq(pool_rd.data), weight_word_3.eq(weight_rd.data)]
        pooled_4 = Signal(signed(self.pool_bits))
        weights_4 = Signal(weight_row)
        m.d.sync += [
            pooled_4.eq(Mux(sweep_part[3], pool_word_3[1], pool_word_3[0])),
            weights_4.eq(Mux(sweep_first[3], weight_word_3, weights_4.as_value() >> layer.weight_fmt.width)),
        ]
        m.submodules.product = product = WideMultiplier(layer.weight_fmt.shape(), signed(self.pool_bits))
        m.d.comb += [product.a.eq(weights_4[0]), product.b.eq(pooled_4)]
        product_valid = sweep_valid[-1]
        last_product = product_valid & ~sweep_valid[-2]

        last_issue = (feature == layer.n_in - 1) & (klass == n_classes - 1)
        m.d.comb += [
            pool_rd.addr.eq(Mux(sweeping, feature >> 1, add_index[1])),
            pool_rd.en.eq(1),
            weight_rd.addr.eq(feature),
            weight_rd.en.eq(1),
            # The accumulate path writes outside the sweep; the sweep writes zero to a word the
            # cycle after its last read was issued (never the word read in that cycle).
            pool_wr.addr.eq(Mux(sweeping, clear_addr, add_index[5])),
            pool_wr.en.eq(Mux(sweeping, clear_valid, add_valid[5])),
            pool_wr.data.eq(Mux(sweeping, 0, sums[0])),
        ]

        # The scores rotate: the products arrive class 0, 1, .., n - 1, 0, .. so the head score
        # takes each product and moves to the tail (no multiplexer on the adder's path); after
        # the last product, and again after the argmax's pass, every score is back in its place.
        scores = [Signal(signed(self.score_bits), name=f"score_{c}") for c in range(n_classes)]
        rotate = Signal()
        rotated_head = Signal(signed(self.score_bits))
        m.d.comb += rotated_head.eq(Mux(product_valid, scores[0] + product.p, scores[0]))
        with m.If(rotate):
            m.d.sync += [scores[c].eq(scores[c + 1]) for c in range(n_classes - 1)]
            m.d.sync += scores[-1].eq(rotated_head)
        best = Signal(signed(self.score_bits))
        best_index = Signal(range(max(2, n_classes)))
        compare_class = Signal(range(n_classes + 1))
        comparing = Signal()
        emit = Signal()
        offering = Signal()
        finish = self.i_finish
        # A finish is taken once no mode beat is offered or still to be written.
        m.d.comb += finish.ready.eq(~sweeping & ~self.i.valid & ~any_of(add_valid[1:6]))
        with m.If(finish.valid & finish.ready):
            m.d.sync += [sweeping.eq(1), issuing.eq(1), feature.eq(0), klass.eq(0),
                         emit.eq(finish.payload.emit)]
            m.d.sync += [scores[c].eq(int(layer.bias_q[c])) for c in range(n_classes)]
        with m.If(issuing):
            with m.If(last_issue):
                m.d.sync += issuing.eq(0)
            with m.Elif(klass == n_classes - 1):
                m.d.sync += [klass.eq(0), feature.eq(feature + 1)]
            with m.Else():
                m.d.sync += klass.eq(klass + 1)
        with m.If(last_product):  # the last product lands: compare the classes next
            m.d.sync += [comparing.eq(1), compare_class.eq(0)]

        # Argmax over the rotating scores, two cycles per class; the first index wins ties
        # (strictly greater replaces). The first cycle compares the score with the best into flag
        # registers (hw.arith.registered_greater: short carry chains, no wide compare into the
        # best register); the second takes the score if it is greater and rotates the scores.
        candidate = scores[0]
        taking = Signal()  # the second cycle of a class
        greater = registered_greater(m, candidate, best, en=comparing & ~taking, name="argmax")
        first = compare_class == 0
        m.d.comb += rotate.eq(product_valid | (comparing & (compare_class < n_classes) & taking))
        with m.If(comparing):
            with m.If(compare_class == n_classes):
                m.d.sync += comparing.eq(0)
                with m.If(emit):
                    m.d.sync += offering.eq(1)
                with m.Else():
                    m.d.sync += sweeping.eq(0)
            with m.Elif(~taking):
                m.d.sync += taking.eq(1)
            with m.Else():
                m.d.sync += [taking.eq(0), compare_class.eq(compare_class + 1)]
                with m.If(first | greater):
                    m.d.sync += [best.eq(candidate), best_index.eq(compare_class)]

        m.d.comb += [
            self.o_scores.valid.eq(offering),
            self.o_scores.payload.argmax.eq(best_index),
            self.o_scores.payload.scores.eq(Cat(*scores)),
        ]
        with m.If(offering & self.o_scores.ready):
            m.d.sync += [offering.eq(0), sweeping.eq(0)]
        return m
