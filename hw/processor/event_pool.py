"""The event-pooling readout of a FLAMES network: pooled sums of the SA-HiPPO modes, then the scores.

The hardware form of :mod:`golden.event_pool`. Its input is what the SA-HiPPO memory layer
passes on, the modes of every channel that had an event at a step (0 elsewhere), and the
scores are ``b + sum_k W @ x_k``. Integer sums are linear, so ``sum_k W @ x_k = W @ sum_k x_k``
exactly: the block adds each posted mode into a pooled sum per feature (no multiply while the
modes stream) and forms ``W @ P + b`` once, after the sample's last step
(``docs/processor.md``, 'SA-HiPPO and event pooling in the processor').
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.event_pool import SCORE_EXTRA_BITS
from golden.network import LayerParams
from hw.arith import index_bits
from hw.memories import parameter_memory, state_memory
from hw.processor.time_bins import STEP_BITS

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
        ``2**STEP_BITS - 1`` per sample (the SA-HiPPO layer posts it once per step with an event).
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
      have left); a beat's sum is written the cycle after it is taken, and a beat on the same
      word in that cycle reads the new sum through the transparent read port.
    * **Finish**: ``n_in * n_classes`` cycles of products (one multiply per clock, the weights
      in a ROM of one weight per word in the order ``f * n_classes + c``), 3 cycles of pipeline,
      ``n_classes`` cycles of argmax, then the scores beat. Each pooled word is cleared after its
      last read.
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
        """Signed width of a pooled sum: ``input_fmt`` plus :data:`STEP_BITS` (a word per step)."""
        return self._layer.neuron.input_fmt.width + STEP_BITS

    @property
    def score_bits(self) -> int:
        """Signed width of a score: the layer's ``acc_bits`` plus ``SCORE_EXTRA_BITS``."""
        return self._layer.acc_bits + SCORE_EXTRA_BITS

    @property
    def finish_cycles(self) -> int:
        """Cycles from taking a finish to offering the scores."""
        return self._layer.n_in * self._layer.n_out + 3 + self._layer.n_out + 1

    @property
    def mode_layout(self) -> data.StructLayout:
        return self._mode_layout

    @property
    def scores_layout(self) -> data.StructLayout:
        return self._scores_layout

    def elaborate(self, platform):
        layer = self._layer
        n_classes, n_words = layer.n_out, layer.n_in // 2
        m = Module()
        pool_layout = data.ArrayLayout(signed(self.pool_bits), 2)
        pool_rd, pool_wr = state_memory(m, "pool_mem", shape=pool_layout, depth=n_words, read="transparent")
        weights = [int(layer.weight_q[c, f]) for f in range(layer.n_in) for c in range(n_classes)]
        weight_rd = parameter_memory(m, "weight_mem", shape=layer.weight_fmt.shape(), init=weights)

        # Accumulate: the beat taken in cycle c reads its word; its sum is written in c + 1.
        sweeping = Signal()  # from a taken finish until its scores have left
        add_valid = Signal()
        add_index = Signal(range(max(2, n_words)))
        add_re = Signal(layer.neuron.input_fmt.shape())
        add_im = Signal(layer.neuron.input_fmt.shape())
        m.d.comb += self.i.ready.eq(~sweeping)
        take = self.i.valid & self.i.ready
        m.d.sync += [add_valid.eq(take), add_index.eq(self.i.payload.index), add_re.eq(self.i.payload.re),
                     add_im.eq(self.i.payload.im)]

        # Sweep: issue (feature f, class c) in order, one per cycle; stage 1 has the memory words,
        # stage 2 the registered operands, stage 3 the registered product, added into score c.
        issuing = Signal()
        feature = Signal(range(max(2, layer.n_in)))
        klass = Signal(range(max(2, n_classes)))
        weight_addr = Signal(range(max(2, len(weights))))
        s1_valid, s1_part, s1_class, s1_clear, s1_word = (Signal(name="s1_valid"), Signal(name="s1_part"),
                                                           Signal(range(max(2, n_classes)), name="s1_class"),
                                                           Signal(name="s1_clear"),
                                                           Signal(range(max(2, n_words)), name="s1_word"))
        s2_valid, s2_class = Signal(name="s2_valid"), Signal(range(max(2, n_classes)), name="s2_class")
        s3_valid, s3_class = Signal(name="s3_valid"), Signal(range(max(2, n_classes)), name="s3_class")
        s2_weight = Signal(layer.weight_fmt.shape())
        s2_value = Signal(signed(self.pool_bits))
        s3_product = Signal(signed(layer.weight_fmt.width + self.pool_bits))

        last_issue = (feature == layer.n_in - 1) & (klass == n_classes - 1)
        m.d.comb += [
            pool_rd.addr.eq(Mux(sweeping, feature >> 1, self.i.payload.index)),
            pool_rd.en.eq(1),
            weight_rd.addr.eq(weight_addr),
            weight_rd.en.eq(1),
            # The accumulate path writes outside the sweep; the sweep writes zero to a word in
            # the cycle after its last read was issued (never the word read in that cycle).
            pool_wr.addr.eq(Mux(sweeping, s1_word, add_index)),
            pool_wr.en.eq(Mux(sweeping, s1_valid & s1_clear, add_valid)),
            pool_wr.data[0].eq(Mux(sweeping, 0, pool_rd.data[0] + add_re)),
            pool_wr.data[1].eq(Mux(sweeping, 0, pool_rd.data[1] + add_im)),
        ]
        m.d.sync += [
            s1_valid.eq(issuing), s1_part.eq(feature[0]), s1_class.eq(klass), s1_word.eq(feature >> 1),
            s1_clear.eq(feature[0] & (klass == n_classes - 1)),
            s2_valid.eq(s1_valid), s2_class.eq(s1_class),
            s2_weight.eq(weight_rd.data), s2_value.eq(Mux(s1_part, pool_rd.data[1], pool_rd.data[0])),
            s3_valid.eq(s2_valid), s3_class.eq(s2_class), s3_product.eq(s2_weight * s2_value),
        ]

        scores = Array(Signal(signed(self.score_bits), name=f"score_{c}") for c in range(n_classes))
        best = Signal(signed(self.score_bits))
        best_index = Signal(range(max(2, n_classes)))
        compare_class = Signal(range(n_classes + 1))
        comparing = Signal()
        emit = Signal()
        offering = Signal()
        finish = self.i_finish
        # A finish is taken once no mode beat's sum is still to be written.
        m.d.comb += finish.ready.eq(~sweeping & ~add_valid)
        with m.If(finish.valid & finish.ready):
            m.d.sync += [sweeping.eq(1), issuing.eq(1), feature.eq(0), klass.eq(0), weight_addr.eq(0),
                         emit.eq(finish.payload.emit)]
            m.d.sync += [scores[c].eq(int(layer.bias_q[c])) for c in range(n_classes)]
        with m.If(issuing):
            m.d.sync += weight_addr.eq(weight_addr + 1)
            with m.If(last_issue):
                m.d.sync += issuing.eq(0)
            with m.Elif(klass == n_classes - 1):
                m.d.sync += [klass.eq(0), feature.eq(feature + 1)]
            with m.Else():
                m.d.sync += klass.eq(klass + 1)
        with m.If(s3_valid):
            m.d.sync += scores[s3_class].eq(scores[s3_class] + s3_product)
            with m.If(~s2_valid):  # the last product lands: compare the classes next
                m.d.sync += [comparing.eq(1), compare_class.eq(1), best_index.eq(0)]

        # Argmax, one class per cycle; the first index wins ties (strictly greater replaces).
        with m.If(comparing):
            with m.If(compare_class == n_classes):
                m.d.sync += comparing.eq(0)
                with m.If(emit):
                    m.d.sync += offering.eq(1)
                with m.Else():
                    m.d.sync += sweeping.eq(0)
        best_so_far = Mux(compare_class == 1, scores[0], best)
        index_so_far = Mux(compare_class == 1, 0, best_index)
        candidate = scores[compare_class]
        with m.If(comparing & (compare_class < n_classes)):
            m.d.sync += [compare_class.eq(compare_class + 1),
                         best.eq(Mux(candidate > best_so_far, candidate, best_so_far)),
                         best_index.eq(Mux(candidate > best_so_far, compare_class, index_so_far))]

        m.d.comb += [
            self.o_scores.valid.eq(offering),
            self.o_scores.payload.argmax.eq(best_index),
            self.o_scores.payload.scores.eq(Cat(*scores)),
        ]
        with m.If(offering & self.o_scores.ready):
            m.d.sync += [offering.eq(0), sweeping.eq(0)]
        return m
