"""Board tops that wrap cores for a real FPGA board."""
