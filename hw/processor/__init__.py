"""The streaming event processor (issue #5): input map, time bins, synapse stages, layers, network."""
