"""Amaranth hardware of spikestream: neuron cores (``hw.cores``), board tops
(``hw.boards``) and the bitstream build (``python -m hw.build``)."""
