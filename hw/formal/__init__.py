"""Formal checks (SymbiYosys): property wrappers around the stream blocks and the runner.

Each checker is a :class:`amaranth.lib.wiring.Component` whose ``In`` members are the free
inputs the solver chooses; it instantiates one block, constrains the block's inputs with
``Assume`` and states the block's contract with ``Assert``. :func:`hw.formal.sby.prove` turns a
checker into RTLIL and runs SymbiYosys on it. The properties, their depths and which of them
are proven unbounded (k-induction) are listed in ``docs/formal.md``.
"""
