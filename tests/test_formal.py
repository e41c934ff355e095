"""Formal proofs (SymbiYosys, YoWASP tools) of the stream blocks' contracts: docs/formal.md.

Each proof is one SymbiYosys task on a checker of :mod:`hw.formal.checks`; a test fails when
SymbiYosys does not report PASS, with the failed assertions in its message. ``prove`` tasks are
a bounded check plus k-induction (a pass holds for every depth), ``bmc`` tasks a bounded check
from reset (a pass holds for that many cycles). The last tests show that the checkers can fail.
"""

from dataclasses import dataclass
from typing import Callable

import pytest
from amaranth.hdl import Assert, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from golden.protocol import SensorGeometry, crc16
from golden.refractory_lif import RefractoryLIFParams
from hw.formal.checks import (
    BlockCheck, FrameDecoderCRCCheck, QueueCheck, TimeBinOrderCheck, crc_of_bytes,
    frame_decoder_counters, time_bin_counters,
)
from hw.cores.refractory_lif import RefractoryLIFCore
from hw.formal.sby import prove
from hw.link.frame_decoder import CommandKind, FrameDecoder
from hw.processor.time_bins import TimeBinController
from hw.streams import StreamQueue


#: Steps of the frame decoder's CRC check: the first at which an EVENT command can leave.
FRAME_DECODER_CRC_DEPTH = 18


@dataclass(frozen=True)
class Proof:
    checker: Callable[[], wiring.Component]
    mode: str
    depth: int


PROOFS = {
    # Stream rules on o and the four drop counters: k-induction closes at 3 (unbounded).
    "time_bins_contract": Proof(lambda: BlockCheck(TimeBinController(3, 3, 3, 2), counters=time_bin_counters),
                                "prove", 3),
    # Stream rules on o and the nine link counters: k-induction closes at 3 (unbounded).
    "frame_decoder_contract": Proof(
        lambda: BlockCheck(FrameDecoder(SensorGeometry(width=4, height=4, n_polarities=2), timeout_cycles=2,
                                        fifo_depth=2), counters=frame_decoder_counters), "prove", 3),
    # A neuron core's output register (shared by every core through NeuronCore): stream rules
    # on o_spike and o_state given i_current's, saturation_count sticks. Unbounded at k = 4.
    "neuron_core_contract": Proof(
        lambda: BlockCheck(RefractoryLIFCore(RefractoryLIFParams.from_float([0.5, 1.5], [0.25, 0.75], tau=0.5,
                                                                             tau_r=0.9)),
                           counters=lambda core: {"saturation_count": core.saturation_count}), "prove", 4),
    # The processor's queues: 3 entries (lanes, cores, steps, spikes) and 4 (events).
    "queue_depth_3": Proof(lambda: QueueCheck(width=2, depth=3), "bmc", 16),
    "queue_depth_4": Proof(lambda: QueueCheck(width=2, depth=4), "bmc", 14),
    # Order of events through the time bins (3 inputs, 3 ticks a bin, <= 2 events a step).
    "time_bins_order": Proof(TimeBinOrderCheck, "bmc", 12),
    # No command from a frame with a bad CRC or length, 18 cycles: every 5-byte frame (END,
    # RESET, READ_STATUS) after any prefix of up to 13 cycles, and an EVENT frame (14 bytes)
    # taken from reset (its command leaves in cycle 18: test_crc_bound_reaches_an_event).
    "frame_decoder_crc": Proof(FrameDecoderCRCCheck, "bmc", FRAME_DECODER_CRC_DEPTH),
}


@pytest.mark.parametrize("name", PROOFS)
def test_proof(name, tmp_path):
    proof = PROOFS[name]
    result = prove(proof.checker(), name, tmp_path, depth=proof.depth, mode=proof.mode)
    assert result.passed, f"{name}: SymbiYosys says {result.status}\n{result.failure_summary()}"


def test_crc_of_bytes_is_the_protocol_crc():
    messages = [b"", b"\x01\x09" + bytes(range(9)), b"\x02\x00", b"\xff" * 11]
    outputs = [Signal(16, name=f"crc_{k}") for k in range(len(messages))]
    m = Module()
    for message, output in zip(messages, outputs):
        m.d.comb += output.eq(crc_of_bytes(m, [Const(byte, 8) for byte in message]))
    sim = Simulator(m)

    async def testbench(ctx):
        assert [ctx.get(output) for output in outputs] == [crc16(message) for message in messages]

    sim.add_testbench(testbench)
    sim.run()


class _WrappingCounter(wiring.Component):
    """A deliberately broken counter: it wraps from its maximum to 0."""

    event: In(1)
    count: Out(3)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.event):
            m.d.sync += self.count.eq(self.count + 1)
        return m


class _DroppingQueue(StreamQueue):
    """A deliberately broken queue: it says ready while full, so a beat taken then is lost."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        m.d.comb += self.i.ready.eq(1)
        return m


@pytest.mark.parametrize("name, checker", [
    ("wrapping_counter", lambda: BlockCheck(_WrappingCounter(), counters=lambda block: {"count": block.count})),
    ("dropping_queue", lambda: QueueCheck(_DroppingQueue, width=2, depth=2)),
])
def test_checker_finds_a_broken_design(name, checker, tmp_path):
    result = prove(checker(), name, tmp_path, depth=12, mode="bmc")
    assert result.status == "FAIL", f"{name}: SymbiYosys says {result.status}, expected FAIL\n{result.log[-2000:]}"
    assert "Assert failed" in result.log


class _NoEventCheck(FrameDecoderCRCCheck):
    """The CRC checker plus a claim that is false once an EVENT frame can be decoded."""

    def add_properties(self, m, decoder):
        super().add_properties(m, decoder)
        with m.If(decoder.o.valid):
            m.d.comb += Assert(decoder.o.payload.kind != CommandKind.EVENT, "never an EVENT command")


@pytest.mark.parametrize("depth, status", [(FRAME_DECODER_CRC_DEPTH - 1, "PASS"), (FRAME_DECODER_CRC_DEPTH, "FAIL")])
def test_crc_bound_reaches_an_event(depth, status, tmp_path):
    """The CRC check's bound covers an EVENT frame: within it the solver finds an EVENT command
    (so the CRC property was checked on one), one step fewer it cannot."""
    result = prove(_NoEventCheck(), f"no_event_{depth}", tmp_path, depth=depth, mode="bmc")
    assert result.status == status, f"depth {depth}: SymbiYosys says {result.status}, expected {status}"
