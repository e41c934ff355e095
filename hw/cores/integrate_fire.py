"""The integrate-and-fire core: the plain LIF core (:class:`hw.cores.lif.LIFCore`) built from
:class:`golden.integrate_fire.IFParams`, whose leak words are all one (``uQ1.17``)."""

from __future__ import annotations

from golden.integrate_fire import NEURON_KIND
from hw.cores.lif import LIFCore

#: This module's entry in the core registry (:func:`hw.cores.core_classes`): the kind and its core.
NEURON_CORE = (NEURON_KIND, LIFCore)
