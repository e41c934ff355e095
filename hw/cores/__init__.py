"""Neuron cores, one module per core, and the registry of each neuron kind's core.

Each core module ends with ``NEURON_CORE = (NEURON_KIND, builder)``: the kind it implements
(:class:`golden.kinds.NeuronKind`, declared beside the parameter class) and the class (or
factory) that builds the core from the kind's parameters. :func:`core_classes` collects them
from the modules named in :data:`CORE_MODULES`; the processor takes its cores from it.
"""

from __future__ import annotations

import functools
import importlib

__all__ = ["CORE_MODULES", "KINDS_WITHOUT_CORE", "core_classes"]

#: Kinds of the golden registry with no core: the event-pooling readout of a FLAMES network,
#: which the processor runs as :class:`hw.processor.event_pool.EventPoolReadout` behind the
#: SA-HiPPO memory layer (``docs/processor.md``).
KINDS_WITHOUT_CORE = ("event_pool",)

#: The core modules that declare a ``NEURON_CORE`` (one line per kind).
CORE_MODULES = ("refractory_lif", "silif", "csilif", "li_readout", "dhlif", "sahippo", "lif", "integrate_fire",
                "cuba_lif")


@functools.cache
def core_classes() -> dict:
    """Kind name -> core builder (called with the kind's parameters), from :data:`CORE_MODULES`."""
    builders = {}
    for module in CORE_MODULES:
        kind, builder = importlib.import_module(f"{__name__}.{module}").NEURON_CORE
        if kind.name in builders:
            raise ValueError(f"two cores registered for the neuron kind {kind.name!r} (hw.cores.{module})")
        builders[kind.name] = builder
    return builders
