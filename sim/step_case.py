"""Verification cases of the cores that take one input beat per neuron per time step.

The C-SiLIF, SiLIF, refractory LIF and DH-LIF cores share one stream contract: each time step
every neuron gets one beat on the core's input stream (``{neuron, ...}``, neurons of a step in
any order), and each update leaves one ``o_state`` beat (``{neuron, <state fields>, spike,
saturated}``) and, when it fires, one ``o_spike`` beat (``{neuron}``), in input order; the
``saturation_count`` output counts the updates in which a clamp acted. A :class:`StepCase` holds
one stimulus for such a core and derives from the kind's golden ``run_int`` everything
:mod:`sim.harness` needs: the core, the input records and the expected beats, labelled with
``step`` and ``neuron``. A :class:`StepKind` (one per neuron kind, in ``sim/tb_<kind>.py``) says
how the kind's golden trace and its payload fields meet.

Cases are written to and read from JSON (:meth:`StepCase.to_json`, :func:`write_vectors`), so
corner cases can be checked in with their expected state fields (``sim/vectors``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from golden.fixed import QFormat
from sim.harness import Expectation

__all__ = [
    "StepKind",
    "StepCase",
    "current_input",
    "feed_order",
    "gaussian_case",
    "params_to_json",
    "params_from_json",
    "write_vectors",
    "read_vectors",
    "side_by_side",
    "vectors_main",
]


@dataclass(frozen=True)
class StepKind:
    """How one neuron kind's golden model and core meet on the streams.

    Attributes
    ----------
    name : str
        The kind (build directories, reports).
    params_class : type
        The integer parameter dataclass (``CSiLIFParams``).
    core_class : type
        The core, built as ``core_class(params, **kwargs)``.
    run_int : callable
        The golden integer model: ``run_int(params, inputs_q)`` with ``inputs_q`` of shape
        ``(T, C)``, returning a trace.
    input_port : str
        The core's input stream.
    input_fields : callable
        ``input_fields(params, inputs_q)``: the input payload fields besides ``neuron``, each an
        array of shape ``(T, n_neurons)`` (see :func:`current_input`).
    state_fields : callable
        ``state_fields(trace)``: the ``o_state`` payload fields besides ``neuron``, each an array
        of shape ``(T, n_neurons)``; must include ``spike`` and ``saturated``.
    """

    name: str
    params_class: type
    core_class: type
    run_int: Callable
    input_port: str
    input_fields: Callable
    state_fields: Callable

    def case(self, name: str, params, inputs_q, order=None, description: str = "") -> "StepCase":
        """A :class:`StepCase` of this kind."""
        return StepCase(self, name, params, inputs_q, order, description)


def current_input(params, currents_q) -> dict:
    """The input fields of the cores driven by one current per neuron: ``{"current": (T, N)}``."""
    return {"current": currents_q}


def feed_order(steps: int, n_neurons: int, *, shuffle: bool = False, seed: int = 0) -> np.ndarray:
    """``(steps, n_neurons)``: row ``t`` is the order the neurons are fed in at step ``t`` (a
    seeded random permutation per step when ``shuffle``, otherwise index order)."""
    rng = np.random.default_rng(seed)
    rows = [rng.permutation(n_neurons) if shuffle else np.arange(n_neurons) for _ in range(steps)]
    return np.array(rows, dtype=np.int64).reshape(steps, n_neurons)


def gaussian_case(kind: "StepKind", params, rng: np.random.Generator, steps: int, *, drive: float, shuffle: bool,
                  seed: int, name: str | None = None) -> "StepCase":
    """A random case of a current-driven kind: Gaussian currents of standard deviation ``drive``
    with occasional 8x outliers, quantised (saturating) to ``params.input_fmt``, drawn from
    ``rng``; neurons in a fresh random order each step when ``shuffle``."""
    n = params.n_neurons
    currents = rng.normal(0.0, drive, (steps, n))
    currents *= np.where(rng.random((steps, n)) < 0.05, 8.0, 1.0)
    order = np.stack([rng.permutation(n) if shuffle else np.arange(n) for _ in range(steps)])
    name = name or f"random_s{seed}_n{n}_t{steps}"
    return kind.case(name, params, params.input_fmt.quantize(currents), order, f"seeded random layer (seed {seed})")


@dataclass
class StepCase:
    """One stimulus for a step-driven core and what the golden model says it must emit.

    Parameters
    ----------
    kind : StepKind
    name : str
        Short identifier (build directories, reports).
    params : dataclass
        The layer, an instance of ``kind.params_class``.
    inputs_q : np.ndarray of int64, shape (T, C)
        What ``kind.run_int`` takes per step (currents, or event counts for DH-LIF).
    order : np.ndarray of int64, shape (T, n_neurons), optional
        ``order[t]`` is the permutation of neurons fed at step ``t`` (default index order).
    description : str
        What the case exercises.
    expected : dict of str to np.ndarray, optional
        Checked-in ``kind.state_fields`` (corner vectors); used instead of the golden model's.
    history_q : np.ndarray of int64, shape (T0, C), optional
        Steps the core has already run (its state memories hold their result, a reset does not
        clear them): the golden model runs over ``history_q`` and then ``inputs_q``, and only
        the new steps make beats (see :meth:`continued`).
    """

    kind: StepKind
    name: str
    params: object
    inputs_q: np.ndarray
    order: np.ndarray | None = None
    description: str = ""
    expected: dict | None = field(default=None, repr=False)
    history_q: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        self.inputs_q = np.asarray(self.inputs_q, dtype=np.int64)
        steps, n = self.inputs_q.shape[0], self.params.n_neurons
        if self.order is None:
            self.order = feed_order(steps, n)
        self.order = np.asarray(self.order, dtype=np.int64)
        if self.order.shape != (steps, n) or not all(sorted(row.tolist()) == list(range(n)) for row in self.order):
            raise ValueError(f"case {self.name}: order must hold one permutation of the {n} neurons per step")

    @property
    def steps(self) -> int:
        return int(self.inputs_q.shape[0])

    def core(self, **kwargs):
        """The core for :attr:`params` (``kwargs`` such as ``emit_state`` go to its constructor)."""
        return self.kind.core_class(self.params, **kwargs)

    def golden(self):
        """The golden trace of :attr:`inputs_q` from a cleared core (history not included)."""
        return self.kind.run_int(self.params, self.inputs_q)

    def states(self) -> dict:
        """The expected state fields of this case's steps, each ``(T, n_neurons)`` int64."""
        if self.expected is not None and self.history_q is None:
            return self.expected
        history = np.zeros((0, self.inputs_q.shape[1]), dtype=np.int64) if self.history_q is None else self.history_q
        trace = self.kind.run_int(self.params, np.concatenate([history, self.inputs_q]))
        return {name: np.asarray(value, dtype=np.int64)[len(history) :] for name, value in self.kind.state_fields(trace).items()}

    def feed(self) -> list[tuple[int, int]]:
        """``(step, neuron)`` of every input beat, in feeding order."""
        return [(t, int(n)) for t in range(self.steps) for n in self.order[t]]

    def stimulus(self) -> dict:
        """``{input port: records}``: one ``{neuron, ...}`` beat per neuron per step."""
        fields = {name: np.asarray(value) for name, value in self.kind.input_fields(self.params, self.inputs_q).items()}
        records = [{"neuron": n, **{name: int(value[t, n]) for name, value in fields.items()}} for t, n in self.feed()]
        return {self.kind.input_port: records}

    def expectation(self) -> Expectation:
        """Every ``o_state`` and ``o_spike`` beat (labelled ``step``, ``neuron``) and the counter."""
        states = self.states()
        state_beats, spike_beats = [], []
        for t, n in self.feed():
            context = {"step": t, "neuron": n}
            state_beats.append(({"neuron": n, **{name: int(value[t, n]) for name, value in states.items()}}, context))
            if states["spike"][t, n]:
                spike_beats.append(({"neuron": n}, context))
        return Expectation(
            {"o_state": state_beats, "o_spike": spike_beats},
            {"saturation_count": int(states["saturated"].sum())},
        )

    def continued(self, previous: list["StepCase"]) -> "StepCase":
        """This stimulus applied after the steps of ``previous`` (same params), on a core that
        still holds their states."""
        history = [case.inputs_q for case in previous]
        if self.history_q is not None:
            history.insert(0, self.history_q)
        return dataclasses.replace(self, history_q=np.concatenate(history))

    # --- JSON -------------------------------------------------------------------------------
    def to_json(self, with_expected: bool = True) -> dict:
        record = {
            "name": self.name,
            "description": self.description,
            "params": params_to_json(self.params),
            "inputs_q": self.inputs_q.tolist(),
            "order": self.order.tolist(),
        }
        if with_expected:
            record["expected"] = {name: value.tolist() for name, value in self.states().items()}
        return record

    @classmethod
    def from_json(cls, kind: StepKind, record: dict) -> "StepCase":
        expected = record.get("expected")
        return cls(
            kind,
            record["name"],
            params_from_json(kind.params_class, record["params"]),
            np.asarray(record["inputs_q"], dtype=np.int64),
            np.asarray(record["order"], dtype=np.int64),
            record.get("description", ""),
            None if expected is None else {name: np.asarray(v, dtype=np.int64) for name, v in expected.items()},
        )


def params_to_json(params) -> dict:
    """Every field of a parameter dataclass as JSON: formats as text (``"sQ6.12"``), arrays as
    lists, dicts of arrays as dicts of lists."""

    def plain(value):
        if isinstance(value, QFormat):
            return str(value)
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        return value.item() if isinstance(value, np.generic) else value

    return {f.name: plain(getattr(params, f.name)) for f in dataclasses.fields(params)}


def params_from_json(params_class: type, record: dict):
    """Inverse of :func:`params_to_json` (fields left out take their defaults)."""
    values = {}
    for f in dataclasses.fields(params_class):
        if f.name not in record:
            continue
        value = record[f.name]
        if f.name.endswith("_fmt"):
            value = QFormat.parse(value)
        elif isinstance(value, dict):
            value = {key: np.asarray(item) for key, item in value.items()}
        values[f.name] = value
    return params_class(**values)


def write_vectors(path: Path, cases: list[StepCase]) -> Path:
    """Write ``cases`` (of one kind) with their golden state fields to ``path`` (checked-in
    corner vectors; ``python -m sim.tb_<kind> --write-vectors`` calls this)."""
    kind = cases[0].kind
    about = (
        f"{kind.name} corner vectors: integer parameters, inputs and golden state fields "
        f"({kind.run_int.__module__}.run_int). Regenerate with `python -m sim.tb_{kind.name} --write-vectors`."
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"about": about, "cases": [case.to_json() for case in cases]}, separators=(",", ":")) + "\n")
    return path


def read_vectors(kind: StepKind, path: Path) -> list[StepCase]:
    """The cases of a file written by :func:`write_vectors`, with their checked-in expectations."""
    return [StepCase.from_json(kind, record) for record in json.loads(Path(path).read_text())["cases"]]


def side_by_side(name: str, cases: list[StepCase], description: str | None = None) -> StepCase:
    """One case holding the neurons of ``cases`` next to each other (one Verilog build for many
    small cases; neurons are independent, so each keeps its exact trace).

    The cases must be of one current-driven kind (an input column per neuron) and share every
    parameter that is not per neuron (formats, scalars). Per-neuron arrays are concatenated;
    shorter cases are padded with zero input after their last step, fed in index order.
    """
    first = cases[0]
    steps = max(case.steps for case in cases)
    values = {}
    for f in dataclasses.fields(first.params):
        items = [getattr(case.params, f.name) for case in cases]
        if isinstance(items[0], np.ndarray):
            values[f.name] = np.concatenate(items)
        elif isinstance(items[0], dict):  # per-neuron flags by name (a report); absent: all false
            keys = sorted({key for item in items for key in item})
            sizes = [case.params.n_neurons for case in cases]
            values[f.name] = {
                key: np.concatenate([item.get(key, np.zeros(size, dtype=bool)) for item, size in zip(items, sizes)])
                for key in keys
            }
        elif any(item != items[0] for item in items):
            raise ValueError(f"side_by_side case {name}: all cases must share {f.name}")
        else:
            values[f.name] = items[0]
    inputs, orders, offset = [], [], 0
    for case in cases:
        if case.inputs_q.shape[1] != case.params.n_neurons:
            raise ValueError(f"side_by_side case {name}: {case.name} is not driven by one input per neuron")
        n, pad = case.params.n_neurons, steps - case.steps
        inputs.append(np.pad(case.inputs_q, ((0, pad), (0, 0))))
        orders.append(np.concatenate([case.order, feed_order(pad, n)]) + offset)
        offset += n
    return StepCase(
        first.kind,
        name,
        type(first.params)(**values),
        np.concatenate(inputs, axis=1),
        np.concatenate(orders, axis=1),
        description if description is not None else " + ".join(case.name for case in cases),
    )


def vectors_main(doc: str, path: Path, make_cases: Callable[[], list[StepCase]]) -> None:
    """The command line of a ``sim/tb_<kind>.py`` module: ``--write-vectors`` writes
    ``make_cases()`` to ``path`` (after a deliberate change of the integer semantics)."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--write-vectors", action="store_true", help=f"regenerate {path}")
    if parser.parse_args().write_vectors:
        print(f"wrote {write_vectors(path, make_cases())}")
    else:
        parser.print_help()
