"""The event processor behind the framed UART link, and its ULX3S board top.

:class:`FramedProcessor` is the board-independent part with byte streams on both sides (the
link soak drives it); :class:`ProcessorLink` puts the UART around it (tested in cocotb through
the UART lines)::

    rx -> UARTRx -> FrameDecoder -> commands -> NetworkProcessor -> scores ----+-> FrameEncoder -> UARTTx -> tx
                                  \\-> READ_STATUS ---------------------------/|
                   NetworkProcessor.layer_taps -> spike FIFOs (drop) ---------/

* EVENT frames become processor events (``x``, ``y``, ``polarity``, ``timestamp`` ticks; for a
  network without an input map, ``x`` is the channel and ``y``, ``polarity`` are 0).
* END_OF_SAMPLE closes the sample's remaining steps; its SCORES frame follows.
* RESET finishes the sample the same way (so every neuron state returns to zero: decision 'Per-sample
  state clear') but its scores are not sent.
* READ_STATUS answers with a STATUS frame: the decoder's link counters and ``spikes_dropped``.
  It is sent once the samples finished before it (END_OF_SAMPLE or RESET) have left the
  processor, after their SCORES frames, so it counts every spike they dropped.
* With ``spike_layers``, every spike of those hidden layers leaves as a SPIKE frame (``layer``
  the hidden layer index, ``neuron``, ``time`` the 0-based step index in the sample). Each chosen
  layer's tap writes into its own FIFO (``spike_fifo_depth`` entries); a spike that finds it
  full is dropped and counted in ``spikes_dropped`` (u32, saturating), so spike output never
  applies backpressure to the processor.

Result priority, per frame the encoder takes: (1) SCORES, unless a FIFO head still holds a
spike of the sample these scores close; (2) a pending STATUS (once no finished sample awaits
its scores); (3) a spike of the sample whose scores come next (lowest layer first). Spikes are tagged with their sample (an 8-bit count of
finished samples), so a spike of the next sample waits in its FIFO until the current sample's
SCORES has gone: per sample, the host sees its spikes, then its SCORES. A sample's scores (also
the discarded ones of a RESET-ended sample) wait while its queued spikes drain, at most
``spike_fifo_depth`` SPIKE frames per chosen layer; during that time the processor's score
output is held (like a busy UART holds it), which can delay the next sample's readout, but a
busy spike path never blocks the hidden layers' taps.

Scores leave as signed 32-bit words (the wire format of :mod:`golden.protocol`); a score outside
that range is sent saturated and counted in :attr:`ProcessorLink.clipped_scores`.

:class:`ULX3SProcessorTop` adds the PLL clock, the FTDI UART pins and status LEDs.
"""

from __future__ import annotations

from amaranth.hdl import Const, Elaboratable, Module, Mux, Signal, unsigned
from amaranth.lib import data, io, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from golden.network import NetworkParams
from golden.protocol import COUNTER_NAMES, MAX_SCORES, SCORE_MAX, SCORE_MIN, SensorGeometry
from hw.arith import COUNTER_MAX, COUNTER_WIDTH, count_saturating, index_bits
from hw.boards.ulx3s import BOARD_CLOCK_HZ, add_pll_sync_domain
from hw.link.frame_decoder import CommandKind, FrameDecoder
from hw.link.frame_encoder import SPIKE_LAYOUT, STATUS_LAYOUT, FrameEncoder, ResultKind, scores_layout
from hw.link.uart import UARTRx, UARTTx
from hw.pll_ecp5 import PLLConfig
from hw.processor.network import FLAMES_TAIL, NetworkProcessor, is_flames
from hw.processor.time_bins import STEP_BITS
from hw.streams import StreamRegister

__all__ = ["link_geometry", "spike_layer_indices", "FramedProcessor", "ProcessorLink", "ULX3SProcessorTop"]

#: Bits of the sample tag of a queued spike: finished samples modulo 256. The processor's
#: buffers hold far fewer than 256 samples' closes, so a tag never aliases.
_SAMPLE_TAG_BITS = 8
#: The status ports of :class:`FramedProcessor` that :class:`ProcessorLink` passes out.
_LINK_COUNTER_PORTS = {
    "samples_done": Out(COUNTER_WIDTH),
    "clipped_scores": Out(COUNTER_WIDTH),
    "any_saturation": Out(1),
    "dropped_events": Out(COUNTER_WIDTH),
    "spikes_dropped": Out(COUNTER_WIDTH),
}


def link_geometry(params: NetworkParams) -> SensorGeometry:
    """Event address range the link accepts: the camera of the input map, or ``n x 1 x 1`` channels
    (``n`` the channel pool's source channels, or ``n_inputs``)."""
    if params.input_map is not None:
        width, height = params.input_map.sensor_size
        return SensorGeometry(width, height, 2)
    if params.channel_pool is not None:
        return SensorGeometry(params.channel_pool.n_sources, 1, 1)
    return SensorGeometry(params.n_inputs, 1, 1)


def spike_layer_indices(params: NetworkParams, spike_layers) -> tuple[int, ...]:
    """The hidden layer indices chosen by ``spike_layers``: ``"all"``, or an iterable of indices.

    ``None`` or an empty iterable chooses none. Raises ``ValueError`` for an index that is not a
    spiking hidden layer of ``params`` (the readout does not spike, nor does a FLAMES network's
    SA-HiPPO memory: :data:`hw.processor.network.FLAMES_TAIL`) or for a repeated index.
    """
    n_hidden = len(params.layers) - (len(FLAMES_TAIL) if is_flames(params.kinds) else 1)
    if spike_layers is None:
        return ()
    if isinstance(spike_layers, str):
        if spike_layers != "all":
            raise ValueError(f'spike_layers must be "all" or hidden layer indices, got {spike_layers!r}')
        return tuple(range(n_hidden))
    chosen = tuple(spike_layers)
    for index in chosen:
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < n_hidden:
            raise ValueError(f"spike_layers: {index!r} is not a hidden layer index of this network "
                             f"(hidden layers: {list(range(n_hidden))}; the readout does not spike)")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"spike_layers lists a layer twice: {chosen}")
    for index in chosen:
        if params.layers[index].n_out > 1 << 16:
            raise ValueError(f"spike_layers: layer {index} has {params.layers[index].n_out} neurons; a SPIKE "
                             f"frame's neuron field is u16 (at most {1 << 16})")
    return tuple(sorted(chosen))


class FramedProcessor(wiring.Component):
    """A :class:`~hw.processor.network.NetworkProcessor` behind the framed protocol, byte streams on both sides.

    :class:`ProcessorLink` puts the UART around it; the link soak (``python -m bench.soak --link``)
    drives its byte streams directly.

    Parameters
    ----------
    params : NetworkParams
    n_steps : int
        Steps per sample.
    timeout_cycles : int
        Frame decoder timeout: a frame with this many idle cycles between two of its bytes is
        discarded (``truncated``).
    lanes : int
        Processor synapse lanes (accumulator adds per cycle per layer).
    cores : int, optional
        Neuron cores per hidden layer (default ``lanes``; must divide the lanes).
    spike_layers : ``"all"`` or iterable of int, optional
        Hidden layers whose spikes are sent as SPIKE frames (default: none; see
        :func:`spike_layer_indices`).
    spike_fifo_depth : int
        Entries of each chosen layer's spike FIFO (at least 2; default 64). A SPIKE frame takes
        120 bit times on the line (12 bytes), so the FIFO absorbs bursts, not a sustained rate
        above ``baud / 120`` spikes per second.

    Members
    -------
    i : ``In(stream.Signature(8))``
        Host-to-board bytes. ``ready`` is always high (the decoder takes a byte per cycle); a
        frame's command is offered to the processor 4 cycles after its last byte when the
        decoder's command FIFO is empty.
    o : ``Out(stream.Signature(8))``
        Board-to-host frame bytes (SCORES, STATUS, SPIKE); honours backpressure. The chosen
        result (the processor's scores, a pending STATUS, a queued spike) passes a register stage
        (:class:`hw.streams.StreamRegister`) on its way to the encoder: with the encoder idle, a
        frame's ``SYNC`` is valid 2 cycles after its result was taken.
    samples_done : ``Out(32)``
        Samples finished (END_OF_SAMPLE or RESET), saturating.
    clipped_scores : ``Out(32)``
        Scores sent saturated to s32.
    any_saturation : ``Out(1)``
        High once any layer counted a clamp.
    dropped_events : ``Out(32)``
        Events dropped by the processor's time-bin controller (backwards, out of range, late, over the
        per-step bound), saturating.
    spikes_dropped : ``Out(32)``
        Spikes of the chosen layers dropped because their FIFO was full, saturating (also in STATUS).
    """

    def __init__(self, params: NetworkParams, *, n_steps: int, timeout_cycles: int, lanes: int = 1,
                 cores: int | None = None, spike_layers=None, spike_fifo_depth: int = 64):
        if params.n_classes > MAX_SCORES:
            raise ValueError(f"the SCORES frame carries at most {MAX_SCORES} classes; the network has {params.n_classes}")
        if not isinstance(spike_fifo_depth, int) or spike_fifo_depth < 2:
            raise ValueError(f"spike_fifo_depth must be an int of at least 2, got {spike_fifo_depth!r}")
        self.params = params
        self.spike_layers = spike_layer_indices(params, spike_layers)
        self.spike_fifo_depth = spike_fifo_depth
        self.geometry = link_geometry(params)
        self.processor = NetworkProcessor(params, n_steps=n_steps, lanes=lanes, cores=cores)
        self.decoder = FrameDecoder(self.geometry, timeout_cycles=timeout_cycles)
        self.encoder = FrameEncoder(params.n_classes)
        super().__init__({
            "i": In(stream.Signature(8)),
            "o": Out(stream.Signature(8)),
            **_LINK_COUNTER_PORTS,
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.decoder = decoder = self.decoder
        m.submodules.encoder = encoder = self.encoder
        m.submodules.processor = proc = self.processor
        # One flag per finished sample (send its scores?), read from the FIFO's output register.
        m.submodules.emit_flags = flags = SyncFIFOBuffered(width=1, depth=4)
        # The chosen result is registered before the encoder: the choice (flags, spike heads,
        # status) and the scores' clipping stay off the encoder's body register.
        m.submodules.result_register = result = StreamRegister(encoder.i.payload.shape())
        wiring.connect(m, wiring.flipped(self.i), decoder.i)
        wiring.connect(m, result.o, encoder.i)
        wiring.connect(m, encoder.o, wiring.flipped(self.o))

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

        # Spikes of the chosen layers: per layer a step counter, a sample tag and a FIFO.
        scored_tag = Signal(_SAMPLE_TAG_BITS)  # samples whose scores left the processor
        heads = []  # (layer index, FIFO, entry view, head is of the sample scored next)
        dropped_now = []
        for k in self.spike_layers:
            tap = proc.layer_taps[f"layer_{k}"]
            entry_layout = data.StructLayout({
                "neuron": unsigned(index_bits(self.params.layers[k].n_out)),
                "step": unsigned(STEP_BITS),
                "tag": unsigned(_SAMPLE_TAG_BITS),
            })
            step = Signal(STEP_BITS, name=f"spike_step_{k}")
            tag = Signal(_SAMPLE_TAG_BITS, name=f"spike_tag_{k}")
            fifo = SyncFIFOBuffered(width=entry_layout.size, depth=self.spike_fifo_depth)
            m.submodules[f"spike_out_fifo_{k}"] = fifo
            entry = data.View(entry_layout, fifo.w_data)
            is_spike = tap.valid & ~tap.close
            m.d.comb += [
                entry.neuron.eq(tap.index),
                entry.step.eq(step),
                entry.tag.eq(tag),
                fifo.w_en.eq(is_spike),
            ]
            dropped_now.append(is_spike & ~fifo.w_rdy)
            with m.If(tap.valid & tap.close):
                with m.If(tap.last):
                    m.d.sync += [step.eq(0), tag.eq(tag + 1)]
                with m.Else():
                    m.d.sync += step.eq(step + 1)
            head = data.View(entry_layout, fifo.r_data)
            current = Signal(name=f"spike_current_{k}")
            m.d.comb += current.eq(fifo.r_rdy & (head.tag == scored_tag))
            heads.append((k, fifo, head, current))
        any_current = Const(0, 1)
        for *_, current in heads:
            any_current = any_current | current
        n_dropped = sum((d.as_unsigned() for d in dropped_now), Const(0, range(len(dropped_now) + 1)))
        count_saturating(m, self.spikes_dropped, n_dropped)

        # Results: scores (once its sample's spikes have left), then a pending status, then spikes.
        scores = proc.o_scores
        scores_go = Signal()
        m.d.comb += scores_go.eq(scores.valid & ~any_current)
        send_scores = scores_go & flags.r_rdy & flags.r_data
        # STATUS waits for the SCORES of every sample finished before its READ_STATUS (no entry
        # left in ``flags``), so its counters include all of their spikes_dropped.
        send_status = ~send_scores & status_pending & (flags.level == 0)
        send_spike = ~send_scores & ~send_status & any_current
        # The lowest chosen layer with a current spike goes first (Mux chains, no comb processes:
        # Verilog simulators know them from time 0).
        spike_body = Signal(SPIKE_LAYOUT)
        earlier_current = Const(0, 1)
        for k, fifo, head, current in heads:
            m.d.comb += fifo.r_en.eq(current & ~earlier_current & send_spike & result.i.ready)
            earlier_current = earlier_current | current
        layer_sel, neuron_sel, step_sel = Const(0, 8), Const(0, 16), Const(0, STEP_BITS)
        for k, fifo, head, current in reversed(heads):
            layer_sel = Mux(current, k, layer_sel)
            neuron_sel = Mux(current, head.neuron, neuron_sel)
            step_sel = Mux(current, head.step, step_sel)
        m.d.comb += [spike_body.layer.eq(layer_sel), spike_body.neuron.eq(neuron_sel),
                     spike_body.time.eq(step_sel)]
        status_body = Signal(STATUS_LAYOUT)
        m.d.comb += [status_body[name].eq(decoder.counters[name]) for name in COUNTER_NAMES]
        m.d.comb += status_body.spikes_dropped.eq(self.spikes_dropped)
        n = self.params.n_classes
        scores_body = Signal(scores_layout(n))
        clipped = []
        m.d.comb += scores_body.argmax.eq(scores.payload.argmax)
        for k in range(n):
            value = scores.payload.scores[k]
            too_low, too_high = value < SCORE_MIN, value > SCORE_MAX
            clipped.append(too_low | too_high)
            m.d.comb += scores_body.scores[k].eq(Mux(too_low, SCORE_MIN, Mux(too_high, SCORE_MAX, value)))
        m.d.comb += [
            result.i.valid.eq(send_scores | send_status | send_spike),
            result.i.payload.kind.eq(Mux(send_scores, ResultKind.SCORES,
                                          Mux(send_status, ResultKind.STATUS, ResultKind.SPIKE))),
            # Every body on its own bits of the result register: only the 2-bit kind depends on
            # the choice (timing: the scores' valid once fanned out to every body bit).
            result.i.payload.body.scores.eq(scores_body),
            result.i.payload.body.status.eq(status_body),
            result.i.payload.body.spike.eq(spike_body),
            # A sample's scores (sent or, after RESET, discarded) wait for its queued spikes.
            scores.ready.eq(~any_current & flags.r_rdy & Mux(flags.r_data, result.i.ready, 1)),
            flags.r_en.eq(scores.valid & scores.ready),
        ]
        with m.If(cmd.valid & cmd.ready & is_status):
            m.d.sync += status_pending.eq(1)
        with m.If(send_status & result.i.ready):
            m.d.sync += status_pending.eq(0)

        with m.If(scores.valid & scores.ready):
            m.d.sync += scored_tag.eq(scored_tag + 1)
        count_saturating(m, self.samples_done, scores.valid & scores.ready)
        n_clipped = sum((c.as_unsigned() for c in clipped), Const(0, range(n + 1)))
        count_saturating(m, self.clipped_scores, n_clipped, when=send_scores & result.i.ready)
        saturation = [proc.current_saturation[k] != 0 for k in range(len(self.params.layers))]
        saturation += [proc.neuron_saturation[k] != 0 for k in range(len(self.params.layers))]
        any_sat = Const(0, 1)
        for flag in saturation:
            any_sat = any_sat | flag
        dropped = proc.dropped_backwards + proc.dropped_out_of_range + proc.dropped_late + proc.dropped_over_bound
        m.d.comb += [
            self.any_saturation.eq(any_sat),
            self.dropped_events.eq(Mux(dropped > COUNTER_MAX, COUNTER_MAX, dropped)),
        ]
        return m


class ProcessorLink(wiring.Component):
    """:class:`FramedProcessor` served over the UART lines (8N1, no flow control).

    The frame bytes reach the transmitter through a register stage
    (:class:`hw.streams.StreamRegister`), so the transmitter's ``ready`` (its bit timer) loads
    only that register, never the encoder's frame body (timing); a byte reaches the line one
    cycle later, and bytes still leave 10 bit times apart.

    Parameters
    ----------
    params : NetworkParams
    n_steps : int
        Steps per sample.
    clk_freq : float
        ``sync`` clock in Hz.
    baud : float
        UART bit rate (default 1 Mbaud).
    lanes, cores, spike_layers, spike_fifo_depth
        As :class:`FramedProcessor`.
    timeout_cycles : int, optional
        Frame decoder timeout; default 10 ms of clock cycles.

    Members
    -------
    rx : ``In(1)``, tx : ``Out(1)``
        The serial lines (idle high).
    samples_done, clipped_scores, any_saturation, dropped_events, spikes_dropped
        :class:`FramedProcessor`'s.
    """

    def __init__(self, params: NetworkParams, *, n_steps: int, clk_freq: float, baud: float = 1_000_000,
                 lanes: int = 1, cores: int | None = None, timeout_cycles: int | None = None, spike_layers=None,
                 spike_fifo_depth: int = 64):
        self.framed = FramedProcessor(params, n_steps=n_steps, lanes=lanes, cores=cores, spike_layers=spike_layers,
                                      spike_fifo_depth=spike_fifo_depth,
                                      timeout_cycles=timeout_cycles or max(2, int(clk_freq // 100)))
        self.uart_rx = UARTRx(clk_freq, baud)
        self.uart_tx = UARTTx(clk_freq, baud)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), **_LINK_COUNTER_PORTS})

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = uart_rx = self.uart_rx
        m.submodules.uart_tx = uart_tx = self.uart_tx
        m.submodules.framed = framed = self.framed
        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        wiring.connect(m, uart_rx.o, framed.i)
        m.submodules.tx_register = tx_register = StreamRegister(8)
        wiring.connect(m, framed.o, tx_register.i)
        wiring.connect(m, tx_register.o, uart_tx.i)
        m.d.comb += [getattr(self, name).eq(getattr(framed, name)) for name in _LINK_COUNTER_PORTS]
        return m


class ULX3SProcessorTop(Elaboratable):
    """The processor link on the ULX3S: PLL clock, the FTDI UART (``uart`` 0), LEDs.

    LEDs: 0-5 the low bits of ``samples_done``; 6 lit once any event was dropped; 7 lit once any
    layer counted a saturation. The F1 button resets (the state memories are not reset by it; the
    next END_OF_SAMPLE or RESET command clears them).

    ``lanes``, ``cores``, ``spike_layers`` and ``spike_fifo_depth`` go to :class:`ProcessorLink`
    (default: one lane and one core per layer, no SPIKE frames).
    """

    def __init__(self, params: NetworkParams, *, n_steps: int, pll_config: PLLConfig, baud: float = 1_000_000,
                 lanes: int = 1, cores: int | None = None, spike_layers=None, spike_fifo_depth: int = 64):
        if pll_config.input_hz != BOARD_CLOCK_HZ:
            raise ValueError(f"the ULX3S PLL input is the {BOARD_CLOCK_HZ / 1e6:g} MHz oscillator")
        self.pll_config = pll_config
        self.link = ProcessorLink(params, n_steps=n_steps, clk_freq=pll_config.output_hz, baud=baud, lanes=lanes,
                                  cores=cores, spike_layers=spike_layers, spike_fifo_depth=spike_fifo_depth)

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
