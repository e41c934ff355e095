"""DH-LIF core verification: the kind's stream facts and the case generator.

:data:`DHLIF_KIND` tells :class:`sim.step_case.StepCase` how :func:`golden.dhlif.run_int` meets
:class:`hw.cores.dhlif.DHLIFCore`: a case's inputs are event counts ``(T, C)``, turned into one
``i_drive`` beat ``{neuron, drive_0, ..}`` per neuron per tick by
:func:`golden.dhlif.branch_drives`; each update leaves an ``o_state`` beat ``{neuron,
current_0, .., u, spike, saturated}``. The cases run through :mod:`sim.harness` in
``tests/test_core_dhlif.py`` (amaranth.sim) and ``tests/test_cocotb_dhlif.py`` (cocotb on Icarus).
"""

from __future__ import annotations

import numpy as np

from golden.dhlif import DHLIFParams, branch_drives, run_int
from golden.fixed import QFormat
from hw.cores.dhlif import DHLIFCore
from sim.step_case import StepCase, StepKind

__all__ = ["DHLIF_KIND", "random_case"]


def _input_fields(params: DHLIFParams, counts) -> dict:
    drives, _ = branch_drives(params, counts)
    return {f"drive_{d}": drives[:, :, d] for d in range(params.n_branches)}


def _state_fields(trace) -> dict:
    currents = {f"current_{d}": trace.current[:, :, d] for d in range(trace.current.shape[2])}
    return {**currents, "u": trace.membrane, "spike": trace.spike, "saturated": trace.saturated}


#: The DH-LIF layer on its core's streams.
DHLIF_KIND = StepKind("dhlif", DHLIFParams, DHLIFCore, run_int, "i_drive", _input_fields, _state_fields)


def random_case(
    seed: int, n_neurons: int, in_features: int, n_branches: int, steps: int, *, rate: float = 0.8,
    shuffle: bool = True, name: str | None = None, **formats: QFormat,
) -> StepCase:
    """Weights over the whole weight range, branch decays 0.3-0.99, soma decays 0.5-0.99,
    threshold 1.5, Poisson counts of mean ``rate``; neurons in a random order per tick."""
    rng = np.random.default_rng(seed)
    probe = DHLIFParams(np.zeros((1, n_branches)), np.zeros((1, n_branches)), np.zeros(1), 1, **formats)
    one = 1 << probe.decay_fmt.frac_bits
    params = DHLIFParams(
        weight_q=probe.weight_fmt.quantize(rng.uniform(-1.0, 1.5, (n_neurons, in_features))),
        branch_decay_q=(rng.uniform(0.3, 0.99, (n_neurons, n_branches)) * one).astype(np.int64),
        soma_decay_q=(rng.uniform(0.5, 0.99, n_neurons) * one).astype(np.int64),
        threshold_q=probe.membrane_fmt.quantize(1.5),
        **formats,
    )
    counts = rng.poisson(rate, (steps, in_features)).astype(np.int64)
    order = np.array([rng.permutation(n_neurons) if shuffle else np.arange(n_neurons) for _ in range(steps)])
    return DHLIF_KIND.case(name or f"random{seed}", params, counts, order)
