"""The host link: UART byte streams, the host-to-board frame decoder and the board-to-host
frame encoder. The frame format is specified in :mod:`golden.protocol`; see ``docs/host_link.md``.
"""

from .frame_decoder import COUNTERS_LAYOUT, CommandKind, FrameDecoder, command_layout
from .frame_encoder import SPIKE_LAYOUT, FrameEncoder, ResultKind, result_layout, scores_layout
from .uart import UARTRx, UARTTx, uart_divisor

__all__ = [
    "UARTRx", "UARTTx", "uart_divisor",
    "FrameDecoder", "CommandKind", "command_layout", "COUNTERS_LAYOUT",
    "FrameEncoder", "ResultKind", "result_layout", "scores_layout", "SPIKE_LAYOUT",
]
