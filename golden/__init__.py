"""Golden models: the specification of every spikestream core.

``golden.fixed`` holds the fixed-point rules (rounding, saturation; see docs/decisions.md); each neuron
module holds a float PyTorch model for training and a bit-exact integer model that the
hardware mirrors.
"""
