"""Board-to-host frame encoder: a stream of typed results in, a byte stream out.

Frames follow :mod:`golden.protocol` (SPIKE, SCORES, STATUS); the tests decode the bytes with the
golden decoder.
"""

from amaranth.hdl import Cat, Const, Module, Signal, Value, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.protocol import (
    COUNTER_WIDTH, CRC, MAX_SCORES, PROTOCOL_VERSION, RESULT_PAYLOAD_LENGTHS, STATUS_COUNTER_NAMES, SYNC, Result,
)

__all__ = ["ResultKind", "SPIKE_LAYOUT", "STATUS_LAYOUT", "scores_layout", "result_layout", "FrameEncoder"]


class ResultKind(enum.Enum, shape=2):
    """Kind of a result to send; names the member of ``body`` that is sent."""

    SPIKE = 0
    SCORES = 1
    STATUS = 2


#: SPIKE body: ``layer`` u8, ``neuron`` u16, ``time`` u32 step index (the wire widths).
SPIKE_LAYOUT = data.StructLayout({"layer": unsigned(8), "neuron": unsigned(16), "time": unsigned(32)})

#: STATUS body: the counters of :data:`golden.protocol.STATUS_COUNTER_NAMES`, u32 each, in wire
#: order. Its first members are the decoder's :data:`~hw.link.frame_decoder.COUNTERS_LAYOUT`
#: (same names, same order), then ``spikes_dropped``.
STATUS_LAYOUT = data.StructLayout({name: unsigned(COUNTER_WIDTH) for name in STATUS_COUNTER_NAMES})


def scores_layout(n_classes: int) -> data.StructLayout:
    """SCORES body: ``argmax`` u8 and ``scores``, ``n_classes`` signed 32-bit values."""
    return data.StructLayout({"argmax": unsigned(8), "scores": data.ArrayLayout(signed(32), n_classes)})


def result_layout(n_classes: int) -> data.StructLayout:
    """Payload of the encoder's input: ``kind`` and a ``body`` of spike, scores and status side by
    side (``kind`` names the one sent; a source drives each member from its own wires, so no
    select on ``kind`` reaches the body's bits).

    ``status`` is :data:`STATUS_LAYOUT`: the decoder's ``counters``, then ``spikes_dropped``.
    """
    return data.StructLayout({
        "kind": ResultKind,
        "body": data.StructLayout({
            "spike": SPIKE_LAYOUT,
            "scores": scores_layout(n_classes),
            "status": STATUS_LAYOUT,
        }),
    })


def _be_bytes(value, n_bytes):
    """The ``n_bytes`` bytes of ``value``, most significant first."""
    value = Value.cast(value)
    return [value[8 * i: 8 * i + 8] for i in reversed(range(n_bytes))]


class FrameEncoder(wiring.Component):
    """Serialise results into board-to-host frames with their CRC.

    Parameters
    ----------
    n_classes : int
        Class scores in a SCORES frame (1..63).

    Members
    -------
    i : In(stream.Signature(result_layout(n_classes)))
        Results to send. A result is taken when the encoder is idle, then held internally, so
        the source may change ``payload`` right after the transfer.
    o : Out(stream.Signature(8))
        Frame bytes. Honours backpressure: the next byte waits for ``ready``. Throughput: a frame
        of ``n`` bytes takes ``n + 1`` cycles when ``o`` is always ready; latency: the ``SYNC`` byte
        is valid 1 cycle after the result is taken.
    """

    def __init__(self, n_classes: int):
        if not isinstance(n_classes, int) or not 1 <= n_classes <= MAX_SCORES:
            raise ValueError(f"n_classes must be an int in 1..{MAX_SCORES} (one SCORES frame), got {n_classes!r}")
        self.n_classes = n_classes
        super().__init__({
            "i": In(stream.Signature(result_layout(n_classes))),
            "o": Out(stream.Signature(8)),
        })

    def _frame_bodies(self, result):
        """``CMD``, ``LEN`` and payload bytes of each kind, as lists of 8-bit values."""
        spike = result.body.spike
        scores = result.body.scores
        status = result.body.status
        spike_bytes = [spike.layer, *_be_bytes(spike.neuron, 2), *_be_bytes(spike.time, 4)]
        score_bytes = [scores.argmax]
        for index in range(self.n_classes):
            score_bytes += _be_bytes(scores.scores[index], 4)
        status_bytes = [Const(PROTOCOL_VERSION, 8)]
        for name in STATUS_COUNTER_NAMES:
            status_bytes += _be_bytes(status[name], 4)
        assert len(spike_bytes) == RESULT_PAYLOAD_LENGTHS[Result.SPIKE]
        assert len(status_bytes) == RESULT_PAYLOAD_LENGTHS[Result.STATUS]
        return {
            ResultKind.SPIKE: [Const(Result.SPIKE, 8), Const(len(spike_bytes), 8), *spike_bytes],
            ResultKind.SCORES: [Const(Result.SCORES, 8), Const(len(score_bytes), 8), *score_bytes],
            ResultKind.STATUS: [Const(Result.STATUS, 8), Const(len(status_bytes), 8), *status_bytes],
        }

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = CRC.create()

        bodies = self._frame_bodies(self.i.payload)
        longest = max(len(body) for body in bodies.values())
        body = Signal(8 * longest)  # bytes still to send, the next one at the bottom
        bytes_left = Signal(range(longest + 1))

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.i.valid):
                    m.d.comb += crc.start.eq(1)
                    with m.Switch(self.i.payload.kind):
                        for kind, frame_body in bodies.items():
                            with m.Case(kind):
                                m.d.sync += [body.eq(Cat(*frame_body)), bytes_left.eq(len(frame_body))]
                    m.next = "SYNC"
            with m.State("SYNC"):
                m.d.comb += self.o.payload.eq(SYNC)
                with m.If(self.o.ready):
                    m.next = "BODY"
            with m.State("BODY"):
                m.d.comb += [
                    self.o.payload.eq(body[:8]),
                    crc.data.eq(body[:8]),
                    crc.valid.eq(self.o.ready),
                ]
                with m.If(self.o.ready):
                    m.d.sync += [body.eq(body >> 8), bytes_left.eq(bytes_left - 1)]
                    with m.If(bytes_left == 1):
                        m.next = "CRC_HI"
            with m.State("CRC_HI"):
                m.d.comb += self.o.payload.eq(crc.crc[8:])
                with m.If(self.o.ready):
                    m.next = "CRC_LO"
            with m.State("CRC_LO"):
                m.d.comb += self.o.payload.eq(crc.crc[:8])
                with m.If(self.o.ready):
                    m.next = "IDLE"
        # Outside the FSM, so that these are plain expressions of the state register (Verilog
        # simulators then know them from time 0, before the state first changes).
        m.d.comb += [self.i.ready.eq(fsm.ongoing("IDLE")), self.o.valid.eq(~fsm.ongoing("IDLE"))]
        return m
