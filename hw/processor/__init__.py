"""The streaming event processor: input map, time bins, synapse stages, layers, network."""
