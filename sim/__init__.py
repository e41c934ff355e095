"""cocotb testbenches and the runners that build them from Amaranth designs."""
