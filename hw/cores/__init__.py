"""Neuron cores, one module per core."""
