"""The event processor behind the framed UART link, and its ULX3S board top.

:class:`ProcessorLink` is the board-independent part (tested in cocotb through the UART lines)::

    rx -> UARTRx -> FrameDecoder -> commands -> NetworkProcessor -> scores -+-> FrameEncoder -> UARTTx -> tx
                                  \\-> READ_STATUS ------------------------/

* EVENT frames become processor events (``x``, ``y``, ``polarity``, ``timestamp`` ticks; for a
  network without an input map, ``x`` is the channel and ``y``, ``polarity`` are 0).
* END_OF_SAMPLE closes the sample's remaining steps; its SCORES frame follows.
* RESET finishes the sample the same way (so every neuron state returns to zero, D3) but its
  scores are not sent.
* READ_STATUS answers with a STATUS frame of the link counters.

Scores leave as signed 32-bit words (the wire format of :mod:`golden.protocol`); a score outside
that range is sent saturated (D2) and counted in :attr:`ProcessorLink.clipped_scores`.

:class:`ULX3SProcessorTop` adds the PLL clock, the FTDI UART pins and status LEDs.
"""

from __future__ import annotations

from amaranth.hdl import Const, Elaboratable, Module, Mux, Signal
from amaranth.lib import io, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from golden.network import NetworkParams
from golden.protocol import MAX_SCORES, SensorGeometry
from hw.boards.ulx3s import BOARD_CLOCK_HZ, add_pll_sync_domain
from hw.link.frame_decoder import CommandKind, FrameDecoder
from hw.link.frame_encoder import FrameEncoder, ResultKind, scores_layout
from hw.link.uart import UARTRx, UARTTx
from hw.pll_ecp5 import PLLConfig
from hw.processor.network import NetworkProcessor

__all__ = ["link_geometry", "ProcessorLink", "ULX3SProcessorTop"]

_COUNTER_WIDTH = 32
_SCORE_MIN, _SCORE_MAX = -(1 << 31), (1 << 31) - 1


def link_geometry(params: NetworkParams) -> SensorGeometry:
    """Event address range the link accepts: the camera of the input map, or ``n_inputs x 1 x 1``."""
    if params.input_map is not None:
        width, height = params.input_map.sensor_size
        return SensorGeometry(width, height, 2)
    return SensorGeometry(params.n_inputs, 1, 1)


class ProcessorLink(wiring.Component):
    """A :class:`~hw.processor.network.NetworkProcessor` served over the framed UART protocol.

    Parameters
    ----------
    params : NetworkParams
    n_steps : int
        Steps per sample.
    clk_freq : float
        ``sync`` clock in Hz.
    baud : float
        UART bit rate (default 1 Mbaud).
    lanes : int
        Processor lanes.
    timeout_cycles : int, optional
        Frame decoder timeout; default 10 ms of clock cycles.

    Members
    -------
    rx : ``In(1)``, tx : ``Out(1)``
        The serial lines (idle high).
    samples_done : ``Out(32)``
        Samples finished (END_OF_SAMPLE or RESET), saturating.
    clipped_scores : ``Out(32)``
        Scores sent saturated to s32.
    any_saturation : ``Out(1)``
        High once any layer counted a clamp.
    dropped_events : ``Out(32)``
        Events dropped by the processor's time-bin controller (backwards, out of range, late, over the
        per-step bound), saturating.
    """

    def __init__(self, params: NetworkParams, *, n_steps: int, clk_freq: float, baud: float = 1_000_000,
                 lanes: int = 1, timeout_cycles: int | None = None):
        if params.n_classes > MAX_SCORES:
            raise ValueError(f"the SCORES frame carries at most {MAX_SCORES} classes; the network has {params.n_classes}")
        self.params = params
        self.geometry = link_geometry(params)
        self.processor = NetworkProcessor(params, n_steps=n_steps, lanes=lanes)
        self.uart_rx = UARTRx(clk_freq, baud)
        self.uart_tx = UARTTx(clk_freq, baud)
        self.decoder = FrameDecoder(self.geometry, timeout_cycles=timeout_cycles or max(2, int(clk_freq // 100)))
        self.encoder = FrameEncoder(params.n_classes)
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "samples_done": Out(_COUNTER_WIDTH),
            "clipped_scores": Out(_COUNTER_WIDTH),
            "any_saturation": Out(1),
            "dropped_events": Out(_COUNTER_WIDTH),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = uart_rx = self.uart_rx
        m.submodules.uart_tx = uart_tx = self.uart_tx
        m.submodules.decoder = decoder = self.decoder
        m.submodules.encoder = encoder = self.encoder
        m.submodules.processor = proc = self.processor
        m.submodules.emit_flags = flags = SyncFIFO(width=1, depth=4)
        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        wiring.connect(m, uart_rx.o, decoder.i)
        wiring.connect(m, encoder.o, uart_tx.i)

        # Commands -> processor (plain expressions throughout: known from time 0 in Verilog sims).
        cmd = decoder.o
        kind = cmd.payload.kind
        is_event = kind == CommandKind.EVENT
        is_end = kind == CommandKind.END_OF_SAMPLE
        is_reset = kind == CommandKind.RESET
        is_status = kind == CommandKind.READ_STATUS
        finishes = is_end | is_reset
        status_pending = Signal()
        camera = proc.camera_input
        m.d.comb += [
            proc.i.valid.eq(cmd.valid & (is_event | (finishes & flags.w_rdy))),
            proc.i.payload.kind.eq(finishes),
            proc.i.payload.tick.eq(cmd.payload.timestamp),
            cmd.ready.eq(Mux(is_event, proc.i.ready,
                             Mux(finishes, proc.i.ready & flags.w_rdy, Mux(is_status, ~status_pending, 1)))),
            flags.w_en.eq(cmd.valid & finishes & proc.i.ready),
            flags.w_data.eq(is_end),
        ]
        if camera:
            m.d.comb += [
                proc.i.payload.x.eq(cmd.payload.x),
                proc.i.payload.y.eq(cmd.payload.y),
                proc.i.payload.polarity.eq(cmd.payload.polarity),
            ]
        else:
            m.d.comb += proc.i.payload.channel.eq(cmd.payload.x)

        # Results: scores first, then a pending status.
        scores = proc.o_scores
        send_scores = scores.valid & flags.r_data
        send_status = ~scores.valid & status_pending
        n = self.params.n_classes
        scores_body = Signal(scores_layout(n))
        clipped = []
        m.d.comb += scores_body.argmax.eq(scores.payload.argmax)
        for k in range(n):
            value = scores.payload.scores[k]
            too_low, too_high = value < _SCORE_MIN, value > _SCORE_MAX
            clipped.append(too_low | too_high)
            m.d.comb += scores_body.scores[k].eq(Mux(too_low, _SCORE_MIN, Mux(too_high, _SCORE_MAX, value)))
        m.d.comb += [
            encoder.i.valid.eq(send_scores | send_status),
            encoder.i.payload.kind.eq(Mux(send_scores, ResultKind.SCORES, ResultKind.STATUS)),
            encoder.i.payload.body.as_value().eq(Mux(send_scores, scores_body.as_value(),
                                                     decoder.counters.as_value())),
            scores.ready.eq(Mux(flags.r_data, encoder.i.ready, 1)),
            flags.r_en.eq(scores.valid & scores.ready),
        ]
        with m.If(cmd.valid & cmd.ready & is_status):
            m.d.sync += status_pending.eq(1)
        with m.If(send_status & encoder.i.ready):
            m.d.sync += status_pending.eq(0)

        limit = (1 << _COUNTER_WIDTH) - 1
        with m.If(scores.valid & scores.ready & (self.samples_done != limit)):
            m.d.sync += self.samples_done.eq(self.samples_done + 1)
        n_clipped = sum((c.as_unsigned() for c in clipped), Const(0, range(n + 1)))
        with m.If(send_scores & encoder.i.ready):
            total = self.clipped_scores + n_clipped
            m.d.sync += self.clipped_scores.eq(Mux(total > limit, limit, total))
        saturation = [proc.current_saturation[k] != 0 for k in range(len(self.params.layers))]
        saturation += [proc.neuron_saturation[k] != 0 for k in range(len(self.params.layers))]
        any_sat = Const(0, 1)
        for flag in saturation:
            any_sat = any_sat | flag
        dropped = proc.dropped_backwards + proc.dropped_out_of_range + proc.dropped_late + proc.dropped_over_bound
        m.d.comb += [
            self.any_saturation.eq(any_sat),
            self.dropped_events.eq(Mux(dropped > limit, limit, dropped)),
        ]
        return m


class ULX3SProcessorTop(Elaboratable):
    """The processor link on the ULX3S: PLL clock, the FTDI UART (``uart`` 0), LEDs.

    LEDs: 0-5 the low bits of ``samples_done``; 6 lit once any event was dropped; 7 lit once any
    layer counted a saturation. The F1 button resets (the state memories are not reset by it; the
    next END_OF_SAMPLE or RESET command clears them).
    """

    def __init__(self, params: NetworkParams, *, n_steps: int, pll_config: PLLConfig, baud: float = 1_000_000,
                 lanes: int = 1):
        if pll_config.input_hz != BOARD_CLOCK_HZ:
            raise ValueError(f"the ULX3S PLL input is the {BOARD_CLOCK_HZ / 1e6:g} MHz oscillator")
        self.pll_config = pll_config
        self.link = ProcessorLink(params, n_steps=n_steps, clk_freq=pll_config.output_hz, baud=baud, lanes=lanes)

    def elaborate(self, platform):
        m = Module()
        add_pll_sync_domain(m, platform, self.pll_config)
        m.submodules.link = link = self.link
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx_pin = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx_pin = tx = io.Buffer("o", uart.tx)
        m.d.comb += [link.rx.eq(rx.i), tx.o.eq(link.tx)]
        leds = [io.Buffer("o", platform.request("led", k, dir="-")) for k in range(8)]
        for k, led in enumerate(leds):
            m.submodules[f"led_{k}"] = led
        m.d.comb += [leds[k].o.eq(link.samples_done[k]) for k in range(6)]
        m.d.comb += [leds[6].o.eq(link.dropped_events != 0), leds[7].o.eq(link.any_saturation)]
        return m
